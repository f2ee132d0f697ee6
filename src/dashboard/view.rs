//! What the dashboard's pages show, made from the status documents as
//! gitfleet wrote them (names and times as in the files).

use std::collections::BTreeMap;

use crate::repo::model::split_key;
use crate::status::approval::ApprovalRequest;
use crate::status::conditions::{Conditions, kind};
use crate::status::placement::cluster::ClusterPlacementStatus;
use crate::status::run::{RunDocument, StageStatus, TaskStatus};
use crate::time::Time;

/// A state as shown: a CSS class (colour), an icon and a word, so it reads
/// without colour too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A run that succeeded; a stage or task that is done.
    Done,
    UpToDate,
    Updating,
    /// On an older snapshot, with no run under way to change that.
    Behind,
    Waiting,
    Stopped,
    Superseded,
    Failed,
    Drifted,
    Unreachable,
    Pending,
    NotPlaced,
}

impl State {
    /// (CSS class, icon, word).
    fn shown(self) -> (&'static str, &'static str, &'static str) {
        match self {
            State::Done => ("ok", "✓", "done"),
            State::UpToDate => ("ok", "✓", "up to date"),
            State::Updating => ("updating", "↻", "updating"),
            State::Behind => ("behind", "↓", "behind"),
            State::Waiting => ("waiting", "…", "waiting"),
            State::Stopped => ("stopped", "■", "stopped"),
            State::Superseded => ("superseded", "»", "superseded"),
            State::Failed => ("failed", "✗", "failed"),
            State::Drifted => ("drifted", "≠", "drifted"),
            State::Unreachable => ("unreachable", "⚠", "unreachable"),
            State::Pending => ("pending", "·", "pending"),
            State::NotPlaced => ("none", "–", "not placed"),
        }
    }

    pub fn class(self) -> &'static str {
        self.shown().0
    }

    pub fn icon(self) -> &'static str {
        self.shown().1
    }

    pub fn word(self) -> &'static str {
        self.shown().2
    }
}

/// One cell of the fleet grid: the snapshot a cluster runs and how it stands.
#[derive(Debug, Clone)]
pub struct Cell {
    pub snapshot: String,
    /// The snapshot's commit (short) and subject.
    pub commit: String,
    pub state: State,
    /// Why (a failure, what drifted), empty when nothing to say.
    pub detail: String,
}

/// A row of the fleet grid.
#[derive(Debug, Clone)]
pub struct PlacementRow {
    pub name: String,
    pub namespace: String,
    pub latest: String,
    /// The latest snapshot's commit (short) and subject.
    pub commit: String,
    pub subject: String,
    pub cells: Vec<Cell>,
}

/// How one cluster of a placement stands, from its entry in the placement's
/// document (none: the placement does not place it).
pub fn cell(entry: Option<&ClusterPlacementStatus>, latest: Option<u32>, run_under_way: bool) -> Cell {
    let none = Cell {
        snapshot: String::new(),
        commit: String::new(),
        state: State::NotPlaced,
        detail: String::new(),
    };
    let Some(s) = entry else { return none };
    let snapshot = s.observed_resource_index.clone().map(|i| format!("#{i}")).unwrap_or_default();
    let applied = s.conditions.get_condition(kind::RESOURCE_APPLIED);
    let (state, detail) = match applied {
        Some(c)
            if c.status == "False" && c.reason == crate::status::conditions::reason::CLUSTER_UNREACHABLE =>
        {
            (State::Unreachable, c.message.clone())
        }
        Some(c) if c.status == "False" => {
            // What failed, object by object, rather than KubeFleet's pointer to them.
            let what: Vec<String> = s
                .failed_placements
                .iter()
                .map(|f| {
                    let ns = f.object.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default();
                    format!("{} {ns}{}: {}", f.object.kind, f.object.name, f.condition.message)
                })
                .collect();
            (State::Failed, if what.is_empty() { c.message.clone() } else { what.join("; ") })
        }
        _ if !s.drifted_placements.is_empty() => {
            let what: Vec<String> =
                s.drifted_placements.iter().map(|d| format!("{} {}", d.object.kind, d.object.name)).collect();
            (State::Drifted, format!("drifted: {}", what.join(", ")))
        }
        _ if latest.is_some_and(|l| s.observed_resource_index.as_deref() != Some(l.to_string().as_str())) => {
            (if run_under_way { State::Updating } else { State::Behind }, String::new())
        }
        _ if s.conditions.is_true(kind::RESOURCE_AVAILABLE) => (State::UpToDate, String::new()),
        _ if s.observed_resource_index.is_none() => (State::Pending, String::new()),
        _ => (State::Updating, String::new()),
    };
    Cell { snapshot, commit: String::new(), state, detail }
}

/// A run in the list of runs.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub key: String,
    pub name: String,
    pub namespace: String,
    pub placement: String,
    pub snapshot: String,
    pub state: State,
    pub says: String,
}

/// How a run stands as a whole (as the metrics say it), and what its newest
/// condition says.
pub fn run_state(doc: &RunDocument) -> (State, String) {
    let conditions = &doc.status.conditions;
    let newest = conditions.iter().max_by_key(|c| c.last_transition_time).map(|c| c.message.clone());
    let says = newest.unwrap_or_else(|| "not started".into());
    let state = match doc.status.state() {
        "Succeeded" => State::Done,
        "Superseded" => State::Superseded,
        "Failed" | "RolledBack" => State::Failed,
        "Stopped" => State::Stopped,
        "Waiting" => State::Waiting,
        "Progressing" => State::Updating,
        _ => State::Pending,
    };
    (state, says)
}

pub fn run_row(key: &str, doc: &RunDocument) -> RunRow {
    let (namespace, name) = split_key(key);
    let (state, says) = run_state(doc);
    RunRow {
        key: key.to_string(),
        name: name.to_string(),
        namespace: namespace.unwrap_or_default().to_string(),
        placement: split_key(doc.placement_name().unwrap_or_default()).1.to_string(),
        snapshot: doc.status.resource_snapshot_index_used.clone().unwrap_or_default(),
        state,
        says,
    }
}

/// One cluster of a stage.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub name: String,
    pub state: State,
    pub time: String,
    pub message: String,
}

/// One task of a stage, in words.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub kind: String,
    pub state: State,
    pub text: String,
    /// A soak's end (RFC 3339), counted down on the page; empty otherwise.
    pub until: String,
    /// The command that approves (an Approval waiting), and the one for a pull request.
    pub approve: String,
    pub approve_branch: String,
}

#[derive(Debug, Clone)]
pub struct StageView {
    pub name: String,
    pub state: State,
    pub started: String,
    pub ended: String,
    pub before: Vec<TaskView>,
    pub clusters: Vec<ClusterView>,
    pub after: Vec<TaskView>,
}

fn cluster_view(c: &crate::status::run::ClusterStatus) -> ClusterView {
    let newest = c.conditions.iter().max_by_key(|x| x.last_transition_time);
    let time = newest.map(|x| x.last_transition_time.to_string()).unwrap_or_default();
    let (state, message) = match c.conditions.get_condition(kind::SUCCEEDED) {
        Some(x) if x.status == "True" => (State::UpToDate, String::new()),
        Some(x) => (State::Failed, x.message.clone()),
        None if c.conditions.get_condition(kind::STARTED).is_some() => (State::Updating, String::new()),
        None => (State::Pending, String::new()),
    };
    ClusterView { name: c.cluster_name.clone(), state, time, message }
}

fn task_view(t: &TaskStatus, repo: &str, now: Time) -> TaskView {
    let mut view = TaskView {
        kind: t.type_.clone(),
        state: State::Pending,
        text: String::new(),
        until: String::new(),
        approve: String::new(),
        approve_branch: String::new(),
    };
    match t.type_.as_str() {
        "TimedWait" => {
            let done = t.conditions.is_true(kind::WAIT_TIME_ELAPSED);
            view.state = if done { State::Done } else { State::Waiting };
            view.text = match (done, t.wait_until) {
                (true, _) => "soak time elapsed".into(),
                (false, Some(until)) => {
                    view.until = until.to_string();
                    let left = until.seconds_since(now).max(0);
                    format!("soak until {until}: {} left", crate::cli::table::age(left))
                }
                (false, None) => "soak time not started".into(),
            };
        }
        "Approval" => {
            let name = t.approval_request_name.clone().unwrap_or_default();
            let approved = t.conditions.is_true(kind::APPROVAL_REQUEST_APPROVED);
            let created = t.conditions.get_condition(kind::APPROVAL_REQUEST_CREATED).is_some();
            let short = split_key(&name).1;
            view.state = match (approved, created) {
                (true, _) => State::Done,
                (false, true) => State::Waiting,
                (false, false) => State::Pending,
            };
            view.text = match (approved, created) {
                (true, _) => format!("approved ({short})"),
                (false, true) => format!("waiting for approval {short}"),
                (false, false) => "approval not requested yet".into(),
            };
            if created && !approved {
                view.approve = crate::cli::approve_command(&name, repo);
                view.approve_branch = crate::cli::approve_branch_command(&name, repo);
            }
        }
        "Verification" => {
            let verified = t.conditions.get_condition(kind::VERIFIED);
            view.state = match verified {
                Some(c) if c.status == "True" => State::Done,
                Some(_) => State::Failed,
                None if t.measurements.is_empty() => State::Pending,
                None => State::Updating,
            };
            view.text = match verified {
                Some(c) => c.message.clone(),
                None => format!("measuring ({} measurement(s) so far)", t.measurements.len()),
            };
        }
        _ => {}
    }
    view
}

fn stage_view(s: &StageStatus, repo: &str, now: Time) -> StageView {
    let state = match s.conditions.get_condition(kind::SUCCEEDED) {
        Some(c) if c.status == "True" => State::Done,
        Some(_) => State::Failed,
        None if s.start_time.is_none() => State::Pending,
        None if s
            .after_stage_task_status
            .iter()
            .chain(&s.before_stage_task_status)
            .any(|t| task_view(t, repo, now).state == State::Waiting) =>
        {
            State::Waiting
        }
        None => State::Updating,
    };
    StageView {
        name: s.stage_name.clone(),
        state,
        started: s.start_time.map(|t| t.to_string()).unwrap_or_default(),
        ended: s.end_time.map(|t| t.to_string()).unwrap_or_default(),
        before: s.before_stage_task_status.iter().map(|t| task_view(t, repo, now)).collect(),
        clusters: s.clusters.iter().map(cluster_view).collect(),
        after: s.after_stage_task_status.iter().map(|t| task_view(t, repo, now)).collect(),
    }
}

/// A run, stage by stage.
#[derive(Debug, Clone)]
pub struct RunView {
    pub row: RunRow,
    pub strategy: String,
    pub stages: Vec<StageView>,
    pub conditions: Vec<(String, String, String, String)>,
    /// A rollout window the run waits for, in the run's words.
    pub window: String,
}

pub fn run_view(key: &str, doc: &RunDocument, repo: &str, now: Time) -> RunView {
    let progressing = doc.status.conditions.get_condition(kind::PROGRESSING);
    let window = progressing
        .filter(|c| c.message.contains("rollout window"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    let mut stages: Vec<StageView> =
        doc.status.stages_status.iter().map(|s| stage_view(s, repo, now)).collect();
    if let Some(d) = &doc.status.deletion_stage_status
        && !d.clusters.is_empty()
    {
        stages.push(stage_view(d, repo, now));
    }
    RunView {
        row: run_row(key, doc),
        strategy: split_key(doc.strategy_name().unwrap_or_default()).1.to_string(),
        stages,
        conditions: doc
            .status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()))
            .collect(),
        window,
    }
}

/// An approval request that waits for a person.
#[derive(Debug, Clone)]
pub struct ApprovalView {
    pub name: String,
    pub namespace: String,
    pub run_key: String,
    pub run: String,
    pub stage: String,
    pub created: String,
    pub approve: String,
    pub approve_branch: String,
}

pub fn waiting_approvals(
    requests: &BTreeMap<String, std::sync::Arc<ApprovalRequest>>,
    repo: &str,
) -> Vec<ApprovalView> {
    requests
        .iter()
        .filter(|(_, r)| !r.is_accepted())
        .map(|(key, r)| {
            let (ns, name) = split_key(key);
            ApprovalView {
                name: name.to_string(),
                namespace: ns.unwrap_or_default().to_string(),
                run_key: r.spec.parent_stage_rollout.clone(),
                run: split_key(&r.spec.parent_stage_rollout).1.to_string(),
                stage: r.spec.target_stage.clone(),
                created: r.metadata.creation_timestamp.to_string(),
                approve: crate::cli::approve_command(key, repo),
                approve_branch: crate::cli::approve_branch_command(key, repo),
            }
        })
        .collect()
}

/// A commit of the branch, for the timeline.
#[derive(Debug, Clone)]
pub struct CommitView {
    pub id: String,
    pub time: String,
    pub author: String,
    pub subject: String,
    /// Written by gitfleet (status), or by a person.
    pub by_gitfleet: bool,
}
