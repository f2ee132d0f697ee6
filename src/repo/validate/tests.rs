use super::*;

const PATH: &str = "fleet/objects.yaml";

// ---------------------------------------------------------------------------
// Helpers: parse a file, look at the issues a user would see.
// ---------------------------------------------------------------------------

fn parse(yaml: &str) -> ParsedFile {
    parse_file(PATH, yaml.as_bytes(), Area::Manifests)
}

/// Every issue of a manifests file; each names the file.
fn issues(yaml: &str) -> Vec<Issue> {
    let found = parse(yaml).issues;
    for issue in &found {
        assert_eq!(&*issue.path, PATH, "{issue}");
    }
    found
}

/// The objects of a file that must have no issue at all.
fn ok(yaml: &str) -> Vec<FleetObject> {
    let parsed = parse(yaml);
    assert!(parsed.issues.is_empty(), "unexpected issues: {:#?}\nfor:\n{yaml}", parsed.issues);
    parsed.objects
}

fn assert_mentions(issue: &Issue, words: &[&str]) {
    for word in words {
        assert!(issue.message.contains(word), "message {:?} does not mention {word:?}", issue.message);
    }
}

/// The file has exactly one issue, and its message mentions every word.
fn rejects(yaml: &str, words: &[&str]) -> Issue {
    let found = issues(yaml);
    assert_eq!(found.len(), 1, "expected one issue, got {found:#?}\nfor:\n{yaml}");
    let issue = found.into_iter().next().unwrap();
    assert_mentions(&issue, words);
    issue
}

/// Some issue of the file mentions every word (input that breaks several rules).
fn rejects_among(yaml: &str, words: &[&str]) -> Vec<Issue> {
    let found = issues(yaml);
    assert!(
        found.iter().any(|i| words.iter().all(|w| i.message.contains(w))),
        "no issue mentions all of {words:?}: {found:#?}"
    );
    found
}

fn single(yaml: &str) -> FleetObject {
    let mut objects = ok(yaml);
    assert_eq!(objects.len(), 1, "{objects:#?}");
    objects.remove(0)
}

fn the_placement(yaml: &str) -> Placement {
    match single(yaml) {
        FleetObject::Placement(p) => p,
        other => panic!("not a placement: {other:?}"),
    }
}

fn the_strategy(yaml: &str) -> Strategy {
    match single(yaml) {
        FleetObject::Strategy(s) => s,
        other => panic!("not a strategy: {other:?}"),
    }
}

fn the_run(yaml: &str) -> UpdateRun {
    match single(yaml) {
        FleetObject::Run(r) => r,
        other => panic!("not a run: {other:?}"),
    }
}

fn the_manifest(yaml: &str) -> Arc<Manifest> {
    match single(yaml) {
        FleetObject::Hub(m) => m,
        other => panic!("not a hub resource: {other:?}"),
    }
}

/// Indents every non-empty line of `text` by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    let mut out = String::new();
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Builders for the gitfleet kinds (every one starts on line 1).
// ---------------------------------------------------------------------------

const SELECT_NAMESPACE: &str = r#"resourceSelectors:
- group: ""
  version: v1
  kind: Namespace
  name: test-namespace
"#;

/// A ClusterResourcePlacement `example-placement` with `spec` as given.
fn placement(spec: &str) -> String {
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata:
  name: example-placement
spec:
{}"#,
        indent(spec, 2)
    )
}

/// A placement selecting `test-namespace`, plus the rest of the spec.
fn placement_with(rest: &str) -> String {
    placement(&format!("{SELECT_NAMESPACE}{rest}"))
}

/// A placement with the given resource selector list (a YAML sequence).
fn placement_selecting(selectors: &str) -> String {
    placement(&format!("resourceSelectors:\n{selectors}"))
}

/// A ClusterStagedUpdateStrategy `example-strategy` with these stages (a YAML sequence).
fn strategy(stages: &str) -> String {
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata:
  name: example-strategy
spec:
  stages:
{}"#,
        indent(stages, 2)
    )
}

/// A strategy with a single (catch-all) stage `canary` carrying `fields`.
fn one_stage(fields: &str) -> String {
    strategy(&format!("- name: canary\n{}", indent(fields, 2)))
}

/// `n` stages; all but the last select clusters by label.
fn stages(n: usize) -> String {
    (0..n)
        .map(|i| {
            if i + 1 == n {
                format!("- name: stage{i}\n")
            } else {
                format!("- name: stage{i}\n  labelSelector: {{matchLabels: {{order: \"{i}\"}}}}\n")
            }
        })
        .collect()
}

/// A ClusterStagedUpdateRun `example-run` with `spec` as given.
fn run(spec: &str) -> String {
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata:
  name: example-run
spec:
{}"#,
        indent(spec, 2)
    )
}

/// A run of example-placement through example-strategy, plus the rest of the spec.
fn run_with(rest: &str) -> String {
    run(&format!("placementName: example-placement\nstagedRolloutStrategyName: example-strategy\n{rest}"))
}

/// A ClusterResourceOverride `example-cro` on ClusterRole secret-reader with these rules.
fn cluster_override(rules: &str) -> String {
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourceOverride
metadata:
  name: example-cro
spec:
  placement:
    name: example-placement
  clusterResourceSelectors:
  - group: rbac.authorization.k8s.io
    version: v1
    kind: ClusterRole
    name: secret-reader
  policy:
    overrideRules:
{}"#,
        indent(rules, 4)
    )
}

/// A cluster override with one rule holding one JSON patch.
fn patch(patch: &str) -> String {
    let item = indent(patch, 2).replacen("  ", "- ", 1);
    cluster_override(&format!("- jsonPatchOverrides:\n{}", indent(&item, 2)))
}

/// A ResourceEnvelope in namespace team-a (or none) wrapping `data` (a YAML mapping).
fn envelope(kind: &str, namespace: Option<&str>, data: &str) -> String {
    let ns = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!(
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: {kind}\nmetadata:\n  name: example-envelope\n{ns}data:\n{}",
        indent(data, 2)
    )
}

const WRAPPED_CONFIGMAP: &str = r#""cm.yaml":
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
  data:
    key: value
"#;

const WRAPPED_CLUSTERROLE: &str = r#""role.yaml":
  apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: reader
  rules: []
"#;

fn approval(status: &str) -> String {
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterApprovalRequest
metadata:
  name: example-run-canary
spec:
  parentStageRollout: example-run
  targetStage: canary
status:
  conditions:
{}"#,
        indent(status, 2)
    )
}

fn approvals(yaml: &str) -> ParsedFile {
    parse_file("approvals/example-run-canary.yaml", yaml.as_bytes(), Area::Approvals)
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

#[test]
fn document_needs_api_version() {
    let issue = rejects("kind: ConfigMap\nmetadata:\n  name: settings\n", &["no apiVersion"]);
    assert!(!issue.message.contains("kind"), "{issue}");
    assert_eq!(issue.object.as_deref(), Some("ConfigMap"));
    assert_eq!(issue.line, Some(1));
}

#[test]
fn document_needs_kind() {
    let issue = rejects("apiVersion: v1\nmetadata:\n  name: settings\n", &["no kind"]);
    assert!(!issue.message.contains("apiVersion"), "{issue}");
    assert_eq!(issue.object, None);
}

#[test]
fn document_needs_metadata_name() {
    let issue =
        rejects("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: team-a\n", &["no metadata.name"]);
    assert_eq!(issue.object.as_deref(), Some("ConfigMap"));
}

#[test]
fn document_missing_everything_names_all_three() {
    rejects("data:\n  key: value\n", &["apiVersion", "kind", "metadata.name"]);
}

#[test]
fn document_must_be_a_mapping() {
    rejects("- apiVersion: v1\n- kind: ConfigMap\n", &["not a mapping"]);
    rejects("just some text\n", &["not a mapping"]);
}

#[test]
fn yaml_syntax_error_gives_a_line() {
    let issue = rejects("apiVersion: v1\nkind: ConfigMap\nmetadata: name: settings\n", &[]);
    assert_eq!(issue.line, Some(3), "{issue}");
    assert_eq!(issue.object, None);
}

#[test]
fn bad_second_document_reports_its_own_line() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n  namespace: team-a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: team-a\n";
    let parsed = parse(yaml);
    assert_eq!(parsed.issues.len(), 1, "{:#?}", parsed.issues);
    assert_eq!(parsed.issues[0].line, Some(7));
    assert_mentions(&parsed.issues[0], &["metadata.name"]);
    assert!(parsed.is_broken());
    // The first document is still read (the fleet leaves the broken file out as a whole).
    assert_eq!(parsed.objects.len(), 1);
}

#[test]
fn unknown_spec_field_is_rejected_with_its_path() {
    let issue = rejects(&one_stage("sortingLabel: order\n"), &["spec.stages[0]", "sortingLabel"]);
    assert_eq!(issue.object.as_deref(), Some("ClusterStagedUpdateStrategy/example-strategy"));
    rejects(&placement("resourceSelector: []\n"), &["spec", "resourceSelector`"]);
    rejects(&placement_with("policy:\n  placmentType: PickAll\n"), &["spec.policy", "placmentType"]);
}

#[test]
fn unknown_kind_in_placement_group_is_rejected() {
    let yaml = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacements\nmetadata:\n  name: example\nspec: {}\n";
    let issue = rejects(yaml, &["unknown kind ClusterResourcePlacements", "placement.kubernetes-fleet.io"]);
    assert_eq!(issue.object.as_deref(), Some("ClusterResourcePlacements/example"));
}

#[test]
fn kubefleet_kinds_gitfleet_does_not_read_are_resources_unless_a_hub_writes_them() {
    let collector = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: MetricCollector\nmetadata:\n  name: c\n  namespace: test-ns\nspec: {}\n";
    let m = the_manifest(collector);
    assert_eq!((m.key.kind.as_str(), m.key.namespace.as_deref()), ("MetricCollector", Some("test-ns")));
    let work = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: Work\nmetadata:\n  name: w\n  namespace: fleet-member-m1\n";
    rejects(work, &["Work is written by a KubeFleet hub", "status folder"]);
    let typo =
        "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: StagedUpdateRuns\nmetadata:\n  name: r\n";
    rejects(typo, &["unknown kind StagedUpdateRuns", "did you mean StagedUpdateRun?"]);
    let own = "apiVersion: gitfleet.dev/v1alpha1\nkind: Window\nmetadata:\n  name: w\n";
    rejects(own, &["unknown kind Window in API group gitfleet.dev"]);
}

#[test]
fn namespace_with_resource_selectors_picks_in_its_namespace() {
    let nwrs = "- {group: \"\", version: v1, kind: Namespace, name: prod, selectionScope: NamespaceWithResourceSelectors}\n";
    let deploys = "- group: apps\n  version: v1\n  kind: Deployment\n  labelSelector:\n    matchLabels: {app: frontend}\n";
    let p = the_placement(&placement_selecting(&format!("{nwrs}{deploys}")));
    assert_eq!(p.selector_namespace.as_deref(), Some("prod"));
    assert_eq!(p.selects_in(), Some("prod"));
    rejects(&placement_selecting(deploys), &["Deployment is namespaced", "NamespaceWithResourceSelectors"]);
    let by_label = "- group: \"\"\n  version: v1\n  kind: Namespace\n  selectionScope: NamespaceWithResourceSelectors\n  labelSelector:\n    matchLabels: {team: a}\n";
    rejects(&placement_selecting(by_label), &["must select by name"]);
    let other = "- {group: \"\", version: v1, kind: Namespace, name: dev}\n";
    rejects(&placement_selecting(&format!("{nwrs}{other}")), &["only one namespace selector is allowed"]);
}

#[test]
fn generate_name_is_refused_with_the_reason() {
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: sample-job-\n  namespace: team-a\nspec: {}\n";
    rejects(job, &["metadata.generateName is not supported", "needs a metadata.name"]);
}

#[test]
fn namespaced_twins_are_keyed_by_namespace_and_name() {
    let rp = placement_with("").replace(
        "kind: ClusterResourcePlacement\nmetadata:\n  name: example-placement\n",
        "kind: ResourcePlacement\nmetadata:\n  name: example-placement\n  namespace: team-a\n",
    );
    assert!(rp.contains("kind: ResourcePlacement"), "{rp}");
    rejects(&rp, &["spec.resourceSelectors[0]: Namespace is cluster-scoped", "a ResourcePlacement selects"]);
    let rp = rp.replace("kind: Namespace", "kind: ConfigMap");
    let p = the_placement(&rp);
    assert_eq!((p.name.as_str(), p.namespace.as_deref()), ("team-a/example-placement", Some("team-a")));
    let no_ns = rp.replace("  namespace: team-a\n", "");
    rejects(&no_ns, &["is namespaced and needs metadata.namespace"]);
    let r = the_run(&run_with("").replace(
        "kind: ClusterStagedUpdateRun\nmetadata:\n  name: example-run\n",
        "kind: StagedUpdateRun\nmetadata:\n  name: example-run\n  namespace: team-a\n",
    ));
    assert_eq!(r.name, "team-a/example-run");
    assert_eq!(
        (r.placement.as_str(), r.strategy.as_str()),
        ("team-a/example-placement", "team-a/example-strategy")
    );
}

#[test]
fn fleet_api_version_must_be_v1beta1_or_v1() {
    let v2 = placement_with("").replace("/v1beta1", "/v2");
    rejects(&v2, &["unsupported apiVersion placement.kubernetes-fleet.io/v2"]);
    ok(&placement_with("").replace("/v1beta1", "/v1"));
    // KubeFleet has no v1alpha1 placement.
    rejects(&placement_with("").replace("/v1beta1", "/v1alpha1"), &["(use v1beta1 or v1)"]);
}

/// Overrides, strategies and runs KubeFleet also serves as v1alpha1 are read
/// as their v1beta1 equivalents.
#[test]
fn v1alpha1_overrides_strategies_and_runs_are_read_as_v1beta1() {
    let cro = "apiVersion: placement.kubernetes-fleet.io/v1alpha1\nkind: ClusterResourceOverride\nmetadata:\n  name: o\nspec:\n  clusterResourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: n}\n  policy:\n    overrideRules:\n    - jsonPatchOverrides:\n      - {op: add, path: /metadata/labels/x, value: y}\n";
    let FleetObject::Override(o) = single(cro) else { panic!() };
    assert_eq!(o.rules.len(), 1);
    let strategy = one_stage("").replace("/v1beta1", "/v1alpha1");
    assert!(strategy.contains("v1alpha1"));
    assert_eq!(the_strategy(&strategy).stages.len(), 1);
    let v2 = cro.replace("/v1alpha1", "/v2alpha1");
    rejects(
        &v2,
        &["unsupported apiVersion placement.kubernetes-fleet.io/v2alpha1 (use v1beta1, v1 or v1alpha1)"],
    );
}

#[test]
fn approval_request_outside_approvals_folder_is_rejected() {
    let yaml = approval("- type: Approved\n  status: \"True\"\n");
    rejects(&yaml, &["ClusterApprovalRequest", "approvals folder"]);
}

#[test]
fn approvals_folder_holds_only_approval_requests() {
    let parsed = approvals(&placement_with(""));
    assert_eq!(parsed.issues.len(), 1, "{:#?}", parsed.issues);
    assert_mentions(&parsed.issues[0], &["only ClusterApprovalRequest", "approvals folder"]);
    assert_eq!(&*parsed.issues[0].path, "approvals/example-run-canary.yaml");
    assert!(parsed.objects.is_empty());
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn gitfleet_object_names_must_be_lowercase_dns() {
    let upper = placement_with("").replace("name: example-placement", "name: Example-Placement");
    let issue = rejects(&upper, &["metadata.name \"Example-Placement\"", "lowercase DNS"]);
    assert_eq!(issue.object.as_deref(), Some("ClusterResourcePlacement/Example-Placement"));
    let long = strategy(&stages(1)).replace("example-strategy", &"s".repeat(64));
    rejects(&long, &["metadata.name", "at most 63"]);
    ok(&run_with("").replace("example-run", "run-1.v2"));
}

#[test]
fn cluster_scoped_gitfleet_kinds_must_not_set_namespace() {
    let with_ns = |yaml: String| yaml.replacen("metadata:\n", "metadata:\n  namespace: team-a\n", 1);
    for yaml in [placement_with(""), strategy(&stages(1)), run_with(""), patch("op: remove\npath: /rules/0")]
    {
        rejects(&with_ns(yaml), &["cluster-scoped", "must not set metadata.namespace"]);
    }
}

// ---------------------------------------------------------------------------
// MemberCluster
// ---------------------------------------------------------------------------

fn member(labels: &str) -> String {
    format!(
        "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: member1\n  labels:\n{}",
        indent(labels, 4)
    )
}

#[test]
fn member_cluster_labels_must_be_valid() {
    match single(&member("environment: canary\nkubernetes-fleet.io/order: \"1\"\n")) {
        FleetObject::Cluster(c) => assert_eq!(c.labels["environment"], "canary"),
        other => panic!("{other:?}"),
    }
    let issue = rejects(&member("\"bad key!\": x\n"), &["metadata.labels", "bad key!", "label key"]);
    assert_eq!(issue.object.as_deref(), Some("MemberCluster/member1"));
    rejects(&member("environment: -canary\n"), &["metadata.labels.environment", "-canary", "label value"]);
}

// ---------------------------------------------------------------------------
// ClusterResourcePlacement
// ---------------------------------------------------------------------------

fn cluster_roles(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "- {{group: rbac.authorization.k8s.io, version: v1, kind: ClusterRole, name: role-{i}}}\n"
            )
        })
        .collect()
}

#[test]
fn placement_needs_1_to_100_resource_selectors() {
    rejects(&placement("resourceSelectors: []\n"), &["spec.resourceSelectors", "1 to 100", "has 0"]);
    rejects(&placement_selecting(&cluster_roles(101)), &["spec.resourceSelectors", "has 101"]);
    assert_eq!(the_placement(&placement_selecting(&cluster_roles(100))).selectors.len(), 100);
    let p = the_placement(&placement_with(""));
    assert_eq!(
        p.selectors,
        vec![ResourceSelector {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            target: SelectorTarget::Name("test-namespace".into()),
            scope: SelectionScope::NamespaceWithResources,
        }]
    );
}

#[test]
fn resource_selector_needs_kind_and_version() {
    let found = issues(&placement_selecting("- group: \"\"\n  name: test-namespace\n"));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().any(|i| i.message.contains("spec.resourceSelectors[0].kind is required")));
    assert!(found.iter().any(|i| i.message.contains("spec.resourceSelectors[0].version is required")));
}

#[test]
fn resource_selector_name_and_label_selector_are_exclusive() {
    let yaml = placement_selecting(
        "- {group: \"\", version: v1, kind: Namespace, name: a, labelSelector: {matchLabels: {team: a}}}\n",
    );
    rejects(&yaml, &["spec.resourceSelectors[0]", "name and labelSelector are mutually exclusive"]);
}

#[test]
fn resource_selector_label_selector_is_validated() {
    let sel = |expr: &str| {
        placement_selecting(&format!(
            "- group: \"\"\n  version: v1\n  kind: Namespace\n  labelSelector:\n    matchExpressions:\n    - {expr}\n"
        ))
    };
    rejects(
        &sel("{key: team, operator: Equals, values: [a]}"),
        &["spec.resourceSelectors[0].labelSelector.matchExpressions[0].operator", "Equals"],
    );
    rejects(
        &sel("{key: team, operator: In, values: []}"),
        &["spec.resourceSelectors[0].labelSelector.matchExpressions[0]", "In needs at least one value"],
    );
    let p = the_placement(&sel("{key: team, operator: In, values: [a, b]}"));
    assert!(matches!(p.selectors[0].target, SelectorTarget::Labels(_)), "{:?}", p.selectors[0]);
}

#[test]
fn selection_scope_must_be_known() {
    let ns = |scope: &str| {
        placement_selecting(&format!(
            "- {{group: \"\", version: v1, kind: Namespace, name: test-namespace, selectionScope: {scope}}}\n"
        ))
    };
    rejects(&ns("Everything"), &["spec.resourceSelectors[0].selectionScope", "Everything"]);
    assert_eq!(the_placement(&ns("NamespaceOnly")).selectors[0].scope, SelectionScope::NamespaceOnly);
}

#[test]
fn selection_scope_only_on_namespace_selectors() {
    let yaml = placement_selecting(
        "- {group: rbac.authorization.k8s.io, version: v1, kind: ClusterRole, name: r, selectionScope: NamespaceOnly}\n",
    );
    rejects(&yaml, &["spec.resourceSelectors[0].selectionScope", "only to Namespace"]);
}

#[test]
fn placement_cannot_select_namespaced_kinds() {
    let yaml = placement_selecting(&format!(
        "{}- {{group: \"\", version: v1, kind: ConfigMap, name: settings}}\n",
        cluster_roles(1)
    ));
    rejects(&yaml, &["spec.resourceSelectors[1]", "ConfigMap is namespaced"]);
    // Custom kinds of unknown scope are the user's call.
    ok(&placement_selecting("- {group: example.com, version: v1, kind: Widget}\n"));
}

#[test]
fn placement_type_must_be_known() {
    rejects(
        &placement_with("policy:\n  placementType: PickSome\n"),
        &["spec.policy.placementType", "PickSome"],
    );
    let p = the_placement(&placement_with(""));
    assert_eq!(p.policy, PlacementPolicy::PickAll { terms: vec![], tolerations: vec![] });
}

#[test]
fn pick_all_takes_no_cluster_names_or_number() {
    rejects(
        &placement_with("policy:\n  placementType: PickAll\n  clusterNames: [member1]\n"),
        &["spec.policy.clusterNames", "PickFixed"],
    );
    rejects(&placement_with("policy:\n  numberOfClusters: 2\n"), &["spec.policy.numberOfClusters", "PickN"]);
    let affinity = "policy:\n  placementType: PickAll\n  affinity:\n    clusterAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        clusterSelectorTerms:\n        - labelSelector: {matchLabels: {environment: canary}}\n";
    match the_placement(&placement_with(affinity)).policy {
        PlacementPolicy::PickAll { terms, .. } => assert_eq!(terms.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pick_fixed_needs_distinct_cluster_names() {
    let fixed = |rest: &str| placement_with(&format!("policy:\n  placementType: PickFixed\n{rest}"));
    assert_eq!(
        the_placement(&fixed("  clusterNames: [member1, member2]\n")).policy,
        PlacementPolicy::PickFixed { cluster_names: vec!["member1".into(), "member2".into()] }
    );
    rejects(&fixed(""), &["spec.policy.clusterNames", "at least one"]);
    rejects(&fixed("  clusterNames: []\n"), &["spec.policy.clusterNames", "at least one"]);
    rejects(
        &fixed("  clusterNames: [member1, member1]\n"),
        &["spec.policy.clusterNames", "member1 is listed twice"],
    );
    rejects(
        &fixed("  clusterNames: [member1]\n  affinity:\n    clusterAffinity: {}\n"),
        &["spec.policy.affinity", "PickFixed"],
    );
}

#[test]
fn pick_n_needs_a_non_negative_number_of_clusters() {
    let pick_n = |rest: &str| placement_with(&format!("policy:\n  placementType: PickN\n{rest}"));
    assert_eq!(
        the_placement(&pick_n("  numberOfClusters: 2\n")).policy,
        PlacementPolicy::PickN(Box::new(PickN { number_of_clusters: 2, ..PickN::default() }))
    );
    rejects(&pick_n(""), &["spec.policy.numberOfClusters is required"]);
    rejects(&pick_n("  numberOfClusters: -1\n"), &["spec.policy.numberOfClusters", "-1", ">= 0"]);
    rejects(
        &pick_n("  numberOfClusters: 1\n  clusterNames: [member1]\n"),
        &["spec.policy.clusterNames", "PickFixed"],
    );
}

/// KubeFleet's scheduling policy: every field read, bad values named.
#[test]
fn scheduling_policies_are_read_and_checked() {
    let policy = "policy:
  placementType: PickN
  numberOfClusters: 2
  affinity:
    clusterAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        clusterSelectorTerms:
        - labelSelector: {matchLabels: {environment: prod}}
          propertySelector:
            matchExpressions:
            - {name: kubernetes-fleet.io/node-count, operator: Ge, values: [\"3\"]}
            - {name: resources.kubernetes-fleet.io/available-memory, operator: Gt, values: [16Gi]}
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 20
        preference:
          labelSelector: {matchLabels: {region: east}}
      - weight: 80
        preference:
          propertySorter: {name: resources.kubernetes-fleet.io/available-cpu, sortOrder: Descending}
  tolerations:
  - {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}
  - {operator: Exists}
  topologySpreadConstraints:
  - {maxSkew: 2, topologyKey: region, whenUnsatisfiable: ScheduleAnyway}
  - {topologyKey: zone}
";
    let PlacementPolicy::PickN(p) = the_placement(&placement_with(policy)).policy else { panic!() };
    assert_eq!(p.number_of_clusters, 2);
    assert_eq!(p.terms[0].properties.len(), 2);
    assert_eq!(p.terms[0].properties[1].number, 16.0 * 1024.0 * 1024.0 * 1024.0);
    assert_eq!(p.preferred.len(), 2);
    assert_eq!(
        p.preferred[1].sorter,
        Some(PropertySorter { name: "resources.kubernetes-fleet.io/available-cpu".into(), ascending: false })
    );
    assert_eq!(
        p.tolerations,
        [
            Toleration { key: "dedicated".into(), exists: false, value: "gpu".into() },
            Toleration { key: String::new(), exists: true, value: String::new() }
        ]
    );
    assert_eq!(
        p.spread,
        [
            SpreadConstraint { max_skew: 2, topology_key: "region".into(), do_not_schedule: false },
            SpreadConstraint { max_skew: 1, topology_key: "zone".into(), do_not_schedule: true }
        ]
    );
    for (from, to, says) in [
        (
            "operator: Ge",
            "operator: Gte",
            "matchExpressions[0].operator: \"Gte\" is not Gt, Ge, Eq, Ne, Lt or Le",
        ),
        ("values: [16Gi]", "values: [lots]", "matchExpressions[1].values[0]: \"lots\" is not a quantity"),
        (
            "values: [16Gi]",
            "values: [\"1\", \"2\"]",
            "matchExpressions[1].values: exactly one value is needed (has 2)",
        ),
        (
            "weight: 80",
            "weight: 101",
            "preferredDuringSchedulingIgnoredDuringExecution[1].weight: 101 is not between -100 and 100",
        ),
        (
            "sortOrder: Descending",
            "sortOrder: Down",
            "propertySorter.sortOrder: \"Down\" is not Ascending or Descending",
        ),
        (
            "effect: NoSchedule}",
            "effect: NoExecute}",
            "spec.policy.tolerations[0].effect: \"NoExecute\" is not NoSchedule",
        ),
        (
            "{operator: Exists}",
            "{operator: Exists, value: x}",
            "spec.policy.tolerations[1].value must be empty with operator Exists",
        ),
        (
            "maxSkew: 2",
            "maxSkew: 0",
            "spec.policy.topologySpreadConstraints[0].maxSkew: 0 must be at least 1",
        ),
        (
            "whenUnsatisfiable: ScheduleAnyway",
            "whenUnsatisfiable: Maybe",
            "whenUnsatisfiable: \"Maybe\" is not DoNotSchedule or ScheduleAnyway",
        ),
    ] {
        assert!(policy.contains(from), "{from}");
        rejects(&placement_with(&policy.replace(from, to)), &[says]);
    }
    let spread_pick_all = "policy:\n  topologySpreadConstraints:\n  - {topologyKey: zone}\n";
    rejects(
        &placement_with(spread_pick_all),
        &["topologySpreadConstraints is only allowed with placementType PickN"],
    );
}

#[test]
fn status_reporting_scope_needs_one_named_namespace_for_namespace_accessible() {
    let p = the_placement(&placement_with("statusReportingScope: NamespaceAccessible\n"));
    assert_eq!(p.namespace_status.as_deref(), Some("test-namespace"));
    assert_eq!(
        the_placement(&placement_with("statusReportingScope: ClusterScopeOnly\n")).namespace_status,
        None
    );
    rejects(
        &placement_with("statusReportingScope: Everywhere\n"),
        &["spec.statusReportingScope", "\"Everywhere\""],
    );
    let two = placement_with("statusReportingScope: NamespaceAccessible\n").replace(
        "resourceSelectors:\n",
        "resourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: other}\n",
    );
    rejects(&two, &["NamespaceAccessible needs exactly one resourceSelector of kind Namespace (has 2)"]);
    let bad = placement_with("statusReportingScope: NamespaceAccessible\n")
        .replace("name: test-namespace", "name: Team.A");
    rejects_among(&bad, &["spec.statusReportingScope: \"Team.A\" is not a namespace name"]);
}

#[test]
fn member_clusters_take_kubefleets_spec_with_taints() {
    let member = |spec: &str| {
        format!(
            "apiVersion: cluster.kubernetes-fleet.io/v1beta1\nkind: MemberCluster\nmetadata:\n  name: m1\nspec:\n{spec}"
        )
    };
    let ok = member(
        "  identity: {name: fleet-member-agent, kind: ServiceAccount, namespace: fleet-system}\n  heartbeatPeriodSeconds: 60\n  taints:\n  - {key: dedicated, value: gpu, effect: NoSchedule}\n",
    );
    let FleetObject::Cluster(c) = single(&ok) else { panic!() };
    assert_eq!(c.taints, [Taint { key: "dedicated".into(), value: "gpu".into() }]);
    rejects(
        &member("  taints:\n  - {key: dedicated, effect: NoExecute}\n"),
        &["spec.taints[0].effect", "NoExecute"],
    );
    rejects(&member("  colour: blue\n"), &["spec", "unknown field `colour`"]);
}

#[test]
fn strategy_type_must_be_known() {
    rejects(&placement_with("strategy:\n  type: Canary\n"), &["spec.strategy.type", "Canary"]);
    assert_eq!(
        the_placement(&placement_with("strategy:\n  type: External\n")).rollout,
        RolloutType::External
    );
}

#[test]
fn rolling_update_settings_need_rolling_update_type() {
    let yaml = placement_with("strategy:\n  type: External\n  rollingUpdate:\n    maxUnavailable: 1\n");
    rejects(&yaml, &["spec.strategy.rollingUpdate", "RollingUpdate"]);
}

#[test]
fn max_unavailable_is_a_positive_count_or_percentage() {
    let max = |v: &str| placement_with(&format!("strategy:\n  rollingUpdate:\n    maxUnavailable: {v}\n"));
    let rollout = |v: &str| the_placement(&max(v)).rollout;
    assert_eq!(rollout("\"25%\""), RolloutType::RollingUpdate { max_unavailable: IntOrPercent::Percent(25) });
    assert_eq!(rollout("2"), RolloutType::RollingUpdate { max_unavailable: IntOrPercent::Count(2) });
    assert_eq!(
        the_placement(&placement_with("")).rollout,
        RolloutType::RollingUpdate { max_unavailable: IntOrPercent::Percent(25) }
    );
    for bad in ["0", "\"0%\"", "\"101%\"", "abc"] {
        rejects(&max(bad), &["spec.strategy.rollingUpdate.maxUnavailable"]);
    }
}

#[test]
fn apply_strategy_values_must_be_known() {
    let apply = |fields: &str| placement_with(&format!("strategy:\n  applyStrategy:\n{}", indent(fields, 4)));
    rejects(&apply("type: ThreeWay\n"), &["spec.strategy.applyStrategy.type", "ThreeWay"]);
    // KubeFleet's default type: applied server-side by gitfleet.
    assert_eq!(the_placement(&apply("type: ClientSideApply\n")).apply.type_, ApplyType::ServerSideApply);
    let p = the_placement(&apply(
        "allowCoOwnership: true\nserverSideApplyConfig: {force: false}\ncomparisonOption: FullComparison\n",
    ));
    assert!(p.apply.allow_co_ownership && p.apply.full_comparison);
    assert_eq!(p.apply.force, Some(false));
    assert_eq!(p.apply.to_spec()["serverSideApplyConfig"], serde_json::json!({"force": false}));
    rejects(&apply("serverSideApplyConfig: {force: yes, x: 1}\n"), &["serverSideApplyConfig"]);
    rejects(&apply("whenToApply: Sometimes\n"), &["spec.strategy.applyStrategy.whenToApply", "Sometimes"]);
    rejects(&apply("whenToTakeOver: Maybe\n"), &["spec.strategy.applyStrategy.whenToTakeOver", "Maybe"]);
    let p = the_placement(&apply("type: ReportDiff\nwhenToApply: IfNotDrifted\nwhenToTakeOver: Never\n"));
    assert_eq!(
        p.apply,
        ApplyStrategy {
            type_: ApplyType::ReportDiff,
            when_to_apply: WhenToApply::IfNotDrifted,
            when_to_take_over: WhenToTakeOver::Never,
            ..ApplyStrategy::default()
        }
    );
    let default = the_placement(&placement_with("")).apply;
    assert_eq!(default.type_, ApplyType::ServerSideApply);
    assert_eq!(default.when_to_take_over, WhenToTakeOver::Always);
}

#[test]
fn auto_run_requires_external_strategy() {
    let auto = |ty: &str| {
        placement_with(&format!(
            "strategy:\n  type: {ty}\n  autoRun:\n    stagedRolloutStrategyName: example-strategy\n"
        ))
    };
    rejects(&auto("RollingUpdate"), &["spec.strategy.autoRun", "External"]);
    assert_eq!(the_placement(&auto("External")).auto_run.as_deref(), Some("example-strategy"));
}

#[test]
fn revision_history_limit_must_be_positive() {
    assert_eq!(the_placement(&placement_with("")).revision_history_limit, 10);
    assert_eq!(the_placement(&placement_with("revisionHistoryLimit: 3\n")).revision_history_limit, 3);
    rejects(&placement_with("revisionHistoryLimit: 0\n"), &["spec.revisionHistoryLimit", "0"]);
    rejects(&placement_with("revisionHistoryLimit: -2\n"), &["spec.revisionHistoryLimit", "-2"]);
}

// ---------------------------------------------------------------------------
// ClusterStagedUpdateStrategy
// ---------------------------------------------------------------------------

#[test]
fn strategy_needs_1_to_31_stages() {
    rejects(&strategy("").replace("stages:\n", "stages: []\n"), &["spec.stages", "1 to 31", "has 0"]);
    rejects(&strategy(&stages(32)), &["spec.stages", "has 32"]);
    assert_eq!(the_strategy(&strategy(&stages(31))).stages.len(), 31);
}

#[test]
fn stage_name_must_match_pattern() {
    for bad in ["Canary", "can-ary", "\"\""] {
        let yaml = strategy(&format!("- name: canary\n  labelSelector: {{}}\n- name: {bad}\n"));
        rejects(&yaml, &["spec.stages[1].name", "^[a-z0-9]+$"]);
    }
    assert_eq!(the_strategy(&strategy("- name: 0canary1\n")).stages[0].name, "0canary1");
}

#[test]
fn stage_name_has_at_most_63_characters() {
    let named = |n: usize| strategy(&format!("- name: {}\n", "a".repeat(n)));
    rejects(&named(64), &["spec.stages[0].name", "1 to 63 characters"]);
    ok(&named(63));
}

#[test]
fn stage_names_must_be_unique() {
    let yaml = strategy("- name: canary\n  labelSelector: {matchLabels: {env: canary}}\n- name: canary\n");
    let issue = rejects(&yaml, &["spec.stages[1].name", "canary appears twice"]);
    assert_eq!(issue.object.as_deref(), Some("ClusterStagedUpdateStrategy/example-strategy"));
}

#[test]
fn only_the_last_stage_may_omit_label_selector() {
    rejects(
        &strategy("- name: canary\n- name: prod\n  labelSelector: {matchLabels: {env: prod}}\n"),
        &["spec.stages[0].labelSelector is required", "last stage"],
    );
    let s = the_strategy(&strategy(
        "- name: canary\n  labelSelector: {matchLabels: {env: canary}}\n- name: rest\n",
    ));
    assert!(s.stages[0].selector.is_some());
    assert_eq!(s.stages[1].selector, None, "the last stage is the catch-all");
}

#[test]
fn stage_label_selector_is_validated() {
    rejects(
        &one_stage("labelSelector:\n  matchExpressions:\n  - {key: env, operator: In}\n"),
        &["spec.stages[0].labelSelector.matchExpressions[0]", "at least one value"],
    );
}

#[test]
fn sorting_label_key_must_be_a_label_key() {
    rejects(&one_stage("sortingLabelKey: \"bad key\"\n"), &["spec.stages[0].sortingLabelKey", "bad key"]);
    let s = the_strategy(&one_stage("sortingLabelKey: kubernetes-fleet.io/order\n"));
    assert_eq!(s.stages[0].sorting_label_key.as_deref(), Some("kubernetes-fleet.io/order"));
}

#[test]
fn max_concurrency_is_a_positive_count_or_percentage() {
    let concurrency =
        |v: &str| the_strategy(&one_stage(&format!("maxConcurrency: {v}\n"))).stages[0].max_concurrency;
    assert_eq!(concurrency("1"), IntOrPercent::Count(1));
    assert_eq!(concurrency("\"50%\""), IntOrPercent::Percent(50));
    assert_eq!(the_strategy(&one_stage("")).stages[0].max_concurrency, IntOrPercent::Count(1));
    for bad in ["0", "\"0%\"", "\"150%\"", "x"] {
        rejects(&one_stage(&format!("maxConcurrency: {bad}\n")), &["spec.stages[0].maxConcurrency"]);
    }
}

#[test]
fn before_stage_tasks_allow_one_approval() {
    let before = |tasks: &str| one_stage(&format!("beforeStageTasks:\n{tasks}"));
    let s = the_strategy(&before("- type: Approval\n"));
    assert_eq!(s.stages[0].before_tasks, vec![StageTask::Approval]);
    rejects(
        &before("- type: Approval\n- type: Approval\n"),
        &["spec.stages[0].beforeStageTasks[1]", "only one Approval"],
    );
    rejects_among(
        &before("- type: Approval\n- type: Approval\n- type: Approval\n"),
        &["spec.stages[0].beforeStageTasks", "at most 2"],
    );
    rejects(
        &before("- type: TimedWait\n  waitTime: 1h\n"),
        &["spec.stages[0].beforeStageTasks[0]", "may only be Approval or Verification"],
    );
}

#[test]
fn after_stage_tasks_allow_one_of_each_type() {
    let after = |tasks: &str| one_stage(&format!("afterStageTasks:\n{tasks}"));
    let s = the_strategy(&after("- type: TimedWait\n  waitTime: 1h\n- type: Approval\n"));
    assert_eq!(
        s.stages[0].after_tasks,
        vec![StageTask::TimedWait(std::time::Duration::from_secs(3600)), StageTask::Approval]
    );
    rejects_among(
        &after(
            "- type: TimedWait\n  waitTime: 1h\n- type: Approval\n- type: TimedWait\n  waitTime: 2h\n- type: Approval\n",
        ),
        &["spec.stages[0].afterStageTasks", "at most 3"],
    );
    rejects(
        &after("- type: TimedWait\n  waitTime: 1h\n- type: TimedWait\n  waitTime: 2h\n"),
        &["spec.stages[0].afterStageTasks[1]", "only one TimedWait"],
    );
    rejects(
        &after("- type: Approval\n- type: Approval\n"),
        &["spec.stages[0].afterStageTasks[1]", "only one Approval"],
    );
}

const VERIFICATION: &str = "afterStageTasks:
- type: Verification
  onFailure: Rollback
  verification:
    provider:
      prometheus:
        query: 'sum(rate(http_requests_total{cluster=\"${MEMBER-CLUSTER-NAME}\",code=~\"5..\"}[5m]))'
    successCondition: result < 0.01
    interval: 30s
    count: 10
    failureLimit: 1
    inconclusiveLimit: 3
    perCluster: true
";

#[test]
fn a_verification_task_is_read_with_its_provider_condition_and_limits() {
    let s = the_strategy(&one_stage(VERIFICATION));
    let [StageTask::Verification(v)] = s.stages[0].after_tasks.as_slice() else {
        panic!("{:?}", s.stages[0].after_tasks)
    };
    assert_eq!((v.count, v.failure_limit, v.inconclusive_limit), (10, 1, 3));
    assert_eq!(v.interval, std::time::Duration::from_secs(30));
    assert!(v.per_cluster && v.on_failure == crate::verify::OnFailure::Rollback);
    assert!(v.success.holds(0.001) && !v.success.holds(0.01));
    let web = "afterStageTasks:
- type: Verification
  verification:
    provider:
      web:
        url: http://checks.example/${STAGE}/rate
        jsonPath: '{$.data.errorRate}'
        headers:
        - key: Authorization
          value: Bearer abc
    successCondition: result <= 0.05
";
    let s = the_strategy(&one_stage(web));
    let [StageTask::Verification(v)] = s.stages[0].after_tasks.as_slice() else { panic!() };
    assert_eq!((v.count, v.failure_limit, v.per_cluster), (1, 0, false));
    assert_eq!(v.on_failure, crate::verify::OnFailure::Fail, "Fail by default");
    assert_eq!(v.provider.name(), "web");
    let before = "beforeStageTasks:\n- type: Approval\n".to_string() + &web.replace("afterStageTasks:\n", "");
    assert_eq!(
        the_strategy(&one_stage(&before)).stages[0].before_tasks.len(),
        2,
        "Approval and Verification"
    );
}

#[test]
fn a_count_out_of_range_is_the_only_error_of_its_limits() {
    let yaml = one_stage(&VERIFICATION.replace("count: 10", "count: 0"));
    rejects(&yaml, &["spec.stages[0].afterStageTasks[0].verification.count: 0 is out of range (1 to 1000)"]);
}

#[test]
fn bad_verifications_are_refused_naming_the_field() {
    let at = "spec.stages[0].afterStageTasks[0]";
    let verification = format!("{at}.verification");
    let variant = |from: &str, to: &str| {
        assert!(VERIFICATION.contains(from), "{from}");
        one_stage(&VERIFICATION.replace(from, to))
    };
    for (yaml, says) in [
        (
            variant("successCondition: result < 0.01", "successCondition: result < low"),
            vec![format!("{verification}.successCondition"), "expected a number".into()],
        ),
        (
            variant("    successCondition: result < 0.01\n", ""),
            vec![format!("{verification}.successCondition is required")],
        ),
        (
            variant("count: 10", "count: 0"),
            vec![format!("{verification}.count"), "0 is out of range (1 to 1000)".into()],
        ),
        (
            variant("failureLimit: 1", "failureLimit: 10"),
            vec![format!("{verification}.failureLimit"), "10 is out of range (0 to 9)".into()],
        ),
        (
            variant("inconclusiveLimit: 3", "inconclusiveLimit: -1"),
            vec![format!("{verification}.inconclusiveLimit"), "out of range".into()],
        ),
        (variant("interval: 30s", "interval: often"), vec![format!("{verification}.interval")]),
        (
            variant("interval: 30s", "interval: 1500ms"),
            vec![format!("{verification}.interval: 1500ms is not a whole number of seconds")],
        ),
        (
            variant("    interval: 30s\n", ""),
            vec![format!("{verification}.interval is required when count is more than 1")],
        ),
        (
            variant("perCluster: true", "perCluster: false"),
            vec![
                format!("{verification}.provider.prometheus.query"),
                "${MEMBER-CLUSTER-NAME} needs perCluster: true".into(),
            ],
        ),
        (
            variant("${MEMBER-CLUSTER-NAME}", "${CLUSTER}"),
            vec![format!("{verification}.provider.prometheus.query"), "unknown variable ${CLUSTER}".into()],
        ),
        (
            variant("onFailure: Rollback", "onFailure: Retry"),
            vec![format!("{at}.onFailure"), "not Fail or Rollback".into()],
        ),
        (
            variant("      prometheus:\n", "      datadog:\n"),
            vec![format!("{verification}.provider"), "datadog".into()],
        ),
        (
            one_stage(
                "afterStageTasks:\n- type: Verification\n  verification:\n    provider: {}\n    successCondition: result < 1\n",
            ),
            vec![format!("{verification}.provider: exactly one of prometheus or web")],
        ),
        (
            one_stage("afterStageTasks:\n- type: Verification\n"),
            vec![format!("{at}: a Verification task needs verification")],
        ),
        (
            one_stage("afterStageTasks:\n- type: Approval\n  onFailure: Rollback\n"),
            vec![format!("{at}: only a Verification task takes onFailure")],
        ),
    ] {
        let says: Vec<&str> = says.iter().map(String::as_str).collect();
        rejects_among(&yaml, &says);
    }
    let web = |url: &str, path: &str| {
        one_stage(&format!(
            "afterStageTasks:\n- type: Verification\n  verification:\n    provider:\n      web:\n        url: {url}\n        jsonPath: '{path}'\n    successCondition: result < 1\n"
        ))
    };
    rejects(
        &web("http://ops:s3cret@x/y", "{$.a}"),
        &[&format!("{verification}.provider.web.url"), "user and password in the URL are not allowed"],
    );
    rejects(
        &web("ftp://x/y", "{$.a}"),
        &[&format!("{verification}.provider.web.url"), "not an http:// or https:// URL"],
    );
    rejects(
        &web("http://x/y", "{a.b}"),
        &[&format!("{verification}.provider.web.jsonPath"), "must start with $"],
    );
}

#[test]
fn timed_wait_needs_a_wait_time_up_to_30_days() {
    let wait = |task: &str| one_stage(&format!("afterStageTasks:\n- type: TimedWait\n{task}"));
    rejects(&wait(""), &["spec.stages[0].afterStageTasks[0]", "needs waitTime"]);
    rejects(&wait("  waitTime: 0s\n"), &["spec.stages[0].afterStageTasks[0].waitTime", "greater than 0"]);
    rejects(&wait("  waitTime: 721h\n"), &["spec.stages[0].afterStageTasks[0].waitTime", "30 days"]);
    rejects(&wait("  waitTime: 1d\n"), &["spec.stages[0].afterStageTasks[0].waitTime", "1d"]);
    let s = the_strategy(&wait("  waitTime: 720h\n"));
    assert_eq!(s.stages[0].after_tasks, vec![StageTask::TimedWait(duration::MAX_WAIT)]);
}

#[test]
fn approval_task_takes_no_wait_time() {
    let yaml = one_stage("afterStageTasks:\n- type: Approval\n  waitTime: 1h\n");
    rejects(&yaml, &["spec.stages[0].afterStageTasks[0]", "Approval task takes no waitTime"]);
}

#[test]
fn task_type_must_be_known() {
    rejects(
        &one_stage("afterStageTasks:\n- type: Sleep\n  waitTime: 1h\n"),
        &["spec.stages[0].afterStageTasks[0].type", "Sleep"],
    );
}

#[test]
fn cluster_timeout_defaults_to_10m_and_must_parse() {
    let stage = &the_strategy(&one_stage("")).stages[0];
    assert_eq!(stage.cluster_timeout, std::time::Duration::from_secs(600));
    let stage = &the_strategy(&one_stage("clusterTimeout: 30s\n")).stages[0];
    assert_eq!(stage.cluster_timeout, std::time::Duration::from_secs(30));
    rejects(&one_stage("clusterTimeout: soon\n"), &["spec.stages[0].clusterTimeout", "soon"]);
}

#[test]
fn max_failures_is_a_count_or_percentage() {
    let failures = |v: &str| the_strategy(&one_stage(&format!("maxFailures: {v}\n"))).stages[0].max_failures;
    assert_eq!(failures("0"), IntOrPercent::Count(0));
    assert_eq!(failures("\"10%\""), IntOrPercent::Percent(10));
    assert_eq!(the_strategy(&one_stage("")).stages[0].max_failures, IntOrPercent::Count(0));
    rejects(&one_stage("maxFailures: -1\n"), &["spec.stages[0].maxFailures", "-1"]);
}

#[test]
fn max_duration_is_at_most_30_days() {
    let stage = &the_strategy(&one_stage("maxDuration: 24h\n")).stages[0];
    assert_eq!(stage.max_duration, Some(std::time::Duration::from_secs(24 * 3600)));
    assert_eq!(the_strategy(&one_stage("")).stages[0].max_duration, None);
    rejects(&one_stage("maxDuration: 721h\n"), &["spec.stages[0].maxDuration", "30 days"]);
}

// ---------------------------------------------------------------------------
// ClusterStagedUpdateRun
// ---------------------------------------------------------------------------

#[test]
fn run_needs_placement_and_strategy_names() {
    rejects(&run("stagedRolloutStrategyName: example-strategy\n"), &["spec.placementName is required"]);
    rejects(&run("placementName: example-placement\n"), &["spec.stagedRolloutStrategyName is required"]);
    let r = the_run(&run_with(""));
    assert_eq!((r.placement.as_str(), r.strategy.as_str()), ("example-placement", "example-strategy"));
}

#[test]
fn resource_snapshot_index_is_a_non_negative_integer() {
    let index = |v: &str| run_with(&format!("resourceSnapshotIndex: {v}\n"));
    assert_eq!(the_run(&index("\"1\"")).target, SnapshotTarget::Index(1));
    assert_eq!(the_run(&index("1")).target, SnapshotTarget::Index(1));
    for bad in ["\"-1\"", "-1", "abc"] {
        rejects(&index(bad), &["spec.resourceSnapshotIndex", "non-negative integer"]);
    }
}

#[test]
fn resource_snapshot_index_error_shows_the_value_as_written() {
    let issue =
        rejects(&run_with("resourceSnapshotIndex: abc\n"), &["spec.resourceSnapshotIndex", "\"abc\""]);
    assert!(!issue.message.contains("Str("), "{issue}");
    let issue = rejects(&run_with("resourceSnapshotIndex: -1\n"), &["spec.resourceSnapshotIndex", "-1"]);
    assert!(!issue.message.contains("Int("), "{issue}");
}

#[test]
fn resource_commit_pins_a_commit() {
    let r = the_run(&run_with("resourceCommit: 3f2a9c1\n"));
    assert_eq!(r.target, SnapshotTarget::Commit("3f2a9c1".into()));
    rejects(&run_with("resourceCommit: \"\"\n"), &["spec.resourceCommit", "empty"]);
    // An unquoted all-digit prefix is a YAML number: a clear error, not a wrong commit.
    rejects(&run_with("resourceCommit: 1234567890\n"), &["spec.resourceCommit", "1234567890", "string"]);
}

#[test]
fn snapshot_index_and_commit_are_exclusive() {
    let yaml = run_with("resourceSnapshotIndex: 1\nresourceCommit: main\n");
    rejects(&yaml, &["spec.resourceSnapshotIndex", "spec.resourceCommit", "mutually exclusive"]);
}

#[test]
fn run_state_must_be_known() {
    let state = |s: &str| run_with(&format!("state: {s}\n"));
    assert_eq!(the_run(&state("Run")).state, RunState::Run);
    assert_eq!(the_run(&state("Initialize")).state, RunState::Initialize);
    assert_eq!(the_run(&state("Stop")).state, RunState::Stop);
    let issue = rejects(&state("Execute"), &["spec.state", "Execute"]);
    assert_eq!(issue.object.as_deref(), Some("ClusterStagedUpdateRun/example-run"));
}

#[test]
fn run_defaults_to_latest_snapshot_and_run_state() {
    let r = the_run(&run_with(""));
    assert_eq!(r.target, SnapshotTarget::Latest);
    assert_eq!(r.state, RunState::Run);
}

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

#[test]
fn resource_envelope_cannot_wrap_cluster_scoped_objects() {
    let yaml = envelope("ResourceEnvelope", Some("team-a"), WRAPPED_CLUSTERROLE);
    let issue = rejects(&yaml, &["data.\"role.yaml\"", "ClusterRole/reader is cluster-scoped"]);
    assert_eq!(issue.object.as_deref(), Some("ResourceEnvelope/example-envelope"));
}

#[test]
fn resource_envelope_wraps_only_its_own_namespace() {
    let other =
        WRAPPED_CONFIGMAP.replace("    name: settings\n", "    name: settings\n    namespace: team-b\n");
    let yaml = envelope("ResourceEnvelope", Some("team-a"), &other);
    rejects(&yaml, &["data.\"cm.yaml\"", "namespace team-b", "team-a"]);
    let same =
        WRAPPED_CONFIGMAP.replace("    name: settings\n", "    name: settings\n    namespace: team-a\n");
    ok(&envelope("ResourceEnvelope", Some("team-a"), &same));
}

#[test]
fn resource_envelope_gives_wrapped_objects_its_namespace() {
    let m = the_manifest(&envelope("ResourceEnvelope", Some("team-a"), WRAPPED_CONFIGMAP));
    assert_eq!(m.envelope, Some(EnvelopeType::ResourceEnvelope));
    assert_eq!(m.wrapped.len(), 1);
    assert_eq!(m.wrapped[0]["metadata"]["namespace"], "team-a");
    assert_eq!(m.wrapped[0]["data"]["key"], "value");
}

#[test]
fn envelope_must_wrap_something() {
    let yaml = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourceEnvelope\nmetadata:\n  name: example-envelope\n  namespace: team-a\ndata: {}\n";
    rejects(yaml, &["data", "at least one object"]);
}

#[test]
fn wrapped_object_needs_identity() {
    let no_kind = WRAPPED_CONFIGMAP.replace("  kind: ConfigMap\n", "");
    let yaml = envelope("ResourceEnvelope", Some("team-a"), &no_kind);
    rejects(&yaml, &["data.\"cm.yaml\"", "apiVersion, kind and metadata.name"]);
}

#[test]
fn resource_envelope_needs_namespace() {
    let yaml = envelope("ResourceEnvelope", None, WRAPPED_CONFIGMAP);
    rejects(&yaml, &["ResourceEnvelope is namespaced", "needs metadata.namespace"]);
}

#[test]
fn cluster_resource_envelope_wraps_only_cluster_scoped_objects() {
    let m = the_manifest(&envelope("ClusterResourceEnvelope", None, WRAPPED_CLUSTERROLE));
    assert_eq!(m.envelope, Some(EnvelopeType::ClusterResourceEnvelope));
    assert_eq!(m.wrapped[0]["metadata"].get("namespace"), None);
    rejects(
        &envelope("ClusterResourceEnvelope", None, WRAPPED_CONFIGMAP),
        &["data.\"cm.yaml\"", "ConfigMap/settings is namespaced"],
    );
    let widget = "\"w.yaml\":\n  apiVersion: example.com/v1\n  kind: Widget\n  metadata: {name: w, namespace: team-a}\n";
    rejects(
        &envelope("ClusterResourceEnvelope", None, widget),
        &["data.\"w.yaml\"", "Widget/w is namespaced"],
    );
}

#[test]
fn cluster_resource_envelope_must_not_set_namespace() {
    let yaml = envelope("ClusterResourceEnvelope", Some("team-a"), WRAPPED_CLUSTERROLE);
    rejects(&yaml, &["ClusterResourceEnvelope is cluster-scoped", "must not set metadata.namespace"]);
}

// ---------------------------------------------------------------------------
// Hub resources
// ---------------------------------------------------------------------------

fn configmap(namespace: Option<&str>) -> String {
    let ns = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n{ns}data:\n  key: value\n")
}

#[test]
fn namespaced_hub_resource_needs_namespace() {
    let issue = rejects(&configmap(None), &["ConfigMap is namespaced", "needs metadata.namespace"]);
    assert_eq!(issue.object.as_deref(), Some("ConfigMap/settings"));
    let m = the_manifest(&configmap(Some("team-a")));
    assert_eq!(
        m.key,
        ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: "settings".into()
        }
    );
}

#[test]
fn cluster_scoped_hub_resource_must_not_set_namespace() {
    let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  namespace: team-a\nrules: []\n";
    rejects(yaml, &["ClusterRole is cluster-scoped", "must not set metadata.namespace"]);
    ok(&yaml.replace("  namespace: team-a\n", ""));
}

#[test]
fn unknown_kinds_are_accepted_with_or_without_namespace() {
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
    assert_eq!(the_manifest(widget).key.namespace, None);
    let namespaced = widget.replace("  name: w\n", "  name: w\n  namespace: team-a\n");
    assert_eq!(the_manifest(&namespaced).key.namespace.as_deref(), Some("team-a"));
}

#[test]
fn hub_namespace_must_be_valid() {
    rejects(&configmap(Some("Team_A")), &["metadata.namespace \"Team_A\"", "not a valid namespace name"]);
}

// ---------------------------------------------------------------------------
// ClusterResourceOverride / ResourceOverride
// ---------------------------------------------------------------------------

const PATCH_AT: &str = "spec.policy.overrideRules[0].jsonPatchOverrides[0]";

#[test]
fn cluster_resource_override_example_is_valid() {
    let yaml = cluster_override(
        "- clusterSelector:\n    clusterSelectorTerms:\n    - labelSelector: {matchLabels: {env: prod}}\n  jsonPatchOverrides:\n  - op: remove\n    path: /rules/0/verbs/2\n- clusterSelector:\n    clusterSelectorTerms:\n    - labelSelector: {matchLabels: {env: test}}\n  overrideType: Delete\n",
    );
    match single(&yaml) {
        FleetObject::Override(o) => {
            assert_eq!(o.placement.as_deref(), Some("example-placement"));
            assert_eq!(o.rules.len(), 2);
            assert_eq!(o.rules[0].patches[0].op, PatchOp::Remove);
            assert!(o.rules[1].delete);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn override_patch_op_must_be_add_remove_or_replace() {
    rejects(&patch("op: move\npath: /rules/0\n"), &[&format!("{PATCH_AT}.op"), "move"]);
    ok(&patch("op: replace\npath: /rules/0/verbs\nvalue: [get]\n"));
}

#[test]
fn override_patch_path_must_be_a_json_pointer() {
    rejects(&patch("op: remove\npath: rules/0\n"), &[&format!("{PATCH_AT}.path"), "rules/0", "'/'"]);
}

#[test]
fn override_cannot_patch_identity_fields() {
    for path in ["/kind", "/metadata/name", "/metadata/namespace", "/status/phase"] {
        rejects(
            &patch(&format!("op: replace\npath: {path}\nvalue: x\n")),
            &[&format!("{PATCH_AT}.path"), path, "cannot be overridden"],
        );
    }
    ok(&patch("op: add\npath: /metadata/labels/team\nvalue: a\n"));
}

#[test]
fn remove_patch_takes_no_value() {
    rejects(&patch("op: remove\npath: /rules/0\nvalue: x\n"), &[PATCH_AT, "remove takes no value"]);
}

#[test]
fn add_patch_needs_a_value() {
    rejects(&patch("op: add\npath: /metadata/labels/team\n"), &[PATCH_AT, "add needs a value"]);
}

#[test]
fn override_needs_rules() {
    rejects(
        &cluster_override("").replace("overrideRules:\n", "overrideRules: []\n"),
        &["spec.policy.overrideRules", "at least one rule"],
    );
    rejects(
        &cluster_override("- overrideType: JSONPatch\n"),
        &["spec.policy.overrideRules[0].jsonPatchOverrides"],
    );
}

#[test]
fn delete_rule_takes_no_patches() {
    let yaml =
        cluster_override("- overrideType: Delete\n  jsonPatchOverrides:\n  - {op: remove, path: /rules/0}\n");
    rejects(&yaml, &["spec.policy.overrideRules[0]", "Delete rule takes no jsonPatchOverrides"]);
}

#[test]
fn override_selectors_need_a_name() {
    let yaml = patch("op: remove\npath: /rules/0\n").replace("    name: secret-reader\n", "");
    rejects(&yaml, &["spec.clusterResourceSelectors[0].name is required"]);
}

fn resource_override(namespace: Option<&str>) -> String {
    let ns = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ResourceOverride
metadata:
  name: example-ro
{ns}spec:
  resourceSelectors:
  - {{group: apps, version: v1, kind: Deployment, name: web}}
  policy:
    overrideRules:
    - jsonPatchOverrides:
      - {{op: replace, path: /spec/replicas, value: 3}}
"#
    )
}

#[test]
fn resource_override_needs_namespace() {
    match single(&resource_override(Some("team-a"))) {
        FleetObject::Override(o) => {
            assert_eq!(o.kind, "ResourceOverride");
            assert_eq!(o.namespace.as_deref(), Some("team-a"));
        }
        other => panic!("{other:?}"),
    }
    let issue = rejects(&resource_override(None), &["ResourceOverride needs metadata.namespace"]);
    assert_eq!(issue.object.as_deref(), Some("ResourceOverride/example-ro"));
}

#[test]
fn a_resource_override_names_a_resource_placement_of_its_namespace_by_scope() {
    let with = |scope: &str| {
        resource_override(Some("team-a"))
            .replace("spec:\n", &format!("spec:\n  placement:\n    name: web\n    scope: {scope}\n"))
    };
    match single(&with("Namespaced")) {
        FleetObject::Override(o) => assert_eq!(o.placement.as_deref(), Some("team-a/web")),
        other => panic!("{other:?}"),
    }
    match single(&with("Cluster")) {
        FleetObject::Override(o) => assert_eq!(o.placement.as_deref(), Some("web")),
        other => panic!("{other:?}"),
    }
    rejects(&with("Namespace"), &["spec.placement.scope: \"Namespace\" is not Cluster or Namespaced"]);
}

// ---------------------------------------------------------------------------
// Approvals
// ---------------------------------------------------------------------------

#[test]
fn approval_file_reads_the_approved_condition() {
    let parsed = approvals(&approval(
        "- type: Approved\n  status: \"True\"\n  reason: lgtm\n  message: canary looks good\n",
    ));
    assert!(parsed.issues.is_empty(), "{:#?}", parsed.issues);
    match parsed.objects.as_slice() {
        [FleetObject::Approval(a)] => {
            assert_eq!(a.name, "example-run-canary");
            assert!(a.approved);
            assert_eq!(a.reason, "lgtm");
            assert_eq!(a.message, "canary looks good");
        }
        other => panic!("{other:?}"),
    }
    let rejected = approvals(&approval("- type: Approved\n  status: \"False\"\n"));
    assert!(matches!(rejected.objects.as_slice(), [FleetObject::Approval(a)] if !a.approved));
}

#[test]
fn approval_file_needs_an_approved_condition() {
    let parsed = approvals(&approval("- type: ApprovalAccepted\n  status: \"True\"\n"));
    assert_eq!(parsed.issues.len(), 1, "{:#?}", parsed.issues);
    assert_mentions(&parsed.issues[0], &["status.conditions", "type Approved"]);
    assert_eq!(parsed.issues[0].object.as_deref(), Some("ClusterApprovalRequest/example-run-canary"));
    assert!(parsed.objects.is_empty());
}

#[test]
fn approved_status_must_be_true_or_false() {
    let parsed = approvals(&approval("- type: Approved\n  status: Maybe\n"));
    assert_eq!(parsed.issues.len(), 1, "{:#?}", parsed.issues);
    assert_mentions(&parsed.issues[0], &["status.conditions[Approved].status", "Maybe"]);
    assert!(parsed.objects.is_empty());
}

// ---------------------------------------------------------------------------
// Regressions: integer bounds
// ---------------------------------------------------------------------------

#[test]
fn count_strings_beyond_u32_are_rejected() {
    rejects(&one_stage("maxConcurrency: \"4294967296\"\n"), &["spec.stages[0].maxConcurrency"]);
    rejects(
        &placement_with("strategy:\n  rollingUpdate:\n    maxUnavailable: \"4294967296\"\n"),
        &["spec.strategy.rollingUpdate.maxUnavailable"],
    );
}

// Regressions from review: identities become paths; whole-metadata patches.

#[test]
fn wrapped_object_names_cannot_escape_the_cluster_folder() {
    let yaml = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ResourceEnvelope\nmetadata:\n  name: e\n  namespace: app\ndata:\n  a.yaml:\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: ../../../../x\n";
    let parsed = parse_file("e.yaml", yaml.as_bytes(), Area::Manifests);
    assert!(
        parsed.issues.iter().any(|i| i.message.contains("must be a lowercase RFC 1123 subdomain")),
        "{:?}",
        parsed.issues
    );
    let hub = "apiVersion: ../../tmp/v1\nkind: Thing\nmetadata:\n  name: x\n";
    let parsed = parse_file("h.yaml", hub.as_bytes(), Area::Manifests);
    assert!(parsed.issues.iter().any(|i| i.message.contains("invalid API group")), "{:?}", parsed.issues);
    let kind = "apiVersion: v1\nkind: ../Thing\nmetadata:\n  name: x\n";
    let parsed = parse_file("k.yaml", kind.as_bytes(), Area::Manifests);
    assert!(parsed.issues.iter().any(|i| i.message.contains("is not a valid kind")), "{:?}", parsed.issues);
}

#[test]
fn overrides_cannot_replace_labels_or_metadata_as_a_whole() {
    let yaml = "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourceOverride\nmetadata:\n  name: o\nspec:\n  clusterResourceSelectors:\n  - {group: \"\", version: v1, kind: Namespace, name: n}\n  policy:\n    overrideRules:\n    - jsonPatchOverrides:\n      - {op: replace, path: /metadata/labels, value: x}\n";
    let parsed = parse_file("o.yaml", yaml.as_bytes(), Area::Manifests);
    assert!(
        parsed.issues.iter().any(|i| i.message.contains("cannot be replaced or removed as a whole")),
        "{:?}",
        parsed.issues
    );
    let ok = yaml.replace(
        "{op: replace, path: /metadata/labels, value: x}",
        "{op: add, path: /metadata/labels/team, value: x}",
    );
    assert!(parse_file("o.yaml", ok.as_bytes(), Area::Manifests).issues.is_empty());
}

// RolloutWindow

fn window_issues(spec: &str) -> Vec<Issue> {
    let yaml = format!(
        "apiVersion: gitfleet.dev/v1alpha1\nkind: RolloutWindow\nmetadata:\n  name: w\nspec:\n{spec}"
    );
    parse_file("windows/w.yaml", yaml.as_bytes(), Area::Manifests).issues
}

#[test]
fn rollout_windows_validate() {
    assert!(window_issues("  type: Deny\n").is_empty(), "a freeze");
    assert!(
        window_issues(
            "  type: Allow\n  schedule: \"0 22 * * 1-5\"\n  duration: 6h\n  timeZone: Europe/Berlin\n"
        )
        .is_empty()
    );
    assert!(
        window_issues("  type: Deny\n  start: 2026-12-20T00:00:00Z\n  end: 2027-01-05T00:00:00Z\n")
            .is_empty()
    );
    let cases = [
        ("  type: Maybe\n", "spec.type"),
        ("  type: Allow\n  schedule: \"0 22 * *\"\n  duration: 1h\n", "must have 5 fields"),
        ("  type: Allow\n  schedule: \"0 22 * * *\"\n", "spec.duration is required"),
        (
            "  type: Allow\n  schedule: \"0 22 * * *\"\n  duration: 1h\n  timeZone: Mars/Olympus\n",
            "not a known IANA time zone",
        ),
        (
            "  type: Deny\n  schedule: \"0 22 * * *\"\n  duration: 1h\n  start: 2026-12-20T00:00:00Z\n  end: 2027-01-05T00:00:00Z\n",
            "mutually exclusive",
        ),
        (
            "  type: Deny\n  start: 2027-01-05T00:00:00Z\n  end: 2026-12-20T00:00:00Z\n",
            "spec.end must be after spec.start",
        ),
        ("  type: Deny\n  start: 2026-12-20T00:00:00Z\n", "go together"),
        ("  type: Deny\n  start: tomorrow\n  end: 2027-01-05T00:00:00Z\n", "not an RFC 3339 time"),
        ("  type: Allow\n  schedule: \"0 22 * * *\"\n  duration: 800h\n", "longer than 30 days"),
        ("  type: Deny\n  sometimes: true\n", "unknown field"),
    ];
    for (spec, expected) in cases {
        let issues = window_issues(spec);
        assert!(
            issues.iter().any(|i| i.message.contains(expected)),
            "{spec:?}: expected {expected:?} in {issues:?}"
        );
        assert_eq!(issues[0].object.as_deref(), Some("RolloutWindow/w"));
    }
}

/// Regression: names Kubernetes rejects were accepted and written to the local store.
#[test]
fn object_names_follow_the_kubernetes_rules() {
    let object = |kind: &str, api: &str, name: &str| {
        let ns = if kind == "Namespace" || api.starts_with("rbac") && kind.starts_with("Cluster") {
            ""
        } else {
            "  namespace: app\n"
        };
        format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n{ns}")
    };
    for (kind, api, name, rule) in [
        ("ConfigMap", "v1", "'..foo'", "RFC 1123 subdomain"),
        ("ConfigMap", "v1", "'a b\\c'", "RFC 1123 subdomain"),
        ("ConfigMap", "v1", "\"line\\nbreak\"", "RFC 1123 subdomain"),
        ("ConfigMap", "v1", "Upper", "RFC 1123 subdomain"),
        ("ConfigMap", "v1", "caf\u{e9}", "RFC 1123 subdomain"),
        ("Namespace", "v1", "a.b", "RFC 1123 label"),
        ("Service", "v1", "1web", "RFC 1035 label"),
        ("ClusterRole", "rbac.authorization.k8s.io/v1", "'a/b'", "path segment"),
    ] {
        let yaml = object(kind, api, name);
        let parsed = parse_file("o.yaml", yaml.as_bytes(), Area::Manifests);
        let found = parsed.issues.iter().find(|i| i.message.contains("metadata.name: "));
        assert!(found.is_some_and(|i| i.message.contains(rule)), "{yaml}: {:?}", parsed.issues);
        let line = found.unwrap().to_string();
        assert!(line.starts_with(&format!("o.yaml:1: {kind}/")), "names file, line and object: {line}");
    }
    for (kind, api, name) in [
        ("ConfigMap", "v1", "app.config-1"),
        ("Namespace", "v1", "team-a"),
        ("Service", "v1", "web"),
        ("ClusterRole", "rbac.authorization.k8s.io/v1", "system:aggregate-to-view"),
    ] {
        let yaml = object(kind, api, name);
        let parsed = parse_file("o.yaml", yaml.as_bytes(), Area::Manifests);
        assert!(parsed.issues.is_empty(), "{yaml}: {:?}", parsed.issues);
    }
}

/// Found by fuzzing (tests/fuzz-regressions/): a name that is a multi-line
/// scalar made an error span several lines; every error is one line.
#[test]
fn fuzz_regressions_give_one_line_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for area in [Area::Manifests, Area::Approvals] {
            for issue in parse_file("fuzz.yaml", &bytes, area).issues {
                let line = issue.to_string();
                assert!(line.starts_with("fuzz.yaml") && !line.contains('\n'), "{line}");
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "the regression inputs still give errors");
}

#[test]
fn evictions_and_disruption_budgets_are_read_and_checked() {
    let eviction = |spec: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1beta1\nkind: ClusterResourcePlacementEviction\nmetadata:\n  name: e\nspec:\n{spec}"
        )
    };
    let FleetObject::Eviction(e) = single(&eviction("  placementName: app\n  clusterName: member1\n")) else {
        panic!()
    };
    assert_eq!((e.placement.as_str(), e.cluster.as_str()), ("app", "member1"));
    rejects(&eviction("  placementName: app\n"), &["spec.clusterName is required"]);
    let budget = |spec: &str| {
        format!(
            "apiVersion: placement.kubernetes-fleet.io/v1alpha1\nkind: ClusterResourcePlacementDisruptionBudget\nmetadata:\n  name: app\nspec:\n{spec}"
        )
    };
    let FleetObject::Budget(b) = single(&budget("  minAvailable: 50%\n")) else { panic!() };
    assert_eq!(b.min_available, Some(IntOrPercent::Percent(50)));
    rejects(
        &budget("  minAvailable: 1\n  maxUnavailable: 1\n"),
        &["minAvailable and maxUnavailable are mutually exclusive"],
    );
    rejects(&budget("  maxUnavailable: -1\n"), &["spec.maxUnavailable"]);
}
