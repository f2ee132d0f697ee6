//! Validated domain types: what the rest of gitfleet works with.
//!
//! Every value here has passed [`super::validate`]; defaults are filled in, and
//! nothing is left as a raw `Option` that validation should have settled.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::labels::LabelSelector;

/// Where an object was read: repository-relative path and the line its document starts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub path: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// The key of a gitfleet object in maps, status file paths and messages:
/// `name` for the cluster-scoped kinds, `namespace/name` for KubeFleet's
/// namespaced twins (ResourcePlacement, StagedUpdateStrategy,
/// StagedUpdateRun, ApprovalRequest). A name never holds a `/`, so the two
/// cannot meet.
pub fn object_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// `(namespace, name)` of a key made by [`object_key`].
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// The kind of a gitfleet object of cluster-scoped kind `cluster_kind`
/// (`ClusterResourcePlacement`, ...) with this key: the namespaced twin
/// (`ResourcePlacement`, ...) for a namespaced key.
pub fn scoped_kind(cluster_kind: &str, key: &str) -> String {
    match key.contains('/') {
        true => cluster_kind.strip_prefix("Cluster").unwrap_or(cluster_kind).to_string(),
        false => cluster_kind.to_string(),
    }
}

/// Identity of a Kubernetes object: group, kind, namespace and name (the version is
/// not part of the identity: one object can be served in several versions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind =
            if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) };
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// A hub resource: any object that is not a gitfleet kind, plus envelopes, which
/// placements select like any other resource.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub key: ObjectKey,
    /// The `apiVersion` as written (`v1`, `apps/v1`).
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub origin: Origin,
    /// The document as read.
    pub value: Arc<Value>,
    /// For envelopes, the wrapped objects in `data` key order; empty otherwise.
    pub wrapped: Vec<Value>,
    pub envelope: Option<EnvelopeType>,
}

/// The two envelope kinds of KubeFleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeType {
    ResourceEnvelope,
    ClusterResourceEnvelope,
}

impl EnvelopeType {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeType::ResourceEnvelope => "ResourceEnvelope",
            EnvelopeType::ClusterResourceEnvelope => "ClusterResourceEnvelope",
        }
    }
}

/// A member cluster as declared in Git.
#[derive(Debug, Clone)]
pub struct MemberCluster {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.taints`: new placements must tolerate them.
    pub taints: Vec<Taint>,
    /// `spec.heartbeatPeriodSeconds` (default 60): how often gitfleet asks the
    /// cluster about itself.
    pub heartbeat_seconds: u32,
    pub origin: Origin,
}

impl MemberCluster {
    /// A cluster property (`kubernetes-fleet.io/node-count`,
    /// `resources.kubernetes-fleet.io/available-cpu`, ...), as given by an
    /// annotation of the same name.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).map(String::as_str)
    }
}

/// An integer count or a percentage of some total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Count(u32),
    Percent(u32),
}

impl IntOrPercent {
    /// Resolves against `total`, rounding percentages down.
    pub fn resolve(self, total: usize) -> usize {
        match self {
            IntOrPercent::Count(n) => n as usize,
            IntOrPercent::Percent(p) => total * p as usize / 100,
        }
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Count(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `selectionScope` of a Namespace selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionScope {
    NamespaceWithResources,
    NamespaceOnly,
    /// The namespace, and what the placement's other selectors pick in it.
    NamespaceWithResourceSelectors,
}

/// What a resource selector picks among objects of its group and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorTarget {
    Name(String),
    Labels(LabelSelector),
    /// Neither name nor selector: every object of the kind.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSelector {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub target: SelectorTarget,
    pub scope: SelectionScope,
}

/// `spec.policy` of a placement.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementPolicy {
    /// Every cluster matching any of the terms (every cluster when there are
    /// none) whose taints it tolerates.
    PickAll {
        terms: Vec<ClusterTerm>,
        tolerations: Vec<Toleration>,
    },
    PickFixed {
        cluster_names: Vec<String>,
    },
    /// The `number_of_clusters` best clusters by topology spread, then
    /// preferred affinity (KubeFleet's scheduler).
    PickN(Box<PickN>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PickN {
    pub number_of_clusters: u32,
    pub terms: Vec<ClusterTerm>,
    pub preferred: Vec<PreferredTerm>,
    pub tolerations: Vec<Toleration>,
    pub spread: Vec<SpreadConstraint>,
}

/// A required cluster selector term: its label selector and its property
/// requirements, both (a term with neither matches every cluster).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterTerm {
    pub labels: Option<LabelSelector>,
    pub properties: Vec<PropertyRequirement>,
}

/// `propertySelector.matchExpressions[]`: `name OP value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyRequirement {
    pub name: String,
    pub op: PropertyOp,
    /// The value as written and as a number (a Kubernetes quantity).
    pub value: String,
    pub number: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyOp {
    Gt,
    Ge,
    Eq,
    Ne,
    Lt,
    Le,
}

/// A preferred term: `weight` (-100..100) for the clusters it selects, or
/// interpolated by a property (`propertySorter`).
#[derive(Debug, Clone, PartialEq)]
pub struct PreferredTerm {
    pub weight: i32,
    pub labels: Option<LabelSelector>,
    pub sorter: Option<PropertySorter>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropertySorter {
    pub name: String,
    /// Ascending: the smallest value scores the full weight.
    pub ascending: bool,
}

/// `MemberCluster.spec.taints[]` (effect `NoSchedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
}

/// `policy.tolerations[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    /// `Exists` (any value) rather than `Equal`.
    pub exists: bool,
    pub value: String,
}

impl Toleration {
    pub fn tolerates(&self, t: &Taint) -> bool {
        if self.exists {
            self.key.is_empty() || self.key == t.key
        } else {
            self.key == t.key && self.value == t.value
        }
    }
}

/// `policy.topologySpreadConstraints[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadConstraint {
    pub max_skew: u32,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (the default) rather than `ScheduleAnyway`.
    pub do_not_schedule: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyType {
    ServerSideApply,
    ReportDiff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenToApply {
    Always,
    IfNotDrifted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenToTakeOver {
    #[default]
    Always,
    IfNoDiff,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStrategy {
    pub type_: ApplyType,
    pub when_to_apply: WhenToApply,
    pub when_to_take_over: WhenToTakeOver,
    /// `FullComparison` rather than `PartialComparison` (recorded; drift is
    /// always compared on the fields gitfleet applies).
    pub full_comparison: bool,
    /// Apply an object that has owners outside the fleet (`ownerReferences`).
    pub allow_co_ownership: bool,
    /// `serverSideApplyConfig.force`: take fields other managers own. Unset,
    /// gitfleet forces (as it always has); KubeFleet does not.
    pub force: Option<bool>,
}

impl Default for ApplyStrategy {
    fn default() -> Self {
        ApplyStrategy {
            type_: ApplyType::ServerSideApply,
            when_to_apply: WhenToApply::Always,
            when_to_take_over: WhenToTakeOver::Always,
            full_comparison: false,
            allow_co_ownership: false,
            force: None,
        }
    }
}

impl ApplyStrategy {
    /// The strategy with its defaults, as a run records it (`appliedStrategy`).
    pub fn to_spec(&self) -> Value {
        let mut spec = serde_json::json!({
            "allowCoOwnership": self.allow_co_ownership,
            "comparisonOption": if self.full_comparison { "FullComparison" } else { "PartialComparison" },
            "type": match self.type_ {
                ApplyType::ServerSideApply => "ServerSideApply",
                ApplyType::ReportDiff => "ReportDiff",
            },
            "whenToApply": match self.when_to_apply {
                WhenToApply::Always => "Always",
                WhenToApply::IfNotDrifted => "IfNotDrifted",
            },
            "whenToTakeOver": match self.when_to_take_over {
                WhenToTakeOver::Always => "Always",
                WhenToTakeOver::IfNoDiff => "IfNoDiff",
                WhenToTakeOver::Never => "Never",
            },
        });
        if let Some(force) = self.force {
            spec["serverSideApplyConfig"] = serde_json::json!({ "force": force });
        }
        spec
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutType {
    RollingUpdate { max_unavailable: IntOrPercent },
    External,
}

#[derive(Debug, Clone)]
pub struct Placement {
    /// The placement's key: its name, or `namespace/name` for a ResourcePlacement.
    pub name: String,
    /// A ResourcePlacement's namespace: it selects namespaced resources of
    /// that namespace only.
    pub namespace: Option<String>,
    /// A ClusterResourcePlacement's namespace selected with
    /// `selectionScope: NamespaceWithResourceSelectors`: its other selectors
    /// pick namespaced resources there.
    pub selector_namespace: Option<String>,
    pub selectors: Vec<ResourceSelector>,
    pub policy: PlacementPolicy,
    pub rollout: RolloutType,
    pub apply: ApplyStrategy,
    /// `strategy.autoRun.stagedRolloutStrategyName`.
    pub auto_run: Option<String>,
    pub revision_history_limit: u32,
    /// `statusReportingScope: NamespaceAccessible`: the namespace that also
    /// gets the placement's status (a ClusterResourcePlacementStatus).
    pub namespace_status: Option<String>,
    /// The `spec` as written, echoed in the status document.
    pub spec: Value,
    pub origin: Origin,
}

impl Placement {
    /// The namespace whose resources its selectors pick: a ResourcePlacement's
    /// own, or a ClusterResourcePlacement's NamespaceWithResourceSelectors one.
    pub fn selects_in(&self) -> Option<&str> {
        self.namespace.as_deref().or(self.selector_namespace.as_deref())
    }
}

/// A stage task.
#[derive(Debug, Clone, PartialEq)]
pub enum StageTask {
    Approval,
    TimedWait(Duration),
    /// gitfleet's extension: measure the stage against real metrics.
    Verification(Box<crate::verify::Verification>),
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// `None` only on the last stage: the catch-all.
    pub selector: Option<LabelSelector>,
    pub sorting_label_key: Option<String>,
    pub max_concurrency: IntOrPercent,
    pub before_tasks: Vec<StageTask>,
    pub after_tasks: Vec<StageTask>,
    pub cluster_timeout: Duration,
    pub max_failures: IntOrPercent,
    pub max_duration: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Strategy {
    /// Its key: the name, or `namespace/name` for a StagedUpdateStrategy.
    pub name: String,
    pub stages: Vec<Stage>,
    /// The `spec` as written, recorded in a run's strategy snapshot.
    pub spec: Value,
    pub origin: Origin,
}

/// Which snapshot a run rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotTarget {
    Latest,
    Index(u32),
    Commit(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Run,
    Initialize,
    Stop,
}

#[derive(Debug, Clone)]
pub struct UpdateRun {
    /// Its key: the name, or `namespace/name` for a StagedUpdateRun (whose
    /// placement and strategy are then those of its namespace).
    pub name: String,
    /// The key of its placement.
    pub placement: String,
    /// The key of its strategy.
    pub strategy: String,
    pub target: SnapshotTarget,
    pub state: RunState,
    /// The `spec` as written, echoed in the status file.
    pub spec: Value,
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
pub struct JsonPatch {
    pub op: PatchOp,
    pub path: String,
    pub value: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct OverrideRule {
    /// Clusters the rule applies to: any term matches; empty = every cluster.
    pub cluster_terms: Vec<ClusterTerm>,
    /// `overrideType: Delete`: the object is not applied on matching clusters.
    pub delete: bool,
    pub patches: Vec<JsonPatch>,
}

/// A ClusterResourceOverride (cluster-scoped) or ResourceOverride (namespaced).
#[derive(Debug, Clone)]
pub struct Override {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub placement: Option<String>,
    pub selectors: Vec<ResourceSelector>,
    pub rules: Vec<OverrideRule>,
    pub origin: Origin,
}

/// A person's approval file.
#[derive(Debug, Clone)]
pub struct Approval {
    /// Its key: the name, or `namespace/name` for an ApprovalRequest.
    pub name: String,
    pub approved: bool,
    pub reason: String,
    pub message: String,
    pub origin: Origin,
}

/// `ClusterResourcePlacementEviction`: take a placement's resources off one
/// cluster and keep them off while the file exists.
#[derive(Debug, Clone)]
pub struct Eviction {
    pub name: String,
    pub placement: String,
    pub cluster: String,
    /// The `spec` as written, echoed in the status file.
    pub spec: Value,
    pub origin: Origin,
}

/// `ClusterResourcePlacementDisruptionBudget` (named after its placement).
#[derive(Debug, Clone)]
pub struct DisruptionBudget {
    pub name: String,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    pub origin: Origin,
}

/// A validated gitfleet object of any kind.
#[derive(Debug, Clone)]
pub enum FleetObject {
    Eviction(Eviction),
    Budget(DisruptionBudget),
    Cluster(MemberCluster),
    Placement(Placement),
    Strategy(Strategy),
    Run(UpdateRun),
    Override(Override),
    Approval(Approval),
    Window(crate::repo::window::RolloutWindow, Origin),
    Hub(Arc<Manifest>),
}

/// Identity of a gitfleet object in the history index: (kind, namespace, name).
pub type HistoryKey = (String, Option<String>, String);

impl FleetObject {
    /// Gitfleet objects keep a history (creation time, generation); hub resources do not.
    pub fn history_key(&self) -> Option<HistoryKey> {
        let (kind, ns, name) = match self {
            FleetObject::Cluster(c) => ("MemberCluster", None, &c.name),
            FleetObject::Eviction(e) => ("ClusterResourcePlacementEviction", None, &e.name),
            FleetObject::Budget(b) => ("ClusterResourcePlacementDisruptionBudget", None, &b.name),
            FleetObject::Placement(p) => return Some(scoped_history("ClusterResourcePlacement", &p.name)),
            FleetObject::Strategy(s) => return Some(scoped_history("ClusterStagedUpdateStrategy", &s.name)),
            FleetObject::Run(r) => return Some(scoped_history("ClusterStagedUpdateRun", &r.name)),
            FleetObject::Override(o) => (o.kind.as_str(), o.namespace.clone(), &o.name),
            FleetObject::Approval(a) => return Some(scoped_history("ClusterApprovalRequest", &a.name)),
            FleetObject::Window(w, _) => ("RolloutWindow", None, &w.name),
            FleetObject::Hub(_) => return None,
        };
        Some((kind.to_string(), ns, name.clone()))
    }

    /// `Kind/name` as used in messages.
    pub fn describe(&self) -> String {
        match self {
            FleetObject::Cluster(c) => format!("MemberCluster/{}", c.name),
            FleetObject::Eviction(e) => format!("ClusterResourcePlacementEviction/{}", e.name),
            FleetObject::Budget(b) => format!("ClusterResourcePlacementDisruptionBudget/{}", b.name),
            FleetObject::Placement(p) => describe("ClusterResourcePlacement", &p.name),
            FleetObject::Strategy(s) => describe("ClusterStagedUpdateStrategy", &s.name),
            FleetObject::Run(r) => describe("ClusterStagedUpdateRun", &r.name),
            FleetObject::Override(o) => format!("{}/{}", o.kind, o.name),
            FleetObject::Approval(a) => describe("ClusterApprovalRequest", &a.name),
            FleetObject::Window(w, _) => format!("RolloutWindow/{}", w.name),
            FleetObject::Hub(m) => m.key.to_string(),
        }
    }
}

/// The history key of a gitfleet object of cluster-scoped kind `cluster_kind`
/// with key `key` (its namespaced twin for a namespaced key).
pub fn scoped_history(cluster_kind: &str, key: &str) -> HistoryKey {
    let (ns, name) = split_key(key);
    (scoped_kind(cluster_kind, key), ns.map(str::to_string), name.to_string())
}

/// `Kind/name` (`Kind/namespace/name` for a namespaced key), as used in messages.
pub fn describe(cluster_kind: &str, key: &str) -> String {
    format!("{}/{key}", scoped_kind(cluster_kind, key))
}
