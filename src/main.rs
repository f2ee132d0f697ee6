//! The `gitfleet` binary: parse arguments, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use gitfleet::cli::{Cli, LogFormat, execute};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("GITFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    if let gitfleet::cli::Command::Run(args) = &cli.command
        && let Err(e) = set_git_network(&args.git_network())
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}

/// Sets libgit2's process-wide network options (`run --git-ca-file`,
/// `--git-timeout`), which libgit2 offers only as global settings.
fn set_git_network(net: &gitfleet::cli::GitNetwork) -> Result<(), String> {
    // SAFETY: called once at start, before any thread exists that could use
    // libgit2 concurrently; the paths and numbers are owned values.
    unsafe {
        if let Some(ca) = &net.ca_file {
            git2::opts::set_ssl_cert_file(ca)
                .map_err(|e| format!("--git-ca-file {}: {}", ca.display(), e.message()))?;
        }
        git2::opts::set_server_connect_timeout_in_milliseconds(net.timeout_ms)
            .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(net.timeout_ms))
            .map_err(|e| format!("--git-timeout: {}", e.message()))
    }
}
