//! Engine tests with a controlled clock: the seed walkthrough and the KubeFleet cases.

use std::collections::{BTreeMap, BTreeSet};

use super::fixtures::{StageSpec, WindowSpec, strategy};
use super::*;
use crate::repo::model::SnapshotTarget;
use crate::repo::{Fleet, Loaded, load_dir};
use crate::status::conditions::Conditions;
use crate::status::run::{RunStatus, StageStatus};
use crate::time::Time;

const T0: i64 = 1_753_219_688; // 2025-07-22T21:28:08Z, as in the seed

fn example() -> Fleet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    let loaded: Loaded = load_dir(&dir).unwrap();
    let fleet = loaded.fleet();
    assert!(fleet.issues.is_empty(), "{:?}", fleet.issues);
    fleet
}

/// A test harness: a fleet, a run, approvals, and what the backend did.
struct Harness {
    fleet: Fleet,
    run: String,
    approved: BTreeSet<String>,
    failing: BTreeMap<String, String>,
    superseded_by: Option<String>,
    status: RunStatus,
    /// Cluster updates in the order they were applied.
    updated: Vec<String>,
    cleaned: Vec<String>,
    requests: Vec<String>,
    cleanup: Vec<String>,
    wake_at: Option<i64>,
    hold: BTreeSet<String>,
    windows: Vec<crate::repo::window::RolloutWindow>,
    /// The snapshot each cluster holds before the run.
    held: BTreeMap<String, u32>,
    /// What a measurement of a cluster (or, for a task over the stage, of
    /// `""`) answers.
    values: BTreeMap<String, crate::verify::Sampled>,
    /// Measurements taken: (cluster, the query as resolved).
    measured: Vec<(Option<String>, crate::verify::Query)>,
    /// Rollbacks done: (cluster, to).
    rolled_back: Vec<(String, Option<u32>)>,
    /// Clusters whose rollback fails, and why.
    rollback_failing: BTreeMap<String, String>,
}

impl Harness {
    fn new(fleet: Fleet) -> Self {
        Harness {
            fleet,
            run: "example-run".into(),
            approved: BTreeSet::new(),
            failing: BTreeMap::new(),
            superseded_by: None,
            status: RunStatus::default(),
            updated: vec![],
            cleaned: vec![],
            requests: vec![],
            cleanup: vec![],
            wake_at: None,
            hold: BTreeSet::new(),
            windows: vec![],
            held: BTreeMap::new(),
            values: BTreeMap::new(),
            measured: vec![],
            rolled_back: vec![],
            rollback_failing: BTreeMap::new(),
        }
    }

    fn seed() -> Self {
        Harness::new(example())
    }

    /// One reconcile pass at `now`: the same driver as the reconciler's,
    /// with this harness's clusters answering.
    fn pass(&mut self, now: i64) {
        let run = self.fleet.runs[&self.run].clone();
        let placement = self.fleet.placements.get(&run.placement);
        let scheduled: Vec<String> = placement
            .map(|p| crate::schedule::schedule(p, &self.fleet.clusters).clusters)
            .unwrap_or_default();
        let resource_index = match run.target {
            SnapshotTarget::Index(i) => Ok(i),
            _ => Ok(0),
        };
        let input = RunInput {
            run: &run,
            generation: 1,
            placement,
            strategy: self.fleet.strategies.get(&run.strategy),
            clusters: &self.fleet.clusters,
            scheduled: &scheduled,
            policy_index: 0,
            resource_index,
            cleanup: self.cleanup.clone(),
            approved: &self.approved,
            observations: BTreeMap::new(),
            measured: BTreeMap::new(),
            held: &self.held,
            superseded_by: self.superseded_by.as_deref(),
            windows: &self.windows,
            now: Time::from_second(now),
        };
        let (hold, failing) = (&self.hold, &self.failing);
        let (updated, cleaned, requests) = (&mut self.updated, &mut self.cleaned, &mut self.requests);
        let (values, measured, rolled_back) = (&self.values, &mut self.measured, &mut self.rolled_back);
        let rollback_failing = &self.rollback_failing;
        let out = drive(input, &self.status, |_, action| match action {
            Action::UpdateCluster { cluster } if hold.contains(cluster) => {
                Some(Observation::Pending("held".into()).into())
            }
            Action::UpdateCluster { cluster } => {
                updated.push(cluster.clone());
                Some(
                    failing
                        .get(cluster)
                        .map_or(Observation::Succeeded, |e| Observation::Failed(e.clone()))
                        .into(),
                )
            }
            Action::CleanupCluster { cluster } => {
                cleaned.push(cluster.clone());
                let held = hold.contains(cluster);
                Some(
                    if held { Observation::Pending("unreachable".into()) } else { Observation::Succeeded }
                        .into(),
                )
            }
            Action::RequestApproval { name, .. } => {
                requests.push(name.clone());
                None
            }
            Action::Measure { key, query } => {
                measured.push((key.cluster.clone(), query.clone()));
                let value = values.get(key.cluster.as_deref().unwrap_or_default());
                Some(Answer::Measured(value.cloned().unwrap_or(Err("no value set".into()))))
            }
            Action::RollbackCluster { cluster, to } => {
                rolled_back.push((cluster.clone(), *to));
                if hold.contains(cluster) {
                    return Some(Observation::Pending("unreachable".into()).into());
                }
                Some(
                    rollback_failing
                        .get(cluster)
                        .map_or(Observation::Succeeded, |e| Observation::Failed(e.clone()))
                        .into(),
                )
            }
        });
        self.status = out.status;
        self.wake_at = out.wake.time().map(Time::as_second);
    }

    fn cond(&self, t: &str) -> (String, String, String) {
        let c = self.status.conditions.get_condition(t).cloned().unwrap_or_default();
        (c.status, c.reason, c.message)
    }

    fn stage(&self, name: &str) -> &StageStatus {
        self.status.stages_status.iter().find(|s| s.stage_name == name).unwrap()
    }

    fn set_strategy(&mut self, stages: impl IntoIterator<Item = StageSpec>) {
        self.fleet.strategies.insert("example-strategy".into(), strategy("example-strategy", stages));
    }

    fn add_cluster(&mut self, name: &str, labels: &[(&str, &str)]) {
        let mut c = self.fleet.clusters["member1"].clone();
        c.name = name.into();
        c.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.fleet.clusters.insert(name.into(), c);
    }
}

#[path = "verification_tests.rs"]
mod verification;

#[test]
fn seed_walkthrough_sequence() {
    let mut h = Harness::seed();
    h.pass(T0);
    assert_eq!(
        h.cond("Initialized"),
        (
            "True".into(),
            "UpdateRunInitializedSuccessfully".into(),
            "ClusterStagedUpdateRun initialized successfully".into()
        )
    );
    assert_eq!(h.updated, ["member2"], "staging first");
    assert_eq!(
        h.cond("Progressing"),
        (
            "False".into(),
            "UpdateRunWaiting".into(),
            "The updateRun is waiting for after-stage tasks in stage staging to complete".into()
        )
    );
    assert_eq!(h.wake_at, Some(T0 + 60), "the 1m wait counts from member2's success");
    assert_eq!(h.status.policy_observed_cluster_count, Some(3));
    assert_eq!(h.status.resource_snapshot_index_used.as_deref(), Some("0"));
    assert_eq!(h.status.policy_snapshot_index_used.as_deref(), Some("0"));
    let snapshot = h.status.staged_update_strategy_snapshot.clone().unwrap();
    assert_eq!(snapshot["stages"][0]["afterStageTasks"][0]["waitTime"], "1m0s");

    h.pass(T0 + 59);
    assert_eq!(h.updated, ["member2"], "nothing before the wait elapsed");

    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member3", "member1"], "canary by sortingLabelKey order");
    assert_eq!(h.requests, ["example-run-canary"]);
    let staging = h.stage("staging");
    assert_eq!(staging.conditions.get_condition("Succeeded").unwrap().reason, "StageUpdatingSucceeded");
    assert_eq!(staging.end_time.map(|t| t.to_string()).as_deref(), Some("2025-07-22T21:29:08Z"));
    let wait = &staging.after_stage_task_status[0].conditions[0];
    assert_eq!(
        (wait.type_.as_str(), wait.reason.as_str(), wait.message.as_str()),
        ("WaitTimeElapsed", "AfterStageTaskWaitTimeElapsed", "Wait time elapsed")
    );
    let canary = h.stage("canary");
    assert_eq!(
        canary.after_stage_task_status[0].approval_request_name.as_deref(),
        Some("example-run-canary")
    );
    assert_eq!(canary.conditions.get_condition("Progressing").unwrap().reason, "StageUpdatingWaiting");
    assert_eq!(
        h.cond("Progressing").2,
        "The updateRun is waiting for after-stage tasks in stage canary to complete"
    );
    assert_eq!(h.cond("Succeeded").0, "");

    h.pass(T0 + 90);
    assert_eq!(h.requests.len(), 1, "the request is created once");
    h.approved.insert("example-run-canary".into());
    h.pass(T0 + 120);
    assert_eq!(
        h.cond("Succeeded"),
        ("True".into(), "UpdateRunSucceeded".into(), "All stages are completed successfully".into())
    );
    assert_eq!(h.cond("Progressing").1, "UpdateRunSucceeded");
    assert_eq!(h.updated.len(), 3, "no cluster updated twice");
    let approved = &h.stage("canary").after_stage_task_status[0].conditions;
    assert!(approved.is_true("ApprovalRequestApproved"));
}

#[test]
fn cluster_in_no_stage_fails_initialization() {
    let mut h = Harness::seed();
    h.add_cluster("member4", &[("environment", "prod")]);
    h.pass(T0);
    let (status, reason, message) = h.cond("Initialized");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunInitializedFailed"));
    assert_eq!(message, "scheduled clusters are not selected by any stage: member4");
    assert!(h.updated.is_empty());
}

#[test]
fn cluster_in_two_stages_fails_initialization() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all"), StageSpec::matching("canary", "environment", "canary")]);
    h.pass(T0);
    assert_eq!(h.cond("Initialized").2, "cluster member1 is selected by more than one stage: all and canary");
}

#[test]
fn missing_or_non_integer_sorting_label_fails_initialization() {
    let mut h = Harness::seed();
    h.fleet.clusters.get_mut("member3").unwrap().labels.remove("order");
    h.pass(T0);
    assert_eq!(
        h.cond("Initialized").2,
        "cluster member3 in stage canary has no label order (the stage's sortingLabelKey)"
    );
    let mut h = Harness::seed();
    h.fleet.clusters.get_mut("member1").unwrap().labels.insert("order".into(), "two".into());
    h.pass(T0);
    assert!(h.cond("Initialized").2.contains("order=two, which is not an integer"));
}

#[test]
fn catch_all_last_stage_takes_the_rest() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::matching("staging", "environment", "staging"), StageSpec::rest("rest")]);
    h.pass(T0);
    assert_eq!(h.updated, ["member2", "member1", "member3"]);
    assert_eq!(h.cond("Succeeded").1, "UpdateRunSucceeded");
}

#[test]
fn empty_stage_is_skipped_without_its_tasks() {
    let mut h = Harness::seed();
    h.set_strategy([
        StageSpec::matching("prod", "environment", "prod").after_approval(),
        StageSpec::rest("rest"),
    ]);
    h.pass(T0);
    let prod = h.stage("prod");
    assert_eq!(prod.conditions.get_condition("Succeeded").unwrap().reason, "StageUpdatingSkippedNoClusters");
    assert!(h.requests.is_empty(), "no approval for an empty stage");
    assert_eq!(h.cond("Succeeded").0, "True");
}

#[test]
fn max_concurrency_updates_clusters_in_parallel() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all").max_concurrency(2)]);
    h.hold.insert("member1".into());
    h.hold.insert("member2".into());
    h.pass(T0);
    let started: Vec<&str> = h
        .stage("all")
        .clusters
        .iter()
        .filter(|c| c.conditions.is_true("Started"))
        .map(|c| c.cluster_name.as_str())
        .collect();
    assert_eq!(started, ["member1", "member2"], "two at a time, member3 waits");
}

#[test]
fn before_stage_approval_gates_the_stage() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all").before_approval()]);
    h.pass(T0);
    assert!(h.updated.is_empty());
    assert_eq!(h.requests, ["example-run-before-all"]);
    assert_eq!(
        h.cond("Progressing").2,
        "The updateRun is waiting for before-stage tasks in stage all to complete"
    );
    h.approved.insert("example-run-before-all".into());
    h.pass(T0 + 5);
    assert_eq!(h.updated.len(), 3);
}

#[test]
fn stop_then_run_resumes_without_restarting_clusters() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.fleet.runs.get_mut("example-run").unwrap().state = crate::repo::model::RunState::Stop;
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2"], "a stopped run starts no cluster");
    assert_eq!(
        h.cond("Progressing"),
        ("False".into(), "UpdateRunStopped".into(), "The update run has been stopped".into())
    );
    h.fleet.runs.get_mut("example-run").unwrap().state = crate::repo::model::RunState::Run;
    h.pass(T0 + 61);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
}

#[test]
fn superseded_run_starts_nothing_more() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.superseded_by = Some("example-run-2".into());
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2"]);
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunSuperseded"));
    assert!(message.contains("example-run-2"));
}

#[test]
fn failed_cluster_fails_the_run_naming_it() {
    let mut h = Harness::seed();
    h.failing.insert("member3".into(), "Failed to apply manifest: namespaces \"app\" not found".into());
    h.pass(T0);
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member3"], "member1 is not started after member3 failed");
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert!(message.contains("cluster member3 failed in stage canary"), "{message}");
    assert_eq!(
        h.stage("canary").conditions.get_condition("Succeeded").unwrap().reason,
        "StageUpdatingFailed"
    );
}

#[test]
fn cluster_timeout_fails_the_run() {
    let mut h = Harness::seed();
    h.hold.insert("member2".into());
    h.pass(T0);
    assert_eq!(h.wake_at, Some(T0 + 600), "wakes when the default 10m clusterTimeout is due");
    h.pass(T0 + 600);
    assert!(
        h.cond("Succeeded").2.contains("did not complete within the clusterTimeout of 10m0s"),
        "{:?}",
        h.cond("Succeeded")
    );
}

#[test]
fn strategy_edited_mid_run_has_no_effect() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.set_strategy([StageSpec::all("everything")]);
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
    assert_eq!(h.requests, ["example-run-canary"], "the snapshot's approval gate still holds");
}

#[test]
fn deletion_stage_cleans_unscheduled_clusters() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all")]);
    h.cleanup = vec!["old-member".into()];
    h.pass(T0);
    assert_eq!(h.cleaned, ["old-member"]);
    let del = h.status.deletion_stage_status.as_ref().unwrap();
    assert_eq!(del.stage_name, "kubernetes-fleet.io/deleteStage");
    assert!(del.clusters[0].conditions.is_true("Succeeded"));
    assert_eq!(h.cond("Succeeded").0, "True");
}

#[test]
fn unreachable_cleanup_is_retried_in_a_later_pass_not_in_a_loop() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all")]);
    h.cleanup = vec!["old-member".into()];
    h.hold.insert("old-member".into());
    h.pass(T0);
    assert_eq!(h.cleaned, ["old-member"], "tried once in this pass");
    assert!(!h.status.finished());
    h.hold.clear();
    h.pass(T0 + 10);
    assert_eq!(h.cleaned, ["old-member", "old-member"]);
    assert_eq!(h.cond("Succeeded").0, "True");
}

#[test]
fn restart_continues_from_status() {
    let mut h = Harness::seed();
    h.pass(T0);
    // A new process: only the status (as written to Git and read back) survives.
    let yaml = crate::yaml::to_string(&h.status);
    let mut h2 = Harness::seed();
    h2.status = crate::yaml::parse_typed(yaml.as_bytes()).unwrap();
    h2.pass(T0 + 60);
    assert_eq!(h2.updated, ["member3", "member1"], "staging is not redone");
    assert_eq!(h2.requests, ["example-run-canary"]);
}

#[test]
fn run_on_a_rolling_update_placement_fails_initialization() {
    let mut h = Harness::seed();
    h.fleet.placements.get_mut("example-placement").unwrap().rollout =
        crate::repo::model::RolloutType::RollingUpdate {
            max_unavailable: crate::repo::model::IntOrPercent::Percent(25),
        };
    h.pass(T0);
    assert_eq!(
        h.cond("Initialized").2,
        "parent placement example-placement does not have an External rollout strategy"
    );
}

#[test]
fn placement_deleted_mid_run_fails_the_run() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.fleet.placements.remove("example-placement");
    h.pass(T0 + 60);
    assert_eq!(
        h.cond("Succeeded"),
        ("False".into(), "UpdateRunFailed".into(), "parent placement example-placement not found".into())
    );
    assert_eq!(h.updated, ["member2"]);
}

/// Regression: a status file edited by hand (a task removed) used to index out of bounds.
#[test]
fn status_that_no_longer_matches_its_snapshot_fails_the_run() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.status.stages_status[0].after_stage_task_status.clear();
    h.pass(T0 + 60);
    assert_eq!(
        h.cond("Succeeded").2,
        "the tasks of stage staging in the status do not match the strategy snapshot"
    );
}

fn five_canaries(h: &mut Harness) {
    for (name, order) in [("member4", "3"), ("member5", "4"), ("member6", "5")] {
        h.add_cluster(name, &[("environment", "canary"), ("order", order)]);
    }
}

#[test]
fn max_failures_integer_at_the_limit_lets_the_run_finish() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all").max_failures(1)]);
    h.failing.insert("member2".into(), "boom".into());
    h.pass(T0);
    assert_eq!(h.updated, ["member1", "member2", "member3"], "the failure does not stop the stage");
    let (status, _, message) = h.cond("Succeeded");
    assert_eq!(status, "True");
    assert_eq!(message, "All stages are completed successfully; failed within maxFailures: member2 (all)");
}

#[test]
fn max_failures_one_over_the_limit_fails_the_run() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("all").max_failures(1)]);
    h.failing.insert("member1".into(), "boom".into());
    h.failing.insert("member2".into(), "bang".into());
    h.pass(T0);
    assert_eq!(h.updated, ["member1", "member2"], "member3 is not started after the second failure");
    let (status, reason, message) = h.cond("Succeeded");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "UpdateRunFailed"));
    assert_eq!(message, "clusters member1, member2 failed in stage all, more than maxFailures 1 (1): bang");
}

#[test]
fn max_failures_percentage_rounds_down() {
    // 5 canaries (member1, member3-6), 40% -> 2 failures allowed.
    let mut h = Harness::seed();
    five_canaries(&mut h);
    h.set_strategy([
        StageSpec::matching("canary", "environment", "canary").max_failures("40%").sorting_label_key("order"),
        StageSpec::rest("rest"),
    ]);
    h.failing.insert("member3".into(), "a".into());
    h.failing.insert("member1".into(), "b".into());
    h.pass(T0);
    assert_eq!(h.cond("Succeeded").0, "True", "{:?}", h.cond("Succeeded"));
    let mut h = Harness::seed();
    five_canaries(&mut h);
    h.set_strategy([
        StageSpec::matching("canary", "environment", "canary").max_failures("40%").sorting_label_key("order"),
        StageSpec::rest("rest"),
    ]);
    for m in ["member3", "member1", "member4"] {
        h.failing.insert(m.into(), "x".into());
    }
    h.pass(T0);
    assert_eq!(h.cond("Succeeded").1, "UpdateRunFailed");
    assert!(!h.updated.contains(&"member5".to_string()), "stopped at the third failure");
}

#[test]
fn max_duration_starts_the_soak_while_clusters_still_update() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("first")
        .max_concurrency(3)
        .max_duration("5m")
        .cluster_timeout("1h")
        .after_wait("1m")]);
    h.hold.insert("member3".into());
    h.pass(T0);
    assert_eq!(h.wake_at, Some(T0 + 300), "wakes when maxDuration runs out");
    h.pass(T0 + 300);
    assert_eq!(h.wake_at, Some(T0 + 360), "the 1m soak counts from the forced start");
    h.pass(T0 + 360);
    assert!(h.stage("first").conditions.is_true("Succeeded"));
    let (_, _, message) = h.cond("Progressing");
    assert_eq!(message, "All stages are completed; waiting for clusters still to update: member3");
    h.hold.clear();
    h.pass(T0 + 400);
    assert_eq!(h.cond("Succeeded").0, "True");
}

#[test]
fn clusters_joining_or_leaving_mid_run_do_not_abort_it() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.fleet.clusters.remove("member3");
    h.add_cluster("member9", &[("environment", "canary"), ("order", "0")]);
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2", "member1"], "member9 is not part of the run, member3 is skipped");
    let canary = h.stage("canary");
    let m3 = canary.clusters.iter().find(|c| c.cluster_name == "member3").unwrap();
    assert_eq!(m3.conditions.get_condition("Succeeded").unwrap().reason, "ClusterUpdatingSkipped");
    let changed = h.status.conditions.get_condition("ClusterSetChanged").unwrap();
    assert_eq!(
        changed.message,
        "joined during the run, not updated by it: member9; left the fleet during the run: member3"
    );
    h.approved.insert("example-run-canary".into());
    h.pass(T0 + 120);
    assert_eq!(
        h.cond("Succeeded").2,
        "All stages are completed successfully; skipped (left the fleet): member3 (canary)"
    );
}

#[test]
fn a_freeze_added_mid_run_holds_the_next_cluster_and_lifting_it_resumes() {
    let mut h = Harness::seed();
    h.pass(T0);
    h.windows.push(WindowSpec::freeze().build());
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2"], "no canary starts during the freeze");
    assert_eq!(
        h.cond("Progressing"),
        ("False".into(), "UpdateRunWaiting".into(), "The updateRun is waiting for rollout window w (Deny): cluster member3 may not start until the window is removed".into())
    );
    h.windows.clear();
    h.pass(T0 + 61);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
}

#[test]
fn allow_window_holds_until_it_opens_and_wakes_then() {
    // 2025-07-22T21:28:08Z is a Tuesday; the window opens daily at 22:00 UTC for 1h.
    let mut h = Harness::seed();
    h.windows.push(WindowSpec::allow("0 22 * * *", 1).selecting("environment", "canary").build());
    h.pass(T0);
    assert_eq!(h.updated, ["member2"], "staging is not selected by the window");
    h.pass(T0 + 60);
    assert_eq!(h.updated, ["member2"]);
    let open = "2025-07-22T22:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
    assert_eq!(h.wake_at, Some(open));
    assert!(h.cond("Progressing").2.contains("until 2025-07-22T22:00:00Z"), "{:?}", h.cond("Progressing"));
    h.pass(open);
    assert_eq!(h.updated, ["member2", "member3", "member1"]);
}

#[test]
fn absolute_deny_range_lets_updates_start_after_it_ends() {
    let mut h = Harness::seed();
    h.windows.push(WindowSpec::deny_between("2025-07-01T00:00:00Z", "2025-07-22T21:30:00Z").build());
    h.pass(T0);
    assert!(h.updated.is_empty());
    let end = "2025-07-22T21:30:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
    assert_eq!(h.wake_at, Some(end));
    h.pass(end);
    assert_eq!(h.updated, ["member2"]);
}

/// Regression: a forced soak used to drop the stage's clusters not started yet.
#[test]
fn forced_soak_still_updates_the_rest_of_the_stage() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("first").max_duration("5m").cluster_timeout("1h")]);
    h.hold.insert("member1".into());
    h.pass(T0);
    h.pass(T0 + 300);
    assert!(h.stage("first").conditions.is_true("Succeeded"), "the stage's tasks ran at maxDuration");
    assert_ne!(h.cond("Succeeded").0, "True", "but the run waits for member2 and member3");
    h.hold.clear();
    h.pass(T0 + 310);
    assert_eq!(h.updated, ["member1", "member2", "member3"]);
    assert_eq!(h.cond("Succeeded").0, "True");
}

/// Regression: failures after a forced soak count against maxFailures.
#[test]
fn failures_after_a_forced_soak_still_fail_the_run() {
    let mut h = Harness::seed();
    h.set_strategy([StageSpec::all("first").max_concurrency(3).max_duration("5m").cluster_timeout("1h")]);
    h.hold.insert("member3".into());
    h.pass(T0);
    h.pass(T0 + 300);
    h.hold.clear();
    h.failing.insert("member3".into(), "late failure".into());
    h.pass(T0 + 310);
    assert_eq!(h.cond("Succeeded").1, "UpdateRunFailed", "{:?}", h.cond("Succeeded"));
}

/// Regression: a cluster that leaves while its update is under way is skipped, not failed.
#[test]
fn a_cluster_leaving_mid_update_is_skipped() {
    let mut h = Harness::seed();
    h.hold.insert("member2".into());
    h.pass(T0);
    h.fleet.clusters.remove("member2");
    h.hold.clear();
    h.pass(T0 + 10);
    let m2 = &h.stage("staging").clusters[0];
    assert_eq!(m2.conditions.get_condition("Succeeded").unwrap().reason, "ClusterUpdatingSkipped");
    assert_ne!(h.cond("Succeeded").1, "UpdateRunFailed");
}
