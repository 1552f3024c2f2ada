//! The `[limits]` section: bounds per client and in all (see `crate::limits`). Every key is
//! optional; the defaults suit one machine serving a few hundred viewers.

use super::{invalid, ConfigError};
use crate::limits::LimitSettings;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    max_viewers: Option<usize>,
    max_viewers_per_path: Option<usize>,
    sessions_per_ip_per_second: Option<f64>,
    sessions_per_ip_burst: Option<u32>,
    failed_auth_per_ip_per_minute: Option<f64>,
    failed_auth_per_ip_burst: Option<u32>,
    ws_messages_per_second: Option<f64>,
    ws_messages_burst: Option<u32>,
    ws_first_message_secs: Option<f64>,
    ws_unauthenticated_per_ip: Option<usize>,
    ws_unauthenticated: Option<usize>,
    ws_idle_secs: Option<f64>,
    header_read_secs: Option<f64>,
    body_read_secs: Option<f64>,
}

pub(super) fn limit_settings(file: FileLimits) -> Result<LimitSettings, ConfigError> {
    let default = LimitSettings::default();
    let count = |name: &str, value: Option<usize>, default: usize| match value {
        Some(0) => Err(invalid(format!("limits.{name}"), "must be at least 1")),
        other => Ok(other.unwrap_or(default)),
    };
    let rate = |name: &str, value: Option<f64>, default: f64| match value {
        Some(v) if !(v > 0.0 && v <= 1e6) => Err(invalid(format!("limits.{name}"), format!("{v} must be above 0"))),
        other => Ok(other.unwrap_or(default)),
    };
    let burst = |name: &str, value: Option<u32>, default: u32| match value {
        Some(0) => Err(invalid(format!("limits.{name}"), "must be at least 1")),
        other => Ok(other.unwrap_or(default)),
    };
    let seconds = |name: &str, value: Option<f64>, default: Duration| match value {
        Some(v) if !(0.1..=3600.0).contains(&v) => Err(invalid(format!("limits.{name}"), format!("{v} must be from 0.1 to 3600 seconds"))),
        Some(v) => Ok(Duration::from_secs_f64(v)),
        None => Ok(default),
    };
    Ok(LimitSettings {
        max_viewers: count("max_viewers", file.max_viewers, default.max_viewers)?,
        max_viewers_per_path: count("max_viewers_per_path", file.max_viewers_per_path, default.max_viewers_per_path)?,
        sessions_per_ip_per_second: rate("sessions_per_ip_per_second", file.sessions_per_ip_per_second, default.sessions_per_ip_per_second)?,
        sessions_per_ip_burst: burst("sessions_per_ip_burst", file.sessions_per_ip_burst, default.sessions_per_ip_burst)?,
        failed_auth_per_ip_per_minute: rate("failed_auth_per_ip_per_minute", file.failed_auth_per_ip_per_minute, default.failed_auth_per_ip_per_minute)?,
        failed_auth_per_ip_burst: burst("failed_auth_per_ip_burst", file.failed_auth_per_ip_burst, default.failed_auth_per_ip_burst)?,
        ws_messages_per_second: rate("ws_messages_per_second", file.ws_messages_per_second, default.ws_messages_per_second)?,
        ws_messages_burst: burst("ws_messages_burst", file.ws_messages_burst, default.ws_messages_burst)?,
        ws_first_message: seconds("ws_first_message_secs", file.ws_first_message_secs, default.ws_first_message)?,
        ws_unauthenticated_per_ip: count("ws_unauthenticated_per_ip", file.ws_unauthenticated_per_ip, default.ws_unauthenticated_per_ip)?,
        ws_unauthenticated: count("ws_unauthenticated", file.ws_unauthenticated, default.ws_unauthenticated)?,
        ws_idle: seconds("ws_idle_secs", file.ws_idle_secs, default.ws_idle)?,
        header_read: seconds("header_read_secs", file.header_read_secs, default.header_read)?,
        body_read: seconds("body_read_secs", file.body_read_secs, default.body_read)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    #[test]
    fn limits_read_with_defaults_and_refuse_nonsense() {
        let config = Config::from_toml("[limits]\nmax_viewers = 50\nws_first_message_secs = 2.5").expect("valid");
        assert_eq!(config.limits.max_viewers, 50);
        assert_eq!(config.limits.ws_first_message.as_millis(), 2500);
        assert_eq!(config.limits.max_viewers_per_path, crate::limits::LimitSettings::default().max_viewers_per_path);
        for (text, field) in [("max_viewers = 0", "limits.max_viewers"), ("sessions_per_ip_per_second = -1", "limits.sessions_per_ip_per_second"), ("header_read_secs = 0", "limits.header_read_secs")] {
            match Config::from_toml(&format!("[limits]\n{text}")) {
                Err(ConfigError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
