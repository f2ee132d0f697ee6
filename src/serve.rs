//! `run --listen ADDR`: `/healthz` (alive), `/readyz` (the first fetch and
//! index are done) and `/metrics` (Prometheus/OpenMetrics text through
//! prometheus-client), served from a thread of their own so that a slow pass
//! never delays a probe. Label values are names (runs, placements, clusters),
//! never free text. With `--webhook-secret-file`, also the push webhooks of
//! [`crate::hooks`] on `/hooks/<provider>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::reconcile::PassSummary;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    receiver: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushResult {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlacementLabel {
    placement: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    run: String,
    placement: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunCondition {
    run: String,
    #[prometheus(flatten)]
    condition: ConditionLabels,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    r#type: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MeasurementLabels {
    placement: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    run: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    placement: String,
    cluster: String,
}

/// What the endpoints report; shared with the reconcile loop.
pub struct Telemetry {
    registry: Registry,
    ready: AtomicBool,
    leader: Gauge,
    reconcile_duration: Histogram,
    reconcile_errors: Family<Reason, Counter>,
    git_push: Family<PushResult, Counter>,
    snapshot_index: Family<PlacementLabel, Gauge>,
    update_runs: Family<RunLabels, Gauge>,
    cluster_reachable: Family<ClusterLabel, Gauge>,
    drifted_objects: Family<DriftLabels, Gauge>,
    git_fetch_duration: Histogram,
    run_conditions: Family<RunCondition, Gauge>,
    stage_cluster_update: Family<StageLabels, Histogram, fn() -> Histogram>,
    approval_wait: Histogram,
    measurements: Family<MeasurementLabels, Counter>,
    webhook_requests: Family<WebhookLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
}

/// Seconds from a cluster update's start to its success: from a pass (a local
/// store, a small apply) to a health wait of an hour.
fn update_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 3.0, 12))
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut t = Telemetry {
            registry: Registry::default(),
            ready: AtomicBool::new(false),
            leader: Gauge::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            reconcile_errors: Family::default(),
            git_push: Family::default(),
            snapshot_index: Family::default(),
            update_runs: Family::default(),
            cluster_reachable: Family::default(),
            drifted_objects: Family::default(),
            git_fetch_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            run_conditions: Family::default(),
            stage_cluster_update: Family::new_with_constructor(update_buckets),
            // 1 s to about 3 days.
            approval_wait: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            measurements: Family::default(),
            webhook_requests: Family::default(),
            notifications: Family::default(),
        };
        let version = Version { version: env!("CARGO_PKG_VERSION").to_string() };
        t.registry.register("gitfleet_build", "gitfleet's version", Info::new(version));
        t.registry.register(
            "gitfleet_leader",
            "1 while this process reconciles (without leader election: always)",
            t.leader.clone(),
        );
        t.registry.register(
            "gitfleet_reconcile_duration_seconds",
            "Duration of one reconcile pass",
            t.reconcile_duration.clone(),
        );
        t.registry.register(
            "gitfleet_reconcile_errors",
            "Passes that failed, by reason",
            t.reconcile_errors.clone(),
        );
        t.registry.register(
            "gitfleet_git_push",
            "Status commits, by result (pushed, unchanged)",
            t.git_push.clone(),
        );
        t.registry.register(
            "gitfleet_snapshot_index",
            "The latest resource snapshot index of each placement",
            t.snapshot_index.clone(),
        );
        t.registry.register(
            "gitfleet_update_run_info",
            "1 for each staged update run with its state (Initializing, Progressing, Waiting, Stopped, Succeeded, Failed, RolledBack, Superseded)",
            t.update_runs.clone(),
        );
        t.registry.register(
            "gitfleet_cluster_reachable",
            "1 when the member cluster answered at its last attempt",
            t.cluster_reachable.clone(),
        );
        t.registry.register(
            "gitfleet_drifted_objects",
            "Objects found drifted on a cluster at the last check",
            t.drifted_objects.clone(),
        );
        t.registry.register(
            "gitfleet_git_fetch_duration_seconds",
            "Duration of fetching the tracked branch",
            t.git_fetch_duration.clone(),
        );
        t.registry.register(
            "gitfleet_update_run_condition",
            "Conditions of each staged update run: 1 for the condition's current status, 0 for the others",
            t.run_conditions.clone(),
        );
        t.registry.register(
            "gitfleet_stage_cluster_update_duration_seconds",
            "Time from a cluster's update start to its success, by run and stage",
            t.stage_cluster_update.clone(),
        );
        t.registry.register(
            "gitfleet_approval_wait_seconds",
            "Time from an approval request to its acceptance",
            t.approval_wait.clone(),
        );
        t.registry.register(
            "gitfleet_verification_measurements",
            "Verification measurements, by placement and phase (Successful, Failed, Inconclusive)",
            t.measurements.clone(),
        );
        t.registry.register(
            "gitfleet_webhook_requests",
            "Webhook requests, by provider and result (accepted, ignored, unauthorized, bad_request, too_large)",
            t.webhook_requests.clone(),
        );
        t.registry.register(
            "gitfleet_notifications",
            "Notifications, by receiver and result (delivered, failed: given up after retries or refused)",
            t.notifications.clone(),
        );
        t
    }

    /// A notification was delivered or given up.
    pub fn notification(&self, receiver: &str, result: &str) {
        let labels = NotificationLabels { receiver: receiver.into(), result: result.into() };
        self.notifications.get_or_create(&labels).inc();
    }

    /// A webhook request was answered.
    pub fn webhook(&self, provider: &str, result: &str) {
        let labels = WebhookLabels { provider: provider.into(), result: result.into() };
        self.webhook_requests.get_or_create(&labels).inc();
    }

    /// A fetch of the tracked branch took this long.
    pub fn fetch_done(&self, took: Duration) {
        self.git_fetch_duration.observe(took.as_secs_f64());
    }

    /// After the first fetch and index: `/readyz` answers 200.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records a pass that succeeded.
    pub fn pass_done(&self, took: Duration, pushed: bool, summary: &PassSummary) {
        self.reconcile_duration.observe(took.as_secs_f64());
        let result = if pushed { "pushed" } else { "unchanged" };
        self.git_push.get_or_create(&PushResult { result: result.into() }).inc();
        for (placement, index) in &summary.snapshot_index {
            self.snapshot_index
                .get_or_create(&PlacementLabel { placement: placement.clone() })
                .set(i64::from(*index));
        }
        // Runs and drift are replaced as a whole: a run or an object gone is gone.
        self.update_runs.clear();
        for run in &summary.runs {
            let labels = RunLabels {
                run: run.name.clone(),
                placement: run.placement.clone(),
                state: run.state.into(),
            };
            self.update_runs.get_or_create(&labels).set(1);
        }
        for (cluster, reachable) in &summary.clusters {
            self.cluster_reachable
                .get_or_create(&ClusterLabel { cluster: cluster.clone() })
                .set(i64::from(*reachable));
        }
        self.drifted_objects.clear();
        for ((placement, cluster), n) in &summary.drifted {
            let labels = DriftLabels { placement: placement.clone(), cluster: cluster.clone() };
            self.drifted_objects.get_or_create(&labels).set(*n as i64);
        }
        self.run_conditions.clear();
        for (run, type_, status) in &summary.run_conditions {
            for value in ["True", "False", "Unknown"] {
                let condition = ConditionLabels { r#type: type_.clone(), status: value.into() };
                let labels = RunCondition { run: run.clone(), condition };
                self.run_conditions.get_or_create(&labels).set(i64::from(status == value));
            }
        }
        for (run, stage, seconds) in &summary.cluster_updates {
            let labels = StageLabels { run: run.clone(), stage: stage.clone() };
            self.stage_cluster_update.get_or_create(&labels).observe(*seconds);
        }
        for seconds in &summary.approval_waits {
            self.approval_wait.observe(*seconds);
        }
        for (placement, phase) in &summary.measurements {
            let labels = MeasurementLabels { placement: placement.clone(), phase: phase.clone() };
            self.measurements.get_or_create(&labels).inc();
        }
    }

    /// Records a pass that failed.
    pub fn pass_failed(&self, took: Duration, reason: &str) {
        self.reconcile_duration.observe(took.as_secs_f64());
        self.reconcile_errors.get_or_create(&Reason { reason: reason.into() }).inc();
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(e) => format!("# cannot encode the metrics: {e}\n"),
        }
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition, for
/// clients that do not ask for OpenMetrics (curl, promtool), as Prometheus'
/// own client libraries negotiate: `# TYPE`/`# HELP` name the sample of a
/// counter (`_total`) and of an info metric (`_info`, a gauge), and `# UNIT`
/// and `# EOF` go. Samples are the same in both formats.
fn prometheus_text(openmetrics: &str) -> String {
    let mut types: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in openmetrics.lines() {
        if let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|r| r.split_once(' ')) {
            types.insert(name, kind);
        }
    }
    let renamed = |name: &str| match types.get(name) {
        Some(&"counter") => format!("{name}_total"),
        Some(&"info") => format!("{name}_info"),
        _ => name.to_string(),
    };
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((name, rest)) = line.strip_prefix("# TYPE ").and_then(|r| r.split_once(' ')) {
            let kind = if rest == "info" { "gauge" } else { rest };
            out.push_str(&format!("# TYPE {} {kind}\n", renamed(name)));
        } else if let Some((name, rest)) = line.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')) {
            out.push_str(&format!("# HELP {} {rest}\n", renamed(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Binds `addr` (errors now, not in the thread) and serves the endpoints from
/// a thread of their own; returns the bound address.
pub fn spawn(
    addr: &str,
    telemetry: Arc<Telemetry>,
    hooks: Option<Arc<crate::hooks::Hooks>>,
    dashboard: Option<Arc<crate::dashboard::Dashboard>>,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let t = telemetry.clone();
    let hook_telemetry = telemetry.clone();
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = t.ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let body = telemetry.metrics();
                let openmetrics = headers
                    .get(header::ACCEPT)
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| a.contains("application/openmetrics-text"));
                async move {
                    if openmetrics {
                        ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response()
                    } else {
                        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], prometheus_text(&body)).into_response()
                    }
                }
            }),
        );
    // Without a secret there are no webhook endpoints: 404.
    if let Some(hooks) = hooks {
        let handler = move |Path(provider): Path<String>,
                            headers: axum::http::HeaderMap,
                            body: Result<Bytes, BytesRejection>| {
            let (response, forward) = webhook(&hooks, &hook_telemetry, &provider, &headers, body);
            if !forward.is_empty() {
                let (body, signature) = hooks.forwarded_request();
                tokio::spawn(forward_push(forward, body, signature));
            }
            async move { response }
        };
        app = app
            .route("/hooks/{provider}", post(handler).layer(DefaultBodyLimit::max(crate::hooks::MAX_BODY)));
    }
    if let Some(d) = dashboard {
        app = app.merge(crate::dashboard::routes(d));
    }
    std::thread::Builder::new().name("gitfleet-listen".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!("the --listen server stopped: {e}");
                    }
                }
                Err(e) => tracing::error!("the --listen server cannot start: {e}"),
            }
        })
    })?;
    Ok(bound)
}

/// Answers one webhook request, counts and logs it (never its body); the
/// peers to pass an accepted push on to.
fn webhook(
    hooks: &crate::hooks::Hooks,
    telemetry: &Telemetry,
    provider: &str,
    headers: &axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (axum::response::Response, Vec<String>) {
    use crate::hooks::{Outcome, Provider};
    let Some(provider) = Provider::from_path(provider) else {
        let answer = (StatusCode::NOT_FOUND, "no such webhook: use github, gitlab, bitbucket or generic\n");
        return (answer.into_response(), Vec::new());
    };
    let outcome = match body {
        Ok(body) => hooks.handle(provider, headers, &body),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
        Err(e) => Outcome::BadRequest(e.body_text()),
    };
    telemetry.webhook(provider.name(), outcome.label());
    let delivery = ["x-github-delivery", "x-gitlab-event-uuid", "x-request-uuid", "x-request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let message = outcome.message();
    let message = message.trim_end();
    match outcome {
        Outcome::Accepted | Outcome::Ignored(_) => {
            tracing::info!(provider = provider.name(), delivery, "webhook: {message}")
        }
        _ => tracing::warn!(provider = provider.name(), delivery, "webhook refused: {message}"),
    }
    let forward = match outcome {
        Outcome::Accepted => hooks.forward_to(headers).to_vec(),
        _ => Vec::new(),
    };
    ((outcome.status(), outcome.message()).into_response(), forward)
}

/// Tells every address of every peer of a push (a signed generic request
/// marked as passed on); a peer that does not answer within 5 s is skipped.
async fn forward_push(peers: Vec<String>, body: Vec<u8>, signature: String) {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for peer in peers {
        let addresses = match tokio::net::lookup_host(&peer).await {
            Ok(a) => a.collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(%peer, "webhook: cannot resolve the peer: {e}");
                continue;
            }
        };
        for address in addresses {
            let request = axum::http::Request::post(format!("http://{address}/hooks/generic"))
                .header("content-type", "application/json")
                .header("x-signature-256", &signature)
                .header(crate::hooks::FORWARDED, "1")
                .body(Full::new(Bytes::from(body.clone())));
            let Ok(request) = request else { continue };
            match tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
                Ok(Ok(r)) => tracing::debug!(%address, status = %r.status(), "webhook passed on to a peer"),
                Ok(Err(e)) => tracing::warn!(%address, "webhook: cannot pass the push on to a peer: {e}"),
                Err(_) => tracing::warn!(%address, "webhook: the peer did not answer within 5 s"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Telemetry, prometheus_text};

    #[test]
    fn verification_measurements_are_counted_across_passes() {
        let t = Telemetry::new();
        let summary = crate::reconcile::PassSummary {
            measurements: vec![
                ("app".into(), "Successful".into()),
                ("app".into(), "Failed".into()),
                ("app".into(), "Successful".into()),
            ],
            ..Default::default()
        };
        t.pass_done(std::time::Duration::from_millis(5), true, &summary);
        let next = crate::reconcile::PassSummary {
            measurements: vec![("app".into(), "Successful".into())],
            ..Default::default()
        };
        t.pass_done(std::time::Duration::from_millis(5), true, &next);
        let text = t.metrics();
        for line in [
            "gitfleet_verification_measurements_total{placement=\"app\",phase=\"Successful\"} 3",
            "gitfleet_verification_measurements_total{placement=\"app\",phase=\"Failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn openmetrics_to_prometheus_text() {
        let om = "# HELP a_build gitfleet's version.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_push Pushes.\n# TYPE a_push counter\na_push_total{result=\"ok\"} 2\n\
                  # HELP a_took Took.\n# TYPE a_took histogram\n# UNIT a_took seconds\na_took_sum 1.0\na_took_count 1\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP a_build_info gitfleet's version.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_push_total Pushes.\n# TYPE a_push_total counter\na_push_total{result=\"ok\"} 2\n\
             # HELP a_took Took.\n# TYPE a_took histogram\na_took_sum 1.0\na_took_count 1\n"
        );
    }
}
