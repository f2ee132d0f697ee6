//! The placement document built from typed facts: snapshots of what users
//! read, and the rules for what a pass keeps, replaces and counts.

use std::collections::BTreeMap;

use super::*;
use crate::cluster::FieldDiff;
use crate::render::EnvelopeRef;
use crate::repo::load_dir;
use crate::repo::model::EnvelopeType;

const T0: i64 = 1_753_219_688; // 2025-07-22T21:28:08Z

fn example_placement() -> Placement {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    load_dir(&dir).unwrap().fleet().placements["example-placement"].clone()
}

fn key(kind: &str, ns: &str, name: &str) -> ObjectKey {
    ObjectKey { group: String::new(), kind: kind.into(), namespace: Some(ns.into()), name: name.into() }
}

fn schedule(clusters: &[&str]) -> Schedule {
    Schedule { clusters: clusters.iter().map(|c| c.to_string()).collect(), ..Schedule::default() }
}

fn selected() -> Vec<SelectedResource> {
    vec![SelectedResource {
        group: String::new(),
        kind: "Namespace".into(),
        name: "test-namespace".into(),
        namespace: None,
        version: "v1".into(),
    }]
}

fn build(
    p: &Placement,
    sched: &Schedule,
    facts: &PlacementFacts,
    previous: Option<&PlacementDocument>,
    now: i64,
) -> PlacementDocument {
    document(PlacementInput {
        placement: p,
        generation: 1,
        schedule: sched,
        latest_index: Some(1),
        selected: selected(),
        previous,
        facts,
        blocking: &[],
        now: Time::from_second(now),
    })
}

/// member1 failed an object (in an envelope), member2 drifted, member3 waits.
fn eventful() -> PlacementFacts {
    let mut f = PlacementFacts::default();
    for c in ["member1", "member2", "member3"] {
        f.observed.insert(c.into(), 1);
    }
    f.failures.insert(
        "member1".into(),
        vec![FailedObject {
            key: key("ConfigMap", "test-namespace", "bad"),
            api_version: "v1".into(),
            envelope: Some(EnvelopeRef {
                name: "wrapped".into(),
                namespace: Some("test-namespace".into()),
                type_: EnvelopeType::ResourceEnvelope,
            }),
            message: "Failed to apply manifest: ConfigMap test-namespace/bad: Invalid value".into(),
        }],
    );
    f.failures.insert("member2".into(), Vec::new());
    f.available.insert("member2".into());
    f.drifts.insert(
        "member2".into(),
        vec![ObjectDiff {
            key: key("ConfigMap", "test-namespace", "test-cm"),
            api_version: "v1".into(),
            envelope: None,
            on_cluster: true,
            live_owner: Some("example-placement".into()),
            live_generation: 0,
            fields: vec![FieldDiff {
                path: "/data/key".into(),
                hub: Some("value1".into()),
                member: Some(serde_json::json!(7)),
            }],
            unified: "-  key: 7\n+  key: value1\n".into(),
        }],
    );
    f.failures.insert("member3".into(), Vec::new());
    f.waiting.insert(
        "member3".into(),
        Waiting::NotAvailable("Deployment.apps test-namespace/web is not available yet".into()),
    );
    f
}

#[test]
fn failed_drifted_and_waiting_clusters() {
    let p = example_placement();
    let doc = build(&p, &schedule(&["member1", "member2", "member3"]), &eventful(), None, T0);
    insta::assert_snapshot!(crate::yaml::to_string(&doc));
}

#[test]
fn every_cluster_available() {
    let p = example_placement();
    let mut f = PlacementFacts::default();
    for c in ["member1", "member2"] {
        f.observed.insert(c.into(), 1);
        f.failures.insert(c.into(), Vec::new());
        f.available.insert(c.into());
    }
    let doc = build(&p, &schedule(&["member1", "member2"]), &f, None, T0);
    insta::assert_snapshot!(crate::yaml::to_string(&doc));
}

#[test]
fn an_unreachable_cluster_and_an_unsatisfied_policy() {
    let p = example_placement();
    let mut f = PlacementFacts::default();
    f.waiting
        .insert("member1".into(), Waiting::Unreachable("cluster unreachable (1 attempts): refused".into()));
    let sched = Schedule {
        clusters: vec!["member1".into()],
        unsatisfied: Some("cluster member9 is not a member cluster".into()),
        not_picked: vec![(
            "member4".into(),
            "cluster does not match with any of the required cluster affinity terms".into(),
        )],
    };
    let doc = build(&p, &sched, &f, None, T0);
    insta::assert_snapshot!(crate::yaml::to_string(&doc));
}

#[test]
fn a_pass_that_changes_only_times_keeps_the_previous_document() {
    let p = example_placement();
    let sched = schedule(&["member1", "member2", "member3"]);
    let first = build(&p, &sched, &eventful(), None, T0);
    let again = build(&p, &sched, &eventful(), Some(&first), T0 + 60);
    assert_eq!(again, first, "same facts later: nothing to commit");
    let mut changed = eventful();
    changed.waiting.clear();
    changed.available.insert("member3".into());
    let next = build(&p, &sched, &changed, Some(&first), T0 + 60);
    let m3 = &next.status.placement_statuses[2];
    let available = m3.conditions.get_condition(kind::RESOURCE_AVAILABLE).unwrap();
    assert_eq!(
        (available.status.as_str(), available.last_transition_time),
        ("True", Time::from_second(T0 + 60))
    );
    let drift = &next.status.placement_statuses[1].drifted_placements[0];
    assert_eq!(drift.first_drifted_observed_time, Some(Time::from_second(T0)), "first seen is kept");
    assert_eq!(drift.observation_time, Time::from_second(T0 + 60));
}

#[test]
fn facts_read_back_what_the_document_says() {
    let p = example_placement();
    let doc = build(&p, &schedule(&["member1", "member2", "member3"]), &eventful(), None, T0);
    let facts = PlacementFacts::from_status(Some(&doc));
    assert_eq!(
        facts.held_before,
        BTreeMap::from([("member1".into(), 1), ("member2".into(), 1), ("member3".into(), 1)])
    );
    assert!(facts.done_before.contains("member2"));
    assert!(!facts.done_before.contains("member1"), "a failed object is not done");
    assert!(!facts.done_before.contains("member3"), "not available is not done");
    assert!(facts.failed_before("member1", &key("ConfigMap", "test-namespace", "bad")));
    assert!(facts.up_to_date("member2", 1, ApplyType::ServerSideApply));
    assert!(!facts.up_to_date("member2", 2, ApplyType::ServerSideApply), "a newer snapshot is not");
    assert!(!facts.up_to_date("member2", 1, ApplyType::ReportDiff), "applied is not reported");
}

#[test]
fn report_diff_keeps_only_the_differences() {
    let mut p = example_placement();
    p.apply.type_ = ApplyType::ReportDiff;
    let sched = schedule(&["member1", "member2"]);
    let applied = build(&example_placement(), &sched, &eventful(), None, T0);
    let mut f = PlacementFacts::default();
    f.diffs.insert("member1".into(), Vec::new());
    let doc = build(&p, &sched, &f, Some(&applied), T0 + 10);
    let m1 = &doc.status.placement_statuses[0];
    assert!(m1.failed_placements.is_empty() && m1.drifted_placements.is_empty());
    assert!(m1.conditions.get_condition(kind::RESOURCE_APPLIED).is_none());
    assert_eq!(
        m1.conditions.get_condition(kind::RESOURCE_DIFF_REPORTED).unwrap().reason,
        reason::NO_DIFF_FOUND
    );
}

#[test]
fn a_hand_edited_document_reads_leniently_and_bad_indices_are_dropped() {
    let text = "status:\n  placementStatuses:\n  - clusterName: member1\n    observedResourceIndex: latest\n";
    let doc: PlacementDocument = crate::yaml::parse_typed(text.as_bytes()).unwrap();
    assert_eq!(doc.status.placement_statuses[0].observed_resource_index.as_deref(), Some("latest"));
    let facts = PlacementFacts::from_status(Some(&doc));
    assert!(facts.held_before.is_empty(), "not an index: the cluster holds nothing known");
    let rebuilt = build(&example_placement(), &schedule(&["member1"]), &facts, Some(&doc), T0);
    assert_eq!(rebuilt.status.placement_statuses[0].observed_resource_index, None);
    assert_eq!(rebuilt.kind, "ClusterResourcePlacement", "written whole again");
}
