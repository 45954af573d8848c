//! Report parameters: the query string of a report operation, or an export's `filters`,
//! read into the store's queries in one place, so an export is produced from exactly what
//! the same report operation would read.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::EngineError;
use crate::model::{ErrorBucket, ErrorDimension, Metadata, UsageBucket, UsageDimension};
use crate::store::{ActivityQuery, LedgerQuery, Limit, RuntimeErrorQuery, UsageFilter, UsageQuery};

/// `from` and `to`, either open.
pub type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The parameters of a report as text, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportParams(BTreeMap<String, String>);

fn invalid(param: &str, message: impl Into<String>) -> EngineError {
    EngineError::InvalidQuery {
        param: param.to_owned(),
        message: message.into(),
    }
}

impl ReportParams {
    /// From `name=value` pairs (a query string; a repeated name keeps its last value).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// From an export's `filters`: strings, numbers and booleans, as their text.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a filter that is an object, an array or `null`.
    pub fn from_filters(filters: &Metadata) -> Result<Self, EngineError> {
        let mut out = BTreeMap::new();
        for (k, v) in filters {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(invalid(k, "must be a string, a number or a boolean")),
            };
            out.insert(k.clone(), text);
        }
        Ok(Self(out))
    }

    /// The parameters as export filters (every value a string).
    pub fn to_filters(&self) -> Metadata {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    }

    /// The raw text of `name`, if given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed, if given.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` naming `name` when it does not parse.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, EngineError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| invalid(name, format!("must be {what}")))
            })
            .transpose()
    }

    /// `name` as an id or code (its syntax checked).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn id<T: FromStr>(&self, name: &str) -> Result<Option<T>, EngineError> {
        self.parsed(name, "a well-formed id")
    }

    /// `name` as an RFC 3339 instant.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` when it is not one.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| invalid(name, "must be an RFC 3339 date-time"))
            })
            .transpose()
    }

    /// `from` and `to`, `from` not after `to`.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed instant or `from` after `to`.
    pub fn window(&self) -> Result<Window, EngineError> {
        let (from, to) = (self.time("from")?, self.time("to")?);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(invalid("from", "must not be after to"));
        }
        Ok((from, to))
    }

    /// `limit`: 1 or more, clamped to 200, default 50.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for anything but a positive integer.
    pub fn limit(&self) -> Result<Limit, EngineError> {
        match self.parsed::<i64>("limit", "a positive integer")? {
            Some(n) if n < 1 => Err(invalid("limit", "must be a positive integer")),
            n => Ok(Limit::new(n)),
        }
    }

    /// `cursor`: a positive integer (a previous page's `next_cursor`).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for anything else.
    pub fn cursor(&self) -> Result<Option<i64>, EngineError> {
        match self.parsed::<i64>("cursor", "a positive integer")? {
            Some(n) if n < 1 => Err(invalid("cursor", "must be a positive integer")),
            c => Ok(c),
        }
    }

    /// A comma-separated list of `T` (names as `T` parses them), without repeats.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` naming the first unknown name.
    pub fn list<T: FromStr + PartialEq>(
        &self,
        name: &str,
        allowed: &str,
    ) -> Result<Vec<T>, EngineError> {
        let mut out = Vec::new();
        for part in self.get(name).unwrap_or("").split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let d: T = part
                .parse()
                .map_err(|_| invalid(name, format!("`{part}` is not one of {allowed}")))?;
            if !out.contains(&d) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The usage filter: `from`, `to`, `product_id`, `customer_id`, `license_id`,
    /// `order_id`, `subscription_id`, `feature_code`, `action` (`consume` or `credit`).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn usage_filter(&self) -> Result<UsageFilter, EngineError> {
        let (from, to) = self.window()?;
        Ok(UsageFilter {
            from,
            to,
            product_id: self.id("product_id")?,
            customer_id: self.id("customer_id")?,
            license_id: self.id("license_id")?,
            order_id: self.id("order_id")?,
            subscription_id: self.id("subscription_id")?,
            feature_code: self.parsed("feature_code", "a feature code")?,
            action: self.parsed("action", "consume or credit")?,
        })
    }

    /// The usage summary's query: the filter, `group_by` (comma-separated `product_id`,
    /// `customer_id`, `license_id`, `order_id`, `subscription_id`, `feature_code`),
    /// `bucket` (`1h` or `1d`) and `limit` (groups).
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn usage_query(&self, default_group: &[UsageDimension]) -> Result<UsageQuery, EngineError> {
        let mut group_by = self.list(
            "group_by",
            "product_id, customer_id, license_id, order_id, subscription_id, feature_code",
        )?;
        if self.get("group_by").is_none() {
            group_by = default_group.to_vec();
        }
        Ok(UsageQuery {
            filter: self.usage_filter()?,
            group_by,
            bucket: self.parsed::<UsageBucket>("bucket", "1h or 1d")?,
            limit: self.limit()?,
        })
    }

    /// The usage ledger's page: the filter, `cursor` and `limit`.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn ledger_query(&self) -> Result<LedgerQuery, EngineError> {
        Ok(LedgerQuery {
            filter: self.usage_filter()?,
            before: self.cursor()?,
            limit: self.limit()?,
        })
    }

    /// The activity feed's page: `cursor`, `limit`, `from`, `to`, `action` (event type),
    /// `source` (`api_key`, `license`, `system`), `product_id`, `customer_id`, `license_id`,
    /// `order_id`, `subscription_id`, `feature_code`.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn activity_query(&self) -> Result<ActivityQuery, EngineError> {
        let (from, to) = self.window()?;
        let text = |k: &str| self.get(k).map(str::to_owned);
        Ok(ActivityQuery {
            before: self.cursor()?,
            from,
            to,
            action: text("action"),
            source: self.parsed("source", "api_key, license or system")?,
            product_id: text("product_id"),
            customer_id: text("customer_id"),
            license_id: text("license_id"),
            order_id: text("order_id"),
            subscription_id: text("subscription_id"),
            feature_code: text("feature_code"),
            limit: self.limit()?,
        })
    }

    /// The runtime error groups' query: `from`, `to`, `product_id`, `customer_id`,
    /// `license_id`, `app_version`, `endpoint`, `group_by` (comma-separated `time`,
    /// `endpoint`, `reason_code`, `result_class`; default `reason_code`), `bucket` (`5m`,
    /// `15m`, `1h`, `1d`; default `1h`), `limit`.
    ///
    /// # Errors
    ///
    /// `InvalidQuery` for a malformed one.
    pub fn error_query(&self) -> Result<RuntimeErrorQuery, EngineError> {
        let (from, to) = self.window()?;
        let mut group_by = self.list("group_by", "time, endpoint, reason_code, result_class")?;
        if self.get("group_by").is_none() {
            group_by = vec![ErrorDimension::ReasonCode];
        }
        Ok(RuntimeErrorQuery {
            from,
            to,
            product_id: self.id("product_id")?,
            customer_id: self.id("customer_id")?,
            license_id: self.id("license_id")?,
            app_version: self.get("app_version").map(str::to_owned),
            endpoint: self.parsed("endpoint", "a runtime operation")?,
            group_by,
            bucket: self
                .parsed::<ErrorBucket>("bucket", "5m, 15m, 1h or 1d")?
                .unwrap_or_default(),
            limit: self.limit()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ReportParams {
        ReportParams::from_pairs(pairs.iter().copied())
    }

    fn bad_param(e: EngineError) -> String {
        match e {
            EngineError::InvalidQuery { param, .. } => param,
            other => panic!("expected InvalidQuery, got {other:?}"),
        }
    }

    #[test]
    fn usage_parameters_read_into_the_query() {
        let q = params(&[
            ("from", "2026-11-01T00:00:00Z"),
            ("to", "2026-12-01T00:00:00+01:00"),
            ("group_by", "feature_code, product_id,feature_code"),
            ("bucket", "1d"),
            ("limit", "500"),
            ("action", "credit"),
        ])
        .usage_query(&[])
        .unwrap();
        assert_eq!(
            q.group_by,
            [UsageDimension::Feature, UsageDimension::Product],
            "in the order given, without repeats"
        );
        assert_eq!(q.bucket, Some(UsageBucket::Day));
        assert_eq!(q.limit.get(), 200, "clamped");
        assert_eq!(
            q.filter.to.unwrap().to_rfc3339(),
            "2026-11-30T23:00:00+00:00"
        );
        assert_eq!(q.filter.action, Some(crate::model::LedgerAction::Credit));
    }

    #[test]
    fn malformed_parameters_name_themselves() {
        for (pairs, param) in [
            (vec![("from", "yesterday")], "from"),
            (
                vec![
                    ("from", "2026-12-02T00:00:00Z"),
                    ("to", "2026-12-01T00:00:00Z"),
                ],
                "from",
            ),
            (vec![("group_by", "product_id,colour")], "group_by"),
            (vec![("bucket", "2h")], "bucket"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("product_id", "not an id!")], "product_id"),
        ] {
            let e = params(&pairs).usage_query(&[]).unwrap_err();
            assert_eq!(bad_param(e), param, "{pairs:?}");
        }
        assert_eq!(
            bad_param(params(&[("cursor", "-1")]).ledger_query().unwrap_err()),
            "cursor"
        );
        assert_eq!(
            bad_param(params(&[("endpoint", "ping")]).error_query().unwrap_err()),
            "endpoint"
        );
        assert_eq!(
            bad_param(params(&[("source", "robot")]).activity_query().unwrap_err()),
            "source"
        );
    }

    #[test]
    fn export_filters_are_text_and_round_trip() {
        let mut filters = Metadata::new();
        filters.insert("limit".into(), serde_json::json!(20));
        filters.insert("bucket".into(), serde_json::json!("1h"));
        let p = ReportParams::from_filters(&filters).unwrap();
        assert_eq!(p.limit().unwrap().get(), 20);
        assert_eq!(ReportParams::from_filters(&p.to_filters()).unwrap(), p);
        filters.insert("group_by".into(), serde_json::json!(["product_id"]));
        assert_eq!(
            bad_param(ReportParams::from_filters(&filters).unwrap_err()),
            "group_by"
        );
    }

    #[test]
    fn runtime_error_groups_default_to_reason_code_by_the_hour() {
        let q = params(&[]).error_query().unwrap();
        assert_eq!(q.group_by, [ErrorDimension::ReasonCode]);
        assert_eq!(q.bucket, ErrorBucket::Hour);
    }
}
