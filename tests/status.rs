//! Status commit-back: what gitfleet commits, as whom, and what happens when a
//! person pushes at the same time.

mod common;

use common::{Fleet, git, test_namespace};
use gitfleet::cli::{RunArgs, now, reconciler};
use gitfleet::reconcile::{PassOutcome, Reconciler};
use gitfleet::status::{Credentials, Identity, StateRepo, StatusChanges};

fn args(f: &Fleet) -> RunArgs {
    RunArgs::once(f.origin_str(), f.state_dir())
}

fn rec(f: &Fleet) -> Reconciler {
    reconciler(&args(f)).unwrap()
}

fn pass(r: &mut Reconciler) -> PassOutcome {
    r.pass(now()).unwrap()
}

fn state(f: &Fleet) -> StateRepo {
    StateRepo::open(&f.state_dir(), f.origin_str(), Credentials::default()).unwrap()
}

#[test]
fn status_commit_touches_only_status_and_is_authored_by_gitfleet() {
    let f = Fleet::example();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let mut r = rec(&f);
    let outcome = pass(&mut r);
    let commit = outcome.commit.expect("snapshots recorded").to_string();

    let log = f.log();
    assert_eq!(log[0].0, commit);
    assert_eq!(log[0].1, "gitfleet");
    assert!(log[0].2.starts_with("gitfleet: record "), "{}", log[0].2);
    assert_eq!(log[1].2, "value2", "the person's commit is the parent");
    let files = f.changed_files(&commit);
    assert!(files.iter().all(|p| p.starts_with("status/")), "{files:?}");
    for snapshot in ["crp-with-envelope-0", "example-placement-0", "example-placement-1"] {
        assert!(
            files.contains(&format!("status/clusterresourcesnapshots/{snapshot}-snapshot.yaml")),
            "{files:?}"
        );
    }

    let latest = f.origin_file("status/clusterresourcesnapshots/example-placement-1-snapshot.yaml").unwrap();
    assert!(latest.contains("kubernetes-fleet.io/is-latest-snapshot: \"true\""), "{latest}");
    assert!(latest.contains("kubernetes-fleet.io/resource-index: \"1\""));
    assert!(latest.contains(&format!("gitfleet.dev/commit: {}", log[1].0)));
    let first = f.origin_file("status/clusterresourcesnapshots/example-placement-0-snapshot.yaml").unwrap();
    assert!(first.contains("kubernetes-fleet.io/is-latest-snapshot: \"false\""), "{first}");

    // Nothing new: the next pass commits nothing.
    let again = pass(&mut r);
    assert!(again.commit.is_none());
    assert_eq!(f.log().len(), log.len());
}

#[test]
fn a_push_race_keeps_both_commits_without_force() {
    let f = Fleet::example();
    let st = state(&f);
    let base = st.fetch("main").unwrap().unwrap();
    // A person pushes between gitfleet's fetch and its push.
    f.write("README.md", "# pushed meanwhile\n");
    let human = f.commit_all("human change");
    let mut changes = StatusChanges::default();
    changes.writes.insert("clusterresourcesnapshots/x.yaml".into(), b"a: 1\n".to_vec());
    let pushed =
        st.publish("main", Some(base), "status", &changes, "gitfleet: test", &Identity::default()).unwrap();
    let pushed = pushed.unwrap().to_string();

    let log = f.log();
    assert_eq!(log[0].0, pushed);
    assert_eq!(log[1].0, human, "the status commit was rebuilt on the person's commit");
    assert_eq!(f.origin_file("README.md").unwrap(), "# pushed meanwhile\n");
    assert_eq!(f.origin_file("status/clusterresourcesnapshots/x.yaml").unwrap(), "a: 1\n");
    // The person can keep pushing on top without a force.
    f.pull();
    f.write("README.md", "# next\n");
    f.commit_all("next");
}

#[test]
fn run_pass_after_a_concurrent_push_records_both() {
    let f = Fleet::example();
    let mut r = rec(&f);
    pass(&mut r);
    // The person's clone is behind gitfleet's status commit: they pull, change, push.
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let outcome = pass(&mut r);
    assert_eq!(outcome.new_snapshots, vec!["example-placement-1-snapshot".to_string()]);
    let subjects: Vec<String> = f.log().into_iter().map(|l| l.2).collect();
    assert_eq!(subjects[0], "gitfleet: record example-placement-1-snapshot");
    assert_eq!(subjects[1], "value2");
}

#[test]
fn recorded_indices_survive_a_force_push() {
    let f = Fleet::example();
    let a = git(&f.work, &["rev-parse", "HEAD"]);
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    let b = f.commit_all("value2");
    let mut r = rec(&f);
    pass(&mut r);
    // Someone squashes the whole history (status files included) and force-pushes it.
    f.pull();
    git(&f.work, &["checkout", "-q", "--orphan", "squashed"]);
    git(&f.work, &["commit", "-q", "-m", "squashed"]);
    git(&f.work, &["push", "-q", "--force", "origin", "squashed:main"]);
    let mut r = rec(&f);
    let outcome = pass(&mut r);
    assert!(outcome.commit.is_none(), "same resources as index 1: nothing to add");
    let file = |i: u32| {
        f.origin_file(&format!("status/clusterresourcesnapshots/example-placement-{i}-snapshot.yaml"))
            .unwrap()
    };
    assert!(file(0).contains(&a), "index 0 still means commit {a}");
    assert!(file(1).contains(&b), "index 1 still means commit {b}");

    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    let d = f.commit_all("value3");
    let outcome = pass(&mut r);
    assert_eq!(outcome.new_snapshots, vec!["example-placement-2-snapshot".to_string()]);
    assert!(file(2).contains(&d));
    assert!(file(1).contains(&b));
}

#[test]
fn status_branch_keeps_the_tracked_branch_clean() {
    let f = Fleet::example();
    f.write("gitfleet.yaml", "statusBranch: gitfleet-status\n");
    let tracked = f.commit_all("status elsewhere");
    let mut r = rec(&f);
    let outcome = pass(&mut r);
    assert!(outcome.commit.is_some());
    assert_eq!(git(&f.origin, &["rev-parse", "main"]), tracked, "main is untouched");
    let files = git(&f.origin, &["ls-tree", "-r", "--name-only", "gitfleet-status"]);
    assert!(files.lines().all(|l| l.starts_with("status/")), "{files}");
    assert!(files.contains("status/clusterresourcesnapshots/example-placement-0-snapshot.yaml"));
    // A second pass sees the recorded snapshots on the status branch and adds nothing.
    assert!(pass(&mut r).commit.is_none());
}

#[test]
fn revision_history_limit_prunes_old_snapshot_files() {
    let f = Fleet::example();
    let placement =
        f.read("placements/example-placement.yaml").replace("spec:\n", "spec:\n  revisionHistoryLimit: 2\n");
    f.write("placements/example-placement.yaml", &placement);
    f.commit_all("limit 2");
    let mut r = rec(&f);
    for v in ["value2", "value3", "value4"] {
        f.pull();
        f.write("resources/test-namespace.yaml", &test_namespace(v));
        f.commit_all(v);
        pass(&mut r);
    }
    let files = git(&f.origin, &["ls-tree", "-r", "--name-only", "main", "status/clusterresourcesnapshots/"]);
    let mine: Vec<&str> = files.lines().filter(|l| l.contains("example-placement-")).collect();
    assert_eq!(
        mine,
        vec![
            "status/clusterresourcesnapshots/example-placement-2-snapshot.yaml",
            "status/clusterresourcesnapshots/example-placement-3-snapshot.yaml"
        ]
    );
}

/// A non-bare local repository as REPO: its branch is moved in place, never while
/// it is checked out (that would leave the person's work tree behind).
#[test]
fn non_bare_local_repository() {
    let f = Fleet::example();
    let work = f.work.to_str().unwrap();
    let state = f.state_dir();
    let state = state.to_str().unwrap();
    let out = common::gitfleet(&["run", "--repo", work, "--state-dir", state, "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("branch main is checked out"), "{}", common::stderr(&out));
    // Running continuously, the refusal is permanent: gitfleet says why and
    // exits 2 instead of retrying it for ever.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", work, "--state-dir", state, "--poll-interval", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("gitfleet run kept retrying a permanent refusal");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("branch main is checked out"), "{}", common::stderr(&out));
    assert!(!common::stderr(&out).contains("retrying"), "{}", common::stderr(&out));

    git(&f.work, &["checkout", "-q", "-b", "dev"]);
    let out = common::gitfleet(&["run", "--repo", work, "--state-dir", state, "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let subject = git(&f.work, &["log", "-1", "--format=%an %s", "main"]);
    assert!(subject.starts_with("gitfleet gitfleet: record "), "{subject}");
    assert_eq!(git(&f.work, &["status", "--porcelain"]), "", "the work tree is untouched");

    // With a status branch, the checked-out tracked branch is never moved.
    git(&f.work, &["checkout", "-q", "main"]);
    f.write("gitfleet.yaml", "statusBranch: fleet-status\n");
    git(&f.work, &["commit", "-qam", "status branch"]);
    let main_before = git(&f.work, &["rev-parse", "main"]);
    let out = common::gitfleet(&["run", "--repo", work, "--state-dir", state, "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(git(&f.work, &["rev-parse", "main"]), main_before);
    assert!(
        git(&f.work, &["ls-tree", "-r", "--name-only", "fleet-status"])
            .contains("example-placement-0-snapshot.yaml")
    );
}
