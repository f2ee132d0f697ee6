//! Verification tasks in the engine: when a measurement is due, ask for it;
//! record what it found (with its time) in the task's status, so a restart
//! continues the count; pass the task after `count` measurements, fail it at
//! the first measurement beyond a limit.

use super::{Action, MeasureKey, RunInput, Step};
use crate::repo::model::{Stage, StageTask};
use crate::status::conditions::Conditions;
use crate::status::conditions::kind::{SUCCEEDED, VERIFIED};
use crate::status::conditions::reason::{STAGE_TASK_VERIFICATION_FAILED, STAGE_TASK_VERIFICATION_SUCCEEDED};
use crate::status::run::Measurement;
use crate::time::{Time, Wake};
use crate::verify::{self, OnFailure, Phase, Vars, Verdict, Verification};

/// Where a stage's Verification tasks (before or after) stand.
pub(super) enum Verifications {
    /// Every one passed (or there are none).
    Passed,
    /// Measurements still to take.
    Measuring,
    /// One failed: the message names it; `rollback` when it says so.
    Failed { message: String, rollback: bool },
}

/// Advances the Verification tasks of stage `i`'s task list (`before` or
/// after), measuring from `start`.
pub(super) fn verify(
    input: &RunInput<'_>,
    stage: &Stage,
    i: usize,
    before: bool,
    start: Time,
    step: &mut Step,
) -> Verifications {
    let tasks = if before { &stage.before_tasks } else { &stage.after_tasks };
    let mut measuring = false;
    for (t, task) in tasks.iter().enumerate() {
        let StageTask::Verification(v) = task else { continue };
        match verify_task(input, stage, i, before, t, v, start, step) {
            Verdict::Passed => {}
            Verdict::Measuring => measuring = true,
            Verdict::Failed(message) => {
                return Verifications::Failed { message, rollback: v.on_failure == OnFailure::Rollback };
            }
        }
    }
    if measuring { Verifications::Measuring } else { Verifications::Passed }
}

/// The task's name in messages: `afterStageTasks[0] (prometheus)`.
fn task_name(before: bool, t: usize, v: &Verification) -> String {
    let list = if before { "beforeStageTasks" } else { "afterStageTasks" };
    format!("Verification {list}[{t}] ({})", v.provider.name())
}

#[allow(clippy::too_many_arguments)]
fn verify_task(
    input: &RunInput<'_>,
    stage: &Stage,
    i: usize,
    before: bool,
    t: usize,
    v: &Verification,
    start: Time,
    step: &mut Step,
) -> Verdict {
    let (now, generation) = (input.now, input.generation);
    let stage_status = &step.status.stages_status[i];
    // Before the stage: each cluster it is to update. After it: each cluster
    // that did not fail (within maxFailures) or leave; one still updating
    // after a forced soak is measured once it is done.
    let mut pending = false;
    let mut series: Vec<Option<String>> = Vec::new();
    if v.per_cluster {
        for c in &stage_status.clusters {
            if c.conditions.is_false(SUCCEEDED) || !input.clusters.contains_key(&c.cluster_name) {
                continue;
            }
            if !before && !c.conditions.is_true(SUCCEEDED) {
                pending = true;
                continue;
            }
            series.push(Some(c.cluster_name.clone()));
        }
    } else {
        series.push(None);
    }
    let tasks = if before {
        &mut step.status.stages_status[i].before_stage_task_status
    } else {
        &mut step.status.stages_status[i].after_stage_task_status
    };
    let Some(ts) = tasks.get_mut(t) else { return Verdict::Measuring };
    if ts.conditions.is_true(VERIFIED) {
        return Verdict::Passed;
    }
    let mut all_passed = !pending;
    let measured_clusters = series.len();
    for cluster in series {
        let key = MeasureKey { stage: i, before, task: t, cluster: cluster.clone() };
        loop {
            let taken: Vec<&Measurement> = ts.measurements.iter().filter(|m| m.cluster == cluster).collect();
            let phases: Vec<Phase> = taken.iter().filter_map(|m| Phase::parse(&m.phase)).collect();
            match verify::verdict(v, &phases) {
                Verdict::Passed => break,
                Verdict::Failed(why) => {
                    let on = cluster.as_deref().map(|c| format!(" on cluster {c}")).unwrap_or_default();
                    let last: Vec<String> = taken
                        .iter()
                        .rev()
                        .take(3)
                        .rev()
                        .map(|m| m.value.clone().or_else(|| m.message.clone()).unwrap_or_default())
                        .collect();
                    let message = format!(
                        "{} failed{on} in stage {}: {why}; last values: {}",
                        task_name(before, t, v),
                        stage.name,
                        last.join(", ")
                    );
                    ts.conditions.set_condition(
                        VERIFIED,
                        false,
                        STAGE_TASK_VERIFICATION_FAILED,
                        &message,
                        now,
                        generation,
                    );
                    return Verdict::Failed(message);
                }
                Verdict::Measuring => {}
            }
            // Whole seconds, at least one: a measurement is never taken twice at one time.
            let interval = v.interval.max(std::time::Duration::from_secs(1));
            let due = taken.last().map_or(start, |m| m.time.plus(interval));
            if now < due {
                all_passed = false;
                step.wake.add(Wake::at(due));
                break;
            }
            let Some(sampled) = input.measured.get(&key) else {
                all_passed = false;
                let member = cluster.as_deref().and_then(|c| input.clusters.get(c));
                let vars = Vars { cluster: member, stage: &stage.name, run: &input.run.name };
                step.actions.push(Action::Measure { key: key.clone(), query: v.provider.resolve(&vars) });
                break;
            };
            let judged = verify::judge(v, sampled);
            ts.measurements.push(Measurement {
                cluster: cluster.clone(),
                message: judged.message,
                phase: judged.phase.as_str().to_string(),
                time: now,
                value: judged.value,
            });
            // Judged again with this measurement; the next one is due later.
        }
    }
    if !all_passed {
        return Verdict::Measuring;
    }
    let n = ts.measurements.len();
    let message = if measured_clusters == 0 {
        format!(
            "{} passed: no cluster of the stage to measure (every one failed or left)",
            task_name(before, t, v)
        )
    } else {
        format!("{} passed: {n} measurement(s) within the limits", task_name(before, t, v))
    };
    ts.conditions.set_condition(VERIFIED, true, STAGE_TASK_VERIFICATION_SUCCEEDED, &message, now, generation);
    Verdict::Passed
}
