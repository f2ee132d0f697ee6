//! `gitfleet run`: fetch, index, record snapshots under status/, push.

use crate::verify::probe::ProbeConfig;
use std::collections::BTreeSet;
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
    pub git_token: Option<crate::status::publish::Token>,
    /// Read the token for https URLs from this file (a mounted Secret).
    #[arg(long, conflicts_with = "git_token")]
    pub git_token_file: Option<PathBuf>,
    /// User name sent with the token: x-access-token (GitHub), oauth2 (GitLab),
    /// x-token-auth (Bitbucket).
    #[arg(long, default_value = "x-access-token")]
    pub git_username: String,
    /// Also trust the CA certificates of this PEM file for https (a private CA);
    /// SSL_CERT_FILE is honoured too.
    #[arg(long)]
    pub git_ca_file: Option<PathBuf>,
    /// Seconds a Git server may take to connect or to answer before gitfleet
    /// gives up on the fetch or push (the next pass tries again).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub git_timeout: u64,
    /// OpenSSH known_hosts file the SSH host key must be in (hashed entries
    /// included); default: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
    #[arg(long, conflicts_with = "ssh_insecure_skip_host_key_check")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Accept any SSH host key. Insecure: whoever answers gets the status pushes.
    #[arg(long)]
    pub ssh_insecure_skip_host_key_check: bool,
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
    /// Serve /healthz, /readyz and /metrics on this address (e.g. 0.0.0.0:8080),
    /// and the read-only dashboard at / (see --dashboard).
    #[arg(long)]
    pub listen: Option<String>,
    /// The read-only dashboard on the --listen address (/, /runs, /approvals,
    /// /timeline); --dashboard=false switches it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub dashboard: bool,
    /// Also serve push webhooks on the --listen address (/hooks/github,
    /// /hooks/gitlab, /hooks/bitbucket, /hooks/generic), checked with the
    /// secret in this file: a push to the tracked branch starts a pass at once.
    #[arg(long, requires = "listen")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Pass accepted pushes on to the other replicas: HOST:PORT of their
    /// listen addresses (every address a name resolves to, such as a
    /// headless Service's), comma-separated.
    #[arg(long, requires = "webhook_secret_file", value_delimiter = ',')]
    pub webhook_peers: Vec<String>,
    /// Post events (a run started, a stage needs an approval, a cluster
    /// failed, ...) to the receivers this YAML file lists (`receivers:` with
    /// `url`, `format: json | slack | msteams`, `events`, `headers`).
    #[arg(long)]
    pub notify: Option<PathBuf>,
    /// Prometheus server that Verification tasks with the `prometheus`
    /// provider query (its base URL, e.g. http://prometheus:9090).
    #[arg(long)]
    pub prometheus_url: Option<String>,
    /// Headers sent with every Prometheus query (`Name: value` lines, e.g.
    /// `Authorization: Bearer ...`), read from this file.
    #[arg(long, requires = "prometheus_url")]
    pub prometheus_headers_file: Option<PathBuf>,
    /// How long one Verification measurement may take (seconds); past it the
    /// measurement is inconclusive.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub measurement_timeout: u64,
    /// Take part in leader election on a coordination.k8s.io/v1 Lease: only
    /// the holder fetches, writes to clusters and pushes status.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: the pod's, from POD_NAMESPACE or the
    /// service account).
    #[arg(long, requires = "leader_elect")]
    pub leader_elect_resource_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "gitfleet", requires = "leader_elect")]
    pub leader_elect_resource_name: String,
    /// How long a Lease is valid without renewal (Go duration: 15s, 1m).
    #[arg(long, default_value = "15s", value_parser = crate::lease::parse_duration, requires = "leader_elect")]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops writing and exits.
    #[arg(long, default_value = "10s", value_parser = crate::lease::parse_duration, requires = "leader_elect")]
    pub leader_elect_renew_deadline: Duration,
    /// How often the leader renews and a standby tries to acquire.
    #[arg(long, default_value = "2s", value_parser = crate::lease::parse_duration, requires = "leader_elect")]
    pub leader_elect_retry_period: Duration,
    /// Reach the Lease's cluster through this kubeconfig (default: in-cluster).
    #[arg(long, requires = "leader_elect")]
    pub lease_kubeconfig: Option<PathBuf>,
    /// Split the placements into N shards, one Lease each
    /// (`<lease name>-shard-0` ...): every replica reconciles the placements of
    /// the shards it holds, at most its fair share while others are alive.
    /// Needs --leader-elect (the Leases' settings) and --signing-key (replicas
    /// know each other's status commits by gitfleet's signature).
    #[arg(long, requires = "leader_elect", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: Option<u32>,
    /// Name of the status commits' author.
    #[arg(long, default_value = "gitfleet")]
    pub author_name: String,
    /// E-mail of the status commits' author.
    #[arg(long, default_value = "gitfleet@localhost")]
    pub author_email: String,
}

/// libgit2's process-wide network settings a `run` asks for: set by the binary
/// at start (libgit2 offers them only as global options).
#[derive(Debug, Clone, PartialEq)]
pub struct GitNetwork {
    /// Extra CA certificates for https.
    pub ca_file: Option<PathBuf>,
    /// Connect and read timeout, milliseconds.
    pub timeout_ms: i32,
}

impl RunArgs {
    /// The network settings of these arguments.
    pub fn git_network(&self) -> GitNetwork {
        let timeout_ms = i32::try_from(self.git_timeout.saturating_mul(1000)).unwrap_or(i32::MAX).max(1);
        GitNetwork { ca_file: self.git_ca_file.clone(), timeout_ms }
    }

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
            git_token_file: None,
            git_username: "x-access-token".into(),
            git_ca_file: None,
            git_timeout: 60,
            ssh_known_hosts: None,
            ssh_insecure_skip_host_key_check: false,
            kubeconfig: None,
            signing_key: None,
            allowed_signers: None,
            gpg_keys: None,
            listen: None,
            dashboard: true,
            webhook_secret_file: None,
            webhook_peers: Vec::new(),
            notify: None,
            prometheus_url: None,
            prometheus_headers_file: None,
            measurement_timeout: 5,
            leader_elect: false,
            leader_elect_resource_namespace: None,
            leader_elect_resource_name: "gitfleet".into(),
            leader_elect_lease_duration: Duration::from_secs(15),
            leader_elect_renew_deadline: Duration::from_secs(10),
            leader_elect_retry_period: Duration::from_secs(2),
            shards: None,
            lease_kubeconfig: None,
            author_name: "gitfleet".into(),
            author_email: "gitfleet@localhost".into(),
        }
    }
}

/// Builds the reconciler for these arguments: gitfleet's clone and the backend.
pub fn reconciler(args: &RunArgs) -> Result<Reconciler, CliError> {
    fenced_reconciler(args, None)
}

/// How to reach the repository: credentials and host keys. (The CA file and
/// the timeout are libgit2's process-wide settings: [`RunArgs::git_network`].)
fn credentials(args: &RunArgs) -> Result<Credentials, CliError> {
    let token = match &args.git_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::env(format!("--git-token-file {}: {e}", path.display())))?;
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(CliError::env(format!("--git-token-file {}: the file is empty", path.display())));
            }
            Some(crate::status::publish::Token::new(token))
        }
        None => args.git_token.clone(),
    };
    let host_keys = if args.ssh_insecure_skip_host_key_check {
        tracing::warn!(
            "--ssh-insecure-skip-host-key-check: any SSH host key is accepted; whoever answers gets the status pushes"
        );
        crate::hostkeys::HostKeys::Insecure
    } else {
        match &args.ssh_known_hosts {
            Some(path) => crate::hostkeys::HostKeys::file(path).map_err(CliError::env)?,
            None => crate::hostkeys::HostKeys::default(),
        }
    };
    if let Some(ca) = args.git_ca_file.as_ref().filter(|ca| !ca.is_file()) {
        return Err(CliError::env(format!("--git-ca-file {}: no such file", ca.display())));
    }
    Ok(Credentials {
        ssh_key: args.ssh_key.clone(),
        token,
        user: Some(args.git_username.clone()),
        host_keys,
        ..Credentials::default()
    })
}

/// The leader election these arguments ask for, if any.
fn election(args: &RunArgs) -> Result<Option<crate::lease::Election>, CliError> {
    if !args.leader_elect {
        return Ok(None);
    }
    let namespace = match &args.leader_elect_resource_namespace {
        Some(ns) => ns.clone(),
        None => std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
                    .map(|ns| ns.trim().to_string())
            })
            .ok_or_else(|| {
                CliError::env(
                    "--leader-elect: no --leader-elect-resource-namespace, no POD_NAMESPACE and no service account namespace",
                )
            })?,
    };
    // The pod's name where there is one; the process id tells two processes of one host apart.
    let host = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "gitfleet".into(), |h| h.trim().into())
    });
    let election = crate::lease::Election {
        namespace,
        name: args.leader_elect_resource_name.clone(),
        identity: format!("{host}_{:016x}", random_u64()),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
        kubeconfig: args.lease_kubeconfig.clone(),
    };
    election.validate().map_err(CliError::env)?;
    Ok(Some(election))
}

/// A random number (the standard library's per-process random hash keys):
/// tells apart two processes with one pod name, as client-go's UUID does.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// The reconciler, its cluster writes and pushes passing `fence` first.
fn fenced_reconciler(args: &RunArgs, fence: Option<crate::cluster::Fence>) -> Result<Reconciler, CliError> {
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| CliError::env(format!("state folder {}: {e}", args.state_dir.display())))?;
    let creds = credentials(args)?;
    let mut state = StateRepo::open(&args.state_dir, &args.repo, creds).map_err(CliError::env)?;
    let backend: Box<dyn crate::cluster::Backend> = match &args.kubeconfig {
        Some(path) => {
            tracing::info!(kubeconfig = %path.display(), "member clusters are reached through the kubeconfig");
            let kube = crate::cluster::kube::KubeBackend::new(path).map_err(CliError::env)?;
            match &fence {
                Some(fence) => Box::new(kube.fenced(fence.clone())),
                None => Box::new(kube),
            }
        }
        None => {
            let clusters = args.state_dir.join("clusters");
            tracing::info!(backend = "local-store", folder = %clusters.display(), "member clusters use the local store");
            Box::new(LocalStore::new(clusters))
        }
    };
    // Every cluster write (the Kubernetes backend also inside a sync) and every push.
    let backend: Box<dyn crate::cluster::Backend> = match fence {
        Some(fence) => {
            state.fence_with(fence.clone());
            Box::new(crate::cluster::Fenced { inner: backend, fence })
        }
        None => backend,
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
    let prometheus_headers = match &args.prometheus_headers_file {
        Some(path) => ProbeConfig::read_headers(path).map_err(CliError::env)?,
        None => Vec::new(),
    };
    if let Some(url) = &args.prometheus_url {
        ProbeConfig::check_prometheus_url(url).map_err(CliError::env)?;
    }
    let probe = ProbeConfig {
        prometheus_url: args.prometheus_url.clone(),
        prometheus_headers,
        timeout: Duration::from_secs(args.measurement_timeout),
    };
    Ok(Reconciler::builder(state, backend, crate::source::redacted(&args.repo))
        .probe(probe)
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

/// How long to wait after `failures` failed passes in a row: the poll
/// interval, doubled after each further failure, at most ten minutes (a push
/// to a watched repository still wakes the loop at once).
fn retry_after(poll: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    let cap = Duration::from_secs(600);
    poll.checked_mul(factor).unwrap_or(cap).min(cap).max(poll.min(cap))
}

/// The current time.
pub fn now() -> Time {
    Time::now()
}

pub fn run(args: RunArgs) -> Result<u8, CliError> {
    let mut election = election(&args)?;
    let sharding = match (args.shards, election.take()) {
        (None, e) => {
            election = e;
            None
        }
        (Some(_), _) if args.once => {
            return Err(CliError::user("--shards is for replicas that keep running, not --once"));
        }
        (Some(_), _) if args.signing_key.is_none() => {
            return Err(CliError::user(
                "--shards needs --signing-key: the replicas know each other's status commits by gitfleet's signature",
            ));
        }
        (Some(shards), Some(election)) => {
            let sharding = crate::shard::Sharding { election, shards };
            sharding.validate().map_err(CliError::env)?;
            Some(sharding)
        }
        (Some(_), None) => return Err(CliError::user("--shards needs --leader-elect")),
    };
    let local = crate::watch::git_dir(&args.repo);
    let waker = crate::watch::Waker::new(local.as_deref()).map_err(CliError::env)?;
    let hooks = match &args.webhook_secret_file {
        Some(path) => {
            let secret = crate::hooks::read_secret(path)
                .map_err(|e| CliError::user(format!("--webhook-secret-file {e}")))?;
            let wake = waker.sender();
            let wake = Arc::new(move || {
                // Fails only when the waker is gone: the process is stopping.
                let _ = wake.send(crate::watch::Signal::Changed);
            });
            let hooks =
                crate::hooks::Hooks::new(secret, &args.branch, wake).with_peers(args.webhook_peers.clone());
            Some(Arc::new(hooks))
        }
        None => None,
    };
    let telemetry = match &args.listen {
        Some(addr) => {
            let telemetry = Arc::new(Telemetry::new());
            let with_hooks = hooks.is_some();
            let dashboard = args.dashboard.then(|| {
                Arc::new(crate::dashboard::Dashboard::new(
                    &args.state_dir,
                    &args.repo,
                    &args.branch,
                    args.path.as_deref(),
                    // (read and checked above)
                    args.signing_key
                        .as_ref()
                        .and_then(|p| SigningKey::read(p).ok())
                        .map(|k| k.public_key().clone()),
                ))
            });
            let bound = crate::serve::spawn(addr, telemetry.clone(), hooks, dashboard)
                .map_err(|e| CliError::env(format!("--listen {addr}: {e}")))?;
            if with_hooks {
                tracing::info!(%bound, "serving /healthz, /readyz, /metrics and /hooks/{{github,gitlab,bitbucket,generic}}");
            } else {
                tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
            }
            Some(telemetry)
        }
        None => None,
    };
    let mut notifier = match &args.notify {
        Some(path) => {
            let receivers =
                crate::notify::read_config(path).map_err(|e| CliError::user(format!("--notify {e}")))?;
            let t = telemetry.clone();
            let count: crate::notify::deliver::Count = Arc::new(move |receiver: &str, result: &str| {
                if let Some(t) = &t {
                    t.notification(receiver, result);
                }
            });
            let notifier = crate::notify::Notifier::start(receivers, &args.repo, &args.state_dir, count)
                .map_err(|e| CliError::env(format!("--notify: {e}")))?;
            Some(notifier)
        }
        None => None,
    };
    let leadership = match election {
        None => None,
        Some(election) => {
            let (namespace, name) = (election.namespace.clone(), election.name.clone());
            let leadership = election.start().map_err(CliError::env)?;
            // A standby is ready: it serves health and metrics and waits.
            if let Some(t) = &telemetry {
                t.set_ready();
            }
            tracing::info!(lease = %format!("{namespace}/{name}"), "standing by until this process holds the Lease");
            while !leadership.is_leader() {
                if waker.wait(Duration::from_millis(200)) == crate::watch::Signal::Shutdown {
                    tracing::info!("shutting down");
                    return Ok(0);
                }
            }
            Some(leadership)
        }
    };
    let shards = match sharding {
        None => None,
        Some(sharding) => {
            let shards = sharding.start().map_err(CliError::env)?;
            if let Some(t) = &telemetry {
                t.set_ready();
            }
            Some(shards)
        }
    };
    if let (Some(t), None) = (&telemetry, &shards) {
        // Without leader election, this process is the one that reconciles.
        t.set_leader(true);
    }
    let fence = match (&leadership, &shards) {
        (Some(l), _) => {
            let l = l.clone();
            Some(Arc::new(move || l.fence()) as crate::cluster::Fence)
        }
        (None, Some(s)) => {
            let s = s.clone();
            Some(Arc::new(move || s.fence()) as crate::cluster::Fence)
        }
        (None, None) => None,
    };
    let mut reconciler = fenced_reconciler(&args, fence)?;
    if args.once {
        let outcome = reconciler.pass(now()).map_err(CliError::env)?;
        if let Some(c) = outcome.commit {
            tracing::info!(commit = %c, "{}", outcome.message.lines().next().unwrap_or_default());
        }
        if let Some(n) = notifier.as_mut() {
            notify(n, &reconciler, &outcome);
            n.flush(ONCE_DELIVERY);
        }
        return Ok(0);
    }
    tracing::info!(
        repo = %crate::source::redacted(&args.repo),
        watching = local.is_some(),
        poll_interval = args.poll_interval,
        "reconciling until SIGINT or SIGTERM"
    );
    // Consecutive failed passes, and the last failure logged.
    let (mut failures, mut last_failure): (u32, Option<String>) = (0, None);
    loop {
        // With shards: give up the surplus, then work on what is held.
        let owned = shards.as_ref().map(|s| {
            let filter = s.between_passes();
            if let Some(t) = &telemetry {
                t.set_leader(!filter.owned.is_empty());
            }
            reconciler.set_shards(Some(filter.clone()));
            if let Some(n) = notifier.as_mut() {
                let mine = filter.clone();
                n.only_placements(Some(Box::new(move |p: &str| mine.owns(p))));
            }
            filter.owned
        });
        if owned.as_ref().is_some_and(BTreeSet::is_empty) {
            // Nothing held (yet): look again after a retry period.
            let signal = waker.wait(args.leader_elect_retry_period);
            if signal == crate::watch::Signal::Shutdown {
                tracing::info!("shutting down");
                if let Some(s) = &shards {
                    s.release(args.leader_elect_renew_deadline);
                }
                return Ok(0);
            }
            continue;
        }
        let started = std::time::Instant::now();
        let result = reconciler.pass(now());
        if let (Some(t), Some(took)) = (&telemetry, reconciler.take_fetch_duration()) {
            t.fetch_done(took);
        }
        let wake = match result {
            Ok(outcome) => {
                if failures > 0 {
                    tracing::info!(failures, "pass succeeded again");
                }
                (failures, last_failure) = (0, None);
                if let Some(c) = outcome.commit {
                    tracing::info!(commit = %c, "{}", outcome.message.lines().next().unwrap_or_default());
                }
                if let Some(t) = &telemetry {
                    t.pass_done(started.elapsed(), outcome.commit.is_some(), &outcome.summary);
                    t.set_ready();
                }
                if let Some(n) = notifier.as_mut() {
                    notify(n, &reconciler, &outcome);
                }
                outcome.wake
            }
            Err(e) if e.is_retryable() => {
                failures += 1;
                let message = e.to_string();
                // Once per distinct failure: the same refusal every pass is noise.
                if last_failure.as_deref() != Some(message.as_str()) {
                    tracing::warn!("pass failed, retrying with backoff: {message}");
                    last_failure = Some(message);
                } else {
                    tracing::debug!(failures, "pass failed again: {message}");
                }
                if let Some(t) = &telemetry {
                    t.pass_failed(started.elapsed(), e.reason());
                }
                crate::time::Wake::NEVER
            }
            // Trying again cannot help: say why and stop.
            Err(e) => return Err(CliError::env(e)),
        };
        let poll = Duration::from_secs(args.poll_interval.max(1));
        let timeout = wake.time().map_or(retry_after(poll, failures), |w| until(w).min(poll));
        // The leader looks at its lease at least once a retry period, even when idle.
        let slice =
            if leadership.is_some() || shards.is_some() { args.leader_elect_retry_period } else { timeout };
        let until = std::time::Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            let signal = waker.wait(left.min(slice));
            if let Some(leadership) = &leadership {
                leadership.fence();
            }
            // Shards taken or to give up: a pass at once (a shutdown first).
            if signal != crate::watch::Signal::Shutdown
                && let (Some(s), Some(owned)) = (&shards, &owned)
                && s.held() != *owned
            {
                break;
            }
            match signal {
                crate::watch::Signal::Shutdown => {
                    tracing::info!("shutting down");
                    // Between passes: the Lease or the shards go to the others at once.
                    if let Some(s) = &shards {
                        s.release(args.leader_elect_renew_deadline);
                    }
                    if let Some(l) = &leadership {
                        l.release(args.leader_elect_renew_deadline);
                    }
                    return Ok(0);
                }
                // gitfleet's own status push moved the branch to where the
                // last pass left it: nothing new to reconcile.
                crate::watch::Signal::Changed
                    if local.as_deref().is_some_and(|dir| {
                        let tip = git2::Repository::open(dir)
                            .and_then(|r| r.refname_to_id(&format!("refs/heads/{}", args.branch)));
                        tip.ok().is_some_and(|t| Some(t) == reconciler.settled_tip())
                    }) => {}
                crate::watch::Signal::Changed => break,
                crate::watch::Signal::Timeout if left <= slice => break,
                crate::watch::Signal::Timeout => {}
            }
        }
    }
}

/// How long `run --once` waits for its notifications to go out.
const ONCE_DELIVERY: Duration = Duration::from_secs(30);

/// Hands the events of a pass's status change to the notifier; a notifier
/// that cannot read the status says so and never fails the pass.
fn notify(
    notifier: &mut crate::notify::Notifier,
    reconciler: &Reconciler,
    outcome: &crate::reconcile::PassOutcome,
) {
    if let Err(e) = notifier.observe_pass(reconciler.repo(), outcome) {
        tracing::warn!("notifications: cannot read the status commit: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_back_off_to_ten_minutes() {
        let poll = Duration::from_secs(30);
        let waits: Vec<u64> = (0..8).map(|n| retry_after(poll, n).as_secs()).collect();
        assert_eq!(waits, [30, 30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(retry_after(Duration::from_secs(3600), 3), Duration::from_secs(600));
    }
}
