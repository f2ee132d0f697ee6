//! `gitfleet.yaml`: which files are read, where status and approvals live, who approves.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::validate::Area;

/// The settings file name at the root of the tracked folder.
pub const SETTINGS_FILE: &str = "gitfleet.yaml";
const DEFAULT_INCLUDE: &[&str] = &["**/*.yaml", "**/*.yml"];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsWire {
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    status_path: Option<String>,
    #[serde(default)]
    approvals_path: Option<String>,
    #[serde(default)]
    status_branch: Option<String>,
    #[serde(default)]
    approvers: Vec<String>,
}

/// Repository settings with globs compiled.
#[derive(Debug, Clone)]
pub struct Settings {
    include: GlobSet,
    exclude: GlobSet,
    pub status_path: String,
    pub approvals_path: String,
    pub status_branch: Option<String>,
    approvers: Option<GlobSet>,
    /// The raw text, so a change of `gitfleet.yaml` can be detected cheaply.
    pub source: Vec<u8>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::parse(b"").expect("the default settings are valid")
    }
}

fn glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob {pattern:?}: {e}"))
}

fn globset(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
    }
    b.build().map_err(|e| e.to_string())
}

/// A folder setting: relative, normalised, never escaping the repository.
fn folder(field: &str, value: Option<String>, default: &str) -> Result<String, String> {
    let v = value.unwrap_or_else(|| default.to_string());
    let v = v.trim_matches('/').to_string();
    if v.is_empty() || v.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("{field}: {v:?} must be a relative folder inside the repository"));
    }
    Ok(v)
}

impl Settings {
    /// Parses the settings file; an empty file means every default.
    pub fn parse(bytes: &[u8]) -> Result<Settings, String> {
        let wire: SettingsWire = if bytes.iter().all(u8::is_ascii_whitespace) {
            SettingsWire::default()
        } else {
            crate::yaml::parse_typed(bytes).map_err(|e| e.to_string())?
        };
        let include = match &wire.include {
            Some(list) => globset(list)?,
            None => globset(&DEFAULT_INCLUDE.iter().map(|s| s.to_string()).collect::<Vec<_>>())?,
        };
        let approvers = if wire.approvers.is_empty() { None } else { Some(globset(&wire.approvers)?) };
        if let Some(b) = &wire.status_branch
            && git2::Branch::name_is_valid(b) != Ok(true)
        {
            return Err(format!("statusBranch: {b:?} is not a valid branch name"));
        }
        Ok(Settings {
            include,
            exclude: globset(&wire.exclude)?,
            status_path: folder("statusPath", wire.status_path, "status")?,
            approvals_path: folder("approvalsPath", wire.approvals_path, "approvals")?,
            status_branch: wire.status_branch,
            approvers,
            source: bytes.to_vec(),
        })
    }

    /// What a path (relative to the tracked folder) is: a manifest, an approval, or nothing.
    pub fn classify(&self, path: &str) -> Option<Area> {
        if path == SETTINGS_FILE || in_folder(path, &self.status_path) {
            return None;
        }
        if in_folder(path, &self.approvals_path) {
            let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
            return yaml.then_some(Area::Approvals);
        }
        (self.include.is_match(path) && !self.exclude.is_match(path)).then_some(Area::Manifests)
    }

    /// Whether a subtree can hold no file gitfleet reads (status is skipped whole).
    pub fn skips_folder(&self, path: &str) -> bool {
        path == self.status_path || in_folder(path, &self.status_path)
    }

    /// Whether an e-mail may approve; anyone may when `approvers` is empty.
    pub fn may_approve(&self, email: &str) -> bool {
        self.approvers.as_ref().is_none_or(|set| set.is_match(email))
    }
}

fn in_folder(path: &str, folder: &str) -> bool {
    path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_yaml_outside_status() {
        let s = Settings::default();
        assert_eq!(s.classify("clusters/member1.yaml"), Some(Area::Manifests));
        assert_eq!(s.classify("top.yml"), Some(Area::Manifests));
        assert_eq!(s.classify("README.md"), None);
        assert_eq!(s.classify("status/clusterstagedupdateruns/x.yaml"), None);
        assert_eq!(s.classify("approvals/x.yaml"), Some(Area::Approvals));
        assert_eq!(s.classify("gitfleet.yaml"), None);
        assert!(s.may_approve("anyone@example.com"));
    }

    #[test]
    fn include_exclude_and_approvers() {
        let s = Settings::parse(
            b"include: ['fleet/**/*.yaml']\nexclude: ['fleet/drafts/*']\nstatusPath: out/status\napprovers: ['*@example.com']\n",
        )
        .unwrap();
        assert_eq!(s.classify("fleet/a/b.yaml"), Some(Area::Manifests));
        assert_eq!(s.classify("fleet/drafts/x.yaml"), None);
        assert_eq!(s.classify("fleet/drafts/sub/x.yaml"), Some(Area::Manifests), "* does not cross /");
        assert_eq!(s.classify("other/x.yaml"), None);
        assert_eq!(s.classify("out/status/x.yaml"), None);
        assert!(s.may_approve("lead@example.com"));
        assert!(!s.may_approve("mallory@evil.test"));
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Settings::parse(b"statusPath: ../elsewhere\n").unwrap_err().contains("statusPath"));
        assert!(Settings::parse(b"include: ['[']\n").unwrap_err().contains("invalid glob"));
        assert!(Settings::parse(b"inclde: []\n").unwrap_err().contains("inclde"));
        assert!(Settings::parse(b"statusBranch: 'a..b'\n").unwrap_err().contains("statusBranch"));
    }
}
