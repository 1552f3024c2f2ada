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
    let length = end + 4 + body;
    anyhow::ensure!(length < MAX_MESSAGE, "an RTSP message of {length} bytes");
    Ok((buffer.len() >= length).then_some(length))
}

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
            match self.channel(channel) {
                None => return Framing::Garbage,
                Some(Channel::Rtp) if buffer.get(4).is_some_and(|&byte| byte >> 6 != 2) => return Framing::Garbage,
                Some(_) => {}
            }
        } else {
            let prefix = &buffer[..buffer.len().min(5)];
            if !b"RTSP/".starts_with(prefix) {
                return Framing::Garbage;
            }
        }
        by_length(buffer)
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

    /// Everything that comes out of `framing` once `bytes` are pushed.
    fn drain(framing: &mut CameraFraming, bytes: &[u8]) -> Vec<CameraData> {
        framing.push(bytes);
        std::iter::from_fn(|| framing.next_data()).collect()
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
