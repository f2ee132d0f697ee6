//! Notifications (`run --notify FILE`): events of the status gitfleet commits
//! (a run started, a stage needs an approval, a cluster failed, ...) posted to
//! HTTP receivers as JSON, Slack or Microsoft Teams messages.
//!
//! Events are read from status transitions between two status commits, so a
//! restart loses none that a status commit recorded: gitfleet keeps the last
//! status commit whose events were all delivered (or given up) in
//! `<state-dir>/notified` and starts from there. Delivery is at least once;
//! an event's `id` is the same every time it is sent.

pub mod deliver;
pub mod events;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use git2::{Oid, Repository};
use serde::Deserialize;
use serde_json::json;

pub use events::{Event, EventKind, View};

use crate::status::{Documents, PLACEMENTS, REQUESTS, RUNS, StatusCaches};

/// The payload a receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The event as it is ([`Event`]).
    #[default]
    Json,
    /// A Slack incoming webhook message.
    Slack,
    /// A Microsoft Teams incoming webhook (Workflows) message with an Adaptive Card.
    Msteams,
}

/// One receiver of `--notify FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    /// Shown in logs and in `gitfleet_notifications_total{receiver}` (default: its position).
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub format: Format,
    /// Only these events (default: all).
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// Sent with every request (an Authorization header, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Receiver {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    receivers: Vec<Receiver>,
}

/// Reads `--notify FILE`: every problem is one line naming the file and the receiver.
pub fn read_config(path: &Path) -> Result<Vec<Receiver>, String> {
    let file = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{file}: {e}"))?;
    let config: Config = crate::yaml::parse_typed(&bytes).map_err(|e| format!("{file}: {e}"))?;
    let mut receivers = config.receivers;
    for (i, r) in receivers.iter_mut().enumerate() {
        if r.name.is_empty() {
            r.name = format!("receiver-{i}");
        }
        let what = format!("{file}: receiver {}", r.name);
        let uri: hyper::Uri = r.url.parse().map_err(|e| format!("{what}: url {:?}: {e}", r.url))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("{what}: url {:?} is not an http or https URL", r.url));
        }
        for (name, value) in &r.headers {
            hyper::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{what}: {name:?} is not a header name"))?;
            hyper::header::HeaderValue::from_str(value)
                .map_err(|_| format!("{what}: header {name} has a value that cannot be sent"))?;
        }
    }
    let mut names: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("{file}: two receivers are named {}", w[0]));
    }
    Ok(receivers)
}

/// The body sent to a receiver of `format`.
pub fn payload(format: Format, event: &Event) -> Vec<u8> {
    let value = match format {
        Format::Json => return serde_json::to_vec(event).unwrap_or_default(),
        Format::Slack => json!({ "text": format!("gitfleet: {}", event.summary) }),
        Format::Msteams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": format!("gitfleet: {}", event.event.name()), "weight": "Bolder" },
                        { "type": "TextBlock", "text": event.summary, "wrap": true }
                    ]
                }
            }]
        }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Whether this replica holds a placement (with shards).
pub type Owns = Box<dyn Fn(&str) -> bool + Send>;

/// Turns status commits into events and hands them to the receivers.
pub struct Notifier {
    deliverer: deliver::Deliverer,
    repository: String,
    record: PathBuf,
    caches: StatusCaches,
    /// The last status commit seen and its documents.
    last: Option<(Option<Oid>, View)>,
    /// Status commits whose events are still being delivered, oldest first.
    pending: std::collections::VecDeque<(Oid, Arc<AtomicUsize>)>,
    /// With shards: the placements whose events this replica sends.
    owns: Option<Owns>,
}

impl Notifier {
    /// Starts delivery to `receivers`; the record of notified status commits
    /// is kept in `state_dir`.
    pub fn start(
        receivers: Vec<Receiver>,
        repository: &str,
        state_dir: &Path,
        count: deliver::Count,
    ) -> std::io::Result<Notifier> {
        Notifier::start_with(receivers, repository, state_dir, count, deliver::Retry::default())
    }

    /// [`Notifier::start`] with other time-outs and waits between attempts.
    pub fn start_with(
        receivers: Vec<Receiver>,
        repository: &str,
        state_dir: &Path,
        count: deliver::Count,
        retry: deliver::Retry,
    ) -> std::io::Result<Notifier> {
        Ok(Notifier {
            deliverer: deliver::Deliverer::start(receivers, count, retry)?,
            repository: crate::source::redacted(repository),
            record: state_dir.join("notified"),
            caches: StatusCaches::default(),
            last: None,
            pending: Default::default(),
            owns: None,
        })
    }

    /// The documents of a status commit.
    fn view(&mut self, repo: &Repository, root: &str, commit: Option<Oid>) -> Result<View, git2::Error> {
        let limit = crate::yaml::status_limit();
        let c = &mut self.caches;
        let runs = Documents::read(repo, commit, root, RUNS, limit, &mut c.runs)?;
        let requests = Documents::read(repo, commit, root, REQUESTS, limit, &mut c.requests)?;
        let placements = Documents::read(repo, commit, root, PLACEMENTS, limit, &mut c.placements)?;
        Ok(View { runs: runs.now, requests: requests.now, placements: placements.now })
    }

    /// A pass went from status commit `from` to `to`: sends the events in
    /// between. The first time, the starting point is the recorded commit
    /// of an earlier process if the repository has it, else `from`.
    pub fn observe(
        &mut self,
        repo: &Repository,
        status_root: &str,
        from: Option<Oid>,
        to: Oid,
    ) -> Result<usize, git2::Error> {
        self.settle();
        if self.last.is_none() {
            let recorded = std::fs::read_to_string(&self.record)
                .ok()
                .and_then(|s| Oid::from_str(s.trim()).ok())
                .filter(|c| repo.find_commit(*c).is_ok());
            let start = recorded.or(from);
            let view = self.view(repo, status_root, start)?;
            self.last = Some((start, view));
        }
        let Some((last_commit, last_view)) = self.last.take() else { return Ok(0) };
        if last_commit == Some(to) {
            self.last = Some((last_commit, last_view));
            return Ok(0);
        }
        let view = match self.view(repo, status_root, Some(to)) {
            Ok(v) => v,
            Err(e) => {
                // Tried again from the same point next time.
                self.last = Some((last_commit, last_view));
                return Err(e);
            }
        };
        let commit = to.to_string();
        let source = events::Source { repository: &self.repository, commit: &commit };
        let owned = |e: &Event| match (&self.owns, &e.placement) {
            (Some(owns), Some(p)) => owns(p),
            _ => true,
        };
        let found: Vec<Arc<Event>> =
            events::between(&last_view, &view, &source).into_iter().filter(owned).map(Arc::new).collect();
        for e in &found {
            tracing::info!(event = e.event.name(), id = %e.id, "{}", e.summary);
        }
        let batch = Arc::new(AtomicUsize::new(0));
        self.deliverer.send(&found, &batch);
        self.pending.push_back((to, batch));
        self.last = Some((Some(to), view));
        self.settle();
        Ok(found.len())
    }

    /// After a pass: the events between the status it started from and the
    /// status it left (its own commit, or the same status when it wrote none).
    pub fn observe_pass(
        &mut self,
        repo: &Repository,
        outcome: &crate::reconcile::PassOutcome,
    ) -> Result<usize, git2::Error> {
        match outcome.commit.or(outcome.status_from) {
            Some(now) => self.observe(repo, &outcome.status_root, outcome.status_from, now),
            None => Ok(0),
        }
    }

    /// With shards: only events of the placements this replica holds are
    /// sent (every replica reads every status commit).
    pub fn only_placements(&mut self, owns: Option<Owns>) {
        self.owns = owns;
    }

    /// Deliveries not finished yet.
    pub fn pending(&self) -> usize {
        self.pending.iter().map(|(_, b)| b.load(Ordering::SeqCst)).sum()
    }

    /// Records the newest status commit all of whose events (and all before
    /// it) are delivered or given up.
    fn settle(&mut self) {
        let mut done = None;
        while let Some((commit, batch)) = self.pending.front() {
            if batch.load(Ordering::SeqCst) > 0 {
                break;
            }
            done = Some(*commit);
            self.pending.pop_front();
        }
        if let Some(c) = done
            && let Err(e) = crate::files::write_atomically(&self.record, format!("{c}\n").as_bytes())
        {
            tracing::warn!("{}: {e}", self.record.display());
        }
    }

    /// Waits up to `limit` for the deliveries under way (before exiting).
    pub fn flush(&mut self, limit: Duration) {
        let start = std::time::Instant::now();
        loop {
            self.settle();
            if self.pending.is_empty() || start.elapsed() >= limit {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_file_and_receiver() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.yaml");
        let check = |text: &str| {
            std::fs::write(&path, text).unwrap();
            read_config(&path)
        };
        let ok = check("receivers:\n- name: ops\n  url: https://hooks.slack.com/services/T/B/X\n  format: slack\n  events: [ApprovalRequested, RunFailed]\n- url: http://127.0.0.1:9/\n").unwrap();
        assert_eq!(ok[0].format, Format::Slack);
        assert!(ok[0].wants(EventKind::RunFailed) && !ok[0].wants(EventKind::RunStarted));
        assert_eq!(ok[1].name, "receiver-1");
        assert!(ok[1].wants(EventKind::DriftDetected));
        let err = check("receivers:\n- name: ops\n  url: ftp://x/\n").unwrap_err();
        assert!(
            err.ends_with("notify.yaml: receiver ops: url \"ftp://x/\" is not an http or https URL"),
            "{err}"
        );
        let err = check("receivers:\n- url: http://x/\n  events: [RunExploded]\n").unwrap_err();
        assert!(err.contains("notify.yaml") && err.contains("RunExploded"), "{err}");
        let err = check("receivers:\n- url: http://x/\n  format: discord\n").unwrap_err();
        assert!(err.contains("discord"), "{err}");
        let err =
            check("receivers:\n- {name: a, url: 'http://x/'}\n- {name: a, url: 'http://y/'}\n").unwrap_err();
        assert!(err.ends_with("two receivers are named a"), "{err}");
    }
}
