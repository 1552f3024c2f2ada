//! The paths: each names one source, an RTSP camera or the built-in test pattern.

use super::{invalid, ConfigError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, PartialEq)]
pub enum PathConfig {
    Rtsp(RtspSource),
    TestPattern(TestPatternSettings),
}

impl From<PathConfig> for PathDefinition {
    fn from(source: PathConfig) -> Self {
        Self::with_layers(source, Vec::new())
    }
}

impl PathConfig {
    /// The source as the file would write it.
    pub fn to_spec(&self) -> PathSpec {
        match self {
            Self::Rtsp(rtsp) => PathSpec {
                source: rtsp.url.to_string(),
                username: rtsp.credentials.as_ref().map(|c| c.username.clone()),
                password: rtsp.credentials.as_ref().map(|c| c.password.clone()),
                transport: Some(rtsp.transport),
                ..Default::default()
            },
            Self::TestPattern(settings) => PathSpec {
                source: TEST_PATTERN_SOURCE.to_owned(),
                test_pattern: Some(TestPatternSpec {
                    width: Some(settings.width),
                    height: Some(settings.height),
                    fps: Some(settings.fps),
                    keyframe_interval_secs: Some(settings.keyframe_interval.as_secs_f64()),
                    bitrate_kbps: Some(settings.bitrate_kbps),
                    audio: Some(settings.audio),
                }),
                ..Default::default()
            },
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
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

/// A path: as it was written, and validated into its source and lower layers.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDefinition {
    pub spec: PathSpec,
    pub source: PathConfig,
    /// Lower-quality sources of the path's scene (a camera's sub stream), best first. Each
    /// viewer gets the layer its link carries.
    pub lower_layers: Vec<PathConfig>,
    /// When the sources run only while someone reads the path; `None`: always.
    pub on_demand: Option<OnDemand>,
}

/// A path whose camera is opened when the first reader comes and closed after the last leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnDemand {
    /// How long the camera stays open after the last reader left.
    pub close_after: Duration,
    /// How long a reader that comes while the camera opens waits for its first frame.
    pub start_timeout: Duration,
}

impl Default for OnDemand {
    fn default() -> Self {
        Self { close_after: Duration::from_secs(10), start_timeout: Duration::from_secs(10) }
    }
}

impl PathDefinition {
    /// Validates `spec`; errors name fields under `field` (empty: as in the spec itself, which
    /// is how the API names them).
    pub fn from_spec(field: &str, spec: PathSpec) -> Result<Self, ConfigError> {
        let (source, lower_layers) = path_with_layers(field, spec.clone())?;
        let on_demand = on_demand(field, &spec, &source)?;
        Ok(Self { spec, source, lower_layers, on_demand })
    }

    /// A path of `source` and `lower_layers` (best first), written as the file would.
    pub fn with_layers(source: PathConfig, lower_layers: Vec<PathConfig>) -> Self {
        let spec = PathSpec { layers: lower_layers.iter().map(PathConfig::to_spec).collect(), ..source.to_spec() };
        let on_demand = matches!(source, PathConfig::TestPattern(_)).then(OnDemand::default);
        Self { spec, source, lower_layers, on_demand }
    }

    /// The same path, its sources running all the time.
    pub fn always_on(self) -> Self {
        Self { spec: PathSpec { on_demand: Some(false), ..self.spec }, on_demand: None, ..self }
    }

    /// The path's own source, then its lower layers', best first.
    pub fn sources(&self) -> impl Iterator<Item = &PathConfig> {
        std::iter::once(&self.source).chain(&self.lower_layers)
    }
}

/// A path as people write it: a `[paths.NAME]` table of the file, or the JSON body of the API.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// `rtsp://…`, `rtsps://…`, or `testpattern`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<RtspTransport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_pattern: Option<TestPatternSpec>,
    /// Lower-quality sources of the same scene (a camera's sub stream), best first; each is
    /// written like a path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub layers: Vec<PathSpec>,
    /// Open the camera only while someone reads the path (a viewer, an LL-HLS player, a
    /// snapshot); default true for the test pattern, false for cameras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<bool>,
    /// Seconds the camera stays open after the last reader left (on demand; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_after_secs: Option<f64>,
    /// Seconds a reader that comes while the camera opens waits for its first frame (on demand;
    /// default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout_secs: Option<f64>,
}

impl PathSpec {
    /// The spec without its secrets, to show: no password, no credentials in the URL.
    pub fn redacted(&self) -> Self {
        let source = match Url::parse(&self.source) {
            Ok(mut url) if !url.username().is_empty() => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            _ => self.source.clone(),
        };
        Self { source, password: None, layers: self.layers.iter().map(Self::redacted).collect(), ..self.clone() }
    }
}

/// The test pattern's settings; every one has a default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPatternSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe_interval_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
}

/// `field.name`, or `name` alone for the top of a JSON body (whose fields the API names
/// without a prefix).
fn join_field(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_owned()
    } else {
        format!("{field}.{name}")
    }
}

pub(super) const TEST_PATTERN_SOURCE: &str = "testpattern";

/// Whether the path opens its camera on demand, and how: by default the test pattern does (it
/// costs a core's fraction for nobody otherwise), cameras do not (a viewer then waits for the
/// camera's session and its next keyframe).
fn on_demand(field: &str, spec: &PathSpec, source: &PathConfig) -> Result<Option<OnDemand>, ConfigError> {
    let default = OnDemand::default();
    let seconds = |name: &str, value: Option<f64>, default: Duration, range: std::ops::RangeInclusive<f64>| match value {
        None => Ok(default),
        Some(secs) if range.contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        Some(secs) => Err(invalid(join_field(field, name), format!("{secs} must be from {} to {} seconds", range.start(), range.end()))),
    };
    let close_after = seconds("close_after_secs", spec.close_after_secs, default.close_after, 0.0..=86_400.0)?;
    let start_timeout = seconds("start_timeout_secs", spec.start_timeout_secs, default.start_timeout, 1.0..=120.0)?;
    let on = spec.on_demand.unwrap_or(matches!(source, PathConfig::TestPattern(_)));
    if !on && (spec.close_after_secs.is_some() || spec.start_timeout_secs.is_some()) {
        let name = if spec.close_after_secs.is_some() { "close_after_secs" } else { "start_timeout_secs" };
        return Err(invalid(join_field(field, name), "applies only with on_demand = true"));
    }
    Ok(on.then_some(OnDemand { close_after, start_timeout }))
}

/// Path names appear in URLs (`/whep/NAME`, `/hls/NAME/…`, `/?path=NAME`): keep them URL-safe.
/// A name may have parts separated by '/' (`garage/door`), so that permissions can name a
/// group of paths (`garage/*`); no part is empty or starts with '.', so there is no `..`.
pub fn validate_path_name(field: &str, name: &str) -> Result<(), ConfigError> {
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
fn path_with_layers(field: &str, mut path: PathSpec) -> Result<(PathConfig, Vec<PathConfig>), ConfigError> {
    let layers = std::mem::take(&mut path.layers);
    let mut lower = Vec::with_capacity(layers.len());
    for (index, layer) in layers.into_iter().enumerate() {
        let field = join_field(field, &format!("layers[{index}]"));
        if !layer.layers.is_empty() {
            return Err(invalid(join_field(&field, "layers"), "a layer cannot have layers of its own; list them all in the path"));
        }
        let demand_settings = [("on_demand", layer.on_demand.is_some()), ("close_after_secs", layer.close_after_secs.is_some()), ("start_timeout_secs", layer.start_timeout_secs.is_some())];
        if let Some((name, _)) = demand_settings.iter().find(|(_, set)| *set) {
            return Err(invalid(join_field(&field, name), "applies to the path: its layers open and close with it"));
        }
        lower.push(path_config(&field, layer)?);
    }
    Ok((path_config(field, path)?, lower))
}

fn path_config(field: &str, path: PathSpec) -> Result<PathConfig, ConfigError> {
    if path.source == TEST_PATTERN_SOURCE {
        if path.username.is_some() || path.password.is_some() || path.transport.is_some() {
            return Err(invalid(field, "username, password and transport apply to rtsp sources only"));
        }
        return test_pattern(&join_field(field, "test_pattern"), path.test_pattern.unwrap_or_default())
            .map(PathConfig::TestPattern);
    }
    if path.test_pattern.is_some() {
        return Err(invalid(join_field(field, "test_pattern"), "applies only when source = \"testpattern\""));
    }
    rtsp_source(&join_field(field, "source"), path).map(PathConfig::Rtsp)
}

fn rtsp_source(field: &str, path: PathSpec) -> Result<RtspSource, ConfigError> {
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

fn test_pattern(field: &str, file: TestPatternSpec) -> Result<TestPatternSettings, ConfigError> {
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
