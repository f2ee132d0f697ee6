//! What the benchmarks share: a bare origin and a work clone driven with the
//! real `git`, and the kube-apiserver harness with kubectl built from Go
//! modules (tests/kube-apiserver). Each benchmark uses part of it.
#![allow(dead_code)]

#[path = "../../tests/common/git_daemon.rs"]
pub mod git_daemon;
#[path = "../../tests/common/http.rs"]
pub mod http;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Runs `git` in `dir` as a developer; panics when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "git {args:?}");
}

/// Writes a file under `dir`, making its folders.
pub fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A bare `origin.git` with branch `main` and a work clone `work` in `dir`.
pub fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let origin = dir.join("origin.git");
    let work = dir.join("work");
    git(dir, &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
    git(dir, &["clone", "-q", origin.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["checkout", "-q", "-b", "main"]);
    (origin, work)
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kube-apiserver")
}

/// `kubectl apply --server-side` of the files in `dir` to `context`, a new
/// process as a CI job would run it: its wall time. Asserts that it applied
/// `objects` objects.
pub fn kubectl_apply(
    bin: &Path,
    kubeconfig: &Path,
    cache: &Path,
    context: &str,
    dir: &Path,
    objects: usize,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let out = Command::new(bin)
        .args(["apply", "--server-side", "--field-manager", "kubectl-bench", "--context", context])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .arg("-f")
        .arg(dir)
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), objects);
    took
}

/// kubectl, built (once, cached) from Go modules.
pub fn kubectl_bin() -> PathBuf {
    let out =
        Command::new("bash").arg(harness_dir().join("kubectl.sh")).arg("--print-path").output().unwrap();
    assert!(out.status.success(), "build kubectl: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The harness with one kube-apiserver per member, ready, its kubeconfig
/// (a context per member) written to `kubeconfig`. Stop it with SIGTERM.
pub fn start_harness(members: &[&str], kubeconfig: &Path) -> Child {
    let mut harness = Command::new("bash")
        .arg(harness_dir().join("start.sh"))
        .args(["--members", &members.join(","), "--control", "--timeout", "5m", "--kubeconfig"])
        .arg(kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready =
        BufReader::new(harness.stdout.take().unwrap()).lines().map_while(Result::ok).any(|l| l == "ready");
    assert!(ready, "the kube-apiserver harness did not start");
    harness
}
