//! The continuous reconciler: reacts to a push on a local repository and stops
//! cleanly on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{Fleet, test_namespace};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reacts_to_pushes_and_stops_on_sigterm() {
    let f = Fleet::example();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args([
            "run",
            "--repo",
            f.origin_str(),
            "--state-dir",
            f.state_dir().to_str().unwrap(),
            "--poll-interval",
            "3600",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let snapshot = |i: u32| {
        f.origin_file(&format!("status/clusterresourcesnapshots/example-placement-{i}-snapshot.yaml"))
    };
    wait_for("the first pass", || snapshot(0).is_some());
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    // The poll interval is an hour: only the ref watch can explain a prompt pass.
    wait_for("a pass after the push", || snapshot(1).is_some());
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` on 127.0.0.1:port: (status code, body), or None while nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, "")
}

/// `GET path` with extra header lines.
fn http_get_with(port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// promtool, built from the Go modules of Prometheus (tests/tools/build.sh);
/// `None` (skip) when Go is missing outside CI.
fn promtool() -> Option<std::path::PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if std::process::Command::new("go").arg("version").output().is_err() {
        assert!(!ci, "CI needs Go to build promtool");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/build.sh");
    let out = std::process::Command::new("bash").args([script, "promtool"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().trim().into())
}

/// `promtool check metrics` on an exposition: (passed, its report).
fn promtool_check(promtool: &std::path::Path, text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

/// `run --listen`: probes answer, the metrics follow a real run through an
/// approval to its end, and promtool accepts the exposition.
#[test]
fn listen_serves_health_and_metrics_that_follow_the_run() {
    let f = Fleet::example();
    f.write(
        "strategies/example-strategy.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: example-strategy\nspec:\n  stages:\n  - name: all\n    labelSelector: {}\n    afterStageTasks:\n    - type: Approval\n",
    );
    f.commit_all("one stage and an approval");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", f.origin_str(), "--state-dir", f.state_dir().to_str().unwrap()])
        .args(["--poll-interval", "3600", "--listen", &listen])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/healthz", || http_get(port, "/healthz").is_some_and(|(c, _)| c == 200));
    wait_for("/readyz", || http_get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    let metrics = || http_get(port, "/metrics").map(|(_, body)| body).unwrap_or_default();
    let waiting =
        "gitfleet_update_run_info{run=\"example-run\",placement=\"example-placement\",state=\"Waiting\"} 1";
    wait_for("the run to wait for its approval in /metrics", || metrics().contains(waiting));
    let text = metrics();
    for line in [
        "gitfleet_build_info{version=\"",
        "gitfleet_leader 1",
        "gitfleet_snapshot_index{placement=\"example-placement\"} 0",
        "gitfleet_cluster_reachable{cluster=\"member1\"} 1",
        "gitfleet_git_push_total{result=\"pushed\"}",
        "gitfleet_reconcile_duration_seconds_count ",
        "gitfleet_git_fetch_duration_seconds_count ",
        // Three clusters updated in stage `all`.
        "gitfleet_stage_cluster_update_duration_seconds_count{run=\"example-run\",stage=\"all\"} 3",
        "gitfleet_update_run_condition{run=\"example-run\",type=\"Progressing\",status=\"False\"} 1",
        "gitfleet_update_run_condition{run=\"example-run\",type=\"Progressing\",status=\"True\"} 0",
        "gitfleet_approval_wait_seconds_count 0",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // Prometheus asks for OpenMetrics; others get the Prometheus text format.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
    let (_, openmetrics) = http_get_with(port, "/metrics", accept).unwrap();
    assert!(openmetrics.ends_with("# EOF\n") && openmetrics.contains("# TYPE gitfleet_git_push counter"));
    assert!(!text.contains("# EOF") && text.contains("# TYPE gitfleet_git_push_total counter"), "{text}");
    let promtool = promtool();
    if let Some(promtool) = &promtool {
        let (ok, report) = promtool_check(promtool, &text);
        assert!(ok, "promtool check metrics:\n{report}\n{text}");
    }
    common::approve_by_merge(&f, "example-run-all");
    let done =
        "gitfleet_update_run_info{run=\"example-run\",placement=\"example-placement\",state=\"Succeeded\"} 1";
    wait_for("the run to succeed in /metrics", || metrics().contains(done));
    let text = metrics();
    for line in [
        "gitfleet_approval_wait_seconds_count 1",
        "gitfleet_update_run_condition{run=\"example-run\",type=\"Succeeded\",status=\"True\"} 1",
        "gitfleet_stage_cluster_update_duration_seconds_count{run=\"example-run\",stage=\"all\"} 3",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    if let Some(promtool) = &promtool {
        let (ok, report) = promtool_check(promtool, &text);
        assert!(ok, "promtool check metrics:\n{report}\n{text}");
        // The check can fail: a counter without its _total suffix is reported.
        let bad = "# HELP bad_counter a counter\n# TYPE bad_counter counter\nbad_counter 1\n";
        let (ok, report) = promtool_check(promtool, bad);
        assert!(!ok && report.contains("should have \"_total\" suffix"), "{report}");
    }
    // A new snapshot moves the index.
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    wait_for("snapshot 1 in /metrics", || {
        metrics().contains("gitfleet_snapshot_index{placement=\"example-placement\"} 1")
    });
    child.kill().unwrap();
    child.wait().unwrap();
}
