//! Message types of Lookout's WebSocket signalling protocol (see PROTOCOL.md).
//!
//! Every message is one JSON object in one WebSocket text frame, tagged by `"type"`.
//! The server speaks first with [`ServerMessage::Hello`], which carries
//! [`PROTOCOL_VERSION`]; a client that does not know that version should close. The client's
//! first message is [`ClientMessage::Auth`] (with a token when the server asks for one); the
//! server answers [`ServerMessage::Welcome`] with the ICE servers, or an error and a close.

use serde::{Deserialize, Serialize};

/// Version of the protocol described in PROTOCOL.md. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest text message the server accepts, in bytes. An SDP answer is a few kilobytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A message from the client (browser or custom viewer) to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on every connection: the client's credential, a bearer token (a JWT
    /// or what the server's auth callback understands), or none. Browsers cannot put headers on
    /// a WebSocket, so the token travels here.
    Auth {
        #[serde(default)]
        token: Option<String>,
    },
    /// Ask to watch a path. The server answers with `offer` or `error`.
    /// Watching again on the same socket replaces the previous session.
    Watch { path: String },
    /// Ask for a wall of cameras on one connection: one video track per tile (at most 16), each
    /// showing its path, or nothing yet (`null`). The server answers with `offer` (a video
    /// m-section per tile, mid "0" for the first) or `error`. Replaces the previous session.
    Wall { tiles: Vec<Option<String>> },
    /// Show another path on a tile of the wall (`null`: nothing), without renegotiating: the
    /// tile's track carries the new path from its cached keyframe on. Answered with `tile`.
    Tile { tile: usize, path: Option<String> },
    /// The client's SDP answer to the server's offer.
    Answer { sdp: String },
    /// A trickled ICE candidate of the client. `null`-like end of candidates is
    /// an empty `candidate` string, as in the browser API.
    Candidate { candidate: IceCandidate },
    /// Pin the current session to a layer of its path ("main", "sub", ... as listed in the
    /// `layer` message), or with no `layer` (or `null`) let the server choose by the link.
    Layer {
        #[serde(default)]
        layer: Option<String>,
        /// The tile of a wall it applies to; the first (0) when left out.
        #[serde(default)]
        tile: Option<usize>,
    },
    /// End the current session; the socket stays open for another `watch`.
    /// (An empty struct rather than a unit variant, so that unknown fields are refused.)
    Stop {},
    /// The client's own figures of the current session's playback, its totals so far; sent
    /// every few seconds. The server adds them up by path for its metrics.
    Qoe(QoeReport),
}

/// What a viewer saw of its playback since its session began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QoeReport {
    /// From the watch request to the first frame shown.
    #[serde(default)]
    pub first_frame_ms: Option<f64>,
    /// Times the picture froze, and for how long in all.
    #[serde(default)]
    pub freezes: u64,
    #[serde(default)]
    pub freeze_seconds: f64,
    /// Frames the browser dropped.
    #[serde(default)]
    pub frames_dropped: u64,
    /// Capture to display, now, where the client can tell (Lookout's barcode, or capture times
    /// from `clock` messages).
    #[serde(default)]
    pub glass_to_glass_ms: Option<f64>,
    /// The delay its jitter buffer adds, now.
    #[serde(default)]
    pub jitter_buffer_ms: Option<f64>,
}

impl QoeReport {
    /// Whether every figure is one a playback can have: times finite, not negative and under
    /// an hour; a day of freezes at most; no more freezes or dropped frames than a day of video
    /// at 120 frames a second has frames.
    pub fn is_plausible(&self) -> bool {
        const DAY_OF_FRAMES: u64 = 120 * 86_400;
        let time = |ms: Option<f64>| ms.is_none_or(|ms| ms.is_finite() && (0.0..3_600_000.0).contains(&ms));
        time(self.first_frame_ms)
            && time(self.glass_to_glass_ms)
            && time(self.jitter_buffer_ms)
            && (0.0..=86_400.0).contains(&self.freeze_seconds)
            && self.freezes <= DAY_OF_FRAMES
            && self.frames_dropped <= DAY_OF_FRAMES
    }
}

/// A message from the server to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// First message on every connection.
    Hello { protocol_version: u32, server: String },
    /// The answer to an accepted `auth`: the connection may now `watch`.
    Welcome {
        /// ICE servers the client should use, in the browser's RTCIceServer shape.
        ice_servers: Vec<IceServer>,
    },
    /// The server's SDP offer for a `watch` (`path` is the path's name) or a `wall` (`path` is
    /// `wall of N`, and `tiles` the path each tile shows, in the order of the video m-sections).
    Offer {
        session: String,
        path: String,
        sdp: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tiles: Option<Vec<Option<String>>>,
    },
    /// A tile of the wall shows this path now (`null`: nothing), after a `tile` message.
    Tile { session: String, tile: usize, path: Option<String> },
    /// A trickled ICE candidate of the server.
    Candidate { candidate: IceCandidate },
    /// The session's connection state changed (`connecting`, `connected`, `failed`, `closed`).
    State { session: String, state: String },
    /// When the frames of the session were captured: the frame with RTP timestamp
    /// `rtp_timestamp` was captured at `capture_time_ms` (milliseconds since 1970, on the
    /// camera's clock when it reports a usable one, else Lookout's). What the RTCP sender
    /// reports say, for clients that cannot read those (browsers), sent every few seconds.
    Clock { session: String, rtp_timestamp: u32, capture_time_ms: f64 },
    /// The layer the session gets, at its start and whenever it changes: `layer` is one of
    /// `layers` (the path's, best first), `mode` is `auto` (chosen by the server from the
    /// viewer's link) or `pinned` (by a `layer` message), `reason` says why, for people.
    Layer {
        session: String,
        layer: String,
        layers: Vec<String>,
        mode: String,
        reason: String,
        /// The tile of a wall it is about; left out for a `watch`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tile: Option<usize>,
    },
    /// What the server knows of the session's link, every few seconds: its bandwidth estimate
    /// (from the client's TWCC feedback, or its REMB) that the layer is chosen by.
    Link {
        session: String,
        estimated_bitrate_bps: Option<f64>,
        /// `twcc` or `remb`.
        estimate_from: Option<String>,
    },
    /// The path's camera was lost (`retrying`, with the failure in words), is being connected
    /// again (`connecting`), or is back (`live`). The session stays: its frames resume by
    /// themselves, on the same track, when the camera does.
    Source {
        session: String,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The server is stopping (`reason` says why, for people): it closes the socket with 1001
    /// right after and ends every session. A client reconnects, to another server if it knows
    /// one.
    GoingAway { reason: String },
    /// Something the client asked for could not be done. The socket stays open.
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// An ICE candidate in the shape of the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// An ICE server in the shape of the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Machine-readable reason of an [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No path of that name is configured.
    UnknownPath,
    /// The path exists but its camera is not delivering video yet (connecting or retrying).
    PathNotLive,
    /// The SDP could not be parsed or applied.
    BadSdp,
    /// The client cannot decode the H.264 the server sends (its offer has none, or its answer
    /// turns the video down): it should play the path over LL-HLS.
    CodecUnsupported,
    /// The message was not valid JSON or not a known message.
    BadMessage,
    /// The message exceeded [`MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// The message is valid but not expected now (an answer with no offer pending).
    UnexpectedMessage,
    /// Every media port of the server is in use: try again later or elsewhere.
    ServerFull,
    /// A `layer` message named a layer the path does not have.
    UnknownLayer,
    /// A `tile` or `layer` message named a tile the wall does not have.
    UnknownTile,
    /// The `auth` message's token was missing or refused, or the first message was not `auth`.
    /// The server closes the socket after it.
    Unauthorized,
    /// The credential is valid but does not allow watching that path.
    NotAllowed,
    /// Too many sessions or messages from this client, or too many viewers: `message` says
    /// which and when to retry.
    RateLimited,
    /// The server could not set up the session.
    Internal,
    /// A code this version does not know (a newer server's): a failure all the same.
    #[serde(other)]
    Unknown,
}

impl ClientMessage {
    /// Parses one text frame, telling apart bad JSON from an unknown message shape.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","message":"serialise: {e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qoe_report_carries_the_playbacks_figures_and_nothing_else() {
        let text = r#"{"type":"qoe","first_frame_ms":210.5,"freezes":1,"freeze_seconds":0.4,"frames_dropped":3,"glass_to_glass_ms":62,"jitter_buffer_ms":18}"#;
        let ClientMessage::Qoe(report) = ClientMessage::parse(text).expect("valid") else { panic!("a qoe message") };
        assert_eq!((report.first_frame_ms, report.freezes, report.frames_dropped), (Some(210.5), 1, 3));
        assert!(report.is_plausible());
        assert!(ClientMessage::parse(r#"{"type":"qoe","fps":30}"#).is_err(), "unknown fields are refused");
        assert!(!QoeReport { glass_to_glass_ms: Some(-5.0), ..Default::default() }.is_plausible());
        assert!(!QoeReport { freeze_seconds: f64::NAN, ..Default::default() }.is_plausible());
        assert!(!QoeReport { frames_dropped: u64::MAX, ..Default::default() }.is_plausible());
    }

    #[test]
    fn auth_carries_a_token_or_none() {
        assert_eq!(ClientMessage::parse(r#"{"type":"auth","token":"a.b.c"}"#).expect("valid"), ClientMessage::Auth { token: Some("a.b.c".into()) });
        assert_eq!(ClientMessage::parse(r#"{"type":"auth"}"#).expect("valid"), ClientMessage::Auth { token: None });
        assert!(ClientMessage::parse(r#"{"type":"auth","password":"x"}"#).is_err());
    }

    #[test]
    fn watch_round_trips_with_its_tag() {
        let text = r#"{"type":"watch","path":"demo"}"#;
        let message = ClientMessage::parse(text).expect("valid watch");
        assert_eq!(message, ClientMessage::Watch { path: "demo".into() });
        assert_eq!(serde_json::to_string(&message).unwrap(), text);
    }

    #[test]
    fn candidate_uses_browser_field_names() {
        let text = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        let ClientMessage::Candidate { candidate } = ClientMessage::parse(text).expect("valid") else {
            panic!("not a candidate");
        };
        assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
        assert_eq!(candidate.sdp_m_line_index, Some(0));
    }

    #[test]
    fn layer_pins_by_name_or_unpins_without_one() {
        let pin = ClientMessage::parse(r#"{"type":"layer","layer":"sub"}"#).expect("valid");
        assert_eq!(pin, ClientMessage::Layer { layer: Some("sub".into()), tile: None });
        assert_eq!(ClientMessage::parse(r#"{"type":"layer"}"#).expect("valid"), ClientMessage::Layer { layer: None, tile: None });
        assert_eq!(ClientMessage::parse(r#"{"type":"layer","layer":null,"tile":3}"#).expect("valid"), ClientMessage::Layer { layer: None, tile: Some(3) });
        assert!(ClientMessage::parse(r#"{"type":"layer","layer":3}"#).is_err());
    }

    #[test]
    fn a_wall_names_a_path_or_none_per_tile_and_tiles_switch_by_index() {
        let wall = ClientMessage::parse(r#"{"type":"wall","tiles":["demo",null,"garage/door"]}"#).expect("valid");
        assert_eq!(wall, ClientMessage::Wall { tiles: vec![Some("demo".into()), None, Some("garage/door".into())] });
        let tile = ClientMessage::parse(r#"{"type":"tile","tile":1,"path":"demo"}"#).expect("valid");
        assert_eq!(tile, ClientMessage::Tile { tile: 1, path: Some("demo".into()) });
        assert!(ClientMessage::parse(r#"{"type":"tile","tile":-1,"path":"demo"}"#).is_err());
        let offer = ServerMessage::Offer { session: "s".into(), path: "demo".into(), sdp: "v=0".into(), tiles: None }.to_json();
        assert!(!offer.contains("tiles"), "a watch's offer is as before: {offer}");
    }

    #[test]
    fn stop_has_no_fields() {
        assert_eq!(ClientMessage::parse(r#"{"type":"stop"}"#).expect("valid"), ClientMessage::Stop {});
        assert_eq!(serde_json::to_string(&ClientMessage::Stop {}).unwrap(), r#"{"type":"stop"}"#);
    }

    #[test]
    fn unknown_type_and_extra_fields_are_rejected() {
        assert!(ClientMessage::parse(r#"{"type":"dance"}"#).is_err());
        assert!(ClientMessage::parse(r#"{"type":"stop","x":1}"#).is_err());
        assert!(ClientMessage::parse("not json").is_err());
    }

    #[test]
    fn error_code_is_snake_case() {
        let json = ServerMessage::Error { code: ErrorCode::PathNotLive, message: "m".into() }.to_json();
        assert!(json.contains(r#""code":"path_not_live""#), "{json}");
    }
}
