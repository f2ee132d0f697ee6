//! A first-parent tree diff that only descends into subtrees whose ids differ.
//!
//! libgit2's general diff builds a path string for every entry of every changed
//! tree; the index only needs the changed blobs, so it walks the two sorted
//! entry lists side by side and compares ids.

use std::cmp::Ordering;

use git2::{ObjectType, Oid, Repository, Tree, TreeEntry};

/// A changed path: the new blob id and file mode, or `None` when deleted.
pub type Change = (String, Option<(Oid, u32)>);

/// Git's tree order: names compared bytewise, a tree's name as if it ended in '/'.
fn git_order(a: &TreeEntry<'_>, b: &TreeEntry<'_>) -> Ordering {
    let (an, bn) = (a.name_bytes(), b.name_bytes());
    let common = an.len().min(bn.len());
    match an[..common].cmp(&bn[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    let next = |name: &[u8], e: &TreeEntry<'_>| -> Option<u8> {
        name.get(common).copied().or((e.kind() == Some(ObjectType::Tree)).then_some(b'/'))
    };
    next(an, a).cmp(&next(bn, b))
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() { name.into_owned() } else { format!("{prefix}/{name}") }
}

/// Lists every blob that differs between `old` and `new`, skipping subtrees for
/// which `skip` returns true.
pub fn diff(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: Option<&Tree<'_>>,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    let olds: Vec<TreeEntry<'_>> = old.map(|t| t.iter().collect()).unwrap_or_default();
    let news: Vec<TreeEntry<'_>> = new.map(|t| t.iter().collect()).unwrap_or_default();
    let (mut i, mut j) = (0, 0);
    while i < olds.len() || j < news.len() {
        let order = match (olds.get(i), news.get(j)) {
            (Some(a), Some(b)) => git_order(a, b),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                entry_changed(repo, Some(&olds[i]), None, prefix, skip, out)?;
                i += 1;
            }
            Ordering::Greater => {
                entry_changed(repo, None, Some(&news[j]), prefix, skip, out)?;
                j += 1;
            }
            Ordering::Equal => {
                let (a, b) = (&olds[i], &news[j]);
                if a.id() != b.id() || a.filemode() != b.filemode() {
                    entry_changed(repo, Some(a), Some(b), prefix, skip, out)?;
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn entry_changed(
    repo: &Repository,
    old: Option<&TreeEntry<'_>>,
    new: Option<&TreeEntry<'_>>,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    let name = new.or(old).map(|e| e.name_bytes()).unwrap_or_default();
    let path = join(prefix, name);
    let as_tree = |e: Option<&TreeEntry<'_>>| -> Result<Option<Tree<'_>>, git2::Error> {
        match e {
            Some(e) if e.kind() == Some(ObjectType::Tree) => repo.find_tree(e.id()).map(Some),
            _ => Ok(None),
        }
    };
    let is_tree = |e: Option<&TreeEntry<'_>>| e.is_some_and(|e| e.kind() == Some(ObjectType::Tree));
    if (is_tree(old) || is_tree(new)) && !skip(&path) {
        let (ot, nt) = (as_tree(old)?, as_tree(new)?);
        if ot.is_some() || nt.is_some() {
            diff(repo, ot.as_ref(), nt.as_ref(), &path, skip, out)?;
        }
    }
    // A blob on either side (a tree replaced by a file, or the reverse, included).
    let blob = |e: Option<&TreeEntry<'_>>| {
        e.filter(|e| e.kind() == Some(ObjectType::Blob)).map(|e| (e.id(), e.filemode() as u32))
    };
    let (ob, nb) = (blob(old), blob(new));
    if ob.is_some() || nb.is_some() {
        out.push((path, nb));
    }
    Ok(())
}
