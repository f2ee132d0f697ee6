//! Initialization: pick the clusters of each stage, record the plan and the
//! strategy snapshot. Runs once; a failure is final for this run.

use std::collections::BTreeMap;

use serde_json::Value;

use super::RunInput;
use crate::repo::duration;
use crate::repo::model::{MemberCluster, StageTask, Strategy};
use crate::status::conditions::kind::INITIALIZED;
use crate::status::conditions::{Conditions, reason};
use crate::status::run::{ClusterStatus, DELETE_STAGE, RunStatus, StageStatus, TaskStatus};

fn fail(input: &RunInput<'_>, status: &mut RunStatus, message: String) {
    let now = input.now;
    status.conditions.set_condition(
        INITIALIZED,
        false,
        reason::UPDATE_RUN_INITIALIZED_FAILED,
        &message,
        now,
        input.generation,
    );
}

pub fn initialize(input: &RunInput<'_>, status: &mut RunStatus) {
    let run = input.run;
    let Some(placement) = input.placement else {
        return fail(input, status, format!("parent placement {} not found", run.placement));
    };
    if placement.rollout != crate::repo::model::RolloutType::External {
        return fail(
            input,
            status,
            format!("parent placement {} does not have an External rollout strategy", run.placement),
        );
    }
    let Some(strategy) = input.strategy else {
        return fail(input, status, format!("referenced update strategy {} not found", run.strategy));
    };
    let index = match &input.resource_index {
        Ok(i) => *i,
        Err(e) => return fail(input, status, e.to_string()),
    };
    let stages = match stage_clusters(strategy, input.scheduled, input.clusters) {
        Ok(s) => s,
        Err(e) => return fail(input, status, e),
    };
    status.staged_update_strategy_snapshot = Some(normalized_spec(&strategy.spec));
    status.applied_strategy = input.placement.map(|p| p.apply.to_spec());
    status.policy_snapshot_index_used = Some(input.policy_index.to_string());
    status.policy_observed_cluster_count = Some(input.scheduled.len());
    status.resource_snapshot_index_used = Some(index.to_string());
    status.stages_status = strategy
        .stages
        .iter()
        .zip(stages)
        .map(|(stage, clusters)| StageStatus {
            stage_name: stage.name.clone(),
            clusters: clusters
                .into_iter()
                .map(|c| ClusterStatus { cluster_name: c, ..ClusterStatus::default() })
                .collect(),
            before_stage_task_status: stage
                .before_tasks
                .iter()
                .map(|t| task(t, run, &stage.name, true))
                .collect(),
            after_stage_task_status: stage
                .after_tasks
                .iter()
                .map(|t| task(t, run, &stage.name, false))
                .collect(),
            ..StageStatus::default()
        })
        .collect();
    status.deletion_stage_status = Some(StageStatus {
        stage_name: DELETE_STAGE.into(),
        clusters: input
            .cleanup
            .iter()
            .map(|c| ClusterStatus { cluster_name: c.clone(), ..ClusterStatus::default() })
            .collect(),
        ..StageStatus::default()
    });
    status.conditions.set_condition(
        INITIALIZED,
        true,
        reason::UPDATE_RUN_INITIALIZED_SUCCESSFULLY,
        "ClusterStagedUpdateRun initialized successfully",
        input.now,
        input.generation,
    );
}

/// Approval request name of a stage task.
pub fn approval_name(run: &str, stage: &str, before: bool) -> String {
    if before { format!("{run}-before-{stage}") } else { format!("{run}-{stage}") }
}

fn task(t: &StageTask, run: &crate::repo::model::UpdateRun, stage: &str, before: bool) -> TaskStatus {
    match t {
        StageTask::Approval => TaskStatus {
            type_: "Approval".into(),
            approval_request_name: Some(approval_name(&run.name, stage, before)),
            ..TaskStatus::default()
        },
        StageTask::TimedWait(_) => TaskStatus { type_: "TimedWait".into(), ..TaskStatus::default() },
        StageTask::Verification(_) => TaskStatus { type_: "Verification".into(), ..TaskStatus::default() },
    }
}

/// The strategy spec with durations written as Go prints them (`1m` -> `1m0s`).
fn normalized_spec(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(stages) = spec.get_mut("stages").and_then(Value::as_array_mut) {
        for stage in stages {
            for tasks in ["beforeStageTasks", "afterStageTasks"] {
                for t in stage.get_mut(tasks).and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(w) =
                        t.get("waitTime").and_then(Value::as_str).and_then(|w| duration::parse(w).ok())
                    {
                        t["waitTime"] = Value::String(duration::format(w));
                    }
                }
            }
        }
    }
    spec
}

/// The clusters of each stage, in update order.
pub fn stage_clusters(
    strategy: &Strategy,
    scheduled: &[String],
    clusters: &BTreeMap<String, MemberCluster>,
) -> Result<Vec<Vec<String>>, String> {
    let mut taken: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for stage in &strategy.stages {
        let mut members: Vec<&MemberCluster> = Vec::new();
        for name in scheduled {
            let Some(c) = clusters.get(name) else { continue };
            let matches = match &stage.selector {
                Some(sel) => sel.matches(&c.labels),
                None => !taken.contains_key(name.as_str()), // catch-all: what no earlier stage took
            };
            if !matches {
                continue;
            }
            if let Some(other) = taken.insert(name, &stage.name) {
                return Err(format!(
                    "cluster {name} is selected by more than one stage: {other} and {}",
                    stage.name
                ));
            }
            members.push(c);
        }
        let mut keyed = Vec::new();
        for c in members {
            let order = match &stage.sorting_label_key {
                None => 0,
                Some(key) => match c.labels.get(key) {
                    None => {
                        return Err(format!(
                            "cluster {} in stage {} has no label {key} (the stage's sortingLabelKey)",
                            c.name, stage.name
                        ));
                    }
                    Some(v) => v.parse::<i64>().map_err(|_| {
                        format!(
                            "cluster {} in stage {} has label {key}={v}, which is not an integer (sortingLabelKey)",
                            c.name, stage.name
                        )
                    })?,
                },
            };
            keyed.push((order, c.name.clone()));
        }
        keyed.sort();
        out.push(keyed.into_iter().map(|(_, n)| n).collect());
    }
    let missing: Vec<&str> = scheduled
        .iter()
        .map(String::as_str)
        .filter(|n| clusters.contains_key(*n) && !taken.contains_key(n))
        .collect();
    if !missing.is_empty() {
        return Err(format!("scheduled clusters are not selected by any stage: {}", missing.join(", ")));
    }
    Ok(out)
}
