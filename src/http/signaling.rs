//! WebSocket signalling at /ws (protocol in signaling/PROTOCOL.md).
//!
//! Every problem is answered with an `error` message and the socket stays open: a client with
//! a bug learns what it was and can go on.

use super::AppState;
use crate::egress::webrtc::session::{OfferFrom, SessionError};
use crate::egress::webrtc::{SessionEvent, ViewerSession};
use crate::stream::PathState;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use lookout_signaling::{ClientMessage, ErrorCode, ServerMessage, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Frames above this are refused by the WebSocket layer itself (close code 1009); between
/// `MAX_MESSAGE_BYTES` and this, the client gets an error message and the socket stays open.
const TRANSPORT_LIMIT: usize = 16 * MAX_MESSAGE_BYTES;
const OUTBOX_MESSAGES: usize = 64;

pub async fn upgrade(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    ws.max_message_size(TRANSPORT_LIMIT).max_frame_size(TRANSPORT_LIMIT).on_upgrade(move |socket| run(socket, app))
}

struct Watching {
    session: Arc<ViewerSession>,
    pump: JoinHandle<()>,
}

struct Connection {
    app: AppState,
    outbox: mpsc::Sender<ServerMessage>,
    watching: Option<Watching>,
    going_away: bool,
}

async fn run(socket: WebSocket, app: AppState) {
    let (mut sink, mut incoming) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<ServerMessage>(OUTBOX_MESSAGES);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(Message::Text(message.to_json().into())).await.is_err() {
                break;
            }
        }
        sink
    });
    let mut connection = Connection { app, outbox, watching: None, going_away: false };
    connection
        .send(ServerMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            server: format!("lookout/{}", env!("CARGO_PKG_VERSION")),
            ice_servers: connection.app.network.ice_servers_for(&format!("viewer-{:08x}", rand::random::<u32>())),
        })
        .await;
    let mut shutdown = connection.app.shutdown.clone();
    loop {
        let received = tokio::select! {
            received = incoming.next() => match received {
                Some(received) => received,
                None => break,
            },
            _ = shutdown.wait_for(|stopping| *stopping) => {
                connection.going_away = true;
                break;
            }
        };
        match received {
            Ok(Message::Text(text)) => connection.handle_text(&text).await,
            Ok(Message::Binary(_)) => connection.error(ErrorCode::BadMessage, "binary frames are not part of the protocol; send JSON text").await,
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Err(error) => {
                tracing::info!(%error, "signalling socket failed");
                break;
            }
        }
    }
    connection.stop_watching().await;
    let close = match connection.going_away {
        true => CloseFrame { code: close_code::AWAY, reason: "server stopping".into() },
        false => CloseFrame { code: close_code::NORMAL, reason: "".into() },
    };
    drop(connection);
    if let Ok(mut sink) = writer.await {
        // The client may have closed first; then there is no one to tell.
        let _ = sink.send(Message::Close(Some(close))).await;
    }
}

impl Connection {
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
            ClientMessage::Answer { sdp } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "answer without an offer: send watch first").await;
                };
                if let Err(error) = watching.session.accept_answer(sdp).await {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Candidate { candidate } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "candidate without a session: send watch first").await;
                };
                if let Err(error) = watching.session.add_remote_candidate(candidate).await {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Layer { layer } => {
                let Some(watching) = &self.watching else {
                    return self.error(ErrorCode::UnexpectedMessage, "layer without a session: send watch first").await;
                };
                if let Err(error) = watching.session.pin_layer(layer.as_deref()) {
                    self.session_error(error).await;
                }
            }
            ClientMessage::Stop {} => self.stop_watching().await,
        }
    }

    async fn watch(&mut self, path: String) {
        self.stop_watching().await;
        let Some(stream) = self.app.registry.get(&path).cloned() else {
            let known: Vec<&str> = self.app.registry.iter().map(|s| s.name()).collect();
            return self.error(ErrorCode::UnknownPath, format!("no path {path:?}; known paths: {}", known.join(", "))).await;
        };
        let session = match ViewerSession::start(&stream, &self.app.network, OfferFrom::Server).await {
            Ok(session) => Arc::new(session),
            Err(error) => return self.session_error(error).await,
        };
        let sdp = match session.create_offer().await {
            Ok(sdp) => sdp,
            Err(error) => {
                session.close().await;
                return self.session_error(error).await;
            }
        };
        self.app.sessions.insert(session.clone());
        self.send(ServerMessage::Offer { session: session.id.clone(), path, sdp }).await;
        let pump = tokio::spawn(pump_events(session.clone(), stream.watch_state(), self.outbox.clone()));
        self.watching = Some(Watching { session, pump });
    }

    async fn stop_watching(&mut self) {
        if let Some(watching) = self.watching.take() {
            watching.pump.abort();
            self.app.sessions.remove(&watching.session.id);
            watching.session.close().await;
        }
    }

    async fn session_error(&self, error: SessionError) {
        let code = match &error {
            SessionError::PathNotLive { .. } => ErrorCode::PathNotLive,
            SessionError::BadSdp(_) => ErrorCode::BadSdp,
            SessionError::ServerFull(_) => ErrorCode::ServerFull,
            SessionError::UnknownLayer { .. } => ErrorCode::UnknownLayer,
            SessionError::Internal(_) => ErrorCode::Internal,
        };
        self.error(code, error.to_string()).await;
    }
}

/// How often a client is told when its frames were captured and what its link carries (see
/// `ServerMessage::Clock` and `ServerMessage::Link`).
const REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// Relays the session's candidates, connection states, layer, clock and link, and its path's
/// source state, to the client.
async fn pump_events(session: Arc<ViewerSession>, mut source: watch::Receiver<PathState>, outbox: mpsc::Sender<ServerMessage>) {
    let mut state = session.state();
    let mut reports = tokio::time::interval(REPORT_INTERVAL);
    let mut layer = session.layer_status();
    layer.mark_changed(); // the client learns the layers at once
    loop {
        let messages = tokio::select! {
            changed = layer.changed() => {
                if changed.is_err() {
                    return;
                }
                let status = layer.borrow_and_update().clone();
                let mode = status.mode.as_str().to_owned();
                vec![ServerMessage::Layer { session: session.id.clone(), layer: status.layer, layers: status.layers, mode, reason: status.reason }]
            }
            _ = reports.tick() => {
                let link = session.stats().link;
                let link = ServerMessage::Link { session: session.id.clone(), estimated_bitrate_bps: link.estimated_bitrate_bps, estimate_from: link.estimate_from.map(str::to_owned) };
                let clock = session.clock_reference().map(|(rtp_timestamp, captured_at)| {
                    let capture_time_ms = captured_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
                    ServerMessage::Clock { session: session.id.clone(), rtp_timestamp, capture_time_ms }
                });
                clock.into_iter().chain([link]).collect()
            }
            event = session.next_event() => match event {
                Some(SessionEvent::Candidate(candidate)) => vec![ServerMessage::Candidate { candidate }],
                Some(SessionEvent::GatheringComplete) => continue,
                None => return,
            },
            changed = source.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = source.borrow_and_update().clone();
                vec![ServerMessage::Source { session: session.id.clone(), state: current.name().to_owned(), error: current.error().map(str::to_owned) }]
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = state.borrow_and_update().to_string();
                vec![ServerMessage::State { session: session.id.clone(), state: current }]
            }
        };
        for message in messages {
            if outbox.send(message).await.is_err() {
                return;
            }
        }
    }
}
