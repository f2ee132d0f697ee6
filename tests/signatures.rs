//! SSH signatures checked against real Git: status commits signed with
//! `--signing-key` verify with `git verify-commit`, and approvals count under
//! `--allowed-signers` exactly when Git says their commit is signed by an
//! allowed signer (and the signer is an approver). Keys are made with
//! `ssh-keygen`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Fleet, git, gitfleet, keygen, stderr, test_namespace};
use gitfleet::cli::{RunArgs, reconciler};
use gitfleet::reconcile::Reconciler;

const T0: i64 = 1_900_000_000;
const REQUEST: &str = "status/clusterapprovalrequests/example-run-canary.yaml";
const RUN_STATUS: &str = "status/clusterstagedupdateruns/example-run.yaml";

/// `principal ssh-ed25519 AAAA...` for an allowed-signers file.
fn allowed(principal: &str, key: &Path) -> String {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    format!("{principal} namespaces=\"git\" {} {}\n", parts.next().unwrap(), parts.next().unwrap())
}

/// `git verify-commit` of `commit` in `repo` with an allowed-signers file.
fn verify_commit(repo: &Path, signers: &Path, commit: &str) -> Output {
    Command::new("git")
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
        .args(["verify-commit", commit])
        .current_dir(repo)
        .output()
        .unwrap()
}

/// Commits everything in the work clone, signed with `key` (None: unsigned),
/// committed by `who`, authored by `author` (name, e-mail).
fn commit(f: &Fleet, key: Option<&Path>, who: (&str, &str), author: (&str, &str), message: &str) {
    common::commit_as(&f.work, author, who, message, key);
}

fn file(f: &Fleet, path: &str) -> String {
    git(&f.origin, &["show", &format!("main:{path}")])
}

fn run_file() -> String {
    "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: example-run\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: example-strategy\n".into()
}

struct Keys {
    _dir: tempfile::TempDir,
    gitfleet: PathBuf,
    lead: PathBuf,
    mallory: PathBuf,
    eve: PathBuf,
    signers: PathBuf,
}

impl Keys {
    /// gitfleet's, the lead's and Mallory's keys are allowed signers; Eve's is not.
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let (gitfleet, lead, mallory, eve) = (
            keygen(dir.path(), "gitfleet"),
            keygen(dir.path(), "lead"),
            keygen(dir.path(), "mallory"),
            keygen(dir.path(), "eve"),
        );
        let signers = dir.path().join("allowed_signers");
        let text = allowed("gitfleet@localhost", &gitfleet)
            + &allowed("lead@example.com", &lead)
            + &allowed("mallory@example.com", &mallory);
        std::fs::write(&signers, text).unwrap();
        Keys { _dir: dir, gitfleet, lead, mallory, eve, signers }
    }

    fn args(&self, f: &Fleet, state: &Path) -> RunArgs {
        let mut args = RunArgs::once(f.origin_str(), state);
        args.signing_key = Some(self.gitfleet.clone());
        args.allowed_signers = Some(self.signers.clone());
        args
    }
}

/// The fleet at the canary gate of example-run, approvers: the lead only.
fn at_the_gate(keys: &Keys) -> (Fleet, Reconciler) {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.write("gitfleet.yaml", "approvers: ['lead@example.com']\n");
    f.commit_all("value2, approvers");
    let mut r = reconciler(&keys.args(&f, &f.state_dir())).unwrap();
    r.pass(T0).unwrap();
    f.pull();
    f.write("runs/example-run.yaml", &run_file());
    f.commit_all("run");
    r.pass(T0).unwrap();
    r.pass(T0 + 60).unwrap();
    f.pull();
    assert!(file(&f, REQUEST).contains("targetStage: canary"));
    (f, r)
}

fn approve_file(f: &Fleet, note: &str) {
    f.write(
        "approvals/example-run-canary.yaml",
        &gitfleet::cli::approval_yaml("example-run-canary", "ok", note),
    );
}

fn accepted(f: &Fleet) -> bool {
    file(f, REQUEST).contains("ApprovalAccepted")
}

#[test]
fn status_commits_are_signed_and_verify_with_git() {
    let keys = Keys::new();
    let (f, _r) = at_the_gate(&keys);
    let head = git(&f.origin, &["log", "-1", "--format=%H %an", "main"]);
    let (commit, author) = head.split_once(' ').unwrap();
    assert_eq!(author, "gitfleet");
    let out = verify_commit(&f.origin, &keys.signers, commit);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Good \"git\" signature for gitfleet@localhost"), "{}", stderr(&out));
}

/// With a signing key, a fresh state folder still tells gitfleet's status
/// from a forgery: by the signature.
#[test]
fn a_signing_key_verifies_status_without_a_record() {
    let keys = Keys::new();
    let (f, r) = at_the_gate(&keys);
    drop(r);
    let forged = file(&f, REQUEST)
        + "status:\n  conditions:\n  - {type: ApprovalAccepted, status: \"True\", reason: x, message: x, lastTransitionTime: \"2030-01-01T00:00:00Z\", observedGeneration: 1}\n";
    f.write(REQUEST, &forged);
    commit(&f, None, ("Mallory", "mallory@example.com"), ("Mallory", "mallory@example.com"), "accept");
    f.push();
    let fresh = f.dir.path().join("fresh");
    let out = gitfleet(&[
        "run",
        "--repo",
        f.origin_str(),
        "--state-dir",
        fresh.to_str().unwrap(),
        "--once",
        "--signing-key",
        keys.gitfleet.to_str().unwrap(),
        "--allowed-signers",
        keys.signers.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("status not verified"), "{}", stderr(&out));
    assert!(!accepted(&f), "the forged acceptance is put back");
    assert!(!file(&f, RUN_STATUS).contains("UpdateRunSucceeded"));
}

/// Each case decided as `git verify-commit` with the same allowed signers
/// decides the signature, and `approvers` decides the signer.
#[test]
fn signed_approvals_count_as_git_verifies_them() {
    let keys = Keys::new();
    let (f, mut r) = at_the_gate(&keys);
    let lead = ("Lead", "lead@example.com");
    let mallory = ("Mallory", "mallory@example.com");
    let eve = ("Eve", "eve@example.com");
    let mut t = T0 + 120;
    let mut attempt =
        |key: Option<&Path>, who: (&str, &str), author: (&str, &str), note: &str| -> (bool, String) {
            f.pull();
            approve_file(&f, note);
            commit(&f, key, who, author, note);
            f.push();
            let head = git(&f.work, &["rev-parse", "HEAD"]);
            let verified = verify_commit(&f.work, &keys.signers, &head).status.success();
            r.pass(t).unwrap();
            t += 10;
            let request = file(&f, REQUEST);
            (verified, request)
        };
    let (verified, request) = attempt(None, lead, lead, "unsigned");
    assert!(
        !verified && request.contains("not signed") && !request.contains("ApprovalAccepted"),
        "{request}"
    );
    let (verified, request) = attempt(Some(&keys.eve), eve, lead, "an unknown key");
    assert!(!verified, "git does not trust Eve's key either");
    assert!(request.contains("signed with a key that is not in the allowed signers"), "{request}");
    let (verified, request) = attempt(Some(&keys.mallory), mallory, lead, "Mallory as the lead's author");
    assert!(verified, "a good signature, by Mallory");
    assert!(request.contains("signer mallory@example.com is not an approver"), "{request}");
    assert!(!request.contains("ApprovalAccepted"));
    let (verified, request) = attempt(Some(&keys.lead), lead, mallory, "the lead signs");
    assert!(verified);
    assert!(request.contains("ApprovalAccepted"), "{request}");
    assert!(request.contains("gitfleet.dev/approved-by: lead@example.com"), "{request}");
}

/// A merged pull request counts when its merge commit is signed by an
/// approver; a signer removed from the file no longer approves.
#[test]
fn a_signed_merge_approves_and_a_revoked_signer_does_not() {
    let keys = Keys::new();
    let (f, mut r) = at_the_gate(&keys);
    // Revoked: the lead's line removed, gitfleet restarted with the new file.
    let text = std::fs::read_to_string(&keys.signers).unwrap();
    let without_lead: String =
        text.lines().filter(|l| !l.starts_with("lead@")).map(|l| format!("{l}\n")).collect();
    let revoked = f.dir.path().join("revoked_signers");
    std::fs::write(&revoked, without_lead).unwrap();
    let mut args = keys.args(&f, &f.state_dir());
    args.allowed_signers = Some(revoked.clone());
    drop(r);
    let mut revoked_r = reconciler(&args).unwrap();
    git(&f.work, &["checkout", "-q", "-b", "approve"]);
    approve_file(&f, "via a pull request");
    commit(&f, None, ("Dev", "dev@example.com"), ("Dev", "dev@example.com"), "approve");
    git(&f.work, &["checkout", "-q", "main"]);
    let lead_key = keys.lead.display().to_string();
    let out = Command::new("git")
        .args(["-c", "gpg.format=ssh", "-c", &format!("user.signingkey={lead_key}")])
        .args(["merge", "-q", "--no-ff", "-S", "-m", "Merge pull request: approve", "approve"])
        .current_dir(&f.work)
        .env("GIT_COMMITTER_NAME", "Lead")
        .env("GIT_COMMITTER_EMAIL", "lead@example.com")
        .env("GIT_AUTHOR_NAME", "Lead")
        .env("GIT_AUTHOR_EMAIL", "lead@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    f.push();
    let merge = git(&f.work, &["rev-parse", "HEAD"]);
    assert!(!verify_commit(&f.work, &revoked, &merge).status.success(), "git: no longer an allowed signer");
    revoked_r.pass(T0 + 120).unwrap();
    assert!(!accepted(&f), "revoked");
    assert!(verify_commit(&f.work, &keys.signers, &merge).status.success(), "git: the lead signed it");
    drop(revoked_r);
    r = reconciler(&keys.args(&f, &f.state_dir())).unwrap();
    r.pass(T0 + 130).unwrap();
    assert!(accepted(&f), "{}", file(&f, REQUEST));
    r.pass(T0 + 140).unwrap();
    assert!(file(&f, RUN_STATUS).contains("UpdateRunSucceeded"));
}

/// `gitfleet approve --sign` signs with the person's Git signing configuration;
/// the approval verifies with git and counts under `--allowed-signers`.
#[test]
fn approve_sign_uses_the_git_signing_configuration() {
    let keys = Keys::new();
    let (f, mut r) = at_the_gate(&keys);
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[user]\n\tname = Lead\n\temail = lead@example.com\n\tsigningkey = {}.pub\n[gpg]\n\tformat = ssh\n",
        keys.lead.display()
    );
    std::fs::write(home.path().join(".gitconfig"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["approve", "example-run-canary", "--repo", f.origin_str(), "--sign"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = git(&f.origin, &["rev-parse", "main"]);
    let verified = verify_commit(&f.origin, &keys.signers, &head);
    assert!(
        stderr(&verified).contains("Good \"git\" signature for lead@example.com"),
        "{}",
        stderr(&verified)
    );
    r.pass(T0 + 120).unwrap();
    assert!(accepted(&f), "{}", file(&f, REQUEST));
}

/// A GnuPG home of its own with one ed25519 signing key for `uid`; the agent
/// is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
    email: String,
}

impl Gpg {
    fn new(uid: &str) -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").unwrap();
        let email = uid[uid.find('<').unwrap() + 1..uid.len() - 1].to_string();
        let gpg = Gpg { home, email };
        gpg.run(&["--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"]);
        gpg
    }

    fn run(&self, args: &[&str]) -> Output {
        let out =
            Command::new("gpg").args(args).env("GNUPGHOME", self.home.path()).output().expect("gpg runs");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn export(&self, to: &Path) {
        let out = self.run(&["--armor", "--export"]);
        std::fs::write(to, out.stdout).unwrap();
    }

    /// `git` in `dir` with this GnuPG home.
    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GNUPGHOME", self.home.path())
            .env("GIT_AUTHOR_NAME", "Lead")
            .env("GIT_AUTHOR_EMAIL", "lead@example.com")
            .env("GIT_COMMITTER_NAME", "Lead")
            .env("GIT_COMMITTER_EMAIL", "lead@example.com")
            .output()
            .unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // Best effort: an agent left running only wastes a process.
        let _ =
            Command::new("gpgconf").args(["--kill", "gpg-agent"]).env("GNUPGHOME", self.home.path()).status();
    }
}

/// OpenPGP-signed approvals count under `--gpg-keys` as `git verify-commit`
/// with the same keys says: the lead's key approves, Eve's does not.
#[test]
fn gpg_signed_approvals_count_as_git_verifies_them() {
    let keys = Keys::new();
    let (lead, eve) = (Gpg::new("Lead <lead@example.com>"), Gpg::new("Eve <eve@example.com>"));
    let ring = lead.home.path().join("approvers.asc");
    lead.export(&ring);
    let (f, ssh_only) = at_the_gate(&keys);
    drop(ssh_only);
    let mut args = keys.args(&f, &f.state_dir());
    args.gpg_keys = Some(ring.clone());
    let mut r = reconciler(&args).unwrap();

    let mut attempt = |gpg: &Gpg, note: &str, now: i64| -> (bool, String) {
        f.pull();
        approve_file(&f, note);
        git(&f.work, &["add", "-A"]);
        let key = format!("user.signingkey={}", gpg.email);
        let out = gpg.git(&f.work, &["-c", &key, "commit", "-q", "-S", "-m", note]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        f.push();
        // git verifies with the approvers' keyring only (the lead's key).
        let verify = lead.git(&f.work, &["verify-commit", "HEAD"]);
        r.pass(now).unwrap();
        (verify.status.success(), file(&f, REQUEST))
    };
    let (verified, request) = attempt(&eve, "Eve signs", T0 + 120);
    assert!(!verified, "git: Eve's key is unknown");
    assert!(request.contains("signed with a key that is not in the allowed signers"), "{request}");
    let (verified, request) = attempt(&lead, "the lead signs", T0 + 130);
    assert!(verified, "git: a good signature by the lead");
    assert!(
        request.contains("ApprovalAccepted") && request.contains("approved-by: lead@example.com"),
        "{request}"
    );
}

/// `gitfleet approve --sign` with the default `gpg.format` (openpgp) signs
/// through the person's GnuPG, as `git commit -S` does.
#[test]
fn approve_sign_uses_gnupg_by_default() {
    let keys = Keys::new();
    let lead = Gpg::new("Lead <lead@example.com>");
    let ring = lead.home.path().join("approvers.asc");
    lead.export(&ring);
    let (f, ssh_only) = at_the_gate(&keys);
    drop(ssh_only);
    let mut args = keys.args(&f, &f.state_dir());
    args.gpg_keys = Some(ring);
    let mut r = reconciler(&args).unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".gitconfig"), "[user]\n\tname = Lead\n\temail = lead@example.com\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["approve", "example-run-canary", "--repo", f.origin_str(), "--sign"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GNUPGHOME", lead.home.path())
        .current_dir(home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let verify = lead.git(&f.origin, &["verify-commit", "main"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    r.pass(T0 + 120).unwrap();
    assert!(accepted(&f), "{}", file(&f, REQUEST));
    assert!(file(&f, REQUEST).contains("approved-by: lead@example.com"));
}
