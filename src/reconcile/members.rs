//! Member cluster status: each declared cluster's document, from its last
//! contact (its Healthy condition), what it reports about itself (the
//! Kubernetes backend, asked every `heartbeatPeriodSeconds`) or its
//! annotations (the local store). Rebuilt only when what it is made of
//! changed; written only when the document changed.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::ClusterProperties;
use crate::status::member::{Contact, MEMBERS, member_document};
use crate::time::{Time, Wake};

use super::pass::Pass;

/// What a cluster said the last time it was asked, and what its document
/// was made of (outlives passes).
#[derive(Debug, Default)]
pub struct Contacts(HashMap<String, Asked>);

#[derive(Debug)]
struct Asked {
    at: Time,
    answer: Result<Option<ClusterProperties>, String>,
    /// The last report it gave (kept when an ask fails: KubeFleet keeps the
    /// last reported properties too, so one failed ask moves nothing).
    last_good: Option<ClusterProperties>,
    /// What the cluster's document was last built from: the MemberCluster as
    /// written (shared with the parse cache, so an unchanged file is the same
    /// value) and whether it was reached.
    made_of: Option<(Arc<Value>, Result<(), String>)>,
}

impl Pass<'_> {
    /// Asks the clusters whose heartbeat is due about themselves; what they
    /// report is what scheduling reads as their properties (over their
    /// annotations).
    pub(super) fn ask_members(&mut self) {
        if !self.backend.reports_properties() {
            return; // nothing to ask: the annotations say it
        }
        let fs = self.fs;
        let now = self.now;
        let mut live = false;
        for c in fs.fleet.clusters.values() {
            let heartbeat = i64::from(c.heartbeat_seconds);
            let due = self.contacts.0.get(&c.name).is_none_or(|a| now >= a.at.plus_seconds(heartbeat));
            // (A cluster that did not answer a sync waits for its backoff.)
            if due && self.retries.backing_off(&c.name, now).is_none() {
                let answer = self.backend.properties(&c.name).map_err(|e| e.to_string());
                let old = self.contacts.0.remove(&c.name);
                let last_good = match &answer {
                    Ok(Some(p)) => Some(p.clone()),
                    _ => old.as_ref().and_then(|a| a.last_good.clone()),
                };
                let made_of = old.and_then(|a| a.made_of);
                self.contacts.0.insert(c.name.clone(), Asked { at: now, answer, last_good, made_of });
            }
            live |= self.contacts.0.get(&c.name).is_some_and(|a| a.last_good.is_some());
        }
        if !live {
            return;
        }
        let mut clusters = fs.fleet.clusters.clone();
        for c in clusters.values_mut() {
            let Some(p) = self.contacts.0.get(&c.name).and_then(|a| a.last_good.as_ref()) else { continue };
            let r = "resources.kubernetes-fleet.io";
            let reported = [
                (crate::status::member::NODE_COUNT.to_string(), p.node_count.to_string()),
                (crate::status::member::K8S_VERSION.to_string(), p.kubernetes_version.clone()),
                (format!("{r}/total-cpu"), p.capacity.0.clone()),
                (format!("{r}/total-memory"), p.capacity.1.clone()),
                (format!("{r}/allocatable-cpu"), p.allocatable.0.clone()),
                (format!("{r}/allocatable-memory"), p.allocatable.1.clone()),
                (format!("{r}/available-cpu"), p.available.0.clone()),
                (format!("{r}/available-memory"), p.available.1.clone()),
            ];
            c.annotations.extend(reported);
        }
        self.live_clusters = Some(clusters);
    }

    pub(super) fn member_statuses(&mut self) -> Result<(), git2::Error> {
        let fs = self.fs;
        let now = self.now;
        let (status, root, limit) = (fs.trusted_status(), &fs.status_root, fs.status_limit());
        self.members =
            crate::status::Documents::read(self.repo, status, root, MEMBERS, limit, self.members_cache)?;
        for c in fs.fleet.clusters.values() {
            if !self.owns_member(&c.name) {
                continue;
            }
            let heartbeat = i64::from(c.heartbeat_seconds);
            if !self.contacts.0.contains_key(&c.name) {
                // A backend that reports nothing (asked once, for its answer).
                let answer = self.backend.properties(&c.name).map_err(|e| e.to_string());
                let last_good = answer.as_ref().ok().and_then(Clone::clone);
                self.contacts.0.insert(c.name.clone(), Asked { at: now, answer, last_good, made_of: None });
            }
            let Some(asked) = self.contacts.0.get(&c.name) else { continue };
            // A backend that reports (or failed to): ask again at the next heartbeat.
            if !matches!(asked.answer, Ok(None)) {
                self.wake.add(Wake::at(asked.at.plus_seconds(heartbeat)));
            }
            let failing = self.retries.message(&c.name);
            let reached = match (&asked.answer, failing) {
                (_, Some(why)) => Err(why),
                (Err(why), None) => Err(why.as_str()),
                _ => Ok(()),
            };
            let live = asked.last_good.as_ref();
            let key = ("MemberCluster".to_string(), None, c.name.clone());
            let Some(raw) = fs.fleet.raw.get(&key) else { continue };
            let previous = self.members.get(&c.name);
            // Unchanged: the same MemberCluster file, reached (or not) as before,
            // and no live report (those are compared whole, below).
            let unchanged = asked.made_of.as_ref().is_some_and(|(r, was)| {
                (Arc::ptr_eq(r, raw) || r == raw)
                    && was.as_ref().map(|_| ()).map_err(String::as_str) == reached
            });
            if previous.is_some() && unchanged && asked.last_good.is_none() {
                continue; // nothing it is made of changed
            }
            let spec = crate::status::member::kubefleet_spec(c, raw.get("spec"));
            let generation = self.generation("MemberCluster", &c.name);
            let made_of = (raw.clone(), reached.map_err(str::to_string));
            let contact = Contact { reached, live };
            let doc = member_document(c, &spec, &contact, previous, now, generation);
            if previous != Some(&doc) {
                self.members.insert(c.name.clone(), doc);
            }
            if let Some(a) = self.contacts.0.get_mut(&c.name) {
                a.made_of = Some(made_of);
            }
        }
        // A cluster gone from the repository: its document goes.
        let gone: Vec<String> = self
            .members
            .now
            .keys()
            .filter(|n| !fs.fleet.clusters.contains_key(*n) && self.owns_member(n))
            .cloned()
            .collect();
        for name in gone {
            self.members.remove(&name);
            self.contacts.0.remove(&name);
        }
        Ok(())
    }
}
