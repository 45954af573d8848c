//! Bearer secrets: license keys, management tokens, floating lease tokens and webhook secrets
//! (DESIGN 4.3).
//!
//! # Format
//!
//! Every secret is a type prefix followed by **32 characters of RFC 4648 base32**
//! (`A–Z2–7`, upper case, no padding) encoding 20 random bytes = 160 bits:
//!
//! | type | prefix | example |
//! |---|---|---|
//! | [`LicenseKey`] | `lsk_` | `lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U` |
//! | [`ManagementToken`] | `lkm_` | `lkm_…` |
//! | [`LeaseToken`] | `lft_` | `lft_…` |
//! | [`WebhookSecret`] | `whsec_` | `whsec_…` |
//!
//! Parsing is **strict**: the exact lower-case prefix, exactly 32 characters, upper-case
//! alphabet only, no surrounding whitespace. Lower case is refused rather than normalized:
//! the secret's exact bytes are hashed for lookup and (for license keys) are the HKDF input of
//! offline envelopes, so a secret must have exactly one spelling; an SDK that accepts typed
//! keys should upper-case the part after the prefix before sending it.
//!
//! # Storage
//!
//! Secrets are stored only as [`SecretHash`] (SHA-256 of the full string's UTF-8 bytes,
//! prefix included) and looked up by that hash, so no stored value ever needs comparing to a
//! secret. [`SecretHash`]'s `PartialEq` is constant-time anyway. For display, records keep
//! [`prefix`](LicenseKey::prefix) (type prefix plus the first 4 characters, e.g. `lsk_MFRG`,
//! the contract's `license_key_prefix` / `key_prefix` / `secret_prefix`) and
//! [`last4`](LicenseKey::last4) (the last 4 characters). Together they reveal 8 of the 32
//! characters, leaving 120 unknown bits.
//!
//! Secret types zeroize their memory on drop, print as `LicenseKey(lsk_MFRG…)` in `Debug`,
//! have no `Display`, and compare in constant time.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::encoding::{hex_decode_array, hex_encode};
use super::error::{HashParseError, SecretParseError};

/// Characters after the prefix of every secret.
pub const SECRET_BODY_LEN: usize = 32;
/// Random bytes behind every secret (160 bits).
pub const SECRET_RANDOM_BYTES: usize = 20;
/// How many characters after the type prefix [`LicenseKey::prefix`] and friends keep.
pub const DISPLAY_PREFIX_CHARS: usize = 4;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 of 20 bytes: exactly 32 characters, no padding.
fn base32_20(bytes: &[u8; SECRET_RANDOM_BYTES]) -> String {
    let mut out = String::with_capacity(SECRET_BODY_LEN);
    for group in bytes.chunks_exact(5) {
        let mut acc = 0u64;
        for b in group {
            acc = (acc << 8) | u64::from(*b);
        }
        for i in (0..8).rev() {
            let idx = usize::try_from((acc >> (i * 5)) & 31).unwrap_or(0);
            out.push(char::from(BASE32[idx]));
        }
    }
    out
}

fn parse_secret(s: &str, prefix: &str) -> Result<(), SecretParseError> {
    let body = s
        .strip_prefix(prefix)
        .ok_or(SecretParseError::WrongPrefix)?;
    if body.len() != SECRET_BODY_LEN {
        return Err(SecretParseError::WrongLength);
    }
    // Base32 is case-insensitive (RFC 4648 section 3.3 allows either case): generated secrets
    // are uppercase, an operator-chosen bootstrap token may be written in lowercase. A secret is
    // looked up by the hash of the exact string, so the case a caller chose is the one to send.
    if !body
        .bytes()
        .all(|b| BASE32.contains(&b.to_ascii_uppercase()))
    {
        return Err(SecretParseError::InvalidCharacter);
    }
    Ok(())
}

/// SHA-256 of a secret: what stores keep and look secrets up by.
///
/// `PartialEq` is constant-time. `Display`, `FromStr` and serde use 64 lowercase hex characters.
/// `Default` is all zeros, a placeholder that no secret hashes to in practice.
#[derive(Clone, Copy, Default)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// SHA-256 of `secret`'s UTF-8 bytes.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// From raw digest bytes (as stored in a `bytea` column, for example).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretHash {}

impl Hash for SecretHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.to_hex())
    }
}

impl FromStr for SecretHash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Self, HashParseError> {
        hex_decode_array::<32>(s).map(Self).ok_or(HashParseError)
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// The type prefix.
            pub const PREFIX: &'static str = $prefix;
            /// Length of the whole secret, prefix included.
            pub const LEN: usize = $prefix.len() + SECRET_BODY_LEN;

            /// A fresh secret from 160 random bits.
            pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
                let mut bytes = Zeroizing::new([0u8; SECRET_RANDOM_BYTES]);
                rng.fill_bytes(&mut bytes[..]);
                let body = Zeroizing::new(base32_20(&bytes));
                let mut s = Zeroizing::new(String::with_capacity(Self::LEN));
                s.push_str($prefix);
                s.push_str(&body);
                Self(s)
            }

            /// Parses a secret, strictly (see the [module docs](self)).
            ///
            /// # Errors
            ///
            /// [`SecretParseError`] naming the first rule the string breaks.
            pub fn parse(s: &str) -> Result<Self, SecretParseError> {
                parse_secret(s, $prefix)?;
                Ok(Self(Zeroizing::new(s.to_owned())))
            }

            /// The secret itself, to return once to its owner or to send as a credential.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// SHA-256 of the secret: the only form that is stored.
            pub fn hash(&self) -> SecretHash {
                SecretHash::of(&self.0)
            }

            /// The type prefix plus the first 4 characters (e.g. `lsk_MFRG`), kept for display.
            pub fn prefix(&self) -> &str {
                &self.0[..$prefix.len() + DISPLAY_PREFIX_CHARS]
            }

            /// The last 4 characters, kept for display.
            pub fn last4(&self) -> &str {
                &self.0[self.0.len() - 4..]
            }
        }

        impl FromStr for $name {
            type Err = SecretParseError;
            fn from_str(s: &str) -> Result<Self, SecretParseError> {
                Self::parse(s)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({}…)"), self.prefix())
            }
        }
    };
}

secret_type!(
    /// A license key: `lsk_` + 32 base32 characters. Authenticates runtime calls
    /// (`Authorization: License <key>`) and is the HKDF input of offline envelopes.
    LicenseKey,
    "lsk_"
);

secret_type!(
    /// A management API token: `lkm_` + 32 base32 characters (`Authorization: Bearer <token>`).
    /// Its [`prefix`](ManagementToken::prefix) is the API key record's `key_prefix`.
    ManagementToken,
    "lkm_"
);

secret_type!(
    /// A floating lease token: `lft_` + 32 base32 characters, returned by checkout and
    /// presented on heartbeat and checkin.
    LeaseToken,
    "lft_"
);

secret_type!(
    /// A pre-registered device's secret: `dsk_` + 32 base32 characters, shown once when the
    /// device is registered and presented with its serial to `POST /api/v1/device/activate`.
    DeviceSecret,
    "dsk_"
);

secret_type!(
    /// A device session token: `dst_` + 32 base32 characters, issued by device activation and
    /// presented instead of the license key (`Authorization: Session <token>`).
    SessionToken,
    "dst_"
);

secret_type!(
    /// A one-time token of a management user: an invitation (set the first password) or a
    /// password reset; `ust_` + 32 base32 characters, printed by the CLI, stored hashed.
    UserToken,
    "ust_"
);

secret_type!(
    /// A webhook signing secret: `whsec_` + 32 base32 characters. The HMAC key is the UTF-8
    /// bytes of the whole string, prefix included. Its [`prefix`](WebhookSecret::prefix) is the
    /// webhook record's `secret_prefix`.
    WebhookSecret,
    "whsec_"
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn base32_known_answer() {
        // RFC 4648: base32("abcdefghijklmnopqrst") computed with Python's base64.b32encode.
        assert_eq!(
            base32_20(b"abcdefghijklmnopqrst"),
            "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"
        );
        assert_eq!(base32_20(&[0; 20]), "A".repeat(32));
        assert_eq!(base32_20(&[0xff; 20]), "7".repeat(32));
    }

    #[test]
    fn generate_and_parse() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let k = LicenseKey::generate(&mut rng);
        let s = k.expose_secret();
        assert_eq!(s.len(), 36);
        assert!(s.starts_with("lsk_"));
        assert_eq!(LicenseKey::parse(s).unwrap(), k);
        assert_eq!(k.prefix(), &s[..8]);
        assert_eq!(k.last4(), &s[32..]);
        assert_ne!(LicenseKey::generate(&mut rng), k);
        let dbg = format!("{k:?}");
        assert_eq!(dbg, format!("LicenseKey({}…)", k.prefix()));
        assert!(!dbg.contains(&s[8..]));

        let t = ManagementToken::generate(&mut rng);
        assert!(t.expose_secret().starts_with("lkm_"));
        assert_eq!(t.expose_secret().len(), ManagementToken::LEN);
        let w = WebhookSecret::generate(&mut rng);
        assert_eq!(w.prefix().len(), 10);
        assert_eq!(w.expose_secret().len(), 38);
        let l = LeaseToken::generate(&mut rng);
        assert_eq!(l.expose_secret().parse::<LeaseToken>().unwrap(), l);
    }

    #[test]
    fn parse_edge_cases() {
        let good = "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";
        assert!(LicenseKey::parse(good).is_ok());
        // Base32 in either case (an operator-chosen bootstrap token may be lowercase); the
        // hash is of the exact string, so the case is not folded.
        let lower = ManagementToken::parse("lkm_mfrggzdfmztwq2lknnwg23tpobyxe43u").unwrap();
        assert_ne!(
            lower.hash().to_hex(),
            ManagementToken::parse("lkm_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U")
                .unwrap()
                .hash()
                .to_hex()
        );
        assert!(LicenseKey::parse("lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43u").is_ok());
        let cases: &[(&str, SecretParseError)] = &[
            ("", SecretParseError::WrongPrefix),
            ("lsk", SecretParseError::WrongPrefix),
            (
                "LSK_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
                SecretParseError::WrongPrefix,
            ),
            (
                "lkm_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
                SecretParseError::WrongPrefix,
            ),
            (
                " lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
                SecretParseError::WrongPrefix,
            ),
            ("lsk_", SecretParseError::WrongLength),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43",
                SecretParseError::WrongLength,
            ),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UA",
                SecretParseError::WrongLength,
            ),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U ",
                SecretParseError::WrongLength,
            ),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE431",
                SecretParseError::InvalidCharacter,
            ),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE430",
                SecretParseError::InvalidCharacter,
            ),
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE48=",
                SecretParseError::InvalidCharacter,
            ),
            // 32 bytes but not 32 ASCII characters.
            (
                "lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE4é",
                SecretParseError::InvalidCharacter,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(LicenseKey::parse(s).unwrap_err(), *want, "{s:?}");
        }
        assert!(WebhookSecret::parse("whsec_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U").is_ok());
    }

    #[test]
    fn hashes() {
        let k = LicenseKey::parse("lsk_MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U").unwrap();
        let h = k.hash();
        assert_eq!(h, SecretHash::of(k.expose_secret()));
        assert_eq!(h.to_hex().len(), 64);
        assert_eq!(h.to_hex().parse::<SecretHash>().unwrap(), h);
        assert_eq!(
            h.to_hex().to_uppercase().parse::<SecretHash>().unwrap_err(),
            HashParseError
        );
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<SecretHash>(&json).unwrap(), h);
        assert_eq!(format!("{h:?}"), format!("SecretHash({h})"));
        assert_eq!(SecretHash::from_bytes(*h.as_bytes()), h);
        assert_ne!(SecretHash::of("x"), h);
        assert_eq!(
            SecretHash::of("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
