//! Bearer tokens from the user's identity provider: JWTs whose signature, `exp`, `nbf`, `iss`
//! and `aud` are checked by jsonwebtoken, and whose permissions are a claim holding a list of
//! `{"action": ..., "path": ...}` objects.
//!
//! The header's `alg` must be one the key allows: HMAC algorithms for a shared secret, the
//! key's own family for a public key (no HS/RS confusion), and never `none` (which
//! jsonwebtoken does not even parse).

use super::jwks::{Jwks, KeyLookupError, VerificationKey};
use super::permission::{Permission, PermissionError, PermissionSpec, Permissions};
use jsonwebtoken::{decode, decode_header, Validation};
use serde_json::Value;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
pub const DEFAULT_CLAIM: &str = "lookout_permissions";

pub enum KeySource {
    /// One key from the file: an HS256 secret or a PEM public key.
    Fixed(VerificationKey),
    Jwks(Jwks),
}

pub struct JwtVerifier {
    pub keys: KeySource,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub claim: String,
}

/// A verified token: who it names and what it allows.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub subject: Option<String>,
    pub permissions: Permissions,
}

/// Why a token was refused, for the log; the caller learns it in these words too, as none of
/// them holds the token or a key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenRefused {
    #[error("the token is not a JWT: {0}")]
    Malformed(jsonwebtoken::errors::Error),
    #[error(transparent)]
    NoKey(#[from] KeyLookupError),
    #[error("the token is signed with {0:?}, which its key does not allow")]
    WrongAlgorithm(jsonwebtoken::Algorithm),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token's {claim} claim is not a list of permissions: {reason}")]
    BadPermissions { claim: String, reason: BadPermissionList },
    #[error("the token was refused: {0}")]
    Other(jsonwebtoken::errors::Error),
}

/// Why a token's permissions claim cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BadPermissionList {
    #[error("{0}")]
    NotAList(std::sync::Arc<serde_json::Error>),
    #[error("{0} permissions are more than the {MAX_PERMISSIONS} allowed")]
    TooMany(usize),
    #[error(transparent)]
    Permission(#[from] PermissionError),
}

/// More permissions than this in one token are refused rather than checked one by one.
const MAX_PERMISSIONS: usize = 1024;

impl JwtVerifier {
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRefused> {
        let header = decode_header(token).map_err(TokenRefused::Malformed)?;
        let key = match &self.keys {
            KeySource::Fixed(key) => key.clone(),
            KeySource::Jwks(jwks) => jwks.key(header.kid.as_deref()).await?,
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(TokenRefused::WrongAlgorithm(header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let data = decode::<Value>(token, &key.key, &validation).map_err(refusal)?;
        let subject = data.claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        Ok(VerifiedToken { subject, permissions: permissions_of(&data.claims, &self.claim)? })
    }
}

fn permissions_of(claims: &Value, claim: &str) -> Result<Permissions, TokenRefused> {
    let value = claims.get(claim).ok_or_else(|| TokenRefused::MissingClaim(claim.to_owned()))?;
    let bad = |reason: BadPermissionList| TokenRefused::BadPermissions { claim: claim.to_owned(), reason };
    let specs: Vec<PermissionSpec> = serde_json::from_value(value.clone()).map_err(|e| bad(BadPermissionList::NotAList(e.into())))?;
    if specs.len() > MAX_PERMISSIONS {
        return Err(bad(BadPermissionList::TooMany(specs.len())));
    }
    let permissions = specs.into_iter().map(Permission::try_from).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.into()))?;
    Ok(Permissions::new(permissions))
}

fn refusal(error: jsonwebtoken::errors::Error) -> TokenRefused {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => TokenRefused::Expired,
        ErrorKind::ImmatureSignature => TokenRefused::NotYetValid,
        ErrorKind::InvalidSignature => TokenRefused::BadSignature,
        ErrorKind::InvalidAudience => TokenRefused::WrongAudience,
        ErrorKind::InvalidIssuer => TokenRefused::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => TokenRefused::MissingClaim(claim.clone()),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenRefused::Malformed(error),
        _ => TokenRefused::Other(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::permission::Action;
    use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"a shared secret of at least thirty-two bytes";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn verifier() -> JwtVerifier {
        let key = VerificationKey::new(DecodingKey::from_secret(SECRET).expect("key"), None);
        JwtVerifier { keys: KeySource::Fixed(key), issuer: Some("idp".into()), audience: Some("lookout".into()), claim: DEFAULT_CLAIM.into() }
    }

    fn token(claims: Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET).expect("key")).expect("token")
    }

    fn claims() -> Value {
        json!({"iss": "idp", "aud": "lookout", "sub": "u1", "exp": now() + 60, DEFAULT_CLAIM: [{"action": "read", "path": "garage/*"}]})
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_claimed_permissions() {
        let verified = verifier().verify(&token(claims())).await.expect("valid");
        assert_eq!(verified.subject.as_deref(), Some("u1"));
        assert!(verified.permissions.allows(Action::Read, Some("garage/a")));
        assert!(!verified.permissions.allows(Action::Read, Some("front")));
    }

    #[tokio::test]
    async fn expired_early_foreign_and_tampered_tokens_are_refused() {
        let v = verifier();
        let mut expired = claims();
        expired["exp"] = json!(now() - LEEWAY_SECS - 5);
        assert!(matches!(v.verify(&token(expired)).await, Err(TokenRefused::Expired)));
        let mut early = claims();
        early["nbf"] = json!(now() + LEEWAY_SECS + 60);
        assert!(matches!(v.verify(&token(early)).await, Err(TokenRefused::NotYetValid)));
        let mut audience = claims();
        audience["aud"] = json!("someone-else");
        assert!(matches!(v.verify(&token(audience)).await, Err(TokenRefused::WrongAudience)));
        let mut issuer = claims();
        issuer["iss"] = json!("elsewhere");
        assert!(matches!(v.verify(&token(issuer)).await, Err(TokenRefused::WrongIssuer)));
        let mut no_exp = claims();
        no_exp.as_object_mut().expect("object").remove("exp");
        assert!(matches!(v.verify(&token(no_exp)).await, Err(TokenRefused::MissingClaim(_))));
        // Another payload under the original signature.
        let good = token(claims());
        let other = token(json!({"iss": "idp", "aud": "lookout", "exp": now() + 60, DEFAULT_CLAIM: [{"action": "api"}]}));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], other.split('.').nth(1).expect("payload"), parts[2]);
        assert!(matches!(v.verify(&forged).await, Err(TokenRefused::BadSignature)));
        let mut bad_claim = claims();
        bad_claim[DEFAULT_CLAIM] = json!([{"action": "fly"}]);
        assert!(matches!(v.verify(&token(bad_claim)).await, Err(TokenRefused::BadPermissions { .. })));
    }

    #[tokio::test]
    async fn alg_none_and_other_families_are_refused() {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims()));
        assert!(matches!(verifier().verify(&none).await, Err(TokenRefused::Malformed(_))));
        // An RS256 header against an HMAC secret: refused before any signature check.
        let rs = format!("{}.{}.c2ln", b64(&json!({"alg": "RS256", "typ": "JWT"})), b64(&claims()));
        assert!(matches!(verifier().verify(&rs).await, Err(TokenRefused::WrongAlgorithm(Algorithm::RS256))));
        assert!(matches!(verifier().verify("garbage").await, Err(TokenRefused::Malformed(_))));
    }
}
