//! Validated codes.
//!
//! Codes are the human-chosen identifiers of products, policies, features, customers and custom
//! fields. They appear in signed runtime data (a feature's `code`), so they are restricted to
//! `[A-Za-z0-9][A-Za-z0-9._:-]*` and at most [`MAX_CODE_LEN`] bytes: ASCII only, which keeps the
//! signed bytes identical across every JSON encoder (DESIGN 4.1). A code value can only be built
//! through validation ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest code accepted, in bytes.
pub const MAX_CODE_LEN: usize = 64;

/// Why a string is not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The string is empty.
    #[error("code must not be empty")]
    Empty,
    /// The string is longer than [`MAX_CODE_LEN`].
    #[error("code must be at most {MAX_CODE_LEN} characters")]
    TooLong,
    /// The first character is not an ASCII letter or digit.
    #[error("code must start with an ASCII letter or digit")]
    InvalidStart,
    /// A character outside `[A-Za-z0-9._:-]`.
    #[error("code may only contain ASCII letters, digits, '.', '_', ':' and '-'")]
    InvalidCharacter,
}

fn check_code(s: &str) -> Result<(), CodeError> {
    let bytes = s.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(CodeError::Empty);
    };
    if bytes.len() > MAX_CODE_LEN {
        return Err(CodeError::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Err(CodeError::InvalidStart);
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(CodeError::InvalidCharacter);
    }
    Ok(())
}

macro_rules! define_code {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The code as text.
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
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                check_code(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                check_code(&s)?;
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

define_code!(/// Code of a product, unique across products.
    ProductCode);
define_code!(/// Code of a policy, unique within its product.
    PolicyCode);
define_code!(/// Code of a feature, unique within its product; appears in signed data.
    FeatureCode);
define_code!(/// Code of a customer, unique across customers.
    CustomerCode);
define_code!(/// Code of a custom field definition, unique per product and resource type.
    CustomFieldCode);
define_code!(/// Name of a license pool: unassigned licenses waiting to be handed to customers.
    PoolName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "PRO", "seats.max", "ns:feature_1-x", "9lives"] {
            assert!(ok.parse::<FeatureCode>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!("".parse::<FeatureCode>(), Err(CodeError::Empty));
        assert_eq!("-a".parse::<FeatureCode>(), Err(CodeError::InvalidStart));
        assert_eq!(".a".parse::<FeatureCode>(), Err(CodeError::InvalidStart));
        assert_eq!(
            "a b".parse::<FeatureCode>(),
            Err(CodeError::InvalidCharacter)
        );
        assert_eq!(
            "café".parse::<FeatureCode>(),
            Err(CodeError::InvalidCharacter)
        );
        assert_eq!(
            "a/b".parse::<FeatureCode>(),
            Err(CodeError::InvalidCharacter)
        );
        assert_eq!(
            "a".repeat(MAX_CODE_LEN + 1).parse::<FeatureCode>(),
            Err(CodeError::TooLong)
        );
        assert!("a".repeat(MAX_CODE_LEN).parse::<FeatureCode>().is_ok());
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<ProductCode>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ProductCode>("\"not ok\"").is_err());
    }
}
