//! Verification tasks and automatic rollback in the engine, with a controlled
//! clock and scripted measurements.

use serde_json::{Value, json};

use super::*;
use crate::engine::fixtures::StageSpec;
use crate::repo::model::RunState;
use crate::status::run::TaskStatus;
use crate::verify::Query;

/// A perCluster Prometheus verification of `result < 0.01`.
fn check(count: u32, failure_limit: u32, inconclusive_limit: u32) -> Value {
    json!({
        "provider": {"prometheus": {"query": "errors{cluster=\"${MEMBER-CLUSTER-NAME}\",stage=\"${STAGE}\",run=\"${RUN}\"}"}},
        "successCondition": "result < 0.01",
        "interval": "30s",
        "count": count,
        "failureLimit": failure_limit,
        "inconclusiveLimit": inconclusive_limit,
        "perCluster": true,
    })
}

fn staging() -> StageSpec {
    StageSpec::matching("staging", "environment", "staging")
}

fn canary() -> StageSpec {
    StageSpec::matching("canary", "environment", "canary").sorting_label_key("order").max_concurrency(2)
}

fn task<'h>(h: &'h Harness, stage: &str) -> &'h TaskStatus {
    h.stage(stage).after_stage_task_status.iter().find(|t| t.type_ == "Verification").unwrap()
}

/// (phase, time offset from T0, value or message) of each measurement.
fn measurements(t: &TaskStatus) -> Vec<(String, i64, String)> {
    t.measurements
        .iter()
        .map(|m| {
            let shown = m.value.clone().or_else(|| m.message.clone()).unwrap_or_default();
            (m.phase.clone(), m.time.as_second() - T0, shown)
        })
        .collect()
}

#[test]
fn a_healthy_stage_passes_after_count_measurements_and_the_run_goes_on() {
    let mut h = Harness::seed();
    h.set_strategy([staging().after_verification(check(3, 0, 0), None), canary().after_approval()]);
    h.values.insert("member2".into(), Ok(vec![0.001]));
    h.pass(T0);
    assert_eq!(h.updated, ["member2"]);
    assert_eq!(
        h.measured,
        [(
            Some("member2".to_string()),
            Query::Prometheus {
                query: "errors{cluster=\"member2\",stage=\"staging\",run=\"example-run\"}".into()
            }
        )],
        "the first measurement is taken when the stage's clusters are done, with the variables filled in"
    );
    assert_eq!(h.wake_at, Some(T0 + 30), "the next measurement is due an interval later");
    assert_eq!(
        h.cond("Progressing").2,
        "The updateRun is waiting for after-stage tasks in stage staging to complete"
    );
    h.pass(T0 + 29);
    assert_eq!(h.measured.len(), 1, "not due yet");
    h.pass(T0 + 30);
    assert_eq!(h.updated, ["member2"], "two of three measurements: canary waits");
    h.pass(T0 + 60);
    let verified = task(&h, "staging").conditions.get_condition("Verified").unwrap();
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "StageTaskVerificationSucceeded")
    );
    assert_eq!(
        verified.message,
        "Verification afterStageTasks[0] (prometheus) passed: 3 measurement(s) within the limits"
    );
    assert_eq!(
        measurements(task(&h, "staging")),
        [
            ("Successful".into(), 0, "0.001".into()),
            ("Successful".into(), 30, "0.001".into()),
            ("Successful".into(), 60, "0.001".into())
        ]
    );
    assert_eq!(h.updated, ["member2", "member3", "member1"], "the next stage starts");
    assert_eq!(h.requests, ["example-run-canary"]);
    assert!(
        h.stage("canary").clusters.iter().all(|c| c.previous_resource_snapshot_index.is_none()),
        "a run that cannot roll back records no previous snapshots"
    );
}

#[test]
fn a_failed_verification_stops_the_run_and_no_later_stage_is_touched() {
    let mut h = Harness::seed();
    h.set_strategy([staging().after_verification(check(5, 1, 0), Some("Fail")), canary()]);
    h.values.insert("member2".into(), Ok(vec![0.2]));
    h.pass(T0);
    assert_eq!(h.cond("Succeeded").0, "", "one failure is within failureLimit 1");
    h.values.insert("member2".into(), Ok(vec![0.25, 0.3]));
    h.pass(T0 + 30);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert_eq!(
        message,
        "Verification afterStageTasks[0] (prometheus) failed on cluster member2 in stage staging: \
         2 measurement(s) failed `result < 0.01`, more than failureLimit 1; last values: 0.2, [0.25, 0.3]"
    );
    assert_eq!(
        task(&h, "staging").conditions.get_condition("Verified").unwrap().reason,
        "StageTaskVerificationFailed"
    );
    assert_eq!(
        h.stage("staging").conditions.get_condition("Succeeded").unwrap().reason,
        "StageUpdatingFailed"
    );
    assert_eq!(h.updated, ["member2"], "canary is never updated");
    assert!(h.rolled_back.is_empty(), "onFailure: Fail rolls nothing back");
    h.pass(T0 + 600);
    assert_eq!(h.measured.len(), 2, "a finished run measures nothing more");
}

#[test]
fn inconclusive_measurements_beyond_the_limit_fail_the_task() {
    let mut h = Harness::seed();
    h.set_strategy([staging().after_verification(check(5, 0, 1), None), canary()]);
    h.values.insert("member2".into(), Err("http://127.0.0.1:9090/api/v1/query: connection refused".into()));
    h.pass(T0);
    h.pass(T0 + 30);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert!(
        message.contains("2 measurement(s) were inconclusive, more than inconclusiveLimit 1"),
        "{message}"
    );
    assert!(message.ends_with("last values: http://127.0.0.1:9090/api/v1/query: connection refused, http://127.0.0.1:9090/api/v1/query: connection refused"), "{message}");
    assert_eq!(measurements(task(&h, "staging"))[0].0, "Inconclusive");
}

#[test]
fn a_restart_continues_the_count_from_the_status() {
    let mut h = Harness::seed();
    h.set_strategy([staging().after_verification(check(3, 0, 0), None), canary()]);
    h.values.insert("member2".into(), Ok(vec![0.0]));
    h.pass(T0);
    h.pass(T0 + 30);
    // A new process: only the status (as read back from Git) is carried over.
    let written = serde_json::to_value(&h.status).unwrap();
    let mut again = Harness::seed();
    again.set_strategy([staging().after_verification(check(3, 0, 0), None), canary()]);
    again.values = h.values.clone();
    again.status = serde_json::from_value(written).unwrap();
    again.pass(T0 + 45);
    assert!(again.measured.is_empty(), "the third measurement is due at T0+60, counted from the second");
    assert_eq!(again.wake_at, Some(T0 + 60));
    again.pass(T0 + 60);
    assert_eq!(again.measured.len(), 1);
    assert_eq!(measurements(task(&again, "staging")).len(), 3, "3 in all, not 3 more");
    assert_eq!(again.updated, ["member3", "member1"], "then canary");
}

#[test]
fn rollback_returns_every_updated_cluster_in_reverse_order() {
    let mut h = Harness::seed();
    h.set_strategy([
        staging().after_wait("1m"),
        canary().after_verification(check(2, 0, 0), Some("Rollback")),
        // Never reached.
    ]);
    h.held = BTreeMap::from([("member2".to_string(), 4), ("member3".to_string(), 4)]);
    h.values.insert("member3".into(), Ok(vec![0.001]));
    h.values.insert("member1".into(), Ok(vec![0.5]));
    h.pass(T0);
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert_eq!(
        h.rolled_back,
        [("member1".to_string(), None), ("member3".to_string(), Some(4)), ("member2".to_string(), Some(4))],
        "the last cluster updated goes back first"
    );
    assert!(
        message.starts_with(
            "Verification afterStageTasks[0] (prometheus) failed on cluster member1 in stage canary"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "rolled back: member1 (objects removed: it held no earlier snapshot), member3 to snapshot 4, member2 to snapshot 4"
        ),
        "{message}"
    );
    let previous: Vec<(String, Option<String>)> = h
        .status
        .stages_status
        .iter()
        .flat_map(|s| &s.clusters)
        .map(|c| (c.cluster_name.clone(), c.previous_resource_snapshot_index.clone()))
        .collect();
    assert_eq!(
        previous,
        [
            ("member2".to_string(), Some("4".to_string())),
            ("member3".to_string(), Some("4".to_string())),
            ("member1".to_string(), Some("none".to_string()))
        ]
    );
    let member3 = &h.stage("canary").clusters[0];
    let back = member3.conditions.get_condition("RolledBack").unwrap();
    assert_eq!(
        (back.status.as_str(), back.reason.as_str(), back.message.as_str()),
        ("True", "ClusterRolledBack", "Returned to snapshot 4")
    );
    assert_eq!(h.cond("RolledBack").1, "UpdateRunRolledBack");
    assert_eq!(h.cond("Progressing").1, "UpdateRunRolledBack");
    h.pass(T0 + 3600);
    assert_eq!(h.rolled_back.len(), 3, "a rolled-back run does nothing more");
    assert_eq!(h.updated.len(), 3);
}

/// Every cluster held snapshot 1; the canary is verified with `onFailure:
/// Rollback`, and member3's measurements fail it.
fn failing_canary(first: StageSpec, verification: Value) -> Harness {
    let mut h = Harness::seed();
    h.set_strategy([first, canary().after_verification(verification, Some("Rollback"))]);
    h.held = ["member1", "member2", "member3"].into_iter().map(|m| (m.to_string(), 1)).collect();
    h.values.insert("member3".into(), Ok(vec![0.9]));
    h.values.insert("member1".into(), Ok(vec![0.0]));
    h
}

#[test]
fn a_cluster_whose_rollback_fails_is_reported_and_the_others_still_go_back() {
    let mut h = failing_canary(staging(), check(1, 0, 0));
    h.rollback_failing.insert("member1".into(), "admission webhook denied the request".into());
    h.pass(T0);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert_eq!(
        h.rolled_back.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["member1", "member3", "member2"]
    );
    assert!(
        message.ends_with(
            "rolled back: member3 to snapshot 1, member2 to snapshot 1; not rolled back: member1 (admission webhook denied the request)"
        ),
        "{message}"
    );
    h.pass(T0 + 600);
    assert_eq!(h.rolled_back.len(), 3, "a failed rollback is not retried in a loop");
}

#[test]
fn an_unreachable_cluster_holds_the_rollback_until_its_timeout() {
    let mut h = failing_canary(staging().cluster_timeout("2m"), check(2, 1, 0));
    h.pass(T0);
    assert_eq!(h.updated.len(), 3);
    h.hold.insert("member2".into());
    h.pass(T0 + 30);
    assert_eq!(h.cond("Progressing").1, "UpdateRunRollingBack");
    assert_eq!(h.cond("RolledBack").0, "False");
    assert_eq!(h.cond("Succeeded").0, "", "still rolling back");
    assert_eq!(h.wake_at, Some(T0 + 30 + 120), "woken at member2's clusterTimeout");
    h.pass(T0 + 90);
    assert_eq!(h.rolled_back.iter().filter(|(c, _)| c == "member2").count(), 2, "tried again");
    h.pass(T0 + 150);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert!(
        message.ends_with(
            "rolled back: member1 to snapshot 1, member3 to snapshot 1; not rolled back: member2 (the rollback did not complete within the clusterTimeout of 2m0s: unreachable)"
        ),
        "{message}"
    );
}

#[test]
fn a_before_stage_verification_gates_the_stage() {
    let mut h = Harness::seed();
    let gate = json!({
        "provider": {"web": {"url": "http://127.0.0.1:8080/health?stage=${STAGE}", "jsonPath": "{$.ok}"}},
        "successCondition": "result == 1",
        "interval": "1m",
        "count": 2,
    });
    h.set_strategy([staging(), canary().before_verification(gate)]);
    h.values.insert(String::new(), Ok(vec![1.0]));
    h.pass(T0);
    assert_eq!(h.updated, ["member2"], "canary waits for its before-stage verification");
    assert_eq!(h.measured.len(), 1);
    let Query::Web { url, .. } = &h.measured[0].1 else { panic!("{:?}", h.measured) };
    assert_eq!(url, "http://127.0.0.1:8080/health?stage=canary");
    assert_eq!(h.measured[0].0, None, "one measurement for the stage, not per cluster");
    assert_eq!(
        h.cond("Progressing").2,
        "The updateRun is waiting for before-stage tasks in stage canary to complete"
    );
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
    assert_eq!(h.cond("Succeeded").1, "UpdateRunSucceeded");
}

#[test]
fn a_cluster_that_failed_within_max_failures_is_not_measured() {
    let mut h = Harness::seed();
    h.set_strategy([staging(), canary().max_failures(1).after_verification(check(1, 0, 0), None)]);
    h.failing.insert("member1".into(), "admission webhook denied the request".into());
    h.values.insert("member3".into(), Ok(vec![0.0]));
    h.pass(T0);
    let measured: Vec<Option<String>> = h.measured.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(measured, [Some("member3".to_string())]);
    let (status, _, message) = h.cond("Succeeded");
    assert_eq!(status, "True");
    assert!(message.contains("failed within maxFailures: member1 (canary)"), "{message}");
}

/// A rollback held up by an unreachable cluster: `state: Stop` pauses it, a
/// newer run ends it, leaving the clusters not rolled back yet to that run.
#[test]
fn stop_pauses_a_rollback_and_a_newer_run_ends_it() {
    let mut h = failing_canary(staging(), check(1, 0, 0));
    h.pass(T0);
    assert_eq!(h.cond("Succeeded").1, "UpdateRunRolledBack", "all in one pass when every cluster answers");

    // Now with member3's rollback pending.
    let mut h = failing_canary(staging(), check(2, 1, 0));
    h.pass(T0);
    h.hold.insert("member3".into());
    h.pass(T0 + 30);
    assert_eq!(h.cond("Progressing").1, "UpdateRunRollingBack");
    h.fleet.runs.get_mut("example-run").unwrap().state = RunState::Stop;
    let before = h.rolled_back.len();
    h.pass(T0 + 60);
    assert_eq!(h.rolled_back.len(), before, "stopped: nothing is rolled back");
    assert_eq!(h.cond("Progressing").1, "UpdateRunStopped");
    assert_eq!(h.cond("Succeeded").0, "");
    h.fleet.runs.get_mut("example-run").unwrap().state = RunState::Run;
    h.pass(T0 + 61);
    assert_eq!(h.rolled_back.len(), before + 1, "resumed: member3 is tried again");
    assert_eq!(h.cond("Progressing").1, "UpdateRunRollingBack");
    h.superseded_by = Some("example-run-2".into());
    h.pass(T0 + 62);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert!(
        message.ends_with(
            "rolled back: member1 to snapshot 1; not rolled back: member3 (the newer update run example-run-2 took over before it was rolled back), member2 (the newer update run example-run-2 took over before it was rolled back)"
        ),
        "{message}"
    );
}

#[test]
fn after_a_forced_soak_a_straggler_is_measured_once_it_is_done() {
    let mut h = Harness::seed();
    h.set_strategy([
        staging(),
        canary().max_duration("1m").after_verification(check(1, 0, 0), None),
        StageSpec::rest("rest"),
    ]);
    h.values.insert("member3".into(), Ok(vec![0.0]));
    h.values.insert("member1".into(), Ok(vec![0.0]));
    h.hold.insert("member1".into());
    h.pass(T0);
    h.pass(T0 + 60);
    let measured: Vec<Option<String>> = h.measured.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(measured, [Some("member3".to_string())], "member1 still updates: not measured yet");
    assert!(!h.stage("canary").conditions.is_true("Succeeded"), "the verification waits for member1");
    h.hold.clear();
    h.pass(T0 + 90);
    let measured: Vec<Option<String>> = h.measured.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(measured, [Some("member3".to_string()), Some("member1".to_string())]);
    assert!(h.stage("canary").conditions.is_true("Succeeded"));
}
