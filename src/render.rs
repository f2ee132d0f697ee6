//! Rendering: the objects one cluster gets from one snapshot of one placement.
//!
//! Envelopes are unwrapped (the envelope itself is never applied), overrides are
//! applied per cluster, and every object is marked as owned by the placement, so
//! that prune removes only what this placement created.

use serde_json::Value;

use crate::repo::model::{
    EnvelopeType, Manifest, MemberCluster, ObjectKey, Override, PatchOp, SelectionScope, SelectorTarget,
};
use crate::repo::scope::group_of;

/// Label naming the placement that applied an object.
pub const LABEL_PLACEMENT: &str = "gitfleet.dev/placement";
/// Annotation naming the snapshot index an object was applied from.
pub const ANNOTATION_SNAPSHOT: &str = "gitfleet.dev/resource-snapshot-index";

/// The envelope a rendered object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRef {
    pub name: String,
    pub namespace: Option<String>,
    pub type_: EnvelopeType,
}

/// One object to apply on one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    pub key: ObjectKey,
    pub api_version: String,
    pub value: Value,
    pub envelope: Option<EnvelopeRef>,
}

#[derive(Debug, thiserror::Error)]
#[error("override {override_name}: {object}: {reason}")]
pub struct RenderError {
    pub override_name: String,
    pub object: String,
    pub reason: String,
}

/// Metadata fields a hub copy carries that must not be applied.
const SERVER_FIELDS: &[&str] =
    &["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink"];

fn key_of(value: &Value) -> (ObjectKey, String) {
    let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
    let key = ObjectKey {
        group: group_of(&api_version).to_string(),
        kind: value["kind"].as_str().unwrap_or_default().to_string(),
        namespace: value.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
        name: value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    (key, api_version)
}

/// Renders a snapshot's manifests for one cluster.
pub fn render(
    manifests: &[std::sync::Arc<Manifest>],
    overrides: &[&Override],
    cluster: &MemberCluster,
    placement: &str,
    snapshot_index: u32,
) -> Result<Vec<RenderedObject>, RenderError> {
    let mut out = Vec::new();
    for m in manifests {
        let items: Vec<(Value, Option<EnvelopeRef>)> = match m.envelope {
            Some(type_) => m
                .wrapped
                .iter()
                .map(|w| {
                    let env =
                        EnvelopeRef { name: m.key.name.clone(), namespace: m.key.namespace.clone(), type_ };
                    (w.clone(), Some(env))
                })
                .collect(),
            None => vec![((*m.value).clone(), None)],
        };
        for (mut value, envelope) in items {
            if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                for f in SERVER_FIELDS {
                    meta.remove(*f);
                }
            }
            if let Some(obj) = value.as_object_mut() {
                obj.remove("status");
            }
            let (key, api_version) = key_of(&value);
            let mut deleted = false;
            for o in overrides.iter().filter(|o| override_selects(o, &key)) {
                for rule in &o.rules {
                    if !(rule.cluster_terms.is_empty()
                        || rule.cluster_terms.iter().any(|t| crate::schedule::term_matches(t, cluster)))
                    {
                        continue;
                    }
                    if rule.delete {
                        deleted = true;
                        continue;
                    }
                    for patch in &rule.patches {
                        let v = patch.value.as_ref().map(|v| substitute(v, cluster));
                        apply_patch(&mut value, patch.op, &patch.path, v).map_err(|reason| RenderError {
                            override_name: o.name.clone(),
                            object: key.to_string(),
                            reason,
                        })?;
                    }
                }
            }
            if deleted {
                continue;
            }
            mark_owned(&mut value, placement, snapshot_index).map_err(|reason| RenderError {
                override_name: overrides.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", "),
                object: key.to_string(),
                reason,
            })?;
            out.push(RenderedObject { key, api_version, value, envelope });
        }
    }
    Ok(out)
}

/// Labels and annotates an object as applied by a placement; fails when an
/// override turned `metadata`, its labels or annotations into something else
/// than a mapping.
fn mark_owned(value: &mut Value, placement: &str, snapshot_index: u32) -> Result<(), String> {
    let meta = value.get_mut("metadata").and_then(Value::as_object_mut).ok_or("metadata is not a mapping")?;
    for (field, key, v) in [
        ("labels", LABEL_PLACEMENT, owner_label(placement)),
        ("annotations", ANNOTATION_SNAPSHOT, snapshot_index.to_string()),
    ] {
        let map = meta.entry(field).or_insert_with(|| Value::Object(Default::default()));
        if map.is_null() {
            *map = Value::Object(Default::default());
        }
        map.as_object_mut()
            .ok_or(format!("metadata.{field} is not a mapping"))?
            .insert(key.to_string(), Value::String(v));
    }
    Ok(())
}

/// The value of [`LABEL_PLACEMENT`] for a placement: its key, with the `/`
/// of a ResourcePlacement's `namespace/name` (not allowed in a label value)
/// written as `_` (never part of a name).
pub fn owner_label(placement: &str) -> String {
    placement.replace('/', "_")
}

/// The placement that owns an object, from its label.
pub fn owner(value: &Value) -> Option<String> {
    let label =
        value.pointer("/metadata/labels").and_then(|l| l.get(LABEL_PLACEMENT)).and_then(Value::as_str)?;
    Some(label.replace('_', "/"))
}

fn override_selects(o: &Override, key: &ObjectKey) -> bool {
    if o.namespace.is_some() && o.namespace != key.namespace {
        return false;
    }
    if o.namespace.is_none() && key.namespace.is_some() {
        return false;
    }
    o.selectors.iter().any(|s| {
        s.group == key.group
            && s.kind == key.kind
            && match &s.target {
                SelectorTarget::Name(n) => *n == key.name,
                _ => s.scope == SelectionScope::NamespaceWithResources,
            }
    })
}

/// Replaces `${MEMBER-CLUSTER-NAME}` and `${MEMBER-CLUSTER-LABEL-KEY-<key>}` in strings.
fn substitute(value: &Value, cluster: &MemberCluster) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.replace("${MEMBER-CLUSTER-NAME}", &cluster.name);
            while let Some(start) = s.find("${MEMBER-CLUSTER-LABEL-KEY-") {
                let Some(end) = s[start..].find('}') else { break };
                let key = &s[start + "${MEMBER-CLUSTER-LABEL-KEY-".len()..start + end];
                let v = cluster.labels.get(key).cloned().unwrap_or_default();
                s.replace_range(start..start + end + 1, &v);
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, cluster)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), substitute(v, cluster))).collect())
        }
        other => other.clone(),
    }
}

/// Applies one JSON patch operation (RFC 6902 add/remove/replace).
fn apply_patch(doc: &mut Value, op: PatchOp, path: &str, value: Option<Value>) -> Result<(), String> {
    let tokens: Vec<String> =
        path.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
    let Some((last, parents)) = tokens.split_last() else {
        return Err("the whole document cannot be patched".into());
    };
    let mut target = doc;
    for (i, t) in parents.iter().enumerate() {
        let missing_ok = op == PatchOp::Add;
        target = match target {
            Value::Object(m) => {
                if !m.contains_key(t) {
                    if !missing_ok {
                        return Err(format!("path {path}: /{} does not exist", parents[..=i].join("/")));
                    }
                    m.insert(t.clone(), Value::Object(Default::default()));
                }
                m.get_mut(t).expect("just ensured")
            }
            Value::Array(a) => {
                let idx: usize =
                    t.parse().map_err(|_| format!("path {path}: {t:?} is not an array index"))?;
                a.get_mut(idx).ok_or_else(|| format!("path {path}: index {idx} is out of range"))?
            }
            _ => return Err(format!("path {path}: /{} is not an object or array", parents[..i].join("/"))),
        };
    }
    match (target, op) {
        (Value::Object(m), PatchOp::Add) => {
            m.insert(last.clone(), value.unwrap_or(Value::Null));
        }
        (Value::Object(m), PatchOp::Replace) => {
            if !m.contains_key(last) {
                return Err(format!("path {path} does not exist"));
            }
            m.insert(last.clone(), value.unwrap_or(Value::Null));
        }
        (Value::Object(m), PatchOp::Remove) => {
            m.remove(last).ok_or_else(|| format!("path {path} does not exist"))?;
        }
        (Value::Array(a), op) => {
            let idx = if last == "-" && op == PatchOp::Add {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| format!("path {path}: {last:?} is not an array index"))?
            };
            match op {
                PatchOp::Add if idx <= a.len() => a.insert(idx, value.unwrap_or(Value::Null)),
                PatchOp::Replace if idx < a.len() => a[idx] = value.unwrap_or(Value::Null),
                PatchOp::Remove if idx < a.len() => {
                    a.remove(idx);
                }
                _ => return Err(format!("path {path}: index {idx} is out of range")),
            }
        }
        _ => return Err(format!("path {path}: parent is not an object or array")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"metadata": {"name": "x"}, "spec": {"list": [1, 2]}});
        apply_patch(&mut doc, PatchOp::Add, "/metadata/labels/a~1b", Some(json!("v"))).unwrap();
        apply_patch(&mut doc, PatchOp::Add, "/spec/list/-", Some(json!(3))).unwrap();
        apply_patch(&mut doc, PatchOp::Replace, "/spec/list/0", Some(json!(0))).unwrap();
        apply_patch(&mut doc, PatchOp::Remove, "/spec/list/1", None).unwrap();
        assert_eq!(doc, json!({"metadata": {"name": "x", "labels": {"a/b": "v"}}, "spec": {"list": [0, 3]}}));
        assert!(apply_patch(&mut doc, PatchOp::Replace, "/spec/missing", Some(json!(1))).is_err());
        assert!(apply_patch(&mut doc, PatchOp::Remove, "/nope/x", None).is_err());
    }
}

#[cfg(test)]
mod regression {
    use super::*;
    use serde_json::json;

    /// An override that turned labels into a string used to panic the reconciler.
    #[test]
    fn non_mapping_labels_are_an_error_not_a_panic() {
        let mut v = json!({"metadata": {"name": "x", "labels": "oops"}});
        assert_eq!(mark_owned(&mut v, "p", 0).unwrap_err(), "metadata.labels is not a mapping");
        let mut v = json!({"metadata": "oops"});
        assert!(mark_owned(&mut v, "p", 0).is_err());
        let mut v = json!({"metadata": {"name": "x", "labels": null}});
        mark_owned(&mut v, "p", 0).unwrap();
        assert_eq!(v["metadata"]["labels"][LABEL_PLACEMENT], "p");
    }
}
