//! The seed walkthrough on real Git with local-store clusters: snapshots, a run
//! through staging and canary, approval by a merged branch, rollback three ways.

mod common;

use common::{Fleet, approve_by_merge, git, gitfleet, stderr, test_namespace};
use gitfleet::cli::{RunArgs, reconciler};
use gitfleet::reconcile::Reconciler;

const T0: i64 = 1_900_000_000;

fn args(f: &Fleet) -> RunArgs {
    RunArgs::once(f.origin_str(), f.state_dir())
}

fn run_file(name: &str, index: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  {index}\n  stagedRolloutStrategyName: example-strategy\n"
    )
}

/// The value of test-cm on each member (None: not there).
fn values(f: &Fleet) -> Vec<Option<String>> {
    ["member1", "member2", "member3"]
        .iter()
        .map(|m| {
            let p = f.state_dir().join(format!("clusters/{m}/test-namespace/configmap/test-cm.yaml"));
            std::fs::read_to_string(p).ok().map(|s| {
                s.lines().find_map(|l| l.trim().strip_prefix("key: ")).unwrap_or_default().to_string()
            })
        })
        .collect()
}

fn v(x: &[Option<&str>]) -> Vec<Option<String>> {
    x.iter().map(|s| s.map(str::to_string)).collect()
}

/// A fleet at the seed's starting point: value2 pushed, no run yet.
fn seed() -> (Fleet, Reconciler) {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.commit_all("no run yet");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let r = reconciler(&args(&f)).unwrap();
    (f, r)
}

fn csur(f: &Fleet, name: &str) -> String {
    f.origin_file(&format!("status/clusterstagedupdateruns/{name}.yaml")).unwrap_or_default()
}

#[test]
fn walkthrough_with_merge_approval_and_rollback_by_index() {
    let (f, mut r) = seed();
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[None, None, None]), "External: nothing is applied without a run");
    assert!(f.origin_file("status/clusterresourcesnapshots/example-placement-1-snapshot.yaml").is_some());

    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run example-run");
    let out = r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[None, Some("value2"), None]), "staging (member2) first");
    assert_eq!(out.wake.time(), Some(gitfleet::time::Time::from(T0 + 60)));
    let one = common::stdout(&gitfleet(&["get", "csur", "example-run", "--repo", f.origin_str()]));
    assert!(one.contains("stage staging: soak (TimedWait) until "), "{one}");
    assert!(
        csur(&f, "example-run").contains("afterStageTaskStatus/0/waitUntil"),
        "the status keeps until when"
    );
    assert!(
        csur(&f, "example-run")
            .contains("The updateRun is waiting for after-stage tasks in stage staging to complete")
    );

    r.pass(T0 + 30).unwrap();
    assert_eq!(values(&f), v(&[None, Some("value2"), None]), "the 1m TimedWait holds canary");
    let out = r.pass(T0 + 60).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    assert!(
        out.message.contains("example-run canary waiting for approval example-run-canary"),
        "{}",
        out.message
    );
    let request = f.origin_file("status/clusterapprovalrequests/example-run-canary.yaml").unwrap();
    assert!(
        request.contains("parentStageRollout: example-run") && request.contains("targetStage: canary"),
        "{request}"
    );
    assert!(!request.contains("Approved"));

    approve_by_merge(&f, "example-run-canary");
    let out = r.pass(T0 + 120).unwrap();
    assert!(out.message.contains("example-run-canary approved by dev@example.com"), "{}", out.message);
    let request = f.origin_file("status/clusterapprovalrequests/example-run-canary.yaml").unwrap();
    assert!(request.contains("ApprovalRequestApprovalAccepted"), "{request}");
    let status = csur(&f, "example-run");
    assert!(status.contains("reason: UpdateRunSucceeded"), "{status}");
    let crp = f.origin_file("status/clusterresourceplacements/example-placement.yaml").unwrap();
    assert!(crp.contains("type: ClusterResourcePlacementAvailable"), "{crp}");

    // Rollback: a second run pinned to index 0.
    f.pull();
    f.write("runs/example-run-2.yaml", &run_file("example-run-2", "resourceSnapshotIndex: \"0\""));
    f.commit_all("rollback run");
    r.pass(T0 + 200).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value1"), Some("value2")]));
    r.pass(T0 + 260).unwrap();
    assert_eq!(values(&f), v(&[Some("value1"), Some("value1"), Some("value1")]));
    approve_by_merge(&f, "example-run-2-canary");
    r.pass(T0 + 300).unwrap();
    assert!(csur(&f, "example-run-2").contains("reason: UpdateRunSucceeded"));
    assert!(
        csur(&f, "example-run").contains("reason: UpdateRunSucceeded"),
        "a finished run is not superseded"
    );

    // The tables read back what was committed.
    let table = common::stdout(&gitfleet(&["get", "csur", "--repo", f.origin_str()]));
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][..6], ["example-run", "example-placement", "1", "0", "True", "True"]);
    assert_eq!(rows[1][..6], ["example-run-2", "example-placement", "0", "0", "True", "True"]);
    let careq = common::stdout(&gitfleet(&["get", "clusterapprovalrequest", "--repo", f.origin_str()]));
    assert!(
        careq.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..5]
            == ["example-run-canary", "example-run", "canary", "True", "True"]),
        "{careq}"
    );
}

#[test]
fn pre_written_approval_is_refused() {
    let (f, mut r) = seed();
    f.pull();
    f.write(
        "approvals/example-run-canary.yaml",
        &gitfleet::cli::approval_yaml("example-run-canary", "early", "pre-approved"),
    );
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run with a pre-written approval");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    r.pass(T0 + 120).unwrap();
    let request = f.origin_file("status/clusterapprovalrequests/example-run-canary.yaml").unwrap();
    assert!(!request.contains("ApprovalAccepted"), "{request}");
    assert!(!csur(&f, "example-run").contains("UpdateRunSucceeded"));
    // Touching the approval after the request exists approves.
    f.pull();
    f.write(
        "approvals/example-run-canary.yaml",
        &gitfleet::cli::approval_yaml("example-run-canary", "checked", "now"),
    );
    f.commit_all("approve for real");
    r.pass(T0 + 180).unwrap();
    assert!(csur(&f, "example-run").contains("UpdateRunSucceeded"));
}

#[test]
fn approvers_restrict_who_approves() {
    let (f, mut r) = seed();
    f.pull();
    f.write("gitfleet.yaml", "approvers: ['*@platform.example']\n");
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    approve_by_merge(&f, "example-run-canary"); // by dev@example.com
    r.pass(T0 + 120).unwrap();
    assert!(!csur(&f, "example-run").contains("UpdateRunSucceeded"), "dev@example.com is not an approver");
}

#[test]
fn rollback_by_pinned_commit_and_by_revert() {
    let (f, mut r) = seed();
    let value1_commit = git(&f.work, &["rev-parse", "HEAD~1"]);
    f.pull();
    f.write(
        "strategies/example-strategy.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: all\n    labelSelector: {}\n",
    );
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run value2 everywhere");
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));

    f.pull();
    // Quoted: an unquoted prefix such as 1234567890 or 12e4567890 is a YAML number.
    f.write("runs/back.yaml", &run_file("back", &format!("resourceCommit: \"{}\"", &value1_commit[..10])));
    f.commit_all("roll back to a commit");
    r.pass(T0 + 10).unwrap();
    assert_eq!(values(&f), v(&[Some("value1"), Some("value1"), Some("value1")]));
    assert!(csur(&f, "back").contains("resourceSnapshotIndexUsed: \"0\""), "{}", csur(&f, "back"));

    // A bad change, reverted: the revert is a new snapshot equal to value2's.
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    f.commit_all("value3 (bad)");
    git(&f.work, &["revert", "--no-edit", "HEAD"]);
    f.push();
    f.write("runs/latest.yaml", &run_file("latest", "state: Run"));
    f.commit_all("run the latest snapshot");
    r.pass(T0 + 20).unwrap();
    assert!(csur(&f, "latest").contains("resourceSnapshotIndexUsed: \"3\""), "{}", csur(&f, "latest"));
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    let snap = |i: u32| {
        f.origin_file(&format!("status/clusterresourcesnapshots/example-placement-{i}-snapshot.yaml"))
            .unwrap()
    };
    let hash = |s: String| s.lines().find(|l| l.contains("resource-hash")).unwrap().to_string();
    assert_eq!(hash(snap(3)), hash(snap(1)), "the revert restores value2's resources");
}

#[test]
fn broken_workload_file_prunes_nothing() {
    let (f, mut r) = seed();
    applied_everywhere(&f, &mut r);
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    f.pull();
    f.write("resources/test-namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: [broken\n");
    f.write("runs/again.yaml", &run_file("again", "state: Run"));
    f.commit_all("broken file and a new run");
    r.pass(T0 + 10).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]), "nothing pruned");
    let crp = f.origin_file("status/clusterresourceplacements/example-placement.yaml").unwrap();
    assert!(crp.contains("reason: InvalidResources"), "{crp}");
    assert!(crp.contains("resources/test-namespace.yaml:3"), "the status names the file and line: {crp}");
    // Fixed: the condition clears and the new content is a snapshot.
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    f.commit_all("fixed");
    r.pass(T0 + 20).unwrap();
    let crp = f.origin_file("status/clusterresourceplacements/example-placement.yaml").unwrap();
    assert!(crp.contains("reason: ResourcesValid"), "{crp}");
}

/// One run of one stage over every cluster: value2 applied everywhere.
fn applied_everywhere(f: &Fleet, r: &mut Reconciler) {
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "state: Run"));
    f.write(
        "strategies/example-strategy.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: all\n    labelSelector: {}\n",
    );
    f.commit_all("run");
    r.pass(T0).unwrap();
}

/// Regression: an emptied manifest file (empty, comments only, `---` only)
/// was valid and pruned everything it held.
#[test]
fn emptied_workload_file_prunes_nothing() {
    for empty in ["", "# nothing here yet\n", "---\n---\n"] {
        let (f, mut r) = seed();
        applied_everywhere(&f, &mut r);
        f.pull();
        f.write("resources/test-namespace.yaml", empty);
        f.write("runs/again.yaml", &run_file("again", "state: Run"));
        f.commit_all("emptied file and a new run");
        r.pass(T0 + 10).unwrap();
        assert_eq!(
            values(&f),
            v(&[Some("value2"), Some("value2"), Some("value2")]),
            "nothing pruned ({empty:?})"
        );
        let crp = f.origin_file("status/clusterresourceplacements/example-placement.yaml").unwrap();
        assert!(crp.contains("resources/test-namespace.yaml: no objects"), "{crp}");
        let out = gitfleet(&["validate", f.work.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            common::stdout(&out).contains("resources/test-namespace.yaml: no objects"),
            "{}",
            common::stdout(&out)
        );
    }
}

#[test]
fn restart_in_the_middle_of_a_run() {
    let (f, mut r) = seed();
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run");
    r.pass(T0).unwrap();
    drop(r);
    // A new process with a fresh index and the same state folder.
    let mut r = reconciler(&args(&f)).unwrap();
    r.pass(T0 + 60).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    let status = csur(&f, "example-run");
    assert_eq!(status.matches("type: WaitTimeElapsed").count(), 1);
    assert!(f.origin_file("status/clusterapprovalrequests/example-run-canary.yaml").is_some());
}

#[test]
fn approve_command_commits_with_the_persons_identity() {
    let (f, mut r) = seed();
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run");
    r.pass(T0).unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".gitconfig"), "[user]\n\tname = Lead\n\temail = lead@example.com\n")
        .unwrap();
    let approve = |extra: &[&str]| {
        let mut args = vec!["approve", "example-run-canary", "--repo", f.origin_str()];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
            .args(&args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(home.path())
            .output()
            .unwrap()
    };
    let out = approve(&[]);
    assert_eq!(out.status.code(), Some(1), "no request yet: {}", stderr(&out));
    assert!(stderr(&out).contains("nothing to approve yet"));
    r.pass(T0 + 60).unwrap();
    let out = approve(&["--branch", "approve-canary"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let author = git(&f.origin, &["log", "-1", "--format=%an <%ae>", "approve-canary"]);
    assert_eq!(author, "Lead <lead@example.com>");
    r.pass(T0 + 70).unwrap();
    assert!(!csur(&f, "example-run").contains("UpdateRunSucceeded"), "not merged yet");
    let out = approve(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    r.pass(T0 + 80).unwrap();
    assert!(csur(&f, "example-run").contains("UpdateRunSucceeded"));
}

const ALL_IN_ONE: &str = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: all\n    maxConcurrency: 100%\n    labelSelector: {}\n";

/// Regression: a typo in a cluster or placement file used to count as its
/// deletion (the cluster's resources were cleaned up, runs failed).
#[test]
fn broken_cluster_or_placement_file_touches_nothing_applied() {
    let (f, mut r) = seed();
    f.pull();
    f.write("strategies/example-strategy.yaml", ALL_IN_ONE);
    f.write("runs/example-run.yaml", &run_file("example-run", "state: Run"));
    f.commit_all("run everywhere");
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    f.pull();
    f.write(
        "clusters/member1.yaml",
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata: [\n",
    );
    f.write(
        "placements/example-placement.yaml",
        &f.read("placements/example-placement.yaml").replace("PickAll", "PickSome"),
    );
    f.write("runs/again.yaml", &run_file("again", "state: Run"));
    f.commit_all("typos and a new run");
    r.pass(T0 + 10).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]), "member1 is not cleaned up");
    let again = csur(&f, "again");
    assert!(!again.contains("not found"), "{again}");
    assert!(again.contains("policyObservedClusterCount: 3"), "member1 still counts: {again}");
}

/// Regression: a gitfleet.yaml that stops parsing must not move status back to
/// the default folder (which would restart every run).
#[test]
fn broken_settings_keep_the_last_good_ones() {
    let (f, mut r) = seed();
    f.pull();
    f.write("gitfleet.yaml", "statusPath: fleet-status\n");
    f.write("strategies/example-strategy.yaml", ALL_IN_ONE);
    f.write("runs/example-run.yaml", &run_file("example-run", "state: Run"));
    f.commit_all("custom status folder");
    r.pass(T0).unwrap();
    assert!(
        f.origin_file("fleet-status/clusterstagedupdateruns/example-run.yaml")
            .unwrap()
            .contains("UpdateRunSucceeded")
    );
    f.pull();
    f.write("gitfleet.yaml", "statusPath: [fleet-status\n");
    f.commit_all("broken settings");
    r.pass(T0 + 10).unwrap();
    assert!(
        f.origin_file("status/clusterstagedupdateruns/example-run.yaml").is_none(),
        "no status in the default folder"
    );
}

/// With `statusBranch`, requests live on another branch; a merged approval
/// still counts, a pre-written one still does not.
#[test]
fn approvals_with_a_status_branch() {
    let (f, mut r) = seed();
    f.pull();
    f.write("gitfleet.yaml", "statusBranch: fleet-status\n");
    f.write(
        "approvals/example-run-canary.yaml",
        &gitfleet::cli::approval_yaml("example-run-canary", "early", "too early"),
    );
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run, status elsewhere, a pre-written approval");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    let status = |f: &Fleet| {
        common::git(&f.origin, &["show", "fleet-status:status/clusterstagedupdateruns/example-run.yaml"])
    };
    assert!(!status(&f).contains("UpdateRunSucceeded"), "the pre-written approval is refused");
    f.pull();
    f.remove("approvals/example-run-canary.yaml");
    f.commit_all("withdraw");
    approve_by_merge(&f, "example-run-canary");
    r.pass(T0 + 120).unwrap();
    assert!(status(&f).contains("UpdateRunSucceeded"));
}

/// autoRun: a push rolls out with no run file; a committed rollback is never undone.
#[test]
fn auto_runs_roll_out_pushes_and_respect_rollbacks() {
    let (f, mut r) = seed();
    f.pull();
    f.write("strategies/example-strategy.yaml", ALL_IN_ONE);
    common::auto_run(&f, "example-strategy");
    f.commit_all("auto runs");
    r.pass(T0).unwrap();
    assert_eq!(
        values(&f),
        v(&[Some("value2"), Some("value2"), Some("value2")]),
        "the latest snapshot rolled out"
    );
    assert!(csur(&f, "example-placement-1").contains("reason: UpdateRunSucceeded"));
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    f.commit_all("value3");
    let out = r.pass(T0 + 10).unwrap();
    assert!(out.message.contains("example-placement-2 succeeded"), "{}", out.message);
    assert_eq!(values(&f), v(&[Some("value3"), Some("value3"), Some("value3")]));
    // A person rolls back to snapshot 0: automation must not roll forward again.
    f.pull();
    f.write("runs/rollback.yaml", &run_file("rollback", "resourceSnapshotIndex: \"0\""));
    f.commit_all("roll back");
    r.pass(T0 + 20).unwrap();
    r.pass(T0 + 30).unwrap();
    assert_eq!(values(&f), v(&[Some("value1"), Some("value1"), Some("value1")]));
    // Deleting the rollback run's file does not let automation roll forward either.
    f.pull();
    f.remove("runs/rollback.yaml");
    f.commit_all("tidy up runs/");
    r.pass(T0 + 35).unwrap();
    assert_eq!(values(&f), v(&[Some("value1"), Some("value1"), Some("value1")]));
    // A new push after the rollback is a new snapshot: that one rolls out.
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value4"));
    f.commit_all("value4");
    r.pass(T0 + 40).unwrap();
    assert_eq!(values(&f), v(&[Some("value4"), Some("value4"), Some("value4")]));
    let table = common::stdout(&gitfleet(&["get", "csur", "--repo", f.origin_str()]));
    for name in ["example-placement-1", "example-placement-2", "example-placement-3", "rollback"] {
        assert!(table.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} in\n{table}");
    }
}

/// A freeze is one commit: it stops a run before its next cluster; removing the
/// file lifts it and the run resumes.
#[test]
fn a_committed_freeze_stops_the_run_and_removing_it_resumes() {
    let (f, mut r) = seed();
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run");
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[None, Some("value2"), None]));
    f.pull();
    f.write("windows/freeze.yaml", "apiVersion: gitfleet.dev/v1alpha1\nkind: RolloutWindow\nmetadata:\n  name: freeze\nspec:\n  type: Deny\n");
    f.commit_all("freeze");
    r.pass(T0 + 60).unwrap();
    assert_eq!(values(&f), v(&[None, Some("value2"), None]), "the canaries wait");
    assert!(
        csur(&f, "example-run").contains(
            "rollout window freeze (Deny): cluster member3 may not start until the window is removed"
        )
    );
    f.pull();
    f.remove("windows/freeze.yaml");
    f.commit_all("lift the freeze");
    r.pass(T0 + 70).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
}

/// maxFailures: a broken cluster within the limit lets the run finish.
#[test]
fn a_broken_cluster_within_max_failures_lets_the_run_finish() {
    let (f, mut r) = seed();
    f.pull();
    f.write(
        "strategies/example-strategy.yaml",
        &ALL_IN_ONE.replace("    maxConcurrency: 100%\n", "    maxConcurrency: 100%\n    maxFailures: 1\n"),
    );
    f.write("runs/example-run.yaml", &run_file("example-run", "state: Run"));
    let p = f.read("placements/example-placement.yaml").replace(
        "    type: External\n",
        "    type: External\n    applyStrategy:\n      whenToTakeOver: Never\n",
    );
    f.write("placements/example-placement.yaml", &p);
    f.commit_all("run with a tolerance");
    // member3 holds a test-cm that is not gitfleet's: its update fails.
    let foreign = f.state_dir().join("clusters/member3/test-namespace/configmap/test-cm.yaml");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: theirs\n").unwrap();
    r.pass(T0).unwrap();
    let status = csur(&f, "example-run");
    assert!(status.contains("reason: UpdateRunSucceeded"), "{status}");
    assert!(status.contains("failed within maxFailures: member3 (all)"), "{status}");
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("theirs")]));
}

/// A newer automatic run supersedes an older one still waiting at a gate.
#[test]
fn a_newer_auto_run_supersedes_a_waiting_one() {
    let (f, mut r) = seed();
    f.pull();
    common::auto_run(&f, "example-strategy");
    f.commit_all("auto runs with the seed strategy");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    assert!(csur(&f, "example-placement-1").contains("waiting for after-stage tasks in stage canary"));
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    f.commit_all("value3 while waiting for approval");
    r.pass(T0 + 70).unwrap();
    let old = csur(&f, "example-placement-1");
    assert!(old.contains("reason: UpdateRunSuperseded"), "{old}");
    assert!(old.contains("superseded by the newer update run example-placement-2"), "{old}");
    assert_eq!(
        values(&f),
        v(&[Some("value2"), Some("value3"), Some("value2")]),
        "the new run starts with staging"
    );
}

/// Notifications of the walkthrough: every transition once, in order, with
/// the same id when sent again; a receiver answering 500 gets the event
/// again; a restart sends what a status commit recorded but nobody received.
#[test]
fn walkthrough_notifies_each_transition_once() {
    use common::http::Sink;
    use gitfleet::notify::{Format, Notifier, Receiver};
    use std::time::Duration;

    // /flaky answers its first request with 500.
    let sink = Sink::start(|path, n| if path == "/flaky" && n == 0 { 500 } else { 200 });
    let receiver =
        |name: &str, path: &str, format: Format, events: &[gitfleet::notify::EventKind]| Receiver {
            name: name.into(),
            url: sink.url(path),
            format,
            events: events.to_vec(),
            headers: [("Authorization".to_string(), "Bearer t0ken".to_string())].into(),
        };
    let counted: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let c = counted.clone();
    let count: gitfleet::notify::deliver::Count =
        std::sync::Arc::new(move |r: &str, result: &str| c.lock().unwrap().push((r.into(), result.into())));
    let receivers = vec![
        receiver("all", "/all", Format::Json, &[]),
        receiver("flaky", "/flaky", Format::Json, &[gitfleet::notify::EventKind::ApprovalRequested]),
        receiver("slack", "/slack", Format::Slack, &[gitfleet::notify::EventKind::ApprovalRequested]),
        receiver("teams", "/teams", Format::Msteams, &[gitfleet::notify::EventKind::RunSucceeded]),
    ];
    let (f, mut r) = seed();
    let mut n = Notifier::start(receivers, f.origin_str(), &f.state_dir(), count.clone()).unwrap();
    let pass = |r: &mut Reconciler, n: &mut Notifier, t: i64| {
        let out = r.pass(T0 + t).unwrap();
        n.observe_pass(r.repo(), &out).unwrap();
        n.flush(Duration::from_secs(20));
    };
    pass(&mut r, &mut n, 0);
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run example-run");
    pass(&mut r, &mut n, 0);
    pass(&mut r, &mut n, 30);
    pass(&mut r, &mut n, 60);
    approve_by_merge(&f, "example-run-canary");
    pass(&mut r, &mut n, 120);
    let events = sink.bodies("/all");
    let seen: Vec<String> = events
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or("-").to_string();
            format!("{} {} {} {}", field("event"), field("run"), field("stage"), field("cluster"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            "RunStarted example-run - -",
            "StageStarted example-run staging -",
            "StageSucceeded example-run staging -",
            "StageStarted example-run canary -",
            "ApprovalRequested example-run canary -",
            "ApprovalAccepted example-run canary -",
            "StageSucceeded example-run canary -",
            "RunSucceeded example-run - -",
        ],
        "{events:#?}"
    );
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "one id per transition");
    let requested = &events[4];
    assert_eq!(requested["approvalRequest"], "example-run-canary");
    assert_eq!(
        requested["approveCommand"],
        format!("gitfleet approve example-run-canary --repo {}", f.origin_str())
    );
    assert_eq!(
        requested["waiting"],
        "stage canary of run example-run is done; the end of the run waits for it"
    );
    assert_eq!(events[5]["approvedBy"], "dev@example.com");
    // The flaky receiver got the request twice (500, then 200), with one id.
    let flaky = sink.bodies("/flaky");
    assert_eq!(flaky.len(), 2, "{flaky:?}");
    assert_eq!(flaky[0], flaky[1]);
    assert_eq!(flaky[0]["id"], requested["id"]);
    let slack = sink.bodies("/slack");
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0]["text"].as_str().unwrap().starts_with("gitfleet: Approval needed: example-run-canary"),
        "{slack:?}"
    );
    let teams = sink.bodies("/teams");
    assert_eq!(teams.len(), 1);
    let card = &teams[0]["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(
        card["content"]["body"][1]["text"],
        "Run example-run succeeded: example-placement is rolled out"
    );
    assert!(sink.headers("/all").iter().all(|h| h.contains("authorization: Bearer t0ken")));
    let results = counted.lock().unwrap().clone();
    assert_eq!(results.iter().filter(|(r, _)| r == "all").count(), 8);
    assert!(results.iter().all(|(_, result)| result == "delivered"), "{results:?}");
    drop(n);

    // A rollback run while the only receiver is down: the pass does not wait
    // for it, and the process stops before anything is delivered.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let down = Receiver {
        name: "down".into(),
        url: dead_url,
        format: Format::Json,
        events: vec![],
        headers: [].into(),
    };
    let mut n = Notifier::start(vec![down], f.origin_str(), &f.state_dir(), count.clone()).unwrap();
    f.pull();
    f.write("runs/example-run-2.yaml", &run_file("example-run-2", "resourceSnapshotIndex: \"0\""));
    f.commit_all("rollback run");
    let started = std::time::Instant::now();
    let out = r.pass(T0 + 200).unwrap();
    let found = n.observe_pass(r.repo(), &out).unwrap();
    eprintln!("pass and notifying with a dead receiver: {:?}", started.elapsed());
    assert_eq!(found, 2, "RunStarted and StageStarted of example-run-2");
    assert!(n.pending() > 0, "the pass returned before the deliveries ended");
    drop(n);
    // A restarted gitfleet sends them from the last status commit whose events all went out.
    let mut n = Notifier::start(
        vec![receiver("all", "/all", Format::Json, &[])],
        f.origin_str(),
        &f.state_dir(),
        count,
    )
    .unwrap();
    let out = r.pass(T0 + 200).unwrap();
    assert!(out.commit.is_none(), "nothing new in this pass");
    n.observe_pass(r.repo(), &out).unwrap();
    n.flush(Duration::from_secs(20));
    let events = sink.bodies("/all");
    let seen: Vec<String> = events[8..]
        .iter()
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["run"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, ["RunStarted example-run-2", "StageStarted example-run-2"]);
}

/// The seed walkthrough with KubeFleet's namespaced kinds: a ResourcePlacement,
/// StagedUpdateStrategy, StagedUpdateRun and ApprovalRequest in
/// test-namespace (which a ClusterResourcePlacement places, NamespaceOnly).
#[test]
fn namespaced_walkthrough_with_resource_placement() {
    const NS: &str = "test-namespace";
    let f = Fleet::example();
    for gone in ["runs/example-run.yaml", "overrides/canary-label.yaml", "placements/example-placement.yaml"]
    {
        f.remove(gone);
    }
    f.write(
        "placements/namespace.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: test-namespace\nspec:\n  resourceSelectors:\n    - group: \"\"\n      kind: Namespace\n      name: test-namespace\n      version: v1\n      selectionScope: NamespaceOnly\n  policy:\n    placementType: PickAll\n",
    );
    f.write(
        "placements/rp.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourcePlacement\nmetadata:\n  name: example-placement\n  namespace: test-namespace\nspec:\n  resourceSelectors:\n    - group: \"\"\n      kind: ConfigMap\n      name: test-cm\n      version: v1\n  policy:\n    placementType: PickAll\n  strategy:\n    type: External\n",
    );
    let strategy = f.read("strategies/example-strategy.yaml").replace(
        "kind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\n",
        "kind: StagedUpdateStrategy\nmetadata:\n  name: example-strategy\n  namespace: test-namespace\n",
    );
    assert!(strategy.contains("kind: StagedUpdateStrategy"), "{strategy}");
    f.write("strategies/example-strategy.yaml", &strategy);
    f.commit_all("namespaced kinds");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let mut r = reconciler(&args(&f)).unwrap();
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[None, None, None]), "External: nothing is applied without a run");
    let snapshot =
        f.origin_file(&format!("status/resourcesnapshots/{NS}/example-placement-1-snapshot.yaml")).unwrap();
    assert!(snapshot.contains("kind: ResourceSnapshot"), "{snapshot}");
    assert!(snapshot.contains("namespace: test-namespace"), "{snapshot}");
    assert!(snapshot.contains("name: example-placement-1-snapshot"), "{snapshot}");

    f.pull();
    f.write(
        "runs/example-run.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: StagedUpdateRun\nmetadata:\n  name: example-run\n  namespace: test-namespace\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: example-strategy\n",
    );
    f.commit_all("run example-run");
    r.pass(T0).unwrap();
    assert_eq!(values(&f), v(&[None, Some("value2"), None]), "staging (member2) first");
    let sur = || f.origin_file(&format!("status/stagedupdateruns/{NS}/example-run.yaml")).unwrap_or_default();
    let doc = sur();
    assert!(doc.contains("kind: StagedUpdateRun") && doc.contains("namespace: test-namespace"), "{doc}");
    assert!(doc.contains("placementName: example-placement\n"), "names stay within the namespace: {doc}");
    assert!(f.origin_file("status/clusterstagedupdateruns/example-run.yaml").is_none());
    let cm =
        std::fs::read_to_string(f.state_dir().join("clusters/member2/test-namespace/configmap/test-cm.yaml"))
            .unwrap();
    assert!(cm.contains("gitfleet.dev/placement: test-namespace_example-placement"), "{cm}");

    r.pass(T0 + 60).unwrap();
    assert_eq!(values(&f), v(&[Some("value2"), Some("value2"), Some("value2")]));
    let request = f.origin_file(&format!("status/approvalrequests/{NS}/example-run-canary.yaml")).unwrap();
    assert!(
        request.contains("kind: ApprovalRequest") && request.contains("namespace: test-namespace"),
        "{request}"
    );
    assert!(request.contains("parentStageRollout: example-run\n"), "{request}");
    let areq = common::stdout(&gitfleet(&["get", "areq", "-n", NS, "--repo", f.origin_str()]));
    assert!(areq.lines().nth(1).unwrap_or_default().starts_with("example-run-canary "), "{areq}");

    approve_by_merge(&f, &format!("{NS}/example-run-canary"));
    assert!(f.read(&format!("approvals/{NS}/example-run-canary.yaml")).contains("kind: ApprovalRequest"));
    let out = r.pass(T0 + 120).unwrap();
    assert!(out.message.contains("approved by dev@example.com"), "{}", out.message);
    assert!(sur().contains("reason: UpdateRunSucceeded"), "{}", sur());
    let rp = f.origin_file(&format!("status/resourceplacements/{NS}/example-placement.yaml")).unwrap();
    assert!(
        rp.contains("kind: ResourcePlacement") && rp.contains("type: ResourcePlacementAvailable"),
        "{rp}"
    );
    assert!(!rp.contains("ClusterResourcePlacement"), "{rp}");

    // kubectl's views: -n, -A, and the cluster-scoped kinds do not list them.
    let table = common::stdout(&gitfleet(&["get", "sur", "-n", NS, "--repo", f.origin_str()]));
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..6], ["example-run", "example-placement", "1", "0", "True", "True"], "{table}");
    let all = common::stdout(&gitfleet(&["get", "rp", "-A", "--repo", f.origin_str()]));
    assert!(all.starts_with("NAMESPACE"), "{all}");
    let row: Vec<&str> = all.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row[..4], ["test-namespace", "example-placement", "1", "True"], "{all}");
    let out = gitfleet(&["get", "sur", "--repo", f.origin_str()]);
    assert!(stderr(&out).contains("No resources found"), "the default namespace has none: {}", stderr(&out));
    let out = gitfleet(&["get", "csur", "--repo", f.origin_str()]);
    assert!(stderr(&out).contains("No resources found"), "{}", common::stdout(&out));
    let yaml = common::stdout(&gitfleet(&[
        "get",
        "sur",
        "example-run",
        "-n",
        NS,
        "-o",
        "yaml",
        "--repo",
        f.origin_str(),
    ]));
    assert!(yaml.contains("kind: StagedUpdateRun") && yaml.contains("namespace: test-namespace"), "{yaml}");
    assert!(yaml.contains("approvalRequestName: example-run-canary\n"), "{yaml}");
}

/// A command run in a pseudo-terminal (`script`), its output collected as it comes.
struct InTerminal {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl InTerminal {
    fn start(args: &[&str]) -> InTerminal {
        use std::io::Read;
        let command = std::iter::once(env!("CARGO_BIN_EXE_gitfleet"))
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = std::process::Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs a command in a pseudo-terminal");
        let mut out = child.stdout.take().unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        InTerminal { child, output }
    }

    /// Waits (at most 30 s) until the output holds `text`; returns the output.
    fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = self.output.lock().unwrap().clone();
            if out.contains(text) {
                return out;
            }
            assert!(std::time::Instant::now() < deadline, "{text:?} never came:\n{out}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for InTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `get -w` in a terminal prints the table again when the branch moves;
/// `get csur NAME -w` follows one run (stages, clusters done, the approval it
/// waits for with the command) and ends with it.
#[test]
fn get_watch_follows_the_branch_and_a_run() {
    let (f, mut r) = seed();
    let table = InTerminal::start(&["get", "csur", "--repo", f.origin_str(), "-w", "--watch-interval", "1"]);
    table.wait_for("No resources found");
    // The same over a URL: the remote is fetched again every interval.
    let daemon = common::git_daemon::GitDaemon::serve(f.origin.parent().unwrap());
    let url = daemon.url("origin.git");
    let remote = InTerminal::start(&["get", "csur", "--repo", &url, "-w", "--watch-interval", "1"]);
    remote.wait_for("No resources found");
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "resourceSnapshotIndex: \"1\""));
    f.commit_all("run example-run");
    r.pass(T0).unwrap();
    for watching in [&table, &remote] {
        let out = watching.wait_for("example-run");
        let row = out.lines().find(|l| l.starts_with("example-run")).unwrap();
        assert_eq!(
            row.split_whitespace().take(3).collect::<Vec<_>>(),
            ["example-run", "example-placement", "1"]
        );
    }
    drop(table);
    drop(remote);

    let mut run = InTerminal::start(&[
        "get",
        "csur",
        "example-run",
        "--repo",
        f.origin_str(),
        "-w",
        "--watch-interval",
        "1",
    ]);
    let out = run.wait_for("STAGE");
    assert!(out.contains("run example-run: placement example-placement, snapshot 1"), "{out}");
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["staging", "1/1", "waiting"]),
        "{out}"
    );
    r.pass(T0 + 60).unwrap();
    let out = run.wait_for("approve with: gitfleet approve example-run-canary --repo");
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["canary", "2/2", "waiting"]),
        "{out}"
    );
    assert!(out.contains("stage canary: waiting for approval example-run-canary"), "{out}");
    approve_by_merge(&f, "example-run-canary");
    r.pass(T0 + 120).unwrap();
    // The view ends with the run (at most 30 s), having shown it succeeded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the view did not end: {}", run.output.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run.output.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "exit 0: the run succeeded: {out}");
    assert!(out.contains("-- succeeded"), "{out}");
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["canary", "2/2", "done"]),
        "{out}"
    );
}
