//! Advancing one staged update run for a pass: the engine decides, this
//! module does what it asks (update or clean up a cluster, write an approval
//! request) and records the run document and the pass's notes.

use std::collections::{BTreeMap, HashSet};

use crate::engine::{self, Action, Answer, Observation, RunInput};
use crate::repo::model::{Placement, UpdateRun};
use crate::status::approval::ApprovalRequest;
use crate::status::conditions::Conditions;
use crate::status::conditions::kind::SUCCEEDED;
use crate::status::conditions::reason::{
    UPDATE_RUN_ROLLED_BACK, UPDATE_RUN_SUCCEEDED, UPDATE_RUN_SUPERSEDED,
};
use crate::status::run::{RunDocument, RunHeader, RunStatus};

use super::approvals;
use super::auto_runs::OrderedRun;
use super::pass::Pass;

const RUN_KIND: &str = "ClusterStagedUpdateRun";

/// Whether a run has a Verification that rolls back: in the strategy snapshot
/// it recorded, or (not initialized yet) in its strategy.
fn may_roll_back(status: &RunStatus, strategy: Option<&crate::repo::model::Strategy>) -> bool {
    use crate::repo::model::StageTask;
    match &status.staged_update_strategy_snapshot {
        Some(snapshot) => snapshot["stages"].as_array().into_iter().flatten().any(|stage| {
            ["beforeStageTasks", "afterStageTasks"]
                .iter()
                .flat_map(|list| stage[list].as_array().into_iter().flatten())
                .any(|t| t["onFailure"] == "Rollback")
        }),
        None => strategy.is_some_and(|s| {
            s.stages.iter().flat_map(|st| st.before_tasks.iter().chain(&st.after_tasks)).any(|t| {
                matches!(t, StageTask::Verification(v) if v.on_failure == crate::verify::OnFailure::Rollback)
            })
        }),
    }
}

/// What a run's actions did in this pass, for the commit message.
#[derive(Default)]
struct Done {
    updated: Vec<String>,
    gates: Vec<String>,
    /// `member1 to snapshot 3`
    rolled_back: Vec<String>,
}

impl Pass<'_> {
    /// The run's status so far; `None` when its document is broken (the run is
    /// left as it is until gitfleet can read what it wrote).
    fn run_status(&self, run: &UpdateRun) -> Option<RunStatus> {
        if self.runs.broken.contains_key(&run.name) {
            return None; // reported when it was read
        }
        if self.placement_unreadable(&run.placement) {
            tracing::error!(run = %run.name, "run {} waits: the status of its placement {} cannot be read", run.name, run.placement);
            return None;
        }
        Some(self.runs.get(&run.name).map(|d| d.status.clone()).unwrap_or_default())
    }

    /// Whether a run's document says it finished.
    fn run_finished(&self, run: &str) -> bool {
        self.runs.get(run).is_some_and(|d| d.status.finished())
    }

    /// Advances one run as far as it goes in this pass.
    pub(super) fn advance_run(&mut self, entry: &OrderedRun, ordered: &[OrderedRun]) {
        let run = &entry.run;
        // A finished run's status (at 10,000 clusters, 10,000 entries) is not copied.
        if self.run_finished(&run.name) {
            return;
        }
        let Some(before) = self.run_status(run) else { return };
        let fs = self.fs;
        let placement = fs.fleet.placements.get(&run.placement);
        let scheduled = placement.map(|p| self.scheduled(p).clusters.clone()).unwrap_or_default();
        let newest = ordered.iter().rfind(|r| r.run.placement == run.placement).map(|r| r.run.name.as_str());
        let cleanup = if before.conditions.is_empty() {
            self.cleanup_clusters(&run.placement, &scheduled)
        } else {
            Vec::new()
        };
        let approved = approvals::approved_for(&self.requests, &self.approved, &run.name);
        let windows: Vec<_> = fs.fleet.windows.values().map(|(w, _)| w.clone()).collect();
        // What each scheduled cluster holds before this run updates it: only
        // a run that may roll back records it (at 10,000 clusters, not built
        // for every other run on every pass).
        let strategy = fs.fleet.strategies.get(&run.strategy);
        let held: BTreeMap<String, u32> = match self.facts.get(&run.placement) {
            Some(facts) if may_roll_back(&before, strategy) => {
                scheduled.iter().filter_map(|c| Some((c.clone(), facts.held(c)?))).collect()
            }
            _ => BTreeMap::new(),
        };
        // An evicted cluster is out of the placement's runs too (skipped as gone).
        let without_evicted;
        let clusters = match self.evicted.get(&run.placement) {
            None => &fs.fleet.clusters,
            Some(evicted) => {
                without_evicted = fs
                    .fleet
                    .clusters
                    .iter()
                    .filter(|(name, _)| !evicted.contains_key(*name))
                    .map(|(n, c)| (n.clone(), c.clone()))
                    .collect();
                &without_evicted
            }
        };
        let input = RunInput {
            run,
            generation: self.generation(RUN_KIND, &run.name),
            placement,
            strategy,
            clusters,
            scheduled: &scheduled,
            policy_index: self.indexer.policy_index(&run.placement),
            resource_index: match before.resource_index() {
                Some(i) => Ok(i),
                None => fs.resolve(self.repo, run),
            },
            cleanup,
            approved: &approved,
            observations: BTreeMap::new(),
            measured: BTreeMap::new(),
            held: &held,
            superseded_by: newest.filter(|n| *n != run.name),
            windows: &windows,
            now: self.now,
        };
        let generation = input.generation;
        let mut done = Done::default();
        let step = engine::drive(input, &before, |status, action| {
            self.act(run, placement, status, action, &mut done)
        });
        self.wake.add(step.wake);
        if step.status != before {
            self.record_run(entry, generation, step.status, done);
        }
    }

    /// Does one thing the engine asked for; the observation, if it has one.
    fn act(
        &mut self,
        run: &UpdateRun,
        placement: Option<&Placement>,
        status: &RunStatus,
        action: &Action,
        done: &mut Done,
    ) -> Option<Answer> {
        match action {
            Action::UpdateCluster { cluster } => {
                let Some(p) = placement else {
                    return Some(
                        Observation::Failed(format!("placement {} is not in the repository", run.placement))
                            .into(),
                    );
                };
                let index = status.resource_index().unwrap_or(0);
                let stage = status.stage_of(cluster).unwrap_or_default();
                tracing::info!(run = %run.name, stage, cluster = %cluster, snapshot = index, "updating cluster");
                done.updated.push(cluster.clone());
                Some(self.update_cluster(p, cluster, index).into())
            }
            Action::CleanupCluster { cluster } => Some(self.cleanup_cluster(cluster, &run.placement).into()),
            Action::RollbackCluster { cluster, to } => {
                let observation = match (placement, to) {
                    (_, None) => self.remove_from(cluster, &run.placement),
                    (Some(p), Some(index)) => self.update_cluster(p, cluster, *index),
                    (None, Some(_)) => {
                        Observation::Failed(format!("placement {} is not in the repository", run.placement))
                    }
                };
                let back = match to {
                    Some(i) => format!("to snapshot {i}"),
                    None => "(objects removed)".to_string(),
                };
                match &observation {
                    Observation::Succeeded => {
                        tracing::warn!(run = %run.name, cluster = %cluster, "cluster rolled back {back}");
                        done.rolled_back.push(format!("{cluster} {back}"));
                    }
                    Observation::Failed(e) => {
                        tracing::warn!(run = %run.name, cluster = %cluster, "rollback failed: {e}")
                    }
                    _ => {}
                }
                Some(observation.into())
            }
            Action::Measure { key, query } => {
                let sampled = self.prober.measure(query);
                let stage = status.stages_status.get(key.stage).map_or("", |s| s.stage_name.as_str());
                match &sampled {
                    Ok(values) => {
                        tracing::info!(run = %run.name, stage, cluster = ?key.cluster, ?values, "measured")
                    }
                    Err(e) => {
                        tracing::warn!(run = %run.name, stage, cluster = ?key.cluster, "measurement inconclusive: {e}")
                    }
                }
                Some(Answer::Measured(sampled))
            }
            Action::RequestApproval { name, stage } => {
                let request = ApprovalRequest::new(name, &run.name, stage, self.now, self.fs.tip);
                if self.requests.get(name).is_none() {
                    self.requests.insert(name.clone(), request);
                }
                done.gates.push(format!("{} {stage} waiting for approval {name}", run.name));
                None
            }
        }
    }

    /// Writes the run document and says what happened in the commit message.
    fn record_run(&mut self, entry: &OrderedRun, generation: i64, status: RunStatus, mut done: Done) {
        let run = &entry.run;
        let created = self.indexer.history(RUN_KIND, &run.name).map_or(self.fs.tip_time, |h| h.created);
        let outcome = status.conditions.get_condition(SUCCEEDED).map(|c| match c.reason.as_str() {
            UPDATE_RUN_SUCCEEDED => "succeeded",
            UPDATE_RUN_SUPERSEDED => "was superseded",
            UPDATE_RUN_ROLLED_BACK => "was rolled back",
            _ => "failed",
        });
        let header = RunHeader {
            name: &run.name,
            generation,
            created,
            spec: &run.spec,
            sequence: entry.sequence,
            auto: entry.auto,
        };
        self.runs.insert(run.name.clone(), RunDocument::new(header, status));
        if !done.updated.is_empty() {
            self.notes.push(super::updated_note(&run.name, &done.updated));
        }
        self.notes.append(&mut done.gates);
        if !done.rolled_back.is_empty() {
            self.notes.push(format!("{} rolled back {}", run.name, done.rolled_back.join(", ")));
        }
        if let Some(outcome) = outcome {
            self.notes.push(format!("{} {outcome}", run.name));
        }
    }

    /// Clusters that hold this placement's resources but are no longer scheduled.
    ///
    /// The first time in a process every cluster the backend knows is asked;
    /// after that only the clusters that may hold the placement (found then,
    /// or updated since, or not reachable when asked): at 10,000 clusters a
    /// pass does not list every cluster's objects again.
    pub(super) fn cleanup_clusters(&mut self, placement: &str, scheduled: &[String]) -> Vec<String> {
        let backend = self.backend;
        let holds = |c: &str| backend.placements_on(c).map(|ps| ps.iter().any(|p| p == placement));
        if !self.holders.contains_key(placement) {
            let found: HashSet<String> =
                backend.known_clusters().into_iter().filter(|c| holds(c).unwrap_or(true)).collect();
            self.holders.insert(placement.to_string(), found);
        }
        let scheduled: HashSet<&String> = scheduled.iter().collect();
        let candidates = self.holders.get_mut(placement).expect("inserted above");
        let mut out = Vec::new();
        candidates.retain(|c| {
            if scheduled.contains(c) {
                return true;
            }
            match holds(c) {
                Ok(true) => {
                    out.push(c.clone());
                    true
                }
                Ok(false) => false,
                // Not reachable now: asked again next time.
                Err(_) => true,
            }
        });
        out.sort();
        out
    }
}
