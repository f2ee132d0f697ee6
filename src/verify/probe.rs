//! Asking the providers: an instant query against Prometheus' HTTP API, or a
//! GET of a web endpoint whose JSON holds the number. Every answer is a
//! [`Sampled`]; a time-out, a refused connection, a non-2xx answer or a body
//! that is not what was expected is an error (an inconclusive measurement).

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{Query, Sampled};

/// How the providers are reached: given outside the repository.
#[derive(Clone)]
pub struct ProbeConfig {
    /// `--prometheus-url`: the server's base URL (`http://prometheus:9090`).
    pub prometheus_url: Option<String>,
    /// Headers sent to Prometheus (`Authorization: Bearer ...`), from a file.
    pub prometheus_headers: Vec<(String, String)>,
    /// How long one measurement may take.
    pub timeout: Duration,
}

/// A [`Prober`] made when the first measurement is asked for: a fleet
/// without Verification tasks starts no HTTP client.
#[derive(Debug, Default)]
pub struct LazyProber {
    config: ProbeConfig,
    prober: std::sync::OnceLock<Result<Prober, String>>,
}

impl LazyProber {
    pub fn new(config: ProbeConfig) -> LazyProber {
        LazyProber { config, prober: std::sync::OnceLock::new() }
    }

    pub fn measure(&self, query: &Query) -> Sampled {
        match self.prober.get_or_init(|| {
            Prober::new(self.config.clone()).map_err(|e| format!("cannot start the HTTP client: {e}"))
        }) {
            Ok(p) => p.measure(query),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Header values are credentials: only their names are shown.
impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.prometheus_headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ProbeConfig")
            .field("prometheus_url", &self.prometheus_url)
            .field("prometheus_headers", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { prometheus_url: None, prometheus_headers: Vec::new(), timeout: Duration::from_secs(5) }
    }
}

/// The largest answer read from a provider.
const MAX_BODY: usize = 4 << 20;

impl ProbeConfig {
    /// Checks `--prometheus-url`: an http(s) base URL, without credentials
    /// (they go in a header) or a query. The error never repeats the URL.
    pub fn check_prometheus_url(url: &str) -> Result<(), String> {
        let uri: hyper::Uri = url.parse().map_err(|_| "--prometheus-url is not a URL".to_string())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err("--prometheus-url must be an http:// or https:// URL with a host".into());
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("--prometheus-url must not hold a user or password: give an Authorization header in --prometheus-headers-file".into());
        }
        if uri.query().is_some() {
            return Err("--prometheus-url is the server's base URL, without a query".into());
        }
        Ok(())
    }

    /// Reads `Name: value` lines (blank lines and `#` comments skipped).
    pub fn read_headers(path: &Path) -> Result<Vec<(String, String)>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("{}:{}: expected `Name: value`", path.display(), i + 1));
            };
            let name = name.trim();
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("{}:{}: {name:?} is not a header name", path.display(), i + 1));
            }
            out.push((name.to_string(), value.trim().to_string()));
        }
        Ok(out)
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Measures: one blocking call per measurement, with a time-out.
pub struct Prober {
    runtime: tokio::runtime::Runtime,
    client: HttpsClient,
    config: ProbeConfig,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("prometheus_url", &self.config.prometheus_url).finish()
    }
}

impl Prober {
    pub fn new(config: ProbeConfig) -> std::io::Result<Prober> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let https = crate::notify::deliver::https_connector()?;
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Prober { runtime, client, config })
    }

    /// Takes one measurement.
    pub fn measure(&self, query: &Query) -> Sampled {
        let (url, headers, json_path) = match query {
            Query::Prometheus { query } => {
                let Some(base) = &self.config.prometheus_url else {
                    return Err("no Prometheus server is configured (gitfleet run --prometheus-url)".into());
                };
                let q: String =
                    form_urlencoded::Serializer::new(String::new()).append_pair("query", query).finish();
                let url = format!("{}/api/v1/query?{q}", base.trim_end_matches('/'));
                (url, self.config.prometheus_headers.clone(), None)
            }
            Query::Web { url, json_path, headers } => {
                (url.clone(), headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), Some(json_path))
            }
        };
        let body = self.get(&url, &headers)?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))?;
        match json_path {
            None => prometheus_samples(&doc),
            Some(path) => match path.select(&doc) {
                None => Err("the answer has no value at jsonPath".into()),
                Some(v) => web_samples(v),
            },
        }
    }

    fn get(&self, url: &str, headers: &[(String, String)]) -> Result<Bytes, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let mut request = hyper::Request::get(uri.clone());
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Empty::new()).map_err(|e| format!("bad request: {e}"))?;
        // The URL's host, port and path only: a query or user info may carry a token.
        let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
        let shown = format!(
            "{}://{}{port}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or_default(),
            uri.path()
        );
        let call = async {
            let response =
                self.client.request(request).await.map_err(|e| format!("{shown}: {}", error_chain(&e)))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("{shown}: reading the answer: {e}"))?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
                return Err(format!("{shown} answered {status}: {text}"));
            }
            Ok(body)
        };
        let timeout = self.config.timeout;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, call)
                .await
                .unwrap_or_else(|_| Err(format!("{shown}: no answer within {}s", timeout.as_secs_f64())))
        })
    }
}

/// The error and its causes on one line ("connection refused" is a cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Samples of a Prometheus instant query: each series of a vector, or the scalar.
fn prometheus_samples(doc: &Value) -> Sampled {
    if doc["status"] != "success" {
        let kind = doc["errorType"].as_str().unwrap_or("error");
        return Err(format!("Prometheus: {kind}: {}", doc["error"].as_str().unwrap_or("no reason given")));
    }
    let result = &doc["data"]["result"];
    let bad = || Err(format!("Prometheus: unexpected result {}", truncate(result)));
    match doc["data"]["resultType"].as_str() {
        Some("vector") => {
            let Some(series) = result.as_array() else { return bad() };
            series
                .iter()
                .map(|s| number(&s["value"][1]).ok_or(()))
                .collect::<Result<_, _>>()
                .or_else(|_| bad())
        }
        Some("scalar") => number(&result[1]).map(|n| vec![n]).map_or_else(bad, Ok),
        Some(other) => {
            Err(format!("Prometheus: the query gives a {other}; an instant vector or scalar is needed"))
        }
        None => bad(),
    }
}

/// Samples of a web answer: the number at the path, or every number of a list.
fn web_samples(v: &Value) -> Sampled {
    let bad = || Err(format!("the value at jsonPath is not a number: {}", truncate(v)));
    match v {
        Value::Array(items) => {
            items.iter().map(|i| number(i).ok_or(())).collect::<Result<_, _>>().or_else(|_| bad())
        }
        other => number(other).map(|n| vec![n]).map_or_else(bad, Ok),
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}...", s.chars().take(120).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prometheus_answers_become_samples_or_reasons() {
        let vector = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"cluster": "a"}, "value": [1.0, "0.02"]},
            {"metric": {"cluster": "b"}, "value": [1.0, "NaN"]}]}});
        let s = prometheus_samples(&vector).unwrap();
        assert_eq!(s[0], 0.02);
        assert!(s[1].is_nan());
        let empty = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(prometheus_samples(&empty), Ok(vec![]));
        let scalar = json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}});
        assert_eq!(prometheus_samples(&scalar), Ok(vec![3.0]));
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(prometheus_samples(&matrix).unwrap_err().contains("gives a matrix"));
        let error = json!({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"});
        assert_eq!(prometheus_samples(&error), Err("Prometheus: bad_data: parse error at char 5".into()));
    }

    #[test]
    fn web_values_are_numbers_numeric_strings_or_lists_of_them() {
        assert_eq!(web_samples(&json!(0.5)), Ok(vec![0.5]));
        assert_eq!(web_samples(&json!(" 7 ")), Ok(vec![7.0]));
        assert_eq!(web_samples(&json!([1, "2"])), Ok(vec![1.0, 2.0]));
        assert!(web_samples(&json!({"a": 1})).unwrap_err().contains("not a number"));
        assert!(web_samples(&json!(true)).is_err());
    }

    #[test]
    fn the_prometheus_url_is_an_http_base_url_without_credentials() {
        assert!(ProbeConfig::check_prometheus_url("http://prometheus.monitoring:9090").is_ok());
        assert!(ProbeConfig::check_prometheus_url("https://prom.example.com/prefix/").is_ok());
        for (url, says) in [
            ("ftp://prom:21", "http:// or https://"),
            ("prometheus:9090", "http:// or https://"),
            ("http://admin:s3cret@prom:9090", "must not hold a user or password"),
            ("http://prom:9090/?x=1", "without a query"),
            ("http://prom 9090", "not a URL"),
        ] {
            let e = ProbeConfig::check_prometheus_url(url).unwrap_err();
            assert!(e.contains(says) && !e.contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn header_files_are_name_value_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("headers");
        std::fs::write(&path, "# token\nAuthorization: Bearer abc:def\n\nX-Scope-OrgID: team-a\n").unwrap();
        assert_eq!(
            ProbeConfig::read_headers(&path).unwrap(),
            vec![
                ("Authorization".to_string(), "Bearer abc:def".to_string()),
                ("X-Scope-OrgID".to_string(), "team-a".to_string())
            ]
        );
        std::fs::write(&path, "Authorization Bearer abc\n").unwrap();
        assert!(ProbeConfig::read_headers(&path).unwrap_err().ends_with("headers:1: expected `Name: value`"));
    }

    #[test]
    fn a_missing_prometheus_url_is_a_reason_not_a_crash() {
        let p =
            Prober::new(ProbeConfig { timeout: Duration::from_secs(1), ..ProbeConfig::default() }).unwrap();
        let e = p.measure(&Query::Prometheus { query: "up".into() }).unwrap_err();
        assert!(e.contains("--prometheus-url"), "{e}");
        // Nothing listens on port 9 of loopback.
        let web = Query::Web {
            url: "http://127.0.0.1:9/rate".into(),
            json_path: super::super::jsonpath::JsonPath::parse("{$.rate}").unwrap(),
            headers: Default::default(),
        };
        let e = p.measure(&web).unwrap_err();
        assert!(e.starts_with("http://127.0.0.1:9/rate: "), "{e}");
        // Neither user info nor the query is ever repeated.
        let web = Query::Web {
            url: "http://user:s3cret@127.0.0.1:9/rate?token=t0ken".into(),
            json_path: super::super::jsonpath::JsonPath::parse("{$.rate}").unwrap(),
            headers: Default::default(),
        };
        let e = p.measure(&web).unwrap_err();
        assert!(
            e.starts_with("http://127.0.0.1:9/rate: ") && !e.contains("s3cret") && !e.contains("t0ken"),
            "{e}"
        );
        let config = ProbeConfig {
            prometheus_headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            ..ProbeConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
