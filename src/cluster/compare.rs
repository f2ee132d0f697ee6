//! Comparing what a snapshot would put on a cluster with what the cluster
//! holds (ReportDiff, drift, `gitfleet diff`), and deciding whether an applied
//! object is available (SPEC 6.3).

use serde_json::{Map, Value};

use crate::render::{EnvelopeRef, RenderedObject};
use crate::repo::model::ObjectKey;

/// One field that differs, with JSON-pointer path as KubeFleet reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub path: String,
    /// The value the snapshot wants (absent: the snapshot does not set it).
    pub hub: Option<Value>,
    /// The value on the cluster (absent: the cluster lacks it).
    pub member: Option<Value>,
}

/// How one object on a cluster differs from the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    pub key: ObjectKey,
    pub api_version: String,
    pub envelope: Option<EnvelopeRef>,
    /// False when the object does not exist on the cluster at all.
    pub on_cluster: bool,
    /// The placement that owns the live object (gitfleet's label), if any.
    pub live_owner: Option<String>,
    /// The live object's `metadata.generation` (0 for kinds without one, as
    /// KubeFleet reports it).
    pub live_generation: i64,
    pub fields: Vec<FieldDiff>,
    /// Unified diff of the normalised YAML, cluster (`live`) to snapshot (`git`).
    pub unified: String,
}

/// Server-managed metadata that is never a difference.
const NOISE: [&str; 7] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionGracePeriodSeconds",
];

/// The object as compared: no status, no server-managed metadata, no
/// `kubectl.kubernetes.io/last-applied-configuration` and no `gitfleet.dev/` marks.
pub fn normalise(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in NOISE {
                meta.remove(k);
            }
            // gitfleet's own marks (owner, snapshot index) are bookkeeping, not content.
            for field in ["labels", "annotations"] {
                if let Some(m) = meta.get_mut(field).and_then(Value::as_object_mut) {
                    m.retain(|k, _| {
                        !k.starts_with("gitfleet.dev/")
                            && k != "kubectl.kubernetes.io/last-applied-configuration"
                    });
                    if m.is_empty() {
                        meta.remove(field);
                    }
                }
            }
        }
    }
    v
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: &str, hub: Option<&Value>, member: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (hub, member) {
        (Some(Value::Object(h)), Some(Value::Object(m))) => {
            let empty = Map::new();
            let keys: std::collections::BTreeSet<&String> = h.keys().chain(m.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", escape(k));
                walk(&p, h.get(k), m.get(k).or_else(|| empty.get(k)), out);
            }
        }
        (Some(Value::Array(h)), Some(Value::Array(m))) if h.len() == m.len() => {
            for (i, (a, b)) in h.iter().zip(m).enumerate() {
                walk(&format!("{path}/{i}"), Some(a), Some(b), out);
            }
        }
        (h, m) if h != m => {
            out.push(FieldDiff { path: path.to_string(), hub: h.cloned(), member: m.cloned() })
        }
        _ => {}
    }
}

/// The fields in which `member` differs from `hub` (both normalised first).
pub fn field_diffs(hub: &Value, member: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk("", Some(&normalise(hub)), Some(&normalise(member)), &mut out);
    out
}

/// A unified diff from the live object to the snapshot's, as YAML.
pub fn unified(key: &ObjectKey, live: Option<&Value>, hub: &Value) -> String {
    unified_between(key, live, Some(hub), ("live", "git"))
}

/// A unified diff between two versions of an object (`None`: not there), as
/// YAML, the sides named by `labels`.
pub fn unified_between(
    key: &ObjectKey,
    before: Option<&Value>,
    after: Option<&Value>,
    labels: (&str, &str),
) -> String {
    let text = |v: Option<&Value>| v.map(|v| crate::yaml::to_string(&normalise(v))).unwrap_or_default();
    let (before, after) = (text(before), text(after));
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{}/{key}", labels.0), &format!("{}/{key}", labels.1))
        .to_string()
}

/// What a masked Secret value shows, as `kubectl diff` shows it.
pub const MASK: &str = "***";
const MASK_BEFORE: &str = "*** (before)";
const MASK_AFTER: &str = "*** (after)";

/// A Secret's values never leave the cluster side: in `data` and `stringData`
/// a value that differs shows as `*** (before)` (live) and `*** (after)` (the
/// snapshot), any other as `***`; the keys stay visible. Other objects are
/// returned as they are.
pub fn masked(key: &ObjectKey, hub: &Value, live: Option<&Value>) -> (Value, Option<Value>) {
    let (mut hub, mut live) = (hub.clone(), live.cloned());
    if !(key.group.is_empty() && key.kind == "Secret") {
        return (hub, live);
    }
    for field in ["data", "stringData"] {
        let hub_values = hub.get(field).cloned();
        let live_values = live.as_ref().and_then(|l| l.get(field)).cloned();
        mask_values(hub.get_mut(field), live_values.as_ref(), MASK_AFTER);
        mask_values(live.as_mut().and_then(|l| l.get_mut(field)), hub_values.as_ref(), MASK_BEFORE);
    }
    (hub, live)
}

/// A hub manifest as it may be shown or written outside the repository's own
/// files (a snapshot's `selectedResources`, `get -o yaml`): every Secret's
/// values masked, a Secret wrapped in an envelope's `data` too.
pub fn shown_manifest(m: &crate::repo::model::Manifest) -> Value {
    let mut value = masked(&m.key, &m.value, None).0;
    if m.envelope.is_some()
        && let Some(data) = value.get_mut("data").and_then(Value::as_object_mut)
    {
        for wrapped in data.values_mut() {
            let is_secret = wrapped.get("kind").and_then(Value::as_str) == Some("Secret")
                && wrapped.get("apiVersion").and_then(Value::as_str) == Some("v1");
            if is_secret {
                for field in ["data", "stringData"] {
                    mask_values(wrapped.get_mut(field), None, MASK);
                }
            }
        }
    }
    value
}

/// Replaces every value of `values` by a mask: `changed` where `other` holds
/// the same key with another value.
fn mask_values(values: Option<&mut Value>, other: Option<&Value>, changed: &str) {
    let Some(Value::Object(values)) = values else { return };
    for (k, v) in values.iter_mut() {
        let differs = other.and_then(|o| o.get(k)).is_some_and(|o| o != v);
        *v = Value::String(if differs { changed } else { MASK }.to_string());
    }
}

/// Compares the object a snapshot would produce (`after`: the rendered object,
/// or the server's dry-run result of applying it) with the live one. Secret
/// values are masked first ([`masked`]): what is returned may be shown anywhere.
pub fn compare(obj: &RenderedObject, after: &Value, live: Option<&Value>) -> Option<ObjectDiff> {
    let (after, live) = masked(&obj.key, after, live);
    let (after, live) = (&after, live.as_ref());
    let fields = match live {
        Some(l) => field_diffs(after, l),
        None => vec![FieldDiff { path: String::new(), hub: Some(normalise(after)), member: None }],
    };
    if fields.is_empty() {
        return None;
    }
    Some(ObjectDiff {
        key: obj.key.clone(),
        api_version: obj.api_version.clone(),
        envelope: obj.envelope.clone(),
        on_cluster: live.is_some(),
        live_owner: live.and_then(crate::render::owner),
        live_generation: live.map_or(0, |l| int(l, "/metadata/generation")),
        unified: unified(&obj.key, live, after),
        fields,
    })
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// Why an applied object is not available yet (SPEC 6.3), or `None` when it is.
pub fn not_available(v: &Value) -> Option<String> {
    let kind = v["kind"].as_str().unwrap_or_default();
    let group = v["apiVersion"].as_str().map(crate::repo::scope::group_of).unwrap_or_default();
    let generation = int(v, "/metadata/generation");
    let observed = int(v, "/status/observedGeneration");
    let stale = || {
        (observed < generation)
            .then(|| format!("status is for generation {observed}, the object is at generation {generation}"))
    };
    match (group, kind) {
        ("apps", "Deployment") => {
            let desired = v.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let (available, updated) =
                (int(v, "/status/availableReplicas"), int(v, "/status/updatedReplicas"));
            stale().or_else(|| {
                (available != desired || updated != desired)
                    .then(|| format!("{updated} of {desired} replicas updated, {available} available"))
            })
        }
        ("apps", "StatefulSet") => {
            let desired = v.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let available = int(v, "/status/availableReplicas");
            let current = v.pointer("/status/currentRevision");
            let update = v.pointer("/status/updateRevision");
            stale()
                .or_else(|| {
                    (available != desired).then(|| format!("{available} of {desired} replicas available"))
                })
                .or_else(|| {
                    (current != update).then(|| "not every replica runs the update revision".to_string())
                })
        }
        ("apps", "DaemonSet") => {
            let desired = int(v, "/status/desiredNumberScheduled");
            let available = int(v, "/status/numberAvailable");
            stale().or_else(|| {
                (available != desired).then(|| format!("{available} of {desired} scheduled pods available"))
            })
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => (!condition_true(v, "Established"))
            .then(|| "the CustomResourceDefinition is not Established".into()),
        ("", "Service") if v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") => v
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
            .then(|| "the LoadBalancer has no ingress address yet".into()),
        ("batch", "Job") => (!condition_true(v, "Complete")).then(|| "the Job has not completed".into()),
        _ => None,
    }
}

fn condition_true(v: &Value, type_: &str) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_masked_when_shown_wrapped_in_an_envelope_too() {
        use crate::repo::model::{EnvelopeType, Manifest, Origin};
        let manifest = |kind: &str, value: Value, envelope: Option<EnvelopeType>| Manifest {
            key: ObjectKey {
                group: String::new(),
                kind: kind.into(),
                namespace: Some("app".into()),
                name: "x".into(),
            },
            api_version: "v1".into(),
            labels: Default::default(),
            origin: Origin { path: "x.yaml".into(), line: 1 },
            value: std::sync::Arc::new(value),
            wrapped: Vec::new(),
            envelope,
        };
        let secret = json!({ "apiVersion": "v1", "kind": "Secret", "data": { "token": "c2VjcmV0" } });
        let shown = shown_manifest(&manifest("Secret", secret.clone(), None));
        assert_eq!(shown["data"]["token"], MASK);
        let envelope = json!({ "kind": "ResourceEnvelope", "data": { "s.yaml": secret, "cm.yaml": { "apiVersion": "v1", "kind": "ConfigMap", "data": { "k": "v" } } } });
        let shown =
            shown_manifest(&manifest("ResourceEnvelope", envelope, Some(EnvelopeType::ResourceEnvelope)));
        assert_eq!(shown["data"]["s.yaml"]["data"]["token"], MASK);
        assert_eq!(shown["data"]["cm.yaml"]["data"]["k"], "v", "other objects as they are");
        assert!(!shown.to_string().contains("c2VjcmV0"));
    }

    fn deployment(generation: i64, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "generation": generation},
               "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn deployments_need_current_generation_and_all_replicas() {
        assert!(not_available(&deployment(2, json!({}))).unwrap().contains("generation 0"));
        let half = json!({"observedGeneration": 2, "availableReplicas": 1, "updatedReplicas": 2});
        assert_eq!(not_available(&deployment(2, half)).unwrap(), "2 of 2 replicas updated, 1 available");
        let old = json!({"observedGeneration": 1, "availableReplicas": 2, "updatedReplicas": 2});
        assert!(not_available(&deployment(2, old)).is_some());
        let done = json!({"observedGeneration": 2, "availableReplicas": 2, "updatedReplicas": 2});
        assert_eq!(not_available(&deployment(2, done)), None);
    }

    #[test]
    fn statefulsets_daemonsets_jobs_crds_and_load_balancers() {
        let sts = |cur: &str| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
                   "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "availableReplicas": 1,
                   "currentRevision": cur, "updateRevision": "b"}})
        };
        assert!(not_available(&sts("a")).is_some());
        assert_eq!(not_available(&sts("b")), None);
        let ds = |n: i64| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1},
                   "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "numberAvailable": n}})
        };
        assert!(not_available(&ds(2)).is_some());
        assert_eq!(not_available(&ds(3)), None);
        let job = |c: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": c}});
        assert!(not_available(&job(json!([]))).is_some());
        assert_eq!(not_available(&job(json!([{"type": "Complete", "status": "True"}]))), None);
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "status": {"conditions": [{"type": "Established", "status": "False"}]}});
        assert!(not_available(&crd).is_some());
        let lb = |ingress: Value| {
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"},
                   "status": {"loadBalancer": {"ingress": ingress}}})
        };
        assert!(not_available(&lb(json!([]))).is_some());
        assert_eq!(not_available(&lb(json!([{"ip": "10.0.0.1"}]))), None);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(not_available(&cm), None, "everything else is available once applied");
        let svc = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}});
        assert_eq!(not_available(&svc), None);
    }

    #[test]
    fn field_diffs_ignore_server_metadata_and_status() {
        let hub = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}},
                         "data": {"key": "value1", "same": "s"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "a", "labels": {"x": "1"}, "resourceVersion": "7", "uid": "u",
                                       "managedFields": [], "creationTimestamp": "t"},
                          "data": {"key": "changed", "same": "s", "extra/k": "e"}, "status": {}});
        let d = field_diffs(&hub, &live);
        assert_eq!(
            d,
            vec![
                FieldDiff { path: "/data/extra~1k".into(), hub: None, member: Some(json!("e")) },
                FieldDiff {
                    path: "/data/key".into(),
                    hub: Some(json!("value1")),
                    member: Some(json!("changed"))
                },
            ]
        );
        assert!(field_diffs(&hub, &hub).is_empty());
    }

    #[test]
    fn unified_diff_goes_from_live_to_git() {
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "a".into(),
        };
        let hub = json!({"data": {"key": "value1"}});
        let live = json!({"data": {"key": "changed"}});
        let text = unified(&key, Some(&live), &hub);
        assert!(text.contains("-  key: changed"), "{text}");
        assert!(text.contains("+  key: value1"), "{text}");
        assert!(text.starts_with("--- live/"), "{text}");
    }

    fn secret(data: Value) -> RenderedObject {
        let value = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "app"},
                           "type": "Opaque", "data": data});
        RenderedObject {
            key: ObjectKey {
                group: String::new(),
                kind: "Secret".into(),
                namespace: Some("app".into()),
                name: "db".into(),
            },
            api_version: "v1".into(),
            value,
            envelope: None,
        }
    }

    /// Regression: ReportDiff and drift committed Secret values to Git.
    #[test]
    fn secret_values_are_masked_like_kubectl_diff() {
        let hub = secret(json!({"password": "bmV3", "user": "YWRtaW4=", "added": "eA=="}));
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "app"},
                          "type": "Opaque", "data": {"password": "b2xk", "user": "YWRtaW4=", "gone": "eQ=="}});
        let d = compare(&hub, &hub.value, Some(&live)).expect("the password differs");
        let shown: Vec<(&str, Option<Value>, Option<Value>)> =
            d.fields.iter().map(|f| (f.path.as_str(), f.hub.clone(), f.member.clone())).collect();
        assert_eq!(
            shown,
            [
                ("/data/added", Some(json!("***")), None),
                ("/data/gone", None, Some(json!("***"))),
                ("/data/password", Some(json!("*** (after)")), Some(json!("*** (before)"))),
            ],
            "keys stay visible, the unchanged user is no difference"
        );
        for secret in ["bmV3", "b2xk", "YWRtaW4=", "eA==", "eQ=="] {
            assert!(!d.unified.contains(secret), "{secret} in {}", d.unified);
        }
        assert!(
            d.unified.contains("-  password: '*** (before)'")
                || d.unified.contains("-  password: \"*** (before)\""),
            "{}",
            d.unified
        );
        let missing = compare(&hub, &hub.value, None).unwrap();
        assert!(!format!("{missing:?}").contains("bmV3"), "an object not on the cluster is masked too");
        let same = secret(json!({"password": "b2xk", "user": "YWRtaW4=", "gone": "eQ=="}));
        assert_eq!(compare(&same, &same.value, Some(&live)), None, "equal values: no difference");
    }

    #[test]
    fn other_kinds_are_not_masked() {
        let cm = json!({"data": {"k": "v"}});
        let key =
            ObjectKey { group: String::new(), kind: "ConfigMap".into(), namespace: None, name: "c".into() };
        assert_eq!(masked(&key, &cm, Some(&cm)), (cm.clone(), Some(cm)));
    }
}
