//! deploy/: the container build, the Helm chart on a real kube-apiserver (in a
//! namespace enforcing the restricted Pod Security Standard) with its arguments
//! run by the real binary, and leader election between real processes on a
//! real Lease. Helm is built from Go modules (tests/tools/build.sh), kubectl
//! and the apiservers by the harness of tests/kube-apiserver.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::harness::Harness;
use common::{Fleet, git, stderr, test_namespace};
use serde_json::{Value, json};

const NAMESPACE: &str = "gitfleet-system";

/// `hub` holds Leases and takes the chart's objects; `down` holds the Lease of
/// the test that stops it; member1-3 are the member clusters of the chart's
/// every-option run.
fn harness() -> Option<&'static Harness> {
    static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();
    HARNESS
        .get_or_init(|| {
            let h = Harness::start(&["hub", "down", "member1", "member2", "member3"])?;
            for member in ["hub", "down"] {
                let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": NAMESPACE,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                }}});
                let out = kubectl(&h, member, &["apply", "-f", "-"], &ns.to_string());
                assert!(out.status.success(), "{}", stderr(&out));
            }
            Some(h)
        })
        .as_ref()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("deploy/helm/gitfleet")
}

/// Go is there, or the test is skipped (never in CI).
fn go() -> bool {
    let present = Command::new("go").arg("version").output().is_ok();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(present || !ci, "CI needs Go to build Helm");
    if !present {
        eprintln!("skipping: Go is not installed");
    }
    present
}

/// The path a script prints (building the tool on first use).
fn built(script: &str, args: &[&str]) -> PathBuf {
    let out = Command::new("bash").arg(root().join(script)).args(args).output().unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn helm(args: &[&str]) -> Output {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    let helm = HELM.get_or_init(|| built("tests/tools/build.sh", &["helm"]));
    Command::new(helm).args(args).output().unwrap()
}

fn kubectl(h: &Harness, member: &str, args: &[&str], stdin: &str) -> Output {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    let kubectl = KUBECTL.get_or_init(|| built("tests/kube-apiserver/kubectl.sh", &["--print-path"]));
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&h.kubeconfig)
        .args(["--context", member])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `helm template` of the chart with these extra arguments: its objects.
fn render(args: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut all = vec!["template", "gitfleet", chart.to_str().unwrap(), "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    let out = helm(&all);
    assert!(out.status.success(), "helm template {args:?}: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap().into_iter().filter(|v| !v.is_null()).collect()
}

/// The values a user must set, and nothing else.
const DEFAULTS: &[&str] = &[
    "--set",
    "repo.url=https://git.example.com/fleet.git",
    "--set",
    "image.repository=registry.example.com/gitfleet",
];

fn all_on() -> String {
    chart().join("ci/all-on-values.yaml").to_str().unwrap().to_string()
}

fn kinds(objects: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    kinds.sort();
    kinds
}

fn workload(objects: &[Value]) -> &Value {
    objects.iter().find(|o| ["Deployment", "StatefulSet"].contains(&o["kind"].as_str().unwrap())).unwrap()
}

fn container_args(objects: &[Value]) -> Vec<String> {
    let args = &workload(objects)["spec"]["template"]["spec"]["containers"][0]["args"];
    args.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

#[test]
fn the_binary_needs_nothing_beyond_glibc() {
    // The runtime image (distroless cc) has glibc and libgcc and nothing else.
    let allowed = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    ];
    // The release binary (CI builds it first); outside CI, when it is missing
    // or older than the binary under test, that one (same features and link line).
    let debug = PathBuf::from(env!("CARGO_BIN_EXE_gitfleet"));
    let release = root().join("target/release/gitfleet");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!ci || release.exists(), "CI builds the release binary before the tests");
    let bin = if ci || modified(&release) >= modified(&debug) { release } else { debug };
    let out = Command::new("ldd").arg(&bin).output().expect("ldd runs");
    assert!(out.status.success(), "ldd {}: {}", bin.display(), stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let needed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.rsplit('/').next().unwrap())
        .collect();
    assert!(needed.contains(&"libc.so.6"), "{text}");
    for lib in &needed {
        assert!(
            allowed.contains(lib),
            "{} needs {lib}, which the runtime image lacks:\n{text}",
            bin.display()
        );
    }
}

#[test]
fn the_containerfile_names_only_what_exists() {
    let text = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    let lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
    assert!(froms[1].contains("distroless/cc") && froms[1].contains(":nonroot"), "{}", froms[1]);
    for copy in lines.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let parts: Vec<&str> = copy.split_whitespace().skip(1).collect();
        for source in &parts[..parts.len() - 1] {
            assert!(root().join(source).exists(), "Containerfile copies {source}, which does not exist");
        }
    }
    // Every target Cargo.toml names must be in the build context.
    let manifest: toml_like::Manifest = toml_like::read(&root().join("Cargo.toml"));
    for path in manifest.paths {
        let copied = lines.iter().any(|l| {
            l.starts_with("COPY ") && l.split_whitespace().any(|w| path.starts_with(w.trim_end_matches('/')))
        });
        assert!(copied, "Cargo.toml names {path}, which the Containerfile does not copy");
    }
    let build = lines.iter().find(|l| l.contains("cargo build")).expect("a cargo build step");
    assert!(
        build.contains("--release") && build.contains("--locked") && build.contains("--bin gitfleet"),
        "{build}"
    );
    assert!(manifest.bins.contains(&"gitfleet".to_string()));
    let install = lines.iter().find(|l| l.contains("install -D")).unwrap();
    assert!(install.contains("target/release/gitfleet /out/gitfleet"), "{install}");
    assert!(lines.contains(&"COPY --from=build /out/gitfleet /usr/local/bin/gitfleet"));
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/gitfleet"]"#));
    // The user the chart runs as.
    let values = std::fs::read_to_string(chart().join("values.yaml")).unwrap();
    assert!(values.contains("runAsUser: 65532") && lines.contains(&"USER 65532:65532"));
}

/// Just enough of Cargo.toml: the paths of its targets and its binaries' names.
mod toml_like {
    pub struct Manifest {
        pub paths: Vec<String>,
        pub bins: Vec<String>,
    }

    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap();
        let (mut paths, mut bins, mut section) = (Vec::new(), Vec::new(), String::new());
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            let value = |key: &str| {
                line.strip_prefix(key)
                    .and_then(|r| r.trim().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
            };
            match section.as_str() {
                "[[bin]]" => {
                    bins.extend(value("name"));
                    paths.extend(value("path"));
                }
                "[[bench]]" => paths.extend(value("name").map(|n| format!("benches/{n}.rs"))),
                _ => {}
            }
        }
        Manifest { paths, bins }
    }
}

#[test]
fn the_chart_lints_and_renders_with_defaults_and_every_option() {
    if !go() {
        return;
    }
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for extra in [DEFAULTS.to_vec(), vec!["-f", &all_on()]] {
        let mut args = vec!["lint", "--strict", chart];
        args.extend(extra.iter().copied());
        let out = helm(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("0 chart(s) failed"),
            "helm lint {extra:?}: {text}{}",
            stderr(&out)
        );
    }
    // The one value a user must set, said so.
    let out = helm(&["template", "gitfleet", chart, "--set", "image.repository=r"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("repo.url is required: the fleet repository's URL"), "{}", stderr(&out));
    let out = helm(&["template", "gitfleet", chart, "--set", "repo.url=x"]);
    assert!(stderr(&out).contains("image.repository is required"), "{}", stderr(&out));
    // What `helm template` says of the required values and one more.
    let refusal = |value: &str| {
        let out = helm(&[
            "template",
            "gitfleet",
            chart,
            "--set",
            "repo.url=x",
            "--set",
            "image.repository=r",
            "--set",
            value,
        ]);
        stderr(&out)
    };
    let said = refusal("leaderElection.enabled=false");
    assert!(said.contains("replicaCount > 1 needs leaderElection.enabled"), "{said}");
    let said = refusal("shards=3");
    assert!(said.contains("shards > 1 needs signing.key"), "{said}");

    // Sharding: the flag, and Leases of any name (one per shard and replica).
    let mut with_shards = DEFAULTS.to_vec();
    with_shards.extend([
        "--set",
        "shards=3",
        "--set",
        "replicaCount=3",
        "--set",
        "signing.key.secretName=sign",
    ]);
    let sharded = render(&with_shards);
    let args = container_args(&sharded);
    assert!(
        args.contains(&"--shards=3".to_string()) && args.contains(&"--leader-elect".to_string()),
        "{args:?}"
    );
    let role = sharded.iter().find(|o| o["kind"] == "Role").unwrap();
    assert_eq!(
        role["rules"][0]["verbs"],
        json!(["get", "list", "watch", "create", "update", "patch", "delete"])
    );
    assert!(role["rules"][0].get("resourceNames").is_none(), "{role}");
    assert_eq!(workload(&sharded)["spec"]["replicas"], 3);
    assert!(!container_args(&render(DEFAULTS)).iter().any(|a| a.starts_with("--shards")));

    let defaults = render(DEFAULTS);
    assert_eq!(
        kinds(&defaults),
        ["Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"]
    );
    let deployment = workload(&defaults);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(pod["volumes"][0]["emptyDir"].is_object(), "{}", pod["volumes"]);
    let args = container_args(&defaults);
    for arg in ["run", "--repo=https://git.example.com/fleet.git", "--leader-elect", "--listen=0.0.0.0:8080"]
    {
        assert!(args.contains(&arg.to_string()), "{args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--prometheus")), "no Prometheus unless given: {args:?}");
    let role = defaults.iter().find(|o| o["kind"] == "Role").unwrap();
    assert!(role["rules"].as_array().unwrap().iter().all(|r| r["resources"] == json!(["leases"])), "{role}");

    let every = render(&["-f", &all_on()]);
    assert_eq!(
        kinds(&every),
        [
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "StatefulSet"
        ]
    );
    // The webhook's peers: every replica's address, ready or not.
    let peers = every.iter().find(|o| o["metadata"]["name"] == "gitfleet-peers").unwrap();
    assert_eq!(
        (&peers["spec"]["clusterIP"], &peers["spec"]["publishNotReadyAddresses"]),
        (&json!("None"), &json!(true))
    );
    let set = workload(&every);
    assert_eq!(set["spec"]["replicas"], 3);
    assert_eq!(set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "5Gi");
    let env = &set["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.as_array().unwrap().iter().any(|e| e["name"] == "GITFLEET_GIT_TOKEN"
        && e["valueFrom"]["secretKeyRef"] == json!({"name": "fleet-git", "key": "token"})));
    let args = container_args(&every);
    for arg in [
        "--path=fleet",
        "--branch=release",
        "--ssh-key=/etc/gitfleet/git/identity",
        "--kubeconfig=/etc/gitfleet/kubeconfig/kubeconfig",
        "--signing-key=/etc/gitfleet/signing/signing-key",
        "--allowed-signers=/etc/gitfleet/allowed-signers/allowed_signers",
        "--gpg-keys=/etc/gitfleet/gpg-keys/keys.asc",
        "--leader-elect-resource-name=gitfleet-fleet",
        "--git-username=oauth2",
        "--ssh-known-hosts=/etc/gitfleet/git/known_hosts",
        "--git-ca-file=/etc/gitfleet/git-ca/ca.crt",
        "--webhook-secret-file=/etc/gitfleet/webhook/secret",
        "--webhook-peers=gitfleet-peers.gitfleet-system.svc:8080",
        "--notify=/etc/gitfleet/notify/notify.yaml",
        "--prometheus-url=http://prometheus-operated.monitoring:9090",
        "--prometheus-headers-file=/etc/gitfleet/prometheus/headers",
        "--measurement-timeout=10",
    ] {
        assert!(args.contains(&arg.to_string()), "{arg} in {args:?}");
    }
}

/// The Pod a workload's template makes (what Pod Security enforcement sees).
fn pod_of(workload: &Value) -> Value {
    let mut spec = workload["spec"]["template"]["spec"].clone();
    if let Some(claims) = workload["spec"]["volumeClaimTemplates"].as_array() {
        for claim in claims {
            let name = claim["metadata"]["name"].clone();
            spec["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": name, "persistentVolumeClaim": {"claimName": format!("{}-0", name.as_str().unwrap())}}));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gitfleet-0", "namespace": NAMESPACE, "labels": workload["spec"]["template"]["metadata"]["labels"]},
        "spec": spec,
    })
}

#[test]
fn the_rendered_chart_is_accepted_in_a_restricted_namespace() {
    let Some(h) = harness() else { return };
    // The Prometheus Operator's own ServiceMonitor CRD, for the optional ServiceMonitor.
    let crd = std::fs::read_to_string(built("tests/tools/servicemonitor-crd.sh", &[])).unwrap();
    let out = kubectl(h, "hub", &["apply", "--server-side", "-f", "-"], &crd);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kubectl(
        h,
        "hub",
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for values in [DEFAULTS.to_vec(), vec!["-f", &all_on()]] {
        let objects = render(&values);
        for object in &objects {
            let out = kubectl(
                h,
                "hub",
                &["apply", "--server-side", "--dry-run=server", "--field-manager=helm", "-f", "-"],
                &object.to_string(),
            );
            let (kind, name) = (&object["kind"], &object["metadata"]["name"]);
            assert!(out.status.success(), "{values:?}: {kind} {name} refused: {}", stderr(&out));
            assert!(!stderr(&out).contains("Warning"), "{values:?}: {kind} {name} warned: {}", stderr(&out));
        }
        // Enforcement applies to Pods: the Pod the workload makes is admitted.
        let pod = pod_of(workload(&objects));
        let out = kubectl(h, "hub", &["create", "--dry-run=server", "-f", "-"], &pod.to_string());
        assert!(out.status.success(), "{values:?}: the workload's Pod is refused: {}", stderr(&out));
        assert!(!stderr(&out).contains("Warning"), "{values:?}: {}", stderr(&out));
    }
}

/// Runs the real binary with a rendered workload's arguments, the container's
/// paths mapped to local files (`/etc/gitfleet/...`, the state folder) and
/// `--once`, the Lease on `hub`.
fn run_rendered(h: &Harness, args: &[String], files: &[(&str, &Path)], state: &Path, pod: &str) -> Output {
    let lease_kubeconfig = state.parent().unwrap().join(format!("{pod}-lease.kubeconfig"));
    h.kubeconfig_of("hub", &lease_kubeconfig);
    let mut mapped: Vec<String> = args
        .iter()
        .map(|a| {
            let mut a = a.replace("/var/lib/gitfleet", state.to_str().unwrap());
            for (from, to) in files {
                a = a.replace(from, to.to_str().unwrap());
            }
            // Loopback only here.
            a.replace("--listen=0.0.0.0:8080", "--listen=127.0.0.1:0")
        })
        .collect();
    assert!(mapped.iter().all(|a| !a.contains("/etc/gitfleet")), "every mounted file is mapped: {mapped:?}");
    mapped.push("--once".into());
    mapped.push(format!("--lease-kubeconfig={}", lease_kubeconfig.display()));
    Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args(&mapped)
        .env("POD_NAMESPACE", NAMESPACE)
        .env("POD_NAME", pod)
        .output()
        .unwrap()
}

fn lease_holder(h: &Harness, member: &str, name: &str) -> Option<String> {
    let out = kubectl(
        h,
        member,
        &["-n", NAMESPACE, "get", "lease", name, "-o", "jsonpath={.spec.holderIdentity}"],
        "",
    );
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn the_rendered_arguments_run_the_real_binary() {
    let Some(h) = harness() else { return };
    // Defaults: a repository URL, nothing else.
    let f = Fleet::example();
    let objects = render(&["--set", &format!("repo.url={}", f.origin_str()), "--set", "image.repository=r"]);
    let state = f.dir.path().join("state");
    let out = run_rendered(h, &container_args(&objects), &[], &state, "defaults-0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = f.log();
    assert_eq!(log[0].1, "gitfleet", "a status commit by gitfleet: {log:?}");
    assert!(lease_holder(h, "hub", "gitfleet").unwrap().starts_with("defaults-0_"));

    // Every option: the fleet in folder fleet/ of branch release, clusters on
    // real apiservers, signed status, verified approvals.
    let f = Fleet::new();
    let fleet = f.work.join("fleet");
    std::fs::create_dir_all(&fleet).unwrap();
    common::copy_dir(&root().join("example-repo"), &fleet);
    f.commit_all("fleet");
    git(&f.work, &["push", "-q", "origin", "HEAD:release"]);
    let dir = f.dir.path();
    let key = |name: &str| {
        let path = dir.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        path
    };
    let (ssh, signing) = (key("identity"), key("signing-key"));
    let signers = dir.join("allowed_signers");
    let public = std::fs::read_to_string(dir.join("signing-key.pub")).unwrap();
    std::fs::write(&signers, format!("lead@example.com {public}")).unwrap();
    let gpg_home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg").args(args).env("GNUPGHOME", gpg_home.path()).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", stderr(&out));
        out.stdout
    };
    gpg(&[
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Lead <lead@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let keys = dir.join("keys.asc");
    std::fs::write(&keys, gpg(&["--armor", "--export"])).unwrap();
    let members = dir.join("members.kubeconfig");
    std::fs::copy(&h.kubeconfig, &members).unwrap();
    let known_hosts = dir.join("known_hosts");
    let host_key = std::fs::read_to_string(dir.join("identity.pub")).unwrap();
    std::fs::write(&known_hosts, format!("git.example.com {host_key}")).unwrap();
    let githttp = built("tests/tools/build.sh", &["githttp"]);
    assert!(Command::new(githttp).arg("-make-certs").arg(dir).status().unwrap().success());
    let ca = dir.join("ca.pem");
    let webhook = dir.join("webhook-secret");
    std::fs::write(&webhook, "s3cret\n").unwrap();
    // A receiver that gets the run's events (the run starts in this pass).
    let sink = common::http::Sink::start(|_, _| 200);
    let notify = dir.join("notify.yaml");
    std::fs::write(&notify, format!("receivers:\n- name: ops\n  url: {}\n", sink.url("/events"))).unwrap();
    let prometheus_headers = dir.join("prometheus-headers");
    std::fs::write(&prometheus_headers, "Authorization: Bearer not-a-real-token\n").unwrap();
    let files: [(&str, &Path); 10] = [
        ("/etc/gitfleet/git/known_hosts", &known_hosts),
        ("/etc/gitfleet/git-ca/ca.crt", &ca),
        ("/etc/gitfleet/git/identity", &ssh),
        ("/etc/gitfleet/kubeconfig/kubeconfig", &members),
        ("/etc/gitfleet/signing/signing-key", &signing),
        ("/etc/gitfleet/allowed-signers/allowed_signers", &signers),
        ("/etc/gitfleet/gpg-keys/keys.asc", &keys),
        ("/etc/gitfleet/webhook/secret", &webhook),
        ("/etc/gitfleet/notify/notify.yaml", &notify),
        ("/etc/gitfleet/prometheus/headers", &prometheus_headers),
    ];
    let objects = render(&["-f", &all_on(), "--set", &format!("repo.url={}", f.origin_str())]);
    let state = dir.join("state");
    let out = run_rendered(h, &container_args(&objects), &files, &state, "every-0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = git(&f.origin, &["log", "--format=%an %s", "release"]);
    let first = log.lines().next().unwrap();
    assert!(first.starts_with("fleet-bot "), "a status commit by the configured author: {log}");
    assert!(lease_holder(h, "hub", "gitfleet-fleet").unwrap().starts_with("every-0_"));
    // The first stage's cluster got the placement's Namespace.
    let out = kubectl(h, "member2", &["get", "namespace", "test-namespace", "-o", "name"], "");
    let on_some_member = out.status.success()
        || ["member1", "member3"].iter().any(|m| {
            kubectl(h, m, &["get", "namespace", "test-namespace", "-o", "name"], "").status.success()
        });
    assert!(on_some_member, "the run applied to a member cluster");
    // `--once` sent the pass's events before it exited.
    let events: Vec<String> =
        sink.bodies("/events").iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    assert!(events.contains(&"RunStarted".to_string()), "{events:?}");
}

// ---- leader election between processes ----

/// A fleet of three clusters: staging (a 2 s wait after it), canary (an
/// approval after it), prod.
fn election_fleet() -> Fleet {
    let f = Fleet::new();
    for (name, env) in [("member1", "staging"), ("member2", "canary"), ("member3", "prod")] {
        f.write(
            &format!("clusters/{name}.yaml"),
            &format!("apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n    environment: {env}\n"),
        );
    }
    f.write("resources/test-namespace.yaml", &test_namespace("value1"));
    f.write(
        "placements/app.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: app\nspec:\n  resourceSelectors:\n    - {group: \"\", version: v1, kind: Namespace, name: test-namespace}\n  policy:\n    placementType: PickAll\n  strategy:\n    type: External\n",
    );
    let stage = |name: &str, after: &str| {
        format!(
            "    - name: {name}\n      labelSelector:\n        matchLabels:\n          environment: {name}\n{after}"
        )
    };
    f.write(
        "strategies/three.yaml",
        &format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: three\nspec:\n  stages:\n{}{}{}",
            stage("staging", "      afterStageTasks:\n        - type: TimedWait\n          waitTime: 2s\n"),
            stage("canary", "      afterStageTasks:\n        - type: Approval\n"),
            stage("prod", ""),
        ),
    );
    f.write(
        "runs/app-run.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: app-run\nspec:\n  placementName: app\n  resourceSnapshotIndex: \"0\"\n  stagedRolloutStrategyName: three\n",
    );
    f.commit_all("fleet");
    f
}

/// A `gitfleet run --leader-elect` process with short leases, its status
/// commits authored by `name`, its clusters in `clusters` (shared between the
/// processes, as real clusters are).
struct Replica {
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn start(f: &Fleet, h: &Harness, name: &str, lease_on: &str, clusters: &Path) -> Replica {
        let durations = ["--leader-elect-lease-duration", "6s", "--leader-elect-renew-deadline", "3s"];
        let retry = ["--leader-elect-retry-period", "500ms"];
        let extra: Vec<&str> = durations.into_iter().chain(retry).collect();
        Replica::spawn(f, h, name, lease_on, clusters, &lease_name(f, "lease"), &extra)
    }

    /// `gitfleet run --leader-elect` on the Lease `lease_name` (its cluster:
    /// `lease_on`), with `extra` arguments.
    fn spawn(
        f: &Fleet,
        h: &Harness,
        name: &str,
        lease_on: &str,
        clusters: &Path,
        lease_name: &str,
        extra: &[&str],
    ) -> Replica {
        let state = f.dir.path().join(name);
        std::fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(clusters, state.join("clusters")).unwrap();
        let lease = f.dir.path().join(format!("{name}-lease.kubeconfig"));
        h.kubeconfig_of(lease_on, &lease);
        let log = f.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
            .args(["run", "--repo", f.origin_str(), "--poll-interval", "1", "--author-name", name])
            .arg("--state-dir")
            .arg(&state)
            .args(["--leader-elect", "--leader-elect-resource-namespace", NAMESPACE])
            .args(["--leader-elect-resource-name", lease_name])
            .args(extra)
            .arg("--lease-kubeconfig")
            .arg(&lease)
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to end by itself.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Lease name of this test's own (tests share the harness).
fn lease_name(f: &Fleet, prefix: &str) -> String {
    let dir = f.dir.path().file_name().unwrap().to_str().unwrap().to_lowercase();
    format!("{prefix}-{}", dir.replace(['.', '_'], "-"))
}

/// Waits until `what` holds, or fails after `within` with `context`.
fn until(within: Duration, what: impl Fn() -> bool, context: impl Fn() -> String) {
    let start = Instant::now();
    while !what() {
        assert!(start.elapsed() < within, "timed out: {}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Authors of the status commits on origin's main, oldest first.
fn status_authors(f: &Fleet) -> Vec<String> {
    git(&f.origin, &["log", "--reverse", "--format=%an", "main"])
        .lines()
        .filter(|a| a.starts_with("replica-"))
        .map(str::to_string)
        .collect()
}

const REQUEST: &str = "status/clusterapprovalrequests/app-run-canary.yaml";
const RUN: &str = "status/clusterstagedupdateruns/app-run.yaml";

fn on_cluster(clusters: &Path, member: &str) -> bool {
    clusters.join(member).join("_cluster/namespace/test-namespace.yaml").exists()
}

#[test]
fn one_replica_writes_and_the_other_takes_over_after_kill_9() {
    let Some(h) = harness() else { return };
    let f = election_fleet();
    let clusters = f.dir.path().join("clusters");
    std::fs::create_dir_all(&clusters).unwrap();
    let mut a = Replica::start(&f, h, "replica-a", "hub", &clusters);
    until(Duration::from_secs(30), || a.log().contains("became the leader"), || a.log());
    let mut b = Replica::start(&f, h, "replica-b", "hub", &clusters);
    // A runs staging, waits, runs canary and opens the gate; B stands by.
    until(Duration::from_secs(60), || f.origin_file(REQUEST).is_some(), || a.log());
    assert!(
        on_cluster(&clusters, "member1") && on_cluster(&clusters, "member2"),
        "{}\n{}",
        a.log(),
        String::from_utf8_lossy(&Command::new("find").arg(&clusters).output().unwrap().stdout)
    );
    assert!(!on_cluster(&clusters, "member3"), "prod waits for the approval");
    assert!(b.log().contains("standing by"), "{}", b.log());
    assert!(!f.dir.path().join("replica-b/repo.git").exists(), "the standby did not even clone");
    let authors = status_authors(&f);
    assert!(!authors.is_empty() && authors.iter().all(|a| a == "replica-a"), "{authors:?}");

    a.signal("-KILL");
    let killed = Instant::now();
    until(Duration::from_secs(15), || b.log().contains("became the leader"), || b.log());
    assert!(
        killed.elapsed() < Duration::from_secs(3 + 5),
        "took over within the lease duration (and a retry)"
    );
    common::approve_by_merge(&f, "app-run-canary");
    until(
        Duration::from_secs(60),
        || f.origin_file(RUN).is_some_and(|s| s.contains("reason: UpdateRunSucceeded")),
        || format!("{}\n{}", b.log(), f.origin_file(RUN).unwrap_or_default()),
    );
    assert!(on_cluster(&clusters, "member3"), "prod was updated by the new leader");
    let authors = status_authors(&f);
    assert!(authors.last().is_some_and(|a| a == "replica-b"), "{authors:?}");
    // The gate was opened once (by A) and never again.
    let added = git(&f.origin, &["log", "--format=%an", "--diff-filter=A", "main", "--", REQUEST]);
    assert_eq!(added.lines().collect::<Vec<_>>(), ["replica-a"], "{added}");
    // Every stage ran, in order.
    let run = f.origin_file(RUN).unwrap();
    let (s, c, p) =
        (run.find("stageName: staging"), run.find("stageName: canary"), run.find("stageName: prod"));
    assert!(s < c && c < p && s.is_some(), "{run}");
    assert_eq!(b.exit_code(Duration::ZERO), None, "the new leader keeps running");
    let _ = a.exit_code(Duration::from_secs(1));

    // SIGTERM: the leader releases the Lease on the way out.
    b.signal("-TERM");
    assert_eq!(b.exit_code(Duration::from_secs(10)), Some(0), "{}", b.log());
    assert!(b.log().contains("released the Lease"), "{}", b.log());
    assert_eq!(
        lease_holder(h, "hub", &lease_name(&f, "lease")).as_deref(),
        Some(""),
        "no holder after the release"
    );
}

#[test]
fn a_paused_leader_writes_nothing_after_waking() {
    let Some(h) = harness() else { return };
    let f = election_fleet();
    let clusters = f.dir.path().join("clusters");
    std::fs::create_dir_all(&clusters).unwrap();
    let mut a = Replica::start(&f, h, "replica-a", "hub", &clusters);
    until(Duration::from_secs(30), || a.log().contains("became the leader"), || a.log());
    let b = Replica::start(&f, h, "replica-b", "hub", &clusters);
    until(Duration::from_secs(60), || f.origin_file(REQUEST).is_some(), || a.log());
    a.signal("-STOP");
    until(Duration::from_secs(15), || b.log().contains("became the leader"), || b.log());
    // B writes meanwhile: the approval is accepted and prod updated.
    common::approve_by_merge(&f, "app-run-canary");
    until(Duration::from_secs(60), || on_cluster(&clusters, "member3"), || b.log());
    let before = git(&f.origin, &["rev-parse", "main"]);
    a.signal("-CONT");
    assert_eq!(a.exit_code(Duration::from_secs(10)), Some(2), "the woken leader exits: {}", a.log());
    assert!(a.log().contains("leader election lost"), "{}", a.log());
    let after = git(&f.origin, &["log", "--format=%an", &format!("{}..main", before.trim())]);
    assert!(after.lines().all(|a| a != "replica-a"), "nothing from the paused leader after waking: {after}");
}

#[test]
fn the_leader_stops_when_its_lease_server_goes_away() {
    let Some(h) = harness() else { return };
    let f = election_fleet();
    let clusters = f.dir.path().join("clusters");
    std::fs::create_dir_all(&clusters).unwrap();
    let mut a = Replica::start(&f, h, "replica-a", "down", &clusters);
    until(Duration::from_secs(30), || a.log().contains("became the leader"), || a.log());
    until(Duration::from_secs(60), || f.origin_file(REQUEST).is_some(), || a.log());
    h.control("stop", "down");
    let stopped = Instant::now();
    let stopped_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Work for the leader while its Lease cannot be renewed: it may do it within
    // the renew deadline, never after.
    common::approve_by_merge(&f, "app-run-canary");
    let code = a.exit_code(Duration::from_secs(15));
    let took = stopped.elapsed();
    h.control("start", "down");
    assert_eq!(code, Some(2), "{}", a.log());
    // The renew deadline (3 s) from the last renewal (at most 1 s before the stop),
    // seen at the next check (0.5 s): well before the lease duration (6 s) would end it.
    assert!(
        took < Duration::from_secs(6),
        "stopped within the renew deadline, not the lease duration: {took:?}"
    );
    assert!(a.log().contains("leader election lost"), "{}", a.log());
    let times = git(&f.origin, &["log", "--format=%an %ct", "main"]);
    for line in times.lines().filter(|l| l.starts_with("replica-a ")) {
        let at: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(at <= stopped_at + 3 + 1, "a status commit {} s after the stop: {times}", at - stopped_at);
    }
}

/// A `gitfleet run --shards 3` replica: short leases on `hub`, signed status
/// commits authored by `name`, clusters in the shared `clusters` folder.
fn start_shard_replica(f: &Fleet, h: &Harness, name: &str, lease_name: &str, key: &Path) -> Replica {
    let durations = ["--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s"];
    let mut extra =
        vec!["--signing-key", key.to_str().unwrap(), "--shards", "3", "--leader-elect-retry-period", "1s"];
    extra.extend(durations);
    Replica::spawn(f, h, name, "hub", &f.dir.path().join("clusters"), lease_name, &extra)
}

/// Three replicas, three shards, thirty placements: each placement is
/// reconciled by the one replica holding its shard; after `kill -9` of one
/// replica the others take its shard within the lease duration and finish its
/// runs without opening a gate again.
#[test]
fn three_replicas_share_thirty_placements_over_three_shards() {
    let Some(h) = harness() else { return };
    let f = Fleet::new();
    for (name, env) in [("member1", "canary"), ("member2", "prod")] {
        f.write(
            &format!("clusters/{name}.yaml"),
            &format!("apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: {name}\n  labels:\n    environment: {env}\n"),
        );
    }
    f.commit_all("two clusters");
    std::fs::create_dir_all(f.dir.path().join("clusters")).unwrap();
    let key = common::keygen(f.dir.path(), "signing-key");
    let lease_name = lease_name(&f, "shards");
    let mut replicas: Vec<(&str, Replica)> = ["replica-a", "replica-b", "replica-c"]
        .into_iter()
        .map(|name| (name, start_shard_replica(&f, h, name, &lease_name, &key)))
        .collect();
    let holder = |shard: u32| {
        lease_holder(h, "hub", &format!("{lease_name}-shard-{shard}"))
            .and_then(|id| id.split_once('_').map(|(pod, _)| pod.to_string()))
            .filter(|pod| !pod.is_empty())
    };
    let logs = |replicas: &[(&str, Replica)]| {
        replicas.iter().map(|(n, r)| format!("--- {n}\n{}", r.log())).collect::<Vec<_>>().join("\n")
    };
    // One shard each: the fair share of three replicas.
    until(
        Duration::from_secs(60),
        || {
            let holders: std::collections::BTreeSet<Option<String>> = (0..3).map(holder).collect();
            holders.len() == 3 && holders.iter().all(Option::is_some)
        },
        || logs(&replicas),
    );
    let owner: Vec<String> = (0..3).map(|s| holder(s).unwrap()).collect();

    // Thirty placements, each with a run whose canary stage waits for approval.
    f.pull();
    f.write(
        "strategies/two.yaml",
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateStrategy\nmetadata:\n  name: two\nspec:\n  stages:\n  - name: canary\n    labelSelector: {matchLabels: {environment: canary}}\n    afterStageTasks:\n    - type: Approval\n  - name: prod\n    labelSelector: {matchLabels: {environment: prod}}\n",
    );
    for i in 0..30 {
        f.write(
            &format!("resources/ns{i:02}.yaml"),
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{i:02}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ns{i:02}\ndata:\n  v: \"1\"\n"),
        );
        f.write(
            &format!("placements/p{i:02}.yaml"),
            &format!("apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacement\nmetadata:\n  name: p{i:02}\nspec:\n  resourceSelectors:\n  - {{group: \"\", version: v1, kind: Namespace, name: ns{i:02}}}\n  strategy:\n    type: External\n"),
        );
        f.write(
            &format!("runs/r{i:02}.yaml"),
            &format!("apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterStagedUpdateRun\nmetadata:\n  name: r{i:02}\nspec:\n  placementName: p{i:02}\n  stagedRolloutStrategyName: two\n"),
        );
    }
    f.commit_all("thirty placements");
    let request = |i: usize| format!("status/clusterapprovalrequests/r{i:02}-canary.yaml");
    let run = |i: usize| format!("status/clusterstagedupdateruns/r{i:02}.yaml");
    until(
        Duration::from_secs(120),
        || (0..30).all(|i| f.origin_file(&request(i)).is_some()),
        || logs(&replicas),
    );

    // Each placement's status was written by the replica holding its shard, and by no other.
    let authors_of = |path: &str| -> Vec<String> {
        let out = git(&f.origin, &["log", "--format=%an", "main", "--", path]);
        let mut a: Vec<String> = out.lines().map(str::to_string).collect();
        a.dedup();
        a
    };
    for i in 0..30 {
        let shard = gitfleet::shard::shard_of(&format!("p{i:02}"), 3);
        let expected = &owner[shard as usize];
        for path in [run(i), request(i), format!("status/clusterresourceplacements/p{i:02}.yaml")] {
            assert_eq!(authors_of(&path), std::slice::from_ref(expected), "{path} (shard {shard})");
        }
        let canary = f.dir.path().join(format!("clusters/member1/_cluster/namespace/ns{i:02}.yaml"));
        let prod = f.dir.path().join(format!("clusters/member2/_cluster/namespace/ns{i:02}.yaml"));
        assert!(canary.exists() && !prod.exists(), "p{i:02}: canary updated, prod waits");
    }
    let per_shard: Vec<usize> = (0..3)
        .map(|s| (0..30).filter(|i| gitfleet::shard::shard_of(&format!("p{i:02}"), 3) == s).count())
        .collect();
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");

    // kill -9 the holder of shard 0; approve every gate.
    let victim = owner[0].clone();
    let index = replicas.iter().position(|(n, _)| *n == victim).unwrap();
    let (_, mut killed) = replicas.remove(index);
    killed.signal("-KILL");
    let _ = killed.exit_code(Duration::from_secs(5));
    f.pull();
    for i in 0..30 {
        let name = format!("r{i:02}-canary");
        f.write(
            &format!("approvals/{name}.yaml"),
            &gitfleet::cli::approval_yaml(&name, "testPassed", "lgtm"),
        );
    }
    f.commit_all("approve every canary");
    until(
        Duration::from_secs(120),
        || (0..30).all(|i| f.origin_file(&run(i)).is_some_and(|s| s.contains("reason: UpdateRunSucceeded"))),
        || logs(&replicas),
    );
    let successor = holder(0).expect("shard 0 taken over");
    assert_ne!(successor, victim);
    for i in (0..30).filter(|i| gitfleet::shard::shard_of(&format!("p{i:02}"), 3) == 0) {
        // Opened once, by the replica that died; finished by its successor.
        let added = git(&f.origin, &["log", "--format=%an", "--diff-filter=A", "main", "--", &request(i)]);
        assert_eq!(added.lines().collect::<Vec<_>>(), [victim.as_str()], "r{i:02}");
        assert_eq!(authors_of(&run(i)).first(), Some(&successor), "r{i:02}");
        let prod = f.dir.path().join(format!("clusters/member2/_cluster/namespace/ns{i:02}.yaml"));
        assert!(prod.exists(), "r{i:02}: prod updated by the successor");
        let doc = f.origin_file(&run(i)).unwrap();
        assert_eq!(doc.matches("approvalRequestName:").count(), 1, "{doc}");
    }
    for (name, r) in &mut replicas {
        assert_eq!(r.exit_code(Duration::ZERO), None, "{name} keeps running");
    }

    // SIGTERM: the replica releases its Leases on the way out, and the last
    // one holds every shard.
    let (stopping, mut r) = replicas.remove(0);
    let (last, _) = &replicas[0];
    r.signal("-TERM");
    assert_eq!(r.exit_code(Duration::from_secs(10)), Some(0), "{}", r.log());
    assert!(r.log().contains("released this replica's shards"), "{}", r.log());
    let out = kubectl(h, "hub", &["-n", NAMESPACE, "get", "leases", "-o", "json"], "");
    let leases: Value = serde_json::from_slice(&out.stdout).unwrap();
    let member = leases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["metadata"]["name"].as_str().unwrap().starts_with(&format!("{lease_name}-member-{stopping}-"))
        })
        .expect("the member Lease");
    assert!(member["spec"].get("holderIdentity").is_none_or(Value::is_null), "{member}");
    until(
        Duration::from_secs(10),
        || (0..3).all(|s| holder(s).as_deref() == Some(*last)),
        || logs(&replicas),
    );
}
