//! The keyed hashes access control keeps secrets under: a key made at start, and a digest of
//! several parts under it (the parts joined so that no two lists give the same digest).

use ring::hmac::{Context, Key, HMAC_SHA256};

/// A fresh HMAC-SHA256 key from the system's RNG (or, should that fail, from rand's).
pub fn random_key() -> Key {
    Key::generate(HMAC_SHA256, &ring::rand::SystemRandom::new()).unwrap_or_else(|_| Key::new(HMAC_SHA256, &rand::random::<[u8; 32]>()))
}

/// The HMAC of `parts` under `key`, each part followed by a 0 byte; `None` parts count as a
/// byte no text holds, so a missing part differs from an empty one.
pub fn digest<'a>(key: &Key, parts: impl IntoIterator<Item = Option<&'a [u8]>>) -> [u8; 32] {
    let mut context = Context::with_key(key);
    for part in parts {
        context.update(part.unwrap_or(&[1]));
        context.update(&[0]);
    }
    let mut digest = [0; 32];
    digest.copy_from_slice(context.sign().as_ref());
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_told_apart() {
        let key = random_key();
        let d = |parts: &[Option<&[u8]>]| digest(&key, parts.iter().copied());
        assert_ne!(d(&[Some(b"ab"), Some(b"c")]), d(&[Some(b"a"), Some(b"bc")]));
        assert_ne!(d(&[None]), d(&[Some(b"")]));
        assert_eq!(d(&[Some(b"x")]), d(&[Some(b"x")]));
        assert_ne!(digest(&random_key(), [Some(b"x".as_slice())]), d(&[Some(b"x")]), "another key");
    }
}
