//! A viewer's side of ICE-lite checks and DTLS-SRTP for the tests of the transport and the
//! connection: rtc's own DTLS endpoint and STUN messages, driven by the test (in simulated time
//! where it likes), independent of Lookout's code under test.

use crate::egress::webrtc::transport::dtls_srtp::{DtlsRole, Identity};
use crate::egress::webrtc::transport::viewer_transport::RemoteTransport;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc::dtls::endpoint::Endpoint;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, BINDING_REQUEST};
use rtc::stun::textattrs::TextAttribute;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub const SERVER_UFRAG: &str = "srvfrag";
pub const SERVER_PASSWORD: &str = "server-password-of-some-length";
pub const VIEWER_UFRAG: &str = "viewerfrag";

pub fn server_addr() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("address")
}
pub fn viewer_addr() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("address")
}

/// What the viewer's ICE agent sends: a check with its credentials, controlling, nominating.
pub fn check(username: &str, password: &str, controlling: bool, crypto: &dyn rtc::crypto::RTCCrypto) -> Vec<u8> {
    struct Flag(rtc::stun::attributes::AttrType, Vec<u8>);
    impl Setter for Flag {
        fn add_to(&self, m: &mut Message) -> Result<(), rtc::shared::error::Error> {
            m.add(self.0, &self.1);
            Ok(())
        }
    }
    let mut message = Message::new();
    let mut setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(rtc::stun::message::TransactionId::new()),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(Flag(ATTR_USE_CANDIDATE, Vec::new())),
    ];
    if controlling {
        setters.push(Box::new(Flag(ATTR_ICE_CONTROLLING, 7u64.to_be_bytes().to_vec())));
    }
    setters.push(Box::new(MessageIntegrity::new_short_term_integrity_with_provider(password.to_owned(), crypto)));
    setters.push(Box::new(FINGERPRINT));
    message.build(&setters).expect("check");
    message.raw
}

pub struct SimulatedViewer {
    pub identity: Identity,
    pub dtls: Endpoint,
    /// The viewer's side of DTLS: client when Lookout is the server.
    pub is_client: bool,
}

impl SimulatedViewer {
    /// A viewer taking the other side of `lookout`'s DTLS role.
    pub fn new(lookout: DtlsRole) -> Self {
        let identity = Identity::generate().expect("identity");
        let is_client = lookout == DtlsRole::Server;
        let server_config = (!is_client).then(|| Arc::new(Self::config(&identity, false)));
        Self { dtls: Endpoint::new(viewer_addr(), TransportProtocol::UDP, server_config), identity, is_client }
    }

    fn config(identity: &Identity, is_client: bool) -> rtc::dtls::config::HandshakeConfig {
        ConfigBuilder::default()
            .with_crypto_provider(identity.crypto.clone())
            .with_certificates(vec![identity.certificate().clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(is_client, is_client.then(server_addr))
            .expect("viewer's DTLS config")
    }

    /// As client, sends the ClientHello; as server, waits for Lookout's.
    pub fn connect_dtls(&mut self, now: Instant) {
        if self.is_client {
            let config = Arc::new(Self::config(&self.identity, true));
            self.dtls.connect(now, server_addr(), config, None).expect("connect");
        }
    }

    pub fn srtp(&self) -> (Context, Context) {
        let state = self.dtls.get_connection_state(server_addr()).expect("state");
        let mut config = rtc::srtp::config::Config { profile: rtc::srtp::protection_profile::ProtectionProfile::AeadAes128Gcm, ..Default::default() };
        let material = state.export_keying_material(rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len()).expect("keys");
        config.set_session_keys_from_keying_material(material.as_ref(), self.is_client).expect("session keys");
        let crypto = self.identity.crypto.crypto();
        let local = Context::new(&config.keys.local_master_key, &config.keys.local_master_salt, config.profile, None, None, crypto).expect("local");
        let remote = Context::new(&config.keys.remote_master_key, &config.keys.remote_master_salt, config.profile, None, None, crypto).expect("remote");
        (local, remote)
    }

    /// What its description tells Lookout.
    pub fn remote_transport(&self) -> RemoteTransport {
        let dtls_role = if self.is_client { DtlsRole::Server } else { DtlsRole::Client };
        RemoteTransport { ufrag: VIEWER_UFRAG.into(), password: String::new(), candidates: Vec::new(), fingerprint: self.identity.fingerprint.clone(), dtls_role }
    }
}
