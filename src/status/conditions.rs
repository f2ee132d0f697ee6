//! Kubernetes-style conditions as KubeFleet writes them, and every condition
//! type and reason gitfleet uses, named once.

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// One condition. Fields in the order they are written (alphabetical, as
/// every gitfleet document).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub last_transition_time: Time,
    pub message: String,
    pub observed_generation: i64,
    pub reason: String,
    pub status: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// Conditions with KubeFleet's update semantics: the transition time moves only
/// when the status changes.
pub trait Conditions {
    fn get_condition(&self, type_: &str) -> Option<&Condition>;
    fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: Time,
        generation: i64,
    );
    fn is_true(&self, type_: &str) -> bool {
        self.get_condition(type_).is_some_and(|c| c.status == "True")
    }
    fn is_false(&self, type_: &str) -> bool {
        self.get_condition(type_).is_some_and(|c| c.status == "False")
    }
}

impl Conditions for Vec<Condition> {
    fn get_condition(&self, type_: &str) -> Option<&Condition> {
        self.iter().find(|c| c.type_ == type_)
    }

    fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: Time,
        generation: i64,
    ) {
        let status = if status { "True" } else { "False" };
        match self.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.status = status.into();
                    c.last_transition_time = now;
                }
                c.reason = reason.into();
                c.message = message.into();
                c.observed_generation = generation;
            }
            None => self.push(Condition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: now,
                observed_generation: generation,
            }),
        }
    }
}

/// Condition types.
pub mod kind {
    // Runs, stages and clusters of a run.
    pub const INITIALIZED: &str = "Initialized";
    pub const PROGRESSING: &str = "Progressing";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const STARTED: &str = "Started";
    pub const CLUSTER_SET_CHANGED: &str = "ClusterSetChanged";
    // After-stage and before-stage tasks.
    pub const WAIT_TIME_ELAPSED: &str = "WaitTimeElapsed";
    pub const APPROVAL_REQUEST_CREATED: &str = "ApprovalRequestCreated";
    pub const APPROVAL_REQUEST_APPROVED: &str = "ApprovalRequestApproved";
    /// gitfleet's Verification task: its measurements passed (or failed).
    pub const VERIFIED: &str = "Verified";
    /// A run (False while it rolls back, True once done) or one of its
    /// clusters (True when it went back, False when it could not).
    pub const ROLLED_BACK: &str = "RolledBack";
    /// A cluster's rollback was issued.
    pub const ROLLBACK_STARTED: &str = "RollbackStarted";
    // Approval requests.
    pub const APPROVED: &str = "Approved";
    pub const APPROVAL_ACCEPTED: &str = "ApprovalAccepted";
    // Placements.
    pub const PLACEMENT_SCHEDULED: &str = "ClusterResourcePlacementScheduled";
    pub const PLACEMENT_APPLIED: &str = "ClusterResourcePlacementApplied";
    pub const PLACEMENT_AVAILABLE: &str = "ClusterResourcePlacementAvailable";
    pub const RESOURCES_VALID: &str = "ResourcesValid";
    // A placement on one cluster.
    pub const RESOURCE_SCHEDULED: &str = "ResourceScheduled";
    pub const RESOURCE_APPLIED: &str = "ResourceApplied";
    pub const RESOURCE_AVAILABLE: &str = "ResourceAvailable";
    pub const RESOURCE_DIFF_REPORTED: &str = "ResourceDiffReported";
}

/// Condition reasons.
pub mod reason {
    pub const SCHEDULING_FULFILLED: &str = "SchedulingPolicyFulfilled";
    pub const SCHEDULING_UNFULFILLED: &str = "SchedulingPolicyUnfulfilled";
    pub const SCHEDULE_SUCCEEDED: &str = "ScheduleSucceeded";
    pub const APPLY_SUCCEEDED: &str = "ApplySucceeded";
    pub const APPLY_FAILED: &str = "ApplyFailed";
    pub const CLUSTER_UNREACHABLE: &str = "ClusterUnreachable";
    pub const RESOURCE_AVAILABLE: &str = "ResourceAvailable";
    pub const NOT_AVAILABLE_YET: &str = "ResourceNotAvailableYet";
    pub const DIFF_REPORTED: &str = "DiffReported";
    pub const NO_DIFF_FOUND: &str = "NoDiffFound";
    pub const INVALID_RESOURCES: &str = "InvalidResources";
    pub const RESOURCES_VALID: &str = "ResourcesValid";
    pub const APPLY_MANIFEST_FAILED: &str = "AppliedManifestFailedReason";
    pub const APPROVAL_ACCEPTED: &str = "ApprovalRequestApprovalAccepted";
    pub const APPROVAL_NOT_ACCEPTED: &str = "ApprovalNotAccepted";
    pub const UPDATE_RUN_SUCCEEDED: &str = "UpdateRunSucceeded";
    pub const UPDATE_RUN_SUPERSEDED: &str = "UpdateRunSuperseded";
    // The run engine's, as KubeFleet's update run controller sets them.
    pub const AFTER_STAGE_TASK_WAIT_TIME_ELAPSED: &str = "AfterStageTaskWaitTimeElapsed";
    pub const CLUSTER_UPDATING_FAILED: &str = "ClusterUpdatingFailed";
    pub const CLUSTER_UPDATING_SKIPPED: &str = "ClusterUpdatingSkipped";
    pub const CLUSTER_UPDATING_STARTED: &str = "ClusterUpdatingStarted";
    pub const CLUSTER_UPDATING_SUCCEEDED: &str = "ClusterUpdatingSucceeded";
    pub const CLUSTERS_CHANGED_DURING_RUN: &str = "ClustersChangedDuringRun";
    pub const STAGE_TASK_APPROVAL_REQUEST_APPROVED: &str = "StageTaskApprovalRequestApproved";
    pub const STAGE_TASK_APPROVAL_REQUEST_CREATED: &str = "StageTaskApprovalRequestCreated";
    pub const STAGE_UPDATING_FAILED: &str = "StageUpdatingFailed";
    pub const STAGE_UPDATING_SKIPPED_NO_CLUSTERS: &str = "StageUpdatingSkippedNoClusters";
    pub const STAGE_UPDATING_STARTED: &str = "StageUpdatingStarted";
    pub const STAGE_UPDATING_STOPPED: &str = "StageUpdatingStopped";
    pub const STAGE_UPDATING_SUCCEEDED: &str = "StageUpdatingSucceeded";
    pub const STAGE_UPDATING_WAITING: &str = "StageUpdatingWaiting";
    pub const UPDATE_RUN_FAILED: &str = "UpdateRunFailed";
    pub const UPDATE_RUN_INITIALIZED_FAILED: &str = "UpdateRunInitializedFailed";
    pub const UPDATE_RUN_INITIALIZED_SUCCESSFULLY: &str = "UpdateRunInitializedSuccessfully";
    pub const UPDATE_RUN_PROGRESSING: &str = "UpdateRunProgressing";
    pub const UPDATE_RUN_STOPPED: &str = "UpdateRunStopped";
    pub const UPDATE_RUN_WAITING: &str = "UpdateRunWaiting";
    // Verification and automatic rollback (gitfleet's).
    pub const STAGE_TASK_VERIFICATION_SUCCEEDED: &str = "StageTaskVerificationSucceeded";
    pub const STAGE_TASK_VERIFICATION_FAILED: &str = "StageTaskVerificationFailed";
    pub const UPDATE_RUN_ROLLING_BACK: &str = "UpdateRunRollingBack";
    pub const UPDATE_RUN_ROLLED_BACK: &str = "UpdateRunRolledBack";
    pub const CLUSTER_ROLLBACK_STARTED: &str = "ClusterRollbackStarted";
    pub const CLUSTER_ROLLED_BACK: &str = "ClusterRolledBack";
    pub const CLUSTER_ROLLBACK_FAILED: &str = "ClusterRollbackFailed";
}
