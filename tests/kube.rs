//! The Kubernetes backend against real kube-apiservers: the harness in
//! tests/kube-apiserver builds them from Go modules and runs one per member on
//! 127.0.0.1. Skipped when Go is missing, except in CI (`CI=true`), where the
//! harness must start.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::{Fleet, test_namespace};
use gitfleet::cli::{RunArgs, now, reconciler};
use gitfleet::cluster::Backend;
use gitfleet::cluster::kube::KubeBackend;
use gitfleet::repo::model::ObjectKey;

struct Harness {
    child: Mutex<Child>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();

/// The three apiservers, started once per test binary.
fn harness() -> Option<&'static Harness> {
    HARNESS
        .get_or_init(|| {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            if Command::new("go").arg("version").output().is_err() {
                assert!(!ci, "CI needs Go to build the kube-apiserver harness");
                eprintln!("skipping: Go is not installed");
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let kubeconfig = dir.path().join("kubeconfig.yaml");
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kube-apiserver/start.sh");
            let mut child = Command::new("bash")
                .args([
                    script,
                    "--members",
                    "member1,member2,member3",
                    "--kubeconfig",
                    kubeconfig.to_str().unwrap(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the harness");
            let stdout = child.stdout.take().unwrap();
            let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.trim() == "ready");
            assert!(ready, "the kube-apiserver harness did not become ready");
            Some(Harness { child: Mutex::new(child), kubeconfig, _dir: dir })
        })
        .as_ref()
}

fn cm_value(backend: &KubeBackend, cluster: &str, ns: &str) -> Option<String> {
    let key = ObjectKey {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "test-cm".into(),
    };
    backend.get(cluster, &key).unwrap().and_then(|v| v["data"]["key"].as_str().map(str::to_string))
}

const ALL: &str = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: staging\n    labelSelector:\n      matchLabels: {environment: staging}\n  - name: canary\n    labelSelector:\n      matchLabels: {environment: canary}\n    sortingLabelKey: order\n";

#[test]
fn staged_run_rollback_and_prune_on_real_apiservers() {
    let Some(h) = harness() else { return };
    let f = Fleet::example();
    // The example's webhook envelope would intercept every CREATE on member2.
    f.remove("placements/crp-with-envelope.yaml");
    f.write("strategies/example-strategy.yaml", ALL);
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.write(
        "runs/example-run.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: example-run\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: example-strategy\n",
    );
    f.commit_all("run value2 on real clusters");
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.kubeconfig = Some(h.kubeconfig.clone());
    let mut r = reconciler(&args).unwrap();
    let out = r.pass(now()).unwrap();
    assert!(
        out.message.contains("example-run updated member2, member3, member1"),
        "staging, then canary by order: {}",
        out.message
    );
    assert!(out.message.contains("example-run succeeded"), "{}", out.message);
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    for m in ["member1", "member2", "member3"] {
        assert_eq!(cm_value(&check, m, "test-namespace").as_deref(), Some("value2"), "{m}");
    }
    // The canary override labels the namespace with the cluster's name.
    let ns_key = ObjectKey {
        group: String::new(),
        kind: "Namespace".into(),
        namespace: None,
        name: "test-namespace".into(),
    };
    let ns = check.get("member3", &ns_key).unwrap().unwrap();
    assert_eq!(ns["metadata"]["labels"]["fleet-member"], "member3");
    assert_eq!(ns["metadata"]["managedFields"][0]["manager"], "gitfleet");

    // Rollback: a run pinned to snapshot 0.
    f.pull();
    f.write(
        "runs/back.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: back\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"0\"\n  stagedRolloutStrategyName: example-strategy\n",
    );
    f.commit_all("roll back");
    r.pass(now()).unwrap();
    for m in ["member1", "member2", "member3"] {
        assert_eq!(cm_value(&check, m, "test-namespace").as_deref(), Some("value1"), "{m}");
    }
}
