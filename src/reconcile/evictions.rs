//! Evictions: each ClusterResourcePlacementEviction is decided once (valid,
//! then allowed or blocked by the placement's disruption budget); an executed
//! one takes the placement's resources off its cluster at once and keeps the
//! cluster out of the placement (its schedule, its runs) until the file is
//! deleted.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::Observation;
use crate::status::conditions::Conditions;
use crate::status::conditions::kind::RESOURCE_AVAILABLE;
use crate::status::eviction::{EvictionInput, decide};

use super::pass::Pass;

/// Placement -> evicted cluster -> the eviction's name.
pub(crate) type Evicted = BTreeMap<String, BTreeMap<String, String>>;

impl Pass<'_> {
    pub(super) fn evict(&mut self) {
        let fs = self.fs;
        let mut evicted = Evicted::new();
        let owned: Vec<&crate::repo::model::Eviction> =
            fs.fleet.evictions.values().filter(|e| self.owns(&e.placement)).collect();
        // Per placement: the clusters it holds and those available, less the
        // ones evicted in this pass (two evictions in one commit count both).
        let mut holding: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for e in owned {
            if self.evictions.broken.contains_key(&e.name) {
                continue; // reported when read; decided again once readable
            }
            if self.placement_unreadable(&e.placement) {
                continue; // its clusters' state is unknown: decided once it is readable
            }
            let (held, available) = holding.entry(e.placement.clone()).or_insert_with(|| {
                let statuses =
                    self.placements.get(&e.placement).map(|d| d.status.placement_statuses.as_slice());
                let statuses = statuses.unwrap_or_default();
                let held = statuses.iter().map(|s| s.cluster_name.clone()).collect();
                let available = statuses
                    .iter()
                    .filter(|s| s.conditions.is_true(RESOURCE_AVAILABLE))
                    .map(|s| s.cluster_name.clone())
                    .collect();
                (held, available)
            });
            let input = EvictionInput {
                eviction: e,
                generation: self.generation("ClusterResourcePlacementEviction", &e.name),
                placement: fs.fleet.placements.get(&e.placement),
                budget: fs.fleet.budgets.get(&e.placement),
                held,
                available,
                now: self.now,
            };
            let previous = self.evictions.get(&e.name).cloned();
            let doc = decide(&input, previous.as_ref());
            if doc.executed() {
                evicted.entry(e.placement.clone()).or_default().insert(e.cluster.clone(), e.name.clone());
                let held_it = held.remove(&e.cluster);
                available.remove(&e.cluster);
                // Until the cluster no longer holds anything of the placement
                // (an unreachable one is tried again in a later pass).
                let holds = held_it
                    || self.backend.placements_on(&e.cluster).map_or(true, |ps| ps.contains(&e.placement));
                if holds {
                    self.remove_evicted(&e.placement, &e.cluster, &e.name);
                }
            }
            if previous.as_ref() != Some(&doc) {
                if !doc.executed() {
                    let why = doc.status.conditions.last().map(|c| c.message.clone()).unwrap_or_default();
                    self.notes.push(format!("eviction {} of {} not executed: {why}", e.name, e.cluster));
                }
                self.evictions.insert(e.name.clone(), doc);
            }
        }
        // An eviction whose file is gone: its status goes, its cluster may come back.
        let gone: Vec<String> = self
            .evictions
            .now
            .keys()
            .filter(|n| !fs.fleet.evictions.contains_key(*n))
            .filter(|n| {
                let placement = self.evictions.get(n).and_then(|d| d.spec["placementName"].as_str());
                placement.is_none_or(|p| self.owns(p))
            })
            .cloned()
            .collect();
        for name in gone {
            self.evictions.remove(&name);
        }
        self.evicted = evicted;
    }

    /// Takes a placement's resources off an evicted cluster.
    fn remove_evicted(&mut self, placement: &str, cluster: &str, eviction: &str) {
        match self.cleanup_cluster(cluster, placement) {
            Observation::Succeeded => {
                tracing::info!(placement, cluster, eviction, "evicted");
                self.notes.push(format!("eviction {eviction} removed {placement} from {cluster}"));
            }
            Observation::Failed(e) | Observation::Pending(e) => {
                tracing::warn!(placement, cluster, eviction, "eviction not carried out yet: {e}");
            }
        }
    }
}
