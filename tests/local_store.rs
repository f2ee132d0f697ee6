//! Rendering and the local-store backend: overrides, envelopes, prune, takeover.

mod common;

use std::path::Path;

use common::Fleet;
use gitfleet::cluster::local::LocalStore;
use gitfleet::cluster::{Backend, SyncOptions};
use gitfleet::render::render;
use gitfleet::repo::load_dir;
use gitfleet::repo::model::WhenToTakeOver;
use gitfleet::snapshot::select::selected_manifests;

fn example() -> gitfleet::repo::Fleet {
    load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo")).unwrap().fleet()
}

#[test]
fn overrides_apply_per_cluster_with_variables() {
    let fleet = example();
    let manifests = selected_manifests(&fleet, "example-placement");
    let overrides: Vec<_> = fleet.overrides.values().collect();
    let canary = render(&manifests, &overrides, &fleet.clusters["member3"], "example-placement", 1).unwrap();
    let ns = canary.iter().find(|o| o.key.kind == "Namespace").unwrap();
    assert_eq!(ns.value["metadata"]["labels"]["fleet-member"], "member3");
    assert_eq!(ns.value["metadata"]["labels"]["gitfleet.dev/placement"], "example-placement");
    assert_eq!(ns.value["metadata"]["annotations"]["gitfleet.dev/resource-snapshot-index"], "1");
    let staging = render(&manifests, &overrides, &fleet.clusters["member2"], "example-placement", 1).unwrap();
    let ns = staging.iter().find(|o| o.key.kind == "Namespace").unwrap();
    assert!(
        ns.value["metadata"]["labels"].get("fleet-member").is_none(),
        "the rule selects canary clusters only"
    );
}

#[test]
fn envelopes_are_unwrapped_never_applied() {
    let fleet = example();
    let manifests = selected_manifests(&fleet, "crp-with-envelope");
    let objects = render(&manifests, &[], &fleet.clusters["member2"], "crp-with-envelope", 0).unwrap();
    let kinds: Vec<String> = objects.iter().map(|o| o.key.to_string()).collect();
    assert!(!kinds.iter().any(|k| k.contains("Envelope")), "{kinds:?}");
    let cm = objects.iter().find(|o| o.key.kind == "ConfigMap").unwrap();
    assert_eq!(cm.envelope.as_ref().unwrap().name, "example");
    assert_eq!(kinds.len(), 5, "Namespace app, ConfigMap, Deployment, ClusterRole, webhook: {kinds:?}");
}

#[test]
fn apply_prune_and_takeover_on_the_local_store() {
    let fleet = example();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let manifests = selected_manifests(&fleet, "example-placement");
    let objects = render(&manifests, &[], &fleet.clusters["member1"], "example-placement", 0).unwrap();
    let report = store
        .sync("member1", "example-placement", &objects, &SyncOptions::take_over(WhenToTakeOver::Always))
        .unwrap();
    assert_eq!((report.applied, report.pruned), (2, 0));
    assert!(dir.path().join("member1/_cluster/namespace/test-namespace.yaml").exists());
    assert!(dir.path().join("member1/test-namespace/configmap/test-cm.yaml").exists());
    // Somebody else's object in the same namespace.
    let foreign = dir.path().join("member1/test-namespace/configmap/foreign.yaml");
    std::fs::write(
        &foreign,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: foreign\n  namespace: test-namespace\n",
    )
    .unwrap();
    // The snapshot drops test-cm: it is pruned, the foreign object is spared.
    let only_ns: Vec<_> = objects.iter().filter(|o| o.key.kind == "Namespace").cloned().collect();
    let report = store
        .sync("member1", "example-placement", &only_ns, &SyncOptions::take_over(WhenToTakeOver::Always))
        .unwrap();
    assert_eq!(report.pruned, 1);
    assert!(!dir.path().join("member1/test-namespace/configmap/test-cm.yaml").exists());
    assert!(foreign.exists(), "gitfleet never deletes what it did not create");

    // Takeover of an existing object not created by gitfleet.
    let unowned = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: other\n";
    let path = dir.path().join("member1/test-namespace/configmap/test-cm.yaml");
    std::fs::write(&path, unowned).unwrap();
    let report = store
        .sync("member1", "example-placement", &objects, &SyncOptions::take_over(WhenToTakeOver::Never))
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].message.contains("not managed by this placement"),
        "{}",
        report.failed[0].message
    );
    let report = store
        .sync("member1", "example-placement", &objects, &SyncOptions::take_over(WhenToTakeOver::IfNoDiff))
        .unwrap();
    assert!(report.failed[0].message.contains("different content"), "{}", report.failed[0].message);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), unowned, "nothing changed");
    std::fs::write(&path, unowned.replace("other", "value1")).unwrap();
    let report = store
        .sync("member1", "example-placement", &objects, &SyncOptions::take_over(WhenToTakeOver::IfNoDiff))
        .unwrap();
    assert!(report.failed.is_empty(), "same content: taken over");
    assert!(std::fs::read_to_string(&path).unwrap().contains("gitfleet.dev/placement: example-placement"));
}

#[test]
fn failed_wrapped_object_is_reported_with_its_envelope() {
    let f = Fleet::example();
    let crp = f.read("placements/crp-with-envelope.yaml").replace(
        "  strategy:\n    type: RollingUpdate\n",
        "  strategy:\n    type: RollingUpdate\n    applyStrategy:\n      whenToTakeOver: Never\n",
    );
    f.write("placements/crp-with-envelope.yaml", &crp);
    f.commit_all("never take over");
    let state = f.state_dir();
    let foreign = state.join("clusters/member2/app/configmap/config.yaml");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: app\ndata:\n  foo: theirs\n").unwrap();
    let args = gitfleet::cli::RunArgs::once(f.origin_str(), state.clone());
    let mut r = gitfleet::cli::reconciler(&args).unwrap();
    r.pass(gitfleet::cli::now()).unwrap();
    let status = f.origin_file("status/clusterresourceplacements/crp-with-envelope.yaml").unwrap();
    for expected in [
        "failedPlacements:",
        "reason: AppliedManifestFailedReason",
        "kind: ConfigMap",
        "name: config",
        "type: ResourceEnvelope",
        "reason: ApplyFailed",
    ] {
        assert!(status.contains(expected), "missing {expected:?} in\n{status}");
    }
    assert!(std::fs::read_to_string(&foreign).unwrap().contains("theirs"), "the foreign object is untouched");
    assert!(state.join("clusters/member2/app/deployment.apps/ingress.yaml").exists(), "the rest is applied");
}

/// Two placements selecting one object: the second cannot take it over (and so
/// can never prune it from under the first).
#[test]
fn an_object_of_another_placement_is_never_taken_over() {
    let fleet = example();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let manifests = selected_manifests(&fleet, "example-placement");
    let first = render(&manifests, &[], &fleet.clusters["member1"], "first", 0).unwrap();
    assert!(
        store
            .sync("member1", "first", &first, &SyncOptions::take_over(WhenToTakeOver::Always))
            .unwrap()
            .failed
            .is_empty()
    );
    let second = render(&manifests, &[], &fleet.clusters["member1"], "second", 0).unwrap();
    let report =
        store.sync("member1", "second", &second, &SyncOptions::take_over(WhenToTakeOver::Always)).unwrap();
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert!(report.failed[0].message.contains("already placed by another placement"));
    store.sync("member1", "second", &[], &SyncOptions::take_over(WhenToTakeOver::Always)).unwrap();
    assert!(dir.path().join("member1/test-namespace/configmap/test-cm.yaml").exists());
}

/// RollingUpdate: `maxUnavailable` clusters at a time; a failed batch stops the
/// rollout, and the next pass goes on once the cluster is fixed.
#[test]
fn rolling_update_stops_at_a_failed_batch() {
    let f = Fleet::example();
    f.write(
        "resources/rolling.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: rolling\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: rolling\ndata:\n  v: \"1\"\n",
    );
    f.write(
        "placements/rolling.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: rolling\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: rolling}\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 1\n    applyStrategy:\n      whenToTakeOver: Never\n",
    );
    f.commit_all("a rolling placement");
    let state = f.state_dir();
    let blocker = state.join("clusters/member1/rolling/configmap/settings.yaml");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(
        &blocker,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: rolling\n",
    )
    .unwrap();
    let mut r =
        gitfleet::cli::reconciler(&gitfleet::cli::RunArgs::once(f.origin_str(), state.clone())).unwrap();
    let outcome = r.pass(gitfleet::cli::now()).unwrap();
    assert!(outcome.message.contains("rolling rolling update stopped"), "{}", outcome.message);
    let has = |m: &str| state.join(format!("clusters/{m}/_cluster/namespace/rolling.yaml")).exists();
    assert!(has("member1"), "member1's batch ran (its namespace applied, the ConfigMap refused)");
    assert!(!has("member2") && !has("member3"), "later batches wait");
    std::fs::remove_file(&blocker).unwrap();
    let outcome = r.pass(gitfleet::cli::now()).unwrap();
    assert!(outcome.message.contains("rolling rolled out snapshot 0 to 3 cluster(s)"), "{}", outcome.message);
    assert!(has("member2") && has("member3"));
}
