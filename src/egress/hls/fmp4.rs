//! CMAF fragmented MP4 (ISO/IEC 14496-12, -15; ISO/IEC 23000-19) for an H.264 video track and,
//! where the path has audio, an audio track (AAC or Opus): the initialization segment and one
//! `moof`+`mdat` fragment per run of samples, with a `traf` per track that has samples.

use super::audio_format::AudioFormat;
use super::boxes::{full_box, mp4_box};
use crate::media::{VideoParameters, VIDEO_CLOCK_RATE};
use bytes::{BufMut, Bytes, BytesMut};

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;

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

/// What a `trak` box says beyond its sample entry.
struct Track<'a> {
    id: u32,
    timescale: u32,
    handler: &'a [u8; 4],
    name: &'a str,
    /// Width and height for video; none for audio, which has a volume instead.
    size: Option<(u32, u32)>,
}

fn trak(out: &mut BytesMut, track: &Track<'_>, sample_entry: impl FnOnce(&mut BytesMut)) {
    mp4_box(out, b"trak", |out| {
        full_box(out, b"tkhd", 0, 0x3, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(track.id);
            out.put_u32(0);
            out.put_u32(0); // duration
            out.put_bytes(0, 8);
            out.put_u16(0); // layer
            out.put_u16(0); // alternate group
            out.put_u16(if track.size.is_some() { 0 } else { 0x0100 }); // volume: 1.0 for audio
            out.put_u16(0);
            matrix(out);
            let (width, height) = track.size.unwrap_or((0, 0));
            out.put_u32(width << 16);
            out.put_u32(height << 16);
        });
        mp4_box(out, b"mdia", |out| {
            full_box(out, b"mdhd", 0, 0, |out| {
                out.put_u32(0);
                out.put_u32(0);
                out.put_u32(track.timescale);
                out.put_u32(0);
                out.put_u16(0x55c4); // language "und"
                out.put_u16(0);
            });
            full_box(out, b"hdlr", 0, 0, |out| {
                out.put_u32(0);
                out.put_slice(track.handler);
                out.put_bytes(0, 12);
                out.put_slice(track.name.as_bytes());
                out.put_u8(0);
            });
            mp4_box(out, b"minf", |out| {
                match track.size {
                    Some(_) => full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8)),
                    None => full_box(out, b"smhd", 0, 0, |out| out.put_u32(0)), // balance, reserved
                }
                mp4_box(out, b"dinf", |out| {
                    full_box(out, b"dref", 0, 0, |out| {
                        out.put_u32(1);
                        full_box(out, b"url ", 0, 1, |_| {}); // media in this file
                    });
                });
                mp4_box(out, b"stbl", |out| {
                    full_box(out, b"stsd", 0, 0, |out| {
                        out.put_u32(1);
                        sample_entry(out);
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
}

/// The `avc1` sample entry.
fn avc1(out: &mut BytesMut, parameters: &VideoParameters) {
    mp4_box(out, b"avc1", |out| {
        out.put_bytes(0, 6);
        out.put_u16(1); // data reference index
        out.put_bytes(0, 16);
        out.put_u16(parameters.width as u16);
        out.put_u16(parameters.height as u16);
        out.put_u32(0x0048_0000); // 72 dpi
        out.put_u32(0x0048_0000);
        out.put_u32(0);
        out.put_u16(1); // frame count
        out.put_bytes(0, 32); // compressor name
        out.put_u16(0x0018); // depth
        out.put_i16(-1);
        mp4_box(out, b"avcC", |out| avc_configuration(out, parameters));
    });
}

/// The initialization segment: `ftyp` and a `moov` describing the video track (id 1) and the
/// audio track (id 2) if there is one, with no samples.
pub fn init_segment(video: &VideoParameters, audio: Option<&AudioFormat>) -> Bytes {
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
            out.put_u32(AUDIO_TRACK + 1); // next track id
        });
        let video_track = Track { id: VIDEO_TRACK, timescale: VIDEO_CLOCK_RATE, handler: b"vide", name: "Lookout video", size: Some((video.width, video.height)) };
        trak(out, &video_track, |out| avc1(out, video));
        if let Some(format) = audio {
            let audio_track = Track { id: AUDIO_TRACK, timescale: format.timescale(), handler: b"soun", name: "Lookout audio", size: None };
            trak(out, &audio_track, |out| format.sample_entry(out));
        }
        mp4_box(out, b"mvex", |out| {
            for id in std::iter::once(VIDEO_TRACK).chain(audio.map(|_| AUDIO_TRACK)) {
                full_box(out, b"trex", 0, 0, |out| {
                    out.put_u32(id);
                    out.put_u32(1); // sample description index
                    out.put_u32(0);
                    out.put_u32(0);
                    out.put_u32(0);
                });
            }
        });
    });
    out.freeze()
}

/// One sample of a fragment: a video frame in 4-byte length-prefixed form, or an audio access
/// unit (AAC) or packet (Opus).
pub struct Sample<'a> {
    pub data: &'a [u8],
    /// In the track's timescale.
    pub duration: u32,
    /// A sync sample: a keyframe, or any audio access unit.
    pub keyframe: bool,
}

/// sample_flags (ISO/IEC 14496-12 §8.8.3.1): a sync sample depends on no other; any other
/// depends on others and is not a sync sample.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The samples of one track in a fragment. `decode_time` is the first sample's, in the track's
/// timescale (90 kHz for video, the sample rate for audio).
pub struct TrackRun<'a> {
    pub track_id: u32,
    pub decode_time: u64,
    pub samples: Vec<Sample<'a>>,
}

/// A `moof` + `mdat` fragment: a `traf` per run that has samples, their data one run after the
/// other in the `mdat`.
pub fn fragment(sequence_number: u32, runs: &[TrackRun<'_>]) -> Bytes {
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|run| !run.samples.is_empty()).collect();
    let payload: usize = runs.iter().flat_map(|run| &run.samples).map(|s| s.data.len()).sum();
    let sample_count: usize = runs.iter().map(|run| run.samples.len()).sum();
    let mut out = BytesMut::with_capacity(128 + 100 * runs.len() + 12 * sample_count + payload);
    let mut data_offsets_at = Vec::with_capacity(runs.len());
    mp4_box(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence_number));
        for run in &runs {
            mp4_box(out, b"traf", |out| {
                full_box(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(run.track_id)); // default-base-is-moof
                full_box(out, b"tfdt", 1, 0, |out| out.put_u64(run.decode_time));
                // data-offset, and per sample: duration, size, flags.
                full_box(out, b"trun", 0, 0x0001 | 0x0100 | 0x0200 | 0x0400, |out| {
                    out.put_u32(run.samples.len() as u32);
                    data_offsets_at.push(out.len());
                    out.put_u32(0);
                    for sample in &run.samples {
                        out.put_u32(sample.duration);
                        out.put_u32(sample.data.len() as u32);
                        out.put_u32(if sample.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE });
                    }
                });
            });
        }
    });
    // Each run's first sample, from the start of moof: past moof, the mdat header and the
    // runs before it.
    let mut data_offset = out.len() + 8;
    for (run, at) in runs.iter().zip(data_offsets_at) {
        out[at..at + 4].copy_from_slice(&(data_offset as u32).to_be_bytes());
        data_offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    out.put_u32((8 + payload) as u32);
    out.put_slice(b"mdat");
    for sample in runs.iter().flat_map(|run| &run.samples) {
        out.put_slice(sample.data);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::hls::opus_sample_entry::OpusFormat;
    use crate::media::AacConfig;
    use std::sync::Arc;

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

    fn be32(data: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(data[at..at + 4].try_into().unwrap())
    }

    /// Where each box of `kind` starts (at its size), anywhere in `data`.
    fn find_all(data: &[u8], kind: &[u8; 4]) -> Vec<usize> {
        data.windows(4).enumerate().filter(|(_, w)| w == kind).map(|(i, _)| i - 4).collect()
    }

    fn parameters() -> VideoParameters {
        VideoParameters { width: 640, height: 360, sps: Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac]), pps: Bytes::from_static(&[0x68, 0xee]) }
    }

    #[test]
    fn init_segment_is_ftyp_then_moov() {
        let init = init_segment(&parameters(), None);
        assert_eq!(box_types(&init), vec!["ftyp", "moov"]);
        let avcc = init.windows(4).position(|w| w == b"avcC").expect("avcC present") + 4;
        assert_eq!(&init[avcc..avcc + 4], &[1, 0x64, 0x00, 0x1f], "profile and level from the SPS");
        assert_eq!(find_all(&init, b"trak").len(), 1, "video only");
    }

    #[test]
    fn init_segment_with_aac_has_a_sound_track_in_the_sample_rate() {
        let config = AacConfig::parse(&[0x11, 0x90]).expect("AAC-LC 48 kHz stereo");
        let init = init_segment(&parameters(), Some(&AudioFormat::Aac(Arc::new(config))));
        let moov = &init[be32(&init, 0) as usize..];
        assert_eq!(box_types(&moov[8..]), vec!["mvhd", "trak", "trak", "mvex"], "boxes in moov");
        let traks = find_all(&init, b"trak");
        let (video, audio) = (&init[traks[0]..], &init[traks[1]..]);
        let track_id = |trak: &[u8]| be32(trak, find_all(trak, b"tkhd")[0] + 20);
        let timescale = |trak: &[u8]| be32(trak, find_all(trak, b"mdhd")[0] + 20);
        assert_eq!((track_id(video), timescale(video)), (VIDEO_TRACK, VIDEO_CLOCK_RATE));
        assert_eq!((track_id(audio), timescale(audio)), (AUDIO_TRACK, 48_000));
        let handler = find_all(audio, b"hdlr")[0];
        assert_eq!(&audio[handler + 16..handler + 20], b"soun");
        assert!(!find_all(audio, b"smhd").is_empty() && !find_all(audio, b"mp4a").is_empty());
        let trex: Vec<u32> = find_all(&init, b"trex").into_iter().map(|at| be32(&init, at + 12)).collect();
        assert_eq!(trex, vec![VIDEO_TRACK, AUDIO_TRACK], "a trex per track");
        let mvhd = find_all(&init, b"mvhd")[0];
        assert_eq!(be32(&init, mvhd + 8 + 96), AUDIO_TRACK + 1, "next track id");
    }

    #[test]
    fn init_segment_with_opus_has_an_opus_entry_in_48_khz() {
        let format = AudioFormat::Opus(OpusFormat { channels: 1, pre_skip: 120 });
        let init = init_segment(&parameters(), Some(&format));
        let audio = &init[find_all(&init, b"trak")[1]..];
        assert_eq!(be32(audio, find_all(audio, b"mdhd")[0] + 20), 48_000, "timescale");
        let entry = find_all(audio, b"Opus")[0];
        let dops = find_all(audio, b"dOps")[0];
        assert_eq!(dops, entry + 36, "dOps follows the audio sample entry's fields");
        assert_eq!(&audio[dops + 8..dops + 12], &[0, 1, 0, 120], "version, channels, pre-skip");
    }

    #[test]
    fn fragment_data_offset_points_at_the_first_sample() {
        let samples = vec![Sample { data: &[0, 0, 0, 2, 0x65, 0xaa], duration: 3000, keyframe: true }, Sample { data: &[0, 0, 0, 1, 0x41], duration: 3000, keyframe: false }];
        let first = samples[0].data;
        let fragment = fragment(7, &[TrackRun { track_id: VIDEO_TRACK, decode_time: 90_000, samples }]);
        assert_eq!(box_types(&fragment), vec!["moof", "mdat"]);
        let trun = fragment.windows(4).position(|w| w == b"trun").expect("trun") + 4;
        let offset = u32::from_be_bytes(fragment[trun + 8..trun + 12].try_into().unwrap()) as usize;
        assert_eq!(&fragment[offset..offset + 6], first);
    }

    #[test]
    fn fragment_has_a_traf_per_track_with_samples_each_pointing_at_its_own_data() {
        let video = vec![Sample { data: &[0, 0, 0, 1, 0x65], duration: 3000, keyframe: true }];
        let audio = vec![Sample { data: &[0xa1, 0xa2], duration: 1024, keyframe: true }, Sample { data: &[0xa3], duration: 1024, keyframe: true }];
        let runs = [
            TrackRun { track_id: VIDEO_TRACK, decode_time: 180_000, samples: video },
            TrackRun { track_id: AUDIO_TRACK, decode_time: 32_000, samples: audio },
            TrackRun { track_id: 3, decode_time: 0, samples: Vec::new() },
        ];
        let fragment = fragment(1, &runs);
        let trafs = find_all(&fragment, b"traf");
        assert_eq!(trafs.len(), 2, "no traf for a track without samples");
        for (traf, run) in trafs.iter().zip(&runs) {
            let traf = &fragment[*traf..];
            assert_eq!(be32(traf, find_all(traf, b"tfhd")[0] + 12), run.track_id);
            let tfdt = find_all(traf, b"tfdt")[0];
            assert_eq!(u64::from_be_bytes(traf[tfdt + 12..tfdt + 20].try_into().unwrap()), run.decode_time);
            let trun = find_all(traf, b"trun")[0];
            assert_eq!(be32(traf, trun + 12) as usize, run.samples.len());
            let offset = be32(traf, trun + 16) as usize;
            assert_eq!(&fragment[offset..offset + run.samples[0].data.len()], run.samples[0].data, "track {}", run.track_id);
            assert_eq!(be32(traf, trun + 20), run.samples[0].duration);
        }
        let mdat = find_all(&fragment, b"mdat")[0];
        assert_eq!(&fragment[mdat + 8..], &[0, 0, 0, 1, 0x65, 0xa1, 0xa2, 0xa3]);
    }
}
