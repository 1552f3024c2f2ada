//! Bounds that keep one client from taking the server from everyone else: viewers in all and
//! per path, new sessions and failed authentications per address, WebSocket messages, and how
//! long a client may take to say something. Past a bound a client gets a clear answer (429 or
//! 503 with Retry-After, or an `error` over /ws), before anything is allocated for it.

mod occupancy;
mod per_ip;

pub use occupancy::{Full, Occupancy, Place};
pub use per_ip::PerIpBuckets;

/// Viewer sessions in all and per path.
pub type ViewerCounts = Occupancy<String>;
/// One admitted viewer session's place.
pub type ViewerSlot = Place<String>;
/// A WebSocket's place among those that have not authenticated yet.
pub type PendingSocket = Place<IpAddr>;

use per_ip::Bucket;

use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Viewer sessions at once, over every path and way in.
    pub max_viewers: usize,
    pub max_viewers_per_path: usize,
    /// New viewer sessions one address may start: a burst, then this many a second.
    pub sessions_per_ip_per_second: f64,
    pub sessions_per_ip_burst: u32,
    /// Failed authentications one address may make: a burst, then this many a minute.
    pub failed_auth_per_ip_per_minute: f64,
    pub failed_auth_per_ip_burst: u32,
    /// Messages a second one WebSocket may send, and the burst above it.
    pub ws_messages_per_second: f64,
    pub ws_messages_burst: u32,
    /// How long a fresh WebSocket may take to send its first (`auth`) message.
    pub ws_first_message: Duration,
    /// WebSockets that have not authenticated yet, per address and in all: past these a new
    /// one is refused before anything is allocated for it.
    pub ws_unauthenticated_per_ip: usize,
    pub ws_unauthenticated: usize,
    /// How long an idle WebSocket (no message, no pong) is kept.
    pub ws_idle: Duration,
    /// How long a client may take to send a request's headers (and a TLS handshake), and a
    /// request's body.
    pub header_read: Duration,
    pub body_read: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_viewers: 2000,
            max_viewers_per_path: 1000,
            // Room for a wall of cameras, or an office behind one NAT, joining at once.
            sessions_per_ip_per_second: 5.0,
            sessions_per_ip_burst: 30,
            failed_auth_per_ip_per_minute: 10.0,
            failed_auth_per_ip_burst: 10,
            ws_messages_per_second: 20.0,
            ws_messages_burst: 60,
            ws_first_message: Duration::from_secs(10),
            // A wall of cameras opens one socket per tile; far more at once is a flood.
            ws_unauthenticated_per_ip: 64,
            ws_unauthenticated: 4096,
            ws_idle: Duration::from_secs(60),
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
        }
    }
}

/// The limits in force, with the per-address state they need.
pub struct Limits {
    pub settings: LimitSettings,
    pub viewers: ViewerCounts,
    unauthenticated_sockets: Occupancy<IpAddr>,
    new_sessions: PerIpBuckets,
    pub failed_auth: FailedAuth,
}

/// Why a new viewer session is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefused {
    #[error("too many new sessions from this address; retry in {} s", .0.as_secs().max(1))]
    TooFast(Duration),
    #[error("the server has its maximum of {0} viewers; retry later")]
    ServerFull(usize),
    #[error("path {path:?} has its maximum of {max} viewers; retry later")]
    PathFull { path: String, max: usize },
}

/// Why a new WebSocket is refused before it is upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocketRefused {
    #[error("{0} WebSockets from this address have not authenticated yet; retry when they have")]
    FromThisAddress(usize),
    #[error("{0} WebSockets have not authenticated yet; retry shortly")]
    InAll(usize),
}

impl SessionRefused {
    /// When the client may try again.
    pub fn retry_after(&self) -> Duration {
        match self {
            SessionRefused::TooFast(wait) => (*wait).max(Duration::from_secs(1)),
            SessionRefused::ServerFull(_) | SessionRefused::PathFull { .. } => Duration::from_secs(5),
        }
    }
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            viewers: ViewerCounts::default(),
            unauthenticated_sockets: Occupancy::default(),
            new_sessions: PerIpBuckets::new(settings.sessions_per_ip_per_second, settings.sessions_per_ip_burst),
            failed_auth: FailedAuth(PerIpBuckets::new(settings.failed_auth_per_ip_per_minute / 60.0, settings.failed_auth_per_ip_burst)),
            settings,
        }
    }

    /// Admits one more viewer session from `ip` on `path`: its slot, counted until dropped.
    pub fn admit_session(&self, ip: IpAddr, path: &str) -> Result<ViewerSlot, SessionRefused> {
        let slot = self.admit_tile(path)?;
        self.new_sessions.take(ip, Instant::now()).map_err(SessionRefused::TooFast)?;
        Ok(slot)
    }

    /// Admits one more session from `ip` for a wall of cameras, whose tiles each count as a
    /// viewer of the path they show (`admit_tile`).
    pub fn admit_wall(&self, ip: IpAddr) -> Result<(), SessionRefused> {
        self.new_sessions.take(ip, Instant::now()).map_err(SessionRefused::TooFast)
    }

    /// A viewer's place on `path`, counted until dropped.
    pub fn admit_tile(&self, path: &str) -> Result<ViewerSlot, SessionRefused> {
        self.viewers.take(path, self.settings.max_viewers, self.settings.max_viewers_per_path).map_err(|full| match full {
            Full::Total => SessionRefused::ServerFull(self.settings.max_viewers),
            Full::Key => SessionRefused::PathFull { path: path.to_owned(), max: self.settings.max_viewers_per_path },
        })
    }

    /// A place for a new WebSocket from `ip` until it authenticates; none when too many are
    /// waiting.
    pub fn admit_socket(&self, ip: IpAddr) -> Result<PendingSocket, SocketRefused> {
        let (per_ip, total) = (self.settings.ws_unauthenticated_per_ip, self.settings.ws_unauthenticated);
        self.unauthenticated_sockets.take(&ip, total, per_ip).map_err(|full| match full {
            Full::Key => SocketRefused::FromThisAddress(per_ip),
            Full::Total => SocketRefused::InAll(total),
        })
    }

    /// A bucket for one WebSocket's messages.
    pub fn ws_message_budget(&self) -> MessageBudget {
        let burst = f64::from(self.settings.ws_messages_burst);
        MessageBudget { per_second: self.settings.ws_messages_per_second, burst, bucket: Bucket::full(burst, Instant::now()) }
    }
}

/// Failed authentications per address: past the burst, an address is refused without its
/// credential being looked at until its bucket refills.
pub struct FailedAuth(PerIpBuckets);

impl FailedAuth {
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        self.0.empty_for(ip, Instant::now())
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let _ = self.0.take(ip, Instant::now());
    }
}

/// One WebSocket's message bucket (owned by its task: no lock).
pub struct MessageBudget {
    per_second: f64,
    burst: f64,
    bucket: Bucket,
}

impl MessageBudget {
    /// Takes one message's token; false when the socket is over its rate.
    pub fn take(&mut self, now: Instant) -> bool {
        self.bucket.take(now, self.per_second, self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_in_all_per_path_and_per_address() {
        let limits = Limits::new(LimitSettings { max_viewers: 3, max_viewers_per_path: 2, sessions_per_ip_burst: 2, sessions_per_ip_per_second: 0.5, ..Default::default() });
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        let other: IpAddr = "192.0.2.10".parse().expect("ip");
        let _a1 = limits.admit_session(ip, "a").expect("first");
        let a2 = limits.admit_session(ip, "a").expect("second");
        drop(a2);
        let refused = limits.admit_session(ip, "a").err().expect("past the burst");
        assert!(matches!(refused, SessionRefused::TooFast(_)) && refused.retry_after() >= Duration::from_secs(1), "{refused}");
        assert_eq!(limits.viewers.of("a"), 1, "a refused session holds no slot");
        let _a2 = limits.admit_session(other, "a").expect("another address");
        assert!(matches!(limits.admit_session(other, "a"), Err(SessionRefused::PathFull { max: 2, .. })));
        let _b = limits.admit_session(other, "b").expect("another path");
        assert_eq!(limits.admit_session(other, "c").err(), Some(SessionRefused::ServerFull(3)));
    }

    #[test]
    fn unauthenticated_sockets_are_bounded_per_address_until_they_authenticate() {
        let limits = Limits::new(LimitSettings { ws_unauthenticated_per_ip: 2, ..Default::default() });
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        let first = limits.admit_socket(ip).expect("first");
        let _second = limits.admit_socket(ip).expect("second");
        assert_eq!(limits.admit_socket(ip).err(), Some(SocketRefused::FromThisAddress(2)));
        assert!(limits.admit_socket("192.0.2.10".parse().expect("ip")).is_ok(), "another address");
        drop(first);
        assert!(limits.admit_socket(ip).is_ok(), "a place given back when a socket authenticates");
    }

    #[test]
    fn failed_authentications_block_an_address_after_the_burst() {
        let limits = Limits::new(LimitSettings { failed_auth_per_ip_burst: 3, ..Default::default() });
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limits.failed_auth.blocked_for(ip), None);
            limits.failed_auth.record_failure(ip);
        }
        let wait = limits.failed_auth.blocked_for(ip).expect("blocked");
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(6), "{wait:?}");
    }

    #[test]
    fn a_socket_is_held_to_its_message_rate() {
        let limits = Limits::new(LimitSettings { ws_messages_per_second: 10.0, ws_messages_burst: 5, ..Default::default() });
        let mut budget = limits.ws_message_budget();
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| budget.take(t0)).count(), 5);
        assert!(budget.take(t0 + Duration::from_millis(100)));
        assert!(!budget.take(t0 + Duration::from_millis(100)));
    }
}
