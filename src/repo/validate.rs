//! Reading one file: YAML documents -> routed by apiVersion/kind -> wire types ->
//! validated domain objects, with one [`Issue`] per problem.
//!
//! Checks that need other objects (references, duplicates) live in
//! [`super::fleet`]; everything here depends on a single document only, so a
//! parsed file can be reused for as long as its blob does not change.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::duration::{self, MAX_WAIT};
use super::labels::{LabelSelector, is_dns_label, is_dns_subdomain, validate_label_key};
use super::model::*;
use super::scope::{KnownScope, group_of, known_scope};
use super::wire;
use crate::yaml;

/// API group of the placement kinds.
pub const PLACEMENT_GROUP: &str = "placement.kubernetes-fleet.io";
/// API group of MemberCluster.
pub const CLUSTER_GROUP: &str = "cluster.kubernetes-fleet.io";
/// API group of gitfleet's own kinds.
pub const GITFLEET_GROUP: &str = "gitfleet.dev";
/// Versions accepted for the KubeFleet groups.
const FLEET_VERSIONS: &[&str] = &["v1beta1", "v1"];
/// Default `clusterTimeout` of a stage.
pub const DEFAULT_CLUSTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// Default `revisionHistoryLimit` of a placement.
pub const DEFAULT_REVISION_HISTORY_LIMIT: u32 = 10;

/// One problem found in the repository: file, line when known, object, reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Issue {
    pub path: Arc<str>,
    pub line: Option<u64>,
    pub object: Option<String>,
    pub message: String,
}

impl fmt::Display for Issue {
    /// One line, whatever the names in it hold: control characters (a name
    /// that is a multi-line scalar, say) are written escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", one_line(&self.path))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {}", one_line(object))?;
        }
        write!(f, ": {}", one_line(&self.message))
    }
}

fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        std::borrow::Cow::Owned(text.chars().flat_map(char::escape_default).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Which part of the repository a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// Hub resources and gitfleet kinds.
    Manifests,
    /// `approvals/`: ClusterApprovalRequest files written by people.
    Approvals,
}

/// The objects of one file and the problems found in it.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub objects: Vec<FleetObject>,
    /// Content hash of each object, aligned with `objects`: the whole document for
    /// hub resources, the wrapped objects for envelopes, the `spec` for gitfleet kinds.
    pub hashes: Vec<ContentHash>,
    /// The document of each object as read, aligned with `objects`.
    pub values: Vec<Arc<Value>>,
    pub issues: Vec<Issue>,
}

impl ParsedFile {
    /// A file with any problem is broken as a whole: gitfleet never acts on part of it.
    pub fn is_broken(&self) -> bool {
        !self.issues.is_empty()
    }
}

/// Parses and validates every document of one file.
pub fn parse_file(path: &str, bytes: &[u8], area: Area) -> ParsedFile {
    let path: Arc<str> = Arc::from(path);
    let mut parsed = ParsedFile::default();
    let docs = match yaml::parse_documents(bytes) {
        Ok(docs) => docs,
        Err(e) => {
            parsed.issues.push(Issue { path, line: e.line(), object: None, message: e.to_string() });
            return parsed;
        }
    };
    if docs.is_empty() {
        // An emptied file would otherwise look like the deletion of all it held.
        let message = "no objects (to remove what it held, delete the file)".to_string();
        parsed.issues.push(Issue { path, line: None, object: None, message });
        return parsed;
    }
    for doc in docs {
        let origin = Origin { path: path.clone(), line: doc.line };
        let mut ctx = Ctx { origin, object: None, issues: Vec::new() };
        let hash = if area == Area::Approvals { None } else { Some(content_hash(&doc.value)) };
        // Hub resources keep their document in the manifest; only gitfleet kinds need a copy.
        let raw = is_fleet_kind(&doc.value).then(|| Arc::new(doc.value.clone()));
        if let Some(object) = read_document(&mut ctx, doc.value, area)
            && ctx.issues.is_empty()
        {
            let hash = match &object {
                FleetObject::Hub(m) if m.envelope.is_some() => {
                    crate::repo::hash::hash_value(&Value::Array(m.wrapped.clone()))
                }
                _ => hash.unwrap_or_default(),
            };
            parsed.values.push(match (&object, raw) {
                (FleetObject::Hub(m), _) => m.value.clone(),
                (_, Some(raw)) => raw,
                (_, None) => Arc::new(Value::Null),
            });
            parsed.objects.push(object);
            parsed.hashes.push(hash);
        }
        parsed.issues.append(&mut ctx.issues);
    }
    parsed
}

pub use crate::repo::hash::ContentHash;

/// The part of a document whose change is a new version: `spec` for gitfleet
/// kinds (like a Kubernetes generation), the whole document otherwise.
fn content_hash(doc: &Value) -> ContentHash {
    match doc.get("spec") {
        Some(spec) if is_fleet_kind(doc) => crate::repo::hash::hash_value(spec),
        _ => crate::repo::hash::hash_value(doc),
    }
}

/// Whether a document is of one of the KubeFleet or gitfleet API groups.
fn is_fleet_kind(doc: &Value) -> bool {
    let group = doc.get("apiVersion").and_then(Value::as_str).map(group_of).unwrap_or_default();
    matches!(group, PLACEMENT_GROUP | CLUSTER_GROUP | GITFLEET_GROUP)
}

/// Collects issues for one document.
struct Ctx {
    origin: Origin,
    object: Option<String>,
    issues: Vec<Issue>,
}

impl Ctx {
    fn error(&mut self, message: impl Into<String>) {
        self.issues.push(Issue {
            path: self.origin.path.clone(),
            line: Some(self.origin.line),
            object: self.object.clone(),
            message: message.into(),
        });
    }

    fn error_count(&self) -> usize {
        self.issues.len()
    }

    fn errors(&mut self, messages: Vec<String>) {
        for m in messages {
            self.error(m);
        }
    }

    /// Deserializes the wire form, reporting the field path of a mismatch.
    fn wire<T: DeserializeOwned>(&mut self, value: &Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = e.path().to_string();
                let inner = e.into_inner().to_string();
                if at == "." || at.is_empty() {
                    self.error(inner);
                } else {
                    self.error(format!("{at}: {inner}"));
                }
                None
            }
        }
    }
}

fn read_document(ctx: &mut Ctx, value: Value, area: Area) -> Option<FleetObject> {
    if !value.is_object() {
        ctx.error("document is not a mapping (expected a Kubernetes object)");
        return None;
    }
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if kind.is_empty() || api_version.is_empty() || name.is_empty() {
        let missing: Vec<&str> = [("apiVersion", api_version), ("kind", kind), ("metadata.name", name)]
            .iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(f, _)| *f)
            .collect();
        if !kind.is_empty() {
            ctx.object = Some(kind.to_string());
        }
        if name.is_empty() && value.pointer("/metadata/generateName").is_some() {
            ctx.error(
                "metadata.generateName is not supported: an object in Git needs a metadata.name \
                 (a generated name would change on every apply)",
            );
            return None;
        }
        ctx.error(format!("object has no {}", missing.join(", no ")));
        return None;
    }
    ctx.object = Some(format!("{kind}/{name}"));
    let group = group_of(api_version).to_string();
    let kind = kind.to_string();
    if area == Area::Approvals {
        if group != PLACEMENT_GROUP || (kind != "ClusterApprovalRequest" && kind != "ApprovalRequest") {
            ctx.error(format!(
                "only ClusterApprovalRequest and ApprovalRequest ({PLACEMENT_GROUP}) files belong in the approvals folder"
            ));
            return None;
        }
        check_fleet_version(ctx, api_version);
        return read_approval(ctx, &value, kind == "ApprovalRequest").map(FleetObject::Approval);
    }
    match (group.as_str(), kind.as_str()) {
        (CLUSTER_GROUP, "MemberCluster") => {
            check_fleet_version(ctx, api_version);
            read_member_cluster(ctx, &value).map(FleetObject::Cluster)
        }
        (PLACEMENT_GROUP, "ClusterResourcePlacement" | "ResourcePlacement") => {
            check_fleet_version(ctx, api_version);
            read_placement(ctx, &value, kind == "ResourcePlacement").map(FleetObject::Placement)
        }
        (PLACEMENT_GROUP, "ClusterStagedUpdateStrategy" | "StagedUpdateStrategy") => {
            check_alpha_version(ctx, api_version);
            read_strategy(ctx, &value, kind == "StagedUpdateStrategy").map(FleetObject::Strategy)
        }
        (PLACEMENT_GROUP, "ClusterStagedUpdateRun" | "StagedUpdateRun") => {
            check_alpha_version(ctx, api_version);
            read_run(ctx, &value, kind == "StagedUpdateRun").map(FleetObject::Run)
        }
        (PLACEMENT_GROUP, "ClusterResourceOverride" | "ResourceOverride") => {
            check_alpha_version(ctx, api_version);
            read_override(ctx, &value).map(FleetObject::Override)
        }
        (PLACEMENT_GROUP, "ResourceEnvelope" | "ClusterResourceEnvelope") => {
            check_fleet_version(ctx, api_version);
            read_envelope(ctx, value).map(|m| FleetObject::Hub(Arc::new(m)))
        }
        (PLACEMENT_GROUP, "ClusterResourcePlacementEviction") => {
            check_alpha_version(ctx, api_version);
            read_eviction(ctx, &value).map(FleetObject::Eviction)
        }
        (PLACEMENT_GROUP, "ClusterResourcePlacementDisruptionBudget") => {
            check_alpha_version(ctx, api_version);
            read_budget(ctx, &value).map(FleetObject::Budget)
        }
        (PLACEMENT_GROUP, "ClusterApprovalRequest" | "ApprovalRequest") => {
            ctx.error(format!("{kind} files belong in the approvals folder"));
            None
        }
        (GITFLEET_GROUP, "RolloutWindow") => {
            if super::scope::version_of(api_version) != "v1alpha1" {
                ctx.error(format!("unsupported apiVersion {api_version} (use {GITFLEET_GROUP}/v1alpha1)"));
            }
            let origin = ctx.origin.clone();
            window::read_window(ctx, &value).map(|w| FleetObject::Window(w, origin))
        }
        (PLACEMENT_GROUP | CLUSTER_GROUP, other) if HUB_WRITTEN.contains(&other) => {
            ctx.error(format!(
                "{other} is written by a KubeFleet hub, not by people: gitfleet writes its own status under the status folder"
            ));
            None
        }
        (PLACEMENT_GROUP | CLUSTER_GROUP | GITFLEET_GROUP, other)
            if group == GITFLEET_GROUP || near_kind(other).is_some() =>
        {
            let hint = near_kind(other).map(|k| format!(" (did you mean {k}?)")).unwrap_or_default();
            ctx.error(format!("unknown kind {other} in API group {group}{hint}"));
            None
        }
        // KubeFleet's other kinds (MetricCollector, WorkloadTracker, ...) are
        // resources like any other: placed where a placement selects them.
        _ => read_hub(ctx, value).map(|m| FleetObject::Hub(Arc::new(m))),
    }
}

/// KubeFleet's kinds that its hub writes for itself (gitfleet keeps their
/// like under the status folder).
const HUB_WRITTEN: &[&str] = &[
    "ClusterResourceBinding",
    "ResourceBinding",
    "ClusterResourceSnapshot",
    "ResourceSnapshot",
    "ClusterSchedulingPolicySnapshot",
    "SchedulingPolicySnapshot",
    "ClusterResourceOverrideSnapshot",
    "ResourceOverrideSnapshot",
    "ClusterResourcePlacementStatus",
    "Work",
    "AppliedWork",
    "InternalMemberCluster",
];

/// The kinds gitfleet reads from the repository.
const READ_KINDS: &[&str] = &[
    "MemberCluster",
    "ClusterResourcePlacement",
    "ResourcePlacement",
    "ClusterStagedUpdateStrategy",
    "StagedUpdateStrategy",
    "ClusterStagedUpdateRun",
    "StagedUpdateRun",
    "ClusterResourceOverride",
    "ResourceOverride",
    "ClusterResourceEnvelope",
    "ResourceEnvelope",
    "ClusterResourcePlacementEviction",
    "ClusterResourcePlacementDisruptionBudget",
    "ClusterApprovalRequest",
    "ApprovalRequest",
    "RolloutWindow",
];

/// A kind gitfleet reads that `kind` looks like a misspelling of (at most two
/// letters apart, ignoring case).
fn near_kind(kind: &str) -> Option<&'static str> {
    let k = kind.to_ascii_lowercase();
    READ_KINDS
        .iter()
        .copied()
        .find(|r| r.len().abs_diff(k.len()) <= 2 && edit_distance(&r.to_ascii_lowercase(), &k) <= 2)
}

/// Levenshtein distance of two ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Kinds KubeFleet also serves as `v1alpha1`, whose fields gitfleet reads
/// the same way (the v1alpha1 schema is a subset of v1beta1's for them).
fn check_alpha_version(ctx: &mut Ctx, api_version: &str) {
    let version = super::scope::version_of(api_version);
    if version != "v1alpha1" && !FLEET_VERSIONS.contains(&version) {
        ctx.error(format!("unsupported apiVersion {api_version} (use v1beta1, v1 or v1alpha1)"));
    }
}

fn check_fleet_version(ctx: &mut Ctx, api_version: &str) {
    let version = super::scope::version_of(api_version);
    if !FLEET_VERSIONS.contains(&version) {
        ctx.error(format!("unsupported apiVersion {api_version} (use v1beta1 or v1)"));
    }
}

/// Checks the name of a gitfleet object: it becomes part of file names.
fn check_name(ctx: &mut Ctx, name: &str) {
    if !is_dns_subdomain(name) || name.len() > 63 {
        ctx.error(format!(
            "metadata.name {name:?} must be a lowercase DNS name (a-z, 0-9, '-', '.') of at most 63 characters"
        ));
    }
}

/// Checks the scope of a gitfleet kind with a namespaced twin: a namespaced
/// one needs a namespace (a DNS label), a cluster-scoped one must have none.
/// Returns the object's namespace and key (`namespace/name` when namespaced).
fn scoped_key(ctx: &mut Ctx, meta: &wire::ObjectMeta, namespaced: bool) -> (Option<String>, String) {
    let name = meta.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    if !namespaced {
        check_cluster_scoped(ctx, meta);
        return (None, name);
    }
    match meta.namespace.as_deref() {
        Some(ns) if is_dns_label(ns) => {
            (Some(ns.to_string()), crate::repo::model::object_key(Some(ns), &name))
        }
        Some(ns) => {
            ctx.error(format!(
                "metadata.namespace {ns:?} must be a lowercase DNS label of at most 63 characters"
            ));
            (None, name)
        }
        None => {
            ctx.error("is namespaced and needs metadata.namespace");
            (None, name)
        }
    }
}

fn check_cluster_scoped(ctx: &mut Ctx, meta: &wire::ObjectMeta) {
    if meta.namespace.is_some() {
        ctx.error("is cluster-scoped and must not set metadata.namespace");
    }
}

fn read_member_cluster(ctx: &mut Ctx, value: &Value) -> Option<MemberCluster> {
    let w: wire::MemberCluster = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    check_labels(ctx, &w.metadata.labels);
    let spec = w.spec.unwrap_or_default();
    let mut taints = Vec::new();
    for (i, t) in spec.taints.iter().enumerate() {
        let at = format!("spec.taints[{i}]");
        if let Err(e) = validate_label_key(&t.key) {
            ctx.error(format!("{at}.key: {:?} {e}", t.key));
        }
        let value = t.value.clone().unwrap_or_default();
        if let Err(e) = super::labels::validate_label_value(&value) {
            ctx.error(format!("{at}.value: {value:?} {e}"));
        }
        match t.effect.as_deref() {
            Some("NoSchedule") => taints.push(Taint { key: t.key.clone(), value }),
            other => ctx.error(format!("{at}.effect: {:?} is not NoSchedule", other.unwrap_or_default())),
        }
    }
    Some(MemberCluster {
        name,
        labels: w.metadata.labels,
        annotations: w.metadata.annotations,
        taints,
        heartbeat_seconds: match spec.heartbeat_period_seconds {
            None => 60,
            Some(n) if (1..=600).contains(&n) => n as u32,
            Some(n) => {
                ctx.error(format!("spec.heartbeatPeriodSeconds: {n} is not between 1 and 600"));
                60
            }
        },
        origin: ctx.origin.clone(),
    })
}

fn check_labels(ctx: &mut Ctx, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if let Err(e) = validate_label_key(k) {
            ctx.error(format!("metadata.labels: key {k:?} {e}"));
        }
        if let Err(e) = super::labels::validate_label_value(v) {
            ctx.error(format!("metadata.labels.{k}: value {v:?} {e}"));
        }
    }
}

/// Parses `N` or `N%` within bounds; `field` names it in errors.
fn int_or_percent(
    ctx: &mut Ctx,
    field: &str,
    value: &wire::IntOrString,
    min_count: i64,
    min_percent: u32,
) -> Option<IntOrPercent> {
    let parsed = match value {
        wire::IntOrString::Int(n) if *n >= min_count && *n <= u32::MAX as i64 => {
            Some(IntOrPercent::Count(*n as u32))
        }
        wire::IntOrString::Str(s) => match s.strip_suffix('%').map(str::parse::<u32>) {
            Some(Ok(p)) if p >= min_percent && p <= 100 => Some(IntOrPercent::Percent(p)),
            _ => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min_count && *n <= u32::MAX as i64)
                .map(|n| IntOrPercent::Count(n as u32)),
        },
        _ => None,
    };
    if parsed.is_none() {
        let shown = match value {
            wire::IntOrString::Int(n) => n.to_string(),
            wire::IntOrString::Str(s) => format!("{s:?}"),
        };
        ctx.error(format!(
            "{field}: {shown} must be an integer >= {min_count} or a percentage {min_percent}%..100%"
        ));
    }
    parsed
}

mod placement;
mod resources;
mod rollout;
#[cfg(test)]
mod tests;
mod window;

use placement::read_placement;
use resources::{read_approval, read_budget, read_envelope, read_eviction, read_hub, read_override};
use rollout::{read_run, read_strategy};

/// Rebuilds a strategy from a `spec` recorded in a run's status
/// (`stagedUpdateStrategySnapshot`), validating it like a file.
pub fn strategy_from_spec(key: &str, spec: &Value) -> Result<Strategy, Vec<Issue>> {
    let (namespace, name) = crate::repo::model::split_key(key);
    let doc = serde_json::json!({
        "apiVersion": format!("{PLACEMENT_GROUP}/v1beta1"),
        "kind": "ClusterStagedUpdateStrategy",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    });
    let origin = Origin { path: Arc::from("stagedUpdateStrategySnapshot"), line: 1 };
    let mut ctx =
        Ctx { origin, object: Some(format!("ClusterStagedUpdateStrategy/{name}")), issues: Vec::new() };
    match read_strategy(&mut ctx, &doc, namespace.is_some()) {
        Some(s) if ctx.issues.is_empty() => Ok(s),
        _ => Err(ctx.issues),
    }
}
