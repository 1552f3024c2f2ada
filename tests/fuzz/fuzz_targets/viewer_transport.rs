//! Datagrams from a viewer's address, from anyone: a connection's transport (ICE-lite checks,
//! DTLS, SRTCP) takes them in any order. It never panics and never has media to send without a
//! completed handshake. A valid connectivity check comes first when the input asks for it, so
//! that DTLS records from that address are parsed rather than refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtc::stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc::stun::textattrs::TextAttribute;
use lookout::egress::webrtc::transport::dtls_srtp::{DtlsRole, Identity};
use lookout::egress::webrtc::transport::ice::path::IcePath;
use lookout::egress::webrtc::transport::viewer_transport::{RemoteTransport, ViewerTransport};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Generating a certificate takes milliseconds: once for the whole run.
fn identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| Identity::generate().expect("identity"))
}

const PASSWORD: &str = "lookout-password-of-some-length";

/// What the viewer's agent sends first: a nominating check with Lookout's credentials.
fn valid_check() -> Vec<u8> {
    struct Flag(rtc::stun::attributes::AttrType, Vec<u8>);
    impl Setter for Flag {
        fn add_to(&self, m: &mut Message) -> Result<(), rtc::shared::error::Error> {
            m.add(self.0, &self.1);
            Ok(())
        }
    }
    let crypto = identity().crypto.crypto();
    let setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, "lookout:viewer".to_owned())),
        Box::new(Flag(ATTR_USE_CANDIDATE, Vec::new())),
        Box::new(Flag(ATTR_ICE_CONTROLLING, 7u64.to_be_bytes().to_vec())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(PASSWORD.to_owned(), crypto)),
        Box::new(FINGERPRINT),
    ];
    let mut message = Message::new();
    message.build(&setters).expect("check");
    message.raw
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let role = if mode & 1 == 0 { DtlsRole::Server } else { DtlsRole::Client };
    let remote = RemoteTransport { ufrag: "viewer".into(), password: String::new(), candidates: Vec::new(), fingerprint: identity().fingerprint.clone(), dtls_role: role };
    let local = "127.0.0.1:8189".parse().expect("address");
    let mut transport = ViewerTransport::new(identity(), "lookout", PASSWORD, &remote, local).expect("transport");
    let from = IcePath::direct("127.0.0.1:50000".parse().expect("address"));
    let start = Instant::now();
    if mode & 2 != 0 {
        assert!(transport.on_datagram(&valid_check(), from, local, start).is_ok(), "a valid check is answered");
    }
    // The input is a series of datagrams, each prefixed with its length (one byte).
    let mut rest = rest;
    let mut step = 0u64;
    while let Some((&length, tail)) = rest.split_first() {
        let length = usize::from(length).min(tail.len());
        let (datagram, tail) = tail.split_at(length);
        rest = tail;
        step += 1;
        let _ = transport.on_datagram(datagram, from, local, start + Duration::from_millis(step));
        while transport.poll_transmit().is_some() {}
        let _ = transport.on_timeout(start + Duration::from_millis(step * 50));
    }
    assert!(!transport.is_connected(), "no handshake can complete without the viewer's key");
    let header = rtc::rtp::header::Header { version: 2, payload_type: 96, sequence_number: 1, timestamp: 1, ssrc: 1, ..Default::default() };
    let packet = rtc::rtp::packet::Packet { header, payload: bytes::Bytes::from_static(b"media") };
    let mut out = Vec::new();
    assert!(matches!(transport.write_rtp(&packet, &mut out), Ok(None)) && out.is_empty(), "no media before a handshake");
});
