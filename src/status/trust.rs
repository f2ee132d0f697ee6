//! Which status gitfleet believes: only what it wrote itself. gitfleet keeps a
//! record of the status commits it pushed (`<state-dir>/status-commits`, one
//! commit id a line); the status folder it reads is the one of the last of
//! them. Whatever differs
//! between that folder and the tip's was written by someone else: it is
//! reported, ignored, and overwritten by the next status commit.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

/// How far back the first-parent line is searched for gitfleet's own commit.
const SEARCH_LIMIT: usize = 100_000;
/// At most this many foreign commits are named.
const MAX_NAMED: usize = 5;

/// The status commits gitfleet made, as recorded in its state folder.
#[derive(Debug)]
pub struct OwnCommits {
    path: PathBuf,
    ids: HashSet<Oid>,
    /// The last one recorded.
    newest: Option<Oid>,
    /// gitfleet's signing key: a commit it signed is its own, recorded or not.
    key: Option<ssh_key::PublicKey>,
}

/// The status commit a pass reads, and why it is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trusted {
    /// gitfleet's own newest commit on the status line.
    Own(Oid),
    /// gitfleet's last recorded commit, no longer on the status line (the
    /// branch was rewritten): its status still holds.
    Recorded(Oid),
    /// No record yet (a fresh state folder): the tip is believed once.
    Unverified(Oid),
}

impl Trusted {
    pub fn commit(self) -> Oid {
        match self {
            Trusted::Own(c) | Trusted::Recorded(c) | Trusted::Unverified(c) => c,
        }
    }
}

impl OwnCommits {
    /// Reads the record under `state_dir` (none yet: an empty record).
    pub fn load(state_dir: &Path) -> std::io::Result<OwnCommits> {
        let path = state_dir.join("status-commits");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let list: Vec<Oid> = text.lines().filter_map(|l| Oid::from_str(l.trim()).ok()).collect();
        Ok(OwnCommits { path, newest: list.last().copied(), ids: list.into_iter().collect(), key: None })
    }

    /// Knows gitfleet's commits also by their signature with this key.
    pub fn signed_by(mut self, key: ssh_key::PublicKey) -> OwnCommits {
        self.key = Some(key);
        self
    }

    /// Whether gitfleet can tell its own status commits (a record or a key).
    pub fn verifies(&self) -> bool {
        !self.ids.is_empty() || self.key.is_some()
    }

    /// Records a status commit gitfleet pushed.
    pub fn record(&mut self, commit: Oid) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(file, "{commit}")?;
        file.sync_data()?;
        self.ids.insert(commit);
        self.newest = Some(commit);
        Ok(())
    }

    /// Whether gitfleet made `commit` (recorded, or signed with its key).
    pub fn made(&self, repo: &Repository, commit: Oid) -> bool {
        self.ids.contains(&commit)
            || self.key.as_ref().is_some_and(|k| super::sign::signed_by(repo, commit, k))
    }

    /// The status commit to believe for the status line ending at `tip`: the
    /// last one gitfleet recorded (still in its clone even when someone
    /// rewrote the branch, or merged it so that the commit left the first-parent
    /// line); failing that, the newest recorded one on the first-parent line.
    pub fn trusted(&self, repo: &Repository, tip: Oid) -> Result<Trusted, git2::Error> {
        if !self.verifies() {
            return Ok(Trusted::Unverified(tip));
        }
        let newest = self.newest.filter(|c| repo.find_commit(*c).is_ok());
        // With a signing key, the newest commit signed by it is gitfleet's,
        // whichever replica made it (`--shards`), as long as it comes after
        // this process's own last commit: a branch moved back to an older
        // signed commit is not believed.
        if let Some(key) = &self.key {
            let mut walk = repo.revwalk()?;
            walk.push(tip)?;
            walk.simplify_first_parent()?;
            for commit in walk.take(SEARCH_LIMIT) {
                let commit = commit?;
                if super::sign::signed_by(repo, commit, key) || self.ids.contains(&commit) {
                    let follows = match newest {
                        None => true,
                        Some(n) => n == commit || repo.graph_descendant_of(commit, n)?,
                    };
                    if follows {
                        return Ok(Trusted::Own(commit));
                    }
                    break;
                }
            }
        }
        if let Some(newest) = newest {
            let reachable = newest == tip || repo.graph_descendant_of(tip, newest)?;
            return Ok(if reachable { Trusted::Own(newest) } else { Trusted::Recorded(newest) });
        }
        let mut walk = repo.revwalk()?;
        walk.push(tip)?;
        walk.simplify_first_parent()?;
        for commit in walk.take(SEARCH_LIMIT) {
            let commit = commit?;
            let signed = self.key.as_ref().is_some_and(|k| super::sign::signed_by(repo, commit, k));
            if signed || self.ids.contains(&commit) {
                return Ok(Trusted::Own(commit));
            }
        }
        // The record names commits this clone no longer has: nothing of ours to go by.
        Ok(Trusted::Unverified(tip))
    }
}

/// A status file someone else changed, and what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// Path relative to the status folder.
    pub path: String,
    /// gitfleet's content, or `None` when gitfleet never wrote the file.
    pub content: Option<Vec<u8>>,
}

/// The status files that differ between gitfleet's commit and the tip.
pub fn foreign_changes(
    repo: &Repository,
    trusted: Oid,
    tip: Oid,
    status_root: &str,
) -> Result<Vec<Foreign>, git2::Error> {
    if trusted == tip {
        return Ok(Vec::new());
    }
    let ours = status_tree(repo, trusted, status_root)?;
    let theirs = status_tree(repo, tip, status_root)?;
    if ours.as_ref().map(|t| t.id()) == theirs.as_ref().map(|t| t.id()) {
        return Ok(Vec::new());
    }
    let diff = repo.diff_tree_to_tree(ours.as_ref(), theirs.as_ref(), None)?;
    let mut out = Vec::new();
    for delta in diff.deltas() {
        let Some(path) = delta.new_file().path().or(delta.old_file().path()) else { continue };
        let old = delta.old_file();
        let content =
            if old.id().is_zero() { None } else { Some(repo.find_blob(old.id())?.content().to_vec()) };
        out.push(Foreign { path: path.to_string_lossy().into_owned(), content });
    }
    Ok(out)
}

fn status_tree<'r>(
    repo: &'r Repository,
    commit: Oid,
    status_root: &str,
) -> Result<Option<git2::Tree<'r>>, git2::Error> {
    let tree = repo.find_commit(commit)?.tree()?;
    match tree.get_path(Path::new(status_root)) {
        Ok(entry) if entry.kind() == Some(git2::ObjectType::Tree) => Ok(Some(repo.find_tree(entry.id())?)),
        _ => Ok(None),
    }
}

/// The commits after `trusted` on the first-parent line up to `tip` that
/// touched the status folder: `(short id, author)`, newest first.
pub fn foreign_commits(
    repo: &Repository,
    trusted: Oid,
    tip: Oid,
    status_root: &str,
) -> Result<Vec<(String, String)>, git2::Error> {
    let mut out = Vec::new();
    for id in status_commits(repo, trusted, tip, status_root)?.into_iter().take(MAX_NAMED) {
        let commit = repo.find_commit(id)?;
        let author = commit.author();
        let who = format!("{} <{}>", author.name().unwrap_or("?"), author.email().unwrap_or("?"));
        out.push((id.to_string()[..10].to_string(), who));
    }
    Ok(out)
}

/// The first-parent commits after `from` up to `to`, newest first, that
/// changed the status folder (a merge that brings a change counts).
pub fn status_commits(
    repo: &Repository,
    from: Oid,
    to: Oid,
    status_root: &str,
) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(to)?;
    walk.simplify_first_parent()?;
    let mut out = Vec::new();
    for id in walk.take(SEARCH_LIMIT) {
        let id = id?;
        if id == from {
            break;
        }
        let commit = repo.find_commit(id)?;
        let mine = status_tree(repo, id, status_root)?.map(|t| t.id());
        let parent = match commit.parent_ids().next() {
            Some(p) => status_tree(repo, p, status_root)?.map(|t| t.id()),
            None => None,
        };
        if mine != parent {
            out.push(id);
        }
    }
    Ok(out)
}
