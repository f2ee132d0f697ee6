//! Preparing commits for the index: the tree diff against the previous commit
//! and the read of every changed manifest (one thread, in order), then their
//! parse (any thread) into small summaries the index keeps.

use std::collections::BTreeMap;
use std::sync::Arc;

use git2::{Oid, Repository};
use serde_json::Value;

use super::treediff::TreeCache;
use crate::repo::model::HistoryKey;
use crate::repo::model::{FleetObject, ObjectKey, Placement};
use crate::repo::settings::{SETTINGS_FILE, Settings};
use crate::repo::validate::{Area, ContentHash, Issue, ParsedFile};
use crate::repo::{parse_blob, read_settings, symlink_issue};

/// Commits to index at once before the diff-and-parse work moves to other threads.
pub(super) const PIPELINE_MIN_COMMITS: usize = 64;

/// At most this many commits, or changed manifest files, are handed from the
/// reading thread to one parsing thread at once; a commit changing more files
/// is split across parsing threads.
pub(super) const BATCH_COMMITS: usize = 64;
pub(super) const BATCH_FILES: usize = 64;

/// What the history walk knows of a commit to index.
#[derive(Debug, Clone, Copy)]
pub(super) struct CommitInfo {
    pub id: Oid,
    pub tree: Oid,
    /// Commit time, seconds since the epoch.
    pub time: i64,
}

/// A changed manifest file of a commit.
pub(super) struct ManifestChange {
    pub path: String,
    /// The new blob and file mode; `None` when the file was deleted.
    pub new: Option<(Oid, u32)>,
    /// The content read, until it is parsed.
    content: Vec<u8>,
    /// The parsed file, once parsed.
    pub summary: Option<Arc<FileSummary>>,
}

/// A commit's changes: read from Git (tree diff, changed manifests), then parsed,
/// ready to apply.
pub(super) struct Prepared {
    pub commit: Oid,
    pub time: i64,
    /// The tracked folder's tree at this commit.
    pub tree: Option<Oid>,
    /// The settings file changed: its new blob, or `None` when deleted.
    pub settings: Option<Option<Oid>>,
    /// Changed manifest files, in tree order.
    pub manifests: Vec<ManifestChange>,
    /// Only a part: more of this commit's files follow.
    pub more: bool,
}

impl Prepared {
    /// How many files are to parse.
    pub fn files(&self) -> usize {
        self.manifests.iter().filter(|m| m.new.is_some()).count()
    }

    /// Splits a commit into parts of at most `n` changed files each.
    pub fn split(mut self, n: usize) -> Vec<Prepared> {
        let mut parts = Vec::new();
        while self.manifests.len() > n {
            let rest = self.manifests.split_off(n);
            let manifests = std::mem::replace(&mut self.manifests, rest);
            parts.push(Prepared { manifests, settings: self.settings.take(), more: true, ..self });
        }
        parts.push(self);
        parts
    }

    /// Adds the next part of the same commit.
    pub fn merge(&mut self, next: Prepared) {
        self.manifests.extend(next.manifests);
        self.settings = self.settings.or(next.settings);
        self.more = next.more;
    }

    /// Parses the changed manifest files read.
    pub fn parse(mut self) -> Prepared {
        for m in &mut self.manifests {
            if let Some((_, mode)) = m.new {
                let content = std::mem::take(&mut m.content);
                m.summary = Some(Arc::new(FileSummary::of(&parse_content(&m.path, mode, &content))));
            }
        }
        self
    }
}

/// A hub resource as the index keeps it: what selecting and hashing need.
#[derive(Debug)]
pub(super) struct HubObject {
    pub key: ObjectKey,
    pub labels: BTreeMap<String, String>,
    pub line: u64,
    pub hash: ContentHash,
    /// The number of wrapped objects, for envelopes.
    pub wrapped: Option<usize>,
}

impl HubObject {
    /// Whether the placement selects this object by one of its selectors.
    pub fn selected_by(&self, p: &Placement) -> bool {
        super::select::selects_key(p, &self.key, &self.labels)
    }

    /// Whether selecting this object (a Namespace) brings the resources inside it.
    pub fn brings_content_for(&self, p: &Placement) -> bool {
        super::select::brings_namespace_of(p, &self.key, &self.labels)
    }
}

/// What the index keeps of a manifest file. Made on the thread that parsed the
/// file, which frees the parsed documents too: only this small summary moves on.
#[derive(Debug, Default)]
pub(super) struct FileSummary {
    pub hub: Vec<Arc<HubObject>>,
    /// Placements, with the hash of their `spec.policy`.
    pub placements: Vec<(Placement, ContentHash)>,
    /// Every gitfleet object, with its content hash.
    pub history: Vec<(HistoryKey, ContentHash)>,
    pub issues: Vec<Issue>,
}

impl FileSummary {
    pub fn of(file: &ParsedFile) -> FileSummary {
        let mut summary = FileSummary { issues: file.issues.clone(), ..FileSummary::default() };
        for ((object, hash), value) in file.objects.iter().zip(&file.hashes).zip(&file.values) {
            match object {
                FleetObject::Hub(m) => summary.hub.push(Arc::new(HubObject {
                    key: m.key.clone(),
                    labels: m.labels.clone(),
                    line: m.origin.line,
                    hash: *hash,
                    wrapped: m.envelope.map(|_| m.wrapped.len()),
                })),
                FleetObject::Placement(p) => {
                    let policy = super::hash_value(value.pointer("/spec/policy").unwrap_or(&Value::Null));
                    summary.placements.push((p.clone(), policy));
                }
                _ => {}
            }
            if let Some(key) = object.history_key() {
                summary.history.push((key, *hash));
            }
        }
        summary
    }

    /// A file with any problem is broken as a whole.
    pub fn is_broken(&self) -> bool {
        !self.issues.is_empty()
    }
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
    pub fn prepare(&mut self, repo: &Repository, info: &CommitInfo) -> Result<Prepared, git2::Error> {
        Ok(self.read(repo, info)?.parse())
    }

    /// Diffs a commit against the previous one and reads its changed manifests
    /// (the ones the settings in force after this commit's settings change classify
    /// as manifests: when the settings change, the indexer re-reads everything anyway).
    pub fn read(&mut self, repo: &Repository, info: &CommitInfo) -> Result<Prepared, git2::Error> {
        let odb = repo.odb()?;
        let tree = match &self.root {
            None => Some(info.tree),
            Some(r) => self.trees.subtree(&odb, info.tree, r)?,
        };
        let mut read = Prepared {
            commit: info.id,
            time: info.time,
            tree,
            settings: None,
            manifests: Vec::new(),
            more: false,
        };
        if tree == self.tree {
            return Ok(read);
        }
        let mut deltas = Vec::new();
        let settings = &self.settings;
        let skip = |path: &str| settings.skips_folder(path);
        super::treediff::diff(&odb, &mut self.trees, self.tree, tree, "", &skip, &mut deltas)?;
        if let Some(old) = self.tree {
            self.trees.forget(old);
        }
        if let Some((_, new)) = deltas.iter().find(|(p, _)| p == SETTINGS_FILE) {
            read.settings = Some(new.map(|(id, _)| id));
            // Follow the settings as the indexer will (invalid settings keep the old ones).
            let content = new.map(|(id, _)| repo.find_blob(id)).transpose()?;
            if let (settings, None) = read_settings(content.as_ref().map(|b| b.content())) {
                self.settings = settings;
            }
        }
        for (path, new) in deltas {
            if self.settings.classify(&path) != Some(Area::Manifests) {
                continue;
            }
            let content = match new {
                Some((blob, mode)) if mode != SYMLINK => odb.read(blob)?.data().to_vec(),
                _ => Vec::new(),
            };
            read.manifests.push(ManifestChange { path, new, content, summary: None });
        }
        self.tree = tree;
        Ok(read)
    }
}

const SYMLINK: u32 = 0o120000;

/// Parses one manifest file's content; a symlink is an issue, never followed.
fn parse_content(path: &str, mode: u32, content: &[u8]) -> ParsedFile {
    if mode == SYMLINK {
        ParsedFile { issues: vec![symlink_issue(path)], ..ParsedFile::default() }
    } else {
        parse_blob(path, content, Area::Manifests)
    }
}

/// Reads and parses one manifest file; a symlink is an issue, never followed.
pub(super) fn read_manifest_file(
    repo: &Repository,
    path: &str,
    blob: Oid,
    mode: u32,
) -> Result<ParsedFile, git2::Error> {
    Ok(if mode == SYMLINK {
        parse_content(path, mode, &[])
    } else {
        parse_content(path, mode, repo.find_blob(blob)?.content())
    })
}

/// Reads, parses and summarises one manifest file.
pub(super) fn read_summary(
    repo: &Repository,
    path: &str,
    blob: Oid,
    mode: u32,
) -> Result<Arc<FileSummary>, git2::Error> {
    Ok(Arc::new(FileSummary::of(&read_manifest_file(repo, path, blob, mode)?)))
}
