//! Properties over random operation sequences with a moving clock.
//!
//! Each case builds a license, then applies a random sequence of runtime and administrative
//! operations (each decided on the current aggregate and applied as a store would), moving
//! `now` forward between them. After every step the invariants must hold.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::testing::{aggregate, hw, policy, t0};
use super::*;
use crate::model::*;

#[derive(Debug, Clone)]
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
        amount: i64,
        event: u8,
    },
    Advance {
        minutes: i64,
    },
    Suspend,
    Reinstate,
    Renew {
        days: i64,
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, any::<bool>()).prop_map(|(fp, container)| Op::Activate { fp, container }),
        2 => (0u8..6).prop_map(|fp| Op::Deactivate { fp }),
        2 => (0u8..6).prop_map(|fp| Op::Validate { fp }),
        5 => (0u8..6).prop_map(|fp| Op::Checkout { fp }),
        3 => (0u8..8).prop_map(|lease| Op::Heartbeat { lease }),
        2 => (0u8..8).prop_map(|lease| Op::Checkin { lease }),
        8 => (0u8..6, 0u8..3, -2i64..6, 0u8..12)
            .prop_map(|(fp, feature, amount, event)| Op::Consume { fp, feature, amount, event }),
        5 => (0i64..3000).prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::Suspend),
        1 => Just(Op::Reinstate),
        1 => (1i64..40).prop_map(|days| Op::Renew { days }),
        1 => Just(Op::Revoke),
        1 => (0u8..6).prop_map(|n| Op::ResetDevice { n }),
        1 => (0u8..6).prop_map(|n| Op::Blacklist { n }),
        1 => any::<bool>().prop_map(|reset| Op::Transfer { reset }),
    ]
}

#[derive(Debug, Clone)]
struct Limits {
    license_type: LicenseType,
    max_activations: u32,
    max_containers: Option<u32>,
    max_floating: u32,
    timeout: u32,
    grace: u32,
    require_heartbeat: bool,
    quotas: [Option<i64>; 3],
    overages: [Option<i64>; 3],
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        prop_oneof![
            Just(LicenseType::Perpetual),
            Just(LicenseType::TimeLimited),
            Just(LicenseType::Subscription),
            Just(LicenseType::Trial),
            Just(LicenseType::Consumption)
        ],
        0u32..4,
        proptest::option::of(0u32..3),
        0u32..4,
        1u32..120,
        0u32..3,
        any::<bool>(),
        proptest::array::uniform3(proptest::option::of(0i64..12)),
        proptest::array::uniform3(proptest::option::of(0i64..4)),
    )
        .prop_map(
            |(
                license_type,
                max_activations,
                max_containers,
                max_floating,
                timeout,
                grace,
                require_heartbeat,
                quotas,
                overages,
            )| Limits {
                license_type,
                max_activations,
                max_containers,
                max_floating,
                timeout,
                grace,
                require_heartbeat,
                quotas,
                overages,
            },
        )
}

fn setup(l: &Limits) -> LicenseAggregate {
    let mut p = policy(l.license_type);
    p.max_activations = l.max_activations;
    p.max_container_instances = l.max_containers;
    p.max_floating_users = Some(l.max_floating);
    p.floating_timeout_minutes = l.timeout;
    p.grace_period_days = l.grace;
    p.require_heartbeat = l.require_heartbeat;
    let mut agg = aggregate(p);
    if agg.policy.license_type == LicenseType::Consumption {
        agg.license.expires_at = Some(t0() + Duration::days(20));
    }
    for i in 0..3 {
        let f = Feature {
            id: format!("feat_{i}").parse().unwrap(),
            product_id: agg.license.product_id.clone(),
            code: format!("f{i}").parse().unwrap(),
            name: format!("f{i}"),
            metadata: Metadata::new(),
            created_at: t0(),
        };
        let req = FeatureAssignRequest {
            feature_id: f.id.clone(),
            enabled: None,
            max_consumptions: l.quotas[i],
            expires_at: None,
            metadata: None,
            allow_overages: Some(l.overages[i].is_some()),
            max_overages: l.overages[i],
            reset_period: Some(if i == 2 {
                ResetPeriod::Day
            } else {
                ResetPeriod::Never
            }),
            allow_negative: Some(i == 1),
            floating_seats: None,
            floating_timeout_minutes: None,
        };
        let plan = lifecycle::assign_feature(&agg, &f, &req, t0()).unwrap();
        agg.apply(&plan.mutations);
    }
    agg
}

fn container(fp: u8) -> RuntimeBindingRequest {
    RuntimeBindingRequest {
        is_container: true,
        pod_name: Some(format!("pod{fp}")),
        ..Default::default()
    }
}

/// Everything the harness remembers to check the invariants against.
#[derive(Default)]
struct Ledger {
    /// event_id -> (feature, amount) of the consumption that counted.
    counted: HashMap<String, (FeatureId, i64)>,
    /// Sum of counted amounts.
    total: i64,
    /// Lease tokens handed out, by index of issue.
    tokens: Vec<SecretHash>,
    next_id: u32,
    /// Whether the license was observed expired since the last renew or reinstate.
    seen_expired: bool,
}

fn run(limits: Limits, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut agg = setup(&limits);
    let mut now: DateTime<Utc> = t0();
    let mut ledger = Ledger::default();
    for op in ops {
        ledger.next_id += 1;
        let n = ledger.next_id;
        let mut revived = false;
        let result: Result<Vec<Mutation>, Denial> = match &op {
            Op::Activate { fp, container: c } => {
                let req = if *c {
                    container(*fp)
                } else {
                    hw(&format!("fp{fp}"))
                };
                activation::activate(&agg, &req, format!("dev_{n}").parse().unwrap(), now)
                    .map(|p| p.mutations)
            }
            Op::Deactivate { fp } => {
                activation::deactivate(&agg, &hw(&format!("fp{fp}")), now).map(|p| p.mutations)
            }
            Op::Validate { fp } => {
                // Read-only: its touch moves timestamps only, which no limit depends on.
                activation::validate(&agg, &hw(&format!("fp{fp}")), now).map(|_| Vec::new())
            }
            Op::Checkout { fp } => {
                let hash = SecretHash::from_bytes([(n % 251) as u8; 32]);
                let new = floating::NewLease {
                    lease_id: format!("lease_{n}").parse().unwrap(),
                    device_id: format!("dev_{n}").parse().unwrap(),
                    token: format!("lft_{n}"),
                    token_hash: hash,
                };
                let r = floating::checkout(&agg, &hw(&format!("fp{fp}")), None, new, now)
                    .map(|p| p.mutations);
                if r.is_ok() {
                    ledger.tokens.push(hash);
                }
                r
            }
            Op::Heartbeat { lease } => match ledger.tokens.get(*lease as usize) {
                Some(h) => floating::heartbeat(&agg, h, None, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Checkin { lease } => match ledger.tokens.get(*lease as usize) {
                Some(h) => floating::checkin(&agg, h, None, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Consume {
                fp,
                feature,
                amount,
                event,
            } => {
                let event_id = format!("e{event}");
                // The store loads the earlier record with this event_id, if any.
                agg.consumption = ledger.counted.get(&event_id).map(|(f, a)| {
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
                    fingerprint: Some(format!("fp{fp}")),
                    feature_code: format!("f{feature}"),
                    amount: Some(*amount),
                    event_id: event_id.clone(),
                    ..Default::default()
                };
                let r = metering::consume(&agg, &req, now);
                if let Ok(plan) = &r {
                    for m in &plan.mutations {
                        if let Mutation::Consumption(c) = m {
                            prop_assert!(
                                !ledger.counted.contains_key(&c.event_id),
                                "event counted twice"
                            );
                            ledger
                                .counted
                                .insert(c.event_id.clone(), (c.feature_id.clone(), c.amount));
                            ledger.total += c.amount;
                        }
                    }
                }
                if let Err(d) = &r
                    && let Some((f, a)) = ledger.counted.get(&event_id)
                {
                    let same = format!("feat_{feature}") == f.as_str() && a == amount;
                    prop_assert!(
                        same || d.has(DenialCode::EventIdConflict)
                            || !d.has(DenialCode::QuotaExceeded)
                    );
                }
                r.map(|p| p.mutations)
            }
            Op::Advance { minutes } => {
                now += Duration::minutes(*minutes);
                continue;
            }
            Op::Suspend => lifecycle::suspend(&agg, now).map(|p| p.mutations),
            Op::Reinstate => {
                revived = agg.license.status == LicenseStatus::Suspended;
                lifecycle::reinstate(&agg, now).map(|p| p.mutations)
            }
            Op::Renew { days } => {
                revived = true;
                let req = RenewRequest {
                    extend_by_days: Some(*days),
                    ..Default::default()
                };
                lifecycle::renew(&agg, &req, now).map(|p| p.mutations)
            }
            Op::Revoke => lifecycle::revoke(&agg, now).map(|p| p.mutations),
            Op::ResetDevice { n } => match agg.devices.get(*n as usize).map(|d| d.id.clone()) {
                Some(id) => activation::reset_device(&agg, &id, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Blacklist { n } => match agg.devices.get(*n as usize).map(|d| d.id.clone()) {
                Some(id) => activation::blacklist_device(&agg, &id, now).map(|p| p.mutations),
                None => continue,
            },
            Op::Transfer { reset } => {
                let req = TransferRequest {
                    customer_name: Some("n".into()),
                    reset_devices: *reset,
                    ..Default::default()
                };
                lifecycle::transfer(&agg, &req, None, now).map(|p| p.mutations)
            }
        };
        if let Ok(mutations) = &result {
            agg.apply(mutations);
            if revived {
                ledger.seen_expired = false;
            }
        }
        check_invariants(&agg, &limits, &ledger, now)?;
        if status::effective_status(&agg.license, &agg.policy, now) == LicenseStatus::Expired {
            ledger.seen_expired = true;
        }
        if ledger.seen_expired {
            let s = status::effective_status(&agg.license, &agg.policy, now);
            prop_assert!(
                !matches!(s, LicenseStatus::Active | LicenseStatus::GracePeriod),
                "expired license became {s} without renewal or reinstatement after {op:?}"
            );
        }
    }
    Ok(())
}

fn check_invariants(
    agg: &LicenseAggregate,
    limits: &Limits,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let active = agg.active_devices().count();
    prop_assert!(
        active <= limits.max_activations as usize,
        "{active} seats > {}",
        limits.max_activations
    );
    prop_assert_eq!(agg.license.active_device_count as usize, active);
    if let Some(max) = limits.max_containers {
        prop_assert!(agg.active_devices().filter(|d| d.is_container).count() <= max as usize);
    }
    let live = agg.live_leases(now).count();
    prop_assert!(
        live <= limits.max_floating as usize,
        "{live} leases > {}",
        limits.max_floating
    );
    for f in &agg.features {
        let used = metering::usage_at(f, now);
        prop_assert!(used >= 0, "negative usage");
        if let Some(c) = metering::ceiling(f) {
            prop_assert!(used <= c, "{} used {used} > ceiling {c}", f.feature_code);
        }
    }
    prop_assert_eq!(
        agg.license.total_consumptions,
        ledger.total,
        "replays must not double count"
    );
    // Every binding holds at most one active device.
    let mut keys: Vec<_> = agg
        .active_devices()
        .map(|d| d.binding_key.as_str())
        .collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    prop_assert_eq!(keys.len(), n, "a binding holds two seats");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn limits_hold_over_random_operation_sequences(limits in limits(), ops in proptest::collection::vec(op(), 1..80)) {
        run(limits, ops)?;
    }
}
