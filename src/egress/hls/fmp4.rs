//! CMAF fragmented MP4 (ISO/IEC 14496-12, -15; ISO/IEC 23000-19) for an H.264 video track and,
//! where the path has audio, an audio track (AAC or Opus): the initialization segment and one
//! `moof`+`mdat` fragment per run of samples, with a `traf` per track that has samples. The
//! boxes are mp4-atom's; what goes in them is decided here.

use super::audio_format::AudioFormat;
use crate::media::{VideoParameters, VIDEO_CLOCK_RATE};
use bytes::Bytes;
use mp4_atom::{
    Avc1, Avcc, Codec, Dinf, Dref, Encode, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url, Visual, Vmhd,
};

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("the camera's SPS has {0} bytes, too few for the AVC configuration (profile and level)")]
    ShortSps(usize),
    #[error("writing the {what}: {source}")]
    Encode { what: &'static str, source: mp4_atom::Error },
}

/// The initialization segment: `ftyp` and a `moov` describing the video track (id 1) and the
/// audio track (id 2) if there is one, with no samples.
pub fn init_segment(video: &VideoParameters, audio: Option<&AudioFormat>) -> Result<Bytes, Fmp4Error> {
    if video.sps.len() < 4 {
        return Err(Fmp4Error::ShortSps(video.sps.len()));
    }
    let avcc = Avcc::new(&video.sps, &video.pps).map_err(|source| Fmp4Error::Encode { what: "AVC configuration", source })?;
    let entry = Visual { data_reference_index: 1, width: video.width as u16, height: video.height as u16, ..Visual::default() };
    let video_track = trak(VIDEO_TRACK, VIDEO_CLOCK_RATE, Handler::Video { width: video.width, height: video.height }, Codec::Avc1(Avc1 { visual: entry, avcc, ..Avc1::default() }));
    let mut traks = vec![video_track];
    traks.extend(audio.map(|format| trak(AUDIO_TRACK, format.timescale(), Handler::Sound, format.sample_entry())));
    let trex = traks.iter().map(|trak| Trex { track_id: trak.tkhd.track_id, default_sample_description_index: 1, ..Trex::default() }).collect();
    let ftyp = Ftyp { major_brand: b"iso6".into(), minor_version: 0, compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"avc1".into(), b"mp41".into()] };
    let moov = Moov {
        mvhd: Mvhd { timescale: 1000, rate: 1.into(), volume: 1.into(), next_track_id: AUDIO_TRACK + 1, ..Mvhd::default() },
        mvex: Some(Mvex { mehd: None, trex }),
        trak: traks,
        ..Moov::default()
    };
    let mut out = Vec::with_capacity(1024);
    encode(&ftyp, &mut out, "ftyp")?;
    encode(&moov, &mut out, "moov")?;
    Ok(Bytes::from(out))
}

enum Handler {
    Video { width: u32, height: u32 },
    Sound,
}

/// A track of no samples (they come in fragments) described by `entry`.
fn trak(track_id: u32, timescale: u32, handler: Handler, entry: Codec) -> Trak {
    let (width, height) = match handler {
        Handler::Video { width, height } => (width as u16, height as u16),
        Handler::Sound => (0, 0),
    };
    let sound = matches!(handler, Handler::Sound);
    let tkhd = Tkhd {
        track_id,
        enabled: true,
        in_movie: true,
        volume: if sound { 1.into() } else { 0.into() },
        width: width.into(),
        height: height.into(),
        ..Tkhd::default()
    };
    let hdlr = if sound { Hdlr { handler: b"soun".into(), name: "Lookout audio".to_owned() } } else { Hdlr { handler: b"vide".into(), name: "Lookout video".to_owned() } };
    let minf = Minf {
        vmhd: (!sound).then(|| Vmhd { graphics_mode: 0, ..Vmhd::default() }),
        smhd: sound.then(Smhd::default),
        // The media is in this file.
        dinf: Dinf { dref: Dref { entries: vec![Url { location: String::new() }.into()] } },
        // The samples are in the fragments, so every table is empty; but the chunk-offset table
        // must be there (ISO/IEC 14496-12 §8.7.5): Firefox cannot open an init segment without it.
        stbl: Stbl { stsd: Stsd { codecs: vec![entry] }, stco: Some(Stco::default()), ..Stbl::default() },
        ..Minf::default()
    };
    let mdia = Mdia { mdhd: Mdhd { timescale, language: "und".to_owned(), ..Mdhd::default() }, hdlr, minf };
    Trak { tkhd, mdia, ..Trak::default() }
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
pub fn fragment(sequence_number: u32, runs: &[TrackRun<'_>]) -> Result<Bytes, Fmp4Error> {
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|run| !run.samples.is_empty()).collect();
    let run_bytes: Vec<usize> = runs.iter().map(|run| run.samples.iter().map(|s| s.data.len()).sum()).collect();
    let payload: usize = run_bytes.iter().sum();
    let mut moof = Moof { mfhd: Mfhd { sequence_number }, traf: runs.iter().map(|run| traf(run)).collect() };
    // Each run's data offset counts from the start of the moof, whose size does not depend on
    // the offsets' values: measure it, then fill them in.
    let mut measured = Vec::new();
    moof.encode(&mut measured).map_err(|source| Fmp4Error::Encode { what: "moof", source })?;
    let mut data_offset = measured.len() + MDAT_HEADER;
    for (traf, bytes) in moof.traf.iter_mut().zip(&run_bytes) {
        for trun in &mut traf.trun {
            trun.data_offset = Some(i32::try_from(data_offset).map_err(|_| Fmp4Error::Encode { what: "moof", source: mp4_atom::Error::TooLarge(b"trun".into()) })?);
        }
        data_offset += bytes;
    }
    let mut out = Vec::with_capacity(measured.len() + MDAT_HEADER + payload);
    encode(&moof, &mut out, "moof")?;
    // The mdat's header is written here so that the samples are copied once, straight in.
    let mdat_size = u32::try_from(MDAT_HEADER + payload).map_err(|_| Fmp4Error::Encode { what: "mdat", source: mp4_atom::Error::TooLarge(b"mdat".into()) })?;
    out.extend_from_slice(&mdat_size.to_be_bytes());
    out.extend_from_slice(b"mdat");
    for sample in runs.iter().flat_map(|run| &run.samples) {
        out.extend_from_slice(sample.data);
    }
    Ok(Bytes::from(out))
}

/// An `mdat` box's header: its size and type.
const MDAT_HEADER: usize = 8;

fn traf(run: &TrackRun<'_>) -> Traf {
    let entries = run
        .samples
        .iter()
        .map(|sample| TrunEntry {
            duration: Some(sample.duration),
            size: Some(sample.data.len() as u32),
            flags: Some(if sample.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
            cts: None,
        })
        .collect();
    Traf {
        tfhd: Tfhd { track_id: run.track_id, default_base_is_moof: true, ..Tfhd::default() },
        tfdt: Some(Tfdt { base_media_decode_time: run.decode_time }),
        trun: vec![Trun { data_offset: Some(0), samples: TrunSamples::Explicit(entries) }],
        ..Traf::default()
    }
}

fn encode(atom: &impl Encode, out: &mut Vec<u8>, what: &'static str) -> Result<(), Fmp4Error> {
    atom.encode(out).map_err(|source| Fmp4Error::Encode { what, source })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::hls::audio_format::OpusFormat;
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

    /// The u32 of a full box that follows its creation and modification times: 4 bytes each
    /// in version 0, 8 in version 1 (`tkhd`'s track id, `mdhd`'s timescale, after `skip`
    /// more bytes).
    fn after_times(data: &[u8], at: usize, skip: usize) -> u32 {
        let times = if data[at + 8] == 1 { 16 } else { 8 };
        be32(data, at + 12 + times + skip)
    }

    /// A `trun`'s sample count, data offset and first sample's duration, as its flags lay them
    /// out (ISO/IEC 14496-12 §8.8.8).
    fn trun_fields(data: &[u8], at: usize) -> (u32, u32, u32) {
        let flags = be32(data, at + 8) & 0x00ff_ffff;
        let count = be32(data, at + 12);
        assert!(flags & 0x1 != 0 && flags & 0x100 != 0, "data offset and durations present: {flags:#x}");
        let first_sample = at + 20 + if flags & 0x4 != 0 { 4 } else { 0 };
        (count, be32(data, at + 16), be32(data, first_sample))
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
        let init = init_segment(&parameters(), None).expect("init");
        assert_eq!(box_types(&init), vec!["ftyp", "moov"]);
        let avcc = init.windows(4).position(|w| w == b"avcC").expect("avcC present") + 4;
        assert_eq!(&init[avcc..avcc + 4], &[1, 0x64, 0x00, 0x1f], "profile and level from the SPS");
        assert_eq!(find_all(&init, b"trak").len(), 1, "video only");
        let at = find_all(&init, b"stbl")[0];
        let stbl = &init[at..at + be32(&init, at) as usize];
        assert_eq!(box_types(&stbl[8..]), vec!["stsd", "stts", "stsc", "stsz", "stco"], "every table a player may require, empty");
    }

    #[test]
    fn init_segment_with_aac_has_a_sound_track_in_the_sample_rate() {
        let config = AacConfig::parse(&[0x11, 0x90]).expect("AAC-LC 48 kHz stereo");
        let init = init_segment(&parameters(), Some(&AudioFormat::Aac(Arc::new(config)))).expect("init");
        let moov = &init[be32(&init, 0) as usize..];
        let mut boxes = box_types(&moov[8..]);
        assert_eq!(boxes.remove(0), "mvhd", "mvhd first");
        boxes.sort();
        // ISO/IEC 14496-12 leaves the order of moov's other boxes free.
        assert_eq!(boxes, vec!["mvex", "trak", "trak"], "boxes in moov");
        let traks = find_all(&init, b"trak");
        let (video, audio) = (&init[traks[0]..], &init[traks[1]..]);
        let track_id = |trak: &[u8]| after_times(trak, find_all(trak, b"tkhd")[0], 0);
        let timescale = |trak: &[u8]| after_times(trak, find_all(trak, b"mdhd")[0], 0);
        assert_eq!((track_id(video), timescale(video)), (VIDEO_TRACK, VIDEO_CLOCK_RATE));
        assert_eq!((track_id(audio), timescale(audio)), (AUDIO_TRACK, 48_000));
        let handler = find_all(audio, b"hdlr")[0];
        assert_eq!(&audio[handler + 16..handler + 20], b"soun");
        assert!(!find_all(audio, b"smhd").is_empty() && !find_all(audio, b"mp4a").is_empty());
        // esds (ISO/IEC 14496-1 §7.2.6): MPEG-4 audio in an audio stream, and the
        // AudioSpecificConfig as it came in the decoder-specific info (tag 5, 2 bytes).
        let esds = find_all(audio, b"esds")[0];
        let esds = &audio[esds..esds + be32(audio, esds) as usize];
        assert!(esds.windows(2).any(|w| w == [0x40, 0x15]), "object type and stream type: {esds:02x?}");
        assert!(esds.windows(4).any(|w| w == [0x05, 0x02, 0x11, 0x90]), "the config as it came: {esds:02x?}");
        let trex: Vec<u32> = find_all(&init, b"trex").into_iter().map(|at| be32(&init, at + 12)).collect();
        assert_eq!(trex, vec![VIDEO_TRACK, AUDIO_TRACK], "a trex per track");
        let mvhd = find_all(&init, b"mvhd")[0];
        // timescale, duration, rate, volume, reserved, matrix, pre-defined: then the next id.
        let duration = if init[mvhd + 8] == 1 { 8 } else { 4 };
        assert_eq!(after_times(&init, mvhd, 4 + duration + 4 + 2 + 10 + 36 + 24), AUDIO_TRACK + 1, "next track id");
    }

    #[test]
    fn init_segment_with_opus_has_an_opus_entry_in_48_khz() {
        let format = AudioFormat::Opus(OpusFormat { channels: 1, pre_skip: 120 });
        let init = init_segment(&parameters(), Some(&format)).expect("init");
        let audio = &init[find_all(&init, b"trak")[1]..];
        assert_eq!(after_times(audio, find_all(audio, b"mdhd")[0], 0), 48_000, "timescale");
        let entry = find_all(audio, b"Opus")[0];
        let dops = find_all(audio, b"dOps")[0];
        assert_eq!(dops, entry + 36, "dOps follows the audio sample entry's fields");
        assert_eq!(&audio[dops + 8..dops + 12], &[0, 1, 0, 120], "version, channels, pre-skip");
    }

    #[test]
    fn fragment_data_offset_points_at_the_first_sample() {
        let samples = vec![Sample { data: &[0, 0, 0, 2, 0x65, 0xaa], duration: 3000, keyframe: true }, Sample { data: &[0, 0, 0, 1, 0x41], duration: 3000, keyframe: false }];
        let first = samples[0].data;
        let fragment = fragment(7, &[TrackRun { track_id: VIDEO_TRACK, decode_time: 90_000, samples }]).expect("fragment");
        assert_eq!(box_types(&fragment), vec!["moof", "mdat"]);
        let (_, offset, _) = trun_fields(&fragment, find_all(&fragment, b"trun")[0]);
        let offset = offset as usize;
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
        let fragment = fragment(1, &runs).expect("fragment");
        let trafs = find_all(&fragment, b"traf");
        assert_eq!(trafs.len(), 2, "no traf for a track without samples");
        for (traf, run) in trafs.iter().zip(&runs) {
            let traf = &fragment[*traf..];
            assert_eq!(be32(traf, find_all(traf, b"tfhd")[0] + 12), run.track_id);
            let tfdt = find_all(traf, b"tfdt")[0];
            assert_eq!(u64::from_be_bytes(traf[tfdt + 12..tfdt + 20].try_into().unwrap()), run.decode_time);
            let (count, offset, duration) = trun_fields(traf, find_all(traf, b"trun")[0]);
            assert_eq!(count as usize, run.samples.len());
            let offset = offset as usize;
            assert_eq!(&fragment[offset..offset + run.samples[0].data.len()], run.samples[0].data, "track {}", run.track_id);
            assert_eq!(duration, run.samples[0].duration);
        }
        let mdat = find_all(&fragment, b"mdat")[0];
        assert_eq!(&fragment[mdat + 8..], &[0, 0, 0, 1, 0x65, 0xa1, 0xa2, 0xa3]);
    }
}
