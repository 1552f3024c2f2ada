//! Who plays a path over HLS now. A player is an HTTP client without a session, so it counts
//! while it keeps reloading the media playlist (every part, or every target duration for a
//! player without blocking reloads). Each fetch of the multivariant playlist gives its player an
//! id to carry in the media playlist's URI (`?player=…`), so that two players behind one address
//! count as two; a player that starts from the media playlist is known by its address and
//! User-Agent instead.

use parking_lot::Mutex;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A player that has not reloaded for this long has stopped: more than a blocking reload may
/// wait (three target durations) and than a plain player waits between reloads.
const PLAYING_WITHIN: Duration = Duration::from_secs(10);
/// Players remembered at most: a flood of made-up ids cannot grow the table past it.
const MAX_REMEMBERED: usize = 20_000;

/// Who a request comes from, reduced to a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayerKey(u64);

impl PlayerKey {
    /// From the `player` query parameter when there is one, else from the client's address and
    /// User-Agent.
    pub fn of(player: Option<&str>, ip: IpAddr, user_agent: Option<&[u8]>) -> Self {
        let mut hasher = DefaultHasher::new();
        match player {
            Some(id) => id.hash(&mut hasher),
            None => (ip, user_agent).hash(&mut hasher),
        }
        Self(hasher.finish())
    }
}

/// A new player's id, for the multivariant playlist to hand out.
pub fn new_player_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[derive(Default)]
pub struct HlsPlayers {
    last_seen: Mutex<HashMap<(String, PlayerKey), Instant>>,
}

impl HlsPlayers {
    /// `player` reloaded `path`'s media playlist at `now`.
    pub fn seen(&self, path: &str, player: PlayerKey, now: Instant) {
        let mut last_seen = self.last_seen.lock();
        if let Some(at) = last_seen.get_mut(&(path.to_owned(), player)) {
            *at = now;
            return;
        }
        if last_seen.len() >= MAX_REMEMBERED {
            last_seen.retain(|_, at| now.saturating_duration_since(*at) <= PLAYING_WITHIN);
            if last_seen.len() >= MAX_REMEMBERED {
                tracing::debug!(path, "{MAX_REMEMBERED} HLS players are playing: a new one is not counted");
                return;
            }
        }
        last_seen.insert((path.to_owned(), player), now);
    }

    /// The players of each path at `now`; forgets those that stopped.
    pub fn playing(&self, now: Instant) -> HashMap<String, usize> {
        let mut last_seen = self.last_seen.lock();
        last_seen.retain(|_, at| now.saturating_duration_since(*at) <= PLAYING_WITHIN);
        last_seen.keys().fold(HashMap::new(), |mut playing, (path, _)| {
            *playing.entry(path.clone()).or_default() += 1;
            playing
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn players_count_while_they_reload_and_each_id_is_one_player() {
        let players = HlsPlayers::default();
        let start = Instant::now();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (first, second) = (new_player_id(), new_player_id());
        assert_ne!(first, second);
        for reload in 0..5 {
            let at = start + Duration::from_millis(200 * reload);
            players.seen("cam", PlayerKey::of(Some(&first), ip, Some(b"hls.js")), at);
            players.seen("cam", PlayerKey::of(Some(&second), ip, Some(b"hls.js")), at);
            players.seen("cam", PlayerKey::of(None, ip, Some(b"ffmpeg")), at);
            players.seen("other", PlayerKey::of(None, ip, Some(b"ffmpeg")), at);
        }
        let playing = players.playing(start + Duration::from_secs(1));
        assert_eq!((playing.get("cam"), playing.get("other")), (Some(&3), Some(&1)), "two ids and one address, on two paths");

        players.seen("cam", PlayerKey::of(Some(&first), ip, None), start + Duration::from_secs(9));
        let playing = players.playing(start + Duration::from_secs(12));
        assert_eq!(playing.get("cam"), Some(&1), "only the player that kept reloading");
        assert_eq!(playing.get("other"), None);
    }

    #[test]
    fn a_flood_of_ids_is_bounded() {
        let players = HlsPlayers::default();
        let now = Instant::now();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for n in 0..MAX_REMEMBERED + 100 {
            players.seen("cam", PlayerKey::of(Some(&n.to_string()), ip, None), now);
        }
        assert_eq!(players.playing(now).get("cam"), Some(&MAX_REMEMBERED));
        let later = now + PLAYING_WITHIN + Duration::from_secs(1);
        players.seen("cam", PlayerKey::of(Some("late"), ip, None), later);
        assert_eq!(players.playing(later).get("cam"), Some(&1), "stopped players make room");
    }
}
