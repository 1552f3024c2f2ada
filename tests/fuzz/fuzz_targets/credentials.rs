//! What a caller brings as a credential: an `Authorization` header, a token in the first
//! WebSocket message, the signature of a signed HLS URL. Each is read into a value or refused
//! with an error, never a panic; a Basic credential reads back the same from its own encoding;
//! a token is checked as a JWT against a key and never passes with bytes nobody signed.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use lookout::auth::{AccessControl, AuthSettings, Caller, Credential, JwtKey, JwtSettings, Protocol, UrlSigner, DEFAULT_JWT_CLAIM};
use lookout_signaling::ClientMessage;
use std::sync::OnceLock;
use std::time::SystemTime;

fn access() -> &'static AccessControl {
    static ACCESS: OnceLock<AccessControl> = OnceLock::new();
    ACCESS.get_or_init(|| {
        let jwt = JwtSettings { key: JwtKey::Secret("a fuzzing secret of thirty-two bytes".into()), issuer: None, audience: None, claim: DEFAULT_JWT_CLAIM.into() };
        AccessControl::new(Some(&AuthSettings { jwt: Some(jwt), ..Default::default() })).expect("access control")
    })
}

fuzz_target!(|data: &[u8]| {
    let credential = match Credential::from_authorization(data) {
        Ok(credential) => credential,
        Err(_) => Credential::None,
    };
    match &credential {
        Credential::Basic { user, password } => {
            assert!(!user.is_empty() && !user.contains(':'), "{user:?}");
            let again = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
            assert_eq!(Credential::from_authorization(again.as_bytes()).as_ref(), Ok(&credential));
        }
        Credential::Bearer(token) => assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}"),
        Credential::None => {}
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first WebSocket message: its token becomes a bearer credential, or is refused.
    let token = match ClientMessage::parse(text) {
        Ok(ClientMessage::Auth { token: Some(token) }) => Credential::bearer(&token).ok(),
        _ => Credential::bearer(text).ok(),
    };
    if let Some(token) = token {
        let caller = Caller { ip: [127, 0, 0, 1].into(), credential: token, protocol: Protocol::WebSocket };
        // Nothing the fuzzer makes is signed with the secret.
        assert!(futures::executor::block_on(access().identify(&caller)).is_err(), "an unsigned token was accepted: {text:?}");
    }
    let signer = UrlSigner::new(Some(b"a fuzzing key of thirty-two bytes"));
    assert!(signer.verify("demo", text, SystemTime::now()).is_err(), "a made-up signature verified: {text:?}");
});
