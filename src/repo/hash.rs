//! Content hashing: the SHA-256 of a value's canonical JSON, the identity of
//! an object's content in snapshots and in the index.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 of an object's canonical content.
pub type ContentHash = [u8; 32];

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
