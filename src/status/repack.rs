//! Housekeeping of gitfleet's clone, as `git gc --auto` does it: every fetch
//! adds a pack and every status commit loose objects, so a clone that runs
//! for months would hold thousands of files that each object lookup goes
//! through. When there are more than [`MAX_PACKS`] packs or about
//! [`MAX_LOOSE`] loose objects, every object of the clone is written into one
//! new pack and the old packs and loose objects are removed. Nothing is
//! dropped, not even what no ref reaches: a recorded snapshot from before a
//! history rewrite names a commit only by its id, and must stay readable.
//! The caller reopens the repository afterwards (an open handle keeps the
//! removed packs mapped).

use std::path::{Path, PathBuf};

use git2::Repository;

/// Packs before a repack (`gc.autoPackLimit`).
pub const MAX_PACKS: usize = 50;
/// Loose objects before a repack (`gc.auto`), estimated from one of the 256
/// object folders as Git does.
pub const MAX_LOOSE: usize = 6700;

/// What a repack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repacked {
    pub packs_before: usize,
    pub loose_before: usize,
    pub objects: usize,
}

fn pack_dir(repo: &Repository) -> PathBuf {
    repo.path().join("objects/pack")
}

/// The pack files of the clone.
fn packs(repo: &Repository) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(pack_dir(repo)) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect()
}

/// Loose object files under `objects/`, in every folder (`all`) or in
/// `objects/17` only.
fn loose(repo: &Repository, all: bool) -> Vec<PathBuf> {
    let objects = repo.path().join("objects");
    let folders: Vec<PathBuf> = if all {
        (0..=255u8).map(|b| objects.join(format!("{b:02x}"))).collect()
    } else {
        vec![objects.join("17")]
    };
    folders
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == 38))
        .collect()
}

/// Repacks when the clone has too many packs or loose objects (the limits
/// given, normally [`MAX_PACKS`] and [`MAX_LOOSE`]); `None` when it did not.
pub fn repack_if_needed(
    repo: &Repository,
    max_packs: usize,
    max_loose: usize,
) -> Result<Option<Repacked>, git2::Error> {
    let packs_before = packs(repo).len();
    let loose_estimate = loose(repo, false).len() * 256;
    if packs_before <= max_packs && loose_estimate <= max_loose {
        return Ok(None);
    }
    repack(repo).map(Some)
}

/// Writes every object of the clone into one pack, then removes the other
/// packs and the loose objects. The new pack is complete (written and
/// indexed) before anything is removed.
pub fn repack(repo: &Repository) -> Result<Repacked, git2::Error> {
    let old_packs = packs(repo);
    let old_loose = loose(repo, true);
    let packs_before = old_packs.len();
    let mut ids = Vec::new();
    repo.odb()?.foreach(|id| {
        ids.push(*id);
        true
    })?;
    let mut builder = repo.packbuilder()?;
    for id in ids {
        // An object in two packs is inserted once.
        builder.insert_object(id, None)?;
    }
    let objects = builder.object_count();
    builder.write(&pack_dir(repo), 0o444)?;
    let written = builder.name().ok().flatten().map(str::to_string);
    let io = |e: std::io::Error| git2::Error::from_str(&format!("repacking {}: {e}", repo.path().display()));
    for pack in old_packs {
        if written
            .as_deref()
            .is_some_and(|name| pack.file_stem().is_some_and(|s| s.to_string_lossy().ends_with(name)))
        {
            continue;
        }
        for ext in ["pack", "idx", "rev", "keep"] {
            remove_if_there(&pack.with_extension(ext)).map_err(io)?;
        }
    }
    for file in &old_loose {
        remove_if_there(file).map_err(io)?;
    }
    Ok(Repacked { packs_before, loose_before: old_loose.len(), objects })
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Credentials, Identity, StateRepo, StatusChanges};

    /// Many fetches and status commits, then a repack: one pack, no loose
    /// object, every commit, tree and file of every ref still there, and the
    /// clone goes on fetching and committing.
    #[test]
    fn a_repack_keeps_what_the_refs_reach_in_one_pack() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin.git");
        let remote = Repository::init_bare(&origin).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let mut parent: Option<git2::Oid> = None;
        let state =
            StateRepo::open(&dir.path().join("state"), origin.to_str().unwrap(), Credentials::default())
                .unwrap();
        for i in 0..12 {
            // A person's commit on the remote, fetched (a pack each)...
            let blob = remote.blob(format!("value {i}\n").as_bytes()).unwrap();
            let mut tb = remote
                .treebuilder(parent.map(|p| remote.find_commit(p).unwrap().tree().unwrap()).as_ref())
                .unwrap();
            tb.insert(format!("file{i}.yaml"), blob, 0o100644).unwrap();
            let tree = remote.find_tree(tb.write().unwrap()).unwrap();
            let parents: Vec<git2::Commit<'_>> =
                parent.iter().map(|p| remote.find_commit(*p).unwrap()).collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            let c =
                remote.commit(Some("refs/heads/main"), &sig, &sig, &format!("c{i}"), &tree, &refs).unwrap();
            let tip = state.fetch("main").unwrap().unwrap();
            assert_eq!(tip, c);
            // ... and a status commit on top of it (loose objects).
            let mut changes = StatusChanges::default();
            changes
                .writes
                .insert(format!("clusterresourcesnapshots/s{i}.yaml"), format!("i: {i}\n").into_bytes());
            let pushed = state
                .publish("main", Some(tip), "status", &changes, "gitfleet: status", &Identity::default())
                .unwrap();
            parent = pushed;
        }
        let repo = state.repo();
        // A commit no ref reaches (as a recorded snapshot after a history rewrite).
        let tree = repo.find_commit(parent.unwrap()).unwrap().tree().unwrap();
        let orphan = repo.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap();
        assert!(packs(repo).len() >= 12, "a pack per fetch: {}", packs(repo).len());
        assert!(!loose(repo, true).is_empty());
        assert_eq!(repack_if_needed(repo, 50, 6700).unwrap(), None, "under the limits");
        let done = repack_if_needed(repo, 5, 6700).unwrap().expect("over the pack limit");
        assert!(done.packs_before >= 12 && done.loose_before > 0, "{done:?}");
        assert_eq!(packs(repo).len(), 1);
        assert!(loose(repo, true).is_empty());
        // Everything is there: walk every commit and read every file.
        let again = Repository::open_bare(repo.path()).unwrap();
        let mut walk = again.revwalk().unwrap();
        walk.push_glob("*").unwrap();
        let mut files = 0;
        for c in walk {
            let tree = again.find_commit(c.unwrap()).unwrap().tree().unwrap();
            tree.walk(git2::TreeWalkMode::PreOrder, |_, e| {
                if e.kind() == Some(git2::ObjectType::Blob) {
                    again.find_blob(e.id()).unwrap();
                    files += 1;
                }
                git2::TreeWalkResult::Ok
            })
            .unwrap();
        }
        assert!(files > 100, "{files}");
        assert!(again.find_commit(orphan).is_ok(), "what only an id names stays");
        // And the clone goes on.
        let mut changes = StatusChanges::default();
        changes.writes.insert("clusterresourcesnapshots/after.yaml".into(), b"after: 1\n".to_vec());
        let tip = state.fetch("main").unwrap();
        assert!(
            state
                .publish("main", tip, "status", &changes, "gitfleet: after", &Identity::default())
                .unwrap()
                .is_some()
        );
    }
}
