//! Builders for the model objects the engine tests use: a strategy made of
//! stages, and rollout windows. Strategies go through the same validation as
//! files in the repository (`strategy_from_spec`), so a fixture is always an
//! object gitfleet would accept.

use serde_json::{Value, json};

use crate::repo::labels::LabelSelector;
use crate::repo::model::Strategy;
use crate::repo::validate::strategy_from_spec;
use crate::repo::window::{Cron, RolloutWindow, WindowTime, WindowType};

/// One stage of a strategy (`spec.stages[]`).
#[derive(Debug, Clone)]
pub struct StageSpec(Value);

impl StageSpec {
    /// A stage that selects every cluster (`labelSelector: {}`).
    pub fn all(name: &str) -> StageSpec {
        StageSpec(json!({ "name": name, "labelSelector": {} }))
    }

    /// A stage without a selector: the last stage takes every cluster left.
    pub fn rest(name: &str) -> StageSpec {
        StageSpec(json!({ "name": name }))
    }

    /// A stage that selects clusters with `key: value`.
    pub fn matching(name: &str, key: &str, value: &str) -> StageSpec {
        StageSpec(json!({ "name": name, "labelSelector": { "matchLabels": { key: value } } }))
    }

    fn set(mut self, field: &str, value: Value) -> StageSpec {
        self.0[field] = value;
        self
    }

    fn push_task(mut self, list: &str, task: Value) -> StageSpec {
        match self.0[list].as_array_mut() {
            Some(tasks) => tasks.push(task),
            None => self.0[list] = json!([task]),
        }
        self
    }

    /// `maxConcurrency` (a count or a percentage such as `"50%"`).
    pub fn max_concurrency(self, v: impl Into<Value>) -> StageSpec {
        self.set("maxConcurrency", v.into())
    }

    /// `maxFailures` (a count or a percentage).
    pub fn max_failures(self, v: impl Into<Value>) -> StageSpec {
        self.set("maxFailures", v.into())
    }

    pub fn max_duration(self, d: &str) -> StageSpec {
        self.set("maxDuration", json!(d))
    }

    pub fn cluster_timeout(self, d: &str) -> StageSpec {
        self.set("clusterTimeout", json!(d))
    }

    pub fn sorting_label_key(self, key: &str) -> StageSpec {
        self.set("sortingLabelKey", json!(key))
    }

    /// An after-stage TimedWait.
    pub fn after_wait(self, d: &str) -> StageSpec {
        self.push_task("afterStageTasks", json!({ "type": "TimedWait", "waitTime": d }))
    }

    /// An after-stage Approval.
    pub fn after_approval(self) -> StageSpec {
        self.push_task("afterStageTasks", json!({ "type": "Approval" }))
    }

    /// An after-stage Verification (`verification` and `onFailure`, if given).
    pub fn after_verification(self, verification: Value, on_failure: Option<&str>) -> StageSpec {
        let mut task = json!({ "type": "Verification", "verification": verification });
        if let Some(f) = on_failure {
            task["onFailure"] = json!(f);
        }
        self.push_task("afterStageTasks", task)
    }

    /// A before-stage Verification.
    pub fn before_verification(self, verification: Value) -> StageSpec {
        self.push_task("beforeStageTasks", json!({ "type": "Verification", "verification": verification }))
    }

    /// A before-stage Approval.
    pub fn before_approval(self) -> StageSpec {
        self.push_task("beforeStageTasks", json!({ "type": "Approval" }))
    }
}

/// A validated strategy named `name` with these stages.
pub fn strategy(name: &str, stages: impl IntoIterator<Item = StageSpec>) -> Strategy {
    let spec = json!({ "stages": stages.into_iter().map(|s| s.0).collect::<Vec<_>>() });
    strategy_from_spec(name, &spec).unwrap_or_else(|issues| panic!("fixture strategy is invalid: {issues:?}"))
}

/// A rollout window named `w`.
#[derive(Debug, Clone)]
pub struct WindowSpec(RolloutWindow);

impl WindowSpec {
    /// A Deny window in force until it is removed (a freeze).
    pub fn freeze() -> WindowSpec {
        WindowSpec(RolloutWindow {
            name: "w".into(),
            type_: WindowType::Deny,
            time: WindowTime::Always,
            selector: None,
        })
    }

    /// A Deny window from `start` to `end` (RFC 3339).
    pub fn deny_between(start: &str, end: &str) -> WindowSpec {
        let at = |t: &str| t.parse::<jiff::Timestamp>().expect("an RFC 3339 time").as_second();
        let time = WindowTime::Range { start: at(start), end: at(end) };
        WindowSpec(RolloutWindow { name: "w".into(), type_: WindowType::Deny, time, selector: None })
    }

    /// An Allow window opening at every `cron` match (UTC) for `hours`.
    pub fn allow(cron: &str, hours: i64) -> WindowSpec {
        let cron = Cron::parse(cron).expect("a valid cron schedule");
        let time = WindowTime::Schedule { cron, duration: hours * 3600, tz: jiff::tz::TimeZone::UTC };
        WindowSpec(RolloutWindow { name: "w".into(), type_: WindowType::Allow, time, selector: None })
    }

    /// Applies only to clusters with `key: value`.
    pub fn selecting(mut self, key: &str, value: &str) -> WindowSpec {
        let selector = LabelSelector {
            match_labels: [(key.to_string(), value.to_string())].into(),
            ..Default::default()
        };
        self.0.selector = Some(selector);
        self
    }

    pub fn build(self) -> RolloutWindow {
        self.0
    }
}
