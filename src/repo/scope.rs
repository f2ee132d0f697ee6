//! Which kinds are cluster-scoped and which are namespaced.
//!
//! Git has no API server to ask, so gitfleet knows the built-in kinds, learns
//! custom kinds from CustomResourceDefinitions in the repository, and otherwise
//! goes by whether the manifest names a namespace.

/// `(group, kind)` of built-in cluster-scoped kinds.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("placement.kubernetes-fleet.io", "ClusterResourceEnvelope"),
    ("placement.kubernetes-fleet.io", "ClusterResourceOverride"),
];

/// `(group, kind)` of built-in namespaced kinds.
const NAMESPACED: &[(&str, &str)] = &[
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("", "Pod"),
    ("", "PersistentVolumeClaim"),
    ("", "Endpoints"),
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("", "ReplicationController"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("coordination.k8s.io", "Lease"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("placement.kubernetes-fleet.io", "ResourceEnvelope"),
    ("placement.kubernetes-fleet.io", "ResourceOverride"),
];

/// What gitfleet knows of a kind's scope without looking at a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownScope {
    Cluster,
    Namespaced,
    Unknown,
}

/// The built-in scope of `(group, kind)`.
pub fn known_scope(group: &str, kind: &str) -> KnownScope {
    // Kind first: it tells the entries apart at once, most groups are empty.
    if CLUSTER_SCOPED.iter().any(|(g, k)| *k == kind && *g == group) {
        KnownScope::Cluster
    } else if NAMESPACED.iter().any(|(g, k)| *k == kind && *g == group) {
        KnownScope::Namespaced
    } else {
        KnownScope::Unknown
    }
}

/// The group of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The version of an `apiVersion` (`apps/v1` -> `v1`).
pub fn version_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or(api_version, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_groups() {
        assert_eq!(known_scope("", "Namespace"), KnownScope::Cluster);
        assert_eq!(known_scope("apps", "Deployment"), KnownScope::Namespaced);
        assert_eq!(known_scope("example.com", "Widget"), KnownScope::Unknown);
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
        assert_eq!(version_of("apps/v1"), "v1");
    }
}
