//! Which hub resources a placement selects.
//!
//! A ClusterResourcePlacement selects cluster-scoped objects by group, kind and
//! name or labels; a selected Namespace (scope `NamespaceWithResources`, the
//! default) brings every namespaced hub resource in it; with
//! `NamespaceWithResourceSelectors`, the placement's other selectors pick
//! namespaced resources in it. A ResourcePlacement selects namespaced objects
//! of its own namespace the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::repo::model::{Manifest, ObjectKey, Placement, ResourceSelector, SelectionScope, SelectorTarget};

/// Whether `s` (a selector of `p`) picks `key`: a cluster-scoped object for a
/// ClusterResourcePlacement, a namespaced one in the namespace its selectors
/// pick in ([`Placement::selects_in`]).
fn selector_matches(
    s: &ResourceSelector,
    p: &Placement,
    key: &ObjectKey,
    labels: &BTreeMap<String, String>,
) -> bool {
    s.group == key.group
        && s.kind == key.kind
        && match key.namespace.as_deref() {
            None => p.namespace.is_none(),
            Some(ns) => p.selects_in() == Some(ns),
        }
        && match &s.target {
            SelectorTarget::Name(n) => *n == key.name,
            SelectorTarget::Labels(sel) => sel.matches(labels),
            SelectorTarget::All => true,
        }
}

/// Whether the placement selects the object `key` (with `labels`) by one of
/// its selectors: a cluster-scoped one, or for a ResourcePlacement one of its
/// namespace.
pub fn selects_key(p: &Placement, key: &ObjectKey, labels: &BTreeMap<String, String>) -> bool {
    p.selectors.iter().any(|s| selector_matches(s, p, key, labels))
}

/// Whether selecting `key` (a Namespace, with `labels`) brings the resources inside it.
pub fn brings_namespace_of(p: &Placement, key: &ObjectKey, labels: &BTreeMap<String, String>) -> bool {
    key.group.is_empty()
        && key.kind == "Namespace"
        && p.namespace.is_none()
        && p.selectors
            .iter()
            .any(|s| s.scope == SelectionScope::NamespaceWithResources && selector_matches(s, p, key, labels))
}

/// Whether the placement selects this cluster-scoped object by one of its selectors.
pub fn selects_directly(p: &Placement, m: &Manifest) -> bool {
    selects_key(p, &m.key, &m.labels)
}

/// Whether selecting this object (a Namespace) brings the resources inside it.
pub fn brings_namespace_content(p: &Placement, m: &Manifest) -> bool {
    brings_namespace_of(p, &m.key, &m.labels)
}

/// The keys a placement selects among `hub`; `by_namespace` lists the namespaced keys per namespace.
pub fn selection<'a>(
    p: &Placement,
    hub: impl Iterator<Item = (&'a ObjectKey, &'a Arc<Manifest>)>,
    by_namespace: &BTreeMap<String, BTreeSet<ObjectKey>>,
) -> BTreeSet<ObjectKey> {
    let mut out = BTreeSet::new();
    for (key, m) in hub {
        if !selects_directly(p, m) {
            continue;
        }
        out.insert(key.clone());
        if brings_namespace_content(p, m)
            && let Some(inside) = by_namespace.get(&key.name)
        {
            out.extend(inside.iter().cloned());
        }
    }
    out
}

/// The manifests a placement of `fleet` selects, in apply order: Namespaces,
/// other cluster-scoped objects, then namespaced objects.
pub fn selected_manifests(fleet: &crate::repo::Fleet, placement: &str) -> Vec<Arc<Manifest>> {
    let Some(p) = fleet.placements.get(placement) else { return Vec::new() };
    let mut by_namespace: BTreeMap<String, BTreeSet<ObjectKey>> = BTreeMap::new();
    for key in fleet.hub.keys() {
        if let Some(ns) = &key.namespace {
            by_namespace.entry(ns.clone()).or_default().insert(key.clone());
        }
    }
    let keys = selection(p, fleet.hub.iter(), &by_namespace);
    let mut out: Vec<Arc<Manifest>> = keys.iter().filter_map(|k| fleet.hub.get(k).cloned()).collect();
    out.sort_by_key(|m| {
        let rank = match (&m.key.namespace, m.key.kind.as_str()) {
            (None, "Namespace") => 0,
            (None, _) => 1,
            (Some(_), _) => 2,
        };
        (rank, m.key.clone())
    });
    out
}
