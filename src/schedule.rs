//! Scheduling: which member clusters a placement picks (PickAll, PickFixed, PickN).

use std::collections::BTreeMap;

use crate::repo::model::{MemberCluster, Placement, PlacementPolicy};

/// The outcome of scheduling one placement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Picked clusters, by name.
    pub clusters: Vec<String>,
    /// Why the policy could not be fully satisfied (missing fixed clusters, too few for PickN).
    pub unsatisfied: Option<String>,
}

fn matches_terms(terms: &[crate::repo::labels::LabelSelector], c: &MemberCluster) -> bool {
    terms.is_empty() || terms.iter().any(|t| t.matches(&c.labels))
}

/// Schedules a placement onto the declared clusters. Deterministic: ties are broken by name.
pub fn schedule(p: &Placement, clusters: &BTreeMap<String, MemberCluster>) -> Schedule {
    match &p.policy {
        PlacementPolicy::PickAll { terms } => Schedule {
            clusters: clusters.values().filter(|c| matches_terms(terms, c)).map(|c| c.name.clone()).collect(),
            unsatisfied: None,
        },
        PlacementPolicy::PickFixed { cluster_names } => {
            let mut picked: Vec<String> =
                cluster_names.iter().filter(|n| clusters.contains_key(*n)).cloned().collect();
            picked.sort();
            let missing: Vec<&str> =
                cluster_names.iter().filter(|n| !clusters.contains_key(*n)).map(String::as_str).collect();
            Schedule {
                clusters: picked,
                unsatisfied: (!missing.is_empty())
                    .then(|| format!("clusters not found in the repository: {}", missing.join(", "))),
            }
        }
        PlacementPolicy::PickN { number_of_clusters, terms } => {
            let candidates: Vec<String> =
                clusters.values().filter(|c| matches_terms(terms, c)).map(|c| c.name.clone()).collect();
            let n = *number_of_clusters as usize;
            Schedule {
                unsatisfied: (candidates.len() < n).then(|| {
                    format!("could not find {n} clusters matching the policy (found {})", candidates.len())
                }),
                clusters: candidates.into_iter().take(n).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::labels::LabelSelector;
    use crate::repo::model::*;

    fn cluster(name: &str, env: &str) -> (String, MemberCluster) {
        let origin = Origin { path: "c.yaml".into(), line: 1 };
        let labels = [("environment".to_string(), env.to_string())].into();
        (name.into(), MemberCluster { name: name.into(), labels, annotations: Default::default(), origin })
    }

    fn placement(policy: PlacementPolicy) -> Placement {
        Placement {
            name: "p".into(),
            selectors: vec![],
            policy,
            rollout: RolloutType::External,
            apply: ApplyStrategy {
                type_: ApplyType::ServerSideApply,
                when_to_apply: WhenToApply::Always,
                when_to_take_over: WhenToTakeOver::Always,
            },
            auto_run: None,
            revision_history_limit: 10,
            origin: Origin { path: "p.yaml".into(), line: 1 },
        }
    }

    fn fleet() -> BTreeMap<String, MemberCluster> {
        [cluster("member1", "canary"), cluster("member2", "staging"), cluster("member3", "canary")].into()
    }

    fn canary() -> Vec<LabelSelector> {
        vec![LabelSelector {
            match_labels: [("environment".to_string(), "canary".to_string())].into(),
            ..Default::default()
        }]
    }

    #[test]
    fn pick_all_with_and_without_affinity() {
        let all = schedule(&placement(PlacementPolicy::PickAll { terms: vec![] }), &fleet());
        assert_eq!(all.clusters, ["member1", "member2", "member3"]);
        let some = schedule(&placement(PlacementPolicy::PickAll { terms: canary() }), &fleet());
        assert_eq!(some.clusters, ["member1", "member3"]);
    }

    #[test]
    fn pick_fixed_reports_missing_clusters() {
        let s = schedule(
            &placement(PlacementPolicy::PickFixed { cluster_names: vec!["member3".into(), "ghost".into()] }),
            &fleet(),
        );
        assert_eq!(s.clusters, ["member3"]);
        assert_eq!(s.unsatisfied.as_deref(), Some("clusters not found in the repository: ghost"));
    }

    #[test]
    fn pick_n_is_deterministic_by_name() {
        let s =
            schedule(&placement(PlacementPolicy::PickN { number_of_clusters: 1, terms: canary() }), &fleet());
        assert_eq!(s.clusters, ["member1"]);
        let s =
            schedule(&placement(PlacementPolicy::PickN { number_of_clusters: 5, terms: vec![] }), &fleet());
        assert_eq!(s.clusters.len(), 3);
        assert!(s.unsatisfied.unwrap().contains("found 3"));
    }
}
