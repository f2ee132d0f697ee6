//! A `git daemon` on 127.0.0.1 serving the repositories of a folder with
//! receive-pack: a URL remote (`git://`) for tests and benchmarks, so fetches
//! and pushes go through libgit2's smart protocol.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GitDaemon {
    child: Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GitDaemon {
    /// Serves every repository under `base`, ready when this returns.
    pub fn serve(base: &Path) -> GitDaemon {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("git")
            .args(["daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        GitDaemon { child, port }
    }

    /// The URL of the repository `name` (a folder under the base).
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}
