//! Kubernetes label keys, values and label selectors: validation and matching.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A label selector as written in manifests (`matchLabels` / `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Checks keys, values and operators; returns one message per problem,
    /// each prefixed with `field`.
    pub fn validate(&self, field: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for (key, value) in &self.match_labels {
            if let Err(e) = validate_label_key(key) {
                errors.push(format!("{field}.matchLabels: key {key:?} {e}"));
            }
            if let Err(e) = validate_label_value(value) {
                errors.push(format!("{field}.matchLabels.{key}: value {value:?} {e}"));
            }
        }
        for (i, req) in self.match_expressions.iter().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            if let Err(e) = validate_label_key(&req.key) {
                errors.push(format!("{at}.key: {:?} {e}", req.key));
            }
            match req.operator.as_str() {
                "In" | "NotIn" if req.values.is_empty() => {
                    errors.push(format!("{at}: operator {} needs at least one value", req.operator))
                }
                "Exists" | "DoesNotExist" if !req.values.is_empty() => {
                    errors.push(format!("{at}: operator {} takes no values", req.operator))
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errors
                    .push(format!("{at}.operator: {other:?} is not one of In, NotIn, Exists, DoesNotExist")),
            }
            for v in &req.values {
                if let Err(e) = validate_label_value(v) {
                    errors.push(format!("{at}.values: {v:?} {e}"));
                }
            }
        }
        errors
    }

    /// Whether a set of labels satisfies the selector. An empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// Validates a label key: an optional DNS subdomain prefix and `/`, then a name.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err("has a prefix that is not a DNS subdomain".into());
    }
    if name.is_empty() || name.len() > 63 || !is_qualified_name(name) {
        return Err("is not a valid label key (at most 63 alphanumeric characters, '-', '_' or '.', \
             starting and ending alphanumeric)"
            .into());
    }
    Ok(())
}

/// Validates a label value: empty, or a name of at most 63 characters.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_qualified_name(value)) {
        Ok(())
    } else {
        Err("is not a valid label value (at most 63 alphanumeric characters, '-', '_' or '.', \
             starting and ending alphanumeric)"
            .into())
    }
}

fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A DNS-1123 label: lowercase alphanumerics and '-', at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: labels(&[("environment", "canary")]),
            match_expressions: vec![Requirement {
                key: "order".into(),
                operator: "Exists".into(),
                values: vec![],
            }],
        };
        assert!(sel.matches(&labels(&[("environment", "canary"), ("order", "1")])));
        assert!(!sel.matches(&labels(&[("environment", "canary")])));
        assert!(!sel.matches(&labels(&[("environment", "staging"), ("order", "1")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn not_in_matches_missing_label() {
        let sel = LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: "env".into(),
                operator: "NotIn".into(),
                values: vec!["prod".into()],
            }],
        };
        assert!(sel.matches(&labels(&[])));
        assert!(!sel.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn invalid_selectors_are_reported() {
        let sel = LabelSelector {
            match_labels: labels(&[("bad key!", "ok"), ("good", "-bad")]),
            match_expressions: vec![
                Requirement { key: "a".into(), operator: "In".into(), values: vec![] },
                Requirement { key: "b".into(), operator: "Exists".into(), values: vec!["x".into()] },
                Requirement { key: "c".into(), operator: "Gt".into(), values: vec![] },
            ],
        };
        let errors = sel.validate("spec.labelSelector");
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("bad key!"));
        assert!(errors.iter().any(|e| e.contains("Gt")));
    }

    #[test]
    fn label_keys_with_prefixes() {
        assert!(validate_label_key("kubernetes-fleet.io/parent-CRP").is_ok());
        assert!(validate_label_key("Example.com/x").is_err());
        assert!(validate_label_key(&"a".repeat(64)).is_err());
        assert!(validate_label_value("").is_ok());
    }
}
