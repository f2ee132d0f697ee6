//! `gitfleet demo`: the staged rollout walkthrough end to end on a scratch
//! repository (a bare origin and a work clone) with local-store clusters.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{Repository, Signature};

use super::CliError;
use super::get::{GetArgs, Output, get};
use super::run::{RunArgs, now, reconciler};
use crate::reconcile::Reconciler;

/// The staging stage's TimedWait in the demo (the walkthrough uses 1m).
const DEMO_WAIT_SECS: u64 = 5;

const EXAMPLE: &[(&str, &str)] = &[
    ("clusters/member1.yaml", include_str!("../../example-repo/clusters/member1.yaml")),
    ("clusters/member2.yaml", include_str!("../../example-repo/clusters/member2.yaml")),
    ("clusters/member3.yaml", include_str!("../../example-repo/clusters/member3.yaml")),
    ("resources/test-namespace.yaml", include_str!("../../example-repo/resources/test-namespace.yaml")),
    (
        "placements/example-placement.yaml",
        include_str!("../../example-repo/placements/example-placement.yaml"),
    ),
    ("strategies/example-strategy.yaml", include_str!("../../example-repo/strategies/example-strategy.yaml")),
];

fn run_file(name: &str, index: u32) -> String {
    run_with(name, index, "example-strategy")
}

fn run_with(name: &str, index: u32, strategy: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: {name}\nspec:\n  placementName: example-placement\n  resourceSnapshotIndex: \"{index}\"\n  stagedRolloutStrategyName: {strategy}\n"
    )
}

/// Seconds between the demo's verification measurements.
const DEMO_INTERVAL_SECS: u64 = 2;

/// A strategy whose canary stage is verified against the demo's error-rate
/// endpoint, twice per cluster, and rolled back when it fails.
fn verified_strategy(endpoint: &str) -> String {
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata:
  name: verified-strategy
spec:
  stages:
    - name: staging
      labelSelector:
        matchLabels:
          environment: staging
    - name: canary
      labelSelector:
        matchLabels:
          environment: canary
      sortingLabelKey: order
      afterStageTasks:
        - type: Verification
          onFailure: Rollback
          verification:
            provider:
              web:
                url: {endpoint}/error-rate/${{MEMBER-CLUSTER-NAME}}
                jsonPath: '{{$.errorRate}}'
            successCondition: result < 0.05
            interval: {DEMO_INTERVAL_SECS}s
            count: 2
            perCluster: true
"
    )
}

/// The demo's stand-in for an application's health: each member cluster's
/// error rate as JSON (`GET /error-rate/<cluster>` -> `{"errorRate": 0.001}`),
/// on 127.0.0.1 while the demo runs.
#[derive(Clone)]
struct ErrorRates {
    endpoint: String,
    rates: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, f64>>>,
}

impl ErrorRates {
    fn start() -> Result<ErrorRates, CliError> {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(env)?;
        let endpoint = format!("http://{}", listener.local_addr().map_err(env)?);
        let rates = ErrorRates { endpoint, rates: Default::default() };
        let served = rates.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(match conn.try_clone() {
                    Ok(c) => c,
                    Err(_) => continue,
                });
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let rate =
                    path.strip_prefix("/error-rate/").and_then(|c| served.rates.lock().ok()?.get(c).copied());
                let (status, body) = match rate {
                    Some(r) => ("200 OK", format!("{{\"errorRate\": {r}}}")),
                    None => ("404 Not Found", "{}".to_string()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Ok(rates)
    }

    fn set(&self, cluster: &str, rate: f64) {
        if let Ok(mut rates) = self.rates.lock() {
            rates.insert(cluster.to_string(), rate);
        }
        println!("(the demo's endpoint now reports an error rate of {rate} for {cluster})");
    }
}

fn env<E: std::fmt::Display>(e: E) -> CliError {
    CliError::env(e)
}

/// A person working in a clone of the fleet repository.
struct Person {
    repo: Repository,
    dir: PathBuf,
    sig: Signature<'static>,
}

impl Person {
    fn write(&self, path: &str, content: &str) -> Result<(), CliError> {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().expect("files are in folders")).map_err(env)?;
        std::fs::write(p, content).map_err(env)
    }

    /// Commits everything on the current branch.
    fn commit(&self, message: &str) -> Result<git2::Oid, CliError> {
        let mut index = self.repo.index().map_err(env)?;
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).map_err(env)?;
        index.write().map_err(env)?;
        let tree = self.repo.find_tree(index.write_tree().map_err(env)?).map_err(env)?;
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo.commit(Some("HEAD"), &self.sig, &self.sig, message, &tree, &parents).map_err(env)
    }

    fn push(&self, branch: &str) -> Result<(), CliError> {
        let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
        self.repo.find_remote("origin").and_then(|mut r| r.push(&[&spec], None)).map_err(env)
    }

    /// Fetches main and fast-forwards to it (gitfleet pushed status meanwhile).
    fn pull(&self) -> Result<(), CliError> {
        let mut remote = self.repo.find_remote("origin").map_err(env)?;
        remote.fetch(&["+refs/heads/main:refs/remotes/origin/main"], None, None).map_err(env)?;
        let tip = self.repo.refname_to_id("refs/remotes/origin/main").map_err(env)?;
        self.repo.reference("refs/heads/main", tip, true, "demo: fast-forward").map_err(env)?;
        self.repo.set_head("refs/heads/main").map_err(env)?;
        self.repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force())).map_err(env)
    }

    /// Opens a pull request branch with the approval and merges it into main.
    fn approve_by_merge(&self, name: &str) -> Result<String, CliError> {
        self.pull()?;
        let branch = format!("approve-{name}");
        let main = self.repo.head().and_then(|h| h.peel_to_commit()).map_err(env)?;
        self.repo.branch(&branch, &main, true).map_err(env)?;
        self.repo.set_head(&format!("refs/heads/{branch}")).map_err(env)?;
        self.write(
            &format!("approvals/{name}.yaml"),
            &super::approve::approval_yaml(name, "testPassed", "lgtm"),
        )?;
        let approval = self.commit(&format!("Approve {name}"))?;
        let approval = self.repo.find_commit(approval).map_err(env)?;
        let mut index = self.repo.merge_commits(&main, &approval, None).map_err(env)?;
        let tree = self.repo.find_tree(index.write_tree_to(&self.repo).map_err(env)?).map_err(env)?;
        let message = format!("Merge pull request: {branch}");
        self.repo
            .commit(Some("refs/heads/main"), &self.sig, &self.sig, &message, &tree, &[&main, &approval])
            .map_err(env)?;
        self.repo.set_head("refs/heads/main").map_err(env)?;
        self.repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force())).map_err(env)?;
        self.push("main")?;
        Ok(branch)
    }
}

struct Demo {
    origin: String,
    person: Person,
    reconciler: Reconciler,
    state_dir: PathBuf,
}

impl Demo {
    fn say(&self, text: &str) {
        println!("\n# {text}");
    }

    fn show(&self, kind: &str, name: Option<&str>, output: Output) -> Result<(), CliError> {
        let shown = match output {
            Output::Yaml => " -o yaml",
            Output::Json => " -o json",
            Output::Table => "",
        };
        println!("$ gitfleet get {kind}{}{shown}", name.map(|n| format!(" {n}")).unwrap_or_default());
        get(GetArgs {
            kind: kind.into(),
            name: name.map(str::to_string),
            repo: self.origin.clone(),
            branch: "main".into(),
            path: None,
            output,
            show_labels: true,
            namespace: None,
            all_namespaces: false,
            watch: false,
            watch_interval: 2,
        })?;
        Ok(())
    }

    fn table(&self, kind: &str) -> Result<(), CliError> {
        self.show(kind, None, Output::Table)
    }

    /// One reconcile pass, reporting its status commit.
    fn reconcile(&mut self) -> Result<Option<crate::time::Time>, CliError> {
        let outcome = self.reconciler.pass(now()).map_err(env)?;
        if outcome.commit.is_some() {
            let mut lines = outcome.message.lines().filter(|l| !l.trim().is_empty());
            println!("[gitfleet] {}", lines.next().unwrap_or_default());
            // A summary that names only some of what happened: the rest.
            if outcome.message.lines().next().is_some_and(|l| l.contains(" more")) {
                for line in lines {
                    println!("[gitfleet]   {line}");
                }
            }
        }
        Ok(outcome.wake.time())
    }

    /// Passes until nothing waits on time any more (the short TimedWait).
    fn reconcile_until_waiting_on_people(&mut self) -> Result<(), CliError> {
        let mut wake = self.reconcile()?;
        while let Some(at) = wake {
            let secs = (at.as_second() - now().as_second()).max(0) as u64;
            if secs > DEMO_WAIT_SECS + 1 {
                break; // a cluster timeout, not the demo's wait
            }
            println!("[gitfleet] waiting {secs}s (a TimedWait, or the next verification measurement)");
            std::thread::sleep(Duration::from_secs(secs));
            wake = self.reconcile()?;
        }
        Ok(())
    }

    /// Pushes a new value of test-cm and a run of it with verified-strategy.
    fn push_verified_run(&mut self, value: &str, run: &str, index: u32) -> Result<(), CliError> {
        self.person.pull()?;
        self.person.write("resources/test-namespace.yaml", &EXAMPLE[3].1.replace("value1", value))?;
        self.person.write(&format!("runs/{run}.yaml"), &run_with(run, index, "verified-strategy"))?;
        self.person.commit(&format!("test-cm: {value}, rolled out by {run} with verification"))?;
        self.person.push("main")?;
        self.reconcile_until_waiting_on_people()
    }

    fn show_configmaps(&self) {
        for m in ["member1", "member2", "member3"] {
            let p = self.state_dir.join(format!("clusters/{m}/test-namespace/configmap/test-cm.yaml"));
            let value = std::fs::read_to_string(&p)
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("key: ").map(str::to_string)));
            println!("{m}: test-namespace/test-cm key={}", value.as_deref().unwrap_or("<absent>"));
        }
    }
}

fn setup(dir: &Path) -> Result<Demo, CliError> {
    let origin = dir.join("origin.git");
    Repository::init_opts(&origin, git2::RepositoryInitOptions::new().bare(true).initial_head("main"))
        .map_err(env)?;
    let work = dir.join("work");
    let repo = Repository::clone(origin.to_str().unwrap_or_default(), &work).map_err(env)?;
    repo.set_head("refs/heads/main").map_err(env)?;
    let sig = Signature::now("Fleet Admin", "admin@example.com").map_err(env)?;
    let person = Person { repo, dir: work, sig };
    let state_dir = dir.join("state");
    let args = RunArgs::once(origin.display().to_string(), state_dir.clone());
    for (path, content) in EXAMPLE {
        let content = content.replace("waitTime: 1m", &format!("waitTime: {DEMO_WAIT_SECS}s"));
        person.write(path, &content)?;
    }
    person.commit("Fleet: member clusters, test-namespace, example-placement, example-strategy")?;
    person.push("main")?;
    let reconciler = reconciler(&args)?;
    Ok(Demo { origin: args.repo, person, reconciler, state_dir })
}

pub fn demo() -> Result<u8, CliError> {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("gitfleet-demo-").tempdir().map_err(env)?;
    println!(
        "gitfleet demo: the staged update run walkthrough on a scratch repository in {}",
        dir.path().display()
    );
    println!(
        "(three local-store member clusters; the staging stage waits {DEMO_WAIT_SECS}s instead of 1m to keep it short)"
    );
    let mut d = setup(dir.path())?;

    d.say("The fleet is pushed: three members, test-namespace with test-cm (value1), a placement with an External strategy");
    d.reconcile()?;
    d.show("crp", Some("example-placement"), Output::Table)?;
    d.table("clusterresourcesnapshots")?;

    d.say("Change test-cm from value1 to value2 and push: a new resource snapshot");
    d.person.pull()?;
    let cm = EXAMPLE[3].1.replace("value1", "value2");
    d.person.write("resources/test-namespace.yaml", &cm)?;
    d.person.commit("test-cm: value2")?;
    d.person.push("main")?;
    d.reconcile()?;
    d.table("clusterresourcesnapshots")?;

    d.say("Push a ClusterStagedUpdateRun for snapshot 1: staging first, then canary by order");
    d.person.pull()?;
    d.person.write("runs/example-run.yaml", &run_file("example-run", 1))?;
    d.person.commit("Roll out snapshot 1 with example-strategy")?;
    d.person.push("main")?;
    d.reconcile()?;
    d.table("csur")?;
    d.reconcile_until_waiting_on_people()?;
    d.show("csur", Some("example-run"), Output::Yaml)?;
    d.table("clusterapprovalrequest")?;

    d.say(
        "Approve through a pull request: a branch with approvals/example-run-canary.yaml, merged into main",
    );
    let branch = d.person.approve_by_merge("example-run-canary")?;
    println!("merged branch {branch} into main");
    d.reconcile()?;
    d.table("clusterapprovalrequest")?;
    d.table("csur")?;
    d.show("crp", Some("example-placement"), Output::Table)?;
    d.show_configmaps();

    d.say("Roll back: a second run pinned to snapshot 0, same strategy");
    d.person.pull()?;
    d.person.write("runs/example-run-2.yaml", &run_file("example-run-2", 0))?;
    d.person.commit("Roll back to snapshot 0")?;
    d.person.push("main")?;
    d.reconcile()?;
    d.table("csur")?;
    d.reconcile_until_waiting_on_people()?;
    d.table("clusterapprovalrequest")?;
    d.person.approve_by_merge("example-run-2-canary")?;
    d.reconcile()?;
    d.table("clusterapprovalrequest")?;
    d.table("csur")?;
    d.show_configmaps();

    d.say(
        "Verification: a strategy whose canary stage is measured (the web provider, against an error-rate endpoint the demo serves) and rolled back automatically when it fails",
    );
    let rates = ErrorRates::start()?;
    for m in ["member1", "member2", "member3"] {
        rates.set(m, 0.001);
    }
    d.person.pull()?;
    d.person.write("strategies/verified-strategy.yaml", &verified_strategy(&rates.endpoint))?;
    d.person.commit("verified-strategy: canary verified by its error rate")?;
    d.person.push("main")?;
    d.reconcile()?;
    d.push_verified_run("value3", "verified-run", 2)?;
    d.show("csur", Some("verified-run"), Output::Table)?;
    d.show_configmaps();

    d.say("A bad release: member1's error rate rises while value4 rolls out; the canary fails verification and every cluster the run updated goes back");
    rates.set("member1", 0.25);
    d.push_verified_run("value4", "bad-run", 3)?;
    d.show("csur", Some("bad-run"), Output::Table)?;
    d.show_configmaps();

    d.say("The audit trail: git log of the fleet repository");
    let repo = Repository::open_bare(dir.path().join("origin.git")).map_err(env)?;
    let mut walk = repo.revwalk().map_err(env)?;
    walk.push_ref("refs/heads/main").map_err(env)?;
    walk.simplify_first_parent().map_err(env)?;
    for oid in walk.take(16).flatten() {
        if let Ok(c) = repo.find_commit(oid) {
            let sha = oid.to_string();
            println!(
                "{} {:<12} {}",
                &sha[..8],
                c.author().name().unwrap_or_default(),
                c.summary().ok().flatten().unwrap_or_default()
            );
        }
    }
    println!("\ndemo finished in {:.1}s", started.elapsed().as_secs_f64());
    Ok(0)
}
