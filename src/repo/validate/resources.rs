//! Overrides, approvals, hub resources and envelopes.

use super::placement::{read_selectors, read_terms};
use std::sync::Arc;

use serde_json::Value;

use super::*;

/// JSON pointer paths an override may not touch (KubeFleet forbids them too).
const FORBIDDEN_PATCH_PATHS: &[&str] =
    &["/kind", "/apiVersion", "/metadata/name", "/metadata/namespace", "/status"];

/// Paths an override may not replace or remove as a whole (labels inside them are fine).
const WHOLE_PATHS: &[&str] = &["", "/metadata", "/metadata/labels", "/metadata/annotations"];

pub(super) fn read_patch(ctx: &mut Ctx, at: &str, p: &wire::JsonPatch) -> Option<JsonPatch> {
    let op = match p.op.as_str() {
        "add" => PatchOp::Add,
        "remove" => PatchOp::Remove,
        "replace" => PatchOp::Replace,
        other => {
            ctx.error(format!("{at}.op: {other:?} is not add, remove or replace"));
            return None;
        }
    };
    if !p.path.starts_with('/') {
        ctx.error(format!("{at}.path: {:?} must be a JSON pointer starting with '/'", p.path));
    }
    if FORBIDDEN_PATCH_PATHS.iter().any(|f| p.path == *f || p.path.starts_with(&format!("{f}/"))) {
        ctx.error(format!("{at}.path: {} cannot be overridden", p.path));
    }
    if op != PatchOp::Add && WHOLE_PATHS.contains(&p.path.as_str()) || p.path == "/metadata" {
        ctx.error(format!("{at}.path: {} cannot be replaced or removed as a whole", p.path));
    }
    match (op, &p.value) {
        (PatchOp::Remove, Some(_)) => ctx.error(format!("{at}: remove takes no value")),
        (PatchOp::Add | PatchOp::Replace, None) => ctx.error(format!("{at}: {} needs a value", p.op)),
        _ => {}
    }
    Some(JsonPatch { op, path: p.path.clone(), value: p.value.clone() })
}

pub(super) fn read_override(ctx: &mut Ctx, value: &Value) -> Option<Override> {
    let w: wire::Object<wire::OverrideSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    let cluster_scoped = w.kind == "ClusterResourceOverride";
    let (field, wire_selectors, other) = if cluster_scoped {
        check_cluster_scoped(ctx, &w.metadata);
        ("spec.clusterResourceSelectors", &w.spec.cluster_resource_selectors, &w.spec.resource_selectors)
    } else {
        if w.metadata.namespace.as_deref().is_none_or(|n| !is_dns_label(n)) {
            ctx.error("ResourceOverride needs metadata.namespace (a DNS label)");
        }
        ("spec.resourceSelectors", &w.spec.resource_selectors, &w.spec.cluster_resource_selectors)
    };
    if !other.is_empty() {
        ctx.error(format!("{} does not take the selectors of the other override kind", w.kind));
    }
    if !(1..=20).contains(&wire_selectors.len()) {
        ctx.error(format!("{field} must have 1 to 20 entries (has {})", wire_selectors.len()));
    }
    let selectors = read_selectors(ctx, field, wire_selectors, true);
    if let Some(p) = &w.spec.placement
        && p.name.is_empty()
    {
        ctx.error("spec.placement.name must not be empty");
    }
    // `scope: Namespaced`: a ResourcePlacement of the override's namespace.
    let placement = w.spec.placement.as_ref().map(|p| match p.scope.as_deref() {
        None | Some("Cluster") => p.name.clone(),
        Some("Namespaced") if !cluster_scoped => {
            crate::repo::model::object_key(w.metadata.namespace.as_deref(), &p.name)
        }
        Some("Namespaced") => {
            ctx.error(
                "spec.placement.scope: a ClusterResourceOverride can only name a ClusterResourcePlacement",
            );
            p.name.clone()
        }
        Some(other) => {
            ctx.error(format!("spec.placement.scope: {other:?} is not Cluster or Namespaced"));
            p.name.clone()
        }
    });
    let mut rules = Vec::new();
    let wire_rules = w.spec.policy.as_ref().map(|p| p.override_rules.as_slice()).unwrap_or_default();
    if wire_rules.is_empty() {
        ctx.error("spec.policy.overrideRules must have at least one rule");
    }
    for (i, r) in wire_rules.iter().enumerate() {
        let at = format!("spec.policy.overrideRules[{i}]");
        let cluster_terms = r
            .cluster_selector
            .as_ref()
            .map(|s| read_terms(ctx, &format!("{at}.clusterSelector"), s))
            .unwrap_or_default();
        let delete = match r.override_type.as_deref() {
            None | Some("JSONPatch") => false,
            Some("Delete") => true,
            Some(other) => {
                ctx.error(format!("{at}.overrideType: {other:?} is not JSONPatch or Delete"));
                false
            }
        };
        if delete && !r.json_patch_overrides.is_empty() {
            ctx.error(format!("{at}: a Delete rule takes no jsonPatchOverrides"));
        }
        if !delete && r.json_patch_overrides.is_empty() {
            ctx.error(format!("{at}.jsonPatchOverrides must have at least one patch"));
        }
        let patches = r
            .json_patch_overrides
            .iter()
            .enumerate()
            .filter_map(|(j, p)| read_patch(ctx, &format!("{at}.jsonPatchOverrides[{j}]"), p))
            .collect();
        rules.push(OverrideRule { cluster_terms, delete, patches });
    }
    Some(Override {
        kind: w.kind.clone(),
        name,
        namespace: w.metadata.namespace.clone(),
        placement,
        selectors,
        rules,
        origin: ctx.origin.clone(),
    })
}

pub(super) fn read_approval(ctx: &mut Ctx, value: &Value, namespaced: bool) -> Option<Approval> {
    let w: wire::Approval = ctx.wire(value)?;
    let (_, name) = scoped_key(ctx, &w.metadata, namespaced);
    let conditions = w.status.map(|s| s.conditions).unwrap_or_default();
    let Some(c) = conditions.iter().find(|c| c.type_ == "Approved") else {
        ctx.error("status.conditions needs a condition of type Approved");
        return None;
    };
    if c.status != "True" && c.status != "False" {
        ctx.error(format!("status.conditions[Approved].status: {:?} is not \"True\" or \"False\"", c.status));
    }
    Some(Approval {
        name,
        approved: c.status == "True",
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
        origin: ctx.origin.clone(),
    })
}

/// Checks the identity fields every hub resource needs and builds its key.
pub(super) fn hub_manifest(ctx: &mut Ctx, value: Value, envelope: Option<EnvelopeType>) -> Option<Manifest> {
    let meta: wire::ObjectMeta = ctx.wire(value.get("metadata").unwrap_or(&Value::Null))?;
    let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let name = meta.name.clone().unwrap_or_default();
    let group = group_of(&api_version).to_string();
    if let Some(problem) = identity_problem(&api_version, &kind, &name, meta.namespace.as_deref()) {
        ctx.error(problem);
    }
    match (known_scope(&group, &kind), &meta.namespace) {
        (KnownScope::Cluster, Some(_)) => {
            ctx.error(format!("{kind} is cluster-scoped and must not set metadata.namespace"))
        }
        (KnownScope::Namespaced, None) => {
            ctx.error(format!("{kind} is namespaced and needs metadata.namespace"))
        }
        _ => {}
    }
    check_labels(ctx, &meta.labels);
    Some(Manifest {
        key: ObjectKey { group, kind, namespace: meta.namespace.clone(), name },
        api_version,
        labels: meta.labels,
        origin: ctx.origin.clone(),
        value: Arc::new(value),
        wrapped: Vec::new(),
        envelope,
    })
}

pub(super) fn read_hub(ctx: &mut Ctx, value: Value) -> Option<Manifest> {
    hub_manifest(ctx, value, None)
}

pub(super) fn read_envelope(ctx: &mut Ctx, value: Value) -> Option<Manifest> {
    let w: wire::Envelope = ctx.wire(&value)?;
    let cluster = w.kind == "ClusterResourceEnvelope";
    let envelope =
        if cluster { EnvelopeType::ClusterResourceEnvelope } else { EnvelopeType::ResourceEnvelope };
    let mut manifest = hub_manifest(ctx, value, Some(envelope))?;
    let env_ns = w.metadata.namespace.clone();
    if w.data.is_empty() {
        ctx.error("data must wrap at least one object");
    }
    for (key, obj) in &w.data {
        let at = format!("data.{key:?}");
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            ctx.error(format!("{at}: wrapped object needs apiVersion, kind and metadata.name"));
            continue;
        }
        let wrapped_ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        if let Some(problem) = identity_problem(api_version, kind, name, wrapped_ns) {
            ctx.error(format!("{at}: {problem}"));
            continue;
        }
        let group = group_of(api_version);
        if group == PLACEMENT_GROUP || group == CLUSTER_GROUP || group == GITFLEET_GROUP {
            ctx.error(format!("{at}: {kind} cannot be wrapped in an envelope"));
            continue;
        }
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let scope = known_scope(group, kind);
        let mut wrapped = obj.clone();
        if cluster {
            if ns.is_some() || scope == KnownScope::Namespaced {
                ctx.error(format!(
                    "{at}: {kind}/{name} is namespaced; a ClusterResourceEnvelope may only wrap \
                     cluster-scoped objects (use a ResourceEnvelope)"
                ));
            }
        } else if scope == KnownScope::Cluster {
            ctx.error(format!(
                "{at}: {kind}/{name} is cluster-scoped; a ResourceEnvelope may only wrap namespaced \
                 objects (use a ClusterResourceEnvelope)"
            ));
        } else {
            match (ns, env_ns.as_deref()) {
                (Some(n), Some(e)) if n != e => ctx.error(format!(
                    "{at}: {kind}/{name} is in namespace {n}; a ResourceEnvelope may only wrap objects \
                     of its own namespace {e}"
                )),
                (None, Some(e)) => {
                    wrapped["metadata"]["namespace"] = Value::String(e.to_string());
                }
                _ => {}
            }
        }
        manifest.wrapped.push(wrapped);
    }
    Some(manifest)
}

/// Which rule an object name breaks, as the Kubernetes API server would judge
/// it: a DNS-1123 label for Namespaces, a DNS-1035 label for Services, a path
/// segment for RBAC objects (`system:aggregate-to-view`), a DNS-1123 subdomain
/// for everything else.
fn name_problem(group: &str, kind: &str, name: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Namespace") => (!is_dns_label(name))
            .then_some("must be a lowercase RFC 1123 label (a-z, 0-9, '-'; at most 63 characters)"),
        ("", "Service") => (!(is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())))
            .then_some(
                "must be a lowercase RFC 1035 label (a letter, then a-z, 0-9, '-'; at most 63 characters)",
            ),
        ("rbac.authorization.k8s.io", _) => {
            let bad = name.is_empty()
                || name == "."
                || name == ".."
                || name.len() > 253
                || name.chars().any(|c| c == '/' || c == '%' || c.is_control() || c.is_whitespace());
            bad.then_some("must be a path segment (no '/', '%', white space; not '.' or '..')")
        }
        _ => (!is_dns_subdomain(name))
            .then_some("must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'; at most 253 characters)"),
    }
}

/// What is wrong with an object's identity, if anything. These values become
/// paths on member clusters (and folders of the local store), so they are held
/// to the Kubernetes rules: no `/`, no `..`.
pub(super) fn identity_problem(
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Option<String> {
    let group = group_of(api_version);
    let version = crate::repo::scope::version_of(api_version);
    if !group.is_empty() && !is_dns_subdomain(group) {
        return Some(format!("apiVersion {api_version:?} has an invalid API group"));
    }
    if version.is_empty() || !version.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Some(format!("apiVersion {api_version:?} has an invalid version"));
    }
    if kind.is_empty() || !kind.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Some(format!("kind {kind:?} is not a valid kind (letters and digits)"));
    }
    if let Some(rule) = name_problem(group, kind, name) {
        return Some(format!("metadata.name: {name:?} {rule}"));
    }
    if let Some(ns) = namespace
        && !is_dns_label(ns)
    {
        return Some(format!("metadata.namespace {ns:?} is not a valid namespace name"));
    }
    None
}

pub(super) fn read_eviction(ctx: &mut Ctx, value: &Value) -> Option<Eviction> {
    let w: wire::Object<wire::EvictionSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    if w.spec.placement_name.is_empty() {
        ctx.error("spec.placementName is required");
    }
    if w.spec.cluster_name.is_empty() {
        ctx.error("spec.clusterName is required");
    }
    Some(Eviction {
        name,
        placement: w.spec.placement_name.clone(),
        cluster: w.spec.cluster_name.clone(),
        spec: value.get("spec").cloned().unwrap_or(Value::Null),
        origin: ctx.origin.clone(),
    })
}

pub(super) fn read_budget(ctx: &mut Ctx, value: &Value) -> Option<DisruptionBudget> {
    let w: wire::Object<wire::BudgetSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let spec = &w.spec;
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        ctx.error("spec: minAvailable and maxUnavailable are mutually exclusive");
    }
    let min_available =
        spec.min_available.as_ref().and_then(|v| int_or_percent(ctx, "spec.minAvailable", v, 0, 0));
    let max_unavailable =
        spec.max_unavailable.as_ref().and_then(|v| int_or_percent(ctx, "spec.maxUnavailable", v, 0, 0));
    Some(DisruptionBudget { name, min_available, max_unavailable, origin: ctx.origin.clone() })
}
