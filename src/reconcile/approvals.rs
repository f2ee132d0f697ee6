//! Approvals: a person's `approvals/<name>.yaml` on the tracked branch approves a
//! pending ClusterApprovalRequest, only if it was brought onto the branch after the
//! request existed, by an allowed approver.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{Oid, Repository};

use crate::repo::{SETTINGS_FILE, Settings};
use crate::state::FleetState;
use crate::status::approval::{Accepted, ApprovalRequest};
use crate::status::sign::Signers;
use crate::status::{Documents, REQUESTS};
use crate::time::Time;

/// Where a path's current content came from on the first-parent chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Introduced {
    pub commit: Oid,
    /// Commits between it and the tip (0: the tip itself).
    pub depth: usize,
}

/// For each path present at `tip`, the oldest first-parent commit from which it
/// has had its current content without interruption.
pub fn introduced(
    repo: &Repository,
    tip: Oid,
    paths: &[String],
) -> Result<BTreeMap<String, Introduced>, git2::Error> {
    let blob_at = |c: &git2::Commit<'_>, p: &str| -> Option<Oid> {
        c.tree().ok()?.get_path(Path::new(p)).ok().map(|e| e.id())
    };
    let tip_commit = repo.find_commit(tip)?;
    let mut wanted: BTreeMap<&str, Oid> =
        paths.iter().filter_map(|p| blob_at(&tip_commit, p).map(|b| (p.as_str(), b))).collect();
    let mut out = BTreeMap::new();
    let mut current = tip_commit;
    let mut depth = 0;
    while !wanted.is_empty() {
        let parent = if current.parent_count() > 0 { Some(current.parent(0)?) } else { None };
        wanted.retain(|path, blob| {
            let same = parent.as_ref().is_some_and(|p| blob_at(p, path) == Some(*blob));
            if !same {
                out.insert(path.to_string(), Introduced { commit: current.id(), depth });
            }
            same
        });
        match parent {
            Some(p) => current = p,
            None => break,
        }
        depth += 1;
    }
    Ok(out)
}

/// Accepts the approvals in `approvals/` for pending requests: brought onto
/// the branch after the request existed, by an allowed approver (a signer in
/// `signers` when given). Returns a note per accepted approval; a refused one
/// is logged and its reason recorded on the request.
pub fn accept_pending(
    repo: &Repository,
    fs: &FleetState,
    signers: Option<&Signers>,
    requests: &mut Documents<ApprovalRequest>,
    owned: &dyn Fn(&str, &Documents<ApprovalRequest>) -> bool,
    now: Time,
) -> Result<Vec<String>, git2::Error> {
    let pending: Vec<&str> = fs
        .fleet
        .approvals
        .keys()
        .filter(|n| requests.now.get(*n).is_some_and(|d| !d.is_accepted()) && owned(n, requests))
        .map(String::as_str)
        .collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let prefix = fs.root.as_deref().map(|r| format!("{r}/")).unwrap_or_default();
    // Per pending request: the approval file's path and the request's, in the tree.
    let paths: Vec<(String, String)> = pending
        .iter()
        .map(|name| {
            let approval = format!("{prefix}{}", fs.fleet.approvals[*name].origin.path);
            (approval, format!("{}/{}.yaml", fs.status_root, crate::status::scoped::path(REQUESTS, name)))
        })
        .collect();
    let all: Vec<String> = paths.iter().flat_map(|(a, r)| [a.clone(), r.clone()]).collect();
    let found = introduced(repo, fs.tip, &all)?;
    let mut notes = Vec::new();
    for (name, (approval_path, request_path)) in pending.iter().zip(&paths) {
        let approval = &fs.fleet.approvals[*name];
        let (Some(brought), Some(request)) = (found.get(approval_path), requests.get_mut(name)) else {
            continue;
        };
        if !approval.approved {
            continue;
        }
        let judged =
            Judged { repo, fs, signers, brought: *brought, request_introduced: found.get(request_path) };
        match judged.approver(request)? {
            Ok(by) => {
                let accepted = Accepted {
                    reason: &approval.reason,
                    message: &approval.message,
                    by: &by,
                    commit: brought.commit,
                };
                request.accept(&accepted, now);
                notes.push(format!("{name} approved by {by}"));
            }
            Err(why) => {
                tracing::warn!(approval = %name, commit = %brought.commit, "approval ignored: {why}");
                request.refuse(&format!("{approval_path}: {why}"), now);
            }
        }
    }
    Ok(notes)
}

/// What an approval is judged by.
struct Judged<'a> {
    repo: &'a Repository,
    fs: &'a FleetState,
    signers: Option<&'a Signers>,
    /// The first-parent commit that brought the approval onto the branch.
    brought: Introduced,
    request_introduced: Option<&'a Introduced>,
}

impl Judged<'_> {
    /// Who approved, or why the approval does not count:
    /// - the commit that brought it came after the request: the request's
    ///   commit is among its ancestors (no pre-written approval, and no merge
    ///   of the request's history into a branch that held the approval before);
    /// - with allowed signers, that commit is signed by one of them, who is the
    ///   approver; without, its committer is (the author alone proves nothing);
    /// - the approver is in `approvers` of `gitfleet.yaml` as it was when the
    ///   request was made (a commit cannot make itself an approver); a
    ///   `gitfleet.yaml` that did not parse then accepts no approval.
    fn approver(&self, request: &ApprovalRequest) -> Result<Result<String, String>, git2::Error> {
        let Some(requested) = request.requested_at().or(self.request_introduced.map(|r| r.commit)) else {
            return Ok(Err("the request's commit is unknown".into()));
        };
        let commit = self.brought.commit;
        if commit == requested || !self.repo.graph_descendant_of(commit, requested).unwrap_or(false) {
            return Ok(Err("the commit that brought it does not come after the request".into()));
        }
        let settings = match settings_at(self.repo, self.fs, requested) {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };
        let approver = match self.signers {
            Some(signers) => match signers.principal(self.repo, commit) {
                Ok(principal) => principal,
                Err(refusal) => return Ok(Err(refusal.to_string())),
            },
            None => self.repo.find_commit(commit)?.committer().email().unwrap_or_default().to_string(),
        };
        if !settings.may_approve(&approver) {
            let who = if self.signers.is_some() { "signer" } else { "committer" };
            return Ok(Err(format!("{who} {approver} is not an approver")));
        }
        Ok(Ok(approver))
    }
}

/// `gitfleet.yaml` as it was at `commit`, or why it cannot say who approves.
fn settings_at(repo: &Repository, fs: &FleetState, commit: Oid) -> Result<Settings, String> {
    let path = match fs.root.as_deref() {
        Some(root) => format!("{}/{SETTINGS_FILE}", root.trim_matches('/')),
        None => SETTINGS_FILE.to_string(),
    };
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| format!("cannot read the request's commit {commit}: {e}"))?;
    let bytes = match tree.get_path(Path::new(&path)) {
        Ok(entry) => repo.find_blob(entry.id()).map(|b| b.content().to_vec()).map_err(|e| e.to_string())?,
        Err(_) => return Ok(Settings::default()),
    };
    Settings::parse(&bytes).map_err(|e| {
        format!("{path} at the request's commit does not parse, so no approval is accepted: {e}")
    })
}

/// The names of every request with an accepted approval.
pub fn accepted(requests: &Documents<ApprovalRequest>) -> BTreeSet<String> {
    requests.now.iter().filter(|(_, d)| d.is_accepted()).map(|(n, _)| n.clone()).collect()
}

/// The accepted approvals that belong to one run (request names could collide).
pub fn approved_for(
    requests: &Documents<ApprovalRequest>,
    approved: &BTreeSet<String>,
    run: &str,
) -> BTreeSet<String> {
    approved
        .iter()
        .filter(|n| requests.now.get(*n).is_some_and(|d| d.spec.parent_stage_rollout == run))
        .cloned()
        .collect()
}
