//! Sending events: one queue per receiver, worked through in order by a task
//! of its own on the notifier's thread, so a slow or dead receiver holds up
//! only itself and never a pass. A 5xx answer, a time-out or a refused
//! connection is tried again with backoff for a bounded time; then the event
//! is given up with a warning.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{Receiver, payload};
use crate::notify::events::Event;

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between attempts: six attempts within about a minute and a half.
pub const BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Counts a delivery's end by receiver name and result (delivered, failed).
pub type Count = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// One event for one receiver, and the batch it belongs to.
struct Job {
    event: Arc<Event>,
    batch: Arc<AtomicUsize>,
}

/// The sending side: a queue per receiver.
pub struct Deliverer {
    queues: Vec<(Arc<Receiver>, UnboundedSender<Job>)>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

impl Deliverer {
    /// Starts the notifier's thread with one worker per receiver.
    pub fn start(receivers: Vec<Receiver>, count: Count) -> std::io::Result<Deliverer> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .or_else(|_| {
                // No CA bundle on the machine: plain http receivers still work.
                Ok::<_, std::io::Error>(
                    hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    ),
                )
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client: HttpsClient = Client::builder(TokioExecutor::new()).build(https);
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for r in receivers {
            let r = Arc::new(r);
            let (tx, rx) = unbounded_channel();
            queues.push((r.clone(), tx));
            workers.push((r, rx));
        }
        std::thread::Builder::new().name("gitfleet-notify".into()).spawn(move || {
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (r, rx) in workers {
                    tasks.push(tokio::spawn(work(r, rx, client.clone(), count.clone())));
                }
                for t in tasks {
                    let _ = t.await;
                }
            })
        })?;
        Ok(Deliverer { queues })
    }

    /// Queues events for the receivers that want them; `batch` counts the
    /// deliveries still to finish.
    pub fn send(&self, events: &[Arc<Event>], batch: &Arc<AtomicUsize>) {
        for (r, tx) in &self.queues {
            for e in events.iter().filter(|e| r.wants(e.event)) {
                batch.fetch_add(1, Ordering::SeqCst);
                if tx.send(Job { event: e.clone(), batch: batch.clone() }).is_err() {
                    batch.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

async fn work(r: Arc<Receiver>, mut rx: UnboundedReceiver<Job>, client: HttpsClient, count: Count) {
    while let Some(job) = rx.recv().await {
        let result = deliver(&r, &job.event, &client).await;
        match &result {
            Ok(attempts) => {
                tracing::debug!(receiver = %r.name, event = job.event.event.name(), id = %job.event.id, attempts, "notification delivered");
                count(&r.name, "delivered");
            }
            Err(why) => {
                tracing::warn!(receiver = %r.name, event = job.event.event.name(), id = %job.event.id, "notification given up: {why}");
                count(&r.name, "failed");
            }
        }
        job.batch.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends one event, trying again on 5xx, 408, 429, time-outs and connection
/// errors; the number of attempts it took, or why it was given up.
async fn deliver(r: &Receiver, event: &Event, client: &HttpsClient) -> Result<usize, String> {
    let body = Bytes::from(payload(r.format, event));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = hyper::Request::post(&r.url).header("content-type", "application/json");
        for (name, value) in &r.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body.clone())).map_err(|e| format!("{}: {e}", r.url))?;
        let why = match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    return Ok(attempt);
                }
                let again = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
                if !again {
                    return Err(format!("{} answered {status}", r.url));
                }
                format!("{} answered {status}", r.url)
            }
            Ok(Err(e)) => format!("{}: {e}", r.url),
            Err(_) => format!("{}: no answer within {} s", r.url, ATTEMPT_TIMEOUT.as_secs()),
        };
        match BACKOFF.get(attempt - 1) {
            Some(wait) => {
                tracing::debug!(receiver = %r.name, attempt, "notification not delivered, trying again: {why}");
                tokio::time::sleep(*wait).await;
            }
            None => return Err(format!("{why} ({attempt} attempts)")),
        }
    }
}
