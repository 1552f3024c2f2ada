//! ISO base media file format box primitives (ISO/IEC 14496-12 §4.2): a box's size is filled in
//! once its body is written.

use bytes::{BufMut, BytesMut};

/// Writes a box around what `body` writes.
pub(super) fn mp4_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags after the header.
pub(super) fn full_box(out: &mut BytesMut, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut BytesMut)) {
    mp4_box(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

/// An audio sample entry (ISO/IEC 14496-12 §12.2.3): the fields every audio codec's entry
/// begins with, then what `body` writes (the codec's configuration box).
pub(super) fn audio_sample_entry(out: &mut BytesMut, kind: &[u8; 4], channels: u16, sample_rate: u32, body: impl FnOnce(&mut BytesMut)) {
    mp4_box(out, kind, |out| {
        out.put_bytes(0, 6);
        out.put_u16(1); // data reference index
        out.put_bytes(0, 8);
        out.put_u16(channels);
        out.put_u16(16); // sample size
        out.put_u32(0); // pre-defined, reserved
        // 16.16 fixed point; rates above 65535 Hz do not fit, and the codec's box says the rate.
        out.put_u32(if sample_rate <= 0xffff { sample_rate << 16 } else { 0 });
        body(out);
    });
}
