//! The staged update run engine: a pure function of (the run, its placement and
//! strategy, the scheduled clusters, the current status, approvals, cluster
//! observations, now) -> (new status, actions, when to wake up).
//!
//! No I/O, no clock, no Git. Split as KubeFleet splits its controller:
//! [`initialize`] computes the plan once, [`validation`] checks it on every
//! pass, [`execute`] advances it, [`stop`] handles `state: Stop` and supersession.

pub mod execute;
pub mod initialize;
pub mod status;
pub mod stop;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet};

use crate::repo::model::{MemberCluster, Placement, RunState, Strategy, UpdateRun};
use status::{Conditions, RunStatus};

/// What happened to a cluster update this run issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Applied and available.
    Succeeded,
    /// Failed to apply (the message says why).
    Failed(String),
    /// Not done yet: applied but not available, or the cluster is unreachable
    /// and will be retried. Fails once the stage's clusterTimeout runs out.
    Pending(String),
}

/// Something the engine wants done outside itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply the run's snapshot to a cluster.
    UpdateCluster { cluster: String },
    /// Remove the placement's resources from a cluster (deletion stage).
    CleanupCluster { cluster: String },
    /// Write a ClusterApprovalRequest.
    RequestApproval { name: String, stage: String },
}

/// Everything the engine reads. Times are seconds since the epoch.
pub struct RunInput<'a> {
    pub run: &'a UpdateRun,
    /// The run's generation, recorded as `observedGeneration`.
    pub generation: i64,
    pub placement: Option<&'a Placement>,
    /// The strategy as it is now (used only at initialization).
    pub strategy: Option<&'a Strategy>,
    pub clusters: &'a BTreeMap<String, MemberCluster>,
    /// Clusters the placement schedules, by name.
    pub scheduled: &'a [String],
    pub policy_index: u32,
    /// The snapshot the run rolls out, or why it cannot be resolved.
    pub resource_index: Result<u32, String>,
    /// Clusters holding this placement's resources that are no longer scheduled.
    pub cleanup: Vec<String>,
    /// Approval requests whose approval was accepted.
    pub approved: &'a BTreeSet<String>,
    /// Results of cluster updates issued in this pass.
    pub observations: &'a BTreeMap<String, Observation>,
    /// A newer run on the same placement, if one exists.
    pub superseded_by: Option<&'a str>,
    /// Rollout windows: when cluster updates may start.
    pub windows: &'a [crate::window::RolloutWindow],
    pub now: i64,
}

/// The engine's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub status: RunStatus,
    pub actions: Vec<Action>,
    /// When time alone will change something (a TimedWait or a cluster timeout).
    pub wake_at: Option<i64>,
}

/// Advances a run by one step.
pub fn step(input: &RunInput<'_>, current: &RunStatus) -> Step {
    let mut step = Step { status: current.clone(), ..Step::default() };
    if step.status.finished() {
        return step;
    }
    if !step.status.conditions.is_true("Initialized") {
        if step.status.conditions.is_false("Initialized") {
            return step; // initialization failed for good: a new run is needed
        }
        initialize::initialize(input, &mut step.status);
        if !step.status.conditions.is_true("Initialized") {
            return step;
        }
    }
    if let Some(newer) = input.superseded_by {
        stop::supersede(input, &mut step.status, newer);
        return step;
    }
    match input.run.state {
        RunState::Initialize => step,
        RunState::Stop => {
            stop::stop(input, &mut step.status);
            step
        }
        RunState::Run => {
            execute::execute(input, &mut step);
            step
        }
    }
}

/// RFC 3339 for condition times.
pub fn time(secs: i64) -> String {
    crate::status::snapshots::rfc3339(secs)
}

/// Seconds since the epoch from an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests;
