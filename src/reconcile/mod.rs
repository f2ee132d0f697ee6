//! One reconcile pass: fetch, index snapshots, accept approvals, advance every
//! run through the engine (applying to clusters as it asks), roll out
//! RollingUpdate placements, and commit all status changes in one commit.

pub mod approvals;
pub mod auto_runs;
mod clusters;

pub use clusters::render_for;
pub mod placement_status;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use git2::{Oid, Repository};
use serde_json::{Value, json};

use crate::cluster::{Backend, SyncOptions};
use crate::engine::status::RunStatus;
use crate::engine::{self, Action, Observation, RunInput};
use crate::repo::load_tree;
use crate::repo::model::{Manifest, Placement, RolloutType, SnapshotTarget, UpdateRun};
use crate::schedule::schedule;
use crate::snapshot::Indexer;
use crate::snapshot::select::selected_manifests;
use crate::state::{FleetState, StateError};
use crate::status::{Identity, StateRepo, StatusChanges, StatusError, read_status_folder};
use placement_status::PlacementFacts;

const RUNS: &str = "clusterstagedupdateruns";
const REQUESTS: &str = "clusterapprovalrequests";
const PLACEMENTS: &str = "clusterresourceplacements";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("branch {branch} not found in {repo}")]
    NoBranch { repo: String, branch: String },
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("read Git: {0}")]
    Git(#[from] git2::Error),
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub struct PassOutcome {
    /// The status commit pushed, if anything changed.
    pub commit: Option<Oid>,
    pub message: String,
    pub new_snapshots: Vec<String>,
    /// When time alone will change something next.
    pub wake_at: Option<i64>,
}

/// The reconciler: gitfleet's clone, its snapshot index and the cluster backend.
pub struct Reconciler {
    pub state: StateRepo,
    pub indexer: Indexer,
    pub backend: Box<dyn Backend>,
    pub repo_location: String,
    pub branch: String,
    pub root: Option<String>,
    pub identity: Identity,
    /// Clusters whose backend was already announced in the log.
    pub announced: BTreeSet<String>,
    /// Unreachable clusters and when to try them again.
    pub(crate) retries: std::cell::RefCell<HashMap<String, clusters::Retry>>,
    /// When a waiting cluster (availability, backoff) should be looked at again.
    pub(crate) pending_wake: std::cell::RefCell<Option<i64>>,
}

/// Status documents of one pass: read at the start, written back if changed.
struct StatusDocs {
    before: BTreeMap<String, Value>,
    now: BTreeMap<String, Value>,
}

impl StatusDocs {
    fn read(repo: &Repository, fs: &FleetState, folder: &str) -> Result<StatusDocs, git2::Error> {
        let mut before = BTreeMap::new();
        if let Some(c) = fs.status_commit {
            let tree = repo.find_commit(c)?.tree()?;
            for (file, bytes) in read_status_folder(repo, &tree, &fs.status_root, folder)? {
                if let (Some(name), Ok(doc)) =
                    (file.strip_suffix(".yaml"), crate::yaml::parse_typed::<Value>(&bytes))
                {
                    before.insert(name.to_string(), doc);
                }
            }
        }
        Ok(StatusDocs { now: before.clone(), before })
    }

    fn changes(&self, folder: &str, out: &mut StatusChanges) {
        for (name, doc) in &self.now {
            if self.before.get(name) != Some(doc) {
                out.writes.insert(format!("{folder}/{name}.yaml"), crate::yaml::to_string(doc).into_bytes());
            }
        }
    }
}

/// Per-pass cache of snapshot contents: (placement, index) -> manifests.
type ContentCache = HashMap<(String, u32), Arc<Vec<Arc<Manifest>>>>;

impl Reconciler {
    /// One pass at time `now` (seconds since the epoch).
    pub fn pass(&mut self, now: i64) -> Result<PassOutcome, ReconcileError> {
        let tip = self.state.fetch(&self.branch)?.ok_or_else(|| ReconcileError::NoBranch {
            repo: self.repo_location.clone(),
            branch: self.branch.clone(),
        })?;
        let blocked_before = self.indexer.blocked.len();
        // After a rebuild (rewritten history) the list starts over.
        let state = &self.state;
        let fs = FleetState::load(state.repo(), tip, self.root.as_deref(), &mut self.indexer, |b| {
            state.fetch(b).map_err(|e| e.to_string())
        })?;
        for b in self.indexer.blocked.get(blocked_before..).unwrap_or_default() {
            for issue in &b.issues {
                tracing::warn!(placement = %b.placement, commit = %b.commit, "no snapshot: {issue}");
            }
        }
        for w in &fs.snapshots.warnings {
            tracing::warn!("{w}");
        }
        for (name, cluster) in &fs.fleet.clusters {
            self.backend.declare(cluster);
            if self.announced.insert(name.clone()) {
                tracing::info!(cluster = %name, backend = self.backend.kind(), "member cluster");
            }
        }
        let repo = self.state.repo();
        let mut runs = StatusDocs::read(repo, &fs, RUNS)?;
        let mut requests = StatusDocs::read(repo, &fs, REQUESTS)?;
        let mut placements = StatusDocs::read(repo, &fs, PLACEMENTS)?;
        let mut notes: Vec<String> = Vec::new();
        let approved = self.accept_approvals(&fs, tip, &mut requests, now, &mut notes)?;
        let mut facts: BTreeMap<String, PlacementFacts> = fs
            .fleet
            .placements
            .keys()
            .map(|name| (name.clone(), PlacementFacts::from_status(placements.now.get(name))))
            .collect();
        self.pending_wake.replace(None);
        let mut cache = ContentCache::new();
        let mut wake_at: Option<i64> = None;
        let ordered = auto_runs::ordered_runs(&fs, &self.indexer, &runs.now);
        for entry in &ordered {
            let w = self.advance_run(
                &fs,
                entry,
                &ordered,
                &approved,
                &mut runs,
                &mut requests,
                &mut facts,
                &mut cache,
                now,
                &mut notes,
            )?;
            wake_at = min_time(wake_at, w);
        }
        for p in fs.fleet.placements.values() {
            if let RolloutType::RollingUpdate { .. } = p.rollout {
                self.rolling_update(&fs, p, &mut facts, &mut cache, now, &mut notes)?;
            }
        }
        for p in fs.fleet.placements.values() {
            let f = facts.entry(p.name.clone()).or_default();
            self.check_clusters(&fs, p, f, &mut cache, now, &mut notes);
        }
        wake_at = min_time(wake_at, *self.pending_wake.borrow());
        self.placement_docs(&fs, &mut placements, &facts, now);

        let mut changes = StatusChanges {
            writes: fs.snapshots.writes.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect(),
            deletes: fs.snapshots.deletes.iter().cloned().collect(),
        };
        runs.changes(RUNS, &mut changes);
        requests.changes(REQUESTS, &mut changes);
        placements.changes(PLACEMENTS, &mut changes);
        let new_snapshots: Vec<String> = fs
            .snapshots
            .all
            .iter()
            .filter(|s| !fs.recorded.iter().any(|r| r.placement == s.placement && r.index == s.index))
            .map(|s| s.name())
            .collect();
        if changes.is_empty() {
            return Ok(PassOutcome { wake_at, ..PassOutcome::default() });
        }
        let message = summary(&new_snapshots, &notes);
        let status_branch = fs.loaded.settings.status_branch.clone().unwrap_or_else(|| self.branch.clone());
        let commit = self.state.publish(
            &status_branch,
            fs.status_commit,
            &fs.status_root,
            &changes,
            &message,
            &self.identity,
        )?;
        Ok(PassOutcome { commit, message, new_snapshots, wake_at })
    }

    /// Accepts approvals for pending requests; returns the names of all accepted ones.
    fn accept_approvals(
        &self,
        fs: &FleetState,
        tip: Oid,
        requests: &mut StatusDocs,
        now: i64,
        notes: &mut Vec<String>,
    ) -> Result<BTreeSet<String>, git2::Error> {
        let repo = self.state.repo();
        let pending: Vec<&str> = fs
            .fleet
            .approvals
            .keys()
            .filter(|n| requests.now.get(*n).is_some_and(|d| !approvals::is_accepted(d)))
            .map(String::as_str)
            .collect();
        if !pending.is_empty() {
            let prefix = fs.root.as_deref().map(|r| format!("{r}/")).unwrap_or_default();
            let settings = &fs.loaded.settings;
            let mut paths: Vec<String> = Vec::new();
            for name in &pending {
                paths.push(fs.fleet.approvals[*name].origin.path.to_string());
                paths.push(format!("{}/{REQUESTS}/{name}.yaml", fs.status_root));
            }
            let full: Vec<String> = paths
                .iter()
                .map(|p| if p.starts_with(&fs.status_root) { p.clone() } else { format!("{prefix}{p}") })
                .collect();
            let found = approvals::introduced(repo, tip, &full)?;
            for (i, name) in pending.iter().enumerate() {
                let approval = &fs.fleet.approvals[*name];
                let Some(a) = found.get(&full[2 * i]) else { continue };
                // The commit that brought the approval must not be part of the
                // history the request was made on: no pre-written approvals.
                let requested_at = requests.now[*name]["metadata"]["annotations"][approvals::REQUESTED_AT]
                    .as_str()
                    .and_then(|s| Oid::from_str(s).ok());
                let after_request = match (requested_at, found.get(&full[2 * i + 1])) {
                    (Some(r), _) => a.commit != r && !repo.graph_descendant_of(r, a.commit).unwrap_or(true),
                    (None, Some(r)) => a.depth < r.depth,
                    (None, None) => false,
                };
                let commit = repo.find_commit(a.commit)?;
                let emails: Vec<String> = [commit.author().email(), commit.committer().email()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                let allowed = emails.iter().any(|e| settings.may_approve(e));
                if !approval.approved {
                    continue;
                }
                if !after_request {
                    tracing::warn!(approval = %name, commit = %a.commit, "approval ignored: it was committed before the request existed");
                    continue;
                }
                if !allowed {
                    tracing::warn!(approval = %name, ?emails, "approval ignored: not from an allowed approver");
                    continue;
                }
                let by = emails.first().cloned().unwrap_or_default();
                let doc = requests.now.get_mut(*name).expect("pending requests exist");
                approvals::accept(
                    doc,
                    &approval.reason,
                    &approval.message,
                    &by,
                    a.commit,
                    &engine::time(now),
                );
                notes.push(format!("{name} approved by {by}"));
            }
        }
        Ok(requests.now.iter().filter(|(_, d)| approvals::is_accepted(d)).map(|(n, _)| n.clone()).collect())
    }

    /// The accepted approvals that belong to one run (request names could collide).
    fn approved_for(requests: &StatusDocs, approved: &BTreeSet<String>, run: &str) -> BTreeSet<String> {
        approved
            .iter()
            .filter(|n| requests.now.get(*n).is_some_and(|d| d["spec"]["parentStageRollout"] == run))
            .cloned()
            .collect()
    }

    /// The snapshot a run's target names.
    fn resolve_index(&self, fs: &FleetState, run: &UpdateRun) -> Result<u32, String> {
        let snaps: Vec<_> = fs.snapshots.all.iter().filter(|s| s.placement == run.placement).collect();
        match &run.target {
            SnapshotTarget::Latest => snaps
                .iter()
                .map(|s| s.index)
                .max()
                .ok_or_else(|| format!("placement {} has no resource snapshot", run.placement)),
            SnapshotTarget::Index(i) => snaps.iter().any(|s| s.index == *i).then_some(*i).ok_or_else(|| {
                format!("no resource snapshot with index {i} for placement {}", run.placement)
            }),
            SnapshotTarget::Commit(rev) => {
                let repo = self.state.repo();
                let target = repo
                    .revparse_single(rev)
                    .and_then(|o| o.peel_to_commit())
                    .map_err(|_| format!("resourceCommit {rev} does not name a commit"))?
                    .id();
                if target != fs.tip && !repo.graph_descendant_of(fs.tip, target).unwrap_or(false) {
                    return Err(format!("resourceCommit {rev} is not in the history of the tracked branch"));
                }
                snapshot_at(repo, fs, &run.placement, target).ok_or_else(|| {
                    format!("placement {} had no resource snapshot at commit {rev}", run.placement)
                })
            }
        }
    }

    /// The manifests of one snapshot, read from its commit.
    fn content(
        &self,
        fs: &FleetState,
        placement: &str,
        index: u32,
        cache: &mut ContentCache,
    ) -> Result<Arc<Vec<Arc<Manifest>>>, String> {
        if let Some(c) = cache.get(&(placement.to_string(), index)) {
            return Ok(c.clone());
        }
        let manifests =
            Arc::new(snapshot_manifests(self.state.repo(), fs, self.root.as_deref(), placement, index)?);
        cache.insert((placement.to_string(), index), manifests.clone());
        Ok(manifests)
    }

    #[allow(clippy::too_many_arguments)]
    fn advance_run(
        &self,
        fs: &FleetState,
        entry: &auto_runs::OrderedRun,
        ordered: &[auto_runs::OrderedRun],
        approved: &BTreeSet<String>,
        runs: &mut StatusDocs,
        requests: &mut StatusDocs,
        facts: &mut BTreeMap<String, PlacementFacts>,
        cache: &mut ContentCache,
        now: i64,
        notes: &mut Vec<String>,
    ) -> Result<Option<i64>, ReconcileError> {
        let run = &entry.run;
        let before: RunStatus = match runs.now.get(&run.name).and_then(|d| d.get("status")) {
            None => RunStatus::default(),
            Some(s) => match serde_json::from_value(s.clone()) {
                Ok(status) => status,
                Err(e) => {
                    tracing::warn!(run = %run.name, "status file does not parse, leaving the run as it is: {e}");
                    return Ok(None);
                }
            },
        };
        if before.finished() {
            return Ok(None);
        }
        let placement = fs.fleet.placements.get(&run.placement);
        let sched = placement.map(|p| schedule(p, &fs.fleet.clusters)).unwrap_or_default();
        let newest = ordered.iter().rfind(|r| r.run.placement == run.placement).map(|r| r.run.name.clone());
        let superseded_by = newest.filter(|n| *n != run.name);
        let resource_index = match before.resource_snapshot_index_used.as_deref().and_then(|i| i.parse().ok())
        {
            Some(i) => Ok(i),
            None => self.resolve_index(fs, run),
        };
        let cleanup = if before.conditions.is_empty() {
            self.cleanup_clusters(&run.placement, &sched.clusters)
        } else {
            Vec::new()
        };
        let generation = self
            .indexer
            .history("ClusterStagedUpdateRun", None, &run.name)
            .map_or(1, |h| h.generation as i64);
        let mut status = before.clone();
        let approved = &Self::approved_for(requests, approved, &run.name);
        let windows: Vec<crate::window::RolloutWindow> =
            fs.fleet.windows.values().map(|(w, _)| w.clone()).collect();
        let mut observations = BTreeMap::new();
        let mut updated: Vec<String> = Vec::new();
        let mut gates: Vec<String> = Vec::new();
        let mut wake = None;
        for _ in 0..10_000 {
            let input = RunInput {
                run,
                generation,
                placement,
                strategy: fs.fleet.strategies.get(&run.strategy),
                clusters: &fs.fleet.clusters,
                scheduled: &sched.clusters,
                policy_index: self.indexer.policy_index(&run.placement),
                resource_index: resource_index.clone(),
                cleanup: cleanup.clone(),
                approved,
                observations: &observations,
                superseded_by: superseded_by.as_deref(),
                windows: &windows,
                now,
            };
            let out = engine::step(&input, &status);
            status = out.status;
            wake = out.wake_at;
            let mut progressed = false;
            let index: u32 =
                status.resource_snapshot_index_used.as_deref().and_then(|i| i.parse().ok()).unwrap_or(0);
            for action in out.actions {
                match action {
                    Action::UpdateCluster { cluster } => {
                        let Some(p) = placement else {
                            let gone = format!("placement {} is not in the repository", run.placement);
                            observations.insert(cluster, Observation::Failed(gone));
                            progressed = true;
                            continue;
                        };
                        let stage = status
                            .stages_status
                            .iter()
                            .find(|s| s.clusters.iter().any(|c| c.cluster_name == cluster))
                            .map(|s| s.stage_name.as_str())
                            .unwrap_or_default();
                        tracing::info!(run = %run.name, stage, cluster = %cluster, snapshot = index, "updating cluster");
                        let f = facts.entry(p.name.clone()).or_default();
                        let obs = self.update_cluster(fs, p, &cluster, index, cache, f, now);
                        updated.push(cluster.clone());
                        observations.insert(cluster, obs);
                        progressed = true;
                    }
                    Action::CleanupCluster { cluster } => {
                        let obs = self.cleanup_cluster(&cluster, &run.placement, now);
                        observations.insert(cluster, obs);
                        progressed = true;
                    }
                    Action::RequestApproval { name, stage } => {
                        let doc =
                            approvals::request_document(&name, &run.name, &stage, &engine::time(now), fs.tip);
                        requests.now.entry(name.clone()).or_insert(doc);
                        gates.push(format!("{} {stage} waiting for approval {name}", run.name));
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        if status != before {
            let created = self
                .indexer
                .history("ClusterStagedUpdateRun", None, &run.name)
                .map_or(fs.tip_time, |h| h.created);
            let mut doc = json!({
                "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
                "kind": "ClusterStagedUpdateRun",
                "metadata": { "name": run.name, "generation": generation, "creationTimestamp": engine::time(created) },
                "spec": run.spec,
                "status": status,
            });
            doc["metadata"]["annotations"] = json!({ auto_runs::SEQUENCE: entry.sequence.to_string() });
            if entry.auto {
                doc["metadata"]["annotations"][auto_runs::AUTO_RUN] = json!("true");
            }
            runs.now.insert(run.name.clone(), doc);
            if !updated.is_empty() {
                notes.push(format!("{} updated {}", run.name, updated.join(", ")));
            }
            notes.append(&mut gates);
            if let Some(c) = status.conditions.iter().find(|c| c.type_ == "Succeeded") {
                let outcome = match c.reason.as_str() {
                    "UpdateRunSucceeded" => "succeeded",
                    "UpdateRunSuperseded" => "was superseded",
                    _ => "failed",
                };
                notes.push(format!("{} {outcome}", run.name));
            }
        }
        Ok(wake)
    }

    /// Clusters that hold this placement's resources but are no longer scheduled.
    fn cleanup_clusters(&self, placement: &str, scheduled: &[String]) -> Vec<String> {
        self.backend
            .known_clusters()
            .into_iter()
            .filter(|c| !scheduled.contains(c))
            .filter(|c| {
                self.backend.placements_on(c).map(|ps| ps.iter().any(|p| p == placement)).unwrap_or(false)
            })
            .collect()
    }

    /// RollingUpdate: every scheduled cluster gets the latest snapshot, at most
    /// `maxUnavailable` at a time (local updates finish within the pass).
    fn rolling_update(
        &self,
        fs: &FleetState,
        p: &Placement,
        facts: &mut BTreeMap<String, PlacementFacts>,
        cache: &mut ContentCache,
        now: i64,
        notes: &mut Vec<String>,
    ) -> Result<(), ReconcileError> {
        let Some(latest) = fs.snapshots.all.iter().filter(|s| s.placement == p.name).map(|s| s.index).max()
        else {
            return Ok(());
        };
        let sched = schedule(p, &fs.fleet.clusters);
        let f = facts.entry(p.name.clone()).or_default();
        let outdated: Vec<&String> = sched
            .clusters
            .iter()
            .filter(|c| {
                let done = match p.apply.type_ {
                    crate::repo::model::ApplyType::ReportDiff => &f.reported_before,
                    crate::repo::model::ApplyType::ServerSideApply => &f.done_before,
                };
                f.held_before.get(*c) != Some(&latest) || !done.contains(*c)
            })
            .collect();
        let batch = match p.rollout {
            RolloutType::RollingUpdate { max_unavailable } => {
                max_unavailable.resolve(sched.clusters.len()).max(1)
            }
            RolloutType::External => return Ok(()),
        };
        let mut updated = 0;
        // At most `maxUnavailable` clusters are updated at a time; a batch with a
        // failure stops the rollout until the next pass.
        for chunk in outdated.chunks(batch) {
            let mut failed = false;
            let mut waiting = false;
            for cluster in chunk {
                match self.update_cluster(fs, p, cluster, latest, cache, f, now) {
                    Observation::Succeeded => updated += 1,
                    // Not available yet (or unreachable): it still counts as unavailable.
                    Observation::Pending(_) => waiting = true,
                    Observation::Failed(e) => {
                        failed = true;
                        tracing::warn!(placement = %p.name, cluster = %cluster, "rolling update failed: {e}");
                    }
                }
            }
            if failed {
                notes.push(format!("{} rolling update stopped: a cluster failed", p.name));
                break;
            }
            if waiting {
                break;
            }
        }
        for cluster in self.cleanup_clusters(&p.name, &sched.clusters) {
            let _ = self.backend.sync(&cluster, &p.name, &[], &SyncOptions::default());
        }
        if updated > 0 {
            notes.push(format!("{} rolled out snapshot {latest} to {updated} cluster(s)", p.name));
        }
        Ok(())
    }

    fn placement_docs(
        &self,
        fs: &FleetState,
        placements: &mut StatusDocs,
        facts: &BTreeMap<String, PlacementFacts>,
        now: i64,
    ) {
        for p in fs.fleet.placements.values() {
            let sched = schedule(p, &fs.fleet.clusters);
            let latest = fs.snapshots.all.iter().filter(|s| s.placement == p.name).map(|s| s.index).max();
            let generation = self
                .indexer
                .history("ClusterResourcePlacement", None, &p.name)
                .map_or(1, |h| h.generation as i64);
            let selected: Vec<Value> = selected_manifests(&fs.fleet, &p.name)
                .iter()
                .map(|m| {
                    let mut v = json!({ "group": m.key.group, "version": crate::repo::scope::version_of(&m.api_version), "kind": m.key.kind, "name": m.key.name });
                    if let Some(ns) = &m.key.namespace {
                        v["namespace"] = json!(ns);
                    }
                    v
                })
                .collect();
            let empty = PlacementFacts::default();
            let f = facts.get(&p.name).unwrap_or(&empty);
            let previous = placements.now.get(&p.name).cloned();
            let mut doc = placement_status::document(
                p,
                generation,
                &sched,
                latest,
                &selected,
                previous.as_ref(),
                f,
                &engine::time(now),
            );
            placement_status::set_blocked(
                &mut doc,
                &self.indexer.blocking(&p.name),
                generation,
                &engine::time(now),
            );
            // Keep timestamps stable when nothing else changed, so a quiet pass commits nothing.
            if let Some(prev) = &previous
                && strip_times(prev) == strip_times(&doc)
            {
                doc = prev.clone();
            }
            placements.now.insert(p.name.clone(), doc);
        }
    }
}

/// The newest snapshot of a placement whose commit is `target` or one of its
/// ancestors: the snapshot as of that commit.
pub fn snapshot_at(repo: &Repository, fs: &FleetState, placement: &str, target: Oid) -> Option<u32> {
    fs.snapshots
        .all
        .iter()
        .filter(|s| s.placement == placement)
        .filter_map(|s| Oid::from_str(&s.commit).ok().map(|c| (s.index, c)))
        .filter(|(_, c)| *c == target || repo.graph_descendant_of(target, *c).unwrap_or(false))
        .map(|(i, _)| i)
        .max()
}

/// The manifests a placement's snapshot holds, read from the snapshot's commit.
pub fn snapshot_manifests(
    repo: &Repository,
    fs: &FleetState,
    root: Option<&str>,
    placement: &str,
    index: u32,
) -> Result<Vec<Arc<Manifest>>, String> {
    let snap = fs
        .snapshots
        .all
        .iter()
        .find(|s| s.placement == placement && s.index == index)
        .ok_or_else(|| format!("no resource snapshot {index} for placement {placement}"))?;
    let commit = Oid::from_str(&snap.commit)
        .and_then(|c| repo.find_commit(c))
        .map_err(|e| format!("snapshot {} commit {}: {e}", snap.name(), snap.commit))?;
    let tree = commit.tree().map_err(|e| e.to_string())?;
    let loaded = load_tree(repo, &tree, root).map_err(|e| e.to_string())?;
    Ok(selected_manifests(&loaded.fleet(), placement))
}

fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "lastTransitionTime" && k.as_str() != "observationTime")
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

fn min_time(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One-line commit message for a pass.
fn summary(new: &[String], notes: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !new.is_empty() {
        let shown: Vec<&str> = new.iter().take(3).map(String::as_str).collect();
        let more = if new.len() > 3 { format!(" and {} more", new.len() - 3) } else { String::new() };
        parts.push(format!("record {}{more}", shown.join(", ")));
    }
    parts.extend(notes.iter().take(4).cloned());
    if parts.is_empty() {
        parts.push("update status".into());
    }
    format!("gitfleet: {}", parts.join("; "))
}
