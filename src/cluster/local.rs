//! The local store: each cluster is a folder holding one YAML file per applied
//! object, at `<cluster>/<namespace or _cluster>/<kind>[.<group>]/<name>.yaml`.
//! Create, update and prune behave as on a cluster; objects are available at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{
    Backend, BackendError, FailedObject, ObjectDiff, SyncOptions, SyncReport, apply_rank, takeover_refusal,
};
use crate::render::{RenderedObject, owner};
use crate::repo::model::ObjectKey;
use crate::repo::scope::group_of;

/// Folder name for cluster-scoped objects.
const CLUSTER_SCOPE: &str = "_cluster";

/// A folder of clusters.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Objects read before, with the file's identity and times when read: a
    /// drift check reads only files that changed since (as a watch cache would).
    read: Arc<Mutex<HashMap<PathBuf, (Stamp, Value)>>>,
}

/// A file changed less than this long ago is read again next time.
const RACY: std::time::Duration = std::time::Duration::from_millis(100);

/// What tells a file changed: its inode, size and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl LocalStore {
    /// Clusters live under `root` (`<state-dir>/clusters`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into(), read: Default::default() }
    }

    /// The object in a file, parsed (again only when the file changed).
    fn read_object(&self, cluster: &str, path: &Path) -> Result<Option<Value>, BackendError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.read.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
                return Ok(None);
            }
            Err(e) => return Err(Self::io(cluster, path)(e)),
        };
        let stamp = Stamp::of(&meta);
        if let Some((seen, value)) = self.read.lock().unwrap_or_else(|e| e.into_inner()).get(path)
            && *seen == stamp
        {
            return Ok(Some(value.clone()));
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io(cluster, path)(e)),
        };
        match crate::yaml::parse_typed::<Value>(&bytes) {
            Ok(value) => {
                // The stamp from before the read: a change during it shows
                // next time. A file changed within the last moment is not
                // kept (as Git's racy index entries): a second change in the
                // same timestamp tick, at the same size, would go unseen.
                let settled =
                    meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age > RACY);
                if settled {
                    self.read
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(path.to_path_buf(), (stamp, value.clone()));
                }
                Ok(Some(value))
            }
            Err(e) => {
                tracing::warn!(cluster, file = %path.display(), "stored object does not parse, taken as missing: {e}");
                Ok(None)
            }
        }
    }

    /// The file of one object on one cluster.
    pub fn path_of(&self, cluster: &str, key: &ObjectKey) -> PathBuf {
        let kind = if key.group.is_empty() {
            key.kind.to_lowercase()
        } else {
            format!("{}.{}", key.kind.to_lowercase(), key.group)
        };
        self.root
            .join(cluster)
            .join(key.namespace.as_deref().unwrap_or(CLUSTER_SCOPE))
            .join(kind)
            .join(format!("{}.yaml", key.name))
    }

    fn io(cluster: &str, path: &Path) -> impl FnOnce(std::io::Error) -> BackendError {
        let (cluster, path) = (cluster.to_string(), path.to_path_buf());
        move |source| BackendError::Io { cluster, path, source }
    }

    /// Every object stored for a cluster: (key, content).
    fn list(&self, cluster: &str) -> Result<Vec<(ObjectKey, Value)>, BackendError> {
        let dir = self.root.join(cluster);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for file in walk(&dir).map_err(Self::io(cluster, &dir))? {
            let Some(value) = self.read_object(cluster, &file)? else { continue };
            let api_version = value["apiVersion"].as_str().unwrap_or_default();
            let key = ObjectKey {
                group: group_of(api_version).to_string(),
                kind: value["kind"].as_str().unwrap_or_default().to_string(),
                namespace: value.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
                name: value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            };
            out.push((key, value));
        }
        Ok(out)
    }
}

/// Whether an object's identity can become a path inside the cluster folder
/// (validation already refuses the rest; this guards the file system anyway).
fn safe_identity(key: &ObjectKey) -> bool {
    let part = |s: &str, may_be_empty: bool| {
        (may_be_empty || !s.is_empty()) && !s.contains('/') && s != "." && s != ".."
    };
    part(&key.name, false)
        && part(&key.kind, false)
        && part(&key.group, true)
        && key.namespace.as_deref().is_none_or(|ns| part(ns, false))
}

/// Whether a stored document is the object `key` names.
fn holds(value: &Value, key: &ObjectKey) -> bool {
    value["kind"].as_str() == Some(key.kind.as_str())
        && value.pointer("/metadata/name").and_then(Value::as_str) == Some(key.name.as_str())
        && value.pointer("/metadata/namespace").and_then(Value::as_str) == key.namespace.as_deref()
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && entry.path().extension().is_some_and(|e| e == "yaml") {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Backend for LocalStore {
    fn kind(&self) -> &'static str {
        "local-store"
    }

    fn sync(
        &self,
        cluster: &str,
        placement: &str,
        desired: &[RenderedObject],
        options: &SyncOptions,
    ) -> Result<SyncReport, BackendError> {
        let mut report = SyncReport::default();
        let take_over = options.take_over;
        let ordered = options.apply_order(desired);
        for obj in ordered {
            if !safe_identity(&obj.key) {
                report.failed.push(FailedObject::of(
                    obj,
                    format!("Failed to apply manifest: {} is not a valid object identity", obj.key),
                ));
                continue;
            }
            let path = self.path_of(cluster, &obj.key);
            let existing = std::fs::read(&path).ok().and_then(|b| crate::yaml::parse_typed::<Value>(&b).ok());
            if let Some(ns) = &obj.key.namespace {
                let ns_key = ObjectKey {
                    group: String::new(),
                    kind: "Namespace".into(),
                    namespace: None,
                    name: ns.clone(),
                };
                if !self.path_of(cluster, &ns_key).exists() {
                    report.failed.push(FailedObject::of(
                        obj,
                        format!("Failed to apply manifest: namespaces \"{ns}\" not found"),
                    ));
                    continue;
                }
            }
            if let Some(current) = &existing {
                if current == &obj.value {
                    report.unchanged += 1;
                    continue;
                }
                let refuse = takeover_refusal(owner(current).as_deref(), placement, take_over, || {
                    // The same content but for gitfleet's own marks.
                    super::compare::field_diffs(&obj.value, current).is_empty()
                });
                if let Some(reason) = refuse {
                    report.failed.push(FailedObject::of(
                        obj,
                        format!("Failed to apply manifest: {} {reason}", obj.key),
                    ));
                    continue;
                }
            }
            // One object that cannot be written (a name too long for the file
            // system, say) fails alone; the rest of the sync goes on.
            match crate::files::write_atomically(&path, crate::yaml::to_string(&obj.value).as_bytes()) {
                Ok(()) => report.applied += 1,
                Err(e) => report
                    .failed
                    .push(FailedObject::of(obj, format!("Failed to apply manifest: {}: {e}", obj.key))),
            }
        }
        // Prune: what this placement owns and no longer wants, namespaced objects first.
        let mut stale: Vec<ObjectKey> = self
            .list(cluster)?
            .into_iter()
            .filter(|(key, value)| {
                owner(value).as_deref() == Some(placement) && !desired.iter().any(|d| &d.key == key)
            })
            .map(|(key, _)| key)
            .collect();
        stale.sort_by_key(|k| std::cmp::Reverse((apply_rank(k), k.clone())));
        for key in stale {
            let path = self.path_of(cluster, &key);
            std::fs::remove_file(&path).map_err(Self::io(cluster, &path))?;
            report.pruned += 1;
        }
        Ok(report)
    }

    fn diff(&self, cluster: &str, desired: &[RenderedObject]) -> Result<Vec<ObjectDiff>, BackendError> {
        let mut out = Vec::new();
        for obj in desired {
            if !safe_identity(&obj.key) {
                continue;
            }
            // The local store holds exactly what was applied.
            let live = self.get(cluster, &obj.key)?;
            out.extend(super::compare::compare(obj, &obj.value, live.as_ref()));
        }
        Ok(out)
    }

    fn known_clusters(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn placements_on(&self, cluster: &str) -> Result<Vec<String>, BackendError> {
        let mut out: Vec<String> = self.list(cluster)?.iter().filter_map(|(_, v)| owner(v)).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A stored file that does not parse or does not hold the object its path
    /// names (truncated, damaged) holds no object: drift checks see it missing
    /// and write it again.
    fn get(&self, cluster: &str, key: &ObjectKey) -> Result<Option<Value>, BackendError> {
        let path = self.path_of(cluster, key);
        match self.read_object(cluster, &path)? {
            Some(value) if holds(&value, key) => Ok(Some(value)),
            Some(_) => {
                tracing::warn!(cluster, file = %path.display(), "stored file does not hold {key}, taken as missing");
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file changed behind gitfleet's back is read again, even at the same
    /// size and within the same second; one removed reads as missing.
    #[test]
    fn an_edited_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("app".into()),
            name: "cm".into(),
        };
        let path = store.path_of("m1", &key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let cm = |v: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: app\ndata:\n  v: \"{v}\"\n"
            )
        };
        std::fs::write(&path, cm("1")).unwrap();
        assert_eq!(store.get("m1", &key).unwrap().unwrap()["data"]["v"], "1");
        assert_eq!(store.get("m1", &key).unwrap().unwrap()["data"]["v"], "1");
        std::fs::write(&path, cm("2")).unwrap();
        assert_eq!(store.get("m1", &key).unwrap().unwrap()["data"]["v"], "2");
        std::fs::remove_file(&path).unwrap();
        assert!(store.get("m1", &key).unwrap().is_none());
        std::fs::write(&path, cm("3")).unwrap();
        assert_eq!(store.get("m1", &key).unwrap().unwrap()["data"]["v"], "3");
    }
}
