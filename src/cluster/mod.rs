//! Member cluster backends: where rendered objects are applied.
//!
//! The local store (a folder per cluster) is the embedded default; a Kubernetes
//! backend implements the same trait.

pub mod compare;
pub mod kube;
pub mod local;

use std::collections::BTreeSet;

use serde_json::Value;

pub use compare::{FieldDiff, ObjectDiff};

use crate::render::{EnvelopeRef, RenderedObject};
use crate::repo::model::{ObjectKey, WhenToTakeOver};

/// An object that could not be applied, as reported in `failedPlacements`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedObject {
    pub key: ObjectKey,
    pub api_version: String,
    pub envelope: Option<EnvelopeRef>,
    pub message: String,
}

impl FailedObject {
    /// A rendered object that could not be applied, with the Kubernetes-style message.
    pub fn of(obj: &RenderedObject, message: String) -> FailedObject {
        FailedObject {
            key: obj.key.clone(),
            api_version: obj.api_version.clone(),
            envelope: obj.envelope.clone(),
            message,
        }
    }
}

/// Why an object that already exists on a cluster may not be applied over, if
/// anything: another placement owns it, or `whenToTakeOver` refuses an object
/// gitfleet did not create. `same_content` is asked only for `IfNoDiff`.
pub fn takeover_refusal(
    live_owner: Option<&str>,
    placement: &str,
    take_over: WhenToTakeOver,
    same_content: impl FnOnce() -> bool,
) -> Option<&'static str> {
    match (live_owner, take_over) {
        (Some(o), _) if o == placement => None,
        (Some(_), _) => Some("is already placed by another placement (two placements cannot own one object)"),
        (None, WhenToTakeOver::Always) => None,
        (None, WhenToTakeOver::Never) => {
            Some("exists on the cluster and is not managed by this placement (whenToTakeOver: Never)")
        }
        (None, WhenToTakeOver::IfNoDiff) if same_content() => None,
        (None, WhenToTakeOver::IfNoDiff) => {
            Some("exists on the cluster with different content (whenToTakeOver: IfNoDiff)")
        }
    }
}

/// What syncing a placement to a cluster did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    pub applied: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub failed: Vec<FailedObject>,
    /// Applied objects that are not available yet (SPEC 6.3): why, per object.
    pub pending: Vec<String>,
}

/// How a placement's objects are applied.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    pub take_over: WhenToTakeOver,
    /// Apply objects that have owners outside the fleet (`ownerReferences`).
    pub allow_co_ownership: bool,
    /// Server-side apply with `force` (take fields other managers own).
    pub force: bool,
    /// Objects to leave exactly as they are on the cluster: neither applied nor
    /// pruned (drifted objects under `whenToApply: IfNotDrifted`).
    pub leave: BTreeSet<ObjectKey>,
}

impl SyncOptions {
    pub fn take_over(take_over: WhenToTakeOver) -> SyncOptions {
        SyncOptions { take_over, allow_co_ownership: false, force: true, leave: BTreeSet::new() }
    }

    /// The options a placement's apply strategy asks for.
    pub fn of(apply: &crate::repo::model::ApplyStrategy) -> SyncOptions {
        SyncOptions {
            allow_co_ownership: apply.allow_co_ownership,
            force: apply.force.unwrap_or(true),
            ..SyncOptions::take_over(apply.when_to_take_over)
        }
    }

    /// The objects to apply, in the order of SPEC 6.2 (those to leave alone skipped).
    pub fn apply_order<'a>(&self, desired: &'a [RenderedObject]) -> Vec<&'a RenderedObject> {
        let mut ordered: Vec<&RenderedObject> =
            desired.iter().filter(|o| !self.leave.contains(&o.key)).collect();
        ordered.sort_by_key(|o| (apply_rank(&o.key), o.key.clone()));
        ordered
    }
}

/// Why a backend could not do what it was asked on a cluster. Every variant
/// leaves the cluster as it was (or half-way, as a lost connection does); the
/// reconciler retries the cluster with backoff until its clusterTimeout.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The cluster did not answer (network, timeout, 5xx).
    #[error("cluster {cluster}: {message}")]
    Unreachable { cluster: String, message: String },
    /// A local-store file could not be read or written (the path is logged,
    /// not shown in status: it is a detail of the machine gitfleet runs on).
    #[error("cluster {cluster}: {source}")]
    Io { cluster: String, path: std::path::PathBuf, source: std::io::Error },
    /// The cluster answered and refused, or gitfleet cannot talk to it as
    /// configured (no kubeconfig context, an object file that does not parse).
    #[error("cluster {cluster}: {message}")]
    Rejected { cluster: String, message: String },
}

impl BackendError {
    /// Whether the cluster answered at all (a refusal) rather than not being reached.
    pub fn answered(&self) -> bool {
        matches!(self, BackendError::Rejected { .. })
    }
}

/// A place where a placement's objects are applied.
pub trait Backend {
    /// A short name for logs (`local-store`, `kubernetes`).
    fn kind(&self) -> &'static str;

    /// Makes the cluster hold exactly `desired` of what `placement` owns: applies
    /// (CRDs, Namespaces, cluster-scoped, namespaced), then prunes what the
    /// placement applied before and no longer wants (in reverse order).
    fn sync(
        &self,
        cluster: &str,
        placement: &str,
        desired: &[RenderedObject],
        options: &SyncOptions,
    ) -> Result<SyncReport, BackendError>;

    /// How the cluster differs from `desired`, changing nothing: one entry per
    /// object that is missing or whose fields differ from what applying it
    /// would give.
    fn diff(&self, cluster: &str, desired: &[RenderedObject]) -> Result<Vec<ObjectDiff>, BackendError>;

    /// Learns how to reach a declared MemberCluster (e.g. its kubeconfig context).
    fn declare(&self, _cluster: &crate::repo::model::MemberCluster) {}

    /// Every cluster the backend holds anything for.
    fn known_clusters(&self) -> Vec<String>;

    /// Lists the placements that own objects on a cluster.
    fn placements_on(&self, cluster: &str) -> Result<Vec<String>, BackendError>;

    /// Reads one object, if present.
    fn get(&self, cluster: &str, key: &ObjectKey) -> Result<Option<Value>, BackendError>;

    /// What the cluster reports about itself (KubeFleet's property provider);
    /// `None` when the backend has nothing live to report (the local store:
    /// the MemberCluster's annotations say it).
    fn properties(&self, _cluster: &str) -> Result<Option<ClusterProperties>, BackendError> {
        Ok(None)
    }

    /// Whether [`Backend::properties`] ever reports anything.
    fn reports_properties(&self) -> bool {
        false
    }
}

/// A member cluster's size and version, as KubeFleet's property provider
/// reports them: quantities as Kubernetes writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterProperties {
    pub node_count: u64,
    pub kubernetes_version: String,
    /// (cpu, memory) of the nodes in all, allocatable, and not yet requested by pods.
    pub capacity: (String, String),
    pub allocatable: (String, String),
    pub available: (String, String),
}

/// CPU in millicores as a quantity (`4`, `3500m`).
pub fn cpu_quantity(millis: i64) -> String {
    if millis % 1000 == 0 { (millis / 1000).to_string() } else { format!("{millis}m") }
}

/// Memory in bytes as a quantity (`16Gi`, `1536Mi`, `1000`).
pub fn memory_quantity(bytes: i64) -> String {
    for (suffix, unit) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Apply order of SPEC 6.2: CustomResourceDefinitions, Namespaces, other
/// cluster-scoped objects, namespaced objects.
pub fn apply_rank(key: &ObjectKey) -> u8 {
    match (key.group.as_str(), key.kind.as_str(), &key.namespace) {
        ("apiextensions.k8s.io", "CustomResourceDefinition", _) => 0,
        ("", "Namespace", None) => 1,
        (_, _, None) => 2,
        (_, _, Some(_)) => 3,
    }
}

/// Called before every write; returns only while this process may write
/// (leader election: see [`crate::lease::Leadership::fence`]).
pub type Fence = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A backend whose writes pass a [`Fence`] first; reads go straight through.
pub struct Fenced {
    pub inner: Box<dyn Backend>,
    pub fence: Fence,
}

impl Backend for Fenced {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn sync(
        &self,
        cluster: &str,
        placement: &str,
        desired: &[RenderedObject],
        options: &SyncOptions,
    ) -> Result<SyncReport, BackendError> {
        (self.fence)();
        self.inner.sync(cluster, placement, desired, options)
    }

    fn diff(&self, cluster: &str, desired: &[RenderedObject]) -> Result<Vec<ObjectDiff>, BackendError> {
        self.inner.diff(cluster, desired)
    }

    fn declare(&self, cluster: &crate::repo::model::MemberCluster) {
        self.inner.declare(cluster)
    }

    fn known_clusters(&self) -> Vec<String> {
        self.inner.known_clusters()
    }

    fn placements_on(&self, cluster: &str) -> Result<Vec<String>, BackendError> {
        self.inner.placements_on(cluster)
    }

    fn get(&self, cluster: &str, key: &ObjectKey) -> Result<Option<Value>, BackendError> {
        self.inner.get(cluster, key)
    }
}
