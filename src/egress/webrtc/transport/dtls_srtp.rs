//! DTLS-SRTP (RFC 5764) for one viewer. Lookout answers `setup:passive` and offers `actpass`:
//! it is the DTLS server, unless the viewer answers its offer `passive` (webrtc-rs does, to an
//! ICE-lite offerer), when it is the client and starts the handshake once the viewer has
//! nominated its address. Once the handshake completes, the SRTP master keys are exported from
//! it and every RTP packet is encrypted by Lookout itself, one context per viewer.
//!
//! rtc's DTLS endpoint keys a handshake by the peer's address. A viewer's records may come
//! from any address that passed a connectivity check (a browser sends over the pair it has
//! selected, and may select another midway), so the endpoint is given one fixed address,
//! `ASSOCIATION`, for all of them: one viewer, one handshake.

use bytes::BytesMut;
use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig, VerifyPeerCertificateFn};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use crate::egress::webrtc::transport::srtp_sender::{SrtpSendError, SrtpSender};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    /// Making Lookout's certificate or a connection's DTLS configuration.
    #[error("DTLS, {doing}: {error}")]
    Setup { doing: &'static str, error: rtc::shared::error::Error },
    #[error("DTLS, {doing}: {error}")]
    Crypto { doing: &'static str, error: rtc::crypto::CryptoError },
    #[error("the generated DTLS certificate chain is empty")]
    EmptyCertificate,
    #[error("DTLS: {0}")]
    Handshake(rtc::shared::error::Error),
    #[error("the DTLS handshake completed without a connection")]
    NoConnection,
    #[error("DTLS negotiated no SRTP profile Lookout supports")]
    NoSrtpProfile,
    #[error("setting up SRTP, {doing}: {error}")]
    Srtp { doing: &'static str, error: rtc::shared::error::Error },
    #[error("setting up SRTP, making the sealer of what Lookout sends: {0}")]
    OutboundSrtp(SrtpSendError),
}

/// The address the viewer's single DTLS association is known by inside the endpoint: only a key.
const ASSOCIATION: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9);

/// Lookout's DTLS identity: one certificate for the process, whose fingerprint every
/// description carries.
pub struct Identity {
    certificate: Certificate,
    /// `AB:CD:…`, as `a=fingerprint:sha-256` wants it.
    pub fingerprint: String,
    pub crypto: Arc<dyn RTCCryptoProvider>,
}

impl Identity {
    pub fn generate() -> Result<Self, DtlsError> {
        let crypto = rtc::crypto::default_provider().map_err(|error| DtlsError::Crypto { doing: "finding a crypto provider", error })?;
        let certificate = Certificate::generate_self_signed(vec!["lookout".to_owned()], crypto.crypto())
            .map_err(|error| DtlsError::Setup { doing: "generating the certificate", error })?;
        let der = certificate.certificate.first().ok_or(DtlsError::EmptyCertificate)?;
        let fingerprint = sha256_fingerprint(der.as_ref(), crypto.as_ref())?;
        Ok(Self { certificate, fingerprint, crypto })
    }

    #[cfg(test)]
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }
}

fn sha256_fingerprint(der: &[u8], crypto: &dyn RTCCryptoProvider) -> Result<String, DtlsError> {
    let digest = crypto.crypto().hash(HashAlgorithm::Sha256, der).map_err(|error| DtlsError::Crypto { doing: "hashing a certificate", error })?;
    Ok(digest.iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":"))
}

/// SRTP keys of one viewer: `outbound` encrypts what Lookout sends, `inbound` decrypts the
/// viewer's RTCP.
pub struct SrtpContexts {
    pub outbound: SrtpSender,
    pub inbound: Context,
}

/// Which side of the handshake Lookout takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    Server,
    Client,
}

pub struct Dtls {
    endpoint: Endpoint,
    crypto: Arc<dyn RTCCryptoProvider>,
    /// As client: the configuration to connect with, until the handshake is started.
    client_config: Option<Arc<HandshakeConfig>>,
}

/// What one datagram of DTLS gave.
pub enum DtlsProgress {
    Handshaking,
    /// Boxed: the SRTP contexts are large beside the other outcomes of every datagram.
    Connected(Box<SrtpContexts>),
    /// The viewer said goodbye (close_notify).
    Closed,
}

impl Dtls {
    /// `remote_fingerprint`: the sha-256 fingerprint from the viewer's description; its
    /// certificate must match it.
    pub fn new(identity: &Identity, local_addr: SocketAddr, remote_fingerprint: &str, role: DtlsRole) -> Result<Self, DtlsError> {
        let config = Arc::new(handshake_config(identity, remote_fingerprint, role)?);
        let (server_config, client_config) = match role {
            DtlsRole::Server => (Some(config), None),
            DtlsRole::Client => (None, Some(config)),
        };
        Ok(Self { endpoint: Endpoint::new(local_addr, TransportProtocol::UDP, server_config), crypto: identity.crypto.clone(), client_config })
    }

    /// As client, sends the ClientHello (once); as server, nothing: the viewer starts.
    pub fn start(&mut self, now: Instant) -> Result<(), DtlsError> {
        match self.client_config.take() {
            Some(config) => self.endpoint.connect(now, ASSOCIATION, config, None).map_err(DtlsError::Handshake),
            None => Ok(()),
        }
    }

    /// Takes in a DTLS datagram from the viewer (from any address it was checked on).
    pub fn on_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<DtlsProgress, DtlsError> {
        let events = self.endpoint.read(now, ASSOCIATION, None, BytesMut::from(datagram)).map_err(DtlsError::Handshake)?;
        let mut progress = DtlsProgress::Handshaking;
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => progress = DtlsProgress::Connected(Box::new(self.srtp_contexts()?)),
                EndpointEvent::PeerClosed => return Ok(DtlsProgress::Closed),
                // Lookout carries no data channel: application data is ignored.
                _ => {}
            }
        }
        Ok(progress)
    }

    /// DTLS records to send (handshake flights, retransmissions, alerts).
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.endpoint.poll_transmit().map(|transmit| transmit.message)
    }

    /// When the handshake next needs `on_timeout` (a flight to retransmit).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout(&ASSOCIATION)
    }

    pub fn on_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        self.endpoint.handle_timeout(ASSOCIATION, now).map_err(DtlsError::Handshake)
    }

    /// Queues a close_notify for the viewer.
    pub fn close(&mut self, now: Instant) {
        self.endpoint.stop(now, ASSOCIATION);
    }

    fn srtp_contexts(&self) -> Result<SrtpContexts, DtlsError> {
        let state = self.endpoint.get_connection_state(ASSOCIATION).ok_or(DtlsError::NoConnection)?;
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            _ => return Err(DtlsError::NoSrtpProfile),
        };
        let mut config = rtc::srtp::config::Config { profile, ..Default::default() };
        let material = state
            .export_keying_material(rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())
            .map_err(|error| DtlsError::Srtp { doing: "exporting keys", error })?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
            .map_err(|error| DtlsError::Srtp { doing: "deriving the session keys", error })?;
        let crypto = self.crypto.crypto();
        let keys = &config.keys;
        let context = Context::new(&keys.local_master_key, &keys.local_master_salt, profile, None, None, crypto)
            .map_err(|error| DtlsError::Srtp { doing: "making the outbound context", error })?;
        let gcm_keys = matches!(profile, ProtectionProfile::AeadAes128Gcm).then_some((&keys.local_master_key[..], &keys.local_master_salt[..]));
        let outbound = SrtpSender::new(context, gcm_keys, crypto).map_err(DtlsError::OutboundSrtp)?;
        // Replay protection on what the viewer sends (RTCP): a window of 64, as RFC 3711 suggests.
        let inbound = Context::new(
            &config.keys.remote_master_key,
            &config.keys.remote_master_salt,
            profile,
            Some(rtc::srtp::option::srtp_replay_protection(64)),
            Some(rtc::srtp::option::srtcp_replay_protection(64)),
            crypto,
        )
        .map_err(|error| DtlsError::Srtp { doing: "making the inbound context", error })?;
        Ok(SrtpContexts { outbound, inbound })
    }
}

fn handshake_config(identity: &Identity, remote_fingerprint: &str, role: DtlsRole) -> Result<HandshakeConfig, DtlsError> {
    let expected = remote_fingerprint.to_ascii_uppercase();
    let crypto = identity.crypto.clone();
    // The certificate is self-signed: what authenticates the viewer is that it is the one whose
    // fingerprint came through signalling.
    let verify: VerifyPeerCertificateFn = Arc::new(move |certificates: &[Vec<u8>], _| {
        let presented = certificates.first().ok_or(rtc::shared::error::Error::Other("no certificate".into()))?;
        match sha256_fingerprint(presented, crypto.as_ref()) {
            Ok(fingerprint) if fingerprint == expected => Ok(()),
            _ => Err(rtc::shared::error::Error::Other("certificate fingerprint does not match the description".into())),
        }
    });
    ConfigBuilder::default()
        .with_crypto_provider(identity.crypto.clone())
        .with_certificates(vec![identity.certificate.clone()])
        .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm, SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(role == DtlsRole::Client, None)
        .map_err(|error| DtlsError::Setup { doing: "configuring the handshake", error })
}
