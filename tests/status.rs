//! Status commit-back: what gitfleet commits, as whom, and what happens when a
//! person pushes at the same time.

mod common;

use common::{Fleet, git, gitfleet, stderr, stdout, test_namespace};
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

fn member(name: &str, stage: &str) -> String {
    format!(
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n    stage: {stage}\n"
    )
}

fn run_once(f: &Fleet) -> std::process::Output {
    run_once_in(f, &f.state_dir())
}

fn run_once_in(f: &Fleet, state: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", f.origin_str(), "--state-dir", state.to_str().unwrap(), "--once"])
        .output()
        .unwrap()
}

/// Files under a folder of origin's main.
fn origin_files(f: &Fleet, folder: &str) -> Vec<String> {
    git(&f.origin, &["ls-tree", "-r", "--name-only", "main", folder]).lines().map(str::to_string).collect()
}

/// A fleet over 100 clusters keeps a summary per placement and run plus one
/// small file per cluster (a `ClusterResourceBinding` per placement and
/// cluster); `get -o yaml` shows them whole; a pass that changes k clusters
/// touches about k files; a missing cluster file stops what depends on it.
#[test]
fn a_large_fleet_keeps_one_small_status_file_per_cluster() {
    let f = Fleet::new();
    for i in 0..150 {
        f.write(
            &format!("clusters/c{i:03}.yaml"),
            &member(&format!("c{i:03}"), if i < 50 { "a" } else { "b" }),
        );
    }
    f.write("resources/app.yaml", &test_namespace("one"));
    f.write(
        "placements/app.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: app\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: test-namespace}\n  strategy:\n    type: External\n",
    );
    f.write(
        "strategies/two.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: two\nspec:\n  stages:\n  - name: a\n    maxConcurrency: 100%\n    labelSelector: {matchLabels: {stage: a}}\n  - name: b\n    maxConcurrency: 100%\n    labelSelector: {matchLabels: {stage: b}}\n",
    );
    let run = |name: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: app\n  stagedRolloutStrategyName: two\n"
        )
    };
    f.write("runs/r1.yaml", &run("r1"));
    f.commit_all("150 clusters");
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    const CRP: &str = "status/clusterresourceplacements/app.yaml";
    let summary = f.origin_file(CRP).unwrap();
    assert!(
        !summary.contains("placementStatuses: [") || summary.contains("placementStatuses: []"),
        "{summary}"
    );
    assert!(
        summary.contains("gitfleet.dev/cluster-files: '150'")
            || summary.contains("gitfleet.dev/cluster-files: \"150\""),
        "{summary}"
    );
    assert!(summary.contains("reason: ApplySucceeded"), "{summary}");
    let bindings = origin_files(&f, "status/clusterresourcebindings/app");
    assert_eq!(bindings.len(), 150);
    let binding = f.origin_file("status/clusterresourcebindings/app/app-c007.yaml").unwrap();
    for line in [
        "kind: ClusterResourceBinding",
        "name: app-c007",
        "kubernetes-fleet.io/parent-CRP: app",
        "resourceSnapshotName: app-0-snapshot",
        "targetCluster: c007",
        "type: ResourceApplied",
    ] {
        assert!(binding.contains(line), "{line} in {binding}");
    }
    let run_doc = f.origin_file("status/clusterstagedupdateruns/r1.yaml").unwrap();
    assert!(run_doc.contains("reason: UpdateRunSucceeded"), "{run_doc}");
    assert!(!run_doc.contains("clusterName"), "{run_doc}");
    assert_eq!(origin_files(&f, "status/clusterstagedupdateruns/r1").len(), 150);
    let entry = f.origin_file("status/clusterstagedupdateruns/r1/c120.yaml").unwrap();
    assert!(entry.contains("stageName: b") && entry.contains("type: Succeeded"), "{entry}");
    // Written as one pack, not a loose object file per status file.
    let counts = git(&f.state_dir().join("repo.git"), &["count-objects", "-v"]);
    let loose: usize = counts.lines().find_map(|l| l.strip_prefix("count: ")).unwrap().parse().unwrap();
    assert!(loose < 20, "{counts}");
    for path in origin_files(&f, "status") {
        let size = f.origin_file(&path).unwrap().len();
        assert!(size < 64 * 1024, "{path}: {size} bytes");
    }

    // Shown whole.
    let get = gitfleet(&["get", "crp", "app", "--repo", f.origin_str(), "-o", "json"]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    let crp: serde_json::Value = serde_json::from_str(&stdout(&get)).unwrap();
    let statuses = crp["status"]["placementStatuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 150);
    assert_eq!(statuses[7]["clusterName"], "c007");
    assert_eq!(statuses[7]["observedResourceIndex"], "0");
    assert!(crp["metadata"].get("annotations").is_none_or(|a| a.get("gitfleet.dev/cluster-files").is_none()));
    let get = gitfleet(&["get", "csur", "r1", "--repo", f.origin_str(), "-o", "json"]);
    let csur: serde_json::Value = serde_json::from_str(&stdout(&get)).unwrap();
    let stages = csur["status"]["stagesStatus"].as_array().unwrap();
    assert_eq!(stages[0]["clusters"].as_array().unwrap().len(), 50);
    assert_eq!(stages[1]["clusters"].as_array().unwrap().len(), 100);
    assert_eq!(stages[1]["clusters"][0]["clusterName"], "c050");

    // Nothing to do: no commit.
    let commits = f.log().len();
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.log().len(), commits, "{}", stderr(&out));

    // Three more clusters: the summary, their three bindings and their
    // member status documents, nothing else.
    f.pull();
    for i in 150..153 {
        f.write(&format!("clusters/c{i:03}.yaml"), &member(&format!("c{i:03}"), "b"));
    }
    f.commit_all("three more");
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (sha, author, _) = f.log()[0].clone();
    assert_eq!(author, "gitfleet");
    let mut files = f.changed_files(&sha);
    files.sort();
    assert_eq!(
        files,
        [
            "status/clusterresourcebindings/app/app-c150.yaml",
            "status/clusterresourcebindings/app/app-c151.yaml",
            "status/clusterresourcebindings/app/app-c152.yaml",
            CRP,
            "status/memberclusters/c150.yaml",
            "status/memberclusters/c151.yaml",
            "status/memberclusters/c152.yaml",
        ]
    );

    // A cluster file gone, read by a gitfleet that has no record of its own
    // commits (a new state folder): the placement and its runs wait, nothing
    // is applied or rewritten. (The first one puts the file back.)
    f.pull();
    f.remove("status/clusterresourcebindings/app/app-c009.yaml");
    f.write("resources/app.yaml", &test_namespace("two"));
    f.write("runs/r2.yaml", &run("r2"));
    f.commit_all("a binding removed, a new run");
    let fresh = f.state_dir().with_file_name("fresh-state");
    let applied = fresh.join("clusters/c000/_cluster/namespace/test-namespace.yaml");
    let out = run_once_in(&f, &fresh);
    let log = stderr(&out);
    assert!(
        log.contains(&format!("{CRP}: gitfleet cannot read its own status (its cluster files under status/clusterresourcebindings/app/ do not fit: it names 153 cluster files, 152 were found)")),
        "{log}"
    );
    assert!(log.contains("run r2 waits: the status of its placement app cannot be read"), "{log}");
    assert!(!applied.exists(), "no cluster updated");
    assert!(f.origin_file("status/clusterstagedupdateruns/r2.yaml").is_none());
    let get = gitfleet(&["get", "crp", "--repo", f.origin_str()]);
    assert_eq!(get.status.code(), Some(2));
    assert!(
        stderr(&get).contains(&format!("{CRP}: gitfleet cannot read its own status")),
        "{}",
        stderr(&get)
    );

    // The gitfleet that wrote it puts the file back, and r2 goes on.
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(f.origin_file("status/clusterresourcebindings/app/app-c009.yaml").is_some());
    assert!(
        f.origin_file("status/clusterstagedupdateruns/r2.yaml").is_some_and(|d| d.contains("stageName: a"))
    );
    let get = gitfleet(&["get", "crp", "--repo", f.origin_str()]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
}

/// The real size: 10,000 clusters in three stages. Every status file stays
/// under 1.5 MiB, `get` shows the finished run, and the next pass neither
/// starts it again nor commits anything. Run it with
/// `cargo test --release --test status -- --ignored`.
#[test]
#[ignore = "10,000 clusters: cargo test --release --test status -- --ignored"]
fn ten_thousand_clusters_read_back_what_they_wrote() {
    const N: usize = 10_000;
    let f = Fleet::new();
    for i in 0..N {
        let stage = ["a", "b", "c"][i * 3 / N];
        f.write(&format!("clusters/c{i:05}.yaml"), &member(&format!("c{i:05}"), stage));
    }
    f.write("resources/app.yaml", &test_namespace("one"));
    f.write(
        "placements/app.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: app\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: test-namespace}\n  strategy:\n    type: External\n",
    );
    let stages: String = ["a", "b", "c"]
        .iter()
        .map(|s| format!("  - name: {s}\n    maxConcurrency: 100%\n    labelSelector: {{matchLabels: {{stage: {s}}}}}\n"))
        .collect();
    f.write(
        "strategies/three.yaml",
        &format!("apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: three\nspec:\n  stages:\n{stages}"),
    );
    f.write(
        "runs/r.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: r\nspec:\n  placementName: app\n  stagedRolloutStrategyName: three\n",
    );
    f.commit_all("10,000 clusters");
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (subject, body) = {
        let text = git(&f.origin, &["log", "-1", "--format=%s%n%b", "main"]);
        let (s, b) = text.split_once('\n').unwrap_or((&text, ""));
        (s.to_string(), b.to_string())
    };
    assert!(subject.len() <= 110, "{subject}");
    assert!(body.len() < 4096, "{} bytes of body", body.len());
    let sizes = git(&f.origin, &["ls-tree", "-r", "-l", "main", "status/"]);
    let largest =
        sizes.lines().filter_map(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok()).max().unwrap();
    assert!(largest < 1536 * 1024, "largest status file: {largest} bytes");
    assert_eq!(origin_files(&f, "status/clusterresourcebindings/app").len(), N);

    let get = gitfleet(&["get", "csur", "--repo", f.origin_str()]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    let row = stdout(&get).lines().find(|l| l.starts_with("r ")).unwrap().to_string();
    assert_eq!(row.matches("True").count(), 2, "INITIALIZED and SUCCEEDED: {row}");

    let commits = f.log().len();
    let out = run_once(&f);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.log().len(), commits, "nothing started again: {}", stderr(&out));
    assert!(!stderr(&out).contains("updating cluster"), "no cluster updated again");
}

/// Replicas with one signing key (`--shards`) build on each other's status
/// commits when they touch other files; a status change by anyone else, or
/// to the same file, still makes the pass start over.
#[test]
fn a_replica_builds_on_another_replicas_signed_commit_to_other_files() {
    use gitfleet::status::sign::{CommitSigner, SigningKey};
    let f = Fleet::example();
    let key = common::keygen(f.dir.path(), "signing-key");
    let replica = |name: &str| {
        let dir = f.dir.path().join(name);
        let mut st = StateRepo::open(&dir, f.origin_str(), Credentials::default()).unwrap();
        st.sign_with(CommitSigner::Ssh(Box::new(SigningKey::read(&key).unwrap())));
        st
    };
    let (a, b) = (replica("a"), replica("b"));
    // One status file written on top of `base`, as replica `st` does.
    let publish = |st: &StateRepo, base, path: &str, text: &str| {
        let mut c = StatusChanges::default();
        c.writes.insert(format!("clusterresourceplacements/{path}"), text.as_bytes().to_vec());
        st.publish("main", base, "status", &c, "replica", &Identity::default())
    };
    let base = a.fetch("main").unwrap();
    let b_base = b.fetch("main").unwrap();
    // B pushes first, to another file; A's push is rebuilt on it.
    publish(&b, b_base, "q.yaml", "b: 1\n").unwrap().unwrap();
    let pushed = publish(&a, base, "p.yaml", "a: 1\n").unwrap().unwrap();
    assert_eq!(f.log()[0].0, pushed.to_string());
    assert_eq!(f.origin_file("status/clusterresourceplacements/q.yaml").unwrap(), "b: 1\n");
    assert_eq!(f.origin_file("status/clusterresourceplacements/p.yaml").unwrap(), "a: 1\n");

    // The same file: A starts over.
    let base = a.fetch("main").unwrap();
    let b_base = b.fetch("main").unwrap();
    publish(&b, b_base, "p.yaml", "b: 2\n").unwrap();
    let err = publish(&a, base, "p.yaml", "a: 2\n").unwrap_err();
    assert!(err.to_string().contains("changed while gitfleet was committing to it"), "{err}");

    // Someone else's status change: A starts over too.
    let base = a.fetch("main").unwrap();
    f.pull();
    f.write("status/clusterresourceplacements/q.yaml", "mallory: 1\n");
    f.commit_all("edit status");
    let err = publish(&a, base, "p.yaml", "a: 3\n").unwrap_err();
    assert!(err.to_string().contains("changed while gitfleet was committing to it"), "{err}");
}
