//! CMAF fragmented MP4 (ISO/IEC 14496-12, -15; ISO/IEC 23000-19) for one H.264 video track:
//! the initialization segment and one `moof`+`mdat` fragment per run of frames.

use crate::media::{VideoParameters, VIDEO_CLOCK_RATE};
use bytes::{BufMut, Bytes, BytesMut};

const TRACK_ID: u32 = 1;

/// Writes a box: its size is filled in once the body is written.
fn mp4_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags after the header.
fn full_box(out: &mut BytesMut, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut BytesMut)) {
    mp4_box(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
fn matrix(out: &mut BytesMut) {
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.put_u32(value);
    }
}

/// The AVC decoder configuration record (ISO/IEC 14496-15 §5.3.3.1) from the SPS and PPS.
fn avc_configuration(out: &mut BytesMut, parameters: &VideoParameters) {
    let profile = |i: usize| parameters.sps.get(i).copied().unwrap_or(0);
    out.put_u8(1);
    out.put_u8(profile(1));
    out.put_u8(profile(2));
    out.put_u8(profile(3));
    out.put_u8(0xff); // 4-byte NAL lengths
    out.put_u8(0xe1); // one SPS
    out.put_u16(parameters.sps.len() as u16);
    out.put_slice(&parameters.sps);
    out.put_u8(1); // one PPS
    out.put_u16(parameters.pps.len() as u16);
    out.put_slice(&parameters.pps);
}

/// The initialization segment: `ftyp` and a `moov` describing the track, with no samples.
pub fn init_segment(parameters: &VideoParameters) -> Bytes {
    let (width, height) = (parameters.width, parameters.height);
    let mut out = BytesMut::with_capacity(1024);
    mp4_box(&mut out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        for brand in [b"iso6", b"cmfc", b"avc1", b"mp41"] {
            out.put_slice(brand);
        }
    });
    mp4_box(&mut out, b"moov", |out| {
        full_box(out, b"mvhd", 0, 0, |out| {
            out.put_u32(0); // creation time
            out.put_u32(0); // modification time
            out.put_u32(1000); // timescale
            out.put_u32(0); // duration: unknown, fragmented
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.put_bytes(0, 10);
            matrix(out);
            out.put_bytes(0, 24);
            out.put_u32(TRACK_ID + 1); // next track id
        });
        mp4_box(out, b"trak", |out| {
            full_box(out, b"tkhd", 0, 0x3, |out| {
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(TRACK_ID);
                out.put_u32(0);
                out.put_u32(0); // duration
                out.put_bytes(0, 8);
                out.put_u16(0); // layer
                out.put_u16(0); // alternate group
                out.put_u16(0); // volume: video
                out.put_u16(0);
                matrix(out);
                out.put_u32(width << 16);
                out.put_u32(height << 16);
            });
            mp4_box(out, b"mdia", |out| {
                full_box(out, b"mdhd", 0, 0, |out| {
                    out.put_u32(0);
                    out.put_u32(0);
                    out.put_u32(VIDEO_CLOCK_RATE);
                    out.put_u32(0);
                    out.put_u16(0x55c4); // language "und"
                    out.put_u16(0);
                });
                full_box(out, b"hdlr", 0, 0, |out| {
                    out.put_u32(0);
                    out.put_slice(b"vide");
                    out.put_bytes(0, 12);
                    out.put_slice(b"Lookout video\0");
                });
                mp4_box(out, b"minf", |out| {
                    full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8));
                    mp4_box(out, b"dinf", |out| {
                        full_box(out, b"dref", 0, 0, |out| {
                            out.put_u32(1);
                            full_box(out, b"url ", 0, 1, |_| {}); // media in this file
                        });
                    });
                    mp4_box(out, b"stbl", |out| {
                        full_box(out, b"stsd", 0, 0, |out| {
                            out.put_u32(1);
                            mp4_box(out, b"avc1", |out| {
                                out.put_bytes(0, 6);
                                out.put_u16(1); // data reference index
                                out.put_bytes(0, 16);
                                out.put_u16(width as u16);
                                out.put_u16(height as u16);
                                out.put_u32(0x0048_0000); // 72 dpi
                                out.put_u32(0x0048_0000);
                                out.put_u32(0);
                                out.put_u16(1); // frame count
                                out.put_bytes(0, 32); // compressor name
                                out.put_u16(0x0018); // depth
                                out.put_i16(-1);
                                mp4_box(out, b"avcC", |out| avc_configuration(out, parameters));
                            });
                        });
                        for kind in [b"stts", b"stsc", b"stco"] {
                            full_box(out, kind, 0, 0, |out| out.put_u32(0));
                        }
                        full_box(out, b"stsz", 0, 0, |out| {
                            out.put_u32(0);
                            out.put_u32(0);
                        });
                    });
                });
            });
        });
        mp4_box(out, b"mvex", |out| {
            full_box(out, b"trex", 0, 0, |out| {
                out.put_u32(TRACK_ID);
                out.put_u32(1); // sample description index
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(0);
            });
        });
    });
    out.freeze()
}

/// One sample of a fragment: a frame in 4-byte length-prefixed form.
pub struct Sample<'a> {
    pub data: &'a [u8],
    /// In the 90 kHz clock.
    pub duration: u32,
    pub keyframe: bool,
}

/// sample_flags (ISO/IEC 14496-12 §8.8.3.1): a sync sample depends on no other; any other
/// depends on others and is not a sync sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// A `moof` + `mdat` fragment. `decode_time` is the first sample's, in the 90 kHz clock.
pub fn fragment(sequence_number: u32, decode_time: u64, samples: &[Sample<'_>]) -> Bytes {
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut out = BytesMut::with_capacity(128 + 12 * samples.len() + payload);
    let mut data_offset_at = 0;
    mp4_box(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence_number));
        mp4_box(out, b"traf", |out| {
            full_box(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(TRACK_ID)); // default-base-is-moof
            full_box(out, b"tfdt", 1, 0, |out| out.put_u64(decode_time));
            // data-offset, and per sample: duration, size, flags.
            full_box(out, b"trun", 0, 0x0001 | 0x0100 | 0x0200 | 0x0400, |out| {
                out.put_u32(samples.len() as u32);
                data_offset_at = out.len();
                out.put_u32(0);
                for sample in samples {
                    out.put_u32(sample.duration);
                    out.put_u32(sample.data.len() as u32);
                    out.put_u32(if sample.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE });
                }
            });
        });
    });
    // The first sample's offset from the start of moof: past moof and the mdat header.
    let data_offset = (out.len() + 8) as u32;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    out.put_u32((8 + payload) as u32);
    out.put_slice(b"mdat");
    for sample in samples {
        out.put_slice(sample.data);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a sequence of boxes, checking every size adds up, and returns their types.
    fn box_types(data: &[u8]) -> Vec<String> {
        let mut types = Vec::new();
        let mut offset = 0;
        while offset < data.len() {
            let size = u32::from_be_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && offset + size <= data.len(), "box at {offset} of size {size} fits");
            types.push(String::from_utf8_lossy(&data[offset + 4..offset + 8]).into_owned());
            offset += size;
        }
        types
    }

    #[test]
    fn init_segment_is_ftyp_then_moov() {
        let parameters = VideoParameters { width: 640, height: 360, sps: Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac]), pps: Bytes::from_static(&[0x68, 0xee]) };
        let init = init_segment(&parameters);
        assert_eq!(box_types(&init), vec!["ftyp", "moov"]);
        let avcc = init.windows(4).position(|w| w == b"avcC").expect("avcC present") + 4;
        assert_eq!(&init[avcc..avcc + 4], &[1, 0x64, 0x00, 0x1f], "profile and level from the SPS");
    }

    #[test]
    fn fragment_data_offset_points_at_the_first_sample() {
        let samples = [Sample { data: &[0, 0, 0, 2, 0x65, 0xaa], duration: 3000, keyframe: true }, Sample { data: &[0, 0, 0, 1, 0x41], duration: 3000, keyframe: false }];
        let fragment = fragment(7, 90_000, &samples);
        assert_eq!(box_types(&fragment), vec!["moof", "mdat"]);
        let trun = fragment.windows(4).position(|w| w == b"trun").expect("trun") + 4;
        let offset = u32::from_be_bytes(fragment[trun + 8..trun + 12].try_into().unwrap()) as usize;
        assert_eq!(&fragment[offset..offset + 6], samples[0].data);
    }
}
