//! The Kubernetes backend against real kube-apiservers: the harness in
//! tests/kube-apiserver builds them from Go modules and runs one per member on
//! 127.0.0.1. Skipped when Go is missing, except in CI (`CI=true`), where the
//! harness must start.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::harness::Harness;
use common::{
    Fleet, cluster_status, condition, gitfleet, namespace_with_cm, placement_condition, rolling_placement,
    stderr, stdout, test_namespace,
};
use gitfleet::cli::{RunArgs, now, reconciler};
use gitfleet::cluster::Backend;
use gitfleet::cluster::kube::KubeBackend;
use gitfleet::repo::model::ObjectKey;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};

static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();

/// Six apiservers, started once per test binary: member1-3 are shared by the
/// tests (each uses its own namespaces and placements); `edge` and `gone` are
/// stopped (and started) by one test each; `hub` gets KubeFleet's CRDs, to
/// check gitfleet's documents against them.
fn harness() -> Option<&'static Harness> {
    HARNESS.get_or_init(|| Harness::start(&["member1", "member2", "member3", "edge", "gone", "hub"])).as_ref()
}

/// Writes to a member cluster as someone other than gitfleet would (kubectl).
struct Kubectl {
    rt: tokio::runtime::Runtime,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(h: &Harness) -> Kubectl {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Kubectl { rt, kubeconfig: h.kubeconfig.clone() }
    }

    fn api(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let opts = kube::config::KubeConfigOptions { context: Some(cluster.into()), ..Default::default() };
        let config = self.rt.block_on(kube::Config::from_custom_kubeconfig(kc, &opts)).unwrap();
        let _guard = self.rt.enter();
        let client = kube::Client::try_from(config).unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        match ns {
            Some(ns) => Api::namespaced_with(client, ns, &ar),
            None => Api::all_with(client, &ar),
        }
    }

    /// Creates an object (as `kubectl create` does).
    fn create(&self, cluster: &str, yaml: &str) {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        let api = self.api(
            cluster,
            v["apiVersion"].as_str().unwrap(),
            v["kind"].as_str().unwrap(),
            v["metadata"]["namespace"].as_str(),
        );
        let obj: DynamicObject = serde_json::from_value(v).unwrap();
        let pp = PostParams { field_manager: Some("kubectl-create".into()), ..Default::default() };
        self.rt.block_on(api.create(&pp, &obj)).unwrap();
    }

    /// A merge patch (as `kubectl edit` or `kubectl patch` does), or of the status subresource.
    fn patch(
        &self,
        cluster: &str,
        kind: (&str, &str),
        ns: &str,
        name: &str,
        patch: serde_json::Value,
        status: bool,
    ) {
        // ("" for a cluster-scoped object)
        let api = self.api(cluster, kind.0, kind.1, (!ns.is_empty()).then_some(ns));
        let pp = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
        let call = async {
            if status {
                api.patch_status(name, &pp, &Patch::Merge(&patch)).await
            } else {
                api.patch(name, &pp, &Patch::Merge(&patch)).await
            }
        };
        self.rt.block_on(call).unwrap();
    }

    /// Deletes an object (as `kubectl delete` does).
    fn delete(&self, cluster: &str, kind: (&str, &str), ns: &str, name: &str) {
        let api = self.api(cluster, kind.0, kind.1, Some(ns));
        self.rt.block_on(api.delete(name, &kube::api::DeleteParams::default())).unwrap();
    }

    fn get(
        &self,
        cluster: &str,
        kind: (&str, &str),
        ns: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let api = self.api(cluster, kind.0, kind.1, ns);
        self.rt.block_on(api.get_opt(name)).unwrap().map(|o| serde_json::to_value(o).unwrap())
    }
}

const CM: (&str, &str) = ("v1", "ConfigMap");

/// A fleet of the three members (plus `edge`) and nothing else.
fn kube_fleet() -> Fleet {
    let f = Fleet::new();
    let cluster = |name: &str, labels: &str| {
        format!(
            "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n{labels}"
        )
    };
    f.write("clusters/member1.yaml", &cluster("member1", "    environment: canary\n    order: \"2\"\n"));
    f.write("clusters/member2.yaml", &cluster("member2", "    environment: staging\n"));
    f.write("clusters/member3.yaml", &cluster("member3", "    environment: canary\n    order: \"1\"\n"));
    f.write("clusters/edge.yaml", &cluster("edge", "    environment: edge\n"));
    f
}

fn kube_reconciler(f: &Fleet, h: &Harness) -> gitfleet::reconcile::Reconciler {
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.kubeconfig = Some(h.kubeconfig.clone());
    reconciler(&args).unwrap()
}

const PICK_MEMBERS: &str =
    "  policy:\n    placementType: PickFixed\n    clusterNames: [member1, member2, member3]\n";

fn cm_value(backend: &KubeBackend, cluster: &str, ns: &str) -> Option<String> {
    let key = ObjectKey {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "test-cm".into(),
    };
    backend.get(cluster, &key).unwrap().and_then(|v| v["data"]["key"].as_str().map(str::to_string))
}

#[test]
fn seed_walkthrough_and_rollback_on_real_apiservers() {
    let Some(h) = harness() else { return };
    let f = Fleet::example();
    // The example's webhook envelope would intercept every CREATE on member2.
    f.remove("placements/crp-with-envelope.yaml");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.write(
        "runs/example-run.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: example-run\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: example-strategy\n",
    );
    f.commit_all("run value2 on real clusters");
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.kubeconfig = Some(h.kubeconfig.clone());
    let mut r = reconciler(&args).unwrap();
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    let values = || -> Vec<Option<String>> {
        ["member1", "member2", "member3"].iter().map(|m| cm_value(&check, m, "test-namespace")).collect()
    };
    // The seed walkthrough: staging first, then a 1m TimedWait.
    let t0 = now();
    let out = r.pass(t0).unwrap();
    assert!(out.message.contains("example-run updated member2"), "{}", out.message);
    assert_eq!(values(), [None, Some("value2".into()), None], "only staging so far");
    assert_eq!(out.wake.time(), Some(t0 + 60), "wakes when the TimedWait ends");
    let out = r.pass(t0 + 30).unwrap();
    assert!(!out.message.contains("member3"), "{}", out.message);
    // Canary by sortingLabelKey order (member3 before member1), then the approval gate.
    let out = r.pass(t0 + 61).unwrap();
    assert!(out.message.contains("example-run updated member3, member1"), "{}", out.message);
    assert!(
        out.message.contains("example-run canary waiting for approval example-run-canary"),
        "{}",
        out.message
    );
    assert_eq!(values(), [Some("value2".into()), Some("value2".into()), Some("value2".into())]);
    f.pull();
    f.write(
        "approvals/example-run-canary.yaml",
        &gitfleet::cli::approval_yaml("example-run-canary", "ok", "lgtm"),
    );
    f.commit_all("approve example-run-canary");
    let out = r.pass(t0 + 62).unwrap();
    assert!(out.message.contains("example-run succeeded"), "{}", out.message);
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
    r.pass(t0 + 100).unwrap();
    assert_eq!(
        values(),
        [Some("value2".into()), Some("value1".into()), Some("value2".into())],
        "staging first"
    );
    r.pass(t0 + 161).unwrap();
    f.pull();
    f.write("approvals/back-canary.yaml", &gitfleet::cli::approval_yaml("back-canary", "ok", "lgtm"));
    f.commit_all("approve back-canary");
    let out = r.pass(t0 + 162).unwrap();
    assert!(out.message.contains("back succeeded"), "{}", out.message);
    assert_eq!(values(), [Some("value1".into()), Some("value1".into()), Some("value1".into())]);
}

/// The seed walkthrough with KubeFleet's namespaced kinds on real apiservers:
/// a ClusterResourcePlacement places namespace ns-walk (NamespaceOnly), a
/// ResourcePlacement of ns-walk its ConfigMap through a StagedUpdateRun of
/// ns-walk, approved by an ApprovalRequest file.
#[test]
fn namespaced_walkthrough_on_real_apiservers() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "placements/ns-walk.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: ns-walk\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: ns-walk, selectionScope: NamespaceOnly}}\n{PICK_MEMBERS}"
        ),
    );
    f.write(
        "placements/app.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourcePlacement\nmetadata:\n  name: app\n  namespace: ns-walk\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: ConfigMap, name: cm}}\n{PICK_MEMBERS}  strategy:\n    type: External\n"
        ),
    );
    f.write(
        "strategies/stages.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: StagedUpdateStrategy\nmetadata:\n  name: stages\n  namespace: ns-walk\nspec:\n  stages:\n  - name: staging\n    labelSelector: {matchLabels: {environment: staging}}\n    afterStageTasks:\n    - {type: TimedWait, waitTime: 1m}\n  - name: canary\n    labelSelector: {matchLabels: {environment: canary}}\n    sortingLabelKey: order\n    afterStageTasks:\n    - {type: Approval}\n",
    );
    f.write("resources/ns-walk.yaml", &namespace_with_cm("ns-walk", "v1"));
    f.commit_all("namespaced kinds");
    let mut r = kube_reconciler(&f, h);
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    let key = |kind: &str, ns: Option<&str>, name: &str| ObjectKey {
        group: String::new(),
        kind: kind.into(),
        namespace: ns.map(str::to_string),
        name: name.into(),
    };
    let values = || -> Vec<Option<String>> {
        ["member1", "member2", "member3"]
            .iter()
            .map(|m| {
                let cm = check.get(m, &key("ConfigMap", Some("ns-walk"), "cm")).unwrap();
                cm.and_then(|v| v["data"]["key"].as_str().map(str::to_string))
            })
            .collect()
    };
    let t0 = now();
    r.pass(t0).unwrap();
    for m in ["member1", "member2", "member3"] {
        assert!(check.get(m, &key("Namespace", None, "ns-walk")).unwrap().is_some(), "{m} has ns-walk");
    }
    assert_eq!(values(), [None, None, None], "External: nothing without a run");

    f.pull();
    f.write("resources/ns-walk.yaml", &namespace_with_cm("ns-walk", "v2"));
    f.write(
        "runs/walk.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: StagedUpdateRun\nmetadata:\n  name: walk\n  namespace: ns-walk\nspec:\n  placementName: app\n  resourceSnapshotIndex: \"1\"\n  stagedRolloutStrategyName: stages\n",
    );
    f.commit_all("v2 through a staged run of ns-walk");
    let out = r.pass(t0 + 1).unwrap();
    assert!(out.message.contains("ns-walk/walk updated member2"), "{}", out.message);
    assert_eq!(values(), [None, Some("v2".into()), None], "staging first");
    let out = r.pass(t0 + 62).unwrap();
    assert!(out.message.contains("ns-walk/walk updated member3, member1"), "{}", out.message);
    assert!(out.message.contains("waiting for approval ns-walk/walk-canary"), "{}", out.message);
    assert_eq!(values(), [Some("v2".into()), Some("v2".into()), Some("v2".into())]);
    let request = f.origin_file("status/approvalrequests/ns-walk/walk-canary.yaml").unwrap();
    assert!(request.contains("kind: ApprovalRequest") && request.contains("namespace: ns-walk"), "{request}");
    f.pull();
    f.write(
        "approvals/ns-walk/walk-canary.yaml",
        &gitfleet::cli::approval_yaml("ns-walk/walk-canary", "ok", "lgtm"),
    );
    f.commit_all("approve ns-walk/walk-canary");
    let out = r.pass(t0 + 63).unwrap();
    assert!(out.message.contains("ns-walk/walk succeeded"), "{}", out.message);
    let run = f.origin_file("status/stagedupdateruns/ns-walk/walk.yaml").unwrap();
    assert!(run.contains("reason: UpdateRunSucceeded"), "{run}");

    // What the ResourcePlacement applied is marked as its own, and listed in its inventory.
    let cm = check.get("member1", &key("ConfigMap", Some("ns-walk"), "cm")).unwrap().unwrap();
    assert_eq!(cm["metadata"]["labels"]["gitfleet.dev/placement"], "ns-walk_app");
    let on = check.placements_on("member1").unwrap();
    assert!(on.iter().any(|p| p == "ns-walk") && on.iter().any(|p| p == "ns-walk/app"), "{on:?}");
}

/// Prune deletes only what the placement applied; objects that exist but are
/// not gitfleet's follow `whenToTakeOver` (IfNoDiff, Never, Always).
#[test]
fn prune_spares_foreign_objects_and_takeover_follows_policy() {
    let Some(h) = harness() else { return };
    let k = Kubectl::new(h);
    let ns = "kt-take";
    let cm = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  key: {value}\n"
        )
    };
    k.create("member1", &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"));
    k.create("member1", &cm("foreign", "theirs"));
    k.create("member1", &cm("same", "v1"));
    k.create("member1", &cm("differs", "theirs"));
    let f = kube_fleet();
    let objects = |names: &[(&str, &str)]| {
        let mut text = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
        for (n, v) in names {
            text.push_str("---\n");
            text.push_str(&cm(n, v));
        }
        text
    };
    let policy = "  policy:\n    placementType: PickFixed\n    clusterNames: [member1]\n";
    let take = |when: &str| format!("    applyStrategy:\n      whenToTakeOver: {when}\n");
    f.write(
        "resources/take.yaml",
        &objects(&[("a", "one"), ("b", "one"), ("same", "v1"), ("differs", "git")]),
    );
    f.write("placements/take.yaml", &rolling_placement("take", ns, &take("IfNoDiff"), policy));
    f.commit_all("take over what is identical");
    let mut r = kube_reconciler(&f, h);
    r.pass(now()).unwrap();
    let owner = |name: &str| {
        k.get("member1", CM, Some(ns), name)
            .map(|o| o["metadata"]["labels"]["gitfleet.dev/placement"].clone())
    };
    assert_eq!(
        owner("a"),
        Some("take".into()),
        "{}",
        f.origin_file("status/clusterresourceplacements/take.yaml").unwrap()
    );
    assert_eq!(owner("same"), Some("take".into()), "identical: taken over");
    assert_eq!(owner("differs"), Some(serde_json::Value::Null), "different: left alone");
    assert_eq!(k.get("member1", CM, Some(ns), "differs").unwrap()["data"]["key"], "theirs");
    let failed = cluster_status(&f, "take", "member1").failed_placements;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].object.name, "differs");
    assert!(failed[0].condition.message.contains("whenToTakeOver: IfNoDiff"), "{failed:?}");

    // Never: even an identical object is not taken; b leaves Git and is pruned,
    // the foreign object stays.
    k.create("member1", &cm("never", "v1"));
    f.pull();
    f.write("resources/take.yaml", &objects(&[("a", "one"), ("same", "v1"), ("never", "v1")]));
    f.write("placements/take.yaml", &rolling_placement("take", ns, &take("Never"), policy));
    f.commit_all("never take over; drop b");
    r.pass(now()).unwrap();
    assert_eq!(k.get("member1", CM, Some(ns), "b"), None, "pruned");
    assert_eq!(
        k.get("member1", CM, Some(ns), "foreign").unwrap()["data"]["key"],
        "theirs",
        "never ours: kept"
    );
    assert_eq!(
        k.get("member1", CM, Some(ns), "differs").unwrap()["data"]["key"],
        "theirs",
        "never ours: kept"
    );
    assert_eq!(owner("never"), Some(serde_json::Value::Null));
    let failed = cluster_status(&f, "take", "member1").failed_placements;
    assert!(failed[0].condition.message.contains("whenToTakeOver: Never"), "{failed:?}");

    // Always: the different one is taken over and gets Git's value.
    f.pull();
    f.write("resources/take.yaml", &objects(&[("a", "one"), ("differs", "git")]));
    f.write("placements/take.yaml", &rolling_placement("take", ns, &take("Always"), policy));
    f.commit_all("take over everything");
    r.pass(now()).unwrap();
    assert_eq!(owner("differs"), Some("take".into()));
    assert_eq!(k.get("member1", CM, Some(ns), "differs").unwrap()["data"]["key"], "git");
    assert_eq!(
        k.get("member1", CM, Some(ns), "same"),
        None,
        "ours since the first pass, gone from Git: pruned"
    );
    assert!(k.get("member1", CM, Some(ns), "never").is_some(), "never became ours: kept");
    assert!(cluster_status(&f, "take", "member1").failed_placements.is_empty());
}

/// A CustomResourceDefinition and a custom resource of it in one snapshot:
/// the CRD goes first, is waited for until Established, then the resource.
#[test]
fn crd_and_its_custom_resource_in_one_snapshot() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "resources/widgets.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.kt.gitfleet.dev\nspec:\n  group: kt.gitfleet.dev\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              size: {type: integer}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: kt-crd\n---\napiVersion: kt.gitfleet.dev/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: kt-crd\nspec:\n  size: 3\n",
    );
    f.write(
        "placements/widgets.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: widgets\nspec:\n  resourceSelectors:\n  - {group: apiextensions.k8s.io, version: v1, kind: CustomResourceDefinition, name: widgets.kt.gitfleet.dev}\n  - {group: \"\", version: v1, kind: Namespace, name: kt-crd}\n  policy:\n    placementType: PickFixed\n    clusterNames: [member1, member2, member3]\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 3}\n",
    );
    f.commit_all("widgets");
    let mut r = kube_reconciler(&f, h);
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("widgets rolled out snapshot 0 to 3 cluster(s)"), "{}", out.message);
    let k = Kubectl::new(h);
    for m in ["member1", "member2", "member3"] {
        let w = k.get(m, ("kt.gitfleet.dev/v1", "Widget"), Some("kt-crd"), "w").expect("the custom resource");
        assert_eq!(w["spec"]["size"], 3, "{m}");
        let s = cluster_status(&f, "widgets", m);
        assert_eq!(condition(&s.conditions, "ResourceAvailable").status, "True", "{s:?}");
    }
}

/// A wrapped object the apiserver rejects fails the cluster and is reported
/// in failedPlacements with the apiserver's message and its envelope.
#[test]
fn wrapped_object_rejected_by_the_apiserver_is_reported_with_its_envelope() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "resources/env.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kt-env\n---\napiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourceEnvelope\nmetadata:\n  name: wrapped\n  namespace: kt-env\ndata:\n  good.yaml:\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: good, namespace: kt-env}\n    data: {key: fine}\n  bad.yaml:\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: bad, namespace: kt-env}\n    data: {\"not a valid key!\": x}\n",
    );
    let policy = "  policy:\n    placementType: PickFixed\n    clusterNames: [member2]\n";
    f.write("placements/env.yaml", &rolling_placement("env", "kt-env", "", policy));
    f.commit_all("an envelope with a bad object");
    let mut r = kube_reconciler(&f, h);
    r.pass(now()).unwrap();
    let k = Kubectl::new(h);
    assert_eq!(k.get("member2", CM, Some("kt-env"), "good").unwrap()["data"]["key"], "fine");
    let s = cluster_status(&f, "env", "member2");
    assert_eq!(condition(&s.conditions, "ResourceApplied").status, "False", "{s:?}");
    let failed = &s.failed_placements[0];
    assert_eq!(failed.object.kind, "ConfigMap");
    assert_eq!(failed.object.name, "bad");
    assert_eq!(failed.object.namespace.as_deref(), Some("kt-env"));
    let envelope = failed.envelope.as_ref().expect("the envelope is named");
    assert_eq!(
        (envelope.name.as_str(), envelope.namespace.as_deref(), envelope.type_.as_str()),
        ("wrapped", Some("kt-env"), "ResourceEnvelope")
    );
    let message = &failed.condition.message;
    assert!(message.contains("Invalid value") && message.contains("not a valid key!"), "{message}");
}

/// ReportDiff: nothing changes on the clusters; the status holds the diffs,
/// computed with a server-side dry-run apply.
#[test]
fn report_diff_on_real_apiservers() {
    let Some(h) = harness() else { return };
    let k = Kubectl::new(h);
    k.create("member3", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kt-diff\n");
    k.create(
        "member3",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: kt-diff\ndata:\n  key: live\n",
    );
    // A Secret whose values must never reach Git: `live-pass` is bGl2ZS1wYXNz.
    k.create(
        "member3",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: kt-diff\ndata:\n  password: bGl2ZS1wYXNz\n",
    );
    let f = kube_fleet();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: kt-diff\nstringData:\n  password: hub-pass\n";
    f.write("resources/diff.yaml", &format!("{}---\n{secret}", namespace_with_cm("kt-diff", "git")));
    let report = "    applyStrategy:\n      type: ReportDiff\n";
    f.write("placements/diff.yaml", &rolling_placement("diff", "kt-diff", report, PICK_MEMBERS));
    f.commit_all("report only");
    let mut r = kube_reconciler(&f, h);
    r.pass(now()).unwrap();
    assert_eq!(k.get("member3", CM, Some("kt-diff"), "cm").unwrap()["data"]["key"], "live", "unchanged");
    assert_eq!(k.get("member1", ("v1", "Namespace"), None, "kt-diff"), None, "nothing created");
    let s = cluster_status(&f, "diff", "member3");
    assert_eq!(condition(&s.conditions, "ResourceDiffReported").reason, "DiffReported", "{s:?}");
    let cm = s.diffed_placements.iter().find(|d| d.object.kind == "ConfigMap").unwrap();
    let fields = cm.observed_diffs.as_deref().unwrap_or_default();
    let key = fields.iter().find(|d| d.path == "/data/key").unwrap();
    assert_eq!((key.value_in_hub.as_deref(), key.value_in_member.as_deref()), (Some("git"), Some("live")));
    assert!(cm.diff.contains("-  key: live\n+  key: git"), "{cm:?}");
    let db = s.diffed_placements.iter().find(|d| d.object.kind == "Secret").expect("the Secret differs");
    let password = db.observed_diffs.as_deref().unwrap().iter().find(|d| d.path == "/data/password").unwrap();
    assert_eq!(
        (password.value_in_hub.as_deref(), password.value_in_member.as_deref()),
        (Some("*** (after)"), Some("*** (before)")),
        "{db:?}"
    );
    let text = f.origin_file("status/clusterresourceplacements/diff.yaml").unwrap();
    for value in ["bGl2ZS1wYXNz", "live-pass", "hub-pass", "aHViLXBhc3M="] {
        assert!(!text.contains(value), "{value} in the status: {text}");
    }
    let kc = h.kubeconfig.to_str().unwrap();
    let diff =
        gitfleet(&["diff", "diff", "--repo", f.origin_str(), "--kubeconfig", kc, "--cluster", "member3"]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    for value in ["bGl2ZS1wYXNz", "live-pass", "hub-pass", "aHViLXBhc3M="] {
        assert!(!stdout(&diff).contains(value), "{value} in gitfleet diff: {}", stdout(&diff));
    }
    let m1 = cluster_status(&f, "diff", "member1");
    let missing = &m1.diffed_placements;
    assert!(missing.iter().all(|d| d.object_on_cluster == Some(false)), "{m1:?}");
    assert_eq!(missing.len(), 3);
}

/// Drift: an object edited on the cluster behind gitfleet's back is reported
/// with its fields; corrected with `whenToApply: Always`, left as it is with
/// `IfNotDrifted`. `gitfleet diff --kubeconfig` shows it (exit 1, then 0).
/// Objects deleted on the cluster are created again under both.
#[test]
fn drift_is_reported_and_corrected_on_real_apiservers() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "resources/drift.yaml",
        &format!("{}---\n{}", namespace_with_cm("kt-drift-a", "v1"), namespace_with_cm("kt-drift-b", "v1")),
    );
    f.write("placements/fix.yaml", &rolling_placement("fix", "kt-drift-a", "", PICK_MEMBERS));
    let keep = "    applyStrategy:\n      whenToApply: IfNotDrifted\n";
    f.write("placements/keep.yaml", &rolling_placement("keep", "kt-drift-b", keep, PICK_MEMBERS));
    f.commit_all("two placements");
    let mut r = kube_reconciler(&f, h);
    r.pass(now()).unwrap();
    let k = Kubectl::new(h);
    for ns in ["kt-drift-a", "kt-drift-b"] {
        k.patch("member2", CM, ns, "cm", serde_json::json!({"data": {"key": "edited"}}), false);
    }
    let kc = h.kubeconfig.to_str().unwrap();
    let diff = gitfleet(&["diff", "fix", "--repo", f.origin_str(), "--kubeconfig", kc]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    assert!(stdout(&diff).contains("-  key: edited\n+  key: v1"), "{}", stdout(&diff));
    assert!(stderr(&diff).contains("member1: no differences from fix-0"), "{}", stderr(&diff));
    assert!(stderr(&diff).contains("member2: 1 object(s) differ from fix-0"), "{}", stderr(&diff));

    let out = r.pass(now()).unwrap();
    assert!(
        out.message.contains("fix corrected drift on member2: ConfigMap kt-drift-a/cm (/data/key)"),
        "{}",
        out.message
    );
    assert!(
        out.message.contains("keep drifted on member2: ConfigMap kt-drift-b/cm (/data/key)"),
        "{}",
        out.message
    );
    assert_eq!(k.get("member2", CM, Some("kt-drift-a"), "cm").unwrap()["data"]["key"], "v1", "corrected");
    assert_eq!(k.get("member2", CM, Some("kt-drift-b"), "cm").unwrap()["data"]["key"], "edited", "left");
    let drift = cluster_status(&f, "keep", "member2").drifted_placements[0].clone();
    let field = &drift.observed_drifts.as_deref().unwrap_or_default()[0];
    assert_eq!(field.path, "/data/key", "{drift:?}");
    assert_eq!(field.value_in_hub.as_deref(), Some("v1"));
    assert_eq!(field.value_in_member.as_deref(), Some("edited"));
    let diff = gitfleet(&["diff", "fix", "--repo", f.origin_str(), "--kubeconfig", kc]);
    assert_eq!(diff.status.code(), Some(0), "{}{}", stdout(&diff), stderr(&diff));

    for ns in ["kt-drift-a", "kt-drift-b"] {
        k.delete("member1", CM, ns, "cm");
    }
    let out = r.pass(now()).unwrap();
    assert!(
        out.message
            .contains("fix corrected drift on member1: ConfigMap kt-drift-a/cm (deleted on the cluster)"),
        "{}",
        out.message
    );
    assert!(
        out.message.contains("keep re-created on member1: ConfigMap kt-drift-b/cm (deleted on the cluster)"),
        "{}",
        out.message
    );
    for ns in ["kt-drift-a", "kt-drift-b"] {
        let cm = k.get("member1", CM, Some(ns), "cm").expect("created again");
        assert_eq!(cm["data"]["key"], "v1");
        assert_eq!(
            cm["metadata"]["labels"]["gitfleet.dev/placement"],
            if ns == "kt-drift-a" { "fix" } else { "keep" }
        );
    }
    assert_eq!(
        k.get("member2", CM, Some("kt-drift-b"), "cm").unwrap()["data"]["key"],
        "edited",
        "still left"
    );
}

/// Availability (SPEC 6.3): a cluster counts as succeeded only once its
/// Deployment is available; no controller runs here, so the test sets the
/// Deployment's status as a controller would.
#[test]
fn staged_run_waits_for_deployments_to_become_available() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "resources/avail.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kt-avail\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: kt-avail\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - {name: web, image: nginx}\n",
    );
    f.write(
        "placements/avail.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: avail\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: kt-avail}\n  policy:\n    placementType: PickFixed\n    clusterNames: [member1, member2]\n  strategy:\n    type: External\n",
    );
    f.write(
        "strategies/avail.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: avail\nspec:\n  stages:\n  - name: staging\n    labelSelector:\n      matchLabels: {environment: staging}\n  - name: canary\n    labelSelector:\n      matchLabels: {environment: canary}\n",
    );
    f.write(
        "runs/avail.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: avail\nspec:\n  placementName: avail\n  stagedRolloutStrategyName: avail\n",
    );
    f.commit_all("a deployment, staging first");
    let mut r = kube_reconciler(&f, h);
    let t0 = now();
    let out = r.pass(t0).unwrap();
    assert!(out.message.contains("avail updated member2"), "{}", out.message);
    assert!(!out.message.contains("member1"), "canary waits for staging: {}", out.message);
    assert!(out.wake.time().is_some_and(|w| w <= t0 + 5), "polls availability: {:?}", out.wake.time());
    let s = cluster_status(&f, "avail", "member2");
    let available = condition(&s.conditions, "ResourceAvailable");
    assert_eq!(available.reason, "ResourceNotAvailableYet", "{s:?}");
    assert!(available.message.contains("Deployment.apps kt-avail/web is not available yet"), "{s:?}");
    let placement = placement_condition(&f, "avail", "ClusterResourcePlacementAvailable");
    assert_eq!(placement.status, "False", "{placement:?}");
    assert_eq!(placement.reason, "ResourceNotAvailableYet", "{placement:?}");
    assert!(placement.message.contains("(member2)"), "{placement:?}");

    // Still not available: nothing moves.
    let out = r.pass(t0 + 6).unwrap();
    assert!(!out.message.contains("member1"), "{}", out.message);

    let k = Kubectl::new(h);
    let ready = |cluster: &str| {
        let d = k.get(cluster, ("apps/v1", "Deployment"), Some("kt-avail"), "web").unwrap();
        let status = serde_json::json!({"status": {"observedGeneration": d["metadata"]["generation"], "replicas": 2,
            "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        k.patch(cluster, ("apps/v1", "Deployment"), "kt-avail", "web", status, true);
    };
    ready("member2");
    let out = r.pass(t0 + 12).unwrap();
    assert!(
        out.message.contains("avail updated member2, member1"),
        "staging done, canary starts: {}",
        out.message
    );
    ready("member1");
    let out = r.pass(t0 + 18).unwrap();
    assert!(out.message.contains("avail succeeded"), "{}", out.message);
    assert_eq!(
        condition(&cluster_status(&f, "avail", "member1").conditions, "ResourceAvailable").status,
        "True"
    );
    assert_eq!(placement_condition(&f, "avail", "ClusterResourcePlacementAvailable").status, "True");
}

/// An apiserver stopped in the middle of a run: the cluster waits (status and
/// log say it is unreachable), is retried with backoff, and finishes once it
/// is back; stopped for longer than clusterTimeout it fails the run. Other
/// clusters and placements go on; nothing is lost.
#[test]
fn apiserver_stopped_mid_run() {
    let Some(h) = harness() else { return };
    let f = kube_fleet();
    f.write(
        "resources/edge.yaml",
        &format!("{}---\n{}", namespace_with_cm("kt-edge", "v1"), namespace_with_cm("kt-other", "v1")),
    );
    f.write(
        "placements/edge.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: edge\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: kt-edge}\n  policy:\n    placementType: PickFixed\n    clusterNames: [member3, edge]\n  strategy:\n    type: External\n",
    );
    let policy = "  policy:\n    placementType: PickFixed\n    clusterNames: [member3]\n";
    f.write("placements/other.yaml", &rolling_placement("other", "kt-other", "", policy));
    f.write(
        "strategies/edge.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: edge\nspec:\n  stages:\n  - name: canary\n    labelSelector:\n      matchLabels: {environment: canary}\n  - name: edge\n    labelSelector:\n      matchLabels: {environment: edge}\n    clusterTimeout: 2m\n",
    );
    let run = |name: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: edge\n  stagedRolloutStrategyName: edge\n"
        )
    };
    f.write("runs/first.yaml", &run("first"));
    f.commit_all("a run reaching edge");
    h.control("stop", "edge");
    let mut r = kube_reconciler(&f, h);
    let t0 = now();
    let out = r.pass(t0).unwrap();
    assert!(out.message.contains("first updated member3, edge"), "{}", out.message);
    assert!(
        out.message.contains("other rolled out snapshot 0 to 1 cluster(s)"),
        "other placements go on: {}",
        out.message
    );
    assert!(!out.message.contains("first failed"), "{}", out.message);
    let s = cluster_status(&f, "edge", "edge");
    let applied = condition(&s.conditions, "ResourceApplied");
    assert_eq!(applied.reason, "ClusterUnreachable", "{s:?}");
    assert!(applied.message.contains("cluster unreachable (1 attempts"), "{s:?}");
    let placement = placement_condition(&f, "edge", "ClusterResourcePlacementApplied");
    assert_eq!(placement.status, "False", "{placement:?}");
    assert_eq!(placement.reason, "ClusterUnreachable", "{placement:?}");
    assert!(placement.message.contains("(edge)"), "{placement:?}");
    assert_eq!(out.wake.time(), Some(t0 + 5), "first retry after 5 s");
    let k = Kubectl::new(h);
    assert_eq!(k.get("member3", CM, Some("kt-edge"), "cm").unwrap()["data"]["key"], "v1");

    // Back before clusterTimeout: the next attempt succeeds and the run finishes.
    r.pass(t0 + 2).unwrap();
    h.control("start", "edge");
    let out = r.pass(t0 + 6).unwrap();
    assert!(out.message.contains("first succeeded"), "{}", out.message);
    assert_eq!(k.get("edge", CM, Some("kt-edge"), "cm").unwrap()["data"]["key"], "v1");
    assert_eq!(condition(&cluster_status(&f, "edge", "edge").conditions, "ResourceApplied").status, "True");
    assert_eq!(placement_condition(&f, "edge", "ClusterResourcePlacementApplied").status, "True");

    // Down for longer than clusterTimeout (2m): the cluster and the run fail.
    h.control("stop", "edge");
    f.pull();
    f.write(
        "resources/edge.yaml",
        &format!("{}---\n{}", namespace_with_cm("kt-edge", "v2"), namespace_with_cm("kt-other", "v1")),
    );
    f.write("runs/second.yaml", &run("second"));
    f.commit_all("v2 while edge is down");
    let t1 = t0 + 60;
    r.pass(t1).unwrap();
    assert_eq!(k.get("member3", CM, Some("kt-edge"), "cm").unwrap()["data"]["key"], "v2");
    let out = r.pass(t1 + 121).unwrap();
    assert!(out.message.contains("second failed"), "{}", out.message);
    let text = f.origin_file("status/clusterstagedupdateruns/second.yaml").unwrap();
    assert!(
        text.contains("did not complete within the clusterTimeout of 2m0s: cluster unreachable"),
        "{text}"
    );
    h.control("start", "edge");
}

/// The fence of leader election is passed before every write of a sync (each
/// rank's batch, the inventory), so a leader that lost its lease midway writes
/// nothing more: here the fence stops the sync at its second write, after the
/// Namespace and before the ConfigMap.
#[test]
fn the_fence_comes_before_every_write_of_a_sync() {
    use gitfleet::cluster::SyncOptions;
    use gitfleet::render::RenderedObject;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(h) = harness() else { return };
    let object = |kind: &str, ns: Option<&str>, name: &str, value: serde_json::Value| RenderedObject {
        key: ObjectKey {
            group: String::new(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        },
        api_version: "v1".into(),
        value,
        envelope: None,
    };
    let labels = serde_json::json!({"kubernetes-fleet.io/parent-CRP": "fenced"});
    let desired = [
        object(
            "Namespace",
            None,
            "fenced",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "fenced", "labels": labels}}),
        ),
        object(
            "ConfigMap",
            Some("fenced"),
            "cm",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "fenced", "labels": labels}, "data": {"k": "v"}}),
        ),
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let fence: gitfleet::cluster::Fence = Arc::new(move || {
        if counted.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("lease lost");
        }
    });
    let backend = KubeBackend::new(&h.kubeconfig).unwrap().fenced(fence);
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.sync("member2", "fenced", &desired, &SyncOptions::default())
    }));
    assert!(stopped.is_err(), "the fence stopped the sync");
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    let ns = check.get("member2", &desired[0].key).unwrap();
    assert!(ns.is_some(), "the first write (the Namespace) happened");
    assert_eq!(check.get("member2", &desired[1].key).unwrap(), None, "nothing after the fence");
    // Without a lost lease: one fence per rank batch and one for the inventory.
    calls.store(100, Ordering::SeqCst);
    let backend = KubeBackend::new(&h.kubeconfig).unwrap().fenced(Arc::new({
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
        }
    }));
    backend.sync("member2", "fenced", &desired, &SyncOptions::default()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 100 + 3, "Namespace batch, ConfigMap batch, inventory");
}

/// A Verification task with a real Prometheus on real apiservers: the canary's
/// error ratio is too high, and every cluster the run updated goes back to the
/// objects of the snapshot it held before, through the same apply path.
#[test]
fn a_failed_verification_rolls_back_real_clusters() {
    use common::metrics::Prometheus;
    let Some(h) = harness() else { return };
    let Some((_app, prom)) = Prometheus::scraping(&[("member1", 0.0), ("member3", 0.4)]) else { return };
    let f = kube_fleet();
    f.write(
        "placements/verified.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: verified\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: verified}}\n{PICK_MEMBERS}  strategy:\n    type: External\n"
        ),
    );
    let strategy = |name: &str, canary_tasks: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: {name}\nspec:\n  stages:\n  - name: staging\n    labelSelector: {{matchLabels: {{environment: staging}}}}\n  - name: canary\n    labelSelector: {{matchLabels: {{environment: canary}}}}\n    sortingLabelKey: order\n{canary_tasks}"
        )
    };
    f.write("strategies/plain.yaml", &strategy("plain", ""));
    f.write(
        "strategies/checked.yaml",
        &strategy(
            "checked",
            "    afterStageTasks:\n    - type: Verification\n      onFailure: Rollback\n      verification:\n        provider:\n          prometheus:\n            query: app_error_ratio{cluster=\"${MEMBER-CLUSTER-NAME}\"}\n        successCondition: result < 0.05\n        interval: 30s\n        count: 4\n        perCluster: true\n",
        ),
    );
    let run = |name: &str, index: u32, strategy: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: verified\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: {strategy}\n"
        )
    };
    f.write("resources/verified.yaml", &namespace_with_cm("verified", "v1"));
    f.write("runs/verified-first.yaml", &run("verified-first", 0, "plain"));
    f.commit_all("v1 without verification");
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.kubeconfig = Some(h.kubeconfig.clone());
    args.prometheus_url = Some(prom.url());
    let mut r = reconciler(&args).unwrap();
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    let values = || -> Vec<Option<String>> {
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("verified".into()),
            name: "cm".into(),
        };
        ["member1", "member2", "member3"]
            .iter()
            .map(|m| check.get(m, &key).unwrap().and_then(|v| v["data"]["key"].as_str().map(str::to_string)))
            .collect()
    };
    let t0 = now();
    let out = r.pass(t0).unwrap();
    assert!(out.message.contains("verified-first succeeded"), "{}", out.message);
    assert_eq!(values(), [Some("v1".into()), Some("v1".into()), Some("v1".into())]);

    f.pull();
    f.write("resources/verified.yaml", &namespace_with_cm("verified", "v2"));
    f.write("runs/verified-second.yaml", &run("verified-second", 1, "checked"));
    f.commit_all("v2, verified");
    let out = r.pass(t0 + 100).unwrap();
    assert!(
        out.message.contains(
            "verified-second rolled back member1 to snapshot 0, member3 to snapshot 0, member2 to snapshot 0"
        ),
        "{}",
        out.message
    );
    assert_eq!(values(), [Some("v1".into()), Some("v1".into()), Some("v1".into())], "back on every cluster");
    let text = f.origin_file("status/clusterstagedupdateruns/verified-second.yaml").unwrap();
    let doc: gitfleet::status::run::RunDocument =
        gitfleet::status::read_file(&text, "verified-second").unwrap();
    let done = condition(&doc.status.conditions, "Succeeded");
    assert_eq!((done.status.as_str(), done.reason.as_str()), ("False", "UpdateRunRolledBack"));
    assert!(
        done.message
            .contains("failed on cluster member3 in stage canary: 1 measurement(s) failed `result < 0.05`"),
        "{}",
        done.message
    );
}

/// `applyStrategy.allowCoOwnership` and `serverSideApplyConfig.force` on a
/// real apiserver: an object with owners outside the fleet is applied only
/// when co-ownership is allowed; without force, a field another manager took
/// is a conflict, reported, not overwritten.
#[test]
fn co_ownership_and_force_follow_the_apply_strategy() {
    let Some(h) = harness() else { return };
    let k = Kubectl::new(h);
    k.create("member1", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kt-coown\n");
    k.create(
        "member1",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: kt-coown\n  ownerReferences:\n  - {apiVersion: apps/v1, kind: Deployment, name: operator, uid: 8d1c1f0e-4b4e-4c53-9a53-3f0c5f6c7a10}\ndata:\n  key: theirs\n",
    );
    let f = kube_fleet();
    f.write("resources/coown.yaml", &namespace_with_cm("kt-coown", "v1"));
    let only_member1 = "  policy:\n    placementType: PickFixed\n    clusterNames: [member1]\n";
    let placement = |apply: &str| rolling_placement("coown", "kt-coown", apply, only_member1);
    f.write("placements/coown.yaml", &placement(""));
    f.commit_all("a ConfigMap an operator owns");
    let mut r = kube_reconciler(&f, h);
    let check = KubeBackend::new(&h.kubeconfig).unwrap();
    let value = || {
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("kt-coown".into()),
            name: "cm".into(),
        };
        check.get("member1", &key).unwrap().and_then(|v| v["data"]["key"].as_str().map(str::to_string))
    };
    r.pass(now()).unwrap();
    let failed = cluster_status(&f, "coown", "member1").failed_placements;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].condition.message.contains(
            "ConfigMap kt-coown/cm is owned by Deployment/operator (ownerReferences) and applyStrategy.allowCoOwnership is false"
        ),
        "{:?}",
        failed[0]
    );
    assert_eq!(value().as_deref(), Some("theirs"));

    f.pull();
    f.write("placements/coown.yaml", &placement("    applyStrategy:\n      allowCoOwnership: true\n"));
    f.commit_all("co-own it");
    r.pass(now()).unwrap();
    assert!(cluster_status(&f, "coown", "member1").failed_placements.is_empty());
    assert_eq!(value().as_deref(), Some("v1"), "applied as a co-owner (forced: force is not set)");

    // kubectl takes data.key; without force gitfleet's correction is a conflict.
    f.pull();
    f.write(
        "placements/coown.yaml",
        &placement(
            "    applyStrategy:\n      allowCoOwnership: true\n      serverSideApplyConfig: {force: false}\n",
        ),
    );
    f.commit_all("without force");
    r.pass(now()).unwrap();
    k.patch("member1", CM, "kt-coown", "cm", serde_json::json!({"data": {"key": "edited"}}), false);
    r.pass(now()).unwrap();
    assert_eq!(value().as_deref(), Some("edited"), "not overwritten without force");
    let failed = cluster_status(&f, "coown", "member1").failed_placements;
    assert!(
        failed.iter().any(|f| f.condition.message.contains("conflict")),
        "the conflict is reported: {failed:?}"
    );
    f.pull();
    f.write(
        "placements/coown.yaml",
        &placement(
            "    applyStrategy:\n      allowCoOwnership: true\n      serverSideApplyConfig: {force: true}\n",
        ),
    );
    f.commit_all("force it");
    r.pass(now()).unwrap();
    assert_eq!(value().as_deref(), Some("v1"), "forced");
}

/// Member cluster status from real apiservers: the node count, the
/// apiserver's version and the nodes' resources; a member whose apiserver
/// does not answer (never there, or stopped) is not Healthy, saying why.
#[test]
fn member_status_from_real_apiservers() {
    let Some(h) = harness() else { return };
    let k = Kubectl::new(h);
    for node in ["kt-node-a", "kt-node-b"] {
        k.create("member2", &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n"));
        let status = serde_json::json!({"status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3500m", "memory": "14Gi", "pods": "110"},
        }});
        k.patch("member2", ("v1", "Node"), "", node, status, true);
    }
    // A kubeconfig with one more context whose apiserver is not there.
    let dir = tempfile::tempdir().unwrap();
    let mut kc: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&h.kubeconfig).unwrap()).unwrap();
    let user = kc["contexts"][0]["context"]["user"].clone();
    kc["clusters"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "down", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": true}
    }));
    kc["contexts"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "down", "context": {"cluster": "down", "user": user}
    }));
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    std::fs::write(&kubeconfig, serde_json::to_string(&kc).unwrap()).unwrap();
    let f = kube_fleet();
    for m in ["down", "gone"] {
        f.write(
            &format!("clusters/{m}.yaml"),
            &format!("apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {m}\n"),
        );
    }
    f.commit_all("a member that is down, one that will stop");
    let mut args = RunArgs::once(f.origin_str(), f.state_dir());
    args.kubeconfig = Some(kubeconfig);
    let mut r = reconciler(&args).unwrap();
    let out = r.pass(now()).unwrap();
    assert!(out.wake.time().is_some(), "asked again at the next heartbeat");
    let doc = |m: &str| -> gitfleet::status::member::MemberDocument {
        serde_saphyr::from_str(&f.origin_file(&format!("status/memberclusters/{m}.yaml")).unwrap()).unwrap()
    };
    let member2 = doc("member2");
    assert_eq!(member2.property("kubernetes-fleet.io/node-count"), Some("2"));
    assert_eq!(member2.property("k8s.io/k8s-version"), Some("v1.34.4"));
    let usage = member2.status.resource_usage.clone().unwrap();
    assert_eq!((usage.capacity["cpu"].as_str(), usage.capacity["memory"].as_str()), ("8", "32Gi"));
    assert_eq!((usage.allocatable["cpu"].as_str(), usage.allocatable["memory"].as_str()), ("7", "28Gi"));
    assert_eq!(usage.available["cpu"], "7", "no pods request anything");
    assert_eq!(condition(&member2.status.conditions, "Healthy").status, "True");
    let down = condition(&doc("down").status.conditions, "Healthy");
    assert_eq!((down.status.as_str(), down.reason.as_str()), ("False", "MemberClusterUnreachable"));
    assert!(down.message.contains("cluster down"), "{}", down.message);
    let table = stdout(&gitfleet(&["get", "memberclusters", "--repo", f.origin_str()]));
    let row: Vec<&str> =
        table.lines().find(|l| l.starts_with("member2")).unwrap().split_whitespace().collect();
    assert_eq!((row[1], row[4], row[5], row[6]), ("True", "2", "7", "28Gi"));

    // Scheduling reads what the clusters reported: the one with the most nodes.
    f.pull();
    f.write("resources/bynodes.yaml", &namespace_with_cm("kt-bynodes", "v1"));
    let policy = "  policy:\n    placementType: PickN\n    numberOfClusters: 1\n    affinity:\n      clusterAffinity:\n        preferredDuringSchedulingIgnoredDuringExecution:\n        - weight: 100\n          preference:\n            propertySorter: {name: kubernetes-fleet.io/node-count, sortOrder: Descending}\n";
    f.write("placements/bynodes.yaml", &rolling_placement("bynodes", "kt-bynodes", "", policy));
    f.commit_all("one cluster, the one with the most nodes");
    r.pass(now()).unwrap();
    let placed: Vec<String> = common::placement_document(&f, "bynodes")
        .status
        .placement_statuses
        .iter()
        .map(|s| s.cluster_name.clone())
        .collect();
    assert_eq!(placed, ["member2"]);

    // `gone` answers, then its apiserver stops: at its next heartbeat it is not Healthy.
    assert_eq!(condition(&doc("gone").status.conditions, "Healthy").status, "True");
    h.control("stop", "gone");
    r.pass(now() + 120).unwrap();
    let gone = condition(&doc("gone").status.conditions, "Healthy");
    assert_eq!(
        (gone.status.as_str(), gone.reason.as_str()),
        ("False", "MemberClusterUnreachable"),
        "{gone:?}"
    );
    assert!(gone.message.contains("cluster gone"), "{}", gone.message);
    let table = stdout(&gitfleet(&["get", "memberclusters", "--repo", f.origin_str()]));
    let row: Vec<&str> = table.lines().find(|l| l.starts_with("gone")).unwrap().split_whitespace().collect();
    assert_eq!(row[1], "True", "still joined (listed in Git): {table}");
    h.control("start", "gone");
}

/// Every document gitfleet writes under the status folder, and every object
/// `gitfleet get -o yaml` prints, in a scenario that writes each kind (runs
/// with TimedWait, Approval and a Verification that rolls back, namespaced
/// twins, evictions, drift, ReportDiff, NamespaceAccessible, member status):
/// (where it comes from, the document). Made on the local store.
fn documents_to_check() -> Vec<(String, serde_json::Value)> {
    let app = common::metrics::App::start(&[("member1", 0.0), ("member2", 0.0), ("member3", 0.4)]);
    let f = Fleet::example();
    let t0 = 1_900_000_000;
    f.remove("runs/example-run.yaml");
    f.write("resources/ev.yaml", &namespace_with_cm("ev", "v1"));
    f.write("placements/evictable.yaml", &rolling_placement("evictable", "ev", "", ""));
    f.write(
        "placements/report.yaml",
        &rolling_placement("report", "rd", "    applyStrategy:\n      type: ReportDiff\n", ""),
    );
    f.write("resources/rd.yaml", &namespace_with_cm("rd", "git"));
    common::write_drift_placements(&f);
    f.write(
        "placements/team-a.yaml",
        &rolling_placement("team-a", "team-a", "", "").replace(
            "spec:\n  resourceSelectors:",
            "spec:\n  statusReportingScope: NamespaceAccessible\n  resourceSelectors:",
        ),
    );
    f.write("resources/team-a.yaml", &namespace_with_cm("team-a", "v1"));
    // The namespaced twins: team-b's ConfigMap by a ResourcePlacement.
    f.write("resources/team-b.yaml", &namespace_with_cm("team-b", "v1"));
    f.write(
        "placements/team-b.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: team-b\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: team-b, selectionScope: NamespaceOnly}\n  policy:\n    placementType: PickAll\n",
    );
    f.write(
        "placements/rp.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourcePlacement\nmetadata:\n  name: rp\n  namespace: team-b\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: ConfigMap, name: cm}\n  policy:\n    placementType: PickAll\n  strategy:\n    type: External\n",
    );
    f.write(
        "strategies/ns.yaml",
        &f.read("strategies/example-strategy.yaml").replace(
            "kind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\n",
            "kind: StagedUpdateStrategy\nmetadata:\n  name: ns-strategy\n  namespace: team-b\n",
        ),
    );
    // A verified strategy: the canary's error rate is too high, the run rolls back.
    f.write(
        "strategies/verified.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: verified\nspec:\n  stages:\n  - name: staging\n    labelSelector: {{matchLabels: {{environment: staging}}}}\n    maxFailures: 1\n    clusterTimeout: 5m\n    afterStageTasks:\n    - type: TimedWait\n      waitTime: 1s\n  - name: canary\n    labelSelector: {{matchLabels: {{environment: canary}}}}\n    afterStageTasks:\n    - type: Verification\n      onFailure: Rollback\n      verification:\n        provider:\n          web:\n            url: {}\n            jsonPath: \"{{$.data.errorRate}}\"\n        successCondition: result < 0.05\n        perCluster: true\n    - type: Approval\n",
            app.url("/rate/${MEMBER-CLUSTER-NAME}")
        ),
    );
    f.commit_all("every kind of placement");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let run = |kind: &str, name: &str, ns: Option<&str>, placement: &str, index: u32, strategy: &str| {
        let ns = ns.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: {kind}\nmetadata:\n  name: {name}\n{ns}spec:\n  placementName: {placement}\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: {strategy}\n"
        )
    };
    f.write(
        "runs/example-run.yaml",
        &run("ClusterStagedUpdateRun", "example-run", None, "example-placement", 1, "example-strategy"),
    );
    f.write(
        "runs/first.yaml",
        &run("ClusterStagedUpdateRun", "first", None, "example-placement", 0, "example-strategy"),
    );
    f.commit_all("runs");

    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    let mut seen: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    let mut collect = |f: &Fleet| {
        let files = common::git(&f.origin, &["ls-tree", "-r", "--name-only", "main", "status/"]);
        for path in files.lines() {
            let text = common::git(&f.origin, &["show", &format!("main:{path}")]);
            let value: serde_json::Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            seen.entry(format!("{path} {}", serde_json::to_string(&value).unwrap())).or_insert(value);
        }
    };
    r.pass(t0).unwrap();
    collect(&f);
    // Drift on member1 (always corrects it, keep reports it), a live value for ReportDiff.
    let st = f.state_dir();
    for ns in ["drift-a", "drift-b"] {
        common::edit(&st.join(format!("clusters/member1/{ns}/configmap/cm.yaml")), "key: v1", "key: live");
    }
    let live = st.join("clusters/member1/rd/configmap/cm.yaml");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    std::fs::write(
        &live,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: rd\ndata:\n  key: live\n",
    )
    .unwrap();
    f.pull();
    f.write(
        "evictions/off-member1.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementEviction\nmetadata:\n  name: off-member1\nspec:\n  placementName: evictable\n  clusterName: member1\n",
    );
    f.write(
        "evictions/budget.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementDisruptionBudget\nmetadata:\n  name: evictable\nspec:\n  maxUnavailable: 1\n",
    );
    f.write("runs/ns-run.yaml", &run("StagedUpdateRun", "ns-run", Some("team-b"), "rp", 0, "ns-strategy"));
    f.commit_all("evict member1, a run of the ResourcePlacement");
    for t in [t0 + 30, t0 + 61, t0 + 62, t0 + 95] {
        r.pass(t).unwrap();
        collect(&f);
    }
    common::approve_by_merge(&f, "first-canary");
    common::approve_by_merge(&f, "team-b/ns-run-canary");
    r.pass(t0 + 100).unwrap();
    collect(&f);
    // The verified run: staging, a soak, then the canary fails its verification and goes back.
    f.pull();
    f.write(
        "runs/verified.yaml",
        &run("ClusterStagedUpdateRun", "verified", None, "example-placement", 1, "verified"),
    );
    f.commit_all("a verified run");
    for t in [t0 + 200, t0 + 202, t0 + 204, t0 + 206] {
        r.pass(t).unwrap();
        collect(&f);
    }
    let mut out: Vec<(String, serde_json::Value)> =
        seen.into_iter().map(|(k, v)| (k.split_once(' ').unwrap().0.to_string(), v)).collect();
    assert!(
        out.iter()
            .any(|(p, v)| p.ends_with("/verified.yaml") && v.to_string().contains("UpdateRunRolledBack")),
        "the scenario reaches a rollback"
    );
    for (kind, all) in [
        ("memberclusters", false),
        ("crp", false),
        ("clusterresourcesnapshots", false),
        ("csus", false),
        ("csur", false),
        ("careq", false),
        ("rp", true),
        ("rs", true),
        ("sus", true),
        ("sur", true),
        ("areq", true),
    ] {
        let mut args = vec!["get", kind, "-o", "yaml", "--repo", f.origin_str()];
        if all {
            args.push("-A");
        }
        let shown = gitfleet(&args);
        assert!(shown.status.success(), "get {kind}: {}", stderr(&shown));
        let list: serde_json::Value = serde_saphyr::from_str(&stdout(&shown)).unwrap();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        assert!(!items.is_empty(), "get {kind} shows something");
        out.extend(items.into_iter().map(|i| (format!("gitfleet get {kind} -o yaml"), i)));
    }
    out
}

/// `group/version` -> (kind -> (plural, namespaced)) of the CRDs in `dir`,
/// created on `client`'s apiserver and established.
fn install_crds(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    dir: &std::path::Path,
) -> std::collections::BTreeMap<(String, String), (String, bool)> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut kinds = std::collections::BTreeMap::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(crd) = serde_saphyr::from_str::<CustomResourceDefinition>(&text) else { continue };
        if crd.spec.names.kind.is_empty() {
            continue;
        }
        for v in &crd.spec.versions {
            kinds.insert(
                (format!("{}/{}", crd.spec.group, v.name), crd.spec.names.kind.clone()),
                (crd.spec.names.plural.clone(), crd.spec.scope == "Namespaced"),
            );
        }
        names.push(crd.metadata.name.clone().unwrap());
        match rt.block_on(api.create(&PostParams::default(), &crd)) {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    assert!(kinds.len() > 20, "{} holds KubeFleet's CRDs", dir.display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for name in names {
        loop {
            let crd = rt.block_on(api.get(&name)).unwrap();
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
            if established {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "CRD {name} is not established");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    kinds
}

/// Every document gitfleet writes under the status folder, and every object
/// `gitfleet get -o yaml` prints, is a KubeFleet object its own CRDs accept:
/// created on an apiserver with KubeFleet's CRDs installed (from the folder
/// GITFLEET_KUBEFLEET_CRDS names), `spec` and status subresource alike, with
/// strict field validation.
#[test]
fn status_documents_are_valid_kubefleet_objects() {
    let Some(dir) = std::env::var_os("GITFLEET_KUBEFLEET_CRDS") else {
        eprintln!(
            "skipping: set GITFLEET_KUBEFLEET_CRDS to the config/crd/bases folder of a KubeFleet checkout \
             (git clone https://github.com/kubefleet-dev/kubefleet) to check gitfleet's documents against KubeFleet's CRDs"
        );
        return;
    };
    let Some(h) = harness() else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = h.client(&rt, "hub");
    let kinds = install_crds(&rt, &client, std::path::Path::new(&dir));
    let docs = documents_to_check();
    let strict = PatchParams::apply("gitfleet-check").force().validation_strict();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    let mut refused = Vec::new();
    for (from, doc) in &docs {
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str()) else {
            // A cluster file of a run kept one file per cluster: gitfleet's own format.
            assert!(from.contains("stagedupdateruns/") && from.matches('/').count() >= 3, "{from}: {doc}");
            continue;
        };
        let Some((plural, namespaced)) = kinds.get(&(api_version.to_string(), kind.to_string())) else {
            refused.push(format!("{from}: {api_version} {kind} is not a KubeFleet kind"));
            continue;
        };
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let ns = doc["metadata"]["namespace"].as_str();
        if *namespaced != ns.is_some() {
            refused.push(format!(
                "{from}: {kind}/{name}: namespaced is {namespaced}, metadata.namespace is {ns:?}"
            ));
            continue;
        }
        if let Some(ns) = ns {
            let object =
                serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            let _ = rt.block_on(namespaces.patch(
                ns,
                &PatchParams::apply("gitfleet-check"),
                &Patch::Apply(&object),
            ));
        }
        let (group, version) = api_version.rsplit_once('/').unwrap();
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let mut object = doc.clone();
        let status = object.as_object_mut().unwrap().remove("status");
        for server_set in ["creationTimestamp", "generation", "resourceVersion", "uid"] {
            object["metadata"].as_object_mut().unwrap().remove(server_set);
        }
        let what = format!("{from}: {kind}/{name}");
        if let Err(e) = rt.block_on(api.patch(name, &strict, &Patch::Apply(&object))) {
            refused.push(format!("{what}: {e}"));
            continue;
        }
        if let Some(status) = status {
            let patch = serde_json::json!({
                "apiVersion": api_version, "kind": kind,
                "metadata": { "name": name, "namespace": ns }, "status": status,
            });
            if let Err(e) = rt.block_on(api.patch_status(name, &strict, &Patch::Apply(&patch))) {
                refused.push(format!("{what} (status): {e}"));
            }
        }
        let _ = rt.block_on(api.delete(name, &Default::default()));
        *checked.entry(kind.to_string()).or_default() += 1;
    }
    assert!(
        refused.is_empty(),
        "KubeFleet's CRDs refuse {} document(s):\n{}",
        refused.len(),
        refused.join("\n")
    );
    // The check itself refuses a field KubeFleet's schema lacks (as gitfleet once wrote it).
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("placement.kubernetes-fleet.io", "v1beta1", "ClusterStagedUpdateRun"),
        "clusterstagedupdateruns",
    );
    let runs: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let run = serde_json::json!({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
        "metadata": { "name": "strict" },
        "spec": { "placementName": "p", "stagedRolloutStrategyName": "s" },
    });
    rt.block_on(runs.patch("strict", &strict, &Patch::Apply(&run))).unwrap();
    let status = serde_json::json!({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
        "metadata": { "name": "strict" },
        "status": { "stagesStatus": [{ "stageName": "s", "afterStageTaskStatus": [
            { "type": "TimedWait", "waitUntil": "2030-01-01T00:00:00Z" }
        ]}]},
    });
    let e = rt.block_on(runs.patch_status("strict", &strict, &Patch::Apply(&status))).unwrap_err();
    assert!(e.to_string().contains("waitUntil"), "{e}");
    for kind in [
        "MemberCluster",
        "ClusterResourcePlacement",
        "ResourcePlacement",
        "ClusterResourceSnapshot",
        "ResourceSnapshot",
        "ClusterStagedUpdateStrategy",
        "StagedUpdateStrategy",
        "ClusterStagedUpdateRun",
        "StagedUpdateRun",
        "ClusterApprovalRequest",
        "ApprovalRequest",
        "ClusterResourcePlacementEviction",
        "ClusterResourcePlacementStatus",
    ] {
        assert!(checked.get(kind).is_some_and(|n| *n > 0), "no {kind} was checked: {checked:?}");
    }
    eprintln!("checked against KubeFleet's CRDs: {checked:?}");
}
