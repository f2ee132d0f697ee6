//! The read-only dashboard of `run --listen` (path `/`): the fleet grid, the
//! runs stage by stage, the approvals waiting, and the branch's commits, as
//! server-rendered HTML (askama templates, checked at compile time and
//! HTML-escaped) with a stylesheet and a few lines of JavaScript that reload
//! the page when a branch moved. It reads the reconciler's own clone (the
//! status as gitfleet committed it), never writes, and shows no Secret value
//! (status documents hold none).

pub mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::repo::model::split_key;
use crate::snapshot::Indexer;
use crate::state::FleetState;
use crate::status::approval::ApprovalRequest;
use crate::status::placement::PlacementDocument;
use crate::status::run::RunDocument;
use crate::status::{Documents, PLACEMENTS, ParseCache, REQUESTS, RUNS};
use crate::time::Time;
use view::{ApprovalView, CommitView, PlacementRow, RunRow, RunView, State};

const STYLE: &str = include_str!("../../templates/dashboard/style.css");
const REFRESH: &str = include_str!("../../templates/dashboard/refresh.js");
/// Commits shown on the timeline.
const TIMELINE: usize = 50;

/// The dashboard of one reconciler.
pub struct Dashboard {
    /// The reconciler's state folder and clone (`<state-dir>/repo.git`).
    state_dir: PathBuf,
    clone: PathBuf,
    /// gitfleet's signing key: its status commits are known by it too.
    key: Option<ssh_key::PublicKey>,
    /// The repository as commands name it (without credentials).
    repo: String,
    branch: String,
    root: Option<String>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    indexer: Option<Indexer>,
    tips: Vec<(String, git2::Oid)>,
    data: Option<Arc<Data>>,
    placements: ParseCache<PlacementDocument>,
    runs: ParseCache<RunDocument>,
    requests: ParseCache<ApprovalRequest>,
}

/// What the pages show, read once per move of a branch.
struct Data {
    version: String,
    commit: String,
    clusters: Vec<String>,
    placements: Vec<PlacementRow>,
    runs: BTreeMap<String, Arc<RunDocument>>,
    requests: BTreeMap<String, Arc<ApprovalRequest>>,
    commits: Vec<CommitView>,
    /// Status files gitfleet cannot read, and why.
    broken: Vec<String>,
}

/// Why a page cannot be shown (the clone is not there yet, a file gitfleet
/// cannot read): 503 with the reason.
struct Unavailable(String);

impl IntoResponse for Unavailable {
    /// A page that says why and tries again every few seconds.
    fn into_response(self) -> Response {
        let page = Waiting { why: self.0 };
        let html = page.render().unwrap_or_else(|e| format!("gitfleet dashboard: {e}"));
        (StatusCode::SERVICE_UNAVAILABLE, Html(html)).into_response()
    }
}

#[derive(Template)]
#[template(path = "dashboard/unavailable.html")]
struct Waiting {
    why: String,
}

/// A commit's subject line.
fn summary(c: &git2::Commit<'_>) -> String {
    c.summary().ok().flatten().unwrap_or_default().to_string()
}

/// The tips of the branches as fetched from the repository.
fn fetched_tips(repo: &git2::Repository) -> Vec<(String, git2::Oid)> {
    crate::source::branch_tips(repo)
        .into_iter()
        .filter(|(name, _)| name.starts_with("refs/remotes/"))
        .collect()
}

/// A hash of every branch tip: the pages change only when one moves.
fn version_of(tips: &[(String, git2::Oid)]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tips.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl Dashboard {
    pub fn new(
        state_dir: &std::path::Path,
        repo: &str,
        branch: &str,
        root: Option<&str>,
        key: Option<ssh_key::PublicKey>,
    ) -> Dashboard {
        Dashboard {
            state_dir: state_dir.to_path_buf(),
            clone: state_dir.join("repo.git"),
            key,
            repo: crate::source::redacted(repo),
            branch: branch.to_string(),
            root: root.map(str::to_string),
            cache: Mutex::new(Cache::default()),
        }
    }

    fn open(&self) -> Result<git2::Repository, Unavailable> {
        git2::Repository::open_bare(&self.clone)
            .map_err(|e| Unavailable(format!("the state clone is not there yet ({e})")))
    }

    /// The version the pages show now (what `refresh.js` compares).
    fn version(&self) -> Result<String, Unavailable> {
        Ok(version_of(&fetched_tips(&self.open()?)))
    }

    /// What the pages show, read again when a branch moved.
    fn data(&self) -> Result<Arc<Data>, Unavailable> {
        let repo = self.open()?;
        let tips = fetched_tips(&repo);
        // A request that panicked left the cache half-made: start it afresh.
        let mut cache = self.cache.lock().unwrap_or_else(|p| {
            let mut c = p.into_inner();
            *c = Cache::default();
            c
        });
        if let Some(d) = &cache.data
            && cache.tips == tips
        {
            return Ok(d.clone());
        }
        // The branches as fetched (what the reconciler reads), not its own
        // local branch, which moves before a push is known to have landed.
        let fetched = |b: &str| repo.refname_to_id(&format!("refs/remotes/origin/{b}")).ok();
        let tip = fetched(&self.branch)
            .ok_or_else(|| Unavailable(format!("branch {} is not fetched yet", self.branch)))?;
        let mut own = crate::status::trust::OwnCommits::load(&self.state_dir)
            .map_err(|e| Unavailable(format!("state folder: {e}")))?;
        if let Some(k) = &self.key {
            own = own.signed_by(k.clone());
        }
        let cache = &mut *cache;
        let indexer = cache.indexer.get_or_insert_with(|| Indexer::new(self.root.as_deref()));
        let state =
            FleetState::load(&repo, tip, self.root.as_deref(), indexer, |b| Ok(fetched(b)), Some(&own))
                .map_err(|e| Unavailable(e.to_string()))?;
        // Status as gitfleet wrote it (what the reconciler believes), never a forged one.
        let limit = state.status_limit();
        let read_err = |e: git2::Error| Unavailable(e.to_string());
        let (commit, root) = (state.trusted_status(), state.status_root.as_str());
        let placements = Documents::<PlacementDocument>::read(
            &repo,
            commit,
            root,
            PLACEMENTS,
            limit,
            &mut cache.placements,
        )
        .map_err(read_err)?;
        let runs = Documents::<RunDocument>::read(&repo, commit, root, RUNS, limit, &mut cache.runs)
            .map_err(read_err)?;
        let requests =
            Documents::<ApprovalRequest>::read(&repo, commit, root, REQUESTS, limit, &mut cache.requests)
                .map_err(read_err)?;
        let mut broken = Vec::new();
        for (folder, names) in
            [(PLACEMENTS, &placements.broken), (RUNS, &runs.broken), (REQUESTS, &requests.broken)]
        {
            for (name, why) in names {
                broken.push(format!("{root}/{}.yaml: {why}", crate::status::scoped::path(folder, name)));
            }
        }
        let clusters: Vec<String> = state.fleet.clusters.keys().cloned().collect();
        let subject = |id: &str| {
            git2::Oid::from_str(id).and_then(|o| repo.find_commit(o)).map(|c| summary(&c)).unwrap_or_default()
        };
        let rows = state
            .fleet
            .placements
            .values()
            .map(|p| {
                let latest =
                    state.snapshots.all.iter().filter(|s| s.placement == p.name).max_by_key(|s| s.index);
                let by_cluster: std::collections::HashMap<&str, _> = placements
                    .get(&p.name)
                    .map(|d| {
                        d.status.placement_statuses.iter().map(|s| (s.cluster_name.as_str(), s)).collect()
                    })
                    .unwrap_or_default();
                let (ns, name) = split_key(&p.name);
                let under_way = runs.now.values().any(|r| {
                    r.placement_name() == Some(p.name.as_str())
                        && matches!(view::run_state(r).0, State::Updating | State::Waiting)
                });
                // `#index` -> its commit and subject, looked up once per snapshot.
                let commits: BTreeMap<String, String> = state
                    .snapshots
                    .all
                    .iter()
                    .filter(|s| s.placement == p.name)
                    .map(|s| {
                        let short: String = s.commit.chars().take(10).collect();
                        (format!("#{}", s.index), format!("commit {short}: {}", subject(&s.commit)))
                    })
                    .collect();
                PlacementRow {
                    name: name.to_string(),
                    namespace: ns.unwrap_or_default().to_string(),
                    latest: latest.map(|s| format!("#{}", s.index)).unwrap_or_default(),
                    commit: latest.map(|s| s.commit.chars().take(10).collect()).unwrap_or_default(),
                    subject: latest.map(|s| subject(&s.commit)).unwrap_or_default(),
                    cells: clusters
                        .iter()
                        .map(|c| {
                            let mut cell = view::cell(
                                by_cluster.get(c.as_str()).copied(),
                                latest.map(|s| s.index),
                                under_way,
                            );
                            cell.commit = commits.get(&cell.snapshot).cloned().unwrap_or_default();
                            cell
                        })
                        .collect(),
                }
            })
            .collect();
        let mut commits = Vec::new();
        if let Ok(mut walk) = repo.revwalk() {
            walk.simplify_first_parent().ok();
            walk.push(tip).ok();
            for id in walk.flatten().take(TIMELINE) {
                let Ok(c) = repo.find_commit(id) else { continue };
                let author = c.author();
                let email = author.email().unwrap_or_default().to_string();
                commits.push(CommitView {
                    id: id.to_string().chars().take(10).collect(),
                    time: Time::from_second(c.time().seconds()).to_string(),
                    author: format!("{} <{email}>", author.name().unwrap_or_default()),
                    subject: summary(&c),
                    by_gitfleet: own.made(&repo, id),
                });
            }
        }
        let data = Arc::new(Data {
            version: version_of(&tips),
            commit: tip.to_string().chars().take(10).collect(),
            clusters,
            placements: rows,
            runs: runs.now.clone(),
            requests: requests.now.clone(),
            commits,
            broken,
        });
        cache.tips = tips;
        cache.data = Some(data.clone());
        Ok(data)
    }

    fn page<T: Template>(&self, page: T) -> Response {
        match page.render() {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                (StatusCode::INTERNAL_SERVER_ERROR, format!("gitfleet dashboard: {e}\n")).into_response()
            }
        }
    }

    fn base(&self, data: &Data, title: &str, section: &'static str) -> Base {
        Base {
            title: title.to_string(),
            section,
            version: data.version.clone(),
            commit: data.commit.clone(),
            repo: self.repo.clone(),
            now: Time::now().to_string(),
        }
    }

    fn fleet(&self) -> Result<Response, Unavailable> {
        let data = self.data()?;
        let page = FleetPage {
            base: self.base(&data, "Fleet", "fleet"),
            clusters: data.clusters.clone(),
            placements: data.placements.clone(),
            legend: LEGEND.to_vec(),
            broken: data.broken.clone(),
        };
        Ok(self.page(page))
    }

    fn runs(&self) -> Result<Response, Unavailable> {
        let data = self.data()?;
        let runs: Vec<RunRow> = data.runs.iter().map(|(k, d)| view::run_row(k, d)).collect();
        Ok(self.page(RunsPage { base: self.base(&data, "Runs", "runs"), runs, broken: data.broken.clone() }))
    }

    fn run(&self, key: &str) -> Result<Response, Unavailable> {
        let data = self.data()?;
        let Some(doc) = data.runs.get(key) else {
            let unreadable = data.broken.iter().find(|b| b.contains(&format!("/{key}.yaml: "))).cloned();
            if let Some(why) = unreadable {
                return Err(Unavailable(format!("gitfleet cannot read the status of run {key}: {why}")));
            }
            let page = NotFound { base: self.base(&data, "Not found", "runs"), what: format!("run {key}") };
            let mut response = self.page(page);
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        };
        let run = view::run_view(key, doc, &self.repo, Time::now());
        Ok(self.page(RunPage { base: self.base(&data, &format!("Run {}", run.row.name), "runs"), run }))
    }

    fn approvals(&self) -> Result<Response, Unavailable> {
        let data = self.data()?;
        let approvals = view::waiting_approvals(&data.requests, &self.repo);
        Ok(self.page(ApprovalsPage { base: self.base(&data, "Approvals", "approvals"), approvals }))
    }

    fn timeline(&self) -> Result<Response, Unavailable> {
        let data = self.data()?;
        Ok(self.page(TimelinePage {
            base: self.base(&data, "Timeline", "timeline"),
            commits: data.commits.clone(),
        }))
    }
}

/// The states the fleet grid uses, for its legend.
const LEGEND: [State; 8] = [
    State::UpToDate,
    State::Updating,
    State::Behind,
    State::Failed,
    State::Drifted,
    State::Unreachable,
    State::Pending,
    State::NotPlaced,
];

/// What every page has.
struct Base {
    title: String,
    /// The navigation entry of the page.
    section: &'static str,
    version: String,
    commit: String,
    repo: String,
    now: String,
}

#[derive(Template)]
#[template(path = "dashboard/fleet.html")]
struct FleetPage {
    base: Base,
    clusters: Vec<String>,
    placements: Vec<PlacementRow>,
    legend: Vec<State>,
    broken: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/runs.html")]
struct RunsPage {
    base: Base,
    runs: Vec<RunRow>,
    broken: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/run.html")]
struct RunPage {
    base: Base,
    run: RunView,
}

#[derive(Template)]
#[template(path = "dashboard/approvals.html")]
struct ApprovalsPage {
    base: Base,
    approvals: Vec<ApprovalView>,
}

#[derive(Template)]
#[template(path = "dashboard/timeline.html")]
struct TimelinePage {
    base: Base,
    commits: Vec<CommitView>,
}

#[derive(Template)]
#[template(path = "dashboard/notfound.html")]
struct NotFound {
    base: Base,
    what: String,
}

/// Runs `f` off the server's thread (it reads Git).
async fn blocking(f: impl FnOnce() -> Result<Response, Unavailable> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("gitfleet dashboard: {e}\n")).into_response(),
    }
}

/// The dashboard's routes.
pub fn routes(d: Arc<Dashboard>) -> Router {
    let (d1, d2, d3, d4, d5, d6, d7) = (d.clone(), d.clone(), d.clone(), d.clone(), d.clone(), d.clone(), d);
    Router::new()
        .route("/", get(move || blocking(move || d1.fleet())))
        .route("/runs", get(move || blocking(move || d2.runs())))
        .route("/runs/{name}", get(move |Path(name): Path<String>| blocking(move || d3.run(&name))))
        .route(
            "/runs/{namespace}/{name}",
            get(move |Path((ns, name)): Path<(String, String)>| {
                blocking(move || d4.run(&crate::repo::model::object_key(Some(&ns), &name)))
            }),
        )
        .route("/approvals", get(move || blocking(move || d5.approvals())))
        .route("/timeline", get(move || blocking(move || d6.timeline())))
        .route(
            "/version",
            get(move || {
                blocking(move || {
                    d7.version().map(|v| ([(header::CACHE_CONTROL, "no-store")], v).into_response())
                })
            }),
        )
        .route("/static/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }))
        .route("/static/refresh.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], REFRESH) }))
}
