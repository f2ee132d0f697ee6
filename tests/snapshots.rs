//! Snapshot indices over real Git history.

mod common;

use common::{Fleet, git, test_namespace};
use gitfleet::snapshot::Indexer;

fn index(f: &Fleet) -> Indexer {
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let tip = repo.refname_to_id("refs/heads/main").unwrap();
    let mut ix = Indexer::new(None);
    ix.sync(&repo, tip).unwrap();
    ix
}

fn commits(ix: &Indexer, placement: &str) -> Vec<String> {
    ix.snapshots(placement).iter().map(|s| s.commit.to_string()).collect()
}

#[test]
fn doc_only_commits_and_other_placements_make_no_snapshot() {
    let f = Fleet::example();
    let first = git(&f.work, &["rev-parse", "HEAD"]);
    f.write("README.md", "# our fleet\n");
    f.commit_all("docs only");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    let second = f.commit_all("value2");
    // Touches only what crp-with-envelope selects.
    let app = f.read("resources/app-envelope.yaml").replace("foo: bar", "foo: baz");
    f.write("resources/app-envelope.yaml", &app);
    let envelope_change = f.commit_all("envelope change");
    f.write(
        "clusters/member4.yaml",
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: member4\n",
    );
    f.commit_all("a new cluster");

    let ix = index(&f);
    assert_eq!(commits(&ix, "example-placement"), vec![first.clone(), second]);
    assert_eq!(commits(&ix, "crp-with-envelope"), vec![first, envelope_change]);
    assert_eq!(ix.snapshots("crp-with-envelope")[0].enveloped, 4, "2 objects in each envelope");
    let idx: Vec<u32> = ix.snapshots("example-placement").iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![0, 1]);
}

#[test]
fn revert_gives_a_new_index_with_the_old_hash() {
    let f = Fleet::example();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    git(&f.work, &["revert", "--no-edit", "HEAD"]);
    f.push();
    let revert = git(&f.work, &["rev-parse", "HEAD"]);

    let ix = index(&f);
    let snaps = ix.snapshots("example-placement");
    assert_eq!(snaps.len(), 3);
    assert_eq!(snaps[2].commit.to_string(), revert);
    assert_eq!(snaps[2].hash, snaps[0].hash, "the revert restores the resources of index 0");
    assert_ne!(snaps[1].hash, snaps[0].hash);
}

#[test]
fn reformatting_a_file_is_not_a_new_snapshot() {
    let f = Fleet::example();
    let reformatted =
        test_namespace("value1").replace("data:\n  key: value1", "data: {key: value1}  # same content");
    f.write("resources/test-namespace.yaml", &reformatted);
    f.commit_all("reformat");
    // Splitting the file in two changes the layout, not the resources.
    f.write(
        "resources/test-namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test-namespace\n",
    );
    f.write("resources/test-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: value1\n");
    f.commit_all("split");
    assert_eq!(index(&f).snapshots("example-placement").len(), 1);
}

#[test]
fn broken_file_makes_no_snapshot_and_is_reported() {
    let f = Fleet::example();
    f.write(
        "resources/test-namespace.yaml",
        &test_namespace("value2").replace("data:\n  key: value2", "data:\n  key: [unclosed"),
    );
    let broken = f.commit_all("oops");
    // Unrelated change while the file is broken: still nothing deleted, no snapshot.
    f.write("resources/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: test-namespace\ndata:\n  a: b\n");
    f.commit_all("extra while broken");
    let ix = index(&f);
    assert_eq!(ix.snapshots("example-placement").len(), 1, "a broken file must not look like a deletion");
    let blocked: Vec<_> = ix.blocked.iter().filter(|b| b.placement == "example-placement").collect();
    assert_eq!(blocked.len(), 2);
    assert_eq!(blocked[0].commit.to_string(), broken);
    assert!(
        blocked[0].issues[0].to_string().starts_with("resources/test-namespace.yaml:"),
        "{}",
        blocked[0].issues[0]
    );
    // The other placement is not affected by the broken file.
    assert!(ix.blocked.iter().all(|b| b.placement != "crp-with-envelope"));

    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    let fixed = f.commit_all("fix");
    let ix = index(&f);
    let snaps = ix.snapshots("example-placement");
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1].commit.to_string(), fixed, "the fix brings value3 and extra in one snapshot");
}

#[test]
fn invalid_placement_blocks_only_itself() {
    let f = Fleet::example();
    let bad = f
        .read("placements/example-placement.yaml")
        .replace("placementType: PickAll", "placementType: PickSome");
    f.write("placements/example-placement.yaml", &bad);
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("bad policy and a change");
    let ix = index(&f);
    assert_eq!(ix.snapshots("example-placement").len(), 1);
    assert!(ix.blocked.iter().any(
        |b| b.placement == "example-placement" && b.issues.iter().any(|i| i.message.contains("PickSome"))
    ));
}

#[test]
fn new_commits_are_indexed_incrementally() {
    let f = Fleet::example();
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let mut ix = Indexer::new(None);
    ix.sync(&repo, repo.refname_to_id("refs/heads/main").unwrap()).unwrap();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    f.write("README.md", "x\n");
    f.commit_all("docs");
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let n = ix.sync(&repo, repo.refname_to_id("refs/heads/main").unwrap()).unwrap();
    assert_eq!(n, 2, "only the two new commits are indexed");
    assert_eq!(ix.commits_indexed(), 3);
    assert_eq!(ix.snapshots("example-placement").len(), 2);
}

#[test]
fn settings_change_rereads_the_file_set() {
    let f = Fleet::example();
    f.write("gitfleet.yaml", "exclude:\n  - resources/test-namespace.yaml\n");
    f.commit_all("exclude the namespace");
    let ix = index(&f);
    let snaps = ix.snapshots("example-placement");
    assert_eq!(snaps.len(), 2, "excluding the file removes the resources from the selection");
    assert_ne!(snaps[0].hash, snaps[1].hash);
}

#[test]
fn tracked_subfolder_of_a_monorepo() {
    let f = Fleet::new();
    common::copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo"), &{
        let p = f.work.join("fleet");
        std::fs::create_dir_all(&p).unwrap();
        p
    });
    f.write("app/src/main.yaml", "not: [a, fleet, file]\n");
    f.commit_all("monorepo");
    f.write("fleet/resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let mut ix = Indexer::new(Some("fleet"));
    ix.sync(&repo, repo.refname_to_id("refs/heads/main").unwrap()).unwrap();
    assert_eq!(ix.snapshots("example-placement").len(), 2);
    assert!(ix.blocked.is_empty());
}

#[test]
fn duplicate_definitions_block_the_placement() {
    let f = Fleet::example();
    f.write("resources/copy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: other\n");
    f.commit_all("duplicate test-cm");
    let ix = index(&f);
    assert_eq!(ix.snapshots("example-placement").len(), 1);
    assert!(ix.blocked.iter().any(|b| b.issues.iter().any(|i| i.message.contains("more than one file"))));
}

/// Long histories are indexed on two threads; the result must be the one of
/// indexing commit by commit.
#[test]
fn long_history_indexed_in_parallel_matches_commit_by_commit() {
    let f = Fleet::example();
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    let mut parent = repo.find_commit(repo.refname_to_id("refs/heads/main").unwrap()).unwrap();
    let mut ids = vec![parent.id()];
    for n in 0..100 {
        let (path, content) = match n % 4 {
            0 => ("docs/notes.md".to_string(), format!("note {n}\n")),
            1 => ("resources/test-namespace.yaml".to_string(), test_namespace(&format!("v{n}"))),
            2 => (
                "resources/app-envelope.yaml".to_string(),
                f.read("resources/app-envelope.yaml").replace("foo: bar", &format!("foo: b{n}")),
            ),
            _ => ("resources/test-namespace.yaml".to_string(), format!("broken: [{n}\n")),
        };
        let blob = repo.blob(content.as_bytes()).unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        update.upsert(path, blob, git2::FileMode::Blob);
        let tree = update.create_updated(&repo, &parent.tree().unwrap()).unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let id = repo.commit(Some("refs/heads/main"), &sig, &sig, "change", &tree, &[&parent]).unwrap();
        parent = repo.find_commit(id).unwrap();
        ids.push(id);
    }
    let mut parallel = Indexer::new(None);
    assert_eq!(parallel.sync(&repo, *ids.last().unwrap()).unwrap(), ids.len());
    let mut serial = Indexer::new(None);
    for id in &ids {
        serial.sync(&repo, *id).unwrap();
    }
    for placement in ["example-placement", "crp-with-envelope"] {
        assert_eq!(parallel.snapshots(placement), serial.snapshots(placement), "{placement}");
    }
    assert!(parallel.snapshots("example-placement").len() > 10);
    assert_eq!(parallel.blocked.len(), serial.blocked.len());
    assert!(!parallel.blocked.is_empty(), "the broken commits are reported");
}

/// Regression: moving a placement's file to a path that sorts earlier used to
/// drop its spec (the add was applied before the removal).
#[test]
fn moving_a_placement_file_keeps_the_placement() {
    let f = Fleet::example();
    let content = f.read("placements/example-placement.yaml");
    f.remove("placements/example-placement.yaml");
    f.write("a-placement.yaml", &content);
    f.commit_all("move the placement");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    assert_eq!(index(&f).snapshots("example-placement").len(), 2);
}

/// A small deterministic PRNG (xorshift), so the random history is the same on every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The resource hash of every placement at one commit, computed from scratch:
/// every manifest of the tree parsed, the selection made with `select::selection`.
/// `parsed` keeps every file parsed, by blob.
fn hashes_from_scratch(
    repo: &git2::Repository,
    commit: git2::Oid,
    parsed: &mut std::collections::HashMap<git2::Oid, gitfleet::repo::ParsedFile>,
) -> std::collections::BTreeMap<String, String> {
    use gitfleet::repo::model::{FleetObject, Manifest, ObjectKey};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let settings_file = tree.get_name(gitfleet::repo::SETTINGS_FILE).map(|e| repo.find_blob(e.id()).unwrap());
    let (settings, issue) = gitfleet::repo::read_settings(settings_file.as_ref().map(|b| b.content()));
    assert!(issue.is_none());
    let mut hub: BTreeMap<ObjectKey, (Arc<Manifest>, [u8; 32])> = BTreeMap::new();
    let mut placements = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let path = format!("{dir}{}", entry.name().unwrap());
        if entry.kind() == Some(git2::ObjectType::Blob)
            && settings.classify(&path) == Some(gitfleet::repo::Area::Manifests)
        {
            let parsed = parsed.entry(entry.id()).or_insert_with(|| {
                let blob = repo.find_blob(entry.id()).unwrap();
                gitfleet::repo::parse_file(&path, blob.content(), gitfleet::repo::Area::Manifests)
            });
            assert!(parsed.issues.is_empty(), "{path}: {:?}", parsed.issues);
            for (object, hash) in parsed.objects.iter().zip(&parsed.hashes) {
                match object {
                    FleetObject::Hub(m) => {
                        assert!(hub.insert(m.key.clone(), (m.clone(), *hash)).is_none(), "{} twice", m.key);
                    }
                    FleetObject::Placement(p) => placements.push(p.clone()),
                    _ => {}
                }
            }
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    let mut by_namespace: BTreeMap<String, BTreeSet<ObjectKey>> = BTreeMap::new();
    for key in hub.keys() {
        if let Some(ns) = &key.namespace {
            by_namespace.entry(ns.clone()).or_default().insert(key.clone());
        }
    }
    placements
        .iter()
        .map(|p| {
            let keys =
                gitfleet::snapshot::select::selection(p, hub.iter().map(|(k, (m, _))| (k, m)), &by_namespace);
            let digest = gitfleet::snapshot::SelectionDigest::of(keys.iter().map(|k| (k, &hub[k].1)));
            (p.name.clone(), digest.hex())
        })
        .collect()
}

/// The incremental index, fed a random history (Namespaces relabelled, deleted and
/// re-created, objects moved between files, label selectors edited, commits too
/// large for one parsing batch, settings that exclude a file, ...), agrees at every
/// commit with the selection computed from scratch, indexed in one go or commit by
/// commit.
#[test]
fn incremental_index_matches_a_from_scratch_selection_at_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    let namespace = |ns: &str, env: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    env: {env}\n")
    };
    let configmap = |name: &str, ns: &str, v: usize| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  v: \"{v}\"\n"
        )
    };
    let role = |n: usize, tier: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: role-{n}\n  labels:\n    tier: {tier}\nrules: []\n"
        )
    };
    let placement = |name: &str, selectors: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: {name}\nspec:\n  resourceSelectors:\n{selectors}  strategy:\n    type: External\n"
        )
    };
    let by_env = |env: &str| {
        format!(
            "  - group: \"\"\n    version: v1\n    kind: Namespace\n    labelSelector:\n      matchLabels:\n        env: {env}\n"
        )
    };
    let roles = "rbac.authorization.k8s.io";
    let mut files: std::collections::BTreeMap<String, String> = [
        ("fleet/ns-a.yaml".to_string(), namespace("ns-a", "prod")),
        ("fleet/ns-b.yaml".to_string(), namespace("ns-b", "dev")),
        ("fleet/ns-c.yaml".to_string(), namespace("ns-c", "prod")),
        (
            "fleet/p-name.yaml".to_string(),
            placement("p-name", "  - {group: \"\", version: v1, kind: Namespace, name: ns-a}\n"),
        ),
        ("fleet/p-label.yaml".to_string(), placement("p-label", &by_env("prod"))),
        (
            "fleet/p-roles.yaml".to_string(),
            placement(
                "p-roles",
                &format!("  - group: {roles}\n    version: v1\n    kind: ClusterRole\n    labelSelector:\n      matchLabels:\n        tier: x\n"),
            ),
        ),
        (
            "fleet/p-all-roles.yaml".to_string(),
            placement("p-all-roles", &format!("  - {{group: {roles}, version: v1, kind: ClusterRole}}\n")),
        ),
        (
            "fleet/p-ns-only.yaml".to_string(),
            placement(
                "p-ns-only",
                "  - {group: \"\", version: v1, kind: Namespace, name: ns-b, selectionScope: NamespaceOnly}\n",
            ),
        ),
    ]
    .into();
    let mut rng = Rng(0x2545f4914f6cdd1d);
    // Where each ConfigMap lives (file variant 0 or 1) and its namespace and value.
    let mut cms: Vec<(usize, &str, usize)> =
        (0..10).map(|n| (n % 2, ["ns-a", "ns-b", "ns-c"][n % 3], 0)).collect();
    for (n, (loc, ns, v)) in cms.iter().enumerate() {
        files.insert(format!("fleet/cm-{n}-{loc}.yaml"), configmap(&format!("cm-{n}"), ns, *v));
    }
    for n in 0..4 {
        files.insert(format!("fleet/role-{n}.yaml"), role(n, ["x", "y"][n % 2]));
    }
    // More files than one parsing batch holds, changed all at once now and then.
    const BULK: usize = 150;
    for n in 0..BULK {
        files.insert(format!("fleet/bulk/cm-{n}.yaml"), configmap(&format!("bulk-{n}"), "ns-a", 0));
    }
    let mut ids = Vec::new();
    let mut parent: Option<git2::Commit<'_>> = None;
    let mut committed = std::collections::BTreeMap::new();
    for c in 0..300 {
        if c > 0 {
            for _ in 0..1 + rng.below(3) {
                match rng.below(11) {
                    0 => {
                        let ns = ["ns-a", "ns-b", "ns-c"][rng.below(3)];
                        let path = format!("fleet/{ns}.yaml");
                        if files.contains_key(&path) && rng.below(3) == 0 {
                            files.remove(&path);
                        } else {
                            files.insert(path, namespace(ns, ["prod", "dev"][rng.below(2)]));
                        }
                    }
                    1 | 2 => {
                        let n = rng.below(cms.len());
                        let (loc, _, _) = cms[n];
                        files.remove(&format!("fleet/cm-{n}-{loc}.yaml"));
                        cms[n] = (loc, ["ns-a", "ns-b", "ns-c"][rng.below(3)], rng.below(4));
                        let (loc, ns, v) = cms[n];
                        files
                            .insert(format!("fleet/cm-{n}-{loc}.yaml"), configmap(&format!("cm-{n}"), ns, v));
                    }
                    3 => {
                        // Same object, another file: no change to any selection.
                        let n = rng.below(cms.len());
                        let (loc, ns, v) = cms[n];
                        files.remove(&format!("fleet/cm-{n}-{loc}.yaml"));
                        cms[n].0 = 1 - loc;
                        files.insert(
                            format!("fleet/cm-{n}-{}.yaml", 1 - loc),
                            configmap(&format!("cm-{n}"), ns, v),
                        );
                    }
                    4 => {
                        let n = rng.below(4);
                        files.insert(format!("fleet/role-{n}.yaml"), role(n, ["x", "y"][rng.below(2)]));
                    }
                    5 => {
                        let path = "fleet/role-extra.yaml".to_string();
                        if files.remove(&path).is_none() {
                            files.insert(path, role(9, "x"));
                        }
                    }
                    6 => {
                        files.insert(
                            "fleet/p-label.yaml".into(),
                            placement("p-label", &by_env(["prod", "dev"][rng.below(2)])),
                        );
                    }
                    7 => {
                        // Two objects in one file, one of them sometimes renamed.
                        let name = ["pair-x", "pair-y"][rng.below(2)];
                        let v = rng.below(3);
                        files.insert(
                            "fleet/pair.yaml".into(),
                            format!("{}---\n{}", configmap("pair", "ns-a", v), configmap(name, "ns-c", v)),
                        );
                    }
                    8 => {
                        let v = rng.below(3);
                        for n in 0..BULK {
                            files.insert(
                                format!("fleet/bulk/cm-{n}.yaml"),
                                configmap(&format!("bulk-{n}"), "ns-a", v),
                            );
                        }
                    }
                    9 => {
                        let settings = ["", "exclude: [fleet/role-extra.yaml]\n", "statusPath: state\n"];
                        match settings[rng.below(3)] {
                            "" => files.remove("gitfleet.yaml"),
                            text => files.insert("gitfleet.yaml".into(), text.into()),
                        };
                    }
                    _ => {
                        files.insert("docs/readme.md".into(), format!("note {c}\n"));
                    }
                }
            }
        }
        let mut update = git2::build::TreeUpdateBuilder::new();
        let base = match &parent {
            Some(p) => p.tree().unwrap(),
            None => repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap(),
        };
        for path in committed.keys().filter(|p| !files.contains_key(*p)) {
            update.remove(path);
        }
        for (path, content) in files.iter().filter(|(p, c)| committed.get(*p) != Some(*c)) {
            update.upsert(path, repo.blob(content.as_bytes()).unwrap(), git2::FileMode::Blob);
        }
        committed = files.clone();
        let tree = repo.find_tree(update.create_updated(&repo, &base).unwrap()).unwrap();
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = repo
            .commit(Some("refs/heads/main"), &sig, &sig, &format!("change {c}"), &tree, &parents)
            .unwrap();
        parent = Some(repo.find_commit(id).unwrap());
        ids.push(id);
    }

    let mut whole = Indexer::new(None);
    assert_eq!(whole.sync(&repo, *ids.last().unwrap()).unwrap(), ids.len());
    let mut serial = Indexer::new(None);
    for id in &ids {
        serial.sync(&repo, *id).unwrap();
    }
    let names = ["p-name", "p-label", "p-roles", "p-all-roles", "p-ns-only"];
    for name in names {
        assert_eq!(whole.snapshots(name), serial.snapshots(name), "{name}");
        assert!(
            whole.snapshots(name).len() > 3,
            "{name} has few snapshots: the history does not exercise it"
        );
    }
    assert!(whole.blocked.is_empty(), "{:?}", whole.blocked);
    // An index saved at any commit and loaded again is the index rebuilt at
    // that commit, and goes on to the same index at the tip.
    let saved = dir.path().join("index.json");
    for at in [0, 1, 17, 80, 151, 298] {
        let mut rebuilt = Indexer::new(None);
        rebuilt.sync(&repo, ids[at]).unwrap();
        rebuilt.save(&saved, "test").unwrap();
        let mut loaded = Indexer::load(&repo, &saved, None, "test").unwrap();
        assert_eq!(loaded.describe(), rebuilt.describe(), "loaded at commit {at}");
        assert_eq!(loaded.sync(&repo, *ids.last().unwrap()).unwrap(), ids.len() - at - 1);
        assert_eq!(loaded.describe(), whole.describe(), "loaded at commit {at}, then synced to the tip");
    }
    let mut parsed = std::collections::HashMap::new();
    for (position, id) in ids.iter().enumerate() {
        let expected = hashes_from_scratch(&repo, *id, &mut parsed);
        for name in names {
            let at = whole.snapshots(name).iter().rev().find(|s| s.sequence <= position + 1).unwrap();
            assert_eq!(at.hash, expected[name], "{name} at commit {} (position {position})", id);
        }
    }
}

/// Saves at every commit of a history with broken files, duplicated objects, a
/// placement defined twice, broken settings and a tracked sub-folder; loads
/// each and checks it against the index rebuilt at that commit and at the tip.
#[test]
fn saved_index_loads_as_the_rebuilt_one_through_broken_files_and_conflicts() {
    let f = Fleet::new();
    let fleet = f.work.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    common::copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo"), &fleet);
    f.commit_all("fleet");
    let cm = |v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test-cm\n  namespace: test-namespace\ndata:\n  key: {v}\n"
        )
    };
    let steps: Vec<(&str, Option<String>)> = vec![
        ("fleet/resources/test-namespace.yaml", Some(test_namespace("value2"))),
        ("fleet/resources/test-namespace.yaml", Some("data: [unclosed\n".into())),
        ("fleet/resources/other.yaml", Some(cm("x").replace("test-cm", "other"))),
        ("fleet/resources/copy.yaml", Some(cm("dup"))),
        ("fleet/resources/copy-2.yaml", Some(cm("dup2"))),
        ("fleet/gitfleet.yaml", Some("exclude: [: broken\n".into())),
        ("fleet/placements/twice.yaml", Some(f.read("fleet/placements/example-placement.yaml"))),
        ("fleet/resources/test-namespace.yaml", Some(test_namespace("value3"))),
        ("fleet/gitfleet.yaml", Some("exclude:\n  - resources/other.yaml\n".into())),
        ("fleet/resources/copy.yaml", None),
        ("fleet/placements/example-placement.yaml", None),
        ("fleet/resources/copy-2.yaml", None),
        (
            "fleet/placements/twice.yaml",
            Some(f.read("fleet/placements/example-placement.yaml").replace("PickAll", "PickN")),
        ),
        ("fleet/gitfleet.yaml", None),
    ];
    let mut ids = vec![f.commit_all("start")];
    for (n, (path, content)) in steps.iter().enumerate() {
        match content {
            Some(c) => f.write(path, c),
            None => f.remove(path),
        }
        ids.push(f.commit_all(&format!("step {n}")));
    }
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let ids: Vec<git2::Oid> = ids.iter().map(|i| git2::Oid::from_str(i).unwrap()).collect();
    let mut whole = Indexer::new(Some("fleet"));
    whole.sync(&repo, *ids.last().unwrap()).unwrap();
    assert!(whole.blocked.len() >= 4, "the history blocks placements: {:?}", whole.blocked);
    let saved = f.work.join("../index.json");
    for (at, id) in ids.iter().enumerate() {
        let mut rebuilt = Indexer::new(Some("fleet"));
        rebuilt.sync(&repo, *id).unwrap();
        rebuilt.save(&saved, "fleet@main").unwrap();
        let mut loaded = Indexer::load(&repo, &saved, Some("fleet"), "fleet@main").unwrap();
        assert_eq!(loaded.describe(), rebuilt.describe(), "loaded at commit {at}");
        loaded.sync(&repo, *ids.last().unwrap()).unwrap();
        assert_eq!(loaded.describe(), whole.describe(), "loaded at commit {at}, then synced to the tip");
    }
}

/// A saved index that does not fit is refused with the reason, never used.
#[test]
fn saved_index_that_does_not_fit_is_refused() {
    use gitfleet::snapshot::index::LoadError;
    let f = Fleet::example();
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let ix = index(&f);
    let path = f.work.join("../index.json");
    assert!(matches!(Indexer::load(&repo, &path, None, "a"), Err(LoadError::Missing)));
    ix.save(&path, "a").unwrap();
    assert!(Indexer::load(&repo, &path, None, "a").is_ok());
    let e = Indexer::load(&repo, &path, None, "b").err().unwrap();
    assert!(matches!(e, LoadError::Foreign { .. }), "{e}");
    assert_eq!(e.to_string(), "it was saved for a, not b");
    // Another folder of the same repository: the tree differs.
    let e = Indexer::load(&repo, &path, Some("placements"), "a").err().unwrap();
    assert!(matches!(e, LoadError::Mismatch(_)), "{e}");
    // Another repository: the tip is unknown there.
    let other = Fleet::new();
    other.write("README.md", "other\n");
    other.commit_all("other");
    let theirs = git2::Repository::open_bare(&other.origin).unwrap();
    let e = Indexer::load(&theirs, &path, None, "a").err().unwrap();
    assert!(e.to_string().contains("is not in the clone"), "{e}");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"format\":1", "\"format\":0")).unwrap();
    let e = Indexer::load(&repo, &path, None, "a").err().unwrap();
    assert!(matches!(e, LoadError::Format { found: 0 }), "{e}");
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    assert!(matches!(Indexer::load(&repo, &path, None, "a"), Err(LoadError::Corrupt(_))));
    std::fs::write(&path, text.replace("\"commits\":", "\"commits\":\"x\",\"y\":")).unwrap();
    assert!(matches!(Indexer::load(&repo, &path, None, "a"), Err(LoadError::Corrupt(_))));
    // One changed digit of a hash: the checksum tells.
    let at = text.find("\"hash\":\"").unwrap() + 8;
    let digit = if &text[at..at + 1] == "0" { "1" } else { "0" };
    std::fs::write(&path, format!("{}{digit}{}", &text[..at], &text[at + 1..])).unwrap();
    let e = Indexer::load(&repo, &path, None, "a").err().unwrap();
    assert_eq!(e.to_string(), "it is corrupt: its content does not match its checksum");
    std::fs::write(&path, text.replace("\"gitfleet\":\"", "\"gitfleet\":\"9.")).unwrap();
    let e = Indexer::load(&repo, &path, None, "a").err().unwrap();
    assert!(matches!(e, LoadError::Version { .. }), "{e}");
}

/// A saved index whose tip was force-pushed away loads (the clone still has the
/// commit) and is rebuilt at the next sync, as an index kept in memory is.
#[test]
fn saved_index_after_a_force_push_is_rebuilt_on_sync() {
    let f = Fleet::example();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    let old = f.commit_all("value2");
    let repo = git2::Repository::open_bare(&f.origin).unwrap();
    let mut ix = Indexer::new(None);
    ix.sync(&repo, git2::Oid::from_str(&old).unwrap()).unwrap();
    let path = f.work.join("../index.json");
    ix.save(&path, "a").unwrap();
    // Rewrite: drop value2, commit value3 instead, force-push.
    git(&f.work, &["reset", "-q", "--hard", "HEAD~1"]);
    f.write("resources/test-namespace.yaml", &test_namespace("value3"));
    git(&f.work, &["commit", "-q", "-am", "value3"]);
    git(&f.work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    let tip = repo.refname_to_id("refs/heads/main").unwrap();
    let mut loaded = Indexer::load(&repo, &path, None, "a").unwrap();
    loaded.sync(&repo, tip).unwrap();
    assert!(loaded.rewritten, "the rewrite is noticed");
    let mut fresh = Indexer::new(None);
    fresh.sync(&repo, tip).unwrap();
    assert_eq!(loaded.describe(), fresh.describe());
    assert_eq!(commits(&loaded, "example-placement").len(), 2);
}
