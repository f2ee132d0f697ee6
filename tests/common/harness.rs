//! Real kube-apiservers on loopback (tests/kube-apiserver), started once per
//! test binary. Skipped when Go is missing, except in CI (`CI=true`), where
//! the harness must start.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

pub struct Harness {
    child: Mutex<Child>,
    /// The harness's stdin and stdout: "stop NAME" / "start NAME" and their answers.
    control: Mutex<(ChildStdin, std::io::Lines<BufReader<ChildStdout>>)>,
    /// One context per member, named after it.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

impl Harness {
    /// One kube-apiserver per member; `None` when Go is missing outside CI.
    pub fn start(members: &[&str]) -> Option<Harness> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if Command::new("go").arg("version").output().is_err() {
            assert!(!ci, "CI needs Go to build the kube-apiserver harness");
            eprintln!("skipping: Go is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kube-apiserver/start.sh");
        let mut child = Command::new("bash")
            .args([
                script,
                "--members",
                &members.join(","),
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                // Stops with this test binary: statics are never dropped.
                "--control",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the harness");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|l| l.trim() == "ready");
        assert!(ready, "the kube-apiserver harness did not become ready");
        let stdin = child.stdin.take().unwrap();
        Some(Harness { child: Mutex::new(child), control: Mutex::new((stdin, lines)), kubeconfig, _dir: dir })
    }

    /// Stops or starts one member's kube-apiserver ("stop" / "start").
    pub fn control(&self, command: &str, member: &str) {
        let mut c = self.control.lock().unwrap();
        writeln!(c.0, "{command} {member}").unwrap();
        c.0.flush().unwrap();
        let answer = c.1.next().expect("the harness answers").unwrap();
        assert_eq!(
            answer,
            format!("{command}ped {member}").replace("startped", "started"),
            "harness: {answer}"
        );
    }

    /// A client for one member.
    pub fn client(&self, rt: &tokio::runtime::Runtime, member: &str) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let opts = kube::config::KubeConfigOptions { context: Some(member.into()), ..Default::default() };
        let config = rt.block_on(kube::Config::from_custom_kubeconfig(kc, &opts)).unwrap();
        let _guard = rt.enter();
        kube::Client::try_from(config).unwrap()
    }

    /// A kubeconfig of one member only (its context made current).
    pub fn kubeconfig_of(&self, member: &str, path: &std::path::Path) {
        let mut kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        kc.current_context = Some(member.into());
        std::fs::write(path, serde_saphyr::to_string(&kc).unwrap()).unwrap();
    }
}
