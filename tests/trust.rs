//! Only gitfleet writes status: a person with push access who edits the status
//! folder (a forged approval request, a forged or copied run status, on the
//! tracked branch or on `statusBranch`) changes nothing gitfleet does; the
//! edit is reported and put back by the next status commit.

mod common;

use std::path::Path;

use common::{Fleet, approve_by_merge, git, gitfleet, stderr, test_namespace};
use gitfleet::cli::{RunArgs, reconciler};
use gitfleet::reconcile::Reconciler;

const T0: i64 = 1_900_000_000;
const REQUEST: &str = "status/clusterapprovalrequests/example-run-canary.yaml";
const RUN_STATUS: &str = "status/clusterstagedupdateruns/example-run.yaml";

fn run_file(name: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: example-strategy\n"
    )
}

/// A fleet with value2 pushed and no run yet, and its reconciler.
fn seed() -> (Fleet, Reconciler) {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2, no run yet");
    let r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    (f, r)
}

/// Commits everything in `dir` as Mallory, who may push but not approve.
fn commit_as_mallory(dir: &Path, message: &str) {
    let mallory = ("Mallory", "mallory@example.com");
    common::commit_as(dir, mallory, mallory, message, None);
}

/// Mallory's edit of status files on `branch` (pulled first), pushed.
fn forge(f: &Fleet, branch: &str, files: &[(&str, &str)]) {
    git(&f.work, &["fetch", "-q", "origin"]);
    git(&f.work, &["checkout", "-q", "-B", branch, &format!("origin/{branch}")]);
    for (path, text) in files {
        f.write(path, text);
    }
    commit_as_mallory(&f.work, "fix status");
    git(&f.work, &["push", "-q", "origin", &format!("HEAD:{branch}")]);
    git(&f.work, &["checkout", "-q", "main"]);
    git(&f.work, &["reset", "-q", "--hard", "origin/main"]);
}

fn file(f: &Fleet, branch: &str, path: &str) -> String {
    git(&f.origin, &["show", &format!("{branch}:{path}")])
}

/// `path` on origin's `branch` with `from` replaced by `to` (a forged edit).
fn edited(f: &Fleet, branch: &str, path: &str, from: &str, to: &str) -> String {
    let text = file(f, branch, path);
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replace(from, to)
}

/// A request file saying the gate was approved and accepted.
fn forged_request() -> String {
    let accepted = "status:\n  conditions:\n  - {type: Approved, status: \"True\", reason: lgtm, message: lgtm, lastTransitionTime: \"2030-03-17T17:46:40Z\", observedGeneration: 1}\n  - {type: ApprovalAccepted, status: \"True\", reason: ApprovalRequestApprovalAccepted, message: forged, lastTransitionTime: \"2030-03-17T17:46:40Z\", observedGeneration: 1}\n";
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterApprovalRequest\nmetadata:\n  name: example-run-canary\n  creationTimestamp: \"2030-03-17T17:46:40Z\"\nspec:\n  parentStageRollout: example-run\n  targetStage: canary\n{accepted}"
    )
}

/// Runs `example-run` to its canary gate.
fn to_the_gate(f: &Fleet, r: &mut Reconciler) {
    to_the_gate_on(f, r, "main");
}

/// Runs `example-run` to its canary gate, status on `status_branch`.
fn to_the_gate_on(f: &Fleet, r: &mut Reconciler, status_branch: &str) {
    r.pass(T0).unwrap();
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run"));
    f.commit_all("run example-run");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    assert!(file(f, status_branch, REQUEST).contains("targetStage: canary"));
}

#[test]
fn a_forged_approval_request_is_ignored_reported_and_put_back() {
    let (f, mut r) = seed();
    to_the_gate(&f, &mut r);
    let before = file(&f, "main", REQUEST);
    forge(&f, "main", &[(REQUEST, &forged_request())]);
    let out = r.pass(T0 + 120).unwrap();
    assert!(!file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"), "the gate holds");
    assert_eq!(file(&f, "main", REQUEST), before, "gitfleet's request is back");
    assert!(
        out.message.contains(&format!("restore {REQUEST} changed outside gitfleet (")),
        "{}",
        out.message
    );
    assert!(out.message.contains("by Mallory <mallory@example.com>"), "{}", out.message);
    // A real approval still works afterwards.
    approve_by_merge(&f, "example-run-canary");
    r.pass(T0 + 180).unwrap();
    assert!(file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"));
}

#[test]
fn a_forged_request_in_the_same_commit_as_the_run_is_removed() {
    let (f, mut r) = seed();
    r.pass(T0).unwrap();
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run"));
    f.write(REQUEST, &forged_request());
    commit_as_mallory(&f.work, "a run, and its gate already passed");
    f.push();
    let out = r.pass(T0).unwrap();
    assert!(
        out.message.contains("restore status/clusterapprovalrequests/example-run-canary.yaml"),
        "{}",
        out.message
    );
    r.pass(T0 + 60).unwrap();
    let request = file(&f, "main", REQUEST);
    assert!(!request.contains("ApprovalAccepted"), "gitfleet's own request waits: {request}");
    assert!(!file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"));
}

#[test]
fn a_forged_run_status_is_put_back() {
    let (f, mut r) = seed();
    to_the_gate(&f, &mut r);
    let before = file(&f, "main", RUN_STATUS);
    // The approval task marked approved, and the run marked succeeded.
    let forged = edited(
        &f,
        "main",
        RUN_STATUS,
        "reason: StageTaskApprovalRequestCreated",
        "reason: StageTaskApprovalRequestCreated\n        - lastTransitionTime: \"2030-03-17T17:46:40Z\"\n          message: ok\n          observedGeneration: 1\n          reason: StageTaskApprovalRequestApproved\n          status: \"True\"\n          type: ApprovalRequestApproved",
    );
    forge(&f, "main", &[(RUN_STATUS, &forged)]);
    r.pass(T0 + 120).unwrap();
    assert_eq!(file(&f, "main", RUN_STATUS), before, "nothing moved: the gate holds");
    let table = common::stdout(&gitfleet(&["get", "csur", "example-run", "--repo", f.origin_str()]));
    assert!(!table.contains("True    True"), "{table}");
}

#[test]
fn a_copied_finished_status_does_not_finish_another_run() {
    let (f, mut r) = seed();
    to_the_gate(&f, &mut r);
    approve_by_merge(&f, "example-run-canary");
    r.pass(T0 + 120).unwrap();
    let finished = file(&f, "main", RUN_STATUS).replace("example-run", "other-run");
    assert!(finished.contains("UpdateRunSucceeded"));
    f.pull();
    f.write("runs/other-run.yaml", &run_file("other-run"));
    f.write("status/clusterstagedupdateruns/other-run.yaml", &finished);
    commit_as_mallory(&f.work, "other-run, already done");
    f.push();
    r.pass(T0 + 130).unwrap();
    let other = file(&f, "main", "status/clusterstagedupdateruns/other-run.yaml");
    assert!(!other.contains("UpdateRunSucceeded"), "a run of its own, from the start: {other}");
    assert!(other.contains("name: other-run"), "{other}");
    let table = common::stdout(&gitfleet(&["get", "csur", "other-run", "--repo", f.origin_str()]));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_ne!(row.get(5), Some(&"True"), "not shown as succeeded: {table}");
}

#[test]
fn edits_to_the_status_branch_are_put_back() {
    let (f, mut r) = seed();
    f.pull();
    f.write("gitfleet.yaml", "statusBranch: fleet-status\n");
    f.commit_all("status elsewhere");
    to_the_gate_on(&f, &mut r, "fleet-status");
    let before = file(&f, "fleet-status", REQUEST);
    forge(&f, "fleet-status", &[(REQUEST, &forged_request())]);
    let out = r.pass(T0 + 120).unwrap();
    assert_eq!(file(&f, "fleet-status", REQUEST), before);
    assert!(!file(&f, "fleet-status", RUN_STATUS).contains("UpdateRunSucceeded"));
    assert!(out.message.contains("changed outside gitfleet"), "{}", out.message);
}

/// After a restart with the same state folder, gitfleet still knows its own
/// commits; with a fresh state folder it believes the tip once and says so.
#[test]
fn restarts_with_and_without_the_state_folder() {
    let (f, mut r) = seed();
    to_the_gate(&f, &mut r);
    drop(r);
    forge(&f, "main", &[(REQUEST, &forged_request())]);
    let mut again = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    again.pass(T0 + 120).unwrap();
    assert!(!file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"), "the record survived the restart");
    assert!(!file(&f, "main", REQUEST).contains("ApprovalAccepted"));

    let fresh = f.dir.path().join("fresh-state");
    let out = gitfleet(&["run", "--repo", f.origin_str(), "--state-dir", fresh.to_str().unwrap(), "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("status not verified: no --signing-key and no record in"),
        "{}",
        stderr(&out)
    );
    let out = gitfleet(&["run", "--repo", f.origin_str(), "--state-dir", fresh.to_str().unwrap(), "--once"]);
    assert!(
        !stderr(&out).contains("status not verified"),
        "said once, while the record is empty: {}",
        stderr(&out)
    );
}

fn approval(name: &str) -> String {
    gitfleet::cli::approval_yaml(name, "lgtm", "lgtm")
}

fn request_accepted(f: &Fleet) -> bool {
    file(f, "main", REQUEST).contains("ApprovalAccepted")
}

/// A fleet whose approvers are `approvers`, at its canary gate.
fn gate_with_approvers(approvers: &str) -> (Fleet, Reconciler) {
    let (f, mut r) = seed();
    f.pull();
    f.write("gitfleet.yaml", approvers);
    f.commit_all("approvers");
    to_the_gate(&f, &mut r);
    f.pull();
    (f, r)
}

/// Regression: `approvers` matched the author, which anyone can set.
#[test]
fn a_spoofed_author_does_not_approve_the_committer_does() {
    let (f, mut r) = gate_with_approvers("approvers: ['lead@example.com']\n");
    f.write("approvals/example-run-canary.yaml", &approval("example-run-canary"));
    common::commit_as(
        &f.work,
        ("Lead", "lead@example.com"),
        ("Mallory", "mallory@example.com"),
        "approve as the lead",
        None,
    );
    f.push();
    r.pass(T0 + 120).unwrap();
    assert!(!request_accepted(&f), "Mallory committed it");
    let request = file(&f, "main", REQUEST);
    assert!(
        request.contains("committer mallory@example.com is not an approver")
            && request.contains("ApprovalNotAccepted"),
        "the request says why: {request}"
    );

    f.pull();
    f.write("approvals/example-run-canary.yaml", &approval("example-run-canary").replace("lgtm", "ok"));
    common::commit_as(
        &f.work,
        ("Mallory", "mallory@example.com"),
        ("Lead", "lead@example.com"),
        "the lead commits it",
        None,
    );
    f.push();
    let out = r.pass(T0 + 180).unwrap();
    assert!(request_accepted(&f));
    assert!(file(&f, "main", REQUEST).contains("gitfleet.dev/approved-by: lead@example.com"));
    assert!(out.message.contains("example-run-canary approved by lead@example.com"), "{}", out.message);
}

/// Regression: one commit could make its own author an approver.
#[test]
fn approvers_are_read_as_they_were_when_the_request_was_made() {
    let (f, mut r) = gate_with_approvers("approvers: ['lead@example.com']\n");
    f.write("gitfleet.yaml", "approvers: ['*']\n");
    f.write("approvals/example-run-canary.yaml", &approval("example-run-canary"));
    commit_as_mallory(&f.work, "everyone approves now, and so do I");
    f.push();
    r.pass(T0 + 120).unwrap();
    assert!(!request_accepted(&f));
    assert!(!file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"));
}

/// Regression: a gitfleet.yaml that never parsed meant "anyone may approve".
#[test]
fn settings_that_do_not_parse_accept_no_approval() {
    let (f, mut r) = gate_with_approvers("approvers: ['lead@example.com'\n");
    approve_by_merge(&f, "example-run-canary");
    r.pass(T0 + 120).unwrap();
    assert!(!request_accepted(&f), "fail closed");
}

/// Regression: an approval written on a branch before the request existed got
/// through when the request's history was merged into that branch and the
/// branch was pushed to main (a "foxtrot" merge).
#[test]
fn an_approval_written_before_the_request_does_not_pass_a_foxtrot_merge() {
    let (f, mut r) = seed();
    r.pass(T0).unwrap();
    f.pull();
    git(&f.work, &["checkout", "-q", "-b", "early"]);
    f.write("approvals/example-run-canary.yaml", &approval("example-run-canary"));
    git(&f.work, &["add", "-A"]);
    git(&f.work, &["commit", "-q", "-m", "approve before anything asks"]);
    git(&f.work, &["checkout", "-q", "main"]);
    f.write("runs/example-run.yaml", &run_file("example-run"));
    f.commit_all("run example-run");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    assert!(file(&f, "main", REQUEST).contains("targetStage: canary"));
    // git pull --no-rebase of main into the early branch, then push it as main.
    git(&f.work, &["checkout", "-q", "early"]);
    git(&f.work, &["pull", "-q", "--no-rebase", "--no-edit", "origin", "main"]);
    git(&f.work, &["push", "-q", "origin", "early:main"]);
    git(&f.work, &["checkout", "-q", "main"]);
    git(&f.work, &["reset", "-q", "--hard", "origin/main"]);
    r.pass(T0 + 120).unwrap();
    assert!(
        file(&f, "main", REQUEST).contains("targetStage: canary"),
        "gitfleet's status survives the merge"
    );
    assert!(!request_accepted(&f));
    assert!(!file(&f, "main", RUN_STATUS).contains("UpdateRunSucceeded"));
}

/// Regression: a token written in the repository URL was printed in errors
/// and kept in the state folder's Git config.
#[test]
fn a_token_in_the_repository_url_is_never_shown_or_stored() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let url = "https://fleet-bot:s3cr3t-t0ken@127.0.0.1:9/fleet.git";
    let st = state.to_str().unwrap();
    for args in [
        vec!["run", "--repo", url, "--state-dir", st, "--once"],
        vec!["get", "crp", "--repo", url],
        vec!["diff", "app", "--repo", url, "--state-dir", st],
        vec!["approve", "x", "--repo", url],
    ] {
        let out = gitfleet(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let shown = format!("{}{}", stderr(&out), common::stdout(&out));
        assert!(!shown.contains("s3cr3t"), "{args:?} shows the token: {shown}");
        assert!(shown.contains("127.0.0.1:9"), "{args:?} still names the repository: {shown}");
    }
    let config = std::fs::read_to_string(state.join("repo.git/config")).unwrap();
    assert!(!config.contains("s3cr3t"), "{config}");
    assert!(config.contains("https://fleet-bot@127.0.0.1:9/fleet.git"), "{config}");
}

/// With a signing key, a branch moved back to an older signed status commit
/// (and built on) is not believed: gitfleet goes by its own last commit and
/// puts back the status it had, instead of opening the gate anew.
#[test]
fn a_branch_moved_back_to_an_older_signed_status_is_not_believed() {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2, no run yet");
    let key = common::keygen(f.dir.path(), "signing-key");
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.signing_key = Some(key);
    let mut r = reconciler(&args).unwrap();
    to_the_gate(&f, &mut r);
    let request = file(&f, "main", REQUEST);
    // The first status commit (snapshots only, signed), before the run existed.
    let first = git(&f.origin, &["log", "--reverse", "--author=gitfleet", "--format=%H", "main"])
        .lines()
        .next()
        .unwrap()
        .to_string();

    // Mallory moves main back to it and adds the run again on top.
    git(&f.work, &["fetch", "-q", "origin"]);
    git(&f.work, &["reset", "-q", "--hard", &first]);
    f.write("runs/example-run.yaml", &run_file("example-run"));
    commit_as_mallory(&f.work, "run example-run");
    git(&f.work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    assert!(!git(&f.origin, &["ls-tree", "-r", "--name-only", "main"]).contains(REQUEST));

    r.pass(T0 + 120).unwrap();
    assert_eq!(file(&f, "main", REQUEST), request, "the request gitfleet had, put back, not a new one");
}
