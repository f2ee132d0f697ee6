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
