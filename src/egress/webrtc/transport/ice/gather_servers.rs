//! The STUN and TURN servers Lookout gathers through itself, from their URLs (RFC 7064, RFC
//! 7065) to resolved addresses. Lookout reaches them over UDP from the viewer's socket; a URL
//! it cannot use that way (TLS, TCP) is left out with a warning, once per URL.

use crate::egress::webrtc::transport::ice::gatherer::GatherServer;
use lookout_signaling::IceServer;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::LazyLock;
use parking_lot::Mutex;

/// The port STUN and TURN use when a URL names none.
const DEFAULT_PORT: u16 = 3478;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UrlError {
    #[error("not a stun: or turn: URL")]
    Scheme,
    #[error("Lookout reaches its own ICE servers over UDP only (not {0})")]
    NotUdp(String),
    #[error("no host")]
    NoHost,
    #[error("bad port {0:?}")]
    BadPort(String),
}

/// A URL's parts: whether TURN, and `host:port`.
fn parse(url: &str) -> Result<(bool, String, u16), UrlError> {
    let (scheme, rest) = url.split_once(':').ok_or(UrlError::Scheme)?;
    let is_turn = match scheme {
        "stun" => false,
        "turn" => true,
        "stuns" | "turns" => return Err(UrlError::NotUdp("TLS".to_owned())),
        _ => return Err(UrlError::Scheme),
    };
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(transport) = query.split('&').find_map(|pair| pair.strip_prefix("transport=")) {
        if !transport.eq_ignore_ascii_case("udp") {
            return Err(UrlError::NotUdp(transport.to_owned()));
        }
    }
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or(UrlError::NoHost)?;
            (host, after.strip_prefix(':'))
        }
        None => match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        },
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let port = match port {
        Some(port) => port.parse().map_err(|_| UrlError::BadPort(port.to_owned()))?,
        None => DEFAULT_PORT,
    };
    Ok((is_turn, host.to_owned(), port))
}

/// Warns about each unusable URL once, not for every viewer.
fn warn_once(url: &str, problem: &dyn std::fmt::Display) {
    static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
    if WARNED.lock().insert(url.to_owned()) {
        tracing::warn!(url, "webrtc.ice_servers: not used by Lookout itself: {problem}");
    }
}

/// The servers of `ice_servers` Lookout can gather through, resolved to addresses of the
/// family of `local` (the viewer's socket).
pub async fn resolve(ice_servers: &[IceServer], local: SocketAddr) -> Vec<GatherServer> {
    let mut servers = Vec::new();
    for server in ice_servers {
        for url in &server.urls {
            let (is_turn, host, port) = match parse(url) {
                Ok(parts) => parts,
                Err(problem) => {
                    warn_once(url, &problem);
                    continue;
                }
            };
            let address = match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(mut found) => found.find(|address| address.is_ipv4() == local.is_ipv4()),
                Err(error) => {
                    tracing::warn!(url, %error, "cannot resolve an ICE server");
                    continue;
                }
            };
            let Some(address) = address else {
                tracing::warn!(url, "an ICE server with no address of the media socket's family");
                continue;
            };
            let turn_credentials = is_turn.then(|| (server.username.clone().unwrap_or_default(), server.credential.clone().unwrap_or_default()));
            servers.push(GatherServer { url: url.clone(), address, turn_credentials });
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_their_kind_host_and_port() {
        assert_eq!(parse("stun:stun.example.org"), Ok((false, "stun.example.org".to_owned(), 3478)));
        assert_eq!(parse("turn:192.0.2.7:3479?transport=udp"), Ok((true, "192.0.2.7".to_owned(), 3479)));
        assert_eq!(parse("turn:[2001:db8::7]:5000"), Ok((true, "2001:db8::7".to_owned(), 5000)));
        assert_eq!(parse("turn:[2001:db8::7]"), Ok((true, "2001:db8::7".to_owned(), 3478)));
        assert_eq!(parse("turn:relay.example.org?transport=tcp"), Err(UrlError::NotUdp("tcp".to_owned())));
        assert_eq!(parse("turns:relay.example.org"), Err(UrlError::NotUdp("TLS".to_owned())));
        assert_eq!(parse("http://example.org"), Err(UrlError::Scheme));
        assert_eq!(parse("stun::3478"), Err(UrlError::NoHost));
        assert_eq!(parse("stun:host:port"), Err(UrlError::BadPort("port".to_owned())));
    }
}
