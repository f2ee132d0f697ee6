//! Execution: advance the current stage; clusters in order, at most
//! `maxConcurrency` at a time; then the after-stage tasks; then the next stage;
//! the deletion stage last.

use super::verification::{Verifications, verify};
use super::{Action, Observation, RunInput, Step};
use crate::repo::model::{IntOrPercent, Stage, StageTask};
use crate::status::conditions::kind::{
    APPROVAL_REQUEST_APPROVED, APPROVAL_REQUEST_CREATED, PROGRESSING, STARTED, SUCCEEDED, WAIT_TIME_ELAPSED,
};
use crate::status::conditions::{Condition, Conditions, kind, reason};
use crate::status::run::{ClusterStatus, NO_PREVIOUS, RunStatus, StageStatus, TaskStatus};
use crate::time::{Time, Wake};

pub fn execute(input: &RunInput<'_>, step: &mut Step) {
    let now = input.now;
    let generation = input.generation;
    if super::rollback::rolling_back(&step.status) {
        let strategy = super::validation::validate(input, &step.status).ok();
        return super::rollback::advance(input, strategy.as_ref(), step);
    }
    let strategy = match super::validation::validate(input, &step.status) {
        Ok(s) => s,
        Err(e) => return fail_run(&mut step.status, &e, now, generation),
    };
    // Runs that may roll back record what each cluster held before them.
    let record_previous =
        strategy.stages.iter().flat_map(|s| s.before_tasks.iter().chain(&s.after_tasks)).any(
            |t| matches!(t, StageTask::Verification(v) if v.on_failure == crate::verify::OnFailure::Rollback),
        );
    report_cluster_set(input, &mut step.status);
    for i in 0..step.status.stages_status.len() {
        let Some(stage) = strategy.stages.get(i) else {
            return fail_run(
                &mut step.status,
                "the stages no longer match the strategy snapshot",
                now,
                generation,
            );
        };
        let outcome = advance_stage(input, stage, i, record_previous, step);
        match &outcome {
            StageOutcome::Done => continue,
            StageOutcome::Blocked => {
                return;
            }
            StageOutcome::Held(message) => {
                let s = &mut step.status.stages_status[i];
                let msg = "Waiting for a rollout window before starting the next cluster";
                not_progressing(&mut s.conditions, reason::STAGE_UPDATING_WAITING, msg, now, generation);
                not_progressing(
                    &mut step.status.conditions,
                    reason::UPDATE_RUN_WAITING,
                    message,
                    now,
                    generation,
                );
                return;
            }
            StageOutcome::Failed(message) | StageOutcome::RollBack(message) => {
                let rollback = matches!(outcome, StageOutcome::RollBack(_));
                let stage_status = &mut step.status.stages_status[i];
                stage_status.end_time.get_or_insert(now);
                let c = &mut stage_status.conditions;
                c.set_condition(
                    PROGRESSING,
                    false,
                    reason::STAGE_UPDATING_FAILED,
                    "Stage update aborted due to a non-recoverable error",
                    now,
                    generation,
                );
                c.set_condition(SUCCEEDED, false, reason::STAGE_UPDATING_FAILED, message, now, generation);
                if rollback {
                    super::rollback::begin(input, &mut step.status, message);
                    return super::rollback::advance(input, Some(&strategy), step);
                }
                return fail_run(&mut step.status, message, now, generation);
            }
        }
    }
    finish(input, step);
}

/// Every stage is done: the deletion stage, then the run succeeds (naming
/// the clusters that failed within maxFailures or were skipped).
fn finish(input: &RunInput<'_>, step: &mut Step) {
    let (now, generation) = (input.now, input.generation);
    let stragglers: Vec<&str> = step
        .status
        .stages_status
        .iter()
        .flat_map(|s| &s.clusters)
        .filter(|c| c.conditions.get_condition(SUCCEEDED).is_none())
        .map(|c| c.cluster_name.as_str())
        .collect();
    if !stragglers.is_empty() {
        let msg = format!(
            "All stages are completed; waiting for clusters still to update: {}",
            stragglers.join(", ")
        );
        step.status.conditions.set_condition(
            PROGRESSING,
            true,
            reason::UPDATE_RUN_PROGRESSING,
            &msg,
            now,
            generation,
        );
        return;
    }
    if !advance_deletion(input, step) {
        return;
    }
    let mut message = String::from("All stages are completed successfully");
    for (what, reason) in [
        ("failed within maxFailures", reason::CLUSTER_UPDATING_FAILED),
        ("skipped (left the fleet)", reason::CLUSTER_UPDATING_SKIPPED),
    ] {
        let names: Vec<String> = step
            .status
            .stages_status
            .iter()
            .flat_map(|s| s.clusters.iter().map(move |c| (s, c)))
            .filter(|(_, c)| c.conditions.get_condition(SUCCEEDED).is_some_and(|x| x.reason == reason))
            .map(|(s, c)| format!("{} ({})", c.cluster_name, s.stage_name))
            .collect();
        if !names.is_empty() {
            message.push_str(&format!("; {what}: {}", names.join(", ")));
        }
    }
    let c = &mut step.status.conditions;
    c.set_condition(
        PROGRESSING,
        false,
        reason::UPDATE_RUN_SUCCEEDED,
        "All stages are completed",
        now,
        generation,
    );
    c.set_condition(SUCCEEDED, true, reason::UPDATE_RUN_SUCCEEDED, &message, now, generation);
}

enum StageOutcome {
    Done,
    /// Waiting for clusters, tasks or time.
    Blocked,
    /// The next cluster may not start yet because of a rollout window.
    Held(String),
    Failed(String),
    /// A Verification with `onFailure: Rollback` failed.
    RollBack(String),
}

/// Reports clusters that joined the placement or left the fleet during the run
/// (condition `ClusterSetChanged`): the run neither updates the first nor aborts
/// for the second.
fn report_cluster_set(input: &RunInput<'_>, status: &mut RunStatus) {
    let in_run: Vec<&str> =
        status.stages_status.iter().flat_map(|s| &s.clusters).map(|c| c.cluster_name.as_str()).collect();
    let joined: Vec<&str> =
        input.scheduled.iter().map(String::as_str).filter(|n| !in_run.contains(n)).collect();
    let left: Vec<&str> = in_run.iter().copied().filter(|n| !input.clusters.contains_key(*n)).collect();
    if joined.is_empty() && left.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    if !joined.is_empty() {
        parts.push(format!("joined during the run, not updated by it: {}", joined.join(", ")));
    }
    if !left.is_empty() {
        parts.push(format!("left the fleet during the run: {}", left.join(", ")));
    }
    let now = input.now;
    status.conditions.set_condition(
        kind::CLUSTER_SET_CHANGED,
        true,
        reason::CLUSTERS_CHANGED_DURING_RUN,
        &parts.join("; "),
        now,
        input.generation,
    );
}

fn fail_run(status: &mut RunStatus, message: &str, now: Time, generation: i64) {
    let c = &mut status.conditions;
    c.set_condition(
        PROGRESSING,
        false,
        reason::UPDATE_RUN_FAILED,
        "The stages are aborted due to a non-recoverable error",
        now,
        generation,
    );
    c.set_condition(SUCCEEDED, false, reason::UPDATE_RUN_FAILED, message, now, generation);
}

fn set_run_progressing(status: &mut RunStatus, now: Time, generation: i64) {
    status.conditions.set_condition(
        PROGRESSING,
        true,
        reason::UPDATE_RUN_PROGRESSING,
        "The update run is making progress",
        now,
        generation,
    );
}

fn set_run_waiting(status: &mut RunStatus, which: &str, stage: &str, now: Time, generation: i64) {
    let message = format!("The updateRun is waiting for {which} tasks in stage {stage} to complete");
    not_progressing(&mut status.conditions, reason::UPDATE_RUN_WAITING, &message, now, generation);
}

fn advance_stage(
    input: &RunInput<'_>,
    stage: &Stage,
    i: usize,
    record_previous: bool,
    step: &mut Step,
) -> StageOutcome {
    let now = input.now;
    let generation = input.generation;
    if step.status.stages_status[i].conditions.is_true(SUCCEEDED) {
        // After a forced soak (maxDuration) the stage's remaining clusters keep
        // going, and their failures still count against maxFailures.
        return match advance_clusters(input, stage, i, record_previous, step) {
            StageOutcome::Failed(message) => StageOutcome::Failed(message),
            _ => StageOutcome::Done,
        };
    }
    if step.status.stages_status[i].clusters.is_empty() {
        // An empty stage is skipped without running its tasks.
        let s = &mut step.status.stages_status[i];
        let msg = "Stage skipped because it has no clusters";
        not_progressing(&mut s.conditions, reason::STAGE_UPDATING_SKIPPED_NO_CLUSTERS, msg, now, generation);
        s.conditions.set_condition(
            SUCCEEDED,
            true,
            reason::STAGE_UPDATING_SKIPPED_NO_CLUSTERS,
            msg,
            now,
            generation,
        );
        return StageOutcome::Done;
    }
    {
        let s = &mut step.status.stages_status[i];
        s.start_time.get_or_insert(now);
        if s.conditions.get_condition(PROGRESSING).is_none() {
            set_stage_started(s, now, generation);
        }
    }
    // Before-stage tasks: no cluster of the stage starts until they are done.
    let before = &mut step.status.stages_status[i].before_stage_task_status;
    let approved = run_approvals(input, before, &stage.name, &mut step.actions);
    let started = step.status.stages_status[i].start_time.unwrap_or(now);
    let verified = match verify(input, stage, i, true, started, step) {
        Verifications::Passed => true,
        Verifications::Measuring => false,
        Verifications::Failed { message, rollback: true } => return StageOutcome::RollBack(message),
        Verifications::Failed { message, rollback: false } => return StageOutcome::Failed(message),
    };
    if !approved || !verified {
        let s = &mut step.status.stages_status[i];
        let msg = if approved {
            "Not all before-stage tasks are completed, waiting for verification"
        } else {
            "Not all before-stage tasks are completed, waiting for approval"
        };
        not_progressing(&mut s.conditions, reason::STAGE_UPDATING_WAITING, msg, now, generation);
        set_run_waiting(&mut step.status, "before-stage", &stage.name, now, generation);
        return StageOutcome::Blocked;
    }
    let forced_at = forced_soak(input, stage, i, step);
    match advance_clusters(input, stage, i, record_previous, step) {
        StageOutcome::Done => {}
        // maxDuration reached: the after-stage tasks start, stragglers keep going.
        StageOutcome::Blocked | StageOutcome::Held(_) if forced_at.is_some() => {}
        other => {
            if matches!(other, StageOutcome::Blocked) {
                set_stage_started(&mut step.status.stages_status[i], now, generation);
                set_run_progressing(&mut step.status, now, generation);
            }
            return other;
        }
    }
    after_stage(input, stage, i, forced_at, step)
}

/// Every cluster finished (or maxDuration passed): the after-stage tasks,
/// then the stage succeeds.
fn after_stage(
    input: &RunInput<'_>,
    stage: &Stage,
    i: usize,
    forced_at: Option<Time>,
    step: &mut Step,
) -> StageOutcome {
    let now = input.now;
    let generation = input.generation;
    // The after-stage tasks count from the moment the last cluster finished.
    let done_at = forced_at.unwrap_or_else(|| {
        step.status.stages_status[i]
            .clusters
            .iter()
            .filter_map(|c| c.conditions.get_condition(SUCCEEDED))
            .map(|c| c.last_transition_time)
            .max()
            .unwrap_or(input.now)
    });
    {
        let s = &mut step.status.stages_status[i];
        let msg = "All clusters in the stage are updated, waiting for after-stage tasks to complete";
        if s.conditions.is_true(PROGRESSING) {
            s.conditions.set_condition(
                PROGRESSING,
                false,
                reason::STAGE_UPDATING_WAITING,
                msg,
                done_at,
                generation,
            );
        }
    }
    let waiting = timed_waits(input, stage, i, done_at, step);
    let approvals_done = run_approvals(
        input,
        &mut step.status.stages_status[i].after_stage_task_status,
        &stage.name,
        &mut step.actions,
    );
    let verified = match verify(input, stage, i, false, done_at, step) {
        Verifications::Passed => true,
        Verifications::Measuring => false,
        Verifications::Failed { message, rollback: true } => return StageOutcome::RollBack(message),
        Verifications::Failed { message, rollback: false } => return StageOutcome::Failed(message),
    };
    if waiting || !approvals_done || !verified {
        let s = &mut step.status.stages_status[i];
        let msg = "All clusters in the stage are updated, waiting for after-stage tasks to complete";
        not_progressing(&mut s.conditions, reason::STAGE_UPDATING_WAITING, msg, now, generation);
        set_run_waiting(&mut step.status, "after-stage", &stage.name, now, generation);
        return StageOutcome::Blocked;
    }
    complete_stage(&mut step.status.stages_status[i], now, generation);
    StageOutcome::Done
}

/// The stage's TimedWait tasks, counted from `done_at`; true while one still waits.
fn timed_waits(input: &RunInput<'_>, stage: &Stage, i: usize, done_at: Time, step: &mut Step) -> bool {
    let (now, generation) = (input.now, input.generation);
    let mut waiting = false;
    for (t, task) in stage.after_tasks.iter().enumerate() {
        if let StageTask::TimedWait(wait) = task {
            let ts = &mut step.status.stages_status[i].after_stage_task_status[t];
            if ts.conditions.is_true(WAIT_TIME_ELAPSED) {
                continue;
            }
            let due = done_at.plus(*wait);
            ts.wait_until = Some(due);
            if input.now >= due {
                let msg = "Wait time elapsed";
                ts.conditions.set_condition(
                    WAIT_TIME_ELAPSED,
                    true,
                    reason::AFTER_STAGE_TASK_WAIT_TIME_ELAPSED,
                    msg,
                    now,
                    generation,
                );
            } else {
                waiting = true;
                step.wake.add(Wake::at(due));
            }
        }
    }
    waiting
}

/// Runs the Approval tasks of a task list; true when every one is approved.
fn run_approvals(
    input: &RunInput<'_>,
    tasks: &mut [TaskStatus],
    stage: &str,
    actions: &mut Vec<Action>,
) -> bool {
    let now = input.now;
    let generation = input.generation;
    let mut all = true;
    for ts in tasks.iter_mut().filter(|t| t.type_ == "Approval") {
        if ts.conditions.is_true(APPROVAL_REQUEST_APPROVED) {
            continue;
        }
        let name = ts.approval_request_name.clone().unwrap_or_default();
        if !ts.conditions.is_true(APPROVAL_REQUEST_CREATED) {
            actions.push(Action::RequestApproval { name: name.clone(), stage: stage.to_string() });
            let msg = "ClusterApprovalRequest is created";
            ts.conditions.set_condition(
                APPROVAL_REQUEST_CREATED,
                true,
                reason::STAGE_TASK_APPROVAL_REQUEST_CREATED,
                msg,
                now,
                generation,
            );
        }
        if input.approved.contains(&name) {
            let msg = "ClusterApprovalRequest is approved";
            ts.conditions.set_condition(
                APPROVAL_REQUEST_APPROVED,
                true,
                reason::STAGE_TASK_APPROVAL_REQUEST_APPROVED,
                msg,
                now,
                generation,
            );
        } else {
            all = false;
        }
    }
    all
}

/// Starts and completes cluster updates in order, `maxConcurrency` at a time.
fn advance_clusters(
    input: &RunInput<'_>,
    stage: &Stage,
    i: usize,
    record_previous: bool,
    step: &mut Step,
) -> StageOutcome {
    let now = input.now;
    let generation = input.generation;
    let total = step.status.stages_status[i].clusters.len();
    let limit = stage.max_concurrency.resolve(total).max(1);
    let allowed = stage.max_failures.resolve(total);
    let timeout = stage.cluster_timeout.as_secs() as i64;
    // First what happened to the clusters already updating.
    let mut updating = observe_started(input, i, timeout, step);
    let failed = failed_clusters(&step.status.stages_status[i].clusters);
    if failed.len() > allowed {
        return StageOutcome::Failed(failure_message(&failed, &stage.name, stage.max_failures, allowed));
    }
    // Then start clusters in order while there is room.
    for c in step.status.stages_status[i].clusters.iter_mut() {
        if updating >= limit {
            break;
        }
        if c.conditions.get_condition(SUCCEEDED).is_some() || c.conditions.is_true(STARTED) {
            continue;
        }
        let Some(member) = input.clusters.get(&c.cluster_name) else {
            skip_left(c, now, generation);
            continue;
        };
        if let Err((window, until)) = crate::window::may_start(input.windows, &member.labels, input.now) {
            let when = match until {
                Some(t) => {
                    step.wake.add(Wake::at(t));
                    format!("until {t}")
                }
                None => "until the window is removed".to_string(),
            };
            let kind = match window.type_ {
                crate::repo::window::WindowType::Deny => "Deny",
                crate::repo::window::WindowType::Allow => "Allow",
            };
            return StageOutcome::Held(format!(
                "The updateRun is waiting for rollout window {} ({kind}): cluster {} may not start {when}",
                window.name, c.cluster_name
            ));
        }
        mark_started(c, now, generation);
        if record_previous && c.previous_resource_snapshot_index.is_none() {
            let held =
                input.held.get(&c.cluster_name).map_or_else(|| NO_PREVIOUS.to_string(), u32::to_string);
            c.previous_resource_snapshot_index = Some(held);
        }
        step.actions.push(Action::UpdateCluster { cluster: c.cluster_name.clone() });
        let due = input.now.plus_seconds(timeout);
        step.wake.add(Wake::at(due));
        updating += 1;
    }
    let finished =
        step.status.stages_status[i].clusters.iter().all(|c| c.conditions.get_condition(SUCCEEDED).is_some());
    if finished { StageOutcome::Done } else { StageOutcome::Blocked }
}

/// When a stage's `maxDuration` ran out (its after-stage tasks then start even
/// though clusters are still updating); also schedules the wake-up for it.
fn forced_soak(input: &RunInput<'_>, stage: &Stage, i: usize, step: &mut Step) -> Option<Time> {
    let max = stage.max_duration?.as_secs() as i64;
    let started = step.status.stages_status[i].start_time?;
    let due = started.plus_seconds(max);
    if input.now >= due {
        Some(due)
    } else {
        step.wake.add(Wake::at(due));
        None
    }
}

/// Clusters of a stage that failed (skipped ones are not failures): (name, error).
fn failed_clusters(clusters: &[ClusterStatus]) -> Vec<(String, String)> {
    clusters
        .iter()
        .filter_map(|c| {
            let s = c.conditions.get_condition(SUCCEEDED)?;
            (s.status == "False" && s.reason == reason::CLUSTER_UPDATING_FAILED)
                .then(|| (c.cluster_name.clone(), s.message.clone()))
        })
        .collect()
}

fn failure_message(failed: &[(String, String)], stage: &str, max: IntOrPercent, allowed: usize) -> String {
    match failed {
        [(name, error)] => format!("cluster {name} failed in stage {stage}: {error}"),
        _ => {
            let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "clusters {} failed in stage {stage}, more than maxFailures {max} ({allowed}): {}",
                names.join(", "),
                failed.last().map(|(_, e)| e.as_str()).unwrap_or_default()
            )
        }
    }
}

/// Applies observations to the stage's started clusters; returns how many are still updating.
fn observe_started(input: &RunInput<'_>, i: usize, timeout: i64, step: &mut Step) -> usize {
    let now = input.now;
    let mut updating = 0;
    for c in step.status.stages_status[i].clusters.iter_mut() {
        if !c.conditions.is_true(STARTED) || c.conditions.get_condition(SUCCEEDED).is_some() {
            continue;
        }
        if !input.clusters.contains_key(&c.cluster_name) && !input.observations.contains_key(&c.cluster_name)
        {
            skip_left(c, now, input.generation);
            continue;
        }
        if observe(input, c, timeout, now, input.generation).is_some() {
            continue;
        }
        updating += 1;
        if !input.observations.contains_key(&c.cluster_name) {
            // Started in an earlier pass with no result recorded (a restart):
            // applying again is idempotent.
            step.actions.push(Action::UpdateCluster { cluster: c.cluster_name.clone() });
        }
        if let Some(started) = c.conditions.get_condition(STARTED).map(|s| s.last_transition_time) {
            let due = started.plus_seconds(timeout);
            step.wake.add(Wake::at(due));
        }
    }
    updating
}

/// Applies an observation (or a timeout) to a started cluster: `Some` when it
/// finished (succeeded or failed), `None` while it is still updating.
fn observe(
    input: &RunInput<'_>,
    c: &mut ClusterStatus,
    timeout: i64,
    now: Time,
    generation: i64,
) -> Option<()> {
    match input.observations.get(&c.cluster_name) {
        Some(Observation::Succeeded) => {
            let msg = "Cluster update completed successfully";
            c.conditions.set_condition(
                SUCCEEDED,
                true,
                reason::CLUSTER_UPDATING_SUCCEEDED,
                msg,
                now,
                generation,
            );
        }
        Some(Observation::Failed(e)) => {
            c.conditions.set_condition(SUCCEEDED, false, reason::CLUSTER_UPDATING_FAILED, e, now, generation);
        }
        // Not looked at yet in this pass: the update is issued again first, so
        // a timeout is only ever decided on a fresh observation.
        None => return None,
        Some(Observation::Pending(why)) => {
            let started = c.conditions.get_condition(STARTED).map(|s| s.last_transition_time)?;
            if input.now < started.plus_seconds(timeout) {
                return None;
            }
            let e = format!(
                "the update did not complete within the clusterTimeout of {}: {why}",
                crate::repo::duration::format(std::time::Duration::from_secs(timeout as u64))
            );
            c.conditions.set_condition(
                SUCCEEDED,
                false,
                reason::CLUSTER_UPDATING_FAILED,
                &e,
                now,
                generation,
            );
        }
    }
    Some(())
}

/// The deletion stage: removes the placement's resources from clusters no longer
/// scheduled. True when done.
fn advance_deletion(input: &RunInput<'_>, step: &mut Step) -> bool {
    let now = input.now;
    let generation = input.generation;
    let Some(mut del) = step.status.deletion_stage_status.take() else { return true };
    let mut done = true;
    for c in del.clusters.iter_mut() {
        if c.conditions.is_true(SUCCEEDED) {
            continue;
        }
        // A cleanup has no timeout of its own: it finishes or fails.
        if c.conditions.is_true(STARTED) {
            if observe(input, c, i64::MAX / 4, now, generation).is_some() {
                done &= c.conditions.is_true(SUCCEEDED);
                continue;
            }
            if input.observations.contains_key(&c.cluster_name) {
                // Tried in this pass and still pending (unreachable): a later pass retries.
                done = false;
                continue;
            }
        }
        mark_started(c, now, generation);
        step.actions.push(Action::CleanupCluster { cluster: c.cluster_name.clone() });
        done = false;
    }
    if let Some(failed) = del.clusters.iter().find(|c| c.conditions.is_false(SUCCEEDED)) {
        let msg = failed.conditions.get_condition(SUCCEEDED).map(|c| c.message.clone()).unwrap_or_default();
        let message = format!("cluster {} failed in the deletion stage: {msg}", failed.cluster_name);
        step.status.deletion_stage_status = Some(del);
        fail_run(&mut step.status, &message, now, generation);
        return false;
    }
    if done {
        mark_stage_succeeded(&mut del, now, generation);
    } else {
        del.start_time.get_or_insert(now);
        set_run_progressing(&mut step.status, now, generation);
    }
    step.status.deletion_stage_status = Some(del);
    done
}

fn mark_stage_succeeded(s: &mut StageStatus, now: Time, generation: i64) {
    if s.clusters.is_empty() || s.conditions.is_true(SUCCEEDED) {
        return;
    }
    s.start_time.get_or_insert(now);
    complete_stage(s, now, generation);
}

/// Every cluster of the stage is updated and its after-stage tasks are done.
fn complete_stage(s: &mut StageStatus, now: Time, generation: i64) {
    s.end_time.get_or_insert(now);
    let msg = "All clusters in the stage are updated and after-stage tasks are completed";
    not_progressing(&mut s.conditions, reason::STAGE_UPDATING_SUCCEEDED, msg, now, generation);
    let msg = "Stage update completed successfully";
    s.conditions.set_condition(SUCCEEDED, true, reason::STAGE_UPDATING_SUCCEEDED, msg, now, generation);
}

fn set_stage_started(s: &mut StageStatus, now: Time, generation: i64) {
    let msg = "Clusters in the stage started updating";
    s.conditions.set_condition(PROGRESSING, true, reason::STAGE_UPDATING_STARTED, msg, now, generation);
}

/// The cluster set is frozen at initialization: a cluster that left the fleet
/// since is skipped (and reported), the run goes on.
fn skip_left(c: &mut ClusterStatus, now: Time, generation: i64) {
    let msg = "The cluster left the fleet during the run and was skipped";
    c.conditions.set_condition(SUCCEEDED, false, reason::CLUSTER_UPDATING_SKIPPED, msg, now, generation);
}

/// `Progressing` False: the stage or run waits, stopped, or ended.
fn not_progressing(conditions: &mut Vec<Condition>, why: &str, msg: &str, now: Time, generation: i64) {
    conditions.set_condition(PROGRESSING, false, why, msg, now, generation);
}

/// Records that a cluster's update (or cleanup) started.
fn mark_started(c: &mut ClusterStatus, now: Time, generation: i64) {
    c.conditions.set_condition(
        STARTED,
        true,
        reason::CLUSTER_UPDATING_STARTED,
        "Cluster update started",
        now,
        generation,
    );
}
