//! Lookout's configuration: the TOML schema, its defaults, and validation with errors that
//! name the field and say what is wrong with it.
//!
//! With no file at all, Lookout serves the built-in test pattern at path `demo` on
//! `127.0.0.1:8080`, so `cargo run --release` shows a picture on any machine.

mod auth;
mod limits;
mod path;
mod webrtc;

pub use path::{validate_path_name, Credentials, OnDemand, PathConfig, PathDefinition, PathSpec, RtspSource, RtspTransport, TestPatternSettings, TestPatternSpec};
pub use webrtc::{IceServerConfig, MediaPorts, PortRange, TurnCredentials, WebRtcConfig};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEMO_PATH: &str = "demo";
/// Where paths made through the API are kept, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = "lookout-data";

/// The validated configuration the rest of Lookout runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Paths in name order; names are unique by construction.
    pub paths: BTreeMap<String, PathDefinition>,
    pub webrtc: WebRtcConfig,
    /// Access control; `None` (no `[auth]`) is the open default: anyone may watch, and only
    /// loopback may use the API and metrics.
    pub auth: Option<crate::auth::AuthSettings>,
    pub limits: crate::limits::LimitSettings,
    /// HTTPS and WSS on `listen`, with these PEM files.
    pub tls: Option<TlsFiles>,
    /// Where Lookout keeps what it must remember across restarts: the paths made through the
    /// API.
    pub state_dir: std::path::PathBuf,
}

/// The `[tls]` section: a certificate chain and its private key, PEM.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
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

pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), problem: problem.into() }
}

// ── The file's shape, as written by users ───────────────────────────────────────────────────

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default)]
    paths: BTreeMap<String, PathSpec>,
    #[serde(default)]
    webrtc: webrtc::FileWebRtc,
    auth: Option<auth::FileAuth>,
    #[serde(default)]
    limits: limits::FileLimits,
    tls: Option<FileTls>,
    state_dir: Option<std::path::PathBuf>,
}

impl Config {
    /// The configuration used when no file is given: the test pattern at `demo`.
    pub fn builtin_default() -> Self {
        let demo = PathSpec { source: path::TEST_PATTERN_SOURCE.to_owned(), ..Default::default() };
        let demo = PathDefinition::from_spec(DEMO_PATH, demo).expect("the test pattern's defaults are valid");
        Self {
            listen: parse_listen("listen", DEFAULT_LISTEN).expect("default address is valid"),
            paths: BTreeMap::from([(DEMO_PATH.to_owned(), demo)]),
            webrtc: WebRtcConfig::default(),
            auth: None,
            limits: Default::default(),
            tls: None,
            state_dir: DEFAULT_STATE_DIR.into(),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_in(&text, base).map_err(|error| match error {
            ConfigError::Syntax { reason, .. } => {
                ConfigError::Syntax { path: path.display().to_string(), reason }
            }
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_in(text, Path::new("."))
    }

    /// Reads a configuration whose relative file names (a JWT public key) are in `base`.
    pub fn from_toml_in(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: "config".into(), reason: e.to_string() })?;
        let listen = parse_listen("listen", file.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
        let mut paths = BTreeMap::new();
        for (name, path) in file.paths {
            let field = format!("paths.{name}");
            validate_path_name(&field, &name)?;
            paths.insert(name, PathDefinition::from_spec(&field, path)?);
        }
        let auth = file.auth.map(|a| auth::auth_settings(a, base)).transpose()?;
        // Relative to the file's folder; read (and checked) when the server starts.
        let tls = file.tls.map(|t| TlsFiles { cert: base.join(t.cert), key: base.join(t.key) });
        let state_dir = file.state_dir.map_or_else(|| DEFAULT_STATE_DIR.into(), |dir| base.join(dir));
        Ok(Self {
            listen,
            paths,
            webrtc: webrtc::webrtc_config(file.webrtc)?,
            auth,
            limits: limits::limit_settings(file.limits)?,
            tls,
            state_dir,
        })
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
        let path = PathSpec { source: source.to_owned(), ..Default::default() };
        self.paths.insert(name.to_owned(), PathDefinition::from_spec(&field, path)?);
        Ok(())
    }
}

fn parse_listen(field: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(field, format!("{value:?} is not an IP address with a port, such as 127.0.0.1:8080 or [::]:8080"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        assert!(matches!(config.paths.get(DEMO_PATH).map(|path| &path.source), Some(PathConfig::TestPattern(_))));
    }

    #[test]
    fn full_file_parses() {
        let config = Config::from_toml(
            r#"
            listen = "0.0.0.0:9000"
            [paths.front]
            source = "rtsp://admin:s%40cret@10.0.0.5:554/stream1"
            transport = "udp"
            [[paths.front.layers]]
            source = "rtsp://admin:s%40cret@10.0.0.5:554/stream2"
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
        let PathConfig::Rtsp(front) = &config.paths["front"].source else { panic!("front is rtsp") };
        assert_eq!(front.url.as_str(), "rtsp://10.0.0.5:554/stream1");
        assert_eq!(front.transport, RtspTransport::Udp);
        let creds = front.credentials.as_ref().expect("credentials from the URL");
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("admin", "s@cret"));
        let [PathConfig::Rtsp(sub)] = &config.paths["front"].lower_layers[..] else { panic!("one rtsp layer under front") };
        assert_eq!((sub.url.as_str(), sub.transport), ("rtsp://10.0.0.5:554/stream2", RtspTransport::Tcp), "a layer is a path of its own");
        assert!(config.paths["back"].lower_layers.is_empty());
        let PathConfig::Rtsp(back) = &config.paths["back"].source else { panic!("back is rtsp") };
        assert_eq!(back.transport, RtspTransport::Tcp);
        assert_eq!(back.credentials.as_ref().map(|c| c.password.as_str()), Some("pw"));
        let PathConfig::TestPattern(pattern) = &config.paths["pattern"].source else { panic!("pattern") };
        assert_eq!((pattern.width, pattern.fps), (640, 15));
        assert_eq!(pattern.keyframe_interval, Duration::from_secs(4));
    }

    #[test]
    fn a_source_written_back_reads_the_same() {
        let config = Config::from_toml(
            "[paths.a]\nsource = \"rtsp://u:p%40ss@10.0.0.5/s1\"\ntransport = \"udp\"\n[[paths.a.layers]]\nsource = \"rtsp://10.0.0.5/s2\"\n\
             [paths.b]\nsource = \"testpattern\"\ntest_pattern = { fps = 12, keyframe_interval_secs = 0.5, audio = false }",
        )
        .expect("valid");
        for path in config.paths.values() {
            for source in path.sources() {
                assert_eq!(&PathDefinition::from_spec("", source.to_spec()).expect("valid").source, source);
            }
            assert_eq!(&PathDefinition::with_layers(path.source.clone(), path.lower_layers.clone()).lower_layers, &path.lower_layers);
        }
    }

    #[test]
    fn the_test_pattern_opens_on_demand_and_cameras_stay_open_unless_asked() {
        let config = Config::from_toml(
            "[paths.pattern]\nsource = \"testpattern\"\n[paths.camera]\nsource = \"rtsp://x/y\"\n\
             [paths.lazy]\nsource = \"rtsp://x/z\"\non_demand = true\nclose_after_secs = 2.5\n[paths.busy]\nsource = \"testpattern\"\non_demand = false",
        )
        .expect("valid");
        assert_eq!(config.paths["pattern"].on_demand, Some(OnDemand::default()));
        assert_eq!(config.paths["camera"].on_demand, None);
        assert_eq!(config.paths["lazy"].on_demand, Some(OnDemand { close_after: Duration::from_millis(2500), start_timeout: Duration::from_secs(10) }));
        assert_eq!(config.paths["busy"].on_demand, None);
        assert_eq!(Config::builtin_default().paths[DEMO_PATH].on_demand, Some(OnDemand::default()), "demo costs nothing until watched");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"listen = "localhost""#, "listen"),
            ("[paths.a]\nsource = \"http://x/y\"", "paths.a.source"),
            ("[paths.a]\nsource = \"not a url\"", "paths.a.source"),
            ("[paths.\"a b\"]\nsource = \"rtsp://x/y\"", "paths.a b"),
            ("[paths.\"garage/../x\"]\nsource = \"rtsp://x/y\"", "paths.garage/../x"),
            ("[paths.\"garage//x\"]\nsource = \"rtsp://x/y\"", "paths.garage//x"),
            ("[paths.\"/x\"]\nsource = \"rtsp://x/y\"", "paths./x"),
            ("[paths.\"x/\"]\nsource = \"rtsp://x/y\"", "paths.x/"),
            ("[paths.a]\nsource = \"testpattern\"\ntest_pattern = { fps = 0 }", "paths.a.test_pattern.fps"),
            ("[paths.a]\nsource = \"testpattern\"\ntest_pattern = { width = 641 }", "paths.a.test_pattern.width"),
            ("[paths.a]\nsource = \"rtsp://u:p@x/y\"\nusername = \"v\"", "paths.a.source"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\npassword = \"p\"", "paths.a.source"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\n[[paths.a.layers]]\nsource = \"ftp://x/z\"", "paths.a.layers[0].source"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\n[[paths.a.layers]]\nsource = \"rtsp://x/z\"\nlayers = [{ source = \"testpattern\" }]", "paths.a.layers[0].layers"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\nclose_after_secs = 5", "paths.a.close_after_secs"),
            ("[paths.a]\nsource = \"testpattern\"\nstart_timeout_secs = 0", "paths.a.start_timeout_secs"),
            ("[paths.a]\nsource = \"rtsp://x/y\"\n[[paths.a.layers]]\nsource = \"rtsp://x/z\"\non_demand = true", "paths.a.layers[0].on_demand"),
            // A setting that is gone says so rather than being ignored.
            ("[webrtc]\nown_endpoint = false", "webrtc.own_endpoint"),
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
        config.add_source_argument("garage/door=rtsp://127.0.0.1:8554/test").expect("a name in parts");
        assert_eq!(field_of(config.add_source_argument("nourl").unwrap_err()), "--source nourl");
        assert!(config.set_listen("nonsense").is_err());
    }
}
