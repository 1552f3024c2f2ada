//! The paths: each names one source, an RTSP camera or the built-in test pattern.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

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
    pub transport: RtspTransport,
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
pub enum RtspTransport {
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
    /// A G.711 tone: a 100 ms beep at the start of every second of capture time.
    pub audio: bool,
}

impl Default for TestPatternSettings {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            bitrate_kbps: 2500,
            audio: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePath {
    /// `rtsp://…`, `rtsps://…`, or `testpattern`.
    pub source: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Option<RtspTransport>,
    pub test_pattern: Option<FileTestPattern>,
    /// Lower-quality sources of the same scene (a camera's sub stream), best first; each is
    /// written like a path.
    #[serde(default)]
    pub layers: Vec<FilePath>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTestPattern {
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
    keyframe_interval_secs: Option<f64>,
    bitrate_kbps: Option<u32>,
    audio: Option<bool>,
}

const TEST_PATTERN_SOURCE: &str = "testpattern";

/// Path names appear in URLs (`/whep/NAME`, `/hls/NAME/…`, `/?path=NAME`): keep them URL-safe.
/// A name may have parts separated by '/' (`garage/door`), so that permissions can name a
/// group of paths (`garage/*`); no part is empty or starts with '.', so there is no `..`.
pub(super) fn validate_path_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let part_ok = |part: &str| !part.is_empty() && !part.starts_with('.') && part.chars().all(allowed);
    if name.len() > 128 || !name.split('/').all(part_ok) {
        return Err(invalid(
            field,
            format!(
                "path name {name:?} must be 1-128 characters of letters, digits, '-', '_' or '.', in parts separated by '/' \
                 (such as garage/door), no part empty or starting with '.'"
            ),
        ));
    }
    Ok(())
}

/// The path's own source and its lower layers, best first.
pub(super) fn path_with_layers(field: &str, mut path: FilePath) -> Result<(PathConfig, Vec<PathConfig>), ConfigError> {
    let layers = std::mem::take(&mut path.layers);
    let mut lower = Vec::with_capacity(layers.len());
    for (index, layer) in layers.into_iter().enumerate() {
        let field = format!("{field}.layers[{index}]");
        if !layer.layers.is_empty() {
            return Err(invalid(format!("{field}.layers"), "a layer cannot have layers of its own; list them all in the path"));
        }
        lower.push(path_config(&field, layer)?);
    }
    Ok((path_config(field, path)?, lower))
}

pub(super) fn path_config(field: &str, path: FilePath) -> Result<PathConfig, ConfigError> {
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
        if !(16..=3840).contains(&value) || !value.is_multiple_of(2) {
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
    let audio = file.audio.unwrap_or(default.audio);
    Ok(TestPatternSettings { width, height, fps, keyframe_interval: Duration::from_secs_f64(keyframe_secs), bitrate_kbps, audio })
}
