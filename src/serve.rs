//! `run --listen ADDR`: `/healthz` (alive), `/readyz` (the first fetch and
//! index are done) and `/metrics` (Prometheus/OpenMetrics text through
//! prometheus-client), served from a thread of their own so that a slow pass
//! never delays a probe. Label values are names (runs, placements, clusters),
//! never free text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
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
            "1 for each staged update run with its state (Initializing, Progressing, Waiting, Stopped, Succeeded, Failed, Superseded)",
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
        t
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

/// Binds `addr` (errors now, not in the thread) and serves the endpoints from
/// a thread of their own; returns the bound address.
pub fn spawn(addr: &str, telemetry: Arc<Telemetry>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let t = telemetry.clone();
    let app = Router::new()
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
            get(move || {
                let body = telemetry.metrics();
                async move { ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response() }
            }),
        );
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
