//! The rules driven by arbitrary operation sequences with a moving clock, each decision
//! applied as a store would (`LicenseAggregate::apply`, consumption records kept by
//! `event_id`). After every step: seats, container seats, floating leases and quotas (with
//! overage) stay within the policy, the device count matches, an `event_id` counts once, and
//! no binding holds two seats.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use chrono::{DateTime, Duration};
use libfuzzer_sys::fuzz_target;
use licentia_core::conformance::fixtures;
use licentia_core::model::{
    ConsumeRequest, ConsumptionRecord, Feature, FeatureAssignRequest, FeatureId, LicenseType,
    Metadata, RenewRequest, ResetPeriod, RuntimeBindingRequest, SecretHash, TransferRequest,
};
use licentia_core::rules::floating::NewLease;
use licentia_core::rules::{
    Denial, LicenseAggregate, Mutation, VersionCatalogView, activation, floating, lifecycle,
    metering,
};

#[derive(Debug, Arbitrary)]
enum Op {
    Activate {
        fp: u8,
        container: bool,
    },
    Deactivate {
        fp: u8,
    },
    Validate {
        fp: u8,
    },
    Checkout {
        fp: u8,
    },
    Heartbeat {
        lease: u8,
    },
    Checkin {
        lease: u8,
    },
    Consume {
        fp: u8,
        feature: u8,
        amount: i8,
        event: u8,
    },
    Advance {
        minutes: u16,
    },
    Suspend,
    Reinstate,
    Renew {
        days: u8,
    },
    Revoke,
    ResetDevice {
        n: u8,
    },
    Blacklist {
        n: u8,
    },
    Transfer {
        reset: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct Limits {
    license_type: u8,
    max_activations: u8,
    max_containers: Option<u8>,
    max_floating: u8,
    timeout: u8,
    grace: u8,
    require_heartbeat: bool,
    quotas: [Option<u8>; 3],
    overages: [Option<u8>; 3],
}

#[derive(Debug, Arbitrary)]
struct Case {
    limits: Limits,
    ops: Vec<Op>,
}

const TYPES: [LicenseType; 5] = [
    LicenseType::Perpetual,
    LicenseType::TimeLimited,
    LicenseType::Subscription,
    LicenseType::Trial,
    LicenseType::Consumption,
];

fn setup(l: &Limits) -> LicenseAggregate {
    let product = fixtures::product(1);
    let mut policy = fixtures::policy(&product, 1, TYPES[usize::from(l.license_type) % 5]);
    policy.max_activations = u32::from(l.max_activations % 5);
    policy.max_container_instances = l.max_containers.map(|m| u32::from(m % 3));
    policy.max_floating_users = Some(u32::from(l.max_floating % 5));
    policy.floating_timeout_minutes = u32::from(l.timeout % 120) + 1;
    policy.grace_period_days = u32::from(l.grace % 3);
    policy.require_heartbeat = l.require_heartbeat;
    let license = fixtures::license(&policy, 1);
    let mut agg = LicenseAggregate {
        license,
        policy,
        devices: vec![],
        features: vec![],
        leases: vec![],
        versions: VersionCatalogView::default(),
        consumption: None,
    };
    if agg.policy.license_type == LicenseType::Consumption {
        agg.license.expires_at = Some(fixtures::t0() + Duration::days(20));
    }
    for i in 0..3 {
        let f = Feature {
            id: fixtures::parse(&format!("feat_{i}")),
            product_id: agg.license.product_id.clone(),
            code: fixtures::parse(&format!("f{i}")),
            name: format!("f{i}"),
            metadata: Metadata::new(),
            created_at: fixtures::t0(),
        };
        let overage = l.overages[i].map(|o| i64::from(o % 4));
        let req = FeatureAssignRequest {
            feature_id: f.id.clone(),
            enabled: None,
            max_consumptions: l.quotas[i].map(|q| i64::from(q % 12)),
            expires_at: None,
            metadata: None,
            allow_overages: Some(overage.is_some()),
            max_overages: overage,
            reset_period: Some(if i == 2 {
                ResetPeriod::Day
            } else {
                ResetPeriod::Never
            }),
            allow_negative: Some(i == 1),
            floating_seats: None,
            floating_timeout_minutes: None,
        };
        let plan = lifecycle::assign_feature(&agg, &f, &req, fixtures::t0()).expect("assign");
        agg.apply(&plan.mutations);
    }
    agg
}

fn hw(fp: u8) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        fingerprint: Some(format!("fp{}", fp % 6)),
        ..RuntimeBindingRequest::default()
    }
}

fn container(fp: u8) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        is_container: true,
        pod_name: Some(format!("pod{}", fp % 6)),
        ..RuntimeBindingRequest::default()
    }
}

fn check(
    agg: &LicenseAggregate,
    counted: &HashMap<String, (FeatureId, i64)>,
    now: DateTime<chrono::Utc>,
) {
    let active = agg.active_devices().count();
    assert!(
        active <= agg.policy.max_activations as usize,
        "seats exceeded"
    );
    assert_eq!(agg.license.active_device_count as usize, active);
    if let Some(max) = agg.policy.max_container_instances {
        assert!(agg.active_devices().filter(|d| d.is_container).count() <= max as usize);
    }
    let max_floating = agg.policy.max_floating_users.unwrap_or(0) as usize;
    assert!(
        agg.live_leases(now).count() <= max_floating,
        "leases exceeded"
    );
    for f in &agg.features {
        let used = metering::usage_at(f, now);
        assert!(used >= 0, "negative usage");
        if let Some(c) = metering::ceiling(f) {
            assert!(used <= c, "quota exceeded: {used} > {c}");
        }
    }
    let total: i64 = counted.values().map(|(_, a)| a).sum();
    assert_eq!(
        agg.license.total_consumptions, total,
        "an event counted twice"
    );
    let mut keys: Vec<&str> = agg
        .active_devices()
        .map(|d| d.binding_key.as_str())
        .collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "a binding holds two seats");
}

fuzz_target!(|case: Case| {
    let mut agg = setup(&case.limits);
    let mut now = fixtures::t0();
    let mut counted: HashMap<String, (FeatureId, i64)> = HashMap::new();
    let mut tokens: Vec<SecretHash> = Vec::new();
    for (n, op) in case.ops.iter().take(200).enumerate() {
        let n = n + 1;
        let result: Result<Vec<Mutation>, Denial> = match op {
            Op::Activate { fp, container: c } => {
                let req = if *c { container(*fp) } else { hw(*fp) };
                activation::activate(&agg, &req, fixtures::parse(&format!("dev_{n}")), now)
                    .map(|p| p.mutations)
            }
            Op::Deactivate { fp } => {
                activation::deactivate(&agg, &hw(*fp), now).map(|p| p.mutations)
            }
            // Read-only: its touch moves timestamps only, which no limit depends on.
            Op::Validate { fp } => activation::validate(&agg, &hw(*fp), now).map(|_| Vec::new()),
            Op::Checkout { fp } => {
                let hash = SecretHash::from_bytes([(n % 251) as u8; 32]);
                let new = NewLease {
                    lease_id: fixtures::parse(&format!("lease_{n}")),
                    device_id: fixtures::parse(&format!("dev_{n}")),
                    token: format!("lft_{n}"),
                    token_hash: hash,
                };
                let r = floating::checkout(&agg, &hw(*fp), None, new, now).map(|p| p.mutations);
                if r.is_ok() {
                    tokens.push(hash);
                }
                r
            }
            Op::Heartbeat { lease } => match tokens.get(usize::from(*lease)) {
                Some(h) => floating::heartbeat(&agg, h, None, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Checkin { lease } => match tokens.get(usize::from(*lease)) {
                Some(h) => floating::checkin(&agg, h, None, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Consume {
                fp,
                feature,
                amount,
                event,
            } => {
                let event_id = format!("e{}", event % 12);
                agg.consumption = counted.get(&event_id).map(|(f, a)| {
                    let code = agg
                        .features
                        .iter()
                        .find(|lf| &lf.feature_id == f)
                        .map(|lf| lf.feature_code.clone())
                        // A feature removed since keeps its record; its code is not read.
                        .unwrap_or_else(|| "removed".parse().expect("a valid code"));
                    ConsumptionRecord::new(&agg.license, f.clone(), code, event_id.clone(), *a, now)
                });
                let req = ConsumeRequest {
                    fingerprint: Some(format!("fp{}", fp % 6)),
                    feature_code: format!("f{}", feature % 3),
                    amount: Some(i64::from(*amount)),
                    event_id: event_id.clone(),
                    ..ConsumeRequest::default()
                };
                let r = metering::consume(&agg, &req, now);
                if let Ok(plan) = &r {
                    for m in &plan.mutations {
                        if let Mutation::Consumption(c) = m {
                            assert!(!counted.contains_key(&c.event_id), "event counted twice");
                            counted.insert(c.event_id.clone(), (c.feature_id.clone(), c.amount));
                        }
                    }
                }
                r.map(|p| p.mutations)
            }
            Op::Advance { minutes } => {
                now += Duration::minutes(i64::from(*minutes % 3000));
                continue;
            }
            Op::Suspend => lifecycle::suspend(&agg, now).map(|p| p.mutations),
            Op::Reinstate => lifecycle::reinstate(&agg, now).map(|p| p.mutations),
            Op::Renew { days } => {
                let req = RenewRequest {
                    extend_by_days: Some(i64::from(days % 40) + 1),
                    ..RenewRequest::default()
                };
                lifecycle::renew(&agg, &req, now).map(|p| p.mutations)
            }
            Op::Revoke => lifecycle::revoke(&agg, now).map(|p| p.mutations),
            Op::ResetDevice { n } => match agg.devices.get(usize::from(*n)).map(|d| d.id.clone()) {
                Some(id) => activation::reset_device(&agg, &id, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Blacklist { n } => match agg.devices.get(usize::from(*n)).map(|d| d.id.clone()) {
                Some(id) => activation::blacklist_device(&agg, &id, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Transfer { reset } => {
                let req = TransferRequest {
                    customer_name: Some("n".into()),
                    reset_devices: *reset,
                    ..TransferRequest::default()
                };
                lifecycle::transfer(&agg, &req, None, now).map(|p| p.mutations)
            }
        };
        if let Ok(mutations) = &result {
            agg.apply(mutations);
        }
        check(&agg, &counted, now);
    }
});
