//! Session descriptions (SDP) for Lookout's own endpoint: reading a viewer's offer or answer,
//! and writing Lookout's answer or offer.
//!
//! Lookout only sends, so it needs little of SDP: ICE-lite with host candidates, always the
//! DTLS server, every medium bundled on one transport with RTCP muxed, one H.264 video track
//! (with RTX when the viewer offers it) and at most one audio track in the path's codec.
//! Whatever else an offer has (other codecs, a data channel, a second video) is answered with
//! port 0, in the offer's order, as RFC 3264 and RFC 8843 ask.
//!
//! Lookout's own descriptions are written on rtc-sdp's types (`Writer`, below). A viewer's
//! is read here, line by line, rather than with rtc-sdp's reader, whose errors name neither
//! the line nor the field: "parse int: invalid digit found in string" for a bad port on an
//! m= line or a bad session id alike, "SdpInvalidSyntax: a=" for an attribute before `t=`.
//! Here sizes are bounded, every number is range-checked, nothing indexes blindly, lines
//! Lookout has no use for are skipped, and each error names the line and what the sender of
//! the description can change.

use crate::media::{AudioCodec, VIDEO_CLOCK_RATE};
use rtc::sdp::description::common::{Address, Attribute as SdpAttribute, ConnectionInformation};
use rtc::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use rtc::sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};
use std::fmt::{self, Display, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Browsers' descriptions are 3 to 10 KiB; anything far larger is not a viewer's.
const MAX_DESCRIPTION_BYTES: usize = 64 * 1024;
const MAX_SECTIONS: usize = 16;
/// Remote candidates are informational for an ICE-lite server; a few are plenty.
const MAX_CANDIDATES: usize = 32;
/// A mid travels in the sdes:mid header extension, whose one-byte form carries 16 bytes.
const MAX_MID_LENGTH: usize = 16;
/// How much of an offending line an error quotes.
const QUOTED_CHARACTERS: usize = 60;

const TRANSPORT_CC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The RTP profile of every m-section Lookout serves: RTP over DTLS-SRTP with feedback.
const MEDIA_PROTOCOL: &str = "UDP/TLS/RTP/SAVPF";

/// What Lookout offers in the /ws flow: the payload types, H.264 level and Opus parameters.
const OFFERED_H264_PAYLOAD_TYPE: u8 = 102;
const OFFERED_RTX_PAYLOAD_TYPE: u8 = 103;
/// Constrained Baseline level 3.1 with level asymmetry allowed: every browser accepts it, and
/// Chromium and Firefox decode the Main and High streams of cameras sent under it.
const OFFERED_H264_PROFILE_LEVEL_ID: [u8; 3] = [0x42, 0xe0, 0x1f];
const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
/// Any ids from 1 to 14 do; Lookout writes one-byte header extensions (RFC 8285 §4.2).
const OFFERED_VIDEO_EXTENSIONS: HeaderExtensionIds =
    HeaderExtensionIds { sdes_mid: Some(1), transport_cc: Some(2), playout_delay: Some(3), abs_send_time: None };
const OFFERED_AUDIO_EXTENSIONS: HeaderExtensionIds = HeaderExtensionIds { sdes_mid: Some(1), transport_cc: Some(2), playout_delay: None, abs_send_time: None };

/// Which kind of description the viewer sent: an offer Lookout answers (WHEP), or its answer
/// to Lookout's offer (the WebSocket flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Offer,
    Answer,
}

impl fmt::Display for RemoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteKind::Offer => "offer",
            RemoteKind::Answer => "answer",
        })
    }
}

/// The DTLS role a description asks for (`a=setup`, RFC 5763/8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsSetup {
    /// Either role: Lookout takes the server's.
    ActPass,
    /// The DTLS client: the viewer starts the handshake.
    Active,
    /// The DTLS server: Lookout then starts the handshake (webrtc-rs answers so to an
    /// ICE-lite offer).
    Passive,
}

impl fmt::Display for DtlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DtlsSetup::ActPass => "actpass",
            DtlsSetup::Active => "active",
            DtlsSetup::Passive => "passive",
        })
    }
}

/// An m-section's direction, as its writer sees it (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(key: &str) -> Option<Self> {
        match key {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether the writer of the description takes media in this m-section.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        })
    }
}

/// The RTCP feedback (`a=rtcp-fb`) a payload type accepts, of the kinds Lookout uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpFeedback {
    pub nack: bool,
    pub nack_pli: bool,
    pub ccm_fir: bool,
    pub transport_cc: bool,
    pub goog_remb: bool,
}

impl RtcpFeedback {
    fn add(&mut self, value: &str) {
        let mut words = value.split_whitespace();
        match (words.next(), words.next()) {
            (Some("nack"), None) => self.nack = true,
            (Some("nack"), Some("pli")) => self.nack_pli = true,
            (Some("ccm"), Some("fir")) => self.ccm_fir = true,
            (Some("transport-cc"), None) => self.transport_cc = true,
            (Some("goog-remb"), None) => self.goog_remb = true,
            _ => {}
        }
    }

    /// The `a=rtcp-fb` values to write, in the order browsers write them.
    fn values(self) -> impl Iterator<Item = &'static str> {
        [(self.goog_remb, "goog-remb"), (self.transport_cc, "transport-cc"), (self.ccm_fir, "ccm fir"), (self.nack, "nack"), (self.nack_pli, "nack pli")]
            .into_iter()
            .filter_map(|(wanted, value)| wanted.then_some(value))
    }
}

/// The ids (`a=extmap`) of the RTP header extensions Lookout knows, as one m-section maps them.
/// Only ids 1 to 14 are kept: Lookout writes the one-byte form (RFC 8285 §4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderExtensionIds {
    pub transport_cc: Option<u8>,
    pub playout_delay: Option<u8>,
    pub abs_send_time: Option<u8>,
    pub sdes_mid: Option<u8>,
}

impl HeaderExtensionIds {
    fn record(&mut self, id: u8, uri: &str) {
        let slot = match uri {
            TRANSPORT_CC_URI => &mut self.transport_cc,
            PLAYOUT_DELAY_URI => &mut self.playout_delay,
            ABS_SEND_TIME_URI => &mut self.abs_send_time,
            SDES_MID_URI => &mut self.sdes_mid,
            _ => return,
        };
        if (1..=14).contains(&id) {
            *slot = Some(id);
        }
    }

    /// The ones Lookout stamps on its packets, as `(id, uri)`. abs-send-time is read from
    /// offers but not sent: transport-cc gives the bandwidth estimate.
    fn sent(self) -> impl Iterator<Item = (u8, &'static str)> {
        [(self.sdes_mid, SDES_MID_URI), (self.transport_cc, TRANSPORT_CC_URI), (self.playout_delay, PLAYOUT_DELAY_URI)]
            .into_iter()
            .filter_map(|(id, uri)| Some((id?, uri)))
    }
}

/// One payload type of an m-section, assembled from the `m=` line and its `a=rtpmap`,
/// `a=fmtp` and `a=rtcp-fb` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFormat {
    pub payload_type: u8,
    /// As written (`H264`, `opus`, …); empty when neither an `a=rtpmap` nor RFC 3551 names it.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters, as written.
    pub parameters: String,
    pub feedback: RtcpFeedback,
}

impl RtpFormat {
    /// A payload type before its `a=rtpmap`: the static ones Lookout may send are named by
    /// RFC 3551, and need no rtpmap.
    fn new(payload_type: u8) -> Self {
        let (encoding, clock_rate) = match payload_type {
            0 => ("PCMU", 8_000),
            8 => ("PCMA", 8_000),
            _ => ("", 0),
        };
        Self { payload_type, encoding: encoding.to_owned(), clock_rate, channels: None, parameters: String::new(), feedback: RtcpFeedback::default() }
    }

    /// The value of one `a=fmtp` parameter (`packetization-mode`, `apt`, …).
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case(key))
            .map(|(_, value)| value.trim())
    }

    fn is(&self, encoding: &str, clock_rate: u32) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding) && self.clock_rate == clock_rate
    }

    fn is_h264_packetization_mode_1(&self) -> bool {
        self.is("H264", crate::media::VIDEO_CLOCK_RATE) && self.parameter("packetization-mode") == Some("1")
    }

    fn profile_level_id(&self) -> Option<[u8; 3]> {
        self.parameter("profile-level-id").and_then(parse_profile_level_id)
    }
}

/// One m-section of a remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSection {
    pub mid: String,
    /// `video`, `audio`, `application`, …
    pub media: String,
    pub port: u16,
    pub protocol: String,
    /// The formats of the `m=` line, as written.
    pub formats: Vec<String>,
    /// Port 0 with `a=bundle-only` (RFC 8843 §6) is an m-section that shares the bundle's
    /// transport, not a disabled one.
    pub bundle_only: bool,
    pub direction: Direction,
    pub rtcp_mux: bool,
    /// The RTP payload types, in the `m=` line's order of preference; empty for other protocols.
    pub rtp_formats: Vec<RtpFormat>,
    pub extensions: HeaderExtensionIds,
}

impl RemoteSection {
    /// Port 0 without bundle-only: its writer rejected or disabled it.
    pub fn is_disabled(&self) -> bool {
        self.port == 0 && !self.bundle_only
    }

    /// Why Lookout cannot send in this m-section, if it cannot, whatever the codecs.
    fn check_servable(&self, bundle: &[String], kind: RemoteKind) -> Result<(), SdpError> {
        let (media, mid) = (self.media.clone(), self.mid.clone());
        if self.is_disabled() {
            return Err(SdpError::Disabled { kind, media, mid });
        }
        if !bundle.is_empty() && !bundle.contains(&self.mid) {
            return Err(SdpError::NotBundled { media, mid });
        }
        if !self.direction.receives() {
            return Err(SdpError::CannotReceive { kind, media, mid, direction: self.direction });
        }
        if !self.rtcp_mux {
            return Err(SdpError::NoRtcpMux { media, mid });
        }
        // ICE picks the actual transport; the m= line only names the default candidate's.
        if !["UDP/TLS/RTP/SAVPF", "TCP/DTLS/RTP/SAVPF"].iter().any(|known| self.protocol.eq_ignore_ascii_case(known)) {
            return Err(SdpError::UnsupportedProtocol { media, protocol: self.protocol.clone() });
        }
        Ok(())
    }

    /// The H.264 Lookout sends here: packetization-mode=1 (mode 0 would need one NAL unit
    /// per packet), Constrained Baseline preferred as the profile every decoder has, else any
    /// profile (cameras send High too, and Chromium decodes it). Ties go to the writer's order.
    fn h264(&self) -> Option<H264Format> {
        let usable = || {
            self.rtp_formats.iter().filter(|format| format.is_h264_packetization_mode_1()).filter(|format| {
                // A profile-level-id that is there must be valid, as it is echoed in the answer.
                format.parameter("profile-level-id").is_none() || format.profile_level_id().is_some()
            })
        };
        let chosen = usable().find(|format| format.profile_level_id().is_some_and(is_constrained_baseline)).or_else(|| usable().next())?;
        let rtx_payload_type = self
            .rtp_formats
            .iter()
            .find(|format| {
                format.is("rtx", crate::media::VIDEO_CLOCK_RATE) && format.parameter("apt").and_then(parse_number::<u8>) == Some(chosen.payload_type)
            })
            .map(|format| format.payload_type);
        Some(H264Format {
            payload_type: chosen.payload_type,
            profile_level_id: chosen.profile_level_id(),
            level_asymmetry_allowed: chosen.parameter("level-asymmetry-allowed") == Some("1"),
            rtx_payload_type,
            feedback: chosen.feedback,
        })
    }

    fn audio_format(&self, codec: AudioCodec) -> Option<&RtpFormat> {
        self.rtp_formats.iter().find(|format| match codec {
            AudioCodec::Pcmu => format.is("PCMU", 8_000),
            AudioCodec::Pcma => format.is("PCMA", 8_000),
            // Opus is always written with two channels, whatever it carries (RFC 7587 §7).
            AudioCodec::Opus => format.is("opus", 48_000) && format.channels == Some(2),
        })
    }
}

/// Constrained Baseline: profile_idc 66 with constraint_set1 (RFC 6184 §8.1), as in 42e0xx
/// and 42c0xx.
fn is_constrained_baseline(profile_level_id: [u8; 3]) -> bool {
    let [profile_idc, constraints, _level] = profile_level_id;
    profile_idc == 0x42 && constraints & 0x40 != 0
}

/// The H.264 payload type chosen in a description, and what goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Format {
    pub payload_type: u8,
    /// None when the description leaves it at RFC 6184's default.
    pub profile_level_id: Option<[u8; 3]>,
    pub level_asymmetry_allowed: bool,
    /// Its RFC 4588 retransmission payload type (`a=fmtp:R apt=P`), if offered.
    pub rtx_payload_type: Option<u8>,
    pub feedback: RtcpFeedback,
}

impl H264Format {
    fn fmtp(&self) -> String {
        let mut fmtp = String::new();
        if self.level_asymmetry_allowed {
            fmtp.push_str("level-asymmetry-allowed=1;");
        }
        fmtp.push_str("packetization-mode=1");
        if let Some([profile, constraints, level]) = self.profile_level_id {
            let _ = write!(fmtp, ";profile-level-id={profile:02x}{constraints:02x}{level:02x}");
        }
        fmtp
    }
}

/// The video m-section Lookout sends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedVideo {
    pub mid: String,
    pub h264: H264Format,
    pub extensions: HeaderExtensionIds,
}

/// The audio m-section Lookout sends in, and its payload type there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedAudio {
    pub mid: String,
    pub payload_type: u8,
    /// Whether the viewer sends transport-wide feedback for it.
    pub transport_cc: bool,
    pub extensions: HeaderExtensionIds,
}

/// What Lookout needs from a viewer's offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDescription {
    pub kind: RemoteKind,
    /// The viewer's ICE credentials.
    pub ufrag: String,
    pub password: String,
    /// Its DTLS certificate's sha-256 fingerprint, `AB:CD:…` in upper case.
    pub fingerprint: String,
    pub setup: DtlsSetup,
    /// The mids of the BUNDLE group, in its order; empty without one.
    pub bundle: Vec<String>,
    /// Every m-section, in order.
    pub sections: Vec<RemoteSection>,
    /// The first video m-section Lookout can send H.264 in.
    pub video: SelectedVideo,
    /// In an answer to an offer of several video tracks (a wall of cameras), the video
    /// m-sections after the first, in order; empty otherwise.
    pub more_videos: Vec<SelectedVideo>,
    /// `candidate:…` as written, without duplicates: an ICE-lite server only answers checks,
    /// so they are for logs and diagnostics.
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

impl RemoteDescription {
    /// The video m-sections Lookout sends in, in order (see `more_videos`).
    pub fn videos(&self) -> impl Iterator<Item = &SelectedVideo> {
        std::iter::once(&self.video).chain(&self.more_videos)
    }

    /// Where and under which payload type Lookout sends audio in `codec`, if the viewer takes it:
    /// the first bundled audio m-section that can receive and has that codec.
    pub fn audio(&self, codec: AudioCodec) -> Option<SelectedAudio> {
        // Without BUNDLE, audio would need a transport of its own.
        if self.bundle.is_empty() {
            return None;
        }
        self.sections.iter().filter(|section| section.media == "audio" && section.check_servable(&self.bundle, self.kind).is_ok()).find_map(|section| {
            let format = section.audio_format(codec)?;
            Some(SelectedAudio {
                mid: section.mid.clone(),
                payload_type: format.payload_type,
                transport_cc: format.feedback.transport_cc,
                extensions: section.extensions,
            })
        })
    }
}

/// What Lookout says about itself in its offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalParameters {
    pub ufrag: String,
    pub password: String,
    /// Lookout's certificate's sha-256 fingerprint, `AB:CD:…`.
    pub fingerprint: String,
    /// Host candidates on UDP, the preferred first; the first is also the default address.
    pub candidates: Vec<SocketAddr>,
    /// Whether the same addresses and ports also take ICE-TCP connections (RFC 6544, passive).
    pub passive_tcp: bool,
    /// Candidates gathered through Lookout's own ICE servers (`candidate:…` values); with any,
    /// Lookout runs full ICE rather than lite.
    pub gathered: Vec<String>,
    /// The RTCP CNAME and media stream id: shared by audio and video, so that the viewer
    /// plays them in sync.
    pub cname: String,
    pub stream_id: String,
    /// The video tracks: one for a path, one per tile for a wall of cameras. An answer (WHEP)
    /// sends the first.
    pub videos: Vec<LocalVideo>,
    /// The path's audio, if it has any.
    pub audio: Option<LocalAudio>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVideo {
    pub ssrc: u32,
    pub rtx_ssrc: u32,
    pub track_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAudio {
    pub codec: AudioCodec,
    pub ssrc: u32,
    pub track_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the session description is {bytes} bytes; Lookout accepts at most {MAX_DESCRIPTION_BYTES}")]
    TooLarge { bytes: usize },
    #[error("the session description has more than {MAX_SECTIONS} m-sections")]
    TooManySections,
    #[error("this is not a session description: it must start with v=0")]
    NotSdp,
    #[error("line {line} of the session description is not `letter=value`: {text:?}")]
    MalformedLine { line: usize, text: String },
    #[error("line {line} of the session description: {problem}: {text:?}")]
    BadLine { line: usize, problem: &'static str, text: String },
    #[error("m-section {number} ({media}) has no a=mid; WebRTC needs one in every m-section")]
    MissingMid { number: usize, media: String },
    #[error("the mid {mid:?} is not 1 to {MAX_MID_LENGTH} letters, digits or token characters")]
    BadMid { mid: String },
    #[error("two m-sections have the same mid {mid:?}")]
    DuplicateMid { mid: String },
    #[error("the BUNDLE group names mid {mid:?}, which no m-section has")]
    UnknownBundleMid { mid: String },
    #[error("the {kind} is ICE-lite too (a=ice-lite); Lookout is ICE-lite, so the viewer must run full ICE")]
    RemoteIceLite { kind: RemoteKind },
    #[error("the {kind} has no ICE username fragment (a=ice-ufrag)")]
    MissingUfrag { kind: RemoteKind },
    #[error("the {kind} has no ICE password (a=ice-pwd)")]
    MissingPassword { kind: RemoteKind },
    #[error("the ICE username fragment must be 4 to 256 letters, digits, '+' or '/' (RFC 8839)")]
    BadUfrag,
    #[error("the ICE password must be 22 to 256 letters, digits, '+' or '/' (RFC 8839)")]
    BadPassword,
    #[error("the {kind} has no DTLS fingerprint (a=fingerprint:sha-256 …)")]
    MissingFingerprint { kind: RemoteKind },
    #[error("DTLS fingerprint uses {algorithm}; only sha-256 is supported")]
    UnsupportedFingerprint { algorithm: String },
    #[error("the sha-256 DTLS fingerprint is not 32 hex bytes separated by colons: {text:?}")]
    BadFingerprint { text: String },
    #[error("the {kind} has no DTLS role (a=setup)")]
    MissingSetup { kind: RemoteKind },
    #[error("a=setup:{value} is not a DTLS role (actpass, active or passive)")]
    BadSetup { value: String },
    #[error("the {kind} says a=setup:{setup}: {expected}")]
    WrongSetup { kind: RemoteKind, setup: DtlsSetup, expected: &'static str },
    #[error("the {kind} has no video m-section; Lookout sends video")]
    NoVideo { kind: RemoteKind },
    #[error("the {kind} disables its {media} m-section (mid {mid:?}) with port 0")]
    Disabled { kind: RemoteKind, media: String, mid: String },
    #[error("the {media} m-section (mid {mid:?}) is not in the BUNDLE group; Lookout sends all media on one transport")]
    NotBundled { media: String, mid: String },
    #[error("the {kind}'s {media} m-section (mid {mid:?}) is {direction}; it must be recvonly or sendrecv for Lookout to send to it")]
    CannotReceive { kind: RemoteKind, media: String, mid: String, direction: Direction },
    #[error("the {media} m-section (mid {mid:?}) lacks a=rtcp-mux; Lookout sends RTP and RTCP on one port only")]
    NoRtcpMux { media: String, mid: String },
    #[error("the {media} m-section uses {protocol}; Lookout sends only DTLS-SRTP (UDP/TLS/RTP/SAVPF)")]
    UnsupportedProtocol { media: String, protocol: String },
    #[error("the {kind} has no H.264 with packetization-mode=1: Lookout sends only H.264, which this client cannot decode over WebRTC (LL-HLS plays it)")]
    NoH264 { kind: RemoteKind },
    /// The answer to Lookout's offer, which has only H.264, turns the video down.
    #[error("the answer rejects the video (port 0): this browser cannot decode the H.264 Lookout sends over WebRTC (Firefox without its OpenH264 plugin, for one); LL-HLS plays it")]
    H264Rejected,
    #[error("the answer has {answered} video m-sections; Lookout offered {offered}")]
    VideoTracksAnswered { offered: usize, answered: usize },
    #[error("Lookout answers only offers; this description was read as an answer")]
    NotAnOffer,
}

impl SdpError {
    /// Whether the client cannot decode the H.264 Lookout sends: it should play LL-HLS.
    pub fn is_codec_unsupported(&self) -> bool {
        matches!(self, SdpError::NoH264 { .. } | SdpError::H264Rejected)
    }
}

/// Reads a viewer's offer (for Lookout to answer) or its answer (to Lookout's offer).
pub fn parse_remote(sdp: &str, kind: RemoteKind) -> Result<RemoteDescription, SdpError> {
    if sdp.len() > MAX_DESCRIPTION_BYTES {
        return Err(SdpError::TooLarge { bytes: sdp.len() });
    }
    let raw = RawDescription::split(sdp)?;
    let mut sections = Vec::with_capacity(raw.sections.len());
    for (index, raw_section) in raw.sections.iter().enumerate() {
        let section = parse_section(index, raw_section, &raw.session)?;
        if sections.iter().any(|earlier: &RemoteSection| earlier.mid == section.mid) {
            return Err(SdpError::DuplicateMid { mid: section.mid });
        }
        sections.push(section);
    }
    if find(&raw.session, "ice-lite").is_some() {
        return Err(SdpError::RemoteIceLite { kind });
    }
    let bundle = bundle_group(&raw.session);
    let (video_index, video, more_videos) = select_videos(&sections, &bundle, kind)?;
    // The bundle's transport is described by its first m-section (RFC 8843's tagged one).
    let transport_index = match bundle.first() {
        Some(tag) => sections.iter().position(|section| &section.mid == tag).ok_or_else(|| SdpError::UnknownBundleMid { mid: tag.clone() })?,
        None => video_index,
    };
    let transport_attributes = raw.sections.get(transport_index).map(|section| section.attributes.as_slice()).unwrap_or_default();
    let transport = TransportParameters::read(transport_attributes, &raw.session, kind)?;
    let (candidates, end_of_candidates) = candidates(&raw);
    Ok(RemoteDescription {
        kind,
        ufrag: transport.ufrag,
        password: transport.password,
        fingerprint: transport.fingerprint,
        setup: transport.setup,
        bundle,
        sections,
        video,
        more_videos,
        candidates,
        end_of_candidates,
    })
}

/// Lookout's answer to a viewer's offer: its video, its audio if the path has some and the
/// viewer takes that codec, and every other m-section rejected with port 0, in the offer's order.
pub fn write_answer(offer: &RemoteDescription, local: &LocalParameters) -> Result<String, SdpError> {
    if offer.kind != RemoteKind::Offer {
        return Err(SdpError::NotAnOffer);
    }
    let audio = local.audio.as_ref().and_then(|local_audio| Some((local_audio, offer.audio(local_audio.codec)?)));
    let is_audio = |mid: &str| audio.as_ref().is_some_and(|(_, selected)| selected.mid == mid);
    let accepted: Vec<&str> = offer.sections.iter().map(|section| section.mid.as_str()).filter(|mid| *mid == offer.video.mid || is_audio(mid)).collect();
    // An answer may only bundle what the offer bundled, minus what it rejects (RFC 8843 §7.3).
    let mut writer = Writer::new(local, DtlsSetup::Passive, if offer.bundle.is_empty() { &[] } else { &accepted });
    for section in &offer.sections {
        if let (true, Some(local_video)) = (section.mid == offer.video.mid, local.videos.first()) {
            writer.video(local_video, &offer.video);
            continue;
        }
        match &audio {
            Some((local_audio, selected)) if selected.mid == section.mid => writer.audio(local_audio, selected),
            _ => writer.rejected(section),
        }
    }
    Ok(writer.finish())
}

/// Lookout's offer (the WebSocket flow): its video tracks as mids 0, 1, ... and, if the path
/// has audio, the audio as the next mid, all sendonly; Lookout is ICE-lite and leaves the viewer
/// to be the DTLS client.
pub fn write_offer(local: &LocalParameters) -> String {
    let h264 = H264Format {
        payload_type: OFFERED_H264_PAYLOAD_TYPE,
        profile_level_id: Some(OFFERED_H264_PROFILE_LEVEL_ID),
        level_asymmetry_allowed: true,
        rtx_payload_type: Some(OFFERED_RTX_PAYLOAD_TYPE),
        feedback: RtcpFeedback { nack: true, nack_pli: true, ccm_fir: true, transport_cc: true, goog_remb: true },
    };
    let videos: Vec<(&LocalVideo, SelectedVideo)> = local
        .videos
        .iter()
        .enumerate()
        .map(|(index, local_video)| (local_video, SelectedVideo { mid: index.to_string(), h264: h264.clone(), extensions: OFFERED_VIDEO_EXTENSIONS }))
        .collect();
    let audio = local.audio.as_ref().map(|local_audio| {
        let selected = SelectedAudio {
            mid: videos.len().to_string(),
            payload_type: local_audio.codec.payload_type(),
            transport_cc: true,
            extensions: OFFERED_AUDIO_EXTENSIONS,
        };
        (local_audio, selected)
    });
    let mids = videos.iter().map(|(_, selected)| selected.mid.as_str()).chain(audio.as_ref().map(|(_, selected)| selected.mid.as_str()));
    let bundle: Vec<&str> = mids.collect();
    let mut writer = Writer::new(local, DtlsSetup::ActPass, &bundle);
    for (local_video, selected) in &videos {
        writer.video(local_video, selected);
    }
    if let Some((local_audio, selected)) = &audio {
        writer.audio(local_audio, selected);
    }
    writer.finish()
}

// ---- Reading ----

/// One `a=` line: `a=rtcp-mux` has no value, `a=mid:0` has one.
struct Attribute<'a> {
    line: usize,
    key: &'a str,
    value: Option<&'a str>,
}

impl Attribute<'_> {
    fn bad(&self, problem: &'static str) -> SdpError {
        let text = match self.value {
            Some(value) => format!("a={}:{value}", self.key),
            None => format!("a={}", self.key),
        };
        SdpError::BadLine { line: self.line, problem, text: quote(&text) }
    }
}

struct RawSection<'a> {
    line: usize,
    media_line: &'a str,
    attributes: Vec<Attribute<'a>>,
}

/// The description cut into lines, before any meaning is given to them.
struct RawDescription<'a> {
    session: Vec<Attribute<'a>>,
    sections: Vec<RawSection<'a>>,
}

impl<'a> RawDescription<'a> {
    fn split(sdp: &'a str) -> Result<Self, SdpError> {
        let mut lines = sdp.split('\n').enumerate().map(|(index, line)| (index + 1, line.trim_end())).filter(|(_, line)| !line.is_empty());
        if lines.next().map(|(_, line)| line) != Some("v=0") {
            return Err(SdpError::NotSdp);
        }
        let mut raw = RawDescription { session: Vec::new(), sections: Vec::new() };
        for (line, text) in lines {
            let (kind, value) = match text.split_once('=') {
                Some((kind, value)) if kind.len() == 1 && kind.bytes().all(|byte| byte.is_ascii_lowercase()) => (kind, value),
                _ => return Err(SdpError::MalformedLine { line, text: quote(text) }),
            };
            match kind {
                "m" => {
                    if raw.sections.len() == MAX_SECTIONS {
                        return Err(SdpError::TooManySections);
                    }
                    raw.sections.push(RawSection { line, media_line: value, attributes: Vec::new() });
                }
                "a" => {
                    let (key, value) = match value.split_once(':') {
                        Some((key, value)) => (key, Some(value)),
                        None => (value, None),
                    };
                    let attribute = Attribute { line, key, value };
                    match raw.sections.last_mut() {
                        Some(section) => section.attributes.push(attribute),
                        None => raw.session.push(attribute),
                    }
                }
                // Origin, timing, connection data and the rest say nothing Lookout uses.
                _ => {}
            }
        }
        Ok(raw)
    }
}

fn find<'s, 'a>(attributes: &'s [Attribute<'a>], key: &str) -> Option<&'s Attribute<'a>> {
    attributes.iter().find(|attribute| attribute.key == key)
}

/// `m=<media> <port>[/<count>] <protocol> <format> …`
struct MediaLine {
    media: String,
    port: u16,
    protocol: String,
    formats: Vec<String>,
}

fn parse_media_line(line: usize, text: &str) -> Result<MediaLine, SdpError> {
    let bad = |problem| SdpError::BadLine { line, problem, text: quote(&format!("m={text}")) };
    if !text.bytes().all(|byte| byte.is_ascii_graphic() || byte == b' ') {
        return Err(bad("the m= line has characters other than printable ASCII"));
    }
    let mut words = text.split_whitespace();
    let (Some(media), Some(port), Some(protocol)) = (words.next(), words.next(), words.next()) else {
        return Err(bad("the m= line needs a media, a port, a protocol and formats"));
    };
    // An answer repeats the offer's media and protocol, so what the grammar does not allow
    // (RFC 8866 §5.14: a registered media type; a protocol of "/"-separated tokens) is refused
    // here rather than written back where no parser reads it.
    if !["audio", "video", "text", "application", "message", "image"].contains(&media) {
        return Err(bad("the m= line's media is not audio, video, text, application, message or image"));
    }
    if protocol.split('/').any(str::is_empty) {
        return Err(bad("the m= line's protocol has an empty part between its slashes"));
    }
    let port = port.split('/').next().and_then(parse_number::<u16>).ok_or_else(|| bad("the m= line's port is not a number from 0 to 65535"))?;
    let formats: Vec<String> = words.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(bad("the m= line has no formats"));
    }
    Ok(MediaLine { media: media.to_owned(), port, protocol: protocol.to_owned(), formats })
}

fn parse_section(index: usize, raw: &RawSection<'_>, session: &[Attribute<'_>]) -> Result<RemoteSection, SdpError> {
    let m_line = parse_media_line(raw.line, raw.media_line)?;
    let mid = match find(&raw.attributes, "mid").and_then(|attribute| attribute.value) {
        Some(mid) if is_valid_mid(mid) => mid.to_owned(),
        Some(mid) => return Err(SdpError::BadMid { mid: quote(mid) }),
        None => return Err(SdpError::MissingMid { number: index + 1, media: m_line.media }),
    };
    // The m-section's own direction, else the session's, else sendrecv (RFC 3264 §5.1).
    let direction_of = |attributes: &[Attribute<'_>]| attributes.iter().rev().find_map(|attribute| Direction::from_attribute(attribute.key));
    let direction = direction_of(&raw.attributes).or_else(|| direction_of(session)).unwrap_or(Direction::SendRecv);
    let mut rtp_formats = Vec::new();
    if m_line.protocol.to_ascii_uppercase().contains("RTP/") {
        for format in &m_line.formats {
            let payload_type = parse_payload_type(format).ok_or_else(|| SdpError::BadLine {
                line: raw.line,
                problem: "an RTP payload type on the m= line is not a number from 0 to 127",
                text: quote(&format!("m={}", raw.media_line)),
            })?;
            rtp_formats.push(RtpFormat::new(payload_type));
        }
    }
    let mut extensions = HeaderExtensionIds::default();
    let mut extension_ids_seen = Vec::new();
    for attribute in &raw.attributes {
        match attribute.key {
            "rtpmap" => apply_rtpmap(attribute, &mut rtp_formats)?,
            "fmtp" => {
                let (payload_type, parameters) = split_payload_type(attribute)?;
                for format in rtp_formats.iter_mut().filter(|format| format.payload_type == payload_type) {
                    format.parameters = parameters.trim().to_owned();
                }
            }
            "rtcp-fb" => {
                let (target, value) = attribute
                    .value
                    .and_then(|value| value.split_once(' '))
                    .ok_or_else(|| attribute.bad("a=rtcp-fb needs a payload type and a feedback type"))?;
                let payload_type = match target {
                    "*" => None,
                    number => Some(parse_payload_type(number).ok_or_else(|| attribute.bad("the payload type is not a number from 0 to 127"))?),
                };
                for format in rtp_formats.iter_mut().filter(|format| payload_type.is_none_or(|wanted| format.payload_type == wanted)) {
                    format.feedback.add(value);
                }
            }
            "extmap" => {
                let (id, uri) = parse_extmap(attribute)?;
                if extension_ids_seen.contains(&id) {
                    return Err(attribute.bad("two a=extmap lines have the same id"));
                }
                extension_ids_seen.push(id);
                if let Ok(id) = u8::try_from(id) {
                    extensions.record(id, uri);
                }
            }
            _ => {}
        }
    }
    Ok(RemoteSection {
        mid,
        media: m_line.media,
        port: m_line.port,
        protocol: m_line.protocol,
        formats: m_line.formats,
        bundle_only: find(&raw.attributes, "bundle-only").is_some(),
        direction,
        rtcp_mux: find(&raw.attributes, "rtcp-mux").is_some(),
        rtp_formats,
        extensions,
    })
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`
fn apply_rtpmap(attribute: &Attribute<'_>, formats: &mut [RtpFormat]) -> Result<(), SdpError> {
    let (payload_type, mapping) = split_payload_type(attribute)?;
    let mut parts = mapping.trim().split('/');
    let encoding = parts.next().filter(|encoding| !encoding.is_empty()).ok_or_else(|| attribute.bad("a=rtpmap has no encoding name"))?;
    let clock_rate = parts.next().and_then(parse_number::<u32>).ok_or_else(|| attribute.bad("a=rtpmap's clock rate is not a number up to 4294967295"))?;
    let channels = match parts.next() {
        Some(channels) => Some(parse_number::<u16>(channels).ok_or_else(|| attribute.bad("a=rtpmap's channel count is not a number up to 65535"))?),
        None => None,
    };
    if parts.next().is_some() {
        return Err(attribute.bad("a=rtpmap has more than encoding/clock rate/channels"));
    }
    if let Some(format) = formats.iter_mut().find(|format| format.payload_type == payload_type) {
        format.encoding = encoding.to_owned();
        format.clock_rate = clock_rate;
        format.channels = channels;
    }
    Ok(())
}

/// `<payload type> <rest>` of `a=rtpmap` and `a=fmtp`.
fn split_payload_type<'a>(attribute: &Attribute<'a>) -> Result<(u8, &'a str), SdpError> {
    let value = attribute.value.ok_or_else(|| attribute.bad("the attribute has no payload type"))?;
    let (number, rest) = value.split_once(' ').unwrap_or((value, ""));
    let payload_type = parse_payload_type(number).ok_or_else(|| attribute.bad("the payload type is not a number from 0 to 127"))?;
    Ok((payload_type, rest))
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]`; ids go up to 255 in the two-byte form.
fn parse_extmap<'a>(attribute: &Attribute<'a>) -> Result<(u16, &'a str), SdpError> {
    let value = attribute.value.ok_or_else(|| attribute.bad("a=extmap needs an id and a URI"))?;
    let mut words = value.split_whitespace();
    let (Some(id), Some(uri)) = (words.next(), words.next()) else {
        return Err(attribute.bad("a=extmap needs an id and a URI"));
    };
    let id = id
        .split('/')
        .next()
        .and_then(parse_number::<u16>)
        .filter(|id| (1..=255).contains(id))
        .ok_or_else(|| attribute.bad("the a=extmap id is not a number from 1 to 255"))?;
    Ok((id, uri))
}

/// The first `a=group:BUNDLE`'s mids (a description has at most one in practice).
fn bundle_group(session: &[Attribute<'_>]) -> Vec<String> {
    session
        .iter()
        .filter(|attribute| attribute.key == "group")
        .filter_map(|attribute| attribute.value)
        .find_map(|value| {
            let mut words = value.split_whitespace();
            let semantics = words.next()?;
            semantics.eq_ignore_ascii_case("BUNDLE").then(|| words.map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

/// The video m-sections Lookout sends in: in an offer, the first it can send H.264 in
/// (failing that, why the first cannot be used); in an answer to Lookout's offer, every one, as
/// each is a track Lookout offered (failing that, why one was refused).
fn select_videos(sections: &[RemoteSection], bundle: &[String], kind: RemoteKind) -> Result<(usize, SelectedVideo, Vec<SelectedVideo>), SdpError> {
    let mut first_problem = None;
    let mut selected = Vec::new();
    for (index, section) in sections.iter().enumerate().filter(|(_, section)| section.media == "video") {
        let h264 = section.check_servable(bundle, kind).and_then(|()| section.h264().ok_or(SdpError::NoH264 { kind }));
        // Lookout offers video in H.264 alone: a browser that turns it down cannot decode it.
        let h264 = h264.map_err(|problem| match (problem, kind) {
            (SdpError::Disabled { .. }, RemoteKind::Answer) => SdpError::H264Rejected,
            (problem, _) => problem,
        });
        match (h264, kind) {
            (Ok(h264), _) => selected.push((index, SelectedVideo { mid: section.mid.clone(), h264, extensions: section.extensions })),
            (Err(problem), RemoteKind::Answer) => return Err(problem),
            (Err(problem), RemoteKind::Offer) => {
                first_problem.get_or_insert(problem);
            }
        }
        if kind == RemoteKind::Offer && !selected.is_empty() {
            break;
        }
    }
    let mut selected = selected.into_iter();
    match selected.next() {
        Some((index, first)) => Ok((index, first, selected.map(|(_, video)| video).collect())),
        None => Err(first_problem.unwrap_or(SdpError::NoVideo { kind })),
    }
}

/// The ICE and DTLS parameters of the transport.
struct TransportParameters {
    ufrag: String,
    password: String,
    fingerprint: String,
    setup: DtlsSetup,
}

impl TransportParameters {
    /// From the m-section that describes the transport, each falling back to the session level.
    fn read(section: &[Attribute<'_>], session: &[Attribute<'_>], kind: RemoteKind) -> Result<Self, SdpError> {
        let value =
            |key| find(section, key).or_else(|| find(session, key)).and_then(|attribute| attribute.value).map(str::trim).filter(|value| !value.is_empty());
        let ufrag = value("ice-ufrag").ok_or(SdpError::MissingUfrag { kind })?;
        if !is_ice_string(ufrag, 4) {
            return Err(SdpError::BadUfrag);
        }
        let password = value("ice-pwd").ok_or(SdpError::MissingPassword { kind })?;
        if !is_ice_string(password, 22) {
            return Err(SdpError::BadPassword);
        }
        let setup = match value("setup").ok_or(SdpError::MissingSetup { kind })? {
            "actpass" => DtlsSetup::ActPass,
            "active" => DtlsSetup::Active,
            "passive" => DtlsSetup::Passive,
            other => return Err(SdpError::BadSetup { value: quote(other) }),
        };
        match (kind, setup) {
            (RemoteKind::Offer, DtlsSetup::ActPass | DtlsSetup::Active) | (RemoteKind::Answer, DtlsSetup::Active | DtlsSetup::Passive) => {}
            // Lookout answers as the DTLS server; an offerer must leave it that role.
            (RemoteKind::Offer, _) => return Err(SdpError::WrongSetup { kind, setup, expected: "an offer must say actpass or active (Lookout answers as the DTLS server)" }),
            (RemoteKind::Answer, _) => return Err(SdpError::WrongSetup { kind, setup, expected: "an answer must choose a role, active or passive" }),
        }
        let fingerprint = sha256_fingerprint(section, kind).or_else(|error| match error {
            SdpError::MissingFingerprint { .. } => sha256_fingerprint(session, kind),
            other => Err(other),
        })?;
        Ok(Self { ufrag: ufrag.to_owned(), password: password.to_owned(), fingerprint, setup })
    }
}

/// The sha-256 one of the `a=fingerprint` lines (a client may give several algorithms).
fn sha256_fingerprint(attributes: &[Attribute<'_>], kind: RemoteKind) -> Result<String, SdpError> {
    let mut other_algorithm = None;
    for value in attributes.iter().filter(|attribute| attribute.key == "fingerprint").filter_map(|attribute| attribute.value) {
        let (algorithm, hex) = value.trim().split_once(' ').unwrap_or((value, ""));
        if algorithm.eq_ignore_ascii_case("sha-256") {
            let hex = hex.trim();
            return normalize_sha256(hex).ok_or_else(|| SdpError::BadFingerprint { text: quote(hex) });
        }
        other_algorithm.get_or_insert(algorithm);
    }
    match other_algorithm {
        Some(algorithm) => Err(SdpError::UnsupportedFingerprint { algorithm: quote(&algorithm.to_ascii_lowercase()) }),
        None => Err(SdpError::MissingFingerprint { kind }),
    }
}

/// `ab:cd:…` (32 bytes) in upper case, or None if it is not one.
fn normalize_sha256(hex: &str) -> Option<String> {
    let bytes: Vec<&str> = hex.split(':').collect();
    let valid = bytes.len() == 32 && bytes.iter().all(|byte| parse_hex_byte(byte.as_bytes()).is_some());
    valid.then(|| hex.to_ascii_uppercase())
}

/// The candidates of every m-section (and of the session, where some put them).
fn candidates(raw: &RawDescription<'_>) -> (Vec<String>, bool) {
    let attributes = || raw.session.iter().chain(raw.sections.iter().flat_map(|section| section.attributes.iter()));
    let mut candidates: Vec<String> = Vec::new();
    for value in attributes().filter(|attribute| attribute.key == "candidate").filter_map(|attribute| attribute.value) {
        let candidate = format!("candidate:{}", value.trim());
        if candidates.len() < MAX_CANDIDATES && !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    }
    let end_of_candidates = attributes().any(|attribute| attribute.key == "end-of-candidates");
    (candidates, end_of_candidates)
}

/// A decimal number: digits only (Rust's parsers would also take a leading `+`).
fn parse_number<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_payload_type(text: &str) -> Option<u8> {
    parse_number::<u8>(text).filter(|payload_type| *payload_type <= 127)
}

fn parse_hex_byte(digits: &[u8]) -> Option<u8> {
    match digits {
        [high, low] => Some((hex_digit(*high)? << 4) | hex_digit(*low)?),
        _ => None,
    }
}

fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

/// RFC 6184's profile-level-id: three bytes, written as six hex digits.
fn parse_profile_level_id(text: &str) -> Option<[u8; 3]> {
    let mut bytes = [0u8; 3];
    let mut digits = text.as_bytes().chunks(2);
    for byte in &mut bytes {
        *byte = parse_hex_byte(digits.next()?)?;
    }
    digits.next().is_none().then_some(bytes)
}

/// A mid is echoed in Lookout's description and sent in RTP: a short token (RFC 5888, 8843).
fn is_valid_mid(mid: &str) -> bool {
    let token_character = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&byte);
    (1..=MAX_MID_LENGTH).contains(&mid.len()) && mid.bytes().all(token_character)
}

/// ice-char (RFC 8839 §5.4): letters, digits, `+` and `/`; at most 256 of them.
fn is_ice_string(text: &str, minimum_length: usize) -> bool {
    (minimum_length..=256).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
}

/// Up to `QUOTED_CHARACTERS` of a remote's text, for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARACTERS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

// ---- Writing: Lookout's offers and answers as rtc-sdp's `SessionDescription`; what goes in
// each m-section is decided here, the lines and their order are rtc-sdp's (`marshal`). ----

/// RFC 8445 §5.1.2.1's type preference of a host candidate on UDP.
const UDP_HOST_TYPE_PREFERENCE: u32 = 126;
/// ICE-TCP host candidates rank below UDP, host and reflexive alike: a viewer uses TCP only
/// where UDP does not get through.
const TCP_HOST_TYPE_PREFERENCE: u32 = 80;

struct Writer<'a> {
    description: SessionDescription,
    local: &'a LocalParameters,
    setup: DtlsSetup,
    /// Candidates go in the first m-section Lookout serves only: the bundle's transport is the
    /// first m-section's, so any others would just repeat them.
    candidates_written: bool,
}

impl<'a> Writer<'a> {
    /// The session's lines: its BUNDLE group, and ICE-lite unless Lookout gathered candidates
    /// through its own ICE servers.
    fn new(local: &'a LocalParameters, setup: DtlsSetup, bundle: &[&str]) -> Self {
        let mut description = SessionDescription {
            version: 0,
            origin: Origin {
                username: "-".to_owned(),
                session_id: u64::from(rand::random::<u32>()),
                session_version: 1,
                network_type: "IN".to_owned(),
                address_type: "IP4".to_owned(),
                unicast_address: "127.0.0.1".to_owned(),
            },
            session_name: "-".to_owned(),
            time_descriptions: vec![TimeDescription { timing: Timing { start_time: 0, stop_time: 0 }, repeat_times: Vec::new() }],
            ..SessionDescription::default()
        };
        if !bundle.is_empty() {
            description.attributes.push(value("group", format!("BUNDLE {}", bundle.join(" "))));
        }
        if local.gathered.is_empty() {
            description.attributes.push(property("ice-lite"));
        }
        Self { description, local, setup, candidates_written: false }
    }

    /// The description's text, CRLF line ends.
    fn finish(self) -> String {
        self.description.marshal()
    }

    fn video(&mut self, local: &LocalVideo, video: &SelectedVideo) {
        let h264 = &video.h264;
        let formats = std::iter::once(h264.payload_type).chain(h264.rtx_payload_type).map(|format| format.to_string()).collect();
        let mut media = self.media_start("video", formats, &video.mid);
        self.sending(&mut media, video.extensions, &local.track_id);
        let attributes = &mut media.attributes;
        attributes.push(value("rtpmap", format!("{} H264/{VIDEO_CLOCK_RATE}", h264.payload_type)));
        attributes.extend(h264.feedback.values().map(|feedback| value("rtcp-fb", format!("{} {feedback}", h264.payload_type))));
        attributes.push(value("fmtp", format!("{} {}", h264.payload_type, h264.fmtp())));
        if let Some(rtx) = h264.rtx_payload_type {
            attributes.push(value("rtpmap", format!("{rtx} rtx/{VIDEO_CLOCK_RATE}")));
            attributes.push(value("fmtp", format!("{rtx} apt={}", h264.payload_type)));
            attributes.push(value("ssrc-group", format!("FID {} {}", local.ssrc, local.rtx_ssrc)));
        }
        self.ssrc(&mut media, local.ssrc, &local.track_id);
        if h264.rtx_payload_type.is_some() {
            self.ssrc(&mut media, local.rtx_ssrc, &local.track_id);
        }
        self.description.media_descriptions.push(media);
    }

    fn audio(&mut self, local: &LocalAudio, audio: &SelectedAudio) {
        let payload_type = audio.payload_type;
        let mut media = self.media_start("audio", vec![payload_type.to_string()], &audio.mid);
        // Playout delay is a video extension.
        let extensions = HeaderExtensionIds { playout_delay: None, ..audio.extensions };
        self.sending(&mut media, extensions, &local.track_id);
        let mapping = match local.codec {
            AudioCodec::Pcmu => "PCMU/8000",
            AudioCodec::Pcma => "PCMA/8000",
            AudioCodec::Opus => "opus/48000/2",
        };
        media.attributes.push(value("rtpmap", format!("{payload_type} {mapping}")));
        if audio.transport_cc {
            media.attributes.push(value("rtcp-fb", format!("{payload_type} transport-cc")));
        }
        if local.codec == AudioCodec::Opus {
            media.attributes.push(value("fmtp", format!("{payload_type} {OPUS_FMTP}")));
        }
        self.ssrc(&mut media, local.ssrc, &local.track_id);
        self.description.media_descriptions.push(media);
    }

    /// Port 0 keeps the m-section's place (RFC 3264 §6); its first format keeps the line valid,
    /// with that format's rtpmap when it has one: webrtc-rs refuses an answer whose dynamic
    /// payload type it cannot map.
    fn rejected(&mut self, section: &RemoteSection) {
        let format = section.formats.first().cloned().unwrap_or_default();
        let protos = section.protocol.split('/').map(str::to_owned).collect();
        let mut media = media_description(&section.media, 0, protos, vec![format.clone()], SocketAddr::from(([0, 0, 0, 0], 0)));
        media.attributes.push(value("mid", &section.mid));
        let mapped = section.rtp_formats.iter().find(|mapped| mapped.payload_type.to_string() == format && !mapped.encoding.is_empty());
        if let Some(mapped) = mapped {
            let channels = mapped.channels.map(|channels| format!("/{channels}")).unwrap_or_default();
            media.attributes.push(value("rtpmap", format!("{format} {}/{}{channels}", mapped.encoding, mapped.clock_rate)));
        }
        self.description.media_descriptions.push(media);
    }

    /// The m= line and the transport's lines that every m-section Lookout serves repeats.
    fn media_start(&mut self, kind: &str, formats: Vec<String>, mid: &str) -> MediaDescription {
        let local = self.local;
        let default_address = local.candidates.first().copied().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9)));
        let protos = MEDIA_PROTOCOL.split('/').map(str::to_owned).collect();
        let mut media = media_description(kind, default_address.port(), protos, formats, default_address);
        let attributes = &mut media.attributes;
        attributes.push(value("mid", mid));
        attributes.push(value("ice-ufrag", &local.ufrag));
        attributes.push(value("ice-pwd", &local.password));
        attributes.push(value("fingerprint", format!("sha-256 {}", local.fingerprint)));
        attributes.push(value("setup", self.setup));
        if !self.candidates_written {
            self.candidates_written = true;
            attributes.extend(host_candidates(local).into_iter().map(|candidate| value("candidate", candidate)));
            attributes.extend(local.gathered.iter().map(|gathered| match gathered.split_once(':') {
                Some((key, rest)) => value(key, rest),
                None => property(gathered),
            }));
            // Lookout knows all its candidates up front: it never trickles.
            attributes.push(property("end-of-candidates"));
        }
        media
    }

    fn sending(&self, media: &mut MediaDescription, extensions: HeaderExtensionIds, track_id: &str) {
        media.attributes.extend(extensions.sent().map(|(id, uri)| value("extmap", format!("{id} {uri}"))));
        media.attributes.push(property("sendonly"));
        media.attributes.push(value("msid", format!("{} {track_id}", self.local.stream_id)));
        media.attributes.push(property("rtcp-mux"));
    }

    fn ssrc(&self, media: &mut MediaDescription, ssrc: u32, track_id: &str) {
        media.attributes.push(value("ssrc", format!("{ssrc} cname:{}", self.local.cname)));
        media.attributes.push(value("ssrc", format!("{ssrc} msid:{} {track_id}", self.local.stream_id)));
    }
}

/// Lookout's host candidates (`candidate:` values): UDP on every address, then passive TCP on
/// the same ones where ICE-TCP is on. Candidates share a foundation when they share an address
/// and a transport (RFC 8445 §5.1.1.3).
fn host_candidates(local: &LocalParameters) -> Vec<String> {
    let mut foundations: Vec<(IpAddr, &str)> = Vec::new();
    let tcp = local.candidates.iter().filter(|_| local.passive_tcp).map(|address| ("tcp", address));
    let all = local.candidates.iter().map(|address| ("udp", address)).chain(tcp);
    all.enumerate()
        .map(|(index, (transport, candidate))| {
            let key = (candidate.ip(), transport);
            let foundation = match foundations.iter().position(|known| *known == key) {
                Some(position) => position + 1,
                None => {
                    foundations.push(key);
                    foundations.len()
                }
            };
            let (ip, port) = (candidate.ip(), candidate.port());
            match transport {
                "udp" => format!("{foundation} 1 udp {} {ip} {port} typ host", host_candidate_priority(UDP_HOST_TYPE_PREFERENCE, index)),
                _ => format!("{foundation} 1 tcp {} {ip} {port} typ host tcptype passive", host_candidate_priority(TCP_HOST_TYPE_PREFERENCE, index)),
            }
        })
        .collect()
}

/// RFC 8445 §5.1.2.1: the type preference, then a local preference that falls in the order
/// the candidates are given, then component 1.
fn host_candidate_priority(type_preference: u32, index: usize) -> u32 {
    let local_preference = 65_535u32.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
    (type_preference << 24) | (local_preference << 8) | 255
}

/// An m-section with its m= and c= lines and no attributes yet.
fn media_description(kind: &str, port: u16, protos: Vec<String>, formats: Vec<String>, connection: SocketAddr) -> MediaDescription {
    MediaDescription {
        media_name: MediaName { media: kind.to_owned(), port: RangedPort { value: port as isize, range: None }, protos, formats },
        connection_information: Some(ConnectionInformation {
            network_type: "IN".to_owned(),
            address_type: if connection.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
            address: Some(Address { address: connection.ip().to_string(), ttl: None, range: None }),
        }),
        ..MediaDescription::default()
    }
}

/// `a=key:value`
fn value(key: &str, value: impl Display) -> SdpAttribute {
    SdpAttribute::new(key.to_owned(), Some(value.to_string()))
}

/// `a=key`
fn property(key: &str) -> SdpAttribute {
    SdpAttribute::new(key.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// What Chromium 120+ offers for a WHEP viewer (`addTransceiver('video'|'audio',
    /// {direction: 'recvonly'})`), once its candidates are gathered.
    const CHROMIUM_OFFER: &str = r"
v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=video 53421 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 100 101 112 113 116 117 118
c=IN IP4 192.168.1.10
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.1.10 53421 typ host generation 0 network-id 1 network-cost 10
a=candidate:3894328529 1 udp 2122262783 2001:db8::10 53422 typ host generation 0 network-id 2 network-cost 10
a=candidate:2999745851 1 udp 2122129151 2b1d5ea7-2c8e-4b63-a8b5-93e2f1e21c3f.local 54400 typ host generation 0 network-id 3
a=ice-ufrag:hW7k
a=ice-pwd:JQ3b0sK1pX0vzv5x8Cz2+fYq
a=ice-options:trickle
a=fingerprint:sha-256 12:c1:2a:74:d6:70:d2:b8:1e:2c:a9:76:44:ac:b2:76:f4:93:a5:ce:f4:42:2f:fe:00:6d:47:34:4a:88:15:9f
a=setup:actpass
a=mid:0
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=104
a=rtpmap:106 H264/90000
a=rtcp-fb:106 goog-remb
a=rtcp-fb:106 transport-cc
a=rtcp-fb:106 ccm fir
a=rtcp-fb:106 nack
a=rtcp-fb:106 nack pli
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=106
a=rtpmap:108 H264/90000
a=rtcp-fb:108 goog-remb
a=rtcp-fb:108 transport-cc
a=rtcp-fb:108 ccm fir
a=rtcp-fb:108 nack
a=rtcp-fb:108 nack pli
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=rtpmap:127 H264/90000
a=rtcp-fb:127 goog-remb
a=rtcp-fb:127 transport-cc
a=rtcp-fb:127 ccm fir
a=rtcp-fb:127 nack
a=rtcp-fb:127 nack pli
a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:125 rtx/90000
a=fmtp:125 apt=127
a=rtpmap:39 H264/90000
a=rtcp-fb:39 goog-remb
a=rtcp-fb:39 transport-cc
a=rtcp-fb:39 ccm fir
a=rtcp-fb:39 nack
a=rtcp-fb:39 nack pli
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
a=rtpmap:45 AV1/90000
a=rtcp-fb:45 goog-remb
a=rtcp-fb:45 transport-cc
a=rtcp-fb:45 ccm fir
a=rtcp-fb:45 nack
a=rtcp-fb:45 nack pli
a=fmtp:45 level-idx=5;profile=0;tier=0
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 VP9/90000
a=rtcp-fb:100 goog-remb
a=rtcp-fb:100 transport-cc
a=rtcp-fb:100 ccm fir
a=rtcp-fb:100 nack
a=rtcp-fb:100 nack pli
a=fmtp:100 profile-id=2
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:112 H264/90000
a=rtcp-fb:112 goog-remb
a=rtcp-fb:112 transport-cc
a=rtcp-fb:112 ccm fir
a=rtcp-fb:112 nack
a=rtcp-fb:112 nack pli
a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f
a=rtpmap:113 rtx/90000
a=fmtp:113 apt=112
a=rtpmap:116 red/90000
a=rtpmap:117 rtx/90000
a=fmtp:117 apt=116
a=rtpmap:118 ulpfec/90000
m=audio 53421 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 192.168.1.10
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.1.10 53421 typ host generation 0 network-id 1 network-cost 10
a=ice-ufrag:hW7k
a=ice-pwd:JQ3b0sK1pX0vzv5x8Cz2+fYq
a=ice-options:trickle
a=fingerprint:sha-256 12:c1:2a:74:d6:70:d2:b8:1e:2c:a9:76:44:ac:b2:76:f4:93:a5:ce:f4:42:2f:fe:00:6d:47:34:4a:88:15:9f
a=setup:actpass
a=mid:1
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
";

    /// What aiortc 1.x offers with a video and an audio transceiver, both recvonly: its
    /// attributes in its own order, three fingerprints, a server-reflexive candidate.
    const AIORTC_OFFER: &str = r"
v=0
o=- 3912839011 3912839011 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=video 40977 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102
c=IN IP4 192.168.1.20
a=recvonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=mid:0
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:2756417357 cname:4c7c6f0e-1f5a-4e4b-9e1e-3b2b3e9cf4a1
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 goog-remb
a=rtpmap:98 rtx/90000
a=fmtp:98 apt=97
a=rtpmap:99 H264/90000
a=rtcp-fb:99 nack
a=rtcp-fb:99 nack pli
a=rtcp-fb:99 goog-remb
a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:100 rtx/90000
a=fmtp:100 apt=99
a=rtpmap:101 H264/90000
a=rtcp-fb:101 nack
a=rtcp-fb:101 nack pli
a=rtcp-fb:101 goog-remb
a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:102 rtx/90000
a=fmtp:102 apt=101
a=candidate:5e3b0b2a7f1c3d4e5f6a7b8c9d0e1f2a 1 udp 2130706431 192.168.1.20 40977 typ host
a=candidate:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d 1 udp 1694498815 203.0.113.7 40977 typ srflx raddr 192.168.1.20 rport 40977
a=end-of-candidates
a=ice-ufrag:ZpPy
a=ice-pwd:kT9fNlNcfXEhDGjPj6aXKZ
a=fingerprint:sha-256 67:55:17:E9:0C:F0:EE:50:01:DD:FC:CA:EF:83:CE:36:B5:70:74:23:D9:57:04:D8:92:78:33:B9:CD:77:B0:56
a=fingerprint:sha-384 46:14:EF:AC:C6:6A:F7:CD:FC:36:EC:FE:A8:01:88:E7:A2:57:8A:69:FF:70:27:89:CA:78:93:1E:0D:2C:BA:F9:F9:7E:FC:21:22:FA:8F:DB:BA:CD:98:C0:30:38:01:53
a=fingerprint:sha-512 6F:FC:0E:AF:D6:E3:E6:16:28:14:45:E7:03:38:01:50:01:54:C7:90:78:57:8D:A8:5C:86:2D:8E:A5:73:6E:BB:B2:80:00:82:DE:A9:73:92:56:CE:26:A4:0C:64:35:BF:67:78:E9:80:57:CF:99:0A:06:41:25:8F:4D:79:E6:12
a=setup:actpass
m=audio 40977 UDP/TLS/RTP/SAVPF 96 0 8
c=IN IP4 192.168.1.20
a=recvonly
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:1
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:1308211405 cname:4c7c6f0e-1f5a-4e4b-9e1e-3b2b3e9cf4a1
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=candidate:5e3b0b2a7f1c3d4e5f6a7b8c9d0e1f2a 1 udp 2130706431 192.168.1.20 40977 typ host
a=candidate:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d 1 udp 1694498815 203.0.113.7 40977 typ srflx raddr 192.168.1.20 rport 40977
a=end-of-candidates
a=ice-ufrag:ZpPy
a=ice-pwd:kT9fNlNcfXEhDGjPj6aXKZ
a=fingerprint:sha-256 67:55:17:E9:0C:F0:EE:50:01:DD:FC:CA:EF:83:CE:36:B5:70:74:23:D9:57:04:D8:92:78:33:B9:CD:77:B0:56
a=fingerprint:sha-384 46:14:EF:AC:C6:6A:F7:CD:FC:36:EC:FE:A8:01:88:E7:A2:57:8A:69:FF:70:27:89:CA:78:93:1E:0D:2C:BA:F9:F9:7E:FC:21:22:FA:8F:DB:BA:CD:98:C0:30:38:01:53
a=fingerprint:sha-512 6F:FC:0E:AF:D6:E3:E6:16:28:14:45:E7:03:38:01:50:01:54:C7:90:78:57:8D:A8:5C:86:2D:8E:A5:73:6E:BB:B2:80:00:82:DE:A9:73:92:56:CE:26:A4:0C:64:35:BF:67:78:E9:80:57:CF:99:0A:06:41:25:8F:4D:79:E6:12
a=setup:actpass
";

    /// Chromium's answer to Lookout's offer of H.264 and Opus: it keeps Lookout's payload
    /// types and extension ids, and takes the DTLS client's role.
    const CHROMIUM_ANSWER: &str = r"
v=0
o=- 6733428193456012345 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS
m=video 9 UDP/TLS/RTP/SAVPF 102 103
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.1.10 61034 typ host generation 0 network-id 1 network-cost 10
a=ice-ufrag:Qv5m
a=ice-pwd:7dYvL0dKx3Xl+G9mM8c1n0Zp
a=ice-options:trickle
a=fingerprint:sha-256 E2:68:1C:C9:BD:51:36:0A:3B:CA:8A:FB:B8:60:31:FA:49:10:11:65:C7:4D:06:1F:3E:03:D2:F9:32:E6:3F:48
a=setup:active
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=recvonly
a=rtcp-mux
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Qv5m
a=ice-pwd:7dYvL0dKx3Xl+G9mM8c1n0Zp
a=ice-options:trickle
a=fingerprint:sha-256 E2:68:1C:C9:BD:51:36:0A:3B:CA:8A:FB:B8:60:31:FA:49:10:11:65:C7:4D:06:1F:3E:03:D2:F9:32:E6:3F:48
a=setup:active
a=mid:1
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=recvonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
";

    /// The smallest offer Lookout accepts, for the tests that break one thing in it.
    const MINIMAL_OFFER: &str = r"
v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=mid:0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 12:C1:2A:74:D6:70:D2:B8:1E:2C:A9:76:44:AC:B2:76:F4:93:A5:CE:F4:42:2F:FE:00:6D:47:34:4A:88:15:9F
a=setup:actpass
a=recvonly
a=rtcp-mux
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=64001f
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
";

    const MINIMAL_OFFER_FINGERPRINT: &str = "12:C1:2A:74:D6:70:D2:B8:1E:2C:A9:76:44:AC:B2:76:F4:93:A5:CE:F4:42:2F:FE:00:6D:47:34:4A:88:15:9F";

    /// As a browser sends it: CRLF line ends.
    fn crlf(fixture: &str) -> String {
        fixture.trim_start().replace('\n', "\r\n")
    }

    fn local(audio: Option<AudioCodec>) -> LocalParameters {
        LocalParameters {
            ufrag: "LkUf".to_owned(),
            password: "LookoutPasswordOf32Characters000".to_owned(),
            fingerprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89".to_owned(),
            candidates: vec!["192.0.2.1:8189".parse().unwrap(), "[2001:db8::1]:8189".parse().unwrap(), "192.0.2.1:8190".parse().unwrap()],
            passive_tcp: false,
            gathered: Vec::new(),
            cname: "lookout".to_owned(),
            stream_id: "front-door".to_owned(),
            videos: vec![LocalVideo { ssrc: 1111, rtx_ssrc: 2222, track_id: "video".to_owned() }],
            audio: audio.map(|codec| LocalAudio { codec, ssrc: 3333, track_id: "audio".to_owned() }),
        }
    }

    /// Lookout's own description turned into a viewer's: full ICE, receiving, in the DTLS
    /// role `setup`. parse_remote rightly refuses the original, which describes a sender.
    fn as_if_from_viewer(description: &str, setup: DtlsSetup) -> String {
        description
            .replace("a=ice-lite\r\n", "")
            .replace("a=sendonly", "a=recvonly")
            .replace("a=setup:passive", &format!("a=setup:{setup}"))
            .replace("a=setup:actpass", &format!("a=setup:{setup}"))
    }

    fn rtc_sdp(description: &str) -> rtc::sdp::SessionDescription {
        rtc::sdp::SessionDescription::unmarshal(&mut Cursor::new(description.as_bytes())).expect("rtc-sdp parses it")
    }

    fn offer_error(description: &str) -> SdpError {
        parse_remote(description, RemoteKind::Offer).expect_err("the offer is refused")
    }

    #[test]
    fn chromium_offer_gives_constrained_baseline_h264_with_its_rtx_feedback_and_extension_ids() {
        let offer = parse_remote(&crlf(CHROMIUM_OFFER), RemoteKind::Offer).unwrap();
        assert_eq!((offer.ufrag.as_str(), offer.password.as_str()), ("hW7k", "JQ3b0sK1pX0vzv5x8Cz2+fYq"));
        assert_eq!(offer.fingerprint, "12:C1:2A:74:D6:70:D2:B8:1E:2C:A9:76:44:AC:B2:76:F4:93:A5:CE:F4:42:2F:FE:00:6D:47:34:4A:88:15:9F");
        assert_eq!(offer.setup, DtlsSetup::ActPass);
        assert_eq!(offer.bundle, ["0", "1"]);
        assert_eq!(offer.sections.len(), 2);
        assert_eq!(offer.sections[1].direction, Direction::RecvOnly);
        // 102 is Baseline and 104, 108 are packetization-mode 0: 106 is the first 42e0 with mode 1.
        let video = &offer.video;
        assert_eq!(video.mid, "0");
        assert_eq!(video.h264.payload_type, 106);
        assert_eq!(video.h264.rtx_payload_type, Some(107));
        assert_eq!(video.h264.profile_level_id, Some([0x42, 0xe0, 0x1f]));
        assert!(video.h264.level_asymmetry_allowed);
        assert_eq!(video.h264.feedback, RtcpFeedback { nack: true, nack_pli: true, ccm_fir: true, transport_cc: true, goog_remb: true });
        assert_eq!(video.extensions, HeaderExtensionIds { transport_cc: Some(3), playout_delay: Some(5), abs_send_time: Some(2), sdes_mid: Some(4) });
        // The same candidate in both m-sections is kept once; the mDNS one is kept as it is.
        assert_eq!(offer.candidates.len(), 3);
        assert!(offer.candidates[0].starts_with("candidate:1467250027 1 udp 2122260223 192.168.1.10 53421 typ host"));
        assert!(!offer.end_of_candidates);
    }

    #[test]
    fn chromium_offer_gives_each_audio_codec_its_payload_type() {
        let offer = parse_remote(&crlf(CHROMIUM_OFFER), RemoteKind::Offer).unwrap();
        let opus = offer.audio(AudioCodec::Opus).unwrap();
        assert_eq!(
            opus,
            SelectedAudio {
                mid: "1".to_owned(),
                payload_type: 111,
                transport_cc: true,
                extensions: HeaderExtensionIds { transport_cc: Some(3), playout_delay: None, abs_send_time: Some(2), sdes_mid: Some(4) }
            }
        );
        assert_eq!(offer.audio(AudioCodec::Pcmu).map(|audio| (audio.payload_type, audio.transport_cc)), Some((0, false)));
        assert_eq!(offer.audio(AudioCodec::Pcma).map(|audio| audio.payload_type), Some(8));
    }

    #[test]
    fn aiortc_offer_gives_h264_nack_and_remb_and_picks_the_sha_256_fingerprint() {
        let offer = parse_remote(&crlf(AIORTC_OFFER), RemoteKind::Offer).unwrap();
        assert_eq!((offer.ufrag.as_str(), offer.password.as_str()), ("ZpPy", "kT9fNlNcfXEhDGjPj6aXKZ"));
        assert_eq!(offer.fingerprint, "67:55:17:E9:0C:F0:EE:50:01:DD:FC:CA:EF:83:CE:36:B5:70:74:23:D9:57:04:D8:92:78:33:B9:CD:77:B0:56");
        assert_eq!(offer.video.h264.payload_type, 101);
        assert_eq!(offer.video.h264.rtx_payload_type, Some(102));
        assert_eq!(offer.video.h264.feedback, RtcpFeedback { nack: true, nack_pli: true, goog_remb: true, ..RtcpFeedback::default() });
        assert_eq!(offer.video.extensions, HeaderExtensionIds { sdes_mid: Some(1), abs_send_time: Some(2), ..HeaderExtensionIds::default() });
        assert_eq!(offer.audio(AudioCodec::Opus).map(|audio| audio.payload_type), Some(96));
        assert_eq!(offer.audio(AudioCodec::Pcma).map(|audio| audio.payload_type), Some(8));
        assert_eq!(offer.candidates.len(), 2);
        assert!(offer.candidates[1].contains("typ srflx"));
        assert!(offer.end_of_candidates);
    }

    #[test]
    fn without_constrained_baseline_the_first_h264_with_packetization_mode_1_is_taken() {
        let offer = MINIMAL_OFFER
            .replace("96 97\n", "95 96 97 98\n")
            .replace("a=rtpmap:96", "a=rtpmap:95 H264/90000\na=fmtp:95 packetization-mode=0;profile-level-id=42e01f\na=rtpmap:96")
            .replace("a=fmtp:97 apt=96\n", "a=fmtp:97 apt=96\na=rtpmap:98 H264/90000\na=fmtp:98 packetization-mode=1;profile-level-id=4d001f\n");
        let offer = parse_remote(&offer, RemoteKind::Offer).unwrap();
        assert_eq!(offer.video.h264.payload_type, 96);
        assert_eq!(offer.video.h264.profile_level_id, Some([0x64, 0x00, 0x1f]));
        assert_eq!(offer.video.h264.rtx_payload_type, Some(97));
        assert!(!offer.video.h264.level_asymmetry_allowed);
    }

    #[test]
    fn line_feeds_alone_end_lines_too() {
        assert_eq!(parse_remote(MINIMAL_OFFER, RemoteKind::Offer).unwrap().video.h264.payload_type, 96);
    }

    #[test]
    fn answer_to_chromium_serves_video_and_audio_with_what_the_offer_chose() {
        let offer = parse_remote(&crlf(CHROMIUM_OFFER), RemoteKind::Offer).unwrap();
        let answer = write_answer(&offer, &local(Some(AudioCodec::Opus))).unwrap();
        let lines: Vec<&str> = answer.split("\r\n").collect();
        for expected in [
            "a=group:BUNDLE 0 1",
            "a=ice-lite",
            "m=video 8189 UDP/TLS/RTP/SAVPF 106 107",
            "c=IN IP4 192.0.2.1",
            "a=setup:passive",
            "a=ice-ufrag:LkUf",
            "a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
            "a=sendonly",
            "a=rtcp-mux",
            "a=rtpmap:106 H264/90000",
            "a=rtcp-fb:106 nack",
            "a=rtcp-fb:106 nack pli",
            "a=rtcp-fb:106 ccm fir",
            "a=rtcp-fb:106 transport-cc",
            "a=rtcp-fb:106 goog-remb",
            "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=rtpmap:107 rtx/90000",
            "a=fmtp:107 apt=106",
            "a=ssrc-group:FID 1111 2222",
            "a=ssrc:1111 cname:lookout",
            "a=ssrc:2222 msid:front-door video",
            "a=msid:front-door video",
            "m=audio 8189 UDP/TLS/RTP/SAVPF 111",
            "a=rtpmap:111 opus/48000/2",
            "a=rtcp-fb:111 transport-cc",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=ssrc:3333 msid:front-door audio",
            "a=msid:front-door audio",
            "a=end-of-candidates",
        ] {
            assert!(lines.contains(&expected), "{expected:?} is missing from\n{answer}");
        }
        assert!(!answer.contains("abs-send-time"), "Lookout does not stamp abs-send-time");
        // Audio has no playout delay, and its candidates are the video's: the bundle's transport.
        let audio = &answer[answer.find("m=audio").unwrap()..];
        assert!(!audio.contains("playout-delay") && !audio.contains("a=candidate"));
        assert_eq!(answer.matches("a=end-of-candidates").count(), 1);
        assert!(answer.ends_with("\r\n"));
    }

    #[test]
    fn answer_reads_back_the_same_through_parse_remote_and_rtc_sdp() {
        for (fixture, codec, audio_payload_type) in [(CHROMIUM_OFFER, AudioCodec::Opus, 111), (AIORTC_OFFER, AudioCodec::Pcmu, 0)] {
            let offer = parse_remote(&crlf(fixture), RemoteKind::Offer).unwrap();
            let answer = write_answer(&offer, &local(Some(codec))).unwrap();

            let back = parse_remote(&as_if_from_viewer(&answer, DtlsSetup::Active), RemoteKind::Answer).unwrap();
            assert_eq!(back.ufrag, "LkUf");
            assert_eq!(back.bundle, offer.bundle);
            assert_eq!(back.sections.iter().map(|section| section.mid.as_str()).collect::<Vec<_>>(), ["0", "1"]);
            assert_eq!(back.video.h264, offer.video.h264);
            let sent_extensions = HeaderExtensionIds { abs_send_time: None, ..offer.video.extensions };
            assert_eq!(back.video.extensions, sent_extensions);
            assert_eq!(back.audio(codec).map(|audio| audio.payload_type), Some(audio_payload_type));
            assert_eq!(
                back.candidates,
                [
                    "candidate:1 1 udp 2130706431 192.0.2.1 8189 typ host",
                    "candidate:2 1 udp 2130706175 2001:db8::1 8189 typ host",
                    "candidate:1 1 udp 2130705919 192.0.2.1 8190 typ host"
                ]
            );
            assert!(back.end_of_candidates);

            let independent = rtc_sdp(&answer);
            // Session-level attribute() gives values only: a flag like ice-lite needs has_attribute.
            assert!(independent.has_attribute("ice-lite"));
            assert_eq!(independent.attribute("group").map(String::as_str), Some("BUNDLE 0 1"));
            let [video, audio] = independent.media_descriptions.as_slice() else { panic!("two m-sections") };
            assert_eq!(video.attribute("mid"), Some(Some("0")));
            assert_eq!(video.media_name.port.value, 8189);
            let h264 = &video.codecs()[&offer.video.h264.payload_type];
            assert_eq!((h264.name.as_str(), h264.clock_rate), ("H264", 90_000));
            assert!(h264.fmtp.contains("packetization-mode=1"));
            assert!(h264.rtcp_feedback.iter().any(|feedback| feedback == "nack pli"));
            assert_eq!(audio.attribute("mid"), Some(Some("1")));
            assert_eq!(audio.media_name.formats, [audio_payload_type.to_string()]);
        }
    }

    #[test]
    fn answer_rejects_with_port_0_and_in_place_what_lookout_does_not_serve() {
        let data_channel = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=mid:2\na=sctp-port:5000\na=max-message-size:262144\n";
        let offer = format!("{}{data_channel}", CHROMIUM_OFFER.trim_start()).replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
        let offer = parse_remote(&offer, RemoteKind::Offer).unwrap();

        // The path has no audio: only the video is served.
        let answer = write_answer(&offer, &local(None)).unwrap();
        assert!(answer.contains("a=group:BUNDLE 0\r\n"));
        // With its rtpmap: webrtc-rs refuses an answer whose dynamic payload type it cannot map.
        assert!(answer.contains("\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\n"), "{answer}");
        assert!(answer.contains("\r\nm=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n"));
        let order: Vec<usize> = ["m=video", "m=audio", "m=application"].iter().map(|m| answer.find(m).unwrap()).collect();
        assert!(order.is_sorted());
        let independent = rtc_sdp(&answer);
        assert_eq!(independent.media_descriptions.iter().map(|media| media.media_name.port.value).collect::<Vec<_>>(), [8189, 0, 0]);

        // The path's codec is not in the offer: audio is rejected as well.
        let offer_without_pcma = parse_remote(&crlf(&CHROMIUM_OFFER.replace(" 0 8 13", " 0 13")), RemoteKind::Offer).unwrap();
        assert!(write_answer(&offer_without_pcma, &local(Some(AudioCodec::Pcma))).unwrap().contains("m=audio 0 "));
    }

    #[test]
    fn a_second_video_or_one_the_viewer_only_sends_is_rejected() {
        let second_video = "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:1\na=recvonly\na=rtcp-mux\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n";
        let offer = format!("{}{second_video}", MINIMAL_OFFER.trim_start()).replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1");
        let answer = write_answer(&parse_remote(&offer, RemoteKind::Offer).unwrap(), &local(None)).unwrap();
        assert!(answer.contains("m=video 8189 ") && answer.contains("m=video 0 UDP/TLS/RTP/SAVPF 96\r\n"));

        // The first video is the viewer's camera (sendonly): the second is the one served.
        let offer = offer.replacen("a=recvonly", "a=sendonly", 1);
        let parsed = parse_remote(&offer, RemoteKind::Offer).unwrap();
        assert_eq!(parsed.video.mid, "1");
        let answer = write_answer(&parsed, &local(None)).unwrap();
        assert!(answer.find("m=video 0 ").unwrap() < answer.find("m=video 8189 ").unwrap());
        assert!(answer.contains("a=group:BUNDLE 1\r\n"));
    }

    #[test]
    fn answer_without_rtx_or_bundle_in_the_offer_has_none() {
        let offer = MINIMAL_OFFER.replace("96 97\n", "96\n").replace("a=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n", "").replace("a=group:BUNDLE 0\n", "");
        let offer = parse_remote(&offer, RemoteKind::Offer).unwrap();
        assert_eq!(offer.video.h264.rtx_payload_type, None);
        // Without BUNDLE there is no transport for audio.
        assert_eq!(offer.audio(AudioCodec::Opus), None);
        let answer = write_answer(&offer, &local(Some(AudioCodec::Opus))).unwrap();
        assert!(answer.contains("m=video 8189 UDP/TLS/RTP/SAVPF 96\r\n"));
        for absent in ["rtx", "ssrc-group", "a=ssrc:2222", "a=group", "m=audio"] {
            assert!(!answer.contains(absent), "{absent} in\n{answer}");
        }
        assert!(answer.contains("a=fmtp:96 packetization-mode=1;profile-level-id=64001f\r\n"));
    }

    #[test]
    fn offer_reads_back_through_parse_remote_and_rtc_sdp() {
        for audio in [None, Some(AudioCodec::Opus), Some(AudioCodec::Pcmu), Some(AudioCodec::Pcma)] {
            let offer = write_offer(&local(audio));
            assert!(offer.contains("a=setup:actpass") && offer.contains("a=ice-lite") && !offer.contains("a=recvonly"));
            assert!(offer.contains("a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"));
            let back = parse_remote(&as_if_from_viewer(&offer, DtlsSetup::ActPass), RemoteKind::Offer).unwrap();
            assert_eq!(back.video.mid, "0");
            assert_eq!(back.video.h264.payload_type, 102);
            assert_eq!(back.video.h264.rtx_payload_type, Some(103));
            assert_eq!(back.video.extensions, OFFERED_VIDEO_EXTENSIONS);
            assert_eq!(back.sections.len(), 1 + usize::from(audio.is_some()));
            if let Some(codec) = audio {
                let audio_section = &back.sections[1];
                assert_eq!((audio_section.mid.as_str(), audio_section.media.as_str()), ("1", "audio"));
                assert_eq!(audio_section.audio_format(codec).map(|format| format.payload_type), Some(codec.payload_type()));
                assert_eq!(audio_section.audio_format(codec).map(|format| format.clock_rate), Some(codec.clock_rate()));
            }
            let independent = rtc_sdp(&offer);
            assert_eq!(independent.media_descriptions.len(), back.sections.len());
            assert_eq!(independent.media_descriptions[0].codecs()[&103].fmtp, "apt=102");
        }
    }

    #[test]
    fn chromium_answer_tells_what_it_accepted_of_lookouts_offer() {
        let answer = parse_remote(&crlf(CHROMIUM_ANSWER), RemoteKind::Answer).unwrap();
        assert_eq!(answer.setup, DtlsSetup::Active);
        assert_eq!((answer.ufrag.as_str(), answer.fingerprint.len()), ("Qv5m", 95));
        assert_eq!(answer.video.h264.payload_type, OFFERED_H264_PAYLOAD_TYPE);
        assert_eq!(answer.video.h264.rtx_payload_type, Some(OFFERED_RTX_PAYLOAD_TYPE));
        assert_eq!(answer.video.extensions, OFFERED_VIDEO_EXTENSIONS);
        assert_eq!(
            answer.audio(AudioCodec::Opus).map(|audio| (audio.mid, audio.payload_type, audio.extensions)),
            Some(("1".to_owned(), 111, OFFERED_AUDIO_EXTENSIONS))
        );
        assert_eq!(answer.candidates.len(), 1);
        // An answer is read, not answered.
        assert_eq!(write_answer(&answer, &local(None)), Err(SdpError::NotAnOffer));
    }

    #[test]
    fn an_answer_that_rejects_the_video_says_the_browser_cannot_decode_h264() {
        let answer = crlf(CHROMIUM_ANSWER).replace("m=video 9", "m=video 0");
        let error = parse_remote(&answer, RemoteKind::Answer).expect_err("no video to send");
        assert_eq!(error, SdpError::H264Rejected);
        assert!(error.is_codec_unsupported() && error.to_string().contains("cannot decode the H.264"), "{error}");
        let offer = parse_remote(&MINIMAL_OFFER.replace("H264/90000", "VP8/90000"), RemoteKind::Offer).expect_err("no H.264");
        assert!(offer.is_codec_unsupported(), "{offer}");
    }

    #[test]
    fn an_answer_that_rejects_audio_leaves_video() {
        let answer = crlf(CHROMIUM_ANSWER).replace("m=audio 9", "m=audio 0").replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
        let answer = parse_remote(&answer, RemoteKind::Answer).unwrap();
        assert_eq!(answer.video.h264.payload_type, 102);
        assert_eq!(answer.audio(AudioCodec::Opus), None);
    }

    #[test]
    fn dtls_roles_lookout_cannot_take_are_refused() {
        for (kind, setup, expected) in [(RemoteKind::Offer, "passive", "must say actpass or active"), (RemoteKind::Answer, "actpass", "must choose a role")] {
            let description = match kind {
                RemoteKind::Offer => MINIMAL_OFFER.replace("a=setup:actpass", &format!("a=setup:{setup}")),
                RemoteKind::Answer => CHROMIUM_ANSWER.replace("a=setup:active", &format!("a=setup:{setup}")),
            };
            let error = parse_remote(&description, kind).unwrap_err();
            assert!(matches!(error, SdpError::WrongSetup { .. }), "{error}");
            assert!(error.to_string().contains(expected), "{error}");
        }
        let passive = parse_remote(&CHROMIUM_ANSWER.replace("a=setup:active", "a=setup:passive"), RemoteKind::Answer).expect("an answer may take the server's role");
        assert_eq!(passive.setup, DtlsSetup::Passive);
        assert!(parse_remote(&MINIMAL_OFFER.replace("a=setup:actpass", "a=setup:active"), RemoteKind::Offer).is_ok());
        assert_eq!(offer_error(&MINIMAL_OFFER.replace("a=setup:actpass", "a=setup:holdconn")), SdpError::BadSetup { value: "holdconn".to_owned() });
    }

    #[test]
    fn descriptions_lookout_cannot_serve_get_errors_that_say_why() {
        let sha_1 = "sha-1 7B:5B:32:9B:4E:07:6E:C5:23:BE:BD:F6:DD:6F:34:5E:49:E3:D8:8E";
        let cases: Vec<(String, &str)> = vec![
            (MINIMAL_OFFER.replace("a=ice-ufrag:abcd\n", ""), "has no ICE username fragment"),
            (MINIMAL_OFFER.replace("a=ice-pwd:abcdefghijklmnopqrstuvwx\n", ""), "has no ICE password"),
            (MINIMAL_OFFER.replace("a=ice-ufrag:abcd", "a=ice-ufrag:ab:cd"), "username fragment must be"),
            (MINIMAL_OFFER.replace("a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-pwd:short"), "password must be"),
            (MINIMAL_OFFER.lines().filter(|line| !line.starts_with("a=fingerprint")).collect::<Vec<_>>().join("\n"), "has no DTLS fingerprint"),
            (MINIMAL_OFFER.replace(&format!("sha-256 {MINIMAL_OFFER_FINGERPRINT}"), sha_1), "DTLS fingerprint uses sha-1; only sha-256 is supported"),
            (MINIMAL_OFFER.replace("12:C1:2A", "12:C1"), "not 32 hex bytes"),
            (MINIMAL_OFFER.replace("12:C1:2A", "12:C1:+A"), "not 32 hex bytes"),
            (MINIMAL_OFFER.replace("a=setup:actpass\n", ""), "has no DTLS role"),
            (MINIMAL_OFFER.replace("a=rtcp-mux\n", ""), "lacks a=rtcp-mux"),
            (MINIMAL_OFFER.replace("m=video", "m=audio"), "has no video m-section"),
            (MINIMAL_OFFER.replace("packetization-mode=1", "packetization-mode=0"), "no H.264 with packetization-mode=1: Lookout sends only H.264"),
            (MINIMAL_OFFER.replace("H264/90000", "VP8/90000"), "no H.264 with packetization-mode=1"),
            (MINIMAL_OFFER.replace("profile-level-id=64001f", "profile-level-id=64001"), "no H.264 with packetization-mode=1"),
            (MINIMAL_OFFER.replace("a=recvonly", "a=sendonly"), "is sendonly; it must be recvonly or sendrecv"),
            (MINIMAL_OFFER.replace("a=recvonly", "a=inactive"), "is inactive"),
            (MINIMAL_OFFER.replace("m=video 9", "m=video 0"), "disables its video m-section"),
            (MINIMAL_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), "Lookout sends only DTLS-SRTP"),
            (MINIMAL_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 5 0"), "names mid \"5\""),
            (MINIMAL_OFFER.replace("a=group:BUNDLE 0", "a=group:BUNDLE 5"), "not in the BUNDLE group"),
            (MINIMAL_OFFER.replace("a=group:BUNDLE 0", "a=ice-lite"), "ICE-lite too"),
            (MINIMAL_OFFER.replace("a=mid:0\n", ""), "m-section 1 (video) has no a=mid"),
            (MINIMAL_OFFER.replace("a=mid:0", "a=mid:a-mid-longer-than-16"), "is not 1 to 16"),
            (MINIMAL_OFFER.replace("a=mid:0", "a=mid:"), "is not 1 to 16"),
            (format!("{}m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:0\n", MINIMAL_OFFER.trim_start()), "same mid"),
            (MINIMAL_OFFER.replace("v=0", "v=1"), "must start with v=0"),
            (String::new(), "must start with v=0"),
            (MINIMAL_OFFER.replace("s=-", "garbage"), "is not `letter=value`"),
            (MINIMAL_OFFER.replace("s=-", "ss=-"), "is not `letter=value`"),
        ];
        for (description, expected) in cases {
            let error = offer_error(&description).to_string();
            assert!(error.contains(expected), "{expected:?} is not in {error:?}");
        }
    }

    #[test]
    fn huge_numbers_and_truncated_lines_are_errors() {
        let cases = [
            ("m=video 9 ", "m=video 70000 "),
            ("m=video 9 ", "m=video 99999999999999999999999 "),
            ("m=video 9 ", "m=video -1 "),
            ("96 97\n", "96 128\n"),
            ("96 97\n", "96 18446744073709551616\n"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96 H264/99999999999"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:4294967296 H264/90000"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96 H264/90000/2/1"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96 H264/90000/70000"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96 H264/+90000"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96 H264"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:96"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap:"),
            ("a=rtpmap:96 H264/90000", "a=rtpmap"),
            ("a=fmtp:97 apt=96", "a=fmtp:"),
            ("a=fmtp:97 apt=96", "a=fmtp:x apt=96"),
            ("a=rtcp-mux", "a=rtcp-mux\na=rtcp-fb:96"),
            ("a=rtcp-mux", "a=rtcp-mux\na=rtcp-fb:300 nack"),
            ("a=rtcp-mux", "a=rtcp-mux\na=extmap:70000 urn:ietf:params:rtp-hdrext:sdes:mid"),
            ("a=rtcp-mux", "a=rtcp-mux\na=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid"),
            ("a=rtcp-mux", "a=rtcp-mux\na=extmap:4"),
            ("a=rtcp-mux", "a=rtcp-mux\na=extmap:"),
            ("a=rtcp-mux", "a=rtcp-mux\na=extmap:4 urn:a\na=extmap:4 urn:b"),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video"),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9"),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF"),
            ("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=vidéo 9 UDP/TLS/RTP/SAVPF 96 97"),
        ];
        for (from, to) in cases {
            let description = MINIMAL_OFFER.replacen(from, to, 1);
            assert_ne!(description, MINIMAL_OFFER, "{from:?} is in the offer");
            let error = offer_error(&description);
            assert!(matches!(error, SdpError::BadLine { .. }), "{to:?} gave {error}");
        }
        // Found by fuzzing: an unknown media type or a protocol with an empty part, echoed in
        // the answer, made it unparseable.
        for section in ["m=audio1 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP.TLS//RTPSAVPF 111"] {
            let offer = format!("{MINIMAL_OFFER}{section}\na=mid:1\n");
            assert!(matches!(offer_error(&offer), SdpError::BadLine { .. }), "{section}");
        }
        // An extension Lookout knows, under an id only the two-byte form carries, is left out.
        let two_byte_id = MINIMAL_OFFER.replace("a=rtcp-mux", "a=rtcp-mux\na=extmap:15 urn:ietf:params:rtp-hdrext:sdes:mid");
        assert_eq!(parse_remote(&two_byte_id, RemoteKind::Offer).unwrap().video.extensions.sdes_mid, None);
    }

    #[test]
    fn sizes_are_bounded() {
        let padded = format!("{}{}", MINIMAL_OFFER.trim_start(), "a=x-padding\n".repeat(6000));
        assert!(matches!(offer_error(&padded), SdpError::TooLarge { .. }));
        let many: String = (1..=16).map(|mid| format!("m=audio 9 UDP/TLS/RTP/SAVPF 0\na=mid:{mid}\n")).collect();
        assert_eq!(offer_error(&format!("{}{many}", MINIMAL_OFFER.trim_start())), SdpError::TooManySections);
        let candidates: String = (0..100).map(|port| format!("a=candidate:1 1 udp 2130706431 192.0.2.9 {port} typ host\n")).collect();
        let offer = parse_remote(&format!("{}{candidates}", MINIMAL_OFFER.trim_start()), RemoteKind::Offer).unwrap();
        assert_eq!(offer.candidates.len(), MAX_CANDIDATES);
        // Quoted text is cut at a character boundary, even in the middle of non-ASCII text.
        let error = offer_error(&MINIMAL_OFFER.replace("s=-", &format!("{}=", "é".repeat(100))));
        assert!(error.to_string().ends_with("…\""), "{error}");
    }

    #[test]
    fn no_truncation_or_dropped_line_makes_the_parser_panic() {
        for fixture in [crlf(CHROMIUM_OFFER), crlf(AIORTC_OFFER), crlf(CHROMIUM_ANSWER)] {
            for cut in (0..fixture.len()).filter(|cut| fixture.is_char_boundary(*cut)) {
                for kind in [RemoteKind::Offer, RemoteKind::Answer] {
                    if let Ok(description) = parse_remote(&fixture[..cut], kind) {
                        // Whatever parses can be answered.
                        if kind == RemoteKind::Offer {
                            write_answer(&description, &local(Some(AudioCodec::Opus))).unwrap();
                        }
                    }
                }
            }
            let lines: Vec<&str> = fixture.split("\r\n").collect();
            for dropped in 0..lines.len() {
                let without = [&lines[..dropped], &lines[dropped + 1..]].concat().join("\r\n");
                let _ = parse_remote(&without, RemoteKind::Offer);
            }
        }
    }

    #[test]
    fn host_candidates_share_a_foundation_per_address_and_fall_in_priority() {
        let answer = write_offer(&local(None));
        let candidates: Vec<&str> = answer.lines().filter(|line| line.starts_with("a=candidate:")).collect();
        assert_eq!(
            candidates,
            [
                "a=candidate:1 1 udp 2130706431 192.0.2.1 8189 typ host",
                "a=candidate:2 1 udp 2130706175 2001:db8::1 8189 typ host",
                "a=candidate:1 1 udp 2130705919 192.0.2.1 8190 typ host",
            ]
        );
        assert!(answer.contains("\r\nc=IN IP4 192.0.2.1\r\n"));
        let with_tcp = write_offer(&LocalParameters { passive_tcp: true, ..local(None) });
        let tcp: Vec<&str> = with_tcp.lines().filter(|line| line.starts_with("a=candidate:") && line.contains(" tcp ")).collect();
        assert_eq!(
            tcp,
            [
                "a=candidate:3 1 tcp 1358953727 192.0.2.1 8189 typ host tcptype passive",
                "a=candidate:4 1 tcp 1358953471 2001:db8::1 8189 typ host tcptype passive",
                "a=candidate:3 1 tcp 1358953215 192.0.2.1 8190 typ host tcptype passive",
            ],
            "after the UDP ones, below them, with foundations of their own"
        );
        // No candidates: the default address says "none yet" as JSEP does.
        let without = write_offer(&LocalParameters { candidates: Vec::new(), ..local(None) });
        assert!(without.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\nc=IN IP4 0.0.0.0\r\n"));
    }
}
