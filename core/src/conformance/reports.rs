//! Reports: usage sums, groups and the ledger from recorded consumptions; the activity feed
//! filtered by what events are about; runtime refusal counts; exports claimed by one
//! producer at a time. Every answer is checked against fixed numbers and against core's
//! reference reading over everything the store holds.

use chrono::Duration;
use serde_json::json;

use crate::model::{
    AuditActorType, ConsumptionRecord, ErrorBucket, ErrorDimension, ExportFormat, ExportId,
    ExportStatus, Feature, LedgerAction, License, LicenseType, ReportExport, ReportKind,
    ResultClass, RuntimeEndpoint, RuntimeErrorCount, RuntimeErrorKey, UsageBucket, UsageDimension,
    UsageRow, UsageTotals,
};
use crate::rules::Mutation;
use crate::store::{
    ActivityQuery, Decision, ExportArtifact, LedgerQuery, Limit, RuntimeErrorQuery, Store,
    UsageFilter, UsageQuery,
};

use super::fixtures::{
    all_events, at, by_id, customer, feature, license, parse, seed, system_event, t0,
};
use super::{expect_not_found, ok};

async fn record<S: Store>(
    store: &S,
    license: &License,
    f: &Feature,
    event_id: &str,
    amount: i64,
    secs: i64,
) {
    let c = ConsumptionRecord::new(
        license,
        f.id.clone(),
        f.code.clone(),
        event_id.into(),
        amount,
        at(secs),
    );
    ok(
        store
            .transact_license(by_id(&license.id), move |_| Decision {
                mutations: vec![Mutation::Consumption(c)],
                ..Decision::nothing(())
            })
            .await,
        "transact_license (consumption)",
    );
}

/// Every ledger row, newest first, read page by page (`limit` per page).
async fn whole_ledger<S: Store>(store: &S, filter: &UsageFilter, limit: i64) -> Vec<UsageRow> {
    let mut rows = Vec::new();
    let mut before = None;
    loop {
        let page = ok(
            store
                .usage_ledger(&LedgerQuery {
                    filter: filter.clone(),
                    before,
                    limit: Limit::new(Some(limit)),
                })
                .await,
            "usage_ledger",
        );
        assert!(
            page.rows.len() <= limit as usize,
            "a ledger page holds at most `limit` rows"
        );
        rows.extend(page.rows);
        match page.next_cursor {
            Some(c) => before = Some(c),
            None => return rows,
        }
    }
}

/// Three licenses on two products (one with a customer), three features, six consumptions
/// (one a credit) over two days; returns the licenses.
async fn usage_fixture<S: Store>(store: &S) -> (License, License, License) {
    let s1 = seed(store, 1, LicenseType::Perpetual, |_| {}).await;
    let s2 = seed(store, 2, LicenseType::Perpetual, |_| {}).await;
    let c = customer(1);
    ok(store.insert_customer(&c, vec![]).await, "insert_customer");
    let mut l3 = license(&s1.policy, 3);
    l3.customer_id = Some(c.id.clone());
    ok(store.insert_license(&l3, vec![]).await, "insert_license");
    let export1 = feature(&s1.product, 1, "export");
    let render1 = feature(&s1.product, 2, "render");
    let export2 = feature(&s2.product, 3, "export");
    for f in [&export1, &render1, &export2] {
        ok(store.insert_feature(f, vec![]).await, "insert_feature");
    }
    record(store, &s1.license, &export1, "e1", 5, 0).await;
    record(store, &l3, &export1, "e2", 10, 60).await;
    record(store, &s2.license, &export2, "e3", 3, 120).await;
    record(store, &s1.license, &export1, "e4", 7, 7_200).await;
    record(store, &s1.license, &export1, "e5", -2, 7_210).await;
    record(store, &s1.license, &render1, "e6", 4, 86_405).await;
    (s1.license, s2.license, l3)
}

/// Usage sums, groups (by dimension and bucket), filters, group limits and the ledger's
/// pages are what the consumptions recorded say.
pub async fn usage_reports_sum_group_and_page<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let (l1, l2, l3) = usage_fixture(&store).await;

    let all = whole_ledger(&store, &UsageFilter::default(), 2).await;
    let seqs: Vec<i64> = all.iter().map(|r| r.sequence).collect();
    assert_eq!(all.len(), 6, "the ledger holds every recorded consumption");
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "the ledger is newest first with strictly increasing numbers: {seqs:?}"
    );
    let ids: Vec<&str> = all.iter().map(|r| r.record.event_id.as_str()).collect();
    assert_eq!(ids, ["e6", "e5", "e4", "e3", "e2", "e1"], "ledger order");
    assert_eq!(all[1].record.amount, -2, "a credit is kept as recorded");
    assert_eq!(
        all[4].record.customer_id, l3.customer_id,
        "a ledger row carries the license's customer"
    );

    let summary = |q: UsageQuery| {
        let store = store.clone();
        async move { ok(store.usage_summary(&q).await, "usage_summary") }
    };
    let everything = summary(UsageQuery::default()).await;
    assert_eq!(
        everything.totals,
        UsageTotals {
            units: 27,
            consumed: 29,
            credited: 2,
            events: 6,
        },
        "totals over every consumption"
    );
    assert_eq!(everything.groups.len(), 1, "no group_by: one group");
    assert_eq!(everything.groups[0].units, 27);

    let by_product = summary(UsageQuery {
        group_by: vec![UsageDimension::Product],
        ..UsageQuery::default()
    })
    .await;
    let got: Vec<(Option<&str>, i64, i64)> = by_product
        .groups
        .iter()
        .map(|g| (g.product_id.as_deref(), g.units, g.events))
        .collect();
    assert_eq!(
        got,
        [(Some("prod_0001"), 24, 5), (Some("prod_0002"), 3, 1)],
        "grouped by product, largest first"
    );

    let p1_features = summary(UsageQuery {
        filter: UsageFilter {
            product_id: Some(l1.product_id.clone()),
            ..UsageFilter::default()
        },
        group_by: vec![UsageDimension::Feature],
        ..UsageQuery::default()
    })
    .await;
    let got: Vec<(Option<&str>, i64)> = p1_features
        .groups
        .iter()
        .map(|g| (g.feature_code.as_deref(), g.units))
        .collect();
    assert_eq!(got, [(Some("export"), 20), (Some("render"), 4)]);
    assert_eq!(p1_features.totals.units, 24);

    let daily = summary(UsageQuery {
        bucket: Some(UsageBucket::Day),
        group_by: vec![UsageDimension::Customer],
        ..UsageQuery::default()
    })
    .await;
    let got: Vec<_> = daily
        .groups
        .iter()
        .map(|g| (g.bucket_start, g.customer_id.as_deref(), g.units))
        .collect();
    let day0 = crate::model::bucket_start(t0(), Duration::days(1));
    assert_eq!(
        got,
        [
            (Some(day0), None, 13),
            (Some(day0), Some("cus_0001"), 10),
            (Some(day0 + Duration::days(1)), None, 4),
        ],
        "bucketed by UTC day, then by units, a license without customer as its own group"
    );

    let windowed = summary(UsageQuery {
        filter: UsageFilter {
            from: Some(at(60)),
            to: Some(at(7_210)),
            ..UsageFilter::default()
        },
        ..UsageQuery::default()
    })
    .await;
    assert_eq!(
        (windowed.totals.units, windowed.totals.events),
        (20, 3),
        "`from` is inclusive and `to` exclusive"
    );

    let limited = summary(UsageQuery {
        group_by: vec![UsageDimension::License, UsageDimension::Feature],
        limit: Limit::new(Some(2)),
        ..UsageQuery::default()
    })
    .await;
    assert_eq!(limited.groups.len(), 2, "at most `limit` groups");
    assert!(limited.truncated, "more groups matched than were returned");
    assert_eq!(limited.totals.units, 27, "totals count every group");

    // Every backend answers what core's reference reading answers over the same rows.
    let queries = [
        UsageQuery {
            group_by: vec![UsageDimension::Subscription, UsageDimension::Order],
            bucket: Some(UsageBucket::Hour),
            ..UsageQuery::default()
        },
        UsageQuery {
            filter: UsageFilter {
                customer_id: l3.customer_id.clone(),
                ..UsageFilter::default()
            },
            group_by: vec![UsageDimension::License],
            ..UsageQuery::default()
        },
        UsageQuery {
            filter: UsageFilter {
                license_id: Some(l2.id.clone()),
                feature_code: Some(parse("export")),
                ..UsageFilter::default()
            },
            group_by: UsageDimension::ALL.to_vec(),
            bucket: Some(UsageBucket::Hour),
            ..UsageQuery::default()
        },
    ];
    for q in queries {
        let reference = q.summarize(all.iter().rev());
        assert_eq!(
            summary(q.clone()).await,
            reference,
            "usage_summary equals the reference reading for {q:?}"
        );
    }

    let l1_rows = whole_ledger(
        &store,
        &UsageFilter {
            license_id: Some(l1.id.clone()),
            from: Some(at(1)),
            ..UsageFilter::default()
        },
        1,
    )
    .await;
    let ids: Vec<&str> = l1_rows.iter().map(|r| r.record.event_id.as_str()).collect();
    assert_eq!(
        ids,
        ["e6", "e5", "e4"],
        "the ledger filters by license and time"
    );
    let credits = whole_ledger(
        &store,
        &UsageFilter {
            action: Some(LedgerAction::Credit),
            ..UsageFilter::default()
        },
        50,
    )
    .await;
    let ids: Vec<&str> = credits.iter().map(|r| r.record.event_id.as_str()).collect();
    assert_eq!(ids, ["e5"], "the ledger filters credits");
    let consumed = summary(UsageQuery {
        filter: UsageFilter {
            action: Some(LedgerAction::Consume),
            ..UsageFilter::default()
        },
        ..UsageQuery::default()
    })
    .await;
    assert_eq!(
        consumed.totals.units, 29,
        "only consumptions: no credit subtracted"
    );
}

fn event_about(
    event_type: &str,
    resource_type: &str,
    resource_id: &str,
    secs: i64,
    meta: serde_json::Value,
) -> crate::store::NewEvent {
    let mut e = system_event(event_type, resource_type, resource_id, at(secs));
    if let serde_json::Value::Object(m) = meta {
        e.metadata.extend(m);
    }
    e
}

/// The activity feed filters events by what they are about (metadata ids, or the event's own
/// resource), by action, source and time, and pages newest first.
pub async fn activities_filter_by_subject_and_page<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let mut by_key = event_about("license.suspended", "license", "lic_0009", 10, json!({}));
    by_key.actor_type = AuditActorType::ApiKey;
    by_key.actor_id = "key_0001".into();
    let events = vec![
        event_about(
            "device.activated",
            "device",
            "dev_0001",
            0,
            json!({"license_id": "lic_0001", "product_id": "prod_0001",
                   "customer_id": "cus_0001"}),
        ),
        event_about("product.updated", "product", "prod_0001", 5, json!({})),
        by_key,
        event_about(
            "usage.consumed",
            "license",
            "lic_0002",
            20,
            json!({"product_id": "prod_0002", "feature_code": "export",
                   "order_id": "ord_0001", "subscription_id": "sub_0001"}),
        ),
        event_about(
            "customer.updated",
            "customer",
            "cus_0001",
            30,
            json!({"product_id": 7}),
        ),
    ];
    ok(store.append_events(events).await, "append_events");
    let stored = all_events(&store).await;
    assert_eq!(stored.len(), 5);

    let list = |q: ActivityQuery| {
        let store = store.clone();
        async move {
            let page = ok(store.list_activities(&q).await, "list_activities");
            page.events
                .into_iter()
                .map(|e| e.event_type)
                .collect::<Vec<_>>()
        }
    };
    let cases: Vec<(ActivityQuery, Vec<&str>)> = vec![
        (
            ActivityQuery {
                product_id: Some("prod_0001".into()),
                ..ActivityQuery::default()
            },
            vec!["product.updated", "device.activated"],
        ),
        (
            ActivityQuery {
                customer_id: Some("cus_0001".into()),
                ..ActivityQuery::default()
            },
            vec!["customer.updated", "device.activated"],
        ),
        (
            ActivityQuery {
                license_id: Some("lic_0002".into()),
                ..ActivityQuery::default()
            },
            vec!["usage.consumed"],
        ),
        (
            ActivityQuery {
                feature_code: Some("export".into()),
                order_id: Some("ord_0001".into()),
                subscription_id: Some("sub_0001".into()),
                ..ActivityQuery::default()
            },
            vec!["usage.consumed"],
        ),
        (
            ActivityQuery {
                source: Some(AuditActorType::ApiKey),
                ..ActivityQuery::default()
            },
            vec!["license.suspended"],
        ),
        (
            ActivityQuery {
                action: Some("product.updated".into()),
                from: Some(at(5)),
                to: Some(at(6)),
                ..ActivityQuery::default()
            },
            vec!["product.updated"],
        ),
        (
            // A non-string metadata value is no id.
            ActivityQuery {
                product_id: Some("7".into()),
                ..ActivityQuery::default()
            },
            vec![],
        ),
    ];
    for (q, want) in cases {
        let reference: Vec<&str> = stored
            .iter()
            .rev()
            .filter(|e| q.matches(e))
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(reference, want, "the reference reading of {q:?}");
        assert_eq!(list(q.clone()).await, want, "list_activities for {q:?}");
    }

    // Pages of one, newest first, to the end.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = ok(
            store
                .list_activities(&ActivityQuery {
                    before,
                    limit: Limit::new(Some(1)),
                    ..ActivityQuery::default()
                })
                .await,
            "list_activities",
        );
        seen.extend(page.events.iter().map(|e| e.sequence));
        match page.next_cursor {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    let want: Vec<i64> = stored.iter().rev().map(|e| e.sequence).collect();
    assert_eq!(seen, want, "pages cover every event once, newest first");
}

fn refusal(
    secs: i64,
    endpoint: RuntimeEndpoint,
    code: &str,
    class: ResultClass,
    license: Option<&str>,
    count: i64,
) -> RuntimeErrorCount {
    RuntimeErrorCount {
        key: RuntimeErrorKey {
            bucket_start: crate::model::bucket_start(at(secs), Duration::minutes(5)),
            endpoint,
            reason_code: code.into(),
            result_class: class,
            license_id: license.map(parse),
            product_id: license.map(|_| parse("prod_0001")),
            customer_id: None,
            app_version: license.map(|_| "2.4.1".to_owned()),
        },
        count,
    }
}

/// Refusal counts add up per key (within and across batches), group by time, endpoint, code
/// and class, filter, and are purged by age.
pub async fn runtime_errors_add_up_group_and_purge<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    use RuntimeEndpoint::{Activate, Validate};
    let expired = "LICENSE_EXPIRED";
    let batch1 = vec![
        refusal(
            0,
            Validate,
            expired,
            ResultClass::Denied,
            Some("lic_0001"),
            2,
        ),
        refusal(
            10,
            Validate,
            expired,
            ResultClass::Denied,
            Some("lic_0001"),
            3,
        ),
        refusal(
            400,
            Activate,
            "ACTIVATION_LIMIT_REACHED",
            ResultClass::Denied,
            Some("lic_0001"),
            1,
        ),
        refusal(
            4_000,
            Validate,
            "INVALID_CREDENTIALS",
            ResultClass::Unauthorized,
            None,
            7,
        ),
    ];
    let batch2 = vec![refusal(
        20,
        Validate,
        expired,
        ResultClass::Denied,
        Some("lic_0001"),
        4,
    )];
    ok(
        store.record_runtime_errors(batch1.clone()).await,
        "record_runtime_errors",
    );
    ok(
        store.record_runtime_errors(batch2.clone()).await,
        "record_runtime_errors",
    );
    ok(
        store.record_runtime_errors(vec![]).await,
        "record_runtime_errors (empty)",
    );

    let report = |q: RuntimeErrorQuery| {
        let store = store.clone();
        async move { ok(store.runtime_error_groups(&q).await, "runtime_error_groups") }
    };
    let total = report(RuntimeErrorQuery::default()).await;
    assert_eq!(total.total, 17, "every refusal counted");
    assert_eq!(total.groups.len(), 1);
    assert_eq!(total.groups[0].count, 17);

    let by_code = report(RuntimeErrorQuery {
        group_by: vec![ErrorDimension::ReasonCode],
        ..RuntimeErrorQuery::default()
    })
    .await;
    let got: Vec<(Option<&str>, i64)> = by_code
        .groups
        .iter()
        .map(|g| (g.reason_code.as_deref(), g.count))
        .collect();
    assert_eq!(
        got,
        [
            (Some(expired), 9),
            (Some("INVALID_CREDENTIALS"), 7),
            (Some("ACTIVATION_LIMIT_REACHED"), 1),
        ],
        "counts of one key add up within and across batches, largest first"
    );

    let hourly = report(RuntimeErrorQuery {
        group_by: vec![ErrorDimension::Time, ErrorDimension::ResultClass],
        bucket: ErrorBucket::Hour,
        ..RuntimeErrorQuery::default()
    })
    .await;
    let hour0 = crate::model::bucket_start(t0(), Duration::hours(1));
    let got: Vec<_> = hourly
        .groups
        .iter()
        .map(|g| (g.bucket_start, g.result_class, g.count))
        .collect();
    assert_eq!(
        got,
        [
            (Some(hour0), Some(ResultClass::Denied), 10),
            (
                Some(hour0 + Duration::hours(1)),
                Some(ResultClass::Unauthorized),
                7
            ),
        ]
    );

    let mut recorded: Vec<RuntimeErrorCount> = batch1;
    recorded.extend(batch2);
    let queries = [
        RuntimeErrorQuery {
            license_id: Some(parse("lic_0001")),
            endpoint: Some(Validate),
            group_by: vec![ErrorDimension::Endpoint, ErrorDimension::Time],
            bucket: ErrorBucket::FiveMinutes,
            ..RuntimeErrorQuery::default()
        },
        RuntimeErrorQuery {
            product_id: Some(parse("prod_0001")),
            app_version: Some("2.4.1".into()),
            from: Some(at(300)),
            group_by: ErrorDimension::ALL.to_vec(),
            bucket: ErrorBucket::FifteenMinutes,
            ..RuntimeErrorQuery::default()
        },
        RuntimeErrorQuery {
            group_by: vec![ErrorDimension::Endpoint, ErrorDimension::ReasonCode],
            limit: Limit::new(Some(1)),
            ..RuntimeErrorQuery::default()
        },
    ];
    for q in queries {
        assert_eq!(
            report(q.clone()).await,
            q.group(&recorded),
            "runtime_error_groups equals the reference reading for {q:?}"
        );
    }

    let purged = ok(
        store.purge_runtime_errors(at(3_600)).await,
        "purge_runtime_errors",
    );
    assert!(purged >= 1, "old buckets are purged");
    let left = report(RuntimeErrorQuery::default()).await;
    assert_eq!(left.total, 7, "only buckets from `before` on are kept");
}

fn export(n: u32, secs: i64) -> ReportExport {
    ReportExport {
        id: parse(&format!("rpx_{n:04}")),
        report_kind: ReportKind::UsageSummary,
        format: ExportFormat::Csv,
        status: ExportStatus::Pending,
        filters: serde_json::Map::from_iter([("product_id".to_owned(), json!("prod_0001"))]),
        digest: "ab".repeat(32),
        artifact_digest: String::new(),
        content_type: ExportFormat::Csv.content_type().into(),
        created_by: "key_0001".into(),
        created_at: at(secs),
        updated_at: at(secs),
        expires_at: at(secs) + Duration::days(7),
        error: None,
        attempts: 0,
    }
}

/// Exports are claimed oldest first by one producer at a time (again after the lease runs
/// out), finished once, readable with their file, and purged when they expire.
pub async fn exports_are_claimed_once_finished_and_purged<
    S: Store + Clone + Send + Sync + 'static,
>(
    store: S,
) {
    let (a, b) = (export(1, 0), export(2, 10));
    ok(store.insert_export(&b).await, "insert_export");
    ok(store.insert_export(&a).await, "insert_export");
    assert_eq!(
        ok(store.get_export(&a.id).await, "get_export"),
        a,
        "round trip"
    );
    assert_eq!(
        ok(store.export_content(&a.id).await, "export_content"),
        None
    );

    let lease = at(100) + Duration::seconds(60);
    let first = ok(store.claim_export(at(100), lease).await, "claim_export")
        .expect("a pending export is claimed");
    assert_eq!(first.id, a.id, "the oldest first");
    assert_eq!(first.attempts, 1, "a claim counts an attempt");
    let second = ok(store.claim_export(at(100), lease).await, "claim_export")
        .expect("the next pending export");
    assert_eq!(second.id, b.id);
    assert_eq!(
        ok(store.claim_export(at(101), lease).await, "claim_export"),
        None,
        "a leased export is not claimed again while the lease holds"
    );
    let again = ok(store.claim_export(at(161), at(300)).await, "claim_export")
        .expect("an unfinished export is claimed again after its lease");
    assert_eq!((again.id.clone(), again.attempts), (a.id.clone(), 2));

    let artifact = ExportArtifact {
        content: b"a,b\n1,2\n".to_vec(),
        digest: "cd".repeat(32),
    };
    assert!(ok(
        store
            .finish_export(&a.id, Ok(artifact.clone()), at(200))
            .await,
        "finish_export"
    ));
    let ready = ok(store.get_export(&a.id).await, "get_export");
    assert_eq!(ready.status, ExportStatus::Ready);
    assert_eq!(ready.artifact_digest, artifact.digest);
    assert_eq!(ready.updated_at, at(200));
    assert_eq!(
        ok(store.export_content(&a.id).await, "export_content"),
        Some(artifact.content.clone())
    );
    assert!(
        !ok(
            store
                .finish_export(&a.id, Err("late".into()), at(210))
                .await,
            "finish_export"
        ),
        "a finished export is not finished again"
    );
    assert!(ok(
        store
            .finish_export(&b.id, Err("the report failed".into()), at(220))
            .await,
        "finish_export"
    ));
    let failed = ok(store.get_export(&b.id).await, "get_export");
    assert_eq!(failed.status, ExportStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("the report failed"));
    assert_eq!(
        ok(
            store.claim_export(at(1_000), at(2_000)).await,
            "claim_export"
        ),
        None,
        "finished exports are never claimed"
    );

    let missing: ExportId = parse("rpx_9999");
    expect_not_found(store.get_export(&missing).await, "get_export");
    let purged = ok(
        store
            .purge_exports(at(10) + Duration::days(7) - Duration::seconds(1))
            .await,
        "purge_exports",
    );
    assert_eq!(purged, 1, "only the export past its expiry is purged");
    expect_not_found(store.get_export(&a.id).await, "get_export");
    assert_eq!(ok(store.get_export(&b.id).await, "get_export").id, b.id);
}

type Boxed<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// Many producers claiming at once: every pending export goes to exactly one of them.
pub async fn concurrent_export_claims_hand_each_export_to_one_producer<
    S: Store + Clone + Send + Sync + 'static,
    Sp: super::Spawner,
>(
    store: S,
    spawner: Sp,
) {
    for n in 1..=24 {
        ok(
            store.insert_export(&export(n, i64::from(n))).await,
            "insert_export",
        );
    }
    let tasks: Vec<Boxed<Vec<ExportId>>> = (0..8)
        .map(|_| {
            let store = store.clone();
            Box::pin(async move {
                let mut mine = Vec::new();
                while let Some(e) = ok(store.claim_export(at(100), at(1_000)).await, "claim_export")
                {
                    mine.push(e.id);
                }
                mine
            }) as Boxed<_>
        })
        .collect();
    let all: Vec<ExportId> = super::run_concurrently(&spawner, tasks).await.concat();
    let distinct: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no export was claimed twice");
    assert_eq!(all.len(), 24, "every pending export was claimed");
}
