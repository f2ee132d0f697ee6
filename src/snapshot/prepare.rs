//! Preparing commits for the index: the tree diff against the previous commit
//! and the parse of every changed manifest. Owns what it needs, so that long
//! histories can be prepared on a second thread while the index applies.

use std::collections::HashMap;
use std::sync::Arc;

use git2::{Oid, Repository};

use super::treediff::{Change, TreeCache};
use crate::repo::settings::{SETTINGS_FILE, Settings};
use crate::repo::validate::{Area, ParsedFile};
use crate::repo::{parse_blob, read_settings, symlink_issue};

/// Commits to index at once before the diff-and-parse work moves to a second thread.
pub(super) const PIPELINE_MIN_COMMITS: usize = 64;

/// A commit's changes, diffed and parsed, ready to apply.
pub(super) struct Prepared {
    pub commit: Oid,
    pub time: i64,
    /// The tracked folder's tree at this commit.
    pub tree: Option<Oid>,
    pub deltas: Vec<Change>,
    /// Changed manifest files already parsed: path -> (blob, content).
    pub parsed: HashMap<String, (Oid, Arc<ParsedFile>)>,
}

/// What preparing commits needs to know: the tracked folder, the settings as the
/// commits change them, and the previous tree. Owned, so it can move to a thread.
pub(super) struct PrepareView {
    root: Option<String>,
    settings: Settings,
    tree: Option<Oid>,
    trees: TreeCache,
}

impl PrepareView {
    pub fn new(root: Option<String>, settings: Settings, tree: Option<Oid>) -> PrepareView {
        PrepareView { root, settings, tree, trees: TreeCache::default() }
    }

    /// Diffs a commit against the previous one and parses its changed manifests.
    pub fn prepare(&mut self, repo: &Repository, id: Oid) -> Result<Prepared, git2::Error> {
        let commit = repo.find_commit(id)?;
        let odb = repo.odb()?;
        let tree = match &self.root {
            None => Some(commit.tree_id()),
            Some(r) => self.trees.subtree(&odb, commit.tree_id(), r)?,
        };
        let time = commit.time().seconds();
        let mut prepared = Prepared { commit: id, time, tree, deltas: Vec::new(), parsed: HashMap::new() };
        if tree == self.tree {
            return Ok(prepared);
        }
        let settings = &self.settings;
        let skip = |path: &str| settings.skips_folder(path);
        super::treediff::diff(&odb, &mut self.trees, self.tree, tree, "", &skip, &mut prepared.deltas)?;
        if let Some(old) = self.tree {
            self.trees.forget(old);
        }
        if let Some((_, new)) = prepared.deltas.iter().find(|(p, _)| p == SETTINGS_FILE) {
            // Follow the settings as the indexer will (invalid settings keep the old ones).
            let content = new.map(|(id, _)| repo.find_blob(id)).transpose()?;
            if let (settings, None) = read_settings(content.as_ref().map(|b| b.content())) {
                self.settings = settings;
            }
        }
        for (path, new) in &prepared.deltas {
            if let Some((blob, mode)) = new
                && self.settings.classify(path) == Some(Area::Manifests)
            {
                let parsed = read_manifest_file(repo, path, *blob, *mode)?;
                prepared.parsed.insert(path.clone(), (*blob, parsed));
            }
        }
        self.tree = tree;
        Ok(prepared)
    }
}

/// Reads and parses one manifest file; a symlink is an issue, never followed.
pub(super) fn read_manifest_file(
    repo: &Repository,
    path: &str,
    blob: Oid,
    mode: u32,
) -> Result<Arc<ParsedFile>, git2::Error> {
    Ok(Arc::new(if mode == 0o120000 {
        ParsedFile { issues: vec![symlink_issue(path)], ..ParsedFile::default() }
    } else {
        parse_blob(path, repo.find_blob(blob)?.content(), Area::Manifests)
    }))
}
