//! Typed identifiers.
//!
//! Every record has its own id type so a `DeviceId` can never be passed where a `LicenseId` is
//! expected. Ids are ASCII (`prefix_` + 26 lowercase base32 characters when generated here) so
//! they may appear in signed runtime data without escaping. Ids that arrive from outside (path
//! parameters, request bodies) are parsed with [`std::str::FromStr`], which accepts any
//! non-empty ASCII identifier of at most [`MAX_ID_LEN`] bytes so ids minted by another system
//! during an import still round-trip.

use std::fmt;

use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest id accepted from outside, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string is empty.
    #[error("id must not be empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("id must be at most {MAX_ID_LEN} bytes")]
    TooLong,
    /// The string holds a character outside `[A-Za-z0-9._:-]`.
    #[error("id may only contain ASCII letters, digits, '.', '_', ':' and '-'")]
    InvalidCharacter,
    /// The id has a fixed form (`dlv_<n>`) and the string is not of it.
    #[error("id must be {expected}<number>")]
    NotOfForm {
        /// The form's prefix.
        expected: &'static str,
    },
}

pub(crate) fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(IdError::InvalidCharacter);
    }
    Ok(())
}

const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `prefix_` followed by 26 base32 characters (130 random bits).
pub(crate) fn random_id(prefix: &str, rng: &mut (impl CryptoRng + ?Sized)) -> String {
    let mut bytes = [0u8; 26];
    rng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(prefix.len() + 1 + bytes.len());
    out.push_str(prefix);
    out.push('_');
    out.extend(
        bytes
            .iter()
            .map(|b| BASE32_LOWER[usize::from(b & 31)] as char),
    );
    out
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix of ids minted by [`Self::generate`].
            pub const PREFIX: &'static str = $prefix;

            /// Mints a fresh random id from the caller's RNG.
            pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
                Self(random_id($prefix, rng))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check_id(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_id(&s)?;
                Ok(Self(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(/// Id of a [`Product`](super::Product).
    ProductId, "prod");
define_id!(/// Id of a [`ProductVersion`](super::ProductVersion).
    ProductVersionId, "ver");
define_id!(/// Id of a [`Policy`](super::Policy).
    PolicyId, "pol");
define_id!(/// Id of a [`Feature`](super::Feature).
    FeatureId, "feat");
define_id!(/// Id of a [`Customer`](super::Customer).
    CustomerId, "cus");
define_id!(/// Id of a [`License`](super::License).
    LicenseId, "lic");
define_id!(/// Id of a [`Device`](super::Device).
    DeviceId, "dev");
define_id!(/// Id of an [`Order`](super::Order).
    OrderId, "ord");
define_id!(/// Id of a [`Subscription`](super::Subscription).
    SubscriptionId, "sub");
define_id!(/// Id of a [`ReportExport`](super::ReportExport).
    ExportId, "rpx");
define_id!(/// Id of a [`CustomFieldDefinition`](super::CustomFieldDefinition).
    CustomFieldId, "cf");
define_id!(/// Id of an [`ApiKey`](super::ApiKey).
    ApiKeyId, "key");
define_id!(/// Id of a [`WebhookEndpoint`](super::WebhookEndpoint).
    WebhookId, "whk");
define_id!(/// Id of a floating [`Lease`](super::Lease).
    LeaseId, "lease");
define_id!(/// Id of a [`DeviceRegistration`](super::DeviceRegistration).
    RegistrationId, "dreg");
define_id!(/// Id of a [`DeviceSession`](super::DeviceSession).
    SessionId, "dses");
define_id!(/// Id of a [`LicenseTemplate`](super::LicenseTemplate).
    TemplateId, "ltpl");
define_id!(/// Id of a reseller [`Contract`](super::Contract).
    ContractId, "ctr");
define_id!(/// Id of a release [`Artifact`](super::Artifact).
    ArtifactId, "art");
define_id!(/// Id of a management [`User`](super::User).
    UserId, "usr");

/// A store-numbered id: `<prefix><n>` with `n` the number the store assigned (records created
/// where no randomness is at hand, or listed in the order the store numbered them).
macro_rules! define_seq_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            const PREFIX: &'static str = $prefix;

            /// The id with the store's number `n`.
            pub fn new(n: i64) -> Self {
                Self(n)
            }

            /// The store's number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}{}", Self::PREFIX, self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix(Self::PREFIX)
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<i64>().ok())
                    .map(Self)
                    .ok_or($crate::model::IdError::NotOfForm {
                        expected: Self::PREFIX,
                    })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use define_seq_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_non_ascii_and_empty() {
        assert_eq!("".parse::<LicenseId>(), Err(IdError::Empty));
        assert_eq!("lic_é".parse::<LicenseId>(), Err(IdError::InvalidCharacter));
        assert_eq!("a b".parse::<LicenseId>(), Err(IdError::InvalidCharacter));
        assert_eq!("x".repeat(129).parse::<LicenseId>(), Err(IdError::TooLong));
        assert!("lic_abc-1:2.3".parse::<LicenseId>().is_ok());
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<DeviceId>("\"dev_ok\"").is_ok());
        assert!(serde_json::from_str::<DeviceId>("\"dev ok\"").is_err());
    }
}
