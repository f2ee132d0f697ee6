//! The scheduling cases KubeFleet's scheduler tests cover: required and
//! preferred affinity (weights, property sorters), property selectors, taints
//! and tolerations, topology spread, and PickN keeping what it holds.

use super::*;
use crate::repo::labels::LabelSelector;
use crate::repo::model::*;
use std::collections::BTreeSet;

fn cluster(name: &str, labels: &[(&str, &str)]) -> MemberCluster {
    MemberCluster {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        annotations: Default::default(),
        taints: Vec::new(),
        heartbeat_seconds: 60,
        origin: Origin { path: "c.yaml".into(), line: 1 },
    }
}

fn with_property(mut c: MemberCluster, name: &str, value: &str) -> MemberCluster {
    c.annotations.insert(name.into(), value.into());
    c
}

fn tainted(mut c: MemberCluster, key: &str, value: &str) -> MemberCluster {
    c.taints.push(Taint { key: key.into(), value: value.into() });
    c
}

fn fleet(clusters: Vec<MemberCluster>) -> BTreeMap<String, MemberCluster> {
    clusters.into_iter().map(|c| (c.name.clone(), c)).collect()
}

fn seed() -> BTreeMap<String, MemberCluster> {
    fleet(vec![
        cluster("member1", &[("environment", "canary")]),
        cluster("member2", &[("environment", "staging")]),
        cluster("member3", &[("environment", "canary")]),
    ])
}

fn placement(policy: PlacementPolicy) -> Placement {
    Placement {
        name: "p".into(),
        namespace: None,
        selector_namespace: None,
        spec: serde_json::Value::Null,
        selectors: vec![],
        policy,
        rollout: RolloutType::External,
        apply: ApplyStrategy::default(),
        auto_run: None,
        revision_history_limit: 10,
        namespace_status: None,
        origin: Origin { path: "p.yaml".into(), line: 1 },
    }
}

fn labels(key: &str, value: &str) -> Option<LabelSelector> {
    Some(LabelSelector { match_labels: [(key.to_string(), value.to_string())].into(), ..Default::default() })
}

fn canary() -> Vec<ClusterTerm> {
    vec![ClusterTerm { labels: labels("environment", "canary"), properties: vec![] }]
}

fn pick_all(terms: Vec<ClusterTerm>, tolerations: Vec<Toleration>) -> Placement {
    placement(PlacementPolicy::PickAll { terms, tolerations })
}

fn pick_n(n: u32, f: impl FnOnce(&mut PickN)) -> Placement {
    let mut p = PickN { number_of_clusters: n, ..PickN::default() };
    f(&mut p);
    placement(PlacementPolicy::PickN(Box::new(p)))
}

fn names(s: &Schedule) -> Vec<&str> {
    s.clusters.iter().map(String::as_str).collect()
}

fn why<'s>(s: &'s Schedule, cluster: &str) -> &'s str {
    s.not_picked.iter().find(|(c, _)| c == cluster).map(|(_, w)| w.as_str()).unwrap_or_default()
}

#[test]
fn pick_all_with_and_without_affinity() {
    assert_eq!(names(&schedule(&pick_all(vec![], vec![]), &seed())), ["member1", "member2", "member3"]);
    let some = schedule(&pick_all(canary(), vec![]), &seed());
    assert_eq!(names(&some), ["member1", "member3"]);
    assert_eq!(
        why(&some, "member2"),
        "cluster does not match with any of the required cluster affinity terms"
    );
}

#[test]
fn pick_fixed_reports_missing_clusters() {
    let p = placement(PlacementPolicy::PickFixed { cluster_names: vec!["member3".into(), "ghost".into()] });
    let s = schedule(&p, &seed());
    assert_eq!(names(&s), ["member3"]);
    assert_eq!(s.unsatisfied.as_deref(), Some("clusters not found in the repository: ghost"));
}

#[test]
fn pick_n_is_deterministic_by_name_and_says_when_it_falls_short() {
    let s = schedule(&pick_n(1, |p| p.terms = canary()), &seed());
    assert_eq!(names(&s), ["member1"]);
    assert_eq!(
        why(&s, "member3"),
        "cluster does not score high enough (affinity score: 0, topology spread score: 0)"
    );
    let s = schedule(&pick_n(5, |_| {}), &seed());
    assert_eq!(s.clusters.len(), 3);
    assert_eq!(
        s.unsatisfied.as_deref(),
        Some(
            "could not find all clusters needed as specified by the scheduling policy, found 3 cluster(s) instead of 5"
        )
    );
}

#[test]
fn taints_need_a_toleration_from_new_placements_only() {
    let f = fleet(vec![
        tainted(cluster("gpu1", &[]), "dedicated", "gpu"),
        cluster("plain", &[]),
        tainted(tainted(cluster("both", &[]), "dedicated", "gpu"), "zone", "edge"),
    ]);
    let s = schedule(&pick_all(vec![], vec![]), &f);
    assert_eq!(names(&s), ["plain"]);
    assert_eq!(why(&s, "gpu1"), "taint &{Key:dedicated Value:gpu Effect:NoSchedule} cannot be tolerated");
    let equal = Toleration { key: "dedicated".into(), exists: false, value: "gpu".into() };
    assert_eq!(names(&schedule(&pick_all(vec![], vec![equal.clone()]), &f)), ["gpu1", "plain"]);
    let wrong = Toleration { key: "dedicated".into(), exists: false, value: "cpu".into() };
    assert_eq!(names(&schedule(&pick_all(vec![], vec![wrong]), &f)), ["plain"]);
    let any_value = Toleration { key: "dedicated".into(), exists: true, value: String::new() };
    assert_eq!(names(&schedule(&pick_all(vec![], vec![any_value]), &f)), ["gpu1", "plain"]);
    let everything = Toleration { key: String::new(), exists: true, value: String::new() };
    assert_eq!(names(&schedule(&pick_all(vec![], vec![everything]), &f)), ["both", "gpu1", "plain"]);
    // A taint added after the placement picked the cluster does not remove it.
    let bound: BTreeSet<String> = ["gpu1".to_string()].into();
    assert_eq!(
        names(&schedule_keeping(&pick_all(vec![], vec![]), &f, &|c| bound.contains(c))),
        ["gpu1", "plain"]
    );
    let s = schedule_keeping(&pick_n(2, |_| {}), &f, &|c| bound.contains(c));
    assert_eq!(names(&s), ["gpu1", "plain"]);
    // (but a required term still applies to it, as before)
    let s = schedule_keeping(&pick_all(canary(), vec![]), &f, &|c| bound.contains(c));
    assert!(s.clusters.is_empty());
}

#[test]
fn preferred_terms_add_their_weights() {
    let f = fleet(vec![
        cluster("a", &[("region", "eu"), ("tier", "gold")]),
        cluster("b", &[("region", "eu")]),
        cluster("c", &[("region", "us"), ("tier", "gold")]),
        cluster("d", &[("region", "us")]),
    ]);
    let p = pick_n(2, |p| {
        p.preferred = vec![
            PreferredTerm { weight: 20, labels: labels("region", "us"), sorter: None },
            PreferredTerm { weight: 30, labels: labels("tier", "gold"), sorter: None },
            PreferredTerm { weight: -100, labels: labels("region", "mars"), sorter: None },
        ]
    });
    let s = schedule(&p, &f);
    assert_eq!(names(&s), ["a", "c"], "c 50, a 30, d 20, b 0");
    assert_eq!(
        why(&s, "d"),
        "cluster does not score high enough (affinity score: 20, topology spread score: 0)"
    );
    let avoid = pick_n(1, |p| {
        p.preferred = vec![PreferredTerm { weight: -50, labels: labels("region", "eu"), sorter: None }]
    });
    assert_eq!(names(&schedule(&avoid, &f)), ["c"], "negative weights push clusters down; then by name");
}

#[test]
fn property_sorters_interpolate_the_weight_between_the_fleet_extremes() {
    let cpu = "resources.kubernetes-fleet.io/available-cpu";
    let f = fleet(vec![
        with_property(cluster("small", &[]), cpu, "2"),
        with_property(cluster("medium", &[]), cpu, "6"),
        with_property(cluster("large", &[]), cpu, "10"),
        cluster("unknown", &[]),
    ]);
    let sorted = |ascending: bool| {
        let sorter = Some(PropertySorter { name: cpu.into(), ascending });
        vec![PreferredTerm { weight: 100, labels: None, sorter }]
    };
    let most = schedule(&pick_n(1, |p| p.preferred = sorted(false)), &f);
    assert_eq!(names(&most), ["large"]);
    assert_eq!(
        why(&most, "medium"),
        "cluster does not score high enough (affinity score: 50, topology spread score: 0)"
    );
    assert_eq!(
        why(&most, "unknown"),
        "cluster does not score high enough (affinity score: 0, topology spread score: 0)"
    );
    let least = schedule(&pick_n(1, |p| p.preferred = sorted(true)), &f);
    assert_eq!(names(&least), ["small"]);
    assert_eq!(
        why(&least, "large"),
        "cluster does not score high enough (affinity score: 0, topology spread score: 0)"
    );
}

#[test]
fn property_selectors_compare_quantities() {
    let nodes = "kubernetes-fleet.io/node-count";
    let memory = "resources.kubernetes-fleet.io/allocatable-memory";
    let f = fleet(vec![
        with_property(with_property(cluster("a", &[]), nodes, "3"), memory, "16Gi"),
        with_property(with_property(cluster("b", &[]), nodes, "10"), memory, "64Gi"),
        with_property(cluster("c", &[]), nodes, "5"),
        with_property(cluster("bad", &[]), nodes, "many"),
    ]);
    let term = |reqs: &[(&str, PropertyOp, &str)]| {
        vec![ClusterTerm {
            labels: None,
            properties: reqs
                .iter()
                .map(|(name, op, v)| PropertyRequirement {
                    name: name.to_string(),
                    op: *op,
                    value: v.to_string(),
                    number: parse_quantity(v).unwrap(),
                })
                .collect(),
        }]
    };
    let picked = |reqs: &[(&str, PropertyOp, &str)]| -> Vec<String> {
        schedule(&pick_all(term(reqs), vec![]), &f).clusters
    };
    assert_eq!(picked(&[(nodes, PropertyOp::Ge, "5")]), ["b", "c"]);
    assert_eq!(picked(&[(nodes, PropertyOp::Gt, "5")]), ["b"]);
    assert_eq!(picked(&[(nodes, PropertyOp::Eq, "3")]), ["a"]);
    assert_eq!(picked(&[(nodes, PropertyOp::Ne, "3")]), ["b", "c"]);
    assert_eq!(
        picked(&[(nodes, PropertyOp::Lt, "10"), (memory, PropertyOp::Le, "32Gi")]),
        ["a"],
        "ANDed; c lacks memory"
    );
    let s = schedule(&pick_all(term(&[(nodes, PropertyOp::Ge, "1")]), vec![]), &f);
    assert_eq!(
        why(&s, "bad"),
        "property kubernetes-fleet.io/node-count of the cluster, \"many\", is not a quantity"
    );
    assert_eq!(parse_quantity("500m"), Some(0.5));
    assert_eq!(parse_quantity("2Ki"), Some(2048.0));
    assert_eq!(parse_quantity("1e3"), Some(1000.0));
    assert_eq!(parse_quantity("1.5G"), Some(1.5e9));
    assert_eq!(parse_quantity("v1.34.1"), None);
}

#[test]
fn topology_spread_keeps_the_skew_within_max_skew() {
    let zones = vec![
        cluster("eu-1", &[("zone", "eu")]),
        cluster("eu-2", &[("zone", "eu")]),
        cluster("eu-3", &[("zone", "eu")]),
        cluster("us-1", &[("zone", "us")]),
    ];
    let f = fleet(zones.clone());
    let spread = |do_not_schedule| {
        vec![SpreadConstraint { max_skew: 1, topology_key: "zone".into(), do_not_schedule }]
    };
    // Without spread, names decide.
    assert_eq!(names(&schedule(&pick_n(2, |_| {}), &f)), ["eu-1", "eu-2"]);
    // With it, one per zone first.
    assert_eq!(names(&schedule(&pick_n(2, |p| p.spread = spread(true)), &f)), ["eu-1", "us-1"]);
    // DoNotSchedule: a third eu cluster would make the skew 2.
    let s = schedule(&pick_n(4, |p| p.spread = spread(true)), &f);
    assert_eq!(names(&s), ["eu-1", "eu-2", "us-1"]);
    assert_eq!(why(&s, "eu-3"), "violated topology spread constraint \"zone\" (max skew 1)");
    assert!(s.unsatisfied.as_deref().unwrap().contains("found 3 cluster(s) instead of 4"));
    // ScheduleAnyway: it is picked last, but picked.
    assert_eq!(schedule(&pick_n(4, |p| p.spread = spread(false)), &f).clusters.len(), 4);
    // Spread counts before preferred affinity.
    let p = pick_n(2, |p| {
        p.spread = spread(false);
        p.preferred = vec![PreferredTerm { weight: 100, labels: labels("zone", "eu"), sorter: None }];
    });
    assert_eq!(names(&schedule(&p, &f)), ["eu-1", "us-1"]);
    // A cluster without the key is outside the spread: it never violates it
    // (and, as in KubeFleet, scores 0 where a cluster that adds to a domain scores -1).
    let mut with_keyless = zones;
    with_keyless.push(cluster("nowhere", &[]));
    let s = schedule(&pick_n(4, |p| p.spread = spread(true)), &fleet(with_keyless));
    assert_eq!(names(&s), ["eu-1", "eu-2", "nowhere", "us-1"]);
}

#[test]
fn pick_n_keeps_what_it_holds_and_trims_the_lowest_scored() {
    let f = fleet(vec![
        cluster("a", &[("tier", "gold")]),
        cluster("b", &[]),
        cluster("c", &[("tier", "gold")]),
        cluster("d", &[]),
    ]);
    let prefer_gold = |n| {
        pick_n(n, |p| {
            p.preferred = vec![PreferredTerm { weight: 10, labels: labels("tier", "gold"), sorter: None }]
        })
    };
    let bound: BTreeSet<String> = ["b".to_string(), "d".to_string()].into();
    // Held clusters stay even though gold ones score higher.
    assert_eq!(names(&schedule_keeping(&prefer_gold(2), &f, &|c| bound.contains(c))), ["b", "d"]);
    // Growing adds the best of the rest.
    assert_eq!(names(&schedule_keeping(&prefer_gold(3), &f, &|c| bound.contains(c))), ["a", "b", "d"]);
    // Shrinking drops the lowest scored, the smaller name first.
    let bound: BTreeSet<String> = ["a".to_string(), "b".to_string(), "d".to_string()].into();
    let s = schedule_keeping(&prefer_gold(2), &f, &|c| bound.contains(c));
    assert_eq!(names(&s), ["a", "d"]);
    assert_eq!(why(&s, "b"), "numberOfClusters was lowered");
}
