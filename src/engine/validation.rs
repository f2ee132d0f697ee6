//! Validation on every pass after initialization: the run can only go on while
//! what it was initialized with still holds.

use super::RunInput;
use crate::repo::model::Strategy;
use crate::repo::validate::strategy_from_spec;
use crate::status::run::RunStatus;

/// The strategy recorded at initialization, checked against the status; an
/// error ends the run (`UpdateRunFailed`).
pub fn validate(input: &RunInput<'_>, status: &RunStatus) -> Result<Strategy, String> {
    if input.placement.is_none() {
        return Err(format!("parent placement {} not found", input.run.placement));
    }
    let spec = status.staged_update_strategy_snapshot.as_ref().ok_or("the run has no strategy snapshot")?;
    let strategy = strategy_from_spec(&input.run.strategy, spec).map_err(|issues| {
        let list: Vec<String> = issues.iter().map(|i| i.message.clone()).collect();
        format!("the recorded strategy snapshot is invalid: {}", list.join("; "))
    })?;
    let recorded: Vec<&str> = status.stages_status.iter().map(|s| s.stage_name.as_str()).collect();
    let expected: Vec<&str> = strategy.stages.iter().map(|s| s.name.as_str()).collect();
    if recorded != expected {
        return Err(format!(
            "the stages in the status ({}) do not match the strategy snapshot ({})",
            recorded.join(", "),
            expected.join(", ")
        ));
    }
    for (stage, recorded) in strategy.stages.iter().zip(&status.stages_status) {
        if recorded.before_stage_task_status.len() != stage.before_tasks.len()
            || recorded.after_stage_task_status.len() != stage.after_tasks.len()
        {
            return Err(format!(
                "the tasks of stage {} in the status do not match the strategy snapshot",
                stage.name
            ));
        }
    }
    Ok(strategy)
}
