//! `gitfleet preview --repo REPO --base REV --head REV`: what merging the head
//! commit would change on the clusters, compared with the base, per
//! placement, as Markdown fit for a pull-request comment: a new resource
//! snapshot or not, the objects added, changed and deleted on each cluster
//! (their rendered YAML diffed, Secret values masked), the clusters, and the
//! stages and gates a run would pass through. No cluster is read: both sides
//! are rendered from Git.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::cluster::compare::{masked, unified_between};
use crate::engine::initialize::stage_clusters;
use crate::reconcile::render_for;
use crate::render::RenderedObject;
use crate::repo::Fleet;
use crate::repo::model::{Manifest, ObjectKey, Placement, RolloutType, StageTask, Strategy, UpdateRun};
use crate::schedule::schedule;
use crate::snapshot::Indexer;
use crate::snapshot::select::selected_manifests;
use crate::source::Source;
use crate::state::FleetState;

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The fleet repository: a local path (a CI checkout) or a URL.
    #[arg(long, default_value = ".")]
    pub repo: String,
    /// The commit the pull request merges into (sha, branch, tag).
    #[arg(long)]
    pub base: String,
    /// The pull request's commit.
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// The fleet's sub-folder in the repository.
    #[arg(long)]
    pub path: Option<String>,
    /// Cut the preview at about this many bytes (a GitHub comment holds 65,536).
    #[arg(long, default_value_t = 60_000)]
    pub max_bytes: usize,
}

/// What changes for one cluster: objects by what happens to them.
#[derive(Default)]
struct ClusterChanges {
    added: Vec<String>,
    changed: Vec<String>,
    deleted: Vec<String>,
    /// (object, unified diff).
    diffs: Vec<(String, String)>,
}

impl ClusterChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// Text from the repository made safe for Markdown and HTML: no tag, no
/// table cell break, no code span or emphasis it did not ask for.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' | '`' | '*' | '_' | '[' | ']' | '\\' | '@' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `n` names, then how many more.
fn some_of(names: &[&str], n: usize) -> String {
    let shown: Vec<String> = names.iter().take(n).map(|s| escape(s)).collect();
    match names.len().saturating_sub(n) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Clusters named in one list or table of the preview.
const NAMES_SHOWN: usize = 30;

fn describe(key: &ObjectKey) -> String {
    let kind = if key.group.is_empty() { key.kind.clone() } else { format!("{}.{}", key.kind, key.group) };
    match &key.namespace {
        Some(ns) => format!("{kind} {ns}/{}", key.name),
        None => format!("{kind} {}", key.name),
    }
}

/// A placement at one side of the pull request: scheduled and selected once.
struct Side<'a> {
    fleet: &'a Fleet,
    placement: Option<&'a Placement>,
    /// The clusters it schedules, in scheduling order.
    scheduled: Vec<String>,
    manifests: Vec<Arc<Manifest>>,
}

impl<'a> Side<'a> {
    fn of(fleet: &'a Fleet, name: &str) -> Side<'a> {
        let placement = fleet.placements.get(name);
        Side {
            fleet,
            placement,
            scheduled: placement.map(|p| schedule(p, &fleet.clusters).clusters).unwrap_or_default(),
            manifests: placement.map(|_| selected_manifests(fleet, name)).unwrap_or_default(),
        }
    }

    /// The objects the placement puts on `cluster`, by key; empty when it
    /// does not schedule the cluster.
    fn rendered(
        &self,
        cluster: &str,
        scheduled: &BTreeSet<&str>,
        index: u32,
    ) -> Result<BTreeMap<ObjectKey, RenderedObject>, String> {
        let Some(p) = self.placement.filter(|_| scheduled.contains(cluster)) else {
            return Ok(BTreeMap::new());
        };
        let objects =
            render_for(self.fleet, p, cluster, &self.manifests, index).map_err(|e| e.to_string())?;
        Ok(objects.into_iter().map(|o| (o.key.clone(), o)).collect())
    }

    /// What the placement selects, for comparing the two sides.
    fn selection(&self) -> Vec<(&ObjectKey, &serde_json::Value)> {
        self.manifests.iter().map(|m| (&m.key, m.value.as_ref())).collect()
    }
}

/// The runs of a placement the pull request adds or changes.
fn changed_runs<'a>(p: &Placement, base: &Fleet, head: &'a Fleet) -> Vec<&'a UpdateRun> {
    let key = |name: &str| crate::repo::model::scoped_history("ClusterStagedUpdateRun", name);
    head.runs
        .values()
        .filter(|r| r.placement == p.name && base.raw.get(&key(&r.name)) != head.raw.get(&key(&r.name)))
        .collect()
}

fn cluster_changes(
    base: &BTreeMap<ObjectKey, RenderedObject>,
    head: &BTreeMap<ObjectKey, RenderedObject>,
) -> ClusterChanges {
    let mut out = ClusterChanges::default();
    let keys: BTreeSet<&ObjectKey> = base.keys().chain(head.keys()).collect();
    for key in keys {
        let (b, h) = (base.get(key), head.get(key));
        let name = describe(key);
        match (b, h) {
            (Some(b), Some(h)) if b.value == h.value => continue,
            (None, None) => continue,
            (Some(_), Some(_)) => out.changed.push(name.clone()),
            (None, Some(_)) => out.added.push(name.clone()),
            (Some(_), None) => out.deleted.push(name.clone()),
        }
        let empty = serde_json::Value::Null;
        let head_value = h.map_or(&empty, |h| &h.value);
        let (head_masked, base_masked) = masked(key, head_value, b.map(|b| &b.value));
        let diff = unified_between(
            key,
            base_masked.as_ref().filter(|_| b.is_some()),
            h.map(|_| &head_masked),
            ("base", "head"),
        );
        out.diffs.push((name, diff));
    }
    out
}

/// The stages a run of `strategy` would pass through, as a Markdown table.
fn stages_table(strategy: &Strategy, scheduled: &[String], fleet: &Fleet) -> String {
    let tasks = |t: &[StageTask]| {
        t.iter()
            .map(|t| match t {
                StageTask::Approval => "approval gate".to_string(),
                StageTask::TimedWait(d) => format!("wait {}", crate::repo::duration::format(*d)),
                StageTask::Verification(v) => format!(
                    "verify `{}` with {} ({} x {}{})",
                    v.success,
                    v.provider.name(),
                    v.count,
                    crate::repo::duration::format(v.interval),
                    match v.on_failure {
                        crate::verify::OnFailure::Rollback => ", roll back on failure",
                        crate::verify::OnFailure::Fail => "",
                    }
                ),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let members = match stage_clusters(strategy, scheduled, &fleet.clusters) {
        Ok(m) => m,
        Err(e) => return format!("Strategy {} cannot order these clusters: {e}\n", strategy.name),
    };
    let mut out = String::from("| stage | clusters | before | after |\n|---|---|---|---|\n");
    for (stage, clusters) in strategy.stages.iter().zip(members) {
        let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
        let names = if names.is_empty() { "(none)".to_string() } else { some_of(&names, NAMES_SHOWN) };
        let _ = writeln!(
            out,
            "| {} | {names} | {} | {} |",
            escape(&stage.name),
            tasks(&stage.before_tasks),
            tasks(&stage.after_tasks)
        );
    }
    out
}

/// How the placement's change would reach its clusters.
fn rollout(
    p: &Placement,
    runs: &[&UpdateRun],
    head: &Fleet,
    scheduled: &[String],
    new_snapshot: bool,
) -> String {
    match &p.rollout {
        RolloutType::RollingUpdate { max_unavailable } => format!(
            "Rollout: RollingUpdate, applied to its clusters once merged (maxUnavailable {}).\n",
            max_unavailable
        ),
        RolloutType::External => {
            let mut out = String::new();
            if let Some(strategy) = &p.auto_run
                && new_snapshot
            {
                let _ = writeln!(
                    out,
                    "Rollout: autoRun, a run of strategy {} starts once merged.\n",
                    escape(strategy)
                );
                if let Some(s) = head.strategies.get(strategy) {
                    out.push_str(&stages_table(s, scheduled, head));
                }
            }
            for r in runs {
                let (run, strategy) = (escape(&r.name), escape(&r.strategy));
                let _ = writeln!(out, "Rollout: run {run} (strategy {strategy}) is added or changed.\n");
                if let Some(s) = head.strategies.get(&r.strategy) {
                    out.push_str(&stages_table(s, scheduled, head));
                }
            }
            if out.is_empty() {
                out.push_str("Rollout: External; nothing changes on a cluster until a ClusterStagedUpdateRun rolls the new snapshot out.\n");
            }
            out
        }
    }
}

pub fn preview(args: PreviewArgs) -> Result<u8, CliError> {
    let source = Source::open(&args.repo, "main").map_err(CliError::env)?;
    let repo = &source.repo;
    let base_id = source.resolve(&args.base).map_err(CliError::user)?;
    let head_id = source.resolve(&args.head).map_err(CliError::user)?;
    let path = args.path.as_deref();
    // One index for both: the head usually descends from the base, so it
    // reads only the pull request's commits after the base's history.
    let mut indexer = Indexer::new(path);
    let mut load = |commit| {
        FleetState::load(repo, commit, path, &mut indexer, |_| Ok(None), None).map_err(CliError::env)
    };
    let (base, head) = (load(base_id)?, load(head_id)?);
    let short = |id: git2::Oid| id.to_string()[..10].to_string();
    let mut out = format!("## gitfleet preview: {} → {}\n\n", short(base_id), short(head_id));
    if !head.fleet.issues.is_empty() {
        let _ = writeln!(
            out,
            "**The head commit has {} error(s)** (`gitfleet validate`):\n",
            head.fleet.issues.len()
        );
        out.push_str("```\n");
        for issue in head.fleet.issues.iter().take(NAMES_SHOWN) {
            let _ = writeln!(out, "{}", issue.to_string().replace("```", "`\u{200b}``"));
        }
        if head.fleet.issues.len() > NAMES_SHOWN {
            let _ = writeln!(out, "... and {} more", head.fleet.issues.len() - NAMES_SHOWN);
        }
        out.push_str("```\n\n");
    }
    let names: BTreeSet<&String> = base.fleet.placements.keys().chain(head.fleet.placements.keys()).collect();
    let mut unchanged = Vec::new();
    let mut sections = Vec::new();
    for name in names {
        let (b_side, h_side) = (Side::of(&base.fleet, name), Side::of(&head.fleet, name));
        let (bp, hp) = (b_side.placement, h_side.placement);
        let base_index = base.latest_index(name);
        let key = crate::repo::model::scoped_history("ClusterResourcePlacement", name);
        let placement_changed = base.fleet.raw.get(&key) != head.fleet.raw.get(&key);
        let new_snapshot = hp.is_some() && b_side.selection() != h_side.selection();
        let index = match (base_index, new_snapshot) {
            (Some(i), true) => i + 1,
            (Some(i), false) => i,
            (None, _) => 0,
        };
        let (base_clusters, head_clusters) = (&b_side.scheduled, &h_side.scheduled);
        let in_base: BTreeSet<&str> = base_clusters.iter().map(String::as_str).collect();
        let in_head: BTreeSet<&str> = head_clusters.iter().map(String::as_str).collect();
        let all: BTreeSet<&str> = in_base.union(&in_head).copied().collect();
        let mut per_cluster: Vec<(String, ClusterChanges)> = Vec::new();
        let mut problems = Vec::new();
        for cluster in all {
            let b = b_side.rendered(cluster, &in_base, index);
            let h = h_side.rendered(cluster, &in_head, index);
            match (b, h) {
                (Ok(b), Ok(h)) => {
                    let c = cluster_changes(&b, &h);
                    if !c.is_empty() {
                        per_cluster.push((cluster.to_string(), c));
                    }
                }
                (Err(e), _) | (_, Err(e)) => problems.push(format!("{cluster}: {e}")),
            }
        }
        let runs = hp.map(|p| changed_runs(p, &base.fleet, &head.fleet)).unwrap_or_default();
        if per_cluster.is_empty()
            && !new_snapshot
            && !placement_changed
            && problems.is_empty()
            && runs.is_empty()
        {
            unchanged.push(name.as_str());
            continue;
        }
        let mut s = String::new();
        let title = match (bp, hp) {
            (None, Some(_)) => "new placement".to_string(),
            (Some(_), None) => "placement removed: its objects are deleted from its clusters".to_string(),
            _ if new_snapshot => match base_index {
                Some(i) => format!("new resource snapshot (after {}-{i})", escape(name)),
                None => "new resource snapshot".to_string(),
            },
            _ => "no new resource snapshot".to_string(),
        };
        let _ = writeln!(s, "### {}: {title}\n", escape(name));
        if placement_changed && bp.is_some() && hp.is_some() {
            s.push_str("The ClusterResourcePlacement itself changes.\n\n");
        }
        let added: Vec<&String> = head_clusters.iter().filter(|c| !in_base.contains(c.as_str())).collect();
        let removed: Vec<&String> = base_clusters.iter().filter(|c| !in_head.contains(c.as_str())).collect();
        let all_head: Vec<&str> = head_clusters.iter().map(String::as_str).collect();
        let added: Vec<&str> = added.into_iter().map(String::as_str).collect();
        let removed: Vec<&str> = removed.into_iter().map(String::as_str).collect();
        let _ = write!(s, "Clusters: {} ({})", some_of(&all_head, NAMES_SHOWN), head_clusters.len());
        if !added.is_empty() {
            let _ = write!(s, "; joining: {}", some_of(&added, NAMES_SHOWN));
        }
        if !removed.is_empty() {
            let _ = write!(s, "; leaving: {}", some_of(&removed, NAMES_SHOWN));
        }
        s.push_str(".\n\n");
        if let Some(p) = hp {
            s.push_str(&rollout(p, &runs, &head.fleet, head_clusters, new_snapshot));
            s.push('\n');
        }
        for problem in problems.iter().take(NAMES_SHOWN) {
            let _ = writeln!(s, "- cannot render: {}", escape(problem));
        }
        if !per_cluster.is_empty() {
            s.push_str("| cluster | added | changed | deleted |\n|---|---|---|---|\n");
            for (cluster, c) in per_cluster.iter().take(NAMES_SHOWN) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    escape(cluster),
                    c.added.len(),
                    c.changed.len(),
                    c.deleted.len()
                );
            }
            if per_cluster.len() > NAMES_SHOWN {
                let _ = writeln!(s, "| ... and {} more clusters | | | |", per_cluster.len() - NAMES_SHOWN);
            }
            s.push('\n');
        }
        // The same diff on several clusters is shown once.
        let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (cluster, c) in &per_cluster {
            for (object, diff) in &c.diffs {
                grouped.entry((object.clone(), diff.clone())).or_default().push(cluster.clone());
            }
        }
        sections.push((s, grouped));
    }
    let changed = sections.len();
    let total = changed + unchanged.len();
    let _ = writeln!(out, "**{changed} of {total} placement(s) change.**\n");
    // Summaries first, then the diffs while they fit.
    let mut cut = false;
    for (summary, grouped) in sections {
        out.push_str(&summary);
        for ((object, diff), clusters) in grouped {
            let on: Vec<&str> = clusters.iter().map(String::as_str).collect();
            let details = format!(
                "<details><summary>{} on {}</summary>\n\n```diff\n{}```\n\n</details>\n\n",
                escape(&object),
                some_of(&on, NAMES_SHOWN),
                diff.replace("```", "`\u{200b}``")
            );
            if out.len() + details.len() > args.max_bytes {
                cut = true;
                continue;
            }
            out.push_str(&details);
        }
    }
    if !unchanged.is_empty() {
        let _ = writeln!(out, "Unchanged: {}.\n", some_of(&unchanged, NAMES_SHOWN));
    }
    if cut {
        let _ = writeln!(
            out,
            "_Some diffs were left out to stay under {} bytes: run `gitfleet preview --base {} --head {}` for all of them._",
            args.max_bytes,
            short(base_id),
            short(head_id)
        );
    }
    print!("{out}");
    Ok(0)
}
