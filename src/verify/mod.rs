//! Verification tasks (a gitfleet extension of the stage tasks): measure a
//! stage against real metrics, `count` times every `interval`, and pass, fail
//! or roll the run back. What is pure lives here (the task, its variables, how
//! one measurement is judged and how a series ends); [`probe`] asks the
//! providers over HTTP.

pub mod condition;
pub mod jsonpath;
pub mod probe;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::repo::model::MemberCluster;
use condition::SuccessCondition;
use jsonpath::JsonPath;

/// What to do when a verification fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The run stops there (`UpdateRunFailed`).
    Fail,
    /// Every cluster the run updated goes back to the snapshot it held before
    /// the run (`UpdateRunRolledBack`).
    Rollback,
}

/// Where measurements come from; strings may hold variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    /// An instant query against `--prometheus-url`.
    Prometheus { query: String },
    /// An HTTP GET whose JSON answer holds the number at `json_path`.
    Web { url: String, json_path: JsonPath, headers: BTreeMap<String, String> },
}

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Prometheus { .. } => "prometheus",
            Provider::Web { .. } => "web",
        }
    }
}

/// A Verification task as the strategy gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub provider: Provider,
    pub success: SuccessCondition,
    pub interval: Duration,
    pub count: u32,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub per_cluster: bool,
    pub on_failure: OnFailure,
}

/// Values a template may use.
pub struct Vars<'a> {
    pub cluster: Option<&'a MemberCluster>,
    pub stage: &'a str,
    pub run: &'a str,
}

const CLUSTER_NAME: &str = "MEMBER-CLUSTER-NAME";
const CLUSTER_LABEL: &str = "MEMBER-CLUSTER-LABEL-KEY-";

/// The variables (`${NAME}`) a template uses, in order.
fn variables(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            return Err(format!("`${{` without a closing `}}` in {template:?}"));
        };
        out.push(&rest[start + 2..start + end]);
        rest = &rest[start + end + 1..];
    }
    Ok(out)
}

/// Checks a template's variables: known ones only, and the cluster's only
/// when the task measures each cluster.
pub fn check_template(template: &str, per_cluster: bool) -> Result<(), String> {
    for name in variables(template)? {
        let of_cluster = name == CLUSTER_NAME || name.starts_with(CLUSTER_LABEL);
        if !(of_cluster || name == "STAGE" || name == "RUN") {
            return Err(format!(
                "unknown variable ${{{name}}} (known: ${{{CLUSTER_NAME}}}, ${{{CLUSTER_LABEL}<key>}}, ${{STAGE}}, ${{RUN}})"
            ));
        }
        if let Some(key) = name.strip_prefix(CLUSTER_LABEL)
            && key.is_empty()
        {
            return Err(format!("${{{name}}} names no label key"));
        }
        if of_cluster && !per_cluster {
            return Err(format!("${{{name}}} needs perCluster: true (one measurement per cluster)"));
        }
    }
    Ok(())
}

/// Fills a template's variables in (a checked template: unknown ones stay).
pub fn expand(template: &str, vars: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + end];
        let value = match (name, vars.cluster) {
            ("STAGE", _) => Some(vars.stage.to_string()),
            ("RUN", _) => Some(vars.run.to_string()),
            (CLUSTER_NAME, Some(c)) => Some(c.name.clone()),
            (n, Some(c)) if n.starts_with(CLUSTER_LABEL) => {
                Some(c.labels.get(&n[CLUSTER_LABEL.len()..]).cloned().unwrap_or_default())
            }
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + end + 1]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A provider with its variables filled in: what one measurement asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Prometheus { query: String },
    Web { url: String, json_path: JsonPath, headers: BTreeMap<String, String> },
}

impl Provider {
    pub fn resolve(&self, vars: &Vars<'_>) -> Query {
        match self {
            Provider::Prometheus { query } => Query::Prometheus { query: expand(query, vars) },
            Provider::Web { url, json_path, headers } => Query::Web {
                url: expand(url, vars),
                json_path: json_path.clone(),
                headers: headers.iter().map(|(k, v)| (k.clone(), expand(v, vars))).collect(),
            },
        }
    }
}

/// What a provider answered: the samples, or why there are none.
pub type Sampled = Result<Vec<f64>, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Successful,
    Failed,
    Inconclusive,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Successful => "Successful",
            Phase::Failed => "Failed",
            Phase::Inconclusive => "Inconclusive",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [Phase::Successful, Phase::Failed, Phase::Inconclusive].into_iter().find(|p| p.as_str() == s)
    }
}

/// One measurement judged: its phase, its value as written in the status,
/// and why it is inconclusive.
pub struct Judged {
    pub phase: Phase,
    pub value: Option<String>,
    pub message: Option<String>,
}

/// Formats samples as the status shows them: `0.02`, or `[0.01, 0.3]`.
fn format_values(values: &[f64]) -> String {
    match values {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Judges one measurement: every sample must satisfy the condition; no
/// samples, an error or NaN (a ratio over no traffic) is inconclusive.
pub fn judge(v: &Verification, sampled: &Sampled) -> Judged {
    match sampled {
        Err(e) => Judged { phase: Phase::Inconclusive, value: None, message: Some(e.clone()) },
        Ok(values) if values.is_empty() => Judged {
            phase: Phase::Inconclusive,
            value: None,
            message: Some("the query returned no data".into()),
        },
        Ok(values) if values.iter().any(|x| x.is_nan()) => Judged {
            phase: Phase::Inconclusive,
            value: Some(format_values(values)),
            message: Some("the result is NaN".into()),
        },
        Ok(values) => {
            let ok = values.iter().all(|x| v.success.holds(*x));
            Judged {
                phase: if ok { Phase::Successful } else { Phase::Failed },
                value: Some(format_values(values)),
                message: None,
            }
        }
    }
}

/// Where a series of measurements stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// More measurements are needed.
    Measuring,
    /// `count` measurements, failures within the limits.
    Passed,
    /// A limit was exceeded; the reason names it.
    Failed(String),
}

/// The verdict on a series from its measurements' phases, in order.
pub fn verdict(v: &Verification, phases: &[Phase]) -> Verdict {
    let failed = phases.iter().filter(|p| **p == Phase::Failed).count() as u32;
    let inconclusive = phases.iter().filter(|p| **p == Phase::Inconclusive).count() as u32;
    if failed > v.failure_limit {
        return Verdict::Failed(format!(
            "{failed} measurement(s) failed `{}`, more than failureLimit {}",
            v.success, v.failure_limit
        ));
    }
    if inconclusive > v.inconclusive_limit {
        return Verdict::Failed(format!(
            "{inconclusive} measurement(s) were inconclusive, more than inconclusiveLimit {}",
            v.inconclusive_limit
        ));
    }
    if phases.len() as u32 >= v.count { Verdict::Passed } else { Verdict::Measuring }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verification(count: u32, failure_limit: u32, inconclusive_limit: u32) -> Verification {
        Verification {
            provider: Provider::Prometheus { query: "up".into() },
            success: SuccessCondition::parse("result < 0.01").unwrap(),
            interval: Duration::from_secs(30),
            count,
            failure_limit,
            inconclusive_limit,
            per_cluster: true,
            on_failure: OnFailure::Fail,
        }
    }

    #[test]
    fn variables_are_filled_in_and_checked() {
        let c = MemberCluster {
            taints: Vec::new(),
            heartbeat_seconds: 60,
            name: "member1".into(),
            labels: BTreeMap::from([("region".to_string(), "eu".to_string())]),
            annotations: BTreeMap::new(),
            origin: crate::repo::model::Origin { path: "clusters/member1.yaml".into(), line: 1 },
        };
        let vars = Vars { cluster: Some(&c), stage: "canary", run: "run-1" };
        let t = "rate{cluster=\"${MEMBER-CLUSTER-NAME}\",region=\"${MEMBER-CLUSTER-LABEL-KEY-region}\",zone=\"${MEMBER-CLUSTER-LABEL-KEY-zone}\"} # ${STAGE} ${RUN}";
        assert_eq!(expand(t, &vars), "rate{cluster=\"member1\",region=\"eu\",zone=\"\"} # canary run-1");
        assert!(check_template(t, true).is_ok());
        let e = check_template(t, false).unwrap_err();
        assert!(e.contains("${MEMBER-CLUSTER-NAME} needs perCluster: true"), "{e}");
        assert!(check_template("${STAGE} {a=\"b\"}", false).is_ok());
        assert!(check_template("${CLUSTER}", true).unwrap_err().contains("unknown variable ${CLUSTER}"));
        assert!(check_template("${MEMBER-CLUSTER-LABEL-KEY-}", true).unwrap_err().contains("no label key"));
        assert!(check_template("x ${STAGE", true).unwrap_err().contains("without a closing"));
    }

    #[test]
    fn one_measurement_is_judged_on_every_sample() {
        let v = verification(3, 0, 0);
        let j = judge(&v, &Ok(vec![0.001, 0.002]));
        assert_eq!((j.phase, j.value.as_deref()), (Phase::Successful, Some("[0.001, 0.002]")));
        let j = judge(&v, &Ok(vec![0.001, 0.2]));
        assert_eq!(j.phase, Phase::Failed);
        assert_eq!(judge(&v, &Ok(vec![])).phase, Phase::Inconclusive);
        assert_eq!(judge(&v, &Ok(vec![f64::NAN])).message.as_deref(), Some("the result is NaN"));
        let j = judge(&v, &Err("connection refused".into()));
        assert_eq!((j.phase, j.message.as_deref()), (Phase::Inconclusive, Some("connection refused")));
    }

    #[test]
    fn a_series_passes_after_count_and_fails_at_the_first_measurement_beyond_a_limit() {
        use Phase::*;
        let v = verification(4, 1, 2);
        assert_eq!(verdict(&v, &[Successful, Failed, Inconclusive]), Verdict::Measuring);
        assert_eq!(verdict(&v, &[Successful, Failed, Inconclusive, Successful]), Verdict::Passed);
        let Verdict::Failed(why) = verdict(&v, &[Failed, Failed]) else { panic!() };
        assert!(why.contains("2 measurement(s) failed `result < 0.01`, more than failureLimit 1"), "{why}");
        let Verdict::Failed(why) = verdict(&v, &[Inconclusive, Inconclusive, Inconclusive]) else { panic!() };
        assert!(why.contains("more than inconclusiveLimit 2"), "{why}");
    }
}
