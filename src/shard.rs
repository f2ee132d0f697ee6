//! Sharding over several replicas (`run --shards N`): placements are split
//! into N shards by a stable hash of their name, and each shard is a
//! `coordination.k8s.io/v1` Lease (`<name>-shard-0` ... `<name>-shard-{N-1}`).
//! A replica reconciles only the placements of the shards it holds.
//!
//! Each replica also holds a Lease of its own (`<name>-member-<identity>`), so
//! that the replicas alive can be counted: a replica holds at most its fair
//! share (N divided by the replicas alive, rounded up). It contends for free
//! shards (no holder, or the holder's lease ran out) while it holds fewer;
//! while it holds more, it gives the surplus up between two passes. A replica
//! that dies stops renewing: its member Lease and its shards run out within
//! the lease duration and the others take them.
//!
//! kube-lease-manager acquires, renews and releases each Lease. As for leader
//! election ([`crate::lease`]), every cluster write and push is fenced: a
//! shard the pass works on that is no longer held, or was not renewed within
//! the renew deadline, stops the process (exit code 2) before anything more
//! is written; a shard given up on purpose is given up between passes only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use kube_lease_manager::LeaseManagerBuilder;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::lease::{Election, ElectionError, LOST_EXIT_CODE};

/// The shard of a placement: a stable hash of its name (the same in every
/// replica and every version), modulo the number of shards.
pub fn shard_of(placement: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(placement.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (head % u64::from(shards.max(1))) as u32
}

/// Which placements a pass works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFilter {
    pub shards: u32,
    pub owned: BTreeSet<u32>,
}

impl ShardFilter {
    pub fn owns(&self, placement: &str) -> bool {
        self.owned.contains(&shard_of(placement, self.shards))
    }

    /// Whether this replica holds shard 0, which also looks after status
    /// files that belong to no placement.
    pub fn owns_unplaced(&self) -> bool {
        self.owned.contains(&0)
    }
}

/// How to take part: the leader election settings (namespace, the Leases'
/// base name, identity, durations) and the number of shards.
#[derive(Debug, Clone)]
pub struct Sharding {
    pub election: Election,
    pub shards: u32,
}

impl Sharding {
    pub fn validate(&self) -> Result<(), ElectionError> {
        self.election.validate()?;
        if self.shards == 0 || self.shards > 1000 {
            return Err(ElectionError::Settings(format!("--shards must be 1 to 1000 (got {})", self.shards)));
        }
        Ok(())
    }

    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.election.name)
    }

    fn member_prefix(&self) -> String {
        format!("{}-member-", self.election.name)
    }

    /// This replica's member Lease: its identity made a valid object name.
    fn member_lease(&self) -> String {
        let id: String = self
            .election
            .identity
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
            .collect();
        let mut name = format!("{}{}", self.member_prefix(), id.trim_matches('-'));
        name.truncate(253);
        name.trim_end_matches('-').to_string()
    }

    /// Starts taking part on a thread of its own.
    pub fn start(self) -> Result<Shards, ElectionError> {
        self.validate()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                shards: (0..self.shards).map(|_| ShardState::default()).collect(),
                contenders: BTreeMap::new(),
                alive: 1,
            }),
            current: Mutex::new(BTreeSet::new()),
            stop: tokio::sync::Notify::new(),
            released: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            renew_deadline: self.election.renew_deadline,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ElectionError::Cluster(e.to_string()))?;
        let client = runtime.block_on(crate::lease::client(self.election.kubeconfig.as_deref()))?;
        let theirs = shared.clone();
        let shards = self.shards;
        std::thread::Builder::new()
            .name("shards".into())
            .spawn(move || {
                runtime.block_on(take_part(self, client, theirs.clone()));
                theirs.stopped.store(true, Ordering::Release);
            })
            .map_err(|e| ElectionError::Cluster(e.to_string()))?;
        Ok(Shards { shared, shards })
    }
}

#[derive(Debug, Default, Clone)]
struct ShardState {
    /// kube-lease-manager holds this shard's Lease for this replica.
    leading: bool,
    /// When the last renewal seen held by this replica was made.
    renewed: Option<Instant>,
    /// Held beyond the fair share: given up between passes.
    surplus: bool,
}

struct State {
    shards: Vec<ShardState>,
    /// Shard -> the receiver of its contender (dropping it releases the
    /// Lease) and its task.
    contenders: BTreeMap<u32, Contender>,
    /// Replicas alive at the last look, this one included.
    alive: usize,
}

/// A kube-lease-manager watch on one Lease.
type Contender = (
    watch::Receiver<bool>,
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
);

struct Shared {
    state: Mutex<State>,
    /// Asks the sharding thread to release every Lease and stop.
    stop: tokio::sync::Notify,
    /// Every Lease was released (or the time for it ran out).
    released: AtomicBool,
    /// The shards the current pass works on.
    current: Mutex<BTreeSet<u32>>,
    stopped: AtomicBool,
    renew_deadline: Duration,
}

/// This replica's part in the sharding.
#[derive(Clone)]
pub struct Shards {
    shared: Arc<Shared>,
    shards: u32,
}

impl Shards {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shards held now and renewed within the renew deadline, but for
    /// those to give up.
    pub fn held(&self) -> BTreeSet<u32> {
        self.fresh(false)
    }

    fn fresh(&self, with_surplus: bool) -> BTreeSet<u32> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return BTreeSet::new();
        }
        let state = self.state();
        let deadline = self.shared.renew_deadline;
        (0..self.shards)
            .filter(|i| {
                let s = &state.shards[*i as usize];
                s.leading
                    && (with_surplus || !s.surplus)
                    && s.renewed.is_some_and(|at| at.elapsed() < deadline)
            })
            .collect()
    }

    /// Between two passes: gives up the shards over the fair share, then
    /// returns what the next pass works on.
    pub fn between_passes(&self) -> ShardFilter {
        let released: Vec<u32> = {
            let mut state = self.state();
            let surplus: Vec<u32> = (0..self.shards).filter(|i| state.shards[*i as usize].surplus).collect();
            for i in &surplus {
                // The contender's task sees its receiver gone and releases the Lease.
                state.contenders.remove(i);
                state.shards[*i as usize] = ShardState::default();
            }
            surplus
        };
        if !released.is_empty() {
            tracing::info!(shards = ?released, "gave up shards over this replica's fair share");
        }
        let owned = self.held();
        *self.shared.current.lock().unwrap_or_else(|e| e.into_inner()) = owned.clone();
        ShardFilter { shards: self.shards, owned }
    }

    /// Called before every write: returns while every shard of the current
    /// pass is held and fresh; otherwise logs why and exits with
    /// [`LOST_EXIT_CODE`], writing nothing more.
    pub fn fence(&self) {
        let current = self.shared.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A shard to give up is still this pass's until the pass ends.
        let held = self.fresh(true);
        if let Some(lost) = current.iter().find(|s| !held.contains(s)) {
            tracing::error!(
                shard = lost,
                "shard lost during a pass (not renewed within the renew deadline, or taken by another replica); exiting so that the pod restarts"
            );
            std::process::exit(LOST_EXIT_CODE);
        }
    }

    /// On shutdown: releases this replica's shards and its member Lease, so
    /// that the others take them at once instead of after the lease duration.
    /// Waits at most `within`.
    pub fn release(&self, within: Duration) {
        *self.shared.current.lock().unwrap_or_else(|e| e.into_inner()) = BTreeSet::new();
        self.shared.stop.notify_one();
        if crate::lease::await_release(&self.shared.released, &self.shared.stopped, within) {
            tracing::info!("released this replica's shards");
        } else {
            tracing::warn!(
                "shards not released within {:.1} s; they run out by themselves",
                within.as_secs_f64()
            );
        }
    }

    /// Replicas alive at the last look, this one included.
    pub fn alive(&self) -> usize {
        self.state().alive
    }
}

/// A Lease's holder, if it holds it now.
fn live_holder(lease: &Lease, now: jiff::Timestamp) -> Option<&str> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    (now.as_second() < renewed.as_second() + duration).then_some(holder)
}

async fn take_part(config: Sharding, client: kube::Client, shared: Arc<Shared>) {
    let e = &config.election;
    let (duration, grace) = e.lease_seconds();
    let contend = |name: String| {
        let client = client.clone();
        async move {
            let manager = LeaseManagerBuilder::new(client, &name)
                .with_namespace(&e.namespace)
                .with_identity(&e.identity)
                .with_duration(duration)
                .with_grace(grace)
                .build()
                .await?;
            Ok::<Contender, kube_lease_manager::LeaseManagerError>(manager.watch().await)
        }
    };
    // This replica's presence, held until the process ends.
    let member = config.member_lease();
    let presence = loop {
        match contend(member.clone()).await {
            Ok(rx) => break rx,
            Err(err) => {
                tracing::warn!(lease = %member, "cannot reach the Lease, retrying: {err}");
                tokio::time::sleep(e.retry_period).await;
            }
        }
    };
    tracing::info!(lease = %member, shards = config.shards, "taking part in sharding");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &e.namespace);
    let mut tick = tokio::time::interval(e.retry_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let prefix = config.member_prefix();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.stop.notified() => {
                let mut all: Vec<Contender> = {
                    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.shards.iter_mut().for_each(|s| *s = ShardState::default());
                    std::mem::take(&mut state.contenders).into_values().collect()
                };
                all.push(presence);
                // A watch whose receiver is gone releases its Lease and ends.
                let tasks: Vec<_> = all.into_iter().map(|(rx, task)| { drop(rx); task }).collect();
                for task in tasks {
                    let _ = tokio::time::timeout(e.renew_deadline, task).await;
                }
                shared.released.store(true, Ordering::Release);
                return;
            }
        }
        let list = match leases.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(err) => {
                tracing::debug!("cannot list the Leases: {err}");
                continue;
            }
        };
        let now = jiff::Timestamp::now();
        let by_name: BTreeMap<&str, &Lease> =
            list.items.iter().filter_map(|l| Some((l.metadata.name.as_deref()?, l))).collect();
        let others_alive = by_name
            .iter()
            .filter(|(name, l)| {
                name.starts_with(&prefix) && **name != member && live_holder(l, now).is_some()
            })
            .count();
        let alive = others_alive + 1;
        let fair = (config.shards as usize).div_ceil(alive);
        let mut to_start = Vec::new();
        {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.alive = alive;
            for i in 0..config.shards {
                let lease = by_name.get(config.shard_lease(i).as_str()).copied();
                let holder = lease.and_then(|l| live_holder(l, now));
                let leads = state.contenders.get(&i).is_some_and(|(rx, _)| *rx.borrow());
                let s = &mut state.shards[i as usize];
                s.leading = leads && holder == Some(e.identity.as_str());
                if s.leading
                    && let Some(renewed) = lease.and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
                {
                    let age = Duration::try_from(now.duration_since(renewed.0)).unwrap_or_default();
                    s.renewed = Some(Instant::now().checked_sub(age).unwrap_or_else(Instant::now));
                } else if !s.leading {
                    s.renewed = None;
                }
            }
            let leading: Vec<u32> =
                (0..config.shards).filter(|i| state.shards[*i as usize].leading).collect();
            // Over the fair share: the highest shards are given up between passes.
            for (n, i) in leading.iter().enumerate() {
                let over = n >= fair;
                if over && !state.shards[*i as usize].surplus {
                    tracing::info!(
                        shard = i,
                        alive,
                        fair,
                        "over this replica's fair share: giving the shard up after this pass"
                    );
                }
                state.shards[*i as usize].surplus = over;
            }
            let want = fair.saturating_sub(leading.len());
            // Contenders that do not lead: kept only while more are wanted and the shard is free.
            let waiting: Vec<u32> =
                state.contenders.keys().copied().filter(|i| !state.shards[*i as usize].leading).collect();
            let mut kept = 0;
            for i in waiting {
                let free =
                    by_name.get(config.shard_lease(i).as_str()).is_none_or(|l| live_holder(l, now).is_none());
                if free && kept < want {
                    kept += 1;
                } else {
                    state.contenders.remove(&i);
                }
            }
            for i in 0..config.shards {
                if kept + to_start.len() >= want {
                    break;
                }
                let free =
                    by_name.get(config.shard_lease(i).as_str()).is_none_or(|l| live_holder(l, now).is_none());
                if free && !state.contenders.contains_key(&i) {
                    to_start.push(i);
                }
            }
        }
        for i in to_start {
            match contend(config.shard_lease(i)).await {
                Ok(contender) => {
                    tracing::info!(shard = i, "contending for a free shard");
                    shared.state.lock().unwrap_or_else(|e| e.into_inner()).contenders.insert(i, contender);
                }
                Err(err) => tracing::warn!(shard = i, "cannot contend for the shard: {err}"),
            }
        }
        // Member Leases of replicas gone long ago are removed (best effort).
        for (name, lease) in &by_name {
            let stale = lease
                .spec
                .as_ref()
                .and_then(|s| s.renew_time.as_ref())
                .is_some_and(|t| now.as_second() - t.0.as_second() > 10 * duration as i64 + 60);
            if name.starts_with(&prefix) && stale {
                let _ = leases.delete(name, &Default::default()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_spread_over_shards_the_same_way_everywhere() {
        // Fixed values: the hash must never change between versions.
        assert_eq!(shard_of("app", 3), shard_of("app", 3));
        let counts = (0..300).fold([0usize; 3], |mut c, i| {
            c[shard_of(&format!("placement-{i}"), 3) as usize] += 1;
            c
        });
        assert!(counts.iter().all(|&n| n > 70), "{counts:?}");
        assert_eq!(shard_of("anything", 1), 0);
        let filter = ShardFilter { shards: 3, owned: [shard_of("app", 3)].into() };
        assert!(filter.owns("app"));
    }

    #[test]
    fn member_lease_names_are_object_names() {
        let e = Election {
            namespace: "ns".into(),
            name: "gitfleet".into(),
            identity: "Pod_Name.1_00ff".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            kubeconfig: None,
        };
        let s = Sharding { election: e, shards: 3 };
        assert_eq!(s.member_lease(), "gitfleet-member-pod-name-1-00ff");
        assert_eq!(s.shard_lease(2), "gitfleet-shard-2");
        assert!(Sharding { shards: 0, ..s }.validate().is_err());
    }
}
