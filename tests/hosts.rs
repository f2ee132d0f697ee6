//! Real Git servers on loopback: HTTPS (git http-backend behind a TLS web
//! server with basic authentication and a certificate from a CA made here,
//! tests/tools/githttp) and SSH (OpenSSH's sshd with its own host key and
//! authorized_keys, tests/tools/sshd.sh). `gitfleet run --once` fetches from
//! them and pushes status to them.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{Fleet, git, stderr};

const TOKEN: &str = "glpat-s3cret-token-0123456789";

/// Go is there, or the test is skipped (never in CI).
fn go() -> bool {
    let present = Command::new("go").arg("version").output().is_ok();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(present || !ci, "CI needs Go to build the HTTPS server");
    present
}

fn tool(script: &str, args: &[&str]) -> PathBuf {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A server process, stopped on drop.
struct Server {
    child: Child,
    /// The repository's URL on it.
    url: String,
    /// The served bare repository.
    repo: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example fleet, served as a bare repository under `dir/repos/fleet.git`.
fn served_repo(dir: &Path) -> PathBuf {
    let f = Fleet::example();
    let repo = dir.join("repos/fleet.git");
    std::fs::create_dir_all(dir.join("repos")).unwrap();
    git(dir, &["clone", "-q", "--bare", f.origin.to_str().unwrap(), repo.to_str().unwrap()]);
    git(&repo, &["config", "http.receivepack", "true"]);
    repo
}

/// git http-backend over HTTPS with basic authentication (`bot` / TOKEN).
fn https_server() -> Server {
    let githttp = tool("tests/tools/build.sh", &["githttp"]);
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(&githttp).arg("-make-certs").arg(dir.path()).status().unwrap();
    assert!(made.success());
    let repo = served_repo(dir.path());
    let mut child = Command::new(&githttp)
        .arg("-root")
        .arg(dir.path().join("repos"))
        .arg("-cert")
        .arg(dir.path().join("server.pem"))
        .arg("-key")
        .arg(dir.path().join("server-key.pem"))
        .args(["-user", "bot", "-password", TOKEN])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening ").expect("the server says where it listens").to_string();
    Server { child, url: format!("{base}/fleet.git"), repo, dir }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// OpenSSH's sshd on a loopback port: its own host key, the client key
/// `dir/client` authorized, the current user logging in.
fn ssh_server() -> Option<(Server, u16)> {
    let sshd = tool("tests/tools/sshd.sh", &[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("host_key"));
    // An ECDSA host key too, as most servers have (ssh-keyscan lists both).
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(d.join("host_key_ecdsa"))
        .output()
        .unwrap();
    assert!(out.status.success());
    keygen(&d.join("client"));
    std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
    let repo = served_repo(d);
    let user =
        String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let port = free_port();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nHostKey {0}/host_key_ecdsa\nAuthorizedKeysFile {0}/authorized_keys\n\
             PidFile {0}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n",
            d.display()
        ),
    )
    .unwrap();
    // Privilege separation needs this folder (it exists where sshd runs as a service).
    if nix_root() {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let mut child = Command::new(&sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(d.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("sshd stopped before listening");
        }
        if line.contains("Server listening on") {
            break;
        }
    }
    // Keep reading its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in err.lines() {});
    let url = format!("ssh://{user}@127.0.0.1:{port}{}", repo.display());
    Some((Server { child, url, repo, dir }, port))
}

fn nix_root() -> bool {
    String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

/// `gitfleet run --once` on `url` with these extra arguments.
fn run_once(url: &str, state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitfleet"));
    cmd.args(["run", "--once", "--repo", url, "--state-dir", state.to_str().unwrap()]).args(extra);
    cmd.env_remove("GITFLEET_GIT_TOKEN").env_remove("SSL_CERT_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The author of the served repository's newest commit on main.
fn last_author(repo: &Path) -> String {
    git(repo, &["log", "-1", "--format=%an", "main"]).trim().to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn https_with_a_token_fetches_and_pushes_and_refuses_what_it_should() {
    if !go() {
        return;
    }
    let s = https_server();
    let d = s.dir.path();
    let ca = d.join("ca.pem");
    let token_file = d.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let ca_arg = ca.to_str().unwrap();
    let token_arg = token_file.to_str().unwrap();

    // No CA: a clear certificate error, exit 2.
    let out = run_once(&s.url, &d.join("s1"), &["--git-token-file", token_arg, "--git-username", "bot"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("the server's TLS certificate is not trusted ("), "{}", stderr(&out));
    assert!(stderr(&out).contains("--git-ca-file FILE or SSL_CERT_FILE"), "{}", stderr(&out));

    // The wrong token: authentication failed, exit 2, the token nowhere.
    let out = run_once(
        &s.url,
        &d.join("s2"),
        &["--git-token", "wrong-token", "--git-username", "bot", "--git-ca-file", ca_arg],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("authentication failed: the server refused the token"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-token"));

    // The right token from a file and the CA: fetch, then the status push.
    let state = d.join("s3");
    let out = run_once(
        &s.url,
        &state,
        &["--git-token-file", token_arg, "--git-username", "bot", "--git-ca-file", ca_arg],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_author(&s.repo), "gitfleet", "the status commit reached the server");
    assert!(!stderr(&out).contains(TOKEN));
    for file in files_under(&state) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(TOKEN), "the token is in {}", file.display());
    }

    // SSL_CERT_FILE is honoured, and the token from the environment.
    let out = run_once(
        &s.url,
        &d.join("s4"),
        &["--git-username", "bot"],
        &[("SSL_CERT_FILE", ca_arg), ("GITFLEET_GIT_TOKEN", TOKEN)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn ssh_checks_the_host_key_and_the_client_key() {
    let Some((s, port)) = ssh_server() else { return };
    let d = s.dir.path();
    let key = d.join("client");
    let key_arg = key.to_str().unwrap();
    let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let known = d.join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{port} {}\n", host_key.join(" "))).unwrap();
    let known_arg = known.to_str().unwrap();

    // The right key and the host's key known: fetch and push.
    let out = run_once(&s.url, &d.join("s1"), &["--ssh-key", key_arg, "--ssh-known-hosts", known_arg], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_author(&s.repo), "gitfleet");

    // What `ssh-keyscan` prints (ECDSA and ed25519 lines), as the README says to get it.
    let scanned = Command::new("ssh-keyscan").args(["-p", &port.to_string(), "127.0.0.1"]).output().unwrap();
    let scanned_text = String::from_utf8(scanned.stdout).unwrap();
    assert!(scanned_text.contains("ecdsa-sha2-nistp256"), "{scanned_text}");
    let keyscan = d.join("known_hosts_keyscan");
    std::fs::write(&keyscan, &scanned_text).unwrap();
    let out = run_once(
        &s.url,
        &d.join("s0"),
        &["--ssh-key", key_arg, "--ssh-known-hosts", keyscan.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Hashed entries, as `ssh-keygen -H` writes them.
    let hashed = d.join("known_hosts_hashed");
    std::fs::copy(&known, &hashed).unwrap();
    let out = Command::new("ssh-keygen").arg("-H").arg("-f").arg(&hashed).output().unwrap();
    assert!(out.status.success() && std::fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    let out = run_once(
        &s.url,
        &d.join("s2"),
        &["--ssh-key", key_arg, "--ssh-known-hosts", hashed.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A key the server does not know.
    let stranger = d.join("stranger");
    keygen(&stranger);
    let out = run_once(
        &s.url,
        &d.join("s3"),
        &["--ssh-key", stranger.to_str().unwrap(), "--ssh-known-hosts", known_arg],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authentication failed: the server refused the SSH key"),
        "{}",
        stderr(&out)
    );

    // The host's key changed: refused, with the offered key's fingerprint.
    let fingerprint = String::from_utf8(
        Command::new("ssh-keygen").arg("-l").arg("-f").arg(d.join("host_key.pub")).output().unwrap().stdout,
    )
    .unwrap();
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();
    let other = d.join("other_host");
    keygen(&other);
    let other_pub = std::fs::read_to_string(d.join("other_host.pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed = d.join("known_hosts_changed");
    std::fs::write(&changed, format!("[127.0.0.1]:{port} {}\n", other_key.join(" "))).unwrap();
    let out = run_once(
        &s.url,
        &d.join("s4"),
        &["--ssh-key", key_arg, "--ssh-known-hosts", changed.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("SSH host key of [127.0.0.1]:{port} changed: offered {fingerprint}")),
        "{text}"
    );

    // Unknown host: another host's entry only.
    let unknown = d.join("known_hosts_unknown");
    std::fs::write(&unknown, format!("git.example.com {}\n", host_key.join(" "))).unwrap();
    let out = run_once(
        &s.url,
        &d.join("s5"),
        &["--ssh-key", key_arg, "--ssh-known-hosts", unknown.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("is unknown: offered {fingerprint}")), "{}", stderr(&out));

    // No known_hosts at all (a container): refused, saying how to get the key.
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = run_once(&s.url, &d.join("s6"), &["--ssh-key", key_arg], &[("HOME", home.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("no known_hosts file") && text.contains(&format!("ssh-keyscan -p {port} 127.0.0.1")),
        "{text}"
    );

    // The insecure flag accepts it, with a warning.
    let out = run_once(
        &s.url,
        &d.join("s7"),
        &["--ssh-key", key_arg, "--ssh-insecure-skip-host-key-check"],
        &[("HOME", home.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("any SSH host key is accepted"));
}

/// Installs `script` as the served repository's pre-receive hook.
fn hook(repo: &Path, script: &str) {
    let path = repo.join("hooks/pre-receive");
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `GET /metrics` on 127.0.0.1:port, or "" while nothing listens.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = write!(conn, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    text
}

/// A push the server refuses (pre-receive hooks, as hosts enforce "require
/// signed commits" and branch protection) is reported in the server's words,
/// logged once, counted in /metrics; a signing key or a status branch gets
/// gitfleet's status through.
#[test]
fn the_servers_refusals_are_reported_in_its_own_words() {
    if !go() {
        return;
    }
    let s = https_server();
    let d = s.dir.path();
    let (ca, token) = (d.join("ca.pem"), d.join("token"));
    std::fs::write(&token, TOKEN).unwrap();
    let https = [
        "--git-token-file",
        token.to_str().unwrap(),
        "--git-username",
        "bot",
        "--git-ca-file",
        ca.to_str().unwrap(),
    ];

    // Signed commits only, checked with git verify-commit against allowed signers.
    keygen(&d.join("signing"));
    let public = std::fs::read_to_string(d.join("signing.pub")).unwrap();
    std::fs::write(d.join("allowed_signers"), format!("gitfleet@localhost {public}")).unwrap();
    hook(
        &s.repo,
        &format!(
            "while read old new ref; do\n  for c in $(git rev-list \"$old..$new\" 2>/dev/null || git rev-list \"$new\"); do\n    \
             if ! git -c gpg.ssh.allowedSignersFile={} verify-commit \"$c\" >/dev/null 2>&1; then\n      \
             echo \"GH006: Protected branch update failed for $ref: commit $c is not signed by an allowed key\" >&2\n      exit 1\n    fi\n  done\ndone\n",
            d.join("allowed_signers").display()
        ),
    );
    let out = run_once(&s.url, &d.join("s1"), &https, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("push rejected by the server: pre-receive hook declined: GH006: Protected branch update failed for refs/heads/main"),
        "{text}"
    );
    let signing = d.join("signing");
    let signed = [&https[..], &["--signing-key", signing.to_str().unwrap()]].concat();
    let out = run_once(&s.url, &d.join("s2"), &signed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(last_author(&s.repo), "gitfleet");

    // No pushes from the bot to main: refused, once in the log, in /metrics; a status branch works.
    hook(
        &s.repo,
        "while read old new ref; do\n  if [ \"$ref\" = refs/heads/main ] && git log --format=%an \"$old..$new\" | grep -qx gitfleet; then\n    \
         echo \"main is protected: bots may not push to it\" >&2\n    exit 1\n  fi\ndone\n",
    );
    let work = d.join("work");
    git(d, &["clone", "-q", s.repo.to_str().unwrap(), work.to_str().unwrap()]);
    std::fs::write(work.join("resources/extra.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: test-namespace\ndata:\n  a: b\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "a change to record"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = d.join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_gitfleet"))
        .args([
            "run",
            "--repo",
            &s.url,
            "--state-dir",
            d.join("s3").to_str().unwrap(),
            "--poll-interval",
            "1",
            "--listen",
            &listen,
        ])
        .args(https)
        .env_remove("SSL_CERT_FILE")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let counted = |n: u32| {
        scrape(port).contains(&format!("gitfleet_reconcile_errors_total{{reason=\"push_rejected\"}} {n}"))
    };
    while !counted(3) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(TOKEN), "the token is in the daemon's log");
    let refusals: Vec<&str> = text.lines().filter(|l| l.contains("push rejected by the server")).collect();
    assert_eq!(refusals.len(), 1, "logged once for three refused passes:\n{text}");
    assert!(
        refusals[0].contains("main is protected: bots may not push to it")
            && refusals[0].contains("set statusBranch in gitfleet.yaml"),
        "{text}"
    );
    let settings = std::fs::read_to_string(work.join("gitfleet.yaml")).unwrap();
    std::fs::write(work.join("gitfleet.yaml"), format!("{settings}statusBranch: gitfleet-status\n")).unwrap();
    git(&work, &["commit", "-q", "-am", "status on its own branch"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let out = run_once(&s.url, &d.join("s4"), &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(git(&s.repo, &["log", "-1", "--format=%an", "gitfleet-status"]).trim(), "gitfleet");
}

/// What the proxy does to connections.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Pass bytes both ways.
    Pass,
    /// Close the connection once this many bytes (all connections together)
    /// went from the server to gitfleet: a server gone mid-fetch.
    CutDown(usize),
    /// The same for bytes from gitfleet to the server: gone mid-push.
    CutUp(usize),
    /// Accept and never answer.
    Hang,
}

/// A TCP proxy on a loopback port to a server, counting bytes each way.
struct Proxy {
    port: u16,
    mode: std::sync::Arc<std::sync::Mutex<Mode>>,
    /// Bytes (down, up) since the last reset.
    bytes: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let bytes = Arc::new(Mutex::new((0, 0)));
        let (m, b) = (mode.clone(), bytes.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let mode = *m.lock().unwrap();
                if mode == Mode::Hang {
                    // Held open, never answered, until the test ends.
                    std::thread::spawn(move || {
                        let _held = client;
                        std::thread::sleep(std::time::Duration::from_secs(600));
                    });
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else { continue };
                for (from, to, down) in [
                    (server.try_clone().unwrap(), client.try_clone().unwrap(), true),
                    (client.try_clone().unwrap(), server.try_clone().unwrap(), false),
                ] {
                    let b = b.clone();
                    std::thread::spawn(move || pump(from, to, down, mode, b));
                }
            }
        });
        Proxy { port, mode, bytes }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        *self.bytes.lock().unwrap() = (0, 0);
    }

    fn bytes(&self) -> (usize, usize) {
        *self.bytes.lock().unwrap()
    }
}

/// Copies one direction, counting; closes both ends at the cut.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    down: bool,
    mode: Mode,
    bytes: std::sync::Arc<std::sync::Mutex<(usize, usize)>>,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let total = {
            let mut b = bytes.lock().unwrap();
            let slot = if down { &mut b.0 } else { &mut b.1 };
            *slot += n;
            *slot
        };
        let cut = match mode {
            Mode::CutDown(at) if down => total >= at,
            Mode::CutUp(at) if !down => total >= at,
            _ => false,
        };
        if cut {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Status commits (by gitfleet) on the served repository's main.
fn status_commits(repo: &Path) -> usize {
    git(repo, &["log", "--format=%an", "main"]).lines().filter(|a| *a == "gitfleet").count()
}

#[test]
fn faults_on_the_way_over_https() {
    if !go() {
        return;
    }
    let s = https_server();
    let d = s.dir.path();
    let (ca, token) = (d.join("ca.pem"), d.join("token"));
    std::fs::write(&token, TOKEN).unwrap();
    let port: u16 = s.url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(port);
    let url = s.url.replace(&format!(":{port}/"), &format!(":{}/", proxy.port));
    let https = [
        "--git-token-file",
        token.to_str().unwrap(),
        "--git-username",
        "bot",
        "--git-ca-file",
        ca.to_str().unwrap(),
        "--git-timeout",
        "2",
    ];

    // A server that accepts and never answers: the timeout ends the wait.
    proxy.set(Mode::Hang);
    let started = std::time::Instant::now();
    let out = run_once(&url, &d.join("hang"), &https, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "gave up: {:?}", started.elapsed());
    assert!(stderr(&out).contains(&format!("fetch main from {url}")), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the Git server did not answer in time (--git-timeout)"),
        "{}",
        stderr(&out)
    );

    // What a whole run moves, to cut it in the middle of its fetch and of its push.
    let state = d.join("state");
    let scratch = d.join("scratch");
    proxy.set(Mode::Pass);
    let out = run_once(&url, &scratch, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, up) = proxy.bytes();
    // The same again has nothing to push: what the fetch alone moves.
    proxy.set(Mode::Pass);
    let out = run_once(&url, &scratch, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (fetch_down, fetch_up) = proxy.bytes();
    git(&s.repo, &["update-ref", "refs/heads/main", "main~1"]);
    assert_eq!(status_commits(&s.repo), 0);

    proxy.set(Mode::CutDown(fetch_down / 2));
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(2), "cut mid-fetch: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("main from {url}")), "{}", stderr(&out));
    // Half-way through what the push adds.
    proxy.set(Mode::CutUp(fetch_up + (up - fetch_up) / 2));
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(2), "cut mid-push: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("push status to {url}")), "{}", stderr(&out));
    // The server back: one status commit, none lost, none twice.
    proxy.set(Mode::Pass);
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(status_commits(&s.repo), 1, "{}", git(&s.repo, &["log", "--format=%an %s", "main"]));

    // Force-pushed on the server: the status is recorded again on the new history, once.
    let work = d.join("work");
    git(d, &["clone", "-q", s.repo.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(work.join("README.md"), "rewritten\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "rewritten history"]);
    git(&work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    assert_eq!(status_commits(&s.repo), 0);
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_once(&url, &state, &https, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(status_commits(&s.repo), 1, "{}", git(&s.repo, &["log", "--format=%an %s", "main"]));
}

#[test]
fn faults_on_the_way_over_ssh() {
    let Some((s, sshd_port)) = ssh_server() else { return };
    let d = s.dir.path();
    let proxy = Proxy::start(sshd_port);
    let url = s.url.replace(&format!(":{sshd_port}/"), &format!(":{}/", proxy.port));
    let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
    let host_key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let known = d.join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {}\n", proxy.port, host_key.join(" "))).unwrap();
    let key = d.join("client");
    let ssh = [
        "--ssh-key",
        key.to_str().unwrap(),
        "--ssh-known-hosts",
        known.to_str().unwrap(),
        "--git-timeout",
        "2",
    ];

    proxy.set(Mode::Hang);
    let started = std::time::Instant::now();
    let out = run_once(&url, &d.join("hang"), &ssh, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "gave up: {:?}", started.elapsed());
    assert!(
        stderr(&out).contains("the Git server did not answer in time (--git-timeout)"),
        "{}",
        stderr(&out)
    );

    let state = d.join("state");
    proxy.set(Mode::Pass);
    let out = run_once(&url, &d.join("scratch"), &ssh, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, up) = proxy.bytes();
    proxy.set(Mode::Pass);
    let out = run_once(&url, &d.join("scratch"), &ssh, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (fetch_down, fetch_up) = proxy.bytes();
    git(&s.repo, &["update-ref", "refs/heads/main", "main~1"]);
    proxy.set(Mode::CutDown(fetch_down / 2));
    let out = run_once(&url, &state, &ssh, &[]);
    assert_eq!(out.status.code(), Some(2), "cut mid-fetch: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("fetch main from {url}")), "{}", stderr(&out));
    proxy.set(Mode::CutUp(fetch_up + (up - fetch_up) / 2));
    let out = run_once(&url, &state, &ssh, &[]);
    assert_eq!(out.status.code(), Some(2), "cut mid-push: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("push status to {url}")), "{}", stderr(&out));
    proxy.set(Mode::Pass);
    for _ in 0..2 {
        let out = run_once(&url, &state, &ssh, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(status_commits(&s.repo), 1, "{}", git(&s.repo, &["log", "--format=%an %s", "main"]));

    let work = d.join("work");
    git(d, &["clone", "-q", s.repo.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(work.join("README.md"), "rewritten\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "rewritten history"]);
    git(&work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    for _ in 0..2 {
        let out = run_once(&url, &state, &ssh, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(status_commits(&s.repo), 1, "{}", git(&s.repo, &["log", "--format=%an %s", "main"]));
}
