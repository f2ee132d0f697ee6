//! `gitfleet validate PATH_OR_REPO [--rev REV]`.

use std::path::Path;

use clap::Args;

use super::CliError;
use crate::repo::{Loaded, load_dir, load_tree};
use crate::source::Source;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A folder (work tree) or a repository (path or URL).
    pub path_or_repo: String,
    /// Validate this commit (sha, branch, tag) instead of the work-tree files.
    #[arg(long)]
    pub rev: Option<String>,
    /// The tracked sub-folder inside the repository.
    #[arg(long)]
    pub path: Option<String>,
}

pub fn validate(args: ValidateArgs) -> Result<u8, CliError> {
    let loaded = load(&args)?;
    let fleet = loaded.fleet();
    for issue in &fleet.issues {
        println!("error: {issue}");
    }
    let objects = fleet.clusters.len()
        + fleet.placements.len()
        + fleet.strategies.len()
        + fleet.runs.len()
        + fleet.overrides.len()
        + fleet.approvals.len()
        + fleet.windows.len()
        + fleet.hub.len();
    if fleet.issues.is_empty() {
        println!(
            "ok: {} files, {objects} objects ({} clusters, {} placements, {} strategies, {} runs, {} overrides, {} windows, {} hub resources)",
            loaded.files.len(),
            fleet.clusters.len(),
            fleet.placements.len(),
            fleet.strategies.len(),
            fleet.runs.len(),
            fleet.overrides.len(),
            fleet.windows.len(),
            fleet.hub.len()
        );
        Ok(0)
    } else {
        println!("{} error(s) in {} files", fleet.issues.len(), loaded.files.len());
        Ok(1)
    }
}

fn load(args: &ValidateArgs) -> Result<Loaded, CliError> {
    let local = Path::new(&args.path_or_repo);
    let is_dir = local.is_dir();
    let plain_folder = is_dir
        && args.rev.is_none()
        && (local.join(".git").exists() || git2::Repository::open_bare(local).is_err());
    if plain_folder {
        let dir = match &args.path {
            Some(p) => local.join(p),
            None => local.to_path_buf(),
        };
        return load_dir(&dir).map_err(CliError::env);
    }
    if !is_dir && !crate::source::is_url(&args.path_or_repo) {
        return Err(CliError::env(format!("{}: no such folder or repository", args.path_or_repo)));
    }
    let source = Source::open(&args.path_or_repo, "main").map_err(CliError::env)?;
    let rev = args.rev.as_deref().unwrap_or("HEAD");
    let oid = source.resolve(rev).map_err(CliError::user)?;
    let commit = source.repo.find_commit(oid).map_err(CliError::env)?;
    let tree = commit.tree().map_err(CliError::env)?;
    load_tree(&source.repo, &tree, args.path.as_deref()).map_err(CliError::user)
}
