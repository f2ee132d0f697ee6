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

use std::collections::{BTreeMap, HashSet};

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

/// The preferred-affinity scores of a fleet: each property sorter's
/// smallest and largest value are found once, not per cluster.
struct Affinity<'a> {
    preferred: &'a [PreferredTerm],
    /// Per term: (min, max) of its sorter's property over the fleet.
    extremes: Vec<Option<(f64, f64)>>,
}

impl<'a> Affinity<'a> {
    fn new(preferred: &'a [PreferredTerm], fleet: &BTreeMap<String, MemberCluster>) -> Affinity<'a> {
        let extremes = preferred
            .iter()
            .map(|t| {
                let sorter = t.sorter.as_ref()?;
                let values = fleet.values().filter_map(|m| m.property(&sorter.name).and_then(parse_quantity));
                let (min, max) =
                    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
                (max > min).then_some((min, max))
            })
            .collect();
        Affinity { preferred, extremes }
    }

    /// A cluster's score: the sum of its terms' (weights, or weights
    /// interpolated between the fleet's extremes of a property).
    fn score(&self, c: &MemberCluster) -> i64 {
        let mut score = 0;
        for (t, extremes) in self.preferred.iter().zip(&self.extremes) {
            if t.weight == 0 || t.labels.as_ref().is_some_and(|l| !l.matches(&c.labels)) {
                continue;
            }
            let Some(sorter) = &t.sorter else {
                score += i64::from(t.weight);
                continue;
            };
            let (Some((min, max)), Some(v)) = (extremes, c.property(&sorter.name).and_then(parse_quantity))
            else {
                continue;
            };
            let share = (v - min) / (max - min);
            let share = if sorter.ascending { 1.0 - share } else { share };
            score += (f64::from(t.weight) * share).round() as i64;
        }
        score
    }
}

/// The picked clusters per domain of each topology spread constraint.
struct Spread<'a> {
    constraints: &'a [SpreadConstraint],
    /// Per constraint: domain -> picked clusters in it (every domain of the fleet).
    counts: Vec<BTreeMap<&'a str, i64>>,
}

impl<'a> Spread<'a> {
    fn new(constraints: &'a [SpreadConstraint], fleet: &'a BTreeMap<String, MemberCluster>) -> Spread<'a> {
        let counts = constraints
            .iter()
            .map(|k| {
                fleet
                    .values()
                    .filter_map(|m| m.labels.get(&k.topology_key))
                    .map(|d| (d.as_str(), 0))
                    .collect()
            })
            .collect();
        Spread { constraints, counts }
    }

    fn picked(&mut self, c: &MemberCluster) {
        for (k, counts) in self.constraints.iter().zip(&mut self.counts) {
            if let Some(d) = c.labels.get(&k.topology_key)
                && let Some(n) = counts.get_mut(d.as_str())
            {
                *n += 1;
            }
        }
    }

    /// The score of one more cluster (KubeFleet's `willViolate`), or why a
    /// DoNotSchedule constraint forbids it.
    fn score(&self, c: &MemberCluster) -> Result<i64, String> {
        let mut score = 0;
        for (k, counts) in self.constraints.iter().zip(&self.counts) {
            let Some(domain) = c.labels.get(&k.topology_key) else { continue };
            let mut sorted: Vec<i64> = counts.values().copied().collect();
            sorted.sort_unstable();
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
}

fn pick_n(
    policy: &PickN,
    clusters: &BTreeMap<String, MemberCluster>,
    bound: &dyn Fn(&str) -> bool,
) -> Schedule {
    let n = policy.number_of_clusters as usize;
    let affinity = Affinity::new(&policy.preferred, clusters);
    let mut not_picked = Vec::new();
    let mut eligible: Vec<(&MemberCluster, i64)> = Vec::new();
    for c in clusters.values() {
        match required(&policy.terms, c) {
            Ok(()) => eligible.push((c, affinity.score(c))),
            Err(why) => not_picked.push((c.name.clone(), why)),
        }
    }
    // The clusters the placement holds stay (even if tainted since); when
    // there are too many, the lowest scored go first, the smaller name first.
    let mut kept: Vec<(&MemberCluster, i64)> =
        eligible.iter().copied().filter(|(c, _)| bound(&c.name)).collect();
    if kept.len() > n {
        kept.sort_by(|(a, sa), (b, sb)| (sa, &a.name).cmp(&(sb, &b.name)));
        for (c, _) in kept.drain(..kept.len() - n) {
            not_picked.push((c.name.clone(), "numberOfClusters was lowered".to_string()));
        }
    }
    let held: HashSet<&str> =
        eligible.iter().filter(|(c, _)| bound(&c.name)).map(|(c, _)| c.name.as_str()).collect();
    let mut picked: Vec<String> = kept.iter().map(|(c, _)| c.name.clone()).collect();
    let mut spread = Spread::new(&policy.spread, clusters);
    for (c, _) in &kept {
        spread.picked(c);
    }
    let mut candidates: Vec<(&MemberCluster, i64)> = Vec::new();
    for (c, score) in eligible.iter().copied().filter(|(c, _)| !held.contains(c.name.as_str())) {
        match untolerated(c, &policy.tolerations) {
            Some(why) => not_picked.push((c.name.clone(), why)),
            None => candidates.push((c, score)),
        }
    }
    // Best first: topology spread score (which changes with each pick, so
    // one at a time), then affinity score, then name.
    let mut chosen: HashSet<&str> = HashSet::new();
    let mut filtered: BTreeMap<&str, String> = BTreeMap::new();
    let mut last_spread: BTreeMap<&str, i64> = BTreeMap::new();
    if policy.spread.is_empty() {
        let mut order = candidates.clone();
        order.sort_by(|(a, sa), (b, sb)| sb.cmp(sa).then_with(|| a.name.cmp(&b.name)));
        for (c, _) in order.into_iter().take(n.saturating_sub(picked.len())) {
            chosen.insert(c.name.as_str());
            picked.push(c.name.clone());
        }
    } else {
        while picked.len() < n {
            let mut best: Option<((i64, i64), &MemberCluster)> = None;
            for &(c, affinity) in candidates.iter().filter(|(c, _)| !chosen.contains(c.name.as_str())) {
                match spread.score(c) {
                    Err(why) => {
                        filtered.insert(c.name.as_str(), why);
                    }
                    Ok(s) => {
                        filtered.remove(c.name.as_str());
                        last_spread.insert(c.name.as_str(), s);
                        // Higher first; on a tie the smaller name (the first seen).
                        if best.is_none_or(|(b, _)| (s, affinity) > b) {
                            best = Some(((s, affinity), c));
                        }
                    }
                }
            }
            let Some((_, c)) = best else { break };
            chosen.insert(c.name.as_str());
            spread.picked(c);
            picked.push(c.name.clone());
        }
    }
    for (c, affinity) in candidates.iter().filter(|(c, _)| !chosen.contains(c.name.as_str())) {
        let why = match filtered.get(c.name.as_str()) {
            Some(why) => why.clone(),
            None => {
                let spread = last_spread.get(c.name.as_str()).copied().unwrap_or(0);
                format!(
                    "cluster does not score high enough (affinity score: {affinity}, topology spread score: {spread})"
                )
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
