//! gitfleet's own fields in KubeFleet's objects.
//!
//! A status document, and every object `gitfleet get -o yaml` prints, must be
//! an object KubeFleet's CRDs accept with strict field validation. What
//! gitfleet adds (a TimedWait's `waitUntil`, a Verification task and its
//! measurements, the snapshot a cluster held before a run, a strategy's
//! `clusterTimeout`, ...) is kept in one annotation, [`EXTENSIONS`]: a JSON
//! object from the field's JSON pointer to its value, or for a whole list
//! element (a Verification task) to the element. [`kubefleet_form`] moves them
//! there when a document is written or shown; [`gitfleet_form`] puts them
//! back when it is read.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The annotation holding gitfleet's own fields of a KubeFleet object.
pub const EXTENSIONS: &str = "gitfleet.dev/extensions";

/// Where gitfleet's own content sits in an object of some kinds.
enum Rule {
    /// Fields named `.1` of the objects at `.0`.
    Fields(&'static str, &'static [&'static str]),
    /// Elements of the lists at `.0` whose `type` is `.1`.
    Elements(&'static str, &'static str),
}

const TASK_FIELDS: &[&str] = &["waitUntil", "measurements"];
const STAGE_FIELDS: &[&str] = &["maxFailures", "clusterTimeout", "maxDuration"];

const RUN: &[Rule] = &[
    Rule::Elements("status/stagesStatus/*/beforeStageTaskStatus", "Verification"),
    Rule::Elements("status/stagesStatus/*/afterStageTaskStatus", "Verification"),
    Rule::Fields("status/stagesStatus/*/beforeStageTaskStatus/*", TASK_FIELDS),
    Rule::Fields("status/stagesStatus/*/afterStageTaskStatus/*", TASK_FIELDS),
    Rule::Fields("status/stagesStatus/*/clusters/*", &["previousResourceSnapshotIndex"]),
    Rule::Fields("status/deletionStageStatus/clusters/*", &["previousResourceSnapshotIndex"]),
    Rule::Elements("status/stagedUpdateStrategySnapshot/stages/*/beforeStageTasks", "Verification"),
    Rule::Elements("status/stagedUpdateStrategySnapshot/stages/*/afterStageTasks", "Verification"),
    Rule::Fields("status/stagedUpdateStrategySnapshot/stages/*", STAGE_FIELDS),
    Rule::Fields("spec", &["resourceCommit"]),
];

const STRATEGY: &[Rule] = &[
    Rule::Elements("spec/stages/*/beforeStageTasks", "Verification"),
    Rule::Elements("spec/stages/*/afterStageTasks", "Verification"),
    Rule::Fields("spec/stages/*", STAGE_FIELDS),
];

const PLACEMENT: &[Rule] = &[
    Rule::Fields("spec/strategy", &["autoRun"]),
    Rule::Fields("status/placementStatuses/*/diffedPlacements/*", &["diff", "objectOnCluster"]),
    Rule::Fields("status/placementStatuses/*/driftedPlacements/*", &["diff"]),
];

const PLACEMENT_STATUS: &[Rule] = &[
    Rule::Fields("sourceStatus/placementStatuses/*/diffedPlacements/*", &["diff", "objectOnCluster"]),
    Rule::Fields("sourceStatus/placementStatuses/*/driftedPlacements/*", &["diff"]),
];

const BINDING: &[Rule] = &[
    Rule::Fields("status/diffedPlacements/*", &["diff", "objectOnCluster"]),
    Rule::Fields("status/driftedPlacements/*", &["diff"]),
];

fn rules(kind: &str) -> &'static [Rule] {
    match kind.strip_prefix("Cluster").unwrap_or(kind) {
        "StagedUpdateRun" => RUN,
        "StagedUpdateStrategy" => STRATEGY,
        "ResourcePlacement" => PLACEMENT,
        "ResourceBinding" => BINDING,
        "ResourcePlacementStatus" => PLACEMENT_STATUS,
        _ => &[],
    }
}

/// Moves gitfleet's own fields of `value` (by its kind) into [`EXTENSIONS`].
pub fn kubefleet_form(value: &mut Value) {
    let rules = rules(value.get("kind").and_then(Value::as_str).unwrap_or_default());
    if rules.is_empty() {
        return;
    }
    let mut found: BTreeMap<String, Value> = BTreeMap::new();
    // Whole elements first (their fields go with them), last index first.
    let mut elements: Vec<(String, usize)> = Vec::new();
    for rule in rules {
        if let Rule::Elements(at, type_) = rule {
            for (pointer, list) in matching(value, at) {
                let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
                for (i, item) in items.iter().enumerate().filter(|(_, it)| it["type"] == *type_) {
                    found.insert(format!("{pointer}/{i}"), item.clone());
                    elements.push((pointer.clone(), i));
                }
            }
        }
    }
    for rule in rules {
        if let Rule::Fields(at, fields) = rule {
            for (pointer, object) in matching(value, at) {
                if found.keys().any(|k| pointer.starts_with(&format!("{k}/")) || *k == pointer) {
                    continue;
                }
                for field in *fields {
                    if let Some(v) = object.get(*field) {
                        found.insert(format!("{pointer}/{field}"), v.clone());
                    }
                }
            }
        }
    }
    if found.is_empty() {
        return;
    }
    for (pointer, _) in found.iter().filter(|(p, _)| !elements.iter().any(|(l, i)| **p == format!("{l}/{i}")))
    {
        let (parent, field) = pointer.rsplit_once('/').unwrap_or_default();
        if let Some(o) = value.pointer_mut(parent).and_then(Value::as_object_mut) {
            o.remove(field);
        }
    }
    elements.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (list, i) in elements {
        if let Some(items) = value.pointer_mut(&list).and_then(Value::as_array_mut) {
            items.remove(i);
        }
    }
    let text = serde_json::to_string(&found).unwrap_or_default();
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(EXTENSIONS.into(), Value::String(text));
        }
    }
}

/// Puts the fields kept in [`EXTENSIONS`] back (the inverse of [`kubefleet_form`]).
pub fn gitfleet_form(value: &mut Value) -> Result<(), String> {
    let Some(annotations) = value.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let Some(text) = annotations.remove(EXTENSIONS) else { return Ok(()) };
    if annotations.is_empty()
        && let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
    let found: BTreeMap<String, Value> = text
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| format!("annotation {EXTENSIONS} is not a JSON object"))?;
    // List elements first, lowest index first, so later indices are right again.
    let mut entries: Vec<(&String, &Value)> = found.iter().collect();
    let index = |p: &str| p.rsplit_once('/').and_then(|(_, i)| i.parse::<usize>().ok());
    entries.sort_by_key(|(p, _)| (index(p).is_none(), index(p), p.matches('/').count()));
    for (pointer, v) in entries {
        let (parent, last) = pointer.rsplit_once('/').unwrap_or_default();
        match (value.pointer_mut(parent), last.parse::<usize>()) {
            (Some(Value::Array(items)), Ok(i)) if i <= items.len() => items.insert(i, v.clone()),
            (Some(Value::Object(o)), _) => {
                o.insert(last.to_string(), v.clone());
            }
            _ => return Err(format!("annotation {EXTENSIONS}: {pointer} has no place in the document")),
        }
    }
    Ok(())
}

/// The values at `pattern` (segments separated by `/`, `*` for any key or
/// index), with their JSON pointers.
fn matching<'a>(value: &'a Value, pattern: &str) -> Vec<(String, &'a Value)> {
    let mut at: Vec<(String, &Value)> = vec![(String::new(), value)];
    for segment in pattern.split('/') {
        let mut next = Vec::new();
        for (pointer, v) in at {
            match (segment, v) {
                ("*", Value::Array(items)) => {
                    next.extend(items.iter().enumerate().map(|(i, x)| (format!("{pointer}/{i}"), x)))
                }
                ("*", Value::Object(o)) => next.extend(o.iter().map(|(k, x)| (format!("{pointer}/{k}"), x))),
                (name, Value::Object(o)) => {
                    if let Some(x) = o.get(name) {
                        next.push((format!("{pointer}/{name}"), x));
                    }
                }
                _ => {}
            }
        }
        at = next;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_keeps_its_own_fields_in_one_annotation_and_gets_them_back() {
        let run = json!({
            "kind": "ClusterStagedUpdateRun",
            "metadata": { "name": "r" },
            "spec": { "placementName": "p" },
            "status": {
                "stagesStatus": [{
                    "stageName": "canary",
                    "clusters": [{ "clusterName": "m1", "previousResourceSnapshotIndex": "0" }],
                    "beforeStageTaskStatus": [{ "type": "Verification", "measurements": [{ "value": "0.1" }] }],
                    "afterStageTaskStatus": [
                        { "type": "TimedWait", "waitUntil": "2026-01-01T00:00:00Z" },
                        { "type": "Verification", "conditions": [] },
                        { "type": "Approval", "approvalRequestName": "r-canary" },
                    ],
                }],
                "stagedUpdateStrategySnapshot": { "stages": [{
                    "name": "canary",
                    "clusterTimeout": "5m",
                    "afterStageTasks": [{ "type": "Verification", "verification": {} }, { "type": "Approval" }],
                }]},
            },
        });
        let mut k = run.clone();
        kubefleet_form(&mut k);
        let stage = &k["status"]["stagesStatus"][0];
        assert_eq!(stage["beforeStageTaskStatus"], json!([]));
        assert_eq!(
            stage["afterStageTaskStatus"],
            json!([{ "type": "TimedWait" }, { "type": "Approval", "approvalRequestName": "r-canary" }])
        );
        assert_eq!(stage["clusters"], json!([{ "clusterName": "m1" }]));
        let snapshot = &k["status"]["stagedUpdateStrategySnapshot"]["stages"][0];
        assert_eq!(*snapshot, json!({ "name": "canary", "afterStageTasks": [{ "type": "Approval" }] }));
        let kept = k["metadata"]["annotations"][EXTENSIONS].as_str().unwrap();
        assert!(kept.contains("\"/status/stagesStatus/0/afterStageTaskStatus/0/waitUntil\""), "{kept}");
        gitfleet_form(&mut k).unwrap();
        assert_eq!(k, run);
    }

    #[test]
    fn objects_without_extensions_are_left_alone() {
        let placement = json!({ "kind": "ResourcePlacement", "metadata": { "name": "p" }, "spec": {} });
        let mut k = placement.clone();
        kubefleet_form(&mut k);
        assert_eq!(k, placement);
        let mut broken =
            json!({ "kind": "ClusterStagedUpdateRun", "metadata": { "annotations": { EXTENSIONS: "{" } } });
        assert!(gitfleet_form(&mut broken).unwrap_err().contains(EXTENSIONS));
    }
}
