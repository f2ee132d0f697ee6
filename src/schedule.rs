//! Scheduling: which member clusters a placement picks (PickAll, PickFixed,
//! PickN), as KubeFleet's scheduler does:
//!
//! - required affinity terms filter (a term: its label selector and its
//!   property requirements; terms are ORed);
//! - a cluster's `NoSchedule` taints must be tolerated, but only by new
//!   placements: a cluster the placement already holds keeps it;
//! - PickN keeps the clusters it holds (trimming the lowest scored when
//!   `numberOfClusters` shrinks) and picks the rest one at a time, best first:
//!   topology spread score, then preferred affinity score (weights, or weights
//!   interpolated by a property sorter), then name (ascending);
//! - a topology spread constraint `DoNotSchedule` filters a cluster that would
//!   make the skew exceed `maxSkew`; `ScheduleAnyway` only lowers its score.

use std::collections::{BTreeMap, BTreeSet};

use crate::repo::model::{
    ClusterTerm, MemberCluster, PickN, Placement, PlacementPolicy, PreferredTerm, PropertyOp,
    SpreadConstraint, Toleration,
};

/// The outcome of scheduling one placement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// Picked clusters, by name.
    pub clusters: Vec<String>,
    /// Why the policy could not be fully satisfied (missing fixed clusters, too few for PickN).
    pub unsatisfied: Option<String>,
    /// Clusters not picked and why, by name.
    pub not_picked: Vec<(String, String)>,
}

const NO_AFFINITY: &str = "cluster does not match with any of the required cluster affinity terms";

/// Schedules a placement that holds no cluster yet.
pub fn schedule(p: &Placement, clusters: &BTreeMap<String, MemberCluster>) -> Schedule {
    schedule_keeping(p, clusters, &|_| false)
}

/// Schedules a placement that holds the clusters `bound` says it does (the
/// clusters its status lists). Deterministic.
pub fn schedule_keeping(
    p: &Placement,
    clusters: &BTreeMap<String, MemberCluster>,
    bound: &dyn Fn(&str) -> bool,
) -> Schedule {
    match &p.policy {
        PlacementPolicy::PickAll { terms, tolerations } => {
            let mut out = Schedule::default();
            for c in clusters.values() {
                let why = match required(terms, c) {
                    Err(why) => Some(why),
                    Ok(()) if bound(&c.name) => None,
                    Ok(()) => untolerated(c, tolerations),
                };
                match why {
                    None => out.clusters.push(c.name.clone()),
                    Some(why) => out.not_picked.push((c.name.clone(), why)),
                }
            }
            out
        }
        PlacementPolicy::PickFixed { cluster_names } => {
            let mut picked: Vec<String> =
                cluster_names.iter().filter(|n| clusters.contains_key(*n)).cloned().collect();
            picked.sort();
            let missing: Vec<&str> =
                cluster_names.iter().filter(|n| !clusters.contains_key(*n)).map(String::as_str).collect();
            Schedule {
                clusters: picked,
                unsatisfied: (!missing.is_empty())
                    .then(|| format!("clusters not found in the repository: {}", missing.join(", "))),
                not_picked: Vec::new(),
            }
        }
        PlacementPolicy::PickN(policy) => pick_n(policy, clusters, bound),
    }
}

/// Whether a cluster matches the required terms; else why not.
fn required(terms: &[ClusterTerm], c: &MemberCluster) -> Result<(), String> {
    if terms.is_empty() {
        return Ok(());
    }
    let mut problem = None;
    for t in terms {
        if t.labels.as_ref().is_some_and(|l| !l.matches(&c.labels)) {
            continue;
        }
        match properties_match(t, c) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => problem = Some(e),
        }
    }
    Err(problem.unwrap_or_else(|| NO_AFFINITY.to_string()))
}

/// Whether a cluster matches one term (labels and properties; a property that
/// is not a quantity does not match).
pub fn term_matches(t: &ClusterTerm, c: &MemberCluster) -> bool {
    t.labels.as_ref().is_none_or(|l| l.matches(&c.labels)) && properties_match(t, c).unwrap_or(false)
}

/// Every property requirement of a term holds (a missing property does not).
fn properties_match(t: &ClusterTerm, c: &MemberCluster) -> Result<bool, String> {
    for r in &t.properties {
        let Some(text) = c.property(&r.name) else { return Ok(false) };
        let Some(v) = parse_quantity(text) else {
            return Err(format!("property {} of the cluster, {text:?}, is not a quantity", r.name));
        };
        let holds = match r.op {
            PropertyOp::Gt => v > r.number,
            PropertyOp::Ge => v >= r.number,
            PropertyOp::Eq => v == r.number,
            PropertyOp::Ne => v != r.number,
            PropertyOp::Lt => v < r.number,
            PropertyOp::Le => v <= r.number,
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The first taint of the cluster no toleration tolerates, as KubeFleet says it.
fn untolerated(c: &MemberCluster, tolerations: &[Toleration]) -> Option<String> {
    c.taints
        .iter()
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
        .map(|t| format!("taint &{{Key:{} Value:{} Effect:NoSchedule}} cannot be tolerated", t.key, t.value))
}

/// A Kubernetes quantity (`4`, `500m`, `16Gi`, `1e3`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(s, f)| t.strip_suffix(s).map(|n| (n, *f)))
        .or_else(|| t.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((t, 1.0));
    let starts_numeric = number.chars().next().is_some_and(|ch| ch.is_ascii_digit() || "+-.".contains(ch));
    if !starts_numeric {
        return None;
    }
    number.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * factor)
}

/// A cluster's preferred-affinity score: the sum of its terms'.
fn affinity_score(
    preferred: &[PreferredTerm],
    c: &MemberCluster,
    fleet: &BTreeMap<String, MemberCluster>,
) -> i64 {
    let mut score = 0;
    for t in preferred {
        if t.weight == 0 || t.labels.as_ref().is_some_and(|l| !l.matches(&c.labels)) {
            continue;
        }
        let Some(sorter) = &t.sorter else {
            score += i64::from(t.weight);
            continue;
        };
        // Interpolated between the smallest and largest value in the fleet.
        let value = |m: &MemberCluster| m.property(&sorter.name).and_then(parse_quantity);
        let Some(v) = value(c) else { continue };
        let all: Vec<f64> = fleet.values().filter_map(value).collect();
        let (min, max) =
            all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
        if max <= min {
            continue;
        }
        let share = (v - min) / (max - min);
        let share = if sorter.ascending { 1.0 - share } else { share };
        score += (f64::from(t.weight) * share).round() as i64;
    }
    score
}

/// Topology spread for one more cluster in `domain` given the picked counts:
/// `Err` when a DoNotSchedule constraint forbids it, else the score.
fn spread_score(
    spread: &[SpreadConstraint],
    c: &MemberCluster,
    fleet: &BTreeMap<String, MemberCluster>,
    picked: &[String],
) -> Result<i64, String> {
    let mut score = 0;
    for k in spread {
        let Some(domain) = c.labels.get(&k.topology_key) else { continue };
        // Every domain of the fleet, with the picked clusters in it.
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for m in fleet.values() {
            if let Some(d) = m.labels.get(&k.topology_key) {
                counts.entry(d.as_str()).or_insert(0);
            }
        }
        for name in picked {
            if let Some(d) = fleet.get(name).and_then(|m| m.labels.get(&k.topology_key)) {
                *counts.entry(d.as_str()).or_insert(0) += 1;
            }
        }
        let mut sorted: Vec<i64> = counts.values().copied().collect();
        sorted.sort();
        let (smallest, largest) = (sorted[0], sorted[sorted.len() - 1]);
        let second = sorted.get(1).copied().unwrap_or(smallest);
        let count = counts.get(domain.as_str()).copied().unwrap_or(0);
        let skew = largest - smallest;
        let max = i64::from(k.max_skew);
        let (change, violates) = if largest == smallest {
            (1, skew + 1 > max)
        } else if count == smallest && smallest != second {
            (-1, skew - 1 > max)
        } else if count == largest {
            (1, skew + 1 > max)
        } else {
            (0, skew > max)
        };
        match (violates, k.do_not_schedule) {
            (false, _) => score -= change,
            (true, false) => score -= 1000,
            (true, true) => {
                return Err(format!(
                    "violated topology spread constraint \"{}\" (max skew {})",
                    k.topology_key, k.max_skew
                ));
            }
        }
    }
    Ok(score)
}

fn pick_n(
    policy: &PickN,
    clusters: &BTreeMap<String, MemberCluster>,
    bound: &dyn Fn(&str) -> bool,
) -> Schedule {
    let n = policy.number_of_clusters as usize;
    let mut not_picked = Vec::new();
    let mut eligible: Vec<&MemberCluster> = Vec::new();
    for c in clusters.values() {
        match required(&policy.terms, c) {
            Ok(()) => eligible.push(c),
            Err(why) => not_picked.push((c.name.clone(), why)),
        }
    }
    // The clusters the placement holds stay (even if tainted since); when
    // there are too many, the lowest scored go first, the smaller name first.
    let mut kept: Vec<&MemberCluster> = eligible.iter().copied().filter(|c| bound(&c.name)).collect();
    let mut trimmed = BTreeSet::new();
    if kept.len() > n {
        kept.sort_by_key(|c| (affinity_score(&policy.preferred, c, clusters), c.name.clone()));
        for c in kept.drain(..kept.len() - n) {
            not_picked.push((c.name.clone(), "numberOfClusters was lowered".to_string()));
            trimmed.insert(c.name.clone());
        }
    }
    let mut picked: Vec<String> = kept.iter().map(|c| c.name.clone()).collect();
    let mut candidates: Vec<&MemberCluster> = Vec::new();
    for c in eligible.into_iter().filter(|c| !picked.contains(&c.name) && !trimmed.contains(&c.name)) {
        match untolerated(c, &policy.tolerations) {
            Some(why) => not_picked.push((c.name.clone(), why)),
            None => candidates.push(c),
        }
    }
    // One at a time: each pick changes the spread.
    let mut filtered: BTreeMap<String, String> = BTreeMap::new();
    let mut last_scores: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    while picked.len() < n {
        let mut best: Option<((i64, i64), &MemberCluster)> = None;
        for c in candidates.iter().copied().filter(|c| !picked.contains(&c.name)) {
            match spread_score(&policy.spread, c, clusters, &picked) {
                Err(why) => {
                    filtered.insert(c.name.clone(), why);
                }
                Ok(spread) => {
                    filtered.remove(&c.name);
                    let score = (spread, affinity_score(&policy.preferred, c, clusters));
                    last_scores.insert(c.name.clone(), score);
                    // Higher first; on a tie the smaller name (the first seen).
                    if best.is_none_or(|(b, _)| score > b) {
                        best = Some((score, c));
                    }
                }
            }
        }
        let Some((_, c)) = best else { break };
        picked.push(c.name.clone());
    }
    for c in candidates.iter().filter(|c| !picked.contains(&c.name)) {
        let why = match (filtered.get(&c.name), last_scores.get(&c.name)) {
            (Some(why), _) => why.clone(),
            (None, Some((spread, affinity))) => format!(
                "cluster does not score high enough (affinity score: {affinity}, topology spread score: {spread})"
            ),
            (None, None) => {
                let affinity = affinity_score(&policy.preferred, c, clusters);
                format!("cluster does not score high enough (affinity score: {affinity})")
            }
        };
        not_picked.push((c.name.clone(), why));
    }
    not_picked.sort();
    picked.sort();
    Schedule {
        unsatisfied: (picked.len() < n).then(|| {
            format!(
                "could not find all clusters needed as specified by the scheduling policy, found {} cluster(s) instead of {n}",
                picked.len()
            )
        }),
        clusters: picked,
        not_picked,
    }
}

#[cfg(test)]
mod tests;
