//! How status documents are kept in files. A document that holds many
//! clusters is kept as a summary file plus one small file per cluster, so no
//! file grows with the fleet and a pass that changes k clusters writes about k
//! files:
//!
//! - a placement's `placementStatuses` go to one `ClusterResourceBinding`
//!   each (KubeFleet's own per-cluster object, named `<placement>-<cluster>`),
//!   under `clusterresourcebindings/<placement>/`;
//! - a run's per-stage cluster entries (KubeFleet's `ClusterUpdatingStatus`,
//!   with the stage and position they belong to) go to
//!   `clusterstagedupdateruns/<run>/<cluster>.yaml`.
//!
//! The summary file says how many cluster files belong to it
//! ([`CLUSTER_FILES`]), so a missing or unreadable one is an error, never a
//! cluster silently forgotten. In memory (and in `gitfleet get -o yaml`) a
//! document is always whole.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::approval::ApprovalRequest;
use super::conditions::Condition;
use super::placement::PlacementDocument;
use super::placement::cluster::{ClusterPlacementStatus, DiffedObject, FailedPlacement};
use super::run::{ClusterStatus, DELETE_STAGE, Measurement, RunDocument, StageStatus, TaskStatus};

/// Annotation of a summary document: how many cluster files belong to it.
pub const CLUSTER_FILES: &str = "gitfleet.dev/cluster-files";
/// Folder of the placements' `ClusterResourceBinding` files.
pub const BINDINGS: &str = "clusterresourcebindings";
/// Label naming a binding's placement, as KubeFleet sets it.
pub const PARENT_CRP: &str = "kubernetes-fleet.io/parent-CRP";
/// A document with more clusters than this is split.
pub const SPLIT_OVER_CLUSTERS: usize = 100;
/// A document whose whole file would be larger than this is split.
pub const SPLIT_OVER_BYTES: usize = 1024 * 1024;

/// A status document as kept in files.
pub trait Stored: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug {
    /// One cluster's file.
    type Part: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug;

    /// The folder (relative to the status root) that holds a sub-folder of
    /// cluster files per document, if documents of this kind are ever split.
    fn parts_folder() -> Option<&'static str> {
        None
    }

    /// Whether its files may hold gitfleet's own fields, kept in an
    /// annotation ([`super::extensions`]).
    fn extended() -> bool {
        false
    }

    /// The summary to write and its cluster files by file stem; no files when
    /// the document is kept whole.
    fn split(&self) -> (Cow<'_, Self>, BTreeMap<String, Self::Part>) {
        (Cow::Borrowed(self), BTreeMap::new())
    }

    /// Puts the cluster files read back (by file stem) into the summary.
    fn join(&mut self, _parts: &BTreeMap<String, Self::Part>) -> Result<(), String> {
        Ok(())
    }
}

impl Stored for ApprovalRequest {
    type Part = ();
}

impl Stored for super::eviction::EvictionDocument {
    type Part = ();
}

impl Stored for super::member::MemberDocument {
    type Part = ();
}

/// Checks the summary's count of cluster files against the files read, and
/// removes the annotation.
fn take_count(annotations: &mut BTreeMap<String, String>, found: usize) -> Result<(), String> {
    let expected = match annotations.remove(CLUSTER_FILES) {
        Some(n) => {
            n.parse::<usize>().map_err(|_| format!("annotation {CLUSTER_FILES}: {n:?} is not a count"))?
        }
        None => 0,
    };
    if expected != found {
        return Err(format!("it names {expected} cluster files, {found} were found"));
    }
    Ok(())
}

fn too_big<T: Serialize>(doc: &T) -> bool {
    crate::yaml::to_string(doc).len() > SPLIT_OVER_BYTES
}

// ---- placements ----

/// `ClusterResourceBinding`: one placement on one cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Binding {
    pub api_version: String,
    pub kind: String,
    pub metadata: BindingMetadata,
    pub spec: BindingSpec,
    pub status: BindingStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindingMetadata {
    pub labels: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BindingSpec {
    pub cluster_decision: ClusterDecision,
    /// `<placement>-<index>-snapshot`, empty until the cluster holds one.
    pub resource_snapshot_name: String,
    pub scheduling_policy_snapshot_name: String,
    pub state: String,
    pub target_cluster: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterDecision {
    pub cluster_name: String,
    pub reason: String,
    pub selected: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BindingStatus {
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffed_placements: Vec<DiffedObject>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drifted_placements: Vec<DiffedObject>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_placements: Vec<FailedPlacement>,
}

impl Binding {
    fn of(placement: &str, s: &ClusterPlacementStatus) -> Binding {
        Binding {
            api_version: super::API_VERSION.into(),
            kind: "ClusterResourceBinding".into(),
            metadata: BindingMetadata {
                labels: BTreeMap::from([(PARENT_CRP.to_string(), placement.to_string())]),
                name: format!("{placement}-{}", s.cluster_name),
            },
            spec: BindingSpec {
                cluster_decision: ClusterDecision {
                    cluster_name: s.cluster_name.clone(),
                    reason: "picked by scheduling policy".into(),
                    selected: true,
                },
                resource_snapshot_name: s
                    .observed_resource_index
                    .as_ref()
                    .map(|i| format!("{placement}-{i}-snapshot"))
                    .unwrap_or_default(),
                scheduling_policy_snapshot_name: String::new(),
                state: "Bound".into(),
                target_cluster: s.cluster_name.clone(),
            },
            status: BindingStatus {
                conditions: s.conditions.clone(),
                diffed_placements: s.diffed_placements.clone(),
                drifted_placements: s.drifted_placements.clone(),
                failed_placements: s.failed_placements.clone(),
            },
        }
    }

    fn to_status(&self, placement: &str) -> Result<ClusterPlacementStatus, String> {
        let index = match self.spec.resource_snapshot_name.as_str() {
            "" => None,
            name => {
                let index = name
                    .strip_prefix(placement)
                    .and_then(|r| r.strip_prefix('-'))
                    .and_then(|r| r.strip_suffix("-snapshot"))
                    .filter(|i| i.parse::<u32>().is_ok());
                Some(
                    index
                        .ok_or_else(|| {
                            format!(
                                "{}: resourceSnapshotName {name:?} is not one of {placement}'s snapshots",
                                self.metadata.name
                            )
                        })?
                        .to_string(),
                )
            }
        };
        Ok(ClusterPlacementStatus {
            cluster_name: self.spec.target_cluster.clone(),
            conditions: self.status.conditions.clone(),
            diffed_placements: self.status.diffed_placements.clone(),
            drifted_placements: self.status.drifted_placements.clone(),
            failed_placements: self.status.failed_placements.clone(),
            observed_resource_index: index,
        })
    }
}

impl Stored for PlacementDocument {
    type Part = Binding;

    fn extended() -> bool {
        true
    }

    fn parts_folder() -> Option<&'static str> {
        Some(BINDINGS)
    }

    fn split(&self) -> (Cow<'_, Self>, BTreeMap<String, Binding>) {
        let statuses = &self.status.placement_statuses;
        if statuses.len() <= SPLIT_OVER_CLUSTERS && !too_big(self) {
            return (Cow::Borrowed(self), BTreeMap::new());
        }
        let name = &self.metadata.name;
        // Files are named within the placement's namespace (`app-c1`, not `ns/app-c1`).
        let short = crate::repo::model::split_key(name).1;
        let parts: BTreeMap<String, Binding> =
            statuses.iter().map(|s| (format!("{short}-{}", s.cluster_name), Binding::of(name, s))).collect();
        if parts.len() != statuses.len() {
            return (Cow::Borrowed(self), BTreeMap::new()); // a cluster twice: kept whole
        }
        let mut summary = self.clone();
        summary.status.placement_statuses.clear();
        summary.metadata.annotations.insert(CLUSTER_FILES.into(), parts.len().to_string());
        (Cow::Owned(summary), parts)
    }

    fn join(&mut self, parts: &BTreeMap<String, Binding>) -> Result<(), String> {
        take_count(&mut self.metadata.annotations, parts.len())?;
        let name = self.metadata.name.clone();
        let namespace = crate::repo::model::split_key(&name).0;
        for (file, b) in parts {
            let expected = crate::repo::model::object_key(namespace, file);
            if b.metadata.labels.get(PARENT_CRP) != Some(&name) || b.metadata.name != expected {
                return Err(format!("{file}: not a binding of placement {name}"));
            }
            self.status.placement_statuses.push(b.to_status(&name)?);
        }
        // Statuses are kept in cluster order, as scheduling lists them.
        self.status.placement_statuses.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
        Ok(())
    }
}

// ---- runs ----

/// One cluster of a run: its entry in a stage's `clusters`, the stage it
/// belongs to and its position there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCluster {
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The cluster's Verification measurements, by task.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<TaskMeasurements>,
    pub position: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_resource_snapshot_index: Option<String>,
    pub stage_name: String,
}

/// One cluster's measurements of one task of its stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskMeasurements {
    /// `beforeStageTasks[0]` or `afterStageTasks[1]`.
    pub task: String,
    /// In the order taken; `cluster` is the file's.
    pub measurements: Vec<Measurement>,
}

const TASK_LISTS: [&str; 2] = ["beforeStageTasks", "afterStageTasks"];

fn task_list<'s>(stage: &'s mut StageStatus, list: &str) -> Option<&'s mut Vec<TaskStatus>> {
    match list {
        "beforeStageTasks" => Some(&mut stage.before_stage_task_status),
        "afterStageTasks" => Some(&mut stage.after_stage_task_status),
        _ => None,
    }
}

/// Moves the measurements of a cluster of `stage` into its part (those of
/// no cluster, or of one without a part, stay).
fn split_measurements(stage: &mut StageStatus, parts: &mut BTreeMap<String, RunCluster>) {
    for list in TASK_LISTS {
        let Some(tasks) = task_list(stage, list) else { continue };
        for (t, task) in tasks.iter_mut().enumerate() {
            let name = format!("{list}[{t}]");
            task.measurements.retain(|m| {
                let Some(part) = m.cluster.as_ref().and_then(|c| parts.get_mut(c)) else { return true };
                if part.measurements.last().is_none_or(|l| l.task != name) {
                    part.measurements.push(TaskMeasurements { task: name.clone(), measurements: Vec::new() });
                }
                let mut m = m.clone();
                m.cluster = None;
                part.measurements.last_mut().expect("pushed above").measurements.push(m);
                false
            });
        }
    }
}

/// Puts a part's measurements back under their tasks.
fn join_measurements(stage: &mut StageStatus, part: &RunCluster) -> Result<(), String> {
    for tm in &part.measurements {
        let found = tm.task.strip_suffix(']').and_then(|t| t.split_once('[')).and_then(|(list, i)| {
            let i: usize = i.parse().ok()?;
            task_list(stage, list)?.get_mut(i)
        });
        let Some(task) = found else {
            return Err(format!(
                "{}.yaml names task {:?}, which stage {} does not have",
                part.cluster_name, tm.task, part.stage_name
            ));
        };
        task.measurements.extend(
            tm.measurements
                .iter()
                .map(|m| Measurement { cluster: Some(part.cluster_name.clone()), ..m.clone() }),
        );
    }
    Ok(())
}

/// Measurements in the order they were taken: by time, then (taken in one
/// pass) in the order of the stage's clusters.
fn order_measurements(stage: &mut StageStatus) {
    let position: BTreeMap<String, usize> =
        stage.clusters.iter().enumerate().map(|(i, c)| (c.cluster_name.clone(), i)).collect();
    for list in TASK_LISTS {
        let Some(tasks) = task_list(stage, list) else { continue };
        for task in tasks {
            task.measurements.sort_by_key(|m| {
                (m.time, m.cluster.as_ref().and_then(|c| position.get(c)).copied().unwrap_or(0))
            });
        }
    }
}

fn stages_mut(doc: &mut RunDocument) -> impl Iterator<Item = &mut StageStatus> {
    doc.status.stages_status.iter_mut().chain(doc.status.deletion_stage_status.as_mut())
}

impl Stored for RunDocument {
    type Part = RunCluster;

    fn extended() -> bool {
        true
    }

    fn parts_folder() -> Option<&'static str> {
        Some(super::RUNS)
    }

    fn split(&self) -> (Cow<'_, Self>, BTreeMap<String, RunCluster>) {
        let stages = || self.status.stages_status.iter().chain(self.status.deletion_stage_status.as_ref());
        let count: usize = stages().map(|s| s.clusters.len()).sum();
        if count <= SPLIT_OVER_CLUSTERS && !too_big(self) {
            return (Cow::Borrowed(self), BTreeMap::new());
        }
        let mut parts: BTreeMap<String, RunCluster> = stages()
            .flat_map(|stage| {
                stage.clusters.iter().enumerate().map(move |(position, c)| (stage, position, c))
            })
            .map(|(stage, position, c)| {
                let part = RunCluster {
                    cluster_name: c.cluster_name.clone(),
                    conditions: c.conditions.clone(),
                    measurements: Vec::new(),
                    position,
                    previous_resource_snapshot_index: c.previous_resource_snapshot_index.clone(),
                    stage_name: stage.stage_name.clone(),
                };
                (c.cluster_name.clone(), part)
            })
            .collect();
        if parts.len() != count {
            return (Cow::Borrowed(self), BTreeMap::new()); // a cluster twice: kept whole
        }
        let mut summary = self.clone();
        for stage in &mut summary.status.stages_status {
            split_measurements(stage, &mut parts);
        }
        stages_mut(&mut summary).for_each(|s| s.clusters.clear());
        summary.metadata.annotations.insert(CLUSTER_FILES.into(), parts.len().to_string());
        (Cow::Owned(summary), parts)
    }

    fn join(&mut self, parts: &BTreeMap<String, RunCluster>) -> Result<(), String> {
        take_count(&mut self.metadata.annotations, parts.len())?;
        let mut by_stage: BTreeMap<&str, Vec<&RunCluster>> = BTreeMap::new();
        for (file, part) in parts {
            if part.cluster_name != *file {
                return Err(format!("{file}.yaml holds cluster {:?}", part.cluster_name));
            }
            by_stage.entry(part.stage_name.as_str()).or_default().push(part);
        }
        for stage in stages_mut(self) {
            let Some(mut clusters) = by_stage.remove(stage.stage_name.as_str()) else { continue };
            clusters.sort_by_key(|c| c.position);
            let measured = clusters.iter().any(|c| !c.measurements.is_empty());
            for c in &clusters {
                join_measurements(stage, c)?;
            }
            stage.clusters.extend(clusters.into_iter().map(|c| ClusterStatus {
                cluster_name: c.cluster_name.clone(),
                conditions: c.conditions.clone(),
                previous_resource_snapshot_index: c.previous_resource_snapshot_index.clone(),
            }));
            if measured {
                order_measurements(stage);
            }
        }
        match by_stage.keys().next() {
            Some(stage) if *stage == DELETE_STAGE => {
                Err("cluster files name the deletion stage, which the run does not have".into())
            }
            Some(stage) => Err(format!("cluster files name stage {stage:?}, which the run does not have")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::conditions::Conditions;
    use crate::status::placement::PlacementMetadata;
    use crate::status::{Documents, StatusChanges};
    use crate::time::Time;

    fn conditions(applied: bool) -> Vec<Condition> {
        let mut c = Vec::new();
        c.set_condition("Applied", applied, "Applied", "applied", Time::from_second(1_700_000_000), 1);
        c
    }

    fn placement(clusters: usize) -> PlacementDocument {
        let mut doc = PlacementDocument {
            api_version: crate::status::API_VERSION.into(),
            kind: "ClusterResourcePlacement".into(),
            metadata: PlacementMetadata { generation: 1, name: "app".into(), ..Default::default() },
            ..Default::default()
        };
        doc.status.conditions = conditions(true);
        doc.status.placement_statuses = (0..clusters)
            .map(|i| ClusterPlacementStatus {
                cluster_name: format!("c{i:05}"),
                conditions: conditions(true),
                observed_resource_index: (i % 2 == 0).then(|| "3".to_string()),
                ..Default::default()
            })
            .collect();
        doc
    }

    fn run(per_stage: usize) -> RunDocument {
        let mut doc = RunDocument { kind: "ClusterStagedUpdateRun".into(), ..Default::default() };
        doc.metadata.name = "r".into();
        doc.metadata.annotations.insert("gitfleet.dev/sequence".into(), "4".into());
        let stage = |name: &str, first: usize, n: usize| StageStatus {
            stage_name: name.into(),
            // Not in name order: the order a sortingLabelKey gave is kept.
            clusters: (first..first + n)
                .rev()
                .map(|i| ClusterStatus {
                    cluster_name: format!("c{i:05}"),
                    conditions: conditions(i % 3 == 0),
                    previous_resource_snapshot_index: (i % 2 == 0).then(|| "2".to_string()),
                })
                .collect(),
            conditions: conditions(true),
            ..Default::default()
        };
        doc.status.stages_status =
            vec![stage("canary", 0, per_stage), stage("prod", per_stage, per_stage), stage("empty", 0, 0)];
        doc.status.deletion_stage_status = Some(stage(DELETE_STAGE, 2 * per_stage, 3));
        doc
    }

    #[test]
    fn a_small_document_is_kept_whole() {
        let doc = placement(SPLIT_OVER_CLUSTERS);
        let (main, parts) = doc.split();
        assert!(parts.is_empty());
        assert_eq!(main.as_ref(), &doc);
        let doc = run(40);
        assert!(doc.split().1.is_empty());
    }

    #[test]
    fn a_large_placement_is_a_summary_and_one_binding_per_cluster() {
        let doc = placement(150);
        let (main, parts) = doc.split();
        assert_eq!(parts.len(), 150);
        assert!(main.status.placement_statuses.is_empty());
        assert_eq!(main.status.conditions, doc.status.conditions);
        assert_eq!(main.metadata.annotations[CLUSTER_FILES], "150");
        let b = &parts["app-c00002"];
        assert_eq!(b.kind, "ClusterResourceBinding");
        assert_eq!(b.metadata.name, "app-c00002");
        assert_eq!(b.metadata.labels[PARENT_CRP], "app");
        assert_eq!(b.spec.target_cluster, "c00002");
        assert_eq!(b.spec.resource_snapshot_name, "app-3-snapshot");
        assert_eq!(b.spec.state, "Bound");
        assert_eq!(parts["app-c00001"].spec.resource_snapshot_name, "");
        // Each file small, whatever the fleet.
        assert!(crate::yaml::to_string(b).len() < 1024);
        assert!(crate::yaml::to_string(&main).len() < 2048);

        let mut back = main.into_owned();
        back.join(&parts).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn a_large_run_keeps_stages_order_and_the_deletion_stage() {
        let doc = run(80);
        let (main, parts) = doc.split();
        assert_eq!(parts.len(), 163);
        assert!(main.status.stages_status.iter().all(|s| s.clusters.is_empty()));
        assert!(main.status.deletion_stage_status.as_ref().unwrap().clusters.is_empty());
        assert_eq!(main.metadata.annotations[CLUSTER_FILES], "163");
        assert_eq!(parts["c00161"].stage_name, DELETE_STAGE);
        let mut back = main.into_owned();
        back.join(&parts).unwrap();
        assert_eq!(back, doc);
    }

    /// Each cluster's Verification measurements go to its own file; a task's
    /// list comes back in the order it was taken.
    #[test]
    fn measurements_are_kept_with_their_cluster() {
        use crate::status::run::{Measurement, TaskStatus};
        let mut doc = run(80);
        let canary = &mut doc.status.stages_status[0];
        let names: Vec<String> = canary.clusters.iter().map(|c| c.cluster_name.clone()).collect();
        let mut measured = Vec::new();
        for round in 0..3 {
            for name in &names {
                measured.push(Measurement {
                    cluster: Some(name.clone()),
                    phase: "Successful".into(),
                    time: Time::from_second(1_700_000_000 + 30 * round),
                    value: Some(format!("0.0{round}")),
                    ..Default::default()
                });
            }
        }
        let whole_stage = Measurement {
            phase: "Inconclusive".into(),
            message: Some("no data".into()),
            ..Default::default()
        };
        canary.after_stage_task_status = vec![
            TaskStatus { type_: "TimedWait".into(), ..Default::default() },
            TaskStatus { type_: "Verification".into(), measurements: measured, ..Default::default() },
        ];
        canary.before_stage_task_status = vec![TaskStatus {
            type_: "Verification".into(),
            measurements: vec![whole_stage],
            ..Default::default()
        }];
        let (main, parts) = doc.split();
        let kept = &main.status.stages_status[0];
        assert!(kept.after_stage_task_status[1].measurements.is_empty(), "each went to its cluster's file");
        assert_eq!(kept.before_stage_task_status[0].measurements.len(), 1, "one of no cluster stays");
        let part = &parts[&names[5]];
        assert_eq!(part.measurements.len(), 1);
        assert_eq!(part.measurements[0].task, "afterStageTasks[1]");
        assert_eq!(part.measurements[0].measurements.len(), 3);
        assert!(part.measurements[0].measurements.iter().all(|m| m.cluster.is_none()));
        let mut back = main.into_owned();
        back.join(&parts).unwrap();
        assert_eq!(back, doc);

        let (main, mut parts) = doc.split();
        parts.get_mut(&names[0]).unwrap().measurements[0].task = "afterStageTasks[7]".into();
        let err = main.into_owned().join(&parts).unwrap_err();
        assert_eq!(
            err,
            format!("{}.yaml names task \"afterStageTasks[7]\", which stage canary does not have", names[0])
        );
    }

    #[test]
    fn a_missing_or_foreign_cluster_file_is_an_error() {
        let doc = placement(150);
        let (main, mut parts) = doc.split();
        parts.remove("app-c00007");
        let err = main.clone().into_owned().join(&parts).unwrap_err();
        assert_eq!(err, "it names 150 cluster files, 149 were found");
        let mut other = parts["app-c00008"].clone();
        other.metadata.labels.insert(PARENT_CRP.into(), "web".into());
        parts.insert("app-c00007".into(), other);
        let err = main.into_owned().join(&parts).unwrap_err();
        assert_eq!(err, "app-c00007: not a binding of placement app");

        let doc = run(80);
        let (main, mut parts) = doc.split();
        parts.get_mut("c00003").unwrap().stage_name = "gone".into();
        let err = main.into_owned().join(&parts).unwrap_err();
        assert_eq!(err, "cluster files name stage \"gone\", which the run does not have");
    }

    /// What a pass writes grows with what changed, not with the fleet.
    #[test]
    fn a_change_to_k_clusters_writes_k_files() {
        let doc = placement(1000);
        let mut docs: Documents<PlacementDocument> =
            Documents::of(crate::status::PLACEMENTS, [("app".to_string(), doc)]);
        let mut out = StatusChanges::default();
        docs.changes(&mut out);
        assert!(out.is_empty());

        let now = docs.get_mut("app").unwrap();
        for i in [3, 500, 999] {
            now.status.placement_statuses[i].observed_resource_index = Some("4".into());
        }
        now.status.placement_statuses.remove(10);
        docs.changes(&mut out);
        let written: Vec<&str> = out.writes.keys().map(String::as_str).collect();
        assert_eq!(
            written,
            [
                "clusterresourcebindings/app/app-c00003.yaml",
                "clusterresourcebindings/app/app-c00500.yaml",
                "clusterresourcebindings/app/app-c00999.yaml",
                "clusterresourceplacements/app.yaml",
            ]
        );
        let summary: PlacementDocument =
            crate::yaml::parse_status(&out.writes["clusterresourceplacements/app.yaml"], 1 << 20).unwrap();
        assert_eq!(summary.metadata.annotations[CLUSTER_FILES], "999");
        assert_eq!(out.deletes.iter().collect::<Vec<_>>(), ["clusterresourcebindings/app/app-c00010.yaml"]);

        // Back under the threshold: one whole file, every binding removed.
        let mut docs2 = docs.clone();
        docs2.get_mut("app").unwrap().status.placement_statuses.truncate(5);
        let mut out = StatusChanges::default();
        docs2.changes(&mut out);
        assert_eq!(out.writes.keys().collect::<Vec<_>>(), ["clusterresourceplacements/app.yaml"]);
        assert_eq!(out.deletes.len(), 1000);
    }

    /// A large ResourcePlacement and StagedUpdateRun (namespaced keys) are
    /// written to their namespace's folders in KubeFleet's namespaced form
    /// and read back whole.
    #[test]
    fn large_namespaced_documents_round_trip_through_git() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let mut doc = placement(150);
        doc.metadata.name = "team-a/app".into();
        let mut run_doc = run(80);
        run_doc.metadata.name = "team-a/r".into();
        let mut out = StatusChanges::default();
        Documents::<PlacementDocument>::empty(crate::status::PLACEMENTS).changes_of(
            "team-a/app",
            &doc,
            &mut out,
        );
        Documents::<RunDocument>::empty(crate::status::RUNS).changes_of("team-a/r", &run_doc, &mut out);
        let files: BTreeMap<String, Vec<u8>> =
            out.writes.into_iter().map(|(path, content)| (format!("status/{path}"), content)).collect();
        let binding =
            String::from_utf8(files["status/resourcebindings/team-a/app/app-c00002.yaml"].clone()).unwrap();
        assert!(binding.contains("kind: ResourceBinding"), "{binding}");
        assert!(binding.contains("name: app-c00002\n") && binding.contains("namespace: team-a"), "{binding}");
        assert!(binding.contains("resourceSnapshotName: app-3-snapshot"), "{binding}");
        assert!(files.contains_key("status/resourceplacements/team-a/app.yaml"));
        assert!(files.contains_key("status/stagedupdateruns/team-a/r.yaml"));
        assert!(files.contains_key("status/stagedupdateruns/team-a/r/c00001.yaml"));
        let c = commit(&repo, &files);
        let placements = Documents::<PlacementDocument>::read(
            &repo,
            Some(c),
            "status",
            crate::status::PLACEMENTS,
            1 << 20,
            &mut Default::default(),
        )
        .unwrap();
        assert!(placements.broken.is_empty(), "{:?}", placements.broken);
        assert_eq!(placements.get("team-a/app"), Some(&doc));
        let runs = Documents::<RunDocument>::read(
            &repo,
            Some(c),
            "status",
            crate::status::RUNS,
            1 << 20,
            &mut Default::default(),
        )
        .unwrap();
        assert!(runs.broken.is_empty(), "{:?}", runs.broken);
        assert_eq!(runs.get("team-a/r"), Some(&run_doc));
    }

    /// Commits `files` (path -> content) as the whole tree of a new commit.
    fn commit(repo: &git2::Repository, files: &BTreeMap<String, Vec<u8>>) -> git2::Oid {
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, content) in files {
            let blob = repo.blob(content).unwrap();
            update.upsert(path.as_str(), blob, git2::FileMode::Blob);
        }
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = update.create_updated(repo, &repo.find_tree(empty).unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        repo.commit(None, &sig, &sig, "status", &repo.find_tree(tree).unwrap(), &[]).unwrap()
    }

    /// The files a placement document is written to, under `status/`.
    fn files_of(doc: &PlacementDocument) -> BTreeMap<String, Vec<u8>> {
        let mut out = StatusChanges::default();
        Documents::<PlacementDocument>::empty(crate::status::PLACEMENTS).changes_of("app", doc, &mut out);
        out.writes.into_iter().map(|(path, content)| (format!("status/{path}"), content)).collect()
    }

    /// A document none of whose files changed is taken from the previous
    /// read; one file changed is read again; missing or oversized files are
    /// errors whatever was read before.
    #[test]
    fn a_read_takes_what_did_not_change_from_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let doc = placement(150);
        let mut files = files_of(&doc);
        assert_eq!(files.len(), 151);
        let c1 = commit(&repo, &files);
        let mut cache = Default::default();
        let read = |c, limit, cache: &mut _| {
            Documents::<PlacementDocument>::read(
                &repo,
                Some(c),
                "status",
                crate::status::PLACEMENTS,
                limit,
                cache,
            )
            .unwrap()
        };
        let first = read(c1, 1 << 20, &mut cache);
        assert_eq!(first.get("app"), Some(&doc));
        let again = read(c1, 1 << 20, &mut cache);
        assert!(std::sync::Arc::ptr_eq(&first.now["app"], &again.now["app"]), "taken as it was");

        let mut changed = doc.clone();
        changed.status.placement_statuses[3].observed_resource_index = Some("9".into());
        let binding = "status/clusterresourcebindings/app/app-c00003.yaml".to_string();
        files.insert(binding.clone(), files_of(&changed).remove(&binding).unwrap());
        let c2 = commit(&repo, &files);
        let second = read(c2, 1 << 20, &mut cache);
        assert_eq!(second.get("app"), Some(&changed));
        assert!(second.broken.is_empty());

        files.remove("status/clusterresourcebindings/app/app-c00004.yaml");
        let c3 = commit(&repo, &files);
        let third = read(c3, 1 << 20, &mut cache);
        assert!(third.get("app").is_none());
        assert_eq!(
            third.broken["app"],
            "its cluster files under status/clusterresourcebindings/app/ do not fit: it names 150 cluster files, 149 were found"
        );

        // Read before under a larger limit: still held to this one.
        let small = read(c2, 1 << 20, &mut cache);
        assert!(small.broken.is_empty());
        let largest = files.values().map(Vec::len).max().unwrap();
        let small = read(c2, largest - 1, &mut cache);
        assert!(small.get("app").is_none());
        assert!(small.broken["app"].contains("file is too large"), "{}", small.broken["app"]);
    }
}
