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

/// How deliveries are tried again.
#[derive(Debug, Clone)]
pub struct Retry {
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Waits between attempts; once they are used up the event is given up.
    pub backoff: Vec<Duration>,
}

impl Default for Retry {
    /// 10 s an attempt; again after 1, 2, 4, 8 and 16 s: six attempts within
    /// about a minute and a half.
    fn default() -> Self {
        Retry {
            timeout: Duration::from_secs(10),
            backoff: [1, 2, 4, 8, 16].map(Duration::from_secs).to_vec(),
        }
    }
}

/// Counts a delivery's end by receiver name and result (delivered, failed).
pub type Count = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// One event for one receiver, and the batch it belongs to.
struct Job {
    event: Arc<Event>,
    batch: Arc<AtomicUsize>,
}

/// An HTTP(S) connector trusting the machine's roots (with none, plain
/// http still works).
pub(crate) fn https_connector() -> std::io::Result<hyper_rustls::HttpsConnector<HttpConnector>> {
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
    Ok(https)
}

/// The sending side: a queue per receiver.
pub struct Deliverer {
    queues: Vec<(Arc<Receiver>, UnboundedSender<Job>)>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

impl Deliverer {
    /// Starts the notifier's thread with one worker per receiver.
    pub fn start(receivers: Vec<Receiver>, count: Count, retry: Retry) -> std::io::Result<Deliverer> {
        let retry = Arc::new(retry);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let https = https_connector()?;
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
                    tasks.push(tokio::spawn(work(r, rx, client.clone(), count.clone(), retry.clone())));
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

async fn work(
    r: Arc<Receiver>,
    mut rx: UnboundedReceiver<Job>,
    client: HttpsClient,
    count: Count,
    retry: Arc<Retry>,
) {
    // After an event was given up, the next ones get one attempt each until
    // one goes through: a dead receiver does not pile up a queue of retries.
    let once = Retry { timeout: retry.timeout, backoff: Vec::new() };
    let mut down = false;
    while let Some(job) = rx.recv().await {
        let result = deliver(&r, &job.event, &client, if down { &once } else { &retry }).await;
        down = result.is_err();
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
async fn deliver(r: &Receiver, event: &Event, client: &HttpsClient, retry: &Retry) -> Result<usize, String> {
    let body = Bytes::from(payload(r.format, event));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = hyper::Request::post(&r.url).header("content-type", "application/json");
        for (name, value) in &r.headers {
            request = request.header(name, value);
        }
        let request =
            request.body(Full::new(body.clone())).map_err(|e| format!("the request cannot be made: {e}"))?;
        let why = match tokio::time::timeout(retry.timeout, client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    return Ok(attempt);
                }
                let again = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
                if !again {
                    return Err(format!("answered {status}"));
                }
                format!("answered {status}")
            }
            Ok(Err(e)) => format!("{e}"),
            Err(_) => format!("no answer within {:?}", retry.timeout),
        };
        match retry.backoff.get(attempt - 1) {
            Some(wait) => {
                tracing::debug!(receiver = %r.name, attempt, "notification not delivered, trying again: {why}");
                tokio::time::sleep(*wait).await;
            }
            None => return Err(format!("{why} ({attempt} attempts)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::events::EventKind;
    use std::io::{Read, Write};
    use std::sync::Mutex;

    /// A receiver on 127.0.0.1 answering every request with `status`, or
    /// never (`None`); counts the requests.
    fn receiver(status: Option<u16>) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                s.fetch_add(1, Ordering::SeqCst);
                match status {
                    Some(code) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                    None => held.push(conn),
                }
            }
        });
        (url, seen)
    }

    fn event() -> Arc<Event> {
        let source = crate::notify::events::Source { repository: "r", commit: "c" };
        let mut e =
            source.event(EventKind::RunFailed, crate::time::Time::from(0), "Run r failed".into(), &["r"]);
        e.run = Some("r".into());
        Arc::new(e)
    }

    /// 5xx and silence are tried again as long as the backoff lasts, then
    /// given up; 4xx is given up at once.
    #[test]
    fn retried_for_a_bounded_time_then_given_up() {
        let (busy, busy_seen) = receiver(Some(503));
        let (silent, silent_seen) = receiver(None);
        let (refusing, refusing_seen) = receiver(Some(400));
        let results: Arc<Mutex<Vec<(String, String)>>> = Default::default();
        let r = results.clone();
        let count: Count =
            Arc::new(move |name: &str, result: &str| r.lock().unwrap().push((name.into(), result.into())));
        let to = |name: &str, url: String| Receiver {
            name: name.into(),
            url,
            format: super::super::Format::Json,
            events: Vec::new(),
            headers: Default::default(),
        };
        let retry =
            Retry { timeout: Duration::from_millis(300), backoff: vec![Duration::from_millis(20); 2] };
        let d = Deliverer::start(
            vec![to("busy", busy), to("silent", silent), to("refusing", refusing)],
            count,
            retry,
        )
        .unwrap();
        let batch = Arc::new(AtomicUsize::new(0));
        d.send(&[event()], &batch);
        assert_eq!(batch.load(Ordering::SeqCst), 3);
        let start = std::time::Instant::now();
        while batch.load(Ordering::SeqCst) > 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "deliveries did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut results = results.lock().unwrap().clone();
        results.sort();
        assert_eq!(
            results,
            [
                ("busy".into(), "failed".into()),
                ("refusing".into(), "failed".into()),
                ("silent".into(), "failed".into())
            ]
        );
        assert_eq!(busy_seen.load(Ordering::SeqCst), 3, "three attempts: the first and two retries");
        assert_eq!(silent_seen.load(Ordering::SeqCst), 3);
        assert_eq!(refusing_seen.load(Ordering::SeqCst), 1, "a 400 is not tried again");
        // Given up before: the next event gets one attempt until one goes through.
        d.send(&[event()], &batch);
        while batch.load(Ordering::SeqCst) > 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "deliveries did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(busy_seen.load(Ordering::SeqCst), 4);
    }
}
