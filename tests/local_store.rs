//! Rendering and the local-store backend: overrides, envelopes, prune, takeover.

mod common;

use std::path::Path;

use common::{
    Fleet, cluster_status, condition, edit, git, gitfleet, namespace_with_cm, placement_condition,
    rolling_placement, stderr, stdout, write_drift_placements,
};
use gitfleet::cli::{RunArgs, now, reconciler};
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

/// Asserts that a status commit message says `what`.
fn says(message: &str, what: &str) {
    assert!(message.contains(what), "{what:?} not in: {message}");
}

/// Drift on the local store (a file edited behind gitfleet's back): reported
/// in `driftedPlacements` with the fields, corrected with `whenToApply:
/// Always`, left alone (and a new snapshot refused for that object) with
/// `IfNotDrifted`; `gitfleet diff` shows it and exits 1, then 0.
#[test]
fn drift_is_reported_corrected_or_left_as_it_is() {
    let f = Fleet::example();
    write_drift_placements(&f);
    f.commit_all("two placements");
    let state = f.state_dir();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    r.pass(now()).unwrap();
    let a = state.join("clusters/member1/drift-a/configmap/cm.yaml");
    let b = state.join("clusters/member1/drift-b/configmap/cm.yaml");
    edit(&a, "key: v1", "key: edited");
    edit(&b, "key: v1", "key: edited");

    let st = state.to_str().unwrap();
    let diff =
        gitfleet(&["diff", "always", "--repo", f.origin_str(), "--state-dir", st, "--cluster", "member1"]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    assert!(stdout(&diff).contains("-  key: edited\n+  key: v1"), "{}", stdout(&diff));
    assert!(stderr(&diff).contains("member1: 1 object(s) differ from always-0"), "{}", stderr(&diff));
    // The same as Markdown for a pull-request comment, on stdout.
    let md =
        gitfleet(&["diff", "always", "--repo", f.origin_str(), "--state-dir", st, "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(1), "{}", stderr(&md));
    let md = stdout(&md);
    for part in [
        "## gitfleet diff: always against always-0",
        "- **member1**: 1 object(s) differ",
        "<details><summary>member1: ConfigMap drift-a/cm differs</summary>",
        "```diff\n--- live/ConfigMap drift-a/cm",
        "-  key: edited\n+  key: v1",
    ] {
        assert!(md.contains(part), "{part:?} not in:\n{md}");
    }

    let out = r.pass(now()).unwrap();
    says(&out.message, "always corrected drift on member1: ConfigMap drift-a/cm (/data/key)");
    says(&out.message, "keep drifted on member1: ConfigMap drift-b/cm (/data/key)");
    assert!(std::fs::read_to_string(&a).unwrap().contains("key: v1"), "corrected");
    assert!(std::fs::read_to_string(&b).unwrap().contains("key: edited"), "left as it is");
    let m1 = cluster_status(&f, "keep", "member1");
    let drift = &m1.drifted_placements[0];
    assert_eq!(drift.object.name, "cm");
    let field = &drift.observed_drifts.as_deref().unwrap_or_default()[0];
    assert_eq!(field.path, "/data/key");
    assert_eq!(field.value_in_hub.as_deref(), Some("v1"));
    assert_eq!(field.value_in_member.as_deref(), Some("edited"));
    let diff = gitfleet(&["diff", "always", "--repo", f.origin_str(), "--state-dir", st]);
    assert_eq!(diff.status.code(), Some(0), "{}{}", stdout(&diff), stderr(&diff));

    // A new snapshot: the drifted object stays as it is on member1 and is
    // reported as failed, which stops the rolling update (member2 keeps v1).
    f.pull();
    f.write(
        "resources/drift.yaml",
        &format!("{}---\n{}", namespace_with_cm("drift-a", "v1"), namespace_with_cm("drift-b", "v2")),
    );
    f.commit_all("v2 for keep");
    r.pass(now()).unwrap();
    assert!(std::fs::read_to_string(&b).unwrap().contains("key: edited"));
    let m2 = std::fs::read_to_string(state.join("clusters/member2/drift-b/configmap/cm.yaml")).unwrap();
    assert!(m2.contains("key: v1"), "{m2}");
    let status = f.origin_file("status/clusterresourceplacements/keep.yaml").unwrap();
    assert!(
        status.contains("has drifted on the cluster (/data/key) and whenToApply is IfNotDrifted"),
        "{status}"
    );
    let always = f.origin_file("status/clusterresourceplacements/always.yaml").unwrap();
    assert!(!always.contains("driftedPlacements"), "the next check found no drift: {always}");
}

/// Objects deleted on a cluster behind gitfleet's back are created again at the
/// next check, with `whenToApply: Always` (as drift corrected) and with
/// `IfNotDrifted` (no change of the member's is overwritten by that), while an
/// edited object stays as it is under `IfNotDrifted`.
#[test]
fn objects_deleted_on_a_cluster_are_created_again() {
    let f = Fleet::example();
    let other =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: gone-b\ndata:\n  key: v1\n";
    f.write(
        "resources/gone.yaml",
        &format!(
            "{}---\n{}---\n{other}",
            namespace_with_cm("gone-a", "v1"),
            namespace_with_cm("gone-b", "v1")
        ),
    );
    f.write("placements/always.yaml", &rolling_placement("always", "gone-a", "", ""));
    let keep = "    applyStrategy:\n      whenToApply: IfNotDrifted\n";
    f.write("placements/keep.yaml", &rolling_placement("keep", "gone-b", keep, ""));
    f.commit_all("two placements");
    let state = f.state_dir();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    r.pass(now()).unwrap();
    let a = state.join("clusters/member1/gone-a/configmap/cm.yaml");
    let b = state.join("clusters/member1/gone-b/configmap/cm.yaml");
    let edited = state.join("clusters/member1/gone-b/configmap/other.yaml");
    std::fs::remove_file(&a).unwrap();
    std::fs::remove_file(&b).unwrap();
    edit(&edited, "key: v1", "key: edited");

    let st = state.to_str().unwrap();
    let diff =
        gitfleet(&["diff", "always", "--repo", f.origin_str(), "--state-dir", st, "--cluster", "member1"]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));

    let out = r.pass(now()).unwrap();
    says(&out.message, "always corrected drift on member1: ConfigMap gone-a/cm (deleted on the cluster)");
    says(&out.message, "keep re-created on member1: ConfigMap gone-b/cm (deleted on the cluster)");
    says(&out.message, "keep drifted on member1: ConfigMap gone-b/other (/data/key)");
    assert!(std::fs::read_to_string(&a).unwrap().contains("key: v1"), "created again");
    assert!(std::fs::read_to_string(&b).unwrap().contains("key: v1"), "created again");
    assert!(std::fs::read_to_string(&edited).unwrap().contains("key: edited"), "left as it is");
    let m1 = cluster_status(&f, "keep", "member1");
    let drifted = &m1.drifted_placements;
    let gone =
        drifted.iter().find(|d| d.object.name == "cm").expect("the deletion is reported for this pass");
    assert_eq!(gone.object_on_cluster, Some(false), "{m1:?}");
    assert!(drifted.iter().any(|d| d.object.name == "other"), "{m1:?}");
    let diff = gitfleet(&["diff", "always", "--repo", f.origin_str(), "--state-dir", st]);
    assert_eq!(diff.status.code(), Some(0), "{}{}", stdout(&diff), stderr(&diff));

    // The next check finds only the edited object.
    r.pass(now()).unwrap();
    let status = f.origin_file("status/clusterresourceplacements/keep.yaml").unwrap();
    assert!(!status.contains("objectOnCluster"), "{status}");
    assert!(status.contains("name: other"), "{status}");
}

/// ReportDiff: nothing is changed on the clusters; the differences are in the
/// placement status, per cluster, with fields and a unified diff.
#[test]
fn report_diff_changes_nothing_and_reports_differences() {
    let f = Fleet::example();
    f.write("resources/rd.yaml", &namespace_with_cm("rd", "git"));
    f.write(
        "placements/rd.yaml",
        &rolling_placement("rd", "rd", "    applyStrategy:\n      type: ReportDiff\n", ""),
    );
    f.commit_all("report only");
    let state = f.state_dir();
    let live = state.join("clusters/member1/rd/configmap/cm.yaml");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    let before =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: rd\ndata:\n  key: live\n";
    std::fs::write(&live, before).unwrap();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    r.pass(now()).unwrap();
    assert_eq!(std::fs::read_to_string(&live).unwrap(), before, "ReportDiff changes nothing");
    assert!(!state.join("clusters/member2/rd").exists(), "nor creates anything");
    let m1 = cluster_status(&f, "rd", "member1");
    let diffs = &m1.diffed_placements;
    let cm = diffs.iter().find(|d| d.object.kind == "ConfigMap").unwrap();
    let fields = cm.observed_diffs.as_deref().unwrap_or_default();
    let key = fields.iter().find(|d| d.path == "/data/key").unwrap();
    assert_eq!(key.value_in_member.as_deref(), Some("live"));
    assert!(cm.diff.contains("+  key: git"));
    let ns = diffs.iter().find(|d| d.object.kind == "Namespace").unwrap();
    assert_eq!(ns.object_on_cluster, Some(false));
    assert_eq!(condition(&m1.conditions, "ResourceDiffReported").reason, "DiffReported");
    assert!(m1.conditions.iter().all(|c| c.type_ != "ResourceApplied"), "nothing was applied: {m1:?}");

    // Switched to applying: the same snapshot is applied now, the diffs go.
    f.pull();
    f.write("placements/rd.yaml", &rolling_placement("rd", "rd", "", ""));
    f.commit_all("apply for real");
    r.pass(now()).unwrap();
    assert!(std::fs::read_to_string(&live).unwrap().contains("key: git"));
    assert!(state.join("clusters/member2/rd/configmap/cm.yaml").exists());
    let text = f.origin_file("status/clusterresourceplacements/rd.yaml").unwrap();
    assert!(!text.contains("diffedPlacements") && !text.contains("ResourceDiffReported"), "{text}");
}

/// Regression: ReportDiff, drift and `gitfleet diff` wrote Secret values into
/// status files (kept in Git history for ever) and onto the terminal. Values
/// show as `kubectl diff` shows them; keys stay visible.
#[test]
fn secret_values_never_reach_git_or_the_terminal() {
    let f = Fleet::example();
    let secret = |ns: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\ntype: Opaque\nstringData:\n  password: {value}\n  user: admin\n"
        )
    };
    f.write(
        "resources/secrets.yaml",
        &format!("{}---\n{}", secret("sec-report", "hub-pass-1"), secret("sec-drift", "hub-pass-1")),
    );
    let report = "    applyStrategy:\n      type: ReportDiff\n";
    f.write("placements/report.yaml", &rolling_placement("report", "sec-report", report, ""));
    f.write("placements/drift.yaml", &rolling_placement("drift", "sec-drift", "", ""));
    f.commit_all("secrets");
    let state = f.state_dir();
    let live = state.join("clusters/member1/sec-report/secret/db.yaml");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    std::fs::write(
        &live,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: sec-report\ntype: Opaque\nstringData:\n  password: live-pass-2\n  user: admin\n",
    )
    .unwrap();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    r.pass(now()).unwrap();
    edit(&state.join("clusters/member2/sec-drift/secret/db.yaml"), "hub-pass-1", "edited-pass-3");
    let out = r.pass(now()).unwrap();
    says(&out.message, "drift corrected drift on member2: Secret sec-drift/db (/stringData/password)");

    let status = f.origin_file("status/clusterresourceplacements/report.yaml").unwrap()
        + &f.origin_file("status/clusterresourceplacements/drift.yaml").unwrap();
    let history = git(&f.origin, &["log", "-p", "--author=gitfleet", "main"]); // gitfleet's commits
    let st = state.to_str().unwrap();
    edit(&state.join("clusters/member2/sec-drift/secret/db.yaml"), "hub-pass-1", "edited-pass-4");
    let diff =
        gitfleet(&["diff", "drift", "--repo", f.origin_str(), "--state-dir", st, "--cluster", "member2"]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    for (what, text) in
        [("status", &status), ("history", &history), ("diff", &stdout(&diff)), ("message", &out.message)]
    {
        for value in ["hub-pass-1", "live-pass-2", "edited-pass-3", "edited-pass-4"] {
            assert!(!text.contains(value), "{value} in the {what}: {text}");
        }
    }
    let m1 = cluster_status(&f, "report", "member1");
    let db = m1.diffed_placements.iter().find(|d| d.object.kind == "Secret").unwrap();
    let password =
        db.observed_diffs.as_deref().unwrap().iter().find(|d| d.path == "/stringData/password").unwrap();
    assert_eq!(
        (password.value_in_hub.as_deref(), password.value_in_member.as_deref()),
        (Some("*** (after)"), Some("*** (before)"))
    );
    assert!(
        !db.observed_diffs.as_deref().unwrap().iter().any(|d| d.path == "/stringData/user"),
        "unchanged: no difference"
    );
    assert!(
        stdout(&diff).contains("password: '*** (before)'")
            || stdout(&diff).contains("password: \"*** (before)\""),
        "{}",
        stdout(&diff)
    );
}

/// Regression: a truncated local-store file was never repaired and the status
/// stayed green; a valid 253-character name whose file name is too long for the
/// file system made the whole cluster "unreachable" and left its sync half done.
#[test]
fn a_damaged_file_is_repaired_and_a_name_too_long_fails_alone() {
    let f = Fleet::example();
    let long = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61));
    assert_eq!(long.len(), 253);
    let objects = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {long}\n  namespace: fs\ndata:\n  key: v\n",
        namespace_with_cm("fs", "v1")
    );
    f.write("resources/fs.yaml", &objects);
    f.write("placements/fs.yaml", &rolling_placement("fs", "fs", "", ""));
    f.write("resources/ok.yaml", &namespace_with_cm("ok", "v1"));
    f.write("placements/ok.yaml", &rolling_placement("ok", "ok", "", ""));
    f.commit_all("a name too long for a file");
    let state = f.state_dir();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    r.pass(now()).unwrap();
    let cm = state.join("clusters/member1/fs/configmap/cm.yaml");
    assert!(std::fs::read_to_string(&cm).unwrap().contains("key: v1"), "the rest was applied");
    let m1 = cluster_status(&f, "fs", "member1");
    assert_eq!(condition(&m1.conditions, "ResourceApplied").reason, "ApplyFailed", "{m1:?}");
    let failed = &m1.failed_placements;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].object.name, long);
    assert!(failed[0].condition.message.contains("name too long"), "{}", failed[0].condition.message);

    // A stored file cut short is taken as missing and written again.
    let ok = state.join("clusters/member1/ok/configmap/cm.yaml");
    let text = std::fs::read_to_string(&ok).unwrap();
    std::fs::write(&ok, &text[..text.len() / 2]).unwrap();
    let out = r.pass(now()).unwrap();
    says(&out.message, "ok corrected drift on member1: ConfigMap ok/cm");
    assert_eq!(std::fs::read_to_string(&ok).unwrap(), text, "repaired");
    let leftovers: Vec<_> = std::fs::read_dir(cm.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".yaml"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
}

/// A cluster a placement no longer schedules loses the placement's objects,
/// in a running reconciler (which asks only the clusters that may hold them)
/// and after a restart (which asks every cluster once); another cluster's
/// objects and other placements' objects stay.
#[test]
fn an_unscheduled_cluster_is_cleaned_up_in_a_running_reconciler_and_after_a_restart() {
    let f = Fleet::example();
    let fixed =
        |names: &str| format!("  policy:\n    placementType: PickFixed\n    clusterNames: [{names}]\n");
    f.write("resources/roll.yaml", &namespace_with_cm("roll", "v1"));
    f.write("placements/roll.yaml", &rolling_placement("roll", "roll", "", &fixed("member1, member2")));
    f.commit_all("roll on member1 and member2");
    let state = f.state_dir();
    let has = |m: &str| state.join(format!("clusters/{m}/roll/configmap/cm.yaml")).exists();
    let mut r = reconciler(&RunArgs::once(f.origin_str(), state.clone())).unwrap();
    r.pass(now()).unwrap();
    assert!(has("member1") && has("member2") && !has("member3"));

    f.pull();
    f.write("placements/roll.yaml", &rolling_placement("roll", "roll", "", &fixed("member1, member3")));
    f.commit_all("member2 out, member3 in");
    r.pass(now()).unwrap();
    assert!(has("member1") && !has("member2") && has("member3"), "cleaned in the same process");
    let other = state.join("clusters/member2/_cluster/namespace/test-namespace.yaml");
    assert!(other.exists(), "another placement's objects stay");

    // A restart: the first pass asks every cluster.
    f.pull();
    f.write("placements/roll.yaml", &rolling_placement("roll", "roll", "", &fixed("member3")));
    f.commit_all("member1 out");
    drop(r);
    let mut r = reconciler(&RunArgs::once(f.origin_str(), state.clone())).unwrap();
    r.pass(now()).unwrap();
    assert!(!has("member1") && !has("member2") && has("member3"), "cleaned after a restart");
}

/// KubeFleet's scheduling through the reconciler: PickN orders clusters by a
/// property (from the MemberCluster's annotations) and keeps what it picked
/// when the properties change; a taint keeps new placements away but not the
/// ones the cluster already holds; the placement status says why a cluster
/// was not picked.
#[test]
fn scheduling_policies_pick_keep_and_explain() {
    let f = Fleet::example();
    let cpu = "resources.kubernetes-fleet.io/available-cpu";
    let member = |name: &str, labels: &str, annotations: &str, spec: &str| {
        format!(
            "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n{labels}  annotations:\n{annotations}{spec}"
        )
    };
    let write_members = |cpus: [&str; 3], taint_member3: bool| {
        let taint = "spec:\n  taints:\n  - {key: maintenance, value: \"true\", effect: NoSchedule}\n";
        f.write(
            "clusters/member1.yaml",
            &member(
                "member1",
                "    environment: canary\n    order: \"2\"\n",
                &format!("    {cpu}: \"{}\"\n", cpus[0]),
                "",
            ),
        );
        f.write(
            "clusters/member2.yaml",
            &member("member2", "    environment: staging\n", &format!("    {cpu}: \"{}\"\n", cpus[1]), ""),
        );
        f.write(
            "clusters/member3.yaml",
            &member(
                "member3",
                "    environment: canary\n    order: \"1\"\n",
                &format!("    {cpu}: \"{}\"\n", cpus[2]),
                if taint_member3 { taint } else { "" },
            ),
        );
    };
    let pick_n = |n: u32| {
        format!(
            "  policy:\n    placementType: PickN\n    numberOfClusters: {n}\n    affinity:\n      clusterAffinity:\n        preferredDuringSchedulingIgnoredDuringExecution:\n        - weight: 100\n          preference:\n            propertySorter: {{name: {cpu}, sortOrder: Descending}}\n"
        )
    };
    write_members(["4", "16", "8"], false);
    f.write(
        "resources/sched.yaml",
        &format!("{}---\n{}", namespace_with_cm("big", "v1"), namespace_with_cm("everywhere", "v1")),
    );
    f.write("placements/big.yaml", &rolling_placement("big", "big", "", &pick_n(2)));
    f.write("placements/everywhere.yaml", &rolling_placement("everywhere", "everywhere", "", ""));
    f.commit_all("PickN by available CPU");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    let holds = |ns: &str| common::holding(&f, ns, &["member1", "member2", "member3"]);
    r.pass(now()).unwrap();
    assert_eq!(holds("big"), ["member2", "member3"], "the two with the most CPU");
    assert_eq!(holds("everywhere"), ["member1", "member2", "member3"]);

    // member1 now has the most CPU and member3 is tainted: nothing moves.
    f.pull();
    write_members(["32", "16", "8"], true);
    f.commit_all("member1 grows; member3 goes into maintenance");
    r.pass(now()).unwrap();
    assert_eq!(holds("big"), ["member2", "member3"], "PickN keeps what it picked");
    assert_eq!(
        holds("everywhere"),
        ["member1", "member2", "member3"],
        "NoSchedule keeps existing placements"
    );

    // A new placement does not go to the tainted cluster, and says why.
    f.pull();
    f.write("resources/fresh.yaml", &namespace_with_cm("fresh", "v1"));
    f.write("placements/fresh.yaml", &rolling_placement("fresh", "fresh", "", &pick_n(3)));
    f.commit_all("a new placement for three clusters");
    r.pass(now()).unwrap();
    assert_eq!(holds("fresh"), ["member1", "member2"]);
    let scheduled = placement_condition(&f, "fresh", "ClusterResourcePlacementScheduled");
    assert_eq!(
        (scheduled.status.as_str(), scheduled.reason.as_str()),
        ("False", "SchedulingPolicyUnfulfilled")
    );
    assert_eq!(
        scheduled.message,
        "could not find all clusters needed as specified by the scheduling policy, found 2 cluster(s) instead of 3; not picked: member3 (taint &{Key:maintenance Value:true Effect:NoSchedule} cannot be tolerated)"
    );
    // Growing the first placement adds member1; member3 stays.
    f.pull();
    f.write("placements/big.yaml", &rolling_placement("big", "big", "", &pick_n(3)));
    f.commit_all("big on three clusters");
    r.pass(now()).unwrap();
    assert_eq!(holds("big"), ["member1", "member2", "member3"]);
}

/// `statusReportingScope: NamespaceAccessible`: the placement's status is also
/// written as a ClusterResourcePlacementStatus in its namespace's folder, and
/// deleted when the placement goes back to ClusterScopeOnly.
#[test]
fn namespace_accessible_status_is_written_in_the_namespace_folder() {
    let f = Fleet::example();
    f.write("resources/ns-status.yaml", &namespace_with_cm("team-a", "v1"));
    let scoped = rolling_placement("team-a-app", "team-a", "", "").replace(
        "spec:\n  resourceSelectors:",
        "spec:\n  statusReportingScope: NamespaceAccessible\n  resourceSelectors:",
    );
    f.write("placements/team-a-app.yaml", &scoped);
    f.commit_all("team-a's placement, status readable in its namespace");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    r.pass(now()).unwrap();
    let path = "status/clusterresourceplacementstatuses/team-a/team-a-app.yaml";
    let text = f.origin_file(path).unwrap_or_else(|| panic!("{path} missing"));
    let crps: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(crps["kind"], "ClusterResourcePlacementStatus");
    assert_eq!(crps["metadata"]["namespace"], "team-a");
    assert_eq!(crps["metadata"]["name"], "team-a-app");
    assert!(crps["lastUpdatedTime"].is_string());
    let placement = common::placement_document(&f, "team-a-app");
    let status = serde_json::to_value(&placement.status).unwrap();
    assert_eq!(crps["sourceStatus"], status, "the same status as the placement's document");
    assert_eq!(crps["sourceStatus"]["placementStatuses"].as_array().map(Vec::len), Some(3));
    // A quiet pass writes nothing; ClusterScopeOnly removes the file.
    assert!(r.pass(now()).unwrap().commit.is_none());
    f.pull();
    f.write("placements/team-a-app.yaml", &rolling_placement("team-a-app", "team-a", "", ""));
    f.commit_all("status in the cluster scope only");
    r.pass(now()).unwrap();
    assert!(f.origin_file(path).is_none(), "{path} is deleted");
}

/// ClusterResourcePlacementEviction: executed at once (the cluster loses the
/// placement's resources and stays out while the file exists), blocked by a
/// ClusterResourcePlacementDisruptionBudget, decided once; the status says so.
#[test]
fn evictions_and_disruption_budgets() {
    let f = Fleet::example();
    f.write("resources/ev.yaml", &namespace_with_cm("ev", "v1"));
    f.write("placements/evictable.yaml", &rolling_placement("evictable", "ev", "", ""));
    f.commit_all("a placement on every member");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    let holds = || common::holding(&f, "ev", &["member1", "member2", "member3"]);
    r.pass(now()).unwrap();
    assert_eq!(holds(), ["member1", "member2", "member3"]);
    let eviction = |name: &str, cluster: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementEviction\nmetadata:\n  name: {name}\nspec:\n  placementName: evictable\n  clusterName: {cluster}\n"
        )
    };
    let conditions = |name: &str| -> Vec<(String, String, String)> {
        let text = f.origin_file(&format!("status/clusterresourceplacementevictions/{name}.yaml")).unwrap();
        let doc: gitfleet::status::eviction::EvictionDocument = serde_saphyr::from_str(&text).unwrap();
        doc.status.conditions.into_iter().map(|c| (c.type_, c.status, c.message)).collect()
    };
    f.pull();
    f.write("evictions/off-member1.yaml", &eviction("off-member1", "member1"));
    f.commit_all("evict member1");
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("eviction off-member1 removed evictable from member1"), "{}", out.message);
    assert_eq!(holds(), ["member2", "member3"]);
    assert_eq!(
        conditions("off-member1"),
        [
            ("Valid".to_string(), "True".to_string(), "Eviction is valid".to_string()),
            (
                "Executed".to_string(),
                "True".to_string(),
                "Eviction is allowed, no ClusterResourcePlacementDisruptionBudget specified".to_string()
            )
        ]
    );
    let statuses = common::placement_document(&f, "evictable").status.placement_statuses;
    assert_eq!(statuses.iter().map(|s| s.cluster_name.as_str()).collect::<Vec<_>>(), ["member2", "member3"]);
    assert!(r.pass(now()).unwrap().commit.is_none(), "member1 stays out; nothing to write");
    assert_eq!(holds(), ["member2", "member3"]);

    // The eviction file deleted: its status goes, member1 is placed again.
    f.pull();
    f.remove("evictions/off-member1.yaml");
    f.commit_all("member1 may come back");
    r.pass(now()).unwrap();
    assert_eq!(holds(), ["member1", "member2", "member3"]);
    assert!(f.origin_file("status/clusterresourceplacementevictions/off-member1.yaml").is_none());

    // A budget of three available: an eviction is blocked, and stays decided.
    f.pull();
    f.write(
        "budgets/evictable.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementDisruptionBudget\nmetadata:\n  name: evictable\nspec:\n  minAvailable: 3\n",
    );
    f.write("evictions/off-member2.yaml", &eviction("off-member2", "member2"));
    f.commit_all("evict member2 under a budget");
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("eviction off-member2 of member2 not executed"), "{}", out.message);
    assert_eq!(holds(), ["member1", "member2", "member3"]);
    assert_eq!(
        conditions("off-member2")[1],
        (
            "Executed".to_string(),
            "False".to_string(),
            "Eviction is blocked by specified ClusterResourcePlacementDisruptionBudget, availablePlacements: 3, totalPlacements: 3".to_string()
        )
    );
    // An eviction of a cluster the placement does not hold is invalid.
    f.pull();
    f.write("evictions/off-ghost.yaml", &eviction("off-ghost", "ghost"));
    f.commit_all("evict a cluster that is not there");
    r.pass(now()).unwrap();
    assert_eq!(
        conditions("off-ghost"),
        [(
            "Valid".to_string(),
            "False".to_string(),
            "Failed to find scheduler decision for placement in cluster targeted by eviction".to_string()
        )]
    );
    let out = common::gitfleet(&["validate", f.work.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
}

/// Member cluster status: written once per cluster, again only when
/// something changed; `get memberclusters` shows KubeFleet's columns.
#[test]
fn member_clusters_get_a_status_written_when_it_changes() {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.commit_all("no run");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    r.pass(now()).unwrap();
    let doc = |m: &str| -> gitfleet::status::member::MemberDocument {
        serde_saphyr::from_str(&f.origin_file(&format!("status/memberclusters/{m}.yaml")).unwrap()).unwrap()
    };
    let member1 = doc("member1");
    let joined = condition(&member1.status.conditions, "Joined");
    assert_eq!((joined.status.as_str(), joined.reason.as_str()), ("True", "MemberClusterJoined"));
    assert_eq!(condition(&member1.status.conditions, "Healthy").status, "True");
    assert!(r.pass(now() + 120).unwrap().commit.is_none(), "nothing changed: nothing written");

    // Properties from the MemberCluster's annotations.
    f.pull();
    let with_props = f.read("clusters/member1.yaml").replace(
        "metadata:\n  name: member1\n",
        "metadata:\n  name: member1\n  annotations:\n    kubernetes-fleet.io/node-count: \"3\"\n    resources.kubernetes-fleet.io/available-cpu: 2500m\n    resources.kubernetes-fleet.io/available-memory: 12Gi\n",
    );
    assert!(with_props.contains("node-count"), "{with_props}");
    f.write("clusters/member1.yaml", &with_props);
    f.commit_all("member1's size");
    let out = r.pass(now() + 180).unwrap();
    let mut files = f.changed_files(&out.commit.unwrap().to_string());
    files.sort();
    assert_eq!(files, ["status/memberclusters/member1.yaml"]);
    assert_eq!(doc("member1").property("kubernetes-fleet.io/node-count"), Some("3"));
    let table = stdout(&gitfleet(&["get", "memberclusters", "--repo", f.origin_str()]));
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "JOINED",
            "AGE",
            "MEMBER-AGENT-LAST-SEEN",
            "NODE-COUNT",
            "AVAILABLE-CPU",
            "AVAILABLE-MEMORY"
        ]
    );
    assert_eq!(
        (rows[1][0], rows[1][1], rows[1][4], rows[1][5], rows[1][6]),
        ("member1", "True", "3", "2500m", "12Gi")
    );
    assert_eq!((rows[2][0], rows[2][4]), ("member2", "<none>"));
    // A cluster removed from the repository: its status goes.
    f.pull();
    f.remove("clusters/member3.yaml");
    f.commit_all("member3 leaves");
    r.pass(now() + 240).unwrap();
    assert!(f.origin_file("status/memberclusters/member3.yaml").is_none());
}

/// An eviction from a staged (External) placement: the cluster loses the
/// resources at once and the next run leaves it out; once the eviction is
/// deleted, a run updates it again.
#[test]
fn an_evicted_cluster_is_left_out_of_staged_runs() {
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.remove("placements/crp-with-envelope.yaml");
    f.write(
        "strategies/one.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: one\nspec:\n  stages:\n  - name: all\n    maxConcurrency: 100%\n",
    );
    let run = |name: &str, index: u32| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: one\n"
        )
    };
    f.write("runs/r1.yaml", &run("r1", 0));
    f.commit_all("value1 everywhere");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    let values = || common::test_cm_values(&f, &["member1", "member2", "member3"]);
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("r1 succeeded"), "{}", out.message);
    assert_eq!(values(), ["value1", "value1", "value1"]);

    f.pull();
    f.write(
        "evictions/member2.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementEviction\nmetadata:\n  name: member2\nspec:\n  placementName: example-placement\n  clusterName: member2\n",
    );
    f.commit_all("evict member2");
    r.pass(now()).unwrap();
    assert_eq!(values(), ["value1", "-", "value1"], "removed at once, without a run");

    f.pull();
    f.write("resources/test-namespace.yaml", &common::test_namespace("value2"));
    f.write("runs/r2.yaml", &run("r2", 1));
    f.commit_all("value2");
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("r2 succeeded"), "{}", out.message);
    assert_eq!(values(), ["value2", "-", "value2"], "the run leaves member2 out");
    let text = f.origin_file("status/clusterstagedupdateruns/r2.yaml").unwrap();
    let doc: gitfleet::status::run::RunDocument = gitfleet::status::read_file(&text, "r2").unwrap();
    let names: Vec<&str> =
        doc.status.stages_status[0].clusters.iter().map(|c| c.cluster_name.as_str()).collect();
    assert_eq!(names, ["member1", "member3"]);

    f.pull();
    f.remove("evictions/member2.yaml");
    f.write("runs/r3.yaml", &run("r3", 1));
    f.commit_all("member2 back, and a run");
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("r3 succeeded"), "{}", out.message);
    assert_eq!(values(), ["value2", "value2", "value2"]);
}

/// Two evictions in one commit are counted against the budget together.
#[test]
fn two_evictions_in_one_commit_share_the_budget() {
    let f = Fleet::example();
    f.write("resources/ev2.yaml", &namespace_with_cm("ev2", "v1"));
    f.write("placements/twice.yaml", &rolling_placement("twice", "ev2", "", ""));
    f.commit_all("a placement on every member");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    r.pass(now()).unwrap();
    f.pull();
    f.write(
        "budgets/twice.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementDisruptionBudget\nmetadata:\n  name: twice\nspec:\n  minAvailable: 2\n",
    );
    for m in ["member1", "member2"] {
        f.write(
            &format!("evictions/{m}.yaml"),
            &format!("apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementEviction\nmetadata:\n  name: off-{m}\nspec:\n  placementName: twice\n  clusterName: {m}\n"),
        );
    }
    f.commit_all("evict two of three under minAvailable 2");
    let out = r.pass(now()).unwrap();
    assert!(out.message.contains("eviction off-member1 removed twice from member1"), "{}", out.message);
    assert!(
        out.message.contains("eviction off-member2 of member2 not executed: Eviction is blocked by specified ClusterResourcePlacementDisruptionBudget, availablePlacements: 2, totalPlacements: 2"),
        "{}",
        out.message
    );
    let holds = common::holding(&f, "ev2", &["member1", "member2", "member3"]);
    assert_eq!(holds, ["member2", "member3"]);
}

/// `selectionScope: NamespaceWithResourceSelectors`: the namespace, and in it
/// only what the placement's other selectors pick (here ConfigMaps labelled
/// `app: front`); a ConfigMap labelled later joins with the next snapshot.
#[test]
fn namespace_with_resource_selectors_places_only_what_they_pick() {
    let f = Fleet::example();
    let cm = |name: &str, labels: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: prod\n  labels: {{{labels}}}\ndata:\n  key: v1\n"
        )
    };
    f.write(
        "resources/prod.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n---\n{}---\n{}",
            cm("front", "app: front"),
            cm("back", "app: back")
        ),
    );
    f.write(
        "placements/prod.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: prod\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: prod, selectionScope: NamespaceWithResourceSelectors}\n  - group: \"\"\n    version: v1\n    kind: ConfigMap\n    labelSelector:\n      matchLabels: {app: front}\n  policy:\n    placementType: PickAll\n",
    );
    f.commit_all("prod: the namespace and its front ConfigMaps");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    r.pass(now()).unwrap();
    let held =
        |name: &str| f.state_dir().join(format!("clusters/member1/prod/configmap/{name}.yaml")).exists();
    assert!(f.state_dir().join("clusters/member1/_cluster/namespace/prod.yaml").exists());
    assert!(held("front") && !held("back"), "only what the selectors pick");
    let selected = common::placement_document(&f, "prod").status.selected_resources;
    let names: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["prod", "front"]);

    f.pull();
    f.write(
        "resources/prod.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n---\n{}---\n{}",
            cm("front", "app: front"),
            cm("back", "app: front")
        ),
    );
    f.commit_all("back is a front ConfigMap now");
    r.pass(now()).unwrap();
    assert!(held("front") && held("back"));
    assert!(f.origin_file("status/clusterresourcesnapshots/prod-1-snapshot.yaml").is_some());
}
