//! The status documents gitfleet writes, byte for byte, over the seed
//! walkthrough and over placements that fail, drift and report differences:
//! every file the status folder gains or changes after each pass is kept in a
//! snapshot (`tests/snapshots/`), so a change to how status is built that
//! changes a single byte of what users read fails here.
//!
//! Commit ids are replaced by `<commit-N>` (numbered by first appearance):
//! gitfleet's own status commits carry the time they were made.

mod common;

use std::collections::BTreeMap;
use std::sync::Once;

use common::{
    Fleet, approve_by_merge, edit, git, namespace_with_cm, rolling_placement, test_namespace,
    write_drift_placements,
};
use gitfleet::cli::{RunArgs, reconciler};
use gitfleet::reconcile::Reconciler;

const T0: i64 = 1_900_000_000;

/// Fixed dates for the test's own commits, so creation times and ids repeat.
fn fixed_dates() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set before this binary's tests start any git process; std's
        // Command reads the environment under the same lock set_var takes.
        unsafe {
            std::env::set_var("GIT_AUTHOR_DATE", "2030-03-17T17:46:40Z");
            std::env::set_var("GIT_COMMITTER_DATE", "2030-03-17T17:46:40Z");
        }
    });
}

/// Records what each pass changed in the status folder of origin's main.
struct Recorder {
    seen: BTreeMap<String, String>,
    ids: Vec<String>,
    out: String,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder { seen: BTreeMap::new(), ids: Vec::new(), out: String::new() }
    }

    fn files(f: &Fleet) -> BTreeMap<String, String> {
        let list = git(&f.origin, &["ls-tree", "-r", "--name-only", "main", "status/"]);
        list.lines().map(|p| (p.to_string(), f.origin_file(p).unwrap_or_default())).collect()
    }

    /// Replaces every 40-hex commit id by `<commit-N>`.
    fn normalize(&mut self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find(|c: char| c.is_ascii_hexdigit()) {
            out.push_str(&rest[..pos]);
            let word: String = rest[pos..].chars().take_while(char::is_ascii_hexdigit).collect();
            let before = rest[..pos].chars().last();
            if word.len() == 40 && !before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                let n = match self.ids.iter().position(|i| *i == word) {
                    Some(n) => n,
                    None => {
                        self.ids.push(word.clone());
                        self.ids.len() - 1
                    }
                };
                out.push_str(&format!("<commit-{n}>"));
            } else {
                out.push_str(&word);
            }
            rest = &rest[pos + word.len()..];
        }
        out.push_str(rest);
        out
    }

    fn pass(&mut self, f: &Fleet, r: &mut Reconciler, label: &str, now: i64) {
        r.pass(now).unwrap();
        let files = Recorder::files(f);
        self.out.push_str(&format!("=== {label} (now = T0 + {})\n", now - T0));
        for (path, text) in &files {
            if self.seen.get(path) != Some(text) {
                let text = self.normalize(text);
                self.out.push_str(&format!("--- {path}\n{text}"));
            }
        }
        for path in self.seen.keys().filter(|p| !files.contains_key(*p)) {
            self.out.push_str(&format!("--- {path} (deleted)\n"));
        }
        self.seen = files;
    }
}

fn run_file(name: &str, index: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: example-strategy\n"
    )
}

#[test]
fn seed_walkthrough_status_documents() {
    fixed_dates();
    let f = Fleet::example();
    f.remove("runs/example-run.yaml");
    f.commit_all("no run yet");
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let mut r = reconciler(&RunArgs::once(f.origin_str(), f.state_dir())).unwrap();
    let mut rec = Recorder::new();
    rec.pass(&f, &mut r, "snapshots only", T0);
    f.pull();
    f.write("runs/example-run.yaml", &run_file("example-run", "1"));
    f.commit_all("run example-run");
    rec.pass(&f, &mut r, "run: staging", T0);
    rec.pass(&f, &mut r, "soak", T0 + 30);
    rec.pass(&f, &mut r, "canary, approval requested", T0 + 60);
    approve_by_merge(&f, "example-run-canary");
    rec.pass(&f, &mut r, "approved", T0 + 120);
    f.pull();
    f.write("runs/example-run-2.yaml", &run_file("example-run-2", "0"));
    f.commit_all("rollback run");
    rec.pass(&f, &mut r, "rollback: staging", T0 + 200);
    rec.pass(&f, &mut r, "rollback: canary", T0 + 260);
    approve_by_merge(&f, "example-run-2-canary");
    rec.pass(&f, &mut r, "rollback approved", T0 + 300);
    insta::assert_snapshot!(rec.out);
}

#[test]
fn failures_drift_and_differences_status_documents() {
    fixed_dates();
    let f = Fleet::example();
    write_drift_placements(&f);
    f.write("resources/rd.yaml", &namespace_with_cm("rd", "git"));
    let report = "    applyStrategy:\n      type: ReportDiff\n";
    f.write("placements/rd.yaml", &rolling_placement("rd", "rd", report, ""));
    f.write("resources/never.yaml", &namespace_with_cm("never", "git"));
    let never =
        "    rollingUpdate:\n      maxUnavailable: 1\n    applyStrategy:\n      whenToTakeOver: Never\n";
    f.write("placements/never.yaml", &rolling_placement("never", "never", never, ""));
    f.commit_all("placements that fail, drift and report");
    let state = f.state_dir();
    let put = |path: &str, text: &str| {
        let p = state.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put(
        "clusters/member1/rd/configmap/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: rd\ndata:\n  key: live\n",
    );
    put(
        "clusters/member1/never/configmap/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: never\n",
    );
    let mut r = reconciler(&RunArgs::once(f.origin_str(), &state)).unwrap();
    let mut rec = Recorder::new();
    rec.pass(&f, &mut r, "first rollout: a refused takeover, differences reported", T0);
    edit(&state.join("clusters/member1/drift-a/configmap/cm.yaml"), "key: v1", "key: edited");
    edit(&state.join("clusters/member1/drift-b/configmap/cm.yaml"), "key: v1", "key: edited");
    std::fs::remove_file(state.join("clusters/member2/drift-b/configmap/cm.yaml")).unwrap();
    rec.pass(&f, &mut r, "drift found", T0 + 10);
    rec.pass(&f, &mut r, "drift checked again", T0 + 20);
    f.pull();
    f.write(
        "resources/drift.yaml",
        &format!("{}---\n{}", namespace_with_cm("drift-a", "v1"), namespace_with_cm("drift-b", "v2")),
    );
    f.write(
        "resources/rd.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: rd\n  labels: [broken\n",
    );
    f.commit_all("a new snapshot for drift-b, a broken file for rd");
    rec.pass(&f, &mut r, "new snapshot under IfNotDrifted; broken file", T0 + 30);
    std::fs::remove_file(state.join("clusters/member1/never/configmap/cm.yaml")).unwrap();
    f.pull();
    f.write("resources/rd.yaml", &namespace_with_cm("rd", "git"));
    f.write("placements/rd.yaml", &rolling_placement("rd", "rd", "", ""));
    f.commit_all("rd fixed and applied for real");
    rec.pass(&f, &mut r, "blocker gone, rd applied", T0 + 40);
    insta::assert_snapshot!(rec.out);
}
