//! A bare WebSocket signalling client: sends whatever it is told, reads server messages.

use anyhow::{anyhow, Context};
use futures::{SinkExt, StreamExt};
use lookout_signaling::{ClientMessage, IceServer, ServerMessage, PROTOCOL_VERSION};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct SignalingClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SignalingClient {
    /// Opens /ws and authenticates without a token, as a client of the open default does.
    pub async fn connect(server: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self::connect_with_token(server, None).await?.0)
    }

    /// Opens /ws and authenticates with `token`: hello, auth, welcome. Returns the ICE servers
    /// of the welcome.
    pub async fn connect_with_token(server: SocketAddr, token: Option<&str>) -> anyhow::Result<(Self, Vec<IceServer>)> {
        let mut client = Self::open(server).await?;
        match client.receive(Duration::from_secs(5)).await? {
            ServerMessage::Hello { protocol_version: PROTOCOL_VERSION, .. } => {}
            other => return Err(anyhow!("expected hello with protocol {PROTOCOL_VERSION}, got {other:?}")),
        }
        client.send(&ClientMessage::Auth { token: token.map(str::to_owned) }).await?;
        match client.receive(Duration::from_secs(5)).await? {
            ServerMessage::Welcome { ice_servers } => Ok((client, ice_servers)),
            other => Err(anyhow!("expected welcome, got {other:?}")),
        }
    }

    /// Opens /ws and nothing more: the server's hello is the first message to read.
    pub async fn open(server: SocketAddr) -> anyhow::Result<Self> {
        match tokio_tungstenite::connect_async(format!("ws://{server}/ws")).await {
            Ok((socket, _)) => Ok(Self { socket }),
            // Refused before the upgrade: say with what (status, Retry-After, the reason).
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).unwrap_or("none");
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                Err(anyhow!("opening /ws: refused with {} (Retry-After {retry_after}): {}", response.status(), body.trim()))
            }
            Err(error) => Err(error).context("opening /ws"),
        }
    }

    pub async fn send(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        self.send_text(serde_json::to_string(message)?).await
    }

    pub async fn send_text(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        Ok(self.socket.send(Message::Text(text.into().into())).await?)
    }

    pub async fn send_binary(&mut self, data: Vec<u8>) -> anyhow::Result<()> {
        Ok(self.socket.send(Message::Binary(data.into())).await?)
    }

    /// The next server message; an error if none comes within `timeout` or the socket closes.
    pub async fn receive(&mut self, timeout: Duration) -> anyhow::Result<ServerMessage> {
        // One deadline for the message, however many pings come before it.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.next_frame(deadline, timeout).await? {
                Message::Text(text) => return serde_json::from_str(&text).with_context(|| format!("parsing {text}")),
                Message::Close(reason) => return Err(anyhow!("the server closed the socket: {reason:?}")),
                _ => continue,
            }
        }
    }

    /// Skips candidates and states until a message `wanted` accepts.
    pub async fn receive_until(&mut self, timeout: Duration, wanted: impl Fn(&ServerMessage) -> bool) -> anyhow::Result<ServerMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.receive(left).await?;
            if wanted(&message) {
                return Ok(message);
            }
        }
    }

    /// Reads past messages until the server closes the socket; the close frame's code.
    pub async fn close_code(&mut self, timeout: Duration) -> anyhow::Result<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Message::Close(frame) = self.next_frame(deadline, timeout).await? {
                return frame.map(|f| u16::from(f.code)).ok_or_else(|| anyhow!("a close frame without a code"));
            }
        }
    }

    /// The next frame of any kind before `deadline` (`timeout` from when the wait began).
    async fn next_frame(&mut self, deadline: tokio::time::Instant, timeout: Duration) -> anyhow::Result<Message> {
        tokio::time::timeout_at(deadline, self.socket.next())
            .await
            .map_err(|_| anyhow!("nothing within {timeout:?}"))?
            .ok_or_else(|| anyhow!("the socket ended without a close frame"))?
            .context("reading /ws")
    }

    pub fn into_socket(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }
}
