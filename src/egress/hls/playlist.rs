//! HLS playlists (RFC 8216, with the Low-Latency HLS tags of its second edition): the
//! multivariant playlist any player starts from, and the media playlist of segments and parts.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many finished segments list their parts: enough for a player joining near live.
const SEGMENTS_WITH_PARTS: usize = 2;

pub struct PartInfo {
    pub duration_secs: f64,
    pub independent: bool,
}

pub struct SegmentInfo {
    pub sequence: u64,
    pub duration_secs: f64,
    pub parts: Vec<PartInfo>,
    /// When its first frame was captured.
    pub captured_at: SystemTime,
}

/// `t` as RFC 3339 in UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants it.
fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, second_of_day) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
    // Days since 1970 to a civil date (the proleptic Gregorian calendar), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z", since.subsec_millis())
}

pub fn part_uri(sequence: u64, index: usize) -> String {
    format!("part{sequence}.{index}.m4s")
}

/// Points players at the one rendition, with what they need to choose it up front.
pub fn multivariant(codec: &str, width: u32, height: u32, bandwidth_bps: u64) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH={bandwidth_bps},CODECS=\"{codec}\",RESOLUTION={width}x{height}\nstream.m3u8\n"
    )
}

fn write_parts(text: &mut String, sequence: u64, parts: &[PartInfo]) {
    for (index, part) in parts.iter().enumerate() {
        let independent = if part.independent { ",INDEPENDENT=YES" } else { "" };
        // Writing to a String cannot fail.
        let _ = writeln!(text, "#EXT-X-PART:DURATION={:.5},URI=\"{}\"{independent}", part.duration_secs, part_uri(sequence, index));
    }
}

/// PART-HOLD-BACK, in parts: how far behind the live edge a low-latency player stays.
pub const PART_HOLD_BACK_PARTS: usize = 3;

/// The live media playlist. `target_secs` bounds every segment's rounded duration and
/// `part_target_secs` every part's duration. `building` is the segment being made.
pub fn media(target_secs: u64, part_target_secs: f64, segments: &[SegmentInfo], building: Option<(u64, &[PartInfo])>) -> String {
    let first = segments.first().map(|s| s.sequence).or(building.map(|(sequence, _)| sequence)).unwrap_or(0);
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target_secs}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n\
         #EXT-X-PART-INF:PART-TARGET={part_target_secs:.3}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n",
        PART_HOLD_BACK_PARTS as f64 * part_target_secs
    );
    // The first segment's capture time: players place every frame after it on the camera's clock.
    if let Some(first) = segments.first() {
        let _ = writeln!(text, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_millis(first.captured_at));
    }
    let with_parts = segments.len().saturating_sub(SEGMENTS_WITH_PARTS);
    for (i, segment) in segments.iter().enumerate() {
        if i >= with_parts {
            write_parts(&mut text, segment.sequence, &segment.parts);
        }
        let _ = write!(text, "#EXTINF:{:.5},\nseg{}.m4s\n", segment.duration_secs, segment.sequence);
    }
    let (next_sequence, next_part) = match building {
        Some((sequence, parts)) => {
            write_parts(&mut text, sequence, parts);
            (sequence, parts.len())
        }
        None => (segments.last().map_or(0, |s| s.sequence + 1), 0),
    };
    let _ = writeln!(text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", part_uri(next_sequence, next_part));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(n: usize) -> Vec<PartInfo> {
        (0..n).map(|i| PartInfo { duration_secs: 0.2, independent: i == 0 }).collect()
    }

    #[test]
    fn media_playlist_has_parts_hints_and_server_control() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_800_000_000_123);
        let segments: Vec<SegmentInfo> = (40..43).map(|sequence| SegmentInfo { sequence, duration_secs: 2.0, parts: parts(10), captured_at: at }).collect();
        let building = parts(3);
        let text = media(2, 0.2, &segments, Some((43, &building)));
        assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n"), "{text}");
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.200\n"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:40\n"));
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.123Z\n#EXTINF:2.00000,\nseg40.m4s\n"), "{text}");
        assert!(!text.contains("part40."), "old segments list no parts");
        assert!(text.contains("#EXT-X-PART:DURATION=0.20000,URI=\"part41.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.20000,URI=\"part41.1.m4s\"\n"));
        assert!(text.contains("#EXTINF:2.00000,\nseg42.m4s\n#EXT-X-PART:DURATION=0.20000,URI=\"part43.0.m4s\",INDEPENDENT=YES\n"));
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part43.3.m4s\"\n"), "{text}");
    }

    #[test]
    fn multivariant_carries_codecs_and_resolution() {
        let text = multivariant("avc1.64001f", 1280, 720, 2_500_000);
        assert!(text.contains("BANDWIDTH=2500000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720\nstream.m3u8\n"), "{text}");
    }
}

/// The playlist with `query` (`sig=…`, already URL-safe) added to every URI it lists, so that a
/// player given a signed URL fetches everything under the same signature.
pub fn with_query(playlist: &str, query: &str) -> String {
    let mut text = String::with_capacity(playlist.len() + 64 * query.len());
    for line in playlist.lines() {
        if line.starts_with('#') {
            match line.split_once("URI=\"") {
                Some((before, rest)) => match rest.split_once('"') {
                    Some((uri, after)) => {
                        let _ = writeln!(text, "{before}URI=\"{uri}?{query}\"{after}");
                    }
                    None => {
                        text.push_str(line);
                        text.push('\n');
                    }
                },
                None => {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        } else if line.is_empty() {
            text.push('\n');
        } else {
            let _ = writeln!(text, "{line}?{query}");
        }
    }
    text
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[test]
    fn every_uri_carries_the_query() {
        let segments = [SegmentInfo { sequence: 4, duration_secs: 2.0, parts: vec![PartInfo { duration_secs: 0.2, independent: true }], captured_at: UNIX_EPOCH }];
        let text = with_query(&media(2, 0.2, &segments, Some((5, &[]))), "sig=1.abc");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4?sig=1.abc\"\n"), "{text}");
        assert!(text.contains("URI=\"part4.0.m4s?sig=1.abc\",INDEPENDENT=YES\n"), "{text}");
        assert!(text.contains("\nseg4.m4s?sig=1.abc\n"), "{text}");
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part5.0.m4s?sig=1.abc\""), "{text}");
        assert!(with_query(&multivariant("avc1.42e01f", 2, 2, 1), "sig=x").ends_with("stream.m3u8?sig=x\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1);
    }
}
