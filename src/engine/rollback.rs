//! Automatic rollback, after a Verification with `onFailure: Rollback`
//! failed: every cluster the run updated goes back to the snapshot it held
//! before the run (or, when it held none, loses the placement's objects),
//! one at a time in the reverse order of the update. A cluster that cannot
//! be rolled back is reported and left; the run ends `UpdateRunRolledBack`.

use super::{Action, Observation, RunInput, Step};
use crate::repo::model::Strategy;
use crate::repo::validate::DEFAULT_CLUSTER_TIMEOUT;
use crate::status::conditions::Conditions;
use crate::status::conditions::kind::{PROGRESSING, ROLLBACK_STARTED, ROLLED_BACK, STARTED, SUCCEEDED};
use crate::status::conditions::reason::{
    CLUSTER_ROLLBACK_FAILED, CLUSTER_ROLLBACK_STARTED, CLUSTER_ROLLED_BACK, UPDATE_RUN_ROLLED_BACK,
    UPDATE_RUN_ROLLING_BACK,
};
use crate::status::run::{ClusterStatus, NO_PREVIOUS, RunStatus};
use crate::time::Wake;

/// Whether a run is rolling back (it started and has not finished).
pub fn rolling_back(status: &RunStatus) -> bool {
    status.conditions.is_false(ROLLED_BACK)
}

/// Starts the rollback after `failure` (the failed verification's message).
pub(super) fn begin(input: &RunInput<'_>, status: &mut RunStatus, failure: &str) {
    let (now, generation) = (input.now, input.generation);
    status.conditions.set_condition(ROLLED_BACK, false, UPDATE_RUN_ROLLING_BACK, failure, now, generation);
}

/// What a cluster's rollback is to do: the snapshot to go back to.
fn target(c: &ClusterStatus) -> Result<Option<u32>, &'static str> {
    match c.previous_resource_snapshot_index.as_deref() {
        None => Err("the snapshot it held before the run was not recorded; left as it is"),
        Some(NO_PREVIOUS) => Ok(None),
        Some(index) => index.parse().map(Some).map_err(|_| "its recorded previous snapshot is not an index"),
    }
}

fn describe(c: &ClusterStatus) -> String {
    match target(c) {
        Ok(Some(i)) => format!("{} to snapshot {i}", c.cluster_name),
        Ok(None) => format!("{} (objects removed: it held no earlier snapshot)", c.cluster_name),
        Err(_) => c.cluster_name.clone(),
    }
}

/// Rolls back the next cluster (or records how the last one went); finishes
/// the run once every cluster is done.
pub(super) fn advance(input: &RunInput<'_>, strategy: Option<&Strategy>, step: &mut Step) {
    let (now, generation) = (input.now, input.generation);
    // (Again after a stop was lifted.)
    let message = "Rolling back the clusters this run updated, in the reverse order";
    step.status.conditions.set_condition(
        PROGRESSING,
        true,
        UPDATE_RUN_ROLLING_BACK,
        message,
        now,
        generation,
    );
    // Clusters in the order the run started them, walked backwards.
    let order = started_order(&step.status);
    for &(s, i) in order.iter().rev() {
        let timeout = strategy
            .and_then(|st| st.stages.get(s))
            .map_or(DEFAULT_CLUSTER_TIMEOUT, |st| st.cluster_timeout)
            .as_secs() as i64;
        let c = &mut step.status.stages_status[s].clusters[i];
        if c.conditions.get_condition(ROLLED_BACK).is_some() {
            continue;
        }
        let fail = |c: &mut ClusterStatus, why: &str| {
            c.conditions.set_condition(ROLLED_BACK, false, CLUSTER_ROLLBACK_FAILED, why, now, generation);
        };
        let to = match target(c) {
            Ok(to) => to,
            Err(why) => {
                fail(c, why);
                continue;
            }
        };
        if !input.clusters.contains_key(&c.cluster_name) {
            fail(c, "the cluster left the fleet; not rolled back");
            continue;
        }
        let Some(started) = c.conditions.get_condition(ROLLBACK_STARTED).map(|s| s.last_transition_time)
        else {
            let msg = "Cluster rollback started";
            c.conditions.set_condition(
                ROLLBACK_STARTED,
                true,
                CLUSTER_ROLLBACK_STARTED,
                msg,
                now,
                generation,
            );
            step.actions.push(Action::RollbackCluster { cluster: c.cluster_name.clone(), to });
            return;
        };
        match input.observations.get(&c.cluster_name) {
            Some(Observation::Succeeded) => {
                let msg = match to {
                    Some(i) => format!("Returned to snapshot {i}"),
                    None => {
                        "The placement's objects were removed: the cluster held no earlier snapshot".into()
                    }
                };
                c.conditions.set_condition(ROLLED_BACK, true, CLUSTER_ROLLED_BACK, &msg, now, generation);
            }
            Some(Observation::Failed(e)) => fail(c, e),
            Some(Observation::Pending(why)) => {
                let due = started.plus_seconds(timeout);
                if now < due {
                    step.wake.add(Wake::at(due));
                    return; // one cluster at a time
                }
                let secs = std::time::Duration::from_secs(timeout as u64);
                let e = format!(
                    "the rollback did not complete within the clusterTimeout of {}: {why}",
                    crate::repo::duration::format(secs)
                );
                fail(c, &e);
            }
            None => {
                // Issued in an earlier pass with no result recorded: again (idempotent).
                step.actions.push(Action::RollbackCluster { cluster: c.cluster_name.clone(), to });
                return;
            }
        }
    }
    finish(input, &mut step.status, &order);
}

/// Clusters the run started, in the order it started them.
fn started_order(status: &RunStatus) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = Vec::new();
    for (s, stage) in status.stages_status.iter().enumerate() {
        for (i, c) in stage.clusters.iter().enumerate() {
            if c.conditions.is_true(STARTED) {
                order.push((s, i));
            }
        }
    }
    order.sort_by_key(|&(s, i)| {
        let started = status.stages_status[s].clusters[i].conditions.get_condition(STARTED);
        (started.map(|c| c.last_transition_time), s, i)
    });
    order
}

/// A newer run on the placement arrived while rolling back: the clusters not
/// rolled back yet are left to it, and the run ends as rolled back, saying so.
pub(super) fn interrupt(input: &RunInput<'_>, status: &mut RunStatus, newer: &str) {
    let (now, generation) = (input.now, input.generation);
    let order = started_order(status);
    let why = format!("the newer update run {newer} took over before it was rolled back");
    for &(s, i) in &order {
        let c = &mut status.stages_status[s].clusters[i];
        if c.conditions.get_condition(ROLLED_BACK).is_none() {
            c.conditions.set_condition(ROLLED_BACK, false, CLUSTER_ROLLBACK_FAILED, &why, now, generation);
        }
    }
    finish(input, status, &order);
}

fn finish(input: &RunInput<'_>, status: &mut RunStatus, order: &[(usize, usize)]) {
    let (now, generation) = (input.now, input.generation);
    let failure = status.conditions.get_condition(ROLLED_BACK).map(|c| c.message.clone()).unwrap_or_default();
    let clusters: Vec<&ClusterStatus> =
        order.iter().rev().map(|&(s, i)| &status.stages_status[s].clusters[i]).collect();
    let back: Vec<String> =
        clusters.iter().filter(|c| c.conditions.is_true(ROLLED_BACK)).map(|c| describe(c)).collect();
    let left: Vec<String> = clusters
        .iter()
        .filter(|c| c.conditions.is_false(ROLLED_BACK))
        .map(|c| {
            let why = c.conditions.get_condition(ROLLED_BACK).map(|x| x.message.as_str()).unwrap_or_default();
            format!("{} ({why})", c.cluster_name)
        })
        .collect();
    let mut message = failure;
    if back.is_empty() {
        message.push_str("; no cluster needed rolling back");
    } else {
        message.push_str(&format!("; rolled back: {}", back.join(", ")));
    }
    if !left.is_empty() {
        message.push_str(&format!("; not rolled back: {}", left.join(", ")));
    }
    let c = &mut status.conditions;
    let done = "The clusters this run updated were rolled back";
    c.set_condition(ROLLED_BACK, true, UPDATE_RUN_ROLLED_BACK, done, now, generation);
    c.set_condition(PROGRESSING, false, UPDATE_RUN_ROLLED_BACK, done, now, generation);
    c.set_condition(SUCCEEDED, false, UPDATE_RUN_ROLLED_BACK, &message, now, generation);
}
