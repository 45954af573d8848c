//! Strict standard base64 decoding and lowercase hex, shared with `licentia-core` (which adds
//! encoding) so each has one definition.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Strict standard base64: padding required, no trailing bits, no whitespace.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// Strict base64 of exactly `N` bytes.
pub fn b64_decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Keys, nonces, salts and signatures (up to 64 bytes) decode on the stack: verifying a
    // signature should not allocate for it.
    const STACK: usize = 96;
    if N + 3 > STACK {
        return b64_decode(s)?.try_into().ok();
    }
    if s.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let mut buf = [0u8; STACK];
    let n = STANDARD.decode_slice(s, &mut buf).ok()?;
    buf.get(..n)?.try_into().ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Lowercase hex of exactly `N` bytes (uppercase is refused so each value has one spelling).
pub fn hex_decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_length_base64_is_strict() {
        let sixty_four = STANDARD.encode([7u8; 64]);
        assert_eq!(b64_decode_array::<64>(&sixty_four), Some([7u8; 64]));
        assert_eq!(b64_decode_array::<32>(&sixty_four), None, "too long");
        assert_eq!(b64_decode_array::<64>(&sixty_four[..84]), None, "too short");
        let twelve = STANDARD.encode([1u8; 12]);
        assert_eq!(b64_decode_array::<12>(&twelve), Some([1u8; 12]));
        // Unpadded, trailing bits set, whitespace: refused like the allocating decoder does.
        let thirty_two = STANDARD.encode([9u8; 32]);
        assert_eq!(
            b64_decode_array::<32>(thirty_two.trim_end_matches('=')),
            None
        );
        let mut bits = thirty_two.clone().into_bytes();
        bits[42] = b'B';
        assert_eq!(
            b64_decode_array::<32>(core::str::from_utf8(&bits).unwrap()),
            b64_decode(core::str::from_utf8(&bits).unwrap()).and_then(|v| v.try_into().ok())
        );
        assert_eq!(
            b64_decode_array::<32>(&alloc::format!(" {}", &thirty_two[1..])),
            None
        );
    }
}
