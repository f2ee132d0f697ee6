//! The incremental snapshot index.
//!
//! The indexer walks the first-parent history of the tracked branch, one commit
//! at a time. For each commit it diffs the tree against the previous one, parses
//! only the changed blobs, updates its view of the hub resources, and re-hashes
//! only the placements whose selection changed. A new commit therefore costs work
//! proportional to what it changed, not to the size of the repository.
//!
//! A file that stops parsing keeps its last good objects in the view (nothing
//! looks deleted), and every placement that selected something from it is
//! blocked: it gets no snapshot until the file is fixed, and the commit is
//! reported in [`Indexer::blocked`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use git2::{ObjectType, Oid, Repository, Tree};

mod saved;

pub use saved::LoadError;

use super::prepare::{
    BATCH_COMMITS, BATCH_FILES, CommitInfo, FileSummary, HubObject, PIPELINE_MIN_COMMITS, PrepareView,
    Prepared, read_manifest_file, read_summary,
};
use crate::repo::model::{ObjectKey, Placement, SelectorTarget};
use crate::repo::read_settings;
use crate::repo::settings::Settings;
use crate::repo::validate::{Area, ContentHash, Issue, ParsedFile};

/// One resource snapshot of one placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub index: u32,
    pub commit: Oid,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    /// `kubernetes-fleet.io/resource-hash`.
    pub hash: String,
    /// `kubernetes-fleet.io/number-of-enveloped-object`.
    pub enveloped: usize,
    /// Position of the commit in the first-parent history (orders snapshots and
    /// runs created within the same second).
    pub sequence: usize,
}

/// A commit that gave a placement no snapshot because something it selects is broken.
#[derive(Debug, Clone)]
pub struct BlockedCommit {
    pub commit: Oid,
    pub placement: String,
    pub issues: Vec<Issue>,
}

/// When a gitfleet object first appeared and how often its spec changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectHistory {
    /// Commit time of the first commit holding the object.
    pub created: crate::time::Time,
    /// 1 at creation, +1 on every commit that changed its spec.
    pub generation: u64,
    /// Position of the creating commit in the first-parent history (orders
    /// objects created within the same second).
    pub sequence: usize,
    hash: ContentHash,
    present: bool,
}

/// `(kind, namespace, name)` of an object whose history is kept.
pub use crate::repo::model::HistoryKey;

/// One definition of a hub object (two files defining one object is a conflict).
#[derive(Debug, Clone)]
struct Definition {
    path: Arc<str>,
    object: Arc<HubObject>,
}

/// The last version of a path that parsed without issues: its objects are in the view.
#[derive(Debug, Clone)]
struct GoodVersion {
    blob: Oid,
    mode: u32,
    summary: Arc<FileSummary>,
}

#[derive(Debug)]
struct FileEntry {
    blob: Oid,
    current: Arc<FileSummary>,
    good: Option<GoodVersion>,
}

/// A hub object's key, interned: lookups and selections work on small integers
/// instead of comparing four strings at every step.
type KeyId = u32;

/// Everything the index knows of one interned key.
#[derive(Debug)]
struct KeyEntry {
    key: ObjectKey,
    /// The files defining it now (two or more is a conflict; none: absent).
    defs: Vec<Definition>,
    /// The key of its Namespace object, for namespaced keys.
    namespace: Option<KeyId>,
}

#[derive(Debug, Default)]
struct Track {
    spec: Option<Placement>,
    spec_path: Option<Arc<str>>,
    selected: BTreeMap<KeyId, ContentHash>,
    /// The resource hash of `selected`, kept up to date entry by entry.
    digest: super::SelectionDigest,
    /// Wrapped-object counts of the selected envelopes (few), kept with `selected`.
    envelopes: BTreeMap<KeyId, usize>,
    /// The Namespaces whose content the placement brings, as of the last full
    /// selection (valid until a Namespace or the placement changes, which recompute it).
    brings: BTreeSet<KeyId>,
    snapshots: Vec<SnapshotRecord>,
    /// Hashes of the successive `spec.policy` values: the policy snapshots.
    policies: Vec<ContentHash>,
    /// The selection changed since the last snapshot decision.
    dirty: bool,
}

/// What one commit changed in the view.
#[derive(Default)]
struct Changes {
    keys: BTreeSet<KeyId>,
    placements: BTreeSet<String>,
    newly_broken: BTreeSet<String>,
    reload: bool,
    /// Some object's history entry was marked absent (to drop unless re-added).
    removed: bool,
}

/// The snapshot index of every placement over the first-parent history.
#[derive(Debug)]
pub struct Indexer {
    /// The tip's files as the last [`crate::state::FleetState::load`] parsed them.
    pub parsed: crate::repo::ParsedFiles,
    root: Option<String>,
    settings: Settings,
    settings_blob: Option<Oid>,
    settings_issue: Option<Issue>,
    files: HashMap<String, FileEntry>,
    broken: BTreeSet<String>,
    /// Interned hub keys: `keys[ids[key]]`. Keys stay once seen (absent ones have no definition).
    ids: HashMap<ObjectKey, KeyId>,
    keys: Vec<KeyEntry>,
    /// Keys defined by more than one file.
    conflicts: BTreeSet<KeyId>,
    /// Defined namespaced keys, per Namespace key.
    by_namespace: BTreeMap<KeyId, BTreeSet<KeyId>>,
    /// Defined cluster-scoped keys, per (group, kind).
    cluster_scoped: HashMap<(String, String), BTreeSet<KeyId>>,
    tracks: BTreeMap<String, Track>,
    history: HashMap<HistoryKey, ObjectHistory>,
    tree: Option<Oid>,
    tip: Option<Oid>,
    commits: usize,
    /// Commits that gave a placement no snapshot, oldest first.
    pub blocked: Vec<BlockedCommit>,
    /// The branch was rewritten since the last sync (the index was rebuilt).
    pub rewritten: bool,
}

impl Indexer {
    /// An empty index for the tracked folder `root` (the whole tree when `None`).
    pub fn new(root: Option<&str>) -> Indexer {
        // Objects come from gitfleet's own clone, whose packs libgit2 verified when
        // they were fetched; re-hashing every tree on each read doubles the cost of a diff.
        git2::opts::strict_hash_verification(false);
        Indexer {
            root: root.map(|r| r.trim_matches('/').to_string()).filter(|r| !r.is_empty()),
            settings: Settings::default(),
            settings_blob: None,
            settings_issue: None,
            files: HashMap::new(),
            broken: BTreeSet::new(),
            ids: HashMap::new(),
            keys: Vec::new(),
            conflicts: BTreeSet::new(),
            by_namespace: BTreeMap::new(),
            cluster_scoped: HashMap::new(),
            tracks: BTreeMap::new(),
            history: HashMap::new(),
            tree: None,
            tip: None,
            commits: 0,
            blocked: Vec::new(),
            rewritten: false,
            parsed: Default::default(),
        }
    }

    /// The last commit indexed.
    pub fn tip(&self) -> Option<Oid> {
        self.tip
    }

    /// How many commits of the first-parent history have been indexed.
    pub fn commits_indexed(&self) -> usize {
        self.commits
    }

    /// The settings at the tip.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Names of placements that ever existed, with their snapshots.
    pub fn placements(&self) -> impl Iterator<Item = (&str, &[SnapshotRecord])> {
        self.tracks.iter().map(|(n, t)| (n.as_str(), t.snapshots.as_slice()))
    }

    /// The snapshots of one placement, oldest first.
    pub fn snapshots(&self, placement: &str) -> &[SnapshotRecord] {
        self.tracks.get(placement).map(|t| t.snapshots.as_slice()).unwrap_or_default()
    }

    /// Why a placement gets no new snapshot at the tip (a broken or duplicated
    /// file among what it selects, or invalid settings); empty when it is not blocked.
    pub fn blocking(&self, placement: &str) -> Vec<Issue> {
        match self.tracks.get(placement) {
            Some(Track { spec: Some(spec), selected, .. }) => self.blocking_issues(spec, selected),
            _ => Vec::new(),
        }
    }

    /// The last version of a manifest file that parsed without issues, when its
    /// current version is broken (read again from `repo`).
    pub fn last_good(&self, repo: &Repository, path: &str) -> Result<Option<Arc<ParsedFile>>, git2::Error> {
        match self.files.get(path).filter(|e| e.current.is_broken()).and_then(|e| e.good.as_ref()) {
            Some(good) => Ok(Some(Arc::new(read_manifest_file(repo, path, good.blob, good.mode)?))),
            None => Ok(None),
        }
    }

    /// The policy snapshot index of a placement: how often its `spec.policy` changed.
    pub fn policy_index(&self, placement: &str) -> u32 {
        self.tracks.get(placement).map_or(0, |t| t.policies.len().saturating_sub(1) as u32)
    }

    /// Creation time and generation of a gitfleet object at the tip, by the
    /// cluster-scoped kind and key (`namespace/name` for a namespaced twin).
    pub fn history(&self, cluster_kind: &str, key: &str) -> Option<ObjectHistory> {
        // (sequence: 1-based position of the creating commit in the first-parent history)
        self.history.get(&crate::repo::model::scoped_history(cluster_kind, key)).copied()
    }

    /// Brings the index up to `tip`, indexing only commits not seen yet. When the
    /// branch no longer contains the last indexed commit, the index is rebuilt
    /// from scratch and [`Indexer::rewritten`] is set.
    pub fn sync(&mut self, repo: &Repository, tip: Oid) -> Result<usize, git2::Error> {
        if self.tip == Some(tip) {
            return Ok(0);
        }
        let mut pending = Vec::new();
        let mut cursor = Some(repo.find_commit(tip)?);
        while let Some(c) = cursor {
            if Some(c.id()) == self.tip {
                break;
            }
            cursor = if c.parent_count() > 0 { Some(c.parent(0)?) } else { None };
            pending.push(c);
            if cursor.is_none() && self.tip.is_some() {
                // Reached the root without meeting the old tip: history was rewritten.
                let root = self.root.clone();
                *self = Indexer::new(root.as_deref());
                self.rewritten = true;
            }
        }
        let n = pending.len();
        let pending: Vec<CommitInfo> = pending
            .iter()
            .rev()
            .map(|c| CommitInfo { id: c.id(), tree: c.tree_id(), time: c.time().seconds() })
            .collect();
        if n >= PIPELINE_MIN_COMMITS {
            self.apply_pipelined(repo, &pending)?;
        } else {
            let mut view = PrepareView::new(self.root.clone(), self.settings.clone(), self.tree);
            for info in &pending {
                let prepared = view.prepare(repo, info)?;
                self.apply(repo, prepared)?;
            }
        }
        Ok(n)
    }

    /// Indexes many commits with more threads: one reads the history (tree
    /// diffs and changed blobs, in order, with its own repository handle), one per
    /// core parses what it read, batch by batch in turn, and this thread applies
    /// the parsed commits in order.
    fn apply_pipelined(&mut self, repo: &Repository, pending: &[CommitInfo]) -> Result<(), git2::Error> {
        type Batch<T> = Result<Vec<T>, git2::Error>;
        let parsers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        // Room to read and parse ahead while this thread waits for one batch.
        const AHEAD: usize = 32;
        let git_dir = repo.path().to_path_buf();
        let mut view = PrepareView::new(self.root.clone(), self.settings.clone(), self.tree);
        std::thread::scope(|scope| {
            let mut to_parsers = Vec::new();
            let mut parsed = Vec::new();
            for _ in 0..parsers {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Batch<Prepared>>(AHEAD);
                let (parsed_tx, parsed_rx) = std::sync::mpsc::sync_channel::<Batch<Prepared>>(AHEAD);
                to_parsers.push(tx);
                parsed.push(parsed_rx);
                scope.spawn(move || {
                    for batch in rx {
                        let batch = batch.map(|read| read.into_iter().map(Prepared::parse).collect());
                        if parsed_tx.send(batch).is_err() {
                            return;
                        }
                    }
                });
            }
            let git_dir = &git_dir;
            scope.spawn(move || {
                let mut sent = 0;
                let mut send = |batch: Batch<Prepared>| {
                    let ok = to_parsers[sent % parsers].send(batch).is_ok();
                    sent += 1;
                    ok
                };
                let theirs = match Repository::open(git_dir) {
                    Ok(r) => r,
                    Err(e) => {
                        send(Err(e));
                        return;
                    }
                };
                let (mut batch, mut files) = (Vec::new(), 0);
                for info in pending {
                    let read = match view.read(&theirs, info) {
                        Ok(read) => read,
                        Err(e) => {
                            send(Ok(batch));
                            send(Err(e));
                            return;
                        }
                    };
                    // A commit changing many files goes out in parts, to several parsers.
                    for part in read.split(BATCH_FILES) {
                        files += part.files();
                        batch.push(part);
                        if batch.len() >= BATCH_COMMITS || files >= BATCH_FILES {
                            if !send(Ok(std::mem::take(&mut batch))) {
                                return;
                            }
                            files = 0;
                        }
                    }
                }
                if !batch.is_empty() {
                    send(Ok(batch));
                }
            });
            let stopped = || git2::Error::from_str("an indexing thread stopped");
            let (mut applied, mut part): (usize, Option<Prepared>) = (0, None);
            for k in 0.. {
                if applied == pending.len() {
                    break;
                }
                for prepared in parsed[k % parsers].recv().map_err(|_| stopped())?? {
                    let prepared = match part.take() {
                        Some(mut first) => {
                            first.merge(prepared);
                            first
                        }
                        None => prepared,
                    };
                    if prepared.more {
                        part = Some(prepared);
                    } else {
                        self.apply(repo, prepared)?;
                        applied += 1;
                    }
                }
            }
            Ok(())
        })
    }

    /// Indexes one prepared commit whose first parent is the current tip.
    fn apply(&mut self, repo: &Repository, prepared: Prepared) -> Result<(), git2::Error> {
        let Prepared { commit, time, tree, settings, mut manifests, more: _ } = prepared;
        let mut changes = Changes::default();
        if tree != self.tree {
            if let Some(new) = settings {
                self.update_settings(repo, new, &mut changes)?;
            }
            if changes.reload {
                let tree = tree.map(|t| repo.find_tree(t)).transpose()?;
                self.reload(repo, tree.as_ref(), time, &mut changes)?;
            } else {
                // Removals first: a file moved to a path that sorts earlier must not be
                // added before its old path is removed.
                manifests.sort_by_key(|m| m.new.is_some());
                for m in manifests {
                    self.update_file(repo, &m.path, m.new, m.summary, time, &mut changes)?;
                }
            }
            if changes.removed {
                self.history.retain(|_, h| h.present);
            }
        }
        self.tree = tree;
        self.tip = Some(commit);
        self.commits += 1;
        self.update_tracks(commit, time, &changes);
        Ok(())
    }

    fn update_settings(
        &mut self,
        repo: &Repository,
        blob: Option<Oid>,
        changes: &mut Changes,
    ) -> Result<(), git2::Error> {
        let content = match blob {
            Some(id) => Some(repo.find_blob(id)?.content().to_vec()),
            None => None,
        };
        let (settings, issue) = read_settings(content.as_deref());
        self.settings_blob = blob;
        match issue {
            Some(issue) => self.settings_issue = Some(issue),
            None => {
                self.settings_issue = None;
                if settings.source != self.settings.source {
                    self.settings = settings;
                    changes.reload = true;
                }
            }
        }
        Ok(())
    }

    /// Re-reads the whole file set after the settings changed, reusing unchanged blobs.
    fn reload(
        &mut self,
        repo: &Repository,
        tree: Option<&Tree<'_>>,
        time: i64,
        changes: &mut Changes,
    ) -> Result<(), git2::Error> {
        let wanted = self.manifests_of(tree)?;
        let gone: Vec<String> = self.files.keys().filter(|p| !wanted.contains_key(*p)).cloned().collect();
        for path in gone {
            self.update_file(repo, &path, None, None, time, changes)?;
        }
        for (path, new) in wanted {
            self.update_file(repo, &path, Some(new), None, time, changes)?;
        }
        changes.placements.extend(self.tracks.keys().cloned());
        Ok(())
    }

    /// The manifest files of a tree, as the settings in force classify them.
    fn manifests_of(
        &self,
        tree: Option<&git2::Tree<'_>>,
    ) -> Result<BTreeMap<String, (Oid, u32)>, git2::Error> {
        let mut wanted = BTreeMap::new();
        if let Some(tree) = tree {
            tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
                let path = format!("{dir}{}", entry.name().unwrap_or_default());
                if entry.kind() == Some(ObjectType::Tree) {
                    return if self.settings.skips_folder(&path) {
                        git2::TreeWalkResult::Skip
                    } else {
                        git2::TreeWalkResult::Ok
                    };
                }
                if self.settings.classify(&path) == Some(Area::Manifests) {
                    wanted.insert(path, (entry.id(), entry.filemode() as u32));
                }
                git2::TreeWalkResult::Ok
            })?;
        }
        Ok(wanted)
    }

    fn update_file(
        &mut self,
        repo: &Repository,
        path: &str,
        new: Option<(Oid, u32)>,
        parsed: Option<Arc<FileSummary>>,
        time: i64,
        changes: &mut Changes,
    ) -> Result<(), git2::Error> {
        let old = self.files.get(path);
        let old_good = old.and_then(|e| e.good.clone());
        let Some((blob, mode)) = new else {
            self.files.remove(path);
            self.broken.remove(path);
            if let Some(g) = old_good {
                self.remove_objects(path, &g.summary, changes);
            }
            return Ok(());
        };
        if old.is_some_and(|e| e.blob == blob) {
            return Ok(());
        }
        let parsed = match parsed {
            Some(parsed) => parsed,
            None => read_summary(repo, path, blob, mode)?,
        };
        let entry = if parsed.is_broken() {
            if self.broken.insert(path.to_string()) {
                changes.newly_broken.insert(path.to_string());
            }
            FileEntry { blob, current: parsed, good: old_good }
        } else {
            if !self.broken.is_empty() {
                self.broken.remove(path);
            }
            if let Some(g) = old_good {
                self.remove_objects(path, &g.summary, changes);
            }
            self.add_objects(path, &parsed, time, changes);
            FileEntry {
                blob,
                current: parsed.clone(),
                good: Some(GoodVersion { blob, mode, summary: parsed }),
            }
        };
        match self.files.get_mut(path) {
            Some(e) => *e = entry,
            None => {
                self.files.insert(path.to_string(), entry);
            }
        }
        Ok(())
    }

    fn remove_objects(&mut self, path: &str, file: &FileSummary, changes: &mut Changes) {
        for object in &file.hub {
            let Some(&id) = self.ids.get(&object.key) else { continue };
            let entry = &mut self.keys[id as usize];
            entry.defs.retain(|d| &*d.path != path);
            if entry.defs.len() < 2 {
                self.conflicts.remove(&id);
            }
            if entry.defs.is_empty() {
                match entry.namespace {
                    Some(ns) => {
                        if let Some(set) = self.by_namespace.get_mut(&ns) {
                            set.remove(&id);
                        }
                    }
                    None => {
                        let gk = (object.key.group.clone(), object.key.kind.clone());
                        if let Some(set) = self.cluster_scoped.get_mut(&gk) {
                            set.remove(&id);
                        }
                    }
                }
            }
            changes.keys.insert(id);
        }
        for (p, _) in &file.placements {
            if let Some(t) = self.tracks.get_mut(&p.name)
                && t.spec_path.as_deref() == Some(path)
            {
                t.spec = None;
                t.spec_path = None;
                changes.placements.insert(p.name.clone());
            }
        }
        for (key, _) in &file.history {
            if let Some(h) = self.history.get_mut(key) {
                h.present = false;
                changes.removed = true;
            }
        }
    }

    fn add_objects(&mut self, path: &str, file: &FileSummary, time: i64, changes: &mut Changes) {
        let path: Arc<str> = Arc::from(path);
        for object in &file.hub {
            let id = self.intern(&object.key);
            let entry = &mut self.keys[id as usize];
            if entry.defs.is_empty() {
                match entry.namespace {
                    Some(ns) => {
                        self.by_namespace.entry(ns).or_default().insert(id);
                    }
                    None => {
                        let gk = (object.key.group.clone(), object.key.kind.clone());
                        self.cluster_scoped.entry(gk).or_default().insert(id);
                    }
                }
            }
            entry.defs.push(Definition { path: path.clone(), object: object.clone() });
            if entry.defs.len() > 1 {
                self.conflicts.insert(id);
            }
            changes.keys.insert(id);
        }
        for (p, policy) in &file.placements {
            let t = self.tracks.entry(p.name.clone()).or_default();
            if t.spec_path.is_none() || t.spec_path.as_deref() == Some(&*path) {
                t.spec = Some(p.clone());
                t.spec_path = Some(path.clone());
                changes.placements.insert(p.name.clone());
                if t.policies.last() != Some(policy) {
                    t.policies.push(*policy);
                }
            }
        }
        for (key, hash) in &file.history {
            // 1-based position of the commit being applied (counted after it).
            let sequence = self.commits + 1;
            let h = self.history.entry(key.clone()).or_insert(ObjectHistory {
                created: crate::time::Time::from_second(time),
                generation: 0,
                sequence,
                hash: [0; 32],
                present: true,
            });
            if h.generation == 0 || h.hash != *hash {
                h.generation += 1;
                h.hash = *hash;
            }
            h.present = true;
        }
    }

    /// The id of a key, interned on first sight (with its Namespace's key).
    fn intern(&mut self, key: &ObjectKey) -> KeyId {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let namespace = key.namespace.as_ref().map(|ns| {
            self.intern(&ObjectKey {
                group: String::new(),
                kind: "Namespace".into(),
                namespace: None,
                name: ns.clone(),
            })
        });
        let id = KeyId::try_from(self.keys.len()).expect("fewer than 2^32 distinct hub objects");
        self.keys.push(KeyEntry { key: key.clone(), defs: Vec::new(), namespace });
        self.ids.insert(key.clone(), id);
        id
    }

    /// The active definition of a hub object (`None` when absent or defined twice).
    fn active(&self, id: KeyId) -> Option<&Definition> {
        match self.keys[id as usize].defs.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether `id` (present in the view) is selected by `p`.
    fn is_selected(&self, p: &Placement, id: KeyId, object: &HubObject) -> bool {
        match self.keys[id as usize].namespace {
            None => object.selected_by(p),
            Some(ns) => {
                object.selected_by(p) || self.active(ns).is_some_and(|d| d.object.brings_content_for(p))
            }
        }
    }

    /// The whole selection of a placement: direct lookups for named selectors,
    /// every object of one kind otherwise, plus the content of selected namespaces.
    fn full_selection(&self, p: &Placement) -> (BTreeMap<KeyId, ContentHash>, BTreeSet<KeyId>) {
        let mut ids: BTreeSet<KeyId> = BTreeSet::new();
        // The objects of the namespace its selectors pick in (a
        // ResourcePlacement's own, a NamespaceWithResourceSelectors one).
        let namespace_objects = p.selects_in().and_then(|ns| {
            let key = ObjectKey {
                group: String::new(),
                kind: "Namespace".into(),
                namespace: None,
                name: ns.to_string(),
            };
            self.ids.get(&key).and_then(|id| self.by_namespace.get(id))
        });
        for s in &p.selectors {
            // Candidates among cluster-scoped objects and the namespace's;
            // `selected_by` decides.
            let mut candidates: Vec<KeyId> = Vec::new();
            match &s.target {
                SelectorTarget::Name(n) => {
                    for namespace in [None, p.selects_in().map(str::to_string)] {
                        let key = ObjectKey {
                            group: s.group.clone(),
                            kind: s.kind.clone(),
                            namespace,
                            name: n.clone(),
                        };
                        candidates.extend(self.ids.get(&key).copied());
                    }
                }
                _ => {
                    if let Some(inside) = namespace_objects {
                        candidates.extend(inside.iter().copied().filter(|&id| {
                            let k = &self.keys[id as usize].key;
                            k.group == s.group && k.kind == s.kind
                        }));
                    }
                    if let Some(set) = self.cluster_scoped.get(&(s.group.clone(), s.kind.clone())) {
                        candidates.extend(set.iter().copied());
                    }
                }
            }
            for id in candidates {
                if self.active(id).is_some_and(|d| d.object.selected_by(p)) {
                    ids.insert(id);
                }
            }
        }
        let namespaces: BTreeSet<KeyId> = ids
            .iter()
            .copied()
            .filter(|&id| self.active(id).is_some_and(|d| d.object.brings_content_for(p)))
            .collect();
        for ns in &namespaces {
            if let Some(inside) = self.by_namespace.get(ns) {
                ids.extend(inside.iter().copied());
            }
        }
        (ids.into_iter().filter_map(|id| self.active(id).map(|d| (id, d.object.hash))).collect(), namespaces)
    }

    fn update_tracks(&mut self, commit: Oid, time: i64, changes: &Changes) {
        let namespace_changed = changes.keys.iter().any(|&id| {
            let k = &self.keys[id as usize].key;
            k.group.is_empty() && k.kind == "Namespace"
        });
        // Look every changed key (and its namespace) up once, not once per placement.
        let changed: Vec<ChangedKey> = changes
            .keys
            .iter()
            .map(|&id| {
                let entry = &self.keys[id as usize];
                ChangedKey { id, namespace: entry.namespace, def: self.active(id).cloned() }
            })
            .collect();
        // Taken out for the loop, so each track is updated in place with `self` readable.
        let mut tracks = std::mem::take(&mut self.tracks);
        for (name, track) in tracks.iter_mut() {
            let Some(spec) = track.spec.take() else { continue };
            let recompute = changes.reload || namespace_changed || changes.placements.contains(name);
            let selection_changed = if recompute {
                self.recompute_selection(&spec, track)
            } else {
                apply_changed_keys(&spec, track, &self.keys, &changed)
            };
            track.dirty |= selection_changed || recompute || track.snapshots.is_empty();
            self.decide_snapshot(name, &spec, track, commit, time, changes);
            track.spec = Some(spec);
        }
        self.tracks = tracks;
    }

    fn recompute_selection(&self, spec: &Placement, track: &mut Track) -> bool {
        let (selected, brings) = self.full_selection(spec);
        track.brings = brings;
        let changed = selected != track.selected;
        track.digest = super::SelectionDigest::of(
            selected.iter().map(|(&id, hash)| (&self.keys[id as usize].key, hash)),
        );
        track.selected = selected;
        track.envelopes = track
            .selected
            .keys()
            .filter_map(|&id| self.active(id).map(|d| (id, d)))
            .filter_map(|(id, d)| d.object.wrapped.map(|n| (id, n)))
            .collect();
        changed
    }

    /// Records a snapshot when the selection changed and nothing it selects is broken.
    fn decide_snapshot(
        &mut self,
        name: &str,
        spec: &Placement,
        track: &mut Track,
        commit: Oid,
        time: i64,
        changes: &Changes,
    ) {
        let blocked_possible =
            self.settings_issue.is_some() || !self.broken.is_empty() || !self.conflicts.is_empty();
        let issues = if blocked_possible { self.blocking_issues(spec, &track.selected) } else { Vec::new() };
        if !issues.is_empty() {
            if track.dirty || !changes.newly_broken.is_empty() {
                self.blocked.push(BlockedCommit { commit, placement: name.to_string(), issues });
            }
            return;
        }
        if !track.dirty {
            return;
        }
        track.dirty = false;
        let hash = track.digest.hex();
        if track.snapshots.last().is_some_and(|s| s.hash == hash) {
            return;
        }
        let enveloped = track.envelopes.values().sum();
        let index = track.snapshots.len() as u32;
        let sequence = self.commits;
        track.snapshots.push(SnapshotRecord { index, commit, time, hash, enveloped, sequence });
    }

    /// Why this placement must not get a snapshot at this commit, if anything.
    fn blocking_issues(&self, spec: &Placement, selected: &BTreeMap<KeyId, ContentHash>) -> Vec<Issue> {
        let is_selected_key = |key: &ObjectKey| self.ids.get(key).is_some_and(|id| selected.contains_key(id));
        let mut issues = Vec::new();
        if let Some(issue) = &self.settings_issue {
            issues.push(issue.clone());
        }
        for path in &self.broken {
            let Some(entry) = self.files.get(path) else { continue };
            let own_spec = spec.origin.path.as_ref() == path.as_str();
            let touches = entry.good.as_ref().is_some_and(|g| {
                g.summary.hub.iter().any(|o| is_selected_key(&o.key))
                    || g.summary.placements.iter().any(|(p, _)| p.name == spec.name)
            });
            if own_spec || touches {
                issues.extend(entry.current.issues.iter().cloned());
            }
        }
        for &id in &self.conflicts {
            let KeyEntry { key, defs, .. } = &self.keys[id as usize];
            if defs.len() < 2 {
                continue;
            }
            if selected.contains_key(&id) || self.is_selected(spec, id, &defs[0].object) {
                let paths: Vec<&str> = defs.iter().map(|d| &*d.path).collect();
                issues.push(Issue {
                    path: defs[1].path.clone(),
                    line: Some(defs[1].object.line),
                    object: Some(key.to_string()),
                    message: format!("is defined in more than one file: {}", paths.join(", ")),
                });
            }
        }
        issues.dedup();
        issues
    }
}

/// A key a commit changed, looked up once for all placements.
struct ChangedKey {
    id: KeyId,
    /// The key of its Namespace, for namespaced keys.
    namespace: Option<KeyId>,
    /// Its active definition now (`None`: gone or defined twice).
    def: Option<Definition>,
}

/// Applies changed keys to a placement's selection; true when it changed.
/// Costs O(changed keys): the lookups were done once, and no Namespace changed
/// in this commit (else the selection is recomputed), so `track.brings` holds.
fn apply_changed_keys(
    spec: &Placement,
    track: &mut Track,
    keys: &[KeyEntry],
    changed: &[ChangedKey],
) -> bool {
    let mut any = false;
    for ChangedKey { id, namespace, def } in changed {
        let id = *id;
        // Selected by a selector (which knows the namespace it picks in), or
        // brought by a selected Namespace.
        let brought = namespace.is_some_and(|ns| track.brings.contains(&ns));
        let selected_now = def.as_ref().filter(|d| brought || d.object.selected_by(spec));
        let key = &keys[id as usize].key;
        match selected_now {
            Some(d) => {
                match track.selected.insert(id, d.object.hash) {
                    Some(old) if old == d.object.hash => {}
                    old => {
                        if let Some(old) = old {
                            track.digest.remove(key, &old);
                        }
                        track.digest.add(key, &d.object.hash);
                        any = true;
                    }
                }
                if let Some(wrapped) = d.object.wrapped {
                    track.envelopes.insert(id, wrapped);
                }
            }
            // A key in a namespace the placement does not bring was not selected before.
            None => {
                if let Some(old) = track.selected.remove(&id) {
                    track.digest.remove(key, &old);
                    any = true;
                    track.envelopes.remove(&id);
                }
            }
        }
    }
    any
}
