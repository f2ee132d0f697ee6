//! The reconciler: what outlives passes (gitfleet's clone, the snapshot index,
//! the cluster backend, unreachable clusters' backoff), and one pass at a time
//! ([`pass`]): fetch, index snapshots, accept approvals, advance every run
//! through the engine (applying to clusters as it asks), roll out RollingUpdate
//! placements, check for drift, and commit all status changes in one commit.

mod approvals;
mod auto_runs;
mod clusters;
mod evictions;
mod members;
mod pass;
mod runs;

pub use clusters::{DesiredError, render_for};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use git2::Oid;

use crate::cluster::Backend;
use crate::snapshot::Indexer;
use crate::state::{FleetState, StateError};
use crate::status::sign::Signers;
use crate::status::trust::{OwnCommits, Trusted};
use crate::status::{Identity, StateRepo, StatusError};
use crate::time::{Time, Wake};
use clusters::Retries;

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
    #[error("record the status commit in the state folder: {0}")]
    Record(#[source] std::io::Error),
}

impl ReconcileError {
    /// Whether a later pass may succeed where this one failed. Only a refusal
    /// that needs a person is permanent (the tracked branch is checked out in a
    /// local work tree); the network, a lost push race, a branch not pushed
    /// yet, a busy disk may all pass.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Status(e) | ReconcileError::State(StateError::StatusBranch(e)) => {
                e.is_retryable()
            }
            ReconcileError::NoBranch { .. } | ReconcileError::State(_) | ReconcileError::Git(_) => true,
            // The state folder cannot be written: gitfleet would forget which status is its own.
            ReconcileError::Record(_) => false,
        }
    }

    /// A name for the kind of failure (a metrics label).
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::NoBranch { .. } => "no_branch",
            ReconcileError::Status(StatusError::Fetch { .. }) => "fetch",
            ReconcileError::Status(StatusError::Refused { .. }) => "push_rejected",
            ReconcileError::Status(_) => "push",
            ReconcileError::State(_) => "index",
            ReconcileError::Git(_) => "git",
            ReconcileError::Record(_) => "state_dir",
        }
    }
}

/// One staged update run as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub name: String,
    pub placement: String,
    /// Initializing, Progressing, Waiting, Stopped, Succeeded, Failed,
    /// RolledBack or Superseded.
    pub state: &'static str,
}

/// What the fleet looks like after a pass, for metrics: names and numbers only.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassSummary {
    /// Placement -> its latest resource snapshot index.
    pub snapshot_index: BTreeMap<String, u32>,
    pub runs: Vec<RunSummary>,
    /// Member cluster -> whether it answered at its last attempt.
    pub clusters: BTreeMap<String, bool>,
    /// (placement, cluster) -> objects found drifted at the last check.
    pub drifted: BTreeMap<(String, String), usize>,
    /// Conditions of every run: (run, type, status).
    pub run_conditions: Vec<(String, String, String)>,
    /// Clusters whose update finished in this pass: (run, stage, seconds from
    /// the update's start to its success).
    pub cluster_updates: Vec<(String, String, f64)>,
    /// Approvals accepted in this pass: seconds from the request to acceptance.
    pub approval_waits: Vec<f64>,
    /// Verification measurements taken in this pass: (placement, phase).
    pub measurements: Vec<(String, String)>,
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub struct PassOutcome {
    /// The status commit pushed, if anything changed.
    pub commit: Option<Oid>,
    pub message: String,
    pub new_snapshots: Vec<String>,
    /// When time alone will change something next.
    pub wake: Wake,
    /// The fleet after the pass, for metrics.
    pub summary: PassSummary,
    /// The status gitfleet believed when the pass started (notifications
    /// tell what changed from it), and the status folder.
    pub status_from: Option<Oid>,
    pub status_root: String,
}

/// The reconciler: gitfleet's clone, its snapshot index and the cluster backend.
pub struct Reconciler {
    state: StateRepo,
    indexer: Indexer,
    backend: Box<dyn Backend>,
    repo_location: String,
    branch: String,
    root: Option<String>,
    identity: Identity,
    /// Clusters whose backend was already announced in the log.
    announced: BTreeSet<String>,
    retries: Retries,
    /// The status commits gitfleet pushed; without a record, status is not verified.
    own: Option<OwnCommits>,
    /// Who may sign approvals; without it, approvals are not verified.
    signers: Option<Signers>,
    /// Where the snapshot index is saved between runs, and the tip saved last.
    saved_index: Option<(PathBuf, Option<Oid>)>,
    /// How long the last fetch took (taken by the metrics).
    last_fetch: Option<std::time::Duration>,
    /// Status files parsed in the previous pass.
    status_cache: crate::status::StatusCaches,
    /// Snapshot contents read by earlier passes.
    contents: pass::ContentCache,
    /// With `--shards`: the placements the next pass works on.
    shard: Option<crate::shard::ShardFilter>,
    /// Placement -> clusters that may hold its objects.
    holders: pass::Holders,
    /// The tracked branch's tip as the last pass left it (its own status
    /// commit, when it pushed one there).
    settled_tip: Option<Oid>,
    /// Takes the Verification tasks' measurements.
    prober: crate::verify::probe::LazyProber,
    /// What each member cluster said about itself last.
    contacts: members::Contacts,
}

/// Builds a [`Reconciler`]: the clone and the backend are required, the rest
/// has defaults (branch `main`, the whole tree, gitfleet's identity).
pub struct ReconcilerBuilder {
    state: StateRepo,
    backend: Box<dyn Backend>,
    repo_location: String,
    branch: String,
    root: Option<String>,
    identity: Identity,
    own: Option<OwnCommits>,
    signers: Option<Signers>,
    saved_index: Option<PathBuf>,
    probe: crate::verify::probe::ProbeConfig,
}

impl ReconcilerBuilder {
    /// Save the snapshot index to `path` after each pass that moved it, and
    /// start from it: a restart then reads the tip, not the whole history.
    pub fn saved_index(mut self, path: PathBuf) -> Self {
        self.saved_index = Some(path);
        self
    }

    /// Accept approvals only from commits signed by these keys.
    pub fn allowed_signers(mut self, signers: Option<Signers>) -> Self {
        self.signers = signers;
        self
    }

    /// The record of gitfleet's own status commits (see [`crate::status::trust`]):
    /// status is then read only from those commits.
    pub fn own_commits(mut self, own: OwnCommits) -> Self {
        self.own = Some(own);
        self
    }

    /// How Verification tasks reach their providers (`--prometheus-url`).
    pub fn probe(mut self, probe: crate::verify::probe::ProbeConfig) -> Self {
        self.probe = probe;
        self
    }

    /// The tracked branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = branch.into();
        self
    }

    /// The tracked sub-folder (monorepos).
    pub fn root(mut self, root: Option<String>) -> Self {
        self.root = root;
        self
    }

    /// Who status commits are from.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    pub fn build(self) -> Reconciler {
        let source = index_source(&self.repo_location, &self.branch, self.root.as_deref());
        let indexer = match &self.saved_index {
            None => Indexer::new(self.root.as_deref()),
            Some(path) => match Indexer::load(self.state.repo(), path, self.root.as_deref(), &source) {
                Ok(ix) => {
                    tracing::info!(
                        path = %path.display(),
                        commits = ix.commits_indexed(),
                        "snapshot index loaded; only new commits are read"
                    );
                    ix
                }
                Err(e) => {
                    tracing::warn!("snapshot index {}: {e}; indexing the history again", path.display());
                    Indexer::new(self.root.as_deref())
                }
            },
        };
        let saved_tip = indexer.tip();
        Reconciler {
            indexer,
            saved_index: self.saved_index.map(|p| (p, saved_tip)),
            last_fetch: None,
            status_cache: Default::default(),
            contents: Default::default(),
            shard: None,
            holders: Default::default(),
            settled_tip: None,
            prober: crate::verify::probe::LazyProber::new(self.probe),
            contacts: Default::default(),
            state: self.state,
            backend: self.backend,
            repo_location: self.repo_location,
            branch: self.branch,
            root: self.root,
            identity: self.identity,
            announced: BTreeSet::new(),
            retries: Retries::default(),
            own: self.own,
            signers: self.signers,
        }
    }
}

impl Reconciler {
    /// With `--shards`: the next passes work only on the placements of these
    /// shards (and write only their status).
    pub fn set_shards(&mut self, shard: Option<crate::shard::ShardFilter>) {
        if self.shard != shard {
            // Another replica may have placed objects meanwhile: ask every cluster again.
            self.holders.clear();
        }
        self.shard = shard;
    }

    /// A builder for a reconciler of `repo_location` (as given by the user,
    /// for messages), cloned in `state`, applying through `backend`.
    pub fn builder(
        state: StateRepo,
        backend: Box<dyn Backend>,
        repo_location: impl Into<String>,
    ) -> ReconcilerBuilder {
        ReconcilerBuilder {
            state,
            backend,
            repo_location: repo_location.into(),
            branch: "main".into(),
            root: None,
            identity: Identity::default(),
            own: None,
            signers: None,
            saved_index: None,
            probe: Default::default(),
        }
    }

    /// Saves the snapshot index when the pass moved it (after the pass's
    /// work: it only speeds up a restart).
    fn save_index(&mut self) {
        if let Some((path, saved)) = &mut self.saved_index
            && *saved != self.indexer.tip()
        {
            let source = index_source(&self.repo_location, &self.branch, self.root.as_deref());
            let started = std::time::Instant::now();
            let saved_now = self.indexer.save(path, &source);
            tracing::debug!(ms = started.elapsed().as_secs_f64() * 1000.0, "snapshot index saved");
            match saved_now {
                Ok(()) => *saved = self.indexer.tip(),
                // The next pass tries again; a restart without it only costs time.
                Err(e) => tracing::warn!("cannot save the snapshot index to {}: {e}", path.display()),
            }
        }
    }

    /// The tracked branch's tip as the last pass left it: a change of the
    /// watched repository that leaves it there (gitfleet's own push) needs no pass.
    pub fn settled_tip(&self) -> Option<Oid> {
        self.settled_tip
    }

    /// gitfleet's clone of the fleet repository.
    pub fn repo(&self) -> &git2::Repository {
        self.state.repo()
    }

    /// How long the last pass's fetch took, once.
    pub fn take_fetch_duration(&mut self) -> Option<std::time::Duration> {
        self.last_fetch.take()
    }

    /// One pass at time `now`.
    pub fn pass(&mut self, now: impl Into<Time>) -> Result<PassOutcome, ReconcileError> {
        let outcome = self.pass_inner(now.into());
        self.save_index();
        self.maintain_clone();
        outcome
    }

    /// Repacks the clone when fetches and status commits left too many
    /// files in it (see [`crate::status::repack`]); after the pass's work.
    fn maintain_clone(&mut self) {
        let started = std::time::Instant::now();
        match self.state.repack_if_needed() {
            Ok(Some(r)) => tracing::info!(
                packs = r.packs_before,
                loose = r.loose_before,
                objects = r.objects,
                ms = started.elapsed().as_millis() as u64,
                "state clone repacked into one pack"
            ),
            Ok(None) => {}
            // Only slower lookups until the next try.
            Err(e) => tracing::warn!("cannot repack the state clone: {e}"),
        }
    }

    fn pass_inner(&mut self, now: Time) -> Result<PassOutcome, ReconcileError> {
        let t0 = std::time::Instant::now();
        let fs = self.load()?;
        let t_load = t0.elapsed();
        let repo = self.state.repo();
        let outside = pass::Outside {
            repo,
            indexer: &self.indexer,
            backend: self.backend.as_ref(),
            retries: &mut self.retries,
            signers: self.signers.as_ref(),
            cache: &mut self.status_cache,
            contents: &mut self.contents,
            shard: self.shard.as_ref(),
            holders: &mut self.holders,
            prober: &self.prober,
            contacts: &mut self.contacts,
        };
        let started = pass::Pass::start(outside, &fs, now)?;
        let t_start = t0.elapsed();
        let result = started.run()?;
        tracing::debug!(
            load_ms = t_load.as_secs_f64() * 1000.0,
            fetch_ms = self.last_fetch.map(|f| f.as_secs_f64() * 1000.0),
            read_status_ms = (t_start - t_load).as_secs_f64() * 1000.0,
            work_ms = (t0.elapsed() - t_start).as_secs_f64() * 1000.0,
            "pass phases"
        );
        let new_snapshots: Vec<String> = fs
            .snapshots
            .all
            .iter()
            .filter(|s| !fs.recorded.iter().any(|r| r.placement == s.placement && r.index == s.index))
            .map(|s| s.name())
            .collect();
        self.settled_tip = Some(fs.tip);
        if result.changes.is_empty() {
            // Believed once (nothing to verify by yet): from now on the status is checked against it.
            if let (Some(Trusted::Unverified(c)), Some(own)) = (fs.trusted, self.own.as_mut()) {
                own.record(c).map_err(ReconcileError::Record)?;
            }
            return Ok(PassOutcome {
                wake: result.wake,
                summary: result.summary,
                status_from: fs.trusted_status(),
                status_root: fs.status_root.clone(),
                ..PassOutcome::default()
            });
        }
        let message = summary(&new_snapshots, &result.notes);
        let status_branch = fs.loaded.settings.status_branch.clone().unwrap_or_else(|| self.branch.clone());
        let commit = self.state.publish(
            &status_branch,
            fs.status_commit,
            &fs.status_root,
            &result.changes,
            &message,
            &self.identity,
        )?;
        if let (Some(c), Some(own)) = (commit, self.own.as_mut()) {
            own.record(c).map_err(ReconcileError::Record)?;
        }
        if status_branch == self.branch && commit.is_some() {
            self.settled_tip = commit;
        }
        Ok(PassOutcome {
            commit,
            message,
            new_snapshots,
            wake: result.wake,
            summary: result.summary,
            status_from: fs.trusted_status(),
            status_root: fs.status_root.clone(),
        })
    }

    /// Fetches the tracked branch and reads the fleet at its tip, reporting
    /// what cannot be snapshotted and announcing new member clusters.
    fn load(&mut self) -> Result<FleetState, ReconcileError> {
        let started = std::time::Instant::now();
        let fetched = self.state.fetch(&self.branch);
        self.last_fetch = Some(started.elapsed());
        let tip = fetched?.ok_or_else(|| ReconcileError::NoBranch {
            repo: self.repo_location.clone(),
            branch: self.branch.clone(),
        })?;
        let blocked_before = self.indexer.blocked.len();
        let state = &self.state;
        let own = self.own.as_ref();
        let fs = FleetState::load(
            state.repo(),
            tip,
            self.root.as_deref(),
            &mut self.indexer,
            |b| state.fetch(b),
            own,
        )?;
        // After a rebuild (rewritten history) the list starts over.
        for b in self.indexer.blocked.get(blocked_before..).unwrap_or_default() {
            for issue in &b.issues {
                tracing::warn!(placement = %b.placement, commit = %b.commit, "no snapshot: {issue}");
            }
        }
        for w in &fs.snapshots.warnings {
            tracing::warn!("{w}");
        }
        let mut new = Vec::new();
        for (name, cluster) in &fs.fleet.clusters {
            self.backend.declare(cluster);
            if self.announced.insert(name.clone()) {
                new.push(name.as_str());
            }
        }
        // One line per new cluster, or one line for many.
        match new.as_slice() {
            few if few.len() <= 20 => few.iter().for_each(
                |name| tracing::info!(cluster = %name, backend = self.backend.kind(), "member cluster"),
            ),
            many => tracing::info!(
                count = many.len(),
                backend = self.backend.kind(),
                "member clusters {} ... {}",
                many[0],
                many[many.len() - 1]
            ),
        }
        Ok(fs)
    }
}

/// What a saved index is of: the repository, branch and folder.
fn index_source(repo: &str, branch: &str, root: Option<&str>) -> String {
    format!("{repo} branch {branch} folder {}", root.unwrap_or("/"))
}

/// The longest subject line of a status commit, about a hundred characters
/// (the rest goes to the body; the walkthrough's longest subject is 102).
const SUBJECT_CHARS: usize = 110;
/// Cluster names a commit body lists per run before counting the rest.
const BODY_NAMES: usize = 30;

/// A number with thousands separators: 9,900.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "r updated a, b, c", or for more clusters "r updated 9,900 clusters (c00100 ... c09999)"
/// followed by a body line listing the first ones and the count of the rest.
pub(super) fn updated_note(run: &str, clusters: &[String]) -> String {
    if clusters.len() <= 3 {
        return format!("{run} updated {}", clusters.join(", "));
    }
    let first = &clusters[0];
    let last = &clusters[clusters.len() - 1];
    let shown: Vec<&str> = clusters.iter().take(BODY_NAMES).map(String::as_str).collect();
    let rest = clusters.len().saturating_sub(BODY_NAMES);
    let more = if rest > 0 { format!(" and {} more", count(rest)) } else { String::new() };
    format!(
        "{run} updated {} clusters ({first} ... {last})\n{run} updated {}{more}",
        count(clusters.len()),
        shown.join(", ")
    )
}

/// The commit message of a pass: a subject line of at most about
/// [`SUBJECT_CHARS`] characters, then the details in the body.
fn summary(new: &[String], notes: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut body: Vec<String> = Vec::new();
    if !new.is_empty() {
        let shown: Vec<&str> = new.iter().take(3).map(String::as_str).collect();
        let more = if new.len() > 3 { format!(" and {} more", count(new.len() - 3)) } else { String::new() };
        parts.push(format!("record {}{more}", shown.join(", ")));
    }
    for note in notes {
        let mut lines = note.lines();
        parts.extend(lines.next().map(str::to_string));
        body.extend(lines.map(str::to_string));
    }
    if parts.is_empty() {
        parts.push("update status".into());
    }
    let mut subject = String::from("gitfleet: ");
    for (i, part) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        if i > 0 && subject.len() + sep.len() + part.len() > SUBJECT_CHARS {
            subject.push_str(&format!("; and {} more", parts.len() - i));
            body.splice(0..0, parts[i..].iter().cloned());
            break;
        }
        subject.push_str(sep);
        subject.push_str(part);
    }
    if body.is_empty() { subject } else { format!("{subject}\n\n{}", body.join("\n")) }
}

#[cfg(test)]
mod tests {
    use super::{SUBJECT_CHARS, summary, updated_note};

    #[test]
    fn summary_names_three_snapshots_and_notes_up_to_about_a_hundred_characters() {
        let new: Vec<String> = (0..5).map(|i| format!("p-{i}-snapshot")).collect();
        let notes: Vec<String> = (0..6).map(|i| format!("note {i}")).collect();
        assert_eq!(
            summary(&new, &notes),
            "gitfleet: record p-0-snapshot, p-1-snapshot, p-2-snapshot and 2 more; note 0; note 1; note 2; note 3; note 4; and 1 more\n\nnote 5"
        );
        assert_eq!(summary(&[], &[]), "gitfleet: update status");
    }

    #[test]
    fn ten_thousand_clusters_make_a_readable_message() {
        let clusters: Vec<String> = (0..9_900).map(|i| format!("c{:05}", i + 100)).collect();
        let message =
            summary(&["app-1-snapshot".into()], &[updated_note("r", &clusters), "r succeeded".into()]);
        let mut lines = message.lines();
        let subject = lines.next().unwrap();
        assert_eq!(
            subject,
            "gitfleet: record app-1-snapshot; r updated 9,900 clusters (c00100 ... c09999); r succeeded"
        );
        assert!(subject.len() <= SUBJECT_CHARS);
        let body: Vec<&str> = lines.collect();
        assert_eq!(body[0], "");
        assert!(
            body[1].starts_with("r updated c00100, c00101,") && body[1].ends_with("c00129 and 9,870 more"),
            "{}",
            body[1]
        );
        assert!(message.len() < 1_000);
        assert_eq!(updated_note("r", &["a".into(), "b".into()]), "r updated a, b");
    }
}
