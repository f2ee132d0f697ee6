//! Status written back to Git: the files under the status folder, and the clone
//! gitfleet keeps under `--state-dir` to commit and push them.

pub mod publish;
pub mod snapshots;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{ObjectType, Repository, Tree};

pub use publish::{Credentials, Identity, StateRepo, StatusError};
pub use snapshots::RecordedSnapshot;

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
