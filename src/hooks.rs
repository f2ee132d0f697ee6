//! Push webhooks: a Git host tells gitfleet of a push at once, instead of
//! gitfleet finding it at the next poll. One endpoint per host, each checking
//! the host's own signature or token with the secret of
//! `--webhook-secret-file`:
//!
//! | path | host | checked header | event header |
//! |---|---|---|---|
//! | `/hooks/github` | GitHub | `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` | `X-GitHub-Event` (`push`, `ping`) |
//! | `/hooks/gitlab` | GitLab | `X-Gitlab-Token: <secret>` | `X-Gitlab-Event` (`Push Hook`) |
//! | `/hooks/bitbucket` | Bitbucket Cloud and Data Center | `X-Hub-Signature: sha256=<HMAC-SHA256>` | `X-Event-Key` (`repo:push`, `repo:refs_changed`, `diagnostics:ping`) |
//! | `/hooks/generic` | anything (a CI job, `curl`) | `X-Signature-256: sha256=<HMAC-SHA256>` | none: a JSON body, with `ref` if it names a branch |
//!
//! A push to the tracked branch wakes the reconciler (a pass already running
//! is followed by one more, however many pushes came meanwhile); anything
//! else that is signed is answered and ignored. Nothing here waits for the
//! reconciler.
//!
//! With `--webhook-peers`, an accepted push is passed on to the other
//! replicas (every address the peers' names resolve to, such as a headless
//! Service's) as a signed generic request marked [`FORWARDED`], which is not
//! passed on again: whichever replica the Git host reaches, the one that
//! reconciles (the leader, or every shard holder) wakes.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

/// The largest body read; a larger one is refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// Header of a push passed on by another replica.
pub const FORWARDED: &str = "x-gitfleet-forwarded";

/// A Git host whose webhooks gitfleet understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Bitbucket,
    Generic,
}

impl Provider {
    /// The provider of `/hooks/<name>`.
    pub fn from_path(name: &str) -> Option<Provider> {
        match name {
            "github" => Some(Provider::GitHub),
            "gitlab" => Some(Provider::GitLab),
            "bitbucket" => Some(Provider::Bitbucket),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Bitbucket => "bitbucket",
            Provider::Generic => "generic",
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A push to the tracked branch: the reconciler was woken.
    Accepted,
    /// Signed, but nothing to do (a ping, another branch, another event).
    Ignored(String),
    /// No signature or token, or a wrong one.
    Unauthorized(&'static str),
    /// Signed, but not a body the host sends.
    BadRequest(String),
    /// Over [`MAX_BODY`].
    TooLarge,
}

impl Outcome {
    /// The `result` label of `gitfleet_webhook_requests_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Ignored(_) => "ignored",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::BadRequest(_) => "bad_request",
            Outcome::TooLarge => "too_large",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Accepted | Outcome::Ignored(_) => StatusCode::OK,
            Outcome::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Outcome::BadRequest(_) => StatusCode::BAD_REQUEST,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The one-line answer.
    pub fn message(&self) -> String {
        match self {
            Outcome::Accepted => "accepted: reconciling\n".into(),
            Outcome::Ignored(why) => format!("ignored: {why}\n"),
            Outcome::Unauthorized(why) => format!("unauthorized: {why}\n"),
            Outcome::BadRequest(why) => format!("bad request: {why}\n"),
            Outcome::TooLarge => format!("too large: bodies are read up to {MAX_BODY} bytes\n"),
        }
    }
}

/// The webhook endpoints' configuration: the shared secret, the tracked
/// branch, and what wakes the reconciler.
pub struct Hooks {
    secret: Vec<u8>,
    branch: String,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// `HOST:PORT` of the other replicas' listen addresses.
    peers: Vec<String>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("branch", &self.branch).finish_non_exhaustive()
    }
}

/// Reads the secret of `--webhook-secret-file`: the file's content without
/// the line break an editor or `kubectl create secret --from-file` leaves.
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = bytes.trim_ascii_end().to_vec();
    if secret.is_empty() {
        return Err(format!("{}: the webhook secret is empty", path.display()));
    }
    Ok(secret)
}

impl Hooks {
    pub fn new(secret: Vec<u8>, branch: &str, wake: Arc<dyn Fn() + Send + Sync>) -> Hooks {
        Hooks { secret, branch: branch.to_string(), wake, peers: Vec::new() }
    }

    /// Passes accepted pushes on to these `HOST:PORT`s.
    pub fn with_peers(mut self, peers: Vec<String>) -> Hooks {
        self.peers = peers;
        self
    }

    /// Where an accepted request is passed on to: the peers, unless it was
    /// passed on itself.
    pub fn forward_to(&self, headers: &HeaderMap) -> &[String] {
        if headers.contains_key(FORWARDED) { &[] } else { &self.peers }
    }

    /// The generic request that tells a peer of a push: (body, `X-Signature-256`).
    pub fn forwarded_request(&self) -> (Vec<u8>, String) {
        let body =
            serde_json::json!({ "ref": format!("refs/heads/{}", self.branch) }).to_string().into_bytes();
        let signature = self.sign(&body);
        (body, signature)
    }

    /// `sha256=<hex>` of the HMAC-SHA256 of `body` under the secret.
    fn sign(&self, body: &[u8]) -> String {
        let hex: String = self.mac(body).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    /// The HMAC-SHA256 of `body` under the secret (HMAC takes a key of any length).
    fn mac(&self, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(body);
        mac
    }

    /// Handles one request to `/hooks/<provider>`; wakes the reconciler for a
    /// push to the tracked branch.
    pub fn handle(&self, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Outcome {
        if let Err(why) = self.verify(provider, headers, body) {
            return Outcome::Unauthorized(why);
        }
        let outcome = match self.pushed_branch(provider, headers, body) {
            Ok(Pushed::Branches(branches)) if branches.contains(&self.branch) => Outcome::Accepted,
            Ok(Pushed::Branches(branches)) if branches.is_empty() => {
                Outcome::Ignored("no branch was pushed".into())
            }
            Ok(Pushed::Branches(branches)) => Outcome::Ignored(format!(
                "a push to {}, gitfleet tracks {}",
                branches.join(", "),
                self.branch
            )),
            Ok(Pushed::Unknown) => Outcome::Accepted,
            Ok(Pushed::Nothing(why)) => Outcome::Ignored(why),
            Err(why) => Outcome::BadRequest(why),
        };
        if outcome == Outcome::Accepted {
            (self.wake)();
        }
        outcome
    }

    /// Checks the host's signature (or token) of the request.
    fn verify(&self, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
        let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
        match provider {
            Provider::GitLab => {
                let token = header("x-gitlab-token").ok_or("no X-Gitlab-Token header")?;
                if bool::from(token.ct_eq(&self.secret)) { Ok(()) } else { Err("wrong X-Gitlab-Token") }
            }
            Provider::GitHub => {
                self.verify_hmac(header("x-hub-signature-256"), body, "no X-Hub-Signature-256 header")
            }
            Provider::Bitbucket => {
                self.verify_hmac(header("x-hub-signature"), body, "no X-Hub-Signature header")
            }
            Provider::Generic => {
                self.verify_hmac(header("x-signature-256"), body, "no X-Signature-256 header")
            }
        }
    }

    /// Checks `sha256=<hex>` against the HMAC-SHA256 of the body (in constant time).
    /// `missing`: what to answer when the header is not there.
    fn verify_hmac(
        &self,
        value: Option<&[u8]>,
        body: &[u8],
        missing: &'static str,
    ) -> Result<(), &'static str> {
        let value = value.ok_or(missing)?;
        let hex = value.strip_prefix(b"sha256=").ok_or("the signature is not sha256=<hex>")?;
        let signature = decode_hex(hex).ok_or("the signature is not sha256=<hex>")?;
        self.mac(body).verify_slice(&signature).map_err(|_| "the signature does not match the body")
    }

    /// The branches a signed request says were pushed.
    fn pushed_branch(&self, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Pushed, String> {
        let event =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let json = || -> Result<Value, String> {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
        };
        let refs = |value: &Value, pointer: &str| -> Result<Vec<String>, String> {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(|r| branch_of(r).into_iter().collect())
                .ok_or_else(|| {
                    format!("no {} in the body", pointer.trim_start_matches('/').replace('/', "."))
                })
        };
        match provider {
            Provider::GitHub => match event("x-github-event").as_str() {
                "ping" => Ok(Pushed::Nothing("ping".into())),
                "push" => refs(&json()?, "/ref").map(Pushed::Branches),
                "" => Err("no X-GitHub-Event header".into()),
                other => Ok(Pushed::Nothing(format!("event {other}"))),
            },
            Provider::GitLab => match event("x-gitlab-event").as_str() {
                "Push Hook" => refs(&json()?, "/ref").map(Pushed::Branches),
                "" => Err("no X-Gitlab-Event header".into()),
                other => Ok(Pushed::Nothing(format!("event {other}"))),
            },
            Provider::Bitbucket => match event("x-event-key").as_str() {
                "diagnostics:ping" => Ok(Pushed::Nothing("ping".into())),
                // Bitbucket Cloud: push.changes[].new (null when a branch is deleted).
                "repo:push" => {
                    let body = json()?;
                    let changes = body
                        .pointer("/push/changes")
                        .and_then(Value::as_array)
                        .ok_or("no push.changes in the body")?;
                    Ok(Pushed::Branches(
                        changes
                            .iter()
                            .filter_map(|c| c.get("new").filter(|n| n["type"] == "branch"))
                            .filter_map(|n| n["name"].as_str().map(str::to_string))
                            .collect(),
                    ))
                }
                // Bitbucket Data Center: changes[].ref.id.
                "repo:refs_changed" => {
                    let body = json()?;
                    let changes =
                        body.pointer("/changes").and_then(Value::as_array).ok_or("no changes in the body")?;
                    Ok(Pushed::Branches(
                        changes
                            .iter()
                            .filter(|c| c["type"] != "DELETE")
                            .filter_map(|c| c.pointer("/ref/id").and_then(Value::as_str))
                            .filter_map(branch_of)
                            .collect(),
                    ))
                }
                "" => Err("no X-Event-Key header".into()),
                other => Ok(Pushed::Nothing(format!("event {other}"))),
            },
            // Any JSON object; `ref` (refs/heads/<b> or <b>), when given, must name the branch.
            Provider::Generic => {
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Pushed::Unknown);
                }
                let body = json()?;
                if !body.is_object() {
                    return Err("the body is not a JSON object".into());
                }
                match body.get("ref") {
                    None => Ok(Pushed::Unknown),
                    Some(Value::String(r)) => {
                        Ok(Pushed::Branches(vec![r.strip_prefix("refs/heads/").unwrap_or(r).to_string()]))
                    }
                    Some(_) => Err("ref is not a string".into()),
                }
            }
        }
    }
}

/// What a signed request says was pushed.
enum Pushed {
    Branches(Vec<String>),
    /// A generic request that names no branch: a push to the tracked one.
    Unknown,
    /// Not a push.
    Nothing(String),
}

/// `main` of `refs/heads/main`; tags and other refs are no branch.
fn branch_of(reference: &str) -> Option<String> {
    reference.strip_prefix("refs/heads/").map(str::to_string)
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    hex.chunks(2).map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn hooks(secret: &str) -> (Hooks, Arc<AtomicUsize>) {
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let wake = Arc::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        (Hooks::new(secret.as_bytes().to_vec(), "main", wake), woken)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    /// The example of GitHub's documentation ("Validating webhook deliveries").
    #[test]
    fn github_documented_example_verifies() {
        let (h, _) = hooks("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let ok = h.verify(Provider::GitHub, &headers(&[("x-hub-signature-256", sig)]), b"Hello, World!");
        assert_eq!(ok, Ok(()));
        let bad = h.verify(Provider::GitHub, &headers(&[("x-hub-signature-256", sig)]), b"Hello, World?");
        assert_eq!(bad, Err("the signature does not match the body"));
    }

    #[test]
    fn branches_of_each_host() {
        let (h, woken) = hooks("s");
        let gitlab = |event: &str, body: &str| {
            h.handle(
                Provider::GitLab,
                &headers(&[("x-gitlab-token", "s"), ("x-gitlab-event", event)]),
                body.as_bytes(),
            )
        };
        assert_eq!(
            gitlab("Push Hook", r#"{"object_kind":"push","ref":"refs/heads/main"}"#),
            Outcome::Accepted
        );
        assert_eq!(
            gitlab("Push Hook", r#"{"ref":"refs/heads/dev"}"#),
            Outcome::Ignored("a push to dev, gitfleet tracks main".into())
        );
        assert_eq!(gitlab("Tag Push Hook", "{}"), Outcome::Ignored("event Tag Push Hook".into()));
        assert!(matches!(gitlab("Push Hook", "{"), Outcome::BadRequest(_)));
        assert_eq!(
            h.handle(
                Provider::GitLab,
                &headers(&[("x-gitlab-token", "t"), ("x-gitlab-event", "Push Hook")]),
                b"{}"
            ),
            Outcome::Unauthorized("wrong X-Gitlab-Token")
        );

        let cloud = r#"{"push":{"changes":[{"new":{"type":"branch","name":"main"},"old":null}]}}"#;
        let dc = r#"{"eventKey":"repo:refs_changed","changes":[{"ref":{"id":"refs/heads/main","type":"BRANCH"},"type":"UPDATE"}]}"#;
        let deleted = r#"{"push":{"changes":[{"new":null,"old":{"type":"branch","name":"main"}}]}}"#;
        let (b, _) = hooks("s");
        for (key, body, expected) in [
            ("repo:push", cloud, Outcome::Accepted),
            ("repo:refs_changed", dc, Outcome::Accepted),
            ("repo:push", deleted, Outcome::Ignored("no branch was pushed".into())),
            ("diagnostics:ping", "{}", Outcome::Ignored("ping".into())),
        ] {
            let sig = b.sign(body.as_bytes());
            let got = b.handle(
                Provider::Bitbucket,
                &headers(&[("x-hub-signature", &sig), ("x-event-key", key)]),
                body.as_bytes(),
            );
            assert_eq!(got, expected, "{key} {body}");
        }
        assert_eq!(woken.load(Ordering::SeqCst), 1, "only the push to main woke the reconciler");
    }

    #[test]
    fn hex_is_checked() {
        assert_eq!(decode_hex(b"0aff"), Some(vec![10, 255]));
        assert_eq!(decode_hex(b"0af"), None);
        assert_eq!(decode_hex(b"zz"), None);
    }
}
