//! Access-control settings as the configuration file gives them (`[auth]`), validated.

use super::jwks::VerificationKey;
use super::permission::Permissions;
use super::users::User;
use jsonwebtoken::DecodingKey;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    /// What a caller without credentials may do.
    pub anonymous: Permissions,
    pub users: Vec<User>,
    pub jwt: Option<JwtSettings>,
    pub callback: Option<CallbackSettings>,
    /// Signs HLS URLs; without it a random key made at start does (see `url_signature`).
    pub url_signing_secret: Option<String>,
    /// Origins whose pages may read WHEP and LL-HLS answers; empty: any.
    pub allowed_origins: Vec<String>,
}

impl AuthSettings {
    /// Whether anything beyond anonymous permissions is configured.
    pub fn has_methods(&self) -> bool {
        !self.users.is_empty() || self.jwt.is_some() || self.callback.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim holding the permissions.
    pub claim: String,
}

#[derive(Clone, PartialEq)]
pub enum JwtKey {
    /// An HMAC secret shared with the identity provider (HS256, HS384, HS512).
    Secret(String),
    /// A PEM public key (RSA, EC or Ed25519), read at start.
    PublicKey { file: PathBuf, pem: Vec<u8> },
    /// The provider's JWKS URL.
    Jwks(Url),
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("Secret(hidden)"),
            JwtKey::PublicKey { file, .. } => write!(f, "PublicKey({})", file.display()),
            JwtKey::Jwks(url) => write!(f, "Jwks({url})"),
        }
    }
}

impl JwtKey {
    /// The verification key of a secret or a PEM file; `None` for a JWKS, whose keys are
    /// fetched. Fails when the PEM holds no public key.
    pub fn fixed_key(&self) -> Result<Option<VerificationKey>, KeyError> {
        match self {
            JwtKey::Secret(secret) => {
                let key = DecodingKey::from_secret(secret.as_bytes()).map_err(KeyError::Secret)?;
                Ok(Some(VerificationKey::new(key, None)))
            }
            JwtKey::PublicKey { pem, .. } => {
                let key = DecodingKey::from_rsa_pem(pem)
                    .or_else(|_| DecodingKey::from_ec_pem(pem))
                    .or_else(|_| DecodingKey::from_ed_pem(pem))
                    .map_err(|_| KeyError::NoPublicKey)?;
                Ok(Some(VerificationKey::new(key, None)))
            }
            JwtKey::Jwks(_) => Ok(None),
        }
    }
}

/// Why a configured JWT key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret cannot be used: {0}")]
    Secret(jsonwebtoken::errors::Error),
    #[error("the file holds no RSA, EC or Ed25519 public key in PEM form")]
    NoPublicKey,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSettings {
    pub url: Url,
    /// How long the backend may take before the request is denied.
    pub timeout: Duration,
    /// How long an answer is remembered for the same question.
    pub remember: Duration,
}
