//! `jsonPath` of the web provider, in Argo Rollouts' form: `{$.data.errorRate}`,
//! `{$.results[0].value}`, `{$['error-rate']}`. Only member and index steps: the
//! path names one value.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let t = text.trim();
        let t = match (t.strip_prefix('{'), t.ends_with('}')) {
            (Some(inner), true) => &inner[..inner.len() - 1],
            (None, false) => t,
            _ => return Err(format!("{text:?}: unbalanced braces")),
        };
        let Some(mut rest) = t.trim().strip_prefix('$') else {
            return Err(format!("{text:?}: must start with $ (as in {{$.errorRate}})"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return Err(format!("{text:?}: empty member name"));
                }
                steps.push(Step::Member(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { return Err(format!("{text:?}: [ without ]")) };
                let inside = r[..end].trim();
                let quoted = inside
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                match (quoted, inside.parse::<usize>()) {
                    (Some(name), _) => steps.push(Step::Member(name.to_string())),
                    (None, Ok(i)) => steps.push(Step::Index(i)),
                    _ => return Err(format!("{text:?}: [{inside}] is not an index or a quoted name")),
                }
                rest = &r[end + 1..];
            } else {
                return Err(format!("{text:?}: expected . or [ at {rest:?}"));
            }
        }
        Ok(JsonPath { steps })
    }

    /// The value the path names, if the document has it.
    pub fn select<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.steps.iter().try_fold(doc, |v, step| match step {
            Step::Member(name) => v.get(name),
            Step::Index(i) => v.get(*i),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_members_and_indexes() {
        let doc = json!({"errorRate": 0.02, "data": {"results": [{"v": 1}, {"v": "2.5"}]}, "a-b": true});
        let pick = |p: &str| JsonPath::parse(p).unwrap().select(&doc).cloned();
        assert_eq!(pick("{$.errorRate}"), Some(json!(0.02)));
        assert_eq!(pick("$.data.results[1].v"), Some(json!("2.5")));
        assert_eq!(pick("{$['a-b']}"), Some(json!(true)));
        assert_eq!(pick("{$.data[\"results\"][0]}"), Some(json!({"v": 1})));
        assert_eq!(pick("{$}"), Some(doc.clone()));
        assert_eq!(pick("{$.missing}"), None);
        assert_eq!(pick("{$.data.results[7]}"), None);
    }

    #[test]
    fn bad_paths_are_refused() {
        for (p, says) in [
            ("{$.a", "unbalanced"),
            ("a.b", "must start with $"),
            ("{$..a}", "empty member"),
            ("{$.a[x]}", "not an index"),
            ("{$.a[0}", "without ]"),
            ("{$a}", "expected . or ["),
        ] {
            let e = JsonPath::parse(p).expect_err(p);
            assert!(e.contains(says), "{p}: {e}");
        }
    }
}
