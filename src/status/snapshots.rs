//! `status/clusterresourcesnapshots/<placement>-<index>-snapshot.yaml`: the
//! durable mapping of snapshot index -> commit, with the KubeFleet labels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::snapshot::SnapshotRecord;
use crate::time::Time;

pub const LABEL_PARENT: &str = "kubernetes-fleet.io/parent-CRP";
pub const LABEL_INDEX: &str = "kubernetes-fleet.io/resource-index";
pub const LABEL_LATEST: &str = "kubernetes-fleet.io/is-latest-snapshot";
pub const ANNOTATION_HASH: &str = "kubernetes-fleet.io/resource-hash";
pub const ANNOTATION_ENVELOPED: &str = "kubernetes-fleet.io/number-of-enveloped-object";
pub const ANNOTATION_SNAPSHOTS: &str = "kubernetes-fleet.io/number-of-resource-snapshots";
pub const ANNOTATION_COMMIT: &str = "gitfleet.dev/commit";
/// Folder under the status path.
pub const FOLDER: &str = "clusterresourcesnapshots";
/// Annotation of a snapshot file whose `spec.selectedResources` is left
/// empty: why (too large, or not readable).
pub const ANNOTATION_OMITTED: &str = "gitfleet.dev/selected-resources-omitted";
/// The most bytes of resources a snapshot file holds.
pub const MAX_SELECTED_BYTES: usize = 1024 * 1024;

/// A snapshot as recorded in a status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSnapshot {
    pub placement: String,
    pub index: u32,
    pub commit: String,
    pub hash: String,
    pub enveloped: usize,
    pub latest: bool,
    /// When the snapshot's commit was made (absent in a file that lost it).
    pub created: Option<Time>,
}

impl RecordedSnapshot {
    pub fn name(&self) -> String {
        snapshot_name(&self.placement, self.index)
    }

    /// The status file path, relative to the status folder
    /// (`resourcesnapshots/<namespace>/...` for a ResourcePlacement's).
    pub fn file(&self) -> String {
        format!("{}.yaml", super::scoped::path(FOLDER, &self.name()))
    }

    pub fn from_record(placement: &str, r: &SnapshotRecord, index: u32, latest: bool) -> Self {
        RecordedSnapshot {
            placement: placement.to_string(),
            index,
            commit: r.commit.to_string(),
            hash: r.hash.clone(),
            enveloped: r.enveloped,
            latest,
            created: Some(Time::from_second(r.time)),
        }
    }

    /// The ClusterResourceSnapshot object (without `spec`); a ResourceSnapshot
    /// in its namespace for a ResourcePlacement's.
    pub fn to_object(&self) -> Value {
        let mut object = self.internal_object();
        super::scoped::localize(&mut object, &self.name());
        object
    }

    fn internal_object(&self) -> Value {
        json!({
            "apiVersion": super::API_VERSION,
            "kind": "ClusterResourceSnapshot",
            "metadata": {
                "name": self.name(),
                "generation": 1,
                "creationTimestamp": self.created.map(|t| t.to_string()).unwrap_or_default(),
                "labels": {
                    LABEL_LATEST: self.latest.to_string(),
                    LABEL_PARENT: self.placement,
                    LABEL_INDEX: self.index.to_string(),
                },
                "annotations": {
                    ANNOTATION_ENVELOPED: self.enveloped.to_string(),
                    ANNOTATION_SNAPSHOTS: "1",
                    ANNOTATION_HASH: self.hash,
                    ANNOTATION_COMMIT: self.commit,
                },
            },
        })
    }

    /// The status file content.
    pub fn to_yaml(&self) -> String {
        crate::yaml::to_string(&self.to_object())
    }

    /// The status file content with `spec.selectedResources` (KubeFleet's
    /// objects have it): the manifests the snapshot holds, Secret values
    /// masked (in envelopes too). Left empty, with an annotation saying why, when they cannot
    /// be read or would make the file larger than [`MAX_SELECTED_BYTES`]
    /// (the commit holds them).
    pub fn to_yaml_with(
        &self,
        manifests: Result<&[std::sync::Arc<crate::repo::model::Manifest>], &crate::state::ContentError>,
    ) -> String {
        let mut object = self.to_object();
        let why = match manifests {
            Ok(ms) => {
                let values: Vec<Value> =
                    ms.iter().map(|m| crate::cluster::compare::shown_manifest(m)).collect();
                let count = values.len();
                object["spec"] = json!({ "selectedResources": values });
                let text = crate::yaml::to_string(&object);
                if text.len() <= MAX_SELECTED_BYTES {
                    return text;
                }
                format!("{count} objects, {} bytes of YAML", text.len())
            }
            Err(e) => format!("cannot be read: {e}"),
        };
        tracing::warn!(snapshot = %self.name(), "snapshot file without its resources ({why}); commit {} holds them", self.commit);
        object["metadata"]["annotations"][ANNOTATION_OMITTED] = Value::String(why);
        object["spec"] = json!({ "selectedResources": [] });
        crate::yaml::to_string(&object)
    }

    /// Reads a status file back; `None` when it is not a snapshot file of ours.
    /// Only what comes before `spec` (the last top-level field) is parsed: the
    /// resources are not needed, and however large or deep they are, the
    /// record stays readable.
    pub fn from_yaml(bytes: &[u8]) -> Option<RecordedSnapshot> {
        let head = bytes.windows(6).position(|w| w == b"\nspec:").map_or(bytes, |i| &bytes[..=i]);
        #[derive(Deserialize, Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            name: String,
            #[serde(default)]
            creation_timestamp: Option<String>,
            #[serde(default)]
            labels: BTreeMap<String, String>,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        #[derive(Deserialize)]
        struct File {
            kind: String,
            metadata: Meta,
        }
        let mut value: Value = crate::yaml::parse_typed(head).ok()?;
        if let Some(ns) = value.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string) {
            super::scoped::qualify(&mut value, &ns);
        }
        let f: File = serde_json::from_value(value).ok()?;
        if f.kind != "ClusterResourceSnapshot" {
            return None;
        }
        let m = f.metadata;
        Some(RecordedSnapshot {
            placement: m.labels.get(LABEL_PARENT)?.clone(),
            index: m.labels.get(LABEL_INDEX)?.parse().ok()?,
            commit: m.annotations.get(ANNOTATION_COMMIT)?.clone(),
            hash: m.annotations.get(ANNOTATION_HASH).cloned().unwrap_or_default(),
            enveloped: m.annotations.get(ANNOTATION_ENVELOPED).and_then(|v| v.parse().ok()).unwrap_or(0),
            latest: m.labels.get(LABEL_LATEST).is_some_and(|v| v == "true"),
            created: m.creation_timestamp.as_deref().and_then(Time::parse),
        })
    }
}

/// `<placement>-<index>-snapshot`.
pub fn snapshot_name(placement: &str, index: u32) -> String {
    format!("{placement}-{index}-snapshot")
}

/// The outcome of merging what the branch history computes with what status records.
#[derive(Debug, Default, Clone)]
pub struct SnapshotPlan {
    /// Every snapshot: recorded ones first, then the ones to add, by placement and index.
    pub all: Vec<RecordedSnapshot>,
    /// Files to write (relative to the status folder) and their content.
    pub writes: BTreeMap<String, String>,
    /// Files to delete (beyond `revisionHistoryLimit`).
    pub deletes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Merges computed snapshots of one placement into the recorded ones.
///
/// Recorded indices never change meaning. New snapshots are the computed ones
/// after the last recorded commit; if history was rewritten so that the last
/// recorded commit is gone, only the tip's snapshot is added, and only when its
/// hash differs from the last recorded one.
pub fn plan_placement(
    placement: &str,
    recorded: &[RecordedSnapshot],
    computed: &[SnapshotRecord],
    limit: usize,
    plan: &mut SnapshotPlan,
) {
    let mut recorded: Vec<RecordedSnapshot> = recorded.to_vec();
    recorded.sort_by_key(|r| r.index);
    let new: Vec<&SnapshotRecord> = match recorded.last() {
        None => computed.iter().collect(),
        Some(last) => match computed.iter().position(|c| c.commit.to_string() == last.commit) {
            Some(pos) => {
                if computed[pos].index != last.index {
                    plan.warnings.push(format!(
                        "placement {placement}: recorded snapshot {} is at commit {} but history numbers it {}; keeping the recorded index",
                        last.index, last.commit, computed[pos].index
                    ));
                }
                computed[pos + 1..].iter().collect()
            }
            None => {
                plan.warnings.push(format!(
                    "placement {placement}: commit {} of recorded snapshot {} is no longer on the branch (history was rewritten); recorded snapshots keep their meaning",
                    last.commit, last.index
                ));
                computed.last().filter(|c| c.hash != last.hash).into_iter().collect()
            }
        },
    };
    let next = recorded.last().map_or(0, |r| r.index + 1);
    let total = recorded.len() + new.len();
    let mut all: Vec<RecordedSnapshot> = recorded.clone();
    for (i, c) in new.iter().enumerate() {
        all.push(RecordedSnapshot::from_record(placement, c, next + i as u32, false));
    }
    for (i, s) in all.iter_mut().enumerate() {
        s.latest = i + 1 == total;
    }
    let keep_from = total.saturating_sub(limit.max(1));
    for (i, s) in all.iter().enumerate() {
        let was = recorded.iter().find(|r| r.index == s.index);
        if i < keep_from {
            if was.is_some() {
                plan.deletes.push(s.file());
            }
        } else if was != Some(s) {
            plan.writes.insert(s.file(), s.to_yaml());
        }
    }
    plan.all.extend(all);
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Oid;

    fn rec(i: u32, c: u8, hash: &str) -> SnapshotRecord {
        SnapshotRecord {
            index: i,
            commit: Oid::from_bytes(&[c; 20]).unwrap(),
            time: 0,
            hash: hash.into(),
            enveloped: 0,
            sequence: i as usize,
        }
    }

    #[test]
    fn status_file_round_trips() {
        let s = RecordedSnapshot::from_record("p", &rec(3, 7, "abc"), 3, true);
        let back = RecordedSnapshot::from_yaml(s.to_yaml().as_bytes()).unwrap();
        assert_eq!(back, s);
        let namespaced = RecordedSnapshot::from_record("team-a/p", &rec(3, 7, "abc"), 3, true);
        let object = namespaced.to_object();
        assert_eq!(object["kind"], "ResourceSnapshot");
        assert_eq!(object["metadata"]["name"], "p-3-snapshot");
        assert_eq!(object["metadata"]["namespace"], "team-a");
        assert_eq!(object["metadata"]["labels"][LABEL_PARENT], "p");
        assert_eq!(namespaced.file(), "resourcesnapshots/team-a/p-3-snapshot.yaml");
        assert_eq!(RecordedSnapshot::from_yaml(namespaced.to_yaml().as_bytes()).unwrap(), namespaced);
        // The record reads back whatever the resources are (here, nested too deep to parse).
        let mut deep = json!("leaf");
        for _ in 0..80 {
            deep = json!({ "a": deep });
        }
        let manifest = std::sync::Arc::new(crate::repo::model::Manifest {
            key: crate::repo::model::ObjectKey {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: Some("n".into()),
                name: "deep".into(),
            },
            api_version: "v1".into(),
            labels: Default::default(),
            origin: crate::repo::model::Origin { path: "x.yaml".into(), line: 1 },
            value: std::sync::Arc::new(json!({ "apiVersion": "v1", "kind": "ConfigMap", "data": deep })),
            wrapped: Vec::new(),
            envelope: None,
        });
        let text = s.to_yaml_with(Ok(&[manifest]));
        assert!(text.contains("selectedResources:"), "{text}");
        assert_eq!(RecordedSnapshot::from_yaml(text.as_bytes()).unwrap(), s);
        assert!(
            s.to_yaml().contains("kubernetes-fleet.io/is-latest-snapshot: 'true'")
                || s.to_yaml().contains("kubernetes-fleet.io/is-latest-snapshot: \"true\""),
            "{}",
            s.to_yaml()
        );
    }

    #[test]
    fn new_snapshots_follow_the_recorded_ones_and_flip_latest() {
        let mut plan = SnapshotPlan::default();
        let computed = [rec(0, 1, "a"), rec(1, 2, "b")];
        let recorded = [RecordedSnapshot::from_record("p", &computed[0], 0, true)];
        plan_placement("p", &recorded, &computed, 10, &mut plan);
        assert_eq!(plan.all.len(), 2);
        assert!(!plan.all[0].latest && plan.all[1].latest);
        assert_eq!(plan.writes.len(), 2, "index 0 rewritten with latest=false, index 1 added");
        assert!(plan.deletes.is_empty());
    }

    #[test]
    fn rewritten_history_keeps_recorded_indices() {
        let mut plan = SnapshotPlan::default();
        let recorded = [RecordedSnapshot::from_record("p", &rec(0, 1, "a"), 0, true)];
        let computed = [rec(0, 9, "x")];
        plan_placement("p", &recorded, &computed, 10, &mut plan);
        assert_eq!(plan.all.len(), 2);
        assert_eq!(plan.all[1].index, 1);
        assert_eq!(plan.all[1].commit, computed[0].commit.to_string());
        assert_eq!(plan.warnings.len(), 1);
    }

    #[test]
    fn history_limit_deletes_old_files() {
        let mut plan = SnapshotPlan::default();
        let computed: Vec<_> = (0..4).map(|i| rec(i, i as u8 + 1, &i.to_string())).collect();
        let recorded: Vec<_> = computed[..3]
            .iter()
            .map(|c| RecordedSnapshot::from_record("p", c, c.index, c.index == 2))
            .collect();
        plan_placement("p", &recorded, &computed, 2, &mut plan);
        assert_eq!(
            plan.deletes,
            vec!["clusterresourcesnapshots/p-0-snapshot.yaml", "clusterresourcesnapshots/p-1-snapshot.yaml"]
        );
        assert!(plan.writes.contains_key("clusterresourcesnapshots/p-3-snapshot.yaml"));
    }
}
