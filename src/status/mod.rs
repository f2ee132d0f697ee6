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
pub mod stored;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

/// The documents of one status sub-folder for one pass: as read at its start,
/// and as they are now, always whole (see [`stored`] for how a large one is
/// kept in files). Missing fields read as empty; a document that does not
/// parse (not YAML, a time that is not a time, a cluster file missing) is
/// reported and kept apart in `broken`: what depends on it waits, and its
/// files are never overwritten.
#[derive(Debug, Clone)]
pub struct Documents<T: Stored> {
    folder: &'static str,
    before: BTreeMap<String, T>,
    pub now: BTreeMap<String, T>,
    /// File name (without `.yaml`) -> why it does not parse.
    pub broken: BTreeMap<String, String>,
    /// The files as read: the document's own file, and its cluster files.
    files: BTreeMap<String, (T, BTreeMap<String, T::Part>)>,
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
        self.before.get(name)
    }

    /// Reads every document of `folder` in the status commit (if any), with
    /// its cluster files, each file of at most `limit` bytes. Files parsed
    /// in the previous read (same blob) are taken from `cache`, which then
    /// holds this read's files.
    pub fn read(
        repo: &Repository,
        status_commit: Option<git2::Oid>,
        status_root: &str,
        folder: &'static str,
        limit: usize,
        cache: &mut ParseCache<T>,
    ) -> Result<Documents<T>, git2::Error> {
        let mut docs = Documents::empty(folder);
        let mut reader = Reader { repo, limit, old: std::mem::take(cache), new: cache };
        let Some(commit) = status_commit else { return Ok(docs) };
        let tree = repo.find_commit(commit)?.tree()?;
        for (file, id) in status_folder_entries(repo, &tree, status_root, folder)? {
            let Some(name) = file.strip_suffix(".yaml") else { continue };
            match read_one::<T>(&mut reader, &tree, status_root, name, id)? {
                Ok((doc, main, parts)) => {
                    docs.before.insert(name.to_string(), doc);
                    docs.files.insert(name.to_string(), (main, parts));
                }
                Err(e) => {
                    // Never a fresh start: what depends on it waits, and the file is not overwritten.
                    tracing::error!(
                        "{status_root}/{folder}/{file}: gitfleet cannot read its own status ({e}); what depends on it is left as it is"
                    );
                    docs.broken.insert(name.to_string(), e);
                }
            }
        }
        docs.now = docs.before.clone();
        Ok(docs)
    }

    /// Adds the files of documents that changed to `out`: the document's own
    /// file if it changed, and the cluster files that changed, appeared or went.
    pub fn changes(&self, out: &mut StatusChanges) {
        for (name, doc) in &self.now {
            // A document gitfleet cannot read is never replaced by a fresh one.
            if self.before.get(name) == Some(doc) || self.broken.contains_key(name) {
                continue;
            }
            let (main, parts) = doc.split();
            let read = self.files.get(name);
            if read.map(|(m, _)| m) != Some(main.as_ref()) {
                out.writes.insert(
                    format!("{}/{name}.yaml", self.folder),
                    crate::yaml::to_string(&main).into_bytes(),
                );
            }
            let Some(parts_folder) = T::parts_folder() else { continue };
            let empty = BTreeMap::new();
            let read_parts = read.map_or(&empty, |(_, p)| p);
            for (stem, part) in &parts {
                if read_parts.get(stem) != Some(part) {
                    out.writes.insert(
                        format!("{parts_folder}/{name}/{stem}.yaml"),
                        crate::yaml::to_string(part).into_bytes(),
                    );
                }
            }
            for stem in read_parts.keys().filter(|s| !parts.contains_key(*s)) {
                out.deletes.insert(format!("{parts_folder}/{name}/{stem}.yaml"));
            }
        }
    }
}

/// What reading one document found: the whole document, its own file and its
/// cluster files as read.
type ReadDocument<T> = (T, T, BTreeMap<String, <T as Stored>::Part>);

/// Status files parsed by the previous read, by blob: a pass parses only the
/// files that changed since (at 10,000 clusters, a few instead of 20,000).
#[derive(Debug)]
pub struct ParseCache<T: Stored> {
    /// Blob -> (its size, the document as parsed).
    main: std::collections::HashMap<git2::Oid, (usize, T)>,
    parts: std::collections::HashMap<git2::Oid, (usize, T::Part)>,
}

impl<T: Stored> Default for ParseCache<T> {
    fn default() -> Self {
        ParseCache { main: Default::default(), parts: Default::default() }
    }
}

/// Parses blobs, from the previous read's cache where it can.
struct Reader<'a, 'r, T: Stored> {
    repo: &'r Repository,
    limit: usize,
    old: ParseCache<T>,
    new: &'a mut ParseCache<T>,
}

impl<T: Stored> Reader<'_, '_, T> {
    fn parse<U: serde::de::DeserializeOwned + Clone>(
        repo: &Repository,
        limit: usize,
        id: git2::Oid,
        old: &mut std::collections::HashMap<git2::Oid, (usize, U)>,
        new: &mut std::collections::HashMap<git2::Oid, (usize, U)>,
    ) -> Result<Result<U, String>, git2::Error> {
        if let Some((size, doc)) = old.remove(&id).or_else(|| new.get(&id).cloned()) {
            if size > limit {
                return Ok(Err(crate::yaml::YamlError::TooLarge { size, limit }.to_string()));
            }
            new.insert(id, (size, doc.clone()));
            return Ok(Ok(doc));
        }
        let blob = repo.find_blob(id)?;
        Ok(match crate::yaml::parse_status::<U>(blob.content(), limit) {
            Ok(doc) => {
                new.insert(id, (blob.size(), doc.clone()));
                Ok(doc)
            }
            Err(e) => Err(e.to_string()),
        })
    }

    fn main(&mut self, id: git2::Oid) -> Result<Result<T, String>, git2::Error> {
        Self::parse(self.repo, self.limit, id, &mut self.old.main, &mut self.new.main)
    }

    fn part(&mut self, id: git2::Oid) -> Result<Result<T::Part, String>, git2::Error> {
        Self::parse(self.repo, self.limit, id, &mut self.old.parts, &mut self.new.parts)
    }
}

/// Reads one document and its cluster files; `Err` inside: why it cannot be read.
fn read_one<T: Stored>(
    reader: &mut Reader<'_, '_, T>,
    tree: &Tree<'_>,
    status_root: &str,
    name: &str,
    id: git2::Oid,
) -> Result<Result<ReadDocument<T>, String>, git2::Error> {
    let main = match reader.main(id)? {
        Ok(doc) => doc,
        Err(e) => return Ok(Err(e)),
    };
    let Some(folder) = T::parts_folder() else { return Ok(Ok((main.clone(), main, BTreeMap::new()))) };
    let mut parts = BTreeMap::new();
    for (file, id) in status_folder_entries(reader.repo, tree, status_root, &format!("{folder}/{name}"))? {
        let Some(stem) = file.strip_suffix(".yaml") else { continue };
        match reader.part(id)? {
            Ok(part) => {
                parts.insert(stem.to_string(), part);
            }
            Err(e) => return Ok(Err(format!("{status_root}/{folder}/{name}/{file}: {e}"))),
        }
    }
    let mut doc = main.clone();
    if let Err(e) = doc.join(&parts) {
        return Ok(Err(format!("its cluster files under {status_root}/{folder}/{name}/ do not fit: {e}")));
    }
    Ok(Ok((doc, main, parts)))
}

/// The parse caches of a reconciler, one per kind of document it reads.
#[derive(Debug, Default)]
pub struct StatusCaches {
    pub placements: ParseCache<placement::PlacementDocument>,
    pub runs: ParseCache<run::RunDocument>,
    pub requests: ParseCache<approval::ApprovalRequest>,
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
    let mut out: Vec<RecordedSnapshot> = read_status_folder(repo, tree, status_root, snapshots::FOLDER)?
        .into_iter()
        .filter_map(|(_, bytes)| RecordedSnapshot::from_yaml(&bytes))
        .collect();
    out.sort_by(|a, b| (&a.placement, a.index).cmp(&(&b.placement, b.index)));
    Ok(out)
}
