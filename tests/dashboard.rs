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
    f.commit_all("a 2s soak, and a <placement> that fails");
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
        // (made first: stopped on drop even when it never gets ready)
        let d = Daemon { child, port };
        wait_for("/readyz", || http_get(port, "/readyz").is_some_and(|(c, _)| c == 200));
        d
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
    assert!(shown.contains("canary … waiting"), "{shown}");
    assert!(shown.contains("Approval … waiting waiting for approval example-run-canary"), "{shown}");
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
    // Names and subjects are text, never markup.
    let raw = d.page("/").1;
    assert!(
        raw.contains("a 2s soak, and a &#60;placement&#62; that fails") || raw.contains("&lt;placement&gt;"),
        "{raw}"
    );
    assert!(!raw.contains("<placement>"), "{raw}");

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

/// One request to ChromeDriver, which keeps connections open: the answer is
/// read by its Content-Length. `None` while nothing listens.
fn webdriver(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).ok()?;
    conn.write_all(body).ok()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let code = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut bytes = vec![0; length];
    reader.read_exact(&mut bytes).ok()?;
    Some((code, String::from_utf8_lossy(&bytes).to_string()))
}

/// Headless Chromium through ChromeDriver (W3C WebDriver over plain HTTP on
/// 127.0.0.1); `None` (skipped) when Debian's chromium and chromium-driver
/// cannot be installed, except in CI.
struct Browser {
    driver: std::process::Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Option<Browser> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/chromium.sh");
        let installed = std::process::Command::new("bash").arg(script).status().is_ok_and(|s| s.success());
        if !installed {
            assert!(!ci, "CI needs Chromium and ChromeDriver (tests/tools/chromium.sh)");
            eprintln!(
                "skipping: no Chromium (tests/tools/chromium.sh installs Debian's chromium and chromium-driver)"
            );
            return None;
        }
        let port = free_port();
        let driver = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        // (made first: the driver is stopped on drop even when it never answers)
        let mut b = Browser { driver, port, session: String::new(), _profile: profile };
        wait_for("chromedriver", || webdriver(port, "GET", "/status", b"").is_some_and(|(c, _)| c == 200));
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", b._profile.path().display()));
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        }}});
        let created = b.call("POST", "/session", Some(caps));
        b.session =
            created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        Some(b)
    }

    /// One WebDriver command: its `value`.
    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let body = match method {
            "GET" => Vec::new(),
            _ => serde_json::to_vec(&body.unwrap_or(serde_json::json!({}))).unwrap(),
        };
        let (code, text) =
            webdriver(self.port, method, path, &body).unwrap_or_else(|| panic!("{method} {path}: no answer"));
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {code} {e}: {text}"));
        assert_eq!(code, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(serde_json::json!({ "url": url })));
    }

    fn script(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// The text a person sees.
    fn text(&self) -> String {
        self.script("return document.body.innerText;").as_str().unwrap_or_default().to_string()
    }

    fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64ct::Encoding;
        let png = self.call("GET", &self.at("/screenshot"), None);
        let bytes = base64ct::Base64::decode_vec(png.as_str().unwrap()).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// axe-core's WCAG 2 A and AA violations of the page shown, one line each.
    fn accessibility(&self, axe: &str) -> Vec<String> {
        self.script(&format!("{axe}\nreturn true;"));
        let run = "var done = arguments[arguments.length - 1];\
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\
            .then(function (r) { done(r.violations.map(function (v) {\
              return v.id + ': ' + v.help + ' (' + v.nodes.map(function (n) { return n.html; }).join(' | ') + ')'; })); })\
            .catch(function (e) { done(['axe failed: ' + e]); });";
        let found = self.call(
            "POST",
            &self.at("/execute/async"),
            Some(serde_json::json!({ "script": run, "args": [] })),
        );
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session stops its Chromium.
        if !self.session.is_empty() {
            let _ = webdriver(self.port, "DELETE", &format!("/session/{}", self.session), b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Waits until the browser shows `text` (the page reloading itself), at most 60 s.
fn shows(b: &Browser, text: &str) -> String {
    let mut seen = String::new();
    wait_for(&format!("the browser to show {text:?}"), || {
        seen = b.text();
        seen.contains(text)
    });
    seen
}

/// The seed walkthrough in a real browser: the run page, opened once, follows
/// the run by reloading itself (staging done and the canary waiting for its
/// approval with the command; after the approval commit, the run succeeded);
/// the fleet page shows a failed cluster with its message. Screenshots go to
/// the test's target folder (`dashboard/*.png`); every page passes
/// html-validate and axe-core's WCAG 2 A/AA checks.
#[test]
fn the_dashboard_in_a_real_browser() {
    let Some(b) = Browser::start() else { return };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let checks = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/web-checks.sh"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    assert!(checks.is_some() || !ci, "CI needs npm for tests/tools/web-checks.sh");
    let f = fleet();
    let d = Daemon::start(&f, &[]);
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", d.port);
    b.goto(&url("/runs/example-run"));
    // (the soak counts down while it lasts)
    let shown = shows(&b, "waiting for approval example-run-canary");
    assert!(shown.contains("staging\n✓ done") || shown.contains("staging\n\n✓ done"), "{shown}");
    assert!(
        shown.contains(&format!("gitfleet approve example-run-canary --repo {}", f.origin_str())),
        "{shown}"
    );
    b.screenshot("run-waiting.png");
    common::approve_by_merge(&f, "example-run-canary");
    let shown = shows(&b, "UpdateRunSucceeded");
    assert!(shown.contains("approved (example-run-canary)"), "{shown}");
    b.screenshot("run.png");
    b.goto(&url("/"));
    let fleet = shows(&b, "example-placement");
    assert!(fleet.contains("Failed to apply manifest: namespaces \"nowhere\" not found"), "{fleet}");
    b.screenshot("fleet.png");
    // A phone's width: nothing but the grid's own scroller goes sideways.
    b.call("POST", &b.at("/window/rect"), Some(serde_json::json!({ "width": 390, "height": 844 })));
    for page in ["/", "/runs/example-run"] {
        b.goto(&url(page));
        let fits = b.script("return document.documentElement.scrollWidth <= window.innerWidth;");
        assert_eq!(fits, serde_json::json!(true), "{page} fits a phone's width");
    }
    b.screenshot("fleet-phone.png");
    b.call("POST", &b.at("/window/rect"), Some(serde_json::json!({ "width": 1280, "height": 900 })));

    let Some(modules) = checks else { return };
    let axe = std::fs::read_to_string(modules.join("axe-core/axe.min.js")).unwrap();
    let pages = ["/", "/runs", "/runs/example-run", "/approvals", "/timeline"];
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        b.goto(&url(page));
        let found = b.accessibility(&axe);
        assert!(found.is_empty(), "axe-core on {page}:\n{}", found.join("\n"));
        let file = dir.path().join(format!("page{i}.html"));
        std::fs::write(&file, d.page(page).1).unwrap();
        files.push(file);
    }
    let config = dir.path().join("htmlvalidate.json");
    std::fs::write(&config, r#"{ "extends": ["html-validate:recommended"] }"#).unwrap();
    let out = std::process::Command::new("node")
        .arg(modules.join("html-validate/bin/html-validate.mjs"))
        .arg("--config")
        .arg(&config)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "html-validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
