//! A first-parent tree diff that only descends into subtrees whose ids differ.
//!
//! Trees are read raw from the object database and walked side by side in
//! Git's entry order, comparing ids; nothing is allocated for unchanged entries.
//! The trees of the current snapshot are kept (a diff forgets the ones it
//! replaces), so that a later diff finds its old side without reading it again.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use git2::{ObjectType, Odb, Oid};

/// A changed path: the new blob id and file mode, or `None` when deleted.
pub type Change = (String, Option<(Oid, u32)>);

const TREE: u32 = 0o040000;

/// Raw tree objects read through the object database: those of the current
/// snapshot that were read once.
#[derive(Debug, Default)]
pub struct TreeCache {
    trees: HashMap<Oid, Arc<[u8]>>,
}

impl TreeCache {
    /// The raw content of a tree.
    pub fn get(&mut self, odb: &Odb<'_>, id: Oid) -> Result<Arc<[u8]>, git2::Error> {
        if let Some(data) = self.trees.get(&id) {
            return Ok(data.clone());
        }
        let object = odb.read(id)?;
        if object.kind() != ObjectType::Tree {
            return Err(git2::Error::from_str(&format!("object {id} is a {}, not a tree", object.kind())));
        }
        let data: Arc<[u8]> = Arc::from(object.data());
        self.trees.insert(id, data.clone());
        Ok(data)
    }

    /// Forgets a tree that left the snapshot.
    pub fn forget(&mut self, id: Oid) {
        self.trees.remove(&id);
    }

    /// The id of the tree at `path` (folders separated by '/') under `root`, if
    /// that path is a tree. The trees above it are read without being kept.
    pub fn subtree(&self, odb: &Odb<'_>, root: Oid, path: &str) -> Result<Option<Oid>, git2::Error> {
        let mut id = root;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            let object = odb.read(id)?;
            let found = Entries::new(object.data())
                .find(|e| e.as_ref().map_or(true, |e| e.name == name.as_bytes()))
                .transpose()?;
            match found {
                Some(e) if e.mode == TREE => id = e.id,
                _ => return Ok(None),
            }
        }
        Ok(Some(id))
    }
}

/// One entry of a raw tree.
struct Entry<'a> {
    mode: u32,
    name: &'a [u8],
    id: Oid,
}

impl Entry<'_> {
    fn is_tree(&self) -> bool {
        self.mode == TREE
    }

    /// Regular files and symlinks (submodules are neither blobs nor trees here).
    fn is_blob(&self) -> bool {
        matches!(self.mode & 0o170000, 0o100000 | 0o120000)
    }
}

/// The entries of a raw tree: `<octal mode> <name>\0<20-byte id>` each.
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    fn new(data: &'a [u8]) -> Entries<'a> {
        Entries { rest: data }
    }

    /// Skips the entries `self` and `other` have in common, byte for byte (the
    /// usual case: one entry of hundreds changed), without parsing them: the
    /// entries that end within the common prefix of both.
    fn skip_common(&mut self, other: &mut Entries<'a>) {
        let common = common_prefix(self.rest, other.rest);
        let mut skipped = 0;
        while let Some(nul) = memchr::memchr(0, &self.rest[skipped..]) {
            let end = skipped + nul + 21;
            if end > common {
                break;
            }
            skipped = end;
        }
        self.rest = &self.rest[skipped..];
        other.rest = &other.rest[skipped..];
    }
}

/// The length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 64 <= n && a[i..i + 64] == b[i..i + 64] {
        i += 64;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn malformed() -> git2::Error {
    git2::Error::from_str("malformed tree object")
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, git2::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parse = |rest: &'a [u8]| -> Option<(Entry<'a>, &'a [u8])> {
            let space = rest.iter().position(|&b| b == b' ')?;
            let mode = rest[..space].iter().try_fold(0u32, |m, &b| match b {
                b'0'..=b'7' => Some(m * 8 + u32::from(b - b'0')),
                _ => None,
            })?;
            let rest = &rest[space + 1..];
            let nul = rest.iter().position(|&b| b == 0)?;
            let (name, rest) = (&rest[..nul], &rest[nul + 1..]);
            let id = Oid::from_bytes(rest.get(..20)?).ok()?;
            Some((Entry { mode, name, id }, &rest[20..]))
        };
        match parse(self.rest) {
            Some((entry, rest)) => {
                self.rest = rest;
                Some(Ok(entry))
            }
            None => {
                self.rest = &[];
                Some(Err(malformed()))
            }
        }
    }
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended in '/'.
fn git_order(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    let common = a.name.len().min(b.name.len());
    match a.name[..common].cmp(&b.name[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    let next = |e: &Entry<'_>| e.name.get(common).copied().or(e.is_tree().then_some(b'/'));
    next(a).cmp(&next(b))
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() { name.into_owned() } else { format!("{prefix}/{name}") }
}

/// Lists every blob that differs between the trees `old` and `new`, skipping
/// subtrees for which `skip` returns true. The old trees it replaces are
/// forgotten, except `old` itself (the caller's).
pub fn diff(
    odb: &Odb<'_>,
    cache: &mut TreeCache,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    let old = old.map(|t| cache.get(odb, t)).transpose()?;
    let new = new.map(|t| cache.get(odb, t)).transpose()?;
    let mut olds = Entries::new(old.as_deref().unwrap_or_default());
    let mut news = Entries::new(new.as_deref().unwrap_or_default());
    let (mut a, mut b) = (None, None);
    loop {
        if a.is_none() && b.is_none() {
            olds.skip_common(&mut news);
        }
        if a.is_none() {
            a = olds.next().transpose()?;
        }
        if b.is_none() {
            b = news.next().transpose()?;
        }
        let order = match (&a, &b) {
            (None, None) => return Ok(()),
            (Some(a), Some(b)) => git_order(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        match order {
            Ordering::Less => entry_changed(odb, cache, a.take().as_ref(), None, prefix, skip, out)?,
            Ordering::Greater => entry_changed(odb, cache, None, b.take().as_ref(), prefix, skip, out)?,
            Ordering::Equal => {
                let (a, b) = (a.take(), b.take());
                if let (Some(a), Some(b)) = (&a, &b)
                    && (a.id != b.id || a.mode != b.mode)
                {
                    entry_changed(odb, cache, Some(a), Some(b), prefix, skip, out)?;
                }
            }
        }
    }
}

fn entry_changed(
    odb: &Odb<'_>,
    cache: &mut TreeCache,
    old: Option<&Entry<'_>>,
    new: Option<&Entry<'_>>,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    let name = new.or(old).map(|e| e.name).unwrap_or_default();
    let path = join(prefix, name);
    let tree = |e: Option<&Entry<'_>>| e.filter(|e| e.is_tree()).map(|e| e.id);
    let (ot, nt) = (tree(old), tree(new));
    if (ot.is_some() || nt.is_some()) && !skip(&path) {
        diff(odb, cache, ot, nt, &path, skip, out)?;
    }
    if let Some(ot) = ot {
        cache.forget(ot);
    }
    // A blob on either side (a tree replaced by a file, or the reverse, included).
    let blob = |e: Option<&Entry<'_>>| e.filter(|e| e.is_blob()).map(|e| (e.id, e.mode));
    let (ob, nb) = (blob(old), blob(new));
    if ob.is_some() || nb.is_some() {
        out.push((path, nb));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tree from `(path, content)` pairs in a fresh repository.
    fn tree(repo: &git2::Repository, files: &[(&str, &str)]) -> Oid {
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, content) in files {
            update.upsert(*path, repo.blob(content.as_bytes()).unwrap(), git2::FileMode::Blob);
        }
        update.create_updated(repo, &repo.find_tree(empty).unwrap()).unwrap()
    }

    fn changes(
        repo: &git2::Repository,
        old: Option<Oid>,
        new: Option<Oid>,
        skip: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let odb = repo.odb().unwrap();
        let mut out = Vec::new();
        diff(&odb, &mut TreeCache::default(), old, new, "", skip, &mut out).unwrap();
        let mut lines: Vec<String> =
            out.iter().map(|(p, n)| format!("{} {p}", if n.is_some() { "M" } else { "D" })).collect();
        lines.sort();
        lines
    }

    #[test]
    fn lists_changed_added_and_deleted_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let a = tree(
            &repo,
            &[("a/x.yaml", "1"), ("a/y.yaml", "1"), ("a-b.yaml", "1"), ("b/z.yaml", "1"), ("c", "1")],
        );
        let b = tree(
            &repo,
            &[("a/x.yaml", "2"), ("a/y.yaml", "1"), ("a-b.yaml", "1"), ("b/w.yaml", "1"), ("c/d", "1")],
        );
        assert_eq!(
            changes(&repo, Some(a), Some(b), &|_| false),
            ["D b/z.yaml", "D c", "M a/x.yaml", "M b/w.yaml", "M c/d"]
        );
        assert_eq!(changes(&repo, None, Some(a), &|_| false).len(), 5);
        assert_eq!(changes(&repo, Some(a), None, &|_| false).len(), 5);
        assert_eq!(changes(&repo, Some(a), Some(b), &|p| p == "b"), ["D c", "M a/x.yaml", "M c/d"]);
        assert!(changes(&repo, Some(a), Some(a), &|_| false).is_empty());
    }

    #[test]
    fn finds_subtrees_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let root = tree(&repo, &[("fleet/prod/a.yaml", "1"), ("fleet.yaml", "1")]);
        let odb = repo.odb().unwrap();
        let mut cache = TreeCache::default();
        let prod = cache.subtree(&odb, root, "fleet/prod").unwrap().unwrap();
        assert_eq!(changes(&repo, None, Some(prod), &|_| false), ["M a.yaml"]);
        assert_eq!(cache.subtree(&odb, root, "fleet.yaml").unwrap(), None);
        assert_eq!(cache.subtree(&odb, root, "nothing").unwrap(), None);
        assert_eq!(cache.subtree(&odb, root, "").unwrap(), Some(root));
        let blob = repo.blob(b"x").unwrap();
        assert!(cache.get(&odb, blob).is_err(), "a blob is not a tree");
    }
}
