//! Automatic runs: a placement with `strategy.autoRun` gets a run
//! `<placement>-<index>` for every new snapshot, recorded under status/ only.
//! A run a person committed is respected: no automatic run is created for a
//! snapshot older than it, so automation never undoes a rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use crate::repo::model::{Origin, RunState, SnapshotTarget, UpdateRun};
use crate::snapshot::Indexer;
use crate::state::FleetState;
use crate::status::RUNS;
use crate::status::run::RunDocument;

/// A run and its place in creation order (first-parent position of the commit
/// that created it); `auto` runs exist only in status.
#[derive(Debug, Clone)]
pub struct OrderedRun {
    pub run: UpdateRun,
    pub sequence: usize,
    pub auto: bool,
}

fn auto_run(name: &str, placement: &str, strategy: &str, index: u32, status_root: &str) -> UpdateRun {
    UpdateRun {
        name: name.to_string(),
        placement: placement.to_string(),
        strategy: strategy.to_string(),
        target: SnapshotTarget::Index(index),
        state: RunState::Run,
        spec: json!({
            "placementName": placement,
            "resourceSnapshotIndex": index.to_string(),
            "stagedRolloutStrategyName": strategy,
        }),
        origin: Origin {
            path: Arc::from(format!("{status_root}/{}.yaml", crate::status::scoped::path(RUNS, name))),
            line: 1,
        },
    }
}

/// Every run of this pass in creation order: committed runs, automatic runs
/// recorded before, and the automatic runs new snapshots call for.
pub fn ordered_runs(
    fs: &FleetState,
    indexer: &Indexer,
    docs: &BTreeMap<String, Arc<RunDocument>>,
) -> Vec<OrderedRun> {
    let mut runs: Vec<OrderedRun> = fs
        .fleet
        .runs
        .values()
        .map(|r| OrderedRun {
            run: r.clone(),
            sequence: indexer.history("ClusterStagedUpdateRun", &r.name).map_or(usize::MAX, |h| h.sequence),
            auto: false,
        })
        .collect();
    // Automatic runs recorded in status.
    for (name, doc) in docs {
        if !doc.is_auto() || fs.fleet.runs.contains_key(name) {
            continue;
        }
        let (Some(placement), Some(strategy), Some(index)) =
            (doc.placement_name(), doc.strategy_name(), doc.resource_snapshot_index())
        else {
            continue;
        };
        let sequence = doc.sequence().unwrap_or(0);
        runs.push(OrderedRun {
            run: auto_run(name, placement, strategy, index, &fs.status_root),
            sequence,
            auto: true,
        });
    }
    // New snapshots of placements with autoRun.
    for p in fs.fleet.placements.values() {
        let Some(strategy) = &p.auto_run else { continue };
        let Some(latest) = fs.snapshots.all.iter().filter(|s| s.placement == p.name).max_by_key(|s| s.index)
        else {
            continue;
        };
        let Some(computed) =
            indexer.snapshots(&p.name).iter().find(|s| s.commit.to_string() == latest.commit)
        else {
            continue; // recorded before a history rewrite: not a new snapshot
        };
        let name = format!("{}-{}", p.name, latest.index);
        if runs.iter().any(|r| r.run.name == name) {
            continue;
        }
        // Committed runs, including ones whose file was deleted since (their status stays).
        let recorded = docs.values().filter(|d| !d.is_auto() && d.placement_name() == Some(p.name.as_str()));
        let committed = runs
            .iter()
            .filter(|r| !r.auto && r.run.placement == p.name)
            .map(|r| r.sequence)
            .chain(recorded.filter_map(|d| d.sequence()))
            .max();
        if committed.is_some_and(|c| c >= computed.sequence) {
            continue; // a person's run is newer than this snapshot
        }
        runs.push(OrderedRun {
            run: auto_run(&name, &p.name, strategy, latest.index, &fs.status_root),
            sequence: computed.sequence,
            auto: true,
        });
    }
    runs.sort_by(|a, b| (a.sequence, &a.run.name).cmp(&(b.sequence, &b.run.name)));
    runs
}
