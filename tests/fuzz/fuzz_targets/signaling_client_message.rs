//! A viewer's WebSocket text frame: `ClientMessage::parse` returns a message or an error, never
//! panics, and whatever parses serialises back to JSON that parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_signaling::{ClientMessage, MAX_MESSAGE_BYTES};

fuzz_target!(|data: &[u8]| {
    // The server reads text frames only, and refuses longer ones before parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > MAX_MESSAGE_BYTES {
        return;
    }
    let Ok(message) = ClientMessage::parse(text) else { return };
    let json = serde_json::to_string(&message).expect("a parsed message serialises");
    let again = ClientMessage::parse(&json).unwrap_or_else(|e| panic!("{json} does not parse back: {e}"));
    assert_eq!(again, message, "{json} parses to another message");
});
