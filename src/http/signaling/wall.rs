//! A wall of cameras on one connection: `wall` asks for a session with a video track per tile,
//! `tile` shows another path on one of them without renegotiating (PROTOCOL.md, "A wall of
//! cameras").

use super::{SignalingClient, Starting};
use crate::egress::webrtc::session::viewer_session::{new_session_id, MAX_WALL_TRACKS};
use crate::egress::webrtc::ViewerSession;
use crate::limits::{SessionRefused, ViewerSlot};
use crate::stream::Stream;
use lookout_signaling::{ErrorCode, ServerMessage};
use std::sync::Arc;

/// Why a tile cannot show a path: the code and the words the client gets.
type Refused = (ErrorCode, String);

fn refused_slot(refused: SessionRefused) -> Refused {
    let code = if matches!(refused, SessionRefused::TooFast(_)) { ErrorCode::RateLimited } else { ErrorCode::ServerFull };
    (code, refused.to_string())
}

impl SignalingClient {
    pub(super) async fn watch_wall(&mut self, tiles: Vec<Option<String>>) {
        self.stop_watching().await;
        if tiles.is_empty() || tiles.len() > MAX_WALL_TRACKS {
            return self.error(ErrorCode::BadMessage, format!("a wall has 1 to {MAX_WALL_TRACKS} tiles, not {}", tiles.len())).await;
        }
        if let Err(refused) = self.app.limits.admit_wall(self.ip) {
            let (code, message) = refused_slot(refused);
            return self.error(code, message).await;
        }
        let session_id = new_session_id();
        let mut shown = Vec::with_capacity(tiles.len());
        for (tile, path) in tiles.iter().enumerate() {
            match self.tile_path(&session_id, path.as_deref()).await {
                Ok(path) => shown.push(path),
                Err((code, message)) => return self.error(code, format!("tile {tile}: {message}")).await,
            }
        }
        let label = format!("wall of {}", tiles.len());
        let app = self.app.clone();
        let session = tokio::spawn(async move { ViewerSession::start_wall(shown, &app.network, app.sessions.send_delays(), session_id).await });
        self.starting = Some(Starting { label, stream: None, session });
    }

    pub(super) async fn show_tile(&mut self, tile: usize, path: Option<String>) {
        let Some(session) = self.watching.as_ref().map(|watching| watching.session.clone()).filter(|session| session.is_wall()) else {
            return self.error(ErrorCode::UnexpectedMessage, "tile without a wall: send wall first").await;
        };
        let shown = match self.tile_path(&session.id, path.as_deref()).await {
            Ok(shown) => shown,
            Err((code, message)) => return self.error(code, format!("tile {tile}: {message}")).await,
        };
        match session.show(tile, shown) {
            Ok(()) => self.send(ServerMessage::Tile { session: session.id.clone(), tile, path }).await,
            Err(error) => self.session_error(error).await,
        }
    }

    /// The path a tile is to show, with the viewer's slot on it, if the client may watch it.
    async fn tile_path(&self, session_id: &str, path: Option<&str>) -> Result<Option<(Arc<Stream>, ViewerSlot)>, Refused> {
        let Some(path) = path else { return Ok(None) };
        let stream = self.readable(session_id, path).await?;
        let slot = self.app.limits.admit_tile(path).map_err(refused_slot)?;
        Ok(Some((stream, slot)))
    }
}
