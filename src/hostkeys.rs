//! SSH host keys: the key a server offers is checked against OpenSSH
//! `known_hosts` files (plain and hashed host names, `[host]:port` entries,
//! `@revoked` keys), never accepted silently. Without `--ssh-known-hosts`,
//! `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts` are read, as `ssh` does;
//! when neither exists an SSH connection fails and says how to get the key.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use ssh_key::known_hosts::HostPatterns;

/// How host keys are checked.
#[derive(Debug, Clone)]
pub enum HostKeys {
    /// Entries of these known_hosts files (read at each connection, so that a
    /// file mounted from a Secret can be updated).
    KnownHosts { files: Vec<PathBuf>, explicit: bool },
    /// `--ssh-insecure-skip-host-key-check`: any key is accepted.
    Insecure,
}

impl Default for HostKeys {
    /// `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`, as `ssh` reads them.
    fn default() -> HostKeys {
        let mut files = Vec::new();
        if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".ssh/known_hosts"));
        }
        files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
        HostKeys::KnownHosts { files, explicit: false }
    }
}

impl HostKeys {
    /// `--ssh-known-hosts FILE`: only this file, which must be readable.
    pub fn file(path: &Path) -> Result<HostKeys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--ssh-known-hosts {}: {e}", path.display()))?;
        let entries = parse(&text, path, true)?;
        if entries.is_empty() {
            return Err(format!("--ssh-known-hosts {}: no host key in it", path.display()));
        }
        Ok(HostKeys::KnownHosts { files: vec![path.to_path_buf()], explicit: true })
    }

    /// Checks the key `offered` (the SSH wire encoding of a public key) for
    /// `host` on `port` (None: the default port 22). Every file and line is
    /// read first: a `@revoked` line wins over any line that vouches for the key.
    pub fn check(&self, host: &str, port: Option<u16>, offered: &[u8]) -> Result<(), String> {
        let HostKeys::KnownHosts { files, explicit } = self else { return Ok(()) };
        let name = match port {
            Some(p) if p != 22 => format!("[{host}]:{p}"),
            _ => host.to_string(),
        };
        let offered_print = fingerprint(offered);
        let algorithm = algorithm(offered).unwrap_or_else(|| "unknown key type".into());
        let (mut read, mut known, mut vouched) = (Vec::new(), Vec::new(), false);
        for file in files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => continue,
                Err(e) => return Err(format!("known hosts {}: {e}", file.display())),
            };
            read.push(file.display().to_string());
            for line in parse(&text, file, *explicit)? {
                if !matches(&line.hosts, &name) {
                    continue;
                }
                let same = line.key == offered;
                match line.marker {
                    Mark::Revoked if same => {
                        return Err(format!(
                            "SSH host key of {name} is revoked in {}: {offered_print} ({algorithm})",
                            file.display()
                        ));
                    }
                    // Host certificates are not supported: such lines vouch for no key.
                    Mark::Revoked | Mark::CertAuthority => {}
                    Mark::None if same => vouched = true,
                    Mark::None => known.push(fingerprint(&line.key)),
                }
            }
        }
        if vouched {
            return Ok(());
        }
        if read.is_empty() {
            return Err(format!(
                "SSH host key of {name} cannot be checked: no known_hosts file (offered {offered_print}, {algorithm}); \
                 give one with --ssh-known-hosts FILE (after checking that fingerprint: ssh-keyscan{} {host})",
                port.filter(|p| *p != 22).map_or(String::new(), |p| format!(" -p {p}"))
            ));
        }
        if known.is_empty() {
            return Err(format!(
                "SSH host key of {name} is unknown: offered {offered_print} ({algorithm}), not in {}",
                read.join(", ")
            ));
        }
        Err(format!(
            "SSH host key of {name} changed: offered {offered_print} ({algorithm}), {} has {}; \
             if the server's key was changed on purpose, update the file",
            read.join(", "),
            known.join(", ")
        ))
    }
}

/// `SHA256:<base64>` of a key's wire encoding, as `ssh-keygen -l` prints it.
fn fingerprint(blob: &[u8]) -> String {
    use base64ct::Encoding;
    use sha2::Digest;
    format!("SHA256:{}", base64ct::Base64Unpadded::encode_string(&sha2::Sha256::digest(blob)))
}

/// The algorithm named at the start of a key's wire encoding.
fn algorithm(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// A known_hosts line's marker.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    None,
    Revoked,
    CertAuthority,
}

/// One known_hosts line: marker, host patterns and the key's wire encoding
/// (compared as bytes: any key type, RSA and ECDSA included).
struct Line {
    marker: Mark,
    hosts: HostPatterns,
    key: Vec<u8>,
}

fn parse_line(line: &str) -> Result<Line, String> {
    let mut words = line.split_whitespace();
    let mut first = words.next().ok_or("empty line")?;
    let marker = match first {
        "@revoked" => Mark::Revoked,
        "@cert-authority" => Mark::CertAuthority,
        m if m.starts_with('@') => return Err(format!("unknown marker {m}")),
        _ => Mark::None,
    };
    if marker != Mark::None {
        first = words.next().ok_or("no host patterns")?;
    }
    let hosts: HostPatterns = first.parse().map_err(|e| format!("host patterns: {e}"))?;
    let kind = words.next().ok_or("no key type")?;
    let encoded = words.next().ok_or("no key")?;
    use base64ct::Encoding;
    let key = base64ct::Base64::decode_vec(encoded).map_err(|_| "the key is not base64".to_string())?;
    if algorithm(&key).as_deref() != Some(kind) {
        return Err(format!("the key is not a {kind} key"));
    }
    Ok(Line { marker, hosts, key })
}

/// The lines of a known_hosts file. A line that does not parse is an error
/// naming the file and line in a file given with `--ssh-known-hosts` (a typo
/// must not silently drop a host); in the default files it is skipped with a
/// warning, as `ssh` does.
fn parse(text: &str, file: &Path, strict: bool) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(l) => lines.push(l),
            Err(e) if strict => {
                return Err(format!("{}:{}: not a known_hosts line: {e}", file.display(), n + 1));
            }
            Err(e) => tracing::warn!("{}:{}: skipped, not a known_hosts line: {e}", file.display(), n + 1),
        }
    }
    Ok(lines)
}

/// Whether `name` (`host` or `[host]:port`) is one of the patterns: a hashed
/// name (HMAC-SHA1 of the name keyed by the salt), or a list of globs (`*`,
/// `?`) where a `!` pattern that matches excludes the host.
fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else { return false };
            mac.update(name.to_ascii_lowercase().as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let mut hit = false;
            for pattern in list {
                let (negated, pattern) = match pattern.strip_prefix('!') {
                    Some(p) => (true, p),
                    None => (false, pattern.as_str()),
                };
                if glob(pattern, name) {
                    if negated {
                        return false;
                    }
                    hit = true;
                }
            }
            hit
        }
    }
}

/// OpenSSH's host pattern match: `*` any run of characters, `?` one
/// character, anything else literal (brackets included), case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) =
        (pattern.to_ascii_lowercase().chars().collect(), name.to_ascii_lowercase().chars().collect());
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and the name position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEtkzQZFGQBx/i2M5ykTxqPKt6K7piNVbM3oM1PnljzE";
    const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIDDUdBI0Ir5XB7WG9mtYlVz5L3L2Ma2fd74ga3pui7Q";

    fn blob(key: &str) -> Vec<u8> {
        use base64ct::Encoding;
        base64ct::Base64::decode_vec(key.split_whitespace().nth(1).unwrap()).unwrap()
    }

    fn with(text: &str) -> (tempfile::TempDir, HostKeys) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, text).unwrap();
        let keys = HostKeys::file(&file).unwrap();
        (dir, keys)
    }

    #[test]
    fn plain_ported_and_hashed_names() {
        let (_d, keys) = with(&format!("git.example.com,10.0.0.1 {KEY}\n[127.0.0.1]:2222 {KEY}\n"));
        assert_eq!(keys.check("git.example.com", None, &blob(KEY)), Ok(()));
        assert_eq!(keys.check("10.0.0.1", Some(22), &blob(KEY)), Ok(()));
        assert_eq!(keys.check("127.0.0.1", Some(2222), &blob(KEY)), Ok(()));
        let e = keys.check("127.0.0.1", None, &blob(KEY)).unwrap_err();
        assert!(e.starts_with("SSH host key of 127.0.0.1 is unknown: offered SHA256:"), "{e}");
        // A hashed entry as `ssh-keygen -H` writes it (the real thing is in tests/hosts.rs).
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hash: [u8; 20] = mac.finalize().into_bytes().into();
        let hashed = HostPatterns::HashedName { salt: salt.to_vec(), hash }.to_string();
        assert!(hashed.starts_with("|1|"));
        let line = format!("{hashed} {KEY}\n");
        let (_d, keys) = with(&line);
        assert_eq!(keys.check("127.0.0.1", Some(2222), &blob(KEY)), Ok(()));
        assert!(keys.check("127.0.0.1", Some(2223), &blob(KEY)).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(glob("*.example.com", "git.example.com"));
        assert!(glob("git?.example.com", "git1.example.com"));
        assert!(!glob("git?.example.com", "git.example.com"));
        assert!(glob("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
        assert!(glob("*", "anything"));
        assert!(!glob("*.example.com", "example.org"));
        assert!(glob("GIT.Example.com", "git.example.COM"));
    }

    #[test]
    fn changed_revoked_and_negated() {
        let (_d, keys) = with(&format!("*.example.com,!evil.example.com {KEY}\n@revoked * {OTHER}\n"));
        assert_eq!(keys.check("git.example.com", None, &blob(KEY)), Ok(()));
        assert!(keys.check("evil.example.com", None, &blob(KEY)).unwrap_err().contains("is unknown"));
        let e = keys.check("git.example.com", None, &blob(OTHER)).unwrap_err();
        assert!(e.contains("is revoked"), "{e}");
        let (_d, keys) = with(&format!("git.example.com {OTHER}\n"));
        let e = keys.check("git.example.com", None, &blob(KEY)).unwrap_err();
        assert!(e.contains("changed: offered SHA256:") && e.contains("has SHA256:"), "{e}");
    }

    #[test]
    fn a_revocation_wins_wherever_it_is() {
        let (_d, keys) = with(&format!("git.example.com {KEY}\n@revoked * {KEY}\n"));
        assert!(keys.check("git.example.com", None, &blob(KEY)).unwrap_err().contains("is revoked"));
    }

    #[test]
    fn ecdsa_and_rsa_lines_as_ssh_keyscan_prints_them() {
        // Keys of these types are compared as bytes: no need to decode them.
        const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";
        let (_d, keys) = with(&format!("github.com {ECDSA}\ngithub.com {KEY}\n"));
        assert_eq!(keys.check("github.com", None, &blob(ECDSA)), Ok(()));
        assert_eq!(keys.check("GitHub.com", None, &blob(KEY)), Ok(()));
        let e = keys.check("github.com", None, &blob(OTHER)).unwrap_err();
        assert!(e.contains("(ssh-ed25519)") && e.contains("changed"), "{e}");
    }

    #[test]
    fn no_file_fails_clearly_and_bad_lines_are_errors() {
        let keys =
            HostKeys::KnownHosts { files: vec![PathBuf::from("/nonexistent/known_hosts")], explicit: false };
        let e = keys.check("git.example.com", Some(2222), &blob(KEY)).unwrap_err();
        assert!(
            e.contains("no known_hosts file") && e.contains("ssh-keyscan -p 2222 git.example.com"),
            "{e}"
        );
        assert_eq!(HostKeys::Insecure.check("x", None, &blob(KEY)), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kh");
        std::fs::write(&file, "git.example.com ssh-ed25519 not-base64!\n").unwrap();
        // (in a default file it would be skipped with a warning)
        let e = HostKeys::file(&file).unwrap_err();
        assert!(e.contains("kh:1: not a known_hosts line"), "{e}");
    }
}
