//! Rollout windows: when a cluster update may start. An Allow window (when one
//! selects the cluster) must be open and no Deny window may be in force. A
//! window is a cron schedule (5 fields, in a time zone) with a duration, an
//! absolute range, or, for Deny, nothing at all: a freeze until removed.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::repo::window::{Cron, RolloutWindow, WindowTime, WindowType};
use crate::time::Time;

/// How far ahead the next opening of a schedule is searched (covers 29 February).
const SEARCH_DAYS: i32 = 4 * 366;

impl Cron {
    fn day_matches(&self, d: Date) -> bool {
        if !self.months.contains(&(d.month() as u8)) {
            return false;
        }
        let dom = self.days.contains(&(d.day() as u8));
        let dow = self.weekdays.contains(&(d.weekday().to_sunday_zero_offset() as u8));
        if self.days_or_weekdays { dom || dow } else { dom && dow }
    }

    /// The match times of one local day, as instants, in order. A time the
    /// clocks skip (spring forward) falls on the instant after the gap.
    fn times_on(&self, d: Date, tz: &TimeZone) -> Vec<i64> {
        let every_hour = self.hours.len() == 24;
        let mut out = Vec::new();
        for h in &self.hours {
            for m in &self.minutes {
                let Ok(dt) = DateTime::new(d.year(), d.month(), d.day(), *h as i8, *m as i8, 0, 0) else {
                    continue;
                };
                let ambiguous = tz.to_ambiguous_timestamp(dt);
                // A time the clocks skip maps past the gap; a repeated time (fall
                // back) fires once, or twice when the schedule runs every hour.
                if every_hour && let Ok(later) = ambiguous.later() {
                    out.push(later.as_second());
                }
                if let Ok(t) = ambiguous.compatible() {
                    out.push(t.as_second());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

fn local_date(t: i64, tz: &TimeZone) -> Option<Date> {
    Timestamp::from_second(t).ok().map(|ts| ts.to_zoned(tz.clone()).date())
}

impl RolloutWindow {
    /// If the window is in force at `t`, until when (`None` inside: forever).
    pub fn in_force(&self, t: i64) -> Option<Option<i64>> {
        match &self.time {
            WindowTime::Always => Some(None),
            WindowTime::Range { start, end } => (*start <= t && t < *end).then_some(Some(*end)),
            WindowTime::Schedule { cron, duration, tz } => {
                // The latest opening in (t - duration, t], searched day by day backwards.
                let first = local_date(t - duration, tz)?;
                let mut day = local_date(t, tz)?;
                loop {
                    if cron.day_matches(day) {
                        let latest = cron.times_on(day, tz).into_iter().filter(|o| *o <= t).max();
                        if let Some(o) = latest.filter(|o| *o > t - duration) {
                            return Some(Some(o + duration));
                        }
                    }
                    if day <= first {
                        return None;
                    }
                    day = day.checked_sub(1.day()).ok()?;
                }
            }
        }
    }

    /// The next time after `t` the window opens, if it ever does.
    pub fn next_open(&self, t: i64) -> Option<i64> {
        match &self.time {
            WindowTime::Always => None,
            WindowTime::Range { start, .. } => (*start > t).then_some(*start),
            WindowTime::Schedule { cron, tz, .. } => {
                let mut day = local_date(t, tz)?;
                for _ in 0..SEARCH_DAYS {
                    if cron.day_matches(day)
                        && let Some(o) = cron.times_on(day, tz).into_iter().find(|o| *o > t)
                    {
                        return Some(o);
                    }
                    day = day.checked_add(1.day()).ok()?;
                }
                None
            }
        }
    }
}

/// Whether a cluster update may start at `t`; if not, the window that holds it
/// and the first time every window lets it start (`None`: not while a window
/// exists, or not within the search horizon).
pub fn may_start<'a>(
    windows: &'a [RolloutWindow],
    labels: &std::collections::BTreeMap<String, String>,
    t: Time,
) -> Result<(), (&'a RolloutWindow, Option<Time>)> {
    let applying: Vec<&RolloutWindow> = windows.iter().filter(|w| w.selects(labels)).collect();
    let mut holder: Option<&RolloutWindow> = None;
    let mut at = t.as_second();
    // Step past Deny windows in force and to the next Allow opening until both agree.
    for _ in 0..1000 {
        let deny = applying
            .iter()
            .filter(|w| w.type_ == WindowType::Deny)
            .find_map(|w| w.in_force(at).map(|u| (*w, u)));
        if let Some((w, until)) = deny {
            holder.get_or_insert(w);
            match until {
                Some(u) => {
                    at = u;
                    continue;
                }
                None => return Err((holder.unwrap_or(w), None)),
            }
        }
        let allows: Vec<&RolloutWindow> =
            applying.iter().copied().filter(|w| w.type_ == WindowType::Allow).collect();
        if allows.is_empty() || allows.iter().any(|w| w.in_force(at).is_some()) {
            return match holder {
                None => Ok(()),
                Some(w) => Err((w, Some(Time::from_second(at)))),
            };
        }
        let next = allows.iter().filter_map(|w| w.next_open(at).map(|o| (o, *w))).min_by_key(|(o, _)| *o);
        match next {
            Some((o, w)) => {
                holder.get_or_insert(w);
                at = o;
            }
            None => return Err((holder.unwrap_or(allows[0]), None)),
        }
    }
    Err((holder.expect("held at least once"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn window(type_: WindowType, cron: &str, hours: i64, tz: &str) -> RolloutWindow {
        RolloutWindow {
            name: "w".into(),
            type_,
            time: WindowTime::Schedule {
                cron: Cron::parse(cron).unwrap(),
                duration: hours * 3600,
                tz: TimeZone::get(tz).unwrap(),
            },
            selector: None,
        }
    }

    #[test]
    fn cron_fields() {
        let c = Cron::parse("*/15 22 * * mon-fri").unwrap();
        assert_eq!(c.minutes, [0, 15, 30, 45]);
        assert_eq!(c.weekdays, [1, 2, 3, 4, 5]);
        assert_eq!(Cron::parse("0 0 * * 7").unwrap().weekdays, [0]);
        for bad in ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "* * * * xyz", "*/0 * * * *"] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn window_across_midnight() {
        // Weeknights 22:00 for 6h in Berlin (UTC+1 in winter): Monday 21:00Z to Tuesday 03:00Z.
        let w = window(WindowType::Allow, "0 22 * * 1-5", 6, "Europe/Berlin");
        assert_eq!(w.in_force(at("2026-01-05T20:59:00Z")), None);
        assert_eq!(w.in_force(at("2026-01-05T21:00:00Z")), Some(Some(at("2026-01-06T03:00:00Z"))));
        assert_eq!(w.in_force(at("2026-01-06T02:59:59Z")), Some(Some(at("2026-01-06T03:00:00Z"))));
        assert_eq!(w.in_force(at("2026-01-06T03:00:00Z")), None);
        // Friday night runs into Saturday; Saturday night does not open.
        assert!(w.in_force(at("2026-01-10T01:00:00Z")).is_some());
        assert_eq!(w.next_open(at("2026-01-10T05:00:00Z")), Some(at("2026-01-12T21:00:00Z")), "next Monday");
    }

    #[test]
    fn window_across_a_dst_change() {
        // 02:30 every day in Berlin: on 2026-03-29 the clocks jump from 02:00 to 03:00.
        let w = window(WindowType::Deny, "30 2 * * *", 1, "Europe/Berlin");
        assert_eq!(
            w.next_open(at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T01:30:00Z")),
            "after the gap: 03:30 CEST"
        );
        assert_eq!(
            w.next_open(at("2026-03-29T12:00:00Z")),
            Some(at("2026-03-30T00:30:00Z")),
            "02:30 CEST is 00:30Z"
        );
        let w = window(WindowType::Allow, "0 9 * * *", 8, "America/New_York");
        assert_eq!(
            w.next_open(at("2026-11-01T00:00:00Z")),
            Some(at("2026-11-01T14:00:00Z")),
            "EST after fall back"
        );
        assert_eq!(w.next_open(at("2026-10-31T00:00:00Z")), Some(at("2026-10-31T13:00:00Z")), "EDT before");
    }

    #[test]
    fn ranges_freezes_and_allow_deny_overlap() {
        let range = RolloutWindow {
            name: "holidays".into(),
            type_: WindowType::Deny,
            time: WindowTime::Range { start: at("2026-12-20T00:00:00Z"), end: at("2027-01-05T00:00:00Z") },
            selector: None,
        };
        let freeze = RolloutWindow {
            name: "freeze".into(),
            type_: WindowType::Deny,
            time: WindowTime::Always,
            selector: None,
        };
        let allow =
            RolloutWindow { name: "nights".into(), ..window(WindowType::Allow, "0 22 * * *", 6, "UTC") };
        let labels = Default::default();
        let night = at("2026-12-21T23:00:00Z");
        let both = [allow.clone(), range.clone()];
        let (w, until) = may_start(&both, &labels, Time::from(night)).unwrap_err();
        assert_eq!(
            (w.name.as_str(), until),
            ("holidays", Some(Time::from(at("2027-01-05T00:00:00Z")))),
            "Deny wins over Allow"
        );
        assert!(may_start(&both, &labels, Time::from(at("2027-01-05T23:00:00Z"))).is_ok());
        let only_allow = [allow.clone()];
        let (w, until) = may_start(&only_allow, &labels, Time::from(at("2027-01-05T12:00:00Z"))).unwrap_err();
        assert_eq!((w.name.as_str(), until), ("nights", Some(Time::from(at("2027-01-05T22:00:00Z")))));
        let freezes = [freeze];
        let (w, until) = may_start(&freezes, &labels, Time::from(night)).unwrap_err();
        assert_eq!((w.name.as_str(), until), ("freeze", None));
    }
}

#[cfg(test)]
mod regression {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    /// Vixie cron: a day field starting with '*' does not make the day rule an OR.
    #[test]
    fn stepped_wildcard_days_are_not_a_restriction() {
        let c = Cron::parse("0 9 */2 * 1").unwrap();
        assert!(!c.days_or_weekdays);
        let monday_even = Date::new(2026, 1, 12).unwrap(); // a Monday, day 12 (not in */2 from 1)
        assert!(!c.day_matches(monday_even));
        assert!(Cron::parse("0 9 1 * 1").unwrap().days_or_weekdays, "both restricted: either matches");
    }

    /// The repeated hour of a fall-back day is covered by an hourly window.
    #[test]
    fn hourly_window_covers_the_repeated_hour() {
        let w = RolloutWindow {
            name: "hourly".into(),
            type_: WindowType::Allow,
            time: WindowTime::Schedule {
                cron: Cron::parse("0 * * * *").unwrap(),
                duration: 3600,
                tz: TimeZone::get("America/New_York").unwrap(),
            },
            selector: None,
        };
        assert!(w.in_force(at("2026-11-01T06:30:00Z")).is_some(), "01:30 EST, the second 01:30");
    }

    /// The reported start accounts for every window: a Deny range ending while
    /// the Allow window is closed starts at the next Allow opening.
    #[test]
    fn start_time_after_a_deny_range_waits_for_the_allow_window() {
        let deny = RolloutWindow {
            name: "holidays".into(),
            type_: WindowType::Deny,
            time: WindowTime::Range { start: at("2026-12-20T00:00:00Z"), end: at("2027-01-05T12:00:00Z") },
            selector: None,
        };
        let allow = RolloutWindow {
            name: "nights".into(),
            type_: WindowType::Allow,
            time: WindowTime::Schedule {
                cron: Cron::parse("0 21 * * *").unwrap(),
                duration: 6 * 3600,
                tz: TimeZone::UTC,
            },
            selector: None,
        };
        let windows = [deny, allow];
        let (w, until) =
            may_start(&windows, &Default::default(), Time::from(at("2026-12-24T22:00:00Z"))).unwrap_err();
        assert_eq!((w.name.as_str(), until), ("holidays", Some(Time::from(at("2027-01-05T21:00:00Z")))));
    }
}
