//! Test fixtures: a bare "origin" and a work clone in a temporary folder, driven
//! with the real `git` command line, plus the gitfleet binary.
#![allow(dead_code)]

pub mod git_daemon;
pub mod harness;
pub mod http;
pub mod metrics;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A bare origin and a work clone of it.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub origin: PathBuf,
    pub work: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Fleet {
    /// An empty origin with `main` and a work clone.
    pub fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin.git");
        let work = dir.path().join("work");
        git(dir.path(), &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
        git(dir.path(), &["clone", "-q", origin.to_str().unwrap(), work.to_str().unwrap()]);
        git(&work, &["checkout", "-q", "-b", "main"]);
        Fleet { dir, origin, work }
    }

    /// A fleet whose first commit holds the example repository.
    pub fn example() -> Fleet {
        let f = Fleet::new();
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo"), &f.work);
        f.commit_all("fleet: example");
        f
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.work.join(path)).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.work.join(path)).unwrap()
    }

    /// Commits everything in the work tree and pushes; returns the commit id.
    pub fn commit_all(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", message]);
        self.push();
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn push(&self) {
        git(&self.work, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// Pulls what others (gitfleet) pushed.
    pub fn pull(&self) {
        git(&self.work, &["pull", "-q", "--no-rebase", "origin", "main"]);
    }

    pub fn origin_str(&self) -> &str {
        self.origin.to_str().unwrap()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `git log` of origin's main: `(sha, author name, subject)`, newest first.
    pub fn log(&self) -> Vec<(String, String, String)> {
        git(&self.origin, &["log", "--format=%H%x09%an%x09%s", "main"])
            .lines()
            .map(|l| {
                let mut p = l.splitn(3, '\t');
                (p.next().unwrap().into(), p.next().unwrap().into(), p.next().unwrap().into())
            })
            .collect()
    }

    /// Files a commit of origin touched.
    pub fn changed_files(&self, sha: &str) -> Vec<String> {
        git(&self.origin, &["show", "--name-only", "--format=", sha]).lines().map(str::to_string).collect()
    }

    /// Content of a file on origin's main.
    pub fn origin_file(&self, path: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["show", &format!("main:{path}")])
            .current_dir(&self.origin)
            .output()
            .unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the gitfleet binary.
pub fn gitfleet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitfleet")).args(args).env("NO_COLOR", "1").output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A new ed25519 key pair without a passphrase, commented `name`, in `dir`;
/// returns the private key's path.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The ConfigMap of the example with another value.
pub fn test_namespace(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test-namespace\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: {value}\n"
    )
}

/// A Namespace holding one ConfigMap `cm` with `key: value`.
pub fn namespace_with_cm(ns: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: {ns}\ndata:\n  key: {value}\n"
    )
}

/// A RollingUpdate placement of namespace `ns`; `extra` is added under
/// `spec.strategy` (e.g. an applyStrategy) and `policy` replaces PickAll.
pub fn rolling_placement(name: &str, ns: &str, extra: &str, policy: &str) -> String {
    let policy = if policy.is_empty() {
        "  policy:\n    placementType: PickAll\n".to_string()
    } else {
        policy.to_string()
    };
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: {name}\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: {ns}}}\n{policy}  strategy:\n    type: RollingUpdate\n{extra}"
    )
}

/// A placement's status document on origin's main, read with gitfleet's own types.
pub fn placement_document(f: &Fleet, placement: &str) -> gitfleet::status::placement::PlacementDocument {
    let text = f.origin_file(&format!("status/clusterresourceplacements/{placement}.yaml")).unwrap();
    gitfleet::status::read_file(&text, placement).unwrap_or_else(|e| panic!("{placement}: {e}\n{text}"))
}

/// A cluster's entry in a placement's status document.
pub fn cluster_status(
    f: &Fleet,
    placement: &str,
    cluster: &str,
) -> gitfleet::status::placement::ClusterPlacementStatus {
    let doc = placement_document(f, placement);
    let found = doc.status.placement_statuses.iter().find(|s| s.cluster_name == cluster).cloned();
    found.unwrap_or_else(|| panic!("{cluster} not in {doc:?}"))
}

/// A placement-level condition (empty when it is not set).
pub fn placement_condition(
    f: &Fleet,
    placement: &str,
    type_: &str,
) -> gitfleet::status::conditions::Condition {
    condition(&placement_document(f, placement).status.conditions, type_)
}

/// A condition of a list (empty when it is not set).
pub fn condition(
    conditions: &[gitfleet::status::conditions::Condition],
    type_: &str,
) -> gitfleet::status::conditions::Condition {
    conditions.iter().find(|c| c.type_ == type_).cloned().unwrap_or_default()
}

/// Gives example-placement `autoRun` with `strategy` (in the work tree, not committed).
pub fn auto_run(f: &Fleet, strategy: &str) {
    let p = f.read("placements/example-placement.yaml").replace(
        "  strategy:\n    type: External\n",
        &format!(
            "  strategy:\n    type: External\n    autoRun:\n      stagedRolloutStrategyName: {strategy}\n"
        ),
    );
    f.write("placements/example-placement.yaml", &p);
}

/// test-namespace/test-cm's `key` on each member of the local store (`-`: not there).
pub fn test_cm_values(f: &Fleet, members: &[&str]) -> Vec<String> {
    members
        .iter()
        .map(|m| {
            let p = f.state_dir().join(format!("clusters/{m}/test-namespace/configmap/test-cm.yaml"));
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("key: ").map(str::to_string)))
                .unwrap_or_else(|| "-".into())
        })
        .collect()
}

/// The members of the local store that hold ConfigMap `cm` of namespace `ns`.
pub fn holding<'m>(f: &Fleet, ns: &str, members: &[&'m str]) -> Vec<&'m str> {
    members
        .iter()
        .copied()
        .filter(|m| f.state_dir().join(format!("clusters/{m}/{ns}/configmap/cm.yaml")).exists())
        .collect()
}

/// Approves through a branch merged like a pull request.
pub fn approve_by_merge(f: &Fleet, name: &str) {
    f.pull();
    git(&f.work, &["checkout", "-q", "-b", &format!("approve-{name}")]);
    f.write(&format!("approvals/{name}.yaml"), &gitfleet::cli::approval_yaml(name, "testPassed", "lgtm"));
    git(&f.work, &["add", "-A"]);
    git(&f.work, &["commit", "-q", "-m", &format!("approve {name}")]);
    git(&f.work, &["checkout", "-q", "main"]);
    git(
        &f.work,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            &format!("Merge pull request: approve {name}"),
            &format!("approve-{name}"),
        ],
    );
    f.push();
}

/// Replaces `from` by `to` in a file (a change made behind gitfleet's back).
pub fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Two RollingUpdate placements over namespaces drift-a and drift-b (a
/// ConfigMap `cm` with `key: v1` each): `always` (drift corrected) and `keep`
/// (`whenToApply: IfNotDrifted`).
pub fn write_drift_placements(f: &Fleet) {
    f.write(
        "resources/drift.yaml",
        &format!("{}---\n{}", namespace_with_cm("drift-a", "v1"), namespace_with_cm("drift-b", "v1")),
    );
    f.write("placements/always.yaml", &rolling_placement("always", "drift-a", "", ""));
    let keep = "    applyStrategy:\n      whenToApply: IfNotDrifted\n";
    f.write("placements/keep.yaml", &rolling_placement("keep", "drift-b", keep, ""));
}

/// Commits everything in `dir` as `author`, committed by `committer` (name,
/// e-mail), signed with the SSH key `sign` if given (`git commit -S`).
pub fn commit_as(
    dir: &Path,
    author: (&str, &str),
    committer: (&str, &str),
    message: &str,
    sign: Option<&Path>,
) {
    git(dir, &["add", "-A"]);
    let mut cmd = Command::new("git");
    if let Some(key) = sign {
        cmd.args(["-c", "gpg.format=ssh", "-c"]).arg(format!("user.signingkey={}", key.display()));
    }
    cmd.args(["commit", "-q", "-m", message]);
    if sign.is_some() {
        cmd.arg("-S");
    }
    let out = cmd
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .env("GIT_COMMITTER_NAME", committer.0)
        .env("GIT_COMMITTER_EMAIL", committer.1)
        .output()
        .unwrap();
    assert!(out.status.success(), "git commit: {}", String::from_utf8_lossy(&out.stderr));
}
