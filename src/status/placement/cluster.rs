//! One entry of `placementStatuses`: what a placement's snapshot did on one
//! cluster (conditions, objects that failed, drifted or differ).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PlacementFacts, Waiting};
use crate::cluster::{FailedObject, ObjectDiff};
use crate::render::EnvelopeRef;
use crate::repo::model::{ApplyType, ObjectKey};
use crate::status::conditions::{Condition, Conditions, kind, reason};
use crate::time::Time;

/// The status of a placement on one cluster (fields in written order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlacementStatus {
    pub cluster_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffed_placements: Vec<DiffedObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted_placements: Vec<DiffedObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_placements: Vec<FailedPlacement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_resource_index: Option<String>,
}

/// The envelope an object came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
}

impl EnvelopeEntry {
    fn of(env: &EnvelopeRef) -> EnvelopeEntry {
        EnvelopeEntry {
            name: env.name.clone(),
            namespace: env.namespace.clone(),
            type_: env.type_.as_str().into(),
        }
    }
}

/// The condition of one manifest (KubeFleet writes it without a generation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestCondition {
    pub last_transition_time: Time,
    pub message: String,
    pub reason: String,
    pub status: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// Which object an entry is about (the group is left out for the core group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectRef {
    fn of(key: &ObjectKey) -> ObjectRef {
        ObjectRef {
            group: key.group.clone(),
            kind: key.kind.clone(),
            name: key.name.clone(),
            namespace: key.namespace.clone(),
        }
    }

    /// Whether this is the object `key` names (the group aside, as KubeFleet matches them).
    pub fn is(&self, key: &ObjectKey) -> bool {
        self.kind == key.kind && self.name == key.name && self.namespace == key.namespace
    }
}

/// An object that could not be applied (`failedPlacements`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedPlacement {
    pub condition: ManifestCondition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EnvelopeEntry>,
    #[serde(flatten)]
    pub object: ObjectRef,
    pub version: String,
}

impl FailedPlacement {
    fn of(f: &FailedObject, now: Time) -> FailedPlacement {
        FailedPlacement {
            condition: ManifestCondition {
                last_transition_time: now,
                message: f.message.clone(),
                reason: reason::APPLY_MANIFEST_FAILED.into(),
                status: "False".into(),
                type_: "Applied".into(),
            },
            envelope: f.envelope.as_ref().map(EnvelopeEntry::of),
            object: ObjectRef::of(&f.key),
            version: f.api_version.clone(),
        }
    }
}

/// One field that differs: where, and its value on each side (JSON for
/// anything but a string, as KubeFleet shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldEntry {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_in_hub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_in_member: Option<String>,
}

/// An object that drifted (`driftedPlacements`) or differs from the snapshot
/// (`diffedPlacements`, ReportDiff); the two lists name their fields apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffedObject {
    pub diff: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EnvelopeEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_diffed_observed_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_drifted_observed_time: Option<Time>,
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Written only when false: the object is missing on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_on_cluster: Option<bool>,
    pub observation_time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_diffs: Option<Vec<FieldEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_drifts: Option<Vec<FieldEntry>>,
    /// The generation of the object on the cluster when observed (0 for
    /// kinds without one, or an object missing there).
    #[serde(default)]
    pub target_cluster_observed_generation: i64,
    pub version: String,
}

/// Which of the two lists an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiffList {
    Drifted,
    Diffed,
}

/// A JSON value as KubeFleet shows drift values: strings as they are, the rest as JSON.
fn shown(v: &Option<Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

impl DiffedObject {
    /// An entry for `d`, keeping the first observation time of the same object
    /// from the previous list.
    fn of(d: &ObjectDiff, list: DiffList, previous: &[DiffedObject], now: Time) -> DiffedObject {
        let fields: Vec<FieldEntry> = d
            .fields
            .iter()
            .map(|f| FieldEntry {
                path: if f.path.is_empty() { "/".into() } else { f.path.clone() },
                value_in_hub: shown(&f.hub),
                value_in_member: shown(&f.member),
            })
            .collect();
        let before = previous.iter().find(|p| p.object.is(&d.key));
        let mut entry = DiffedObject {
            diff: d.unified.clone(),
            envelope: d.envelope.as_ref().map(EnvelopeEntry::of),
            first_diffed_observed_time: None,
            first_drifted_observed_time: None,
            object: ObjectRef::of(&d.key),
            object_on_cluster: (!d.on_cluster).then_some(false),
            observation_time: now,
            target_cluster_observed_generation: d.live_generation,
            observed_diffs: None,
            observed_drifts: None,
            version: crate::repo::scope::version_of(&d.api_version).to_string(),
        };
        match list {
            DiffList::Drifted => {
                entry.observed_drifts = Some(fields);
                entry.first_drifted_observed_time =
                    Some(before.and_then(|b| b.first_drifted_observed_time).unwrap_or(now));
            }
            DiffList::Diffed => {
                entry.observed_diffs = Some(fields);
                entry.first_diffed_observed_time =
                    Some(before.and_then(|b| b.first_diffed_observed_time).unwrap_or(now));
            }
        }
        entry
    }
}

/// How a cluster counts towards the placement-level conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterOutcome {
    /// Some objects failed to apply.
    Failed,
    /// The cluster does not answer.
    Unreachable,
    /// Applied; not every object is available yet.
    NotAvailable,
    /// Applied and (as far as is known) available.
    Available,
    /// Nothing applied yet, or a ReportDiff placement.
    Other,
}

/// What one cluster's entry is built from.
pub struct ClusterInput<'a> {
    pub cluster: &'a str,
    pub apply: ApplyType,
    pub generation: i64,
    pub previous: Option<&'a ClusterPlacementStatus>,
    pub facts: &'a PlacementFacts,
    pub now: Time,
}

impl ClusterInput<'_> {
    fn unreachable(&self) -> Option<&str> {
        match self.facts.waiting.get(self.cluster) {
            Some(Waiting::Unreachable(why)) => Some(why.as_str()),
            _ => None,
        }
    }

    /// This pass's list if the cluster was looked at, else the previous one.
    fn listed(&self, list: DiffList) -> Vec<DiffedObject> {
        let (found, before) = match list {
            DiffList::Drifted => {
                (self.facts.drifts.get(self.cluster), self.previous.map(|p| &p.drifted_placements))
            }
            DiffList::Diffed => {
                (self.facts.diffs.get(self.cluster), self.previous.map(|p| &p.diffed_placements))
            }
        };
        let before = before.map(Vec::as_slice).unwrap_or_default();
        match found {
            Some(found) => found.iter().map(|d| DiffedObject::of(d, list, before, self.now)).collect(),
            None => before.to_vec(),
        }
    }
}

/// Builds one cluster's entry and says how it counts for the placement.
pub fn cluster_status(input: &ClusterInput<'_>) -> (ClusterPlacementStatus, ClusterOutcome) {
    let (cluster, now, generation) = (input.cluster, input.now, input.generation);
    let mut s = input.previous.cloned().unwrap_or_default();
    s.cluster_name = cluster.to_string();
    // What the cluster holds: synced in this pass, or as the previous document said.
    let held_before = s.observed_resource_index.take().and_then(|i| i.parse::<u32>().ok());
    s.observed_resource_index =
        input.facts.observed.get(cluster).copied().or(held_before).map(|i| i.to_string());
    let c = &mut s.conditions;
    let msg =
        format!("Successfully scheduled resources for placement in {cluster}: picked by scheduling policy");
    c.set_condition(kind::RESOURCE_SCHEDULED, true, reason::SCHEDULE_SUCCEEDED, &msg, now, generation);
    if input.facts.removed.contains(cluster) {
        // Rolled back to before it held anything: scheduled, nothing applied.
        s.observed_resource_index = None;
        s.conditions.retain(|x| x.type_ == kind::RESOURCE_SCHEDULED);
        s.failed_placements.clear();
        s.drifted_placements.clear();
        s.diffed_placements.clear();
        return (s, ClusterOutcome::Other);
    }
    // Only the lists of the placement's current apply type are kept.
    if input.apply == ApplyType::ReportDiff {
        s.diffed_placements = input.listed(DiffList::Diffed);
        s.drifted_placements.clear();
        s.failed_placements.clear();
        report_diff_conditions(input, &mut s);
        return (s, ClusterOutcome::Other);
    }
    s.drifted_placements = input.listed(DiffList::Drifted);
    s.diffed_placements.clear();
    if let Some(failed) = input.facts.failures.get(cluster) {
        s.failed_placements = failed.iter().map(|f| FailedPlacement::of(f, now)).collect();
    }
    let outcome = apply_conditions(input, &mut s);
    (s, outcome)
}

/// ReportDiff: only `ResourceDiffReported`, set when the cluster was looked at.
fn report_diff_conditions(input: &ClusterInput<'_>, s: &mut ClusterPlacementStatus) {
    let (now, generation) = (input.now, input.generation);
    let c = &mut s.conditions;
    c.retain(|x| x.type_ != kind::RESOURCE_APPLIED && x.type_ != kind::RESOURCE_AVAILABLE);
    if let Some(why) = input.unreachable() {
        c.set_condition(
            kind::RESOURCE_DIFF_REPORTED,
            false,
            reason::CLUSTER_UNREACHABLE,
            why,
            now,
            generation,
        );
    } else if input.facts.diffs.contains_key(input.cluster) {
        let (why, msg) = match s.diffed_placements.len() {
            0 => (reason::NO_DIFF_FOUND, "The cluster holds exactly what the snapshot wants".to_string()),
            n => (
                reason::DIFF_REPORTED,
                format!(
                    "{n} objects differ from the snapshot; nothing was changed (applyStrategy ReportDiff)"
                ),
            ),
        };
        c.set_condition(kind::RESOURCE_DIFF_REPORTED, true, why, &msg, now, generation);
    }
}

/// Applying placements: `ResourceApplied` and `ResourceAvailable`.
fn apply_conditions(input: &ClusterInput<'_>, s: &mut ClusterPlacementStatus) -> ClusterOutcome {
    let (cluster, now, generation) = (input.cluster, input.now, input.generation);
    let c = &mut s.conditions;
    if let Some(why) = input.unreachable() {
        c.retain(|x| x.type_ != kind::RESOURCE_DIFF_REPORTED && x.type_ != kind::RESOURCE_AVAILABLE);
        c.set_condition(kind::RESOURCE_APPLIED, false, reason::CLUSTER_UNREACHABLE, why, now, generation);
        return ClusterOutcome::Unreachable;
    }
    if !s.failed_placements.is_empty() {
        c.retain(|x| x.type_ != kind::RESOURCE_DIFF_REPORTED && x.type_ != kind::RESOURCE_AVAILABLE);
        let msg = "Failed to apply manifests, please check the `failedPlacements` status";
        c.set_condition(kind::RESOURCE_APPLIED, false, reason::APPLY_FAILED, msg, now, generation);
        return ClusterOutcome::Failed;
    }
    if s.observed_resource_index.is_none() {
        return ClusterOutcome::Other;
    }
    c.retain(|x| x.type_ != kind::RESOURCE_DIFF_REPORTED);
    let msg = "Successfully applied resources";
    c.set_condition(kind::RESOURCE_APPLIED, true, reason::APPLY_SUCCEEDED, msg, now, generation);
    match input.facts.waiting.get(cluster) {
        Some(Waiting::NotAvailable(why)) => {
            c.set_condition(kind::RESOURCE_AVAILABLE, false, reason::NOT_AVAILABLE_YET, why, now, generation)
        }
        _ if input.facts.available.contains(cluster) => {
            let msg = "All resources are available";
            c.set_condition(kind::RESOURCE_AVAILABLE, true, reason::RESOURCE_AVAILABLE, msg, now, generation)
        }
        _ => {}
    }
    if c.is_false(kind::RESOURCE_AVAILABLE) {
        ClusterOutcome::NotAvailable
    } else {
        ClusterOutcome::Available
    }
}
