//! Opening the fleet repository for reading: a local path (bare or with a work
//! tree) is read in place; a URL is cloned into a temporary folder first.

use std::path::Path;

use git2::{Oid, Repository};

/// Errors reaching the repository: environment errors (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("open repository {location}: {source}")]
    Open { location: String, source: git2::Error },
    #[error("clone {location}: {source}")]
    Clone { location: String, source: git2::Error },
    #[error("branch {branch} not found in {location}")]
    NoBranch { location: String, branch: String },
    #[error("revision {rev} not found in {location}: {source}")]
    NoRev { location: String, rev: String, source: git2::Error },
    #[error("temporary folder: {0}")]
    Temp(#[source] std::io::Error),
}

/// A repository opened for reading; a temporary clone is removed on drop.
pub struct Source {
    pub repo: Repository,
    pub location: String,
    _tmp: Option<tempfile::TempDir>,
}

/// Whether `location` names a remote URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://")
        || (location.contains('@') && location.contains(':') && !Path::new(location).exists())
}

impl Source {
    pub fn open(location: &str, branch: &str) -> Result<Source, SourceError> {
        if is_url(location) && !location.starts_with("file://") {
            let tmp = tempfile::Builder::new().prefix("gitfleet-").tempdir().map_err(SourceError::Temp)?;
            let mut fetch = git2::FetchOptions::new();
            fetch.depth(0);
            let repo = git2::build::RepoBuilder::new()
                .bare(true)
                .branch(branch)
                .fetch_options(fetch)
                .clone(location, tmp.path())
                .map_err(|source| SourceError::Clone { location: location.into(), source })?;
            return Ok(Source { repo, location: location.into(), _tmp: Some(tmp) });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        let repo = Repository::open(path)
            .map_err(|source| SourceError::Open { location: location.into(), source })?;
        Ok(Source { repo, location: location.into(), _tmp: None })
    }

    /// The tip of `branch`: the local branch, else the remote-tracking one.
    pub fn branch_tip(&self, branch: &str) -> Result<Oid, SourceError> {
        branch_tip(&self.repo, branch)
            .ok_or_else(|| SourceError::NoBranch { location: self.location.clone(), branch: branch.into() })
    }

    /// The commit a revision (sha, tag, branch, `HEAD~2`) names.
    pub fn resolve(&self, rev: &str) -> Result<Oid, SourceError> {
        let err = |source| SourceError::NoRev { location: self.location.clone(), rev: rev.into(), source };
        let obj = self.repo.revparse_single(rev).map_err(err)?;
        obj.peel_to_commit().map(|c| c.id()).map_err(err)
    }
}

/// The tip of `branch` in `repo`: `refs/heads/`, then `refs/remotes/origin/`.
pub fn branch_tip(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/heads/{branch}"))
        .or_else(|_| repo.refname_to_id(&format!("refs/remotes/origin/{branch}")))
        .ok()
}
