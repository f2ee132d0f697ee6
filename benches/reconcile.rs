//! Reconciler benchmarks. Run: `cargo bench --bench reconcile`.
//!
//! 1. Push to first cluster write: a local bare repository watched by
//!    `gitfleet run` (no `--once`); each iteration pushes a changed ConfigMap of a
//!    RollingUpdate placement with `git push` and times until the local-store file
//!    on the cluster holds the new value.
//!    The same in a fleet of 10,000 clusters that finished a staged run.
//!    A push webhook to first cluster write on a URL remote (a git daemon)
//!    that gitfleet polls only once an hour.
//! 2. One run over 1,000 and over 10,000 local-store clusters in 3 stages with
//!    no waits: the wall time of the pass that runs it, the peak memory
//!    (VmHWM), the bytes its status commit added, the largest status file, and
//!    passes with nothing to do (the first after a start, then warm).
//! 3. Ten clusters join a RollingUpdate placement of 10,000: the pass that
//!    updates them, the files its status commit touched and the bytes it added.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{git, setup, write};

const PUSHES: usize = 21;
const CLUSTERS: usize = 1000;
/// The large fleet.
const BIG: usize = 10_000;

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

fn web(value: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: web\ndata:\n  value: \"{value}\"\n"
    )
}

/// Writes a fleet of `clusters` clusters in 3 stages (labels a, b, c), the
/// placement `app` with the strategy `three` and the run `all`.
fn write_fleet(work: &Path, clusters: usize, strategy_type: &str) {
    for i in 0..clusters {
        let stage = ["a", "b", "c"][i * 3 / clusters];
        write(work, &format!("clusters/member{i:05}.yaml"), &cluster(&format!("member{i:05}"), stage));
    }
    write(work, "placements/app.yaml", &placement(strategy_type));
    write(work, "resources/app.yaml", &workload(1));
    let stages: String = ["a", "b", "c"]
        .iter()
        .map(|s| format!("  - name: {s}\n    maxConcurrency: 100%\n    labelSelector:\n      matchLabels: {{stage: {s}}}\n"))
        .collect();
    write(
        work,
        "strategies/three.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: three\nspec:\n  stages:\n{stages}"
        ),
    );
    write(
        work,
        "runs/all.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: all\nspec:\n  placementName: app\n  stagedRolloutStrategyName: three\n",
    );
}

/// Push to first write: a RollingUpdate placement `web` on member00000 in a
/// fleet of `clusters` clusters (for more than one, the placement `app` on
/// all of them has finished a staged run first, so every pass reads its
/// status back and checks every cluster for drift).
fn push_to_first_write(clusters: usize) -> (Duration, Duration) {
    push_to_first_write_with(clusters, Rollout::Rolling)
}

/// How the pushed placement rolls out.
#[derive(Clone, Copy, PartialEq)]
enum Rollout {
    /// RollingUpdate: no run, no events.
    Rolling,
    /// A staged run per push (autoRun, one stage, no waits): four events a
    /// push; with `silent`, `--notify` names a receiver that takes
    /// connections and never answers (each event waits out its time-outs
    /// and retries).
    AutoRun { silent: bool },
}

fn push_to_first_write_with(clusters: usize, rollout: Rollout) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let notify = dir.path().join("notify.yaml");
    std::fs::write(
        &notify,
        format!("receivers:\n- name: silent\n  url: http://{}/\n", silent.local_addr().unwrap()),
    )
    .unwrap();
    let (origin, work) = setup(dir.path());
    if clusters > 1 {
        write_fleet(&work, clusters, "External");
    } else {
        write(&work, "clusters/member00000.yaml", &cluster("member00000", "a"));
    }
    let strategy = match rollout {
        Rollout::Rolling => "    type: RollingUpdate\n",
        Rollout::AutoRun { .. } => "    type: External\n    autoRun:\n      stagedRolloutStrategyName: one\n",
    };
    write(&work, "placements/web.yaml", &web_placement(strategy));
    write(
        &work,
        "strategies/one.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: one\nspec:\n  stages:\n  - name: all\n    labelSelector: {}\n",
    );
    write(&work, "resources/web.yaml", &web(0));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fleet"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let state = dir.path().join("state");
    if clusters > 1 {
        let args = gitfleet::cli::RunArgs::once(origin.display().to_string(), state.clone());
        let outcome = gitfleet::cli::reconciler(&args).unwrap().pass(gitfleet::cli::now()).unwrap();
        assert!(outcome.message.contains("all succeeded"), "{}", outcome.message);
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_gitfleet"));
    command.args(["run", "--repo", origin.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]);
    if rollout == (Rollout::AutoRun { silent: true }) {
        command.arg("--notify").arg(&notify);
    }
    let mut child = command.stderr(bench_log()).spawn().unwrap();
    let wait = |v: usize| wait_for_value(&state, v);
    wait(0);
    // Let the first passes (status read, drift checks) settle.
    std::thread::sleep(Duration::from_millis(if clusters > 1 { 3000 } else { 300 }));
    let mut times = Vec::new();
    for v in 1..=PUSHES {
        git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
        write(&work, "resources/web.yaml", &web(v));
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
        std::thread::sleep(Duration::from_millis(if clusters > 1 { 1500 } else { 300 }));
    }
    let _ = child.kill();
    let _ = child.wait();
    median_max(times)
}

/// The placement `web` on member00000 with the strategy part `strategy`.
fn web_placement(strategy: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: web\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: web}}\n  policy:\n    placementType: PickFixed\n    clusterNames: [member00000]\n  strategy:\n{strategy}"
    )
}

/// Where a benchmark's gitfleet logs: the terminal with GITFLEET_BENCH_LOG.
fn bench_log() -> Stdio {
    if std::env::var("GITFLEET_BENCH_LOG").is_ok() { Stdio::inherit() } else { Stdio::null() }
}

/// Waits until member00000's ConfigMap of `web` holds `value` (a minute at most).
fn wait_for_value(state: &Path, value: usize) {
    let file = state.join("clusters/member00000/web/configmap/settings.yaml");
    let holds = || std::fs::read_to_string(&file).is_ok_and(|s| s.contains(&format!("value: \"{value}\"")));
    let start = Instant::now();
    while !holds() {
        assert!(start.elapsed() < Duration::from_secs(60), "no write for value {value}");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// (median, max) of some times.
fn median_max(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], *times.last().unwrap())
}

/// A watching reconciler on a URL remote (a git daemon) that polls once an
/// hour, told of each push by a signed generic webhook: (median, max) from
/// the webhook request to the first cluster write, over [`PUSHES`] pushes.
fn webhook_to_first_write() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = setup(dir.path());
    write(&work, "clusters/member00000.yaml", &cluster("member00000", "a"));
    write(&work, "placements/web.yaml", &web_placement("    type: RollingUpdate\n"));
    write(&work, "resources/web.yaml", &web(0));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fleet"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let daemon = support::git_daemon::GitDaemon::serve(origin.parent().unwrap());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "bench secret\n").unwrap();
    let port = support::http::free_port();
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", &daemon.url("origin.git"), "--state-dir", state.to_str().unwrap()])
        .args(["--poll-interval", "3600", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--webhook-secret-file")
        .arg(&secret)
        .stderr(bench_log())
        .spawn()
        .unwrap();
    let wait = |v: usize| wait_for_value(&state, v);
    wait(0);
    std::thread::sleep(Duration::from_millis(300));
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signature = support::http::signature("bench secret", body);
    let mut times = Vec::new();
    for v in 1..=PUSHES {
        git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
        write(&work, "resources/web.yaml", &web(v));
        git(&work, &["commit", "-q", "-am", &format!("value {v}")]);
        while !pushed(&work) {
            git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
        }
        let start = Instant::now();
        let (code, answer) = support::http::http_post(
            port,
            "/hooks/generic",
            &[("Content-Type", "application/json"), ("X-Signature-256", &signature)],
            body,
        );
        assert_eq!(code, 200, "{answer}");
        wait(v);
        times.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = child.kill();
    let _ = child.wait();
    median_max(times)
}

/// Bytes of objects in a repository (loose and packed), from `git count-objects -v`.
fn repo_bytes(git_dir: &Path) -> u64 {
    let out = Command::new("git").args(["count-objects", "-v"]).current_dir(git_dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let kib = |field: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    (kib("size:") + kib("size-pack:")) * 1024
}

/// The largest file under `status/` on origin's main.
fn largest_status_file(origin: &Path) -> (String, u64) {
    let out = Command::new("git")
        .args(["ls-tree", "-r", "-l", "main", "status/"])
        .current_dir(origin)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((path.to_string(), meta.split_whitespace().nth(3)?.parse().ok()?))
        })
        .max_by_key(|(_, size)| *size)
        .unwrap_or_default()
}

/// Files a commit of origin touched.
fn files_of(origin: &Path, commit: &str) -> usize {
    let out = Command::new("git")
        .args(["show", "--name-only", "--format=", commit])
        .current_dir(origin)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).count()
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
struct FleetRun {
    elapsed: Duration,
    written: usize,
    peak_kib: u64,
    /// The first pass with nothing to do (as after a restart: nothing parsed yet).
    noop_cold: Duration,
    /// The median of the next five (a running reconciler).
    noop_warm: Duration,
    /// Bytes the run's status commit added to origin.
    added: u64,
    largest: (String, u64),
    /// Repacking the clone after it (as after 50 fetches): time, objects.
    repack: (Duration, usize),
}

fn fleet_run(clusters: usize) -> FleetRun {
    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = setup(dir.path());
    write_fleet(&work, clusters, "External");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", &format!("{clusters} clusters")]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let args = gitfleet::cli::RunArgs::once(origin.display().to_string(), dir.path().join("state"));
    let before = repo_bytes(&origin);
    let start = Instant::now();
    let mut r = gitfleet::cli::reconciler(&args).unwrap();
    let outcome = r.pass(gitfleet::cli::now()).unwrap();
    let elapsed = start.elapsed();
    assert!(outcome.message.contains("all succeeded"), "{}", outcome.message);
    let added = repo_bytes(&origin) - before;
    let largest = largest_status_file(&origin);
    let written = std::fs::read_dir(dir.path().join("state/clusters")).unwrap().count();
    let peak = peak_memory_kib();
    // The same fleet again: nothing to do (fetch, index, read the status back).
    let start = Instant::now();
    let again = r.pass(gitfleet::cli::now()).unwrap();
    let noop = start.elapsed();
    assert!(again.commit.is_none(), "a pass with nothing to do commits nothing: {}", again.message);
    let mut warm = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let again = r.pass(gitfleet::cli::now()).unwrap();
        warm.push(start.elapsed());
        assert!(again.commit.is_none(), "{}", again.message);
    }
    warm.sort();
    // For profiling: more passes with nothing to do.
    let extra: usize = std::env::var("GITFLEET_BENCH_NOOPS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for _ in 0..extra {
        let start = Instant::now();
        r.pass(gitfleet::cli::now()).unwrap();
        eprintln!("pass with nothing to do: {:.0} ms", start.elapsed().as_secs_f64() * 1000.0);
    }
    let start = Instant::now();
    let repacked = gitfleet::status::repack::repack(r.repo()).unwrap();
    let repack = (start.elapsed(), repacked.objects);
    FleetRun { elapsed, written, peak_kib: peak, noop_cold: noop, noop_warm: warm[2], added, largest, repack }
}

/// A RollingUpdate placement over `clusters` clusters, then ten clusters
/// join: (the pass that updates the ten, files its status commit touched,
/// bytes it added to origin).
fn ten_join(clusters: usize) -> (Duration, usize, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (origin, work) = setup(dir.path());
    for i in 0..clusters {
        write(&work, &format!("clusters/member{i:05}.yaml"), &cluster(&format!("member{i:05}"), "a"));
    }
    write(&work, "placements/app.yaml", &placement("RollingUpdate"));
    write(&work, "resources/app.yaml", &workload(1));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", &format!("{clusters} clusters")]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let args = gitfleet::cli::RunArgs::once(origin.display().to_string(), dir.path().join("state"));
    let mut r = gitfleet::cli::reconciler(&args).unwrap();
    r.pass(gitfleet::cli::now()).unwrap();
    r.pass(gitfleet::cli::now()).unwrap();
    git(&work, &["pull", "-q", "--no-rebase", "origin", "main"]);
    for i in clusters..clusters + 10 {
        write(&work, &format!("clusters/member{i:05}.yaml"), &cluster(&format!("member{i:05}"), "a"));
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "ten more"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let before = repo_bytes(&origin);
    let start = Instant::now();
    let outcome = r.pass(gitfleet::cli::now()).unwrap();
    let elapsed = start.elapsed();
    let commit = outcome.commit.expect("the ten are recorded").to_string();
    assert!(outcome.message.contains("to 10 cluster(s)"), "{}", outcome.message);
    (elapsed, files_of(&origin, &commit), repo_bytes(&origin) - before)
}

fn main() {
    if std::env::var("GITFLEET_BENCH_ONLY").is_ok_and(|v| v == "big") {
        // For profiling: the large fleet alone.
        let big = fleet_run(BIG);
        println!(
            "run {:.2} s, peak {} MiB, nothing to do {:.0} ms then {:.0} ms, repack {:.0} ms ({} objects)",
            big.elapsed.as_secs_f64(),
            big.peak_kib / 1024,
            big.noop_cold.as_secs_f64() * 1000.0,
            big.noop_warm.as_secs_f64() * 1000.0,
            big.repack.0.as_secs_f64() * 1000.0,
            big.repack.1
        );
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if std::env::var("GITFLEET_BENCH_ONLY").is_ok_and(|v| v == "notify-dead") {
        let (median, max) = push_to_first_write_with(1, Rollout::AutoRun { silent: false });
        println!("push to first write, autoRun: median {:.0} ms, max {:.0} ms", ms(median), ms(max));
        let (median, max) = push_to_first_write_with(1, Rollout::AutoRun { silent: true });
        println!("the same with a silent receiver: median {:.0} ms, max {:.0} ms", ms(median), ms(max));
        return;
    }
    if std::env::var("GITFLEET_BENCH_ONLY").is_ok_and(|v| v == "webhook") {
        let (median, max) = webhook_to_first_write();
        println!(
            "webhook to first write on a URL remote: median {:.0} ms, max {:.0} ms",
            ms(median),
            ms(max)
        );
        return;
    }
    if std::env::var("GITFLEET_BENCH_ONLY").is_ok_and(|v| v == "push-big") {
        let (median, max) = push_to_first_write(BIG);
        println!("push to first write at {BIG}: median {:.0} ms, max {:.0} ms", ms(median), ms(max));
        return;
    }
    // Smallest first: peak memory (VmHWM) is the process's so far.
    let (median, max) = push_to_first_write(1);
    let (hook_median, hook_max) = webhook_to_first_write();
    let (auto_median, auto_max) = push_to_first_write_with(1, Rollout::AutoRun { silent: false });
    let (dead_median, dead_max) = push_to_first_write_with(1, Rollout::AutoRun { silent: true });
    let small = fleet_run(CLUSTERS);
    assert_eq!(small.written, CLUSTERS);
    let big = fleet_run(BIG);
    assert_eq!(big.written, BIG);
    let (ten, ten_files, ten_bytes) = ten_join(BIG);
    let (big_median, big_max) = push_to_first_write(BIG);
    println!("| measurement | result | goal |");
    println!("|---|---|---|");
    println!(
        "| `git push` to first cluster write, watching reconciler ({PUSHES} pushes) | median {:.0} ms, max {:.0} ms | < 100 ms |",
        ms(median),
        ms(max)
    );
    println!(
        "| the same with a staged run per push (autoRun, one stage; four events a push) | median {:.0} ms, max {:.0} ms | reference |",
        ms(auto_median),
        ms(auto_max)
    );
    println!(
        "| the same with `--notify` naming a receiver that never answers (each event waits out 10 s time-outs and 5 retries) | median {:.0} ms, max {:.0} ms | as without |",
        ms(dead_median),
        ms(dead_max)
    );
    println!(
        "| push webhook (signed, `/hooks/generic`) to first cluster write, a URL remote (git daemon) polled once an hour ({PUSHES} pushes) | median {:.0} ms, max {:.0} ms | < 150 ms |",
        ms(hook_median),
        ms(hook_max)
    );
    println!(
        "| the same in a fleet of {BIG} clusters (a finished run over all of them) | median {:.0} ms, max {:.0} ms | < 100 ms |",
        ms(big_median),
        ms(big_max)
    );
    println!(
        "| one run over {CLUSTERS} local-store clusters, 3 stages, no waits (one pass, status commit and push included) | {:.2} s | < 5 s |",
        small.elapsed.as_secs_f64()
    );
    println!("| peak memory of that run (VmHWM) | {:.0} MiB | < 200 MiB |", small.peak_kib as f64 / 1024.0);
    println!(
        "| a pass with nothing to do at {CLUSTERS} clusters: first after a start, then a running reconciler | {:.0} ms, {:.0} ms | reference |",
        ms(small.noop_cold),
        ms(small.noop_warm)
    );
    println!(
        "| one run over {BIG} local-store clusters, 3 stages, no waits (one pass, status commit and push included) | {:.2} s | < 5 s |",
        big.elapsed.as_secs_f64()
    );
    println!(
        "| peak memory of the process after it (VmHWM) | {:.0} MiB | < 300 MiB |",
        big.peak_kib as f64 / 1024.0
    );
    println!(
        "| bytes that run's status commit added to the repository (`git count-objects -v`) | {:.1} MiB | grows with what changed |",
        big.added as f64 / 1048576.0
    );
    println!(
        "| largest status file after it | {} KiB ({}) | < 1.5 MiB |",
        big.largest.1 / 1024,
        big.largest.0
    );
    println!(
        "| repacking the clone after it into one pack (done when it holds over 50 packs or about 6,700 loose objects) | {:.0} ms, {} objects | reference |",
        ms(big.repack.0),
        big.repack.1
    );
    println!(
        "| a pass with nothing to do at {BIG} clusters: first after a start, then a running reconciler (median of 5) | {:.0} ms, {:.0} ms | < 500 ms |",
        ms(big.noop_cold),
        ms(big.noop_warm)
    );
    println!(
        "| 10 clusters join a RollingUpdate placement of {BIG}: the pass that updates them | {:.0} ms, {ten_files} files, {:.0} KiB added | O(10) |",
        ms(ten),
        ten_bytes as f64 / 1024.0
    );
}
