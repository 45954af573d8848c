//! Canonical JSON: the exact bytes that get signed (DESIGN 4.1).
//!
//! A signature covers the bytes of `data` as sent, so the signer must produce bytes that every
//! verifier can reproduce — or at least that every Open License SDK re-emits identically after
//! parsing. The rules:
//!
//! - compact: no whitespace between tokens;
//! - struct fields in declared order, absent optionals omitted (the model types use
//!   `skip_serializing_if`), maps in their own iteration order;
//! - **ASCII only**: printable ASCII (`0x20..=0x7e`) is written as is, except `"` and `\`;
//!   `\n`, `\r`, `\t`, `\b`, `\f`, `\"` and `\\` use their short escapes; every other character
//!   (other controls, DEL, and everything outside ASCII) becomes a lowercase `\uXXXX` escape,
//!   with a UTF-16 surrogate pair above U+FFFF. `/` is not escaped;
//! - **integers only**, with `|n| < 2^53` so they are exact in every JSON implementation.
//!
//! These are exactly the bytes Python's `json.dumps(obj, separators=(",", ":"))` (with its
//! default `ensure_ascii=True`) emits for the parsed object.
//!
//! # Implementation
//!
//! [`canonical_json`] runs `serde_json`'s serializer with a custom
//! [`serde_json::ser::Formatter`] ([`CanonicalFormatter`]). The formatter escapes non-ASCII in
//! `write_string_fragment` and refuses numbers it must not emit in `write_f32`/`write_f64` and
//! the integer writers, so rejection happens in the same single pass as writing — no second
//! walk over the value and no post-processing of the output. Raw JSON fragments
//! ([`serde_json::value::RawValue`]) are refused too: their bytes were not produced by these
//! rules.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

use super::error::CanonicalError;

/// The largest integer magnitude allowed in canonical JSON: `2^53 - 1`.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Serializes `value` to canonical JSON bytes (see the [module docs](self)).
///
/// # Errors
///
/// [`CanonicalError::Float`] and [`CanonicalError::IntegerOutOfRange`] for numbers that may not
/// appear in signed data, [`CanonicalError::RawFragment`] for embedded raw JSON and
/// [`CanonicalError::Serialize`] when the value's own `Serialize` implementation fails.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter);
    match value.serialize(&mut ser) {
        Ok(()) => Ok(out),
        Err(e) => Err(classify(e)),
    }
}

/// Like [`canonical_json`], as a `String` (canonical JSON is always ASCII).
///
/// # Errors
///
/// As [`canonical_json`].
pub fn canonical_json_string<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    let bytes = canonical_json(value)?;
    // Canonical output is ASCII by construction.
    String::from_utf8(bytes).map_err(|_| CanonicalError::RawFragment)
}

/// Why the formatter refused a token; travels through `serde_json` inside an `io::Error`.
#[derive(Debug, Clone, Copy)]
enum Reject {
    Float,
    Integer,
    Raw,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reject::Float => "float",
            Reject::Integer => "integer out of range",
            Reject::Raw => "raw fragment",
        })
    }
}

impl std::error::Error for Reject {}

fn reject(r: Reject) -> io::Error {
    io::Error::other(r)
}

fn classify(e: serde_json::Error) -> CanonicalError {
    if e.is_io() {
        let io: io::Error = e.into();
        return match io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Reject>())
        {
            Some(Reject::Float) => CanonicalError::Float,
            Some(Reject::Integer) => CanonicalError::IntegerOutOfRange,
            Some(Reject::Raw) => CanonicalError::RawFragment,
            None => CanonicalError::Serialize(serde_json::Error::io(io)),
        };
    }
    CanonicalError::Serialize(e)
}

fn check_signed(n: i128) -> io::Result<()> {
    if n.unsigned_abs() <= MAX_SAFE_INTEGER as u128 {
        Ok(())
    } else {
        Err(reject(Reject::Integer))
    }
}

/// The [`Formatter`] behind [`canonical_json`]: compact output, ASCII-only strings, integers
/// with `|n| < 2^53` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct CanonicalFormatter;

impl Formatter for CanonicalFormatter {
    fn write_i64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i64) -> io::Result<()> {
        check_signed(i128::from(value))?;
        write!(w, "{value}")
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i128) -> io::Result<()> {
        check_signed(value)?;
        write!(w, "{value}")
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u64) -> io::Result<()> {
        check_signed(i128::from(value))?;
        write!(w, "{value}")
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u128) -> io::Result<()> {
        let v = i128::try_from(value).map_err(|_| reject(Reject::Integer))?;
        check_signed(v)?;
        write!(w, "{value}")
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, _w: &mut W, _value: f32) -> io::Result<()> {
        Err(reject(Reject::Float))
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, _w: &mut W, _value: f64) -> io::Result<()> {
        Err(reject(Reject::Float))
    }

    fn write_number_str<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        value: &str,
    ) -> io::Result<()> {
        // Only reachable with serde_json's `arbitrary_precision`: accept exact small integers.
        match value.parse::<i64>() {
            Ok(n) => self.write_i64(w, n),
            Err(_) => Err(reject(Reject::Float)),
        }
    }

    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        _w: &mut W,
        _fragment: &str,
    ) -> io::Result<()> {
        Err(reject(Reject::Raw))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has already split out `"`, `\` and C0 controls (see `write_char_escape`);
        // this fragment may still hold DEL and non-ASCII characters.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let short: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            // Python does not escape `/`; serde_json never asks, but be explicit.
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &serde_json::Value) -> String {
        canonical_json_string(v).unwrap()
    }

    // Expected strings are Python's `json.dumps(obj, separators=(",", ":"))`.
    #[test]
    fn escapes_like_python() {
        assert_eq!(canon(&json!("é")), r#""\u00e9""#);
        assert_eq!(canon(&json!("€")), r#""\u20ac""#);
        assert_eq!(canon(&json!("😀")), r#""\ud83d\ude00""#);
        assert_eq!(canon(&json!("a\nb")), r#""a\nb""#);
        assert_eq!(canon(&json!("\u{1f}")), r#""\u001f""#);
        assert_eq!(canon(&json!("\u{0}\u{7f}")), r#""\u0000\u007f""#);
        assert_eq!(canon(&json!("\t\r\u{8}\u{c}")), r#""\t\r\b\f""#);
        assert_eq!(canon(&json!("say \"hi\" \\ /")), r#""say \"hi\" \\ /""#);
        assert_eq!(
            canon(&json!("Café € 😀!")),
            r#""Caf\u00e9 \u20ac \ud83d\ude00!""#
        );
        assert_eq!(
            canon(&json!("\u{ffff}\u{10000}")),
            r#""\uffff\ud800\udc00""#
        );
        assert_eq!(canon(&json!({"ké": "v"})), r#"{"k\u00e9":"v"}"#);
    }

    #[test]
    fn compact_and_ordered() {
        #[derive(Serialize)]
        struct S {
            z: i64,
            a: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<i64>,
            m: Vec<bool>,
        }
        let s = S {
            z: -1,
            a: None,
            b: None,
            m: vec![true, false],
        };
        assert_eq!(
            canonical_json_string(&s).unwrap(),
            r#"{"z":-1,"a":null,"m":[true,false]}"#
        );
    }

    #[test]
    fn integers_in_range_only() {
        assert_eq!(canon(&json!(MAX_SAFE_INTEGER)), "9007199254740991");
        assert_eq!(canon(&json!(-MAX_SAFE_INTEGER)), "-9007199254740991");
        assert!(matches!(
            canonical_json(&(MAX_SAFE_INTEGER + 1)),
            Err(CanonicalError::IntegerOutOfRange)
        ));
        assert!(matches!(
            canonical_json(&u64::MAX),
            Err(CanonicalError::IntegerOutOfRange)
        ));
        assert!(matches!(
            canonical_json(&i128::MIN),
            Err(CanonicalError::IntegerOutOfRange)
        ));
        assert!(matches!(
            canonical_json(&json!({"a": [1, -(1i64 << 53)]})),
            Err(CanonicalError::IntegerOutOfRange)
        ));
        assert_eq!(canonical_json(&7u8).unwrap(), b"7");
    }

    #[test]
    fn floats_rejected() {
        assert!(matches!(
            canonical_json(&json!({"x": 1.5})),
            Err(CanonicalError::Float)
        ));
        assert!(matches!(
            canonical_json(&1.0f32),
            Err(CanonicalError::Float)
        ));
    }

    #[test]
    fn raw_fragments_rejected() {
        let raw = serde_json::value::RawValue::from_string("{\"a\":1}".into()).unwrap();
        assert!(matches!(
            canonical_json(&raw),
            Err(CanonicalError::RawFragment)
        ));
    }

    #[test]
    fn other_serialize_errors_surface() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert!(matches!(
            canonical_json(&m),
            Err(CanonicalError::Serialize(_))
        ));
    }
}
