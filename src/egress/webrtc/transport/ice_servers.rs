//! The configured STUN/TURN servers as viewers (and Lookout's own agent) receive them, with
//! time-limited TURN credentials made per viewer from a shared secret.
//!
//! The TURN REST API scheme (as coturn's `use-auth-secret` checks it): the username is
//! `EXPIRY:NAME`, EXPIRY in Unix seconds, and the password is base64(HMAC-SHA1(secret, username)).

use crate::config::{IceServerConfig, TurnCredentials};
use base64::Engine;
use lookout_signaling::IceServer;
use std::time::{SystemTime, UNIX_EPOCH};

/// The ICE servers for one viewer, `name` identifying it in the TURN server's logs.
pub fn for_viewer(servers: &[IceServerConfig], name: &str, now: SystemTime) -> Vec<IceServer> {
    servers
        .iter()
        .map(|server| {
            let (username, credential) = match &server.credentials {
                None => (None, None),
                Some(TurnCredentials::Static { username, credential }) => (Some(username.clone()), Some(credential.clone())),
                Some(TurnCredentials::SharedSecret { secret, ttl }) => {
                    let expiry = (now + *ttl).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                    let username = format!("{expiry}:{name}");
                    let credential = rest_api_password(secret, &username);
                    (Some(username), Some(credential))
                }
            };
            IceServer { urls: server.urls.clone(), username, credential }
        })
        .collect()
}

fn rest_api_password(secret: &str, username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, username.as_bytes()))
}

/// WHEP `Link` header values (RFC 9725 §4.6), one per URL.
pub fn link_headers(servers: &[IceServer]) -> Vec<String> {
    let quoted = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    servers
        .iter()
        .flat_map(|server| {
            server.urls.iter().map(move |url| {
                let mut value = format!("<{url}>; rel=\"ice-server\"");
                if let (Some(username), Some(credential)) = (&server.username, &server.credential) {
                    value.push_str(&format!("; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"", quoted(username), quoted(credential)));
                }
                value
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shared_secret_gives_the_rest_api_credential() {
        let servers = [IceServerConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            credentials: Some(TurnCredentials::SharedSecret { secret: "north".into(), ttl: Duration::from_secs(600) }),
        }];
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let [server] = &for_viewer(&servers, "viewer1", now)[..] else { panic!("one server") };
        assert_eq!(server.username.as_deref(), Some("1700000600:viewer1"));
        // Independently computed: printf '1700000600:viewer1' | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(server.credential.as_deref(), Some("N/hb0Gb7LWcIO+F+SghwSYDuQmY="));
    }

    #[test]
    fn link_headers_carry_credentials() {
        let servers = vec![
            IceServer { urls: vec!["stun:s.example:3478".into()], username: None, credential: None },
            IceServer { urls: vec!["turn:t.example:3478".into()], username: Some("u".into()), credential: Some("p\"q".into()) },
        ];
        assert_eq!(
            link_headers(&servers),
            vec![
                "<stun:s.example:3478>; rel=\"ice-server\"".to_owned(),
                "<turn:t.example:3478>; rel=\"ice-server\"; username=\"u\"; credential=\"p\\\"q\"; credential-type=\"password\"".to_owned(),
            ]
        );
    }
}
