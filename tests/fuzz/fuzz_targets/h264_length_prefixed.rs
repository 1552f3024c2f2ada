//! A camera's access unit as retina hands it over (4-byte length-prefixed NAL units), split by
//! `h264::split_length_prefixed`: it returns NAL units or an error, never panics, and the NAL
//! units it returns are non-empty and join back to the very same bytes. The same bytes as an
//! Annex B stream (`split_annex_b`, run on the encoder's output) give non-empty NAL units with
//! no start code inside.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lookout::media::h264::{join_length_prefixed, split_annex_b, split_length_prefixed};

fuzz_target!(|data: &[u8]| {
    let access_unit = Bytes::copy_from_slice(data);
    match split_length_prefixed(&access_unit) {
        Ok(nals) => {
            assert!(nals.iter().all(|nal| !nal.is_empty()), "an empty NAL unit");
            assert_eq!(join_length_prefixed(nals.iter().map(|nal| &nal[..])), access_unit, "NAL units join back to the access unit");
        }
        Err(error) => assert!(error.offset < data.len(), "an error past the end: {error}"),
    }
    let nals = split_annex_b(data);
    for nal in &nals {
        assert!(!nal.is_empty(), "an empty NAL unit");
        assert!(!nal.windows(3).any(|w| w == [0, 0, 1]), "a start code inside a NAL unit: {nal:02x?}");
    }
    assert!(nals.iter().map(|nal| nal.len()).sum::<usize>() <= data.len());
});
