//! Leader election on a `coordination.k8s.io/v1` Lease, for running several
//! replicas of `gitfleet run`: only the holder reconciles.
//!
//! kube-lease-manager acquires and renews the Lease. Next to it, this module
//! reads the Lease every retry period and keeps the monotonic time of the last
//! renewal it saw held by this process. The leader is valid while that time is
//! less than the renew deadline ago; [`Leadership::fence`] is called before
//! every cluster write and every push, and once the leader is not valid it
//! stops the process, as Kubernetes' own components do: a renewal failing past
//! the deadline (the apiserver unreachable), another holder, or a process that
//! was paused (SIGSTOP) and wakes after its lease ran out all end with exit
//! code 2 before anything more is written. Kubernetes then restarts the pod,
//! which stands by until it holds the Lease again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::LeaseManagerBuilder;

/// Exit code of a process that lost its lease (an environment error).
pub const LOST_EXIT_CODE: i32 = 2;

/// How to take part in the election.
#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    /// This process's identity in the Lease (`holderIdentity`).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// Reach the Lease's cluster through this kubeconfig (default: in-cluster).
    pub kubeconfig: Option<PathBuf>,
}

/// Why the election settings or the Lease's cluster cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("--leader-elect: {0}")]
    Settings(String),
    #[error("--leader-elect: the Lease's cluster: {0}")]
    Cluster(String),
}

impl Election {
    /// Checks the durations as Kubernetes' components do, and as the Lease
    /// counts them: in whole seconds.
    pub fn validate(&self) -> Result<(), ElectionError> {
        let (d, r, p) = (self.lease_duration, self.renew_deadline, self.retry_period);
        if p.is_zero() || r <= p || d <= r {
            return Err(ElectionError::Settings(format!(
                "needs lease duration > renew deadline > retry period > 0 (got {}, {}, {})",
                show(d),
                show(r),
                show(p)
            )));
        }
        if d.subsec_nanos() != 0 || d < Duration::from_secs(2) {
            return Err(ElectionError::Settings(format!(
                "the lease duration is written in whole seconds in the Lease: at least 2s (got {})",
                show(d)
            )));
        }
        if Duration::from_secs(self.renew_every()) >= r {
            return Err(ElectionError::Settings(format!(
                "the Lease is renewed every {}s (the retry period in whole seconds), which must be less than the renew deadline ({})",
                self.renew_every(),
                show(r)
            )));
        }
        if self.namespace.is_empty() || self.name.is_empty() {
            return Err(ElectionError::Settings("the Lease needs a namespace and a name".into()));
        }
        Ok(())
    }

    /// How often the holder renews, in the whole seconds the Lease counts.
    fn renew_every(&self) -> u64 {
        self.retry_period.as_secs() + u64::from(self.retry_period.subsec_nanos() > 0)
    }

    /// The lease duration and kube-lease-manager's grace in whole seconds: the
    /// holder renews `grace` seconds before the lease runs out, that is once
    /// a retry period (in whole seconds), like Kubernetes' leader election.
    pub(crate) fn lease_seconds(&self) -> (u64, u64) {
        // Validated: a whole number of seconds, at least 2, renewed more often.
        let duration = self.lease_duration.as_secs();
        (duration, duration.saturating_sub(self.renew_every()).clamp(1, duration - 1))
    }

    /// Starts taking part on a thread of its own.
    pub fn start(self) -> Result<Leadership, ElectionError> {
        self.validate()?;
        let shared = Arc::new(Shared {
            leader: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            renewed: Mutex::new(None),
            renew_deadline: self.renew_deadline,
            stop: tokio::sync::Notify::new(),
            released: AtomicBool::new(false),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ElectionError::Cluster(e.to_string()))?;
        let client = runtime.block_on(client(self.kubeconfig.as_deref()))?;
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("leader-election".into())
            .spawn(move || {
                runtime.block_on(elect(self, client, theirs.clone()));
                // Whatever ended it, this process leads no more.
                theirs.stopped.store(true, Ordering::Release);
            })
            .map_err(|e| ElectionError::Cluster(e.to_string()))?;
        Ok(Leadership { shared })
    }
}

/// A Go-style duration: `15s`, `500ms`, `1m30s`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (like 15s, 500ms or 1m30s)");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds = match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(value * seconds).map_err(|_| bad())?;
        rest = &rest[unit..];
    }
    Ok(total)
}

fn show(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

pub(crate) async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, ElectionError> {
    let err = |e: &dyn std::fmt::Display| ElectionError::Cluster(e.to_string());
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ElectionError::Cluster(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| ElectionError::Cluster(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::incluster()
            .map_err(|e| ElectionError::Cluster(format!("not in a pod and no --lease-kubeconfig: {e}")))?,
    };
    kube::Client::try_from(config).map_err(|e| err(&e))
}

struct Shared {
    /// kube-lease-manager holds the Lease for this process.
    leader: AtomicBool,
    /// The election ended (it does only on an error it cannot get past).
    stopped: AtomicBool,
    /// When the last renewal seen held by this process was made.
    renewed: Mutex<Option<Instant>>,
    renew_deadline: Duration,
    /// Asks the election thread to release the Lease and stop.
    stop: tokio::sync::Notify,
    /// The Lease was released.
    released: AtomicBool,
}

/// This process's part in the election.
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

impl Leadership {
    /// Whether this process leads now (holds the Lease, renewed within the deadline).
    pub fn is_leader(&self) -> bool {
        self.validity().is_ok()
    }

    fn validity(&self) -> Result<(), String> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err("the leader election stopped".into());
        }
        if !self.shared.leader.load(Ordering::Acquire) {
            return Err("another process holds the Lease".into());
        }
        let renewed = *self.shared.renewed.lock().unwrap_or_else(|e| e.into_inner());
        match renewed {
            Some(at) if at.elapsed() < self.shared.renew_deadline => Ok(()),
            Some(at) => Err(format!(
                "the Lease was last renewed {:.1} s ago, past the renew deadline of {:.1} s",
                at.elapsed().as_secs_f64(),
                self.shared.renew_deadline.as_secs_f64()
            )),
            None => Err("the Lease was never renewed".into()),
        }
    }

    /// On shutdown (between passes): releases the Lease, so that a standby
    /// takes over at once instead of after the lease duration. Waits at most
    /// `within`.
    pub fn release(&self, within: Duration) {
        self.shared.leader.store(false, Ordering::Release);
        self.shared.stop.notify_one();
        if await_release(&self.shared.released, &self.shared.stopped, within) {
            tracing::info!("released the Lease");
        } else {
            tracing::warn!(
                "the Lease was not released within {:.1} s; it runs out by itself",
                within.as_secs_f64()
            );
        }
    }

    /// Called before every write: returns while this process leads; otherwise
    /// logs why and exits with [`LOST_EXIT_CODE`], writing nothing more.
    pub fn fence(&self) {
        if let Err(why) = self.validity() {
            tracing::error!("leader election lost: {why}; exiting so that the pod restarts and stands by");
            std::process::exit(LOST_EXIT_CODE);
        }
    }
}

/// Waits until the election thread says it released its Leases (`released`)
/// or ended (`stopped`), at most `within`; false when the time ran out.
pub(crate) fn await_release(released: &AtomicBool, stopped: &AtomicBool, within: Duration) -> bool {
    let start = Instant::now();
    while !released.load(Ordering::Acquire) && !stopped.load(Ordering::Acquire) {
        if start.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Runs the election until the process ends: kube-lease-manager's watch, and
/// the Lease read every retry period to see the renewals.
async fn elect(election: Election, client: kube::Client, shared: Arc<Shared>) {
    let (duration, grace) = election.lease_seconds();
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &election.name)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await;
        match built {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!(lease = %election.name, "cannot reach the Lease, retrying: {e}");
                tokio::time::sleep(election.retry_period).await;
            }
        }
    };
    let (mut changes, task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, &election.namespace);
    let mut tick = tokio::time::interval(election.retry_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.stop.notified() => {
                // A watch whose receiver is gone releases the Lease and ends.
                drop(changes);
                let _ = tokio::time::timeout(election.renew_deadline, task).await;
                shared.released.store(true, Ordering::Release);
                return;
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    tracing::error!("leader election stopped");
                    shared.leader.store(false, Ordering::Release);
                    return;
                }
                let leads = *changes.borrow_and_update();
                shared.leader.store(leads, Ordering::Release);
                if leads {
                    tracing::info!(lease = %election.name, identity = %election.identity, "became the leader");
                }
            }
            _ = tick.tick() => {}
        }
        // What the Lease says now: a renewal of ours, and when it was made.
        match leases.get_opt(&election.name).await {
            Ok(Some(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                let ours = spec.holder_identity.as_deref() == Some(election.identity.as_str());
                let age = spec.renew_time.map(|t| jiff::Timestamp::now().duration_since(t.0));
                if ours && let Some(age) = age.and_then(|a| Duration::try_from(a).ok()) {
                    let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                    *shared.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
                } else if !ours && spec.holder_identity.is_some() {
                    // Another holds it: this process leads no more, now.
                    shared.leader.store(false, Ordering::Release);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("cannot read the Lease: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "15", "s", "15x", "-1s", "1s2", "99999999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_must_nest() {
        let e = |d, r, p| Election {
            namespace: "ns".into(),
            name: "gitfleet".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(d),
            renew_deadline: Duration::from_secs(r),
            retry_period: Duration::from_secs(p),
            kubeconfig: None,
        };
        assert!(e(15, 10, 2).validate().is_ok());
        let sub = |d: u64, r: u64, p: u64| Election {
            lease_duration: Duration::from_millis(d),
            renew_deadline: Duration::from_millis(r),
            retry_period: Duration::from_millis(p),
            ..e(15, 10, 2)
        };
        // 2.9 s cannot be written in the Lease; 1 s is too short; a 500 ms retry renews every second.
        assert!(sub(2900, 2500, 500).validate().unwrap_err().to_string().contains("whole seconds"));
        assert!(sub(1000, 800, 200).validate().is_err());
        assert!(sub(4000, 3000, 500).validate().is_ok());
        assert!(sub(4000, 1000, 500).validate().unwrap_err().to_string().contains("renewed every 1s"));
        assert_eq!(
            e(10, 10, 2).validate().unwrap_err().to_string(),
            "--leader-elect: needs lease duration > renew deadline > retry period > 0 (got 10000ms, 10000ms, 2000ms)"
        );
        assert!(e(15, 2, 2).validate().is_err());
        assert!(e(15, 10, 0).validate().is_err());
    }
}
