//! KubeFleet's namespaced twins in the status folder.
//!
//! A ResourcePlacement, StagedUpdateRun or ApprovalRequest is the same
//! document as its cluster-scoped twin, kept under the twin's folder and its
//! namespace: `resourceplacements/<namespace>/<name>.yaml`,
//! `stagedupdateruns/<namespace>/<name>.yaml`, ... In memory a document is
//! named by its key (`namespace/name`, see [`crate::repo::model::object_key`])
//! and has the cluster-scoped kind, so the engine treats both alike; the file
//! has KubeFleet's namespaced form ([`localize`] on write, [`qualify`] on
//! read): the namespaced kind, `metadata.namespace`, and names within the
//! namespace.

use serde_json::Value;

use super::{PLACEMENTS, REQUESTS, RUNS, snapshots, stored};

/// Status folders of cluster-scoped kinds and of their namespaced twins.
const TWINS: &[(&str, &str)] = &[
    (PLACEMENTS, "resourceplacements"),
    (RUNS, "stagedupdateruns"),
    (REQUESTS, "approvalrequests"),
    (stored::BINDINGS, "resourcebindings"),
    (snapshots::FOLDER, "resourcesnapshots"),
];

/// Kinds with a namespaced twin (the twin drops `Cluster`).
const KINDS: &[&str] = &[
    "ClusterResourcePlacement",
    "ClusterStagedUpdateRun",
    "ClusterApprovalRequest",
    "ClusterResourceBinding",
    "ClusterResourceSnapshot",
];

/// Labels and fields that name another object of the same namespace.
const LABELS: &[&str] = &[stored::PARENT_CRP, "kubernetes-fleet.io/targetupdaterun"];
const FIELDS: &[&str] = &[
    "/spec/parentStageRollout",
    "/spec/placementName",
    "/spec/stagedRolloutStrategyName",
    "/spec/resourceSnapshotName",
];

/// The namespaced twin of a cluster-scoped status folder.
pub fn twin(folder: &str) -> Option<&'static str> {
    TWINS.iter().find(|(c, _)| *c == folder).map(|(_, n)| *n)
}

/// The folder of the document with key `key`: `folder`, or its twin for a
/// namespaced key.
pub fn folder_of<'a>(folder: &'a str, key: &str) -> &'a str {
    match key.contains('/') {
        true => twin(folder).unwrap_or(folder),
        false => folder,
    }
}

/// `<folder>/<key>`: where the document with key `key` (or the sub-folder of
/// its cluster files) is, relative to the status folder.
pub fn path(folder: &str, key: &str) -> String {
    format!("{}/{key}", folder_of(folder, key))
}

/// The cluster-scoped folder and the key of a path relative to the status
/// folder (`resourceplacements/ns/app.yaml` -> (`clusterresourceplacements`,
/// `ns/app`)); for a cluster file, the key of its document.
pub fn key_of(path: &str) -> Option<(&'static str, String)> {
    let (folder, rest) = path.split_once('/')?;
    let stem = |s: &str| s.strip_suffix(".yaml").unwrap_or(s).to_string();
    if let Some((cluster, _)) = TWINS.iter().find(|(_, n)| *n == folder) {
        let mut parts = rest.split('/');
        let (ns, name) = (parts.next()?, parts.next()?);
        return Some((cluster, format!("{ns}/{}", stem(name))));
    }
    let (cluster, _) = TWINS.iter().find(|(c, _)| *c == folder)?;
    Some((cluster, stem(rest.split('/').next()?)))
}

/// Turns a document of a namespaced key into KubeFleet's namespaced form.
pub fn localize(value: &mut Value, key: &str) {
    let Some((ns, _)) = key.split_once('/') else { return };
    let strip = |v: &mut Value| {
        if let Some(local) = v.as_str().and_then(|s| s.strip_prefix(ns)).and_then(|s| s.strip_prefix('/')) {
            *v = Value::String(local.to_string());
        }
    };
    rename_kind(value, |k| KINDS.contains(&k).then(|| k.trim_start_matches("Cluster").to_string()));
    // A ResourcePlacement's conditions are `ResourcePlacementScheduled`, ...
    rename_conditions(value, |t| {
        t.strip_prefix("Cluster").filter(|t| t.starts_with("ResourcePlacement")).map(str::to_string)
    });
    each_name(value, strip);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    }
}

/// Turns a document read from a namespaced folder back into the form the
/// engine works on (the inverse of [`localize`]).
pub fn qualify(value: &mut Value, namespace: &str) {
    let add = |v: &mut Value| {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty() && !s.contains('/')) {
            *v = Value::String(format!("{namespace}/{s}"));
        }
    };
    rename_kind(value, |k| {
        KINDS.iter().find(|c| c.strip_prefix("Cluster") == Some(k)).map(|c| c.to_string())
    });
    let cluster = |t: &str| t.starts_with("ResourcePlacement").then(|| format!("Cluster{t}"));
    rename_conditions(value, cluster);
    each_name(value, add);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("namespace");
    }
}

/// Renames the placement's own condition types (`status.conditions`).
fn rename_conditions(value: &mut Value, to: impl Fn(&str) -> Option<String>) {
    if value.get("kind").and_then(Value::as_str).is_none_or(|k| !k.ends_with("ResourcePlacement")) {
        return;
    }
    let conditions = value.pointer_mut("/status/conditions").and_then(Value::as_array_mut);
    for c in conditions.into_iter().flatten() {
        if let Some(t) = c.get("type").and_then(Value::as_str).and_then(&to) {
            c["type"] = Value::String(t);
        }
    }
}

fn rename_kind(value: &mut Value, to: impl Fn(&str) -> Option<String>) {
    if let Some(kind) = value.get("kind").and_then(Value::as_str).and_then(to) {
        value["kind"] = Value::String(kind);
    }
}

/// Applies `f` to every string that names an object of the namespace.
fn each_name(value: &mut Value, mut f: impl FnMut(&mut Value)) {
    if let Some(v) = value.pointer_mut("/metadata/name") {
        f(v);
    }
    for field in FIELDS {
        if let Some(v) = value.pointer_mut(field) {
            f(v);
        }
    }
    if let Some(labels) = value.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        for label in LABELS {
            if let Some(v) = labels.get_mut(*label) {
                f(v);
            }
        }
    }
    let stages = value.pointer_mut("/status/stagesStatus").and_then(Value::as_array_mut);
    for stage in stages.into_iter().flatten() {
        for tasks in ["beforeStageTaskStatus", "afterStageTaskStatus"] {
            let tasks = stage.get_mut(tasks).and_then(Value::as_array_mut);
            for task in tasks.into_iter().flatten() {
                if let Some(v) = task.get_mut("approvalRequestName") {
                    f(v);
                }
            }
        }
    }
}

/// YAML of a document with key `key` in its file form; `extended`: it may
/// hold gitfleet's own fields ([`super::extensions`]).
pub fn to_yaml<T: serde::Serialize>(doc: &T, key: &str, extended: bool) -> String {
    if !key.contains('/') && !extended {
        return crate::yaml::to_string(doc);
    }
    let mut value = serde_json::to_value(doc).unwrap_or(Value::Null);
    to_file_form(&mut value, key);
    crate::yaml::to_string(&value)
}

/// A document with key `key` as its file shows it: KubeFleet's namespaced
/// form for a namespaced key, gitfleet's own fields in an annotation.
pub fn to_file_form(value: &mut Value, key: &str) {
    super::extensions::kubefleet_form(value);
    localize(value, key);
}

/// Parses a status file of a document with key `key`, of at most `limit` bytes.
pub fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    key: &str,
    extended: bool,
) -> Result<T, String> {
    let namespace = key.split_once('/').map(|(ns, _)| ns);
    if namespace.is_none() && !extended {
        return crate::yaml::parse_status::<T>(bytes, limit).map_err(|e| e.to_string());
    }
    let mut value: Value = crate::yaml::parse_status(bytes, limit).map_err(|e| e.to_string())?;
    // (A run's cluster files are gitfleet's own, without metadata.)
    if let Some(ns) = namespace.filter(|_| value.get("metadata").is_some()) {
        if value.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str) != Some(ns) {
            return Err(format!("metadata.namespace is not {ns:?}"));
        }
        qualify(&mut value, ns);
    }
    super::extensions::gitfleet_form(&mut value)?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_namespaced_document_round_trips_through_its_file_form() {
        let internal = json!({
            "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
            "kind": "ClusterApprovalRequest",
            "metadata": {
                "name": "team-a/run-canary",
                "labels": { "kubernetes-fleet.io/targetupdaterun": "team-a/run" },
            },
            "spec": { "parentStageRollout": "team-a/run", "targetStage": "canary" },
        });
        let mut file = internal.clone();
        localize(&mut file, "team-a/run-canary");
        assert_eq!(file["kind"], "ApprovalRequest");
        assert_eq!(file["metadata"]["name"], "run-canary");
        assert_eq!(file["metadata"]["namespace"], "team-a");
        assert_eq!(file["metadata"]["labels"]["kubernetes-fleet.io/targetupdaterun"], "run");
        assert_eq!(file["spec"]["parentStageRollout"], "run");
        assert_eq!(file["spec"]["targetStage"], "canary");
        qualify(&mut file, "team-a");
        assert_eq!(file, internal);
    }

    #[test]
    fn paths_of_namespaced_keys_go_to_the_twin_folder() {
        assert_eq!(path(PLACEMENTS, "app"), "clusterresourceplacements/app");
        assert_eq!(path(PLACEMENTS, "ns/app"), "resourceplacements/ns/app");
        assert_eq!(key_of("resourceplacements/ns/app.yaml"), Some((PLACEMENTS, "ns/app".to_string())));
        assert_eq!(key_of("stagedupdateruns/ns/run/member1.yaml"), Some((RUNS, "ns/run".to_string())));
        assert_eq!(key_of("clusterstagedupdateruns/run/member1.yaml"), Some((RUNS, "run".to_string())));
        assert_eq!(key_of("memberclusters/m.yaml"), None);
    }
}
