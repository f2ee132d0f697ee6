//! Applying 500 objects to one real kube-apiserver: gitfleet's Kubernetes
//! backend against `kubectl apply --server-side -f DIR` of the same files, in
//! the same run. Run: `cargo bench --bench apply` (needs Go: the apiserver and
//! kubectl are built from Go modules by tests/kube-apiserver, cached).
//!
//! Each round uses fresh namespaces, one for kubectl and one for gitfleet, and
//! measures a first apply (every object created) and a second apply of the
//! same files (nothing changes). Both start cold, as a CI job would: kubectl is
//! a new process (its discovery cache warmed once before the rounds), gitfleet
//! a new backend (new client, discovery). gitfleet's times include its
//! takeover check (a GET per object) and the prune inventory.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gitfleet::cluster::kube::KubeBackend;
use gitfleet::cluster::{Backend, SyncOptions};
use gitfleet::render::{RenderedObject, render};
use gitfleet::repo::load_dir;
use gitfleet::snapshot::select::selected_manifests;

const OBJECTS: usize = 500;
const ROUNDS: usize = 5;
const CLUSTER: &str = "bench";

/// The 500 objects of one namespace: the Namespace, ConfigMaps, Secrets,
/// headless Services and ServiceAccounts, one file each.
fn write_objects(dir: &Path, ns: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("000-namespace.yaml"),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .unwrap();
    for i in 1..OBJECTS {
        let text = match i % 4 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\n  labels: {{app: bench}}\ndata:\n  index: \"{i}\"\n  settings.json: '{{\"replicas\": 3, \"tier\": \"web\"}}'\n"
            ),
            1 => format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: {ns}\ntype: Opaque\nstringData:\n  token: t{i}\n"
            ),
            2 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\nspec:\n  clusterIP: None\n  selector: {{app: a{i}}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n"
            ),
            _ => format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n  namespace: {ns}\n"
            ),
        };
        std::fs::write(dir.join(format!("{i:03}.yaml")), text).unwrap();
    }
}

/// The same files as gitfleet renders them for the member cluster.
fn rendered(root: &Path, ns: &str) -> Vec<RenderedObject> {
    std::fs::write(
        root.join("cluster.yaml"),
        format!("apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {CLUSTER}\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("placement.yaml"),
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: {ns}\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: {ns}}}\n"
        ),
    )
    .unwrap();
    let fleet = load_dir(root).unwrap().fleet();
    let manifests = selected_manifests(&fleet, ns);
    let objects = render(&manifests, &[], &fleet.clusters[CLUSTER], ns, 0).unwrap();
    assert_eq!(objects.len(), OBJECTS);
    objects
}

fn gitfleet(kubeconfig: &Path, placement: &str, objects: &[RenderedObject]) -> Duration {
    let start = Instant::now();
    let backend = KubeBackend::new(kubeconfig).unwrap();
    let report = backend.sync(CLUSTER, placement, objects, &SyncOptions::default()).unwrap();
    let took = start.elapsed();
    assert!(report.failed.is_empty(), "{:?}", report.failed.first());
    assert_eq!(report.applied, OBJECTS);
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; nothing to list here
    }
    let kubectl_bin = support::kubectl_bin();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig.yaml");
    let mut harness = support::start_harness(&[CLUSTER], &kubeconfig);
    let cache = tmp.path().join("kubectl-cache");

    // Warm kubectl's discovery cache once (its later runs read it from disk).
    let warm = tmp.path().join("warm");
    write_objects(&warm, "bench-warm");
    support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, CLUSTER, &warm, OBJECTS);

    let (mut k_first, mut k_again, mut g_first, mut g_again) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let k_dir = tmp.path().join(format!("k{round}"));
        let k_ns = format!("bench-kubectl-{round}");
        write_objects(&k_dir, &k_ns);
        let g_root = tmp.path().join(format!("g{round}"));
        let g_ns = format!("bench-gitfleet-{round}");
        write_objects(&g_root.join("resources"), &g_ns);
        let objects = rendered(&g_root, &g_ns);
        // Alternate who goes first, so neither profits from a warmer server.
        if round % 2 == 0 {
            k_first.push(support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, CLUSTER, &k_dir, OBJECTS));
            g_first.push(gitfleet(&kubeconfig, &g_ns, &objects));
        } else {
            g_first.push(gitfleet(&kubeconfig, &g_ns, &objects));
            k_first.push(support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, CLUSTER, &k_dir, OBJECTS));
        }
        k_again.push(support::kubectl_apply(&kubectl_bin, &kubeconfig, &cache, CLUSTER, &k_dir, OBJECTS));
        g_again.push(gitfleet(&kubeconfig, &g_ns, &objects));
        eprintln!(
            "round {round}: kubectl {} / {}, gitfleet {} / {}",
            ms(k_first[round]),
            ms(k_again[round]),
            ms(g_first[round]),
            ms(g_again[round])
        );
    }
    let _ = Command::new("kill").args(["-TERM", &harness.id().to_string()]).status();
    let _ = harness.wait();

    println!("{OBJECTS} objects to one kube-apiserver, median of {ROUNDS} rounds:");
    println!("{:<38} {:>12} {:>12}", "", "first apply", "re-apply");
    println!(
        "{:<38} {:>12} {:>12}",
        "kubectl apply --server-side -f DIR",
        ms(median(k_first.clone())),
        ms(median(k_again.clone()))
    );
    println!(
        "{:<38} {:>12} {:>12}",
        "gitfleet (KubeBackend::sync)",
        ms(median(g_first.clone())),
        ms(median(g_again.clone()))
    );
    let speedup = median(k_first).as_secs_f64() / median(g_first).as_secs_f64();
    let speedup_again = median(k_again).as_secs_f64() / median(g_again).as_secs_f64();
    println!("gitfleet is {speedup:.1}x as fast on the first apply, {speedup_again:.1}x on the re-apply");
}
