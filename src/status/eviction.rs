//! `status/clusterresourceplacementevictions/<name>.yaml`: an eviction's
//! status, as KubeFleet's eviction controller writes it (`Valid`, then
//! `Executed`), and the decision itself. An eviction is decided once: when it
//! is invalid, executed or blocked by the disruption budget, it stays so (as
//! in KubeFleet; a blocked one is tried again by deleting and committing it
//! anew). An executed eviction keeps its cluster out of the placement until
//! its file is deleted.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conditions::{Condition, Conditions};
use crate::repo::model::{DisruptionBudget, Eviction, IntOrPercent, Placement, PlacementPolicy};
use crate::time::Time;

/// Status sub-folder of eviction documents.
pub const EVICTIONS: &str = "clusterresourceplacementevictions";

const VALID: &str = "Valid";
const EXECUTED: &str = "Executed";
const REASON_VALID: &str = "ClusterResourcePlacementEvictionValid";
const REASON_INVALID: &str = "ClusterResourcePlacementEvictionInvalid";
const REASON_EXECUTED: &str = "ClusterResourcePlacementEvictionExecuted";
const REASON_NOT_EXECUTED: &str = "ClusterResourcePlacementEvictionNotExecuted";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EvictionMetadata {
    pub generation: i64,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EvictionStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EvictionDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: EvictionMetadata,
    pub spec: Value,
    pub status: EvictionStatus,
}

impl EvictionDocument {
    /// Whether the eviction was carried out (its cluster stays out).
    pub fn executed(&self) -> bool {
        self.status.conditions.is_true(EXECUTED)
    }

    /// Whether it reached an end (invalid, executed or blocked).
    fn decided(&self) -> bool {
        self.status.conditions.is_false(VALID) || self.status.conditions.get_condition(EXECUTED).is_some()
    }
}

/// What an eviction is decided on.
pub struct EvictionInput<'a> {
    pub eviction: &'a Eviction,
    pub generation: i64,
    pub placement: Option<&'a Placement>,
    pub budget: Option<&'a DisruptionBudget>,
    /// Clusters the placement holds (its status lists them).
    pub held: &'a BTreeSet<String>,
    /// Those of them whose resources are all available.
    pub available: &'a BTreeSet<String>,
    pub now: Time,
}

/// The eviction's document: the previous one if it was decided for this
/// spec, else decided now.
pub fn decide(input: &EvictionInput<'_>, previous: Option<&EvictionDocument>) -> EvictionDocument {
    let e = input.eviction;
    if let Some(p) = previous.filter(|p| p.spec == e.spec && p.decided()) {
        return p.clone();
    }
    let mut doc = EvictionDocument {
        api_version: super::API_VERSION.into(),
        kind: "ClusterResourcePlacementEviction".into(),
        metadata: EvictionMetadata { generation: input.generation, name: e.name.clone() },
        spec: e.spec.clone(),
        status: EvictionStatus::default(),
    };
    let (now, generation) = (input.now, input.generation);
    let c = &mut doc.status.conditions;
    let invalid = match input.placement {
        None => Some("Failed to find ClusterResourcePlacement targeted by eviction"),
        Some(p) if matches!(p.policy, PlacementPolicy::PickFixed { .. }) => {
            Some("Found ClusterResourcePlacement with PickFixed placement type targeted by eviction")
        }
        Some(_) if !input.held.contains(&e.cluster) => {
            Some("Failed to find scheduler decision for placement in cluster targeted by eviction")
        }
        Some(_) => None,
    };
    if let Some(why) = invalid {
        c.set_condition(VALID, false, REASON_INVALID, why, now, generation);
        return doc;
    }
    c.set_condition(VALID, true, REASON_VALID, "Eviction is valid", now, generation);
    let (allowed, message) = allowed(input);
    let reason = if allowed { REASON_EXECUTED } else { REASON_NOT_EXECUTED };
    c.set_condition(EXECUTED, allowed, reason, &message, now, generation);
    doc
}

/// Whether the disruption budget allows the eviction, and the message saying so.
fn allowed(input: &EvictionInput<'_>) -> (bool, String) {
    let Some(budget) = input.budget else {
        return (true, "Eviction is allowed, no ClusterResourcePlacementDisruptionBudget specified".into());
    };
    let pick_all = matches!(input.placement.map(|p| &p.policy), Some(PlacementPolicy::PickAll { .. }));
    let percent_min = matches!(budget.min_available, Some(IntOrPercent::Percent(_)));
    if pick_all && (budget.max_unavailable.is_some() || percent_min) {
        return (
            false,
            "Eviction is blocked by misconfigured ClusterResourcePlacementDisruptionBudget, either MaxUnavailable is specified or MinAvailable is specified as a percentage for PickAll ClusterResourcePlacement".into(),
        );
    }
    // PickN counts against the clusters it is to have, others against the ones they hold.
    let desired = match input.placement.map(|p| &p.policy) {
        Some(PlacementPolicy::PickN(n)) => n.number_of_clusters as usize,
        _ => input.held.len(),
    };
    let available = input.held.intersection(input.available).count() as i64;
    let up = |v: IntOrPercent| match v {
        IntOrPercent::Count(n) => i64::from(n),
        IntOrPercent::Percent(p) => (i64::from(p) * desired as i64 + 99) / 100,
    };
    let disruptions = match (budget.min_available, budget.max_unavailable) {
        (_, Some(max)) => up(max) - (desired as i64 - available),
        (Some(min), None) => available - up(min),
        (None, None) => 1,
    };
    let verdict = if disruptions > 0 { "allowed" } else { "blocked" };
    let message = format!(
        "Eviction is {verdict} by specified ClusterResourcePlacementDisruptionBudget, availablePlacements: {available}, totalPlacements: {}",
        input.held.len()
    );
    (disruptions > 0, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::model::{Origin, PickN};

    fn eviction(cluster: &str) -> Eviction {
        Eviction {
            name: "e1".into(),
            placement: "app".into(),
            cluster: cluster.into(),
            spec: serde_json::json!({"placementName": "app", "clusterName": cluster}),
            origin: Origin { path: "evictions/e1.yaml".into(), line: 1 },
        }
    }

    fn placement(policy: PlacementPolicy) -> Placement {
        let p = crate::repo::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo"))
            .unwrap()
            .fleet()
            .placements["example-placement"]
            .clone();
        Placement { policy, ..p }
    }

    fn budget(min: Option<IntOrPercent>, max: Option<IntOrPercent>) -> DisruptionBudget {
        DisruptionBudget {
            name: "app".into(),
            min_available: min,
            max_unavailable: max,
            origin: Origin { path: "b.yaml".into(), line: 1 },
        }
    }

    fn names(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// (Valid, Executed) as (status, reason, message), from deciding anew.
    fn decided(
        cluster: &str,
        p: Option<&Placement>,
        b: Option<&DisruptionBudget>,
        available: &[&str],
    ) -> Vec<(String, String, String)> {
        let e = eviction(cluster);
        let (held, available) = (names(&["m1", "m2", "m3"]), names(available));
        let input = EvictionInput {
            eviction: &e,
            generation: 1,
            placement: p,
            budget: b,
            held: &held,
            available: &available,
            now: Time::from_second(1_900_000_000),
        };
        decide(&input, None).status.conditions.into_iter().map(|c| (c.status, c.reason, c.message)).collect()
    }

    fn t(s: &str, r: &str, m: &str) -> (String, String, String) {
        (s.into(), r.into(), m.into())
    }

    #[test]
    fn invalid_evictions_say_why() {
        let all = placement(PlacementPolicy::PickAll { terms: vec![], tolerations: vec![] });
        let fixed = placement(PlacementPolicy::PickFixed { cluster_names: vec!["m1".into()] });
        let invalid = |m: &str| vec![t("False", REASON_INVALID, m)];
        assert_eq!(
            decided("m1", None, None, &[]),
            invalid("Failed to find ClusterResourcePlacement targeted by eviction")
        );
        assert_eq!(
            decided("m1", Some(&fixed), None, &[]),
            invalid("Found ClusterResourcePlacement with PickFixed placement type targeted by eviction")
        );
        assert_eq!(
            decided("m9", Some(&all), None, &[]),
            invalid("Failed to find scheduler decision for placement in cluster targeted by eviction")
        );
    }

    #[test]
    fn budgets_allow_or_block() {
        let all = placement(PlacementPolicy::PickAll { terms: vec![], tolerations: vec![] });
        let valid = t("True", REASON_VALID, "Eviction is valid");
        assert_eq!(
            decided("m1", Some(&all), None, &[]),
            [
                valid.clone(),
                t(
                    "True",
                    REASON_EXECUTED,
                    "Eviction is allowed, no ClusterResourcePlacementDisruptionBudget specified"
                )
            ]
        );
        let min2 = budget(Some(IntOrPercent::Count(2)), None);
        assert_eq!(
            decided("m1", Some(&all), Some(&min2), &["m1", "m2", "m3"])[1],
            t(
                "True",
                REASON_EXECUTED,
                "Eviction is allowed by specified ClusterResourcePlacementDisruptionBudget, availablePlacements: 3, totalPlacements: 3"
            )
        );
        assert_eq!(
            decided("m1", Some(&all), Some(&min2), &["m1", "m2"])[1],
            t(
                "False",
                REASON_NOT_EXECUTED,
                "Eviction is blocked by specified ClusterResourcePlacementDisruptionBudget, availablePlacements: 2, totalPlacements: 3"
            )
        );
        // PickAll takes an integer minAvailable only.
        for b in [budget(Some(IntOrPercent::Percent(50)), None), budget(None, Some(IntOrPercent::Count(1)))] {
            let (status, _, message) = decided("m1", Some(&all), Some(&b), &["m1", "m2", "m3"])[1].clone();
            assert_eq!(status, "False");
            assert!(message.starts_with("Eviction is blocked by misconfigured"), "{message}");
        }
        // PickN: maxUnavailable against numberOfClusters.
        let pick3 =
            placement(PlacementPolicy::PickN(Box::new(PickN { number_of_clusters: 3, ..PickN::default() })));
        let max1 = budget(None, Some(IntOrPercent::Count(1)));
        assert_eq!(decided("m1", Some(&pick3), Some(&max1), &["m1", "m2", "m3"])[1].0, "True");
        assert_eq!(
            decided("m1", Some(&pick3), Some(&max1), &["m1", "m2"])[1].0,
            "False",
            "one is unavailable already"
        );
        let min50 = budget(Some(IntOrPercent::Percent(50)), None);
        assert_eq!(
            decided("m1", Some(&pick3), Some(&min50), &["m1", "m2", "m3"])[1].0,
            "True",
            "2 of 3 needed"
        );
        assert_eq!(decided("m1", Some(&pick3), Some(&min50), &["m1", "m2"])[1].0, "False");
    }

    #[test]
    fn a_decided_eviction_stays_decided_until_its_spec_changes() {
        let all = placement(PlacementPolicy::PickAll { terms: vec![], tolerations: vec![] });
        let min3 = budget(Some(IntOrPercent::Count(3)), None);
        let e = eviction("m1");
        let (held, available) = (names(&["m1", "m2", "m3"]), names(&["m1", "m2", "m3"]));
        let mut input = EvictionInput {
            eviction: &e,
            generation: 1,
            placement: Some(&all),
            budget: Some(&min3),
            held: &held,
            available: &available,
            now: Time::from_second(1_900_000_000),
        };
        let blocked = decide(&input, None);
        assert!(!blocked.executed());
        input.budget = None;
        assert_eq!(decide(&input, Some(&blocked)), blocked, "blocked stays blocked");
        let other = eviction("m2");
        input.eviction = &other;
        assert!(decide(&input, Some(&blocked)).executed(), "another spec is decided anew");
    }
}
