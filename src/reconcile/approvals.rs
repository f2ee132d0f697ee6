//! Approvals: a person's `approvals/<name>.yaml` on the tracked branch approves a
//! pending ClusterApprovalRequest, only if it was brought onto the branch after the
//! request existed, by an allowed approver.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository};
use serde_json::{Value, json};

use crate::engine::status::{Condition, Conditions};

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

/// A ClusterApprovalRequest status document.
/// Annotation naming the tip of the tracked branch when the request was made:
/// an approval counts only if the commit that brought it came later.
pub const REQUESTED_AT: &str = "gitfleet.dev/requested-at-commit";

pub fn request_document(name: &str, run: &str, stage: &str, now: &str, tip: Oid) -> Value {
    json!({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1",
        "kind": "ClusterApprovalRequest",
        "metadata": {
            "name": name,
            "creationTimestamp": now,
            "annotations": { REQUESTED_AT: tip.to_string() },
            "labels": {
                "kubernetes-fleet.io/targetupdaterun": run,
                "kubernetes-fleet.io/targetUpdatingStage": stage,
                "kubernetes-fleet.io/isLatestUpdateRunApproval": "true",
            },
        },
        "spec": { "parentStageRollout": run, "targetStage": stage },
    })
}

/// Whether a request document records an accepted approval.
pub fn is_accepted(doc: &Value) -> bool {
    conditions(doc).is_true("ApprovalAccepted")
}

fn conditions(doc: &Value) -> Vec<Condition> {
    doc.pointer("/status/conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default()
}

/// Records an accepted approval on a request document: final from now on.
pub fn accept(doc: &mut Value, reason: &str, message: &str, by: &str, commit: Oid, now: &str) {
    let mut conds = conditions(doc);
    conds.set_condition("Approved", true, reason, message, now, 1);
    conds.set_condition(
        "ApprovalAccepted",
        true,
        "ApprovalRequestApprovalAccepted",
        "The approval request has been approved and cannot be reverted",
        now,
        1,
    );
    doc["status"] = json!({ "conditions": conds });
    doc["metadata"]["annotations"]["gitfleet.dev/approved-by"] = json!(by);
    doc["metadata"]["annotations"]["gitfleet.dev/approval-commit"] = json!(commit.to_string());
}
