//! Resource snapshots: what a placement selects at a commit, hashed canonically,
//! and the index of snapshots over the first-parent history of the tracked branch.

pub mod index;
pub mod select;
pub mod treediff;

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::repo::model::ObjectKey;
use crate::repo::validate::ContentHash;

pub use index::{BlockedCommit, Indexer, SnapshotRecord};

/// SHA-256 of a value's canonical JSON (object keys sorted, no whitespace).
pub fn hash_value(value: &Value) -> ContentHash {
    let mut hasher = Sha256::new();
    // serde_json's Map is ordered by key, so this serialization is canonical.
    serde_json::to_writer(HashWriter(&mut hasher), value).expect("writing to a hasher cannot fail");
    hasher.finalize().into()
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The resource hash of a selection: SHA-256 over every selected object's
/// identity and content hash, in key order. Independent of file layout.
pub fn selection_hash(selected: &BTreeMap<ObjectKey, ContentHash>) -> String {
    // One buffer, one hash: many small updates cost more than the bytes.
    let mut buf = Vec::with_capacity(selected.len() * 80);
    for (key, hash) in selected {
        for part in [key.group.as_str(), &key.kind, key.namespace.as_deref().unwrap_or(""), &key.name] {
            buf.extend_from_slice(part.as_bytes());
            buf.push(0);
        }
        buf.extend_from_slice(hash);
    }
    hex(&Sha256::digest(&buf))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
