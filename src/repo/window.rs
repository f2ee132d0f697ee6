//! Rollout windows as the repository declares them (gitfleet's `RolloutWindow`
//! kind): Allow or Deny, a cron schedule with a duration, an absolute range, or
//! a freeze. [`crate::window`] decides when a window is in force.

use jiff::tz::TimeZone;

use crate::repo::labels::LabelSelector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowType {
    Allow,
    Deny,
}

/// When a window is in force.
#[derive(Debug, Clone)]
pub enum WindowTime {
    /// Opens at every cron match, for `duration` seconds.
    Schedule { cron: Cron, duration: i64, tz: TimeZone },
    /// From `start` (inclusive) to `end` (exclusive).
    Range { start: i64, end: i64 },
    /// Always (a freeze, for Deny).
    Always,
}

#[derive(Debug, Clone)]
pub struct RolloutWindow {
    pub name: String,
    pub type_: WindowType,
    pub time: WindowTime,
    /// Clusters it applies to; `None`: every cluster.
    pub selector: Option<LabelSelector>,
}

/// A cron schedule that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCron(String);

/// A parsed 5-field cron expression: minute, hour, day of month, month, day of week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub(crate) minutes: Vec<u8>,
    pub(crate) hours: Vec<u8>,
    pub(crate) days: Vec<u8>,
    pub(crate) months: Vec<u8>,
    pub(crate) weekdays: Vec<u8>,
    /// Day of month and day of week restricted: either may match (cron's rule).
    pub(crate) days_or_weekdays: bool,
}

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, min: u8, max: u8, names: &[&str], name_base: u8) -> Result<(Vec<u8>, bool), String> {
    let value = |s: &str| -> Result<u8, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u8 + name_base);
        }
        s.parse::<u8>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("{s:?} is not in {min}-{max}"))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                (r, s.parse::<u8>().ok().filter(|s| *s > 0).ok_or_else(|| format!("bad step in {part:?}"))?)
            }
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if part.contains('/') => (value(r)?, max),
                None => (value(r)?, value(r)?),
            },
        };
        if lo > hi {
            return Err(format!("range {range:?} goes backwards"));
        }
        out.extend((lo..=hi).step_by(step as usize));
    }
    out.sort();
    out.dedup();
    // Vixie cron: a field starting with '*' (also '*/2') does not restrict days.
    Ok((out, !text.starts_with('*')))
}

impl Cron {
    /// Parses `m h dom mon dow`.
    pub fn parse(text: &str) -> Result<Cron, InvalidCron> {
        Cron::parse_fields(text).map_err(InvalidCron)
    }

    fn parse_fields(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts.as_slice() else {
            return Err(format!(
                "schedule {text:?} must have 5 fields (minute hour day-of-month month day-of-week)"
            ));
        };
        let err = |what: &str, e: String| format!("schedule {text:?}: {what}: {e}");
        let (minutes, _) = field(m, 0, 59, &[], 0).map_err(|e| err("minute", e))?;
        let (hours, _) = field(h, 0, 23, &[], 0).map_err(|e| err("hour", e))?;
        let (days, days_restricted) = field(dom, 1, 31, &[], 0).map_err(|e| err("day of month", e))?;
        let (months, _) = field(mon, 1, 12, &MONTHS, 1).map_err(|e| err("month", e))?;
        let (mut weekdays, weekdays_restricted) =
            field(dow, 0, 7, &WEEKDAYS, 0).map_err(|e| err("day of week", e))?;
        if weekdays.contains(&7) {
            weekdays.retain(|d| *d != 7);
            if !weekdays.contains(&0) {
                weekdays.insert(0, 0);
            }
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_or_weekdays: days_restricted && weekdays_restricted,
        })
    }
}

impl RolloutWindow {
    /// Whether the window applies to a cluster with these labels.
    pub fn selects(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}
