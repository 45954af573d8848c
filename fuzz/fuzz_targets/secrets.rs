//! License keys, management tokens, lease tokens, webhook secrets and secret hashes parsed
//! from arbitrary text. Whatever parses keeps its exact text, and its display parts and hash
//! come from that text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licentia_core::crypto::{LeaseToken, LicenseKey, ManagementToken, SecretHash, WebhookSecret};

macro_rules! check {
    ($ty:ty, $s:expr) => {
        if let Ok(k) = <$ty>::parse($s) {
            assert_eq!(k.expose_secret(), $s);
            assert!($s.starts_with(<$ty>::PREFIX));
            assert_eq!($s.len(), <$ty>::LEN);
            assert!($s.starts_with(k.prefix()));
            assert!($s.ends_with(k.last4()));
            assert!(k.hash() == SecretHash::of($s));
            // Debug never shows the secret.
            assert!(!format!("{k:?}").contains(&$s[<$ty>::PREFIX.len()..]));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check!(LicenseKey, s);
    check!(ManagementToken, s);
    check!(LeaseToken, s);
    check!(WebhookSecret, s);
    if let Ok(h) = s.parse::<SecretHash>() {
        assert_eq!(h.to_hex(), s.to_ascii_lowercase());
    }
});
