//! Users written in the configuration file: a name, an argon2 hash of the password, the
//! networks they may come from, and their permissions. Checked for HTTP Basic credentials.

use super::keys;
use super::permission::Permissions;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use ipnet::IpNet;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, PartialEq)]
pub struct User {
    pub name: String,
    /// An argon2 hash in the PHC format (`$argon2id$v=19$...`), as `lookout hash-password` makes.
    pub password_hash: String,
    /// Where the user may connect from; empty means anywhere.
    pub networks: Vec<IpNet>,
    pub permissions: Permissions,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("name", &self.name).field("networks", &self.networks).field("permissions", &self.permissions).finish_non_exhaustive()
    }
}

/// Makes the hash `[[auth.users]] password` takes, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Checks that a configured hash is one this build can verify, for a clear error at start.
pub fn check_hash(hash: &str) -> Result<(), HashError> {
    let parsed = PasswordHash::new(hash).map_err(HashError::NotPhc)?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(HashError::NotArgon2(parsed.algorithm.to_string()));
    }
    Ok(())
}

/// Why a configured password hash cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("not an argon2 hash in PHC form ({0}); make one with `lookout hash-password`")]
    NotPhc(argon2::password_hash::Error),
    #[error("the hash is {0}, not argon2; make one with `lookout hash-password`")]
    NotArgon2(String),
}

/// Why a user was refused, for the log (the caller only learns that it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRefused {
    #[error("no user {0:?}")]
    Unknown(String),
    #[error("wrong password for user {0:?}")]
    WrongPassword(String),
    #[error("user {user:?} may not connect from {ip}")]
    Network { user: String, ip: IpAddr },
}

/// How long a verified name and password are remembered: argon2 is slow on purpose (tens of
/// milliseconds), and a page asks for its path list every two seconds.
const REMEMBER_VERIFIED: Duration = Duration::from_secs(300);
const REMEMBERED_MAX: usize = 4096;

pub struct Users {
    users: HashMap<String, User>,
    /// Keyed by a keyed hash of name and password, so that no password is kept in memory.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    cache_key: ring::hmac::Key,
    /// Checked against for unknown names (see `verify`).
    decoy_hash: String,
}

impl Users {
    pub fn new(users: Vec<User>) -> Self {
        let cache_key = keys::random_key();
        let decoy_hash = users.first().map(|u| u.password_hash.clone()).unwrap_or_default();
        Self { users: users.into_iter().map(|u| (u.name.clone(), u)).collect(), verified: Mutex::default(), cache_key, decoy_hash }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user's permissions when the password is right and `ip` is one of its networks.
    /// Runs argon2 off the async threads the first time a name and password are seen.
    pub async fn verify(&self, name: &str, password: &str, ip: IpAddr) -> Result<Permissions, UserRefused> {
        let Some(user) = self.users.get(name) else {
            // As long as for a known name, so that the time of the answer does not tell which
            // names exist.
            let (hash, attempt) = (self.decoy_hash.clone(), password.to_owned());
            let _ = tokio::task::spawn_blocking(move || password_matches(&hash, &attempt)).await;
            return Err(UserRefused::Unknown(name.to_owned()));
        };
        if !user.networks.is_empty() && !user.networks.iter().any(|net| net.contains(&ip)) {
            return Err(UserRefused::Network { user: name.to_owned(), ip });
        }
        let key = self.cache_key_of(name, password);
        let now = Instant::now();
        if self.verified.lock().get(&key).is_some_and(|at| now.duration_since(*at) < REMEMBER_VERIFIED) {
            return Ok(user.permissions.clone());
        }
        let (hash, attempt) = (user.password_hash.clone(), password.to_owned());
        let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &attempt)).await.unwrap_or(false);
        if !matches {
            return Err(UserRefused::WrongPassword(name.to_owned()));
        }
        let mut verified = self.verified.lock();
        if verified.len() >= REMEMBERED_MAX {
            verified.retain(|_, at| now.duration_since(*at) < REMEMBER_VERIFIED);
            if verified.len() >= REMEMBERED_MAX {
                verified.clear();
            }
        }
        verified.insert(key, now);
        Ok(user.permissions.clone())
    }

    fn cache_key_of(&self, name: &str, password: &str) -> [u8; 32] {
        keys::digest(&self.cache_key, [Some(name.as_bytes()), Some(password.as_bytes())])
    }
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::permission::{Action, PathPattern, Permission};

    fn alice(networks: &[&str]) -> User {
        User {
            name: "alice".into(),
            password_hash: hash_password("correct horse").expect("hash"),
            networks: networks.iter().map(|n| n.parse().expect("cidr")).collect(),
            permissions: Permissions::new(vec![Permission { action: Action::Read, path: PathPattern::new("garage/*").expect("pattern") }]),
        }
    }

    #[tokio::test]
    async fn the_right_password_from_an_allowed_network_gives_the_permissions() {
        let users = Users::new(vec![alice(&["10.0.0.0/8", "::1/128"])]);
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        let permissions = users.verify("alice", "correct horse", ip).await.expect("verified");
        assert!(permissions.allows(Action::Read, Some("garage/door")));
        // The second time comes from the cache, with the same answer.
        assert!(users.verify("alice", "correct horse", ip).await.is_ok());
        assert!(users.verify("alice", "correct horse", "::1".parse().expect("ip")).await.is_ok());
    }

    #[tokio::test]
    async fn wrong_password_unknown_user_and_other_networks_are_refused() {
        let users = Users::new(vec![alice(&["10.0.0.0/8"])]);
        let inside: IpAddr = "10.1.2.3".parse().expect("ip");
        assert_eq!(users.verify("alice", "correct horse!", inside).await, Err(UserRefused::WrongPassword("alice".into())));
        assert_eq!(users.verify("bob", "correct horse", inside).await, Err(UserRefused::Unknown("bob".into())));
        let outside: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(matches!(users.verify("alice", "correct horse", outside).await, Err(UserRefused::Network { .. })));
        // A verified password does not open the door from elsewhere.
        users.verify("alice", "correct horse", inside).await.expect("verified");
        assert!(users.verify("alice", "correct horse", outside).await.is_err());
    }

    #[test]
    fn hashes_are_checked_at_start() {
        assert!(check_hash(&hash_password("x").expect("hash")).is_ok());
        assert!(check_hash("plaintext").is_err());
        assert!(check_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
        let shown = format!("{:?}", alice(&[]));
        assert!(!shown.contains("argon2"), "{shown}");
    }
}
