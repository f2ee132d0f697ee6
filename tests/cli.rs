//! The command line as users and scripts see it: output, messages, exit codes.

mod common;

use common::{Fleet, gitfleet, stderr, stdout, test_namespace};

fn example_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/example-repo").to_string()
}

#[test]
fn validate_accepts_the_example_repository() {
    let out = gitfleet(&["validate", &example_dir()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
}

/// Copies the example into a temp folder, applies `change`, validates it.
fn validate_with(change: impl FnOnce(&std::path::Path)) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(std::path::Path::new(&example_dir()), dir.path());
    change(dir.path());
    let out = gitfleet(&["validate", dir.path().to_str().unwrap()]);
    (out.status.code().unwrap_or(-1), stdout(&out) + &stderr(&out))
}

#[test]
fn validate_rejects_bad_input_naming_the_file() {
    let bomb = (1..9).fold("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n".to_string(), |s, i| {
        s + &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(","))
    });
    let cases: Vec<(&str, String, &str)> = vec![
        ("resources/syntax.yaml", "a: [1, 2\nb: 3\n".into(), "resources/syntax.yaml:"),
        ("resources/bomb.yaml", bomb, "resources/bomb.yaml"),
        ("resources/deep.yaml", format!("{}{}", "[".repeat(5000), "]".repeat(5000)), "resources/deep.yaml"),
        ("resources/nokind.yaml", "apiVersion: v1\nmetadata:\n  name: x\n".into(), "object has no kind"),
        (
            "strategies/bad.yaml",
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: bad\nspec:\n  stages:\n  - name: Canary-1\n".into(),
            "strategies/bad.yaml:1: ClusterStagedUpdateStrategy/bad: spec.stages[0].name",
        ),
        (
            "runs/orphan.yaml",
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: orphan\nspec:\n  placementName: nope\n  stagedRolloutStrategyName: example-strategy\n".into(),
            "runs/orphan.yaml:1: ClusterStagedUpdateRun/orphan: spec.placementName: ClusterResourcePlacement nope does not exist",
        ),
        (
            "resources/env.yaml",
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourceEnvelope\nmetadata:\n  name: e\n  namespace: app\ndata:\n  r.yaml:\n    apiVersion: rbac.authorization.k8s.io/v1\n    kind: ClusterRole\n    metadata:\n      name: r\n".into(),
            "a ResourceEnvelope may only wrap namespaced",
        ),
        ("gitfleet.yaml", "include: 7\n".into(), "gitfleet.yaml"),
    ];
    for (path, content, expected) in cases {
        let (code, output) = validate_with(|dir| std::fs::write(dir.join(path), &content).unwrap());
        assert_eq!(code, 1, "{path}: {output}");
        assert!(output.contains(expected), "{path}: expected {expected:?} in\n{output}");
        assert!(!output.contains("panicked"), "{output}");
    }
}

#[test]
fn validate_rejects_huge_files_and_outside_symlinks() {
    let (code, output) = validate_with(|dir| {
        std::fs::write(dir.join("resources/huge.yaml"), vec![b'#'; 5 * 1024 * 1024]).unwrap();
    });
    assert_eq!(code, 1);
    assert!(output.contains("resources/huge.yaml: file is too large"), "{output}");

    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: stolen\n").unwrap();
    let (code, output) = validate_with(|dir| {
        std::os::unix::fs::symlink(secret.path(), dir.join("resources/link.yaml")).unwrap();
    });
    assert_eq!(code, 1);
    assert!(output.contains("resources/link.yaml: is a symbolic link"), "{output}");
    assert!(!output.contains("stolen"));
}

#[test]
fn validate_a_commit_of_a_bare_repository() {
    let f = Fleet::example();
    let good = common::git(&f.work, &["rev-parse", "HEAD"]);
    f.write("placements/example-placement.yaml", "kind: ClusterResourcePlacement\n");
    f.commit_all("break it");
    let out = gitfleet(&["validate", f.origin_str(), "--rev", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = gitfleet(&["validate", f.origin_str(), "--rev", "main"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("placements/example-placement.yaml:1: ClusterResourcePlacement: object has no apiVersion, no metadata.name"), "{}", stdout(&out));
    let out = gitfleet(&["validate", f.origin_str(), "--rev", "no-such-rev"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: revision no-such-rev not found"), "{}", stderr(&out));
}

#[test]
fn environment_errors_exit_2() {
    let out = gitfleet(&["validate", "/no/such/folder"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.git");
    let out = gitfleet(&[
        "run",
        "--repo",
        missing.to_str().unwrap(),
        "--state-dir",
        dir.path().join("s").to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().filter(|l| l.starts_with("error: ")).count(), 1, "{}", stderr(&out));
}

#[test]
fn get_snapshots_before_and_after_run() {
    let f = Fleet::example();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let repo = f.origin_str();
    let before = gitfleet(&["get", "clusterresourcesnapshots", "--repo", repo, "--show-labels"]);
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let table = stdout(&before);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "GEN", "AGE", "LABELS", "COMMIT"]);
    let row = lines.iter().find(|l| l.starts_with("example-placement-1-snapshot")).unwrap();
    assert!(row.contains("kubernetes-fleet.io/is-latest-snapshot=true,kubernetes-fleet.io/parent-CRP=example-placement,kubernetes-fleet.io/resource-index=1"), "{row}");

    let run = gitfleet(&["run", "--repo", repo, "--state-dir", f.state_dir().to_str().unwrap(), "--once"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let after = gitfleet(&["get", "clusterresourcesnapshots", "--repo", repo]);
    // Compared without the AGE column, which moves with the clock.
    let without_age = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| {
                l.split_whitespace()
                    .enumerate()
                    .filter(|(i, _)| *i != 2)
                    .map(|(_, w)| w.to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        without_age(&stdout(&after)),
        without_age(&table),
        "recorded snapshots are what get showed before the run"
    );

    let yaml = gitfleet(&[
        "get",
        "clusterresourcesnapshots",
        "example-placement-1-snapshot",
        "--repo",
        repo,
        "-o",
        "yaml",
    ]);
    let yaml = stdout(&yaml);
    assert!(yaml.contains("kind: ClusterResourceSnapshot"), "{yaml}");
    assert!(yaml.contains("key: value2"), "{yaml}");
    assert!(yaml.contains("kubernetes-fleet.io/resource-hash: "), "{yaml}");
}

#[test]
fn get_lists_as_json_and_tables_with_seed_columns() {
    let f = Fleet::example();
    let repo = f.origin_str();
    let json = gitfleet(&["get", "crp", "--repo", repo, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    let names: Vec<&str> =
        v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["crp-with-envelope", "example-placement"]);
    assert_eq!(v["items"][1]["metadata"]["generation"], 1);

    let csur = stdout(&gitfleet(&["get", "csur", "--repo", repo]));
    let header: Vec<&str> = csur.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PLACEMENT",
            "RESOURCE-SNAPSHOT-INDEX",
            "POLICY-SNAPSHOT-INDEX",
            "INITIALIZED",
            "SUCCEEDED",
            "AGE"
        ]
    );
    assert!(csur.lines().nth(1).unwrap().starts_with("example-run   example-placement   0"), "{csur}");

    let crp = stdout(&gitfleet(&["get", "clusterresourceplacement", "example-placement", "--repo", repo]));
    let header: Vec<&str> = crp.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE"]);

    let careq = gitfleet(&["get", "clusterapprovalrequest", "--repo", repo]);
    assert_eq!(careq.status.code(), Some(0));
    assert!(stderr(&careq).contains("No resources found"));

    // Editing a placement's spec bumps its generation.
    let p =
        f.read("placements/example-placement.yaml").replace("spec:\n", "spec:\n  revisionHistoryLimit: 5\n");
    f.write("placements/example-placement.yaml", &p);
    f.commit_all("limit");
    let crp = stdout(&gitfleet(&["get", "crp", "example-placement", "--repo", repo]));
    assert!(crp.lines().nth(1).unwrap().starts_with("example-placement   2"), "{crp}");
}

#[test]
fn get_user_errors_exit_1() {
    let f = Fleet::example();
    let out = gitfleet(&["get", "widgets", "--repo", f.origin_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown kind \"widgets\""));
    let out = gitfleet(&["get", "csur", "nope", "--repo", f.origin_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("clusterstagedupdateruns \"nope\" not found"), "{}", stderr(&out));
}

#[test]
fn demo_runs_the_walkthrough() {
    let out = gitfleet(&["demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let normalized = words(&text);
    for expected in [
        "gitfleet: record example-placement-1-snapshot",
        "gitfleet: example-run updated member2",
        "gitfleet: example-run updated member3, member1; example-run canary waiting for approval example-run-canary",
        "example-run-canary   example-run     canary   True       True",
        "gitfleet: example-run-2-canary approved by admin@example.com; example-run-2 succeeded",
        "member1: test-namespace/test-cm key=value1",
        "gitfleet: verified-run succeeded",
        "member3 Successful 0.001",
        "bad-run rolled back member1 to snapshot 2, member3 to snapshot 2, member2 to snapshot 2",
        "failed on cluster member1 in stage canary: 1 measurement(s) failed `result < 0.05`",
        "member1 Failed 0.25",
        "member1 canary 2 True Returned to snapshot 2",
        "demo finished in",
    ] {
        assert!(normalized.contains(&words(expected)), "missing {expected:?} in\n{text}");
    }
    let after_rollback = text.rsplit("A bad release").next().unwrap_or_default();
    for m in ["member1", "member2", "member3"] {
        let line = format!("{m}: test-namespace/test-cm key=value3");
        assert!(after_rollback.contains(&line), "{m} back at value3:\n{after_rollback}");
    }
}

/// `--log-format json`: every log line is one JSON object with its level,
/// message and the event's fields (here the member cluster announcements).
#[test]
fn json_logs_are_one_object_a_line_with_fields() {
    let f = Fleet::example();
    let state = f.dir.path().join("state");
    let out = gitfleet(&[
        "--log-format",
        "json",
        "run",
        "--repo",
        f.origin_str(),
        "--state-dir",
        state.to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["message"].is_string()), "{lines:?}");
    let announced: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "member cluster")
        .filter_map(|l| l["cluster"].as_str())
        .collect();
    assert_eq!(announced, ["member1", "member2", "member3"], "{lines:?}");
}

/// `run` saves its snapshot index under --state-dir and starts from it; a file
/// that does not fit is rebuilt from history with one warning line.
#[test]
fn run_starts_from_the_saved_index_and_rebuilds_a_bad_one() {
    let f = Fleet::example();
    let state = f.state_dir();
    let run = || {
        let out =
            gitfleet(&["run", "--repo", f.origin_str(), "--state-dir", state.to_str().unwrap(), "--once"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    let warnings = |log: &str| -> Vec<String> {
        log.lines().filter(|l| l.contains("snapshot index")).map(str::to_string).collect()
    };
    let first = run();
    assert_eq!(warnings(&first).len(), 1, "{first}");
    assert!(first.contains("no saved index yet; indexing the history again"), "{first}");
    let saved = state.join("snapshot-index.json");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.starts_with("{\"format\":1,"), "{text}");

    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let second = run();
    assert!(second.contains("snapshot index loaded"), "{second}");
    assert!(!second.contains("indexing the history again"), "{second}");
    let snapshots = gitfleet(&["get", "clusterresourcesnapshots", "--repo", f.origin_str()]);
    assert!(stdout(&snapshots).contains("example-placement-1-snapshot"), "{}", stdout(&snapshots));
    let after_two = std::fs::read_to_string(&saved).unwrap();
    assert_ne!(after_two, text, "the new commit is saved");
    // Once more, to index the status commit the second run pushed.
    run();
    let after_two = std::fs::read_to_string(&saved).unwrap();

    // An index of this very clone, saved for another repository.
    let clone = git2::Repository::open_bare(state.join("repo.git")).unwrap();
    let mut other = gitfleet::snapshot::Indexer::new(None);
    other.sync(&clone, clone.refname_to_id("refs/remotes/origin/main").unwrap()).unwrap();
    let foreign = state.join("foreign.json");
    other.save(&foreign, "https://git.example.com/other.git branch main folder /").unwrap();
    let foreign = std::fs::read_to_string(&foreign).unwrap();
    for (bad, reason) in [
        ("{\"format\":1,\"source\":".to_string(), "it is corrupt"),
        (after_two.replacen("\"format\":1", "\"format\":0", 1), "it has format 0"),
        (
            after_two.replacen("\"gitfleet\":\"", "\"gitfleet\":\"0.0.0-", 1),
            "it was saved by gitfleet 0.0.0-",
        ),
        (after_two.replacen("\"commits\":", "\"commits\": ", 1), "does not match its checksum"),
        (foreign, "it was saved for https://git.example.com/other.git branch main folder /"),
    ] {
        std::fs::write(&saved, bad).unwrap();
        let log = run();
        let lines = warnings(&log);
        assert_eq!(lines.len(), 1, "{log}");
        assert!(lines[0].contains(reason) && lines[0].contains("indexing the history again"), "{log}");
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), after_two, "rebuilt and saved again");
    }
}

/// gitfleet reads back what it wrote: a status document it cannot read (here
/// over a lowered size limit, as a run over ~6,000 clusters was over the 4 MiB
/// budget) stops what depends on it with a clear error and is never replaced
/// by a fresh start; `get` fails naming the file instead of showing empty columns.
#[test]
fn own_status_it_cannot_read_is_an_error_not_a_fresh_start() {
    let f = Fleet::example();
    f.write(
        "strategies/example-strategy.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: all\n    labelSelector: {}\n",
    );
    f.commit_all("one stage");
    let state = f.state_dir();
    let run = |limit: Option<usize>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"));
        cmd.args(["run", "--repo", f.origin_str(), "--state-dir", state.to_str().unwrap(), "--once"]);
        if let Some(limit) = limit {
            cmd.env("GITFLEET_TEST_STATUS_LIMIT", limit.to_string());
        }
        cmd.output().unwrap()
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    const RUN: &str = "status/clusterstagedupdateruns/example-run.yaml";
    let written = f.origin_file(RUN).unwrap();
    assert!(written.contains("reason: UpdateRunSucceeded"), "{written}");
    let cluster_file = state.join("clusters/member1/_cluster/namespace/test-namespace.yaml");
    let applied = std::fs::metadata(&cluster_file).unwrap().modified().unwrap();
    let commits = f.log().len();

    let limit = written.len() - 1;
    let out = run(Some(limit));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{RUN}: gitfleet cannot read its own status (file is"))
            && text.contains("what depends on it is left as it is"),
        "{text}"
    );
    assert_eq!(f.origin_file(RUN).unwrap(), written, "the run's document is not replaced");
    assert_eq!(
        std::fs::metadata(&cluster_file).unwrap().modified().unwrap(),
        applied,
        "no cluster updated again"
    );
    let new: Vec<_> = f.log().into_iter().take(f.log().len() - commits).collect();
    for (sha, _, _) in &new {
        assert!(!f.changed_files(sha).iter().any(|p| p == RUN), "{RUN} rewritten by {sha}");
    }

    let get = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["get", "csur", "--repo", f.origin_str()])
        .env("GITFLEET_TEST_STATUS_LIMIT", limit.to_string())
        .output()
        .unwrap();
    assert_eq!(get.status.code(), Some(2), "{}", stdout(&get));
    assert!(
        stderr(&get).contains(&format!("{RUN}: gitfleet cannot read its own status")),
        "{}",
        stderr(&get)
    );
    let get = gitfleet(&["get", "csur", "--repo", f.origin_str()]);
    assert!(
        stdout(&get).lines().any(|l| l.starts_with("example-run") && l.contains("True")),
        "{}",
        stdout(&get)
    );
}

/// `--shards` asks for what it needs, in one line each.
#[test]
fn shards_need_leader_election_a_signing_key_and_a_running_process() {
    let f = Fleet::example();
    let state = f.state_dir();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--repo", f.origin_str(), "--state-dir", state.to_str().unwrap()];
        args.extend_from_slice(extra);
        gitfleet(&args)
    };
    let out = run(&["--shards", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--leader-elect"), "{}", stderr(&out));
    let out = run(&["--leader-elect", "--leader-elect-resource-namespace", "ns", "--shards", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--shards needs --signing-key"), "{}", stderr(&out));
    let out = run(&["--leader-elect", "--leader-elect-resource-namespace", "ns", "--shards", "3", "--once"]);
    assert!(
        stderr(&out).contains("--shards is for replicas that keep running, not --once"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--leader-elect", "--leader-elect-resource-namespace", "ns", "--shards", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `validate --format github` writes GitHub Actions annotations, `--format
/// json` a machine-readable report; the exit code is the same.
#[test]
fn validate_reports_for_ci() {
    let f = Fleet::example();
    f.write(
        "fleet/strategies/bad.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: bad\nspec:\n  stages:\n  - name: Bad_Name, 50%\n",
    );
    f.commit_all("bad strategy in a sub-folder");
    let repo = f.origin_str();
    let out = gitfleet(&["validate", repo, "--rev", "main", "--path", "fleet", "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // The path is the repository's; `:` and `,` in properties and `%` are escaped.
    assert!(
        text.starts_with("::error file=fleet/strategies/bad.yaml,line=1,title=gitfleet validate::ClusterStagedUpdateStrategy/bad: spec.stages[0].name: \"Bad_Name, 50%25\" must match"),
        "{text}"
    );
    let out = gitfleet(&["validate", repo, "--rev", "main", "--path", "fleet", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"][0]["file"], "fleet/strategies/bad.yaml");
    assert_eq!(report["errors"][0]["line"], 1);
    assert_eq!(report["errors"][0]["object"], "ClusterStagedUpdateStrategy/bad");
    let out = gitfleet(&["validate", &example_dir(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((report["ok"].as_bool(), report["errors"].as_array().map(Vec::len)), (Some(true), Some(0)));
}

/// `preview`: what a pull request changes, per placement, from Git alone.
#[test]
fn preview_shows_what_a_pull_request_changes() {
    let f = Fleet::example();
    let base = f.commit_all("base");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.write(
        "resources/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: test-namespace\nstringData:\n  password: hunter2\n",
    );
    f.write(
        "runs/example-run-2.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: example-run-2\nspec:\n  placementName: example-placement\n  stagedRolloutStrategyName: example-strategy\n",
    );
    let strategy = f.read("strategies/example-strategy.yaml").replace(
        "        - type: Approval\n",
        "        - type: Approval\n        - type: Verification\n          onFailure: Rollback\n          verification:\n            provider: {web: {url: 'http://checks.example/${STAGE}', jsonPath: '{$.rate}'}}\n            successCondition: result < 0.05\n            interval: 10s\n            count: 3\n",
    );
    f.write("strategies/example-strategy.yaml", &strategy);
    let head = f.commit_all("value2, a secret, a run and a verified canary");
    let out = gitfleet(&["preview", "--repo", f.origin_str(), "--base", &base, "--head", &head]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = stdout(&out);
    for part in [
        "**1 of 2 placement(s) change.**",
        "### example-placement: new resource snapshot (after example-placement-0)",
        "Clusters: member1, member2, member3 (3).",
        "Rollout: run example-run-2 (strategy example-strategy) is added or changed.",
        "| staging | member2 |  | wait 1m0s |",
        "| canary | member3, member1 |  | approval gate, verify `result < 0.05` with web (3 x 10s, roll back on failure) |",
        "| member1 | 1 | 1 | 0 |",
        "<details><summary>ConfigMap test-namespace/test-cm on member1, member2, member3</summary>",
        "-  key: value1\n+  key: value2",
        "+  password: \"***\"",
        "Unchanged: crp-with-envelope.",
    ] {
        assert!(md.contains(part), "{part:?} not in:\n{md}");
    }
    assert!(!md.contains("hunter2"), "a Secret's value is never shown");
    // Cut to fit a comment, with a note.
    let out = gitfleet(&[
        "preview",
        "--repo",
        f.origin_str(),
        "--base",
        &base,
        "--head",
        &head,
        "--max-bytes",
        "500",
    ]);
    let md = stdout(&out);
    assert!(
        !md.contains("<details>") && md.contains("Some diffs were left out to stay under 500 bytes"),
        "{md}"
    );
    // Errors of the head commit come first, in a code block whatever they hold.
    f.write("placements/bad`<b>name.yaml", "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata: {name: bad}\nspec: {policy: {placementType: PickSome}}\n");
    let broken = f.commit_all("a broken placement");
    let out = gitfleet(&["preview", "--repo", f.origin_str(), "--base", &base, "--head", &broken]);
    let md = stdout(&out);
    assert!(
        md.contains(
            "**The head commit has 2 error(s)** (`gitfleet validate`):\n\n```\nplacements/bad`<b>name.yaml:1:"
        ),
        "{md}"
    );
    // Nothing changes: said so.
    let out = gitfleet(&["preview", "--repo", f.origin_str(), "--base", &head, "--head", &head]);
    assert!(stdout(&out).contains("**0 of 2 placement(s) change.**"), "{}", stdout(&out));
    let out = gitfleet(&["preview", "--repo", f.origin_str(), "--base", "no-such-rev", "--head", &head]);
    assert_eq!(out.status.code(), Some(1));
}

/// The CI examples in deploy/ci: their validate and preview commands, exactly
/// as written, against a fleet repository with a pull request.
#[test]
fn ci_examples_run_their_commands() {
    let f = Fleet::example();
    let base = f.commit_all("base");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    let head = f.commit_all("value2");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_gitfleet")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let tmp = tempfile::tempdir().unwrap();
    let run = |script: &str, env: &[(&str, &str)]| {
        let out = std::process::Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(&f.work)
            .env("PATH", &path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let yaml = |file: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    };

    // GitHub Actions: the steps with an id, their `run` as written, their env as GitHub would set it.
    let workflow = yaml("deploy/ci/github-actions.yaml");
    let steps = workflow["jobs"]["preview"]["steps"].as_array().unwrap();
    let step = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap();
    assert_eq!(step("preview")["env"]["BASE"], "${{ github.event.pull_request.base.sha }}");
    assert_eq!(step("preview")["env"]["HEAD"], "${{ github.event.pull_request.head.sha }}");
    let runner_temp = tmp.path().to_str().unwrap();
    let (code, out, err) = run(step("validate")["run"].as_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let env = [("BASE", base.as_str()), ("HEAD", head.as_str()), ("RUNNER_TEMP", runner_temp)];
    let (code, out, err) = run(step("preview")["run"].as_str().unwrap(), &env);
    assert_eq!(code, Some(0), "{out}{err}");
    let md = std::fs::read_to_string(tmp.path().join("preview.md")).unwrap();
    assert!(md.contains("### example-placement: new resource snapshot"), "{md}");
    let comment = steps.iter().find(|s| s["name"] == "Comment").unwrap()["run"].as_str().unwrap();
    assert!(comment.contains("\"$RUNNER_TEMP/preview.md\""), "the comment posts the file the preview wrote");

    // GitLab CI: the job's script lines, as written.
    let job = &yaml("deploy/ci/gitlab-ci.yaml")["gitfleet"];
    let env = [("CI_MERGE_REQUEST_DIFF_BASE_SHA", base.as_str()), ("CI_COMMIT_SHA", head.as_str())];
    for line in job["script"].as_array().unwrap() {
        let (code, out, err) = run(line.as_str().unwrap(), &env);
        assert_eq!(code, Some(0), "{line}: {out}{err}");
    }
    let md = std::fs::read_to_string(f.work.join("preview.md")).unwrap();
    assert!(md.contains("### example-placement: new resource snapshot"), "{md}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.work.join("validate.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], true);
    let notes = job["after_script"][0].as_str().unwrap();
    assert!(notes.contains("body@preview.md"), "the note posts the file the preview wrote");

    // A broken manifest in the pull request: the validate steps fail and say where.
    f.write("placements/broken.yaml", "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata: {name: broken}\nspec: {policy: {placementType: PickSome}}\n");
    let (code, out, _) = run(step("validate")["run"].as_str().unwrap(), &[]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("::error file=placements/broken.yaml,line="), "{out}");
    let (code, out, _) = run(job["script"][0].as_str().unwrap(), &env);
    assert_eq!(code, Some(1));
    assert!(out.contains("\"file\": \"placements/broken.yaml\""), "{out}");
}
