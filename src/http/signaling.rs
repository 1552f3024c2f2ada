//! WebSocket signalling at /ws (protocol in signaling/PROTOCOL.md).
//!
//! Every problem is answered with an `error` message and the socket stays open: a client with
//! a bug learns what it was and can go on. A wall of cameras (`wall`, `tile`) is in `wall.rs`.

mod wall;

use super::access::{self, Refusal};
use super::{cors, AppState};
use crate::auth::{Action, Caller, Credential, Identity, Protocol};
use crate::egress::webrtc::negotiation::peer::NegotiationError;
use crate::egress::webrtc::feed::forwarder_stats::LayerStatus;
use crate::egress::webrtc::session::viewer_session::{new_session_id, SessionError};
use crate::egress::webrtc::ViewerSession;
use crate::limits::{PendingSocket, SessionRefused};
use crate::stream::{PathState, Stream};
use crate::egress::webrtc::transport::connection_state::ConnectionState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};

/// Frames above this are refused by the WebSocket layer itself (close code 1009); between
/// `MAX_MESSAGE_BYTES` and this, the client gets an error message and the socket stays open.
const TRANSPORT_LIMIT: usize = 16 * MAX_MESSAGE_BYTES;
const OUTBOX_MESSAGES: usize = 64;
/// A socket's read buffer to begin with; it grows for a larger message. Signalling messages
/// are small, and the default (128 KiB, allocated at once) made 1,000 silent sockets cost
/// 160 MB before they were closed.
const READ_BUFFER: usize = 4096;
/// How long a socket closed for an oversized frame is held open after its close frame.
const SIZE_CLOSE_LINGER: Duration = Duration::from_secs(1);
/// A socket that sends this many messages in a row past its message rate is closed.
const OVER_RATE_TOLERATED: u32 = 20;

/// Upgrades to a WebSocket. A credential may come in an `Authorization` header (clients that
/// can set one) or in the first message (browsers, which cannot).
#[utoipa::path(get, path = "/ws", operation_id = "ws_upgrade", tag = "webrtc", responses((status = 101, description = "WebSocket signalling, as docs/PROTOCOL.md describes")))]
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(app): State<AppState>,
    connect_info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // A page of another site must not use the browser's stored Basic credentials here: refused
    // whatever else the request holds.
    if !cors::origin_may_connect(&app, &headers) {
        return access::plain(axum::http::StatusCode::FORBIDDEN, "not allowed: this origin is not in [auth] allowed_origins");
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let credential = match access::credential(&headers) {
        Ok(credential) => credential,
        Err(error) => return access::bad_credential(error),
    };
    let ip = access::client_ip(&connect_info);
    // Refused before the upgrade allocates a socket's buffers and tasks.
    let pending = match app.limits.admit_socket(ip) {
        Ok(pending) => pending,
        Err(refused) => {
            let mut response = access::plain(axum::http::StatusCode::TOO_MANY_REQUESTS, refused.to_string());
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, app.limits.settings.ws_first_message.as_secs().max(1).into());
            return response;
        }
    };
    ws.max_message_size(TRANSPORT_LIMIT)
        .max_frame_size(TRANSPORT_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let open = app.sockets.token();
            async move {
                run(socket, app, ip, credential, pending).await;
                drop(open);
            }
        })
}

struct Watching {
    session: Arc<ViewerSession>,
    pump: JoinHandle<()>,
}

/// A watch whose session is being set up (waiting for a camera opened on demand for it, or
/// gathering candidates through TURN); the client's messages are read meanwhile, so that
/// `stop`, another `watch` or a closed socket gives the wait up.
struct Starting {
    /// The path's name, or `wall of N`.
    label: String,
    /// The path watched, whose source's state the client hears of; none for a wall.
    stream: Option<Arc<Stream>>,
    session: JoinHandle<Result<ViewerSession, SessionError>>,
}

struct SignalingClient {
    app: AppState,
    ip: IpAddr,
    identity: Identity,
    outbox: mpsc::Sender<ServerMessage>,
    watching: Option<Watching>,
    starting: Option<Starting>,
}

/// What the reading loop wakes for.
enum Event {
    Received(Result<Message, axum::Error>),
    Stopping,
    Started(Result<Result<ViewerSession, SessionError>, JoinError>),
}

/// The session `starting` waits for, once its camera is live (or failed to be); never while
/// nothing starts.
async fn started(starting: &mut Option<Starting>) -> Result<Result<ViewerSession, SessionError>, JoinError> {
    match starting {
        Some(waiting) => (&mut waiting.session).await,
        None => std::future::pending().await,
    }
}

/// Why a socket is closed by the server, as its close frame says.
fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame { code, reason: reason.into() }
}

/// Tells the client the server is stopping (unless its outbox is full: a client that reads
/// nothing does not hold up the stop), and gives the frame to close with.
fn going_away(outbox: &mpsc::Sender<ServerMessage>) -> CloseFrame {
    let _ = outbox.try_send(ServerMessage::GoingAway { reason: "the server is stopping".into() });
    close_frame(close_code::AWAY, "server stopping")
}

async fn run(socket: WebSocket, app: AppState, ip: IpAddr, header_credential: Credential, pending: PendingSocket) {
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<ServerMessage>(OUTBOX_MESSAGES);
    let (closing, mut close_request) = watch::channel::<Option<CloseFrame>>(None);
    let mut pings = tokio::time::interval(app.limits.settings.ws_idle / 3);
    let writer = tokio::spawn(async move {
        // Pings keep NATs open and show a client that is gone: one that answers nothing is
        // closed by the reader once it has been idle too long.
        loop {
            tokio::select! {
                biased;
                message = outgoing.recv() => match message {
                    Some(message) => {
                        if sink.send(Message::Text(message.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = pings.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
                _ = close_request.changed() => {
                    // What was queued before the close (the error that explains it) goes first.
                    while let Ok(message) = outgoing.try_recv() {
                        if sink.send(Message::Text(message.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                    break;
                }
            }
        }
        sink
    });
    let _ = outbox.send(ServerMessage::Hello { protocol_version: PROTOCOL_VERSION, server: format!("lookout/{}", env!("CARGO_PKG_VERSION")) }).await;
    let authenticated = authenticate(&app, ip, header_credential, &mut incoming, &outbox).await;
    drop(pending);
    let close = match authenticated {
        Ok(identity) => {
            let ice_servers = app.network.ice_servers_for(&format!("viewer-{:08x}", rand::random::<u32>()));
            let _ = outbox.send(ServerMessage::Welcome { ice_servers }).await;
            let mut connection = SignalingClient { app, ip, identity, outbox, watching: None, starting: None };
            let close = connection.serve(&mut incoming).await;
            connection.stop_watching().await;
            close
        }
        Err(close) => {
            drop(outbox);
            close
        }
    };
    let _ = closing.send(Some(close.clone()));
    if let Ok(mut sink) = writer.await {
        // The client may have closed first; then there is no one to tell.
        let _ = sink.send(Message::Close(Some(close.clone()))).await;
        if close.code == close_code::SIZE {
            // The rest of the oversized frame is still unread: closing now would make the
            // kernel reset the connection, and the client would lose the close frame that
            // says why. Hold the socket (not reading) while the client reads it.
            tokio::time::sleep(SIZE_CLOSE_LINGER).await;
        }
    }
}

/// Waits for the first message, which must be `auth`, and identifies the caller by it (or by
/// the upgrade's `Authorization` header when it carries no token). On failure the client is
/// told why and the socket closes with this frame.
async fn authenticate(
    app: &AppState,
    ip: IpAddr,
    header_credential: Credential,
    incoming: &mut SplitStream<WebSocket>,
    outbox: &mpsc::Sender<ServerMessage>,
) -> Result<Identity, CloseFrame> {
    let refuse = |code: ErrorCode, message: String| async move {
        let _ = outbox.send(ServerMessage::Error { code, message: message.clone() }).await;
        close_frame(close_code::POLICY, "not authenticated")
    };
    let wait = app.limits.settings.ws_first_message;
    let deadline = tokio::time::Instant::now() + wait;
    let mut shutdown = app.shutdown.clone();
    let text = loop {
        let frame = tokio::select! {
            frame = tokio::time::timeout_at(deadline, incoming.next()) => Some(frame),
            _ = shutdown.wait_for(|stopping| *stopping) => None,
        };
        let Some(frame) = frame else { return Err(going_away(outbox)) };
        match frame {
            Err(_) => return Err(refuse(ErrorCode::Unauthorized, format!("no auth message within {} s", wait.as_secs_f64())).await),
            Ok(Some(Err(error))) => return Err(socket_failed(error)),
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return Err(close_frame(close_code::NORMAL, "")),
            // A pong to the writer's first ping may come before the client's first message.
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Text(text)))) if text.len() <= MAX_MESSAGE_BYTES => break text,
            Ok(Some(Ok(_))) => return Err(refuse(ErrorCode::Unauthorized, "the first message must be a JSON auth message".into()).await),
        }
    };
    let token = match ClientMessage::parse(&text) {
        Ok(ClientMessage::Auth { token }) => token,
        Ok(_) => {
            let message = format!("the first message must be {{\"type\":\"auth\"}} (signalling protocol {PROTOCOL_VERSION}; see PROTOCOL.md)");
            return Err(refuse(ErrorCode::Unauthorized, message).await);
        }
        Err(error) => return Err(refuse(ErrorCode::Unauthorized, format!("the first message is not a valid auth message: {error}")).await),
    };
    let credential = match token {
        Some(token) => match Credential::bearer(&token) {
            Ok(credential) => credential,
            Err(error) => return Err(refuse(ErrorCode::Unauthorized, format!("not allowed: {error}")).await),
        },
        None => header_credential,
    };
    match access::identify_credential(app, Caller { ip, credential, protocol: Protocol::WebSocket }).await {
        Ok(identity) => Ok(identity),
        Err(refusal @ Refusal::BackingOff(_)) => Err(refuse(ErrorCode::RateLimited, refusal.message()).await),
        Err(refusal) => Err(refuse(ErrorCode::Unauthorized, refusal.message()).await),
    }
}

impl SignalingClient {
    /// Handles the client's messages until it closes, goes idle, floods, or the server
    /// stops; returns the frame to close with.
    async fn serve(&mut self, incoming: &mut SplitStream<WebSocket>) -> CloseFrame {
        let mut shutdown = self.app.shutdown.clone();
        let mut budget = self.app.limits.ws_message_budget();
        let mut over_rate = 0;
        let idle = self.app.limits.settings.ws_idle;
        let mut last_heard = Instant::now();
        let mut idle_checks = tokio::time::interval(idle / 3);
        loop {
            let event = tokio::select! {
                received = incoming.next() => match received {
                    Some(received) => Event::Received(received),
                    None => return close_frame(close_code::NORMAL, ""),
                },
                _ = shutdown.wait_for(|stopping| *stopping) => Event::Stopping,
                outcome = started(&mut self.starting) => Event::Started(outcome),
                _ = idle_checks.tick() => {
                    if last_heard.elapsed() > idle {
                        tracing::debug!(ip = %self.ip, "closing a signalling socket that answered nothing for {} s", idle.as_secs());
                        return close_frame(close_code::AWAY, "idle");
                    }
                    continue;
                }
            };
            let received = match event {
                Event::Received(received) => received,
                Event::Stopping => return going_away(&self.outbox),
                Event::Started(outcome) => {
                    self.on_started(outcome).await;
                    continue;
                }
            };
            last_heard = Instant::now();
            let counted = matches!(received, Ok(Message::Text(_) | Message::Binary(_)));
            if counted && budget.take(last_heard) {
                over_rate = 0;
            } else if counted {
                over_rate += 1;
                if over_rate > OVER_RATE_TOLERATED {
                    tracing::info!(ip = %self.ip, "closing a signalling socket that kept sending over its message rate");
                    return close_frame(close_code::POLICY, "too many messages");
                }
                let rate = self.app.limits.settings.ws_messages_per_second;
                self.error(ErrorCode::RateLimited, format!("more than {rate} messages a second: this one was dropped")).await;
                continue;
            }
            match received {
                Ok(Message::Text(text)) => self.handle_text(&text).await,
                Ok(Message::Binary(_)) => self.error(ErrorCode::BadMessage, "binary frames are not part of the protocol; send JSON text").await,
                Ok(Message::Close(_)) => return close_frame(close_code::NORMAL, ""),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Err(error) => return socket_failed(error),
            }
        }
    }

    async fn send(&self, message: ServerMessage) {
        let _ = self.outbox.send(message).await;
    }

    async fn error(&self, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(?code, %message, "signalling error sent to client");
        self.send(ServerMessage::Error { code, message }).await;
    }

    async fn handle_text(&mut self, text: &str) {
        if text.len() > MAX_MESSAGE_BYTES {
            let problem = format!("message of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}", text.len());
            return self.error(ErrorCode::MessageTooLarge, problem).await;
        }
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err(error) => return self.error(ErrorCode::BadMessage, format!("not a valid message: {error}")).await,
        };
        match message {
            ClientMessage::Watch { path } => self.watch(path).await,
            ClientMessage::Wall { tiles } => self.watch_wall(tiles).await,
            ClientMessage::Tile { tile, path } => self.show_tile(tile, path).await,
            ClientMessage::Answer { sdp } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "answer without an offer: send watch first").await;
                };
                if let Err(error) = watching.session.accept_answer(&sdp) {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Candidate { candidate } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "candidate without a session: send watch first").await;
                };
                if let Err(error) = watching.session.add_remote_candidate(candidate) {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Layer { layer, tile } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "layer without a session: send watch first").await;
                };
                if let Err(error) = watching.session.pin_layer(tile.unwrap_or(0), layer.as_deref()) {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Stop {} => self.stop_watching().await,
            ClientMessage::Qoe(report) => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "qoe without a session: send watch first").await;
                };
                if !report.is_plausible() {
                    return self.error(ErrorCode::BadMessage, "qoe: a figure is negative, not a number, or over an hour").await;
                }
                self.app.sessions.report_experience(&watching.session, report);
            }
            ClientMessage::Auth { .. } => self.error(ErrorCode::UnexpectedMessage, "already authenticated: auth is only the first message").await,
        }
    }

    async fn watch(&mut self, path: String) {
        self.stop_watching().await;
        // Paths the caller may not read do not exist for it: the same answer whether or not
        // the path does.
        // Admitted first, so that the limits bound the questions the auth backend is asked too.
        let slot = match self.app.limits.admit_session(self.ip, &path) {
            Ok(slot) => slot,
            Err(refused) => {
                let code = if matches!(refused, SessionRefused::TooFast(_)) { ErrorCode::RateLimited } else { ErrorCode::ServerFull };
                return self.error(code, refused.to_string()).await;
            }
        };
        let session_id = new_session_id();
        let stream = match self.readable(&session_id, &path).await {
            Ok(stream) => stream,
            Err((code, message)) => return self.error(code, message).await,
        };
        if stream.is_starting() {
            // The camera opens on demand: the client hears why the offer takes a while.
            self.send(ServerMessage::Source { session: session_id.clone(), state: "starting".to_owned(), error: None }).await;
        }
        let (app, opening) = (self.app.clone(), stream.clone());
        let session = tokio::spawn(async move { ViewerSession::start(&opening, &app.network, app.sessions.send_delays(), session_id, slot).await });
        self.starting = Some(Starting { label: path, stream: Some(stream), session });
    }

    async fn on_started(&mut self, outcome: Result<Result<ViewerSession, SessionError>, JoinError>) {
        let Some(Starting { label, stream, .. }) = self.starting.take() else { return };
        match outcome {
            Ok(session) => self.offer(session, label, stream.as_deref()).await,
            Err(failed) => {
                tracing::error!(path = %label, "starting a viewer session failed: {failed}");
                self.error(ErrorCode::Internal, "the session could not be started").await;
            }
        }
    }

    /// Offers the session that started for `label` (a path, or a wall), or tells the client
    /// why none did.
    async fn offer(&mut self, session: Result<ViewerSession, SessionError>, label: String, stream: Option<&Stream>) {
        let session = match session {
            Ok(session) => Arc::new(session),
            Err(error) => return self.session_error(error).await,
        };
        let sdp = session.create_offer();
        self.app.sessions.insert(session.clone());
        let tiles = session.is_wall().then(|| session.paths());
        self.send(ServerMessage::Offer { session: session.id.clone(), path: label, sdp, tiles }).await;
        let pump = tokio::spawn(pump_events(session.clone(), stream.map(Stream::watch_state), self.outbox.clone()));
        self.watching = Some(Watching { session, pump });
    }

    /// The path, if the client may watch it in session `session_id`. Paths the caller may not
    /// read do not exist for it: the same answer whether or not the path does.
    async fn readable(&self, session_id: &str, path: &str) -> Result<Arc<Stream>, (ErrorCode, String)> {
        if !self.identity.for_session(session_id).allows(Action::Read, Some(path)).await {
            return Err((ErrorCode::NotAllowed, format!("not allowed: {} may not watch {path:?}", self.identity.who)));
        }
        let Some(stream) = self.app.registry.get(path) else {
            let known = super::api::readable_paths(&self.app, &self.identity).await;
            return Err((ErrorCode::UnknownPath, format!("no path {path:?}; known paths: {}", known.join(", "))));
        };
        Ok(stream)
    }

    async fn stop_watching(&mut self) {
        if let Some(starting) = self.starting.take() {
            // Aborted, the start gives its viewer slot and its hold on the camera back before
            // the next watch is admitted; one that had just finished is closed.
            starting.session.abort();
            if let Ok(Ok(session)) = starting.session.await {
                session.close();
            }
        }
        if let Some(watching) = self.watching.take() {
            watching.pump.abort();
            self.app.sessions.remove(&watching.session.id);
            watching.session.close();
        }
    }

    async fn session_error(&self, error: SessionError) {
        let code = match &error {
            SessionError::PathNotLive { .. } => ErrorCode::PathNotLive,
            SessionError::BadSdp(NegotiationError::Sdp(sdp)) if sdp.is_codec_unsupported() => ErrorCode::CodecUnsupported,
            SessionError::BadSdp(_) | SessionError::BadCandidate(_) => ErrorCode::BadSdp,
            SessionError::ServerFull(_) => ErrorCode::ServerFull,
            SessionError::UnknownLayer(_) => ErrorCode::UnknownLayer,
            SessionError::UnknownTrack { .. } => ErrorCode::UnknownTile,
            SessionError::Setup(_) => ErrorCode::Internal,
        };
        self.error(code, error.to_string()).await;
    }
}

/// The close frame for a socket whose reading failed: 1009 for a frame over the size limit,
/// as PROTOCOL.md promises.
fn socket_failed(error: axum::Error) -> CloseFrame {
    let too_big = error
        .into_inner()
        .downcast::<tungstenite::Error>()
        .map(|error| matches!(*error, tungstenite::Error::Capacity(_)));
    match too_big {
        Ok(true) => close_frame(close_code::SIZE, "message too big"),
        Ok(false) | Err(_) => close_frame(close_code::ERROR, "socket error"),
    }
}

/// How often a client is told when its frames were captured and what its link carries (see
/// `ServerMessage::Clock` and `ServerMessage::Link`).
const REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The next change of the watched path's source state; never for a wall.
async fn source_changed(source: &mut Option<watch::Receiver<PathState>>) -> Result<PathState, watch::error::RecvError> {
    match source {
        Some(source) => {
            source.changed().await?;
            Ok(source.borrow_and_update().clone())
        }
        None => std::future::pending().await,
    }
}

/// The next change of a track's layer, with the track's index.
async fn layer_changed(layers: &mut [watch::Receiver<LayerStatus>]) -> Result<(usize, LayerStatus), watch::error::RecvError> {
    let changes = layers.iter_mut().enumerate().map(|(index, layer)| {
        Box::pin(async move {
            layer.changed().await?;
            Ok((index, layer.borrow_and_update().clone()))
        })
    });
    futures::future::select_all(changes).await.0
}

/// Relays the session's candidates, connection states, layers, clock and link, and its path's
/// source state (a wall's tiles have none), to the client.
async fn pump_events(session: Arc<ViewerSession>, mut source: Option<watch::Receiver<PathState>>, outbox: mpsc::Sender<ServerMessage>) {
    let mut state = session.state();
    let mut reports = tokio::time::interval(REPORT_INTERVAL);
    let mut layers = session.layer_statuses();
    // The client learns the layers at once.
    layers.iter_mut().for_each(watch::Receiver::mark_changed);
    let wall = session.is_wall();
    let mut state_sent: Option<String> = None;
    loop {
        let messages = tokio::select! {
            // The source's state first: a removed path ends the session right after, and the
            // client should learn why before it learns that.
            biased;
            changed = source_changed(&mut source) => {
                let Ok(current) = changed else { break };
                vec![ServerMessage::Source { session: session.id.clone(), state: current.name().to_owned(), error: current.error().map(str::to_owned) }]
            }
            changed = layer_changed(&mut layers) => {
                let Ok((tile, status)) = changed else { break };
                let mode = status.mode.as_str().to_owned();
                let tile = wall.then_some(tile);
                vec![ServerMessage::Layer { session: session.id.clone(), layer: status.layer, layers: status.layers, mode, reason: status.reason, tile }]
            }
            _ = reports.tick() => {
                let link = session.link();
                let link = ServerMessage::Link { session: session.id.clone(), estimated_bitrate_bps: link.estimated_bitrate_bps, estimate_from: link.estimate_from.map(str::to_owned) };
                let clock = session.clock_reference().map(|(rtp_timestamp, captured_at)| {
                    let capture_time_ms = captured_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
                    ServerMessage::Clock { session: session.id.clone(), rtp_timestamp, capture_time_ms }
                });
                clock.into_iter().chain([link]).collect()
            }
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let current = state.borrow_and_update().to_string();
                state_sent = Some(current.clone());
                vec![ServerMessage::State { session: session.id.clone(), state: current }]
            }
        };
        for message in messages {
            if outbox.send(message).await.is_err() {
                return;
            }
        }
    }
    // A closing session drops its channels in any order: its events or its layer's may go
    // before its state changes. Any of them gone means the session is over (its forwarder also
    // ends on its own when the viewer never connects), so it is closed if it is not yet, and
    // the client learns the state it ended in, or "closed".
    let current = *state.borrow();
    if !current.is_terminal() {
        session.close();
    }
    let last = if current.is_terminal() { current } else { ConnectionState::Closed }.to_string();
    if state_sent.as_ref() != Some(&last) {
        let _ = outbox.send(ServerMessage::State { session: session.id.clone(), state: last }).await;
    }
}
