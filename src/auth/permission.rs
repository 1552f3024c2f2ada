//! What a caller may do: an action on the paths a pattern matches.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Watch a path, by any way in: /ws, WHEP, LL-HLS.
    Read,
    /// The REST API beyond what a viewer needs (sessions, and what manages the server).
    Api,
    /// The metrics endpoint.
    Metrics,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Api => "api",
            Action::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which paths a permission covers: one name, a glob (`garage/*`, `cam-?`), or all of them
/// (`*`, or no pattern at all). `*` matches any run of characters, `?` any one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern(String);

impl PathPattern {
    pub const ALL: &'static str = "*";

    pub fn all() -> Self {
        Self(Self::ALL.to_owned())
    }

    /// Patterns longer than a path name can be are refused, so that matching stays cheap.
    pub fn new(pattern: &str) -> Result<Self, PermissionError> {
        if pattern.is_empty() {
            return Ok(Self::all());
        }
        if pattern.len() > MAX_PATTERN_LENGTH {
            return Err(PermissionError::PatternTooLong(pattern.len()));
        }
        if pattern.chars().any(char::is_control) {
            return Err(PermissionError::ControlCharacter);
        }
        Ok(Self(pattern.to_owned()))
    }

    pub fn matches(&self, path: &str) -> bool {
        glob_matches(self.0.as_bytes(), path.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Glob matching with `*` and `?`, iterative with one backtrack point: linear in practice and
/// never exponential, whatever the pattern.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One permission: `action` on the paths `path` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    pub path: PathPattern,
}

/// The shape a permission is written in, in the configuration file and in a JWT claim:
/// `{"action": "read", "path": "garage/*"}` (no `path`: every path).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSpec {
    pub action: Action,
    #[serde(default)]
    pub path: Option<String>,
}

const MAX_PATTERN_LENGTH: usize = 256;

/// Why a permission as written cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    #[error("a path pattern of {0} characters is longer than the {MAX_PATTERN_LENGTH} allowed")]
    PatternTooLong(usize),
    #[error("a path pattern cannot hold control characters")]
    ControlCharacter,
    #[error("{0} is granted for the whole server: leave out path")]
    PathOfWholeServerAction(Action),
}

impl TryFrom<PermissionSpec> for Permission {
    type Error = PermissionError;

    fn try_from(spec: PermissionSpec) -> Result<Self, PermissionError> {
        let path = PathPattern::new(spec.path.as_deref().unwrap_or(""))?;
        // The API and metrics are granted whole: a path would grant nothing.
        if spec.action != Action::Read && path.as_str() != PathPattern::ALL {
            return Err(PermissionError::PathOfWholeServerAction(spec.action));
        }
        Ok(Permission { action: spec.action, path })
    }
}

/// The permissions a caller holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions(Vec<Permission>);

impl Permissions {
    pub fn new(permissions: Vec<Permission>) -> Self {
        Self(permissions)
    }

    /// Every action on every path.
    pub fn everything() -> Self {
        Self([Action::Read, Action::Api, Action::Metrics].into_iter().map(|action| Permission { action, path: PathPattern::all() }).collect())
    }

    /// `read` on every path and nothing else.
    pub fn read_all() -> Self {
        Self(vec![Permission { action: Action::Read, path: PathPattern::all() }])
    }

    /// Whether `action` is allowed on `path`; `None` asks about the action itself (the API or
    /// metrics as a whole), which a permission for any path does not give.
    pub fn allows(&self, action: Action, path: Option<&str>) -> bool {
        self.0.iter().any(|p| {
            p.action == action
                && match path {
                    Some(path) => p.path.matches(path),
                    None => p.path.as_str() == PathPattern::ALL,
                }
        })
    }

    /// Whether `action` is allowed on some path, or as a whole.
    pub fn allows_somewhere(&self, action: Action) -> bool {
        self.0.iter().any(|p| p.action == action)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> PathPattern {
        PathPattern::new(p).expect("valid pattern")
    }

    #[test]
    fn globs_match_names_as_written() {
        assert!(pattern("garage/*").matches("garage/door"));
        assert!(pattern("garage/*").matches("garage/"));
        assert!(!pattern("garage/*").matches("garage"));
        assert!(!pattern("garage/*").matches("front/garage/door"));
        assert!(pattern("cam-?").matches("cam-1"));
        assert!(!pattern("cam-?").matches("cam-12"));
        assert!(pattern("*-door").matches("front-door"));
        assert!(pattern("a*b*c").matches("axxbyyc"));
        assert!(!pattern("a*b*c").matches("axxbyy"));
        assert!(pattern("demo").matches("demo"));
        assert!(!pattern("demo").matches("demo2"));
        assert!(pattern("").matches("anything") && pattern("*").matches(""));
    }

    #[test]
    fn a_hostile_pattern_stays_cheap() {
        let long = "*a".repeat(120);
        let started = std::time::Instant::now();
        assert!(!pattern(&long).matches(&"a".repeat(64)));
        // Not a timing assertion of the product: a guard against exponential backtracking,
        // which would take far longer than this on any machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(PathPattern::new(&"x".repeat(257)).is_err());
    }

    #[test]
    fn permissions_are_per_action_and_path() {
        let held = Permissions::new(vec![
            Permission { action: Action::Read, path: pattern("garage/*") },
            Permission { action: Action::Metrics, path: PathPattern::all() },
        ]);
        assert!(held.allows(Action::Read, Some("garage/a")));
        assert!(!held.allows(Action::Read, Some("front")));
        assert!(!held.allows(Action::Api, Some("garage/a")));
        assert!(held.allows(Action::Metrics, None));
        assert!(!held.allows(Action::Read, None), "read on some paths is not read on all");
        assert!(Permissions::everything().allows(Action::Api, None));
        assert!(!Permissions::read_all().allows(Action::Api, None));
    }

    #[test]
    fn specs_read_as_written_in_files_and_claims() {
        let spec: PermissionSpec = serde_json::from_str(r#"{"action":"read","path":"garage/*"}"#).expect("spec");
        let permission = Permission::try_from(spec).expect("permission");
        assert_eq!((permission.action, permission.path.as_str()), (Action::Read, "garage/*"));
        let spec: PermissionSpec = serde_json::from_str(r#"{"action":"api"}"#).expect("spec");
        assert_eq!(Permission::try_from(spec).expect("permission").path, PathPattern::all());
        assert!(serde_json::from_str::<PermissionSpec>(r#"{"action":"write"}"#).is_err());
        assert!(serde_json::from_str::<PermissionSpec>(r#"{"action":"read","paths":"x"}"#).is_err());
        let spec: PermissionSpec = serde_json::from_str(r#"{"action":"api","path":"garage/*"}"#).expect("spec");
        assert!(Permission::try_from(spec).is_err(), "api on some paths would grant nothing");
    }
}
