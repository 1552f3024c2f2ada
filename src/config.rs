//! Lookout's configuration: the TOML schema, its defaults, and validation with errors that
//! name the field and say what is wrong with it.
//!
//! With no file at all, Lookout serves the built-in test pattern at path `demo` on
//! `127.0.0.1:8080`, so `cargo run --release` shows a picture on any machine.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use url::Url;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEMO_PATH: &str = "demo";

/// The validated configuration the rest of Lookout runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Paths in name order; names are unique by construction.
    pub paths: BTreeMap<String, PathConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathConfig {
    Rtsp(RtspSource),
    TestPattern(TestPatternSettings),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtspSource {
    /// The camera URL without credentials; those are in `credentials`.
    pub url: Url,
    pub credentials: Option<Credentials>,
    pub transport: Transport,
}

#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Keep passwords out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP interleaved on the RTSP TCP connection: passes NAT and firewalls, never reorders.
    #[default]
    Tcp,
    /// RTP on separate UDP ports: lower latency on a clean LAN, lost packets stay lost.
    Udp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestPatternSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub keyframe_interval: Duration,
    pub bitrate_kbps: u32,
}

impl Default for TestPatternSettings {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            bitrate_kbps: 2500,
        }
    }
}

/// What is wrong with a configuration, naming the field so the user can fix it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), problem: problem.into() }
}

// ── The file's shape, as written by users ───────────────────────────────────────────────────

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default)]
    paths: BTreeMap<String, FilePath>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePath {
    /// `rtsp://…`, `rtsps://…`, or `testpattern`.
    source: String,
    username: Option<String>,
    password: Option<String>,
    transport: Option<Transport>,
    test_pattern: Option<FileTestPattern>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTestPattern {
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
    keyframe_interval_secs: Option<f64>,
    bitrate_kbps: Option<u32>,
}

const TEST_PATTERN_SOURCE: &str = "testpattern";

impl Config {
    /// The configuration used when no file is given: the test pattern at `demo`.
    pub fn builtin_default() -> Self {
        let mut paths = BTreeMap::new();
        paths.insert(DEMO_PATH.to_owned(), PathConfig::TestPattern(TestPatternSettings::default()));
        Self { listen: parse_listen("listen", DEFAULT_LISTEN).expect("default address is valid"), paths }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|error| match error {
            ConfigError::Syntax { reason, .. } => {
                ConfigError::Syntax { path: path.display().to_string(), reason }
            }
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: "config".into(), reason: e.to_string() })?;
        let listen = parse_listen("listen", file.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
        let mut paths = BTreeMap::new();
        for (name, path) in file.paths {
            let field = format!("paths.{name}");
            validate_path_name(&field, &name)?;
            paths.insert(name, path_config(&field, path)?);
        }
        Ok(Self { listen, paths })
    }

    /// Applies `--listen ADDR`.
    pub fn set_listen(&mut self, addr: &str) -> Result<(), ConfigError> {
        self.listen = parse_listen("--listen", addr)?;
        Ok(())
    }

    /// Applies one `--source NAME=URL`, replacing a path of the same name.
    pub fn add_source_argument(&mut self, argument: &str) -> Result<(), ConfigError> {
        let field = format!("--source {argument}");
        let (name, source) = argument
            .split_once('=')
            .ok_or_else(|| invalid(&field, "expected NAME=URL, for example front=rtsp://192.168.1.10/stream1"))?;
        validate_path_name(&field, name)?;
        let path = FilePath {
            source: source.to_owned(),
            username: None,
            password: None,
            transport: None,
            test_pattern: None,
        };
        self.paths.insert(name.to_owned(), path_config(&field, path)?);
        Ok(())
    }
}

fn parse_listen(field: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(field, format!("{value:?} is not an IP address with a port, such as 127.0.0.1:8080 or [::]:8080"))
    })
}

/// Path names appear in URLs (`/whep/NAME`, `/?path=NAME`): keep them URL-safe.
fn validate_path_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) || name.starts_with('.') {
        return Err(invalid(
            field,
            format!("path name {name:?} must be 1-64 characters of letters, digits, '-', '_' or '.', not starting with '.'"),
        ));
    }
    Ok(())
}

fn path_config(field: &str, path: FilePath) -> Result<PathConfig, ConfigError> {
    if path.source == TEST_PATTERN_SOURCE {
        if path.username.is_some() || path.password.is_some() || path.transport.is_some() {
            return Err(invalid(field, "username, password and transport apply to rtsp sources only"));
        }
        return test_pattern(&format!("{field}.test_pattern"), path.test_pattern.unwrap_or_default())
            .map(PathConfig::TestPattern);
    }
    if path.test_pattern.is_some() {
        return Err(invalid(format!("{field}.test_pattern"), "applies only when source = \"testpattern\""));
    }
    rtsp_source(&format!("{field}.source"), path).map(PathConfig::Rtsp)
}

fn rtsp_source(field: &str, path: FilePath) -> Result<RtspSource, ConfigError> {
    let mut url = Url::parse(&path.source).map_err(|e| {
        invalid(field, format!("{:?} is not a URL ({e}); expected rtsp://host[:port]/path or \"testpattern\"", path.source))
    })?;
    if !matches!(url.scheme(), "rtsp" | "rtsps") {
        return Err(invalid(field, format!("scheme {:?} is not supported; use rtsp:// or rtsps://", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, "the URL has no host"));
    }
    let in_url = (!url.username().is_empty()).then(|| Credentials {
        username: percent_decode(url.username()),
        password: percent_decode(url.password().unwrap_or("")),
    });
    let in_fields = match (path.username, path.password) {
        (Some(username), password) => Some(Credentials { username, password: password.unwrap_or_default() }),
        (None, Some(_)) => return Err(invalid(field, "password is set but username is not")),
        (None, None) => None,
    };
    if in_url.is_some() && in_fields.is_some() {
        return Err(invalid(field, "credentials are given both in the URL and in username/password; keep one"));
    }
    // Credentials travel separately so that the URL can be logged and shown as it is.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(RtspSource { url, credentials: in_url.or(in_fields), transport: path.transport.unwrap_or_default() })
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn test_pattern(field: &str, file: FileTestPattern) -> Result<TestPatternSettings, ConfigError> {
    let default = TestPatternSettings::default();
    let even_in = |name: &str, value: u32| {
        if !(16..=3840).contains(&value) || value % 2 != 0 {
            Err(invalid(format!("{field}.{name}"), format!("{value} must be an even number from 16 to 3840")))
        } else {
            Ok(value)
        }
    };
    let width = even_in("width", file.width.unwrap_or(default.width))?;
    let height = even_in("height", file.height.unwrap_or(default.height))?;
    let fps = file.fps.unwrap_or(default.fps);
    if !(1..=60).contains(&fps) {
        return Err(invalid(format!("{field}.fps"), format!("{fps} must be from 1 to 60")));
    }
    let keyframe_secs = file.keyframe_interval_secs.unwrap_or(default.keyframe_interval.as_secs_f64());
    if !(0.1..=60.0).contains(&keyframe_secs) {
        return Err(invalid(format!("{field}.keyframe_interval_secs"), format!("{keyframe_secs} must be from 0.1 to 60 seconds")));
    }
    let bitrate_kbps = file.bitrate_kbps.unwrap_or(default.bitrate_kbps);
    if !(50..=50_000).contains(&bitrate_kbps) {
        return Err(invalid(format!("{field}.bitrate_kbps"), format!("{bitrate_kbps} must be from 50 to 50000")));
    }
    Ok(TestPatternSettings { width, height, fps, keyframe_interval: Duration::from_secs_f64(keyframe_secs), bitrate_kbps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: ConfigError) -> String {
        match error {
            ConfigError::Invalid { field, .. } => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn builtin_default_serves_demo_on_loopback() {
        let config = Config::builtin_default();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(config.paths.get(DEMO_PATH), Some(PathConfig::TestPattern(_))));
    }

    #[test]
    fn full_file_parses() {
        let config = Config::from_toml(
            r#"
            listen = "0.0.0.0:9000"
            [paths.front]
            source = "rtsp://admin:s%40cret@10.0.0.5:554/stream1"
            transport = "udp"
            [paths.back]
            source = "rtsp://10.0.0.6/live"
            username = "viewer"
            password = "pw"
            [paths.pattern]
            source = "testpattern"
            test_pattern = { width = 640, height = 360, fps = 15, keyframe_interval_secs = 4 }
            "#,
        )
        .expect("valid config");
        assert_eq!(config.listen.port(), 9000);
        let PathConfig::Rtsp(front) = &config.paths["front"] else { panic!("front is rtsp") };
        assert_eq!(front.url.as_str(), "rtsp://10.0.0.5:554/stream1");
        assert_eq!(front.transport, Transport::Udp);
        let creds = front.credentials.as_ref().expect("credentials from the URL");
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("admin", "s@cret"));
        let PathConfig::Rtsp(back) = &config.paths["back"] else { panic!("back is rtsp") };
        assert_eq!(back.transport, Transport::Tcp);
        assert_eq!(back.credentials.as_ref().map(|c| c.password.as_str()), Some("pw"));
        let PathConfig::TestPattern(pattern) = &config.paths["pattern"] else { panic!("pattern") };
        assert_eq!((pattern.width, pattern.fps), (640, 15));
        assert_eq!(pattern.keyframe_interval, Duration::from_secs(4));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"listen = "localhost""#, "listen"),
            ("[paths.a]\nsource = \"http://x/y\"", "paths.a.source"),
            ("[paths.a]\nsource = \"not a url\"", "paths.a.source"),
            ("[paths.\"a b\"]\nsource = \"rtsp://x/y\"", "paths.a b"),
            ("[paths.a]\nsource = \"testpattern\"\ntest_pattern = { fps = 0 }", "paths.a.test_pattern.fps"),
            ("[paths.a]\nsource = \"testpattern\"\ntest_pattern = { width = 641 }", "paths.a.test_pattern.width"),
            ("[paths.a]\nsource = \"rtsp://u:p@x/y\"\nusername = \"v\"", "paths.a.source"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\npassword = \"p\"", "paths.a.source"),
        ];
        for (text, field) in cases {
            let error = Config::from_toml(text).expect_err(text);
            assert_eq!(field_of(error), field, "for {text}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_transport_are_syntax_errors_naming_the_key() {
        let error = Config::from_toml("[paths.a]\nsource = \"rtsp://x/y\"\ntransprot = \"tcp\"").unwrap_err();
        assert!(error.to_string().contains("transprot"), "{error}");
        let error = Config::from_toml("[paths.a]\nsource = \"rtsp://x/y\"\ntransport = \"sctp\"").unwrap_err();
        assert!(error.to_string().contains("sctp"), "{error}");
    }

    #[test]
    fn source_argument_adds_a_path() {
        let mut config = Config::builtin_default();
        config.add_source_argument("cam=rtsp://u:p@127.0.0.1:8554/test").expect("valid");
        assert!(config.paths.contains_key("cam") && config.paths.contains_key(DEMO_PATH));
        assert_eq!(field_of(config.add_source_argument("nourl").unwrap_err()), "--source nourl");
        assert!(config.set_listen("nonsense").is_err());
    }
}
