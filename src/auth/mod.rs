//! Access control: one permission model for every way in (/ws, WHEP, LL-HLS, the API,
//! metrics), decided by users in the file, JWTs from the user's identity provider, or the
//! user's own backend over HTTP.
//!
//! A caller is identified once per request or WebSocket (`identify`), then asked about per
//! action and path (`Identity::allows`). Without an `[auth]` section anyone may `read`, and only
//! loopback callers may use the API and metrics.

mod callback;
mod credential;
mod fetch_error;
mod jwks;
mod jwt;
mod keys;
mod permission;
mod settings;
mod url_signature;
mod users;

pub use callback::{Callback, CallbackAnswer, CallbackQuestion};
pub use credential::{Credential, CredentialError, MAX_CREDENTIAL_BYTES};
pub use keys::random_key;
pub use jwt::{TokenRefused, DEFAULT_CLAIM as DEFAULT_JWT_CLAIM};
pub use permission::{Action, PathPattern, Permission, PermissionError, PermissionSpec, Permissions};
pub use fetch_error::FetchError;
pub use settings::{AuthSettings, CallbackSettings, JwtKey, JwtSettings, KeyError};
pub use url_signature::{SignatureRefused, UrlSigner, MAX_LIFETIME as MAX_SIGNED_URL_LIFETIME};
pub use users::{check_hash, hash_password, HashError, User, UserRefused};

use jwks::Jwks;
use jwt::{JwtVerifier, KeySource};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;
use users::Users;

/// Which way in a request came, as the callback is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    WebSocket,
    Whep,
    Hls,
    /// The API and metrics.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::WebSocket => "ws",
            Protocol::Whep => "whep",
            Protocol::Hls => "hls",
            Protocol::Http => "http",
        }
    }
}

/// Who is asking, and over what.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    pub credential: Credential,
    pub protocol: Protocol,
}

/// Why a caller could not be identified. `Display` is for the caller; `detail` for the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unauthenticated {
    /// Which of the name, the password or the network was wrong is for the log alone.
    #[error("wrong user name or password")]
    BadPassword(UserRefused),
    #[error("{0}")]
    BadToken(TokenRefused),
    #[error("{0}")]
    NotAccepted(&'static str),
}

impl Unauthenticated {
    pub fn detail(&self) -> String {
        match self {
            Unauthenticated::BadPassword(refused) => refused.to_string(),
            other => other.to_string(),
        }
    }
}

/// A caller once identified: what it may do, and how to ask the backend about the rest.
#[derive(Clone)]
pub struct Identity {
    /// For logs: `anonymous`, `user alice`, `token of u1`. Never a secret.
    pub who: String,
    /// Whether the caller brought no credential (it may have one to bring: HTTP answers 401).
    pub anonymous: bool,
    permissions: Permissions,
    /// When a callback is configured, what it is asked with about what `permissions` do not
    /// allow.
    ask_backend: Option<(Arc<Callback>, Caller)>,
    /// The viewer session being asked about, which the backend is told.
    session: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("who", &self.who).field("permissions", &self.permissions).finish_non_exhaustive()
    }
}

impl Identity {
    fn new(who: String, anonymous: bool, permissions: Permissions, ask_backend: Option<(Arc<Callback>, Caller)>) -> Self {
        Self { who, anonymous, permissions, ask_backend, session: None }
    }

    /// The same caller, asking on behalf of the viewer session `id` it would start.
    pub fn for_session(&self, id: &str) -> Self {
        Self { session: Some(id.to_owned()), ..self.clone() }
    }

    /// Whether this caller may do `action` on some path, as far as can be told before the path
    /// is known (a backend may allow any).
    pub fn may_somewhere(&self, action: Action) -> bool {
        self.ask_backend.is_some() || self.permissions.allows_somewhere(action)
    }

    /// Whether this caller may do `action` on `path` (`None`: the action as a whole).
    pub async fn allows(&self, action: Action, path: Option<&str>) -> bool {
        if self.permissions.allows(action, path) {
            return true;
        }
        let Some((callback, caller)) = &self.ask_backend else { return false };
        let question = CallbackQuestion {
            action,
            path,
            protocol: caller.protocol.as_str(),
            ip: caller.ip,
            user: caller.credential.user(),
            password: match &caller.credential {
                Credential::Basic { password, .. } => Some(password),
                _ => None,
            },
            token: caller.credential.token(),
            session: self.session.as_deref(),
        };
        matches!(callback.ask(&question).await, CallbackAnswer::Allowed)
    }
}

pub struct AccessControl {
    mode: Mode,
    pub url_signer: UrlSigner,
}

/// The configured ways to decide.
struct Methods {
    anonymous: Permissions,
    users: Users,
    jwt: Option<JwtVerifier>,
    callback: Option<Arc<Callback>>,
}

enum Mode {
    /// No `[auth]`: anyone reads, loopback does the rest.
    Open,
    Configured(Box<Methods>),
}

impl AccessControl {
    /// Without settings, the safe defaults; with them, the configured methods. Fails only
    /// when a configured key cannot be used.
    pub fn new(settings: Option<&AuthSettings>) -> Result<Self, SetupError> {
        let Some(settings) = settings else {
            return Ok(Self { mode: Mode::Open, url_signer: UrlSigner::new(None) });
        };
        let client = http_client()?;
        let jwt = match &settings.jwt {
            None => None,
            Some(jwt) => {
                let keys = match (jwt.key.fixed_key()?, &jwt.key) {
                    (Some(key), _) => KeySource::Fixed(key),
                    (None, JwtKey::Jwks(url)) => KeySource::Jwks(Jwks::new(url.clone(), client.clone())),
                    (None, _) => unreachable!("every key but a JWKS is fixed"),
                };
                Some(JwtVerifier { keys, issuer: jwt.issuer.clone(), audience: jwt.audience.clone(), claim: jwt.claim.clone() })
            }
        };
        let callback = settings.callback.as_ref().map(|c| Arc::new(Callback::new(c.url.clone(), client.clone(), c.timeout, c.remember)));
        Ok(Self {
            mode: Mode::Configured(Box::new(Methods { anonymous: settings.anonymous.clone(), users: Users::new(settings.users.clone()), jwt, callback })),
            url_signer: UrlSigner::new(settings.url_signing_secret.as_deref().map(str::as_bytes)),
        })
    }

    /// Whether an `[auth]` section is in force (otherwise: the open defaults).
    pub fn is_configured(&self) -> bool {
        matches!(self.mode, Mode::Configured(_))
    }

    /// Fetches what the methods need before the first caller (the JWKS).
    pub async fn prepare(&self) {
        let jwt = match &self.mode {
            Mode::Configured(methods) => methods.jwt.as_ref(),
            Mode::Open => None,
        };
        if let Some(JwtVerifier { keys: KeySource::Jwks(jwks), .. }) = jwt {
            jwks.prefetch().await;
        }
    }

    /// The scheme a refused HTTP caller is challenged with: Basic when users are configured
    /// (browsers then ask for a name and password), Bearer otherwise.
    pub fn challenge(&self) -> &'static str {
        match &self.mode {
            Mode::Configured(methods) if !methods.users.is_empty() => r#"Basic realm="Lookout", charset="UTF-8""#,
            _ => r#"Bearer realm="Lookout""#,
        }
    }

    /// Checks the caller's credential and returns what it may do.
    pub async fn identify(&self, caller: &Caller) -> Result<Identity, Unauthenticated> {
        let (anonymous, users, jwt, callback) = match &self.mode {
            Mode::Open => {
                let permissions = if caller.ip.is_loopback() { Permissions::everything() } else { Permissions::read_all() };
                return Ok(Identity::new("anonymous".into(), true, permissions, None));
            }
            Mode::Configured(methods) => (&methods.anonymous, &methods.users, &methods.jwt, &methods.callback),
        };
        let ask_backend = callback.as_ref().map(|c| (c.clone(), caller.clone()));
        match &caller.credential {
            Credential::None => Ok(Identity::new("anonymous".into(), true, anonymous.clone(), ask_backend)),
            Credential::Basic { user, password } => {
                if users.is_empty() {
                    return match ask_backend {
                        Some(_) => Ok(Identity::new(format!("user {user}"), false, anonymous.clone(), ask_backend)),
                        None => Err(Unauthenticated::NotAccepted("no users are configured: send a bearer token")),
                    };
                }
                match users.verify(user, password, caller.ip).await {
                    // A user of the file has the file's permissions alone: its password is
                    // never sent to the backend.
                    Ok(permissions) => Ok(Identity::new(format!("user {user}"), false, permissions, None)),
                    Err(refused) => Err(Unauthenticated::BadPassword(refused)),
                }
            }
            Credential::Bearer(token) => match jwt {
                // Opaque tokens (not three dot-separated parts) are the backend's to judge.
                Some(jwt) if token.split('.').count() == 3 || ask_backend.is_none() => match jwt.verify(token).await {
                    Ok(verified) => {
                        let who = verified.subject.map_or_else(|| "a token".to_owned(), |s| format!("token of {s}"));
                        Ok(Identity::new(who, false, verified.permissions, ask_backend))
                    }
                    Err(refused) => Err(Unauthenticated::BadToken(refused)),
                },
                _ => match ask_backend {
                    Some(_) => Ok(Identity::new("a token".into(), false, anonymous.clone(), ask_backend)),
                    None => Err(Unauthenticated::NotAccepted("bearer tokens are not accepted here: no [auth.jwt] or [auth.callback]")),
                },
            },
        }
    }

    /// Identity for a signed HLS URL: `read` of that one path.
    pub fn identify_signed_url(&self, path: &str, signature: &str) -> Result<Identity, SignatureRefused> {
        self.url_signer.verify(path, signature, SystemTime::now())?;
        // Path names hold no `*` or `?` (see `config::path`): a name is a pattern of itself.
        let permission = Permission { action: Action::Read, path: PathPattern::new(path).map_err(|_| SignatureRefused::Invalid)? };
        Ok(Identity::new("a signed URL".into(), false, Permissions::new(vec![permission]), None))
    }
}

/// Why access control could not be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot make the HTTP client for JWKS and the callback: {0}")]
    HttpClient(reqwest::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn http_client() -> Result<reqwest::Client, SetupError> {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION"))).build().map_err(SetupError::HttpClient)
}

/// rustls's process-wide provider (ring), for the HTTP client and the TLS listener. Called
/// wherever either is made; only the first call installs it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
