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
pub mod eviction;
pub mod extensions;
pub mod member;
pub mod placement;
pub mod publish;
pub mod repack;
pub mod run;
pub mod scoped;
pub mod sign;
pub mod snapshots;
pub mod stored;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use git2::{ObjectType, Repository, Tree};

pub use publish::{Credentials, Identity, StateRepo, StatusError};
pub use snapshots::RecordedSnapshot;
pub use stored::Stored;

/// `apiVersion` of every document gitfleet writes.
pub const API_VERSION: &str = "placement.kubernetes-fleet.io/v1beta1";
/// Sub-folders of the status folder.
pub const RUNS: &str = "clusterstagedupdateruns";
pub const REQUESTS: &str = "clusterapprovalrequests";
pub const PLACEMENTS: &str = "clusterresourceplacements";
/// `<namespace>/<placement>.yaml`: the status of a placement with
/// `statusReportingScope: NamespaceAccessible` (KubeFleet's
/// ClusterResourcePlacementStatus).
pub const PLACEMENT_STATUSES: &str = "clusterresourceplacementstatuses";

/// The documents of one status sub-folder for one pass: as read at its start,
/// and as they are now, always whole (see [`stored`] for how a large one is
/// kept in files). Missing fields read as empty; a document that does not
/// parse (not YAML, a time that is not a time, a cluster file missing) is
/// reported and kept apart in `broken`: what depends on it waits, and its
/// files are never overwritten.
///
/// Documents are shared, not copied: `now` starts as the documents read, and
/// a pass replaces (or copies on write, [`Arc::make_mut`]) the ones it changes.
#[derive(Debug, Clone)]
pub struct Documents<T: Stored> {
    folder: &'static str,
    before: BTreeMap<String, Arc<T>>,
    pub now: BTreeMap<String, Arc<T>>,
    /// File name (without `.yaml`) -> why it does not parse.
    pub broken: BTreeMap<String, String>,
    /// The files as read: the document's own file, and its cluster files.
    files: BTreeMap<String, Arc<ReadDocument<T>>>,
}

/// One document as read from its files.
#[derive(Debug)]
pub struct ReadDocument<T: Stored> {
    /// The document's own file and the tree of its cluster files.
    main_id: git2::Oid,
    main_size: usize,
    parts_tree: Option<git2::Oid>,
    /// The size of the largest of its files.
    largest: usize,
    whole: Arc<T>,
    main: T,
    parts: BTreeMap<String, T::Part>,
    /// Cluster file -> (blob, size).
    part_ids: BTreeMap<String, (git2::Oid, usize)>,
}

impl<T: Stored> ReadDocument<T> {
    /// A document as if read from the files it would be written to.
    #[cfg(test)]
    fn of(doc: &T) -> ReadDocument<T> {
        let (main, parts) = doc.split();
        ReadDocument {
            main_id: git2::Oid::ZERO_SHA1,
            main_size: 0,
            parts_tree: None,
            largest: 0,
            whole: Arc::new(doc.clone()),
            main: main.into_owned(),
            parts,
            part_ids: BTreeMap::new(),
        }
    }
}

impl<T: Stored> Documents<T> {
    /// No documents yet.
    pub fn empty(folder: &'static str) -> Documents<T> {
        Documents {
            folder,
            before: BTreeMap::new(),
            now: BTreeMap::new(),
            broken: BTreeMap::new(),
            files: BTreeMap::new(),
        }
    }

    /// A document as it was in the status commit the pass started from.
    pub fn before(&self, name: &str) -> Option<&T> {
        self.before.get(name).map(Arc::as_ref)
    }

    /// A document as it is now.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.now.get(name).map(Arc::as_ref)
    }

    /// A document to change in place (copied first if it is shared).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.now.get_mut(name).map(Arc::make_mut)
    }

    /// Drops a document: its files are deleted.
    pub fn remove(&mut self, name: &str) {
        self.now.remove(name);
    }

    /// Sets a document.
    pub fn insert(&mut self, name: String, doc: T) {
        self.now.insert(name, Arc::new(doc));
    }

    /// Reads every document of `folder` in the status commit (if any), with
    /// its cluster files, each file of at most `limit` bytes. A document none
    /// of whose files changed since the previous read (`cache`) is taken as
    /// it was; of one that changed, only the files that changed are parsed.
    pub fn read(
        repo: &Repository,
        status_commit: Option<git2::Oid>,
        status_root: &str,
        folder: &'static str,
        limit: usize,
        cache: &mut ParseCache<T>,
    ) -> Result<Documents<T>, git2::Error> {
        let mut docs = Documents::empty(folder);
        let Some(commit) = status_commit else {
            cache.docs.clear();
            cache.folder = None;
            return Ok(docs);
        };
        let tree = repo.find_commit(commit)?.tree()?;
        // (a folder with namespaced twins is walked each time)
        let folder_id = match (T::parts_folder(), scoped::twin(folder)) {
            (None, None) => tree_id(&tree, &format!("{status_root}/{folder}")),
            _ => None,
        };
        if let (Some(id), Some((cached, cached_limit, read))) = (folder_id, &cache.folder)
            && *cached == id
            && *cached_limit == limit
        {
            return Ok(read.clone());
        }
        let old = std::mem::take(&mut cache.docs);
        let mut entries = status_folder_entries(repo, &tree, status_root, folder)?;
        if let Some(twin) = scoped::twin(folder) {
            entries.extend(nested_entries(repo, &tree, &format!("{status_root}/{twin}"))?);
        }
        for (file, id) in entries {
            let Some(name) = file.strip_suffix(".yaml") else { continue };
            let parts_tree = match T::parts_folder() {
                Some(f) => tree_id(&tree, &format!("{status_root}/{}", scoped::path(f, name))),
                None => None,
            };
            let previous = old.get(name);
            let read = match previous {
                Some(p) if p.main_id == id && p.parts_tree == parts_tree && p.largest <= limit => {
                    Ok(p.clone())
                }
                _ => read_one::<T>(repo, status_root, name, (id, parts_tree), limit, previous)?.map(Arc::new),
            };
            match read {
                Ok(read) => {
                    docs.before.insert(name.to_string(), read.whole.clone());
                    cache.docs.insert(name.to_string(), read.clone());
                    docs.files.insert(name.to_string(), read);
                }
                Err(e) => {
                    // Never a fresh start: what depends on it waits, and the file is not overwritten.
                    tracing::error!(
                        "{status_root}/{}.yaml: gitfleet cannot read its own status ({e}); what depends on it is left as it is",
                        scoped::path(folder, name)
                    );
                    docs.broken.insert(name.to_string(), e);
                }
            }
        }
        docs.now = docs.before.clone();
        cache.folder = folder_id.map(|id| (id, limit, docs.clone()));
        Ok(docs)
    }

    /// Adds the files of documents that changed to `out`: the document's own
    /// file if it changed, and the cluster files that changed, appeared or went.
    pub fn changes(&self, out: &mut StatusChanges) {
        for (name, read) in self.files.iter().filter(|(n, _)| !self.now.contains_key(*n)) {
            out.deletes.insert(format!("{}.yaml", scoped::path(self.folder, name)));
            if let Some(parts_folder) = T::parts_folder() {
                for stem in read.parts.keys() {
                    out.deletes.insert(format!("{}/{stem}.yaml", scoped::path(parts_folder, name)));
                }
            }
        }
        for (name, doc) in &self.now {
            // A document gitfleet cannot read is never replaced by a fresh one.
            let unchanged =
                self.before.get(name).is_some_and(|b| Arc::ptr_eq(b, doc) || b.as_ref() == doc.as_ref());
            if unchanged || self.broken.contains_key(name) {
                continue;
            }
            self.changes_of(name, doc, out);
        }
    }

    /// Adds the files of one document that differ from the files read.
    fn changes_of(&self, name: &str, doc: &T, out: &mut StatusChanges) {
        let (main, parts) = doc.split();
        let read = self.files.get(name);
        if read.map(|r| &r.main) != Some(main.as_ref()) {
            out.writes.insert(
                format!("{}.yaml", scoped::path(self.folder, name)),
                scoped::to_yaml(&main, name, T::extended()).into_bytes(),
            );
        }
        let Some(parts_folder) = T::parts_folder() else { return };
        let parts_folder = scoped::path(parts_folder, name);
        let empty = BTreeMap::new();
        let read_parts = read.map_or(&empty, |r| &r.parts);
        for (stem, part) in &parts {
            if read_parts.get(stem) != Some(part) {
                out.writes.insert(
                    format!("{parts_folder}/{stem}.yaml"),
                    scoped::to_yaml(part, name, T::extended()).into_bytes(),
                );
            }
        }
        for stem in read_parts.keys().filter(|s| !parts.contains_key(*s)) {
            out.deletes.insert(format!("{parts_folder}/{stem}.yaml"));
        }
    }

    /// Documents as if read from their files (for tests of what a pass writes).
    #[cfg(test)]
    pub(crate) fn of(folder: &'static str, docs: impl IntoIterator<Item = (String, T)>) -> Documents<T> {
        let mut out = Documents::empty(folder);
        for (name, doc) in docs {
            let read = Arc::new(ReadDocument::of(&doc));
            out.before.insert(name.clone(), read.whole.clone());
            out.files.insert(name, read);
        }
        out.now = out.before.clone();
        out
    }
}

/// The documents of one status sub-folder as the previous read found them:
/// a pass parses only the files that changed since (at 10,000 clusters, a
/// few instead of 20,000, and none when nothing changed).
#[derive(Debug)]
pub struct ParseCache<T: Stored> {
    docs: HashMap<String, Arc<ReadDocument<T>>>,
    /// For kinds kept one file per document: the folder's tree and the
    /// documents read from it (a folder of 10,000 member clusters that did not
    /// change is not walked again).
    folder: Option<(git2::Oid, usize, Documents<T>)>,
}

impl<T: Stored> Default for ParseCache<T> {
    fn default() -> Self {
        ParseCache { docs: HashMap::new(), folder: None }
    }
}

/// The tree at `path`, if there is one.
fn tree_id(tree: &Tree<'_>, path: &str) -> Option<git2::Oid> {
    tree.get_path(Path::new(path)).ok().filter(|e| e.kind() == Some(ObjectType::Tree)).map(|e| e.id())
}

/// Parses one status file of at most `limit` bytes of the document with key
/// `key`: `(value, size)`, or why not.
fn parse_file<U: serde::de::DeserializeOwned>(
    repo: &Repository,
    id: git2::Oid,
    limit: usize,
    (key, extended): (&str, bool),
) -> Result<Result<(U, usize), String>, git2::Error> {
    let blob = repo.find_blob(id)?;
    Ok(scoped::parse::<U>(blob.content(), limit, key, extended).map(|u| (u, blob.size())))
}

/// Reads one document and its cluster files, taking the files that did not
/// change from its `previous` read; `Err` inside: why it cannot be read.
fn read_one<T: Stored>(
    repo: &Repository,
    status_root: &str,
    name: &str,
    (main_id, parts_tree): (git2::Oid, Option<git2::Oid>),
    limit: usize,
    previous: Option<&Arc<ReadDocument<T>>>,
) -> Result<Result<ReadDocument<T>, String>, git2::Error> {
    let (main, main_size) = match previous.filter(|p| p.main_id == main_id && p.main_size <= limit) {
        Some(p) => (p.main.clone(), p.main_size),
        None => match parse_file::<T>(repo, main_id, limit, (name, T::extended()))? {
            Ok(read) => read,
            Err(e) => return Ok(Err(e)),
        },
    };
    let mut parts = BTreeMap::new();
    let mut part_ids = BTreeMap::new();
    if let (Some(folder), Some(tree)) = (T::parts_folder(), parts_tree) {
        for entry in repo.find_tree(tree)?.iter() {
            if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
                continue;
            }
            let file = entry.name().unwrap_or_default();
            let Some(stem) = file.strip_suffix(".yaml") else { continue };
            let id = entry.id();
            let same = previous.and_then(|p| match p.part_ids.get(stem) {
                Some((was, size)) if *was == id && *size <= limit => Some((p.parts[stem].clone(), *size)),
                _ => None,
            });
            let (part, size) = match same {
                Some(found) => found,
                None => match parse_file::<T::Part>(repo, id, limit, (name, T::extended()))? {
                    Ok(found) => found,
                    Err(e) => {
                        return Ok(Err(format!("{status_root}/{}/{file}: {e}", scoped::path(folder, name))));
                    }
                },
            };
            part_ids.insert(stem.to_string(), (id, size));
            parts.insert(stem.to_string(), part);
        }
    }
    let mut whole = main.clone();
    if let Err(e) = whole.join(&parts) {
        let folder = scoped::path(T::parts_folder().unwrap_or_default(), name);
        return Ok(Err(format!("its cluster files under {status_root}/{folder}/ do not fit: {e}")));
    }
    let largest = part_ids.values().map(|(_, size)| *size).fold(main_size, usize::max);
    Ok(Ok(ReadDocument {
        main_id,
        main_size,
        parts_tree,
        largest,
        whole: Arc::new(whole),
        main,
        parts,
        part_ids,
    }))
}

/// The parse caches of a reconciler, one per kind of document it reads.
#[derive(Debug, Default)]
pub struct StatusCaches {
    pub placements: ParseCache<placement::PlacementDocument>,
    pub runs: ParseCache<run::RunDocument>,
    pub requests: ParseCache<approval::ApprovalRequest>,
    pub evictions: ParseCache<eviction::EvictionDocument>,
    pub members: ParseCache<member::MemberDocument>,
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

/// A status file of the document with key `key` (not a cluster file), read
/// as gitfleet works on it (its own fields back from their annotation).
pub fn read_file<T: Stored>(text: &str, key: &str) -> Result<T, String> {
    scoped::parse::<T>(text.as_bytes(), usize::MAX, key, T::extended())
}

/// The full path of the status folder inside the repository tree.
pub fn status_root(root: Option<&str>, status_path: &str) -> String {
    match root.map(|r| r.trim_matches('/')).filter(|r| !r.is_empty()) {
        Some(r) => format!("{r}/{status_path}"),
        None => status_path.to_string(),
    }
}

/// The files of one status sub-folder: `(file name, blob)`.
fn status_folder_entries(
    repo: &Repository,
    tree: &Tree<'_>,
    status_root: &str,
    folder: &str,
) -> Result<Vec<(String, git2::Oid)>, git2::Error> {
    let Ok(entry) = tree.get_path(Path::new(&format!("{status_root}/{folder}"))) else {
        return Ok(Vec::new());
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(Vec::new());
    }
    let sub = repo.find_tree(entry.id())?;
    Ok(sub
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Blob) && e.filemode() != 0o120000)
        .map(|e| (e.name().unwrap_or_default().to_string(), e.id()))
        .collect())
}

/// The files of the sub-folders of the folder at `path` (`<namespace>/<name>.yaml`), by
/// `<namespace>/<file>`.
fn nested_entries(
    repo: &Repository,
    tree: &Tree<'_>,
    path: &str,
) -> Result<Vec<(String, git2::Oid)>, git2::Error> {
    let mut out = Vec::new();
    let Some(id) = tree_id(tree, path) else { return Ok(out) };
    for sub in repo.find_tree(id)?.iter().filter(|e| e.kind() == Some(ObjectType::Tree)) {
        let dir = sub.name().unwrap_or_default();
        for e in repo.find_tree(sub.id())?.iter() {
            if e.kind() == Some(ObjectType::Blob) && e.filemode() != 0o120000 {
                out.push((format!("{dir}/{}", e.name().unwrap_or_default()), e.id()));
            }
        }
    }
    Ok(out)
}

/// The files one level below the sub-folders of a status folder
/// (`<namespace>/<name>.yaml`), relative to the folder.
pub fn nested_status_files(
    repo: &Repository,
    status_commit: Option<git2::Oid>,
    status_root: &str,
    folder: &str,
) -> Result<BTreeSet<String>, git2::Error> {
    let mut out = BTreeSet::new();
    let Some(commit) = status_commit else { return Ok(out) };
    let tree = repo.find_commit(commit)?.tree()?;
    let Ok(entry) = tree.get_path(Path::new(&format!("{status_root}/{folder}"))) else { return Ok(out) };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(out);
    }
    for sub in repo.find_tree(entry.id())?.iter().filter(|e| e.kind() == Some(ObjectType::Tree)) {
        let dir = sub.name().unwrap_or_default().to_string();
        for file in repo.find_tree(sub.id())?.iter().filter(|e| e.kind() == Some(ObjectType::Blob)) {
            out.insert(format!("{dir}/{}", file.name().unwrap_or_default()));
        }
    }
    Ok(out)
}

/// Reads every file of one status sub-folder: `(file name, content)`.
pub fn read_status_folder(
    repo: &Repository,
    tree: &Tree<'_>,
    status_root: &str,
    folder: &str,
) -> Result<Vec<(String, Vec<u8>)>, git2::Error> {
    status_folder_entries(repo, tree, status_root, folder)?
        .into_iter()
        .map(|(name, id)| Ok((name, repo.find_blob(id)?.content().to_vec())))
        .collect()
}

/// The snapshots recorded in a tree's status folder.
pub fn recorded_snapshots(
    repo: &Repository,
    tree: &Tree<'_>,
    status_root: &str,
) -> Result<Vec<RecordedSnapshot>, git2::Error> {
    let mut entries = status_folder_entries(repo, tree, status_root, snapshots::FOLDER)?;
    if let Some(twin) = scoped::twin(snapshots::FOLDER) {
        entries.extend(nested_entries(repo, tree, &format!("{status_root}/{twin}"))?);
    }
    let mut out = Vec::new();
    for (_, id) in entries {
        out.extend(RecordedSnapshot::from_yaml(repo.find_blob(id)?.content()));
    }
    out.sort_by(|a, b| (&a.placement, a.index).cmp(&(&b.placement, b.index)));
    Ok(out)
}
