//! Second-precision UTC timestamps for signed data.
//!
//! DESIGN 4.1: timestamps inside signed data are RFC 3339 UTC with second precision and a `Z`
//! suffix (`2026-11-22T10:00:00Z`). [`Timestamp`] can only hold such an instant, so every
//! encoder emits the same bytes.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant truncated to whole seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Truncates `at` to whole seconds.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(0))
    }

    /// The instant.
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self::new(at)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let at = DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)?;
        Ok(Self::new(at.with_timezone(&Utc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn serializes_with_seconds_and_z() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
            + chrono::Duration::milliseconds(999);
        let ts = Timestamp::new(at);
        assert_eq!(
            serde_json::to_string(&ts).unwrap(),
            "\"2026-11-22T10:00:00Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2026-11-22T11:00:00+01:00\"").unwrap();
        assert_eq!(back, ts);
    }
}
