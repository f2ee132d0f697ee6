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
    /// The snapshot the cluster held before the run first updated it (`none`
    /// when it held none of the placement's); recorded by runs that may roll
    /// back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_resource_snapshot_index: Option<String>,
}

/// `previousResourceSnapshotIndex` of a cluster that held no snapshot.
pub const NO_PREVIOUS: &str = "none";

/// One measurement of a Verification task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// The cluster measured (perCluster tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Why the measurement is inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Successful, Failed or Inconclusive.
    pub phase: String,
    pub time: Time,
    /// The result (`0.02`, or `[0.01, 0.3]` for several samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Verification: every measurement taken, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
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
    /// The placement's apply strategy when the run started, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_strategy: Option<Value>,
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
    /// Where the run stands, in one word (the `state` label of the metrics):
    /// Initializing, Progressing, Waiting, Stopped, Succeeded, Failed,
    /// Superseded or RolledBack.
    pub fn state(&self) -> &'static str {
        use crate::status::conditions::kind::{INITIALIZED, PROGRESSING, SUCCEEDED};
        use crate::status::conditions::reason::{
            UPDATE_RUN_ROLLED_BACK, UPDATE_RUN_STOPPED, UPDATE_RUN_SUCCEEDED, UPDATE_RUN_SUPERSEDED,
        };
        if let Some(done) = self.conditions.get_condition(SUCCEEDED) {
            return match done.reason.as_str() {
                UPDATE_RUN_SUCCEEDED => "Succeeded",
                UPDATE_RUN_SUPERSEDED => "Superseded",
                UPDATE_RUN_ROLLED_BACK => "RolledBack",
                _ => "Failed",
            };
        }
        if !self.conditions.is_true(INITIALIZED) {
            return "Initializing";
        }
        match self.conditions.get_condition(PROGRESSING) {
            Some(p) if p.status == "True" => "Progressing",
            Some(p) if p.reason == UPDATE_RUN_STOPPED => "Stopped",
            _ => "Waiting",
        }
    }

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
#[serde(rename_all = "camelCase", default)]
pub struct RunMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Time,
    pub generation: i64,
    pub name: String,
}

/// The whole run document: the run's spec as committed (or, for an automatic
/// run, as gitfleet made it) and its status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::status::conditions::reason;

    fn document(auto: bool) -> RunDocument {
        let spec = json!({
            "placementName": "example-placement",
            "resourceSnapshotIndex": "2",
            "stagedRolloutStrategyName": "example-strategy",
        });
        let mut status = RunStatus {
            resource_snapshot_index_used: Some("2".into()),
            stages_status: vec![StageStatus {
                stage_name: "staging".into(),
                clusters: vec![ClusterStatus { cluster_name: "member2".into(), ..ClusterStatus::default() }],
                after_stage_task_status: vec![TaskStatus {
                    type_: "TimedWait".into(),
                    wait_until: Some(Time::from_second(1_753_219_748)),
                    ..TaskStatus::default()
                }],
                start_time: Some(Time::from_second(1_753_219_688)),
                ..StageStatus::default()
            }],
            ..RunStatus::default()
        };
        let now = Time::from_second(1_753_219_688);
        let msg = "All stages are completed";
        status.conditions.set_condition(kind::SUCCEEDED, true, reason::UPDATE_RUN_SUCCEEDED, msg, now, 1);
        let header = RunHeader {
            name: "example-placement-2",
            generation: 1,
            created: now,
            spec: &spec,
            sequence: 7,
            auto,
        };
        RunDocument::new(header, status)
    }

    #[test]
    fn an_automatic_run_document() {
        let doc = document(true);
        insta::assert_snapshot!(crate::yaml::to_string(&doc));
        assert!(doc.is_auto());
        assert_eq!(doc.sequence(), Some(7));
        assert_eq!(
            (doc.placement_name(), doc.strategy_name(), doc.resource_snapshot_index()),
            (Some("example-placement"), Some("example-strategy"), Some(2))
        );
        assert!(doc.status.finished());
        assert_eq!(doc.status.resource_index(), Some(2));
        assert_eq!(doc.status.stage_of("member2"), Some("staging"));
        assert_eq!(doc.status.stage_of("member9"), None);
    }

    #[test]
    fn a_committed_run_is_not_automatic_and_reads_back() {
        let doc = document(false);
        assert!(!doc.is_auto());
        let back: RunDocument = crate::yaml::parse_typed(crate::yaml::to_string(&doc).as_bytes()).unwrap();
        assert_eq!(back, doc);
    }
}
