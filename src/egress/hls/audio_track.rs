//! Which audio an HLS muxer's track carries, and how the hub's frames become its units: a
//! camera's AAC as it came; Opus as the hub has it (a camera's own, passed on); G.711 made
//! into Opus here, once per muxer and only while it runs. The choice is made when the
//! initialization segment is written; until then what arrives is kept, so that the track can
//! start near the first keyframe muxed (the cached one, seconds old).

use super::audio_feeds::{AudioFeeds, Feed, Incoming};
use super::audio_format::AudioFormat;
use super::audio_run::{AudioPart, AudioRun, AudioUnit};
use super::opus_sample_entry::OpusFormat;
use crate::media::g711_to_opus::G711ToOpus;
use crate::media::opus::{packet_duration, OPUS_CLOCK_RATE, OPUS_PACKET};
use crate::media::pcm_to_opus::{OpusPacket, ENCODER_DELAY_TICKS};
use crate::media::{AacConfig, AudioCodec};
use crate::stream::Stream;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Frames kept before the initialization segment: both feeds' recent frames and a little more.
const MAX_EARLY: usize = 2_048;
/// G.711 frames captured this long before the video's zero still go through the encoder, so
/// that the packets from zero on carry sound rather than the encoder's start.
const ENCODER_PREROLL: Duration = Duration::from_millis(100);
/// A camera's own Opus: its encoder's delay is not known; libopus's usual look-ahead (6.5 ms,
/// what Ogg Opus files from it state) is the likeliest.
const CAMERA_OPUS_PRE_SKIP: u16 = 312;

pub struct AudioTrack {
    /// The path's name, for the log.
    path: String,
    feeds: AudioFeeds,
    /// What arrived before the choice, oldest first within each feed.
    early: Vec<Incoming>,
    chosen: Option<Chosen>,
    decided: bool,
}

/// The chosen audio and its track.
struct Chosen {
    source: Source,
    run: AudioRun,
    /// Frames that did not fit the initialization segment (the camera came back with other
    /// audio) or could not be made into units: the first is logged, the others counted.
    left_out: u64,
}

enum Source {
    Aac(Arc<AacConfig>),
    Opus,
    /// Boxed: the Opus encoder's state is large beside the other sources.
    G711 { transcoder: Box<G711ToOpus>, packets: Vec<OpusPacket> },
}

impl AudioTrack {
    pub fn subscribe(stream: &Stream) -> Self {
        let (early, feeds) = AudioFeeds::subscribe(stream);
        Self { path: stream.name().to_owned(), feeds, early, chosen: None, decided: false }
    }

    /// Waits for the next audio frame and takes it.
    pub async fn receive(&mut self) {
        let incoming = self.feeds.recv().await;
        self.push(incoming);
    }

    /// Takes the frames that have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Some(incoming) = self.feeds.try_recv() {
            self.push(incoming);
        }
    }

    fn push(&mut self, incoming: Incoming) {
        match &mut self.chosen {
            Some(chosen) => chosen.push(incoming, &self.path),
            None if !self.decided && self.early.len() < MAX_EARLY => self.early.push(incoming),
            None => {}
        }
    }

    /// Chooses the path's audio as the hub has it now, for a track whose zero is the keyframe
    /// captured at `origin`: its format for the initialization segment, or `None` without
    /// audio (or with audio that cannot be carried).
    pub fn start(&mut self, stream: &Stream, origin: SystemTime) -> Option<AudioFormat> {
        self.decided = true;
        let early = std::mem::take(&mut self.early);
        let chosen = choose(stream);
        self.feeds.keep(chosen.as_ref().map(|(source, _)| source.feed()));
        let (source, format) = chosen?;
        let mut chosen = Chosen { source, run: AudioRun::new(format.timescale(), format.delay()), left_out: 0 };
        for incoming in early.into_iter().filter(|f| f.captured_at() + ENCODER_PREROLL >= origin) {
            chosen.push(incoming, &self.path);
        }
        self.chosen = Some(chosen);
        Some(format)
    }

    /// Drops the units before `secs` on the video's timeline: the video they went with is gone.
    pub fn drop_before(&mut self, secs: f64) {
        if let Some(chosen) = &mut self.chosen {
            chosen.run.drop_before(secs);
        }
    }

    /// The units of the part ending at `end_secs` on the video's timeline (zero: the keyframe
    /// captured at `origin`).
    pub fn take_until(&mut self, origin: SystemTime, end_secs: f64) -> Option<AudioPart> {
        self.chosen.as_mut()?.run.take_until(origin, end_secs)
    }
}

/// AAC where the camera sends it (as it came, never transcoded), else the audio viewers get:
/// Opus as it is, G.711 transcoded to Opus.
fn choose(stream: &Stream) -> Option<(Source, AudioFormat)> {
    if let Some(config) = stream.aac_config() {
        return Some((Source::Aac(config.clone()), AudioFormat::Aac(config)));
    }
    match stream.audio_codec()? {
        AudioCodec::Opus => {
            // RTP says opus/48000/2 whatever the camera encodes; a decoder told two channels
            // plays mono packets on both.
            let format = OpusFormat { channels: 2, pre_skip: CAMERA_OPUS_PRE_SKIP };
            Some((Source::Opus, AudioFormat::Opus(format)))
        }
        codec @ (AudioCodec::Pcmu | AudioCodec::Pcma) => match G711ToOpus::new(codec) {
            Ok(transcoder) => {
                let format = OpusFormat { channels: 1, pre_skip: ENCODER_DELAY_TICKS };
                tracing::info!(path = stream.name(), "HLS: the path's {codec:?} is transcoded to Opus for this muxer");
                Some((Source::G711 { transcoder: Box::new(transcoder), packets: Vec::new() }, AudioFormat::Opus(format)))
            }
            Err(error) => {
                tracing::warn!(path = stream.name(), "HLS: the path's {codec:?} is left out: {error}");
                None
            }
        },
    }
}

impl Source {
    fn feed(&self) -> Feed {
        match self {
            Source::Aac(_) => Feed::Aac,
            Source::Opus | Source::G711 { .. } => Feed::Hub,
        }
    }
}

impl Chosen {
    /// Makes `incoming` the track's units, or leaves it out.
    fn push(&mut self, incoming: Incoming, path: &str) {
        let outcome = match (&mut self.source, incoming) {
            (Source::Aac(config), Incoming::Aac(frame)) if frame.config == *config => {
                let duration = config.frame_length;
                self.run.push(AudioUnit { timestamp: frame.timestamp, data: frame.data.clone(), captured_at: frame.captured_at, duration });
                Ok(())
            }
            (Source::Opus, Incoming::Hub(frame)) if frame.codec == AudioCodec::Opus => match packet_duration(&frame.data) {
                Some(duration) => {
                    self.run.push(AudioUnit { timestamp: frame.timestamp, data: frame.data.clone(), captured_at: frame.captured_at, duration });
                    Ok(())
                }
                None => Err(format!("an Opus packet of {} bytes whose TOC makes no sense", frame.data.len())),
            },
            (Source::G711 { transcoder, packets }, Incoming::Hub(frame)) if frame.codec == transcoder.codec() => {
                let encoded = transcoder.push(&frame.data, frame.timestamp, frame.captured_at, packets);
                let duration = (OPUS_PACKET.as_secs_f64() * f64::from(OPUS_CLOCK_RATE)) as u32;
                for packet in packets.drain(..) {
                    self.run.push(AudioUnit { timestamp: packet.timestamp, data: packet.data, captured_at: packet.captured_at, duration });
                }
                encoded.map_err(|error| format!("transcoding {:?} to Opus: {error}", transcoder.codec()))
            }
            (_, Incoming::Aac(frame)) => Err(format!("AAC {:?} after the initialization segment said otherwise", frame.config)),
            (_, Incoming::Hub(frame)) => Err(format!("{:?} after the initialization segment said otherwise", frame.codec)),
        };
        if let Err(reason) = outcome {
            self.left_out += 1;
            if self.left_out == 1 {
                tracing::warn!(path, "HLS: audio left out: {reason}; further frames left out are not logged");
            }
        }
    }
}

impl Drop for AudioTrack {
    fn drop(&mut self) {
        if let Some(chosen) = self.chosen.as_ref().filter(|c| c.left_out > 1) {
            tracing::info!(path = self.path, "HLS: {} audio frames were left out of this muxer's track", chosen.left_out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::linear_to_ulaw;
    use crate::media::{AacFrame, AudioFrame};
    use bytes::Bytes;
    use std::time::Instant;

    fn audio_frame(codec: AudioCodec, timestamp: u64, data: Vec<u8>, captured_at: SystemTime) -> AudioFrame {
        AudioFrame { timestamp, codec, data: Bytes::from(data), captured_at, arrived_at: Instant::now() }
    }

    #[test]
    fn g711_becomes_opus_from_the_keyframe_on_with_the_frames_kept_before_it() {
        let stream = Stream::new("t", "test");
        stream.set_audio_codec(Some(AudioCodec::Pcmu));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Two seconds of 20 ms frames, the keyframe captured one second in.
        let start = origin - Duration::from_secs(1);
        for i in 0..100u32 {
            stream.publish_audio(audio_frame(AudioCodec::Pcmu, u64::from(i) * 160, vec![linear_to_ulaw(1_000); 160], start + OPUS_PACKET * i));
        }
        let mut track = AudioTrack::subscribe(&stream);
        let format = track.start(&stream, origin).expect("audio");
        assert_eq!(format.codec_string(), "opus");
        assert_eq!((format.timescale(), format.delay()), (48_000, u32::from(ENCODER_DELAY_TICKS)));
        let part = track.take_until(origin, 0.5).expect("audio from the keyframe on");
        let run = part.track_run();
        // The first packet captured at or after the keyframe starts there, less the encoder's delay.
        assert_eq!(run.decode_time, 960 - u64::from(ENCODER_DELAY_TICKS));
        assert!(run.samples.len() >= 23 && run.samples.iter().all(|s| s.duration == 960), "{} packets", run.samples.len());
    }

    #[test]
    fn aac_wins_over_the_opus_made_from_it_and_other_configs_are_left_out() {
        let stream = Stream::new("t", "test");
        let config = Arc::new(AacConfig::parse(&[0x14, 0x08]).expect("AAC-LC 16 kHz mono"));
        stream.set_aac_config(Some(config.clone()));
        stream.set_audio_codec(Some(AudioCodec::Opus));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut track = AudioTrack::subscribe(&stream);
        assert_eq!(track.start(&stream, origin), Some(AudioFormat::Aac(config.clone())));
        let other = Arc::new(AacConfig::parse(&[0x11, 0x90]).expect("48 kHz"));
        for (i, config) in [config.clone(), other, config].into_iter().enumerate() {
            let frame = AacFrame { timestamp: 1024 * i as u64, data: Bytes::from_static(&[1]), config, captured_at: origin + Duration::from_millis(64 * i as u64) };
            track.push(Incoming::Aac(Arc::new(frame)));
        }
        track.push(Incoming::Hub(Arc::new(audio_frame(AudioCodec::Opus, 0, vec![0xf8], origin))));
        let part = track.take_until(origin, 1.0).expect("audio");
        assert_eq!(part.track_run().samples.len(), 2, "the units of the initialization segment's config");
        assert_eq!(track.chosen.as_ref().map(|c| c.left_out), Some(2));
    }

    #[test]
    fn a_cameras_opus_goes_as_it_came_each_packet_as_long_as_its_toc_says() {
        let stream = Stream::new("t", "test");
        stream.set_audio_codec(Some(AudioCodec::Opus));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut track = AudioTrack::subscribe(&stream);
        let Some(AudioFormat::Opus(format)) = track.start(&stream, origin) else { panic!("Opus") };
        assert_eq!((format.channels, format.pre_skip), (2, CAMERA_OPUS_PRE_SKIP));
        // 10 ms CELT packets, then one whose TOC is cut short.
        for i in 0..3u32 {
            let captured_at = origin + Duration::from_millis(10) + Duration::from_millis(10) * i;
            track.push(Incoming::Hub(Arc::new(audio_frame(AudioCodec::Opus, u64::from(i) * 480, vec![(18 << 3), 0xaa], captured_at))));
        }
        track.push(Incoming::Hub(Arc::new(audio_frame(AudioCodec::Opus, 1_440, vec![(18 << 3) | 3], origin + Duration::from_millis(40)))));
        let part = track.take_until(origin, 1.0).expect("audio");
        let run = part.track_run();
        assert_eq!(run.decode_time, 480 - u64::from(CAMERA_OPUS_PRE_SKIP), "10 ms in, less the pre-skip");
        assert_eq!(run.samples.iter().map(|s| s.duration).collect::<Vec<_>>(), vec![480; 3]);
    }

    #[test]
    fn a_path_without_audio_has_no_track() {
        let stream = Stream::new("t", "test");
        let mut track = AudioTrack::subscribe(&stream);
        assert!(track.start(&stream, SystemTime::now()).is_none());
        assert!(track.take_until(SystemTime::now(), 1.0).is_none());
    }
}
