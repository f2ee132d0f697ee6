//! The continuous reconciler: reacts to a push on a local repository and stops
//! cleanly on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::http::{free_port, http_get, http_get_with, http_post, signature};
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
    // Notifications to a receiver answering 200 at /ok and 404 at /gone.
    let sink = common::http::Sink::start(|path, _| if path == "/ok" { 200 } else { 404 });
    let notify = f.dir.path().join("notify.yaml");
    let receivers = format!(
        "receivers:\n- name: ops\n  url: {}\n  events: [ApprovalRequested]\n- name: gone\n  url: {}\n  events: [RunStarted]\n",
        sink.url("/ok"),
        sink.url("/gone")
    );
    std::fs::write(&notify, receivers).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", f.origin_str(), "--state-dir", f.state_dir().to_str().unwrap()])
        .args(["--poll-interval", "3600", "--listen", &listen])
        .arg("--notify")
        .arg(&notify)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("/healthz", || http_get(port, "/healthz").is_some_and(|(c, _)| c == 200));
    wait_for("/readyz", || http_get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    // No webhook secret: no webhook endpoints.
    assert_eq!(http_post(port, "/hooks/github", &[("X-GitHub-Event", "ping")], b"{}").0, 404);
    let metrics = || http_get(port, "/metrics").map(|(_, body)| body).unwrap_or_default();
    let waiting =
        "gitfleet_update_run_info{run=\"example-run\",placement=\"example-placement\",state=\"Waiting\"} 1";
    wait_for("the run to wait for its approval in /metrics", || metrics().contains(waiting));
    // The approval request went to ops; gone refused RunStarted (404: given up at once).
    wait_for("the notifications in /metrics", || {
        let text = metrics();
        text.contains("gitfleet_notifications_total{receiver=\"ops\",result=\"delivered\"} 1")
            && text.contains("gitfleet_notifications_total{receiver=\"gone\",result=\"failed\"} 1")
    });
    let sent = sink.bodies("/ok");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["event"], "ApprovalRequested");
    assert_eq!(sent[0]["approvalRequest"], "example-run-all");
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

/// The request each host sends for a push of `branch`: (path, headers, body).
fn push_event(provider: &str, branch: &str, secret: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let body = match provider {
        "github" => format!(
            r#"{{"ref":"refs/heads/{branch}","before":"0000","after":"1111","repository":{{"full_name":"team/fleet"}},"pusher":{{"name":"dev"}}}}"#
        ),
        "gitlab" => format!(
            r#"{{"object_kind":"push","event_name":"push","ref":"refs/heads/{branch}","checkout_sha":"1111","project":{{"path_with_namespace":"team/fleet"}}}}"#
        ),
        "bitbucket" => format!(
            r#"{{"push":{{"changes":[{{"new":{{"type":"branch","name":"{branch}","target":{{"hash":"1111"}}}},"old":{{"type":"branch","name":"{branch}"}}}}]}},"repository":{{"full_name":"team/fleet"}}}}"#
        ),
        "bitbucket-dc" => format!(
            r#"{{"eventKey":"repo:refs_changed","changes":[{{"ref":{{"id":"refs/heads/{branch}","displayId":"{branch}","type":"BRANCH"}},"fromHash":"0000","toHash":"1111","type":"UPDATE"}}]}}"#
        ),
        _ => format!(r#"{{"ref":"refs/heads/{branch}"}}"#),
    }
    .into_bytes();
    let sig = signature(secret, &body);
    let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let (path, headers) = match provider {
        "github" => (
            "/hooks/github",
            h(&[
                ("Content-Type", "application/json"),
                ("User-Agent", "GitHub-Hookshot/044aadd"),
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", &sig),
            ]),
        ),
        "gitlab" => (
            "/hooks/gitlab",
            h(&[
                ("Content-Type", "application/json"),
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"),
                ("X-Gitlab-Token", secret),
            ]),
        ),
        "bitbucket" => (
            "/hooks/bitbucket",
            h(&[
                ("Content-Type", "application/json"),
                ("X-Event-Key", "repo:push"),
                ("X-Hook-UUID", "{8b2c7e1a-0000-4a5e-9a34-1f0c2d3e4f50}"),
                ("X-Request-UUID", "b6d51c4f-0f6e-4a2e-8d0e-6f3b4f2e9a10"),
                ("X-Hub-Signature", &sig),
            ]),
        ),
        "bitbucket-dc" => (
            "/hooks/bitbucket",
            h(&[
                ("Content-Type", "application/json; charset=utf-8"),
                ("X-Event-Key", "repo:refs_changed"),
                ("X-Request-Id", "2d9e8f5c-1b1a-4b8e-9c55-8d0ef1a7c2b3"),
                ("X-Hub-Signature", &sig),
            ]),
        ),
        _ => ("/hooks/generic", h(&[("Content-Type", "application/json"), ("X-Signature-256", &sig)])),
    };
    (path.to_string(), headers, body)
}

fn post_event(port: u16, event: &(String, Vec<(String, String)>, Vec<u8>)) -> (u16, String) {
    let headers: Vec<(&str, &str)> = event.1.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    http_post(port, &event.0, &headers, &event.2)
}

/// The example fleet served by a git daemon, its URL, and a webhook secret
/// file holding `secret`.
fn webhook_fleet(secret: &str) -> (Fleet, common::git_daemon::GitDaemon, String, std::path::PathBuf) {
    let f = Fleet::example();
    let daemon = common::git_daemon::GitDaemon::serve(f.origin.parent().unwrap());
    let url = daemon.url("origin.git");
    let secret_file = f.dir.path().join("webhook-secret");
    std::fs::write(&secret_file, secret).unwrap();
    (f, daemon, url, secret_file)
}

/// Push webhooks over a URL remote whose poll is an hour away: each host's
/// push event starts a pass at once; signatures, tokens, branches, sizes and
/// bodies are checked; a storm of requests neither stops nor blocks the
/// reconciler; every request is counted and none is logged with its body.
#[test]
fn webhooks_start_a_pass_at_once() {
    let secret = "It's a Secret to Everybody";
    let (f, _daemon, url, secret_file) = webhook_fleet(&format!("{secret}\n"));
    let log = f.dir.path().join("gitfleet.log");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(["run", "--repo", &url, "--state-dir", f.state_dir().to_str().unwrap()])
        .args(["--poll-interval", "3600", "--listen", &listen])
        .arg("--webhook-secret-file")
        .arg(&secret_file)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let snapshot = |i: u32| {
        f.origin_file(&format!("status/clusterresourcesnapshots/example-placement-{i}-snapshot.yaml"))
    };
    wait_for("the first pass", || snapshot(0).is_some());
    let ok = |code: u16, body: &str, want: u16, text: &str| {
        assert_eq!(code, want, "{body}");
        assert!(body.contains(text), "{body:?} does not say {text:?}");
    };

    // Signed, but nothing to do.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let sig = signature(secret, ping);
    let (code, body) =
        http_post(port, "/hooks/github", &[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", &sig)], ping);
    ok(code, &body, 200, "ignored: ping");
    let (code, body) = post_event(port, &push_event("github", "dev", secret));
    ok(code, &body, 200, "ignored: a push to dev, gitfleet tracks main");
    // Refused: no signature, a wrong one, a wrong token, a body over 1 MiB, a malformed body.
    let mut unsigned = push_event("github", "main", secret);
    unsigned.1.retain(|(name, _)| name != "X-Hub-Signature-256");
    let (code, body) = post_event(port, &unsigned);
    ok(code, &body, 401, "no X-Hub-Signature-256 header");
    let wrong = push_event("generic", "main", "another secret");
    let (code, body) = post_event(port, &wrong);
    ok(code, &body, 401, "the signature does not match the body");
    let wrong = push_event("gitlab", "main", "another secret");
    let (code, body) = post_event(port, &wrong);
    ok(code, &body, 401, "wrong X-Gitlab-Token");
    let big = vec![b' '; 1024 * 1024 + 1];
    let sig = signature(secret, &big);
    let (code, body) =
        http_post(port, "/hooks/bitbucket", &[("X-Event-Key", "repo:push"), ("X-Hub-Signature", &sig)], &big);
    ok(code, &body, 413, "too large");
    let broken = b"{\"ref\": ";
    let sig = signature(secret, broken);
    let (code, body) = http_post(
        port,
        "/hooks/github",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sig)],
        broken,
    );
    ok(code, &body, 400, "the body is not JSON");
    let (code, _) = http_post(port, "/hooks/gitea", &[], b"{}");
    assert_eq!(code, 404);
    // 200 at once: all answered, none woke a pass (another branch).
    let storm = push_event("github", "dev", secret);
    let started = Instant::now();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200).map(|_| s.spawn(|| post_event(port, &storm).0)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|c| *c == 200), "{answers:?}");
    eprintln!("200 concurrent webhook requests answered in {:?}", started.elapsed());
    assert!(snapshot(1).is_none(), "nothing pushed, nothing snapshotted");

    // A push to main, announced by each host in turn: a new snapshot each time.
    for (i, provider) in ["github", "gitlab", "bitbucket", "bitbucket-dc", "generic"].into_iter().enumerate()
    {
        let i = i as u32 + 1;
        f.pull();
        f.write("resources/test-namespace.yaml", &test_namespace(&format!("{provider}-{i}")));
        f.commit_all(provider);
        let (code, body) = post_event(port, &push_event(provider, "main", secret));
        ok(code, &body, 200, "accepted");
        // The poll is an hour away: only the webhook explains a pass.
        wait_for(&format!("snapshot {i} after the {provider} webhook"), || snapshot(i).is_some());
    }

    let (_, metrics) = http_get(port, "/metrics").unwrap();
    for line in [
        "gitfleet_webhook_requests_total{provider=\"github\",result=\"accepted\"} 1",
        "gitfleet_webhook_requests_total{provider=\"github\",result=\"ignored\"} 202",
        "gitfleet_webhook_requests_total{provider=\"github\",result=\"unauthorized\"} 1",
        "gitfleet_webhook_requests_total{provider=\"github\",result=\"bad_request\"} 1",
        "gitfleet_webhook_requests_total{provider=\"gitlab\",result=\"accepted\"} 1",
        "gitfleet_webhook_requests_total{provider=\"gitlab\",result=\"unauthorized\"} 1",
        "gitfleet_webhook_requests_total{provider=\"bitbucket\",result=\"accepted\"} 2",
        "gitfleet_webhook_requests_total{provider=\"bitbucket\",result=\"too_large\"} 1",
        "gitfleet_webhook_requests_total{provider=\"generic\",result=\"accepted\"} 1",
        "gitfleet_webhook_requests_total{provider=\"generic\",result=\"unauthorized\"} 1",
    ] {
        assert!(metrics.contains(line), "{line:?} not in:\n{metrics}");
    }
    if let Some(promtool) = promtool() {
        let (ok, report) = promtool_check(&promtool, &metrics);
        assert!(ok, "promtool check metrics:\n{report}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("webhook: accepted: reconciling"), "{log}");
    assert!(log.contains("72d3162e-cc78-11e3-81ab-4c9367dc0958"), "the delivery id is logged: {log}");
    assert!(
        !log.contains("team/fleet") && !log.contains("Keep it logically awesome"),
        "a body was logged:\n{log}"
    );
}

/// With `--webhook-peers`, the replica a Git host reaches passes the push on
/// to the others (as behind one Service: the one reached may be a standby),
/// and a push passed on is not passed on again.
#[test]
fn a_webhook_reaches_the_other_replicas() {
    let secret = "shared secret";
    let (f, _daemon, url, secret_file) = webhook_fleet(secret);
    let (port_a, port_b) = (free_port(), free_port());
    let start = |name: &str, port: u16, peer: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gitfleet"))
            .args(["run", "--repo", &url, "--state-dir", f.dir.path().join(name).to_str().unwrap()])
            .args(["--poll-interval", "3600", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--webhook-secret-file")
            .arg(&secret_file)
            .args(["--webhook-peers", &format!("127.0.0.1:{port},127.0.0.1:{peer}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (start("a", port_a, port_b), start("b", port_b, port_a));
    let passes = |port: u16| -> u64 {
        let (_, text) = http_get(port, "/metrics").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("gitfleet_reconcile_duration_seconds_count "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_for("both replicas' first pass", || passes(port_a) >= 1 && passes(port_b) >= 1);
    std::thread::sleep(Duration::from_millis(500));
    let before = passes(port_b);
    f.pull();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    // GitHub reaches replica a only.
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = signature(secret, body);
    let (code, answer) = http_post(
        port_a,
        "/hooks/github",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sig)],
        body,
    );
    assert_eq!(code, 200, "{answer}");
    wait_for("replica b to pass after the push", || passes(port_b) > before);
    let metric = |port: u16, line: &str| http_get(port, "/metrics").is_some_and(|(_, t)| t.contains(line));
    // a heard GitHub and its own forward; b heard a's forward (and passed it on to nobody).
    wait_for("the forwards to be counted", || {
        metric(port_b, "gitfleet_webhook_requests_total{provider=\"generic\",result=\"accepted\"} 1")
            && metric(port_a, "gitfleet_webhook_requests_total{provider=\"generic\",result=\"accepted\"} 1")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(metric(port_b, "gitfleet_webhook_requests_total{provider=\"generic\",result=\"accepted\"} 1"));
    assert!(metric(port_a, "gitfleet_webhook_requests_total{provider=\"github\",result=\"accepted\"} 1"));
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
