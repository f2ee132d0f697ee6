//! gitfleet's own clone under `--state-dir`: fetch, commit status, push.
//!
//! gitfleet never force-pushes. When the remote rejects a push because someone
//! pushed meanwhile, it fetches, rebuilds its status commit on the new tip and
//! retries with backoff, so nobody's commit is ever lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::build::TreeUpdateBuilder;
use git2::{
    Cred, CredentialType, FetchOptions, FileMode, Oid, PushOptions, RemoteCallbacks, Repository, Signature,
};

use super::StatusChanges;
use super::sign::CommitSigner;

/// How many times a rejected push is rebuilt and retried.
const MAX_PUSH_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const REMOTE: &str = "origin";

/// Who gitfleet commits as.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity { name: "gitfleet".into(), email: "gitfleet@localhost".into() }
    }
}

/// A token for https: shown nowhere (its `Debug` hides it), handed to the
/// credential callback only.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    /// The token itself, for the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Token, Self::Err> {
        Ok(Token(s.to_string()))
    }
}

/// Credentials for remote URLs; local paths need none.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// A private key file for ssh URLs (otherwise ssh-agent is asked).
    pub ssh_key: Option<PathBuf>,
    /// A token for https URLs (otherwise Git's credential helpers are asked).
    pub token: Option<Token>,
    /// The user name for the token (default `x-access-token`).
    pub user: Option<String>,
    /// How SSH host keys are checked (default: the user's known_hosts files).
    pub host_keys: crate::hostkeys::HostKeys,
    /// Why the last host key was refused: libgit2 replaces the callback's
    /// message by a generic one, so it is kept here and put back.
    pub(crate) refused_host_key: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Credentials {
    /// The user and token that were written in a repository URL, if any.
    pub fn from_url(userpass: Option<(String, String)>) -> Credentials {
        let (user, token) =
            userpass.map_or((None, None), |(u, t)| ((!u.is_empty()).then_some(u), Some(Token(t))));
        Credentials { ssh_key: None, token, user, ..Credentials::default() }
    }

    /// `e`, or why the host key was refused when that is what failed.
    pub(crate) fn explain(&self, e: git2::Error) -> git2::Error {
        let refused = self.refused_host_key.lock().unwrap_or_else(|p| p.into_inner()).take();
        match refused {
            Some(why) if e.class() == git2::ErrorClass::Ssh => git2::Error::from_str(&why),
            _ if e.code() == git2::ErrorCode::Certificate
                || (e.class() == git2::ErrorClass::Ssl && e.message().contains("certificate")) =>
            {
                git2::Error::from_str(&format!(
                    "the server's TLS certificate is not trusted ({}); for a private CA give its certificate with \
                 --git-ca-file FILE or SSL_CERT_FILE",
                    e.message()
                ))
            }
            _ if is_timeout(&e) => git2::Error::from_str(&format!(
                "the Git server did not answer in time (--git-timeout): {}",
                e.message()
            )),
            _ => e,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("state folder {path}: {source}")]
    StateDir { path: String, source: git2::Error },
    #[error("fetch {branch} from {remote}: {source}")]
    Fetch { remote: String, branch: String, source: git2::Error },
    #[error("branch {branch} does not exist in {remote}")]
    NoBranch { remote: String, branch: String },
    #[error("push status to {remote} {branch}: {source}")]
    Push { remote: String, branch: String, source: git2::Error },
    #[error("push status to {remote} {branch}: rejected {attempts} times, last: {message}")]
    Rejected { remote: String, branch: String, attempts: u32, message: String },
    #[error(
        "push status to {remote} {branch}: push rejected by the server: {message} (if {branch} refuses \
         gitfleet's pushes, set statusBranch in gitfleet.yaml to a branch gitfleet may push to)"
    )]
    Refused { remote: String, branch: String, message: String },
    #[error("write status commit: {0}")]
    Commit(#[source] git2::Error),
    #[error("sign the status commit: {0}")]
    Sign(String),
    #[error("{folder} on {branch} changed while gitfleet was committing to it; the next pass starts over")]
    ChangedMeanwhile { branch: String, folder: String },
    #[error(
        "branch {branch} is checked out in {path}; gitfleet does not move a checked-out branch \
         (use a bare repository, or set statusBranch in gitfleet.yaml)"
    )]
    CheckedOut { branch: String, path: String },
}

impl StatusError {
    /// Whether trying again later may succeed: everything but a refusal that
    /// needs a person (a checked-out branch gitfleet will never move). A
    /// network error, a lost race, a missing branch or a full disk may pass.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, StatusError::CheckedOut { .. })
    }
}

/// gitfleet's clone of the fleet repository.
pub struct StateRepo {
    repo: Repository,
    remote: String,
    creds: Credentials,
    /// The remote is a local repository: gitfleet moves the branch in it directly
    /// with a compare-and-swap (libgit2 cannot push to a work tree, and its local
    /// push overwrites a ref that moved meanwhile). `(git dir, is bare)`.
    local_remote: Option<(PathBuf, bool)>,
    /// Signs the commits it makes when set (`--signing-key`, `approve --sign`).
    signing_key: Option<CommitSigner>,
    /// Passed before every push (leader election).
    fence: Option<crate::cluster::Fence>,
}

impl StateRepo {
    /// Opens (or creates) the bare clone at `<state_dir>/repo.git` for `remote`.
    pub fn open(state_dir: &Path, remote: &str, mut creds: Credentials) -> Result<StateRepo, StatusError> {
        // A token written in the URL goes through the credential callback: it is
        // kept out of the clone's config and of every message.
        let (clean, userpass) = crate::source::split_credentials(remote);
        if let Some((user, token)) = userpass {
            creds.token.get_or_insert(Token(token));
            if !user.is_empty() {
                creds.user.get_or_insert(user);
            }
        }
        let remote = clean.as_str();
        let path = state_dir.join("repo.git");
        let err = |source| StatusError::StateDir { path: path.display().to_string(), source };
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&path).map_err(|e| err(git2::Error::from_str(&e.to_string())))?;
                Repository::init_bare(&path).map_err(err)?
            }
        };
        let url = remote_url(remote);
        match repo.find_remote(REMOTE) {
            Ok(r) if r.url() == Ok(url.as_str()) => {}
            Ok(_) => repo.remote_set_url(REMOTE, &url).map_err(err)?,
            Err(_) => {
                repo.remote(REMOTE, &url).map_err(err)?;
            }
        }
        let local = Path::new(remote.strip_prefix("file://").unwrap_or(remote));
        let local_remote =
            Repository::open(local).ok().and_then(|r| r.path().canonicalize().ok().map(|p| (p, r.is_bare())));
        Ok(StateRepo {
            repo,
            remote: remote.to_string(),
            creds,
            local_remote,
            signing_key: None,
            fence: None,
        })
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// Repacks the clone when it holds too many files (see
    /// [`super::repack`]), then reopens it so that the removed packs are let go.
    pub fn repack_if_needed(&mut self) -> Result<Option<super::repack::Repacked>, git2::Error> {
        use super::repack::{MAX_LOOSE, MAX_PACKS, repack_if_needed};
        let done = repack_if_needed(&self.repo, MAX_PACKS, MAX_LOOSE)?;
        if done.is_some() {
            self.repo = Repository::open_bare(self.repo.path())?;
        }
        Ok(done)
    }

    /// Fetches `branch` and returns its tip, or `None` when the branch does not exist.
    pub fn fetch(&self, branch: &str) -> Result<Option<Oid>, StatusError> {
        let err = |source| StatusError::Fetch { remote: self.remote.clone(), branch: branch.into(), source };
        let mut remote = self.repo.find_remote(REMOTE).map_err(err)?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(&self.creds, &self.remote, None));
        opts.prune(git2::FetchPrune::On);
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}");
        match remote.fetch(&[&refspec], Some(&mut opts), None) {
            Ok(()) => {}
            // A branch missing on the remote is not an error for an optional status branch.
            Err(e) if e.code() == git2::ErrorCode::NotFound => {}
            Err(e) => return Err(err(self.creds.explain(e))),
        }
        Ok(self.tip(branch))
    }

    /// The last fetched tip of `branch`.
    pub fn tip(&self, branch: &str) -> Option<Oid> {
        self.repo.refname_to_id(&format!("refs/remotes/{REMOTE}/{branch}")).ok()
    }

    /// Commits `changes` under `status_root` on top of `base` (a fetched tip of
    /// `branch`, or `None` to start the branch) and pushes. A rejected push is
    /// retried on the newly fetched tip. Returns the pushed commit, or `None`
    /// when the changes were already in the tree.
    pub fn publish(
        &self,
        branch: &str,
        base: Option<Oid>,
        status_root: &str,
        changes: &StatusChanges,
        message: &str,
        identity: &Identity,
    ) -> Result<Option<Oid>, StatusError> {
        let folder = |commit: Option<Oid>| -> Option<Oid> {
            let tree = self.repo.find_commit(commit?).ok()?.tree().ok()?;
            tree.get_path(Path::new(status_root)).ok().map(|e| e.id())
        };
        let mut ours = folder(base);
        let mut base = base;
        let mut delay = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=MAX_PUSH_ATTEMPTS {
            let Some(commit) = self.build_commit(base, status_root, changes, message, identity)? else {
                return Ok(None);
            };
            match self.push(branch, commit)? {
                None => return Ok(Some(commit)),
                Some(reason) => {
                    tracing::info!(branch, attempt, %reason, "status push rejected; rebuilding on the new tip");
                    last = reason;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                    let previous = base;
                    base = self.fetch(branch)?;
                    if folder(base) != ours {
                        // Another replica's signed commits that touch none of
                        // these files (`--shards`) are built on; anything else
                        // means what this commit holds was decided on a folder
                        // that is gone.
                        if !self.only_ours_elsewhere(previous, base, status_root, changes) {
                            return Err(StatusError::ChangedMeanwhile {
                                branch: branch.into(),
                                folder: status_root.into(),
                            });
                        }
                        ours = folder(base);
                    }
                }
            }
        }
        Err(StatusError::Rejected {
            remote: self.remote.clone(),
            branch: branch.into(),
            attempts: MAX_PUSH_ATTEMPTS,
            message: last,
        })
    }

    /// Builds the status commit. A large one (a run over thousands of
    /// clusters) is written as one pack file rather than a loose object file
    /// per status file.
    fn build_commit(
        &self,
        base: Option<Oid>,
        status_root: &str,
        changes: &StatusChanges,
        message: &str,
        identity: &Identity,
    ) -> Result<Option<Oid>, StatusError> {
        if changes.writes.len() <= PACK_OVER_FILES {
            return self.build_commit_in(&self.repo, base, status_root, changes, message, identity);
        }
        // A handle of its own, so the in-memory backend goes with it.
        let repo = Repository::open(self.repo.path()).map_err(StatusError::Commit)?;
        let odb = repo.odb().map_err(StatusError::Commit)?;
        let mempack = odb.add_new_mempack_backend(1000).map_err(StatusError::Commit)?;
        let Some(commit) = self.build_commit_in(&repo, base, status_root, changes, message, identity)? else {
            return Ok(None);
        };
        let mut pack = git2::Buf::new();
        mempack.dump(&repo, &mut pack).map_err(StatusError::Commit)?;
        let mut writer = odb.packwriter().map_err(StatusError::Commit)?;
        std::io::Write::write_all(&mut writer, &pack)
            .map_err(|e| StatusError::Commit(git2::Error::from_str(&format!("writing a pack: {e}"))))?;
        writer.commit().map_err(StatusError::Commit)?;
        mempack.reset().map_err(StatusError::Commit)?;
        Ok(Some(commit))
    }

    fn build_commit_in(
        &self,
        repo: &Repository,
        base: Option<Oid>,
        status_root: &str,
        changes: &StatusChanges,
        message: &str,
        identity: &Identity,
    ) -> Result<Option<Oid>, StatusError> {
        let parent = base.map(|b| repo.find_commit(b)).transpose().map_err(StatusError::Commit)?;
        let tree = match &parent {
            Some(p) => p.tree().map_err(StatusError::Commit)?,
            None => {
                let empty = repo.treebuilder(None).and_then(|b| b.write()).map_err(StatusError::Commit)?;
                repo.find_tree(empty).map_err(StatusError::Commit)?
            }
        };
        let mut update = TreeUpdateBuilder::new();
        for (path, content) in &changes.writes {
            let blob = repo.blob(content).map_err(StatusError::Commit)?;
            update.upsert(format!("{status_root}/{path}"), blob, FileMode::Blob);
        }
        for path in &changes.deletes {
            let full = format!("{status_root}/{path}");
            if tree.get_path(Path::new(&full)).is_ok() {
                update.remove(full);
            }
        }
        let new_tree = update.create_updated(repo, &tree).map_err(StatusError::Commit)?;
        if parent.is_some() && new_tree == tree.id() {
            return Ok(None);
        }
        let new_tree = repo.find_tree(new_tree).map_err(StatusError::Commit)?;
        let sig = Signature::now(&identity.name, &identity.email).map_err(StatusError::Commit)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let Some(key) = &self.signing_key else {
            return repo
                .commit(None, &sig, &sig, message, &new_tree, &parents)
                .map(Some)
                .map_err(StatusError::Commit);
        };
        // Signed as `git commit -S` with gpg.format=ssh signs: the commit
        // object without the header, the armored SSHSIG in `gpgsig`.
        let buffer = repo
            .commit_create_buffer(&sig, &sig, message, &new_tree, &parents)
            .map_err(StatusError::Commit)?;
        let text = std::str::from_utf8(&buffer).map_err(|e| StatusError::Sign(e.to_string()))?;
        let signature = key.sign(&buffer).map_err(|e| StatusError::Sign(e.to_string()))?;
        repo.commit_signed(text, &signature, None).map(Some).map_err(StatusError::Commit)
    }

    /// Whether every commit from `from` to `to` that changed the status folder
    /// was signed with gitfleet's own key, and none of them touched a file of
    /// `changes`.
    fn only_ours_elsewhere(
        &self,
        from: Option<Oid>,
        to: Option<Oid>,
        status_root: &str,
        changes: &StatusChanges,
    ) -> bool {
        let (Some(CommitSigner::Ssh(key)), Some(from), Some(to)) = (&self.signing_key, from, to) else {
            return false;
        };
        let repo = &self.repo;
        let check = || -> Result<bool, git2::Error> {
            if !repo.graph_descendant_of(to, from)? {
                return Ok(false);
            }
            let signed = super::trust::status_commits(repo, from, to, status_root)?
                .into_iter()
                .all(|c| super::sign::signed_by(repo, c, key.public_key()));
            let touched = super::trust::foreign_changes(repo, from, to, status_root)?;
            Ok(signed
                && !touched
                    .iter()
                    .any(|f| changes.writes.contains_key(&f.path) || changes.deletes.contains(&f.path)))
        };
        check().unwrap_or(false)
    }

    /// Signs every commit from now on.
    pub fn sign_with(&mut self, key: CommitSigner) {
        self.signing_key = Some(key);
    }

    /// Passes `fence` before every push.
    pub fn fence_with(&mut self, fence: crate::cluster::Fence) {
        self.fence = Some(fence);
    }

    /// Pushes `commit` to `branch` without force; `Some(reason)` when the remote rejected it.
    fn push(&self, branch: &str, commit: Oid) -> Result<Option<String>, StatusError> {
        if let Some(fence) = &self.fence {
            fence();
        }
        let err = |source| StatusError::Push { remote: self.remote.clone(), branch: branch.into(), source };
        let local = format!("refs/heads/{branch}");
        self.repo.reference(&local, commit, true, "gitfleet: status commit").map_err(err)?;
        if let Some((git_dir, bare)) = &self.local_remote {
            return self.move_local_branch(git_dir, *bare, branch, commit);
        }
        let mut remote = self.repo.find_remote(REMOTE).map_err(err)?;
        let report = PushReport::default();
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks(&self.creds, &self.remote, Some(&report)));
        // No leading '+': a push that is not a fast-forward is refused, never forced.
        let refspec = format!("{local}:{local}");
        let result = remote.push(&[&refspec], Some(&mut opts));
        drop(opts);
        match result {
            Ok(()) => {}
            Err(e) if is_rejection(&e) => return Ok(Some(e.message().to_string())),
            Err(e) => return Err(err(self.creds.explain(e))),
        }
        if let (Some(status), Some(refusal)) = (report.status(), report.refusal()) {
            // Classified by the reference's status, not by what a hook printed.
            if is_race(&status) {
                return Ok(Some(refusal));
            }
            return Err(StatusError::Refused {
                remote: self.remote.clone(),
                branch: branch.into(),
                message: refusal,
            });
        }
        let tracking = format!("refs/remotes/{REMOTE}/{branch}");
        self.repo.reference(&tracking, commit, true, "gitfleet: pushed").map_err(err)?;
        Ok(None)
    }
}

impl StateRepo {
    /// "Pushes" to a local repository: copies the objects with a fetch from
    /// gitfleet's clone, then moves the branch only if it still points at the
    /// commit gitfleet built on. In a repository with a work tree, a checked-out
    /// branch is never moved: that would leave the person's work tree behind.
    fn move_local_branch(
        &self,
        git_dir: &Path,
        bare: bool,
        branch: &str,
        commit: Oid,
    ) -> Result<Option<String>, StatusError> {
        let err = |source| StatusError::Push { remote: self.remote.clone(), branch: branch.into(), source };
        let target = Repository::open(git_dir).map_err(err)?;
        let name = format!("refs/heads/{branch}");
        let head = target.head().ok().and_then(|h| h.name().ok().map(str::to_string));
        if !bare && head.as_deref() == Some(name.as_str()) {
            return Err(StatusError::CheckedOut {
                branch: branch.into(),
                path: git_dir.display().to_string(),
            });
        }
        let incoming = "refs/gitfleet/incoming";
        let source = self.repo.path().display().to_string();
        target
            .remote_anonymous(&source)
            .and_then(|mut r| r.fetch(&[&format!("+{name}:{incoming}")], None, None))
            .map_err(err)?;
        // What gitfleet last saw of the branch: the commit it built on, or none for a new branch.
        let parent = self.tip(branch);
        let result = match (parent, target.refname_to_id(&name).ok()) {
            (Some(expected), Some(current)) if expected == current => {
                target.reference_matching(&name, commit, true, expected, "gitfleet: status").map(|_| None)
            }
            (None, None) => target.reference(&name, commit, false, "gitfleet: status").map(|_| None),
            (_, current) => Ok(Some(format!(
                "{name} moved to {} meanwhile",
                current.map_or("nothing".to_string(), |c| c.to_string())
            ))),
        };
        if let Ok(mut r) = target.find_reference(incoming)
            && let Err(e) = r.delete()
        {
            // Harmless: the next push overwrites it (`+` refspec).
            tracing::debug!("leaving {incoming} in {}: {e}", git_dir.display());
        }
        match result {
            // The branch moved between the check and the swap: a rejection, retried.
            Err(e) if e.code() == git2::ErrorCode::Modified => Ok(Some(e.message().to_string())),
            Ok(None) => {
                // As a push to a URL does: the remote-tracking branch is where the branch now is.
                let tracking = format!("refs/remotes/{REMOTE}/{branch}");
                self.repo.reference(&tracking, commit, true, "gitfleet: pushed").map_err(err)?;
                Ok(None)
            }
            other => other.map_err(err),
        }
    }
}

/// A status commit writing more files than this is written as one pack.
const PACK_OVER_FILES: usize = 100;

fn is_rejection(e: &git2::Error) -> bool {
    e.code() == git2::ErrorCode::NotFastForward
        || e.message().contains("non-fast-forward")
        || e.message().contains("fetch first")
        || e.message().contains(
            "cannot push because a reference that you are trying to update on the remote contains commits",
        )
}

/// A local path becomes an absolute path; URLs stay as they are.
fn remote_url(remote: &str) -> String {
    let p = Path::new(remote);
    if !remote.contains("://") && !remote.contains('@') && p.exists() {
        p.canonicalize().map(|c| c.display().to_string()).unwrap_or_else(|_| remote.to_string())
    } else {
        remote.to_string()
    }
}

/// `https://host[:port]` of an https URL; `None` for anything else (the token
/// is sent over https only).
fn origin(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("https://{}", host.to_ascii_lowercase()))
}

/// The port of an `ssh://` URL, when it names one (`git@host:path` has none).
fn ssh_port(url: &str) -> Option<u16> {
    let rest = ["ssh://", "git+ssh://", "ssh+git://"].iter().find_map(|s| url.strip_prefix(s))?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match host_port.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':')?,
        None => host_port.rsplit_once(':')?.1,
    };
    port.parse().ok()
}

/// Callbacks for `url`: credentials (an SSH key file or ssh-agent; a token or
/// Git's credential helpers), the SSH host key checked against known_hosts
/// (TLS certificates are checked by libgit2 against the trusted CAs), and, for
/// pushes, the per-reference status that git2 does not report as an error.
pub(crate) fn callbacks<'a>(
    creds: &'a Credentials,
    url: &str,
    report: Option<&'a PushReport>,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let mut tried = (0, 0, false);
    let remote_url = crate::source::redacted(url);
    cb.credentials(move |url, username, allowed| {
        let user = username.unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY) {
            tried.0 += 1;
            return match (&creds.ssh_key, tried.0) {
                (Some(key), 1) => Cred::ssh_key(user, None, key, None),
                (None, 1) => Cred::ssh_key_from_agent(user),
                (Some(key), _) => Err(git2::Error::from_str(&format!(
                    "authentication failed: the server refused the SSH key {}",
                    key.display()
                ))),
                (None, _) => Err(git2::Error::from_str(
                    "authentication failed: no key of ssh-agent was accepted (give one with --ssh-key)",
                )),
            };
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            tried.1 += 1;
            // The token goes to the configured server over https only: not to
            // a host a redirect names, not over http, not as an SSH password.
            if creds.token.is_some() && origin(url) != origin(&remote_url) {
                return Err(git2::Error::from_str(&format!(
                    "authentication refused: the token is for {}, not for {}",
                    origin(&remote_url).unwrap_or_default(),
                    origin(url).unwrap_or_else(|| "this URL".into())
                )));
            }
            if let Some(token) = &creds.token {
                if tried.1 > 1 {
                    return Err(git2::Error::from_str(
                        "authentication failed: the server refused the token (check --git-token and --git-username)",
                    ));
                }
                let user = username.or(creds.user.as_deref()).unwrap_or("x-access-token");
                return Cred::userpass_plaintext(user, token.expose());
            }
            if tried.1 > 1 {
                return Err(git2::Error::from_str(
                    "authentication failed: Git's credential helpers gave nothing the server accepted (give a token with --git-token)",
                ));
            }
            let config = git2::Config::open_default()?;
            return Cred::credential_helper(&config, url, username);
        }
        if allowed.contains(CredentialType::USERNAME) && !tried.2 {
            tried.2 = true;
            return Cred::username(user);
        }
        Err(git2::Error::from_str("authentication failed: the server asks for credentials gitfleet has no way to give"))
    });
    let port = ssh_port(url);
    cb.certificate_check(move |cert, host| {
        let Some(key) = cert.as_hostkey() else {
            // TLS: libgit2 has verified the certificate against the trusted CAs.
            return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(blob) = key.hostkey() else {
            return Err(git2::Error::from_str(&format!(
                "SSH host {host} offered no host key gitfleet can check"
            )));
        };
        match creds.host_keys.check(host, port, blob) {
            Ok(()) => Ok(git2::CertificateCheckStatus::CertificateOk),
            Err(why) => {
                *creds.refused_host_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                Err(git2::Error::from_str(&why))
            }
        }
    });
    if let Some(report) = report {
        cb.push_update_reference(move |_refname, status| {
            if let Some(msg) = status {
                *report.status.borrow_mut() = Some(msg.to_string());
            }
            Ok(())
        });
        // What the server's hooks print ("remote: ..." lines).
        cb.sideband_progress(move |data| {
            let mut said = report.remote.borrow_mut();
            if said.len() < REMOTE_SAID_BYTES {
                said.push_str(&String::from_utf8_lossy(data));
            }
            true
        });
    }
    cb
}

/// What the server said about a push: the reference's status when it refused
/// it, and the lines its hooks printed.
#[derive(Default)]
pub(crate) struct PushReport {
    status: std::cell::RefCell<Option<String>>,
    remote: std::cell::RefCell<String>,
}

/// What is kept of the server's messages (a hook may print a lot).
const REMOTE_SAID_BYTES: usize = 4096;

impl PushReport {
    /// The reference's status, when the server refused the update.
    fn status(&self) -> Option<String> {
        self.status.borrow().clone()
    }

    /// The refusal with the server's own words (its progress lines left out,
    /// at most a few lines), if it refused.
    fn refusal(&self) -> Option<String> {
        let status = self.status()?;
        let said: Vec<String> = self
            .remote
            .borrow()
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('%'))
            .take(10)
            .map(|l| l.chars().take(300).collect())
            .collect();
        Some(if said.is_empty() { status } else { format!("{status}: {}", said.join("; ")) })
    }
}

/// Whether a network operation gave up waiting for the server (libgit2's
/// socket timeouts surface as a timeout or as EAGAIN from the socket).
fn is_timeout(e: &git2::Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    e.code() == git2::ErrorCode::Timeout
        || m.contains("timed out")
        || m.contains("resource temporarily unavailable")
}

/// Whether a refused reference update is a lost race (someone pushed first),
/// which a new commit on the new tip fixes, rather than a refusal by a rule.
fn is_race(status: &str) -> bool {
    ["non-fast-forward", "fetch first", "stale info", "failed to update ref", "cannot lock ref"]
        .iter()
        .any(|s| status.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn races_and_refusals() {
        assert!(is_race("fetch first"));
        assert!(is_race("non-fast-forward"));
        assert!(!is_race("pre-receive hook declined"));
        let report = PushReport::default();
        assert_eq!(report.refusal(), None);
        *report.status.borrow_mut() = Some("pre-receive hook declined".into());
        report.remote.borrow_mut().push_str("GH006: Protected branch update failed.\r\nsecond line\n");
        assert_eq!(
            report.refusal().unwrap(),
            "pre-receive hook declined: GH006: Protected branch update failed.; second line"
        );
    }

    #[test]
    fn a_token_is_never_printed() {
        let creds = Credentials { token: Some(Token::new("s3cret")), ..Credentials::default() };
        assert!(!format!("{creds:?}").contains("s3cret"));
        assert_eq!(creds.token.unwrap().expose(), "s3cret");
    }

    #[test]
    fn the_token_goes_to_the_configured_https_server_only() {
        assert_eq!(
            origin("https://bot@Git.Example.com:8443/fleet.git"),
            Some("https://git.example.com:8443".into())
        );
        assert_eq!(origin("http://git.example.com/fleet.git"), None);
        assert_eq!(origin("ssh://git@git.example.com/fleet.git"), None);
        assert_ne!(origin("https://evil.example.com/x"), origin("https://git.example.com/fleet.git"));
    }

    #[test]
    fn ssh_ports_of_urls() {
        assert_eq!(ssh_port("ssh://git@127.0.0.1:2222/srv/fleet.git"), Some(2222));
        assert_eq!(ssh_port("ssh://git@[::1]:2200/fleet.git"), Some(2200));
        assert_eq!(ssh_port("ssh://git@github.com/org/fleet.git"), None);
        assert_eq!(ssh_port("git@github.com:org/fleet.git"), None);
        assert_eq!(ssh_port("https://github.com:443/org/fleet.git"), None);
    }

    #[test]
    fn only_a_checked_out_branch_is_permanent() {
        let checked_out = StatusError::CheckedOut { branch: "main".into(), path: "/srv/fleet/.git".into() };
        assert!(!checked_out.is_retryable());
        assert!(checked_out.to_string().contains("branch main is checked out in /srv/fleet/.git"));
        let disk = StatusError::Commit(git2::Error::from_str("no space left on device"));
        assert!(disk.is_retryable(), "a full disk may pass");
        let race = StatusError::Rejected {
            remote: "o".into(),
            branch: "main".into(),
            attempts: 5,
            message: "x".into(),
        };
        assert!(race.is_retryable());
    }
}
