//! Execution: advance the current stage; clusters in order, at most
//! `maxConcurrency` at a time; then the after-stage tasks; then the next stage;
//! the deletion stage last.

use super::status::{ClusterStatus, Conditions, RunStatus, StageStatus, TaskStatus};
use super::{Action, Observation, RunInput, Step, parse_time, time};
use crate::repo::model::{Stage, StageTask};

const STARTED: &str = "Started";
const SUCCEEDED: &str = "Succeeded";
const PROGRESSING: &str = "Progressing";

pub fn execute(input: &RunInput<'_>, step: &mut Step) {
    let now = time(input.now);
    let generation = input.generation;
    let strategy = match super::validation::validate(input, &step.status) {
        Ok(s) => s,
        Err(e) => return fail_run(&mut step.status, &e, &now, generation),
    };
    for i in 0..step.status.stages_status.len() {
        let Some(stage) = strategy.stages.get(i) else {
            return fail_run(
                &mut step.status,
                "the stages no longer match the strategy snapshot",
                &now,
                generation,
            );
        };
        match advance_stage(input, stage, i, step) {
            StageOutcome::Done => continue,
            StageOutcome::Blocked => {
                return;
            }
            StageOutcome::Failed(message) => {
                let stage_status = &mut step.status.stages_status[i];
                stage_status.end_time.get_or_insert(now.clone());
                let c = &mut stage_status.conditions;
                c.set_condition(
                    PROGRESSING,
                    false,
                    "StageUpdatingFailed",
                    "Stage update aborted due to a non-recoverable error",
                    &now,
                    generation,
                );
                c.set_condition(SUCCEEDED, false, "StageUpdatingFailed", &message, &now, generation);
                return fail_run(&mut step.status, &message, &now, generation);
            }
        }
    }
    if !advance_deletion(input, step) {
        return;
    }
    let c = &mut step.status.conditions;
    c.set_condition(PROGRESSING, false, "UpdateRunSucceeded", "All stages are completed", &now, generation);
    c.set_condition(
        SUCCEEDED,
        true,
        "UpdateRunSucceeded",
        "All stages are completed successfully",
        &now,
        generation,
    );
}

enum StageOutcome {
    Done,
    /// Waiting for clusters, tasks or time.
    Blocked,
    Failed(String),
}

fn fail_run(status: &mut RunStatus, message: &str, now: &str, generation: i64) {
    let c = &mut status.conditions;
    c.set_condition(
        PROGRESSING,
        false,
        "UpdateRunFailed",
        "The stages are aborted due to a non-recoverable error",
        now,
        generation,
    );
    c.set_condition(SUCCEEDED, false, "UpdateRunFailed", message, now, generation);
}

fn set_run_progressing(status: &mut RunStatus, now: &str, generation: i64) {
    status.conditions.set_condition(
        PROGRESSING,
        true,
        "UpdateRunProgressing",
        "The update run is making progress",
        now,
        generation,
    );
}

fn set_run_waiting(status: &mut RunStatus, which: &str, stage: &str, now: &str, generation: i64) {
    let message = format!("The updateRun is waiting for {which} tasks in stage {stage} to complete");
    status.conditions.set_condition(PROGRESSING, false, "UpdateRunWaiting", &message, now, generation);
}

fn advance_stage(input: &RunInput<'_>, stage: &Stage, i: usize, step: &mut Step) -> StageOutcome {
    let now = time(input.now);
    let generation = input.generation;
    if step.status.stages_status[i].conditions.is_true(SUCCEEDED) {
        return StageOutcome::Done;
    }
    if step.status.stages_status[i].clusters.is_empty() {
        // An empty stage is skipped without running its tasks.
        let s = &mut step.status.stages_status[i];
        let msg = "Stage skipped because it has no clusters";
        s.conditions.set_condition(
            PROGRESSING,
            false,
            "StageUpdatingSkippedNoClusters",
            msg,
            &now,
            generation,
        );
        s.conditions.set_condition(SUCCEEDED, true, "StageUpdatingSkippedNoClusters", msg, &now, generation);
        return StageOutcome::Done;
    }
    {
        let s = &mut step.status.stages_status[i];
        s.start_time.get_or_insert(now.clone());
        if s.conditions.get_condition(PROGRESSING).is_none() {
            let msg = "Clusters in the stage started updating";
            s.conditions.set_condition(PROGRESSING, true, "StageUpdatingStarted", msg, &now, generation);
        }
    }
    // Before-stage approval: no cluster of the stage starts until it is approved.
    let before = &mut step.status.stages_status[i].before_stage_task_status;
    if !run_approvals(input, before, &stage.name, &mut step.actions) {
        let s = &mut step.status.stages_status[i];
        let msg = "Not all before-stage tasks are completed, waiting for approval";
        s.conditions.set_condition(PROGRESSING, false, "StageUpdatingWaiting", msg, &now, generation);
        set_run_waiting(&mut step.status, "before-stage", &stage.name, &now, generation);
        return StageOutcome::Blocked;
    }
    match advance_clusters(input, stage, i, step) {
        StageOutcome::Done => {}
        other => {
            if matches!(other, StageOutcome::Blocked) {
                let s = &mut step.status.stages_status[i];
                let msg = "Clusters in the stage started updating";
                s.conditions.set_condition(PROGRESSING, true, "StageUpdatingStarted", msg, &now, generation);
                set_run_progressing(&mut step.status, &now, generation);
            }
            return other;
        }
    }
    // Every cluster succeeded: the stage waits for its after-stage tasks, counted
    // from the moment the last cluster succeeded.
    let done_at = step.status.stages_status[i]
        .clusters
        .iter()
        .filter_map(|c| c.conditions.get_condition(SUCCEEDED))
        .filter_map(|c| parse_time(&c.last_transition_time))
        .max()
        .unwrap_or(input.now);
    {
        let s = &mut step.status.stages_status[i];
        let msg = "All clusters in the stage are updated, waiting for after-stage tasks to complete";
        if s.conditions.is_true(PROGRESSING) {
            s.conditions.set_condition(
                PROGRESSING,
                false,
                "StageUpdatingWaiting",
                msg,
                &time(done_at),
                generation,
            );
        }
    }
    let mut waiting = false;
    for (t, task) in stage.after_tasks.iter().enumerate() {
        if let StageTask::TimedWait(wait) = task {
            let ts = &mut step.status.stages_status[i].after_stage_task_status[t];
            if ts.conditions.is_true("WaitTimeElapsed") {
                continue;
            }
            let due = done_at + wait.as_secs() as i64;
            if input.now >= due {
                let msg = "Wait time elapsed";
                ts.conditions.set_condition(
                    "WaitTimeElapsed",
                    true,
                    "AfterStageTaskWaitTimeElapsed",
                    msg,
                    &now,
                    generation,
                );
            } else {
                waiting = true;
                step.wake_at = Some(step.wake_at.map_or(due, |w| w.min(due)));
            }
        }
    }
    let approvals_done = run_approvals(
        input,
        &mut step.status.stages_status[i].after_stage_task_status,
        &stage.name,
        &mut step.actions,
    );
    if waiting || !approvals_done {
        let s = &mut step.status.stages_status[i];
        let msg = "All clusters in the stage are updated, waiting for after-stage tasks to complete";
        s.conditions.set_condition(PROGRESSING, false, "StageUpdatingWaiting", msg, &now, generation);
        set_run_waiting(&mut step.status, "after-stage", &stage.name, &now, generation);
        return StageOutcome::Blocked;
    }
    let s = &mut step.status.stages_status[i];
    s.end_time.get_or_insert(now.clone());
    let msg = "All clusters in the stage are updated and after-stage tasks are completed";
    s.conditions.set_condition(PROGRESSING, false, "StageUpdatingSucceeded", msg, &now, generation);
    s.conditions.set_condition(
        SUCCEEDED,
        true,
        "StageUpdatingSucceeded",
        "Stage update completed successfully",
        &now,
        generation,
    );
    StageOutcome::Done
}

/// Runs the Approval tasks of a task list; true when every one is approved.
fn run_approvals(
    input: &RunInput<'_>,
    tasks: &mut [TaskStatus],
    stage: &str,
    actions: &mut Vec<Action>,
) -> bool {
    let now = time(input.now);
    let generation = input.generation;
    let mut all = true;
    for ts in tasks.iter_mut().filter(|t| t.type_ == "Approval") {
        if ts.conditions.is_true("ApprovalRequestApproved") {
            continue;
        }
        let name = ts.approval_request_name.clone().unwrap_or_default();
        if !ts.conditions.is_true("ApprovalRequestCreated") {
            actions.push(Action::RequestApproval { name: name.clone(), stage: stage.to_string() });
            let msg = "ClusterApprovalRequest is created";
            ts.conditions.set_condition(
                "ApprovalRequestCreated",
                true,
                "StageTaskApprovalRequestCreated",
                msg,
                &now,
                generation,
            );
        }
        if input.approved.contains(&name) {
            let msg = "ClusterApprovalRequest is approved";
            ts.conditions.set_condition(
                "ApprovalRequestApproved",
                true,
                "StageTaskApprovalRequestApproved",
                msg,
                &now,
                generation,
            );
        } else {
            all = false;
        }
    }
    all
}

/// Starts and completes cluster updates in order, `maxConcurrency` at a time.
fn advance_clusters(input: &RunInput<'_>, stage: &Stage, i: usize, step: &mut Step) -> StageOutcome {
    let now = time(input.now);
    let generation = input.generation;
    let total = step.status.stages_status[i].clusters.len();
    let limit = stage.max_concurrency.resolve(total).max(1);
    let timeout = stage.cluster_timeout.as_secs() as i64;
    let mut updating = 0;
    let mut all_done = true;
    for c in step.status.stages_status[i].clusters.iter_mut() {
        if c.conditions.is_true(SUCCEEDED) {
            continue;
        }
        all_done = false;
        if c.conditions.is_false(SUCCEEDED) {
            let msg = c.conditions.get_condition(SUCCEEDED).map(|c| c.message.clone()).unwrap_or_default();
            return StageOutcome::Failed(format!(
                "cluster {} failed in stage {}: {msg}",
                c.cluster_name, stage.name
            ));
        }
        if c.conditions.is_true(STARTED) {
            match observe(input, c, timeout, &now, generation, &stage.name) {
                Some(Err(message)) => return StageOutcome::Failed(message),
                Some(Ok(())) => continue,
                None => {
                    updating += 1;
                    if !input.observations.contains_key(&c.cluster_name) {
                        // Started in an earlier pass with no result recorded (a restart):
                        // applying again is idempotent.
                        step.actions.push(Action::UpdateCluster { cluster: c.cluster_name.clone() });
                    }
                    let started =
                        c.conditions.get_condition(STARTED).and_then(|s| parse_time(&s.last_transition_time));
                    if let Some(started) = started {
                        let due = started + timeout;
                        step.wake_at = Some(step.wake_at.map_or(due, |w| w.min(due)));
                    }
                    continue;
                }
            }
        }
        if updating >= limit {
            break;
        }
        c.conditions.set_condition(
            STARTED,
            true,
            "ClusterUpdatingStarted",
            "Cluster update started",
            &now,
            generation,
        );
        step.actions.push(Action::UpdateCluster { cluster: c.cluster_name.clone() });
        let due = input.now + timeout;
        step.wake_at = Some(step.wake_at.map_or(due, |w| w.min(due)));
        updating += 1;
    }
    let finished = step.status.stages_status[i].clusters.iter().all(|c| c.conditions.is_true(SUCCEEDED));
    if all_done || finished { StageOutcome::Done } else { StageOutcome::Blocked }
}

/// Applies an observation to a started cluster: `Some(Ok)` succeeded,
/// `Some(Err)` failed (the run fails), `None` still updating.
fn observe(
    input: &RunInput<'_>,
    c: &mut ClusterStatus,
    timeout: i64,
    now: &str,
    generation: i64,
    stage: &str,
) -> Option<Result<(), String>> {
    match input.observations.get(&c.cluster_name) {
        Some(Observation::Succeeded) => {
            let msg = "Cluster update completed successfully";
            c.conditions.set_condition(SUCCEEDED, true, "ClusterUpdatingSucceeded", msg, now, generation);
            Some(Ok(()))
        }
        Some(Observation::Failed(e)) => {
            c.conditions.set_condition(SUCCEEDED, false, "ClusterUpdatingFailed", e, now, generation);
            Some(Err(format!("cluster {} failed in stage {stage}: {e}", c.cluster_name)))
        }
        None => {
            let started =
                c.conditions.get_condition(STARTED).and_then(|s| parse_time(&s.last_transition_time))?;
            if input.now >= started + timeout {
                let e = format!(
                    "the update did not complete within the clusterTimeout of {}",
                    crate::repo::duration::format(std::time::Duration::from_secs(timeout as u64))
                );
                c.conditions.set_condition(SUCCEEDED, false, "ClusterUpdatingFailed", &e, now, generation);
                return Some(Err(format!("cluster {} failed in stage {stage}: {e}", c.cluster_name)));
            }
            None
        }
    }
}

/// The deletion stage: removes the placement's resources from clusters no longer
/// scheduled. True when done.
fn advance_deletion(input: &RunInput<'_>, step: &mut Step) -> bool {
    let now = time(input.now);
    let generation = input.generation;
    let Some(mut del) = step.status.deletion_stage_status.take() else { return true };
    let mut done = true;
    for c in del.clusters.iter_mut() {
        if c.conditions.is_true(SUCCEEDED) {
            continue;
        }
        match input.observations.get(&c.cluster_name) {
            Some(Observation::Succeeded) => {
                let msg = "Cluster update completed successfully";
                c.conditions.set_condition(
                    SUCCEEDED,
                    true,
                    "ClusterUpdatingSucceeded",
                    msg,
                    &now,
                    generation,
                );
            }
            Some(Observation::Failed(e)) => {
                c.conditions.set_condition(SUCCEEDED, false, "ClusterUpdatingFailed", e, &now, generation);
                done = false;
            }
            None => {
                c.conditions.set_condition(
                    STARTED,
                    true,
                    "ClusterUpdatingStarted",
                    "Cluster update started",
                    &now,
                    generation,
                );
                step.actions.push(Action::CleanupCluster { cluster: c.cluster_name.clone() });
                done = false;
            }
        }
    }
    if let Some(failed) = del.clusters.iter().find(|c| c.conditions.is_false(SUCCEEDED)) {
        let msg = failed.conditions.get_condition(SUCCEEDED).map(|c| c.message.clone()).unwrap_or_default();
        let message = format!("cluster {} failed in the deletion stage: {msg}", failed.cluster_name);
        step.status.deletion_stage_status = Some(del);
        fail_run(&mut step.status, &message, &now, generation);
        return false;
    }
    if done {
        mark_stage_succeeded(&mut del, &now, generation);
    } else {
        del.start_time.get_or_insert(now.clone());
        set_run_progressing(&mut step.status, &now, generation);
    }
    step.status.deletion_stage_status = Some(del);
    done
}

fn mark_stage_succeeded(s: &mut StageStatus, now: &str, generation: i64) {
    if s.clusters.is_empty() || s.conditions.is_true(SUCCEEDED) {
        return;
    }
    s.start_time.get_or_insert(now.to_string());
    s.end_time.get_or_insert(now.to_string());
    let msg = "All clusters in the stage are updated and after-stage tasks are completed";
    s.conditions.set_condition(PROGRESSING, false, "StageUpdatingSucceeded", msg, now, generation);
    s.conditions.set_condition(
        SUCCEEDED,
        true,
        "StageUpdatingSucceeded",
        "Stage update completed successfully",
        now,
        generation,
    );
}
