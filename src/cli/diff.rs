//! `gitfleet diff PLACEMENT`: what is live on each cluster against what the
//! placement's snapshot would apply, as unified diffs; exit 0 when there is no
//! difference, 1 when there is (like `diff`), 2 on any error (an unknown
//! placement, a cluster that cannot be read), so that 1 always means "differs".

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::cluster::Backend;
use crate::cluster::kube::KubeBackend;
use crate::cluster::local::LocalStore;
use crate::reconcile::render_for;
use crate::schedule::schedule;
use crate::snapshot::Indexer;
use crate::source::Source;
use crate::state::FleetState;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The ClusterResourcePlacement.
    pub placement: String,
    /// Only this member cluster (default: every cluster the placement schedules).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Compare with the placement's snapshot as of this revision (default: the branch tip).
    #[arg(long)]
    pub rev: Option<String>,
    /// The fleet repository: a local path or a URL.
    #[arg(long)]
    pub repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The fleet's sub-folder in the repository.
    #[arg(long)]
    pub path: Option<String>,
    /// Member clusters are the contexts of this kubeconfig (default: the local store).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The state folder whose local store holds the clusters (without --kubeconfig).
    #[arg(long, default_value = ".gitfleet")]
    pub state_dir: PathBuf,
    /// text: unified diffs, per-cluster lines on stderr; markdown: one report on
    /// stdout for a pull-request comment (a collapsed section per object).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
}

pub fn diff(args: DiffArgs) -> Result<u8, CliError> {
    let source = Source::open(&args.repo, &args.branch).map_err(CliError::env)?;
    let tip = source.branch_tip(&args.branch).map_err(CliError::env)?;
    let repo = &source.repo;
    let mut indexer = Indexer::new(args.path.as_deref());
    let status_tip = |b: &str| Ok(crate::source::branch_tip(repo, b));
    let fs = FleetState::load(repo, tip, args.path.as_deref(), &mut indexer, status_tip, None)
        .map_err(CliError::env)?;
    let p = fs.fleet.placements.get(&args.placement).ok_or_else(|| {
        CliError::env(format!("placement {:?} not found on branch {}", args.placement, args.branch))
    })?;
    let at = match &args.rev {
        Some(rev) => source.resolve(rev).map_err(CliError::env)?,
        None => tip,
    };
    let index = fs
        .snapshot_at(repo, &p.name, at)
        .ok_or_else(|| CliError::env(format!("placement {} has no resource snapshot at {}", p.name, at)))?;
    let snapshot = format!("{}-{index}", p.name);
    let manifests = fs.snapshot_manifests(repo, &p.name, index, &indexer.parsed).map_err(CliError::env)?;

    let clusters: Vec<String> = match &args.cluster {
        Some(c) if fs.fleet.clusters.contains_key(c) => vec![c.clone()],
        Some(c) => return Err(CliError::env(format!("cluster {c:?} is not declared in the repository"))),
        None => schedule(p, &fs.fleet.clusters).clusters,
    };
    let backend: Box<dyn Backend> = match &args.kubeconfig {
        Some(path) => Box::new(KubeBackend::new(path).map_err(CliError::env)?),
        None => Box::new(LocalStore::new(args.state_dir.join("clusters"))),
    };
    let mut differs = false;
    let markdown = args.format == DiffFormat::Markdown;
    if markdown {
        println!("## gitfleet diff: {} against {snapshot}\n", p.name);
    }
    for cluster in &clusters {
        backend.declare(&fs.fleet.clusters[cluster]);
        let desired = render_for(&fs.fleet, p, cluster, &manifests, index).map_err(CliError::env)?;
        let diffs = backend.diff(cluster, &desired).map_err(CliError::env)?;
        if diffs.is_empty() {
            match markdown {
                true => println!("- **{cluster}**: no differences\n"),
                false => eprintln!("{cluster}: no differences from {}", snapshot),
            }
            continue;
        }
        differs = true;
        if !markdown {
            eprintln!("{cluster}: {} object(s) differ from {}", diffs.len(), snapshot);
            for d in diffs {
                print!("{}", d.unified);
            }
            continue;
        }
        println!("- **{cluster}**: {} object(s) differ\n", diffs.len());
        for d in diffs {
            let what = if d.on_cluster { "differs" } else { "is missing" };
            println!(
                "<details><summary>{cluster}: {} {what}</summary>\n\n```diff\n{}```\n\n</details>\n",
                d.key,
                d.unified.replace("```", "`\u{200b}``")
            );
        }
    }
    Ok(u8::from(differs))
}
