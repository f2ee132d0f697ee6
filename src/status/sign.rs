//! SSH signatures on commits, as Git makes and checks them (`gpg.format=ssh`):
//! an SSHSIG over the commit object without its `gpgsig` header, namespace
//! `git`, SHA-512, armored in the `gpgsig` header. gitfleet signs its status
//! commits with `--signing-key` and checks approvals against an
//! allowed-signers file (`--allowed-signers`, Git's `gpg.ssh.allowedSignersFile`
//! format). The cryptography is the `ssh-key` crate's.

use std::path::Path;

use git2::{Oid, Repository};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The namespace Git signs commits in.
const NAMESPACE: &str = "git";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("allowed signers {path}: {reason}")]
    AllowedSigners { path: String, reason: String },
    #[error("sign the commit: {0}")]
    Sign(String),
}

/// The key gitfleet signs its status commits with.
pub struct SigningKey {
    key: PrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key.fingerprint(HashAlg::Sha256))
    }
}

impl SigningKey {
    /// Reads an OpenSSH private key (not passphrase-protected).
    pub fn read(path: &Path) -> Result<SigningKey, SignError> {
        let err = |reason: String| SignError::Key { path: path.display().to_string(), reason };
        let key = PrivateKey::read_openssh_file(path).map_err(|e| err(e.to_string()))?;
        if key.is_encrypted() {
            return Err(err("the key is protected by a passphrase; gitfleet needs one without".into()));
        }
        Ok(SigningKey { key })
    }

    /// The public half, as one `ssh-ed25519 AAAA...` line.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The armored signature of a commit object (the `gpgsig` header's value).
    pub fn sign(&self, commit: &[u8]) -> Result<String, SignError> {
        let sig =
            self.key.sign(NAMESPACE, HashAlg::Sha512, commit).map_err(|e| SignError::Sign(e.to_string()))?;
        sig.to_pem(LineEnding::LF).map_err(|e| SignError::Sign(e.to_string()))
    }
}

/// What signs commits gitfleet writes: an SSH key it holds, or (for `gitfleet
/// approve --sign` with `gpg.format=openpgp`) the person's own GnuPG, run as
/// Git runs it (`gpg --status-fd=2 -bsau KEY`, the commit object on stdin).
#[derive(Debug)]
pub enum CommitSigner {
    Ssh(Box<SigningKey>),
    Gpg { program: String, key: String },
}

impl CommitSigner {
    /// The armored signature of a commit object (the `gpgsig` header's value).
    pub fn sign(&self, commit: &[u8]) -> Result<String, SignError> {
        match self {
            CommitSigner::Ssh(key) => key.sign(commit),
            CommitSigner::Gpg { program, key } => gpg_sign(program, key, commit),
        }
    }
}

fn gpg_sign(program: &str, key: &str, commit: &[u8]) -> Result<String, SignError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let err = |e: String| SignError::Sign(format!("{program}: {e}"));
    let mut child = Command::new(program)
        .args(["--status-fd=2", "-bsau", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    child.stdin.take().expect("piped").write_all(commit).map_err(|e| err(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    let status = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !status.contains("[GNUPG:] SIG_CREATED ") {
        let last = status.lines().rfind(|l| !l.starts_with("[GNUPG:]")).unwrap_or("no signature made");
        return Err(err(last.to_string()));
    }
    String::from_utf8(out.stdout).map_err(|e| err(e.to_string()))
}

/// The key that made a commit's valid SSH signature, if it has one.
pub fn commit_signer(repo: &Repository, commit: Oid) -> Result<PublicKey, Refusal> {
    let (signature, data) = repo.extract_signature(&commit, None).map_err(|_| Refusal::NotSigned)?;
    let armored = std::str::from_utf8(&signature).map_err(|_| Refusal::NotSsh)?;
    ssh_signer(armored, &data)
}

/// The key that made a valid SSH signature of `data`.
fn ssh_signer(armored: &str, data: &[u8]) -> Result<PublicKey, Refusal> {
    let sig = SshSig::from_pem(armored.trim_end()).map_err(|_| Refusal::NotSsh)?;
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(NAMESPACE, data, &sig).map_err(|_| Refusal::DoesNotVerify)?;
    Ok(key)
}

/// Whether a commit carries a valid signature by `key`.
pub fn signed_by(repo: &Repository, commit: Oid, key: &PublicKey) -> bool {
    commit_signer(repo, commit).is_ok_and(|k| k.key_data() == key.key_data())
}

/// Why a commit's signature does not make its committer known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not signed")]
    NotSigned,
    #[error("not an SSH signature")]
    NotSsh,
    #[error("signature does not verify")]
    DoesNotVerify,
    #[error("signed with a key that is not in the allowed signers")]
    UnknownKey,
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
struct Signer {
    /// The principals field as written (comma-separated patterns).
    principals: String,
    key: PublicKey,
}

/// Git's allowed-signers file: who may sign, with which key.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

impl AllowedSigners {
    /// Reads `principals [options] keytype key [comment]` lines. Lines for other
    /// namespaces than `git` and certificate authorities are left out (gitfleet
    /// checks plain keys only).
    pub fn read(path: &Path) -> Result<AllowedSigners, SignError> {
        let err = |line: usize, reason: String| SignError::AllowedSigners {
            path: path.display().to_string(),
            reason: if line == 0 { reason } else { format!("line {line}: {reason}") },
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
        let mut signers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(signer) = parse_line(line).map_err(|e| err(n + 1, e))? {
                signers.push(signer);
            }
        }
        Ok(AllowedSigners { signers })
    }

    /// The principals of a commit's signer: the first-listed principal of the
    /// line whose key made the commit's valid signature.
    fn principal(&self, armored: &str, data: &[u8]) -> Result<String, Refusal> {
        let key = ssh_signer(armored, data)?;
        let line =
            self.signers.iter().find(|s| s.key.key_data() == key.key_data()).ok_or(Refusal::UnknownKey)?;
        Ok(line.principals.split(',').next().unwrap_or_default().to_string())
    }
}

/// OpenPGP public keys whose signatures count (`--gpg-keys`, armored, as
/// `gpg --export --armor` writes them); a signer's principal is the e-mail of
/// the key's first user id.
#[derive(Debug, Clone, Default)]
pub struct GpgKeys {
    keys: Vec<pgp::composed::SignedPublicKey>,
}

impl GpgKeys {
    pub fn read(path: &Path) -> Result<GpgKeys, SignError> {
        use pgp::composed::Deserializable;
        let err = |reason: String| SignError::AllowedSigners { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let (keys, _) =
            pgp::composed::SignedPublicKey::from_string_many(&text).map_err(|e| err(e.to_string()))?;
        let keys = keys.collect::<Result<Vec<_>, _>>().map_err(|e| err(e.to_string()))?;
        if keys.is_empty() {
            return Err(err("no public key in the file".into()));
        }
        Ok(GpgKeys { keys })
    }

    /// The e-mail of the key (primary or subkey) that made a valid signature of `data`.
    fn principal(&self, armored: &str, data: &[u8]) -> Result<String, Refusal> {
        use pgp::composed::Deserializable;
        let (sig, _) =
            pgp::composed::DetachedSignature::from_string(armored).map_err(|_| Refusal::DoesNotVerify)?;
        use pgp::types::KeyDetails;
        for key in &self.keys {
            let primary = sig.verify(&key.primary_key, data).is_ok();
            if primary || key.public_subkeys.iter().any(|s| sig.verify(&s.key, data).is_ok()) {
                let uid = key.details.users.first().map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
                return Ok(email_of(uid.as_deref().unwrap_or_default()));
            }
        }
        // Made by one of these keys (by its issuer id) but not over this commit: forged or altered.
        let issuers = sig.signature.issuer_key_id();
        let ours = self.keys.iter().any(|k| {
            std::iter::once(k.primary_key.legacy_key_id())
                .chain(k.public_subkeys.iter().map(|s| s.key.legacy_key_id()))
                .any(|id| issuers.contains(&&id))
        });
        Err(if ours { Refusal::DoesNotVerify } else { Refusal::UnknownKey })
    }
}

/// `Name <mail>` -> `mail` (a bare user id is returned as it is).
fn email_of(uid: &str) -> String {
    match (uid.rfind('<'), uid.rfind('>')) {
        (Some(a), Some(b)) if a < b => uid[a + 1..b].to_string(),
        _ => uid.trim().to_string(),
    }
}

/// Who may sign approvals: SSH allowed signers and OpenPGP keys.
#[derive(Debug, Clone, Default)]
pub struct Signers {
    pub ssh: Option<AllowedSigners>,
    pub gpg: Option<GpgKeys>,
}

impl Signers {
    /// The principal of a commit's valid signature: by an SSH allowed signer
    /// or by one of the OpenPGP keys.
    pub fn principal(&self, repo: &Repository, commit: Oid) -> Result<String, Refusal> {
        let (signature, data) = repo.extract_signature(&commit, None).map_err(|_| Refusal::NotSigned)?;
        let armored = std::str::from_utf8(&signature).map_err(|_| Refusal::DoesNotVerify)?;
        if armored.trim_start().starts_with("-----BEGIN PGP SIGNATURE-----") {
            return match &self.gpg {
                Some(keys) => keys.principal(armored, &data),
                None => Err(Refusal::UnknownKey),
            };
        }
        match &self.ssh {
            Some(signers) => signers.principal(armored, &data),
            None => Err(Refusal::UnknownKey),
        }
    }
}

/// Splits on white space outside double quotes.
fn fields(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (None, false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

fn is_key_type(field: &str) -> bool {
    field.starts_with("ssh-") || field.starts_with("ecdsa-") || field.starts_with("sk-")
}

/// One line; `None` when it does not apply to Git commit signatures.
fn parse_line(line: &str) -> Result<Option<Signer>, String> {
    let f = fields(line);
    let (principals, options, rest) = match f.as_slice() {
        [p, kind, ..] if is_key_type(kind) => (*p, "", &f[1..]),
        [p, o, kind, ..] if is_key_type(kind) => (*p, *o, &f[2..]),
        _ => return Err("expected: principals [options] key-type key".into()),
    };
    let mut namespaces_ok = true;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let lower = option.to_ascii_lowercase();
        if lower == "cert-authority" {
            return Ok(None);
        }
        if let Some(list) = lower.strip_prefix("namespaces=") {
            namespaces_ok = list.trim_matches('"').split(',').any(|n| n == NAMESPACE);
        }
    }
    let key =
        PublicKey::from_openssh(&rest[..2.min(rest.len())].join(" ")).map_err(|e| format!("key: {e}"))?;
    Ok(namespaces_ok.then(|| Signer { principals: principals.to_string(), key }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn allowed_signers_lines() {
        let s = parse_line(&format!("lead@example.com {KEY} laptop")).unwrap().unwrap();
        assert_eq!(s.principals, "lead@example.com");
        let s = parse_line(&format!("a@x,b@x namespaces=\"git,file\" {KEY}")).unwrap().unwrap();
        assert_eq!(s.principals, "a@x,b@x");
        assert!(parse_line(&format!("a@x namespaces=\"file\" {KEY}")).unwrap().is_none(), "not for git");
        assert!(parse_line(&format!("*@x cert-authority {KEY}")).unwrap().is_none());
        assert!(parse_line("lead@example.com").unwrap_err().contains("expected"));
        assert!(parse_line("lead@example.com ssh-ed25519 AAAA").unwrap_err().contains("key"));
    }
}
