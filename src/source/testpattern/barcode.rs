//! The machine-readable strips painted at the top of each test-pattern frame.
//!
//! Row 0 carries the capture wall-clock time (low 32 bits of Unix milliseconds), row 1 the
//! frame counter. Each row is `BITS` blocks, most significant bit first: 32 data bits then an
//! 8-bit check, white for 1 and black for 0. Blocks are large so they survive compression and
//! scaling. `web/barcode.js` reads them back; keep the two in step.

pub const BITS: u32 = 40;
const CHECK_SALT: u8 = 0x5a;

/// The block size for a picture of this size: `(width, height)` in pixels.
pub fn block_size(width: u32, height: u32) -> (u32, u32) {
    (width / BITS, (height / 24).max(8))
}

/// Data bits then check bits, most significant first.
pub fn encode(value: u32) -> u64 {
    (u64::from(value) << 8) | u64::from(check(value))
}

/// The value, if the check bits match (the page does this in JavaScript; here for tests).
#[cfg(test)]
pub fn decode(code: u64) -> Option<u32> {
    let value = (code >> 8) as u32;
    (code as u8 == check(value)).then_some(value)
}

fn check(value: u32) -> u8 {
    value.to_be_bytes().iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) ^ CHECK_SALT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_detected() {
        for value in [0, 1, 0xdead_beef, u32::MAX] {
            let code = encode(value);
            assert_eq!(decode(code), Some(value));
            assert_eq!(decode(code ^ (1 << 20)), None, "a flipped data bit is caught");
        }
        assert_eq!(decode(0), None, "an all-black strip is not a value");
        assert_eq!(decode((1 << BITS) - 1), None, "an all-white strip is not a value");
    }
}
