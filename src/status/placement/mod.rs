//! `status/clusterresourceplacements/<name>.yaml`: scheduling, what each cluster
//! holds, and the objects that failed to apply, drifted or differ.
//!
//! [`PlacementFacts`] is what a pass learned about a placement on its clusters;
//! [`document`] turns it (and the previous document) into the new one: one
//! [`cluster::cluster_status`] per scheduled cluster, then the placement-level
//! conditions from how the clusters count.

pub mod cluster;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cluster::{FailedObject, ObjectDiff};
use crate::repo::model::{ApplyType, ObjectKey, Placement};
use crate::schedule::Schedule;
use crate::status::conditions::{Condition, Conditions, kind, reason};
use crate::time::Time;
pub use cluster::{ClusterOutcome, ClusterPlacementStatus};

/// Why a cluster is not done yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Waiting {
    /// Applied, but not every object is available yet (SPEC 6.3).
    NotAvailable(String),
    /// The cluster could not be reached; it is retried with backoff.
    Unreachable(String),
}

/// What a pass learned about one placement on its clusters.
#[derive(Debug, Default, Clone)]
pub struct PlacementFacts {
    /// Cluster -> the snapshot index the status said it held before this pass.
    pub held_before: BTreeMap<String, u32>,
    /// Clusters whose status said everything was applied and available.
    pub done_before: BTreeSet<String>,
    /// Clusters whose status holds a ReportDiff result.
    pub reported_before: BTreeSet<String>,
    /// Cluster -> objects (kind, namespace, name) in its `failedPlacements`.
    pub failed_objects: BTreeMap<String, BTreeSet<(String, Option<String>, String)>>,
    /// Cluster -> the snapshot index it was synced to in this pass.
    pub observed: BTreeMap<String, u32>,
    /// Cluster -> objects that failed in this pass (empty vec: synced cleanly).
    pub failures: BTreeMap<String, Vec<FailedObject>>,
    /// Clusters synced in this pass whose objects are all available.
    pub available: BTreeSet<String>,
    /// Clusters not done yet, and why.
    pub waiting: BTreeMap<String, Waiting>,
    /// Cluster -> drifted objects found in this pass (empty: checked, none).
    pub drifts: BTreeMap<String, Vec<ObjectDiff>>,
    /// ReportDiff: cluster -> how it differs from the snapshot.
    pub diffs: BTreeMap<String, Vec<ObjectDiff>>,
    /// Clusters whose objects of the placement were removed in this pass
    /// while still scheduled (a rollback to before they held any).
    pub removed: BTreeSet<String>,
}

impl PlacementFacts {
    /// Facts seeded with what the placement's previous document says each cluster holds.
    pub fn from_status(previous: Option<&PlacementDocument>) -> PlacementFacts {
        let mut facts = PlacementFacts::default();
        for s in previous.map(|d| d.status.placement_statuses.as_slice()).unwrap_or_default() {
            let cluster = s.cluster_name.clone();
            if let Some(index) = s.observed_resource_index.as_deref().and_then(|i| i.parse().ok()) {
                facts.held_before.insert(cluster.clone(), index);
            }
            let failed: BTreeSet<(String, Option<String>, String)> = s
                .failed_placements
                .iter()
                .map(|f| (f.object.kind.clone(), f.object.namespace.clone(), f.object.name.clone()))
                .collect();
            let c = &s.conditions;
            if failed.is_empty() && c.is_true(kind::RESOURCE_APPLIED) && !c.is_false(kind::RESOURCE_AVAILABLE)
            {
                facts.done_before.insert(cluster.clone());
            }
            if c.is_true(kind::RESOURCE_DIFF_REPORTED) {
                facts.reported_before.insert(cluster.clone());
            }
            facts.failed_objects.insert(cluster, failed);
        }
        facts
    }

    /// Whether an object was listed in the cluster's `failedPlacements` before this pass.
    pub fn failed_before(&self, cluster: &str, key: &ObjectKey) -> bool {
        self.failed_objects
            .get(cluster)
            .is_some_and(|f| f.contains(&(key.kind.clone(), key.namespace.clone(), key.name.clone())))
    }

    /// The snapshot a cluster holds (synced in this pass, or before).
    pub fn held(&self, cluster: &str) -> Option<u32> {
        if self.removed.contains(cluster) {
            return None;
        }
        self.observed.get(cluster).or_else(|| self.held_before.get(cluster)).copied()
    }

    /// Whether this pass already synced (or tried to sync) the cluster.
    pub fn touched(&self, cluster: &str) -> bool {
        self.observed.contains_key(cluster)
            || self.removed.contains(cluster)
            || self.failures.contains_key(cluster)
            || self.waiting.contains_key(cluster)
    }

    /// Whether the cluster's status says it holds `index`, fully done (applied
    /// and available, or for ReportDiff, reported).
    pub fn up_to_date(&self, cluster: &str, index: u32, apply: ApplyType) -> bool {
        let done = match apply {
            ApplyType::ReportDiff => &self.reported_before,
            ApplyType::ServerSideApply => &self.done_before,
        };
        self.held_before.get(cluster) == Some(&index) && done.contains(cluster)
    }
}

/// A resource the placement selects (`selectedResources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectedResource {
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_resource_index: Option<String>,
    #[serde(default)]
    pub placement_statuses: Vec<ClusterPlacementStatus>,
    #[serde(default)]
    pub selected_resources: Vec<SelectedResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlacementMetadata {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub generation: i64,
    pub name: String,
}

/// The placement status document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlacementDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: PlacementMetadata,
    /// The placement's `spec` as written (a KubeFleet object has one).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub spec: serde_json::Value,
    #[serde(default)]
    pub status: PlacementStatus,
}

impl PlacementDocument {
    /// The document with every time cleared: two documents that differ only in
    /// times say the same thing.
    pub fn without_times(&self) -> PlacementDocument {
        let mut d = self.clone();
        let zero = Time::default();
        d.status.conditions.iter_mut().for_each(|c| c.last_transition_time = zero);
        for s in &mut d.status.placement_statuses {
            s.conditions.iter_mut().for_each(|c| c.last_transition_time = zero);
            s.failed_placements.iter_mut().for_each(|f| f.condition.last_transition_time = zero);
            s.drifted_placements
                .iter_mut()
                .chain(&mut s.diffed_placements)
                .for_each(|o| o.observation_time = zero);
        }
        d
    }
}

/// What a placement document is built from.
pub struct PlacementInput<'a> {
    pub placement: &'a Placement,
    pub generation: i64,
    pub schedule: &'a Schedule,
    pub latest_index: Option<u32>,
    pub selected: Vec<SelectedResource>,
    pub previous: Option<&'a PlacementDocument>,
    pub facts: &'a PlacementFacts,
    /// Why the placement's resources cannot be snapshotted now, if they cannot.
    pub blocking: &'a [crate::repo::Issue],
    pub now: Time,
}

/// KubeFleet's ClusterResourcePlacementStatus: a placement's status, readable
/// in the namespace it places (`statusReportingScope: NamespaceAccessible`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespacedStatus<'a> {
    api_version: &'static str,
    kind: &'static str,
    last_updated_time: Time,
    metadata: NamespacedMetadata<'a>,
    source_status: &'a PlacementStatus,
}

#[derive(Serialize)]
struct NamespacedMetadata<'a> {
    name: &'a str,
    namespace: &'a str,
}

/// The ClusterResourcePlacementStatus file of a placement's document.
pub fn namespaced_status(doc: &PlacementDocument, namespace: &str, now: Time) -> String {
    let mut value = serde_json::to_value(NamespacedStatus {
        api_version: super::API_VERSION,
        kind: "ClusterResourcePlacementStatus",
        last_updated_time: now,
        metadata: NamespacedMetadata { name: &doc.metadata.name, namespace },
        source_status: &doc.status,
    })
    .unwrap_or_default();
    super::extensions::kubefleet_form(&mut value);
    crate::yaml::to_string(&value)
}

/// Builds the placement status document from the previous one and this pass's
/// facts. When only times would change, the previous document is kept, so a
/// quiet pass commits nothing.
pub fn document(input: PlacementInput<'_>) -> PlacementDocument {
    let (now, generation) = (input.now, input.generation);
    let previous_status = input.previous.map(|d| &d.status);
    let mut conds = previous_status.map(|s| s.conditions.clone()).unwrap_or_default();
    match &input.schedule.unsatisfied {
        None => {
            let msg = "found all the clusters needed as specified by the scheduling policy";
            conds.set_condition(
                kind::PLACEMENT_SCHEDULED,
                true,
                reason::SCHEDULING_FULFILLED,
                msg,
                now,
                generation,
            )
        }
        Some(why) => {
            // Why the others were not picked, as KubeFleet's scheduling decisions say (20 at most).
            let mut message = why.clone();
            let not_picked = &input.schedule.not_picked;
            if !not_picked.is_empty() {
                let shown: Vec<String> =
                    not_picked.iter().take(20).map(|(c, why)| format!("{c} ({why})")).collect();
                message.push_str(&format!("; not picked: {}", shown.join(", ")));
                if not_picked.len() > 20 {
                    message.push_str(&format!(" and {} more", not_picked.len() - 20));
                }
            }
            conds.set_condition(
                kind::PLACEMENT_SCHEDULED,
                false,
                reason::SCHEDULING_UNFULFILLED,
                &message,
                now,
                generation,
            )
        }
    }
    let mut statuses = Vec::new();
    let mut outcomes: Vec<(&str, ClusterOutcome)> = Vec::new();
    let previous_by_cluster: std::collections::HashMap<&str, &ClusterPlacementStatus> = previous_status
        .map(|s| s.placement_statuses.iter().map(|c| (c.cluster_name.as_str(), c)).collect())
        .unwrap_or_default();
    for cluster in &input.schedule.clusters {
        let previous = previous_by_cluster.get(cluster.as_str()).copied();
        let (status, outcome) = cluster::cluster_status(&cluster::ClusterInput {
            cluster,
            apply: input.placement.apply.type_,
            generation,
            previous,
            facts: input.facts,
            now,
        });
        statuses.push(status);
        outcomes.push((cluster, outcome));
    }
    placement_conditions(&mut conds, &outcomes, input.schedule.clusters.len(), now, generation);
    set_blocked(&mut conds, input.blocking, generation, now);
    let doc = PlacementDocument {
        api_version: super::API_VERSION.into(),
        kind: "ClusterResourcePlacement".into(),
        metadata: PlacementMetadata { generation, name: input.placement.name.clone(), ..Default::default() },
        spec: input.placement.spec.clone(),
        status: PlacementStatus {
            conditions: conds,
            observed_resource_index: input.latest_index.map(|i| i.to_string()),
            placement_statuses: statuses,
            selected_resources: input.selected,
        },
    };
    match input.previous {
        Some(prev) if prev.without_times() == doc.without_times() => prev.clone(),
        _ => doc,
    }
}

/// `ClusterResourcePlacementApplied` / `Available` from how the clusters count.
fn placement_conditions(
    conds: &mut Vec<Condition>,
    outcomes: &[(&str, ClusterOutcome)],
    scheduled: usize,
    now: Time,
    generation: i64,
) {
    let with = |o: ClusterOutcome| -> Vec<&str> {
        outcomes.iter().filter(|(_, x)| *x == o).map(|(c, _)| *c).collect()
    };
    let (failed, unreachable, not_available) =
        (with(ClusterOutcome::Failed), with(ClusterOutcome::Unreachable), with(ClusterOutcome::NotAvailable));
    let available = with(ClusterOutcome::Available).len();
    if !failed.is_empty() {
        // Whether the rest is available says nothing while some of it did not apply.
        conds.retain(|x| x.type_ != kind::PLACEMENT_AVAILABLE);
        let msg = format!(
            "Failed to apply manifests to {} clusters, please check the `failedPlacements` status",
            failed.len()
        );
        conds.set_condition(kind::PLACEMENT_APPLIED, false, reason::APPLY_FAILED, &msg, now, generation);
    } else if !unreachable.is_empty() {
        let msg = format!(
            "Cannot reach {} member clusters ({}), please check the `placementStatuses`",
            unreachable.len(),
            unreachable.join(", ")
        );
        conds.set_condition(
            kind::PLACEMENT_APPLIED,
            false,
            reason::CLUSTER_UNREACHABLE,
            &msg,
            now,
            generation,
        );
        conds.set_condition(
            kind::PLACEMENT_AVAILABLE,
            false,
            reason::CLUSTER_UNREACHABLE,
            &msg,
            now,
            generation,
        );
    } else if !not_available.is_empty() {
        let msg = format!(
            "The selected resources are not available yet on {} member clusters ({})",
            not_available.len(),
            not_available.join(", ")
        );
        conds.set_condition(
            kind::PLACEMENT_AVAILABLE,
            false,
            reason::NOT_AVAILABLE_YET,
            &msg,
            now,
            generation,
        );
    } else if available > 0 && available == scheduled {
        let msg = format!("Successfully applied resources to {available} member clusters");
        conds.set_condition(kind::PLACEMENT_APPLIED, true, reason::APPLY_SUCCEEDED, &msg, now, generation);
        let msg = format!("The selected resources are available on {available} member clusters");
        conds.set_condition(
            kind::PLACEMENT_AVAILABLE,
            true,
            reason::RESOURCE_AVAILABLE,
            &msg,
            now,
            generation,
        );
    }
}

/// Records why the placement's resources cannot be snapshotted (condition
/// `ResourcesValid`): a broken file never looks like a deletion, but it is visible.
fn set_blocked(conds: &mut Vec<Condition>, issues: &[crate::repo::Issue], generation: i64, now: Time) {
    match issues.first() {
        Some(first) => {
            let more =
                if issues.len() > 1 { format!(" (and {} more)", issues.len() - 1) } else { String::new() };
            let message = format!("no new resource snapshot until this is fixed: {first}{more}");
            conds.set_condition(
                kind::RESOURCES_VALID,
                false,
                reason::INVALID_RESOURCES,
                &message,
                now,
                generation,
            );
        }
        None if conds.get_condition(kind::RESOURCES_VALID).is_some() => {
            let message = "all selected resources parse and validate";
            conds.set_condition(
                kind::RESOURCES_VALID,
                true,
                reason::RESOURCES_VALID,
                message,
                now,
                generation,
            );
        }
        None => {}
    }
}

#[cfg(test)]
mod tests;
