//! `gitfleet get KIND [NAME]`: kubectl-style views of the tracked branch.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::CliError;
use super::table::{age, list, print_table};
use crate::snapshot::Indexer;
use crate::snapshot::select::selected_manifests;
use crate::source::Source;
use crate::state::FleetState;
use crate::status::RecordedSnapshot;
use crate::status::approval::ApprovalRequest;
use crate::status::placement::PlacementDocument;
use crate::status::run::RunDocument;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// memberclusters, clusterresourceplacements (crp), clusterresourcesnapshots,
    /// clusterstagedupdatestrategies (csus), clusterstagedupdateruns (csur),
    /// clusterapprovalrequests (careq); namespaced: resourceplacements (rp),
    /// resourcesnapshots (rs), stagedupdatestrategies (sus), stagedupdateruns
    /// (sur), approvalrequests (areq)
    pub kind: String,
    pub name: Option<String>,
    /// The namespace of a namespaced kind (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Every namespace of a namespaced kind (adds a NAMESPACE column).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    #[arg(long)]
    pub repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    #[arg(long)]
    pub path: Option<String>,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
    /// Accepted for kubectl compatibility: labels are always shown where kubectl shows them.
    #[arg(long)]
    pub show_labels: bool,
    /// Print again whenever the branch (or the status branch) moves, as
    /// `kubectl get -w`; for one run (`get csur NAME -w`), a live progress
    /// view that ends with the run (exit 0 when it succeeded, 1 otherwise).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// How often --watch looks at the repository, in seconds (a URL is fetched).
    #[arg(long, default_value_t = 2, requires = "watch")]
    pub watch_interval: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MemberClusters,
    Placements,
    Snapshots,
    Strategies,
    Runs,
    ApprovalRequests,
}

impl Kind {
    /// The kind, and whether it is the namespaced twin.
    fn parse_scoped(s: &str) -> Option<(Kind, bool)> {
        let s = s.to_ascii_lowercase();
        let s = s.split('.').next().unwrap_or_default();
        let namespaced = match s {
            "resourceplacement" | "resourceplacements" | "rp" => Kind::Placements,
            "resourcesnapshot" | "resourcesnapshots" | "rs" => Kind::Snapshots,
            "stagedupdatestrategy" | "stagedupdatestrategies" | "sus" => Kind::Strategies,
            "stagedupdaterun" | "stagedupdateruns" | "sur" => Kind::Runs,
            "approvalrequest" | "approvalrequests" | "areq" => Kind::ApprovalRequests,
            _ => return Kind::parse(s).map(|k| (k, false)),
        };
        Some((namespaced, true))
    }

    fn parse(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        let s = s.split('.').next().unwrap_or_default();
        Some(match s {
            "membercluster" | "memberclusters" | "mc" => Kind::MemberClusters,
            "clusterresourceplacement" | "clusterresourceplacements" | "crp" => Kind::Placements,
            "clusterresourcesnapshot" | "clusterresourcesnapshots" => Kind::Snapshots,
            "clusterstagedupdatestrategy" | "clusterstagedupdatestrategies" | "csus" => Kind::Strategies,
            "clusterstagedupdaterun" | "clusterstagedupdateruns" | "csur" => Kind::Runs,
            "clusterapprovalrequest" | "clusterapprovalrequests" | "careq" => Kind::ApprovalRequests,
            _ => return None,
        })
    }

    fn plural(self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (Kind::Placements, true) => return "resourceplacements",
            (Kind::Snapshots, true) => return "resourcesnapshots",
            (Kind::Strategies, true) => return "stagedupdatestrategies",
            (Kind::Runs, true) => return "stagedupdateruns",
            (Kind::ApprovalRequests, true) => return "approvalrequests",
            _ => {}
        }
        match self {
            Kind::MemberClusters => "memberclusters",
            Kind::Placements => "clusterresourceplacements",
            Kind::Snapshots => "clusterresourcesnapshots",
            Kind::Strategies => "clusterstagedupdatestrategies",
            Kind::Runs => "clusterstagedupdateruns",
            Kind::ApprovalRequests => "clusterapprovalrequests",
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Kind::MemberClusters => &[
                "NAME",
                "JOINED",
                "AGE",
                "MEMBER-AGENT-LAST-SEEN",
                "NODE-COUNT",
                "AVAILABLE-CPU",
                "AVAILABLE-MEMORY",
            ],
            Kind::Placements => {
                &["NAME", "GEN", "SCHEDULED", "SCHEDULED-GEN", "AVAILABLE", "AVAILABLE-GEN", "AGE"]
            }
            Kind::Snapshots => &["NAME", "GEN", "AGE", "LABELS", "COMMIT"],
            Kind::Strategies => &["NAME", "AGE"],
            Kind::Runs => &[
                "NAME",
                "PLACEMENT",
                "RESOURCE-SNAPSHOT-INDEX",
                "POLICY-SNAPSHOT-INDEX",
                "INITIALIZED",
                "SUCCEEDED",
                "AGE",
            ],
            Kind::ApprovalRequests => &["NAME", "UPDATE-RUN", "STAGE", "APPROVED", "APPROVALACCEPTED", "AGE"],
        }
    }
}

/// One object to show: its key (`namespace/name` for a namespaced one), table
/// row and full object.
struct Item {
    name: String,
    row: Vec<String>,
    object: Value,
}

impl Item {
    fn split(&self) -> (Option<&str>, &str) {
        crate::repo::model::split_key(&self.name)
    }
}

pub fn get(args: GetArgs) -> Result<u8, CliError> {
    let (kind, namespaced) = Kind::parse_scoped(&args.kind).ok_or_else(|| {
        CliError::user(format!(
            "unknown kind {:?}: use memberclusters, crp, clusterresourcesnapshots, csus, csur, clusterapprovalrequests, \
             or the namespaced rp, resourcesnapshots, sus, sur, approvalrequests",
            args.kind
        ))
    })?;
    if !namespaced && (args.namespace.is_some() || args.all_namespaces) {
        return Err(CliError::user(format!(
            "{} is cluster-scoped: -n and -A do not apply",
            kind.plural(false)
        )));
    }
    let source = Source::open(&args.repo, &args.branch).map_err(CliError::env)?;
    if args.watch {
        return watch(&args, kind, namespaced, &source);
    }
    show(&args, kind, namespaced, &source, false).map(|_| 0)
}

/// `get --watch`: shows again each time a branch moves; a run's progress view
/// ends with the run.
fn watch(args: &GetArgs, kind: Kind, namespaced: bool, source: &Source) -> Result<u8, CliError> {
    let progress = kind == Kind::Runs && args.name.is_some() && args.output == Output::Table;
    let mut seen = None;
    let mut said = String::new();
    // A problem (the remote away, the run not there yet) is said once per
    // change of message, and looked at again at the next interval.
    let mut say = |e: String| {
        if e != said {
            eprintln!("gitfleet get --watch: {e}");
            said = e;
        }
    };
    loop {
        if let Err(e) = source.refresh() {
            say(e.to_string());
        }
        let tips = crate::source::branch_tips(&source.repo);
        if seen.as_ref() != Some(&tips) {
            match show(args, kind, namespaced, source, progress) {
                Ok(Some(run)) => {
                    if let Some((succeeded, _)) = run_ended(&run) {
                        return Ok(u8::from(!succeeded));
                    }
                }
                Ok(None) => {}
                Err(e) => say(e.to_string()),
            }
            seen = Some(tips);
        }
        std::thread::sleep(std::time::Duration::from_secs(args.watch_interval.max(1)));
    }
}

/// Whether a run ended (succeeded, failed, or stopped): whether it
/// succeeded, and what its ending condition says.
fn run_ended(run: &Value) -> Option<(bool, String)> {
    let conditions = run.pointer("/status/conditions").and_then(Value::as_array)?;
    let message = |c: &Value| c["message"].as_str().unwrap_or_default().to_string();
    if let Some(done) = conditions.iter().find(|c| c["type"] == "Succeeded") {
        return Some((done["status"] == "True", message(done)));
    }
    let stopped =
        conditions.iter().find(|c| c["type"] == "Progressing" && c["reason"] == "UpdateRunStopped")?;
    Some((false, message(stopped)))
}

/// Prints the kind's table or objects once; `progress`: one run's progress
/// view instead of its table. Returns the run shown, when one run is.
fn show(
    args: &GetArgs,
    kind: Kind,
    namespaced: bool,
    source: &Source,
    progress: bool,
) -> Result<Option<Value>, CliError> {
    let tip = source.branch_tip(&args.branch).map_err(CliError::env)?;
    let mut indexer = Indexer::new(args.path.as_deref());
    let status_branch_tip = |b: &str| Ok(crate::source::branch_tip(&source.repo, b));
    let state =
        FleetState::load(&source.repo, tip, args.path.as_deref(), &mut indexer, status_branch_tip, None)
            .map_err(CliError::env)?;
    let now = crate::time::Time::now();
    // The kind's status documents, read and parsed once; one gitfleet cannot
    // read is an error, never a row with empty columns.
    use crate::status::{PLACEMENTS, REQUESTS, RUNS};
    let status = match kind {
        Kind::Placements => read_status::<PlacementDocument>(source, &state, PLACEMENTS)?,
        Kind::Runs => read_status::<RunDocument>(source, &state, RUNS)?,
        Kind::ApprovalRequests => read_status::<ApprovalRequest>(source, &state, REQUESTS)?,
        Kind::MemberClusters => read_status::<crate::status::member::MemberDocument>(
            source,
            &state,
            crate::status::member::MEMBERS,
        )?,
        _ => BTreeMap::new(),
    };
    let ctx =
        Ctx { source, state: &state, indexer: &indexer, now, full: args.output != Output::Table, status };
    let mut items = match kind {
        Kind::MemberClusters => ctx.member_clusters(),
        Kind::Placements => ctx.placements(),
        Kind::Snapshots => ctx.snapshots(args.name.as_deref()),
        Kind::Strategies => ctx.strategies(),
        Kind::Runs => ctx.runs(),
        Kind::ApprovalRequests => ctx.approval_requests(),
    };
    // The kind's scope, then the namespace asked for (kubectl's default: `default`).
    let namespace = args.namespace.clone().unwrap_or_else(|| "default".to_string());
    items.retain(|i| match i.split().0 {
        None => !namespaced,
        Some(ns) => namespaced && (args.all_namespaces || ns == namespace),
    });
    if let Some(name) = &args.name {
        items.retain(|i| i.split().1 == name);
        if items.is_empty() {
            let within = if namespaced { format!(" in namespace {namespace}") } else { String::new() };
            return Err(CliError::user(format!("{} {name:?} not found{within}", kind.plural(namespaced))));
        }
    }
    let mut header: Vec<&str> = kind.header().to_vec();
    if namespaced && args.all_namespaces {
        header.insert(0, "NAMESPACE");
        for i in &mut items {
            let ns = i.split().0.unwrap_or_default().to_string();
            i.row.insert(0, ns);
        }
    }
    let single = (args.name.is_some() && kind == Kind::Runs).then(|| items[0].object.clone());
    if progress {
        print_progress(single.as_ref().unwrap_or(&Value::Null), &crate::source::redacted(&args.repo), now);
        return Ok(single);
    }
    match args.output {
        Output::Table if items.is_empty() => eprintln!("No resources found"),
        Output::Table => {
            print_table(&header, &items.into_iter().map(|i| i.row).collect::<Vec<_>>());
            if let Some(run) = &single {
                for line in waiting_for(run) {
                    println!("{line}");
                }
                print_verifications(run);
                print_rollback(run);
            }
        }
        Output::Yaml | Output::Json => {
            // As KubeFleet has them: a namespaced twin's form, gitfleet's own fields in an annotation.
            for i in &mut items {
                crate::status::scoped::to_file_form(&mut i.object, &i.name);
            }
            let value = if args.name.is_some() {
                items.pop().map(|i| i.object).unwrap_or(Value::Null)
            } else {
                list(items.into_iter().map(|i| i.object).collect())
            };
            if args.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print!("{}", crate::yaml::to_string(&value));
            }
        }
    }
    Ok(single)
}

/// One run's progress, compact: its state, each stage with its clusters done
/// out of all and what it is at, and what the run waits for. On a terminal
/// the view is drawn in place.
fn print_progress(run: &Value, repo: &str, now: crate::time::Time) {
    use std::io::IsTerminal;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let name = short(&text(&run["metadata"]["name"]));
    let conditions = run.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let latest = conditions.iter().max_by_key(|c| text(&c["lastTransitionTime"]));
    let state = match (run_ended(run), latest) {
        (Some((true, _)), _) => "succeeded".to_string(),
        (Some((false, why)), _) => format!("ended: {why}"),
        (None, Some(c)) => format!("{} ({})", text(&c["reason"]), text(&c["message"])),
        _ => "not started".to_string(),
    };
    if std::io::stdout().is_terminal() {
        print!("\x1b[2J\x1b[H");
    }
    println!(
        "run {name}: placement {}, snapshot {} -- {state}",
        short(&text(&run["spec"]["placementName"])),
        run.pointer("/status/resourceSnapshotIndexUsed").map(text).unwrap_or_default(),
    );
    let stages = run.pointer("/status/stagesStatus").and_then(Value::as_array).cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|st| {
            let clusters = st["clusters"].as_array().cloned().unwrap_or_default();
            let done = clusters
                .iter()
                .filter(|c| {
                    c["conditions"].as_array().is_some_and(|cs| {
                        cs.iter().any(|x| x["type"] == "Succeeded" && x["status"] == "True")
                    })
                })
                .count();
            let succeeded =
                st["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"));
            let at = match succeeded {
                Some(c) if c["status"] == "True" => "done".to_string(),
                Some(c) => format!("failed: {}", text(&c["message"])),
                // Every cluster done, the stage not: its after-stage tasks hold it.
                None if done > 0 && done == clusters.len() => "waiting".to_string(),
                None if st.get("startTime").is_some() => "updating".to_string(),
                None => "pending".to_string(),
            };
            vec![text(&st["stageName"]), format!("{done}/{}", clusters.len()), at]
        })
        .collect();
    if !rows.is_empty() {
        print_table(&["STAGE", "CLUSTERS", "STATE"], &rows);
    }
    for line in waiting_for(run) {
        println!("{line}");
        if let Some(request) = line.split("waiting for approval ").nth(1) {
            println!("  approve with: {}", super::approve_command(request.trim(), repo));
        }
    }
    println!("(as of {now})");
}

struct Ctx<'a> {
    source: &'a Source,
    state: &'a FleetState,
    indexer: &'a Indexer,
    now: crate::time::Time,
    /// Whether full objects are printed (yaml/json): only then is heavier work done.
    full: bool,
    /// The status documents of the kind shown, by file name.
    status: BTreeMap<String, Value>,
}

/// Every document of a status sub-folder, whole (with its cluster files), by
/// file name; fails naming the first one that cannot be read.
fn read_status<T: crate::status::Stored>(
    source: &Source,
    state: &FleetState,
    folder: &'static str,
) -> Result<BTreeMap<String, Value>, CliError> {
    let root = &state.status_root;
    let docs = crate::status::Documents::<T>::read(
        &source.repo,
        state.status_commit,
        root,
        folder,
        crate::yaml::status_limit(),
        &mut Default::default(),
    )
    .map_err(CliError::env)?;
    let path = |name: &str| format!("{root}/{}.yaml", crate::status::scoped::path(folder, name));
    if let Some((name, e)) = docs.broken.iter().next() {
        return Err(CliError::env(format!("{}: gitfleet cannot read its own status: {e}", path(name))));
    }
    docs.now
        .into_iter()
        .map(|(name, doc)| {
            let value = serde_json::to_value(doc.as_ref())
                .map_err(|e| CliError::env(format!("{}: {e}", path(&name))))?;
            Ok((format!("{name}.yaml"), value))
        })
        .collect()
}

/// The key of a status document (its name in gitfleet's form).
fn key_of(object: &Value) -> String {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The last part of a key (the name within its namespace).
fn short(key: &str) -> String {
    crate::repo::model::split_key(key).1.to_string()
}

/// `status` and `type` of a condition in `object.status.conditions`.
fn condition(object: &Value, type_: &str) -> (String, String) {
    let found = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    match found {
        Some(c) => (
            c["status"].as_str().unwrap_or_default().to_string(),
            c["observedGeneration"].as_i64().map(|g| g.to_string()).unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    }
}

impl Ctx<'_> {
    /// The object as written, with `metadata.generation` and `creationTimestamp`
    /// from history, and `status` from its status file when gitfleet wrote one.
    fn object(&self, kind: &str, name: &str) -> (Value, crate::time::Time, u64) {
        let mut object = self
            .state
            .fleet
            .raw
            .get(&crate::repo::model::scoped_history(kind, name))
            .map(|v| (**v).clone())
            .unwrap_or_else(|| json!({ "kind": kind, "metadata": { "name": name } }));
        // Worked on in gitfleet's form: keys for names, cluster-scoped kinds.
        if let (Some(ns), _) = crate::repo::model::split_key(name) {
            crate::status::scoped::qualify(&mut object, ns);
        }
        let history = self.indexer.history(kind, name);
        let created = history.map_or(self.state.tip_time, |h| h.created);
        let generation = history.map_or(1, |h| h.generation);
        object["metadata"]["generation"] = json!(generation);
        object["metadata"]["creationTimestamp"] = json!(created.to_string());
        if let Some(status) = self.status.get(&format!("{name}.yaml")).and_then(|doc| doc.get("status")) {
            object["status"] = status.clone();
        }
        (object, created, generation)
    }

    fn member_clusters(&self) -> Vec<Item> {
        self.state
            .fleet
            .clusters
            .values()
            .map(|c| {
                let (mut object, created, _) = self.object("MemberCluster", &c.name);
                object["spec"] = crate::status::member::kubefleet_spec(c, object.get("spec"));
                let status = &object["status"];
                let joined = status["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Joined"))
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or("Unknown");
                let seen = status["agentStatus"]
                    .as_array()
                    .and_then(|a| a.iter().find(|a| a["type"] == "MemberAgent"))
                    .and_then(|a| a["lastReceivedHeartbeat"].as_str())
                    .and_then(crate::time::Time::parse)
                    .map_or_else(|| "<none>".to_string(), |t| age(self.now.seconds_since(t)));
                let text = |v: &Value| v.as_str().map_or_else(|| "<none>".to_string(), str::to_string);
                Item {
                    name: c.name.clone(),
                    row: vec![
                        c.name.clone(),
                        joined.to_string(),
                        age(self.now.seconds_since(created)),
                        seen,
                        text(&status["properties"][crate::status::member::NODE_COUNT]["value"]),
                        text(&status["resourceUsage"]["available"]["cpu"]),
                        text(&status["resourceUsage"]["available"]["memory"]),
                    ],
                    object,
                }
            })
            .collect()
    }

    fn placements(&self) -> Vec<Item> {
        self.state
            .fleet
            .placements
            .values()
            .map(|p| {
                let (object, created, generation) = self.object("ClusterResourcePlacement", &p.name);
                let (scheduled, scheduled_gen) = condition(&object, "ClusterResourcePlacementScheduled");
                let (available, available_gen) = condition(&object, "ClusterResourcePlacementAvailable");
                let row = vec![
                    crate::repo::model::split_key(&p.name).1.to_string(),
                    generation.to_string(),
                    scheduled,
                    scheduled_gen,
                    available,
                    available_gen,
                    age(self.now.seconds_since(created)),
                ];
                Item { name: p.name.clone(), row, object }
            })
            .collect()
    }

    fn strategies(&self) -> Vec<Item> {
        self.state
            .fleet
            .strategies
            .values()
            .map(|s| {
                let (object, created, _) = self.object("ClusterStagedUpdateStrategy", &s.name);
                Item {
                    name: s.name.clone(),
                    row: vec![
                        crate::repo::model::split_key(&s.name).1.to_string(),
                        age(self.now.seconds_since(created)),
                    ],
                    object,
                }
            })
            .collect()
    }

    fn runs(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .state
            .fleet
            .runs
            .values()
            .map(|r| {
                let (object, created, _) = self.object("ClusterStagedUpdateRun", &r.name);
                self.run_item(&r.name, object, created)
            })
            .collect();
        // Automatic runs exist in status only.
        for object in self.status_documents() {
            let name = key_of(&object);
            if self.state.fleet.runs.contains_key(&name) {
                continue;
            }
            let created = object
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(crate::time::Time::parse)
                .unwrap_or(self.state.tip_time);
            items.push(self.run_item(&name, object, created));
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items
    }

    fn run_item(&self, name: &str, object: Value, created: crate::time::Time) -> Item {
        let text = |p: &str| {
            object.pointer(p).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
        };
        let index = text("/status/resourceSnapshotIndexUsed").or_else(|| text("/spec/resourceSnapshotIndex"));
        let row = vec![
            crate::repo::model::split_key(name).1.to_string(),
            short(&text("/spec/placementName").unwrap_or_default()),
            index.unwrap_or_default(),
            text("/status/policySnapshotIndexUsed").unwrap_or_default(),
            condition(&object, "Initialized").0,
            condition(&object, "Succeeded").0,
            age(self.now.seconds_since(created)),
        ];
        Item { name: name.to_string(), row, object }
    }

    /// The status documents of the kind shown.
    fn status_documents(&self) -> Vec<Value> {
        self.status.values().cloned().collect()
    }

    fn approval_requests(&self) -> Vec<Item> {
        self.status_documents()
            .into_iter()
            .map(|object| {
                let name = key_of(&object);
                let created = object
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .and_then(crate::time::Time::parse)
                    .unwrap_or(self.state.tip_time);
                let spec =
                    |f: &str| object.pointer(f).and_then(Value::as_str).unwrap_or_default().to_string();
                let row = vec![
                    crate::repo::model::split_key(&name).1.to_string(),
                    short(&spec("/spec/parentStageRollout")),
                    spec("/spec/targetStage"),
                    condition(&object, "Approved").0,
                    condition(&object, "ApprovalAccepted").0,
                    age(self.now.seconds_since(created)),
                ];
                Item { name, row, object }
            })
            .collect()
    }

    fn snapshots(&self, only: Option<&str>) -> Vec<Item> {
        self.state
            .snapshots
            .all
            .iter()
            .map(|s: &RecordedSnapshot| {
                let mut object = s.to_object();
                if self.full && only.is_none_or(|n| n == short(&s.name())) {
                    object["spec"] = json!({ "selectedResources": self.selected_at(s) });
                }
                let labels = object["metadata"]["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
                    .join(",");
                let created = s.created.unwrap_or(self.state.tip_time);
                let commit: String = s.commit.chars().take(12).collect();
                let short = crate::repo::model::split_key(&s.name()).1.to_string();
                let row = vec![short, "1".into(), age(self.now.seconds_since(created)), labels, commit];
                Item { name: s.name(), row, object }
            })
            .collect()
    }

    /// The resources a snapshot holds, read from its commit.
    fn selected_at(&self, s: &RecordedSnapshot) -> Value {
        let repo = &self.source.repo;
        let Ok(commit) = git2::Oid::from_str(&s.commit).and_then(|o| repo.find_commit(o)) else {
            return json!([]);
        };
        let Ok(tree) = commit.tree() else { return json!([]) };
        let Ok(loaded) = crate::repo::load_tree(repo, &tree, self.state.root.as_deref()) else {
            return json!([]);
        };
        let fleet = loaded.fleet();
        let shown = selected_manifests(&fleet, &s.placement);
        Value::Array(shown.iter().map(|m| crate::cluster::compare::shown_manifest(m)).collect())
    }
}

/// Each Verification task of a run: how it stands, and its measurements.
fn print_verifications(run: &Value) {
    let stages = run.pointer("/status/stagesStatus").and_then(Value::as_array).cloned().unwrap_or_default();
    for stage in &stages {
        let name = stage["stageName"].as_str().unwrap_or_default();
        for list in ["beforeStageTaskStatus", "afterStageTaskStatus"] {
            let field = if list == "beforeStageTaskStatus" { "beforeStageTasks" } else { "afterStageTasks" };
            for (t, task) in stage[list].as_array().into_iter().flatten().enumerate() {
                if task["type"] != "Verification" {
                    continue;
                }
                let measurements = task["measurements"].as_array().cloned().unwrap_or_default();
                let verified = task["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Verified"))
                    .map(|c| c["message"].as_str().unwrap_or_default().to_string());
                let state = match verified {
                    Some(message) => message,
                    None if measurements.is_empty() => "not started".into(),
                    None => format!("measuring ({} measurement(s) so far)", measurements.len()),
                };
                println!();
                println!("stage {name}: {field}[{t}] Verification: {state}");
                let rows: Vec<Vec<String>> = measurements
                    .iter()
                    .map(|m| {
                        let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
                        let value = if m.get("value").is_some() { text("value") } else { "-".into() };
                        let cluster = if m.get("cluster").is_some() { text("cluster") } else { "-".into() };
                        vec![text("time"), cluster, text("phase"), value, text("message")]
                    })
                    .collect();
                if !rows.is_empty() {
                    print_table(&["TIME", "CLUSTER", "PHASE", "VALUE", "MESSAGE"], &rows);
                }
            }
        }
    }
}

/// A rolled-back run: where each cluster went back to.
fn print_rollback(run: &Value) {
    let stages = run.pointer("/status/stagesStatus").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for stage in &stages {
        for c in stage["clusters"].as_array().into_iter().flatten() {
            let Some(back) =
                c["conditions"].as_array().and_then(|cs| cs.iter().find(|x| x["type"] == "RolledBack"))
            else {
                continue;
            };
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            rows.push(vec![
                text(&c["clusterName"]),
                text(&stage["stageName"]),
                text(&c["previousResourceSnapshotIndex"]),
                text(&back["status"]),
                text(&back["message"]),
            ]);
        }
    }
    if !rows.is_empty() {
        println!();
        println!("Rollback:");
        print_table(&["CLUSTER", "STAGE", "BACK-TO-SNAPSHOT", "ROLLED-BACK", "MESSAGE"], &rows);
    }
}

/// What a run's stages wait for, one line each: the soak (TimedWait) and until
/// when, an approval, or a rollout window.
fn waiting_for(run: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let ended = run
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Succeeded"));
    if ended {
        return out;
    }
    let stages = run.pointer("/status/stagesStatus").and_then(Value::as_array).cloned().unwrap_or_default();
    for stage in &stages {
        let succeeded = stage["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Succeeded" && c["status"] == "True"));
        if succeeded || stage.get("startTime").is_none() {
            continue;
        }
        let name = stage["stageName"].as_str().unwrap_or_default();
        for task in stage["afterStageTaskStatus"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(stage["beforeStageTaskStatus"].as_array().into_iter().flatten())
        {
            let done = task["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    (c["type"] == "WaitTimeElapsed"
                        || c["type"] == "ApprovalRequestApproved"
                        || c["type"] == "Verified")
                        && c["status"] == "True"
                })
            });
            if done {
                continue;
            }
            match (task["type"].as_str(), task["waitUntil"].as_str(), task["approvalRequestName"].as_str()) {
                (Some("TimedWait"), Some(until), _) => {
                    out.push(format!("stage {name}: soak (TimedWait) until {until}"))
                }
                (Some("Approval"), _, Some(request)) => {
                    let created = task["conditions"].as_array().is_some_and(|cs| !cs.is_empty());
                    if created {
                        out.push(format!("stage {name}: waiting for approval {request}"));
                    }
                }
                (Some("Verification"), _, _) => {
                    let taken = task["measurements"].as_array().map_or(0, Vec::len);
                    if taken > 0 {
                        out.push(format!("stage {name}: verifying ({taken} measurement(s) so far)"));
                    }
                }
                _ => {}
            }
        }
    }
    let progressing = run.pointer("/status/conditions").and_then(Value::as_array).and_then(|cs| {
        cs.iter().find(|c| c["type"] == "Progressing" && c["reason"] == "UpdateRunWaiting").cloned()
    });
    if let Some(c) = progressing {
        let message = c["message"].as_str().unwrap_or_default();
        if message.contains("rollout window") {
            out.push(message.to_string());
        }
    }
    out
}
