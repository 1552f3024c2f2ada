//! Lookout's offers and answers as rtc-sdp's `SessionDescription`: what goes in each m-section
//! is decided here, the lines and their order are rtc-sdp's (`marshal`).

use super::sdp::{DtlsSetup, HeaderExtensionIds, LocalAudio, LocalParameters, RemoteSection, SelectedAudio, SelectedVideo, MEDIA_PROTOCOL, OPUS_FMTP};
use crate::media::{AudioCodec, VIDEO_CLOCK_RATE};
use rtc::sdp::description::common::{Address, Attribute, ConnectionInformation};
use rtc::sdp::description::media::{MediaDescription, MediaName, RangedPort};
use rtc::sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};

/// RFC 8445 §5.1.2.1's type preference of a host candidate on UDP.
const UDP_HOST_TYPE_PREFERENCE: u32 = 126;
/// ICE-TCP host candidates rank below UDP, host and reflexive alike: a viewer uses TCP only
/// where UDP does not get through.
const TCP_HOST_TYPE_PREFERENCE: u32 = 80;

pub(super) struct Writer<'a> {
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
    pub fn new(local: &'a LocalParameters, setup: DtlsSetup, bundle: &[&str]) -> Self {
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
    pub fn finish(self) -> String {
        self.description.marshal()
    }

    pub fn video(&mut self, video: &SelectedVideo) {
        let local = &self.local.video;
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

    pub fn audio(&mut self, local: &LocalAudio, audio: &SelectedAudio) {
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
    pub fn rejected(&mut self, section: &RemoteSection) {
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
fn value(key: &str, value: impl Display) -> Attribute {
    Attribute::new(key.to_owned(), Some(value.to_string()))
}

/// `a=key`
fn property(key: &str) -> Attribute {
    Attribute::new(key.to_owned(), None)
}
