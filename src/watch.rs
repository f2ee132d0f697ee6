//! What wakes the reconciler between passes: a new commit in a local repository
//! (file-system notifications on its refs, debounced), SIGINT/SIGTERM, or a
//! timeout (the poll interval, or a TimedWait falling due).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{Debouncer, new_debouncer};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Quiet time after the last ref change before a pass starts (a push moves
/// its refs last, each in one rename).
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Why the reconciler woke up between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The watched repository's refs changed.
    Changed,
    /// The timeout passed.
    Timeout,
    /// SIGINT or SIGTERM: finish and exit.
    Shutdown,
}

/// Waits for the next reason to reconcile.
pub struct Waker {
    rx: Receiver<Signal>,
    tx: Sender<Signal>,
    _debouncer: Option<Debouncer<RecommendedWatcher>>,
    signals: signal_hook::iterator::Handle,
}

/// The Git folder of a local repository path (bare or with a work tree).
pub fn git_dir(location: &str) -> Option<PathBuf> {
    let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
    git2::Repository::open(path).ok().map(|r| r.path().to_path_buf())
}

impl Waker {
    /// Watches `git_dir` (when the repository is local) and the termination signals.
    pub fn new(git_dir: Option<&Path>) -> std::io::Result<Waker> {
        let (tx, rx) = channel();
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let signal_tx: Sender<Signal> = tx.clone();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                // Fails only when the waker is gone: nobody is left to tell.
                let _ = signal_tx.send(Signal::Shutdown);
            }
        });
        let debouncer = match git_dir {
            None => None,
            Some(dir) => {
                let change_tx = tx.clone();
                let mut d =
                    new_debouncer(DEBOUNCE, move |res: notify_debouncer_mini::DebounceEventResult| {
                        if res.is_ok() {
                            // Fails only when the waker is gone: nobody is left to tell.
                            let _ = change_tx.send(Signal::Changed);
                        }
                    })
                    .map_err(std::io::Error::other)?;
                // refs/ for loose refs, the Git folder itself for packed-refs.
                d.watcher()
                    .watch(&dir.join("refs"), RecursiveMode::Recursive)
                    .map_err(std::io::Error::other)?;
                d.watcher().watch(dir, RecursiveMode::NonRecursive).map_err(std::io::Error::other)?;
                Some(d)
            }
        };
        Ok(Waker { rx, tx, _debouncer: debouncer, signals: handle })
    }

    /// A handle that wakes [`Waker::wait`] from another thread (a webhook).
    pub fn sender(&self) -> Sender<Signal> {
        self.tx.clone()
    }

    /// Blocks until something happens or `timeout` passes. Changes that arrived
    /// together are merged; a shutdown always wins.
    pub fn wait(&self, timeout: Duration) -> Signal {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(w) => w,
            Err(RecvTimeoutError::Timeout) => Signal::Timeout,
            Err(RecvTimeoutError::Disconnected) => Signal::Shutdown,
        };
        let mut wake = first;
        while let Ok(w) = self.rx.try_recv() {
            if w == Signal::Shutdown {
                wake = w;
            }
        }
        wake
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.signals.close();
    }
}
