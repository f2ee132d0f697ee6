//! RolloutWindow (gitfleet.dev/v1alpha1): when cluster updates may start.

use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::repo::window::{Cron, RolloutWindow, WindowTime, WindowType};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WindowSpec {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    cluster_selector: Option<LabelSelector>,
}

fn timestamp(ctx: &mut Ctx, field: &str, text: &str) -> Option<i64> {
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t.as_second()),
        Err(_) => {
            ctx.error(format!("{field}: {text:?} is not an RFC 3339 time (e.g. 2026-12-20T00:00:00Z)"));
            None
        }
    }
}

pub(super) fn read_window(ctx: &mut Ctx, value: &Value) -> Option<RolloutWindow> {
    let w: wire::Object<WindowSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let spec = w.spec;
    let type_ = match spec.type_.as_str() {
        "Allow" => WindowType::Allow,
        "Deny" => WindowType::Deny,
        other => {
            ctx.error(format!("spec.type: {other:?} is not Allow or Deny"));
            WindowType::Deny
        }
    };
    if let Some(sel) = &spec.cluster_selector {
        ctx.errors(sel.validate("spec.clusterSelector"));
    }
    let time = match (&spec.schedule, &spec.start, &spec.end) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            ctx.error("spec.schedule and spec.start/end are mutually exclusive");
            None
        }
        (Some(schedule), None, None) => {
            let cron = Cron::parse(schedule).map_err(|e| ctx.error(format!("spec.schedule: {e}"))).ok();
            let duration = match &spec.duration {
                None => {
                    ctx.error("spec.duration is required with spec.schedule");
                    None
                }
                Some(d) => super::rollout::bounded_duration(ctx, "spec.duration", d),
            };
            let tz_name = spec.time_zone.as_deref().unwrap_or("UTC");
            let tz = jiff::tz::TimeZone::get(tz_name)
                .map_err(|_| ctx.error(format!("spec.timeZone: {tz_name:?} is not a known IANA time zone")))
                .ok();
            match (cron, duration, tz) {
                (Some(cron), Some(d), Some(tz)) => {
                    Some(WindowTime::Schedule { cron, duration: d.as_secs() as i64, tz })
                }
                _ => None,
            }
        }
        (None, Some(start), Some(end)) => {
            let (s, e) = (timestamp(ctx, "spec.start", start), timestamp(ctx, "spec.end", end));
            match (s, e) {
                (Some(s), Some(e)) if e > s => Some(WindowTime::Range { start: s, end: e }),
                (Some(_), Some(_)) => {
                    ctx.error("spec.end must be after spec.start");
                    None
                }
                _ => None,
            }
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            ctx.error("spec.start and spec.end go together");
            None
        }
        (None, None, None) => {
            if spec.duration.is_some() || spec.time_zone.is_some() {
                ctx.error("spec.duration and spec.timeZone need spec.schedule");
            }
            Some(WindowTime::Always)
        }
    };
    Some(RolloutWindow { name, type_, time: time?, selector: spec.cluster_selector })
}
