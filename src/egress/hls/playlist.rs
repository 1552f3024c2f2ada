//! HLS playlists (RFC 8216): the multivariant playlist any player starts from, and the media
//! playlist of the segments the muxer holds.

use std::fmt::Write;

pub struct SegmentInfo {
    pub sequence: u64,
    pub duration_secs: f64,
}

/// Points players at the one rendition, with what they need to choose it up front.
pub fn multivariant(codec: &str, width: u32, height: u32, bandwidth_bps: u64) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH={bandwidth_bps},CODECS=\"{codec}\",RESOLUTION={width}x{height}\nstream.m3u8\n"
    )
}

/// The live media playlist. `target_secs` must bound every segment's rounded duration.
pub fn media(target_secs: u64, segments: &[SegmentInfo]) -> String {
    let first = segments.first().map_or(0, |s| s.sequence);
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target_secs}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    for segment in segments {
        // Writing to a String cannot fail.
        let _ = write!(text, "#EXTINF:{:.3},\nseg{}.m4s\n", segment.duration_secs, segment.sequence);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlist_lists_segments_from_the_first_sequence_number() {
        let segments = [SegmentInfo { sequence: 41, duration_secs: 2.0 }, SegmentInfo { sequence: 42, duration_secs: 1.9666 }];
        let text = media(2, &segments);
        assert!(text.starts_with("#EXTM3U\n"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:41\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(text.ends_with("#EXTINF:2.000,\nseg41.m4s\n#EXTINF:1.967,\nseg42.m4s\n"));
    }

    #[test]
    fn multivariant_carries_codecs_and_resolution() {
        let text = multivariant("avc1.64001f", 1280, 720, 2_500_000);
        assert!(text.contains("BANDWIDTH=2500000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720\nstream.m3u8\n"), "{text}");
    }
}
