//! Member cluster status: each declared cluster's document, from its last
//! contact (its Healthy condition), what it reports about itself (the
//! Kubernetes backend, asked every `heartbeatPeriodSeconds`) or its
//! annotations (the local store). Rebuilt only when what it is made of
//! changed; written only when the document changed.

use std::collections::HashMap;

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
    /// The inputs of the cluster's document when it was last built.
    made_of: Option<String>,
}

impl Pass<'_> {
    pub(super) fn member_statuses(&mut self) {
        let fs = self.fs;
        let now = self.now;
        for c in fs.fleet.clusters.values() {
            if !self.owns(&format!("{MEMBERS}/{}", c.name)) {
                continue;
            }
            let heartbeat = i64::from(c.heartbeat_seconds);
            let due = self.contacts.0.get(&c.name).is_none_or(|a| now >= a.at.plus_seconds(heartbeat));
            if due {
                let answer = self.backend.properties(&c.name).map_err(|e| e.to_string());
                let made_of = self.contacts.0.remove(&c.name).and_then(|a| a.made_of);
                self.contacts.0.insert(c.name.clone(), Asked { at: now, answer, made_of });
            }
            let asked = self.contacts.0.get(&c.name).expect("asked above");
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
            let live = asked.answer.as_ref().ok().and_then(Option::as_ref);
            let key = ("MemberCluster".to_string(), None, c.name.clone());
            let spec = fs
                .fleet
                .raw
                .get(&key)
                .and_then(|v| v.get("spec").filter(|s| !s.is_null()))
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            let generation = self.generation("MemberCluster", &c.name);
            let made_of = format!("{reached:?}|{live:?}|{:?}|{spec}", c.annotations);
            let previous = self.members.get(&c.name);
            if previous.is_some() && asked.made_of.as_deref() == Some(made_of.as_str()) {
                continue; // nothing it is made of changed
            }
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
            .filter(|n| !fs.fleet.clusters.contains_key(*n) && self.owns(&format!("{MEMBERS}/{n}")))
            .cloned()
            .collect();
        for name in gone {
            self.members.remove(&name);
            self.contacts.0.remove(&name);
        }
    }
}
