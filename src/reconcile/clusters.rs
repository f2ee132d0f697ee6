//! Updating one cluster, checking clusters for drift (or, for ReportDiff
//! placements, for differences), and retrying unreachable clusters with backoff.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::{BackendError, FailedObject, ObjectDiff, SyncOptions, SyncReport};
use crate::engine::Observation;
use crate::render::{RenderError, RenderedObject, render};
use crate::repo::Fleet;
use crate::repo::model::{ApplyType, Manifest, ObjectKey, Placement, WhenToApply};
use crate::state::ContentError;
use crate::status::placement::{PlacementFacts, Waiting};
use crate::time::{Time, Wake};

use super::pass::Pass;

/// How often (seconds) a cluster whose objects are not available yet is looked at again.
pub const AVAILABILITY_POLL: i64 = 5;
/// Backoff for an unreachable cluster: 5 s, 10 s, 20 s, ... at most 2 min.
const BACKOFF_FIRST: i64 = 5;
const BACKOFF_MAX: i64 = 120;

/// An unreachable cluster and when to try it again.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub next_at: Time,
    pub message: String,
}

/// Unreachable clusters and when to try them again (outlives passes).
#[derive(Debug, Default)]
pub struct Retries(HashMap<String, Retry>);

impl Retries {
    /// `Some` while an unreachable cluster waits for its next attempt.
    pub fn backing_off(&self, cluster: &str, now: Time) -> Option<Retry> {
        self.0.get(cluster).filter(|r| now < r.next_at).cloned()
    }

    /// Records that a cluster could not be reached; returns when to try again.
    pub fn failed(&mut self, cluster: &str, error: &BackendError, now: Time) -> Retry {
        let r = self.0.entry(cluster.to_string()).or_insert(Retry {
            attempts: 0,
            next_at: now,
            message: String::new(),
        });
        r.attempts += 1;
        let delay = (BACKOFF_FIRST << (r.attempts - 1).min(10)).min(BACKOFF_MAX);
        r.next_at = now.plus_seconds(delay);
        r.message = error.to_string();
        let what = if error.answered() { "cluster refused" } else { "cluster unreachable" };
        match error {
            BackendError::Io { path, .. } => tracing::warn!(
                cluster, attempt = r.attempts, retry_in_s = delay, path = %path.display(), "{what}: {error}"
            ),
            _ => tracing::warn!(cluster, attempt = r.attempts, retry_in_s = delay, "{what}: {error}"),
        }
        r.clone()
    }

    /// Whether the cluster's last attempt failed.
    pub fn is_failing(&self, cluster: &str) -> bool {
        self.0.contains_key(cluster)
    }

    /// Why the cluster's last attempt failed, if it did.
    pub fn message(&self, cluster: &str) -> Option<&str> {
        self.0.get(cluster).map(|r| r.message.as_str())
    }

    /// Forgets a cluster that answered again.
    pub fn reached(&mut self, cluster: &str) {
        if self.0.remove(cluster).is_some() {
            tracing::info!(cluster, "cluster reachable again");
        }
    }
}

/// Why a cluster's objects could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("cluster {0} is not declared in the repository")]
    UnknownCluster(String),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Renders a snapshot's manifests for one cluster of the fleet: the
/// placement's overrides applied, gitfleet's ownership marks added.
pub fn render_for(
    fleet: &Fleet,
    p: &Placement,
    cluster: &str,
    manifests: &[Arc<Manifest>],
    index: u32,
) -> Result<Vec<RenderedObject>, DesiredError> {
    let member =
        fleet.clusters.get(cluster).ok_or_else(|| DesiredError::UnknownCluster(cluster.to_string()))?;
    let overrides: Vec<_> =
        fleet.overrides.values().filter(|o| o.placement.as_deref().is_none_or(|n| n == p.name)).collect();
    Ok(render(manifests, &overrides, member, &p.name, index)?)
}

impl Pass<'_> {
    /// The objects a snapshot of a placement puts on one cluster.
    pub(super) fn desired_for(
        &mut self,
        p: &Placement,
        cluster: &str,
        index: u32,
    ) -> Result<Vec<RenderedObject>, DesiredError> {
        let manifests = self.content(&p.name, index)?;
        render_for(&self.fs.fleet, p, cluster, &manifests, index)
    }

    fn backing_off(&self, cluster: &str) -> Option<Retry> {
        self.retries.backing_off(cluster, self.now)
    }

    fn unreachable(&mut self, cluster: &str, error: &BackendError) -> Retry {
        self.retries.failed(cluster, error, self.now)
    }

    fn facts(&mut self, placement: &str) -> &mut PlacementFacts {
        self.facts.entry(placement.to_string()).or_default()
    }

    /// The cluster waits for its next attempt; the pass wakes up then.
    fn waiting_unreachable(&mut self, placement: &str, cluster: &str, r: &Retry) -> Observation {
        self.wake.add(Wake::at(r.next_at));
        let message =
            format!("cluster unreachable ({} attempts, next at {}): {}", r.attempts, r.next_at, r.message);
        self.facts(placement).waiting.insert(cluster.to_string(), Waiting::Unreachable(message.clone()));
        Observation::Pending(message)
    }

    /// Notes, before objects of a placement are applied to a cluster, that the
    /// cluster may hold them (see `cleanup_clusters`).
    fn may_hold(&mut self, placement: &str, cluster: &str) {
        if let Some(holders) = self.holders.get_mut(placement) {
            holders.insert(cluster.to_string());
        }
    }

    /// Removes a placement's objects from a cluster it no longer schedules.
    pub(super) fn cleanup_cluster(&mut self, cluster: &str, placement: &str) -> Observation {
        if let Some(r) = self.backing_off(cluster) {
            self.wake.add(Wake::at(r.next_at));
            return Observation::Pending(format!("cluster unreachable: {}", r.message));
        }
        match self.backend.sync(cluster, placement, &[], &SyncOptions::default()) {
            Ok(r) if r.failed.is_empty() => {
                self.retries.reached(cluster);
                if let Some(holders) = self.holders.get_mut(placement) {
                    holders.remove(cluster);
                }
                Observation::Succeeded
            }
            Ok(r) => Observation::Failed(r.failed[0].message.clone()),
            Err(e) => {
                let r = self.unreachable(cluster, &e);
                self.wake.add(Wake::at(r.next_at));
                Observation::Pending(format!("cluster unreachable: {}", r.message))
            }
        }
    }

    /// Removes a placement's objects from a cluster it still schedules (a
    /// rollback of a cluster that held none of them before the run).
    pub(super) fn remove_from(&mut self, cluster: &str, placement: &str) -> Observation {
        let observation = self.cleanup_cluster(cluster, placement);
        if observation == Observation::Succeeded {
            let facts = self.facts(placement);
            facts.observed.remove(cluster);
            facts.removed.insert(cluster.to_string());
        }
        observation
    }

    /// Applies a snapshot of a placement to one cluster (or, for ReportDiff,
    /// only reports how the cluster differs from it).
    pub(super) fn update_cluster(&mut self, p: &Placement, cluster: &str, index: u32) -> Observation {
        if let Some(r) = self.backing_off(cluster) {
            return self.waiting_unreachable(&p.name, cluster, &r);
        }
        let desired = match self.desired_for(p, cluster, index) {
            Ok(d) => d,
            Err(e) => return Observation::Failed(e.to_string()),
        };
        if p.apply.type_ == ApplyType::ReportDiff {
            return match self.backend.diff(cluster, &desired) {
                Ok(diffs) => {
                    self.retries.reached(cluster);
                    tracing::info!(placement = %p.name, cluster, snapshot = index, differences = diffs.len(), "diff reported");
                    let facts = self.facts(&p.name);
                    facts.observed.insert(cluster.to_string(), index);
                    facts.diffs.insert(cluster.to_string(), diffs);
                    Observation::Succeeded
                }
                Err(e) => {
                    let r = self.unreachable(cluster, &e);
                    self.waiting_unreachable(&p.name, cluster, &r)
                }
            };
        }
        let mut options = SyncOptions::of(&p.apply);
        let refused = match self.leave_drifted(p, cluster, &mut options) {
            Ok(refused) => refused,
            Err(e) => {
                let r = self.unreachable(cluster, &e);
                return self.waiting_unreachable(&p.name, cluster, &r);
            }
        };
        self.may_hold(&p.name, cluster);
        let result = self.backend.sync(cluster, &p.name, &desired, &options).map(|mut r| {
            r.failed.extend(refused);
            r
        });
        match &result {
            Ok(r) if r.failed.is_empty() => tracing::info!(
                placement = %p.name, cluster, snapshot = index, backend = self.backend.kind(),
                applied = r.applied, unchanged = r.unchanged, pruned = r.pruned, "cluster updated"
            ),
            Ok(r) => {
                tracing::warn!(placement = %p.name, cluster, failed = r.failed.len(), "cluster update failed: {}", r.failed[0].message)
            }
            Err(_) => {}
        }
        self.record(&p.name, cluster, index, result)
    }

    /// `whenToApply: IfNotDrifted`: objects changed on the cluster since gitfleet
    /// applied them are left alone and reported as failed (deleted ones are
    /// applied again: there is no change of the member's to keep).
    fn leave_drifted(
        &mut self,
        p: &Placement,
        cluster: &str,
        options: &mut SyncOptions,
    ) -> Result<Vec<FailedObject>, BackendError> {
        let held = self.facts(&p.name).held(cluster);
        let Some(held) = held.filter(|_| p.apply.when_to_apply == WhenToApply::IfNotDrifted) else {
            return Ok(Vec::new());
        };
        let held_desired = self.desired_for(p, cluster, held).unwrap_or_default();
        let mut drifted = self.drifted(p, cluster, &held_desired)?;
        drifted.retain(|d| d.on_cluster);
        let mut refused = Vec::new();
        for d in &drifted {
            options.leave.insert(d.key.clone());
            let paths: Vec<&str> = d.fields.iter().map(|f| f.path.as_str()).collect();
            let message = format!(
                "Failed to apply manifest: {} has drifted on the cluster ({}) and whenToApply is IfNotDrifted",
                d.key,
                paths.join(", ")
            );
            refused.push(FailedObject {
                key: d.key.clone(),
                api_version: d.api_version.clone(),
                envelope: d.envelope.clone(),
                message,
            });
        }
        self.facts(&p.name).drifts.insert(cluster.to_string(), drifted);
        Ok(refused)
    }

    /// Records what a sync did in the placement's facts.
    fn record(
        &mut self,
        placement: &str,
        cluster: &str,
        index: u32,
        result: Result<SyncReport, BackendError>,
    ) -> Observation {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                let retry = self.unreachable(cluster, &e);
                return self.waiting_unreachable(placement, cluster, &retry);
            }
        };
        self.retries.reached(cluster);
        let now = self.now;
        let facts = self.facts(placement);
        // The cluster holds this snapshot now, as far as it could be applied.
        facts.observed.insert(cluster.to_string(), index);
        facts.removed.remove(cluster);
        facts.drifts.entry(cluster.to_string()).or_default();
        if !r.failed.is_empty() {
            let first = r.failed[0].message.clone();
            let n = r.failed.len();
            facts.failures.insert(cluster.to_string(), r.failed);
            return Observation::Failed(if n > 1 { format!("{first} (and {} more)", n - 1) } else { first });
        }
        facts.failures.insert(cluster.to_string(), Vec::new());
        if let Some(first) = r.pending.first() {
            let n = r.pending.len();
            let message = if n > 1 { format!("{first} (and {} more)", n - 1) } else { first.clone() };
            tracing::info!(cluster, "waiting for availability: {message}");
            facts.waiting.insert(cluster.to_string(), Waiting::NotAvailable(message.clone()));
            self.wake.add(Wake::at(now.plus_seconds(AVAILABILITY_POLL)));
            return Observation::Pending(message);
        }
        facts.available.insert(cluster.to_string());
        Observation::Succeeded
    }

    /// Objects of this placement that changed on the cluster since gitfleet
    /// applied there the snapshot it holds (rendered as `held`), or that were
    /// deleted there.
    fn drifted(
        &mut self,
        p: &Placement,
        cluster: &str,
        held: &[RenderedObject],
    ) -> Result<Vec<ObjectDiff>, BackendError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let diffs = self.backend.diff(cluster, held)?;
        let facts = self.facts(&p.name);
        Ok(diffs
            .into_iter()
            // An object missing from a cluster that holds the snapshot was deleted behind
            // gitfleet's back (it applied it); one owned by someone else is not its own.
            .filter(|d| !d.on_cluster || d.live_owner.as_deref() == Some(p.name.as_str()))
            // Objects that failed to apply differ because they never got this
            // snapshot: that is in failedPlacements already, not drift.
            .filter(|d| !facts.failed_before(cluster, &d.key))
            .collect())
    }

    /// For every cluster this pass did not update: ReportDiff placements get
    /// their differences reported again; others are checked for drift, which
    /// is corrected unless `whenToApply: IfNotDrifted`. Objects deleted on the
    /// cluster are created again in both cases (like a new snapshot would).
    pub(super) fn check_clusters(&mut self, p: &Placement) {
        let scheduled = self.scheduled(p);
        for cluster in &scheduled.clusters {
            if self.facts(&p.name).touched(cluster) || self.backing_off(cluster).is_some() {
                continue;
            }
            let Some(held) = self.facts(&p.name).held(cluster) else { continue };
            match p.apply.type_ {
                ApplyType::ReportDiff => self.report_again(p, cluster, held),
                ApplyType::ServerSideApply => self.check_drift(p, cluster, held),
            }
        }
    }

    /// ReportDiff: how the cluster differs from the snapshot it was compared with.
    fn report_again(&mut self, p: &Placement, cluster: &str, held: u32) {
        let Ok(desired) = self.desired_for(p, cluster, held) else { return };
        match self.backend.diff(cluster, &desired) {
            Ok(d) => {
                self.retries.reached(cluster);
                self.facts(&p.name).diffs.insert(cluster.to_string(), d);
            }
            Err(e) => {
                self.unreachable(cluster, &e);
            }
        }
    }

    /// Drift of the snapshot a cluster holds: reported, and corrected or left.
    fn check_drift(&mut self, p: &Placement, cluster: &str, held: u32) {
        let desired = match self.desired_for(p, cluster, held) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(placement = %p.name, %cluster, "drift check skipped: {e}");
                return;
            }
        };
        let drifted = match self.drifted(p, cluster, &desired) {
            Ok(d) => {
                self.retries.reached(cluster);
                d
            }
            Err(e) => {
                self.unreachable(cluster, &e);
                return;
            }
        };
        if !drifted.is_empty() {
            if p.apply.when_to_apply == WhenToApply::IfNotDrifted {
                self.leave_drift(p, cluster, &desired, &drifted);
            } else {
                let what: Vec<String> = drifted.iter().map(describe_drift).collect();
                tracing::warn!(placement = %p.name, %cluster, "correcting drift: {}", what.join("; "));
                self.notes.push(format!("{} corrected drift on {cluster}: {}", p.name, what.join("; ")));
                self.update_cluster(p, cluster, held);
            }
        }
        // What was found stays reported for this pass; the next check clears it.
        self.facts(&p.name).drifts.insert(cluster.to_string(), drifted);
    }

    /// `whenToApply: IfNotDrifted`: edited objects stay as they are (reported),
    /// deleted ones are created again.
    fn leave_drift(
        &mut self,
        p: &Placement,
        cluster: &str,
        desired: &[RenderedObject],
        drifted: &[ObjectDiff],
    ) {
        let (changed, deleted): (Vec<&ObjectDiff>, Vec<&ObjectDiff>) =
            drifted.iter().partition(|d| d.on_cluster);
        if !changed.is_empty() {
            let what: Vec<String> = changed.iter().map(|d| describe_drift(d)).collect();
            tracing::warn!(placement = %p.name, %cluster, "drift left as it is (whenToApply: IfNotDrifted): {}", what.join("; "));
            self.notes.push(format!("{} drifted on {cluster}: {}", p.name, what.join("; ")));
        }
        if !deleted.is_empty() {
            let keys: Vec<&ObjectKey> = deleted.iter().map(|d| &d.key).collect();
            if self.recreate(p, cluster, desired, &keys) {
                let what: Vec<String> = deleted.iter().map(|d| describe_drift(d)).collect();
                tracing::warn!(placement = %p.name, %cluster, "created again: {}", what.join("; "));
                self.notes.push(format!("{} re-created on {cluster}: {}", p.name, what.join("; ")));
            }
        }
    }

    /// Applies again the objects of the snapshot a cluster holds (`desired`) that
    /// were deleted there, leaving every other object as it is; true when that worked.
    fn recreate(
        &mut self,
        p: &Placement,
        cluster: &str,
        desired: &[RenderedObject],
        deleted: &[&ObjectKey],
    ) -> bool {
        let mut options = SyncOptions::of(&p.apply);
        options.leave = desired.iter().map(|o| &o.key).filter(|k| !deleted.contains(k)).cloned().collect();
        self.may_hold(&p.name, cluster);
        match self.backend.sync(cluster, &p.name, desired, &options) {
            Ok(r) if r.failed.is_empty() => true,
            Ok(r) => {
                tracing::warn!(placement = %p.name, cluster, "creating again failed: {}", r.failed[0].message);
                false
            }
            Err(e) => {
                self.unreachable(cluster, &e);
                false
            }
        }
    }
}

/// How a drifted object is named in logs and commit messages.
fn describe_drift(d: &ObjectDiff) -> String {
    if !d.on_cluster {
        return format!("{} (deleted on the cluster)", d.key);
    }
    let paths: Vec<&str> = d.fields.iter().map(|f| f.path.as_str()).collect();
    format!("{} ({})", d.key, paths.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(cluster: &str) -> BackendError {
        BackendError::Unreachable { cluster: cluster.into(), message: "connection refused".into() }
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_two_minutes() {
        let mut retries = Retries::default();
        let t0 = Time::from_second(1_000);
        let delays: Vec<i64> =
            (0..7).map(|_| retries.failed("edge", &lost("edge"), t0).next_at.seconds_since(t0)).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120]);
        let r = retries.backing_off("edge", t0 + 119).expect("still waiting");
        assert_eq!((r.attempts, r.message.as_str()), (7, "cluster edge: connection refused"));
        assert!(retries.backing_off("edge", t0 + 120).is_none(), "due: try again");
        assert!(retries.backing_off("member1", t0).is_none(), "others are not held");
    }

    #[test]
    fn a_cluster_that_answers_starts_over() {
        let mut retries = Retries::default();
        let t0 = Time::from_second(1_000);
        retries.failed("edge", &lost("edge"), t0);
        retries.failed("edge", &lost("edge"), t0);
        retries.reached("edge");
        assert!(retries.backing_off("edge", t0).is_none());
        assert_eq!(retries.failed("edge", &lost("edge"), t0).next_at, t0 + 5, "first delay again");
    }
}
