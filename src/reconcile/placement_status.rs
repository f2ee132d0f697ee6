//! `status/clusterresourceplacements/<name>.yaml`: scheduling, what each cluster
//! holds, and the objects that failed to apply (with their envelope).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::cluster::{FailedObject, ObjectDiff};
use crate::engine::status::{Condition, Conditions};
use crate::repo::model::{ApplyType, Placement};
use crate::schedule::Schedule;

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
}

impl PlacementFacts {
    /// Facts seeded with what the placement's status file says each cluster holds.
    pub fn from_status(previous: Option<&Value>) -> PlacementFacts {
        let mut facts = PlacementFacts::default();
        let entries = previous.and_then(|d| d.pointer("/status/placementStatuses")).and_then(Value::as_array);
        for s in entries.into_iter().flatten() {
            let Some(cluster) = s["clusterName"].as_str().map(str::to_string) else { continue };
            if let Some(index) = s["observedResourceIndex"].as_str().and_then(|i| i.parse().ok()) {
                facts.held_before.insert(cluster.clone(), index);
            }
            let conds: Vec<Condition> = serde_json::from_value(s["conditions"].clone()).unwrap_or_default();
            let failed: BTreeSet<(String, Option<String>, String)> = s["failedPlacements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let text = |k: &str| f[k].as_str().map(str::to_string);
                    (text("kind").unwrap_or_default(), text("namespace"), text("name").unwrap_or_default())
                })
                .collect();
            if failed.is_empty() && conds.is_true("ResourceApplied") && !conds.is_false("ResourceAvailable") {
                facts.done_before.insert(cluster.clone());
            }
            if conds.is_true("ResourceDiffReported") {
                facts.reported_before.insert(cluster.clone());
            }
            facts.failed_objects.insert(cluster, failed);
        }
        facts
    }

    /// Whether an object was listed in the cluster's `failedPlacements` before this pass.
    pub fn failed_before(&self, cluster: &str, key: &crate::repo::model::ObjectKey) -> bool {
        self.failed_objects
            .get(cluster)
            .is_some_and(|f| f.contains(&(key.kind.clone(), key.namespace.clone(), key.name.clone())))
    }

    /// The snapshot a cluster holds (synced in this pass, or before).
    pub fn held(&self, cluster: &str) -> Option<u32> {
        self.observed.get(cluster).or_else(|| self.held_before.get(cluster)).copied()
    }

    /// Whether this pass already synced (or tried to sync) the cluster.
    pub fn touched(&self, cluster: &str) -> bool {
        self.observed.contains_key(cluster)
            || self.failures.contains_key(cluster)
            || self.waiting.contains_key(cluster)
    }
}

/// A JSON value as KubeFleet shows drift values: strings as they are, the rest as JSON.
fn shown(v: &Option<Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// One `driftedPlacements` / `diffedPlacements` entry, keeping the first
/// observation time of the same object from the previous status.
fn diff_json(d: &ObjectDiff, kind: &str, previous: Option<&Value>, now: &str) -> Value {
    let (list, first) = match kind {
        "drift" => ("observedDrifts", "firstDriftedObservedTime"),
        _ => ("observedDiffs", "firstDiffedObservedTime"),
    };
    let fields: Vec<Value> = d
        .fields
        .iter()
        .map(|f| {
            let mut v = json!({ "path": if f.path.is_empty() { "/" } else { f.path.as_str() } });
            if let Some(h) = shown(&f.hub) {
                v["valueInHub"] = json!(h);
            }
            if let Some(m) = shown(&f.member) {
                v["valueInMember"] = json!(m);
            }
            v
        })
        .collect();
    let mut v = json!({
        "kind": d.key.kind,
        "name": d.key.name,
        "version": crate::repo::scope::version_of(&d.api_version),
        "observationTime": now,
        list: fields,
        "diff": d.unified,
    });
    if !d.key.group.is_empty() {
        v["group"] = json!(d.key.group);
    }
    if let Some(ns) = &d.key.namespace {
        v["namespace"] = json!(ns);
    }
    if !d.on_cluster {
        v["objectOnCluster"] = json!(false);
    }
    if let Some(env) = &d.envelope {
        let mut e = json!({ "name": env.name, "type": env.type_.as_str() });
        if let Some(ns) = &env.namespace {
            e["namespace"] = json!(ns);
        }
        v["envelope"] = e;
    }
    let same =
        |p: &&Value| p["kind"] == v["kind"] && p["name"] == v["name"] && p["namespace"] == v["namespace"];
    let since = previous.and_then(|list| list.as_array()?.iter().find(same)?.get(first).cloned());
    v[first] = since.unwrap_or_else(|| json!(now));
    v
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
    // Clusters that do not answer, and clusters whose resources are not available yet.
    let (mut unreachable_clusters, mut not_available) = (Vec::new(), Vec::new());
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
        let listed = |field: &str, found: Option<&Vec<ObjectDiff>>, kind: &str| -> Vec<Value> {
            let before = prev.as_ref().and_then(|s| s.get(field));
            match found {
                Some(list) => list.iter().map(|d| diff_json(d, kind, before, now)).collect(),
                None => before.and_then(|b| b.as_array().cloned()).unwrap_or_default(),
            }
        };
        // Only the lists of the placement's current apply type are kept.
        let report_only = p.apply.type_ == ApplyType::ReportDiff;
        let (drifted, diffed) = if report_only {
            (Vec::new(), listed("diffedPlacements", facts.diffs.get(cluster), "diff"))
        } else {
            (listed("driftedPlacements", facts.drifts.get(cluster), "drift"), Vec::new())
        };
        let failures = if report_only { Vec::new() } else { failures };
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
        let unreachable = match facts.waiting.get(cluster) {
            Some(Waiting::Unreachable(why)) => Some(why.as_str()),
            _ => None,
        };
        if report_only {
            c.retain(|x| x.type_ != "ResourceApplied" && x.type_ != "ResourceAvailable");
            if let Some(why) = unreachable {
                c.set_condition("ResourceDiffReported", false, "ClusterUnreachable", why, now, generation);
            } else if facts.diffs.contains_key(cluster) {
                let (reason, msg) = match diffed.len() {
                    0 => ("NoDiffFound", "The cluster holds exactly what the snapshot wants".to_string()),
                    n => (
                        "DiffReported",
                        format!(
                            "{n} objects differ from the snapshot; nothing was changed (applyStrategy ReportDiff)"
                        ),
                    ),
                };
                c.set_condition("ResourceDiffReported", true, reason, &msg, now, generation);
            }
        } else if let Some(why) = unreachable {
            c.retain(|x| x.type_ != "ResourceDiffReported" && x.type_ != "ResourceAvailable");
            c.set_condition("ResourceApplied", false, "ClusterUnreachable", why, now, generation);
            unreachable_clusters.push(cluster.as_str());
        } else if !failures.is_empty() {
            c.retain(|x| x.type_ != "ResourceDiffReported" && x.type_ != "ResourceAvailable");
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
            c.retain(|x| x.type_ != "ResourceDiffReported");
            c.set_condition(
                "ResourceApplied",
                true,
                "ApplySucceeded",
                "Successfully applied resources",
                now,
                generation,
            );
            match facts.waiting.get(cluster) {
                Some(Waiting::NotAvailable(why)) => c.set_condition(
                    "ResourceAvailable",
                    false,
                    "ResourceNotAvailableYet",
                    why,
                    now,
                    generation,
                ),
                _ if facts.available.contains(cluster) => {
                    let msg = "All resources are available";
                    c.set_condition("ResourceAvailable", true, "ResourceAvailable", msg, now, generation)
                }
                _ => {}
            }
            if c.is_false("ResourceAvailable") {
                not_available.push(cluster.as_str());
            } else {
                available += 1;
            }
        }
        let mut s = json!({ "clusterName": cluster, "conditions": c });
        if let Some(i) = observed {
            s["observedResourceIndex"] = json!(i.to_string());
        }
        if !failures.is_empty() {
            s["failedPlacements"] = Value::Array(failures);
        }
        if !drifted.is_empty() {
            s["driftedPlacements"] = Value::Array(drifted);
        }
        if !diffed.is_empty() {
            s["diffedPlacements"] = Value::Array(diffed);
        }
        statuses.push(s);
    }
    if failed_clusters > 0 {
        // Whether the rest is available says nothing while some of it did not apply.
        conds.retain(|x| x.type_ != "ClusterResourcePlacementAvailable");
        conds.set_condition(
            "ClusterResourcePlacementApplied",
            false,
            "ApplyFailed",
            &format!("Failed to apply manifests to {failed_clusters} clusters, please check the `failedPlacements` status"),
            now,
            generation,
        );
    } else if !unreachable_clusters.is_empty() {
        let msg = format!(
            "Cannot reach {} member clusters ({}), please check the `placementStatuses`",
            unreachable_clusters.len(),
            unreachable_clusters.join(", ")
        );
        conds.set_condition(
            "ClusterResourcePlacementApplied",
            false,
            "ClusterUnreachable",
            &msg,
            now,
            generation,
        );
        conds.set_condition(
            "ClusterResourcePlacementAvailable",
            false,
            "ClusterUnreachable",
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
            "ClusterResourcePlacementAvailable",
            false,
            "ResourceNotAvailableYet",
            &msg,
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
