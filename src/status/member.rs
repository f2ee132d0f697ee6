//! `status/memberclusters/<name>.yaml`: a member cluster as KubeFleet shows
//! it, from what gitfleet saw at its last contact: `Joined` (it is listed in
//! the repository), `Healthy` (gitfleet reached it, or why not), its
//! properties and resource usage. Written only when something in it changed
//! (observation times aside), not on every contact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conditions::{Condition, Conditions};
use crate::cluster::ClusterProperties;
use crate::repo::model::MemberCluster;
use crate::time::Time;

/// Status sub-folder of member cluster documents.
pub const MEMBERS: &str = "memberclusters";
/// The API version of MemberCluster documents.
pub const CLUSTER_API_VERSION: &str = "cluster.kubernetes-fleet.io/v1beta1";
/// KubeFleet's property names.
pub const NODE_COUNT: &str = "kubernetes-fleet.io/node-count";
pub const K8S_VERSION: &str = "k8s.io/k8s-version";
const RESOURCE_PREFIX: &str = "resources.kubernetes-fleet.io/";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemberMetadata {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PropertyValue {
    pub observation_time: Time,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceUsage {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub available: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, String>,
    pub observation_time: Time,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last contact this document records (it is written only when
    /// something changed).
    pub last_received_heartbeat: Time,
    #[serde(rename = "type")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemberStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agent_status: Vec<AgentStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertyValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_usage: Option<ResourceUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemberDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: MemberMetadata,
    pub spec: Value,
    pub status: MemberStatus,
}

impl MemberDocument {
    /// The document with every time zeroed: what "changed" compares.
    fn without_times(&self) -> MemberDocument {
        let mut d = self.clone();
        let zero = Time::default();
        let conditions =
            d.status.conditions.iter_mut().chain(d.status.agent_status.iter_mut().flat_map(|a| {
                a.last_received_heartbeat = zero;
                a.conditions.iter_mut()
            }));
        for c in conditions {
            c.last_transition_time = zero;
        }
        for p in d.status.properties.values_mut() {
            p.observation_time = zero;
        }
        if let Some(u) = &mut d.status.resource_usage {
            u.observation_time = zero;
        }
        d
    }

    /// A property's value (`kubernetes-fleet.io/node-count`).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.status.properties.get(name).map(|p| p.value.as_str())
    }
}

/// What gitfleet knows of a cluster at this pass.
pub struct Contact<'a> {
    /// `Err(why)` when the last attempt to reach it failed.
    pub reached: Result<(), &'a str>,
    /// What it reported about itself (Kubernetes backend), if anything.
    pub live: Option<&'a ClusterProperties>,
}

/// A MemberCluster's `spec` as KubeFleet has it: as written in Git, with an
/// `identity` when Git gives none (KubeFleet requires one; gitfleet reaches
/// the cluster through a kubeconfig context, so that context is named, as
/// a User).
pub fn kubefleet_spec(cluster: &MemberCluster, written: Option<&Value>) -> Value {
    let mut spec = written.filter(|s| s.is_object()).cloned().unwrap_or_else(|| serde_json::json!({}));
    if spec.get("identity").is_none_or(Value::is_null) {
        let context = cluster
            .annotations
            .get(crate::cluster::kube::CONTEXT_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| cluster.name.clone());
        spec["identity"] =
            serde_json::json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": context });
    }
    spec
}

/// The cluster's document: the previous one when nothing but times would change.
pub fn member_document(
    cluster: &MemberCluster,
    spec: &Value,
    contact: &Contact<'_>,
    previous: Option<&MemberDocument>,
    now: Time,
    generation: i64,
) -> MemberDocument {
    let mut conditions = previous.map(|p| p.status.conditions.clone()).unwrap_or_default();
    conditions.set_condition(
        "Joined",
        true,
        "MemberClusterJoined",
        "The cluster is listed in the fleet repository",
        now,
        generation,
    );
    match contact.reached {
        Ok(()) => conditions.set_condition(
            "Healthy",
            true,
            "MemberClusterReachable",
            "gitfleet reached the cluster at its last contact",
            now,
            generation,
        ),
        Err(why) => {
            conditions.set_condition("Healthy", false, "MemberClusterUnreachable", why, now, generation)
        }
    }
    let mut properties = BTreeMap::new();
    let mut usage = ResourceUsage { observation_time: now, ..ResourceUsage::default() };
    let value = |v: &str| PropertyValue { observation_time: now, value: v.to_string() };
    match contact.live {
        Some(live) => {
            properties.insert(NODE_COUNT.to_string(), value(&live.node_count.to_string()));
            properties.insert(K8S_VERSION.to_string(), value(&live.kubernetes_version));
            for (map, (cpu, memory)) in [
                (&mut usage.capacity, &live.capacity),
                (&mut usage.allocatable, &live.allocatable),
                (&mut usage.available, &live.available),
            ] {
                map.insert("cpu".to_string(), cpu.clone());
                map.insert("memory".to_string(), memory.clone());
            }
        }
        // Without a live report, the MemberCluster's annotations say it.
        None => {
            for (k, v) in &cluster.annotations {
                let resource = k.strip_prefix(RESOURCE_PREFIX).and_then(|r| r.split_once('-'));
                let map = match resource {
                    Some(("total", r)) => Some((&mut usage.capacity, r)),
                    Some(("allocatable", r)) => Some((&mut usage.allocatable, r)),
                    Some(("available", r)) => Some((&mut usage.available, r)),
                    _ => None,
                };
                if let Some((map, r)) = map {
                    map.insert(r.to_string(), v.clone());
                } else if k == NODE_COUNT || k == K8S_VERSION {
                    properties.insert(k.clone(), value(v));
                }
            }
        }
    }
    let empty = usage.capacity.is_empty() && usage.allocatable.is_empty() && usage.available.is_empty();
    let mut agent_conditions = previous
        .and_then(|p| p.status.agent_status.first())
        .map(|a| a.conditions.clone())
        .unwrap_or_default();
    for c in conditions.iter() {
        agent_conditions.set_condition(&c.type_, c.status == "True", &c.reason, &c.message, now, generation);
    }
    let doc = MemberDocument {
        api_version: CLUSTER_API_VERSION.into(),
        kind: "MemberCluster".into(),
        metadata: MemberMetadata { name: cluster.name.clone() },
        spec: spec.clone(),
        status: MemberStatus {
            agent_status: vec![AgentStatus {
                conditions: agent_conditions,
                last_received_heartbeat: now,
                type_: "MemberAgent".into(),
            }],
            conditions,
            properties,
            resource_usage: (!empty).then_some(usage),
        },
    };
    match previous {
        Some(p) if p.without_times() == doc.without_times() => p.clone(),
        _ => doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::model::Origin;

    fn cluster(annotations: &[(&str, &str)]) -> MemberCluster {
        MemberCluster {
            name: "member1".into(),
            labels: Default::default(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            taints: vec![],
            heartbeat_seconds: 60,
            origin: Origin { path: "clusters/member1.yaml".into(), line: 1 },
        }
    }

    #[test]
    fn annotations_become_properties_and_usage_and_only_changes_are_written() {
        let c = cluster(&[
            (NODE_COUNT, "3"),
            ("resources.kubernetes-fleet.io/available-cpu", "2500m"),
            ("resources.kubernetes-fleet.io/total-memory", "16Gi"),
            ("team", "a"),
        ]);
        let t0 = Time::from_second(1_900_000_000);
        let ok = Contact { reached: Ok(()), live: None };
        let doc = member_document(&c, &Value::Null, &ok, None, t0, 1);
        assert_eq!(doc.property(NODE_COUNT), Some("3"));
        let usage = doc.status.resource_usage.as_ref().unwrap();
        assert_eq!(usage.available["cpu"], "2500m");
        assert_eq!(usage.capacity["memory"], "16Gi");
        assert!(doc.status.conditions.is_true("Joined") && doc.status.conditions.is_true("Healthy"));
        // Later, the same: the document is kept as it was (times included).
        let again = member_document(&c, &Value::Null, &ok, Some(&doc), t0 + 600, 1);
        assert_eq!(again, doc);
        // Unreachable: Healthy goes False with the reason.
        let down = Contact { reached: Err("cluster member1: connection refused"), live: None };
        let doc = member_document(&c, &Value::Null, &down, Some(&doc), t0 + 700, 1);
        let healthy = doc.status.conditions.get_condition("Healthy").unwrap();
        assert_eq!(
            (healthy.status.as_str(), healthy.reason.as_str(), healthy.message.as_str()),
            ("False", "MemberClusterUnreachable", "cluster member1: connection refused")
        );
        assert_eq!(doc.status.agent_status[0].last_received_heartbeat, t0 + 700);
    }

    #[test]
    fn a_live_report_is_used_when_there_is_one() {
        let live = ClusterProperties {
            node_count: 2,
            kubernetes_version: "v1.34.4".into(),
            capacity: ("8".into(), "32Gi".into()),
            allocatable: ("7500m".into(), "30Gi".into()),
            available: ("6".into(), "24Gi".into()),
        };
        let c = cluster(&[(NODE_COUNT, "99")]);
        let contact = Contact { reached: Ok(()), live: Some(&live) };
        let doc = member_document(&c, &Value::Null, &contact, None, Time::from_second(1_900_000_000), 1);
        assert_eq!(doc.property(NODE_COUNT), Some("2"));
        assert_eq!(doc.property(K8S_VERSION), Some("v1.34.4"));
        assert_eq!(doc.status.resource_usage.unwrap().allocatable["cpu"], "7500m");
    }
}
