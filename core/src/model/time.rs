//! Second-precision UTC timestamps for signed data.
//!
//! DESIGN 4.1: timestamps inside signed data are RFC 3339 UTC with second precision and a `Z`
//! suffix (`2026-11-22T10:00:00Z`). [`Timestamp`] can only hold such an instant, so every
//! encoder emits the same bytes.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Timelike, Utc};
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
    /// `YYYY-MM-DDTHH:MM:SSZ`, written field by field: signing writes two or three of these
    /// per answer, and a format string is parsed again on every call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if !(0..=9999).contains(&t.year()) {
            // Outside four digits chrono's `%Y` adds a sign; keep its spelling there.
            return write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// Reads exactly the canonical form `YYYY-MM-DDTHH:MM:SSZ` (what every licentia signer
/// writes); anything else, including a leap second, is left to the general RFC 3339 parser,
/// which gives the same instant for everything this accepts.
fn parse_canonical(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !shape {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
    Some(
        date.and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?
            .and_utc(),
    )
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
        if let Some(at) = parse_canonical(&s) {
            return Ok(Self(at));
        }
        let at = DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)?;
        Ok(Self::new(at.with_timezone(&Utc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_canonical_fast_path_reads_what_rfc_3339_reads() {
        for s in [
            "2026-11-22T10:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2024-02-29T12:34:56Z",
        ] {
            let general = DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
            assert_eq!(parse_canonical(s), Some(general), "{s}");
            assert_eq!(Timestamp(general).to_string(), s, "written back the same");
        }
        // Not canonical: left to the general parser (which accepts or refuses it).
        for s in [
            "2026-11-22T10:00:60Z",
            "2026-11-22t10:00:00z",
            "2026-11-22T10:00:00+00:00",
            "2026-02-30T10:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:0aZ",
            "+2026-11-22T10:00:00",
            "",
        ] {
            assert_eq!(parse_canonical(s), None, "{s:?}");
        }
        let leap: Timestamp = serde_json::from_str("\"2016-12-31T23:59:60Z\"").unwrap();
        assert_eq!(
            leap.to_string(),
            "2016-12-31T23:59:59Z",
            "a leap second, truncated as before"
        );
        assert!(serde_json::from_str::<Timestamp>("\"2026-02-30T10:00:00Z\"").is_err());
    }

    #[test]
    fn years_beyond_four_digits_keep_chrono_spelling() {
        let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            Timestamp(far).to_string(),
            far.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
    }

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
