//! `status/clusterapprovalrequests/<name>.yaml`: a gate waiting for a person,
//! and, once an approval was accepted, who approved it with which commit.

use std::collections::BTreeMap;

use git2::Oid;
use serde::{Deserialize, Serialize};

use super::conditions::{Condition, Conditions, kind, reason};
use crate::time::Time;

/// Annotation naming the tip of the tracked branch when the request was made:
/// an approval counts only if the commit that brought it came later.
pub const REQUESTED_AT: &str = "gitfleet.dev/requested-at-commit";
/// Annotation naming who approved (the e-mail gitfleet accepted).
pub const APPROVED_BY: &str = "gitfleet.dev/approved-by";
/// Annotation naming the commit that brought the approval.
pub const APPROVAL_COMMIT: &str = "gitfleet.dev/approval-commit";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestMetadata {
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub creation_timestamp: Time,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestSpec {
    pub parent_stage_rollout: String,
    pub target_stage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A ClusterApprovalRequest document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApprovalRequest {
    pub api_version: String,
    pub kind: String,
    pub metadata: RequestMetadata,
    pub spec: RequestSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
}

impl ApprovalRequest {
    /// A new request for a run's stage, made while the branch was at `tip`.
    pub fn new(name: &str, run: &str, stage: &str, now: Time, tip: Oid) -> ApprovalRequest {
        let labels = [
            ("kubernetes-fleet.io/targetupdaterun", run),
            ("kubernetes-fleet.io/targetUpdatingStage", stage),
            ("kubernetes-fleet.io/isLatestUpdateRunApproval", "true"),
        ];
        ApprovalRequest {
            api_version: super::API_VERSION.into(),
            kind: "ClusterApprovalRequest".into(),
            metadata: RequestMetadata {
                annotations: BTreeMap::from([(REQUESTED_AT.to_string(), tip.to_string())]),
                creation_timestamp: now,
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                name: name.into(),
            },
            spec: RequestSpec { parent_stage_rollout: run.into(), target_stage: stage.into() },
            status: None,
        }
    }

    /// Whether the request records an accepted approval (final).
    pub fn is_accepted(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.conditions.is_true(kind::APPROVAL_ACCEPTED))
    }

    /// The tip of the branch when the request was made, if recorded.
    pub fn requested_at(&self) -> Option<Oid> {
        self.metadata.annotations.get(REQUESTED_AT).and_then(|s| Oid::from_str(s).ok())
    }

    /// Records why an approval was not accepted (until one is).
    pub fn refuse(&mut self, why: &str, now: Time) {
        let status = self.status.get_or_insert_with(RequestStatus::default);
        let message = format!("approval not accepted: {why}");
        status.conditions.set_condition(
            kind::APPROVED,
            false,
            reason::APPROVAL_NOT_ACCEPTED,
            &message,
            now,
            1,
        );
    }

    /// Records an accepted approval: final from now on.
    pub fn accept(&mut self, approval: &Accepted<'_>, now: Time) {
        let status = self.status.get_or_insert_with(RequestStatus::default);
        let conds = &mut status.conditions;
        conds.set_condition(kind::APPROVED, true, approval.reason, approval.message, now, 1);
        let msg = "The approval request has been approved and cannot be reverted";
        conds.set_condition(kind::APPROVAL_ACCEPTED, true, reason::APPROVAL_ACCEPTED, msg, now, 1);
        let annotations = &mut self.metadata.annotations;
        annotations.insert(APPROVED_BY.into(), approval.by.into());
        annotations.insert(APPROVAL_COMMIT.into(), approval.commit.to_string());
    }
}

/// An approval gitfleet accepted: the approval file's reason and message, who
/// approved and the commit that brought it.
#[derive(Debug, Clone)]
pub struct Accepted<'a> {
    pub reason: &'a str,
    pub message: &'a str,
    pub by: &'a str,
    pub commit: Oid,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIP: &str = "1111111111111111111111111111111111111111";
    const APPROVAL: &str = "2222222222222222222222222222222222222222";

    fn request() -> ApprovalRequest {
        let tip = Oid::from_str(TIP).unwrap();
        ApprovalRequest::new(
            "example-run-canary",
            "example-run",
            "canary",
            Time::from_second(1_753_219_688),
            tip,
        )
    }

    #[test]
    fn a_new_request_waits() {
        let r = request();
        assert!(!r.is_accepted());
        assert_eq!(r.requested_at(), Some(Oid::from_str(TIP).unwrap()));
        insta::assert_snapshot!(crate::yaml::to_string(&r));
    }

    #[test]
    fn an_accepted_request_names_who_and_which_commit() {
        let mut r = request();
        let by = Accepted {
            reason: "testPassed",
            message: "lgtm",
            by: "lead@example.com",
            commit: Oid::from_str(APPROVAL).unwrap(),
        };
        r.accept(&by, Time::from_second(1_753_219_750));
        assert!(r.is_accepted());
        insta::assert_snapshot!(crate::yaml::to_string(&r));
        let back: ApprovalRequest = crate::yaml::parse_typed(crate::yaml::to_string(&r).as_bytes()).unwrap();
        assert_eq!(back, r, "reads back what it wrote");
    }
}

#[cfg(test)]
mod lenient {
    use super::*;

    /// A request whose file lost fields can still be approved (the run would
    /// otherwise wait for ever: it never asks twice).
    #[test]
    fn a_request_missing_fields_still_reads_and_accepts() {
        let text = "spec:\n  parentStageRollout: example-run\n  targetStage: canary\n";
        let mut r: ApprovalRequest = crate::yaml::parse_typed(text.as_bytes()).unwrap();
        assert!(!r.is_accepted());
        assert_eq!(r.requested_at(), None);
        let commit = Oid::from_str("3333333333333333333333333333333333333333").unwrap();
        r.accept(
            &Accepted { reason: "ok", message: "ok", by: "lead@example.com", commit },
            Time::from_second(0),
        );
        assert!(r.is_accepted());
    }
}
