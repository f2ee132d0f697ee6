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
            Some(other) => {
                ctx.error(format!(
                    "{at}.selectionScope: {other:?} is not NamespaceWithResources or NamespaceOnly"
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

pub(super) fn read_terms(ctx: &mut Ctx, field: &str, sel: &wire::ClusterSelector) -> Vec<LabelSelector> {
    let mut terms = Vec::new();
    for (i, t) in sel.cluster_selector_terms.iter().enumerate() {
        let at = format!("{field}.clusterSelectorTerms[{i}]");
        if t.property_selector.is_some() {
            ctx.error(format!("{at}.propertySelector is not supported (select clusters by label)"));
        }
        let ls = t.label_selector.clone().unwrap_or_default();
        ctx.errors(ls.validate(&format!("{at}.labelSelector")));
        terms.push(ls);
    }
    terms
}

pub(super) fn read_policy(ctx: &mut Ctx, policy: Option<&wire::Policy>) -> PlacementPolicy {
    let Some(p) = policy else {
        return PlacementPolicy::PickAll { terms: Vec::new() };
    };
    if p.tolerations.is_some() {
        ctx.error("spec.policy.tolerations is not supported (MemberClusters in Git carry no taints)");
    }
    if p.topology_spread_constraints.is_some() {
        ctx.error("spec.policy.topologySpreadConstraints is not supported");
    }
    let mut terms = Vec::new();
    if let Some(aff) = p.affinity.as_ref().and_then(|a| a.cluster_affinity.as_ref()) {
        if aff.preferred_during_scheduling_ignored_during_execution.is_some() {
            ctx.error(
                "spec.policy.affinity.clusterAffinity.preferredDuringSchedulingIgnoredDuringExecution is not supported",
            );
        }
        if let Some(req) = &aff.required_during_scheduling_ignored_during_execution {
            terms = read_terms(
                ctx,
                "spec.policy.affinity.clusterAffinity.requiredDuringSchedulingIgnoredDuringExecution",
                req,
            );
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
            PlacementPolicy::PickAll { terms }
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
            PlacementPolicy::PickN { number_of_clusters: n, terms }
        }
        other => {
            ctx.error(format!("spec.policy.placementType: {other:?} is not PickAll, PickFixed or PickN"));
            PlacementPolicy::PickAll { terms }
        }
    }
}

pub(super) fn read_apply_strategy(ctx: &mut Ctx, a: Option<&wire::ApplyStrategy>) -> ApplyStrategy {
    let mut out = ApplyStrategy {
        type_: ApplyType::ServerSideApply,
        when_to_apply: WhenToApply::Always,
        when_to_take_over: WhenToTakeOver::Always,
    };
    let Some(a) = a else { return out };
    let at = "spec.strategy.applyStrategy";
    match a.type_.as_deref() {
        None | Some("ServerSideApply") => {}
        Some("ReportDiff") => out.type_ = ApplyType::ReportDiff,
        Some(other) => ctx.error(format!("{at}.type: {other:?} is not ServerSideApply or ReportDiff")),
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

pub(super) fn read_placement(ctx: &mut Ctx, value: &Value) -> Option<Placement> {
    let w: wire::Object<wire::PlacementSpec> = ctx.wire(value)?;
    let name = w.metadata.name.clone().unwrap_or_default();
    check_name(ctx, &name);
    check_cluster_scoped(ctx, &w.metadata);
    let spec = &w.spec;
    let n = spec.resource_selectors.len();
    if !(1..=100).contains(&n) {
        ctx.error(format!("spec.resourceSelectors must have 1 to 100 entries (has {n})"));
    }
    let selectors = read_selectors(ctx, "spec.resourceSelectors", &spec.resource_selectors, false);
    for (i, s) in selectors.iter().enumerate() {
        if known_scope(&s.group, &s.kind) == KnownScope::Namespaced {
            ctx.error(format!(
                "spec.resourceSelectors[{i}]: {} is namespaced; a ClusterResourcePlacement selects \
                 cluster-scoped resources (select its Namespace instead)",
                s.kind
            ));
        }
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
    let apply = read_apply_strategy(ctx, strategy.and_then(|s| s.apply_strategy.as_ref()));
    let revision_history_limit = match spec.revision_history_limit {
        None => DEFAULT_REVISION_HISTORY_LIMIT,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            ctx.error(format!("spec.revisionHistoryLimit: {n} must be between 1 and 1000"));
            DEFAULT_REVISION_HISTORY_LIMIT
        }
    };
    Some(Placement {
        name,
        selectors,
        policy,
        rollout,
        apply,
        auto_run,
        revision_history_limit,
        origin: ctx.origin.clone(),
    })
}
