//! ClusterStagedUpdateStrategy (stages, tasks) and ClusterStagedUpdateRun.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

/// Parses a duration field bounded by 30 days.
pub(super) fn bounded_duration(ctx: &mut Ctx, field: &str, text: &str) -> Option<std::time::Duration> {
    match duration::parse(text) {
        Ok(d) if d.is_zero() => {
            ctx.error(format!("{field}: must be greater than 0"));
            None
        }
        Ok(d) if d > MAX_WAIT => {
            ctx.error(format!("{field}: {text} is longer than 30 days (720h)"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(format!("{field}: {e}"));
            None
        }
    }
}

pub(super) fn read_tasks(
    ctx: &mut Ctx,
    field: &str,
    tasks: &[wire::StageTask],
    before: bool,
) -> Vec<StageTask> {
    // KubeFleet's limits, plus one Verification.
    let limit = if before { 2 } else { 3 };
    if tasks.len() > limit {
        ctx.error(format!("{field}: at most {limit} task(s) allowed (has {})", tasks.len()));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in tasks.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !seen.insert(t.type_.clone()) {
            ctx.error(format!("{at}: only one {} task is allowed", t.type_));
        }
        if t.type_ != "Verification" {
            if t.verification.is_some() {
                ctx.error(format!("{at}: only a Verification task takes verification"));
            }
            if t.on_failure.is_some() {
                ctx.error(format!("{at}: only a Verification task takes onFailure"));
            }
        }
        match t.type_.as_str() {
            "Approval" => {
                if t.wait_time.is_some() {
                    ctx.error(format!("{at}: an Approval task takes no waitTime"));
                }
                out.push(StageTask::Approval);
            }
            "TimedWait" if before => {
                ctx.error(format!("{at}: beforeStageTasks may only be Approval or Verification"));
            }
            "TimedWait" => match &t.wait_time {
                None => ctx.error(format!("{at}: a TimedWait task needs waitTime")),
                Some(w) => {
                    if let Some(d) = bounded_duration(ctx, &format!("{at}.waitTime"), w) {
                        out.push(StageTask::TimedWait(d));
                    }
                }
            },
            "Verification" => {
                if t.wait_time.is_some() {
                    ctx.error(format!("{at}: a Verification task takes no waitTime"));
                }
                match &t.verification {
                    None => ctx.error(format!("{at}: a Verification task needs verification")),
                    Some(v) => {
                        if let Some(v) = read_verification(ctx, &at, v, t.on_failure.as_deref()) {
                            out.push(StageTask::Verification(Box::new(v)));
                        }
                    }
                }
            }
            other => ctx.error(format!("{at}.type: {other:?} is not Approval, TimedWait or Verification")),
        }
    }
    out
}

/// The most measurements one task may take.
const MAX_COUNT: i64 = 1000;

fn read_verification(
    ctx: &mut Ctx,
    at: &str,
    v: &wire::Verification,
    on_failure: Option<&str>,
) -> Option<crate::verify::Verification> {
    use crate::verify::{
        OnFailure, Provider, check_template, condition::SuccessCondition, jsonpath::JsonPath,
    };
    let errors = ctx.error_count();
    let on_failure = match on_failure {
        None | Some("Fail") => OnFailure::Fail,
        Some("Rollback") => OnFailure::Rollback,
        Some(other) => {
            ctx.error(format!("{at}.onFailure: {other:?} is not Fail or Rollback"));
            OnFailure::Fail
        }
    };
    let per_cluster = v.per_cluster.unwrap_or(false);
    let at = format!("{at}.verification");
    let template = |ctx: &mut Ctx, field: &str, text: &str| {
        if let Err(e) = check_template(text, per_cluster) {
            ctx.error(format!("{at}.{field}: {e}"));
        }
    };
    let provider = match (&v.provider.prometheus, &v.provider.web) {
        (Some(p), None) => {
            if p.query.trim().is_empty() {
                ctx.error(format!("{at}.provider.prometheus.query is required"));
            }
            template(ctx, "provider.prometheus.query", &p.query);
            Some(Provider::Prometheus { query: p.query.clone() })
        }
        (None, Some(w)) => {
            template(ctx, "provider.web.url", &w.url);
            let scheme_ok = w.url.starts_with("http://") || w.url.starts_with("https://");
            if !scheme_ok {
                ctx.error(format!("{at}.provider.web.url: {:?} is not an http:// or https:// URL", w.url));
            } else if w
                .url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|a| a.contains('@'))
            {
                // The repository is readable by everyone who can push: credentials go in headers given to run.
                ctx.error(format!("{at}.provider.web.url: user and password in the URL are not allowed"));
            }
            let mut headers = std::collections::BTreeMap::new();
            for (j, h) in w.headers.iter().enumerate() {
                if hyper::header::HeaderName::from_bytes(h.key.as_bytes()).is_err() {
                    ctx.error(format!(
                        "{at}.provider.web.headers[{j}].key: {:?} is not a header name",
                        h.key
                    ));
                }
                template(ctx, &format!("provider.web.headers[{j}].value"), &h.value);
                headers.insert(h.key.clone(), h.value.clone());
            }
            match w.json_path.as_deref().map(JsonPath::parse) {
                None => {
                    ctx.error(format!("{at}.provider.web.jsonPath is required (e.g. {{$.errorRate}})"));
                    None
                }
                Some(Err(e)) => {
                    ctx.error(format!("{at}.provider.web.jsonPath: {e}"));
                    None
                }
                Some(Ok(json_path)) => Some(Provider::Web { url: w.url.clone(), json_path, headers }),
            }
        }
        _ => {
            ctx.error(format!("{at}.provider: exactly one of prometheus or web is required"));
            None
        }
    };
    let success = match v.success_condition.as_deref().map(SuccessCondition::parse) {
        None => {
            ctx.error(format!("{at}.successCondition is required (e.g. result < 0.01)"));
            None
        }
        Some(Err(e)) => {
            ctx.error(format!("{at}.successCondition: {e}"));
            None
        }
        Some(Ok(c)) => Some(c),
    };
    let limit = |ctx: &mut Ctx, field: &str, value: Option<i64>, default: i64, range: (i64, i64)| {
        let n = value.unwrap_or(default);
        if n < range.0 || n > range.1 {
            ctx.error(format!("{at}.{field}: {n} is out of range ({} to {})", range.0, range.1));
        }
        n.clamp(0, MAX_COUNT) as u32
    };
    let count = limit(ctx, "count", v.count, 1, (1, MAX_COUNT));
    // The limits are checked against a valid count only.
    let top = if count >= 1 { i64::from(count) - 1 } else { MAX_COUNT };
    let failure_limit = limit(ctx, "failureLimit", v.failure_limit, 0, (0, top));
    let inconclusive_limit = limit(ctx, "inconclusiveLimit", v.inconclusive_limit, 0, (0, top));
    let interval = match v.interval.as_deref() {
        Some(text) => bounded_duration(ctx, &format!("{at}.interval"), text).filter(|d| {
            // Measurement times are whole seconds.
            let whole = d.subsec_nanos() == 0;
            if !whole {
                ctx.error(format!("{at}.interval: {text} is not a whole number of seconds (at least 1s)"));
            }
            whole
        }),
        None if count > 1 => {
            ctx.error(format!("{at}.interval is required when count is more than 1"));
            None
        }
        None => Some(std::time::Duration::from_secs(30)),
    };
    if ctx.error_count() > errors {
        return None;
    }
    Some(crate::verify::Verification {
        provider: provider?,
        success: success?,
        interval: interval?,
        count,
        failure_limit,
        inconclusive_limit,
        per_cluster,
        on_failure,
    })
}

pub(super) fn read_stage(ctx: &mut Ctx, i: usize, s: &wire::Stage, last: bool) -> Stage {
    let at = format!("spec.stages[{i}]");
    let valid_name = !s.name.is_empty()
        && s.name.len() <= 63
        && s.name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid_name {
        ctx.error(format!("{at}.name: {:?} must match ^[a-z0-9]+$ and have 1 to 63 characters", s.name));
    }
    match &s.label_selector {
        Some(sel) => ctx.errors(sel.validate(&format!("{at}.labelSelector"))),
        None if !last => {
            ctx.error(format!("{at}.labelSelector is required: only the last stage may omit it (catch-all)"))
        }
        None => {}
    }
    if let Some(key) = &s.sorting_label_key
        && let Err(e) = validate_label_key(key)
    {
        ctx.error(format!("{at}.sortingLabelKey: {key:?} {e}"));
    }
    let max_concurrency = s
        .max_concurrency
        .as_ref()
        .and_then(|v| int_or_percent(ctx, &format!("{at}.maxConcurrency"), v, 1, 1))
        .unwrap_or(IntOrPercent::Count(1));
    let max_failures = s
        .max_failures
        .as_ref()
        .and_then(|v| int_or_percent(ctx, &format!("{at}.maxFailures"), v, 0, 0))
        .unwrap_or(IntOrPercent::Count(0));
    let cluster_timeout = s
        .cluster_timeout
        .as_deref()
        .and_then(|t| bounded_duration(ctx, &format!("{at}.clusterTimeout"), t))
        .unwrap_or(DEFAULT_CLUSTER_TIMEOUT);
    let max_duration =
        s.max_duration.as_deref().and_then(|t| bounded_duration(ctx, &format!("{at}.maxDuration"), t));
    Stage {
        name: s.name.clone(),
        selector: s.label_selector.clone(),
        sorting_label_key: s.sorting_label_key.clone(),
        max_concurrency,
        before_tasks: read_tasks(ctx, &format!("{at}.beforeStageTasks"), &s.before_stage_tasks, true),
        after_tasks: read_tasks(ctx, &format!("{at}.afterStageTasks"), &s.after_stage_tasks, false),
        cluster_timeout,
        max_failures,
        max_duration,
    }
}

pub(super) fn read_strategy(ctx: &mut Ctx, value: &Value, namespaced: bool) -> Option<Strategy> {
    let w: wire::Object<wire::StrategySpec> = ctx.wire(value)?;
    let (_, name) = scoped_key(ctx, &w.metadata, namespaced);
    let n = w.spec.stages.len();
    if !(1..=31).contains(&n) {
        ctx.error(format!("spec.stages must have 1 to 31 entries (has {n})"));
    }
    let mut names = BTreeSet::new();
    let mut stages = Vec::new();
    for (i, s) in w.spec.stages.iter().enumerate() {
        if !s.name.is_empty() && !names.insert(s.name.clone()) {
            ctx.error(format!("spec.stages[{i}].name: stage {} appears twice", s.name));
        }
        stages.push(read_stage(ctx, i, s, i + 1 == n));
    }
    Some(Strategy {
        name,
        stages,
        spec: value.get("spec").cloned().unwrap_or(Value::Null),
        origin: ctx.origin.clone(),
    })
}

pub(super) fn read_run(ctx: &mut Ctx, value: &Value, namespaced: bool) -> Option<UpdateRun> {
    let w: wire::Object<wire::RunSpec> = ctx.wire(value)?;
    let (namespace, name) = scoped_key(ctx, &w.metadata, namespaced);
    // A StagedUpdateRun's placement and strategy are those of its namespace.
    let in_scope = |n: &str| match n.is_empty() {
        true => String::new(),
        false => crate::repo::model::object_key(namespace.as_deref(), n),
    };
    let spec = &w.spec;
    if spec.placement_name.is_empty() {
        ctx.error("spec.placementName is required");
    }
    if spec.staged_rollout_strategy_name.is_empty() {
        ctx.error("spec.stagedRolloutStrategyName is required");
    }
    let index = spec.resource_snapshot_index.as_ref().and_then(|v| {
        let parsed = match v {
            wire::IntOrString::Int(n) => u32::try_from(*n).ok(),
            wire::IntOrString::Str(s) => s.parse::<u32>().ok(),
        };
        if parsed.is_none() {
            let shown = match v {
                wire::IntOrString::Int(n) => n.to_string(),
                wire::IntOrString::Str(s) => format!("{s:?}"),
            };
            ctx.error(format!("spec.resourceSnapshotIndex: {shown} must be a non-negative integer"));
        }
        parsed
    });
    let target = match (index, spec.resource_commit.as_deref()) {
        (Some(_), Some(_)) => {
            ctx.error("spec.resourceSnapshotIndex and spec.resourceCommit are mutually exclusive");
            SnapshotTarget::Latest
        }
        (Some(i), None) => SnapshotTarget::Index(i),
        (None, Some("")) => {
            ctx.error("spec.resourceCommit must not be empty");
            SnapshotTarget::Latest
        }
        (None, Some(c)) => SnapshotTarget::Commit(c.to_string()),
        (None, None) => SnapshotTarget::Latest,
    };
    let state = match spec.state.as_deref() {
        None | Some("Run") => RunState::Run,
        Some("Initialize") => RunState::Initialize,
        Some("Stop") => RunState::Stop,
        Some(other) => {
            ctx.error(format!("spec.state: {other:?} is not Run, Initialize or Stop"));
            RunState::Run
        }
    };
    let mut echoed = value.get("spec").cloned().unwrap_or(Value::Null);
    if namespace.is_some()
        && let Some(e) = echoed.as_object_mut()
    {
        // In memory, names are keys (written back without the namespace).
        for (field, v) in [
            ("placementName", &spec.placement_name),
            ("stagedRolloutStrategyName", &spec.staged_rollout_strategy_name),
        ] {
            e.insert(field.into(), Value::String(in_scope(v)));
        }
    }
    Some(UpdateRun {
        name,
        placement: in_scope(&spec.placement_name),
        strategy: in_scope(&spec.staged_rollout_strategy_name),
        target,
        state,
        spec: echoed,
        origin: ctx.origin.clone(),
    })
}
