//! Resource snapshots: what a placement selects at a commit, hashed canonically,
//! and the index of snapshots over the first-parent history of the tracked branch.

pub mod index;
mod prepare;
pub mod select;
pub mod treediff;

use sha2::{Digest, Sha256};

use crate::repo::hash::ContentHash;
pub use crate::repo::hash::hash_value;
use crate::repo::model::ObjectKey;

pub use index::{BlockedCommit, Indexer, SnapshotRecord};

/// The resource hash of a selection: an order-independent digest of every
/// selected object's identity and content hash (independent of file layout),
/// kept up to date in O(1) per changed object. Each entry is SHA-256 of the
/// object's key and content hash; entries are summed modulo 2^256 and the
/// sum and count are hashed once more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectionDigest {
    sum: [u64; 4],
    count: u64,
}

impl SelectionDigest {
    fn entry(key: &ObjectKey, hash: &ContentHash) -> [u64; 4] {
        let mut h = Sha256::new();
        for part in [key.group.as_str(), &key.kind, key.namespace.as_deref().unwrap_or(""), &key.name] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(hash);
        let d: [u8; 32] = h.finalize().into();
        std::array::from_fn(|i| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
    }

    /// Adds an entry.
    pub fn add(&mut self, key: &ObjectKey, hash: &ContentHash) {
        let e = Self::entry(key, hash);
        let mut carry = false;
        for (s, x) in self.sum.iter_mut().zip(e) {
            let (a, c1) = s.overflowing_add(x);
            let (b, c2) = a.overflowing_add(carry as u64);
            *s = b;
            carry = c1 || c2;
        }
        self.count += 1;
    }

    /// Removes an entry added before.
    pub fn remove(&mut self, key: &ObjectKey, hash: &ContentHash) {
        let e = Self::entry(key, hash);
        let mut borrow = false;
        for (s, x) in self.sum.iter_mut().zip(e) {
            let (a, b1) = s.overflowing_sub(x);
            let (b, b2) = a.overflowing_sub(borrow as u64);
            *s = b;
            borrow = b1 || b2;
        }
        self.count -= 1;
    }

    /// The digest of a whole selection.
    pub fn of<'a>(selected: impl IntoIterator<Item = (&'a ObjectKey, &'a ContentHash)>) -> Self {
        let mut d = SelectionDigest::default();
        for (k, h) in selected {
            d.add(k, h);
        }
        d
    }

    /// `kubernetes-fleet.io/resource-hash`: lowercase hex SHA-256.
    pub fn hex(&self) -> String {
        let mut h = Sha256::new();
        for limb in self.sum {
            h.update(limb.to_le_bytes());
        }
        h.update(self.count.to_le_bytes());
        hex(&h.finalize())
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;

    #[test]
    fn selection_digest_is_incremental_and_order_free() {
        let key = |n: &str| ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: n.into(),
        };
        let all: BTreeMap<ObjectKey, ContentHash> =
            [(key("a"), [1; 32]), (key("b"), [2; 32]), (key("c"), [3; 32])].into();
        let mut d = SelectionDigest::default();
        d.add(&key("c"), &[3; 32]);
        d.add(&key("a"), &[9; 32]);
        d.add(&key("b"), &[2; 32]);
        d.remove(&key("a"), &[9; 32]);
        d.add(&key("a"), &[1; 32]);
        assert_eq!(d, SelectionDigest::of(&all));
        assert_eq!(d.hex(), SelectionDigest::of(&all).hex());
        let mut e = d;
        e.remove(&key("c"), &[3; 32]);
        assert_ne!(e.hex(), d.hex());
        assert_eq!(SelectionDigest::default().hex().len(), 64);
    }

    #[test]
    fn hash_ignores_key_order_and_formatting() {
        let a: Value = crate::yaml::parse_documents(b"b: 1\na: {y: 2, x: 1}\n").unwrap()[0].value.clone();
        let b: Value =
            crate::yaml::parse_documents(b"a:\n  x: 1\n  y: 2\nb: 1 # same\n").unwrap()[0].value.clone();
        assert_eq!(hash_value(&a), hash_value(&b));
        let c: Value = crate::yaml::parse_documents(b"a: {x: 1, y: 3}\nb: 1\n").unwrap()[0].value.clone();
        assert_ne!(hash_value(&a), hash_value(&c));
    }
}

/// Why a run's target (`resourceSnapshotIndex`, `resourceCommit` or the
/// latest) names no snapshot of its placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("placement {placement} has no resource snapshot")]
    NoSnapshot { placement: String },
    #[error("no resource snapshot with index {index} for placement {placement}")]
    NoIndex { placement: String, index: u32 },
    #[error("resourceCommit {rev} does not name a commit")]
    NotACommit { rev: String },
    #[error("resourceCommit {rev} is not in the history of the tracked branch")]
    NotInHistory { rev: String },
    #[error("placement {placement} had no resource snapshot at commit {rev}")]
    NoSnapshotAt { placement: String, rev: String },
}
