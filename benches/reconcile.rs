//! Reconciler benchmarks. Run: `cargo bench --bench reconcile`.
//!
//! 1. Push to first cluster write: a local bare repository watched by
//!    `gitfleet run` (no `--once`); each iteration pushes a changed ConfigMap of a
//!    RollingUpdate placement with `git push` and times until the local-store file
//!    on the cluster holds the new value.
//! 2. One run over 1,000 local-store clusters in 3 stages with no waits: the
//!    wall time of the passes until the run succeeds, and the peak memory (VmHWM).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PUSHES: usize = 21;
const CLUSTERS: usize = 1000;
/// The large fleet.
const BIG: usize = 10_000;

fn git(dir: &Path, args: &[&str]) {
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

/// `git push` of the work clone's main; false when the remote refused it.
fn pushed(dir: &Path) -> bool {
    Command::new("git")
        .args(["push", "-q", "origin", "HEAD:main"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn cluster(name: &str, stage: &str) -> String {
    format!(
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n    stage: {stage}\n"
    )
}

fn workload(value: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: app\ndata:\n  value: \"{value}\"\n"
    )
}

fn placement(strategy: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: app\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: app}}\n  strategy:\n    type: {strategy}\n"
    )
}

fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let origin = dir.join("origin.git");
    let work = dir.join("work");
    git(dir, &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
    git(dir, &["clone", "-q", origin.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["checkout", "-q", "-b", "main"]);
    (origin, work)
}

fn push_to_first_write() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = setup(dir.path());
    write(&work, "clusters/member1.yaml", &cluster("member1", "a"));
    write(&work, "placements/app.yaml", &placement("RollingUpdate"));
    write(&work, "resources/app.yaml", &workload(0));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fleet"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", origin.to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = state.join("clusters/member1/app/configmap/settings.yaml");
    let holds =
        |v: usize| std::fs::read_to_string(&file).is_ok_and(|s| s.contains(&format!("value: \"{v}\"")));
    let wait = |v: usize| {
        let start = Instant::now();
        while !holds(v) {
            assert!(start.elapsed() < Duration::from_secs(30), "no write for value {v}");
            std::thread::sleep(Duration::from_micros(500));
        }
    };
    wait(0);
    let mut times = Vec::new();
    for v in 1..=PUSHES {
        git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
        write(&work, "resources/app.yaml", &workload(v));
        git(&work, &["commit", "-q", "-am", &format!("value {v}")]);
        // gitfleet's status commit of the previous change may land first: pull and push again.
        let start = loop {
            let start = Instant::now();
            if pushed(&work) {
                break start;
            }
            git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
        };
        wait(v);
        times.push(start.elapsed());
        // Let the status push of this change settle before the next one.
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.kill();
    let _ = child.wait();
    times.sort();
    (times[times.len() / 2], *times.last().unwrap())
}

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// One run over `clusters` local-store clusters in 3 stages: the whole pass,
/// the clusters written, peak memory so far, and a second pass that changes nothing.
fn fleet_run(clusters: usize) -> (Duration, usize, u64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = setup(dir.path());
    for i in 0..clusters {
        let stage = ["a", "b", "c"][i * 3 / clusters];
        write(&work, &format!("clusters/member{i:05}.yaml"), &cluster(&format!("member{i:05}"), stage));
    }
    write(&work, "placements/app.yaml", &placement("External"));
    write(&work, "resources/app.yaml", &workload(1));
    let stages: String = ["a", "b", "c"]
        .iter()
        .map(|s| format!("  - name: {s}\n    maxConcurrency: 100%\n    labelSelector:\n      matchLabels: {{stage: {s}}}\n"))
        .collect();
    write(
        &work,
        "strategies/three.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: three\nspec:\n  stages:\n{stages}"
        ),
    );
    write(
        &work,
        "runs/all.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: all\nspec:\n  placementName: app\n  stagedRolloutStrategyName: three\n",
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", &format!("{clusters} clusters")]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let args = gitfleet::cli::RunArgs::once(origin.display().to_string(), dir.path().join("state"));
    let start = Instant::now();
    let mut r = gitfleet::cli::reconciler(&args).unwrap();
    let outcome = r.pass(gitfleet::cli::now()).unwrap();
    let elapsed = start.elapsed();
    assert!(outcome.message.contains("all succeeded"), "{}", outcome.message);
    let written = std::fs::read_dir(dir.path().join("state/clusters")).unwrap().count();
    let peak = peak_memory_kib();
    // The same fleet again: nothing to do (fetch, index, read the status back).
    let start = Instant::now();
    let again = r.pass(gitfleet::cli::now()).unwrap();
    let noop = start.elapsed();
    assert!(again.commit.is_none(), "a pass with nothing to do commits nothing: {}", again.message);
    // For profiling: more passes with nothing to do.
    let extra: usize = std::env::var("GITFLEET_BENCH_NOOPS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for _ in 0..extra {
        let start = Instant::now();
        r.pass(gitfleet::cli::now()).unwrap();
        eprintln!("pass with nothing to do: {:.0} ms", start.elapsed().as_secs_f64() * 1000.0);
    }
    (elapsed, written, peak, noop)
}

fn main() {
    if std::env::var("GITFLEET_BENCH_ONLY").is_ok_and(|v| v == "big") {
        // For profiling: the large fleet alone.
        let (elapsed, _, peak, noop) = fleet_run(BIG);
        println!(
            "run {:.2} s, peak {} MiB, nothing to do {:.0} ms",
            elapsed.as_secs_f64(),
            peak / 1024,
            noop.as_secs_f64() * 1000.0
        );
        return;
    }
    let (median, max) = push_to_first_write();
    let (elapsed, written, peak, noop) = fleet_run(CLUSTERS);
    assert_eq!(written, CLUSTERS);
    let (big_elapsed, big_written, big_peak, big_noop) = fleet_run(BIG);
    assert_eq!(big_written, BIG);
    println!("| measurement | result | goal |");
    println!("|---|---|---|");
    println!(
        "| `git push` to first cluster write, watching reconciler ({} pushes) | median {:.0} ms, max {:.0} ms | < 100 ms |",
        PUSHES,
        median.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    println!(
        "| one run over {CLUSTERS} local-store clusters, 3 stages, no waits (one pass, status commit and push included) | {:.2} s | < 5 s |",
        elapsed.as_secs_f64()
    );
    println!("| peak memory of that run (VmHWM) | {:.0} MiB | < 200 MiB |", peak as f64 / 1024.0);
    println!(
        "| a pass with nothing to do at {CLUSTERS} clusters | {:.0} ms | reference |",
        noop.as_secs_f64() * 1000.0
    );
    println!(
        "| one run over {BIG} local-store clusters, 3 stages, no waits (one pass, status commit and push included) | {:.2} s | < 5 s |",
        big_elapsed.as_secs_f64()
    );
    println!(
        "| peak memory of the process after it (VmHWM) | {:.0} MiB | < 300 MiB |",
        big_peak as f64 / 1024.0
    );
    println!(
        "| a pass with nothing to do at {BIG} clusters | {:.0} ms | < 500 ms |",
        big_noop.as_secs_f64() * 1000.0
    );
}
