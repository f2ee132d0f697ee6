//! `status/clusterresourceplacements/<name>.yaml`: scheduling, what each cluster
//! holds, and the objects that failed to apply (with their envelope).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::FailedObject;
use crate::engine::status::{Condition, Conditions};
use crate::repo::model::Placement;
use crate::schedule::Schedule;

/// What a pass learned about one placement on its clusters.
#[derive(Debug, Default, Clone)]
pub struct PlacementFacts {
    /// Cluster -> the snapshot index it holds.
    pub observed: BTreeMap<String, u32>,
    /// Cluster -> objects that failed in this pass (empty vec: synced cleanly).
    pub failures: BTreeMap<String, Vec<FailedObject>>,
}

fn failed_json(f: &FailedObject, now: &str) -> Value {
    let mut v = json!({
        "condition": {
            "type": "Applied",
            "status": "False",
            "reason": "AppliedManifestFailedReason",
            "message": f.message,
            "lastTransitionTime": now,
        },
        "kind": f.key.kind,
        "name": f.key.name,
        "version": f.api_version,
    });
    if !f.key.group.is_empty() {
        v["group"] = json!(f.key.group);
    }
    if let Some(ns) = &f.key.namespace {
        v["namespace"] = json!(ns);
    }
    if let Some(env) = &f.envelope {
        let mut e = json!({ "name": env.name, "type": env.type_.as_str() });
        if let Some(ns) = &env.namespace {
            e["namespace"] = json!(ns);
        }
        v["envelope"] = e;
    }
    v
}

/// Builds the placement status document from the previous one and this pass's facts.
#[allow(clippy::too_many_arguments)]
pub fn document(
    p: &Placement,
    generation: i64,
    schedule: &Schedule,
    latest_index: Option<u32>,
    selected: &[Value],
    previous: Option<&Value>,
    facts: &PlacementFacts,
    now: &str,
) -> Value {
    let prev_status = |cluster: &str| -> Option<Value> {
        previous?
            .pointer("/status/placementStatuses")?
            .as_array()?
            .iter()
            .find(|s| s["clusterName"] == cluster)
            .cloned()
    };
    let mut conds: Vec<Condition> = previous
        .and_then(|d| d.pointer("/status/conditions"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    match &schedule.unsatisfied {
        None => conds.set_condition(
            "ClusterResourcePlacementScheduled",
            true,
            "SchedulingPolicyFulfilled",
            "found all the clusters needed as specified by the scheduling policy",
            now,
            generation,
        ),
        Some(why) => conds.set_condition(
            "ClusterResourcePlacementScheduled",
            false,
            "SchedulingPolicyUnfulfilled",
            why,
            now,
            generation,
        ),
    }
    let mut statuses = Vec::new();
    let mut failed_clusters = 0;
    let mut available = 0;
    for cluster in &schedule.clusters {
        let prev = prev_status(cluster);
        let observed = facts
            .observed
            .get(cluster)
            .copied()
            .or_else(|| prev.as_ref().and_then(|s| s["observedResourceIndex"].as_str()?.parse().ok()));
        let failures: Vec<Value> = match facts.failures.get(cluster) {
            Some(list) => list.iter().map(|f| failed_json(f, now)).collect(),
            None => prev.as_ref().and_then(|s| s["failedPlacements"].as_array().cloned()).unwrap_or_default(),
        };
        let mut c: Vec<Condition> = prev
            .as_ref()
            .and_then(|s| serde_json::from_value(s["conditions"].clone()).ok())
            .unwrap_or_default();
        c.set_condition(
            "ResourceScheduled",
            true,
            "ScheduleSucceeded",
            &format!(
                "Successfully scheduled resources for placement in {cluster}: picked by scheduling policy"
            ),
            now,
            generation,
        );
        if !failures.is_empty() {
            failed_clusters += 1;
            c.set_condition(
                "ResourceApplied",
                false,
                "ApplyFailed",
                "Failed to apply manifests, please check the `failedPlacements` status",
                now,
                generation,
            );
        } else if observed.is_some() {
            available += 1;
            c.set_condition(
                "ResourceApplied",
                true,
                "ApplySucceeded",
                "Successfully applied resources",
                now,
                generation,
            );
        }
        let mut s = json!({ "clusterName": cluster, "conditions": c });
        if let Some(i) = observed {
            s["observedResourceIndex"] = json!(i.to_string());
        }
        if !failures.is_empty() {
            s["failedPlacements"] = Value::Array(failures);
        }
        statuses.push(s);
    }
    if failed_clusters > 0 {
        conds.set_condition(
            "ClusterResourcePlacementApplied",
            false,
            "ApplyFailed",
            &format!("Failed to apply manifests to {failed_clusters} clusters, please check the `failedPlacements` status"),
            now,
            generation,
        );
    } else if available > 0 && available == schedule.clusters.len() {
        conds.set_condition(
            "ClusterResourcePlacementApplied",
            true,
            "ApplySucceeded",
            &format!("Successfully applied resources to {available} member clusters"),
            now,
            generation,
        );
        conds.set_condition(
            "ClusterResourcePlacementAvailable",
            true,
            "ResourceAvailable",
            &format!("The selected resources are available on {available} member clusters"),
            now,
            generation,
        );
    }
    let mut status = json!({
        "conditions": conds,
        "placementStatuses": statuses,
        "selectedResources": selected,
    });
    if let Some(i) = latest_index {
        status["observedResourceIndex"] = json!(i.to_string());
    }
    json!({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
        "kind": "ClusterResourcePlacement",
        "metadata": { "name": p.name, "generation": generation },
        "status": status,
    })
}

/// Records on the placement why its resources cannot be snapshotted (condition
/// `ResourcesValid`): a broken file never looks like a deletion, but it is visible.
pub fn set_blocked(doc: &mut Value, issues: &[crate::repo::Issue], generation: i64, now: &str) {
    let mut conds: Vec<Condition> =
        serde_json::from_value(doc["status"]["conditions"].clone()).unwrap_or_default();
    match issues.first() {
        Some(first) => {
            let more =
                if issues.len() > 1 { format!(" (and {} more)", issues.len() - 1) } else { String::new() };
            let message = format!("no new resource snapshot until this is fixed: {first}{more}");
            conds.set_condition("ResourcesValid", false, "InvalidResources", &message, now, generation);
        }
        None if conds.get_condition("ResourcesValid").is_some() => {
            let message = "all selected resources parse and validate";
            conds.set_condition("ResourcesValid", true, "ResourcesValid", message, now, generation);
        }
        None => {}
    }
    doc["status"]["conditions"] = json!(conds);
}
