//! How a camera's RTSP/TCP byte stream splits into messages (an RTSP message, or a `$`-framed
//! interleaved packet), and how it resynchronises after lost bytes. Sans I/O: bytes are pushed
//! in as they arrive, whole messages and counts of dropped bytes come out. The relay
//! (`rtsp_relay.rs`) runs it on the camera's connection; the fuzz targets run it on anything.
//!
//! Cheap cameras lose bytes on TCP when their send buffer fills: the stream goes on in the
//! middle of a packet (../shared/seeds/flussonic-buggy-ip-cameras.txt). Once the first SETUP
//! answer has named the interleaved channels, a message must start with a `$` on a channel set
//! up (an RTP one with a version-2 header), or with `RTSP/`. Anything else is what lost bytes
//! left of a packet: it is dropped up to the next plausible message and counted. A message not
//! followed by the start of another was cut short by lost bytes and reaches into what came
//! after: it is dropped with the rest.

use bytes::{Buf, Bytes, BytesMut};

/// An RTSP message larger than this is not one: the stream is broken.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// The length of the complete message at the start of `buffer`, if it holds one: a
/// `$`-framed interleaved packet or an RTSP message with its body.
pub fn message_length(buffer: &[u8]) -> anyhow::Result<Option<usize>> {
    if buffer.first() == Some(&b'$') {
        let Some(header) = buffer.get(..4) else { return Ok(None) };
        let length = 4 + usize::from(u16::from_be_bytes([header[2], header[3]]));
        return Ok((buffer.len() >= length).then_some(length));
    }
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        anyhow::ensure!(buffer.len() < MAX_MESSAGE, "no end of RTSP headers in {} bytes", buffer.len());
        return Ok(None);
    };
    let headers = String::from_utf8_lossy(&buffer[..end]);
    let body = headers
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let length = (end + 4).saturating_add(body);
    anyhow::ensure!(length < MAX_MESSAGE, "an RTSP message of {length} bytes");
    Ok((buffer.len() >= length).then_some(length))
}

/// Bytes of the next message enough to tell its start from lost bytes: `$`, the channel, the
/// length and the RTP version; or `RTSP/`.
const FOLLOWER_CHECKED: usize = 5;

/// What comes out of the camera's stream.
#[derive(Debug, PartialEq)]
pub enum CameraData {
    /// A whole message, to pass on.
    Message(Bytes),
    /// One resynchronisation: this many bytes were dropped, up to the next plausible message.
    Lost(usize),
}

/// What an interleaved channel carries, as the SETUP answers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// What the camera's stream holds at a position.
#[derive(Debug, PartialEq)]
enum Framing {
    /// A whole message of this length.
    Message(usize),
    /// The start of one; more bytes are needed.
    Incomplete,
    /// Not the start of a message: bytes were lost before it.
    Garbage,
}

/// The camera's side of the stream: what has arrived and not yet come out, and what the SETUP
/// answers and the video's packets taught.
#[derive(Debug, Default)]
pub struct CameraFraming {
    buffer: BytesMut,
    /// The interleaved channels set up, as a bit mask (channels 0-63); 0 before the first.
    channels: u64,
    /// Of those, the RTP ones (the first of each pair).
    rtp_channels: u64,
    /// The video's RTP and RTCP channels: the first pair set up (Lookout sets up the video first).
    video_channels: Option<(u8, u8)>,
    video_ssrc: Option<u32>,
}

impl CameraFraming {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in bytes as they came from the camera.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole message or resynchronisation, or `None` until more bytes are pushed.
    pub fn next_data(&mut self) -> Option<CameraData> {
        match self.framing(&self.buffer) {
            Framing::Message(length) if self.buffer.len() > length && self.framing(&self.buffer[length..]) == Framing::Garbage => {
                Some(CameraData::Lost(self.drop_unframed()))
            }
            // Whether a packet was cut short shows only in what follows it. Inside a frame the
            // next packet follows at once, so wait for its start rather than pass on one that
            // may reach into lost bytes. A frame's last packet (marker set) goes at once: its
            // successor is a frame interval away.
            Framing::Message(length) if self.buffer.len() < length + FOLLOWER_CHECKED && self.continues_a_frame(&self.buffer[..length]) => None,
            Framing::Message(length) => {
                let message = self.buffer.split_to(length).freeze();
                self.note(&message);
                Some(CameraData::Message(message))
            }
            Framing::Incomplete => None,
            Framing::Garbage => Some(CameraData::Lost(self.drop_unframed())),
        }
    }

    /// Bytes pushed that have not come out yet: the start of a message still to complete.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// What an interleaved channel carries; `None` for a channel no SETUP answer named.
    pub fn channel(&self, channel: u8) -> Option<Channel> {
        let bit = 1u64.checked_shl(u32::from(channel))?;
        if self.channels & bit == 0 {
            None
        } else if self.rtp_channels & bit != 0 {
            Some(Channel::Rtp)
        } else {
            Some(Channel::Rtcp)
        }
    }

    /// The video's interleaved RTCP channel, once its SETUP answer has come.
    pub fn video_rtcp_channel(&self) -> Option<u8> {
        self.video_channels.map(|(_, rtcp)| rtcp)
    }

    /// The video's SSRC, once one of its RTP packets has come.
    pub fn video_ssrc(&self) -> Option<u32> {
        self.video_ssrc
    }

    /// Whether `buffer` starts with a message from the camera, telling lost bytes apart.
    fn framing(&self, buffer: &[u8]) -> Framing {
        let Some(&first) = buffer.first() else { return Framing::Incomplete };
        // Before the first SETUP answer nothing is streaming: whatever the camera says goes to
        // retina as it is, which reports a camera that does not speak RTSP in its own words.
        if self.channels == 0 {
            return by_length(buffer);
        }
        if first == b'$' {
            let Some(&channel) = buffer.get(1) else { return Framing::Incomplete };
            let Some(kind) = self.channel(channel) else { return Framing::Garbage };
            if kind == Channel::Rtp && buffer.get(4).is_some_and(|&byte| byte >> 6 != 2) {
                return Framing::Garbage;
            }
            // retina ends its session on a packet it cannot read: one is only a packet whole.
            return match by_length(buffer) {
                Framing::Message(length) if !packet_fits(kind, &buffer[4..length]) => Framing::Garbage,
                framing => framing,
            };
        }
        let prefix = &buffer[..buffer.len().min(5)];
        if !b"RTSP/".starts_with(prefix) {
            return Framing::Garbage;
        }
        by_length(buffer)
    }

    /// A video RTP packet inside a frame (marker bit clear): one followed by another at once.
    /// (Audio packets are single frames with the marker clear; one damaged is a click.)
    fn continues_a_frame(&self, message: &[u8]) -> bool {
        let video_rtp = self.video_channels.map(|(rtp, _)| rtp);
        let is_video = message.first() == Some(&b'$') && message.get(1).copied() == video_rtp;
        is_video && message.get(5).is_some_and(|&marker_and_type| marker_and_type & 0x80 == 0)
    }

    /// Drops the bytes at the start of the buffer up to the next plausible message start (or
    /// all but a possible partial header), and returns how many.
    fn drop_unframed(&mut self) -> usize {
        let skip = (1..self.buffer.len())
            .find(|&at| self.framing(&self.buffer[at..]) != Framing::Garbage)
            .unwrap_or(self.buffer.len().saturating_sub(4).max(1));
        self.buffer.advance(skip);
        skip
    }

    /// Learns the channels from a SETUP answer, and the video's SSRC from its RTP packets.
    fn note(&mut self, message: &[u8]) {
        if message.first() == Some(&b'$') {
            let video_rtp = self.video_channels.map(|(rtp, _)| rtp);
            if message.get(1).copied() == video_rtp {
                if let Some(ssrc) = message.get(12..16) {
                    self.video_ssrc = Some(u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]));
                }
            }
            return;
        }
        // A SETUP answer names its channels, "interleaved=0-1"; the first is the video's.
        let text = String::from_utf8_lossy(message);
        let channels = text.split("interleaved=").nth(1).and_then(|rest| {
            let pair = rest.split([';', '\r', ',']).next()?;
            let (rtp, rtcp) = pair.split_once('-')?;
            Some((rtp.trim().parse::<u8>().ok()?, rtcp.trim().parse::<u8>().ok()?))
        });
        let Some((rtp, rtcp)) = channels.filter(|&(rtp, rtcp)| rtp < 64 && rtcp < 64) else { return };
        self.channels |= (1 << rtp) | (1 << rtcp);
        self.rtp_channels |= 1 << rtp;
        self.video_channels.get_or_insert((rtp, rtcp));
    }
}

/// Whether an interleaved packet's headers fit in it: an RTP packet's fixed header, CSRCs,
/// extension and padding (RFC 3550 §5.1, §5.3.1), or the RTCP packets of a compound one, each
/// of the length its header gives, back to back to the last byte, padded only at the end
/// (RFC 3550 §6.1, §6.4.1). Lost bytes leave packets that do not.
fn packet_fits(kind: Channel, packet: &[u8]) -> bool {
    match kind {
        Channel::Rtp => rtp_fits(packet),
        Channel::Rtcp => rtcp_fits(packet),
    }
}

fn rtp_fits(packet: &[u8]) -> bool {
    const FIXED_HEADER: usize = 12;
    let Some(&first) = packet.first() else { return false };
    if packet.len() < FIXED_HEADER || first >> 6 != 2 {
        return false;
    }
    let mut header = FIXED_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let Some(words) = packet.get(header + 2..header + 4) else { return false };
        header += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let padding = match packet.last() {
        Some(&count) if first & 0x20 != 0 => usize::from(count),
        _ => 0,
    };
    (first & 0x20 == 0 || padding > 0) && header + padding <= packet.len()
}

fn rtcp_fits(mut packets: &[u8]) -> bool {
    if packets.is_empty() {
        return false;
    }
    while let Some(header) = packets.get(..4) {
        let length = 4 * (1 + usize::from(u16::from_be_bytes([header[2], header[3]])));
        let Some(packet) = packets.get(..length) else { return false };
        packets = &packets[length..];
        if header[0] >> 6 != 2 {
            return false;
        }
        if header[0] & 0x20 != 0 {
            let padding = usize::from(packet[length - 1]);
            if !packets.is_empty() || padding == 0 || padding > length - 4 {
                return false;
            }
        }
    }
    packets.is_empty()
}

/// The framing of `buffer` by the length its start announces.
fn by_length(buffer: &[u8]) -> Framing {
    match message_length(buffer) {
        Ok(Some(length)) => Framing::Message(length),
        Ok(None) => Framing::Incomplete,
        Err(_) => Framing::Garbage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETUP_ANSWER: &[u8] = b"RTSP/1.0 200 OK\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n";

    fn rtp(len: u8) -> Vec<u8> {
        [&[b'$', 0, 0, len][..], &[0x80; 255][..usize::from(len)]].concat()
    }

    /// What comes out of `framing` once `bytes` are pushed (at most 100 items: framing that
    /// never ends fails a test instead of hanging it).
    fn drain(framing: &mut CameraFraming, bytes: &[u8]) -> Vec<CameraData> {
        framing.push(bytes);
        std::iter::from_fn(|| framing.next_data()).take(100).collect()
    }

    #[test]
    fn messages_are_found_whole() {
        assert_eq!(message_length(b"$\x00\x00\x03abc$").unwrap(), Some(7));
        assert_eq!(message_length(b"$\x00\x00\x03ab").unwrap(), None, "incomplete");
        let request = b"GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 4\r\n\r\nabcdRTSP";
        assert_eq!(message_length(request).unwrap(), Some(request.len() - 4));
        assert_eq!(message_length(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n").unwrap(), None);
        assert!(message_length(&vec![b'x'; MAX_MESSAGE]).is_err(), "garbage is not a message");
    }

    /// Found by fuzzing (tests/fuzz, camera_framing): a Content-Length near `usize::MAX`
    /// overflowed the message's length. Wrapped (in a release build), it could come to 0: an
    /// empty message passed on again and again, forever, without reading the camera.
    #[test]
    fn a_content_length_past_any_message_is_not_one() {
        let digits = usize::MAX.to_string().len();
        let wraps_to_zero = usize::MAX - (37 + digits) + 1;
        let answer = format!("RTSP/1.0 200 OK\r\nContent-Length: {wraps_to_zero}\r\n\r\n");
        assert!(message_length(answer.as_bytes()).is_err());
        let mut framing = CameraFraming::new();
        assert_eq!(drain(&mut framing, SETUP_ANSWER), vec![CameraData::Message(Bytes::from_static(SETUP_ANSWER))]);
        let out = drain(&mut framing, &[answer.as_bytes(), &rtp(12)].concat());
        assert_eq!(out, vec![CameraData::Lost(answer.len()), CameraData::Message(Bytes::from(rtp(12)))]);
    }

    #[test]
    fn lost_bytes_are_told_from_messages() {
        let mut framing = CameraFraming::new();
        let nonsense = b"HELLO WORLD\r\n\r\n";
        assert_eq!(framing.framing(nonsense), Framing::Message(nonsense.len()), "before SETUP, retina judges");
        framing.note(SETUP_ANSWER);
        assert_eq!(framing.framing(&rtp(12)), Framing::Message(16));
        assert_eq!(framing.framing(&rtp(12)[..10]), Framing::Incomplete);
        assert_eq!(framing.framing(b"$\x07\x00\x0c"), Framing::Garbage, "a channel never set up");
        assert_eq!(framing.framing(b"$\x00\x00\x0c\x41"), Framing::Garbage, "not RTP version 2");
        assert_eq!(framing.framing(b"\x12\x34$"), Framing::Garbage, "the middle of a packet");
        assert_eq!(framing.framing(b"RTS"), Framing::Incomplete);
        let answer = b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n";
        assert_eq!(framing.framing(answer), Framing::Message(answer.len()));
    }

    #[test]
    fn the_video_channels_and_ssrc_are_learnt() {
        let mut framing = CameraFraming::new();
        assert_eq!((framing.video_rtcp_channel(), framing.video_ssrc()), (None, None), "nothing known yet");
        let answers: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1\r\n\r\n\
            RTSP/1.0 200 OK\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n";
        let video = [b'$', 2, 0, 12, 0x80, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let audio = [b'$', 4, 0, 12, 0x80, 0, 0, 1, 0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78];
        let out = drain(&mut framing, &[answers, &video, &audio].concat());
        assert_eq!(out.len(), 4, "two answers, two packets: {out:?}");
        assert_eq!((framing.channel(2), framing.channel(3), framing.channel(5)), (Some(Channel::Rtp), Some(Channel::Rtcp), Some(Channel::Rtcp)));
        assert_eq!((framing.channel(0), framing.channel(64), framing.channel(255)), (None, None, None));
        assert_eq!(framing.video_rtcp_channel(), Some(3));
        assert_eq!(framing.video_ssrc(), Some(0xdeadbeef), "the video's, not the audio's");
    }

    /// Found by fuzzing (tests/fuzz, camera_framing): lost bytes left packets whose length
    /// fitted the interleaved framing but not the RTP or RTCP inside, followed by a plausible
    /// start, and they were passed on: retina ends its session on such a packet.
    #[test]
    fn packets_whose_headers_do_not_fit_are_dropped() {
        let mut framing = CameraFraming::new();
        framing.push(SETUP_ANSWER);
        assert!(matches!(framing.next_data(), Some(CameraData::Message(_))));
        let short_rtp = b"$\x00\x00\x03\x80\x60\x00";
        let rtcp_longer_than_its_packet = b"$\x01\x00\x08\x80\xc8\x00\x0a\x11\x22\x33\x44";
        let rtp_padding_past_its_header = b"$\x00\x00\x0d\xa0\x60\x00\x01\x00\x00\x00\x01\x11\x22\x33\x44\x05";
        let rtp_extension_past_its_end = b"$\x00\x00\x10\x90\x60\x00\x01\x00\x00\x00\x01\x11\x22\x33\x44\xbe\xde\x00\x02";
        for broken in [&short_rtp[..], rtcp_longer_than_its_packet, rtp_padding_past_its_header, rtp_extension_past_its_end] {
            let out = drain(&mut framing, &[broken, &rtp(12)].concat());
            assert_eq!(out, vec![CameraData::Lost(broken.len()), CameraData::Message(Bytes::from(rtp(12)))], "{broken:02x?}");
        }
        let sender_report = b"$\x01\x00\x1c\x80\xc8\x00\x06\x11\x22\x33\x44\xe4\x36\x2f\x99\xcc\xcc\xcc\xcc\x00\x01\x5f\x90\x00\x00\x00\x0a\x00\x00\x03\xe8";
        let padded_rtp = b"$\x00\x00\x10\xa0\xe0\x00\x02\x00\x00\x00\x02\x11\x22\x33\x44\x41\x00\x00\x02";
        for whole in [&sender_report[..], padded_rtp] {
            assert_eq!(drain(&mut framing, whole), vec![CameraData::Message(Bytes::copy_from_slice(whole))], "{whole:02x?}");
        }
    }

    #[test]
    fn a_packet_inside_a_frame_waits_for_the_start_of_the_next() {
        let mut framing = CameraFraming::new();
        drain(&mut framing, SETUP_ANSWER);
        let mut inside = rtp(40);
        inside[5] = 96; // marker clear
        assert_eq!(drain(&mut framing, &inside), vec![], "held until what follows shows");
        // It was cut short: what follows is the middle of another packet.
        let out = drain(&mut framing, &[&rtp(30)[9..], &rtp(12)[..]].concat());
        assert!(matches!(out[0], CameraData::Lost(_)), "{out:?}");
        assert_eq!(out[1..], [CameraData::Message(Bytes::from(rtp(12)))], "a frame's last packet goes at once");
        // Followed by a plausible packet start, a packet inside a frame is passed on.
        drain(&mut framing, &inside);
        let out = drain(&mut framing, &rtp(12)[..5]);
        assert_eq!(out, vec![CameraData::Message(Bytes::from(inside))]);
    }

    #[test]
    fn what_lost_bytes_leave_is_dropped_and_counted() {
        let mut framing = CameraFraming::new();
        let mut stream = SETUP_ANSWER.to_vec();
        stream.extend(rtp(20));
        let cut = rtp(40);
        stream.extend(&cut[..10]); // the camera lost the rest of this packet…
        stream.extend(&rtp(30)[7..]); // …and the start of this one
        stream.extend(rtp(12));
        let out = drain(&mut framing, &stream);
        let lost: usize = out.iter().map(|d| if let CameraData::Lost(n) = d { *n } else { 0 }).sum();
        let messages: Vec<usize> = out.iter().filter_map(|d| if let CameraData::Message(m) = d { Some(m.len()) } else { None }).collect();
        assert_eq!(messages, vec![SETUP_ANSWER.len(), 24, 16]);
        assert_eq!(lost, 10 + 34 - 7);
        assert_eq!(framing.buffered(), 0);
    }
}
