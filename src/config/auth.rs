//! The `[auth]` section: who may watch which paths and use the API, by users in the file,
//! JWTs, or an HTTP callback. Without it, anyone may watch and only loopback uses the API.

use super::{invalid, ConfigError};
use crate::auth::{check_hash, AuthSettings, CallbackSettings, JwtKey, JwtSettings, Permission, PermissionSpec, Permissions, User, DEFAULT_JWT_CLAIM};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAuth {
    #[serde(default)]
    anonymous: Vec<PermissionSpec>,
    #[serde(default)]
    users: Vec<FileUser>,
    jwt: Option<FileJwt>,
    callback: Option<FileCallback>,
    url_signing_secret: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    password: String,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    permissions: Vec<PermissionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJwt {
    jwks: Option<String>,
    secret: Option<String>,
    public_key: Option<PathBuf>,
    issuer: Option<String>,
    audience: Option<String>,
    claim: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCallback {
    url: String,
    timeout_ms: Option<u64>,
    remember_secs: Option<f64>,
}

/// `base` is the configuration file's folder: a relative `public_key` is read from there.
pub(super) fn auth_settings(file: FileAuth, base: &Path) -> Result<AuthSettings, ConfigError> {
    let anonymous = permissions("auth.anonymous", file.anonymous)?;
    let mut users: Vec<User> = Vec::with_capacity(file.users.len());
    for (index, user) in file.users.into_iter().enumerate() {
        let field = format!("auth.users[{index}]");
        if user.name.is_empty() || user.name.contains(':') || user.name.chars().any(char::is_control) {
            return Err(invalid(format!("{field}.name"), "a user name must be non-empty, without ':' or control characters"));
        }
        if users.iter().any(|u| u.name == user.name) {
            return Err(invalid(format!("{field}.name"), format!("user {:?} is listed twice", user.name)));
        }
        check_hash(&user.password).map_err(|problem| invalid(format!("{field}.password"), problem.to_string()))?;
        let networks = user
            .networks
            .iter()
            .enumerate()
            .map(|(i, n)| network(n).map_err(|problem| invalid(format!("{field}.networks[{i}]"), problem)))
            .collect::<Result<_, _>>()?;
        let permissions = permissions(&format!("{field}.permissions"), user.permissions)?;
        users.push(User { name: user.name, password_hash: user.password, networks, permissions });
    }
    let jwt = file.jwt.map(|jwt| jwt_settings(jwt, base)).transpose()?;
    let callback = file.callback.map(callback_settings).transpose()?;
    if let Some(secret) = &file.url_signing_secret {
        if secret.len() < 32 {
            return Err(invalid("auth.url_signing_secret", "must be at least 32 characters; `openssl rand -hex 32` makes one"));
        }
    }
    for (index, origin) in file.allowed_origins.iter().enumerate() {
        let parsed = Url::parse(origin).ok().filter(|u| u.origin().ascii_serialization() == *origin);
        if parsed.is_none() {
            return Err(invalid(format!("auth.allowed_origins[{index}]"), format!("{origin:?} is not an origin such as https://example.com (scheme, host, port; no path)")));
        }
    }
    Ok(AuthSettings { anonymous, users, jwt, callback, url_signing_secret: file.url_signing_secret, allowed_origins: file.allowed_origins })
}

fn permissions(field: &str, specs: Vec<PermissionSpec>) -> Result<Permissions, ConfigError> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| Permission::try_from(spec).map_err(|problem| invalid(format!("{field}[{i}].path"), problem.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Permissions::new)
}

/// A CIDR network, or a single address standing for itself.
fn network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a network such as 192.168.1.0/24 or an address such as 10.0.0.7"))
}

fn jwt_settings(jwt: FileJwt, base: &Path) -> Result<JwtSettings, ConfigError> {
    let key = match (jwt.jwks, jwt.secret, jwt.public_key) {
        (Some(jwks), None, None) => {
            let url = Url::parse(&jwks).map_err(|e| invalid("auth.jwt.jwks", format!("{jwks:?} is not a URL: {e}")))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(invalid("auth.jwt.jwks", "the JWKS URL must be https:// (or http:// on a trusted network)"));
            }
            JwtKey::Jwks(url)
        }
        (None, Some(secret), None) => {
            if secret.len() < 32 {
                return Err(invalid("auth.jwt.secret", "an HS256 secret must be at least 32 characters"));
            }
            JwtKey::Secret(secret)
        }
        (None, None, Some(file)) => {
            let file = base.join(file);
            let pem = std::fs::read(&file).map_err(|e| invalid("auth.jwt.public_key", format!("cannot read {}: {e}", file.display())))?;
            JwtKey::PublicKey { file, pem }
        }
        _ => return Err(invalid("auth.jwt", "set exactly one of jwks, secret or public_key")),
    };
    key.fixed_key().map_err(|problem| invalid("auth.jwt", problem.to_string()))?;
    let claim = jwt.claim.unwrap_or_else(|| DEFAULT_JWT_CLAIM.to_owned());
    if claim.is_empty() {
        return Err(invalid("auth.jwt.claim", "the claim name cannot be empty"));
    }
    Ok(JwtSettings { key, issuer: jwt.issuer, audience: jwt.audience, claim })
}

fn callback_settings(callback: FileCallback) -> Result<CallbackSettings, ConfigError> {
    let url = Url::parse(&callback.url).map_err(|e| invalid("auth.callback.url", format!("{:?} is not a URL: {e}", callback.url)))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("auth.callback.url", "the callback URL must be http:// or https://"));
    }
    let timeout_ms = callback.timeout_ms.unwrap_or(2000);
    if !(50..=30_000).contains(&timeout_ms) {
        return Err(invalid("auth.callback.timeout_ms", format!("{timeout_ms} must be from 50 to 30000")));
    }
    let remember_secs = callback.remember_secs.unwrap_or(10.0);
    if !(0.0..=3600.0).contains(&remember_secs) {
        return Err(invalid("auth.callback.remember_secs", format!("{remember_secs} must be from 0 to 3600")));
    }
    Ok(CallbackSettings { url, timeout: Duration::from_millis(timeout_ms), remember: Duration::from_secs_f64(remember_secs) })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use crate::auth::{hash_password, Action};

    #[test]
    fn a_full_auth_section_reads() {
        let hash = hash_password("pw").expect("hash");
        let text = format!(
            r#"
            [auth]
            anonymous = [{{ action = "read", path = "lobby" }}]
            [[auth.users]]
            name = "alice"
            password = "{hash}"
            networks = ["10.0.0.0/8", "192.0.2.7"]
            permissions = [{{ action = "read", path = "garage/*" }}, {{ action = "api" }}]
            [auth.jwt]
            secret = "0123456789abcdef0123456789abcdef"
            audience = "lookout"
            [auth.callback]
            url = "http://127.0.0.1:9000/allow"
            "#
        );
        let config = Config::from_toml(&text).expect("valid");
        let auth = config.auth.expect("an [auth] section");
        assert!(auth.anonymous.allows(Action::Read, Some("lobby")));
        assert_eq!(auth.users[0].networks.len(), 2);
        assert!(auth.users[0].permissions.allows(Action::Api, None));
        assert_eq!(auth.jwt.expect("jwt").claim, "lookout_permissions");
        assert_eq!(auth.callback.expect("callback").timeout.as_millis(), 2000);
    }

    #[test]
    fn mistakes_name_their_field() {
        let hash = hash_password("pw").expect("hash");
        let cases = [
            ("[[auth.users]]\nname = \"a\"\npassword = \"plain\"".to_owned(), "auth.users[0].password"),
            (format!("[[auth.users]]\nname = \"a\"\npassword = \"{hash}\"\nnetworks = [\"10.0.0.0/33\"]"), "auth.users[0].networks[0]"),
            (format!("[[auth.users]]\nname = \"a:b\"\npassword = \"{hash}\""), "auth.users[0].name"),
            ("[auth.jwt]\nsecret = \"short\"".to_owned(), "auth.jwt.secret"),
            ("[auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\njwks = \"https://x/\"".to_owned(), "auth.jwt"),
            ("[auth.jwt]\npublic_key = \"/nonexistent.pem\"".to_owned(), "auth.jwt.public_key"),
            ("[auth.jwt]\njwks = \"ftp://x/\"".to_owned(), "auth.jwt.jwks"),
            ("[auth.callback]\nurl = \"http://x/\"\ntimeout_ms = 0".to_owned(), "auth.callback.timeout_ms"),
            ("[auth]\nurl_signing_secret = \"short\"".to_owned(), "auth.url_signing_secret"),
        ];
        for (text, field) in cases {
            match Config::from_toml(&text) {
                Err(super::super::ConfigError::Invalid { field: got, .. }) => assert_eq!(got, field, "for {text}"),
                other => panic!("expected an error naming {field} for {text}, got {other:?}"),
            }
        }
        assert!(Config::from_toml("[auth]\nanonymous = [{ action = \"watch\" }]").is_err());
    }
}
