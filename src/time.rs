//! Time as gitfleet records it: whole seconds, written as RFC 3339 UTC
//! (`2025-07-22T21:28:08Z`) in every status document, and the [`Wake`] value
//! that says when time alone will change something next.
//!
//! Below the engine and the status documents: both take a [`Time`] and never
//! parse or format one themselves.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, to the second (the precision of Kubernetes condition times).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(jiff::Timestamp);

impl Time {
    /// The current time, truncated to the second.
    pub fn now() -> Time {
        Time::from_second(jiff::Timestamp::now().as_second())
    }

    /// Seconds since the Unix epoch; out-of-range values saturate to the
    /// earliest or latest time jiff can hold.
    pub fn from_second(secs: i64) -> Time {
        let clamped = secs.clamp(jiff::Timestamp::MIN.as_second(), jiff::Timestamp::MAX.as_second());
        Time(jiff::Timestamp::from_second(clamped).unwrap_or_default())
    }

    pub fn as_second(self) -> i64 {
        self.0.as_second()
    }

    /// Milliseconds since the Unix epoch (for sleeping until just past a wake).
    pub fn as_millisecond(self) -> i64 {
        self.0.as_millisecond()
    }

    /// This time plus (or minus) a number of seconds.
    pub fn plus_seconds(self, secs: i64) -> Time {
        Time::from_second(self.as_second().saturating_add(secs))
    }

    /// Seconds from `earlier` to this time (negative if it is later).
    pub fn seconds_since(self, earlier: Time) -> i64 {
        self.as_second() - earlier.as_second()
    }

    /// This time plus a duration (whole seconds).
    pub fn plus(self, d: std::time::Duration) -> Time {
        self.plus_seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// Parses RFC 3339 (any offset; fractions of a second are dropped).
    pub fn parse(text: &str) -> Option<Time> {
        text.parse::<jiff::Timestamp>().ok().map(|t| Time::from_second(t.as_second()))
    }
}

impl std::ops::Add<i64> for Time {
    type Output = Time;

    /// This time plus a number of seconds.
    fn add(self, secs: i64) -> Time {
        self.plus_seconds(secs)
    }
}

impl From<i64> for Time {
    /// Seconds since the Unix epoch.
    fn from(secs: i64) -> Time {
        Time::from_second(secs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = String::deserialize(d)?;
        Time::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// When time alone will change something next: the earliest of several
/// deadlines (a TimedWait ending, a cluster timeout, a retry, a window opening),
/// or never. Computed where the deadline is known and merged on the way up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake(Option<Time>);

impl Wake {
    /// Nothing to wake up for.
    pub const NEVER: Wake = Wake(None);

    pub fn at(t: Time) -> Wake {
        Wake(Some(t))
    }

    /// The earlier of two wakes.
    #[must_use]
    pub fn merge(self, other: Wake) -> Wake {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Wake(Some(a.min(b))),
            (a, b) => Wake(a.or(b)),
        }
    }

    /// Merges another wake into this one.
    pub fn add(&mut self, other: Wake) {
        *self = self.merge(other);
    }

    /// The time to wake at, if any.
    pub fn time(self) -> Option<Time> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339_to_the_second() {
        let t = Time::from_second(1_753_219_688);
        assert_eq!(t.to_string(), "2025-07-22T21:28:08Z");
        assert_eq!(Time::parse("2025-07-22T21:28:08Z"), Some(t));
        assert_eq!(Time::parse("2025-07-22T23:28:08.75+02:00"), Some(t), "offsets and fractions");
        assert_eq!(Time::parse("yesterday"), None);
    }

    #[test]
    fn serializes_as_a_string_and_refuses_garbage() {
        let t = Time::from_second(0);
        assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!("1970-01-01T00:00:00Z"));
        let back: Time = serde_json::from_value(serde_json::json!("1970-01-01T00:00:00Z")).unwrap();
        assert_eq!(back, t);
        let err = serde_json::from_value::<Time>(serde_json::json!("soon")).unwrap_err();
        assert!(err.to_string().contains("\"soon\" is not an RFC 3339 time"), "{err}");
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Time::from_second(10).plus_seconds(5).as_second(), 15);
        assert_eq!(Time::from_second(i64::MAX), Time::from_second(i64::MAX - 1).plus_seconds(10));
    }

    #[test]
    fn wake_keeps_the_earliest() {
        let (a, b) = (Time::from_second(20), Time::from_second(10));
        assert_eq!(Wake::at(a).merge(Wake::at(b)).time(), Some(b));
        assert_eq!(Wake::NEVER.merge(Wake::at(a)).time(), Some(a));
        assert_eq!(Wake::at(a).merge(Wake::NEVER).time(), Some(a));
        assert_eq!(Wake::NEVER.merge(Wake::NEVER).time(), None);
        let mut w = Wake::NEVER;
        w.add(Wake::at(a));
        w.add(Wake::at(b));
        assert_eq!(w.time(), Some(b));
    }
}
