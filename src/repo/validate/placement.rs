//! ClusterResourcePlacement: selectors, scheduling policy, rollout and apply strategy.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

pub(super) fn read_selectors(
    ctx: &mut Ctx,
    field: &str,
    selectors: &[wire::ResourceSelector],
    require_name: bool,
) -> Vec<ResourceSelector> {
    let mut out = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if s.kind.is_empty() {
            ctx.error(format!("{at}.kind is required"));
        }
        if s.version.is_empty() {
            ctx.error(format!("{at}.version is required"));
        }
        if s.name.is_some() && s.label_selector.is_some() {
            ctx.error(format!("{at}: name and labelSelector are mutually exclusive"));
        }
        if require_name && s.name.as_deref().unwrap_or_default().is_empty() {
            ctx.error(format!("{at}.name is required"));
        }
        let scope = match s.selection_scope.as_deref() {
            None | Some("NamespaceWithResources") => SelectionScope::NamespaceWithResources,
            Some("NamespaceOnly") => SelectionScope::NamespaceOnly,
            Some("NamespaceWithResourceSelectors") => SelectionScope::NamespaceWithResourceSelectors,
            Some(other) => {
                ctx.error(format!(
                    "{at}.selectionScope: {other:?} is not NamespaceWithResources, NamespaceOnly or NamespaceWithResourceSelectors"
                ));
                SelectionScope::NamespaceWithResources
            }
        };
        if s.selection_scope.is_some() && !(s.group.is_empty() && s.kind == "Namespace") {
            ctx.error(format!("{at}.selectionScope applies only to Namespace selectors"));
        }
        let target = match (&s.name, &s.label_selector) {
            (Some(n), _) if n.is_empty() => {
                ctx.error(format!("{at}.name must not be empty"));
                SelectorTarget::All
            }
            (Some(n), _) => SelectorTarget::Name(n.clone()),
            (None, Some(sel)) => {
                ctx.errors(sel.validate(&format!("{at}.labelSelector")));
                SelectorTarget::Labels(sel.clone())
            }
            (None, None) => SelectorTarget::All,
        };
        out.push(ResourceSelector {
            group: s.group.clone(),
            version: s.version.clone(),
            kind: s.kind.clone(),
            target,
            scope,
        });
    }
    out
}

fn property_requirements(ctx: &mut Ctx, at: &str, sel: &wire::PropertySelector) -> Vec<PropertyRequirement> {
    let mut out = Vec::new();
    for (j, e) in sel.match_expressions.iter().enumerate() {
        let at = format!("{at}.propertySelector.matchExpressions[{j}]");
        if e.name.is_empty() {
            ctx.error(format!("{at}.name is required"));
        }
        let op = match e.operator.as_str() {
            "Gt" => PropertyOp::Gt,
            "Ge" => PropertyOp::Ge,
            "Eq" => PropertyOp::Eq,
            "Ne" => PropertyOp::Ne,
            "Lt" => PropertyOp::Lt,
            "Le" => PropertyOp::Le,
            other => {
                ctx.error(format!("{at}.operator: {other:?} is not Gt, Ge, Eq, Ne, Lt or Le"));
                continue;
            }
        };
        let [value] = e.values.as_slice() else {
            ctx.error(format!("{at}.values: exactly one value is needed (has {})", e.values.len()));
            continue;
        };
        match crate::schedule::parse_quantity(value) {
            Some(number) => {
                out.push(PropertyRequirement { name: e.name.clone(), op, value: value.clone(), number })
            }
            None => {
                ctx.error(format!("{at}.values[0]: {value:?} is not a quantity (such as 3, 500m or 16Gi)"))
            }
        }
    }
    out
}

pub(super) fn read_terms(ctx: &mut Ctx, field: &str, sel: &wire::ClusterSelector) -> Vec<ClusterTerm> {
    let mut terms = Vec::new();
    for (i, t) in sel.cluster_selector_terms.iter().enumerate() {
        let at = format!("{field}.clusterSelectorTerms[{i}]");
        if t.property_sorter.is_some() {
            ctx.error(format!("{at}.propertySorter is only allowed in preferred terms"));
        }
        if let Some(ls) = &t.label_selector {
            ctx.errors(ls.validate(&format!("{at}.labelSelector")));
        }
        let properties =
            t.property_selector.as_ref().map(|p| property_requirements(ctx, &at, p)).unwrap_or_default();
        terms.push(ClusterTerm { labels: t.label_selector.clone(), properties });
    }
    terms
}

fn read_preferred(
    ctx: &mut Ctx,
    field: &str,
    preferred: &[wire::PreferredClusterSelector],
) -> Vec<PreferredTerm> {
    let mut out = Vec::new();
    for (i, p) in preferred.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !(-100..=100).contains(&p.weight) {
            ctx.error(format!("{at}.weight: {} is not between -100 and 100", p.weight));
            continue;
        }
        let t = &p.preference;
        if let Some(ls) = &t.label_selector {
            ctx.errors(ls.validate(&format!("{at}.preference.labelSelector")));
        }
        // (As in KubeFleet, a propertySelector of a preferred term is not used.)
        let sorter = match &t.property_sorter {
            None => None,
            Some(s) => {
                if s.name.is_empty() {
                    ctx.error(format!("{at}.preference.propertySorter.name is required"));
                }
                match s.sort_order.as_str() {
                    "Ascending" => Some(PropertySorter { name: s.name.clone(), ascending: true }),
                    "Descending" => Some(PropertySorter { name: s.name.clone(), ascending: false }),
                    other => {
                        ctx.error(format!(
                            "{at}.preference.propertySorter.sortOrder: {other:?} is not Ascending or Descending"
                        ));
                        None
                    }
                }
            }
        };
        out.push(PreferredTerm { weight: p.weight as i32, labels: t.label_selector.clone(), sorter });
    }
    out
}

fn read_tolerations(ctx: &mut Ctx, tolerations: &[wire::Toleration]) -> Vec<Toleration> {
    let mut out = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let at = format!("spec.policy.tolerations[{i}]");
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        let exists = match t.operator.as_deref() {
            None | Some("Equal") => false,
            Some("Exists") => true,
            Some(other) => {
                ctx.error(format!("{at}.operator: {other:?} is not Equal or Exists"));
                continue;
            }
        };
        if exists && !value.is_empty() {
            ctx.error(format!("{at}.value must be empty with operator Exists"));
        }
        if !exists && key.is_empty() {
            ctx.error(format!("{at}.key is required with operator Equal"));
        }
        if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty() && *e != "NoSchedule") {
            ctx.error(format!("{at}.effect: {effect:?} is not NoSchedule"));
        }
        out.push(Toleration { key, exists, value });
    }
    out
}

fn read_spread(ctx: &mut Ctx, constraints: &[wire::TopologySpreadConstraint]) -> Vec<SpreadConstraint> {
    let mut out = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let at = format!("spec.policy.topologySpreadConstraints[{i}]");
        if let Err(e) = validate_label_key(&c.topology_key) {
            ctx.error(format!("{at}.topologyKey: {:?} {e}", c.topology_key));
        }
        let max_skew = match c.max_skew {
            None => 1,
            Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => n as u32,
            Some(n) => {
                ctx.error(format!("{at}.maxSkew: {n} must be at least 1"));
                1
            }
        };
        let do_not_schedule = match c.when_unsatisfiable.as_deref() {
            None | Some("DoNotSchedule") => true,
            Some("ScheduleAnyway") => false,
            Some(other) => {
                ctx.error(format!(
                    "{at}.whenUnsatisfiable: {other:?} is not DoNotSchedule or ScheduleAnyway"
                ));
                true
            }
        };
        out.push(SpreadConstraint { max_skew, topology_key: c.topology_key.clone(), do_not_schedule });
    }
    out
}

pub(super) fn read_policy(ctx: &mut Ctx, policy: Option<&wire::Policy>) -> PlacementPolicy {
    let Some(p) = policy else {
        return PlacementPolicy::PickAll { terms: Vec::new(), tolerations: Vec::new() };
    };
    let tolerations = read_tolerations(ctx, &p.tolerations);
    let spread = read_spread(ctx, &p.topology_spread_constraints);
    let mut terms = Vec::new();
    let mut preferred = Vec::new();
    if let Some(aff) = p.affinity.as_ref().and_then(|a| a.cluster_affinity.as_ref()) {
        let field = "spec.policy.affinity.clusterAffinity";
        preferred = read_preferred(
            ctx,
            &format!("{field}.preferredDuringSchedulingIgnoredDuringExecution"),
            &aff.preferred_during_scheduling_ignored_during_execution,
        );
        if let Some(req) = &aff.required_during_scheduling_ignored_during_execution {
            terms = read_terms(ctx, &format!("{field}.requiredDuringSchedulingIgnoredDuringExecution"), req);
        }
    }
    let placement_type = p.placement_type.as_deref().unwrap_or("PickAll");
    match placement_type {
        "PickAll" => {
            if p.cluster_names.is_some() {
                ctx.error("spec.policy.clusterNames is only allowed with placementType PickFixed");
            }
            if p.number_of_clusters.is_some() {
                ctx.error("spec.policy.numberOfClusters is only allowed with placementType PickN");
            }
            if !spread.is_empty() {
                ctx.error("spec.policy.topologySpreadConstraints is only allowed with placementType PickN");
            }
            // (Preferred terms only order PickN's choice: PickAll takes every cluster.)
            PlacementPolicy::PickAll { terms, tolerations }
        }
        "PickFixed" => {
            if p.affinity.is_some() {
                ctx.error("spec.policy.affinity is not allowed with placementType PickFixed");
            }
            if p.number_of_clusters.is_some() {
                ctx.error("spec.policy.numberOfClusters is only allowed with placementType PickN");
            }
            let names = p.cluster_names.clone().unwrap_or_default();
            if names.is_empty() {
                ctx.error(
                    "spec.policy.clusterNames must list at least one cluster with placementType PickFixed",
                );
            }
            let mut seen = BTreeSet::new();
            for n in &names {
                if !seen.insert(n) {
                    ctx.error(format!("spec.policy.clusterNames: {n} is listed twice"));
                }
            }
            PlacementPolicy::PickFixed { cluster_names: names }
        }
        "PickN" => {
            if p.cluster_names.is_some() {
                ctx.error("spec.policy.clusterNames is only allowed with placementType PickFixed");
            }
            let n = match p.number_of_clusters {
                Some(n) if (0..=u32::MAX as i64).contains(&n) => n as u32,
                Some(n) => {
                    ctx.error(format!("spec.policy.numberOfClusters: {n} must be >= 0"));
                    0
                }
                None => {
                    ctx.error("spec.policy.numberOfClusters is required with placementType PickN");
                    0
                }
            };
            PlacementPolicy::PickN(Box::new(PickN {
                number_of_clusters: n,
                terms,
                preferred,
                tolerations,
                spread,
            }))
        }
        other => {
            ctx.error(format!("spec.policy.placementType: {other:?} is not PickAll, PickFixed or PickN"));
            PlacementPolicy::PickAll { terms, tolerations }
        }
    }
}

pub(super) fn read_apply_strategy(ctx: &mut Ctx, a: Option<&wire::ApplyStrategy>) -> ApplyStrategy {
    let mut out = ApplyStrategy::default();
    let Some(a) = a else { return out };
    out.allow_co_ownership = a.allow_co_ownership.unwrap_or(false);
    out.force = a.server_side_apply_config.as_ref().and_then(|c| c.force);
    out.full_comparison = a.comparison_option.as_deref() == Some("FullComparison");
    let at = "spec.strategy.applyStrategy";
    match a.type_.as_deref() {
        // (gitfleet applies KubeFleet's ClientSideApply server-side too.)
        None | Some("ServerSideApply" | "ClientSideApply") => {}
        Some("ReportDiff") => out.type_ = ApplyType::ReportDiff,
        Some(other) => {
            ctx.error(format!("{at}.type: {other:?} is not ClientSideApply, ServerSideApply or ReportDiff"))
        }
    }
    match a.when_to_apply.as_deref() {
        None | Some("Always") => {}
        Some("IfNotDrifted") => out.when_to_apply = WhenToApply::IfNotDrifted,
        Some(other) => ctx.error(format!("{at}.whenToApply: {other:?} is not Always or IfNotDrifted")),
    }
    match a.when_to_take_over.as_deref() {
        None | Some("Always") => {}
        Some("IfNoDiff") => out.when_to_take_over = WhenToTakeOver::IfNoDiff,
        Some("Never") => out.when_to_take_over = WhenToTakeOver::Never,
        Some(other) => ctx.error(format!("{at}.whenToTakeOver: {other:?} is not Always, IfNoDiff or Never")),
    }
    if let Some(c) = a.comparison_option.as_deref()
        && c != "PartialComparison"
        && c != "FullComparison"
    {
        ctx.error(format!("{at}.comparisonOption: {c:?} is not PartialComparison or FullComparison"));
    }
    out
}

/// The namespace of a ClusterResourcePlacement's NamespaceWithResourceSelectors
/// selector, checked as KubeFleet's CRD does: one at most, by name, and the
/// only Namespace selector then.
fn selector_namespace(ctx: &mut Ctx, selectors: &[ResourceSelector], namespaced: bool) -> Option<String> {
    let namespaces: Vec<(usize, &ResourceSelector)> =
        selectors.iter().enumerate().filter(|(_, s)| s.group.is_empty() && s.kind == "Namespace").collect();
    let scoped: Vec<&(usize, &ResourceSelector)> = namespaces
        .iter()
        .filter(|(_, s)| s.scope == SelectionScope::NamespaceWithResourceSelectors)
        .collect();
    let [(i, s)] = scoped.as_slice() else {
        if scoped.len() > 1 {
            ctx.error("spec.resourceSelectors: only one namespace selector with NamespaceWithResourceSelectors mode is allowed");
        }
        return None;
    };
    if namespaced {
        ctx.error(format!("spec.resourceSelectors[{i}]: a ResourcePlacement selects no Namespace"));
        return None;
    }
    if namespaces.len() > 1 {
        ctx.error(
            "spec.resourceSelectors: when using NamespaceWithResourceSelectors mode, only one namespace selector is allowed",
        );
    }
    match &s.target {
        SelectorTarget::Name(n) => Some(n.clone()),
        _ => {
            ctx.error(format!(
                "spec.resourceSelectors[{i}]: a namespace selector with NamespaceWithResourceSelectors mode must select by name"
            ));
            None
        }
    }
}

pub(super) fn read_placement(ctx: &mut Ctx, value: &Value, namespaced: bool) -> Option<Placement> {
    let w: wire::Object<wire::PlacementSpec> = ctx.wire(value)?;
    let (namespace, name) = scoped_key(ctx, &w.metadata, namespaced);
    let spec = &w.spec;
    let n = spec.resource_selectors.len();
    if !(1..=100).contains(&n) {
        ctx.error(format!("spec.resourceSelectors must have 1 to 100 entries (has {n})"));
    }
    let selectors = read_selectors(ctx, "spec.resourceSelectors", &spec.resource_selectors, false);
    let selector_namespace = selector_namespace(ctx, &selectors, namespaced);
    for (i, s) in selectors.iter().enumerate() {
        match (namespaced, known_scope(&s.group, &s.kind)) {
            (false, KnownScope::Namespaced) if selector_namespace.is_some() => {}
            (false, KnownScope::Namespaced) => ctx.error(format!(
                "spec.resourceSelectors[{i}]: {} is namespaced; a ClusterResourcePlacement selects \
                 cluster-scoped resources (select its Namespace instead, with selectionScope \
                 NamespaceWithResourceSelectors to pick what in it)",
                s.kind
            )),
            (true, KnownScope::Cluster) => ctx.error(format!(
                "spec.resourceSelectors[{i}]: {} is cluster-scoped; a ResourcePlacement selects \
                 namespaced resources of its own namespace (use a ClusterResourcePlacement)",
                s.kind
            )),
            _ => {}
        }
    }
    // What it applies is labelled `gitfleet.dev/placement: <namespace>_<name>` (63 characters at most).
    if name.len() > 63 {
        ctx.error(format!(
            "metadata.namespace and metadata.name {name:?} together must be at most 62 characters \
             (what a ResourcePlacement applies is labelled with both)"
        ));
    }
    if namespaced && spec.status_reporting_scope.is_some() {
        ctx.error("spec.statusReportingScope is a field of ClusterResourcePlacement only");
    }
    let policy = read_policy(ctx, spec.policy.as_ref());
    let strategy = spec.strategy.as_ref();
    let rollout = match strategy.and_then(|s| s.type_.as_deref()) {
        None | Some("RollingUpdate") => {
            let max_unavailable = strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref())
                .map(|v| int_or_percent(ctx, "spec.strategy.rollingUpdate.maxUnavailable", v, 1, 1))
                .unwrap_or(Some(IntOrPercent::Percent(25)))
                .unwrap_or(IntOrPercent::Percent(25));
            RolloutType::RollingUpdate { max_unavailable }
        }
        Some("External") => {
            if strategy.is_some_and(|s| s.rolling_update.is_some()) {
                ctx.error("spec.strategy.rollingUpdate is only allowed with type RollingUpdate");
            }
            RolloutType::External
        }
        Some(other) => {
            ctx.error(format!("spec.strategy.type: {other:?} is not RollingUpdate or External"));
            RolloutType::External
        }
    };
    let auto_run = strategy.and_then(|s| s.auto_run.as_ref()).map(|a| a.staged_rollout_strategy_name.clone());
    if auto_run.is_some() && rollout != RolloutType::External {
        ctx.error("spec.strategy.autoRun is only allowed with type External");
    }
    if auto_run.as_deref() == Some("") {
        ctx.error("spec.strategy.autoRun.stagedRolloutStrategyName must not be empty");
    }
    // A ResourcePlacement's strategy is a StagedUpdateStrategy of its namespace.
    let auto_run = auto_run.map(|s| crate::repo::model::object_key(namespace.as_deref(), &s));
    let apply = read_apply_strategy(ctx, strategy.and_then(|s| s.apply_strategy.as_ref()));
    let revision_history_limit = match spec.revision_history_limit {
        None => DEFAULT_REVISION_HISTORY_LIMIT,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            ctx.error(format!("spec.revisionHistoryLimit: {n} must be between 1 and 1000"));
            DEFAULT_REVISION_HISTORY_LIMIT
        }
    };
    let namespace_status = match spec.status_reporting_scope.as_deref() {
        None | Some("ClusterScopeOnly") => None,
        Some("NamespaceAccessible") => {
            let namespaces: Vec<&ResourceSelector> =
                selectors.iter().filter(|s| s.group.is_empty() && s.kind == "Namespace").collect();
            match namespaces.as_slice() {
                [one] => match &one.target {
                    SelectorTarget::Name(n) if is_dns_label(n) => Some(n.clone()),
                    SelectorTarget::Name(n) => {
                        ctx.error(format!("spec.statusReportingScope: {n:?} is not a namespace name"));
                        None
                    }
                    _ => {
                        ctx.error("spec.statusReportingScope: NamespaceAccessible needs the Namespace selector to name its namespace");
                        None
                    }
                },
                _ => {
                    ctx.error(format!(
                        "spec.statusReportingScope: NamespaceAccessible needs exactly one resourceSelector of kind Namespace (has {})",
                        namespaces.len()
                    ));
                    None
                }
            }
        }
        Some(other) => {
            ctx.error(format!(
                "spec.statusReportingScope: {other:?} is not ClusterScopeOnly or NamespaceAccessible"
            ));
            None
        }
    };
    Some(Placement {
        name,
        namespace,
        selector_namespace,
        selectors,
        policy,
        rollout,
        apply,
        auto_run,
        revision_history_limit,
        namespace_status,
        spec: value.get("spec").cloned().unwrap_or(Value::Null),
        origin: ctx.origin.clone(),
    })
}
