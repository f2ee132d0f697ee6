//! One reconcile pass: everything that lives for one pass (the fleet at the
//! tip, the status documents, accepted approvals, what each placement's
//! clusters hold, when to wake up, what to say in the commit message), and the
//! order in which it is worked through.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use git2::Repository;

use crate::cluster::Backend;
use crate::engine::rolling::{self, RollingStop};
use crate::repo::model::{Manifest, Placement, RolloutType};
use crate::schedule::{Schedule, schedule_keeping};
use crate::snapshot::Indexer;
use crate::snapshot::select::selected_manifests;
use crate::state::{ContentError, FleetState};
use crate::status::approval::ApprovalRequest;
use crate::status::eviction::EVICTIONS;
use crate::status::member::MEMBERS;
use crate::status::placement::{self, PlacementDocument, PlacementFacts, PlacementInput, SelectedResource};
use crate::status::run::RunDocument;
use crate::status::sign::Signers;
use crate::status::trust::{self, Foreign, Trusted};
use crate::status::{Documents, PLACEMENT_STATUSES, PLACEMENTS, REQUESTS, RUNS, StatusChanges};
use crate::time::{Time, Wake};

use super::approvals;
use super::auto_runs;
use super::clusters::Retries;
use super::{PassSummary, RunSummary};

/// A run's state in one word, from its conditions.
/// Seconds from a cluster update's start to its success, once it succeeded.
fn update_took(conditions: &Vec<crate::status::conditions::Condition>) -> Option<f64> {
    use crate::status::conditions::Conditions;
    use crate::status::conditions::kind::{STARTED, SUCCEEDED};
    let done = conditions.get_condition(SUCCEEDED).filter(|c| c.status == "True")?;
    let started = conditions.get_condition(STARTED)?;
    Some(done.last_transition_time.seconds_since(started.last_transition_time).max(0) as f64)
}

/// When an approval request's approval was accepted, if it was.
fn accepted_at(request: &ApprovalRequest) -> Option<crate::time::Time> {
    use crate::status::conditions::Conditions;
    let status = request.status.as_ref()?;
    let accepted = status.conditions.get_condition(crate::status::conditions::kind::APPROVAL_ACCEPTED)?;
    (accepted.status == "True").then_some(accepted.last_transition_time)
}

/// Snapshot contents read by the previous and this pass: (placement, index,
/// commit) -> manifests. A snapshot never changes, so a pass reads only new ones.
pub(crate) type ContentCache = HashMap<(String, u32, String), Arc<Vec<Arc<Manifest>>>>;

/// One pass. Borrows what outlives it from the reconciler; owns the rest.
pub(crate) struct Pass<'p> {
    pub(super) repo: &'p Repository,
    pub(super) indexer: &'p Indexer,
    pub(super) backend: &'p dyn Backend,
    pub(super) retries: &'p mut Retries,
    pub(super) fs: &'p FleetState,
    pub(super) now: Time,
    pub(super) runs: Documents<RunDocument>,
    pub(super) requests: Documents<ApprovalRequest>,
    pub(super) placements: Documents<PlacementDocument>,
    /// Requests whose approval was accepted (now or before).
    pub(super) approved: BTreeSet<String>,
    /// What each placement's clusters hold, as far as this pass knows.
    pub(super) facts: BTreeMap<String, PlacementFacts>,
    cache: &'p mut ContentCache,
    pub(super) wake: Wake,
    /// What the status commit's message says.
    pub(super) notes: Vec<String>,
    /// Who may sign approvals (`--allowed-signers`), if approvals are verified.
    pub(super) signers: Option<&'p Signers>,
    /// With `--shards`: the placements this pass works on.
    shard: Option<&'p crate::shard::ShardFilter>,
    /// Placement -> clusters that may hold its objects.
    pub(super) holders: &'p mut Holders,
    /// Each placement's schedule in this pass (made once).
    schedules: HashMap<String, Arc<Schedule>>,
    /// Eviction status documents.
    pub(super) evictions: Documents<crate::status::eviction::EvictionDocument>,
    /// Clusters kept out of placements by executed evictions.
    pub(super) evicted: super::evictions::Evicted,
    /// Member cluster status documents.
    pub(super) members: Documents<crate::status::member::MemberDocument>,
    /// Read when the member documents are made (after the clusters' work:
    /// at 10,000 clusters the folder is not in the way of a push's first write).
    pub(super) members_cache: &'p mut crate::status::ParseCache<crate::status::member::MemberDocument>,
    /// The clusters with what they reported about themselves as properties,
    /// when any did (what scheduling reads).
    pub(super) live_clusters: Option<BTreeMap<String, crate::repo::model::MemberCluster>>,
    pub(super) contacts: &'p mut super::members::Contacts,
    /// Takes Verification measurements.
    pub(super) prober: &'p crate::verify::probe::LazyProber,
}

/// What a pass leaves to commit.
pub(crate) struct PassResult {
    pub changes: StatusChanges,
    pub notes: Vec<String>,
    pub wake: Wake,
    pub summary: PassSummary,
}

/// What a pass borrows from the reconciler.
pub(super) struct Outside<'p> {
    pub repo: &'p Repository,
    pub indexer: &'p Indexer,
    pub backend: &'p dyn Backend,
    pub retries: &'p mut Retries,
    pub signers: Option<&'p Signers>,
    /// Status files parsed in the previous pass.
    pub cache: &'p mut crate::status::StatusCaches,
    /// Snapshot contents read by earlier passes.
    pub contents: &'p mut ContentCache,
    /// With `--shards`: the placements this pass works on.
    pub shard: Option<&'p crate::shard::ShardFilter>,
    /// Placement -> clusters that may hold its objects (see `cleanup_clusters`).
    pub holders: &'p mut Holders,
    pub prober: &'p crate::verify::probe::LazyProber,
    pub contacts: &'p mut super::members::Contacts,
}

/// Placement -> clusters that may hold its objects.
pub(crate) type Holders = HashMap<String, HashSet<String>>;

impl<'p> Pass<'p> {
    /// Reads the status documents gitfleet believes.
    pub(super) fn start(
        outside: Outside<'p>,
        fs: &'p FleetState,
        now: Time,
    ) -> Result<Pass<'p>, git2::Error> {
        let Outside {
            repo,
            indexer,
            backend,
            retries,
            signers,
            cache,
            contents,
            shard,
            holders,
            prober,
            contacts,
        } = outside;
        // Snapshots gone from history (pruned, or history rewritten) are dropped.
        contents.retain(|(placement, index, commit), _| {
            fs.snapshots
                .all
                .iter()
                .any(|s| s.placement == *placement && s.index == *index && s.commit == *commit)
        });
        let status = fs.trusted_status();
        let (root, limit) = (&fs.status_root, fs.status_limit());
        let placements: Documents<PlacementDocument> =
            Documents::read(repo, status, root, PLACEMENTS, limit, &mut cache.placements)?;
        let facts = fs
            .fleet
            .placements
            .keys()
            .map(|name| (name.clone(), PlacementFacts::from_status(placements.get(name))))
            .collect();
        Ok(Pass {
            repo,
            indexer,
            backend,
            retries,
            fs,
            now,
            runs: Documents::read(repo, status, root, RUNS, limit, &mut cache.runs)?,
            requests: Documents::read(repo, status, root, REQUESTS, limit, &mut cache.requests)?,
            evictions: Documents::read(repo, status, root, EVICTIONS, limit, &mut cache.evictions)?,
            evicted: Default::default(),
            members: Documents::empty(MEMBERS),
            members_cache: &mut cache.members,
            live_clusters: None,
            contacts,
            placements,
            approved: BTreeSet::new(),
            facts,
            cache: contents,
            wake: Wake::NEVER,
            notes: Vec::new(),
            signers,
            shard,
            holders,
            prober,
            schedules: HashMap::new(),
        })
    }

    /// Works through the pass: approvals, runs in creation order, rolling
    /// updates, drift and difference checks, then the placement documents.
    pub(super) fn run(mut self) -> Result<PassResult, git2::Error> {
        let t0 = std::time::Instant::now();
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
        let foreign = self.foreign_changes()?;
        let shard = self.shard;
        let owned_request =
            |name: &str, requests: &Documents<ApprovalRequest>, runs: &Documents<RunDocument>| {
                let run =
                    requests.now.get(name).map(|r| r.spec.parent_stage_rollout.as_str()).unwrap_or_default();
                shard.is_none_or(|s| self.fs.run_placement(run, runs).is_some_and(|p| s.owns(p)))
            };
        let notes = approvals::accept_pending(
            self.repo,
            self.fs,
            self.signers,
            &mut self.requests,
            &|name, requests| owned_request(name, requests, &self.runs),
            self.now,
        )?;
        self.notes.extend(notes);
        self.approved = approvals::accepted(&self.requests);
        self.ask_members();
        self.evict();
        let approvals_ms = ms(t0);
        let ordered = auto_runs::ordered_runs(self.fs, self.indexer, &self.runs.now);
        for entry in &ordered {
            if self.owns(&entry.run.placement) {
                self.advance_run(entry, &ordered);
            }
        }
        let fs = self.fs;
        // A placement whose status gitfleet cannot read is left as it is: its
        // clusters' state is unknown, so nothing is applied, checked or rewritten.
        let readable: Vec<&Placement> = fs
            .fleet
            .placements
            .values()
            .filter(|p| self.owns(&p.name) && !self.placement_unreadable(&p.name))
            .collect();
        let runs_ms = ms(t0);
        for p in &readable {
            if let RolloutType::RollingUpdate { max_unavailable } = p.rollout {
                self.rolling_update(p, max_unavailable);
            }
        }
        let rolling_ms = ms(t0);
        for p in &readable {
            self.check_clusters(p);
        }
        let checks_ms = ms(t0);
        for p in &readable {
            self.placement_document(p);
        }
        self.member_statuses()?;
        tracing::debug!(
            approvals_ms,
            runs_ms,
            rolling_ms,
            checks_ms,
            documents_ms = ms(t0),
            "pass work (ms since its start)"
        );
        // Status someone else wrote is put back as gitfleet had it, by every
        // replica (its commit would otherwise carry the change as its own);
        // what this pass writes comes on top. With shards, each replica
        // writes only the files of its own placements.
        let mut changes = StatusChanges::default();
        for f in foreign {
            match f.content {
                Some(content) => {
                    changes.writes.insert(f.path, content);
                }
                None => {
                    changes.deletes.insert(f.path);
                }
            }
        }
        for s in fs.snapshots.all.iter().filter(|s| fs.snapshots.writes.contains_key(&s.file())) {
            if self.writes_path(&s.file()) {
                let content = self.content(&s.placement, s.index);
                let text = s.to_yaml_with(content.as_deref().map(Vec::as_slice));
                changes.writes.insert(s.file(), text.into_bytes());
            }
        }
        for path in fs.snapshots.deletes.iter().filter(|p| self.writes_path(p)) {
            changes.writes.remove(path);
            changes.deletes.insert(path.clone());
        }
        self.runs.changes(&mut changes);
        self.requests.changes(&mut changes);
        self.placements.changes(&mut changes);
        self.evictions.changes(&mut changes);
        self.members.changes(&mut changes);
        self.namespaced_statuses(&mut changes)?;
        changes.deletes.retain(|p| !changes.writes.contains_key(p));
        let summary = self.summary();
        Ok(PassResult { changes, notes: self.notes, wake: self.wake, summary })
    }

    /// `statusReportingScope: NamespaceAccessible`: the placement's status
    /// again in its namespace's folder, written with the placement's document;
    /// such files of placements gone or back to ClusterScopeOnly are deleted.
    fn namespaced_statuses(&self, changes: &mut StatusChanges) -> Result<(), git2::Error> {
        let fs = self.fs;
        let existing = crate::status::nested_status_files(
            self.repo,
            fs.trusted_status(),
            &fs.status_root,
            PLACEMENT_STATUSES,
        )?;
        let mut wanted = BTreeSet::new();
        for p in fs.fleet.placements.values().filter(|p| self.owns(&p.name)) {
            let Some(ns) = &p.namespace_status else { continue };
            let file = format!("{ns}/{}.yaml", p.name);
            wanted.insert(file.clone());
            // (A split document may change only in its cluster files.)
            let bindings = format!("{}/{}/", crate::status::stored::BINDINGS, p.name);
            let written = changes.writes.contains_key(&format!("{PLACEMENTS}/{}.yaml", p.name))
                || changes
                    .writes
                    .range(bindings.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&bindings))
                || changes.deletes.range(bindings.clone()..).next().is_some_and(|k| k.starts_with(&bindings));
            if !written && existing.contains(&file) {
                continue;
            }
            let Some(doc) = self.placements.get(&p.name) else { continue };
            let text = placement::namespaced_status(doc, ns, self.now);
            changes.writes.insert(format!("{PLACEMENT_STATUSES}/{file}"), text.into_bytes());
        }
        for file in existing.difference(&wanted) {
            let placement = file.rsplit('/').next().and_then(|f| f.strip_suffix(".yaml")).unwrap_or_default();
            if self.owns(placement) {
                changes.deletes.insert(format!("{PLACEMENT_STATUSES}/{file}"));
            }
        }
        Ok(())
    }

    /// The fleet as this pass leaves it, for metrics.
    fn summary(&self) -> PassSummary {
        let fs = self.fs;
        let snapshot_index =
            fs.fleet.placements.keys().filter_map(|p| Some((p.clone(), fs.latest_index(p)?))).collect();
        let runs = self
            .runs
            .now
            .iter()
            .map(|(name, doc)| RunSummary {
                name: name.clone(),
                placement: doc.placement_name().unwrap_or_default().to_string(),
                state: doc.status.state(),
            })
            .collect();
        let clusters = fs.fleet.clusters.keys().map(|c| (c.clone(), !self.retries.is_failing(c))).collect();
        let mut drifted = BTreeMap::new();
        for (placement, doc) in &self.placements.now {
            for s in doc.status.placement_statuses.iter().filter(|s| !s.drifted_placements.is_empty()) {
                drifted.insert((placement.clone(), s.cluster_name.clone()), s.drifted_placements.len());
            }
        }
        let mut run_conditions = Vec::new();
        let mut cluster_updates = Vec::new();
        let mut measurements = Vec::new();
        for (name, doc) in &self.runs.now {
            for c in &doc.status.conditions {
                run_conditions.push((name.clone(), c.type_.clone(), c.status.clone()));
            }
            let before = self.runs.before(name);
            if before == Some(doc) {
                continue; // nothing new in this run
            }
            // Measurements are only ever appended: the ones past the count before are new.
            let placement = doc.placement_name().unwrap_or_default();
            for (i, stage) in doc.status.stages_status.iter().enumerate() {
                let old = before.and_then(|b| b.status.stages_status.get(i));
                let lists = [
                    (&stage.before_stage_task_status, old.map(|o| &o.before_stage_task_status)),
                    (&stage.after_stage_task_status, old.map(|o| &o.after_stage_task_status)),
                ];
                for (tasks, old_tasks) in lists {
                    for (t, task) in tasks.iter().enumerate() {
                        let seen = old_tasks.and_then(|o| o.get(t)).map_or(0, |o| o.measurements.len());
                        for m in task.measurements.iter().skip(seen) {
                            measurements.push((placement.to_string(), m.phase.clone()));
                        }
                    }
                }
            }
            // (stage, cluster) whose update had ended before this pass.
            let done_before: HashSet<(&str, &str)> = before
                .map(|b| b.status.stages_status.as_slice())
                .unwrap_or_default()
                .iter()
                .flat_map(|s| s.clusters.iter().map(move |c| (s, c)))
                .filter(|(_, c)| update_took(&c.conditions).is_some())
                .map(|(s, c)| (s.stage_name.as_str(), c.cluster_name.as_str()))
                .collect();
            for stage in &doc.status.stages_status {
                for cluster in &stage.clusters {
                    let Some(took) = update_took(&cluster.conditions) else { continue };
                    if !done_before.contains(&(stage.stage_name.as_str(), cluster.cluster_name.as_str())) {
                        cluster_updates.push((name.clone(), stage.stage_name.clone(), took));
                    }
                }
            }
        }
        let mut approval_waits = Vec::new();
        for (name, request) in &self.requests.now {
            let Some(accepted) = accepted_at(request) else { continue };
            if self.requests.before(name).and_then(accepted_at).is_none() {
                let waited = accepted.seconds_since(request.metadata.creation_timestamp);
                approval_waits.push(waited.max(0) as f64);
            }
        }
        PassSummary {
            snapshot_index,
            runs,
            clusters,
            drifted,
            run_conditions,
            cluster_updates,
            approval_waits,
            measurements,
        }
    }

    /// Status files someone else changed since gitfleet's own status commit:
    /// reported (log and commit message) and to be put back.
    fn foreign_changes(&mut self) -> Result<Vec<Foreign>, git2::Error> {
        let (Some(trusted), Some(tip)) = (self.fs.trusted, self.fs.status_commit) else {
            return Ok(Vec::new());
        };
        if matches!(trusted, Trusted::Unverified(_)) {
            return Ok(Vec::new());
        }
        let root = &self.fs.status_root;
        let foreign = trust::foreign_changes(self.repo, trusted.commit(), tip, root)?;
        if foreign.is_empty() {
            return Ok(foreign);
        }
        let by: Vec<String> = trust::foreign_commits(self.repo, trusted.commit(), tip, root)?
            .into_iter()
            .map(|(id, author)| format!("{id} by {author}"))
            .collect();
        let paths: Vec<String> = foreign.iter().map(|f| format!("{root}/{}", f.path)).collect();
        tracing::warn!(commits = %by.join(", "), "status written by someone else is ignored and put back: {}", paths.join(", "));
        let what = match paths.as_slice() {
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} and {} more", rest.len()),
            [] => unreachable!("not empty"),
        };
        let commits = if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) };
        self.notes.push(format!("restore {what} changed outside gitfleet{commits}"));
        Ok(foreign)
    }

    /// Whether this pass works on the placement (always, without `--shards`).
    pub(super) fn owns(&self, placement: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(placement))
    }

    /// Whether this replica writes a member cluster's status (with shards,
    /// spread like placements by `memberclusters/<name>`).
    pub(super) fn owns_member(&self, cluster: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(&format!("{MEMBERS}/{cluster}")))
    }

    /// Whether this pass may write the status file at `path` (relative to the
    /// status folder): with `--shards`, only files of its own placements, and
    /// files of no placement when it holds shard 0.
    fn writes_path(&self, path: &str) -> bool {
        let Some(shard) = self.shard else { return true };
        match self.placement_of_path(path) {
            Some(placement) => shard.owns(&placement),
            None => shard.owns_unplaced(),
        }
    }

    /// The placement a status file belongs to, if it belongs to one.
    fn placement_of_path(&self, path: &str) -> Option<String> {
        let (folder, key) = crate::status::scoped::key_of(path)?;
        let stem = key.as_str();
        match folder {
            crate::status::PLACEMENTS | crate::status::stored::BINDINGS => Some(stem.to_string()),
            crate::status::snapshots::FOLDER => {
                let (placement, index) = stem.strip_suffix("-snapshot")?.rsplit_once('-')?;
                index.parse::<u32>().ok().map(|_| placement.to_string())
            }
            RUNS => self.fs.run_placement(stem, &self.runs).map(str::to_string),
            REQUESTS => {
                let run = self.requests.now.get(stem)?.spec.parent_stage_rollout.as_str();
                self.fs.run_placement(run, &self.runs).map(str::to_string)
            }
            _ => None,
        }
    }

    /// Whether the placement's status document (or one of its cluster files)
    /// cannot be read; reported when it was read.
    pub(super) fn placement_unreadable(&self, placement: &str) -> bool {
        self.placements.broken.contains_key(placement)
    }

    /// The manifests of one snapshot, read from its commit once per pass.
    pub(super) fn content(
        &mut self,
        placement: &str,
        index: u32,
    ) -> Result<Arc<Vec<Arc<Manifest>>>, ContentError> {
        let commit = self
            .fs
            .snapshots
            .all
            .iter()
            .find(|s| s.placement == placement && s.index == index)
            .map(|s| s.commit.clone())
            .unwrap_or_default();
        let key = (placement.to_string(), index, commit);
        if let Some(c) = self.cache.get(&key) {
            return Ok(c.clone());
        }
        let manifests =
            Arc::new(self.fs.snapshot_manifests(self.repo, placement, index, &self.indexer.parsed)?);
        self.cache.insert(key, manifests.clone());
        Ok(manifests)
    }

    /// The generation of a gitfleet object (1 until its spec changed).
    pub(super) fn generation(&self, kind: &str, name: &str) -> i64 {
        self.indexer.history(kind, name).map_or(1, |h| h.generation as i64)
    }

    /// The clusters a placement picks in this pass: what it holds (the
    /// clusters its status lists) stays where the policy says so (a taint
    /// added since, PickN's choice).
    pub(super) fn scheduled(&mut self, p: &Placement) -> Arc<Schedule> {
        if let Some(s) = self.schedules.get(&p.name) {
            return s.clone();
        }
        let bound: HashSet<&str> = self
            .placements
            .get(&p.name)
            .map(|d| d.status.placement_statuses.iter().map(|s| s.cluster_name.as_str()).collect())
            .unwrap_or_default();
        let holds = |c: &str| bound.contains(c);
        let fleet = self.live_clusters.as_ref().unwrap_or(&self.fs.fleet.clusters);
        let s = match self.evicted.get(&p.name) {
            None => schedule_keeping(p, fleet, &holds),
            Some(evicted) => {
                let mut clusters = fleet.clone();
                clusters.retain(|name, _| !evicted.contains_key(name));
                let mut s = schedule_keeping(p, &clusters, &holds);
                for (cluster, eviction) in evicted {
                    let why = format!("evicted by ClusterResourcePlacementEviction {eviction}");
                    s.not_picked.push((cluster.clone(), why));
                }
                s
            }
        };
        let s = Arc::new(s);
        self.schedules.insert(p.name.clone(), s.clone());
        s
    }

    /// RollingUpdate: every scheduled cluster gets the latest snapshot, at most
    /// `maxUnavailable` at a time.
    fn rolling_update(&mut self, p: &Placement, max_unavailable: crate::repo::model::IntOrPercent) {
        let Some(latest) = self.fs.latest_index(&p.name) else { return };
        let sched = self.scheduled(p);
        let facts = self.facts.entry(p.name.clone()).or_default();
        let outdated: Vec<String> =
            sched.clusters.iter().filter(|c| !facts.up_to_date(c, latest, p.apply.type_)).cloned().collect();
        let batch = max_unavailable.resolve(sched.clusters.len());
        let rolled = rolling::roll(&outdated, batch, |cluster| {
            let observation = self.update_cluster(p, cluster, latest);
            if let crate::engine::Observation::Failed(e) = &observation {
                tracing::warn!(placement = %p.name, cluster = %cluster, "rolling update failed: {e}");
            }
            observation
        });
        if rolled.stop == RollingStop::Failed {
            self.notes.push(format!("{} rolling update stopped: a cluster failed", p.name));
        }
        for cluster in self.cleanup_clusters(&p.name, &sched.clusters) {
            if let crate::engine::Observation::Failed(e) = self.cleanup_cluster(&cluster, &p.name) {
                tracing::warn!(placement = %p.name, cluster = %cluster, "removing the placement's objects failed: {e}");
            }
        }
        if !rolled.updated.is_empty() {
            self.notes.push(format!(
                "{} rolled out snapshot {latest} to {} cluster(s)",
                p.name,
                rolled.updated.len()
            ));
        }
    }

    /// Builds the placement's status document from what this pass learned.
    fn placement_document(&mut self, p: &Placement) {
        let fs = self.fs;
        let selected = selected_manifests(&fs.fleet, &p.name)
            .iter()
            .map(|m| SelectedResource {
                group: m.key.group.clone(),
                kind: m.key.kind.clone(),
                name: m.key.name.clone(),
                namespace: m.key.namespace.clone(),
                version: crate::repo::scope::version_of(&m.api_version).to_string(),
            })
            .collect();
        let empty = PlacementFacts::default();
        let blocking = self.indexer.blocking(&p.name);
        let doc = placement::document(PlacementInput {
            placement: p,
            generation: self.generation("ClusterResourcePlacement", &p.name),
            schedule: &self.scheduled(p),
            latest_index: fs.latest_index(&p.name),
            selected,
            previous: self.placements.get(&p.name),
            facts: self.facts.get(&p.name).unwrap_or(&empty),
            blocking: &blocking,
            now: self.now,
        });
        self.placements.insert(p.name.clone(), doc);
    }
}
