//! The command line (SPEC 7): argument parsing and the commands.

mod approve;
mod demo;
mod diff;
pub(crate) mod get;
mod preview;
mod run;
pub(crate) mod table;
mod validate;

use std::fmt;

use clap::{Parser, Subcommand};

pub use approve::approval_yaml;
pub(crate) use approve::{branch_command as approve_branch_command, command as approve_command};
pub use run::{GitNetwork, RunArgs, now, reconciler};

/// gitfleet: staged rollouts to fleets of Kubernetes clusters, driven by Git.
#[derive(Debug, Parser)]
#[command(name = "gitfleet", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text (default) or as JSON, one event a line with its
    /// fields (`run`, `stage`, `cluster`, `placement` where they apply).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile: index snapshots and record them under status/ (with --once: one pass).
    Run(Box<RunArgs>),
    /// Show objects of a kind (table, yaml or json), like kubectl get.
    Get(get::GetArgs),
    /// Check a work-tree folder or a commit of a repository; exit 1 on any error.
    Validate(validate::ValidateArgs),
    /// Unified diff between each cluster and a placement's snapshot; exit 1 if they differ.
    Diff(diff::DiffArgs),
    /// What a pull request would change on the clusters, per placement (Markdown).
    Preview(preview::PreviewArgs),
    /// Approve a ClusterApprovalRequest: commit approvals/NAME.yaml as yourself.
    Approve(approve::ApproveArgs),
    /// The staged rollout walkthrough end to end on a scratch repository.
    Demo,
}

/// A command failure with its exit code: 1 user error, 2 environment error.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn user(message: impl fmt::Display) -> Self {
        CliError { code: 1, message: message.to_string() }
    }
    pub fn env(message: impl fmt::Display) -> Self {
        CliError { code: 2, message: message.to_string() }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs a parsed command; returns the exit code.
pub fn execute(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Get(args) => get::get(args),
        Command::Validate(args) => validate::validate(args),
        Command::Approve(args) => approve::approve(args),
        Command::Diff(args) => diff::diff(args),
        Command::Preview(args) => preview::preview(args),
        Command::Demo => demo::demo(),
    }
}
