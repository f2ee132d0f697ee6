//! What gitfleet knows at a tip of the tracked branch: the fleet objects, the
//! snapshot index over history, and the status recorded so far.

use git2::{Oid, Repository};

use std::sync::Arc;

use crate::repo::model::{Manifest, SnapshotTarget, UpdateRun};
use crate::repo::{Fleet, Loaded, ParsedFile, RepoError, load_tree_cached, load_tree_shared};
use crate::snapshot::select::selected_manifests;
use crate::snapshot::{Indexer, ResolveError};
use crate::status::StatusError;
use crate::status::snapshots::{SnapshotPlan, plan_placement};
use crate::status::trust::{OwnCommits, Trusted};
use crate::status::{RecordedSnapshot, recorded_snapshots, status_root};
use crate::time::Time;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("read commit {commit}: {source}")]
    Git { commit: String, source: git2::Error },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("read the status branch: {0}")]
    StatusBranch(#[source] StatusError),
}

/// Why a snapshot's manifests could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("no resource snapshot {index} for placement {placement}")]
    NoSnapshot { placement: String, index: u32 },
    #[error("snapshot {snapshot} commit {commit}: {source}")]
    Git { snapshot: String, commit: String, source: git2::Error },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The fleet of a commit where every broken manifest file counts with its last
/// good content: invalid input never unschedules a cluster or removes a
/// placement (its errors are still reported).
fn fleet_keeping_last_good(
    repo: &Repository,
    loaded: &Loaded,
    indexer: &Indexer,
) -> Result<Fleet, git2::Error> {
    let mut files: Vec<std::sync::Arc<crate::repo::ParsedFile>> = Vec::new();
    for (path, file) in &loaded.files {
        let good = if file.is_broken() { indexer.last_good(repo, path)? } else { None };
        files.push(good.unwrap_or_else(|| file.clone()));
    }
    let mut fleet = Fleet::build(files.iter().map(|f| f.as_ref()));
    for file in loaded.files.values().filter(|f| f.is_broken()) {
        fleet.issues.extend(file.issues.iter().cloned());
    }
    fleet.issues.extend(loaded.issues.iter().cloned());
    fleet.issues.sort();
    fleet.issues.dedup();
    Ok(fleet)
}

/// The manifests a placement selects from a commit's files. Only files with
/// placements or hub resources count (not, say, 10,000 MemberCluster files).
fn select<'a>(files: impl Iterator<Item = &'a Arc<ParsedFile>>, placement: &str) -> Vec<Arc<Manifest>> {
    use crate::repo::model::FleetObject;
    let wanted = |f: &&Arc<ParsedFile>| {
        f.objects.iter().any(|o| matches!(o, FleetObject::Placement(_) | FleetObject::Hub(_)))
    };
    let fleet = Fleet::build(files.filter(wanted).map(|f| f.as_ref()));
    selected_manifests(&fleet, placement)
}

/// The fleet at one commit with its history-derived facts.
pub struct FleetState {
    pub tip: Oid,
    /// The tracked sub-folder, if any.
    pub root: Option<String>,
    /// Commit time of the tip.
    pub tip_time: Time,
    pub loaded: Loaded,
    pub fleet: Fleet,
    /// The folder of the status files in the tree (`<root>/<statusPath>`).
    pub status_root: String,
    /// The tip of the status line: the tracked tip itself, or the status branch tip.
    pub status_commit: Option<Oid>,
    /// The commit whose status folder is believed (see [`crate::status::trust`]);
    /// without a record of gitfleet's own commits, the status tip.
    pub trusted: Option<Trusted>,
    pub recorded: Vec<RecordedSnapshot>,
    /// Recorded snapshots followed by those the branch adds.
    pub snapshots: SnapshotPlan,
}

impl FleetState {
    /// Reads the fleet at `tip` (subfolder `root`), bringing `indexer` up to it.
    /// `status_tip` is the tip of the status branch when one is configured.
    pub fn load(
        repo: &Repository,
        tip: Oid,
        root: Option<&str>,
        indexer: &mut Indexer,
        status_tip: impl FnOnce(&str) -> Result<Option<Oid>, StatusError>,
        own: Option<&OwnCommits>,
    ) -> Result<FleetState, StateError> {
        let git = |source| StateError::Git { commit: tip.to_string(), source };
        let commit = repo.find_commit(tip).map_err(git)?;
        let tree = commit.tree().map_err(git)?;
        let t0 = std::time::Instant::now();
        indexer.sync(repo, tip).map_err(git)?;
        let t_sync = t0.elapsed();
        // A gitfleet.yaml that does not parse must not move status elsewhere or
        // drop the approvers: the last good settings stay in force.
        let settings = indexer.settings().clone();
        let mut loaded = load_tree_cached(repo, &tree, root, Some(&settings), &mut indexer.parsed)?;
        let t_tree = t0.elapsed();
        let fleet = fleet_keeping_last_good(repo, &loaded, indexer).map_err(git)?;
        tracing::debug!(
            index_ms = t_sync.as_secs_f64() * 1000.0,
            files_ms = (t_tree - t_sync).as_secs_f64() * 1000.0,
            fleet_ms = (t0.elapsed() - t_tree).as_secs_f64() * 1000.0,
            "fleet loaded"
        );
        loaded.settings = indexer.settings().clone();
        let status_root = status_root(root, &loaded.settings.status_path);
        let status_commit = match &loaded.settings.status_branch {
            Some(b) => status_tip(b).map_err(StateError::StatusBranch)?,
            None => Some(tip),
        };
        let trusted = match (status_commit, own) {
            (Some(c), Some(own)) => Some(own.trusted(repo, c).map_err(git)?),
            (Some(c), None) => Some(Trusted::Unverified(c)),
            (None, _) => None,
        };
        let recorded = match trusted.map(Trusted::commit) {
            Some(c) => {
                let t = repo.find_commit(c).and_then(|c| c.tree()).map_err(git)?;
                recorded_snapshots(repo, &t, &status_root).map_err(git)?
            }
            None => Vec::new(),
        };
        let mut snapshots = SnapshotPlan::default();
        for (name, computed) in indexer.placements() {
            let limit = fleet
                .placements
                .get(name)
                .map_or(crate::repo::validate::DEFAULT_REVISION_HISTORY_LIMIT, |p| p.revision_history_limit);
            let mine: Vec<RecordedSnapshot> =
                recorded.iter().filter(|r| r.placement == name).cloned().collect();
            plan_placement(name, &mine, computed, limit as usize, &mut snapshots);
        }
        // Recorded snapshots of placements the history no longer knows stay as they are.
        for r in &recorded {
            if indexer.snapshots(&r.placement).is_empty() && !snapshots.all.iter().any(|a| a == r) {
                snapshots.all.push(r.clone());
            }
        }
        Ok(FleetState {
            tip,
            root: root.map(str::to_string),
            tip_time: Time::from_second(commit.time().seconds()),
            loaded,
            fleet,
            status_root,
            status_commit,
            trusted,
            recorded,
            snapshots,
        })
    }

    /// The commit whose status folder is believed.
    pub fn trusted_status(&self) -> Option<Oid> {
        self.trusted.map(Trusted::commit)
    }

    /// The size limit of status documents: gitfleet's own verified status is
    /// read back whatever its size; status believed without checking gets the
    /// manifests' limit.
    pub fn status_limit(&self) -> usize {
        match self.trusted {
            Some(Trusted::Own(_) | Trusted::Recorded(_)) => crate::yaml::status_limit(),
            _ => crate::yaml::status_limit().min(crate::yaml::MAX_FILE_BYTES),
        }
    }

    /// The latest snapshot index of a placement.
    pub fn latest_index(&self, placement: &str) -> Option<u32> {
        self.snapshots.all.iter().filter(|s| s.placement == placement).map(|s| s.index).max()
    }

    /// The newest snapshot of a placement whose commit is `target` or one of
    /// its ancestors: the snapshot as of that commit.
    pub fn snapshot_at(&self, repo: &Repository, placement: &str, target: Oid) -> Option<u32> {
        self.snapshots
            .all
            .iter()
            .filter(|s| s.placement == placement)
            .filter_map(|s| Oid::from_str(&s.commit).ok().map(|c| (s.index, c)))
            .filter(|(_, c)| *c == target || repo.graph_descendant_of(target, *c).unwrap_or(false))
            .map(|(i, _)| i)
            .max()
    }

    /// The snapshot a run's target names.
    pub fn resolve(&self, repo: &Repository, run: &UpdateRun) -> Result<u32, ResolveError> {
        let placement = || run.placement.clone();
        match &run.target {
            SnapshotTarget::Latest => self
                .latest_index(&run.placement)
                .ok_or_else(|| ResolveError::NoSnapshot { placement: placement() }),
            SnapshotTarget::Index(i) => {
                let known = self.snapshots.all.iter().any(|s| s.placement == run.placement && s.index == *i);
                known.then_some(*i).ok_or_else(|| ResolveError::NoIndex { placement: placement(), index: *i })
            }
            SnapshotTarget::Commit(rev) => {
                let target = repo
                    .revparse_single(rev)
                    .and_then(|o| o.peel_to_commit())
                    .map_err(|_| ResolveError::NotACommit { rev: rev.clone() })?
                    .id();
                if target != self.tip && !repo.graph_descendant_of(self.tip, target).unwrap_or(false) {
                    return Err(ResolveError::NotInHistory { rev: rev.clone() });
                }
                self.snapshot_at(repo, &run.placement, target)
                    .ok_or_else(|| ResolveError::NoSnapshotAt { placement: placement(), rev: rev.clone() })
            }
        }
    }

    /// The manifests a placement's snapshot holds, read from the snapshot's commit.
    /// The placement a run rolls out: from its manifest, or for a run gitfleet
    /// made itself, from its status document.
    pub fn run_placement<'a>(
        &'a self,
        run: &str,
        runs: &'a crate::status::Documents<crate::status::run::RunDocument>,
    ) -> Option<&'a str> {
        match self.fleet.runs.get(run) {
            Some(r) => Some(r.placement.as_str()),
            None => runs.now.get(run).and_then(|d| d.placement_name()),
        }
    }

    pub fn snapshot_manifests(
        &self,
        repo: &Repository,
        placement: &str,
        index: u32,
        parsed: &crate::repo::ParsedFiles,
    ) -> Result<Vec<Arc<Manifest>>, ContentError> {
        let snap = self
            .snapshots
            .all
            .iter()
            .find(|s| s.placement == placement && s.index == index)
            .ok_or_else(|| ContentError::NoSnapshot { placement: placement.to_string(), index })?;
        // A snapshot of the tip (the usual case after a push) is the tip's files as read.
        if snap.commit == self.tip.to_string() && !self.loaded.settings_broken {
            return Ok(select(self.loaded.files.values(), placement));
        }
        let git = |source| ContentError::Git { snapshot: snap.name(), commit: snap.commit.clone(), source };
        let commit = Oid::from_str(&snap.commit).and_then(|c| repo.find_commit(c)).map_err(git)?;
        let tree = commit.tree().map_err(git)?;
        // Files the tip shares with the snapshot's commit are not parsed again.
        let loaded = load_tree_shared(repo, &tree, self.root.as_deref(), parsed)?;
        Ok(select(loaded.files.values(), placement))
    }
}
