//! ICE-lite (RFC 8445 §2.5): Lookout answers the viewer's connectivity checks and never sends
//! its own. A check is a STUN Binding request whose USERNAME is `<our ufrag>:<viewer's ufrag>`,
//! authenticated with our password (MESSAGE-INTEGRITY, short-term credentials); the answer
//! tells the viewer the address it was seen from. The controlling viewer nominates a pair with
//! USE-CANDIDATE: media then goes to the address that check came from. Checks keep coming as
//! consent freshness (RFC 7675), which is how a viewer that vanished is noticed.

use rtc::crypto::RTCCrypto;
use rtc::stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Getter, Message, MessageType, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc::stun::textattrs::Username;
use rtc::stun::xoraddr::XorMappedAddress;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckError {
    #[error("not a STUN message: {0}")]
    NotStun(rtc::shared::error::Error),
    #[error("a STUN {0} where a Binding request belongs")]
    NotABindingRequest(MessageType),
    #[error("connectivity check without a USERNAME: {0}")]
    NoUsername(rtc::shared::error::Error),
    #[error("connectivity check for another session or viewer (USERNAME {0:?})")]
    WrongUsername(String),
    #[error("connectivity check failed authentication: {0}")]
    Unauthenticated(rtc::shared::error::Error),
    #[error("connectivity check with a wrong FINGERPRINT: {0}")]
    BadFingerprint(rtc::shared::error::Error),
    #[error("connectivity check from a peer that is not controlling: an ICE-lite agent needs a full one")]
    NotControlling,
    #[error("cannot build the STUN response: {0}")]
    Response(rtc::shared::error::Error),
}

pub struct IceLite {
    /// `<our ufrag>:<viewer's ufrag>`: what a check for this session carries.
    expected_username: String,
    password: String,
    /// The address media goes to, once the viewer nominated one.
    nominated: Option<SocketAddr>,
    last_check: Option<Instant>,
}

/// What a valid check asks of the caller.
pub struct CheckAnswer {
    /// The Binding success response to send back to where the check came from.
    pub response: Vec<u8>,
    /// This check nominated its pair (first time or a new address): media goes there now.
    pub nominated: bool,
}

impl IceLite {
    pub fn new(local_ufrag: &str, local_password: &str, remote_ufrag: &str) -> Self {
        Self { expected_username: format!("{local_ufrag}:{remote_ufrag}"), password: local_password.to_owned(), nominated: None, last_check: None }
    }

    /// The viewer's address for media, once nominated.
    pub fn nominated(&self) -> Option<SocketAddr> {
        self.nominated
    }

    /// When the last valid check arrived: consent freshness.
    pub fn last_check(&self) -> Option<Instant> {
        self.last_check
    }

    /// Answers one connectivity check that arrived from `from`.
    pub fn on_check(&mut self, datagram: &[u8], from: SocketAddr, now: Instant, crypto: &dyn RTCCrypto) -> Result<CheckAnswer, CheckError> {
        let mut request = Message::new();
        request.unmarshal_binary(datagram).map_err(CheckError::NotStun)?;
        if request.typ != BINDING_REQUEST {
            return Err(CheckError::NotABindingRequest(request.typ));
        }
        let mut username = Username::new(ATTR_USERNAME, String::new());
        username.get_from(&request).map_err(CheckError::NoUsername)?;
        if username.text != self.expected_username {
            return Err(CheckError::WrongUsername(username.text));
        }
        MessageIntegrity::check(&mut request, self.password.as_bytes(), crypto).map_err(CheckError::Unauthenticated)?;
        FINGERPRINT.check(&request).map_err(CheckError::BadFingerprint)?;
        if !request.contains(ATTR_ICE_CONTROLLING) {
            return Err(CheckError::NotControlling);
        }
        self.last_check = Some(now);
        let nominated = request.contains(ATTR_USE_CANDIDATE) && self.nominated != Some(from);
        if nominated {
            self.nominated = Some(from);
        }
        let mut response = Message::new();
        let setters: [Box<dyn Setter + '_>; 5] = [
            Box::new(request.clone()), // the transaction id
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(self.password.clone(), crypto)),
            Box::new(FINGERPRINT),
        ];
        response.build(&setters).map_err(CheckError::Response)?;
        Ok(CheckAnswer { response: response.raw, nominated })
    }
}
