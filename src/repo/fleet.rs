//! The fleet at one commit: every object of every file, with the checks that
//! need more than one object (duplicate names, references between objects).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::*;
use super::validate::{Issue, ParsedFile};

/// All objects of a commit, by kind. Objects of broken files are left out.
#[derive(Debug, Default, Clone)]
pub struct Fleet {
    pub clusters: BTreeMap<String, MemberCluster>,
    pub placements: BTreeMap<String, Placement>,
    pub strategies: BTreeMap<String, Strategy>,
    pub runs: BTreeMap<String, UpdateRun>,
    /// Keyed by `(kind, namespace, name)`.
    pub overrides: BTreeMap<(String, Option<String>, String), Override>,
    pub approvals: BTreeMap<String, Approval>,
    /// RolloutWindows by name.
    pub windows: BTreeMap<String, (crate::repo::window::RolloutWindow, Origin)>,
    /// ClusterResourcePlacementEvictions by name.
    pub evictions: BTreeMap<String, Eviction>,
    /// ClusterResourcePlacementDisruptionBudgets by name (= their placement's).
    pub budgets: BTreeMap<String, DisruptionBudget>,
    pub hub: BTreeMap<ObjectKey, Arc<Manifest>>,
    /// Every object's document as read, by `(kind, namespace, name)`.
    pub raw: BTreeMap<(String, Option<String>, String), Arc<serde_json::Value>>,
    pub issues: Vec<Issue>,
}

fn issue(origin: &Origin, object: String, message: String) -> Issue {
    Issue { path: origin.path.clone(), line: Some(origin.line), object: Some(object), message }
}

/// Inserts into a map keyed by name, reporting a second definition.
fn insert_unique<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    issues: &mut Vec<Issue>,
    key: K,
    value: V,
    origin_of: impl Fn(&V) -> &Origin,
    describe: String,
) {
    if let Some(first) = map.get(&key) {
        let first = origin_of(first).clone();
        let second = origin_of(&value).clone();
        issues.push(issue(&second, describe, format!("is defined twice (first at {first})")));
        return;
    }
    map.insert(key, value);
}

impl Fleet {
    /// Collects the objects of the given files and runs the cross-object checks.
    pub fn build<'a>(files: impl IntoIterator<Item = &'a ParsedFile>) -> Fleet {
        let mut f = Fleet::default();
        for file in files {
            f.issues.extend(file.issues.iter().cloned());
            if file.is_broken() {
                continue;
            }
            for (object, value) in file.objects.iter().zip(&file.values) {
                let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
                let ns = value.pointer("/metadata/namespace").and_then(|n| n.as_str()).map(str::to_string);
                let name = value.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default();
                f.raw.entry((kind, ns, name.to_string())).or_insert_with(|| value.clone());
                f.add(object.clone());
            }
        }
        f.check_references();
        f.issues.sort();
        f.issues.dedup();
        f
    }

    fn add(&mut self, object: FleetObject) {
        let describe = object.describe();
        let issues = &mut self.issues;
        match object {
            FleetObject::Cluster(c) => {
                insert_unique(&mut self.clusters, issues, c.name.clone(), c, |c| &c.origin, describe)
            }
            FleetObject::Placement(p) => {
                insert_unique(&mut self.placements, issues, p.name.clone(), p, |p| &p.origin, describe)
            }
            FleetObject::Strategy(s) => {
                insert_unique(&mut self.strategies, issues, s.name.clone(), s, |s| &s.origin, describe)
            }
            FleetObject::Run(r) => {
                insert_unique(&mut self.runs, issues, r.name.clone(), r, |r| &r.origin, describe)
            }
            FleetObject::Override(o) => {
                let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
                insert_unique(&mut self.overrides, issues, key, o, |o| &o.origin, describe)
            }
            FleetObject::Approval(a) => {
                insert_unique(&mut self.approvals, issues, a.name.clone(), a, |a| &a.origin, describe)
            }
            FleetObject::Eviction(e) => {
                insert_unique(&mut self.evictions, issues, e.name.clone(), e, |e| &e.origin, describe)
            }
            FleetObject::Budget(b) => {
                insert_unique(&mut self.budgets, issues, b.name.clone(), b, |b| &b.origin, describe)
            }
            FleetObject::Window(w, origin) => {
                let name = w.name.clone();
                insert_unique(&mut self.windows, issues, name, (w, origin), |(_, o)| o, describe)
            }
            FleetObject::Hub(m) => {
                let key = m.key.clone();
                insert_unique(&mut self.hub, issues, key, m, |m| &m.origin, describe)
            }
        }
    }

    fn check_references(&mut self) {
        let mut found = Vec::new();
        for r in self.runs.values() {
            let run = describe("ClusterStagedUpdateRun", &r.name);
            if !r.placement.is_empty() && !self.placements.contains_key(&r.placement) {
                let (kind, (_, name)) =
                    (scoped_kind("ClusterResourcePlacement", &r.placement), split_key(&r.placement));
                let msg =
                    format!("spec.placementName: {kind} {name} does not exist{}", in_namespace(&r.placement));
                found.push(issue(&r.origin, run.clone(), msg));
            }
            if !r.strategy.is_empty() && !self.strategies.contains_key(&r.strategy) {
                let (kind, (_, name)) =
                    (scoped_kind("ClusterStagedUpdateStrategy", &r.strategy), split_key(&r.strategy));
                let msg = format!(
                    "spec.stagedRolloutStrategyName: {kind} {name} does not exist{}",
                    in_namespace(&r.strategy)
                );
                found.push(issue(&r.origin, run, msg));
            }
        }
        for o in self.overrides.values() {
            if let Some(p) = &o.placement
                && !p.is_empty()
                && !self.placements.contains_key(p)
            {
                let (kind, (_, name)) = (scoped_kind("ClusterResourcePlacement", p), split_key(p));
                found.push(issue(
                    &o.origin,
                    format!("{}/{}", o.kind, o.name),
                    format!("spec.placement.name: {kind} {name} does not exist{}", in_namespace(p)),
                ));
            }
        }
        for p in self.placements.values() {
            if let Some(s) = &p.auto_run
                && !s.is_empty()
                && !self.strategies.contains_key(s)
            {
                let (kind, (_, name)) = (scoped_kind("ClusterStagedUpdateStrategy", s), split_key(s));
                found.push(issue(
                    &p.origin,
                    describe("ClusterResourcePlacement", &p.name),
                    format!(
                        "spec.strategy.autoRun.stagedRolloutStrategyName: {kind} {name} does not exist{}",
                        in_namespace(s)
                    ),
                ));
            }
        }
        self.issues.extend(found);
    }
}

/// ` in namespace NS` for a namespaced key, nothing otherwise.
fn in_namespace(key: &str) -> String {
    split_key(key).0.map(|ns| format!(" in namespace {ns}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::validate::{Area, parse_file};

    fn file(path: &str, yaml: &str) -> ParsedFile {
        parse_file(path, yaml.as_bytes(), Area::Manifests)
    }

    fn placement(name: &str, strategy_extra: &str) -> String {
        format!(
            r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata:
  name: {name}
spec:
  resourceSelectors:
  - {{group: "", version: v1, kind: Namespace, name: test-namespace}}
{strategy_extra}"#
        )
    }

    const STRATEGY: &str = r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata:
  name: example-strategy
spec:
  stages:
  - name: all
"#;

    const RUN: &str = r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata:
  name: example-run
spec:
  placementName: example-placement
  stagedRolloutStrategyName: example-strategy
"#;

    const OVERRIDE: &str = r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourceOverride
metadata:
  name: example-cro
spec:
  placement:
    name: example-placement
  clusterResourceSelectors:
  - {group: "", version: v1, kind: Namespace, name: test-namespace}
  policy:
    overrideRules:
    - jsonPatchOverrides:
      - {op: add, path: /metadata/labels/team, value: a}
"#;

    fn configmap(namespace: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {namespace}\n")
    }

    /// Builds a fleet from `(path, yaml)` files, each parsed as a manifests file.
    fn fleet(files: &[(&str, &str)]) -> Fleet {
        let parsed: Vec<ParsedFile> = files.iter().map(|(p, y)| file(p, y)).collect();
        for (p, (path, _)) in parsed.iter().zip(files) {
            assert!(!p.objects.is_empty() || p.is_broken(), "{path} read nothing");
        }
        Fleet::build(&parsed)
    }

    fn messages(f: &Fleet) -> Vec<String> {
        f.issues.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn consistent_fleet_has_no_issues() {
        let p = placement("example-placement", "");
        let f = fleet(&[("p.yaml", &p), ("s.yaml", STRATEGY), ("r.yaml", RUN), ("o.yaml", OVERRIDE)]);
        assert!(f.issues.is_empty(), "{:#?}", f.issues);
        assert_eq!(f.placements.len(), 1);
        assert_eq!(f.strategies.len(), 1);
        assert_eq!(f.runs.len(), 1);
        assert_eq!(f.overrides.len(), 1);
    }

    #[test]
    fn placement_defined_in_two_files_is_reported_on_the_second() {
        let p = placement("example-placement", "");
        let f = fleet(&[("placements/a.yaml", &p), ("placements/b.yaml", &p)]);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        let issue = &f.issues[0];
        assert_eq!(&*issue.path, "placements/b.yaml");
        assert_eq!(issue.line, Some(1));
        assert_eq!(issue.object.as_deref(), Some("ClusterResourcePlacement/example-placement"));
        assert!(issue.message.contains("defined twice"), "{issue}");
        assert!(issue.message.contains("first at placements/a.yaml:1"), "{issue}");
        assert_eq!(&*f.placements["example-placement"].origin.path, "placements/a.yaml");
    }

    #[test]
    fn duplicate_in_the_same_file_names_both_lines() {
        let two = format!("{STRATEGY}---\n{STRATEGY}");
        let f = fleet(&[("strategies.yaml", &two)]);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        assert_eq!(f.issues[0].line, Some(9));
        assert!(f.issues[0].message.contains("first at strategies.yaml:1"), "{}", f.issues[0]);
    }

    #[test]
    fn same_name_in_two_namespaces_is_not_a_duplicate() {
        let (a, b) = (configmap("team-a"), configmap("team-b"));
        let f = fleet(&[("a.yaml", &a), ("b.yaml", &b)]);
        assert!(f.issues.is_empty(), "{:#?}", f.issues);
        assert_eq!(f.hub.len(), 2);

        let f = fleet(&[("a.yaml", &a), ("again.yaml", &a)]);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        assert_eq!(&*f.issues[0].path, "again.yaml");
        assert!(f.issues[0].message.contains("first at a.yaml:1"), "{}", f.issues[0]);
    }

    #[test]
    fn same_name_in_different_kinds_is_not_a_duplicate() {
        let p = placement("example-strategy", "");
        let f = fleet(&[("p.yaml", &p), ("s.yaml", STRATEGY)]);
        assert!(f.issues.is_empty(), "{:#?}", f.issues);
    }

    #[test]
    fn run_must_reference_existing_placement_and_strategy() {
        let f = fleet(&[("runs/example-run.yaml", RUN)]);
        assert_eq!(f.issues.len(), 2, "{:#?}", f.issues);
        for issue in &f.issues {
            assert_eq!(&*issue.path, "runs/example-run.yaml");
            assert_eq!(issue.object.as_deref(), Some("ClusterStagedUpdateRun/example-run"));
        }
        let all = messages(&f).join("\n");
        let placement = "spec.placementName: ClusterResourcePlacement example-placement does not exist";
        let strategy =
            "spec.stagedRolloutStrategyName: ClusterStagedUpdateStrategy example-strategy does not exist";
        assert!(all.contains(placement), "{all}");
        assert!(all.contains(strategy), "{all}");
    }

    #[test]
    fn override_must_reference_existing_placement() {
        let f = fleet(&[("overrides/cro.yaml", OVERRIDE)]);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        assert_eq!(f.issues[0].object.as_deref(), Some("ClusterResourceOverride/example-cro"));
        let expected = "spec.placement.name: ClusterResourcePlacement example-placement does not exist";
        assert!(f.issues[0].message.contains(expected), "{}", f.issues[0]);
    }

    #[test]
    fn auto_run_must_reference_existing_strategy() {
        let auto = "  strategy:\n    type: External\n    autoRun:\n      stagedRolloutStrategyName: example-strategy\n";
        let p = placement("example-placement", auto);
        let f = fleet(&[("p.yaml", &p)]);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        assert_eq!(f.issues[0].object.as_deref(), Some("ClusterResourcePlacement/example-placement"));
        assert!(
            f.issues[0].message.contains("spec.strategy.autoRun.stagedRolloutStrategyName")
                && f.issues[0].message.contains("example-strategy does not exist"),
            "{}",
            f.issues[0]
        );
        let f = fleet(&[("p.yaml", &p), ("s.yaml", STRATEGY)]);
        assert!(f.issues.is_empty(), "{:#?}", f.issues);
    }

    #[test]
    fn objects_of_a_broken_file_are_left_out() {
        let broken = format!("{STRATEGY}---\n{}", configmap("Not_A_Namespace"));
        let p = placement("example-placement", "");
        let f = fleet(&[("broken.yaml", &broken), ("p.yaml", &p)]);
        assert!(f.strategies.is_empty(), "the valid strategy of a broken file must not be used");
        assert!(f.hub.is_empty());
        assert_eq!(f.placements.len(), 1);
        assert_eq!(f.issues.len(), 1, "{:#?}", f.issues);
        assert_eq!(&*f.issues[0].path, "broken.yaml");
        assert_eq!(f.issues[0].line, Some(9));
    }
}
