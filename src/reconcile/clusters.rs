//! Updating one cluster, checking clusters for drift (or, for ReportDiff
//! placements, for differences), and retrying unreachable clusters with backoff.

use crate::cluster::{BackendError, FailedObject, ObjectDiff, SyncOptions, SyncReport};
use crate::engine::Observation;
use crate::render::{RenderedObject, render};
use std::sync::Arc;

use crate::repo::Fleet;
use crate::repo::model::{ApplyType, Manifest, ObjectKey, Placement, WhenToApply};
use crate::schedule::schedule;
use crate::state::FleetState;

use super::placement_status::{PlacementFacts, Waiting};
use super::{ContentCache, Reconciler};

/// How often a cluster whose objects are not available yet is looked at again.
pub const AVAILABILITY_POLL: i64 = 5;
/// Backoff for an unreachable cluster: 5 s, 10 s, 20 s, ... at most 2 min.
const BACKOFF_FIRST: i64 = 5;
const BACKOFF_MAX: i64 = 120;

/// An unreachable cluster and when to try it again.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub next_at: i64,
    pub message: String,
}

/// Renders a snapshot's manifests for one cluster of the fleet: the
/// placement's overrides applied, gitfleet's ownership marks added.
pub fn render_for(
    fleet: &Fleet,
    p: &Placement,
    cluster: &str,
    manifests: &[Arc<Manifest>],
    index: u32,
) -> Result<Vec<RenderedObject>, String> {
    let member = fleet
        .clusters
        .get(cluster)
        .ok_or_else(|| format!("cluster {cluster} is not declared in the repository"))?;
    let overrides: Vec<_> =
        fleet.overrides.values().filter(|o| o.placement.as_deref().is_none_or(|n| n == p.name)).collect();
    render(manifests, &overrides, member, &p.name, index).map_err(|e| e.to_string())
}

impl Reconciler {
    /// The objects a snapshot of a placement puts on one cluster.
    pub(super) fn desired_for(
        &self,
        fs: &FleetState,
        p: &Placement,
        cluster: &str,
        index: u32,
        cache: &mut ContentCache,
    ) -> Result<Vec<RenderedObject>, String> {
        let manifests = self.content(fs, &p.name, index, cache)?;
        render_for(&fs.fleet, p, cluster, &manifests, index)
    }

    /// `Some` while an unreachable cluster waits for its next attempt.
    fn backing_off(&self, cluster: &str, now: i64) -> Option<Retry> {
        self.retries.borrow().get(cluster).filter(|r| now < r.next_at).cloned()
    }

    /// Records that a cluster could not be reached; returns the waiting state.
    fn unreachable(&self, cluster: &str, error: &BackendError, now: i64) -> Retry {
        let mut retries = self.retries.borrow_mut();
        let r = retries.entry(cluster.to_string()).or_insert(Retry {
            attempts: 0,
            next_at: now,
            message: String::new(),
        });
        r.attempts += 1;
        let delay = (BACKOFF_FIRST << (r.attempts - 1).min(10)).min(BACKOFF_MAX);
        r.next_at = now + delay;
        r.message = error.to_string();
        tracing::warn!(cluster, attempt = r.attempts, retry_in_s = delay, "cluster unreachable: {error}");
        r.clone()
    }

    fn reached(&self, cluster: &str) {
        if self.retries.borrow_mut().remove(cluster).is_some() {
            tracing::info!(cluster, "cluster reachable again");
        }
    }

    fn wait_until(&self, at: i64) {
        let mut w = self.pending_wake.borrow_mut();
        *w = Some(w.map_or(at, |x| x.min(at)));
    }

    fn waiting_unreachable(&self, facts: &mut PlacementFacts, cluster: &str, r: &Retry) -> Observation {
        self.wait_until(r.next_at);
        let message = format!(
            "cluster unreachable ({} attempts, next at {}): {}",
            r.attempts,
            crate::engine::time(r.next_at),
            r.message
        );
        facts.waiting.insert(cluster.to_string(), Waiting::Unreachable(message.clone()));
        Observation::Pending(message)
    }

    /// Removes a placement's objects from a cluster it no longer schedules.
    pub(super) fn cleanup_cluster(&self, cluster: &str, placement: &str, now: i64) -> Observation {
        if let Some(r) = self.backing_off(cluster, now) {
            self.wait_until(r.next_at);
            return Observation::Pending(format!("cluster unreachable: {}", r.message));
        }
        match self.backend.sync(cluster, placement, &[], &SyncOptions::default()) {
            Ok(r) if r.failed.is_empty() => {
                self.reached(cluster);
                Observation::Succeeded
            }
            Ok(r) => Observation::Failed(r.failed[0].message.clone()),
            Err(e) => {
                let r = self.unreachable(cluster, &e, now);
                self.wait_until(r.next_at);
                Observation::Pending(format!("cluster unreachable: {}", r.message))
            }
        }
    }

    /// Applies a snapshot of a placement to one cluster (or, for ReportDiff,
    /// only reports how the cluster differs from it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_cluster(
        &self,
        fs: &FleetState,
        p: &Placement,
        cluster: &str,
        index: u32,
        cache: &mut ContentCache,
        facts: &mut PlacementFacts,
        now: i64,
    ) -> Observation {
        if let Some(r) = self.backing_off(cluster, now) {
            return self.waiting_unreachable(facts, cluster, &r);
        }
        let desired = match self.desired_for(fs, p, cluster, index, cache) {
            Ok(d) => d,
            Err(e) => return Observation::Failed(e),
        };
        if p.apply.type_ == ApplyType::ReportDiff {
            return match self.backend.diff(cluster, &desired) {
                Ok(diffs) => {
                    self.reached(cluster);
                    tracing::info!(placement = %p.name, cluster, snapshot = index, differences = diffs.len(), "diff reported");
                    facts.observed.insert(cluster.to_string(), index);
                    facts.diffs.insert(cluster.to_string(), diffs);
                    Observation::Succeeded
                }
                Err(e) => {
                    let r = self.unreachable(cluster, &e, now);
                    self.waiting_unreachable(facts, cluster, &r)
                }
            };
        }
        let mut options = SyncOptions::take_over(p.apply.when_to_take_over);
        let mut refused: Vec<FailedObject> = Vec::new();
        if p.apply.when_to_apply == WhenToApply::IfNotDrifted
            && let Some(held) = facts.held(cluster)
        {
            // Objects changed on the cluster since gitfleet applied them are left alone
            // (deleted ones are applied again: there is no change of the member's to keep).
            let held_desired = self.desired_for(fs, p, cluster, held, cache).unwrap_or_default();
            let mut drifted = match self.drifted(p, cluster, &held_desired, facts) {
                Ok(d) => d,
                Err(e) => {
                    let r = self.unreachable(cluster, &e, now);
                    return self.waiting_unreachable(facts, cluster, &r);
                }
            };
            drifted.retain(|d| d.on_cluster);
            for d in &drifted {
                options.leave.insert(d.key.clone());
                let paths: Vec<&str> = d.fields.iter().map(|f| f.path.as_str()).collect();
                refused.push(FailedObject {
                    key: d.key.clone(),
                    api_version: d.api_version.clone(),
                    envelope: d.envelope.clone(),
                    message: format!(
                        "Failed to apply manifest: {} has drifted on the cluster ({}) and whenToApply is IfNotDrifted",
                        d.key,
                        paths.join(", ")
                    ),
                });
            }
            facts.drifts.insert(cluster.to_string(), drifted);
        }
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
        self.record(facts, cluster, index, result, now)
    }

    fn record(
        &self,
        facts: &mut PlacementFacts,
        cluster: &str,
        index: u32,
        result: Result<SyncReport, BackendError>,
        now: i64,
    ) -> Observation {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                let retry = self.unreachable(cluster, &e, now);
                return self.waiting_unreachable(facts, cluster, &retry);
            }
        };
        self.reached(cluster);
        // The cluster holds this snapshot now, as far as it could be applied.
        facts.observed.insert(cluster.to_string(), index);
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
            self.wait_until(now + AVAILABILITY_POLL);
            facts.waiting.insert(cluster.to_string(), Waiting::NotAvailable(message.clone()));
            return Observation::Pending(message);
        }
        facts.available.insert(cluster.to_string());
        Observation::Succeeded
    }

    /// Objects of this placement that changed on the cluster since gitfleet
    /// applied there the snapshot it holds (rendered as `held`), or that were
    /// deleted there.
    fn drifted(
        &self,
        p: &Placement,
        cluster: &str,
        held: &[RenderedObject],
        facts: &PlacementFacts,
    ) -> Result<Vec<ObjectDiff>, BackendError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let diffs = self.backend.diff(cluster, held)?;
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
    pub(super) fn check_clusters(
        &self,
        fs: &FleetState,
        p: &Placement,
        facts: &mut PlacementFacts,
        cache: &mut ContentCache,
        now: i64,
        notes: &mut Vec<String>,
    ) {
        for cluster in schedule(p, &fs.fleet.clusters).clusters {
            if facts.touched(&cluster) || self.backing_off(&cluster, now).is_some() {
                continue;
            }
            let Some(held) = facts.held(&cluster) else { continue };
            if p.apply.type_ == ApplyType::ReportDiff {
                let diffs = self
                    .desired_for(fs, p, &cluster, held, cache)
                    .ok()
                    .map(|d| self.backend.diff(&cluster, &d));
                match diffs {
                    Some(Ok(d)) => {
                        self.reached(&cluster);
                        facts.diffs.insert(cluster.clone(), d);
                    }
                    Some(Err(e)) => {
                        self.unreachable(&cluster, &e, now);
                    }
                    None => {}
                }
                continue;
            }
            let desired = match self.desired_for(fs, p, &cluster, held, cache) {
                Ok(d) => d,
                Err(e) => {
                    tracing::debug!(placement = %p.name, %cluster, "drift check skipped: {e}");
                    continue;
                }
            };
            let drifted = match self.drifted(p, &cluster, &desired, facts) {
                Ok(d) => {
                    self.reached(&cluster);
                    d
                }
                Err(e) => {
                    self.unreachable(&cluster, &e, now);
                    continue;
                }
            };
            if drifted.is_empty() {
                facts.drifts.insert(cluster.clone(), drifted);
                continue;
            }
            let what: Vec<String> = drifted
                .iter()
                .map(|d| {
                    if !d.on_cluster {
                        return format!("{} (deleted on the cluster)", d.key);
                    }
                    let paths: Vec<&str> = d.fields.iter().map(|f| f.path.as_str()).collect();
                    format!("{} ({})", d.key, paths.join(", "))
                })
                .collect();
            if p.apply.when_to_apply == WhenToApply::IfNotDrifted {
                let (changed, deleted): (Vec<_>, Vec<_>) =
                    drifted.iter().zip(&what).partition(|(d, _)| d.on_cluster);
                if !changed.is_empty() {
                    let changed: Vec<&str> = changed.iter().map(|(_, w)| w.as_str()).collect();
                    tracing::warn!(placement = %p.name, %cluster, "drift left as it is (whenToApply: IfNotDrifted): {}", changed.join("; "));
                    notes.push(format!("{} drifted on {cluster}: {}", p.name, changed.join("; ")));
                }
                if !deleted.is_empty() {
                    let keys: Vec<&ObjectKey> = deleted.iter().map(|(d, _)| &d.key).collect();
                    if self.recreate(p, &cluster, &desired, &keys, now) {
                        let what: Vec<&str> = deleted.iter().map(|(_, w)| w.as_str()).collect();
                        tracing::warn!(placement = %p.name, %cluster, "created again: {}", what.join("; "));
                        notes.push(format!("{} re-created on {cluster}: {}", p.name, what.join("; ")));
                    }
                }
                // What was found stays reported for this pass; the next check clears it.
                facts.drifts.insert(cluster.clone(), drifted);
                continue;
            }
            tracing::warn!(placement = %p.name, %cluster, "correcting drift: {}", what.join("; "));
            notes.push(format!("{} corrected drift on {cluster}: {}", p.name, what.join("; ")));
            self.update_cluster(fs, p, &cluster, held, cache, facts, now);
            // What was found stays reported for this pass; the next check clears it.
            facts.drifts.insert(cluster.clone(), drifted);
        }
    }
}

impl Reconciler {
    /// Applies again the objects of the snapshot a cluster holds (`desired`) that
    /// were deleted there, leaving every other object as it is; true when that worked.
    fn recreate(
        &self,
        p: &Placement,
        cluster: &str,
        desired: &[RenderedObject],
        deleted: &[&ObjectKey],
        now: i64,
    ) -> bool {
        let mut options = SyncOptions::take_over(p.apply.when_to_take_over);
        options.leave = desired.iter().map(|o| &o.key).filter(|k| !deleted.contains(k)).cloned().collect();
        match self.backend.sync(cluster, &p.name, desired, &options) {
            Ok(r) if r.failed.is_empty() => true,
            Ok(r) => {
                tracing::warn!(placement = %p.name, cluster, "creating again failed: {}", r.failed[0].message);
                false
            }
            Err(e) => {
                self.unreachable(cluster, &e, now);
                false
            }
        }
    }
}
