//! Signed, expiring URLs for HLS players that cannot send an `Authorization` header (Safari's
//! and TVs' native players, VLC): `/hls/NAME/index.m3u8?sig=EXPIRY.MAC`, where MAC is an HMAC
//! over the path name and the expiry. A signature allows `read` of that one path until it
//! expires, and the playlists it fetches carry it on to their parts. It is made through the API
//! by a caller that may read the path, and holds none of that caller's credentials.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest life a signed URL may be given.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct UrlSigner {
    key: ring::hmac::Key,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefused {
    #[error("the URL signature is malformed")]
    Malformed,
    #[error("the URL signature has expired")]
    Expired,
    #[error("the URL signature is not valid for this path")]
    Invalid,
}

impl UrlSigner {
    /// With a configured secret, signed URLs outlive a restart; without one, a random key is
    /// made at start and a restart voids every URL signed before it.
    pub fn new(secret: Option<&[u8]>) -> Self {
        let key = match secret {
            Some(secret) => ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            None => super::keys::random_key(),
        };
        Self { key }
    }

    /// The `sig` value allowing `read` of `path` for `lifetime` (at most `MAX_LIFETIME`).
    pub fn sign(&self, path: &str, lifetime: Duration, now: SystemTime) -> (String, SystemTime) {
        let expires = now + lifetime.min(MAX_LIFETIME);
        let expires_secs = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let tag = ring::hmac::sign(&self.key, &signed_message(path, expires_secs));
        (format!("{expires_secs}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())), UNIX_EPOCH + Duration::from_secs(expires_secs))
    }

    pub fn verify(&self, path: &str, signature: &str, now: SystemTime) -> Result<(), SignatureRefused> {
        let (expires, mac) = signature.split_once('.').ok_or(SignatureRefused::Malformed)?;
        let expires_secs: u64 = expires.parse().map_err(|_| SignatureRefused::Malformed)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| SignatureRefused::Malformed)?;
        if mac.len() != ring::hmac::HMAC_SHA256.digest_algorithm().output_len() {
            return Err(SignatureRefused::Malformed);
        }
        // In constant time, by ring.
        ring::hmac::verify(&self.key, &signed_message(path, expires_secs), &mac).map_err(|_| SignatureRefused::Invalid)?;
        if now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() >= expires_secs {
            return Err(SignatureRefused::Expired);
        }
        Ok(())
    }
}

/// What is signed: a purpose, the path and the expiry, unambiguously joined.
fn signed_message(path: &str, expires_secs: u64) -> Vec<u8> {
    [b"lookout-hls-read\0".as_slice(), path.as_bytes(), b"\0", &expires_secs.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_reads_its_path_until_it_expires() {
        let signer = UrlSigner::new(None);
        let now = SystemTime::now();
        let (sig, expires) = signer.sign("garage/door", Duration::from_secs(60), now);
        assert!(expires > now);
        assert_eq!(signer.verify("garage/door", &sig, now), Ok(()));
        assert_eq!(signer.verify("garage/door", &sig, now + Duration::from_secs(61)), Err(SignatureRefused::Expired));
        assert_eq!(signer.verify("front", &sig, now), Err(SignatureRefused::Invalid));
        assert_eq!(UrlSigner::new(None).verify("garage/door", &sig, now), Err(SignatureRefused::Invalid), "another key");
    }

    #[test]
    fn a_longer_expiry_cannot_be_written_in() {
        let signer = UrlSigner::new(Some(b"configured secret"));
        let now = SystemTime::now();
        let (sig, _) = signer.sign("demo", Duration::from_secs(60), now);
        let (_, mac) = sig.split_once('.').expect("two parts");
        let later = now.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() + 3600;
        assert_eq!(signer.verify("demo", &format!("{later}.{mac}"), now), Err(SignatureRefused::Invalid));
        for garbage in ["", ".", "x.y", "1.", "99999999999999999999.abc", "1.!!!!"] {
            assert_eq!(signer.verify("demo", garbage, now), Err(SignatureRefused::Malformed), "{garbage:?}");
        }
        // The same configured secret verifies across restarts.
        assert_eq!(UrlSigner::new(Some(b"configured secret")).verify("demo", &sig, now), Ok(()));
    }
}
