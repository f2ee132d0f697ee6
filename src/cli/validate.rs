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
    /// text (default), github (GitHub Actions annotations, `::error file=F,line=L::message`)
    /// or json (`{"ok", "files", "errors": [{"file", "line", "object", "message"}]}`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How `validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Github,
    Json,
}

/// A value of a GitHub workflow command: `%`, line breaks (and in
/// properties `:` and `,`) escaped as the runner expects.
fn workflow_escape(text: &str, property: bool) -> String {
    let mut out = text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

pub fn validate(args: ValidateArgs) -> Result<u8, CliError> {
    let loaded = load(&args)?;
    let fleet = loaded.fleet();
    // Paths in annotations are relative to the repository, as GitHub shows them.
    let in_repo =
        |file: &str| match args.path.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            Some(folder) => format!("{folder}/{file}"),
            None => file.to_string(),
        };
    match args.format {
        Format::Text => {}
        Format::Github => {
            for issue in &fleet.issues {
                let mut props = format!("file={}", workflow_escape(&in_repo(&issue.path), true));
                if let Some(line) = issue.line {
                    props.push_str(&format!(",line={line}"));
                }
                props.push_str(",title=gitfleet validate");
                let message = match &issue.object {
                    Some(object) => format!("{object}: {}", issue.message),
                    None => issue.message.clone(),
                };
                println!("::error {props}::{}", workflow_escape(&message, false));
            }
            if fleet.issues.is_empty() {
                println!("ok: {} files", loaded.files.len());
                return Ok(0);
            }
            println!("{} error(s) in {} files", fleet.issues.len(), loaded.files.len());
            return Ok(1);
        }
        Format::Json => {
            let errors: Vec<serde_json::Value> = fleet
                .issues
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "file": in_repo(&i.path),
                        "line": i.line,
                        "object": i.object,
                        "message": i.message,
                    })
                })
                .collect();
            let report = serde_json::json!({
                "ok": errors.is_empty(),
                "files": loaded.files.len(),
                "errors": errors,
            });
            println!("{}", serde_json::to_string_pretty(&report).map_err(CliError::env)?);
            return Ok(u8::from(!fleet.issues.is_empty()));
        }
    }
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
