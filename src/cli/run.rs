//! `gitfleet run`: fetch, index, record snapshots under status/, push.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::cluster::local::LocalStore;
use crate::reconcile::Reconciler;
use crate::serve::Telemetry;
use crate::status::sign::{AllowedSigners, CommitSigner, GpgKeys, Signers, SigningKey};
use crate::status::trust::OwnCommits;
use crate::status::{Credentials, Identity, StateRepo};
use crate::time::Time;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The fleet repository: a local path (bare or with a work tree) or a URL.
    #[arg(long)]
    pub repo: String,
    /// The tracked branch.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The tracked sub-folder of the branch (monorepos).
    #[arg(long)]
    pub path: Option<String>,
    /// Where gitfleet keeps its clone.
    #[arg(long, default_value = ".gitfleet")]
    pub state_dir: PathBuf,
    /// One pass, then exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between passes when running continuously.
    #[arg(long, default_value_t = 30)]
    pub poll_interval: u64,
    /// Private key for ssh URLs (default: ssh-agent).
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// Token for https URLs (default: Git credential helpers).
    #[arg(long, env = "GITFLEET_GIT_TOKEN", hide_env_values = true)]
    pub git_token: Option<String>,
    /// Apply to real clusters: each MemberCluster uses the kubeconfig context of
    /// its name (or its `gitfleet.dev/kubeconfig-context` annotation).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Sign status commits with this OpenSSH private key (ed25519, no
    /// passphrase), as `git commit -S` with `gpg.format=ssh` does; gitfleet then
    /// also knows its own status commits by their signature.
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Accept an approval only from a commit signed by a key in this file
    /// (Git's allowed-signers format); its principal is the approver.
    #[arg(long)]
    pub allowed_signers: Option<PathBuf>,
    /// Accept an approval also from a commit signed by one of these OpenPGP
    /// public keys (armored, as `gpg --export --armor` writes them); its user
    /// id's e-mail is the approver.
    #[arg(long)]
    pub gpg_keys: Option<PathBuf>,
    /// Serve /healthz, /readyz and /metrics on this address (e.g. 0.0.0.0:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Name of the status commits' author.
    #[arg(long, default_value = "gitfleet")]
    pub author_name: String,
    /// E-mail of the status commits' author.
    #[arg(long, default_value = "gitfleet@localhost")]
    pub author_email: String,
}

impl RunArgs {
    /// `run --once` on `repo` with every other option at its default.
    pub fn once(repo: impl Into<String>, state_dir: impl Into<PathBuf>) -> RunArgs {
        RunArgs {
            repo: repo.into(),
            branch: "main".into(),
            path: None,
            state_dir: state_dir.into(),
            once: true,
            poll_interval: 30,
            ssh_key: None,
            git_token: None,
            kubeconfig: None,
            signing_key: None,
            allowed_signers: None,
            gpg_keys: None,
            listen: None,
            author_name: "gitfleet".into(),
            author_email: "gitfleet@localhost".into(),
        }
    }
}

/// Builds the reconciler for these arguments: gitfleet's clone and the backend.
pub fn reconciler(args: &RunArgs) -> Result<Reconciler, CliError> {
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| CliError::env(format!("state folder {}: {e}", args.state_dir.display())))?;
    let creds = Credentials { ssh_key: args.ssh_key.clone(), token: args.git_token.clone(), user: None };
    let mut state = StateRepo::open(&args.state_dir, &args.repo, creds).map_err(CliError::env)?;
    let backend: Box<dyn crate::cluster::Backend> = match &args.kubeconfig {
        Some(path) => {
            tracing::info!(kubeconfig = %path.display(), "member clusters are reached through the kubeconfig");
            Box::new(crate::cluster::kube::KubeBackend::new(path).map_err(CliError::env)?)
        }
        None => {
            let clusters = args.state_dir.join("clusters");
            tracing::info!(backend = "local-store", folder = %clusters.display(), "member clusters use the local store");
            Box::new(LocalStore::new(clusters))
        }
    };
    let mut own = OwnCommits::load(&args.state_dir)
        .map_err(|e| CliError::env(format!("state folder {}: {e}", args.state_dir.display())))?;
    if let Some(path) = &args.signing_key {
        let key = SigningKey::read(path).map_err(CliError::env)?;
        own = own.signed_by(key.public_key().clone());
        state.sign_with(CommitSigner::Ssh(Box::new(key)));
    }
    if !own.verifies() {
        tracing::warn!(
            "status not verified: no --signing-key and no record in {}; the status folder at the tip is believed this once",
            args.state_dir.display()
        );
    }
    let ssh = args.allowed_signers.as_deref().map(AllowedSigners::read).transpose().map_err(CliError::env)?;
    let gpg = args.gpg_keys.as_deref().map(GpgKeys::read).transpose().map_err(CliError::env)?;
    let signers = if ssh.is_none() && gpg.is_none() {
        tracing::info!(
            "approvals are not verified by signature (no --allowed-signers or --gpg-keys): they rely on the Git host's branch protection"
        );
        None
    } else {
        Some(Signers { ssh, gpg })
    };
    Ok(Reconciler::builder(state, backend, crate::source::redacted(&args.repo))
        .own_commits(own)
        .allowed_signers(signers)
        .saved_index(args.state_dir.join("snapshot-index.json"))
        .branch(args.branch.clone())
        .root(args.path.clone())
        .identity(Identity { name: args.author_name.clone(), email: args.author_email.clone() })
        .build())
}

/// Time until just past `at` (the engine counts whole seconds), at least a few
/// milliseconds so that a due wake never spins.
fn until(at: Time) -> Duration {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    Duration::from_millis((at.as_millisecond() + 10 - now_ms).max(20) as u64)
}

/// The current time.
pub fn now() -> Time {
    Time::now()
}

pub fn run(args: RunArgs) -> Result<u8, CliError> {
    let mut reconciler = reconciler(&args)?;
    if args.once {
        let outcome = reconciler.pass(now()).map_err(CliError::env)?;
        if let Some(c) = outcome.commit {
            tracing::info!(commit = %c, "{}", outcome.message);
        }
        return Ok(0);
    }
    let telemetry = match &args.listen {
        Some(addr) => {
            let telemetry = Arc::new(Telemetry::new());
            let bound = crate::serve::spawn(addr, telemetry.clone())
                .map_err(|e| CliError::env(format!("--listen {addr}: {e}")))?;
            tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
            // Without leader election, this process is the one that reconciles.
            telemetry.set_leader(true);
            Some(telemetry)
        }
        None => None,
    };
    let local = crate::watch::git_dir(&args.repo);
    let waker = crate::watch::Waker::new(local.as_deref()).map_err(CliError::env)?;
    tracing::info!(
        repo = %crate::source::redacted(&args.repo),
        watching = local.is_some(),
        poll_interval = args.poll_interval,
        "reconciling until SIGINT or SIGTERM"
    );
    loop {
        let started = std::time::Instant::now();
        let wake = match reconciler.pass(now()) {
            Ok(outcome) => {
                if let Some(c) = outcome.commit {
                    tracing::info!(commit = %c, "{}", outcome.message);
                }
                if let Some(t) = &telemetry {
                    t.pass_done(started.elapsed(), outcome.commit.is_some(), &outcome.summary);
                    t.set_ready();
                }
                outcome.wake
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!("pass failed, retrying: {e}");
                if let Some(t) = &telemetry {
                    t.pass_failed(started.elapsed(), e.reason());
                }
                crate::time::Wake::NEVER
            }
            // Trying again cannot help: say why and stop.
            Err(e) => return Err(CliError::env(e)),
        };
        let poll = Duration::from_secs(args.poll_interval.max(1));
        let timeout = wake.time().map_or(poll, |w| until(w).min(poll));
        if waker.wait(timeout) == crate::watch::Signal::Shutdown {
            tracing::info!("shutting down");
            return Ok(0);
        }
    }
}
