//! What a caller presents: nothing, a user name and password (HTTP Basic), or a bearer token
//! (a JWT, or anything the HTTP callback understands). Parsed from an `Authorization` header or
//! taken from the first WebSocket message. Never printed: `Debug` hides the secrets.

use base64::Engine;
use std::fmt;

/// The longest credential accepted, in bytes: a JWT with many permissions fits easily, and a
/// flood of huge headers costs no more than this each to look at.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

/// Why an `Authorization` header could not be read, in words for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the Authorization header is longer than {MAX_CREDENTIAL_BYTES} bytes")]
    TooLong,
    #[error("the Authorization header is not text")]
    NotText,
    #[error("the Authorization scheme must be Basic or Bearer")]
    UnknownScheme,
    #[error("the Basic credentials are not base64 of user:password in UTF-8")]
    MalformedBasic,
    #[error("the bearer token is empty or holds spaces or control characters")]
    MalformedToken,
}

impl Credential {
    /// Reads an `Authorization` header value (RFC 9110 §11.6.2): `Basic base64(user:pass)` or
    /// `Bearer TOKEN`; the scheme is case-insensitive.
    pub fn from_authorization(value: &[u8]) -> Result<Self, CredentialError> {
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(CredentialError::TooLong);
        }
        let value = std::str::from_utf8(value).map_err(|_| CredentialError::NotText)?.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Self::bearer(rest);
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(CredentialError::UnknownScheme);
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| CredentialError::MalformedBasic)?;
        let decoded = String::from_utf8(decoded).map_err(|_| CredentialError::MalformedBasic)?;
        let (user, password) = decoded.split_once(':').ok_or(CredentialError::MalformedBasic)?;
        if user.is_empty() || user.chars().any(char::is_control) {
            return Err(CredentialError::MalformedBasic);
        }
        Ok(Credential::Basic { user: user.to_owned(), password: password.to_owned() })
    }

    /// A token as it comes in a WebSocket message or a header: non-empty, printable ASCII
    /// without spaces (JWTs and the opaque tokens of login systems are).
    pub fn bearer(token: &str) -> Result<Self, CredentialError> {
        if token.len() > MAX_CREDENTIAL_BYTES {
            return Err(CredentialError::TooLong);
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialError::MalformedToken);
        }
        Ok(Credential::Bearer(token.to_owned()))
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Credential::None)
    }

    /// The user name, for logs and the callback: never the password or token.
    pub fn user(&self) -> Option<&str> {
        match self {
            Credential::Basic { user, .. } => Some(user),
            _ => None,
        }
    }

    pub fn token(&self) -> Option<&str> {
        match self {
            Credential::Bearer(token) => Some(token),
            _ => None,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::None => f.write_str("no credential"),
            Credential::Basic { user, .. } => write!(f, "user {user:?} with a password"),
            Credential::Bearer(_) => f.write_str("a bearer token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)).into_bytes()
    }

    #[test]
    fn reads_basic_and_bearer() {
        assert_eq!(
            Credential::from_authorization(&basic("alice:pa:ss")),
            Ok(Credential::Basic { user: "alice".into(), password: "pa:ss".into() })
        );
        assert_eq!(Credential::from_authorization(b"bearer abc.def.ghi"), Ok(Credential::Bearer("abc.def.ghi".into())));
        assert_eq!(Credential::from_authorization(b"Bearer   abc  "), Ok(Credential::Bearer("abc".into())));
    }

    #[test]
    fn refuses_what_is_malformed() {
        assert_eq!(Credential::from_authorization(b"Digest x"), Err(CredentialError::UnknownScheme));
        assert_eq!(Credential::from_authorization(b"Basic !!!"), Err(CredentialError::MalformedBasic));
        assert_eq!(Credential::from_authorization(&basic("no-colon")), Err(CredentialError::MalformedBasic));
        assert_eq!(Credential::from_authorization(&basic(":empty-user")), Err(CredentialError::MalformedBasic));
        assert_eq!(Credential::from_authorization(b"Bearer"), Err(CredentialError::MalformedToken));
        assert_eq!(Credential::from_authorization(b"Bearer a b"), Err(CredentialError::MalformedToken));
        assert_eq!(Credential::from_authorization(b"Bearer \xff"), Err(CredentialError::NotText));
        let huge = [b"Bearer ".as_slice(), &vec![b'a'; MAX_CREDENTIAL_BYTES]].concat();
        assert_eq!(Credential::from_authorization(&huge), Err(CredentialError::TooLong));
    }

    #[test]
    fn debug_keeps_secrets_out() {
        let shown = format!("{:?} {:?}", Credential::Basic { user: "bob".into(), password: "hunter2".into() }, Credential::Bearer("tok123".into()));
        assert!(!shown.contains("hunter2") && !shown.contains("tok123"), "{shown}");
        assert!(shown.contains("bob"));
    }
}
