//! A WebRTC viewer on webrtc 0.21, independent of Lookout's own code: it watches a path
//! through `/ws` (Lookout offers) or WHEP (the viewer offers) and records what arrives.

use crate::http;
use crate::loss::{LossPattern, LossReport, PacketDropper};
use crate::signaling::SignalingClient;
use anyhow::{anyhow, bail, Context};
use futures::{SinkExt, StreamExt};
use lookout_signaling::{ClientMessage, IceCandidate, ServerMessage};
use rtc::interceptor::{Registry, Slot};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

/// What a viewer has received so far.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub packets: u64,
    pub bytes: u64,
    /// Frames, counted by marker bits.
    pub frames: u64,
    /// Packets missing by sequence number (forward gaps).
    pub sequence_gaps: u64,
    pub ssrcs: Vec<u32>,
    /// From the watch request (or WHEP POST) to the first packet, and to the end of the first
    /// keyframe received from its start: the first picture a decoder could show.
    pub first_packet_after: Option<Duration>,
    pub first_keyframe_after: Option<Duration>,
    /// PLIs sent, while waiting for that first keyframe as a browser does, or on request.
    pub keyframe_requests_sent: u64,
    /// Packets that began a keyframe (SPS, IDR, or an aggregate or first fragment of them).
    pub keyframe_starts: u64,
    /// Inside a keyframe that began with its first packet.
    in_first_keyframe: bool,
    previous_started_keyframe: bool,
    /// The first packets, in arrival order, up to the viewer's `keep_packets`.
    pub kept: Vec<Packet>,
    last_sequence: Option<u16>,
    /// Packets of the audio track, and those missing by sequence number.
    pub audio_packets: u64,
    pub audio_sequence_gaps: u64,
    last_audio_sequence: Option<u16>,
    pub audio_ssrcs: Vec<u32>,
    /// The audio track's codec as negotiated ("audio/opus"), and its first packets, up to
    /// `AUDIO_PACKETS_KEPT`.
    pub audio_mime_type: Option<String>,
    pub audio_kept: Vec<Packet>,
    /// The path's source states the server reported while watching (`source` messages).
    pub source_states: Vec<String>,
    /// When each video frame ended (its marker packet) and each audio packet arrived, from the
    /// watch request, with its RTP timestamp: whether timestamps follow the wall clock.
    pub video_timeline: Vec<(Duration, u32)>,
    pub audio_timeline: Vec<(Duration, u32)>,
}

/// Bounds each timeline (minutes of frames and of 20 ms audio packets).
const MAX_TIMELINE: usize = 20_000;
/// Ten seconds of 20 ms packets.
const AUDIO_PACKETS_KEPT: usize = 500;

/// The longest silence in a timeline and what the RTP timestamps advanced across it, in
/// seconds of `clock_rate` (negative when they went back).
pub fn longest_pause(timeline: &[(Duration, u32)], clock_rate: u32) -> Option<(Duration, f64)> {
    timeline
        .windows(2)
        .max_by_key(|pair| pair[1].0.saturating_sub(pair[0].0))
        .map(|pair| (pair[1].0.saturating_sub(pair[0].0), f64::from(pair[1].1.wrapping_sub(pair[0].1) as i32) / f64::from(clock_rate)))
}

/// Forward gaps from `last` to `sequence_number`: the packets missing between them.
fn sequence_gap(last: Option<u16>, sequence_number: u16) -> u64 {
    let step = last.map_or(1, |last| sequence_number.wrapping_sub(last));
    if (2..0x8000).contains(&step) {
        u64::from(step - 1)
    } else {
        0
    }
}

impl Received {
    fn record_audio(&mut self, packet: &Packet, started: Instant) {
        self.audio_packets += 1;
        if !self.audio_ssrcs.contains(&packet.header.ssrc) {
            self.audio_ssrcs.push(packet.header.ssrc);
        }
        if self.audio_timeline.len() < MAX_TIMELINE {
            self.audio_timeline.push((started.elapsed(), packet.header.timestamp));
        }
        self.audio_sequence_gaps += sequence_gap(self.last_audio_sequence, packet.header.sequence_number);
        self.last_audio_sequence = Some(packet.header.sequence_number);
        if self.audio_kept.len() < AUDIO_PACKETS_KEPT {
            self.audio_kept.push(packet.clone());
        }
    }

    fn record(&mut self, packet: Packet, started: Instant, keep_packets: usize) {
        self.packets += 1;
        self.bytes += packet.payload.len() as u64;
        self.frames += u64::from(packet.header.marker);
        if packet.header.marker && self.video_timeline.len() < MAX_TIMELINE {
            self.video_timeline.push((started.elapsed(), packet.header.timestamp));
        }
        self.first_packet_after.get_or_insert_with(|| started.elapsed());
        let starts = crate::h264::starts_keyframe(&packet.payload);
        // SPS and PPS precede the IDR: count an access unit once, at its first packet.
        if starts && !self.previous_started_keyframe {
            self.keyframe_starts += 1;
        }
        self.previous_started_keyframe = starts && !packet.header.marker;
        if self.first_keyframe_after.is_none() {
            self.in_first_keyframe |= starts;
            if self.in_first_keyframe && packet.header.marker {
                self.first_keyframe_after = Some(started.elapsed());
            }
        }
        if !self.ssrcs.contains(&packet.header.ssrc) {
            self.ssrcs.push(packet.header.ssrc);
        }
        self.sequence_gaps += sequence_gap(self.last_sequence, packet.header.sequence_number);
        self.last_sequence = Some(packet.header.sequence_number);
        if self.kept.len() < keep_packets {
            self.kept.push(packet);
        }
    }
}

/// A viewer without a picture asks for a keyframe as soon as packets arrive that cannot start
/// one, then at most once per interval, a bounded number of times (as browsers do).
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);
const KEYFRAME_REQUEST_POLL: Duration = Duration::from_millis(20);
const MAX_KEYFRAME_REQUESTS: u64 = 100;

/// How a viewer is made.
#[derive(Debug, Clone)]
pub struct ViewerOptions {
    /// How many of the first packets to keep for inspection.
    pub keep_packets: usize,
    /// Packets to drop on arrival, for the viewer to NACK.
    pub loss: Option<LossPattern>,
    /// A bearer token: in the `auth` message over /ws, in `Authorization` over WHEP.
    pub token: Option<String>,
    /// Takes the playout-delay header extension on its video, as Chromium does.
    pub playout_delay: bool,
}

impl ViewerOptions {
    pub fn keeping(keep_packets: usize) -> Self {
        Self { keep_packets, loss: None, token: None, playout_delay: false }
    }

    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
}

/// Tests on one machine: loopback explicitly, as a wildcard would skip it.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub struct Viewer {
    connection: Arc<dyn PeerConnection>,
    received: Arc<Mutex<Received>>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    state: watch::Receiver<RTCPeerConnectionState>,
    signaling: Option<JoinHandle<()>>,
    whep: Option<(SocketAddr, String)>,
    loss: Arc<Mutex<LossReport>>,
    pub session: String,
}

struct Handler {
    received: Arc<Mutex<Received>>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    started: Instant,
    keep_packets: usize,
    candidates: mpsc::UnboundedSender<IceCandidate>,
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        let started = self.started;
        if track.kind().await == RtpCodecKind::Audio {
            tokio::spawn(async move {
                let mut mime_type = None;
                while let Some(event) = track.poll().await {
                    let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
                    if mime_type.is_none() {
                        mime_type = track.codec(packet.header.ssrc).await.map(|codec| codec.mime_type);
                    }
                    if let Ok(mut received) = received.lock() {
                        if received.audio_mime_type.is_none() {
                            received.audio_mime_type.clone_from(&mime_type);
                        }
                        received.record_audio(&packet, started);
                    }
                }
            });
            return;
        }
        let keep = self.keep_packets;
        if let Ok(mut slot) = self.track.lock() {
            *slot = Some(track.clone());
        }
        tokio::spawn(request_first_keyframe(track.clone(), received.clone()));
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    if let Ok(mut received) = received.lock() {
                        received.record(packet, started, keep);
                    }
                }
            }
        });
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_m_line_index: init.sdp_mline_index,
                username_fragment: init.username_fragment,
            });
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }
}

/// Asks for a keyframe until the first one has arrived whole, as a browser that cannot decode
/// what it got does.
async fn request_first_keyframe(track: Arc<dyn TrackRemote>, received: Arc<Mutex<Received>>) {
    let mut last_request: Option<Instant> = None;
    loop {
        tokio::time::sleep(KEYFRAME_REQUEST_POLL).await;
        let media_ssrc = match received.lock() {
            Ok(r) if r.first_keyframe_after.is_some() || r.keyframe_requests_sent >= MAX_KEYFRAME_REQUESTS => return,
            Ok(r) if r.in_first_keyframe => continue,
            Ok(r) => r.ssrcs.first().copied(),
            Err(_) => return,
        };
        let Some(media_ssrc) = media_ssrc else { continue };
        if last_request.is_some_and(|at| at.elapsed() < KEYFRAME_REQUEST_INTERVAL) {
            continue;
        }
        last_request = Some(Instant::now());
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
        if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
            return;
        }
        if let Ok(mut r) = received.lock() {
            r.keyframe_requests_sent += 1;
        }
    }
}

struct Parts {
    connection: Arc<dyn PeerConnection>,
    received: Arc<Mutex<Received>>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    candidates: mpsc::UnboundedReceiver<IceCandidate>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    loss: Arc<Mutex<LossReport>>,
}

const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// Below the NACK generator, so that what it drops is asked for again.
const PACKET_DROPPER_SLOT: usize = 6_500;

async fn peer(bind: IpAddr, started: Instant, options: ViewerOptions) -> anyhow::Result<Parts> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    if options.playout_delay {
        let extension = RTCRtpHeaderExtensionCapability { uri: PLAYOUT_DELAY_URI.to_owned() };
        media_engine.register_header_extension(extension, RtpCodecKind::Video, None)?;
    }
    let loss = Arc::new(Mutex::new(LossReport::default()));
    let mut registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    if let Some(pattern) = options.loss {
        registry = registry.with(Slot::from(PACKET_DROPPER_SLOT), PacketDropper::new(pattern, loss.clone()));
    }
    let keep_packets = options.keep_packets;
    let received = Arc::new(Mutex::new(Received::default()));
    let track = Arc::new(Mutex::new(None));
    let (candidates_tx, candidates) = mpsc::unbounded_channel();
    let (gathered_tx, gathered) = watch::channel(false);
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let handler = Handler {
        received: received.clone(),
        track: track.clone(),
        started,
        keep_packets,
        candidates: candidates_tx,
        gathered: gathered_tx,
        state: state_tx,
    };
    // Checks paced at 50 ms as browsers do, not webrtc-rs's default 200 ms.
    let setting_engine = SettingEngineBuilder::new().with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(50)).build();
    let connection = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(setting_engine)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec![SocketAddr::new(bind, 0)])
        .build()
        .await?;
    Ok(Parts { connection: Arc::new(connection), received, track, candidates, gathered, state, loss })
}

fn to_init(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_m_line_index,
        username_fragment: candidate.username_fragment,
        url: None,
    }
}

impl Viewer {
    /// Watches `path` through the WebSocket API, keeping the first `keep_packets` packets.
    pub async fn watch_ws(server: SocketAddr, path: &str, keep_packets: usize) -> anyhow::Result<Self> {
        Self::watch_ws_with(LOOPBACK, server, path, ViewerOptions::keeping(keep_packets)).await
    }

    /// Like `watch_ws`, with media sockets on `bind` (a wildcard means every non-loopback
    /// interface, as inside a network namespace).
    pub async fn watch_ws_from(bind: IpAddr, server: SocketAddr, path: &str, keep_packets: usize) -> anyhow::Result<Self> {
        Self::watch_ws_with(bind, server, path, ViewerOptions::keeping(keep_packets)).await
    }

    pub async fn watch_ws_with(bind: IpAddr, server: SocketAddr, path: &str, options: ViewerOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let (mut client, _) = SignalingClient::connect_with_token(server, options.token.as_deref()).await?;
        client.send(&ClientMessage::Watch { path: path.to_owned() }).await?;
        // A camera opened on demand is said to be starting before the offer comes.
        let mut states_before_offer = Vec::new();
        let (session, sdp) = loop {
            match client.receive(Duration::from_secs(20)).await? {
                ServerMessage::Offer { session, sdp, .. } => break (session, sdp),
                ServerMessage::Source { state, .. } => states_before_offer.push(state),
                other => bail!("expected an offer, got {other:?}"),
            }
        };
        let parts = peer(bind, started, options).await?;
        if let Ok(mut received) = parts.received.lock() {
            received.source_states = states_before_offer;
        }
        parts.connection.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
        let answer = parts.connection.create_answer(None).await?;
        let answer_sdp = answer.sdp.clone();
        parts.connection.set_local_description(answer).await?;
        client.send(&ClientMessage::Answer { sdp: answer_sdp }).await?;
        // From here on one task relays candidates both ways.
        let connection = parts.connection.clone();
        let received = parts.received.clone();
        let mut socket = client.into_socket();
        let mut local_candidates = parts.candidates;
        let signaling = tokio::spawn(async move {
            loop {
                tokio::select! {
                    local = local_candidates.recv() => {
                        let Some(candidate) = local else { break };
                        let text = serde_json::to_string(&ClientMessage::Candidate { candidate }).unwrap_or_default();
                        if socket.send(Message::Text(text.into())).await.is_err() { break }
                    }
                    frame = socket.next() => {
                        // Pings (answered by tungstenite itself) and other frames are not ours.
                        let text = match frame {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                            Some(Ok(_)) => continue,
                        };
                        match serde_json::from_str(&text) {
                            Ok(ServerMessage::Candidate { candidate }) => {
                                let _ = connection.add_ice_candidate(to_init(candidate)).await;
                            }
                            Ok(ServerMessage::Source { state, .. }) => {
                                if let Ok(mut received) = received.lock() {
                                    received.source_states.push(state);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        Ok(Self {
            connection: parts.connection,
            received: parts.received,
            track: parts.track,
            state: parts.state,
            signaling: Some(signaling),
            whep: None,
            loss: parts.loss,
            session,
        })
    }

    /// Watches `path` through WHEP, keeping the first `keep_packets` packets.
    pub async fn watch_whep(server: SocketAddr, path: &str, keep_packets: usize) -> anyhow::Result<Self> {
        Self::watch_whep_with(server, path, ViewerOptions::keeping(keep_packets)).await
    }

    pub async fn watch_whep_with(server: SocketAddr, path: &str, options: ViewerOptions) -> anyhow::Result<Self> {
        let authorization = options.token.as_ref().map(|token| format!("Bearer {token}"));
        let mut parts = peer(LOOPBACK, Instant::now(), options).await?;
        // As a WHEP player does: video and audio, receive only.
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() };
            parts.connection.add_transceiver_from_kind(kind, Some(init)).await?;
        }
        let offer = parts.connection.create_offer(None).await?;
        parts.connection.set_local_description(offer).await?;
        tokio::time::timeout(Duration::from_secs(5), parts.gathered.wait_for(|done| *done)).await.context("ICE gathering")??;
        let offer = parts.connection.local_description().await.ok_or_else(|| anyhow!("no local offer"))?;
        let headers: Vec<(&str, &str)> = authorization.iter().map(|value| ("Authorization", value.as_str())).collect();
        let response = http::request_with(server, "POST", &format!("/whep/{path}"), &headers, Some("application/sdp"), offer.sdp.as_bytes()).await?;
        if response.status != 201 {
            bail!("WHEP answered {}: {}", response.status, response.body.trim());
        }
        let location = response.header("location").ok_or_else(|| anyhow!("WHEP answer without Location"))?.to_owned();
        parts.connection.set_remote_description(RTCSessionDescription::answer(response.body.clone())?).await?;
        let session = http::whep_session_id(&location);
        Ok(Self {
            connection: parts.connection,
            received: parts.received,
            track: parts.track,
            state: parts.state,
            signaling: None,
            whep: Some((server, location)),
            loss: parts.loss,
            session,
        })
    }

    pub fn received(&self) -> Received {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The packets dropped on arrival so far (see `ViewerOptions::loss`) and which came back.
    pub fn loss_report(&self) -> LossReport {
        self.loss.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Sends one PLI for the video track.
    pub async fn request_keyframe(&self) -> anyhow::Result<()> {
        let track = self.track.lock().ok().and_then(|t| t.clone()).ok_or_else(|| anyhow!("no track yet"))?;
        let media_ssrc = *self.received().ssrcs.first().ok_or_else(|| anyhow!("no packet yet"))?;
        track.write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })]).await?;
        if let Ok(mut r) = self.received.lock() {
            r.keyframe_requests_sent += 1;
        }
        Ok(())
    }

    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Waits until at least `packets` packets have arrived.
    pub async fn wait_for_packets(&self, packets: u64, timeout: Duration) -> anyhow::Result<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.packets >= packets {
                return Ok(received);
            }
            if Instant::now() >= deadline {
                bail!("only {} packets within {timeout:?} (connection {})", received.packets, self.connection_state());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends the session the way its signalling would: DELETE for WHEP, closing the socket for /ws.
    pub async fn close(mut self) -> anyhow::Result<()> {
        if let Some(task) = self.signaling.take() {
            task.abort();
        }
        if let Some((server, location)) = self.whep.take() {
            let response = http::request(server, "DELETE", &location, None, b"").await?;
            if response.status != 200 {
                bail!("WHEP DELETE answered {}", response.status);
            }
        }
        self.connection.close().await?;
        Ok(())
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some(task) = self.signaling.take() {
            task.abort();
        }
    }
}
