//! Encrypts what Lookout sends a viewer. RTP under AEAD_AES_128_GCM (RFC 7714), the profile
//! browsers take, is sealed in place, in the buffer it leaves from: the packet is written there
//! once, header and payload, and encrypted where it lies, with no allocation. rtc-srtp's
//! context makes a new buffer for every packet, and at hundreds of viewers those copies were
//! most of what sending cost in user space. RTCP, and RTP under the older AES-CM profile
//! (which some custom clients negotiate), still go through rtc-srtp, with one copy.

use rtc::crypto::{AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CryptoError, RTCCrypto};
use rtc::rtp::packet::Packet;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;

/// RFC 7714: a 128-bit key, a 96-bit salt, a 128-bit tag.
const KEY_LEN: usize = 16;
const SALT_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// RFC 3711 §4.3.2: the labels of the session key and salt for SRTP.
const LABEL_ENCRYPTION_KEY: u8 = 0x00;
const LABEL_SALT: u8 = 0x02;

#[derive(Debug, thiserror::Error)]
pub enum SrtpSendError {
    #[error("SRTP: writing the RTP header: {0}")]
    Header(rtc::shared::error::Error),
    #[error("SRTP: {0}")]
    Crypto(#[from] CryptoError),
    #[error("SRTP: {0}")]
    Context(rtc::shared::error::Error),
}

pub struct SrtpSender {
    /// RTCP always; RTP too when the profile is not AES-GCM.
    context: Context,
    gcm: Option<GcmSealer>,
}

impl SrtpSender {
    /// `gcm_keys`: the master key and salt when DTLS negotiated AEAD_AES_128_GCM.
    pub fn new(context: Context, gcm_keys: Option<(&[u8], &[u8])>, crypto: &dyn RTCCrypto) -> Result<Self, SrtpSendError> {
        let gcm = gcm_keys.map(|(key, salt)| GcmSealer::new(key, salt, crypto)).transpose()?;
        Ok(Self { context, gcm })
    }

    /// Appends `packet`, encrypted, to `out`. On an error `out` is as it was.
    pub fn write_rtp(&mut self, packet: &Packet, out: &mut Vec<u8>) -> Result<(), SrtpSendError> {
        let start = out.len();
        let written = self.try_write_rtp(packet, out);
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    fn try_write_rtp(&mut self, packet: &Packet, out: &mut Vec<u8>) -> Result<(), SrtpSendError> {
        let start = out.len();
        let header_len = packet.header.marshal_size();
        out.resize(start + header_len, 0);
        packet.header.marshal_to(&mut out[start..]).map_err(SrtpSendError::Header)?;
        out.extend_from_slice(&packet.payload);
        match self.gcm.as_mut() {
            Some(gcm) => gcm.seal(out, start, header_len, packet.header.ssrc, packet.header.sequence_number),
            None => {
                let protected = self.context.encrypt_rtp_with_header(&out[start..], &packet.header).map_err(SrtpSendError::Context)?;
                out.truncate(start);
                out.extend_from_slice(&protected);
                Ok(())
            }
        }
    }

    /// A marshalled compound RTCP packet, encrypted.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<bytes::BytesMut, SrtpSendError> {
        self.context.encrypt_rtcp(packet).map_err(SrtpSendError::Context)
    }
}

struct GcmSealer {
    cipher: Box<dyn AeadCipher>,
    salt: [u8; SALT_LEN],
    rollovers: Vec<RolloverCounter>,
}

impl GcmSealer {
    fn new(master_key: &[u8], master_salt: &[u8], crypto: &dyn RTCCrypto) -> Result<Self, SrtpSendError> {
        let key: [u8; KEY_LEN] = derive(crypto, LABEL_ENCRYPTION_KEY, master_key, master_salt)?;
        let salt: [u8; SALT_LEN] = derive(crypto, LABEL_SALT, master_key, master_salt)?;
        Ok(Self { cipher: crypto.new_aead(AeadAlgorithm::Aes128Gcm, &key)?, salt, rollovers: Vec::new() })
    }

    /// Encrypts the packet at `out[start..]` whose header is `header_len` long, and appends
    /// the tag.
    fn seal(&mut self, out: &mut Vec<u8>, start: usize, header_len: usize, ssrc: u32, sequence_number: u16) -> Result<(), SrtpSendError> {
        // A viewer has two or three SSRCs (video, its RTX, audio): a scan beats a map.
        let rollover = match self.rollovers.iter_mut().find(|counter| counter.ssrc == ssrc) {
            Some(counter) => counter.rollover_of(sequence_number),
            None => {
                self.rollovers.push(RolloverCounter { ssrc, highest: sequence_number, rollover: 0 });
                0
            }
        };
        // RFC 7714 §8.1: 00 00, SSRC, rollover counter, sequence number, XORed with the salt.
        let mut nonce = self.salt;
        let index = ssrc.to_be_bytes().into_iter().chain(rollover.to_be_bytes()).chain(sequence_number.to_be_bytes());
        nonce[2..].iter_mut().zip(index).for_each(|(byte, part)| *byte ^= part);
        let mut tag = [0u8; TAG_LEN];
        let (header, payload) = out[start..].split_at_mut(header_len);
        self.cipher.seal_in_place(&nonce, header, payload, &mut tag)?;
        out.extend_from_slice(&tag);
        Ok(())
    }
}

/// The rollover counter of one SSRC (RFC 3711 §3.3.1): how often its sequence numbers wrapped,
/// for the packet index. A resent packet from before the last wrap takes the counter it had.
struct RolloverCounter {
    ssrc: u32,
    highest: u16,
    rollover: u32,
}

impl RolloverCounter {
    fn rollover_of(&mut self, sequence_number: u16) -> u32 {
        let ahead = sequence_number.wrapping_sub(self.highest);
        if ahead < 0x8000 {
            // Newer (or the same): past a wrap when the number itself went down.
            if sequence_number < self.highest {
                self.rollover = self.rollover.wrapping_add(1);
            }
            self.highest = sequence_number;
            self.rollover
        } else if sequence_number > self.highest {
            // Older, from before the last wrap.
            self.rollover.wrapping_sub(1)
        } else {
            self.rollover
        }
    }
}

/// RFC 3711 §4.3.3 with a key derivation rate of 0 (RFC 5764): AES in counter mode under the
/// master key, from the master salt with the label at byte 7.
fn derive<const N: usize>(crypto: &dyn RTCCrypto, label: u8, master_key: &[u8], master_salt: &[u8]) -> Result<[u8; N], CryptoError> {
    let mut input = [0u8; 16];
    let salt_len = master_salt.len().min(14);
    input[..salt_len].copy_from_slice(&master_salt[..salt_len]);
    input[7] ^= label;
    let mut derived = [0u8; N];
    for (counter, chunk) in derived.chunks_mut(16).enumerate() {
        let mut block = input;
        block[14..].copy_from_slice(&(counter as u16).to_be_bytes());
        crypto.block_encrypt(BlockCipherAlgorithm::Aes128, master_key, &mut block)?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(derived)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::Header;
    use rtc::srtp::protection_profile::ProtectionProfile;

    const MASTER_KEY: [u8; 16] = [0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0];
    const MASTER_SALT: [u8; 12] = [0x51, 0x62, 0x73, 0x84, 0x95, 0xa6, 0xb7, 0xc8, 0xd9, 0xea, 0xfb, 0x0c];

    fn crypto() -> std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider> {
        rtc::crypto::default_provider().expect("a crypto provider")
    }

    fn context(profile: ProtectionProfile, salt: &[u8]) -> Context {
        Context::new(&MASTER_KEY, salt, profile, None, None, crypto().crypto()).expect("context")
    }

    fn packet(ssrc: u32, sequence_number: u16) -> Packet {
        let mut header = Header { version: 2, marker: true, payload_type: 102, sequence_number, timestamp: 90_000, ssrc, ..Default::default() };
        header.set_extension(3, bytes::Bytes::from_static(&[0x12, 0x34])).expect("extension");
        Packet { header, payload: bytes::Bytes::from(vec![sequence_number as u8; 300]) }
    }

    /// What rtc-srtp, an independent implementation, makes of what this one sealed.
    fn decrypted(receiver: &mut Context, datagram: &[u8]) -> Vec<u8> {
        receiver.decrypt_rtp(datagram).expect("rtc-srtp decrypts and authenticates it").to_vec()
    }

    #[test]
    fn gcm_packets_are_sealed_where_they_lie_and_open_with_rtc_srtp_across_a_wrap_and_resends() {
        let crypto = crypto();
        let mut sender = SrtpSender::new(context(ProtectionProfile::AeadAes128Gcm, &MASTER_SALT), Some((&MASTER_KEY, &MASTER_SALT)), crypto.crypto()).expect("sender");
        let mut receiver = context(ProtectionProfile::AeadAes128Gcm, &MASTER_SALT);
        // Two SSRCs; one wraps, then a packet from before the wrap is resent.
        let order = [(1, 65_534), (2, 10), (1, 65_535), (1, 0), (2, 11), (1, 1), (1, 65_533), (1, 2)];
        let mut out = b"queued before".to_vec();
        for (ssrc, sequence_number) in order {
            let start = out.len();
            let packet = packet(ssrc, sequence_number);
            let plain = packet.marshal().expect("marshal");
            sender.write_rtp(&packet, &mut out).expect("sealed");
            let datagram = &out[start..];
            assert_eq!(datagram.len(), plain.len() + TAG_LEN);
            assert_eq!(datagram[..packet.header.marshal_size()], plain[..packet.header.marshal_size()], "the header stays readable");
            assert_ne!(datagram[packet.header.marshal_size()..plain.len()], plain[packet.header.marshal_size()..], "the payload is encrypted");
            assert_eq!(decrypted(&mut receiver, datagram), plain.to_vec(), "packet {ssrc}/{sequence_number}");
        }
        assert!(out.starts_with(b"queued before"), "what was in the buffer stays");
    }

    #[test]
    fn the_aes_cm_profile_goes_through_rtc_srtp() {
        let salt = [7u8; 14];
        let mut sender = SrtpSender::new(context(ProtectionProfile::Aes128CmHmacSha1_80, &salt), None, crypto().crypto()).expect("sender");
        let mut receiver = context(ProtectionProfile::Aes128CmHmacSha1_80, &salt);
        let packet = packet(5, 100);
        let mut out = Vec::new();
        sender.write_rtp(&packet, &mut out).expect("encrypted");
        assert_eq!(decrypted(&mut receiver, &out), packet.marshal().expect("marshal").to_vec());
    }

    #[test]
    fn the_rollover_counter_follows_wraps_and_resends_from_before_them() {
        let mut counter = RolloverCounter { ssrc: 1, highest: 65_000, rollover: 0 };
        assert_eq!(counter.rollover_of(65_500), 0);
        assert_eq!(counter.rollover_of(100), 1, "wrapped");
        assert_eq!(counter.rollover_of(65_400), 0, "resent from before the wrap");
        assert_eq!(counter.rollover_of(101), 1);
        assert_eq!(counter.rollover_of(50), 1, "resent after the wrap");
        assert_eq!((counter.highest, counter.rollover), (101, 1));
    }
}
