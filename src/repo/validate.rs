//! Reading one file: YAML documents -> routed by apiVersion/kind -> wire types ->
//! validated domain objects, with one [`Issue`] per problem.
//!
//! Checks that need other objects (references, duplicates) live in
//! [`super::fleet`]; everything here depends on a single document only, so a
//! parsed file can be reused for as long as its blob does not change.

use std::collections::{BTreeMap, BTreeSet};
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Which part of the repository a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
                    crate::snapshot::hash_value(&Value::Array(m.wrapped.clone()))
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

/// SHA-256 of an object's canonical JSON.
pub type ContentHash = [u8; 32];

/// The part of a document whose change is a new version: `spec` for gitfleet
/// kinds (like a Kubernetes generation), the whole document otherwise.
fn content_hash(doc: &Value) -> ContentHash {
    match doc.get("spec") {
        Some(spec) if is_fleet_kind(doc) => crate::snapshot::hash_value(spec),
        _ => crate::snapshot::hash_value(doc),
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
        ctx.error(format!("object has no {}", missing.join(", no ")));
        return None;
    }
    ctx.object = Some(format!("{kind}/{name}"));
    let group = group_of(api_version).to_string();
    let kind = kind.to_string();
    if area == Area::Approvals {
        if group != PLACEMENT_GROUP || kind != "ClusterApprovalRequest" {
            ctx.error(format!(
                "only ClusterApprovalRequest ({PLACEMENT_GROUP}) files belong in the approvals folder"
            ));
            return None;
        }
        check_fleet_version(ctx, api_version);
        return read_approval(ctx, &value).map(FleetObject::Approval);
    }
    match (group.as_str(), kind.as_str()) {
        (CLUSTER_GROUP, "MemberCluster") => {
            check_fleet_version(ctx, api_version);
            read_member_cluster(ctx, &value).map(FleetObject::Cluster)
        }
        (PLACEMENT_GROUP, "ClusterResourcePlacement") => {
            check_fleet_version(ctx, api_version);
            read_placement(ctx, &value).map(FleetObject::Placement)
        }
        (PLACEMENT_GROUP, "ClusterStagedUpdateStrategy") => {
            check_fleet_version(ctx, api_version);
            read_strategy(ctx, &value).map(FleetObject::Strategy)
        }
        (PLACEMENT_GROUP, "ClusterStagedUpdateRun") => {
            check_fleet_version(ctx, api_version);
            read_run(ctx, &value).map(FleetObject::Run)
        }
        (PLACEMENT_GROUP, "ClusterResourceOverride" | "ResourceOverride") => {
            check_fleet_version(ctx, api_version);
            read_override(ctx, &value).map(FleetObject::Override)
        }
        (PLACEMENT_GROUP, "ResourceEnvelope" | "ClusterResourceEnvelope") => {
            check_fleet_version(ctx, api_version);
            read_envelope(ctx, value).map(|m| FleetObject::Hub(Arc::new(m)))
        }
        (PLACEMENT_GROUP, "ClusterApprovalRequest") => {
            ctx.error("ClusterApprovalRequest files belong in the approvals folder");
            None
        }
        (PLACEMENT_GROUP | CLUSTER_GROUP | GITFLEET_GROUP, other) => {
            ctx.error(format!("unknown kind {other} in API group {group}"));
            None
        }
        _ => read_hub(ctx, value).map(|m| FleetObject::Hub(Arc::new(m))),
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
    Some(MemberCluster {
        name,
        labels: w.metadata.labels,
        annotations: w.metadata.annotations,
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

fn read_selectors(
    ctx: &mut Ctx,
    field: &str,
    selectors: &[wire::ResourceSelector],
    require_name: bool,
) -> Vec<ResourceSelector> {
    let mut out = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if s.kind.is_empty() {
            ctx.error(format!("{at}.kind is required"));
        }
        if s.version.is_empty() {
            ctx.error(format!("{at}.version is required"));
        }
        if s.name.is_some() && s.label_selector.is_some() {
            ctx.error(format!("{at}: name and labelSelector are mutually exclusive"));
        }
        if require_name && s.name.as_deref().unwrap_or_default().is_empty() {
            ctx.error(format!("{at}.name is required"));
        }
        let scope = match s.selection_scope.as_deref() {
            None | Some("NamespaceWithResources") => SelectionScope::NamespaceWithResources,
            Some("NamespaceOnly") => SelectionScope::NamespaceOnly,
            Some(other) => {
                ctx.error(format!(
                    "{at}.selectionScope: {other:?} is not NamespaceWithResources or NamespaceOnly"
                ));
                SelectionScope::NamespaceWithResources
            }
        };
        if s.selection_scope.is_some() && !(s.group.is_empty() && s.kind == "Namespace") {
            ctx.error(format!("{at}.selectionScope applies only to Namespace selectors"));
        }
        let target = match (&s.name, &s.label_selector) {
            (Some(n), _) if n.is_empty() => {
                ctx.error(format!("{at}.name must not be empty"));
                SelectorTarget::All
            }
            (Some(n), _) => SelectorTarget::Name(n.clone()),
            (None, Some(sel)) => {
                ctx.errors(sel.validate(&format!("{at}.labelSelector")));
                SelectorTarget::Labels(sel.clone())
            }
            (None, None) => SelectorTarget::All,
        };
        out.push(ResourceSelector {
            group: s.group.clone(),
            version: s.version.clone(),
            kind: s.kind.clone(),
            target,
            scope,
        });
    }
    out
}

fn read_terms(ctx: &mut Ctx, field: &str, sel: &wire::ClusterSelector) -> Vec<LabelSelector> {
    let mut terms = Vec::new();
    for (i, t) in sel.cluster_selector_terms.iter().enumerate() {
        let at = format!("{field}.clusterSelectorTerms[{i}]");
        if t.property_selector.is_some() {
            ctx.error(format!("{at}.propertySelector is not supported (select clusters by label)"));
        }
        let ls = t.label_selector.clone().unwrap_or_default();
        ctx.errors(ls.validate(&format!("{at}.labelSelector")));
        terms.push(ls);
    }
    terms
}

fn read_policy(ctx: &mut Ctx, policy: Option<&wire::Policy>) -> PlacementPolicy {
    let Some(p) = policy else {
        return PlacementPolicy::PickAll { terms: Vec::new() };
    };
    if p.tolerations.is_some() {
        ctx.error("spec.policy.tolerations is not supported (MemberClusters in Git carry no taints)");
    }
    if p.topology_spread_constraints.is_some() {
        ctx.error("spec.policy.topologySpreadConstraints is not supported");
    }
    let mut terms = Vec::new();
    if let Some(aff) = p.affinity.as_ref().and_then(|a| a.cluster_affinity.as_ref()) {
        if aff.preferred_during_scheduling_ignored_during_execution.is_some() {
            ctx.error(
                "spec.policy.affinity.clusterAffinity.preferredDuringSchedulingIgnoredDuringExecution is not supported",
            );
        }
        if let Some(req) = &aff.required_during_scheduling_ignored_during_execution {
            terms = read_terms(
                ctx,
                "spec.policy.affinity.clusterAffinity.requiredDuringSchedulingIgnoredDuringExecution",
                req,
            );
        }
    }
    let placement_type = p.placement_type.as_deref().unwrap_or("PickAll");
    match placement_type {
        "PickAll" => {
            if p.cluster_names.is_some() {
                ctx.error("spec.policy.clusterNames is only allowed with placementType PickFixed");
            }
            if p.number_of_clusters.is_some() {
                ctx.error("spec.policy.numberOfClusters is only allowed with placementType PickN");
            }
            PlacementPolicy::PickAll { terms }
        }
        "PickFixed" => {
            if p.affinity.is_some() {
                ctx.error("spec.policy.affinity is not allowed with placementType PickFixed");
            }
            if p.number_of_clusters.is_some() {
                ctx.error("spec.policy.numberOfClusters is only allowed with placementType PickN");
            }
            let names = p.cluster_names.clone().unwrap_or_default();
            if names.is_empty() {
                ctx.error(
                    "spec.policy.clusterNames must list at least one cluster with placementType PickFixed",
                );
            }
            let mut seen = BTreeSet::new();
            for n in &names {
                if !seen.insert(n) {
                    ctx.error(format!("spec.policy.clusterNames: {n} is listed twice"));
                }
            }
            PlacementPolicy::PickFixed { cluster_names: names }
        }
        "PickN" => {
            if p.cluster_names.is_some() {
                ctx.error("spec.policy.clusterNames is only allowed with placementType PickFixed");
            }
            let n = match p.number_of_clusters {
                Some(n) if (0..=u32::MAX as i64).contains(&n) => n as u32,
                Some(n) => {
                    ctx.error(format!("spec.policy.numberOfClusters: {n} must be >= 0"));
                    0
                }
                None => {
                    ctx.error("spec.policy.numberOfClusters is required with placementType PickN");
                    0
                }
            };
            PlacementPolicy::PickN { number_of_clusters: n, terms }
        }
        other => {
            ctx.error(format!("spec.policy.placementType: {other:?} is not PickAll, PickFixed or PickN"));
            PlacementPolicy::PickAll { terms }
        }
    }
}

fn read_apply_strategy(ctx: &mut Ctx, a: Option<&wire::ApplyStrategy>) -> ApplyStrategy {
    let mut out = ApplyStrategy {
        type_: ApplyType::ServerSideApply,
        when_to_apply: WhenToApply::Always,
        when_to_take_over: WhenToTakeOver::Always,
    };
    let Some(a) = a else { return out };
    let at = "spec.strategy.applyStrategy";
    match a.type_.as_deref() {
        None | Some("ServerSideApply") => {}
        Some("ReportDiff") => out.type_ = ApplyType::ReportDiff,
        Some(other) => ctx.error(format!("{at}.type: {other:?} is not ServerSideApply or ReportDiff")),
    }
    match a.when_to_apply.as_deref() {
        None | Some("Always") => {}
        Some("IfNotDrifted") => out.when_to_apply = WhenToApply::IfNotDrifted,
        Some(other) => ctx.error(format!("{at}.whenToApply: {other:?} is not Always or IfNotDrifted")),
    }
    match a.when_to_take_over.as_deref() {
        None | Some("Always") => {}
        Some("IfNoDiff") => out.when_to_take_over = WhenToTakeOver::IfNoDiff,
        Some("Never") => out.when_to_take_over = WhenToTakeOver::Never,
        Some(other) => ctx.error(format!("{at}.whenToTakeOver: {other:?} is not Always, IfNoDiff or Never")),
    }
    if let Some(c) = a.comparison_option.as_deref()
        && c != "PartialComparison"
        && c != "FullComparison"
    {
        ctx.error(format!("{at}.comparisonOption: {c:?} is not PartialComparison or FullComparison"));
    }
    out
}

fn read_placement(ctx: &mut Ctx, value: &Value) -> Option<Placement> {
    let w: wire::Object<wire::PlacementSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let spec = &w.spec;
    let n = spec.resource_selectors.len();
    if !(1..=100).contains(&n) {
        ctx.error(format!("spec.resourceSelectors must have 1 to 100 entries (has {n})"));
    }
    let selectors = read_selectors(ctx, "spec.resourceSelectors", &spec.resource_selectors, false);
    for (i, s) in selectors.iter().enumerate() {
        if known_scope(&s.group, &s.kind) == KnownScope::Namespaced {
            ctx.error(format!(
                "spec.resourceSelectors[{i}]: {} is namespaced; a ClusterResourcePlacement selects \
                 cluster-scoped resources (select its Namespace instead)",
                s.kind
            ));
        }
    }
    let policy = read_policy(ctx, spec.policy.as_ref());
    let strategy = spec.strategy.as_ref();
    let rollout = match strategy.and_then(|s| s.type_.as_deref()) {
        None | Some("RollingUpdate") => {
            let max_unavailable = strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref())
                .map(|v| int_or_percent(ctx, "spec.strategy.rollingUpdate.maxUnavailable", v, 1, 1))
                .unwrap_or(Some(IntOrPercent::Percent(25)))
                .unwrap_or(IntOrPercent::Percent(25));
            RolloutType::RollingUpdate { max_unavailable }
        }
        Some("External") => {
            if strategy.is_some_and(|s| s.rolling_update.is_some()) {
                ctx.error("spec.strategy.rollingUpdate is only allowed with type RollingUpdate");
            }
            RolloutType::External
        }
        Some(other) => {
            ctx.error(format!("spec.strategy.type: {other:?} is not RollingUpdate or External"));
            RolloutType::External
        }
    };
    let auto_run = strategy.and_then(|s| s.auto_run.as_ref()).map(|a| a.staged_rollout_strategy_name.clone());
    if auto_run.is_some() && rollout != RolloutType::External {
        ctx.error("spec.strategy.autoRun is only allowed with type External");
    }
    if auto_run.as_deref() == Some("") {
        ctx.error("spec.strategy.autoRun.stagedRolloutStrategyName must not be empty");
    }
    let apply = read_apply_strategy(ctx, strategy.and_then(|s| s.apply_strategy.as_ref()));
    let revision_history_limit = match spec.revision_history_limit {
        None => DEFAULT_REVISION_HISTORY_LIMIT,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            ctx.error(format!("spec.revisionHistoryLimit: {n} must be between 1 and 1000"));
            DEFAULT_REVISION_HISTORY_LIMIT
        }
    };
    Some(Placement {
        name,
        selectors,
        policy,
        rollout,
        apply,
        auto_run,
        revision_history_limit,
        origin: ctx.origin.clone(),
    })
}

/// Parses a duration field bounded by 30 days.
fn bounded_duration(ctx: &mut Ctx, field: &str, text: &str) -> Option<std::time::Duration> {
    match duration::parse(text) {
        Ok(d) if d.is_zero() => {
            ctx.error(format!("{field}: must be greater than 0"));
            None
        }
        Ok(d) if d > MAX_WAIT => {
            ctx.error(format!("{field}: {text} is longer than 30 days (720h)"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(format!("{field}: {e}"));
            None
        }
    }
}

fn read_tasks(ctx: &mut Ctx, field: &str, tasks: &[wire::StageTask], before: bool) -> Vec<StageTask> {
    let limit = if before { 1 } else { 2 };
    if tasks.len() > limit {
        ctx.error(format!("{field}: at most {limit} task(s) allowed (has {})", tasks.len()));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in tasks.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !seen.insert(t.type_.clone()) {
            ctx.error(format!("{at}: only one {} task is allowed", t.type_));
        }
        match t.type_.as_str() {
            "Approval" => {
                if t.wait_time.is_some() {
                    ctx.error(format!("{at}: an Approval task takes no waitTime"));
                }
                out.push(StageTask::Approval);
            }
            "TimedWait" if before => {
                ctx.error(format!("{at}: beforeStageTasks may only be Approval"));
            }
            "TimedWait" => match &t.wait_time {
                None => ctx.error(format!("{at}: a TimedWait task needs waitTime")),
                Some(w) => {
                    if let Some(d) = bounded_duration(ctx, &format!("{at}.waitTime"), w) {
                        out.push(StageTask::TimedWait(d));
                    }
                }
            },
            other => ctx.error(format!("{at}.type: {other:?} is not Approval or TimedWait")),
        }
    }
    out
}

fn read_stage(ctx: &mut Ctx, i: usize, s: &wire::Stage, last: bool) -> Stage {
    let at = format!("spec.stages[{i}]");
    let valid_name = !s.name.is_empty()
        && s.name.len() <= 63
        && s.name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid_name {
        ctx.error(format!("{at}.name: {:?} must match ^[a-z0-9]+$ and have 1 to 63 characters", s.name));
    }
    match &s.label_selector {
        Some(sel) => ctx.errors(sel.validate(&format!("{at}.labelSelector"))),
        None if !last => {
            ctx.error(format!("{at}.labelSelector is required: only the last stage may omit it (catch-all)"))
        }
        None => {}
    }
    if let Some(key) = &s.sorting_label_key
        && let Err(e) = validate_label_key(key)
    {
        ctx.error(format!("{at}.sortingLabelKey: {key:?} {e}"));
    }
    let max_concurrency = s
        .max_concurrency
        .as_ref()
        .and_then(|v| int_or_percent(ctx, &format!("{at}.maxConcurrency"), v, 1, 1))
        .unwrap_or(IntOrPercent::Count(1));
    let max_failures = s
        .max_failures
        .as_ref()
        .and_then(|v| int_or_percent(ctx, &format!("{at}.maxFailures"), v, 0, 0))
        .unwrap_or(IntOrPercent::Count(0));
    let cluster_timeout = s
        .cluster_timeout
        .as_deref()
        .and_then(|t| bounded_duration(ctx, &format!("{at}.clusterTimeout"), t))
        .unwrap_or(DEFAULT_CLUSTER_TIMEOUT);
    let max_duration =
        s.max_duration.as_deref().and_then(|t| bounded_duration(ctx, &format!("{at}.maxDuration"), t));
    Stage {
        name: s.name.clone(),
        selector: s.label_selector.clone(),
        sorting_label_key: s.sorting_label_key.clone(),
        max_concurrency,
        before_tasks: read_tasks(ctx, &format!("{at}.beforeStageTasks"), &s.before_stage_tasks, true),
        after_tasks: read_tasks(ctx, &format!("{at}.afterStageTasks"), &s.after_stage_tasks, false),
        cluster_timeout,
        max_failures,
        max_duration,
    }
}

fn read_strategy(ctx: &mut Ctx, value: &Value) -> Option<Strategy> {
    let w: wire::Object<wire::StrategySpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let n = w.spec.stages.len();
    if !(1..=31).contains(&n) {
        ctx.error(format!("spec.stages must have 1 to 31 entries (has {n})"));
    }
    let mut names = BTreeSet::new();
    let mut stages = Vec::new();
    for (i, s) in w.spec.stages.iter().enumerate() {
        if !s.name.is_empty() && !names.insert(s.name.clone()) {
            ctx.error(format!("spec.stages[{i}].name: stage {} appears twice", s.name));
        }
        stages.push(read_stage(ctx, i, s, i + 1 == n));
    }
    Some(Strategy {
        name,
        stages,
        spec: value.get("spec").cloned().unwrap_or(Value::Null),
        origin: ctx.origin.clone(),
    })
}

fn read_run(ctx: &mut Ctx, value: &Value) -> Option<UpdateRun> {
    let w: wire::Object<wire::RunSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let spec = &w.spec;
    if spec.placement_name.is_empty() {
        ctx.error("spec.placementName is required");
    }
    if spec.staged_rollout_strategy_name.is_empty() {
        ctx.error("spec.stagedRolloutStrategyName is required");
    }
    let index = spec.resource_snapshot_index.as_ref().and_then(|v| {
        let parsed = match v {
            wire::IntOrString::Int(n) => u32::try_from(*n).ok(),
            wire::IntOrString::Str(s) => s.parse::<u32>().ok(),
        };
        if parsed.is_none() {
            let shown = match v {
                wire::IntOrString::Int(n) => n.to_string(),
                wire::IntOrString::Str(s) => format!("{s:?}"),
            };
            ctx.error(format!("spec.resourceSnapshotIndex: {shown} must be a non-negative integer"));
        }
        parsed
    });
    let target = match (index, spec.resource_commit.as_deref()) {
        (Some(_), Some(_)) => {
            ctx.error("spec.resourceSnapshotIndex and spec.resourceCommit are mutually exclusive");
            SnapshotTarget::Latest
        }
        (Some(i), None) => SnapshotTarget::Index(i),
        (None, Some("")) => {
            ctx.error("spec.resourceCommit must not be empty");
            SnapshotTarget::Latest
        }
        (None, Some(c)) => SnapshotTarget::Commit(c.to_string()),
        (None, None) => SnapshotTarget::Latest,
    };
    let state = match spec.state.as_deref() {
        None | Some("Run") => RunState::Run,
        Some("Initialize") => RunState::Initialize,
        Some("Stop") => RunState::Stop,
        Some(other) => {
            ctx.error(format!("spec.state: {other:?} is not Run, Initialize or Stop"));
            RunState::Run
        }
    };
    Some(UpdateRun {
        name,
        placement: spec.placement_name.clone(),
        strategy: spec.staged_rollout_strategy_name.clone(),
        target,
        state,
        spec: value.get("spec").cloned().unwrap_or(Value::Null),
        origin: ctx.origin.clone(),
    })
}

/// JSON pointer paths an override may not touch (KubeFleet forbids them too).
const FORBIDDEN_PATCH_PATHS: &[&str] =
    &["/kind", "/apiVersion", "/metadata/name", "/metadata/namespace", "/status"];

fn read_patch(ctx: &mut Ctx, at: &str, p: &wire::JsonPatch) -> Option<JsonPatch> {
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
    match (op, &p.value) {
        (PatchOp::Remove, Some(_)) => ctx.error(format!("{at}: remove takes no value")),
        (PatchOp::Add | PatchOp::Replace, None) => ctx.error(format!("{at}: {} needs a value", p.op)),
        _ => {}
    }
    Some(JsonPatch { op, path: p.path.clone(), value: p.value.clone() })
}

fn read_override(ctx: &mut Ctx, value: &Value) -> Option<Override> {
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
        placement: w.spec.placement.as_ref().map(|p| p.name.clone()),
        selectors,
        rules,
        origin: ctx.origin.clone(),
    })
}

fn read_approval(ctx: &mut Ctx, value: &Value) -> Option<Approval> {
    let w: wire::Approval = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
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
fn hub_manifest(ctx: &mut Ctx, value: Value, envelope: Option<EnvelopeType>) -> Option<Manifest> {
    let meta: wire::ObjectMeta = ctx.wire(value.get("metadata").unwrap_or(&Value::Null))?;
    let api_version = value["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let name = meta.name.clone().unwrap_or_default();
    let group = group_of(&api_version).to_string();
    if name.len() > 253 || name.contains('/') || name == "." || name == ".." {
        ctx.error(format!("metadata.name {name:?} is not a valid object name"));
    }
    if let Some(ns) = &meta.namespace
        && !is_dns_label(ns)
    {
        ctx.error(format!("metadata.namespace {ns:?} is not a valid namespace name"));
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

fn read_hub(ctx: &mut Ctx, value: Value) -> Option<Manifest> {
    hub_manifest(ctx, value, None)
}

fn read_envelope(ctx: &mut Ctx, value: Value) -> Option<Manifest> {
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

#[cfg(test)]
mod tests;
