//! Twenty real member clusters: one kube-apiserver harness with 20 members
//! (its start time and memory), then one staged run of a 50-object placement
//! over the 20 apiservers by gitfleet, beside a `kubectl apply --server-side`
//! loop over the same 20 contexts, in the same run. Run: `cargo bench --bench
//! fleet` (needs Go: the apiservers and kubectl are built from Go modules by
//! tests/kube-apiserver, cached).
//!
//! gitfleet runs `run --once` as a library call on a local repository: two
//! stages (4 clusters, then 16, `maxConcurrency: 100%`), every object applied
//! and checked available, status committed and pushed. kubectl applies the
//! same 50 files (another namespace) to each context in turn, a new process
//! per cluster as a CI loop would, its discovery cache warmed once before.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{git, write};

const MEMBERS: usize = 20;
const OBJECTS: usize = 50;

fn member(i: usize) -> String {
    format!("member{i:02}")
}

/// The 50 objects of one namespace: the Namespace, ConfigMaps, Secrets and
/// ServiceAccounts, one file each.
fn write_objects(dir: &Path, ns: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = vec![format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")];
    for i in 1..OBJECTS {
        files.push(match i % 3 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\ndata:\n  index: \"{i}\"\n  settings.json: '{{\"replicas\": 3}}'\n"
            ),
            1 => format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: {ns}\ntype: Opaque\nstringData:\n  token: t{i}\n"
            ),
            _ => format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n  namespace: {ns}\n"),
        });
    }
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.yaml")), text).unwrap();
    }
}

/// Resident memory of a process and all its descendants, in KiB.
fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = 0;
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        for task in std::fs::read_dir(format!("/proc/{p}/task")).into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            queue.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; nothing to list here
    }
    let kubectl_bin = support::kubectl_bin();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig.yaml");
    let names: Vec<String> = (1..=MEMBERS).map(member).collect();

    let start = Instant::now();
    let mut harness =
        support::start_harness(&names.iter().map(String::as_str).collect::<Vec<_>>(), &kubeconfig);
    let started = start.elapsed();
    let idle_rss = tree_rss_kib(harness.id());

    // The fleet repository: 20 MemberClusters (named after the contexts),
    // the placement, a two-stage strategy and a run.
    let (origin, work) = support::setup(tmp.path());
    for (i, name) in names.iter().enumerate() {
        let stage = if i < 4 { "canary" } else { "rest" };
        write(
            &work,
            &format!("clusters/{name}.yaml"),
            &format!(
                "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n    stage: {stage}\n"
            ),
        );
    }
    write_objects(&work.join("resources"), "bench-gitfleet");
    write(
        &work,
        "placements/bench.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: bench\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: bench-gitfleet}\n  strategy:\n    type: External\n",
    );
    write(
        &work,
        "strategies/two.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: two\nspec:\n  stages:\n  - name: canary\n    maxConcurrency: 100%\n    labelSelector: {matchLabels: {stage: canary}}\n  - name: rest\n    maxConcurrency: 100%\n    labelSelector: {matchLabels: {stage: rest}}\n",
    );
    write(
        &work,
        "runs/run.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: run\nspec:\n  placementName: bench\n  stagedRolloutStrategyName: two\n",
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "20 clusters"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);

    // kubectl's discovery cache, warmed once on one context.
    let cache = tmp.path().join("kubectl-cache");
    let warm = tmp.path().join("warm");
    write_objects(&warm, "bench-warm");
    support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, &names[0], &warm, OBJECTS);

    let mut args = gitfleet::cli::RunArgs::once(origin.display().to_string(), tmp.path().join("state"));
    args.kubeconfig = Some(kubeconfig.clone());
    let start = Instant::now();
    let mut reconciler = gitfleet::cli::reconciler(&args).unwrap();
    let mut passes = 0;
    loop {
        passes += 1;
        let outcome = reconciler.pass(gitfleet::cli::now()).unwrap();
        if outcome.message.contains("run succeeded") {
            break;
        }
        assert!(passes < 20, "the run did not finish: {}", outcome.message);
    }
    let gitfleet_took = start.elapsed();

    let k_dir = tmp.path().join("kubectl");
    write_objects(&k_dir, "bench-kubectl");
    let start = Instant::now();
    for name in &names {
        support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, name, &k_dir, OBJECTS);
    }
    let kubectl_took = start.elapsed();
    let busy_rss = tree_rss_kib(harness.id());
    let _ = Command::new("kill").args(["-TERM", &harness.id().to_string()]).status();
    let _ = harness.wait();

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / MEMBERS as f64;
    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| harness with {MEMBERS} members (one etcd, {MEMBERS} kube-apiservers): start | {:.1} s |",
        started.as_secs_f64()
    );
    println!(
        "| its memory (RSS of the harness and its apiservers), idle and after the runs | {:.0} MiB, {:.0} MiB |",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0
    );
    println!(
        "| gitfleet: staged run of {OBJECTS} objects over {MEMBERS} apiservers (2 stages, {passes} pass(es), status commit and push included) | {:.2} s, {:.0} ms per cluster |",
        gitfleet_took.as_secs_f64(),
        per(gitfleet_took)
    );
    println!(
        "| `kubectl apply --server-side` of the same {OBJECTS} files, looped over the {MEMBERS} contexts | {:.2} s, {:.0} ms per cluster |",
        kubectl_took.as_secs_f64(),
        per(kubectl_took)
    );
}
