//! Which audio an HLS muxer's track carries, and how the hub's frames become its units: a
//! camera's AAC as it came; Opus, a camera's own or made by the hub from G.711. The choice is
//! made when the initialization segment is written; the track then reads the hub's feed from
//! the frames it kept, reaching back to the first keyframe muxed (the cached one, placed the
//! part hold-back before the newest frame: see `Muxer::squeezed`).

use super::audio_feeds::{AudioFeed, Incoming};
use super::audio_format::{AudioFormat, OpusFormat};
use super::audio_run::{AudioPart, AudioRun, AudioUnit};
use crate::media::opus::packet_duration;
use crate::media::pcm_to_opus::ENCODER_DELAY_TICKS;
use crate::media::{AacConfig, AudioCodec, SourceAudio};
use crate::stream::Stream;
use std::sync::Arc;
use std::time::SystemTime;

/// A camera's own Opus: its encoder's delay is not known; libopus's usual look-ahead (6.5 ms,
/// what Ogg Opus files from it state) is the likeliest.
const CAMERA_OPUS_PRE_SKIP: u16 = 312;

pub struct AudioTrack {
    /// The path's name, for the log.
    path: String,
    /// The chosen audio's feed, once chosen.
    feed: AudioFeed,
    chosen: Option<Chosen>,
}

/// The chosen audio and its track.
struct Chosen {
    /// The AAC config of the initialization segment; `None` for Opus.
    aac: Option<Arc<AacConfig>>,
    run: AudioRun,
    /// Frames that did not fit the initialization segment (the camera came back with other
    /// audio) or could not be made into units: the first is logged, the others counted.
    left_out: u64,
}

impl AudioTrack {
    pub fn new(path: &str) -> Self {
        Self { path: path.to_owned(), feed: AudioFeed::Closed, chosen: None }
    }

    /// Waits for the next audio frame and takes it; pending for ever before the choice.
    pub async fn receive(&mut self) {
        let incoming = self.feed.recv().await;
        self.push(incoming);
    }

    /// Receives frames until it has those captured up to `at` (see `has_sound_until`), for at
    /// most `timeout`.
    pub async fn receive_until(&mut self, at: SystemTime, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, async {
            while !self.has_sound_until(at) {
                self.receive().await;
            }
        })
        .await;
    }

    /// Takes the frames that have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Some(incoming) = self.feed.try_recv() {
            self.push(incoming);
        }
    }

    fn push(&mut self, incoming: Incoming) {
        if let Some(chosen) = &mut self.chosen {
            chosen.push(incoming, &self.path);
        }
    }

    /// Chooses the path's audio as the hub has it now: its format for the initialization
    /// segment, or `None` without audio. Of the frames the hub kept, those from before the
    /// video's zero are dropped as the parts are cut.
    pub fn start(&mut self, stream: &Stream) -> Option<AudioFormat> {
        let (format, kept, feed) = subscribe(stream)?;
        let aac = match &format {
            AudioFormat::Aac(config) => Some(config.clone()),
            AudioFormat::Opus(_) => None,
        };
        self.chosen = Some(Chosen { aac, run: AudioRun::new(format.timescale(), format.delay()), left_out: 0 });
        self.feed = feed;
        for incoming in kept {
            self.push(incoming);
        }
        Some(format)
    }

    /// Whether the track has no sound, or has received what was captured up to `at`.
    pub fn has_sound_until(&self, at: SystemTime) -> bool {
        self.chosen.as_ref().is_none_or(|chosen| chosen.run.newest_captured_at().is_some_and(|newest| newest >= at))
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

/// The track's format, the frames the hub kept, and its feed: AAC as it came; Opus as the
/// camera sent it; G.711 as Opus made by the hub.
fn subscribe(stream: &Stream) -> Option<(AudioFormat, Vec<Incoming>, AudioFeed)> {
    match stream.source_audio()? {
        SourceAudio::Aac(config) => {
            let (kept, feed) = stream.subscribe_aac();
            Some((AudioFormat::Aac(config), kept.into_iter().map(Incoming::Aac).collect(), AudioFeed::Aac(feed)))
        }
        SourceAudio::Rtp(codec) => {
            let format = match codec {
                // RTP says opus/48000/2 whatever the camera encodes; a decoder told two
                // channels plays mono packets on both.
                AudioCodec::Opus => OpusFormat { channels: 2, pre_skip: CAMERA_OPUS_PRE_SKIP },
                AudioCodec::Pcmu | AudioCodec::Pcma => {
                    tracing::info!(path = stream.name(), "HLS: the path's {codec:?} goes as the Opus the hub makes from it");
                    OpusFormat { channels: 1, pre_skip: ENCODER_DELAY_TICKS }
                }
            };
            let (kept, feed) = stream.subscribe_opus();
            Some((AudioFormat::Opus(format), kept.into_iter().map(Incoming::Opus).collect(), AudioFeed::Opus(feed)))
        }
    }
}

impl Chosen {
    /// Makes `incoming` the track's unit, or leaves it out.
    fn push(&mut self, incoming: Incoming, path: &str) {
        let outcome = match (&self.aac, incoming) {
            (Some(config), Incoming::Aac(frame)) if frame.config == *config => {
                let duration = config.frame_length;
                self.run.push(AudioUnit { timestamp: frame.timestamp, data: frame.data.clone(), captured_at: frame.captured_at, duration });
                Ok(())
            }
            (None, Incoming::Opus(frame)) if frame.codec == AudioCodec::Opus => match packet_duration(&frame.data) {
                Some(duration) => {
                    self.run.push(AudioUnit { timestamp: frame.timestamp, data: frame.data.clone(), captured_at: frame.captured_at, duration });
                    Ok(())
                }
                None => Err(format!("an Opus packet of {} bytes whose TOC makes no sense", frame.data.len())),
            },
            (_, Incoming::Aac(frame)) => Err(format!("AAC {:?} after the initialization segment said otherwise", frame.config)),
            (_, Incoming::Opus(frame)) => Err(format!("{:?} after the initialization segment said otherwise", frame.codec)),
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
    use crate::media::opus::OPUS_PACKET;
    use crate::media::{AacFrame, AudioFrame, Frame, VideoParameters};
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn audio_frame(codec: AudioCodec, timestamp: u64, data: Vec<u8>, captured_at: SystemTime) -> AudioFrame {
        AudioFrame { timestamp, codec, data: Bytes::from(data), captured_at, arrived_at: Instant::now() }
    }

    fn keyframe(captured_at: SystemTime) -> Frame {
        let parameters = Arc::new(VideoParameters { width: 2, height: 2, sps: Bytes::new(), pps: Bytes::new() });
        Frame { captured_at, ..Frame::new(0, true, Bytes::from_static(&[0, 0, 0, 1, 0x65]), parameters) }
    }

    #[tokio::test]
    async fn g711_goes_as_opus_made_by_the_hub_from_the_cached_keyframe_on() {
        let stream = Stream::new("t", "test");
        stream.set_source_audio(Some(SourceAudio::Rtp(AudioCodec::Pcmu)));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        stream.publish(keyframe(origin));
        // Two seconds of 20 ms frames, the keyframe captured one second in.
        let start = origin - Duration::from_secs(1);
        for i in 0..100u32 {
            stream.publish_audio(audio_frame(AudioCodec::Pcmu, u64::from(i) * 160, vec![linear_to_ulaw(1_000); 160], start + OPUS_PACKET * i));
        }
        let mut track = AudioTrack::new("t");
        let format = track.start(&stream).expect("audio");
        assert_eq!(format.codec_string(), "opus");
        assert_eq!((format.timescale(), format.delay()), (48_000, u32::from(ENCODER_DELAY_TICKS)));
        // The hub makes Opus from 100 ms before the keyframe on: about 55 packets.
        for _ in 0..50 {
            tokio::time::timeout(Duration::from_secs(5), track.receive()).await.expect("Opus made by the hub");
        }
        let part = track.take_until(origin, 0.5).expect("audio from the keyframe on");
        let run = part.track_run();
        // The first packet captured at or after the keyframe starts there, less the encoder's delay.
        assert_eq!(run.decode_time, 960 - u64::from(ENCODER_DELAY_TICKS));
        assert!(run.samples.len() >= 23 && run.samples.iter().all(|s| s.duration == 960), "{} packets", run.samples.len());
    }

    #[test]
    fn aac_goes_as_it_came_and_other_configs_are_left_out() {
        let stream = Stream::new("t", "test");
        let config = Arc::new(AacConfig::parse(&[0x14, 0x08]).expect("AAC-LC 16 kHz mono"));
        stream.set_source_audio(Some(SourceAudio::Aac(config.clone())));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut track = AudioTrack::new("t");
        assert_eq!(track.start(&stream), Some(AudioFormat::Aac(config.clone())));
        let other = Arc::new(AacConfig::parse(&[0x11, 0x90]).expect("48 kHz"));
        for (i, config) in [config.clone(), other, config].into_iter().enumerate() {
            let captured_at = origin + Duration::from_millis(64 * i as u64);
            let frame = AacFrame { timestamp: 1024 * i as u64, data: Bytes::from_static(&[1]), config, captured_at, arrived_at: Instant::now() };
            track.push(Incoming::Aac(Arc::new(frame)));
        }
        track.push(Incoming::Opus(Arc::new(audio_frame(AudioCodec::Opus, 0, vec![0xf8], origin))));
        let part = track.take_until(origin, 1.0).expect("audio");
        assert_eq!(part.track_run().samples.len(), 2, "the units of the initialization segment's config");
        assert_eq!(track.chosen.as_ref().map(|c| c.left_out), Some(2));
        assert!(!stream.making_opus(), "no Opus is made for a track that carries AAC");
    }

    #[test]
    fn a_cameras_opus_goes_as_it_came_each_packet_as_long_as_its_toc_says() {
        let stream = Stream::new("t", "test");
        stream.set_source_audio(Some(SourceAudio::Rtp(AudioCodec::Opus)));
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut track = AudioTrack::new("t");
        let Some(AudioFormat::Opus(format)) = track.start(&stream) else { panic!("Opus") };
        assert_eq!((format.channels, format.pre_skip), (2, CAMERA_OPUS_PRE_SKIP));
        // 10 ms CELT packets, then one whose TOC is cut short.
        for i in 0..3u32 {
            let captured_at = origin + Duration::from_millis(10) + Duration::from_millis(10) * i;
            track.push(Incoming::Opus(Arc::new(audio_frame(AudioCodec::Opus, u64::from(i) * 480, vec![(18 << 3), 0xaa], captured_at))));
        }
        track.push(Incoming::Opus(Arc::new(audio_frame(AudioCodec::Opus, 1_440, vec![(18 << 3) | 3], origin + Duration::from_millis(40)))));
        let part = track.take_until(origin, 1.0).expect("audio");
        let run = part.track_run();
        assert_eq!(run.decode_time, 480 - u64::from(CAMERA_OPUS_PRE_SKIP), "10 ms in, less the pre-skip");
        assert_eq!(run.samples.iter().map(|s| s.duration).collect::<Vec<_>>(), vec![480; 3]);
    }

    #[test]
    fn a_path_without_audio_has_no_track() {
        let stream = Stream::new("t", "test");
        let mut track = AudioTrack::new("t");
        assert!(track.start(&stream).is_none());
        assert!(track.take_until(SystemTime::now(), 1.0).is_none());
    }
}
