//! Safe YAML reading and writing.
//!
//! A fleet repository is untrusted input: every document goes through one set of
//! serde-saphyr options with tight budgets, so alias bombs, deep nesting and huge
//! files fail fast with a clear error instead of hanging or exhausting memory.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Largest manifest file gitfleet reads, in bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted in a document.
const MAX_DEPTH: usize = 64;
/// Most documents in one file.
const MAX_DOCUMENTS: usize = 10_000;
/// Most aliases in one file; real manifests rarely use any.
const MAX_ALIASES: usize = 1_000;
/// Most parser events (nodes, keys) in one file.
const MAX_EVENTS: usize = 2_000_000;

/// One YAML document of a file, with the line it starts on (1-based).
#[derive(Debug, Clone)]
pub struct Document {
    pub line: u64,
    pub value: Value,
}

/// Why a file could not be read as YAML.
#[derive(Debug, Clone, thiserror::Error)]
pub enum YamlError {
    #[error("file is too large ({size} bytes, limit {limit} bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("file is not valid UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Parse(String),
}

impl YamlError {
    /// The 1-based line the parser pointed at, when it did.
    pub fn line(&self) -> Option<u64> {
        match self {
            YamlError::Parse(msg) => parse_line_hint(msg),
            _ => None,
        }
    }
}

/// gitfleet's own status documents are read back whatever the fleet size: a
/// run over 10,000 clusters writes several megabytes.
pub const MAX_STATUS_BYTES: usize = 64 * 1024 * 1024;

/// The size limit of status documents: [`MAX_STATUS_BYTES`], or a smaller one
/// set by `GITFLEET_TEST_STATUS_LIMIT` (for tests that need a small fleet to
/// pass it).
pub fn status_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("GITFLEET_TEST_STATUS_LIMIT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_STATUS_BYTES)
    })
}

fn options() -> serde_saphyr::Options {
    options_for(MAX_FILE_BYTES)
}

/// The parser's budgets for a file of at most `limit` bytes.
fn options_for(limit: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_documents: MAX_DOCUMENTS,
            max_aliases: MAX_ALIASES,
            // About one event per two bytes at most, as in the manifests' budget.
            max_events: MAX_EVENTS.max(limit / 2),
            // serde-saphyr's default for manifests; status grows with the fleet.
            max_nodes: if limit > MAX_FILE_BYTES { limit / 8 } else { 250_000 },
            max_total_scalar_bytes: limit,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 100,
        },
        strict_booleans: true,
        // A tag gitfleet does not know would be dropped silently.
        reject_unsupported_tags: true,
        with_snippet: false,
    }
}

/// Parses every non-empty document of a file into JSON values with their lines.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Document>, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError::TooLarge { size: bytes.len(), limit: MAX_FILE_BYTES });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| YamlError::NotUtf8)?;
    let docs: Vec<serde_saphyr::Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, options())
        .map_err(|e| YamlError::Parse(one_line(&e.to_string())))?;
    let docs: Vec<Document> = docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .map(|d| Document { line: d.referenced.line().max(1), value: d.value })
        .collect();
    if let Some(problem) = silent_change(text, &docs) {
        return Err(YamlError::Parse(problem));
    }
    Ok(docs)
}

/// What the YAML parser would silently change, if anything: a `!!binary` value
/// (decoded into text) or an integer that does not fit in 64 bits (turned into
/// an approximate float). Found in the text outside block scalars, so a number
/// inside an embedded configuration file is left alone.
fn silent_change(text: &str, docs: &[Document]) -> Option<String> {
    let binary = text.contains("binary");
    if !binary && !docs.iter().any(|d| has_float(&d.value)) {
        return None;
    }
    let mut block: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(parent) = block {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block = None;
        }
        let code = line.split(" #").next().unwrap_or_default();
        for word in code.split(|c: char| c.is_whitespace() || ",[]{}".contains(c)) {
            let word = word.trim_end_matches(':');
            if binary && matches!(word, "!!binary" | "!binary" | "!<tag:yaml.org,2002:binary>") {
                return Some(format!(
                    "!!binary values are not supported (write the text, or use a Secret's data) at line {}",
                    n + 1
                ));
            }
            if too_big(word) {
                return Some(format!(
                    "integer {word} does not fit in 64 bits (quote it if it is text) at line {}",
                    n + 1
                ));
            }
        }
        let value = code.trim_end();
        if [" |", " >", "- |", "- >"].iter().any(|m| value.ends_with(m))
            || value.ends_with(['-', '+']) && (value.contains(": |") || value.contains(": >"))
        {
            block = Some(indent);
        }
    }
    None
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

/// A plain decimal integer beyond `i64::MIN..=u64::MAX`.
fn too_big(word: &str) -> bool {
    let digits = word.strip_prefix(['-', '+']).unwrap_or(word);
    if digits.len() < 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match word.parse::<i128>() {
        Ok(v) => v < i128::from(i64::MIN) || v > i128::from(u64::MAX),
        Err(_) => true,
    }
}

/// Parses one document into a typed value (used for `gitfleet.yaml`).
pub fn parse_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError::TooLarge { size: bytes.len(), limit: MAX_FILE_BYTES });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| YamlError::NotUtf8)?;
    serde_saphyr::from_str_with_options(text, options())
        .map_err(|e| YamlError::Parse(one_line(&e.to_string())))
}

/// Parses one of gitfleet's own status documents of at most `limit` bytes:
/// [`status_limit`] for status gitfleet verified as its own, the manifests'
/// [`MAX_FILE_BYTES`] for status it believes without checking.
pub fn parse_status<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, YamlError> {
    if bytes.len() > limit {
        return Err(YamlError::TooLarge { size: bytes.len(), limit });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| YamlError::NotUtf8)?;
    serde_saphyr::from_str_with_options(text, options_for(limit))
        .map_err(|e| YamlError::Parse(one_line(&e.to_string())))
}

/// Serializes a value as YAML, the way status files and `-o yaml` print it.
pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

/// Joins a multi-line parser message into one line.
fn one_line(msg: &str) -> String {
    msg.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds "line N" in a parser message.
fn parse_line_hint(msg: &str) -> Option<u64> {
    let idx = msg.find("line ")?;
    let digits: String = msg[idx + 5..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: unknown tags, `!!binary` and integers beyond 64 bits were
    /// silently changed.
    #[test]
    fn yaml_is_never_silently_changed() {
        for (text, says) in [
            ("a: !foo bar\n", "unsupported tag `!foo` at line 1"),
            ("a: 1\nb: !!binary aGVsbG8=\n", "!!binary values are not supported"),
            (
                "a: 1\nb: 123456789012345678901234567890\n",
                "integer 123456789012345678901234567890 does not fit",
            ),
            ("b: [1, -9223372036854775809]\n", "does not fit in 64 bits"),
        ] {
            let err = parse_documents(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(says), "{text:?}: {err}");
            assert!(err.line().is_some(), "{err}");
        }
        let fine = "a: 18446744073709551615\nb: -9223372036854775808\nc: '123456789012345678901234567890'\nd: 1.5\nconfig: |\n  id = 123456789012345678901234567890\n  kind: !!binary x\ne: text with binary in it\n";
        let docs = parse_documents(fine.as_bytes()).unwrap();
        assert_eq!(docs[0].value["a"], serde_json::json!(18446744073709551615u64));
        assert!(docs[0].value["config"].as_str().unwrap().contains("123456789012345678901234567890"));
    }

    #[test]
    fn multi_document_files_keep_lines() {
        let docs = parse_documents(b"a: 1\n---\n\n---\nb: 2\nc: [1, 2]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 1);
        assert_eq!(docs[1].line, 5);
        assert_eq!(docs[1].value["c"][1], 2);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_documents(b"a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line().is_some(), "{err}");
    }

    #[test]
    fn alias_bomb_fails_fast() {
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        let started = std::time::Instant::now();
        let err = parse_documents(bomb.as_bytes()).unwrap_err();
        assert!(matches!(err, YamlError::Parse(_)), "{err}");
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(deep.as_bytes()).is_err());
    }

    #[test]
    fn huge_files_are_refused_before_parsing() {
        let huge = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(matches!(parse_documents(&huge), Err(YamlError::TooLarge { .. })));
    }
}
