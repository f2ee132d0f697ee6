//! gitfleet: a GitOps reconciler for fleets of Kubernetes clusters.
//!
//! A commit travels one way: [`repo`] (files -> validated objects) ->
//! [`snapshot`] (resource snapshots per placement) -> [`status`] (files
//! committed back to Git). [`cli`] sits on top.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod engine;
pub mod reconcile;
pub mod render;
pub mod repo;
pub mod schedule;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod status;
pub mod time;
pub mod watch;
pub mod window;
pub mod yaml;
