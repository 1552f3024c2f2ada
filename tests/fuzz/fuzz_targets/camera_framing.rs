//! A camera's RTSP/TCP byte stream through `CameraFraming`, the relay's resynchronisation: a
//! realistic start (the SETUP answer naming interleaved channels 0-1) and then anything, pushed
//! in chunks cut where the input says. Checks, after every chunk:
//! * every message passed on is whole and well framed: a `$` packet of exactly the length its
//!   header gives, on a channel set up, and one retina accepts (an RTP header that fits, RTCP
//!   packets whose lengths add up: retina ends its session on anything else); an RTSP message
//!   with its header's end;
//! * bytes passed on + bytes dropped + bytes still buffered == bytes pushed;
//! * the buffer stays below the largest message;
//! * nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::source::camera_framing::{CameraData, CameraFraming, Channel, MAX_MESSAGE};

const SETUP_ANSWER: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1234;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n";
/// Bytes of the input that choose the chunk sizes, in turn.
const CUTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (cuts, stream) = rest.split_at(rest.len().min(CUTS));
    // Mostly after a SETUP answer (where resynchronising happens); sometimes from the start.
    let mut input = if mode & 1 == 0 { SETUP_ANSWER.to_vec() } else { Vec::new() };
    input.extend_from_slice(stream);

    let mut framing = CameraFraming::new();
    let (mut pushed, mut passed, mut dropped) = (0usize, 0usize, 0usize);
    let mut cut = cuts.iter().map(|&c| usize::from(c) + 1).cycle();
    let mut remaining = &input[..];
    while !remaining.is_empty() {
        let size = cut.next().unwrap_or(remaining.len()).min(remaining.len());
        let (chunk, after) = remaining.split_at(size);
        remaining = after;
        framing.push(chunk);
        pushed += chunk.len();
        loop {
            // Judged as the framing judged it: by what it knew before this message.
            let streaming = (0..64).any(|channel| framing.channel(channel).is_some());
            let Some(data) = framing.next_data() else { break };
            match data {
                CameraData::Message(message) => {
                    check_message(&framing, streaming, &message);
                    passed += message.len();
                }
                CameraData::Lost(count) => {
                    assert!(count > 0, "a resynchronisation drops at least a byte");
                    dropped += count;
                }
            }
        }
        assert_eq!(passed + dropped + framing.buffered(), pushed, "bytes passed on, dropped and buffered add up");
        assert!(framing.buffered() < MAX_MESSAGE, "{} bytes buffered", framing.buffered());
    }
});

/// A message passed on is whole; once channels are set up (`streaming`), it is one retina
/// accepts. A packet does not change what the channels carry, so `framing` still tells.
fn check_message(framing: &CameraFraming, streaming: bool, message: &[u8]) {
    if message[0] == b'$' {
        assert!(message.len() >= 4, "a packet of {} bytes", message.len());
        let length = usize::from(u16::from_be_bytes([message[2], message[3]]));
        assert_eq!(message.len(), 4 + length, "a packet of the length its header gives");
        if !streaming {
            return;
        }
        let packet = &message[4..];
        match framing.channel(message[1]) {
            None => panic!("a packet on channel {}, which no SETUP answer named", message[1]),
            Some(Channel::Rtp) => {
                if let Err(problem) = retina::rtp::PacketHeader::validate(packet) {
                    panic!("an RTP packet retina refuses ({problem}): {packet:02x?}");
                }
            }
            Some(Channel::Rtcp) => {
                if let Err(problem) = rtcp_compound(packet) {
                    panic!("an RTCP packet retina refuses ({problem}): {packet:02x?}");
                }
            }
        }
    } else {
        let end = message.windows(4).position(|w| w == b"\r\n\r\n");
        assert!(end.is_some(), "an RTSP message without the end of its header: {:?}", String::from_utf8_lossy(message));
        if streaming {
            assert!(message.starts_with(b"RTSP/"), "an RTSP message that is no answer: {:?}", String::from_utf8_lossy(message));
        }
    }
}

/// A compound RTCP packet as retina reads one: packets back to back to the last byte, padding
/// on the last one only.
fn rtcp_compound(mut packets: &[u8]) -> Result<(), String> {
    loop {
        let (packet, rest) = retina::rtcp::PacketRef::parse(packets)?;
        if rest.is_empty() {
            return Ok(());
        }
        if packet.has_padding() {
            return Err("padding on a packet that is not the last".into());
        }
        packets = rest;
    }
}
