//! `status/clusterstagedupdateruns/<run>.yaml`: the run document, its status
//! shaped like KubeFleet's `ClusterStagedUpdateRun.status`. The engine keeps
//! [`RunStatus`]; the reconciler wraps it in a [`RunDocument`].
//!
//! Fields are declared in the order they are written (alphabetical).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conditions::{Condition, Conditions, kind};
use crate::time::Time;

/// Stage name of the deletion stage.
pub const DELETE_STAGE: &str = "kubernetes-fleet.io/deleteStage";
/// Annotation marking a run gitfleet created by itself.
pub const AUTO_RUN: &str = "gitfleet.dev/auto-run";
/// Annotation with the first-parent position of the commit that created a run
/// (for automatic runs, of the snapshot it rolls out).
pub const SEQUENCE: &str = "gitfleet.dev/sequence";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(rename = "type")]
    pub type_: String,
    /// TimedWait (GKE's soak time): when the wait ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_stage_task_status: Vec<TaskStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_stage_task_status: Vec<TaskStatus>,
    #[serde(default)]
    pub clusters: Vec<ClusterStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    pub stage_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_stage_status: Option<StageStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_observed_cluster_count: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_snapshot_index_used: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_snapshot_index_used: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_update_strategy_snapshot: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages_status: Vec<StageStatus>,
}

impl RunStatus {
    /// Whether the run reached an end (succeeded, failed or superseded).
    pub fn finished(&self) -> bool {
        self.conditions.get_condition(kind::SUCCEEDED).is_some()
    }

    /// The snapshot index the run rolls out, once initialized.
    pub fn resource_index(&self) -> Option<u32> {
        self.resource_snapshot_index_used.as_deref().and_then(|i| i.parse().ok())
    }

    /// The stage a cluster belongs to.
    pub fn stage_of(&self, cluster: &str) -> Option<&str> {
        self.stages_status
            .iter()
            .find(|s| s.clusters.iter().any(|c| c.cluster_name == cluster))
            .map(|s| s.stage_name.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Time,
    pub generation: i64,
    pub name: String,
}

/// The whole run document: the run's spec as committed (or, for an automatic
/// run, as gitfleet made it) and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: RunMetadata,
    pub spec: Value,
    #[serde(default)]
    pub status: RunStatus,
}

/// How a run document is made: everything but the status.
#[derive(Debug, Clone)]
pub struct RunHeader<'a> {
    pub name: &'a str,
    pub generation: i64,
    pub created: Time,
    pub spec: &'a Value,
    pub sequence: usize,
    pub auto: bool,
}

impl RunDocument {
    pub fn new(header: RunHeader<'_>, status: RunStatus) -> RunDocument {
        let mut annotations = BTreeMap::from([(SEQUENCE.to_string(), header.sequence.to_string())]);
        if header.auto {
            annotations.insert(AUTO_RUN.to_string(), "true".to_string());
        }
        RunDocument {
            api_version: super::API_VERSION.to_string(),
            kind: "ClusterStagedUpdateRun".to_string(),
            metadata: RunMetadata {
                annotations,
                creation_timestamp: header.created,
                generation: header.generation,
                name: header.name.to_string(),
            },
            spec: header.spec.clone(),
            status,
        }
    }

    /// Whether gitfleet created this run by itself (`strategy.autoRun`).
    pub fn is_auto(&self) -> bool {
        self.metadata.annotations.get(AUTO_RUN).is_some_and(|v| v == "true")
    }

    /// The first-parent position recorded for the run.
    pub fn sequence(&self) -> Option<usize> {
        self.metadata.annotations.get(SEQUENCE)?.parse().ok()
    }

    fn spec_text(&self, field: &str) -> Option<&str> {
        self.spec.get(field)?.as_str()
    }

    pub fn placement_name(&self) -> Option<&str> {
        self.spec_text("placementName")
    }

    pub fn strategy_name(&self) -> Option<&str> {
        self.spec_text("stagedRolloutStrategyName")
    }

    pub fn resource_snapshot_index(&self) -> Option<u32> {
        self.spec_text("resourceSnapshotIndex")?.parse().ok()
    }
}
