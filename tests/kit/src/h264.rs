//! Checks on the H.264 a viewer received: what NAL units came first, and whether the stream
//! decodes (with openh264's decoder, independent of how Lookout produced it).

use anyhow::{bail, Context};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use rtc::rtp::packet::Packet;

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
pub const SPS: u8 = 7;
pub const PPS: u8 = 8;
pub const IDR: u8 = 5;

/// Whether an RTP payload (RFC 6184) begins an IDR access unit: SPS, an IDR slice, a STAP-A
/// that starts with either, or the first fragment of an IDR.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    let kind = |byte: u8| byte & 0x1f;
    match payload {
        [first, ..] if matches!(kind(*first), IDR | SPS) => true,
        [first, _, _, inner, ..] if kind(*first) == STAP_A => matches!(kind(*inner), IDR | SPS),
        [first, fu, ..] if kind(*first) == FU_A => fu & 0x80 != 0 && kind(*fu) == IDR,
        _ => false,
    }
}

/// The packets from the first one that starts a keyframe: where a decoder can begin.
pub fn from_first_keyframe(packets: &[Packet]) -> &[Packet] {
    let start = packets.iter().position(|p| starts_keyframe(&p.payload)).unwrap_or(packets.len());
    &packets[start..]
}

/// Reassembles RFC 6184 payloads into NAL units, one list per access unit (split at marker bits).
pub fn access_units(packets: &[Packet]) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    let mut units = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut fragment: Option<Vec<u8>> = None;
    for packet in packets {
        let payload = &packet.payload[..];
        let Some(&header) = payload.first() else { bail!("empty payload (seq {})", packet.header.sequence_number) };
        match header & 0x1f {
            STAP_A => {
                let mut rest = &payload[1..];
                while rest.len() >= 2 {
                    let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    let nal = rest.get(2..2 + size).context("STAP-A unit runs past the payload")?;
                    current.push(nal.to_vec());
                    rest = &rest[2 + size..];
                }
            }
            FU_A => {
                let fu = *payload.get(1).context("FU-A without its header")?;
                if fu & 0x80 != 0 {
                    fragment = Some(vec![(header & 0xe0) | (fu & 0x1f)]);
                }
                match fragment.as_mut() {
                    Some(nal) => nal.extend_from_slice(&payload[2..]),
                    None => bail!("FU-A continuation without a start (seq {})", packet.header.sequence_number),
                }
                if fu & 0x40 != 0 {
                    current.extend(fragment.take());
                }
            }
            _ => current.push(payload.to_vec()),
        }
        if packet.header.marker {
            units.push(std::mem::take(&mut current));
        }
    }
    Ok(units)
}

/// NAL unit types of the first access unit.
pub fn first_access_unit_types(packets: &[Packet]) -> anyhow::Result<Vec<u8>> {
    let units = access_units(packets)?;
    let first = units.first().context("no complete access unit")?;
    Ok(first.iter().map(|nal| nal[0] & 0x1f).collect())
}

#[derive(Debug)]
pub struct DecodeReport {
    pub access_units: usize,
    pub pictures: usize,
    pub width: usize,
    pub height: usize,
}

/// Decodes every complete access unit; any decoder error fails.
pub fn decode(packets: &[Packet]) -> anyhow::Result<DecodeReport> {
    let units = access_units(packets)?;
    let mut decoder = Decoder::new().context("creating the openh264 decoder")?;
    let (mut pictures, mut width, mut height) = (0, 0, 0);
    for (i, unit) in units.iter().enumerate() {
        let mut annex_b = Vec::new();
        for nal in unit {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(nal);
        }
        match decoder.decode(&annex_b) {
            Ok(Some(picture)) => {
                pictures += 1;
                (width, height) = picture.dimensions();
            }
            Ok(None) => {}
            Err(error) => bail!("access unit {i} does not decode: {error}"),
        }
    }
    Ok(DecodeReport { access_units: units.len(), pictures, width, height })
}
