//! Verification tasks against real parts, with local-store clusters: a
//! Prometheus built from its Go modules scrapes an application whose error
//! ratio per cluster the test sets (tests/common/metrics.rs); the web provider
//! reads the same ratios as JSON. A healthy canary passes and the run goes on;
//! a failing one rolls the run's clusters back while production is never
//! touched; Prometheus going down gives inconclusive measurements; a restart
//! continues the count; an automatic run is not started again for a snapshot
//! that was rolled back.

mod common;

use common::metrics::{App, Prometheus};
use common::{Fleet, test_namespace};
use gitfleet::cli::{RunArgs, reconciler};
use gitfleet::reconcile::Reconciler;
use gitfleet::status::run::RunDocument;

const T0: i64 = 1_900_000_000;
const MEMBERS: [&str; 4] = ["member1", "member2", "member3", "member4"];

/// A Prometheus verification of the canary clusters, as the README shows it.
fn prometheus_check(on_failure: &str, inconclusive_limit: u32) -> String {
    format!(
        "    - type: Verification
      onFailure: {on_failure}
      verification:
        provider:
          prometheus:
            query: app_error_ratio{{cluster=\"${{MEMBER-CLUSTER-NAME}}\"}}
        successCondition: result < 0.05
        interval: 10s
        count: 3
        failureLimit: 0
        inconclusiveLimit: {inconclusive_limit}
        perCluster: true
"
    )
}

/// The same through the web provider, reading the app's JSON.
fn web_check(app: &App) -> String {
    format!(
        "    - type: Verification
      onFailure: Rollback
      verification:
        provider:
          web:
            url: {}/${{MEMBER-CLUSTER-NAME}}
            jsonPath: '{{$.data.errorRate}}'
        successCondition: result < 0.05
        interval: 10s
        count: 2
        inconclusiveLimit: 0
        perCluster: true
",
        app.url("/rate")
    )
}

/// staging (member2), canary (member3 then member1, verified), production (member4).
fn strategy(name: &str, canary_tasks: &str) -> String {
    let tasks =
        if canary_tasks.is_empty() { String::new() } else { format!("    afterStageTasks:\n{canary_tasks}") };
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata:
  name: {name}
spec:
  stages:
  - name: staging
    labelSelector: {{matchLabels: {{environment: staging}}}}
  - name: canary
    labelSelector: {{matchLabels: {{environment: canary}}}}
    sortingLabelKey: order
    maxConcurrency: 2
{tasks}  - name: production
    labelSelector: {{matchLabels: {{environment: production}}}}
"
    )
}

fn run_file(name: &str, index: u32, strategy: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: {strategy}\n"
    )
}

/// The example fleet plus member4 in production, every member at value1
/// (snapshot 0) through a run without verification.
fn fleet(verified: &str, r: impl FnOnce(&Fleet) -> Reconciler) -> (Fleet, Reconciler) {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.remove("placements/crp-with-envelope.yaml");
    f.write(
        "clusters/member4.yaml",
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: member4\n  labels:\n    environment: production\n",
    );
    f.write("strategies/plain.yaml", &strategy("plain", ""));
    f.write("strategies/verified.yaml", &strategy("verified", verified));
    f.write("runs/first.yaml", &run_file("first", 0, "plain"));
    f.commit_all("value1 everywhere");
    let mut r = r(&f);
    let out = r.pass(T0).unwrap();
    assert!(out.message.contains("first succeeded"), "{}", out.message);
    (f, r)
}

fn args(f: &Fleet, prometheus: Option<&Prometheus>) -> RunArgs {
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.prometheus_url = prometheus.map(Prometheus::url);
    args
}

/// Pushes a new value (the next snapshot) and, if named, a run of it.
fn push(f: &Fleet, value: &str, run: Option<(&str, u32)>) {
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace(value));
    if let Some((name, index)) = run {
        f.write(&format!("runs/{name}.yaml"), &run_file(name, index, "verified"));
    }
    f.commit_all(value);
}

/// The value of test-cm on each member.
fn values(f: &Fleet) -> Vec<String> {
    common::test_cm_values(f, &MEMBERS)
}

fn run_doc(f: &Fleet, name: &str) -> RunDocument {
    let text = f.origin_file(&format!("status/clusterstagedupdateruns/{name}.yaml")).unwrap();
    gitfleet::status::read_file(&text, name).unwrap()
}

/// (Succeeded status, reason, message) of a run.
fn outcome(f: &Fleet, name: &str) -> (String, String, String) {
    let c = common::condition(&run_doc(f, name).status.conditions, "Succeeded");
    (c.status, c.reason, c.message)
}

/// The canary verification's measurements: (cluster, phase, value or message).
fn measurements(f: &Fleet, run: &str) -> Vec<(String, String, String)> {
    let doc = run_doc(f, run);
    let canary = doc.status.stages_status.iter().find(|s| s.stage_name == "canary").unwrap();
    canary.after_stage_task_status[0]
        .measurements
        .iter()
        .map(|m| {
            let shown = m.value.clone().or_else(|| m.message.clone()).unwrap_or_default();
            (m.cluster.clone().unwrap_or_default(), m.phase.clone(), shown)
        })
        .collect()
}

fn v(values: [&str; 4]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_healthy_canary_passes_and_a_failing_one_is_rolled_back_with_prometheus() {
    let Some((app, prom)) =
        Prometheus::scraping(&[("member1", 0.001), ("member3", 0.002), ("member5", 0.001)])
    else {
        return;
    };
    let (f, mut r) = fleet(&prometheus_check("Rollback", 1), |f| reconciler(&args(f, Some(&prom))).unwrap());
    assert_eq!(values(&f), v(["value1"; 4]));

    // A healthy canary: three measurements per cluster, then production.
    push(&f, "value2", Some(("second", 1)));
    r.pass(T0 + 100).unwrap();
    assert_eq!(
        values(&f),
        v(["value2", "value2", "value2", "value1"]),
        "production waits for the verification"
    );
    assert_eq!(
        measurements(&f, "second"),
        [
            ("member3".to_string(), "Successful".to_string(), "0.002".to_string()),
            ("member1".to_string(), "Successful".to_string(), "0.001".to_string())
        ]
    );
    let shown = common::stdout(&common::gitfleet(&["get", "csur", "second", "--repo", f.origin_str()]));
    assert!(shown.contains("stage canary: verifying (2 measurement(s) so far)"), "{shown}");
    assert!(
        shown.contains("stage canary: afterStageTasks[0] Verification: measuring (2 measurement(s) so far)"),
        "{shown}"
    );
    r.pass(T0 + 110).unwrap();
    let out = r.pass(T0 + 120).unwrap();
    assert!(out.message.contains("second succeeded"), "{}", out.message);
    assert_eq!(values(&f), v(["value2"; 4]));
    assert_eq!(measurements(&f, "second").len(), 6);
    let doc = run_doc(&f, "second");
    let task = &doc.status.stages_status[1].after_stage_task_status[0];
    assert!(task.conditions.iter().any(|c| c.reason == "StageTaskVerificationSucceeded"), "{task:?}");

    // member5 joins the canary stage; the error rate of member1 rises: the
    // next snapshot's canary fails and every cluster the run updated goes
    // back to value2, except member5, which held nothing of the placement.
    f.pull();
    f.write(
        "clusters/member5.yaml",
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: member5\n  labels:\n    environment: canary\n    order: \"3\"\n",
    );
    f.commit_all("member5 joins");
    app.set("member1", Some(0.3));
    prom.wait_for("member1", 0.3);
    push(&f, "value3", Some(("third", 2)));
    let out = r.pass(T0 + 200).unwrap();
    assert_eq!(values(&f), v(["value2"; 4]), "canary and staging back to snapshot 1");
    let member5 = f.state_dir().join("clusters/member5/test-namespace/configmap/test-cm.yaml");
    assert!(!member5.exists(), "member5 held no earlier snapshot: the placement's objects are removed");
    let (status, reason, message) = outcome(&f, "third");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert!(
        message.starts_with(
            "Verification afterStageTasks[0] (prometheus) failed on cluster member1 in stage canary: 1 measurement(s) failed `result < 0.05`, more than failureLimit 0; last values: 0.3"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "rolled back: member5 (objects removed: it held no earlier snapshot), member1 to snapshot 1, member3 to snapshot 1, member2 to snapshot 1"
        ),
        "{message}"
    );
    assert!(
        out.message.contains(
            "third rolled back member5 (objects removed), member1 to snapshot 1, member3 to snapshot 1, member2 to snapshot 1"
        ),
        "the status commit says which clusters went back where: {}",
        out.message
    );
    assert!(out.message.contains("third was rolled back"), "{}", out.message);
    let doc = run_doc(&f, "third");
    let production = doc.status.stages_status.iter().find(|s| s.stage_name == "production").unwrap();
    assert!(production.clusters[0].conditions.is_empty(), "production is never touched: {production:?}");
    let previous: Vec<Option<String>> = doc
        .status
        .stages_status
        .iter()
        .flat_map(|s| &s.clusters)
        .map(|c| c.previous_resource_snapshot_index.clone())
        .collect();
    assert_eq!(previous, [Some("1".into()), Some("1".into()), Some("1".into()), Some("none".into()), None]);
    let placement = common::placement_document(&f, "example-placement");
    let observed: Vec<Option<String>> =
        placement.status.placement_statuses.iter().map(|s| s.observed_resource_index.clone()).collect();
    assert_eq!(
        observed,
        [Some("1"), Some("1"), Some("1"), Some("1"), None].map(|o| o.map(str::to_string)),
        "the placement shows the clusters back at snapshot 1, member5 with nothing"
    );
    let shown = common::stdout(&common::gitfleet(&["get", "csur", "third", "--repo", f.origin_str()]));
    let lines: Vec<Vec<&str>> = shown.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["2030-03-17T17:50:00Z", "member1", "Failed", "0.3"]), "{shown}");
    assert!(
        lines.contains(&vec!["member1", "canary", "1", "True", "Returned", "to", "snapshot", "1"]),
        "{shown}"
    );
    assert!(
        shown.contains("stage canary: afterStageTasks[0] Verification: Verification afterStageTasks[0] (prometheus) failed on cluster member1"),
        "{shown}"
    );
    // Nothing more happens: the rollback is not repeated, the run not restarted.
    let out = r.pass(T0 + 400).unwrap();
    assert!(!out.message.contains("third"), "{}", out.message);
    assert_eq!(values(&f), v(["value2"; 4]));
}

#[test]
fn prometheus_going_down_gives_inconclusive_measurements_then_the_configured_outcome() {
    let Some((_app, prom)) = Prometheus::scraping(&[("member1", 0.0), ("member3", 0.0)]) else { return };
    let (f, mut r) = fleet(&prometheus_check("Fail", 1), |f| reconciler(&args(f, Some(&prom))).unwrap());
    push(&f, "value2", Some(("second", 1)));
    r.pass(T0 + 100).unwrap();
    prom.stop();
    r.pass(T0 + 110).unwrap();
    assert_eq!(outcome(&f, "second").0, "", "one inconclusive measurement per cluster is within the limit");
    r.pass(T0 + 120).unwrap();
    let (status, reason, message) = outcome(&f, "second");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert!(
        message.contains("failed on cluster member3 in stage canary: 2 measurement(s) were inconclusive, more than inconclusiveLimit 1"),
        "{message}"
    );
    assert!(message.contains("Connection refused") || message.contains("connection refused"), "{message}");
    let phases: Vec<String> = measurements(&f, "second").into_iter().map(|(_, p, _)| p).collect();
    assert_eq!(phases, ["Successful", "Successful", "Inconclusive", "Inconclusive", "Inconclusive"]);
    assert_eq!(
        values(&f),
        v(["value2", "value2", "value2", "value1"]),
        "Fail: no rollback, production untouched"
    );
}

#[test]
fn a_restart_in_the_middle_of_a_verification_continues_its_count() {
    let Some((_app, prom)) = Prometheus::scraping(&[("member1", 0.01), ("member3", 0.01)]) else { return };
    let (f, mut r) = fleet(&prometheus_check("Rollback", 0), |f| reconciler(&args(f, Some(&prom))).unwrap());
    push(&f, "value2", Some(("second", 1)));
    r.pass(T0 + 100).unwrap();
    r.pass(T0 + 110).unwrap();
    assert_eq!(measurements(&f, "second").len(), 4);
    drop(r);
    // A new process, reading only what is in Git and the state folder.
    let mut r = reconciler(&args(&f, Some(&prom))).unwrap();
    let out = r.pass(T0 + 115).unwrap();
    assert!(out.commit.is_none(), "the third measurement is due at T0+120: {}", out.message);
    let out = r.pass(T0 + 120).unwrap();
    assert!(out.message.contains("second succeeded"), "{}", out.message);
    assert_eq!(measurements(&f, "second").len(), 6, "three per cluster in all");
    assert_eq!(values(&f), v(["value2"; 4]));
}

#[test]
fn the_web_provider_and_an_automatic_run_that_is_not_started_again_after_its_rollback() {
    let app = App::start(&[("member1", 0.0), ("member3", 0.0)]);
    let (f, mut r) = fleet(&web_check(&app), |f| reconciler(&args(f, None)).unwrap());
    f.pull();
    common::auto_run(&f, "verified");
    f.commit_all("roll out every new snapshot");

    // Snapshot 1 goes out by itself and passes.
    push(&f, "value2", None);
    r.pass(T0 + 100).unwrap();
    let out = r.pass(T0 + 110).unwrap();
    assert!(out.message.contains("example-placement-1 succeeded"), "{}", out.message);
    assert_eq!(values(&f), v(["value2"; 4]));
    assert_eq!(
        measurements(&f, "example-placement-1")[0],
        ("member3".to_string(), "Successful".to_string(), "0".to_string())
    );

    // member3's endpoint breaks: the inconclusive measurement is beyond
    // inconclusiveLimit 0, and the automatic run rolls back.
    app.set("member3", None);
    push(&f, "value3", None);
    r.pass(T0 + 200).unwrap();
    let (_, reason, message) = outcome(&f, "example-placement-2");
    assert_eq!(reason, "UpdateRunRolledBack", "{message}");
    assert!(
        message.contains(&format!(
            "failed on cluster member3 in stage canary: 1 measurement(s) were inconclusive, more than inconclusiveLimit 0; last values: {}/member3 answered 500 Internal Server Error: broken",
            app.url("/rate")
        )),
        "{message}"
    );
    assert_eq!(values(&f), v(["value2"; 4]));
    // The rolled-back snapshot is not rolled out again.
    for t in [300, 400] {
        let out = r.pass(T0 + t).unwrap();
        assert!(!out.message.contains("updated"), "{}", out.message);
    }
    assert_eq!(values(&f), v(["value2"; 4]));
    let runs = common::git(&f.origin, &["ls-tree", "--name-only", "main", "status/clusterstagedupdateruns/"]);
    assert!(!runs.contains("example-placement-3"), "{runs}");

    // The next new snapshot starts an automatic run as usual.
    app.set("member3", Some(0.0));
    push(&f, "value4", None);
    r.pass(T0 + 500).unwrap();
    let out = r.pass(T0 + 510).unwrap();
    assert!(out.message.contains("example-placement-3 succeeded"), "{}", out.message);
    assert_eq!(values(&f), v(["value4"; 4]));
}

#[test]
fn without_a_prometheus_url_the_measurement_says_so_and_the_run_fails() {
    let (f, mut r) = fleet(&prometheus_check("Fail", 0), |f| reconciler(&args(f, None)).unwrap());
    push(&f, "value2", Some(("second", 1)));
    r.pass(T0 + 100).unwrap();
    let (status, reason, message) = outcome(&f, "second");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert!(
        message.ends_with(
            "more than inconclusiveLimit 0; last values: no Prometheus server is configured (gitfleet run --prometheus-url)"
        ),
        "{message}"
    );
}

#[test]
fn validate_names_the_file_object_and_field_of_a_bad_verification() {
    let f = Fleet::example();
    let bad = strategy("bad", &prometheus_check("Retry", 7).replace("result < 0.05", "result < low"));
    f.write("strategies/bad.yaml", &bad);
    let out = common::gitfleet(&["validate", f.work.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let text = common::stdout(&out) + &common::stderr(&out);
    for expected in [
        "strategies/bad.yaml:1: ClusterStagedUpdateStrategy/bad: spec.stages[1].afterStageTasks[0].onFailure: \"Retry\" is not Fail or Rollback",
        "strategies/bad.yaml:1: ClusterStagedUpdateStrategy/bad: spec.stages[1].afterStageTasks[0].verification.successCondition: expected a number after `result <`, found \"low\" in \"result < low\"",
        "strategies/bad.yaml:1: ClusterStagedUpdateStrategy/bad: spec.stages[1].afterStageTasks[0].verification.inconclusiveLimit: 7 is out of range (0 to 2)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
