//! Small encoding helpers shared by the crypto submodules: base64 (standard alphabet, padded,
//! strict decoding) and lowercase hex.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Standard base64 with padding.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

// Decoding and hex are the reading side's (one strict definition of each).
pub(crate) use licentia_verify::encoding::{b64_decode_array, hex_decode_array, hex_encode};

#[cfg(test)]
mod tests {
    use super::*;
    use licentia_verify::encoding::b64_decode;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode_array::<3>("00abff"), Some([0x00, 0xab, 0xff]));
        assert_eq!(hex_decode_array::<3>("00ABff"), None);
        assert_eq!(hex_decode_array::<3>("00abf"), None);
        assert_eq!(hex_decode_array::<3>("00abfg"), None);
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(b64_encode(b"ab"), "YWI=");
        assert_eq!(b64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(b64_decode("YWI"), None, "padding required");
        assert_eq!(b64_decode("YWJ="), None, "non-canonical trailing bits");
        assert_eq!(b64_decode("YW I="), None);
        assert_eq!(b64_decode_array::<2>("YWI="), Some(*b"ab"));
        assert_eq!(b64_decode_array::<3>("YWI="), None);
    }
}
