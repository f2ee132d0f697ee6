//! `gitfleet approve NAME`: commits `approvals/NAME.yaml` with the person's own
//! Git identity, on the tracked branch or on a new branch for a pull request.

use clap::Args;
use serde_json::json;

use super::CliError;
use crate::repo::SETTINGS_FILE;
use crate::status::sign::{CommitSigner, SigningKey};
use crate::status::{Credentials, Identity, StateRepo, StatusChanges};

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The ClusterApprovalRequest to approve (e.g. example-run-canary), or
    /// with `-n` the ApprovalRequest of that namespace.
    pub name: String,
    /// The namespace of an ApprovalRequest (a StagedUpdateRun's approval):
    /// commits `approvals/NAMESPACE/NAME.yaml`.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[arg(long)]
    pub repo: String,
    /// Commit on a new branch NEW (for a pull request) instead of the tracked branch.
    #[arg(long = "branch")]
    pub new_branch: Option<String>,
    /// The tracked branch.
    #[arg(long, default_value = "main")]
    pub base: String,
    /// The tracked sub-folder of the branch (monorepos).
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long, default_value = "approved with gitfleet approve")]
    pub message: String,
    #[arg(long, default_value = "approved")]
    pub reason: String,
    /// Sign the approval commit with your Git signing configuration
    /// (`gpg.format=ssh` and `user.signingkey` naming a key file), as
    /// `git commit -S` would.
    #[arg(long)]
    pub sign: bool,
}

/// The command that approves the request with key `key` (`namespace/name`
/// for an ApprovalRequest) in the repository `repo` (shown without credentials).
pub fn command(key: &str, repo: &str) -> String {
    let (namespace, name) = crate::repo::model::split_key(key);
    let n = namespace.map(|ns| format!(" -n {ns}")).unwrap_or_default();
    format!("gitfleet approve {name}{n} --repo {repo}")
}

/// The same through a pull request: a branch `approve-NAME` to merge.
pub fn branch_command(key: &str, repo: &str) -> String {
    format!("{} --branch approve-{}", command(key, repo), crate::repo::model::split_key(key).1)
}

/// The approval file content: a ClusterApprovalRequest, or for a key
/// `namespace/name` an ApprovalRequest.
pub fn approval_yaml(key: &str, reason: &str, message: &str) -> String {
    let (namespace, name) = crate::repo::model::split_key(key);
    let mut metadata = json!({ "name": name });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    crate::yaml::to_string(&json!({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
        "kind": crate::repo::model::scoped_kind("ClusterApprovalRequest", key),
        "metadata": metadata,
        "status": { "conditions": [{ "type": "Approved", "status": "True", "reason": reason, "message": message }] },
    }))
}

/// Git configuration: the repository's, then the global one.
fn git_config() -> Result<git2::Config, CliError> {
    git2::Repository::open_from_env()
        .and_then(|r| r.config())
        .or_else(|_| git2::Config::open_default())
        .map_err(CliError::env)
}

/// The person's signing configuration, as `git commit -S` uses it: an SSH key
/// file (`gpg.format=ssh`), or GnuPG with `user.signingkey` (default: the
/// committer's e-mail) and `gpg.program`.
fn signer(who: &Identity) -> Result<CommitSigner, CliError> {
    let config = git_config()?;
    let format = config.get_string("gpg.format").unwrap_or_else(|_| "openpgp".into());
    match format.as_str() {
        "ssh" => {
            let key = config.get_path("user.signingkey").map_err(|_| {
                CliError::user("--sign with gpg.format=ssh needs user.signingkey (a key file)")
            })?;
            // Git accepts the public key file; the private key sits next to it.
            let private = match key.to_str().and_then(|k| k.strip_suffix(".pub")) {
                Some(p) => std::path::PathBuf::from(p),
                None => key,
            };
            Ok(CommitSigner::Ssh(Box::new(SigningKey::read(&private).map_err(CliError::user)?)))
        }
        "openpgp" => Ok(CommitSigner::Gpg {
            program: config.get_string("gpg.program").unwrap_or_else(|_| "gpg".into()),
            key: config.get_string("user.signingkey").unwrap_or_else(|_| who.email.clone()),
        }),
        other => Err(CliError::user(format!("--sign supports gpg.format ssh and openpgp, not {other}"))),
    }
}

/// The person's identity from Git configuration (repository, then global).
fn identity() -> Result<Identity, CliError> {
    let config = git_config()?;
    let name = config.get_string("user.name").ok();
    let email = config.get_string("user.email").ok();
    match (name, email) {
        (Some(name), Some(email)) => Ok(Identity { name, email }),
        _ => Err(CliError::user(
            "set user.name and user.email in your Git configuration: approvals carry your identity",
        )),
    }
}

pub fn approve(args: ApproveArgs) -> Result<u8, CliError> {
    let who = identity()?;
    let tmp = tempfile::Builder::new().prefix("gitfleet-approve-").tempdir().map_err(CliError::env)?;
    let mut state = StateRepo::open(tmp.path(), &args.repo, Credentials::default()).map_err(CliError::env)?;
    if args.sign {
        state.sign_with(signer(&who)?);
    }
    let base = state.fetch(&args.base).map_err(CliError::env)?.ok_or_else(|| {
        CliError::env(format!("branch {} not found in {}", args.base, crate::source::redacted(&args.repo)))
    })?;
    let repo = state.repo();
    let tree = repo.find_commit(base).and_then(|c| c.tree()).map_err(CliError::env)?;
    let prefix = args.path.as_deref().map(|p| format!("{}/", p.trim_matches('/'))).unwrap_or_default();
    let settings_bytes = tree
        .get_path(std::path::Path::new(&format!("{prefix}{SETTINGS_FILE}")))
        .ok()
        .and_then(|e| repo.find_blob(e.id()).ok())
        .map(|b| b.content().to_vec());
    let (settings, _) = crate::repo::read_settings(settings_bytes.as_deref());
    let status_tree = match &settings.status_branch {
        Some(b) => state
            .fetch(b)
            .map_err(CliError::env)?
            .and_then(|c| repo.find_commit(c).ok())
            .and_then(|c| c.tree().ok()),
        None => Some(tree.clone()),
    };
    if let Some(ns) = &args.namespace
        && !crate::repo::labels::is_dns_label(ns)
    {
        return Err(CliError::user(format!("-n {ns:?}: not a namespace name")));
    }
    let key = crate::repo::model::object_key(args.namespace.as_deref(), &args.name);
    let kind = crate::repo::model::scoped_kind("ClusterApprovalRequest", &key);
    let path = crate::status::scoped::path(crate::status::REQUESTS, &key);
    let request = format!("{prefix}{}/{path}.yaml", settings.status_path);
    if status_tree.is_none_or(|t| t.get_path(std::path::Path::new(&request)).is_err()) {
        return Err(CliError::user(format!(
            "no {kind} {} in {request} on {}: nothing to approve yet",
            args.name, args.base
        )));
    }
    let mut changes = StatusChanges::default();
    changes
        .writes
        .insert(format!("{key}.yaml"), approval_yaml(&key, &args.reason, &args.message).into_bytes());
    let target = args.new_branch.clone().unwrap_or_else(|| args.base.clone());
    let folder = format!("{prefix}{}", settings.approvals_path);
    let message = format!("Approve {key}");
    let commit = state
        .publish(&target, Some(base), &folder, &changes, &message, &who)
        .map_err(CliError::env)?
        .ok_or_else(|| CliError::user(format!("{folder}/{key}.yaml is already approved on {target}")))?;
    println!("approved {key} as {} <{}> in commit {commit} on {target}", who.name, who.email);
    if args.new_branch.is_some() {
        println!("merge branch {target} into {} (a pull request) to approve", args.base);
    }
    Ok(0)
}
