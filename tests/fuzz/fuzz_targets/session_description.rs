//! A viewer's session description (its WHEP offer, or its answer over /ws), from anyone:
//! `parse_remote` reads it as an offer and as an answer. It never panics; what it accepts has
//! a sha-256 fingerprint of 32 bytes, and Lookout's answer to an accepted offer is written
//! without panicking and read back by `rtc`'s own SDP parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::egress::webrtc::negotiation::sdp::{parse_remote, write_answer, LocalAudio, LocalParameters, LocalVideo, RemoteKind};
use lookout::media::AudioCodec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(answer) = parse_remote(text, RemoteKind::Answer) {
        assert_eq!(answer.fingerprint.split(':').count(), 32, "{}", answer.fingerprint);
    }
    let Ok(offer) = parse_remote(text, RemoteKind::Offer) else { return };
    let local = LocalParameters {
        ufrag: "fuzzfuzzfuzzfuzz".into(),
        password: "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz".into(),
        fingerprint: ["AB"; 32].join(":"),
        candidates: vec!["127.0.0.1:8189".parse().expect("address")],
        passive_tcp: true,
        gathered: vec!["candidate:1 1 udp 1694498815 192.0.2.1 50000 typ srflx raddr 127.0.0.1 rport 8189".to_owned()],
        cname: "fuzz".into(),
        stream_id: "lookout-fuzz".into(),
        videos: vec![LocalVideo { ssrc: 1, rtx_ssrc: 2, track_id: "video-fuzz".into() }],
        audio: Some(LocalAudio { codec: AudioCodec::Opus, ssrc: 3, track_id: "audio-fuzz".into() }),
    };
    if let Ok(answer) = write_answer(&offer, &local) {
        let mut reader = std::io::Cursor::new(answer.as_bytes());
        assert!(rtc::sdp::SessionDescription::unmarshal(&mut reader).is_ok(), "rtc cannot read Lookout's answer:\n{answer}");
    }
});
