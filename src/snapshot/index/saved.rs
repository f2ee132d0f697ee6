//! The snapshot index saved between runs.
//!
//! What only history can tell is saved: the snapshots and policy snapshots of
//! every placement, object histories, blocked commits, the last good settings
//! and the last good version of every broken file. What the tip tells is not:
//! on load, the manifests of the tip are read again (one tree, not the history),
//! which also checks the saved file against the repository. A file that does not
//! fit (another format, another repository or folder, a tip this clone lacks, a
//! tree that differs) is refused with the reason, and the caller rebuilds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use std::io::Write;

use git2::{ObjectType, Oid, Repository};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Changes, FileEntry, Indexer, ObjectHistory, SnapshotRecord};
use crate::repo::model::ObjectKey;
use crate::repo::read_settings;
use crate::repo::settings::SETTINGS_FILE;
use crate::repo::validate::Issue;
use crate::snapshot::prepare::{FileSummary, HubObject};
use crate::snapshot::{BlockedCommit, hex};

/// Bumped whenever the saved layout or the meaning of a field changes.
pub const FORMAT: u32 = 1;

/// The gitfleet that saves and loads: summaries from another one are not reused.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The first line of the file.
#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    gitfleet: String,
    /// Hex SHA-256 of the rest of the file.
    sha256: String,
}

/// Why a saved index was not used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no saved index yet")]
    Missing,
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it is corrupt: {0}")]
    Corrupt(String),
    #[error("it has format {found}, this gitfleet reads format {FORMAT}")]
    Format { found: u32 },
    #[error("it was saved by gitfleet {saved}, this is {VERSION}")]
    Version { saved: String },
    #[error("it was saved for {saved}, not {wanted}")]
    Foreign { saved: String, wanted: String },
    #[error("it does not match the repository: {0}")]
    Mismatch(String),
}

#[derive(Serialize, Deserialize)]
struct Saved {
    /// Repository, branch and folder the index is of.
    source: String,
    tip: String,
    /// The tracked folder's tree at the tip.
    tree: Option<String>,
    commits: usize,
    /// The settings in force (the last version that parsed).
    settings: String,
    /// Every hub key seen, in interning order.
    keys: Vec<SavedKey>,
    /// The manifest files at the tip, in path order.
    files: Vec<SavedFile>,
    /// The last good version of each broken file.
    good: Vec<SavedFile>,
    /// Files of each key defined more than once, in definition order.
    conflicts: Vec<(u32, Vec<String>)>,
    tracks: Vec<SavedTrack>,
    history: Vec<SavedHistory>,
    blocked: Vec<SavedBlocked>,
}

#[derive(Serialize, Deserialize)]
struct SavedKey(String, String, Option<String>, String);

#[derive(Serialize, Deserialize)]
struct SavedFile {
    path: String,
    blob: String,
    /// (last good versions only: the tip's modes are read from its tree)
    #[serde(default, skip_serializing_if = "is_zero")]
    mode: u32,
    /// What the index keeps of it, when it is only hub objects and gitfleet
    /// objects other than placements; otherwise (placements, issues) it is read again.
    summary: Option<SavedSummary>,
}

#[derive(Serialize, Deserialize)]
struct SavedSummary {
    hub: Vec<SavedHub>,
    /// `[kind, namespace, name, content hash]`
    history: Vec<(String, Option<String>, String, String)>,
}

/// `[key (into keys), labels, line, content hash, wrapped objects]`
#[derive(Serialize, Deserialize)]
struct SavedHub(u32, BTreeMap<String, String>, u64, String, Option<usize>);

#[derive(Serialize, Deserialize)]
struct SavedTrack {
    name: String,
    spec_path: Option<String>,
    /// `[index, commit, time, hash, enveloped, sequence]`
    snapshots: Vec<(u32, String, i64, String, usize, usize)>,
    policies: Vec<String>,
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct SavedHistory {
    kind: String,
    namespace: Option<String>,
    name: String,
    created: i64,
    generation: u64,
    sequence: usize,
    hash: String,
    present: bool,
}

#[derive(Serialize, Deserialize)]
struct SavedBlocked {
    commit: String,
    placement: String,
    issues: Vec<SavedIssue>,
}

#[derive(Serialize, Deserialize)]
struct SavedIssue {
    path: String,
    line: Option<u64>,
    object: Option<String>,
    message: String,
}

fn is_zero(mode: &u32) -> bool {
    *mode == 0
}

fn oid(text: &str) -> Result<Oid, LoadError> {
    Oid::from_str(text).map_err(|_| LoadError::Corrupt(format!("{text:?} is not a commit id")))
}

fn hash32(text: &str) -> Result<[u8; 32], LoadError> {
    let bad = || LoadError::Corrupt(format!("{text:?} is not a SHA-256 hash"));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl Indexer {
    /// Saves the index to `path` atomically (a temporary file renamed over it).
    /// `source` names what the index is of (repository, branch, folder).
    pub fn save(&self, path: &Path, source: &str) -> std::io::Result<()> {
        let Some(tip) = self.tip else { return Ok(()) };
        let saved = Saved {
            source: source.to_string(),
            tip: tip.to_string(),
            tree: self.tree.map(|t| t.to_string()),
            commits: self.commits,
            settings: String::from_utf8_lossy(&self.settings.source).into_owned(),
            keys: self
                .keys
                .iter()
                .map(|e| {
                    let k = &e.key;
                    SavedKey(k.group.clone(), k.kind.clone(), k.namespace.clone(), k.name.clone())
                })
                .collect(),
            files: {
                let mut files: Vec<(&String, &FileEntry)> = self.files.iter().collect();
                files.sort_unstable_by(|a, b| a.0.cmp(b.0));
                files.into_iter().map(|(path, e)| self.saved_file(path, e.blob, 0, &e.current)).collect()
            },
            good: self
                .broken
                .iter()
                .filter_map(|p| self.files.get(p).and_then(|e| e.good.as_ref()).map(|g| (p, g)))
                .map(|(p, g)| self.saved_file(p, g.blob, g.mode, &g.summary))
                .collect(),
            conflicts: self
                .conflicts
                .iter()
                .map(|&id| (id, self.keys[id as usize].defs.iter().map(|d| d.path.to_string()).collect()))
                .collect(),
            tracks: self
                .tracks
                .iter()
                .map(|(name, t)| SavedTrack {
                    name: name.clone(),
                    spec_path: t.spec_path.as_deref().map(str::to_string),
                    snapshots: t
                        .snapshots
                        .iter()
                        .map(|s| {
                            (s.index, s.commit.to_string(), s.time, s.hash.clone(), s.enveloped, s.sequence)
                        })
                        .collect(),
                    policies: t.policies.iter().map(|p| hex(p)).collect(),
                    dirty: t.dirty,
                })
                .collect(),
            history: {
                let mut list: Vec<SavedHistory> = self
                    .history
                    .iter()
                    .map(|((kind, namespace, name), h)| SavedHistory {
                        kind: kind.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                        created: h.created.as_second(),
                        generation: h.generation,
                        sequence: h.sequence,
                        hash: hex(&h.hash),
                        present: h.present,
                    })
                    .collect();
                list.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
                list
            },
            blocked: self
                .blocked
                .iter()
                .map(|b| SavedBlocked {
                    commit: b.commit.to_string(),
                    placement: b.placement.clone(),
                    issues: b
                        .issues
                        .iter()
                        .map(|i| SavedIssue {
                            path: i.path.to_string(),
                            line: i.line,
                            object: i.object.clone(),
                            message: i.message.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        // A header line (format, the gitfleet that wrote it, the body's SHA-256),
        // then the body: a file cut short or changed is refused, not believed.
        let body = serde_json::to_vec(&saved)?;
        let header = Header { format: FORMAT, gitfleet: VERSION.into(), sha256: hex(&Sha256::digest(&body)) };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        out.write_all(&body)?;
        out.flush()?;
        drop(out);
        tmp.as_file().sync_data()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    fn saved_file(&self, path: &str, blob: Oid, mode: u32, summary: &FileSummary) -> SavedFile {
        let plain = summary.placements.is_empty() && summary.issues.is_empty();
        let summary = plain.then(|| SavedSummary {
            hub: summary
                .hub
                .iter()
                .map(|o| SavedHub(self.ids[&o.key], o.labels.clone(), o.line, hex(&o.hash), o.wrapped))
                .collect(),
            history: summary
                .history
                .iter()
                .map(|((kind, ns, name), hash)| (kind.clone(), ns.clone(), name.clone(), hex(hash)))
                .collect(),
        });
        SavedFile { path: path.to_string(), blob: blob.to_string(), mode, summary }
    }

    /// The summary saved with a file, with its keys from the interned ones.
    fn summary_of(&self, saved: Option<SavedSummary>) -> Result<Option<Arc<FileSummary>>, LoadError> {
        let Some(saved) = saved else { return Ok(None) };
        let mut hub = Vec::with_capacity(saved.hub.len());
        for SavedHub(key, labels, line, hash, wrapped) in saved.hub {
            let key = match self.keys.get(key as usize) {
                Some(e) => e.key.clone(),
                None => return Err(LoadError::Corrupt(format!("unknown key {key}"))),
            };
            hub.push(Arc::new(HubObject { key, labels, line, hash: hash32(&hash)?, wrapped }));
        }
        let history = saved
            .history
            .into_iter()
            .map(|(kind, ns, name, hash)| Ok(((kind, ns, name), hash32(&hash)?)))
            .collect::<Result<_, LoadError>>()?;
        Ok(Some(Arc::new(FileSummary { hub, placements: Vec::new(), history, issues: Vec::new() })))
    }

    /// Loads an index saved by [`Indexer::save`] for `source`, checked against
    /// `repo`: the saved tip must be in the clone and its tree must match.
    pub fn load(
        repo: &Repository,
        path: &Path,
        root: Option<&str>,
        source: &str,
    ) -> Result<Indexer, LoadError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |e: serde_json::Error| LoadError::Corrupt(e.to_string());
        let split = bytes.iter().position(|b| *b == b'\n').unwrap_or(bytes.len());
        let (header, body) = (&bytes[..split], bytes.get(split + 1..).unwrap_or_default());
        let header: Header = serde_json::from_slice(header).map_err(corrupt)?;
        if header.format != FORMAT {
            return Err(LoadError::Format { found: header.format });
        }
        // Another gitfleet may parse or hash differently: its summaries are not ours.
        if header.gitfleet != VERSION {
            return Err(LoadError::Version { saved: header.gitfleet });
        }
        if hex(&Sha256::digest(body)) != header.sha256 {
            return Err(LoadError::Corrupt("its content does not match its checksum".into()));
        }
        let saved: Saved = serde_json::from_slice(body).map_err(corrupt)?;
        if saved.source != source {
            return Err(LoadError::Foreign { saved: saved.source, wanted: source.to_string() });
        }
        let mut ix = Indexer::new(root);
        ix.restore(repo, saved).map_err(|e| match e {
            Restore::Git(e) => LoadError::Mismatch(e.message().to_string()),
            Restore::Load(e) => e,
        })?;
        Ok(ix)
    }

    fn restore(&mut self, repo: &Repository, saved: Saved) -> Result<(), Restore> {
        let tip = oid(&saved.tip)?;
        let commit =
            repo.find_commit(tip).map_err(|_| mismatch(format!("commit {tip} is not in the clone")))?;
        let tree = match &self.root {
            None => Some(commit.tree_id()),
            Some(r) => match commit.tree()?.get_path(Path::new(r)) {
                Ok(e) if e.kind() == Some(ObjectType::Tree) => Some(e.id()),
                _ => None,
            },
        };
        if tree.map(|t| t.to_string()) != saved.tree {
            return Err(mismatch(format!("the tree of {tip} differs")));
        }
        let time = commit.time().seconds();
        // Interned in the order they were, so that key ids (and the order of
        // the issues they give) are the same.
        for (position, SavedKey(group, kind, namespace, name)) in saved.keys.into_iter().enumerate() {
            let id = self.intern(&ObjectKey { group, kind, namespace, name });
            if id as usize != position || self.keys.len() != position + 1 {
                return Err(corrupt(format!("key {position} is listed twice or before its Namespace")));
            }
        }
        for t in &saved.tracks {
            let track = self.tracks.entry(t.name.clone()).or_default();
            track.spec_path = t.spec_path.as_deref().map(Arc::from);
        }
        // The settings in force, then the tip's settings file (its issue, if any).
        let (settings, issue) = read_settings(Some(saved.settings.as_bytes()).filter(|s| !s.is_empty()));
        if let Some(issue) = issue {
            return Err(mismatch(format!("saved settings do not parse: {issue}")));
        }
        self.settings = settings;
        let tree = tree.map(|t| repo.find_tree(t)).transpose()?;
        let settings_blob = match &tree {
            Some(t) => t.get_name(SETTINGS_FILE).map(|e| e.id()),
            None => None,
        };
        let mut changes = Changes::default();
        self.update_settings(repo, settings_blob, &mut changes)?;
        if changes.reload {
            return Err(mismatch(format!("the settings at {tip} differ")));
        }
        let saved_good: std::collections::HashSet<String> =
            saved.good.iter().map(|g| g.path.clone()).collect();
        // The last good version of broken files first, then the tip's files:
        // their summaries as saved when the blob is the one at the tip.
        for g in saved.good {
            let (blob, summary) = (oid(&g.blob)?, self.summary_of(g.summary)?);
            if !repo.odb()?.exists(blob) {
                return Err(mismatch(format!("the last good version of {} is not in the clone", g.path)));
            }
            self.update_file(repo, &g.path, Some((blob, g.mode)), summary, time, &mut changes)?;
        }
        let mut known: std::collections::HashMap<String, (String, Option<SavedSummary>)> =
            saved.files.into_iter().map(|f| (f.path, (f.blob, f.summary))).collect();
        for (path, (blob, mode)) in self.manifests_of(tree.as_ref())? {
            let summary = match known.remove(&path) {
                Some((saved, summary)) if saved == blob.to_string() => self.summary_of(summary)?,
                _ => return Err(mismatch(format!("{path} differs from the saved one"))),
            };
            self.update_file(repo, &path, Some((blob, mode)), summary, time, &mut changes)?;
        }
        if let Some(path) = known.keys().next() {
            return Err(mismatch(format!("{path} is not at the tip")));
        }
        for (path, entry) in &self.files {
            let broken = entry.current.is_broken();
            if broken && entry.good.is_some() != saved_good.contains(path.as_str()) {
                return Err(mismatch(format!("the last good version of {path} differs")));
            }
        }
        // A last good version is kept only for a file broken at the tip.
        if let Some(path) = saved_good.iter().find(|p| !self.broken.contains(p.as_str())) {
            return Err(mismatch(format!("{path} has a last good version but is not broken at the tip")));
        }
        // Definitions of a key in several files, in the order they came.
        for (id, paths) in saved.conflicts {
            let Some(entry) = self.keys.get_mut(id as usize) else {
                return Err(corrupt(format!("conflict on unknown key {id}")));
            };
            let mut defs = Vec::new();
            for p in &paths {
                let at = entry.defs.iter().position(|d| &*d.path == p.as_str());
                defs.push(
                    at.map(|i| entry.defs.remove(i))
                        .ok_or_else(|| mismatch(format!("{p} does not define {}", entry.key)))?,
                );
            }
            if !entry.defs.is_empty() {
                return Err(mismatch(format!("{} is defined in files not saved", entry.key)));
            }
            entry.defs = defs;
        }
        // What history tells, as saved.
        for t in saved.tracks {
            let track = self.tracks.entry(t.name).or_default();
            if t.spec_path.is_none() {
                track.spec = None;
                track.spec_path = None;
            }
            track.snapshots = t
                .snapshots
                .into_iter()
                .map(|(index, commit, time, hash, enveloped, sequence)| {
                    Ok(SnapshotRecord { index, commit: oid(&commit)?, time, hash, enveloped, sequence })
                })
                .collect::<Result<_, LoadError>>()?;
            track.policies = t.policies.iter().map(|p| hash32(p)).collect::<Result<_, _>>()?;
            track.dirty = t.dirty;
        }
        self.history = saved
            .history
            .into_iter()
            .map(|h| {
                let value = ObjectHistory {
                    created: crate::time::Time::from_second(h.created),
                    generation: h.generation,
                    sequence: h.sequence,
                    hash: hash32(&h.hash)?,
                    present: h.present,
                };
                Ok(((h.kind, h.namespace, h.name), value))
            })
            .collect::<Result<_, LoadError>>()?;
        self.blocked = saved
            .blocked
            .into_iter()
            .map(|b| {
                let issues = b
                    .issues
                    .into_iter()
                    .map(|i| Issue {
                        path: Arc::from(i.path),
                        line: i.line,
                        object: i.object,
                        message: i.message,
                    })
                    .collect();
                Ok(BlockedCommit { commit: oid(&b.commit)?, placement: b.placement, issues })
            })
            .collect::<Result<_, LoadError>>()?;
        // The selections, from the view just rebuilt.
        let mut tracks = std::mem::take(&mut self.tracks);
        for track in tracks.values_mut() {
            if let Some(spec) = track.spec.take() {
                self.recompute_selection(&spec, track);
                track.spec = Some(spec);
            }
        }
        self.tracks = tracks;
        self.tree = tree.map(|t| t.id());
        self.tip = Some(tip);
        self.commits = saved.commits;
        Ok(())
    }

    /// Everything the index knows, as text in a fixed order: two indexes that
    /// describe alike give the same snapshots now and for every commit to come.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "tip {:?} tree {:?} commits {}", self.tip, self.tree, self.commits);
        let _ = writeln!(
            out,
            "settings {:?} issue {:?}",
            String::from_utf8_lossy(&self.settings.source),
            self.settings_issue
        );
        let _ = writeln!(out, "broken {:?}", self.broken);
        for (path, e) in &self.files.iter().collect::<BTreeMap<_, _>>() {
            let good = e.good.as_ref().map(|g| (g.blob, g.mode));
            let _ = writeln!(out, "file {path} {} good {good:?}", e.blob);
        }
        for (id, e) in self.keys.iter().enumerate() {
            let defs: Vec<&str> = e.defs.iter().map(|d| &*d.path).collect();
            let _ = writeln!(out, "key {id} {} ns {:?} defs {defs:?}", e.key, e.namespace);
        }
        let _ = writeln!(out, "conflicts {:?}", self.conflicts);
        // (sets left empty by removals say nothing)
        let by_namespace: BTreeMap<_, _> = self.by_namespace.iter().filter(|(_, s)| !s.is_empty()).collect();
        let _ = writeln!(out, "by-namespace {by_namespace:?}");
        let cluster_scoped: BTreeMap<_, _> =
            self.cluster_scoped.iter().filter(|(_, s)| !s.is_empty()).collect();
        let _ = writeln!(out, "cluster-scoped {cluster_scoped:?}");
        for (name, t) in &self.tracks {
            // (the selection of a placement gone is stale and unused: recomputed if it comes back)
            let selection = t.spec.as_ref().map(|_| (&t.selected, t.digest.hex(), &t.envelopes, &t.brings));
            let _ = writeln!(
                out,
                "track {name} spec {:?} from {:?} dirty {} selection {selection:?}",
                t.spec.as_ref().map(|s| &s.name),
                t.spec_path,
                t.dirty,
            );
            let _ = writeln!(out, "  snapshots {:?}", t.snapshots);
            let _ = writeln!(out, "  policies {:?}", t.policies.iter().map(|p| hex(p)).collect::<Vec<_>>());
            let _ = writeln!(out, "  blocking {:?}", self.blocking(name));
        }
        let mut history: Vec<_> = self.history.iter().collect();
        history.sort_by(|a, b| a.0.cmp(b.0));
        for (key, h) in history {
            let _ = writeln!(out, "history {key:?} {h:?}");
        }
        for b in &self.blocked {
            let _ = writeln!(out, "blocked {} {} {:?}", b.commit, b.placement, b.issues);
        }
        out
    }
}

enum Restore {
    Git(git2::Error),
    Load(LoadError),
}

impl From<git2::Error> for Restore {
    fn from(e: git2::Error) -> Restore {
        Restore::Git(e)
    }
}

impl From<LoadError> for Restore {
    fn from(e: LoadError) -> Restore {
        Restore::Load(e)
    }
}

fn mismatch(reason: String) -> Restore {
    Restore::Load(LoadError::Mismatch(reason))
}

fn corrupt(reason: String) -> Restore {
    Restore::Load(LoadError::Corrupt(reason))
}
