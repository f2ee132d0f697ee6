//! `gitfleet run`: fetch, index, record snapshots under status/, push.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::snapshot::Indexer;
use crate::state::FleetState;
use crate::status::{Credentials, Identity, StateRepo, StatusChanges};

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
    /// Name of the status commits' author.
    #[arg(long, default_value = "gitfleet")]
    pub author_name: String,
    /// E-mail of the status commits' author.
    #[arg(long, default_value = "gitfleet@localhost")]
    pub author_email: String,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassOutcome {
    /// The status commit pushed, if anything changed.
    pub commit: Option<git2::Oid>,
    pub message: String,
    pub new_snapshots: Vec<String>,
}

pub fn run(args: RunArgs) -> Result<u8, CliError> {
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| CliError::env(format!("state folder {}: {e}", args.state_dir.display())))?;
    let creds = Credentials { ssh_key: args.ssh_key.clone(), token: args.git_token.clone() };
    let state = StateRepo::open(&args.state_dir, &args.repo, creds).map_err(CliError::env)?;
    let mut indexer = Indexer::new(args.path.as_deref());
    loop {
        match run_pass(&state, &mut indexer, &args) {
            Ok(outcome) => {
                if let Some(c) = outcome.commit {
                    tracing::info!(commit = %c, "{}", outcome.message);
                }
            }
            Err(e) if args.once => return Err(e),
            Err(e) => tracing::warn!("pass failed, retrying next interval: {e}"),
        }
        if args.once {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(args.poll_interval.max(1)));
    }
}

/// One reconcile pass: fetch, bring the index up to the tip, record new
/// snapshots (and prune old files), push one status commit if anything changed.
pub fn run_pass(state: &StateRepo, indexer: &mut Indexer, args: &RunArgs) -> Result<PassOutcome, CliError> {
    let tip = state
        .fetch(&args.branch)
        .map_err(CliError::env)?
        .ok_or_else(|| CliError::env(format!("branch {} not found in {}", args.branch, args.repo)))?;
    let blocked_before = indexer.blocked.len();
    let fleet =
        FleetState::load(state.repo(), tip, args.path.as_deref(), indexer, |b| state.fetch(b).ok().flatten())
            .map_err(CliError::env)?;
    if std::mem::take(&mut indexer.rewritten) {
        tracing::warn!(branch = %args.branch, "history of the tracked branch was rewritten; snapshot index rebuilt");
    }
    for w in &fleet.snapshots.warnings {
        tracing::warn!("{w}");
    }
    for b in &indexer.blocked[blocked_before..] {
        for issue in &b.issues {
            tracing::warn!(placement = %b.placement, commit = %b.commit, "no snapshot: {issue}");
        }
    }
    for issue in &fleet.fleet.issues {
        tracing::warn!("invalid: {issue}");
    }
    let changes = StatusChanges {
        writes: fleet.snapshots.writes.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect(),
        deletes: fleet.snapshots.deletes.iter().cloned().collect(),
    };
    let new_snapshots: Vec<String> = fleet
        .snapshots
        .all
        .iter()
        .filter(|s| !fleet.recorded.iter().any(|r| r.placement == s.placement && r.index == s.index))
        .map(|s| s.name())
        .collect();
    if changes.is_empty() {
        return Ok(PassOutcome::default());
    }
    let message = summary(&new_snapshots, changes.deletes.len());
    let status_branch = fleet.loaded.settings.status_branch.clone().unwrap_or_else(|| args.branch.clone());
    let identity = Identity { name: args.author_name.clone(), email: args.author_email.clone() };
    let commit = state
        .publish(&status_branch, fleet.status_commit, &fleet.status_root, &changes, &message, &identity)
        .map_err(CliError::env)?;
    Ok(PassOutcome { commit, message, new_snapshots })
}

/// One-line commit message for a pass.
fn summary(new: &[String], pruned: usize) -> String {
    let mut msg = String::from("gitfleet: ");
    if new.is_empty() {
        msg.push_str("update snapshot status");
    } else {
        let shown: Vec<&str> = new.iter().take(3).map(String::as_str).collect();
        msg.push_str(&format!("record {}", shown.join(", ")));
        if new.len() > 3 {
            msg.push_str(&format!(" and {} more", new.len() - 3));
        }
    }
    if pruned > 0 {
        msg.push_str(&format!("; prune {pruned} old snapshot file(s)"));
    }
    msg
}
