//! The read-only dashboard of `gitfleet run --listen`, through the seed
//! walkthrough: over plain HTTP, and in a real browser (headless Chromium
//! driven through ChromeDriver, with the HTML checked by a validator and the
//! pages by axe-core).

mod common;

use std::time::{Duration, Instant};

use common::http::{free_port, http_get};
use common::{Fleet, namespace_with_cm};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seed fleet with a 2 s soak in staging, and a ResourcePlacement that
/// fails (its namespace is placed nowhere).
fn fleet() -> Fleet {
    let f = Fleet::example();
    let strategy = f.read("strategies/example-strategy.yaml").replace("waitTime: 1m", "waitTime: 2s");
    assert!(strategy.contains("waitTime: 2s"));
    f.write("strategies/example-strategy.yaml", &strategy);
    f.write("resources/nowhere.yaml", &namespace_with_cm("nowhere", "v1"));
    f.write(
        "placements/broken.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourcePlacement\nmetadata:\n  name: broken\n  namespace: nowhere\nspec:\n  resourceSelectors:\n  - {group: \"\", version: v1, kind: ConfigMap, name: cm}\n  policy:\n    placementType: PickFixed\n    clusterNames: [member1]\n",
    );
    f.commit_all("a 2s soak, and a placement that fails");
    f
}

/// `gitfleet run --listen` on the fleet; killed on drop.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Daemon {
    fn start(f: &Fleet, extra: &[&str]) -> Daemon {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
            .args(["run", "--repo", f.origin_str(), "--state-dir", f.state_dir().to_str().unwrap()])
            .args(["--poll-interval", "3600", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for("/readyz", || http_get(port, "/readyz").is_some_and(|(c, _)| c == 200));
        Daemon { child, port }
    }

    fn page(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or((0, String::new()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of an HTML page without its tags, spaces collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    [("&#34;", "\""), ("&quot;", "\""), ("&#39;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")]
        .iter()
        .fold(out, |t, (entity, c)| t.replace(entity, c))
}

#[test]
fn the_dashboard_follows_the_seed_walkthrough() {
    let f = fleet();
    let d = Daemon::start(&f, &[]);
    let approve = format!("gitfleet approve example-run-canary --repo {}", f.origin_str());
    wait_for("the run to wait for its approval", || text(&d.page("/runs/example-run").1).contains(&approve));
    let (code, run) = d.page("/runs/example-run");
    assert_eq!(code, 200);
    let shown = text(&run);
    assert!(shown.contains("staging ✓ done"), "{shown}");
    assert!(shown.contains("member2 ✓ up to date"), "{shown}");
    assert!(shown.contains("TimedWait ✓ done soak time elapsed"), "{shown}");
    assert!(shown.contains("canary ⏸ waiting"), "{shown}");
    assert!(shown.contains("Approval ⏸ waiting waiting for approval example-run-canary"), "{shown}");
    assert!(shown.contains(&format!("{approve} --branch approve-example-run-canary")), "{shown}");
    let approvals = text(&d.page("/approvals").1);
    assert!(approvals.contains("example-run-canary Run example-run , stage canary"), "{approvals}");
    // The fleet grid: the failed placement says why, in words and not only in colour.
    let fleet = text(&d.page("/").1);
    assert!(fleet.contains("nowhere/ broken"), "{fleet}");
    assert!(fleet.contains("✗ failed"), "{fleet}");
    assert!(
        fleet.contains("ConfigMap nowhere/cm: Failed to apply manifest: namespaces \"nowhere\" not found"),
        "{fleet}"
    );
    assert!(fleet.contains("example-placement #0"), "{fleet}");

    common::approve_by_merge(&f, "example-run-canary");
    wait_for("the run to succeed", || text(&d.page("/runs/example-run").1).contains("UpdateRunSucceeded"));
    let shown = text(&d.page("/runs/example-run").1);
    assert!(shown.contains("strategy example-strategy : ✓ done"), "{shown}");
    assert!(shown.contains("Approval ✓ done approved (example-run-canary)"), "{shown}");
    assert!(text(&d.page("/approvals").1).contains("No approval is waiting."));
    let timeline = text(&d.page("/timeline").1);
    assert!(timeline.contains("Merge pull request: approve example-run-canary"), "{timeline}");
    assert!(
        timeline.contains("gitfleet gitfleet: example-run-canary approved by dev@example.com"),
        "{timeline}"
    );
    assert_eq!(d.page("/runs/nothing").0, 404);
    assert_eq!(d.page("/runs").0, 200);
    // A page has a stable version until a branch moves.
    let (_, v1) = d.page("/version");
    assert_eq!(d.page("/version").1, v1);
    assert!(
        d.page("/runs").1.contains(&format!("data-version=\"{v1}\"")),
        "the page says which version it shows"
    );
    assert!(!run.contains(&format!("data-version=\"{v1}\"")), "the page before the approval showed another");
    drop(d);

    let off = Daemon::start(&f, &["--dashboard=false"]);
    assert_eq!(off.page("/").0, 404, "no dashboard");
    assert_eq!(off.page("/healthz").0, 200);
}
