//! The TOML configuration file: `Config::from_toml` returns a `Config` or an error naming what
//! is wrong, never panics; what it accepts keeps the promises the rest of Lookout relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::config::{Config, ConfigError, MediaPorts, PathConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match Config::from_toml(text) {
        Ok(config) => config,
        Err(ConfigError::Invalid { field, problem }) => {
            assert!(!field.is_empty() && !problem.is_empty(), "an error names its field and problem");
            return;
        }
        Err(_) => return,
    };
    for (name, path) in &config.paths {
        // URL-safe, up to 128 characters, in parts separated by '/' (garage/door), none empty or
        // starting with '.' (so no `..`).
        let part_ok = |part: &str| !part.is_empty() && !part.starts_with('.') && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        assert!(name.len() <= 128 && name.split('/').all(part_ok), "path name {name:?}");
        for source in std::iter::once(&path.source).chain(&path.lower_layers) {
            let _ = lookout::source::describe(source);
            if let PathConfig::Rtsp(rtsp) = source {
                assert!(matches!(rtsp.url.scheme(), "rtsp" | "rtsps"), "{}", rtsp.url);
                assert!(rtsp.url.username().is_empty() && rtsp.url.password().is_none(), "credentials left in {}", rtsp.url);
            }
        }
        // What the API shows of a path never has its password.
        let shown = path.spec.redacted();
        assert!(shown.password.is_none() && shown.layers.iter().all(|layer| layer.password.is_none()));
    }
    if let MediaPorts::Range(range) = config.webrtc.media_ports {
        assert!(range.first >= 1 && range.port_count() >= 1 && range.contains(range.first) && range.contains(range.last));
    }
    for server in &config.webrtc.ice_servers {
        assert!(!server.urls.is_empty());
    }
});
