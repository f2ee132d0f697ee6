//! `state: Stop` and supersession: start no new cluster; the run resumes when
//! its state returns to `Run` (a superseded run never does).

use super::RunInput;
use crate::status::conditions::kind::{PROGRESSING, SUCCEEDED};
use crate::status::conditions::{Conditions, reason};
use crate::status::run::RunStatus;

/// Stops the run: clusters already updated stay updated, none is started.
/// (Local updates complete within a pass, so nothing is left half-way.)
pub fn stop(input: &RunInput<'_>, status: &mut RunStatus) {
    let now = input.now;
    let generation = input.generation;
    for s in status.stages_status.iter_mut() {
        let started = s.start_time.is_some();
        if started && !s.conditions.is_true(SUCCEEDED) {
            let msg = "All the updating clusters have finished updating, the stage is now stopped, waiting to be resumed";
            s.conditions.set_condition(
                PROGRESSING,
                false,
                reason::STAGE_UPDATING_STOPPED,
                msg,
                now,
                generation,
            );
        }
    }
    status.conditions.set_condition(
        PROGRESSING,
        false,
        reason::UPDATE_RUN_STOPPED,
        "The update run has been stopped",
        now,
        generation,
    );
}

/// Ends a run that a newer run on the same placement replaced.
pub fn supersede(input: &RunInput<'_>, status: &mut RunStatus, newer: &str) {
    let now = input.now;
    let generation = input.generation;
    let msg = format!("The update run is superseded by the newer update run {newer} on the same placement");
    status.conditions.set_condition(PROGRESSING, false, reason::UPDATE_RUN_STOPPED, &msg, now, generation);
    status.conditions.set_condition(SUCCEEDED, false, reason::UPDATE_RUN_SUPERSEDED, &msg, now, generation);
}
