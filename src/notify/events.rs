//! Events from status transitions: what changed between two status commits,
//! read from the documents gitfleet wrote. The same transition always gives
//! the same event `id` (a hash of what it is about and when it happened), so a
//! receiver can drop an event it was sent twice (after a restart, say).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::status::approval::{APPROVED_BY, ApprovalRequest};
use crate::status::conditions::{Condition, Conditions, kind, reason};
use crate::status::placement::PlacementDocument;
use crate::status::run::{RunDocument, StageStatus};
use crate::time::Time;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKind {
    RunStarted,
    StageStarted,
    StageSucceeded,
    ApprovalRequested,
    ApprovalAccepted,
    ClusterFailed,
    RunWaiting,
    RunSucceeded,
    RunFailed,
    DriftDetected,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::RunStarted => "RunStarted",
            EventKind::StageStarted => "StageStarted",
            EventKind::StageSucceeded => "StageSucceeded",
            EventKind::ApprovalRequested => "ApprovalRequested",
            EventKind::ApprovalAccepted => "ApprovalAccepted",
            EventKind::ClusterFailed => "ClusterFailed",
            EventKind::RunWaiting => "RunWaiting",
            EventKind::RunSucceeded => "RunSucceeded",
            EventKind::RunFailed => "RunFailed",
            EventKind::DriftDetected => "DriftDetected",
        }
    }
}

/// One notification: the JSON format sends it as it is (fields in this order,
/// empty ones left out).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The same for the same transition: drop repeats by it.
    pub id: String,
    pub event: EventKind,
    /// When the transition happened (its condition's lastTransitionTime).
    pub time: Time,
    /// One readable line.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The condition's reason and message, as the status file has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// ApprovalRequested, ApprovalAccepted: the ClusterApprovalRequest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_request: Option<String>,
    /// ApprovalRequested: what waits for the approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// ApprovalRequested: the command that approves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_command: Option<String>,
    /// ApprovalAccepted: who approved, as gitfleet accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// RunWaiting: when the rollout window lets the run go on, if it ever does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<Time>,
    /// DriftDetected: the drifted objects (`Kind/namespace/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// The fleet repository and the status commit that recorded the transition.
    pub repository: String,
    pub commit: String,
}

/// The status documents of one commit.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub runs: BTreeMap<String, Arc<RunDocument>>,
    pub requests: BTreeMap<String, Arc<ApprovalRequest>>,
    pub placements: BTreeMap<String, Arc<PlacementDocument>>,
}

/// Where the events come from: the repository (as shown to people) and the
/// status commit.
pub struct Source<'a> {
    pub repository: &'a str,
    pub commit: &'a str,
}

/// A condition that is `status` now and was not before (absent or otherwise).
fn became<'a>(
    before: Option<&Vec<Condition>>,
    now: &'a [Condition],
    type_: &str,
    status: &str,
) -> Option<&'a Condition> {
    let c = now.iter().find(|c| c.type_ == type_ && c.status == status)?;
    let was = before.and_then(|b| b.get_condition(type_)).is_some_and(|b| b.status == status);
    (!was).then_some(c)
}

fn id(parts: &[&str]) -> String {
    let digest = sha2::Sha256::digest(parts.join("\u{0}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Source<'_> {
    /// An event about `key` (what it concerns) at `time`, with its id; the
    /// fields that apply are filled in by the caller.
    pub(crate) fn event(&self, kind: EventKind, time: Time, summary: String, key: &[&str]) -> Event {
        let time_text = time.to_string();
        let mut parts = vec![kind.name()];
        parts.extend_from_slice(key);
        parts.push(&time_text);
        Event {
            id: id(&parts),
            event: kind,
            time,
            summary,
            run: None,
            placement: None,
            stage: None,
            cluster: None,
            reason: None,
            message: None,
            approval_request: None,
            waiting: None,
            approve_command: None,
            approved_by: None,
            opens_at: None,
            objects: Vec::new(),
            repository: self.repository.to_string(),
            commit: self.commit.to_string(),
        }
    }
}

/// Every event between two views, in order: per run (in name order) its
/// start, its stages' transitions, its approvals, a wait, its end; then
/// the placements' failed and drifted clusters.
pub fn between(before: &View, now: &View, source: &Source<'_>) -> Vec<Event> {
    let mut out = Vec::new();
    let same = |a: Option<&Arc<ApprovalRequest>>, b: &Arc<ApprovalRequest>| {
        a.is_some_and(|a| Arc::ptr_eq(a, b) || a == b)
    };
    for (name, doc) in &now.runs {
        let old = before.runs.get(name);
        // A run whose document and approval requests are as they were has nothing to say.
        let requests_changed = now
            .requests
            .iter()
            .any(|(r, d)| d.spec.parent_stage_rollout == *name && !same(before.requests.get(r), d));
        if old.is_some_and(|o| Arc::ptr_eq(o, doc) || o == doc) && !requests_changed {
            continue;
        }
        let run = RunDiff {
            name,
            old: old.map(Arc::as_ref),
            doc,
            placement: doc.placement_name(),
            now,
            before,
            source,
        };
        run.events(&mut out);
    }
    // A cluster a run reported failed is not reported again by its placement.
    let failed_in_runs: BTreeSet<(String, String)> = out
        .iter()
        .filter(|e| e.event == EventKind::ClusterFailed)
        .filter_map(|e| Some((e.placement.clone()?, e.cluster.clone()?)))
        .collect();
    for (name, doc) in &now.placements {
        let old = before.placements.get(name);
        if old.is_some_and(|o| Arc::ptr_eq(o, doc) || o == doc) {
            continue;
        }
        placement_events(name, old.map(Arc::as_ref), doc, source, &failed_in_runs, &mut out);
    }
    out
}

/// An event that carries its condition's reason and message.
fn with_condition(mut e: Event, c: &Condition) -> Event {
    e.reason = Some(c.reason.clone());
    e.message = Some(c.message.clone());
    e
}

/// One run's events: its documents before and now, and where they come from.
struct RunDiff<'a> {
    name: &'a str,
    old: Option<&'a RunDocument>,
    doc: &'a RunDocument,
    placement: Option<&'a str>,
    now: &'a View,
    before: &'a View,
    source: &'a Source<'a>,
}

impl RunDiff<'_> {
    /// An event of this run (and of `stage`, if given).
    fn event(
        &self,
        kind: EventKind,
        time: Time,
        summary: String,
        stage: Option<&str>,
        key: &[&str],
    ) -> Event {
        let mut e = self.source.event(kind, time, summary, key);
        e.run = Some(self.name.to_string());
        e.placement = self.placement.map(str::to_string);
        e.stage = stage.map(str::to_string);
        e
    }

    fn events(&self, out: &mut Vec<Event>) {
        let (name, doc) = (self.name, self.doc);
        let placement = self.placement.unwrap_or("?");
        let (old_conds, conds) = (self.old.map(|o| &o.status.conditions), &doc.status.conditions);
        if let Some(c) = became(old_conds, conds, kind::INITIALIZED, "True") {
            let snapshot = doc.status.resource_snapshot_index_used.as_deref().unwrap_or("?");
            let stages = doc.status.stages_status.len();
            let summary =
                format!("Run {name} started: snapshot {snapshot} of {placement} in {stages} stage(s)");
            out.push(self.event(EventKind::RunStarted, c.last_transition_time, summary, None, &[name]));
        }
        for stage in &doc.status.stages_status {
            let old = self
                .old
                .and_then(|o| o.status.stages_status.iter().find(|s| s.stage_name == stage.stage_name));
            self.stage_events(stage, old, out);
        }
        if let Some(c) = became(old_conds, conds, kind::PROGRESSING, "False")
            && c.reason == reason::UPDATE_RUN_WAITING
            && c.message.contains("rollout window")
        {
            let waits = c.message.trim_start_matches("The updateRun is waiting for ");
            let e = self.event(
                EventKind::RunWaiting,
                c.last_transition_time,
                format!("Run {name} waits: {waits}"),
                None,
                &[name],
            );
            let mut e = with_condition(e, c);
            e.opens_at = c.message.rsplit_once(" until ").and_then(|(_, t)| Time::parse(t));
            out.push(e);
        }
        if let Some(c) = became(old_conds, conds, kind::SUCCEEDED, "True") {
            let summary = format!("Run {name} succeeded: {placement} is rolled out");
            out.push(self.event(EventKind::RunSucceeded, c.last_transition_time, summary, None, &[name]));
        }
        if let Some(c) = became(old_conds, conds, kind::SUCCEEDED, "False")
            && c.reason != reason::UPDATE_RUN_SUPERSEDED
        {
            let summary = if c.reason == reason::UPDATE_RUN_ROLLED_BACK {
                format!("Run {name} was rolled back: {}", c.message)
            } else {
                format!("Run {name} failed: {}", c.message)
            };
            let e = self.event(EventKind::RunFailed, c.last_transition_time, summary, None, &[name]);
            out.push(with_condition(e, c));
        }
    }

    fn stage_events(&self, stage: &StageStatus, old: Option<&StageStatus>, out: &mut Vec<Event>) {
        let (run, s) = (self.name, stage.stage_name.as_str());
        // Approvals the stage waits for before it starts.
        self.approval_events(stage, true, out);
        if let Some(started) = stage.start_time
            && old.is_none_or(|o| o.start_time.is_none())
        {
            let summary = format!("Run {run}: stage {s} started ({} cluster(s))", stage.clusters.len());
            out.push(self.event(EventKind::StageStarted, started, summary, Some(s), &[run, s]));
        }
        for cluster in &stage.clusters {
            let old_cluster =
                old.and_then(|o| o.clusters.iter().find(|c| c.cluster_name == cluster.cluster_name));
            let was = old_cluster.map(|o| &o.conditions);
            let Some(c) = became(was, &cluster.conditions, kind::SUCCEEDED, "False") else { continue };
            let name = cluster.cluster_name.as_str();
            let summary = format!("Run {run}: cluster {name} failed in stage {s}: {}", c.message);
            let mut e = self.event(
                EventKind::ClusterFailed,
                c.last_transition_time,
                summary,
                Some(s),
                &[run, s, name],
            );
            e.cluster = Some(name.to_string());
            out.push(with_condition(e, c));
        }
        // Approvals that hold the stages after this one (accepted before the stage succeeds).
        self.approval_events(stage, false, out);
        if let Some(c) = became(old.map(|o| &o.conditions), &stage.conditions, kind::SUCCEEDED, "True") {
            let summary = format!("Run {run}: stage {s} succeeded");
            out.push(self.event(
                EventKind::StageSucceeded,
                c.last_transition_time,
                summary,
                Some(s),
                &[run, s],
            ));
        }
    }

    /// The approval requests of the stage's before-stage or after-stage tasks.
    fn approval_events(&self, stage: &StageStatus, before_stage: bool, out: &mut Vec<Event>) {
        let (run, s) = (self.name, stage.stage_name.as_str());
        let tasks =
            if before_stage { &stage.before_stage_task_status } else { &stage.after_stage_task_status };
        for request_name in tasks.iter().filter_map(|t| t.approval_request_name.as_deref()) {
            let Some(request) = self.now.requests.get(request_name) else { continue };
            let old = self.before.requests.get(request_name);
            if old.is_none() {
                let waiting = if before_stage {
                    format!("stage {s} of run {run} waits for it before it starts")
                } else {
                    let stages = &self.doc.status.stages_status;
                    let next = stages.iter().position(|x| x.stage_name == s).and_then(|i| stages.get(i + 1));
                    match next {
                        Some(n) => {
                            format!("stage {s} of run {run} is done; stage {} waits for it", n.stage_name)
                        }
                        None => format!("stage {s} of run {run} is done; the end of the run waits for it"),
                    }
                };
                let command = crate::cli::approve_command(request_name, self.source.repository);
                let summary = format!("Approval needed: {request_name} ({waiting}); run `{command}`");
                let time = request.metadata.creation_timestamp;
                let mut e = self.event(EventKind::ApprovalRequested, time, summary, Some(s), &[request_name]);
                e.approval_request = Some(request_name.to_string());
                e.waiting = Some(waiting);
                e.approve_command = Some(command);
                out.push(e);
            }
            if request.is_accepted() && !old.is_some_and(|o| o.is_accepted()) {
                let by = request.metadata.annotations.get(APPROVED_BY).cloned().unwrap_or_default();
                let time = request
                    .status
                    .as_ref()
                    .and_then(|st| st.conditions.get_condition(kind::APPROVAL_ACCEPTED))
                    .map_or(request.metadata.creation_timestamp, |c| c.last_transition_time);
                let summary = format!("Approved: {request_name} by {by}");
                let mut e = self.event(EventKind::ApprovalAccepted, time, summary, Some(s), &[request_name]);
                e.approval_request = Some(request_name.to_string());
                e.approved_by = Some(by);
                out.push(e);
            }
        }
    }
}

fn placement_events(
    name: &str,
    old: Option<&PlacementDocument>,
    doc: &PlacementDocument,
    source: &Source<'_>,
    failed_in_runs: &BTreeSet<(String, String)>,
    out: &mut Vec<Event>,
) {
    let old_clusters: BTreeMap<&str, _> = old
        .map(|o| o.status.placement_statuses.iter().map(|c| (c.cluster_name.as_str(), c)).collect())
        .unwrap_or_default();
    for cluster in &doc.status.placement_statuses {
        let c_name = cluster.cluster_name.as_str();
        let was = old_clusters.get(c_name);
        if was.is_some_and(|w| *w == cluster) {
            continue;
        }
        // A failed apply, or objects that did not become available.
        let reported = failed_in_runs.contains(&(name.to_string(), c_name.to_string()));
        for type_ in [kind::RESOURCE_APPLIED, kind::RESOURCE_AVAILABLE].into_iter().filter(|_| !reported) {
            let Some(c) = became(was.map(|w| &w.conditions), &cluster.conditions, type_, "False") else {
                continue;
            };
            if c.reason == reason::NOT_AVAILABLE_YET {
                continue;
            }
            let mut e = source.event(
                EventKind::ClusterFailed,
                c.last_transition_time,
                format!("Placement {name}: cluster {c_name} failed: {}", c.message),
                &[name, c_name, type_],
            );
            e.placement = Some(name.to_string());
            e.cluster = Some(c_name.to_string());
            out.push(with_condition(e, c));
            break;
        }
        if !cluster.drifted_placements.is_empty() && was.is_none_or(|w| w.drifted_placements.is_empty()) {
            let objects: Vec<String> = cluster
                .drifted_placements
                .iter()
                .map(|d| {
                    let o = &d.object;
                    match &o.namespace {
                        Some(ns) => format!("{}/{ns}/{}", o.kind, o.name),
                        None => format!("{}/{}", o.kind, o.name),
                    }
                })
                .collect();
            let time = cluster
                .drifted_placements
                .iter()
                .filter_map(|d| d.first_drifted_observed_time)
                .min()
                .unwrap_or(doc.status.conditions.first().map(|c| c.last_transition_time).unwrap_or_default());
            let mut e = source.event(
                EventKind::DriftDetected,
                time,
                format!(
                    "Placement {name}: {} object(s) drifted on cluster {c_name}: {}",
                    objects.len(),
                    objects.join(", ")
                ),
                &[name, c_name],
            );
            e.placement = Some(name.to_string());
            e.cluster = Some(c_name.to_string());
            e.objects = objects;
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::conditions::Conditions;
    use crate::status::placement::cluster::{ClusterPlacementStatus, DiffedObject, ObjectRef};

    const T: i64 = 1_900_000_000;

    fn run(conds: &[(&str, bool, &str, &str)], at: i64) -> Arc<RunDocument> {
        let mut doc = RunDocument::default();
        doc.metadata.name = "r".into();
        doc.spec = serde_json::json!({"placementName": "app"});
        for (type_, status, reason, message) in conds {
            doc.status.conditions.set_condition(type_, *status, reason, message, Time::from(at), 1);
        }
        Arc::new(doc)
    }

    fn view_with_run(doc: Arc<RunDocument>) -> View {
        View { runs: [("r".to_string(), doc)].into(), ..View::default() }
    }

    fn placement(clusters: Vec<ClusterPlacementStatus>) -> View {
        let mut doc = PlacementDocument::default();
        doc.status.placement_statuses = clusters;
        View { placements: [("app".to_string(), Arc::new(doc))].into(), ..View::default() }
    }

    fn source() -> Source<'static> {
        Source { repository: "https://git.example.com/fleet.git", commit: "c0ffee" }
    }

    #[test]
    fn a_rollout_window_a_failure_and_the_same_id_for_the_same_transition() {
        let progressing = run(&[(kind::PROGRESSING, true, reason::UPDATE_RUN_PROGRESSING, "")], T);
        let message = "The updateRun is waiting for rollout window freeze (Deny): cluster c3 may not start until 2030-03-18T06:00:00Z";
        let waiting = run(&[(kind::PROGRESSING, false, reason::UPDATE_RUN_WAITING, message)], T + 60);
        let events = between(&view_with_run(progressing.clone()), &view_with_run(waiting.clone()), &source());
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e.event, EventKind::RunWaiting);
        assert_eq!(e.opens_at, Time::parse("2030-03-18T06:00:00Z"));
        assert_eq!(
            e.summary,
            "Run r waits: rollout window freeze (Deny): cluster c3 may not start until 2030-03-18T06:00:00Z"
        );
        assert_eq!((e.run.as_deref(), e.placement.as_deref()), (Some("r"), Some("app")));
        // Read again (a restart): the same id. Nothing new: no event.
        let again = between(&view_with_run(progressing.clone()), &view_with_run(waiting.clone()), &source());
        assert_eq!(again[0].id, e.id);
        assert!(between(&view_with_run(waiting.clone()), &view_with_run(waiting), &source()).is_empty());
        // Waiting for an approval is not a window: no RunWaiting.
        let gate = run(
            &[(
                kind::PROGRESSING,
                false,
                reason::UPDATE_RUN_WAITING,
                "The updateRun is waiting for after-stage tasks in stage canary to complete",
            )],
            T + 60,
        );
        assert!(between(&view_with_run(progressing.clone()), &view_with_run(gate), &source()).is_empty());

        let failed =
            run(&[(kind::SUCCEEDED, false, reason::UPDATE_RUN_FAILED, "cluster c2 failed: boom")], T + 120);
        let events = between(&view_with_run(progressing), &view_with_run(failed), &source());
        assert_eq!(events[0].event, EventKind::RunFailed);
        assert_eq!(events[0].message.as_deref(), Some("cluster c2 failed: boom"));
        let message = "Verification afterStageTasks[0] (prometheus) failed on cluster c1 ...; rolled back: c1 to snapshot 3";
        let rolled_back = run(&[(kind::SUCCEEDED, false, reason::UPDATE_RUN_ROLLED_BACK, message)], T + 120);
        let events = between(&View::default(), &view_with_run(rolled_back), &source());
        let e = events.iter().find(|e| e.event == EventKind::RunFailed).unwrap();
        assert_eq!(e.reason.as_deref(), Some("UpdateRunRolledBack"));
        assert!(e.summary.starts_with("Run r was rolled back: Verification"), "{}", e.summary);
        let superseded = run(&[(kind::SUCCEEDED, false, reason::UPDATE_RUN_SUPERSEDED, "r2")], T + 120);
        assert!(between(&View::default(), &view_with_run(superseded), &source()).is_empty());
    }

    #[test]
    fn failed_and_drifted_clusters_of_a_placement() {
        let mut ok = ClusterPlacementStatus { cluster_name: "c1".into(), ..Default::default() };
        ok.conditions.set_condition(
            kind::RESOURCE_APPLIED,
            true,
            reason::APPLY_SUCCEEDED,
            "",
            Time::from(T),
            1,
        );
        let mut failed = ok.clone();
        failed.conditions.set_condition(
            kind::RESOURCE_APPLIED,
            false,
            reason::APPLY_FAILED,
            "Failed to apply manifest: namespaces \"x\" not found",
            Time::from(T + 10),
            1,
        );
        let events = between(&placement(vec![ok.clone()]), &placement(vec![failed.clone()]), &source());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, EventKind::ClusterFailed);
        assert_eq!(events[0].cluster.as_deref(), Some("c1"));
        assert_eq!(events[0].reason.as_deref(), Some(reason::APPLY_FAILED));
        assert_eq!(
            events[0].summary,
            "Placement app: cluster c1 failed: Failed to apply manifest: namespaces \"x\" not found"
        );

        let mut drifted = ok.clone();
        drifted.drifted_placements.push(DiffedObject {
            diff: String::new(),
            envelope: None,
            first_diffed_observed_time: None,
            first_drifted_observed_time: Some(Time::from(T + 20)),
            object: ObjectRef {
                group: String::new(),
                kind: "ConfigMap".into(),
                name: "cm".into(),
                namespace: Some("app".into()),
            },
            object_on_cluster: None,
            observation_time: Time::from(T + 20),
            observed_diffs: None,
            observed_drifts: None,
            target_cluster_observed_generation: 0,
            version: "v1".into(),
        });
        let events = between(&placement(vec![ok]), &placement(vec![drifted.clone()]), &source());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, EventKind::DriftDetected);
        assert_eq!(events[0].objects, ["ConfigMap/app/cm"]);
        assert_eq!(events[0].time, Time::from(T + 20));
        // Still drifted on the next pass: nothing new.
        assert!(between(&placement(vec![drifted.clone()]), &placement(vec![drifted]), &source()).is_empty());
    }

    /// An approval accepted while its run's document stays as it was is
    /// still told; a cluster a run reported failed is not reported again by
    /// its placement.
    #[test]
    fn approvals_of_an_unchanged_run_and_one_report_per_failed_cluster() {
        use crate::status::approval::{Accepted, ApprovalRequest};
        use crate::status::run::{ClusterStatus, StageStatus, TaskStatus};
        let mut doc = RunDocument::default();
        doc.metadata.name = "r".into();
        doc.spec = serde_json::json!({"placementName": "app"});
        doc.status.stages_status = vec![StageStatus {
            stage_name: "canary".into(),
            after_stage_task_status: vec![TaskStatus {
                approval_request_name: Some("r-canary".into()),
                type_: "Approval".into(),
                ..Default::default()
            }],
            ..Default::default()
        }];
        let doc = Arc::new(doc);
        let tip = git2::Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let request = ApprovalRequest::new("r-canary", "r", "canary", Time::from(T), tip);
        let mut accepted = request.clone();
        let commit = git2::Oid::from_str("2222222222222222222222222222222222222222").unwrap();
        let by = Accepted { reason: "r", message: "m", by: "lead@example.com", commit };
        accepted.accept(&by, Time::from(T + 60));
        let view = |r: &ApprovalRequest| View {
            runs: [("r".to_string(), doc.clone())].into(),
            requests: [("r-canary".to_string(), Arc::new(r.clone()))].into(),
            ..View::default()
        };
        let events = between(&view(&request), &view(&accepted), &source());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].event, EventKind::ApprovalAccepted);
        assert_eq!(events[0].approved_by.as_deref(), Some("lead@example.com"));

        // c1 fails in the run and in the placement's status: one ClusterFailed, the run's.
        let mut failed_run = (*doc).clone();
        let mut c1 = ClusterStatus { cluster_name: "c1".into(), ..ClusterStatus::default() };
        c1.conditions.set_condition(
            kind::SUCCEEDED,
            false,
            reason::CLUSTER_UPDATING_FAILED,
            "boom",
            Time::from(T),
            1,
        );
        failed_run.status.stages_status[0].clusters.push(c1);
        let mut status = ClusterPlacementStatus { cluster_name: "c1".into(), ..Default::default() };
        status.conditions.set_condition(
            kind::RESOURCE_APPLIED,
            false,
            reason::APPLY_FAILED,
            "boom",
            Time::from(T),
            1,
        );
        let mut after = placement(vec![status]);
        after.runs.insert("r".into(), Arc::new(failed_run));
        let mut before = placement(vec![]);
        before.runs.insert("r".into(), doc.clone());
        let events = between(&before, &after, &source());
        let failed: Vec<_> = events.iter().filter(|e| e.event == EventKind::ClusterFailed).collect();
        assert_eq!(failed.len(), 1, "{events:?}");
        assert_eq!(failed[0].stage.as_deref(), Some("canary"));
    }
}
