//! RollingUpdate placements: every scheduled cluster gets the latest
//! snapshot, `maxUnavailable` clusters at a time. A batch with a failed
//! cluster stops the rollout until a later pass; a batch with a cluster that
//! is not available yet (or does not answer) holds the next batch.

use super::Observation;

/// How a rolling update pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollingStop {
    /// Every outdated cluster was updated.
    Done,
    /// A cluster of the last batch failed: the rest waits for a later pass.
    Failed,
    /// A cluster of the last batch is still unavailable: the next batch waits.
    Waiting,
}

/// What a rolling update pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rolled {
    /// Clusters updated successfully, in order.
    pub updated: Vec<String>,
    pub stop: RollingStop,
}

/// Updates `outdated` clusters in batches of `max_unavailable` (at least 1),
/// asking `update` for each; stops after a batch with a failure or a wait.
pub fn roll(
    outdated: &[String],
    max_unavailable: usize,
    mut update: impl FnMut(&str) -> Observation,
) -> Rolled {
    let mut updated = Vec::new();
    for batch in outdated.chunks(max_unavailable.max(1)) {
        let (mut failed, mut waiting) = (false, false);
        for cluster in batch {
            match update(cluster) {
                Observation::Succeeded => updated.push(cluster.clone()),
                // Not available yet (or unreachable): it still counts as unavailable.
                Observation::Pending(_) => waiting = true,
                Observation::Failed(_) => failed = true,
            }
        }
        if failed {
            return Rolled { updated, stop: RollingStop::Failed };
        }
        if waiting {
            return Rolled { updated, stop: RollingStop::Waiting };
        }
    }
    Rolled { updated, stop: RollingStop::Done }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn updates_everything_when_all_succeed() {
        let mut asked = Vec::new();
        let rolled = roll(&names(5), 2, |c| {
            asked.push(c.to_string());
            Observation::Succeeded
        });
        assert_eq!(rolled, Rolled { updated: names(5), stop: RollingStop::Done });
        assert_eq!(asked, names(5), "in order");
    }

    #[test]
    fn a_failure_finishes_its_batch_and_stops_the_rest() {
        let mut asked = Vec::new();
        let rolled = roll(&names(6), 2, |c| {
            asked.push(c.to_string());
            if c == "m3" { Observation::Failed("boom".into()) } else { Observation::Succeeded }
        });
        assert_eq!(asked, ["m1", "m2", "m3", "m4"], "m4 shares m3's batch; m5 and m6 wait");
        assert_eq!(rolled.updated, ["m1", "m2", "m4"]);
        assert_eq!(rolled.stop, RollingStop::Failed);
    }

    #[test]
    fn a_cluster_not_available_yet_holds_the_next_batch() {
        let mut asked = Vec::new();
        let rolled = roll(&names(3), 1, |c| {
            asked.push(c.to_string());
            if c == "m2" { Observation::Pending("rolling out".into()) } else { Observation::Succeeded }
        });
        assert_eq!(asked, ["m1", "m2"]);
        assert_eq!(rolled, Rolled { updated: vec!["m1".into()], stop: RollingStop::Waiting });
    }

    #[test]
    fn zero_max_unavailable_still_moves_one_at_a_time() {
        let mut batches = 0;
        let rolled = roll(&names(2), 0, |_| {
            batches += 1;
            Observation::Succeeded
        });
        assert_eq!((rolled.stop, batches), (RollingStop::Done, 2));
    }

    #[test]
    fn nothing_outdated_is_done_at_once() {
        let rolled = roll(&[], 3, |_| unreachable!("nothing to update"));
        assert_eq!(rolled, Rolled { updated: vec![], stop: RollingStop::Done });
    }
}
