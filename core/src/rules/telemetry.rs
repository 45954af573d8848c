//! Telemetry (an extension): any JSON object up to [`MAX_TELEMETRY_BYTES`] is accepted and
//! stored as sent; [`check`] says whether it follows the documented schema, and why not.
//!
//! # The schema
//!
//! | member | | |
//! |---|---|---|
//! | `event` | required | a string of 1 to 100 characters from `a-z`, `0-9`, `.`, `_`, `-` |
//! | `occurred_at` | optional | an RFC 3339 date-time |
//! | `app_version` | optional | a semantic version, as in the runtime calls |
//! | `fingerprint` | optional | a string of 1 to 512 characters: the device that sent it |
//! | `properties` | optional | an object: anything the application wants to report |
//!
//! Any other member makes the record not well formed. A record that is not well formed is
//! still stored (with `well_formed: false` and its problems), so nothing a device sent is lost
//! to a schema mistake; reports filter on the flag.

use serde_json::{Map, Value};

use super::version;

/// The largest telemetry object accepted, in bytes of JSON.
pub const MAX_TELEMETRY_BYTES: usize = 16 * 1024;
/// At most this many problems are listed per record.
const MAX_PROBLEMS: usize = 20;
/// Member names are quoted in problems up to this many characters.
const MAX_NAME_IN_PROBLEM: usize = 64;

/// The problems of `payload` against the schema; empty when it is well formed.
pub fn check(payload: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    match payload.get("event") {
        None => problems.push("event is required".to_owned()),
        Some(Value::String(e)) if is_event_name(e) => {}
        Some(_) => problems.push(
            "event must be a string of 1 to 100 characters from a-z, 0-9, '.', '_', '-'".into(),
        ),
    }
    let bad_string = |name: &str, ok: &dyn Fn(&str) -> bool| {
        payload
            .get(name)
            .is_some_and(|v| v.as_str().is_none_or(|s| !ok(s)))
    };
    if bad_string("occurred_at", &|s| {
        chrono::DateTime::parse_from_rfc3339(s).is_ok()
    }) {
        problems.push("occurred_at must be an RFC 3339 date-time".into());
    }
    if bad_string("app_version", &|s| version::parse_app_version(s).is_ok()) {
        problems.push("app_version must be a semantic version".into());
    }
    if bad_string("fingerprint", &|s| (1..=512).contains(&s.chars().count())) {
        problems.push("fingerprint must be a string of 1 to 512 characters".into());
    }
    if payload.get("properties").is_some_and(|p| !p.is_object()) {
        problems.push("properties must be an object".into());
    }
    for name in payload.keys() {
        if !matches!(
            name.as_str(),
            "event" | "occurred_at" | "app_version" | "fingerprint" | "properties"
        ) {
            let shown: String = name.chars().take(MAX_NAME_IN_PROBLEM).collect();
            problems.push(format!("unknown member {shown:?}"));
        }
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}

fn is_event_name(e: &str) -> bool {
    (1..=100).contains(&e.len())
        && e.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(v: Value) -> Vec<String> {
        check(v.as_object().expect("an object"))
    }

    #[test]
    fn a_record_by_the_schema_is_well_formed() {
        assert!(problems(json!({"event": "app.started"})).is_empty());
        assert!(
            problems(json!({
                "event": "export_done", "occurred_at": "2026-12-01T10:00:00Z",
                "app_version": "2.4.1", "fingerprint": "fp-1",
                "properties": {"pages": 12, "format": "pdf"}
            }))
            .is_empty()
        );
    }

    #[test]
    fn every_problem_is_named() {
        let p = problems(json!({
            "event": "App Started", "occurred_at": "yesterday", "app_version": 2,
            "fingerprint": "", "properties": [1], "extra": true
        }));
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].starts_with("event must be"));
        assert_eq!(p[5], "unknown member \"extra\"");
        assert_eq!(problems(json!({}))[0], "event is required");
        assert_eq!(problems(json!({"event": "x".repeat(101)})).len(), 1);
    }

    #[test]
    fn problems_are_bounded() {
        let many: Map<String, Value> = (0..100)
            .map(|i| (format!("{}{i}", "m".repeat(200)), Value::Null))
            .collect();
        let p = check(&many);
        assert_eq!(p.len(), MAX_PROBLEMS);
        assert!(
            p.iter().all(|s| s.len() < 100),
            "member names are shortened"
        );
    }
}
