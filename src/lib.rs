//! gitfleet: a GitOps reconciler for fleets of Kubernetes clusters.
//!
//! A commit travels one way through these modules, listed in that order:
//!
//! - [`time`]: whole-second times as written in status, and [`time::Wake`]
//!   (when time alone changes something next). Below everything else.
//! - [`yaml`]: reading untrusted YAML under tight budgets, and writing it.
//! - [`source`]: opening the fleet repository for reading (a path or a URL).
//! - [`repo`]: a commit's files -> typed, validated objects (placements,
//!   strategies, runs, overrides, envelopes, windows, approvals, hub resources);
//!   content hashing ([`repo::hash`]).
//! - [`snapshot`]: what each placement selects, hashed; the incremental index of
//!   resource snapshots over the first-parent history.
//! - [`state`]: the fleet at the tip of the tracked branch with its snapshots and
//!   recorded status; finding the snapshot a run or a commit names.
//! - [`schedule`]: which member clusters a placement picks.
//! - [`window`]: whether a rollout window lets a cluster update start now.
//! - [`engine`]: staged update runs and rolling updates as pure functions of
//!   (objects, status, observations, now) -> (status, actions, wake).
//! - [`render`]: the objects one cluster gets from one snapshot (envelopes
//!   unwrapped, overrides applied, ownership marked).
//! - [`cluster`]: backends that apply them (the local store, Kubernetes).
//! - [`status`]: every document gitfleet writes, typed ([`status::run`] and
//!   [`status::conditions`] are the data the engine works on), and the clone
//!   that commits and pushes them.
//! - [`reconcile`]: one pass through all of the above, and what outlives passes.
//! - [`serve`]: `run --listen`: health probes and Prometheus metrics.
//! - [`dashboard`]: `run --listen`'s read-only web pages of the rollouts.
//! - [`watch`]: what wakes the reconciler between passes (ref changes, signals).
//! - [`cli`]: the commands.
#![forbid(unsafe_code)]

pub mod time;
pub mod yaml;

pub mod source;

pub mod repo;

pub mod snapshot;

pub mod state;

pub mod schedule;

pub mod window;

pub mod engine;
/// Verification tasks: measuring a stage, judging the measurements.
pub mod verify;

pub mod render;

pub mod cluster;

pub mod status;

pub mod reconcile;

pub mod hostkeys;

pub mod lease;
pub mod shard;

pub mod dashboard;
pub mod files;
pub mod hooks;
pub mod notify;
pub mod serve;

pub mod watch;

pub mod cli;
