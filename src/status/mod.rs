//! Status written back to Git: every document gitfleet writes under the status
//! folder (typed, built here from typed inputs), and the clone gitfleet keeps
//! under `--state-dir` to commit and push them.
//!
//! [`conditions`] and [`run`] are plain data the engine works on; [`placement`]
//! and [`approval`] are built by the reconciler; [`snapshots`] records resource
//! snapshots; [`Documents`] reads one folder at the start of a pass and gives
//! back what changed; [`publish`] commits and pushes.

pub mod approval;
pub mod conditions;
pub mod placement;
pub mod publish;
pub mod run;
pub mod sign;
pub mod snapshots;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{ObjectType, Repository, Tree};

pub use publish::{Credentials, Identity, StateRepo, StatusError};
pub use snapshots::RecordedSnapshot;

/// `apiVersion` of every document gitfleet writes.
pub const API_VERSION: &str = "placement.kubernetes-fleet.io/v1beta1";
/// Sub-folders of the status folder.
pub const RUNS: &str = "clusterstagedupdateruns";
pub const REQUESTS: &str = "clusterapprovalrequests";
pub const PLACEMENTS: &str = "clusterresourceplacements";

/// The documents of one status sub-folder for one pass: as read at its start,
/// and as they are now. Missing fields read as empty; a file that still does
/// not parse (not YAML, a time that is not a time) is reported and kept apart
/// in `broken`: runs leave such a file as it is, placements build theirs anew.
#[derive(Debug, Clone)]
pub struct Documents<T> {
    folder: &'static str,
    before: BTreeMap<String, T>,
    pub now: BTreeMap<String, T>,
    /// File name (without `.yaml`) -> why it does not parse.
    pub broken: BTreeMap<String, String>,
}

impl<T: serde::de::DeserializeOwned + serde::Serialize + Clone + PartialEq> Documents<T> {
    /// No documents yet.
    pub fn empty(folder: &'static str) -> Documents<T> {
        Documents { folder, before: BTreeMap::new(), now: BTreeMap::new(), broken: BTreeMap::new() }
    }

    /// A document as it was in the status commit the pass started from.
    pub fn before(&self, name: &str) -> Option<&T> {
        self.before.get(name)
    }

    /// Reads every document of `folder` in the status commit (if any), each
    /// of at most `limit` bytes.
    pub fn read(
        repo: &Repository,
        status_commit: Option<git2::Oid>,
        status_root: &str,
        folder: &'static str,
        limit: usize,
    ) -> Result<Documents<T>, git2::Error> {
        let mut docs = Documents::empty(folder);
        let Some(commit) = status_commit else { return Ok(docs) };
        let tree = repo.find_commit(commit)?.tree()?;
        for (file, bytes) in read_status_folder(repo, &tree, status_root, folder)? {
            let Some(name) = file.strip_suffix(".yaml") else { continue };
            match crate::yaml::parse_status::<T>(&bytes, limit) {
                Ok(doc) => {
                    docs.before.insert(name.to_string(), doc);
                }
                Err(e) => {
                    // Never a fresh start: what depends on it waits, and the file is not overwritten.
                    tracing::error!(
                        "{status_root}/{folder}/{file}: gitfleet cannot read its own status ({e}); what depends on it is left as it is"
                    );
                    docs.broken.insert(name.to_string(), e.to_string());
                }
            }
        }
        docs.now = docs.before.clone();
        Ok(docs)
    }

    /// Adds the files of documents that changed to `out`.
    pub fn changes(&self, out: &mut StatusChanges) {
        for (name, doc) in &self.now {
            // A document gitfleet cannot read is never replaced by a fresh one.
            if self.before.get(name) != Some(doc) && !self.broken.contains_key(name) {
                out.writes
                    .insert(format!("{}/{name}.yaml", self.folder), crate::yaml::to_string(doc).into_bytes());
            }
        }
    }
}

/// Changes to the status folder, paths relative to it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatusChanges {
    pub writes: BTreeMap<String, Vec<u8>>,
    pub deletes: BTreeSet<String>,
}

impl StatusChanges {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.deletes.is_empty()
    }
}

/// The full path of the status folder inside the repository tree.
pub fn status_root(root: Option<&str>, status_path: &str) -> String {
    match root.map(|r| r.trim_matches('/')).filter(|r| !r.is_empty()) {
        Some(r) => format!("{r}/{status_path}"),
        None => status_path.to_string(),
    }
}

/// Reads every file of one status sub-folder: `(file name, content)`.
pub fn read_status_folder(
    repo: &Repository,
    tree: &Tree<'_>,
    status_root: &str,
    folder: &str,
) -> Result<Vec<(String, Vec<u8>)>, git2::Error> {
    let Ok(entry) = tree.get_path(Path::new(&format!("{status_root}/{folder}"))) else {
        return Ok(Vec::new());
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(Vec::new());
    }
    let sub = repo.find_tree(entry.id())?;
    let mut out = Vec::new();
    for e in sub.iter() {
        if e.kind() == Some(ObjectType::Blob) && e.filemode() != 0o120000 {
            let name = e.name().unwrap_or_default().to_string();
            out.push((name, repo.find_blob(e.id())?.content().to_vec()));
        }
    }
    Ok(out)
}

/// The snapshots recorded in a tree's status folder.
pub fn recorded_snapshots(
    repo: &Repository,
    tree: &Tree<'_>,
    status_root: &str,
) -> Result<Vec<RecordedSnapshot>, git2::Error> {
    let mut out: Vec<RecordedSnapshot> = read_status_folder(repo, tree, status_root, snapshots::FOLDER)?
        .into_iter()
        .filter_map(|(_, bytes)| RecordedSnapshot::from_yaml(&bytes))
        .collect();
    out.sort_by(|a, b| (&a.placement, a.index).cmp(&(&b.placement, b.index)));
    Ok(out)
}
