//! A datagram on the shared media port, from anyone: `binding_request_ufrag` routes it by the
//! ICE username fragment of a STUN Binding request (RFC 8489, RFC 8445 §7.2.2). It never panics,
//! and a fragment it finds is non-empty, has no ':' and lies within the USERNAME attribute.
//! Half the inputs are wrapped in a valid Binding request header, so that the attribute walk is
//! reached at once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::egress::webrtc::binding_request_ufrag;

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let datagram = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut request = vec![0x00, 0x01];
        request.extend_from_slice(&u16::try_from(rest.len()).unwrap_or(u16::MAX).to_be_bytes());
        request.extend_from_slice(&MAGIC_COOKIE);
        request.extend_from_slice(&[7; 12]); // transaction ID
        request.extend_from_slice(rest);
        request
    };
    let Some(ufrag) = binding_request_ufrag(&datagram) else { return };
    assert!(!ufrag.is_empty() && !ufrag.contains(':'), "ufrag {ufrag:?}");
    let start = ufrag.as_ptr() as usize - datagram.as_ptr() as usize;
    assert!(start >= 20 + 4 && start + ufrag.len() <= datagram.len(), "the ufrag lies in an attribute after the header");
    assert_eq!(&datagram[start - 4..start - 2], &[0x00, 0x06], "the ufrag is a USERNAME attribute's");
});
