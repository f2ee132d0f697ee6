//! The fleet repository: reading a commit (or a folder) into typed, validated objects.
//!
//! Files are routed by `apiVersion` + `kind`, not by folder; `gitfleet.yaml`
//! decides which files are read. Symlinks are never followed, so nothing outside
//! the repository is ever read.

pub mod duration;
pub mod fleet;
pub mod hash;
pub mod labels;
pub mod model;
pub mod scope;
pub mod settings;
pub mod validate;
pub mod window;
pub mod wire;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use git2::{ObjectType, Repository, Tree};

pub use fleet::Fleet;
pub use settings::{SETTINGS_FILE, Settings};
pub use validate::{Area, Issue, ParsedFile, parse_file};

/// Errors reading a repository (not problems inside it: those are [`Issue`]s).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("read Git object {what}: {source}")]
    Git { what: String, source: git2::Error },
    #[error("folder {0} does not exist in the tracked tree")]
    NoSuchFolder(String),
}

/// Every file gitfleet reads from one tree, parsed, plus repository-level issues.
#[derive(Debug, Default)]
pub struct Loaded {
    pub settings: Settings,
    /// Path (relative to the tracked folder) -> parsed content.
    pub files: BTreeMap<String, Arc<ParsedFile>>,
    /// Problems that belong to no single manifest: settings, symlinks.
    pub issues: Vec<Issue>,
    /// `gitfleet.yaml` did not parse: which files belong to the fleet is unknown.
    pub settings_broken: bool,
}

impl Loaded {
    /// Builds the fleet of these files, with cross-object checks.
    pub fn fleet(&self) -> Fleet {
        let mut fleet = Fleet::build(self.files.values().map(|f| f.as_ref()));
        fleet.issues.extend(self.issues.iter().cloned());
        fleet.issues.sort();
        fleet
    }
}

/// Parses `gitfleet.yaml` content into settings, or an issue naming the file.
pub fn read_settings(bytes: Option<&[u8]>) -> (Settings, Option<Issue>) {
    match bytes.map(Settings::parse) {
        None => (Settings::default(), None),
        Some(Ok(s)) => (s, None),
        Some(Err(message)) => (
            Settings::default(),
            Some(Issue { path: Arc::from(SETTINGS_FILE), line: None, object: None, message }),
        ),
    }
}

/// Issue for a symlink gitfleet refuses to follow.
pub fn symlink_issue(path: &str) -> Issue {
    Issue {
        path: Arc::from(path),
        line: None,
        object: None,
        message: "is a symbolic link; gitfleet does not follow links (commit the file itself)".into(),
    }
}

/// Issue for a file larger than gitfleet reads.
fn too_large_issue(path: &str, size: usize) -> Issue {
    Issue {
        path: Arc::from(path),
        line: None,
        object: None,
        message: crate::yaml::YamlError::TooLarge { size, limit: crate::yaml::MAX_FILE_BYTES }.to_string(),
    }
}

/// Reads the subtree `root` (or the whole tree) of a commit.
pub fn load_tree(repo: &Repository, tree: &Tree<'_>, root: Option<&str>) -> Result<Loaded, RepoError> {
    load_tree_with(repo, tree, root, None)
}

/// Files parsed by the previous load, by path, blob and area: a load parses
/// only the files that changed since (a fleet of 10,000 MemberCluster files
/// is read again on every pass).
#[derive(Debug, Default, Clone)]
pub struct ParsedFiles(std::collections::HashMap<(String, git2::Oid, Area), Arc<ParsedFile>>);

/// Like [`load_tree`]; when the tree's `gitfleet.yaml` does not parse, files are
/// selected with `fallback` settings (the last good ones) instead of the defaults.
pub fn load_tree_with(
    repo: &Repository,
    tree: &Tree<'_>,
    root: Option<&str>,
    fallback: Option<&Settings>,
) -> Result<Loaded, RepoError> {
    load_tree_cached(repo, tree, root, fallback, &mut ParsedFiles::default())
}

/// Like [`load_tree_with`], taking unchanged files from `cache` (which then
/// holds this load's files).
pub fn load_tree_cached(
    repo: &Repository,
    tree: &Tree<'_>,
    root: Option<&str>,
    fallback: Option<&Settings>,
    cache: &mut ParsedFiles,
) -> Result<Loaded, RepoError> {
    let mut old = std::mem::take(&mut cache.0);
    load_tree_from(
        repo,
        tree,
        root,
        fallback,
        |key| old.remove(key),
        |key, parsed| {
            cache.0.insert(key, parsed);
        },
    )
}

/// Like [`load_tree_cached`], taking the files `parsed` holds and parsing
/// the others, without keeping them.
pub fn load_tree_shared(
    repo: &Repository,
    tree: &Tree<'_>,
    root: Option<&str>,
    parsed: &ParsedFiles,
) -> Result<Loaded, RepoError> {
    load_tree_from(repo, tree, root, None, |key| parsed.0.get(key).cloned(), |_, _| {})
}

/// Reads the fleet files of a tree, asking `known` for files parsed before
/// and handing every file to `keep`.
fn load_tree_from(
    repo: &Repository,
    tree: &Tree<'_>,
    root: Option<&str>,
    fallback: Option<&Settings>,
    mut known: impl FnMut(&(String, git2::Oid, Area)) -> Option<Arc<ParsedFile>>,
    mut keep: impl FnMut((String, git2::Oid, Area), Arc<ParsedFile>),
) -> Result<Loaded, RepoError> {
    let git_err = |what: &str| {
        let what = what.to_string();
        move |source| RepoError::Git { what, source }
    };
    let sub;
    let tree = match root.filter(|r| !r.is_empty()) {
        None => tree,
        Some(r) => {
            let entry = tree.get_path(Path::new(r)).map_err(|_| RepoError::NoSuchFolder(r.to_string()))?;
            sub = repo.find_tree(entry.id()).map_err(|_| RepoError::NoSuchFolder(r.to_string()))?;
            &sub
        }
    };
    let settings_blob = match tree.get_name(SETTINGS_FILE) {
        Some(e) if e.kind() == Some(ObjectType::Blob) => {
            Some(repo.find_blob(e.id()).map_err(git_err(SETTINGS_FILE))?.content().to_vec())
        }
        _ => None,
    };
    let (mut settings, settings_issue) = read_settings(settings_blob.as_deref());
    if let (Some(_), Some(fallback)) = (&settings_issue, fallback) {
        settings = fallback.clone();
    }
    let mut loaded = Loaded { settings_broken: settings_issue.is_some(), ..Loaded::default() };
    loaded.issues.extend(settings_issue);
    let mut entries = Vec::new();
    collect_tree(repo, tree, "", &settings, &mut entries)?;
    for (path, id, symlink) in entries {
        if symlink {
            loaded.issues.push(symlink_issue(&path));
            continue;
        }
        let area = settings.classify(&path).expect("collect_tree keeps classified paths");
        let key = (path.clone(), id, area);
        let parsed = match known(&key) {
            Some(parsed) => parsed,
            None => {
                let blob = repo.find_blob(id).map_err(git_err(&path))?;
                Arc::new(parse_blob(&path, blob.content(), area))
            }
        };
        keep(key, parsed.clone());
        loaded.files.insert(path, parsed);
    }
    loaded.settings = settings;
    Ok(loaded)
}

/// Parses file content, refusing oversized files before parsing.
pub fn parse_blob(path: &str, content: &[u8], area: Area) -> ParsedFile {
    if content.len() > crate::yaml::MAX_FILE_BYTES {
        return ParsedFile { issues: vec![too_large_issue(path, content.len())], ..ParsedFile::default() };
    }
    parse_file(path, content, area)
}

/// Lists `(path, blob id, is_symlink)` of every file the settings select.
fn collect_tree(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &str,
    settings: &Settings,
    out: &mut Vec<(String, git2::Oid, bool)>,
) -> Result<(), RepoError> {
    for entry in tree.iter() {
        let Ok(name) = entry.name() else { continue };
        let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        match entry.filemode() {
            0o040000 => {
                if settings.skips_folder(&path) {
                    continue;
                }
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(|source| RepoError::Git { what: path.clone(), source })?;
                collect_tree(repo, &sub, &path, settings, out)?;
            }
            0o120000 if settings.classify(&path).is_some() => {
                out.push((path, entry.id(), true));
            }
            0o100644 | 0o100755 if settings.classify(&path).is_some() => {
                out.push((path, entry.id(), false));
            }
            _ => {} // submodules: not part of this repository's content
        }
    }
    Ok(())
}

/// Reads a work-tree folder (for `gitfleet validate DIR`); `.git` is skipped.
pub fn load_dir(dir: &Path) -> Result<Loaded, RepoError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RepoError::Io { path, source }
    };
    let settings_path = dir.join(SETTINGS_FILE);
    let settings_bytes = match std::fs::symlink_metadata(&settings_path) {
        Ok(m) if m.is_file() => Some(std::fs::read(&settings_path).map_err(io(&settings_path))?),
        _ => None,
    };
    let (settings, settings_issue) = read_settings(settings_bytes.as_deref());
    let mut loaded = Loaded { settings_broken: settings_issue.is_some(), ..Loaded::default() };
    loaded.issues.extend(settings_issue);
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            // symlink_metadata: a link is reported, never followed.
            let meta = std::fs::symlink_metadata(entry.path()).map_err(io(&entry.path()))?;
            if meta.is_dir() {
                if name != ".git" && !settings.skips_folder(&rel) {
                    stack.push((entry.path(), rel));
                }
            } else if let Some(area) = settings.classify(&rel) {
                if meta.file_type().is_symlink() {
                    loaded.issues.push(symlink_issue(&rel));
                } else if meta.len() as usize > crate::yaml::MAX_FILE_BYTES {
                    loaded.issues.push(too_large_issue(&rel, meta.len() as usize));
                } else {
                    let bytes = std::fs::read(entry.path()).map_err(io(&entry.path()))?;
                    loaded.files.insert(rel.clone(), Arc::new(parse_file(&rel, &bytes, area)));
                }
            }
        }
    }
    loaded.settings = settings;
    Ok(loaded)
}
