//! Files gitfleet keeps on disk (local-store objects, its records).

use std::path::Path;

/// Writes a file so that a reader sees the old content or the new, never half:
/// a temporary file in the same folder, then a rename.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let mut tmp = tempfile::NamedTempFile::new_in(folder)?;
    std::io::Write::write_all(&mut tmp, content)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
