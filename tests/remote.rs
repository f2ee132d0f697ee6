//! Status commit-back over a network transport: a `git daemon` on 127.0.0.1
//! serving the origin with receive-pack, so pushes go through libgit2's smart
//! protocol and a rejected ref is reported through `push_update_reference`.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fleet, git, test_namespace};
use gitfleet::cli::{RunArgs, now, reconciler};
use gitfleet::status::{Credentials, Identity, StateRepo, StatusChanges};

struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(f: &Fleet) -> Daemon {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = f.origin.parent().unwrap();
    let child = Command::new("git")
        .args(["daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("git://127.0.0.1:{port}/origin.git");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "git daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, url }
}

#[test]
fn push_race_over_the_network_keeps_both_commits() {
    let f = Fleet::example();
    let d = serve(&f);
    let st = StateRepo::open(&f.state_dir(), &d.url, Credentials::default()).unwrap();
    let base = st.fetch("main").unwrap().unwrap();
    f.write("README.md", "# pushed meanwhile\n");
    let human = f.commit_all("human change");
    let mut changes = StatusChanges::default();
    changes.writes.insert("clusterresourcesnapshots/x.yaml".into(), b"a: 1\n".to_vec());
    let pushed =
        st.publish("main", Some(base), "status", &changes, "gitfleet: test", &Identity::default()).unwrap();
    let log = f.log();
    assert_eq!(log[0].0, pushed.unwrap().to_string());
    assert_eq!(log[1].0, human, "rebuilt on the person's commit, nothing forced");
}

#[test]
fn reconcile_through_a_url() {
    let f = Fleet::example();
    f.write("resources/test-namespace.yaml", &test_namespace("value2"));
    f.commit_all("value2");
    let d = serve(&f);
    let mut r = reconciler(&RunArgs::once(d.url.clone(), f.state_dir())).unwrap();
    let outcome = r.pass(now()).unwrap();
    assert!(outcome.new_snapshots.contains(&"example-placement-1-snapshot".to_string()));
    assert_eq!(git(&f.origin, &["log", "-1", "--format=%an", "main"]), "gitfleet");
    assert!(f.state_dir().join("clusters/member2/test-namespace/configmap/test-cm.yaml").exists());
    // get reads the same URL.
    let out = common::gitfleet(&["get", "clusterresourcesnapshots", "--repo", &d.url]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("example-placement-1-snapshot"));
}
