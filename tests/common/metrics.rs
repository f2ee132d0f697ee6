//! What Verification tasks measure in the tests: an application's error
//! ratio per cluster, which the test sets and changes mid-run, served as
//! Prometheus metrics (`/metrics`) and as JSON (`/rate/<cluster>`); and a real
//! Prometheus, built from its Go modules (tests/tools/prometheus), scraping
//! it every second on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::{free_port, http_get};

/// Error ratios by cluster; a cluster set to `None` answers 500 on `/rate/`.
#[derive(Clone)]
pub struct App {
    pub port: u16,
    ratios: Arc<Mutex<BTreeMap<String, Option<f64>>>>,
}

impl App {
    /// Serves until the test binary ends.
    pub fn start(ratios: &[(&str, f64)]) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let map = ratios.iter().map(|(c, r)| (c.to_string(), Some(*r))).collect();
        let app = App { port, ratios: Arc::new(Mutex::new(map)) };
        let served = app.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // Headers up to the blank line.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (code, body) = served.answer(&path);
                // Prometheus 3 refuses a scrape without the text format's type.
                let kind = if path == "/metrics" { "text/plain; version=0.0.4" } else { "application/json" };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        app
    }

    fn answer(&self, path: &str) -> (u16, String) {
        let ratios = self.ratios.lock().unwrap();
        if path == "/metrics" {
            let mut out = String::from("# TYPE app_error_ratio gauge\n");
            for (cluster, ratio) in ratios.iter() {
                if let Some(r) = ratio {
                    out.push_str(&format!("app_error_ratio{{cluster=\"{cluster}\"}} {r}\n"));
                }
            }
            return (200, out);
        }
        match path.strip_prefix("/rate/").map(|c| ratios.get(c)) {
            Some(Some(Some(r))) => (200, format!("{{\"data\": {{\"errorRate\": {r}}}}}")),
            Some(Some(None)) => (500, "broken".into()),
            _ => (404, "no such cluster".into()),
        }
    }

    /// Sets a cluster's error ratio (`None`: the web endpoint answers 500 and
    /// the metric disappears).
    pub fn set(&self, cluster: &str, ratio: Option<f64>) {
        self.ratios.lock().unwrap().insert(cluster.to_string(), ratio);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A Prometheus server scraping an [`App`] every second.
pub struct Prometheus {
    pub port: u16,
    child: Mutex<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Prometheus binary, built once into the cache; `None` when Go is
/// missing outside CI.
pub fn prometheus_binary() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if Command::new("go").arg("version").output().is_err() {
        assert!(!ci, "CI needs Go to build Prometheus");
        eprintln!("skipping: Go is not installed");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/build.sh");
    let out = Command::new("bash").args([script, "prometheus"]).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "building Prometheus failed");
    Some(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
}

impl Prometheus {
    /// An [`App`] with these ratios and a Prometheus that has scraped them all.
    pub fn scraping(ratios: &[(&str, f64)]) -> Option<(App, Prometheus)> {
        let app = App::start(ratios);
        let prometheus = Prometheus::start(&app)?;
        for (cluster, ratio) in ratios {
            prometheus.wait_for(cluster, *ratio);
        }
        Some((app, prometheus))
    }

    pub fn start(app: &App) -> Option<Prometheus> {
        let binary = prometheus_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: app\n  static_configs:\n  - targets: ['127.0.0.1:{}']\n",
                app.port
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Prometheus { port, child: Mutex::new(Some(child)), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/-/ready").is_none_or(|(code, _)| code != 200) {
            assert!(Instant::now() < deadline, "Prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(p)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The values an instant query returns now.
    pub fn query(&self, query: &str) -> Vec<f64> {
        let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("query", query).finish();
        let Some((200, body)) = http_get(self.port, &format!("/api/v1/query?{q}")) else { return Vec::new() };
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        doc["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["value"][1].as_str()?.parse().ok())
            .collect()
    }

    /// Waits until Prometheus has scraped `ratio` for the cluster.
    pub fn wait_for(&self, cluster: &str, ratio: f64) {
        let query = format!("app_error_ratio{{cluster=\"{cluster}\"}}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.query(&query) != [ratio] {
            assert!(Instant::now() < deadline, "Prometheus never saw {query} = {ratio}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server (as if it went down).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
