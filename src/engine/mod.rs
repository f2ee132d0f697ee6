//! The staged update run engine: a pure function of (the run, its placement and
//! strategy, the scheduled clusters, the current status, approvals, cluster
//! observations, now) -> (new status, actions, when to wake up).
//!
//! No I/O, no clock, no Git. Split as KubeFleet splits its controller:
//! [`initialize`] computes the plan once, [`validation`] checks it on every
//! pass, [`execute`] advances it, [`stop`] handles `state: Stop` and supersession.
//! [`drive`] runs one pass of a run against whoever does the actions (the
//! reconciler, or the tests); [`rolling`] chooses RollingUpdate batches.

pub mod execute;
pub mod initialize;
pub mod rollback;
pub mod rolling;
pub mod stop;
pub mod validation;
pub mod verification;

use std::collections::{BTreeMap, BTreeSet};

use crate::repo::model::{MemberCluster, Placement, RunState, Strategy, UpdateRun};
use crate::snapshot::ResolveError;
use crate::status::conditions::Conditions;
use crate::status::conditions::kind::INITIALIZED;
use crate::status::run::RunStatus;
use crate::time::{Time, Wake};

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

/// What doing an action found out.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// About a cluster update, cleanup or rollback.
    Cluster(Observation),
    /// What a Verification's provider answered.
    Measured(crate::verify::Sampled),
}

impl From<Observation> for Answer {
    fn from(o: Observation) -> Answer {
        Answer::Cluster(o)
    }
}

/// Which measurement: a Verification task of a stage, and the cluster it
/// measures (perCluster tasks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeasureKey {
    pub stage: usize,
    pub before: bool,
    pub task: usize,
    pub cluster: Option<String>,
}

/// Something the engine wants done outside itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Apply the run's snapshot to a cluster.
    UpdateCluster { cluster: String },
    /// Remove the placement's resources from a cluster (deletion stage).
    CleanupCluster { cluster: String },
    /// Write a ClusterApprovalRequest.
    RequestApproval { name: String, stage: String },
    /// Take one measurement of a Verification task.
    Measure { key: MeasureKey, query: crate::verify::Query },
    /// Put a cluster back to the snapshot it held before the run (`None`:
    /// remove the placement's objects, it held none).
    RollbackCluster { cluster: String, to: Option<u32> },
}

/// Everything the engine reads.
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
    pub resource_index: Result<u32, ResolveError>,
    /// Clusters holding this placement's resources that are no longer scheduled.
    pub cleanup: Vec<String>,
    /// Approval requests whose approval was accepted.
    pub approved: &'a BTreeSet<String>,
    /// Results of cluster updates issued in this pass.
    pub observations: BTreeMap<String, Observation>,
    /// Measurements taken in this pass.
    pub measured: BTreeMap<MeasureKey, crate::verify::Sampled>,
    /// The snapshot of the placement each cluster holds now (recorded, by
    /// runs that may roll back, when they first update a cluster).
    pub held: &'a BTreeMap<String, u32>,
    /// A newer run on the same placement, if one exists.
    pub superseded_by: Option<&'a str>,
    /// Rollout windows: when cluster updates may start.
    pub windows: &'a [crate::repo::window::RolloutWindow],
    pub now: Time,
}

/// The engine's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub status: RunStatus,
    pub actions: Vec<Action>,
    /// When time alone will change something (a TimedWait or a cluster timeout).
    pub wake: Wake,
}

/// Advances a run by one step.
pub fn step(input: &RunInput<'_>, current: &RunStatus) -> Step {
    let mut step = Step { status: current.clone(), ..Step::default() };
    if step.status.finished() {
        return step;
    }
    if !step.status.conditions.is_true(INITIALIZED) {
        if step.status.conditions.is_false(INITIALIZED) {
            return step; // initialization failed for good: a new run is needed
        }
        initialize::initialize(input, &mut step.status);
        if !step.status.conditions.is_true(INITIALIZED) {
            return step;
        }
    }
    if let Some(newer) = input.superseded_by {
        if rollback::rolling_back(&step.status) {
            // The newer run takes the clusters not rolled back yet.
            rollback::interrupt(input, &mut step.status, newer);
        } else {
            stop::supersede(input, &mut step.status, newer);
        }
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

/// At most this many steps in one pass: every step that asks for something
/// records its answer, so a run settles long before (a guard, not a limit).
const MAX_STEPS: usize = 10_000;

/// Drives a run for one pass: steps it, hands every action to `act` (with the
/// status as it stands), feeds the observations back, and steps again until
/// the engine asks for nothing that `act` answers. Returns the last step (its
/// actions are those of the last round).
pub fn drive(
    mut input: RunInput<'_>,
    current: &RunStatus,
    mut act: impl FnMut(&RunStatus, &Action) -> Option<Answer>,
) -> Step {
    let mut last = Step { status: current.clone(), ..Step::default() };
    for _ in 0..MAX_STEPS {
        last = step(&input, &last.status);
        let mut progressed = false;
        for action in &last.actions {
            let Some(answer) = act(&last.status, action) else { continue };
            match (action, answer) {
                (Action::Measure { key, .. }, Answer::Measured(sampled)) => {
                    input.measured.insert(key.clone(), sampled);
                }
                (
                    Action::UpdateCluster { cluster }
                    | Action::CleanupCluster { cluster }
                    | Action::RollbackCluster { cluster, .. },
                    Answer::Cluster(observation),
                ) => {
                    input.observations.insert(cluster.clone(), observation);
                }
                _ => continue,
            }
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    last
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
