//! What gitfleet knows at a tip of the tracked branch: the fleet objects, the
//! snapshot index over history, and the status recorded so far.

use std::path::Path;

use git2::{Oid, Repository};

use crate::repo::{Fleet, Loaded, RepoError, load_tree_with};
use crate::snapshot::Indexer;
use crate::status::snapshots::{SnapshotPlan, plan_placement};
use crate::status::{RecordedSnapshot, recorded_snapshots, status_root};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("read commit {commit}: {source}")]
    Git { commit: String, source: git2::Error },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("read the status branch: {0}")]
    StatusBranch(String),
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

/// The fleet at one commit with its history-derived facts.
pub struct FleetState {
    pub tip: Oid,
    /// The tracked sub-folder, if any.
    pub root: Option<String>,
    /// Commit time of the tip (seconds).
    pub tip_time: i64,
    pub loaded: Loaded,
    pub fleet: Fleet,
    /// The folder of the status files in the tree (`<root>/<statusPath>`).
    pub status_root: String,
    /// The commit holding status: the tip itself, or the status branch tip.
    pub status_commit: Option<Oid>,
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
        status_tip: impl FnOnce(&str) -> Result<Option<Oid>, String>,
    ) -> Result<FleetState, StateError> {
        let git = |source| StateError::Git { commit: tip.to_string(), source };
        let commit = repo.find_commit(tip).map_err(git)?;
        let tree = commit.tree().map_err(git)?;
        indexer.sync(repo, tip).map_err(git)?;
        // A gitfleet.yaml that does not parse must not move status elsewhere or
        // drop the approvers: the last good settings stay in force.
        let mut loaded = load_tree_with(repo, &tree, root, Some(indexer.settings()))?;
        let fleet = fleet_keeping_last_good(repo, &loaded, indexer).map_err(git)?;
        loaded.settings = indexer.settings().clone();
        let status_root = status_root(root, &loaded.settings.status_path);
        let status_commit = match &loaded.settings.status_branch {
            Some(b) => status_tip(b).map_err(StateError::StatusBranch)?,
            None => Some(tip),
        };
        let recorded = match status_commit {
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
            tip_time: commit.time().seconds(),
            loaded,
            fleet,
            status_root,
            status_commit,
            recorded,
            snapshots,
        })
    }

    /// Reads one status file (path relative to the status folder).
    pub fn status_file(&self, repo: &Repository, path: &str) -> Option<Vec<u8>> {
        let commit = repo.find_commit(self.status_commit?).ok()?;
        let entry = commit.tree().ok()?.get_path(Path::new(&format!("{}/{path}", self.status_root))).ok()?;
        repo.find_blob(entry.id()).ok().map(|b| b.content().to_vec())
    }
}
