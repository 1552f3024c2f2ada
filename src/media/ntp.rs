//! NTP timestamps (RFC 5905 §6, 32.32 fixed point seconds since 1900) as RTCP carries them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 to 1970-01-01.
const UNIX_EPOCH_IN_NTP_SECONDS: u64 = 2_208_988_800;

pub fn from_system_time(time: SystemTime) -> u64 {
    let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + UNIX_EPOCH_IN_NTP_SECONDS;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// `None` before 1970, where no real clock is.
pub fn to_system_time(ntp: u64) -> Option<SystemTime> {
    let seconds = (ntp >> 32).checked_sub(UNIX_EPOCH_IN_NTP_SECONDS)?;
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_within_a_nanosecond() {
        let time = UNIX_EPOCH + Duration::new(1_795_000_000, 123_456_789);
        let back = to_system_time(from_system_time(time)).expect("after 1970");
        let error = back.duration_since(time).unwrap_or_else(|e| e.duration());
        assert!(error <= Duration::from_nanos(1), "{error:?}");
    }

    #[test]
    fn the_unix_epoch_and_before() {
        assert_eq!(from_system_time(UNIX_EPOCH), UNIX_EPOCH_IN_NTP_SECONDS << 32);
        assert_eq!(to_system_time(UNIX_EPOCH_IN_NTP_SECONDS << 32), Some(UNIX_EPOCH));
        assert_eq!(to_system_time(5 << 32), None);
    }
}
