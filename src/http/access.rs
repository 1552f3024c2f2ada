//! Access control at the HTTP edge: who a request comes from (its address and its
//! `Authorization` header), and the answers it gets when it may not: 401 with a challenge when
//! it brought no usable credential, 403 when it did but may not do that, 429 after too many
//! failed attempts from its address.

use super::AppState;
use crate::auth::{Action, Caller, Credential, CredentialError, Identity, Protocol, Unauthenticated};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// The client's address, as the listener saw it.
pub fn client_ip(connect_info: &ConnectInfo<SocketAddr>) -> IpAddr {
    connect_info.0.ip().to_canonical()
}

/// The credential of a request's `Authorization` header; none when there is no header.
pub fn credential(headers: &HeaderMap) -> Result<Credential, CredentialError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(Credential::None),
        Some(value) => Credential::from_authorization(value.as_bytes()),
    }
}

/// The answer to an `Authorization` header that cannot be read.
pub fn bad_credential(error: CredentialError) -> Response {
    plain(StatusCode::BAD_REQUEST, error.to_string())
}

/// Identifies the caller of a request, answering 401 (or 429 while its address is backing off
/// after failures) when it cannot be.
pub async fn identify(app: &AppState, ip: IpAddr, headers: &HeaderMap, protocol: Protocol) -> Result<Identity, Response> {
    let credential = credential(headers).map_err(bad_credential)?;
    identify_credential(app, Caller { ip, credential, protocol }).await.map_err(|refusal| refusal.into_response(app))
}

/// Identifies the caller and allows `action` on `path` for it, or answers why not.
pub async fn authorize(app: &AppState, ip: IpAddr, headers: &HeaderMap, protocol: Protocol, action: Action, path: Option<&str>) -> Result<Identity, Response> {
    let identity = identify(app, ip, headers, protocol).await?;
    require(app, &identity, action, path).await?;
    Ok(identity)
}

/// Why a caller is turned away.
pub enum Refusal {
    Unauthenticated(Unauthenticated),
    /// Too many failed attempts from this address: wait this many seconds.
    BackingOff(u64),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Unauthenticated(reason) => format!("not allowed: {reason}"),
            Refusal::BackingOff(seconds) => format!("too many failed attempts from this address; retry in {seconds} s"),
        }
    }

    pub fn into_response(self, app: &AppState) -> Response {
        match self {
            Refusal::Unauthenticated(_) => unauthorized(app, self.message()),
            Refusal::BackingOff(seconds) => {
                let mut response = plain(StatusCode::TOO_MANY_REQUESTS, self.message());
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }
}

/// Identifies a caller, counting failures against its address; an address past its failures
/// is refused before its credential is even looked at.
pub async fn identify_credential(app: &AppState, caller: Caller) -> Result<Identity, Refusal> {
    if caller.credential.is_none() && !app.access.is_configured() {
        // The open default: nothing to check, nothing to count.
        return app.access.identify(&caller).await.map_err(Refusal::Unauthenticated);
    }
    if let Some(wait) = app.limits.failed_auth.blocked_for(caller.ip) {
        return Err(Refusal::BackingOff(wait.as_secs().max(1)));
    }
    match app.access.identify(&caller).await {
        Ok(identity) => Ok(identity),
        Err(reason) => {
            app.limits.failed_auth.record_failure(caller.ip);
            tracing::info!(ip = %caller.ip, protocol = caller.protocol.as_str(), "refused a caller: {}", reason.detail());
            Err(Refusal::Unauthenticated(reason))
        }
    }
}

/// Allows `action` on `path` for `identity`, or answers 401 (an anonymous caller, who may
/// have a credential to bring) or 403.
pub async fn require(app: &AppState, identity: &Identity, action: Action, path: Option<&str>) -> Result<(), Response> {
    if identity.allows(action, path).await {
        return Ok(());
    }
    let what = match path {
        Some(path) => format!("{action} {path:?}"),
        None => format!("use the {action}"),
    };
    tracing::debug!(who = %identity.who, "not allowed to {what}");
    if !app.access.is_configured() {
        return Err(plain(StatusCode::FORBIDDEN, format!("not allowed: without [auth] only loopback may {what}")));
    }
    if identity.anonymous {
        return Err(unauthorized(app, format!("not allowed: log in or send a token to {what}")));
    }
    Err(plain(StatusCode::FORBIDDEN, format!("not allowed: {} may not {what}", identity.who)))
}

fn unauthorized(app: &AppState, message: String) -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(app.access.challenge()));
    response
}

pub fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.into() + "\n").into_response()
}
