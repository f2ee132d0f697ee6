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
    #[error("fetch {location}: {source}")]
    Fetch { location: String, source: git2::Error },
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
    /// For a temporary clone: the credentials it was made with (to fetch again).
    creds: Option<crate::status::Credentials>,
    _tmp: Option<tempfile::TempDir>,
}

/// A URL without the password or token written in it (`https://user:TOKEN@host/x`
/// -> `https://user@host/x`), and what was removed: `(user, secret)`. Anything
/// else is returned as it is.
pub fn split_credentials(location: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = location.split_once("://") else { return (location.to_string(), None) };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return (location.to_string(), None) };
    let Some((user, secret)) = rest[..at].split_once(':') else { return (location.to_string(), None) };
    let clean = if user.is_empty() {
        format!("{scheme}://{}", &rest[at + 1..])
    } else {
        format!("{scheme}://{user}@{}", &rest[at + 1..])
    };
    (clean, Some((user.to_string(), secret.to_string())))
}

/// A location as it may be shown: without a password or token.
pub fn redacted(location: &str) -> String {
    split_credentials(location).0
}

/// Whether `location` names a remote URL rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.contains("://")
        || (location.contains('@') && location.contains(':') && !Path::new(location).exists())
}

impl Source {
    pub fn open(location: &str, branch: &str) -> Result<Source, SourceError> {
        if is_url(location) && !location.starts_with("file://") {
            // A token in the URL is handed over by the credential callback, so it
            // is in no message and in no Git config.
            let (clean, userpass) = split_credentials(location);
            let creds = crate::status::Credentials::from_url(userpass);
            let tmp = tempfile::Builder::new().prefix("gitfleet-").tempdir().map_err(SourceError::Temp)?;
            let mut fetch = git2::FetchOptions::new();
            fetch.depth(0);
            fetch.remote_callbacks(crate::status::publish::callbacks(&creds, &clean, None));
            let repo = git2::build::RepoBuilder::new()
                .bare(true)
                .branch(branch)
                .fetch_options(fetch)
                .clone(&clean, tmp.path())
                .map_err(|e| SourceError::Clone { location: clean.clone(), source: creds.explain(e) })?;
            return Ok(Source { repo, location: clean, creds: Some(creds), _tmp: Some(tmp) });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        let repo = Repository::open(path)
            .map_err(|source| SourceError::Open { location: location.into(), source })?;
        Ok(Source { repo, location: location.into(), creds: None, _tmp: None })
    }

    /// Brings a temporary clone's branches up to the remote's (a local
    /// repository is read as it is, and needs nothing).
    pub fn refresh(&self) -> Result<(), SourceError> {
        let Some(creds) = &self.creds else { return Ok(()) };
        let mut fetch = git2::FetchOptions::new();
        fetch.remote_callbacks(crate::status::publish::callbacks(creds, &self.location, None));
        let err = |e| SourceError::Fetch { location: self.location.clone(), source: creds.explain(e) };
        let mut remote = self.repo.remote_anonymous(&self.location).map_err(err)?;
        remote.fetch(&["+refs/heads/*:refs/heads/*"], Some(&mut fetch), None).map_err(err)
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

/// Every branch's tip (local and remote-tracking), sorted: what moves when
/// someone pushes or gitfleet commits status.
pub fn branch_tips(repo: &Repository) -> Vec<(String, Oid)> {
    let mut out: Vec<(String, Oid)> = repo
        .references()
        .map(|refs| {
            refs.flatten()
                .filter(|r| r.is_branch() || r.is_remote())
                .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The tip of `branch` in `repo`: `refs/heads/`, then `refs/remotes/origin/`.
pub fn branch_tip(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/heads/{branch}"))
        .or_else(|_| repo.refname_to_id(&format!("refs/remotes/origin/{branch}")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_urls() {
        assert_eq!(
            split_credentials("https://user:s3cr3t@git.example.com/fleet.git"),
            ("https://user@git.example.com/fleet.git".into(), Some(("user".into(), "s3cr3t".into())))
        );
        assert_eq!(
            split_credentials("https://:tok@host/x"),
            ("https://host/x".into(), Some((String::new(), "tok".into())))
        );
        assert_eq!(
            split_credentials("ssh://git@host/x.git"),
            ("ssh://git@host/x.git".into(), None),
            "no secret"
        );
        assert_eq!(split_credentials("git@host:x.git"), ("git@host:x.git".into(), None));
        assert_eq!(split_credentials("/srv/fleet.git"), ("/srv/fleet.git".into(), None));
        assert_eq!(redacted("https://a:b@h/p@q"), "https://a@h/p@q", "an @ in the path is not userinfo");
    }
}
