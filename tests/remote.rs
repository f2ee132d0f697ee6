//! Status commit-back over a network transport: a `git daemon` on 127.0.0.1
//! serving the origin with receive-pack, so pushes go through libgit2's smart
//! protocol and a rejected ref is reported through `push_update_reference`.

mod common;

use common::git_daemon::GitDaemon;
use common::{Fleet, git, test_namespace};
use gitfleet::cli::{RunArgs, now, reconciler};
use gitfleet::status::{Credentials, Identity, StateRepo, StatusChanges};

/// origin.git of the fleet, served by a git daemon.
fn serve(f: &Fleet) -> (GitDaemon, String) {
    let d = GitDaemon::serve(f.origin.parent().unwrap());
    let url = d.url("origin.git");
    (d, url)
}

#[test]
fn push_race_over_the_network_keeps_both_commits() {
    let f = Fleet::example();
    let (_daemon, url) = serve(&f);
    let st = StateRepo::open(&f.state_dir(), &url, Credentials::default()).unwrap();
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
    let (_daemon, url) = serve(&f);
    let mut r = reconciler(&RunArgs::once(url.clone(), f.state_dir())).unwrap();
    let outcome = r.pass(now()).unwrap();
    assert!(outcome.new_snapshots.contains(&"example-placement-1-snapshot".to_string()));
    assert_eq!(git(&f.origin, &["log", "-1", "--format=%an", "main"]), "gitfleet");
    assert!(f.state_dir().join("clusters/member2/test-namespace/configmap/test-cm.yaml").exists());
    // get reads the same URL.
    let out = common::gitfleet(&["get", "clusterresourcesnapshots", "--repo", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("example-placement-1-snapshot"));
}
