//! Random strings through every string field of the write operations, on both backends: the
//! answer is never a 5xx (U+0000 is refused as 400 `INVALID_STRING` on both, other strings are
//! stored or refused as the rules say).
//!
//! Each operation has a valid base body; every case replaces each string in it (recursively,
//! metadata values and keys included) by a generated string, one field at a time, and also
//! all at once.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, send};
use licentia_core::store::Store;
use licentia_server::{App, Config};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{Value, json};

/// What a field may be sent: any Unicode (control characters and U+0000 included), long
/// strings, and strings that look like other JSON.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,40}",
        2 => "[\\x00-\\x1f\\u{7f}-\\u{9f}a-z]{0,12}",
        1 => Just("\u{0}".to_owned()),
        1 => ".{300,1200}",
        1 => Just("null".to_owned()),
        1 => Just("{\"a\":1}".to_owned()),
        1 => "[\\u{d7ff}\\u{e000}\\u{fffd}\\u{10ffff}]{1,8}",
    ]
}

/// Every path to a string in `v` (object keys are named with a `#key:` step).
fn string_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::String(_) => out.push(at.clone()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(i.to_string());
                string_paths(item, at, out);
                at.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if k == "metadata" {
                    at.push(format!("#key:{k}"));
                    out.push(at.clone());
                    at.pop();
                }
                at.push(k.clone());
                string_paths(item, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// `v` with the string at `path` replaced by `s` (for a `#key:` step, a new metadata key).
fn replaced(v: &Value, path: &[String], s: &str) -> Value {
    let mut v = v.clone();
    let mut cur = &mut v;
    for (i, step) in path.iter().enumerate() {
        if let Some(key) = step.strip_prefix("#key:") {
            if let Some(meta) = cur.get_mut(key).and_then(Value::as_object_mut) {
                meta.insert(s.to_owned(), json!("v"));
            }
            return v;
        }
        cur = match cur {
            Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
            Value::Object(map) => map.get_mut(step).unwrap(),
            _ => unreachable!("paths lead to strings"),
        };
        if i == path.len() - 1 {
            *cur = json!(s);
        }
    }
    v
}

struct Fixture {
    product: String,
    policy: String,
    license: String,
    key: String,
    customer: String,
    feature: String,
}

async fn fixture(t: &TestApp) -> Fixture {
    let p = t
        .admin(
            Method::POST,
            "/api/v1/products",
            Some(json!({"name":"P","code":"p"})),
        )
        .await;
    let product = p.json()["data"]["id"].as_str().unwrap().to_owned();
    let pol = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/policies"),
            Some(json!({"name":"Pro","code":"pro","license_type":"perpetual","max_activations":1000,"max_floating_users":1000})),
        )
        .await;
    let policy = pol.json()["data"]["id"].as_str().unwrap().to_owned();
    let f = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/features"),
            Some(json!({"name":"Units","code":"units"})),
        )
        .await;
    assert!(
        f.status.is_success(),
        "{}",
        String::from_utf8_lossy(&f.bytes)
    );
    let feature = f.json()["data"]["id"].as_str().unwrap().to_owned();
    let c = t
        .admin(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name":"C","code":"cust","email":"c@example.com"})),
        )
        .await;
    let customer = c.json()["data"]["id"].as_str().unwrap().to_owned();
    let l = t
        .admin(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"product_id": product, "policy_id": policy})),
        )
        .await;
    let d = &l.json()["data"];
    let license = d["license"]["id"].as_str().unwrap().to_owned();
    let a = t
        .admin(
            Method::POST,
            &format!("/api/v1/licenses/{license}/features"),
            Some(json!({"feature_id": feature, "max_consumptions": 1_000_000})),
        )
        .await;
    assert!(
        a.status.is_success(),
        "{}",
        String::from_utf8_lossy(&a.bytes)
    );
    Fixture {
        product,
        policy,
        license,
        key: d["license_key"].as_str().unwrap().to_owned(),
        customer,
        feature,
    }
}

/// (method, path, runtime?, base body) of the writes.
fn writes(f: &Fixture) -> Vec<(Method, String, bool, Value)> {
    let binding = json!({"fingerprint":"fp","hostname":"h","os":"linux",
        "app_version":"1.2.3","container_id":"c","pod_name":"p","namespace":"n","cluster_id":"k"});
    let with = |extra: Value| {
        let mut b = binding.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let (p, pol, l, c, fid) = (&f.product, &f.policy, &f.license, &f.customer, &f.feature);
    vec![
        (
            Method::POST,
            "/api/v1/products".into(),
            false,
            json!({"name":"n","code":"c","metadata":{"k":"v"}}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/products/{p}"),
            false,
            json!({"name":"n","metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/versions"),
            false,
            json!({"version":"1.2.3","metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/policies"),
            false,
            json!({"name":"n","code":"c","license_type":"perpetual"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/policies/{pol}"),
            false,
            json!({"name":"n"}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/features"),
            false,
            json!({"name":"n","code":"c","metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/custom-fields"),
            false,
            json!({"resource_type":"license","code":"c","name":"n","value_type":"enum","enum_options":["a","b"]}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/orders"),
            false,
            json!({"external_system":"s","external_id":"i","status":"paid","customer_id":c,"metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/products/{p}/subscriptions"),
            false,
            json!({"external_system":"s","external_id":"i","status":"active","current_period_start":"2026-11-01T00:00:00Z","current_period_end":"2026-12-01T00:00:00Z","metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            "/api/v1/customers".into(),
            false,
            json!({"name":"n","code":"c","email":"e@x.com","metadata":{"k":"v"}}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/customers/{c}"),
            false,
            json!({"name":"n","email":"e@x.com"}),
        ),
        (
            Method::POST,
            "/api/v1/licenses".into(),
            false,
            json!({"product_id":p,"policy_id":pol,"customer_email":"e@x.com","customer_name":"n","metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/licenses/{l}/features"),
            false,
            json!({"feature_id":fid,"metadata":{"k":"v"}}),
        ),
        (
            Method::POST,
            format!("/api/v1/licenses/{l}/transfer"),
            false,
            json!({"customer_email":"e@x.com","customer_name":"n"}),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            false,
            json!({"name":"n","scopes":["product:read"],"allowed_cidrs":["10.0.0.0/8"]}),
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            false,
            json!({"name":"n","url":"https://hooks.example.com/x","event_types":["license.created"],"secret":"0123456789abcdef0123"}),
        ),
        (
            Method::POST,
            "/api/v1/license/activate".into(),
            true,
            binding.clone(),
        ),
        (
            Method::POST,
            "/api/v1/license/validate".into(),
            true,
            binding.clone(),
        ),
        (
            Method::POST,
            "/api/v1/license/check".into(),
            true,
            binding.clone(),
        ),
        (
            Method::POST,
            "/api/v1/license/offline".into(),
            true,
            binding.clone(),
        ),
        (
            Method::POST,
            "/api/v1/license/consume".into(),
            true,
            with(json!({"feature_code":"units","amount":1,"event_id":"e"})),
        ),
        (
            Method::POST,
            "/api/v1/license/floating/checkout".into(),
            true,
            binding.clone(),
        ),
        (
            Method::POST,
            "/api/v1/license/deactivate".into(),
            true,
            binding,
        ),
    ]
}

async fn no_5xx_for_any_string<S: Store + 'static>(store: S) {
    let config = Config {
        rate_limits: None,
        ..Config::default()
    };
    let app = App::start(store, config).await.unwrap();
    let t = TestApp::of(&app).await;
    let f = fixture(&t).await;
    let writes = writes(&f);
    let mut runner = TestRunner::new(PropConfig {
        cases: 6,
        ..PropConfig::default()
    });
    let strings = proptest::collection::vec(any_string(), 8);
    let mut sent = 0usize;
    let mut seq = 0u64;
    // One write with a fresh Idempotency-Key, under the license key or the admin token.
    let call = async |seq: u64, method: &Method, path: &str, runtime: bool, body: &Value| {
        let idem = format!("k-{seq}");
        let auth = if runtime {
            format!("License {}", f.key)
        } else {
            t.bearer()
        };
        send(
            &t.router,
            method.clone(),
            path,
            Some(&auth),
            &[("idempotency-key", idem.as_str())],
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    };
    // Each base body is a valid request, so the strings reach the store, not only the parser.
    for (method, path, runtime, base) in &writes {
        seq += 1;
        let r = call(seq, method, path, *runtime, base).await;
        assert!(
            r.status.is_success(),
            "base body of {method} {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.bytes)
        );
    }
    for _ in 0..runner.config().cases {
        let values = strings.new_tree(&mut runner).unwrap().current();
        for (method, path, runtime, base) in &writes {
            let mut paths = Vec::new();
            string_paths(base, &mut Vec::new(), &mut paths);
            let mut bodies: Vec<Value> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| replaced(base, p, &values[i % values.len()]))
                .collect();
            let mut all = base.clone();
            for (i, p) in paths.iter().enumerate() {
                all = replaced(&all, p, &values[(i + 3) % values.len()]);
            }
            bodies.push(all);
            for body in bodies {
                seq += 1;
                let r = call(seq, method, path, *runtime, &body).await;
                sent += 1;
                assert!(
                    !r.status.is_server_error(),
                    "{method} {path} with {body}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.bytes)
                );
                if body.to_string().contains("\\u0000") {
                    assert_eq!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "{method} {path} with {body}"
                    );
                    assert_eq!(r.code(), "INVALID_STRING");
                }
            }
        }
    }
    assert!(sent > 500, "{sent} requests sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_strings_memory() {
    no_5xx_for_any_string(licentia_storage_memory::MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_strings_postgres() {
    no_5xx_for_any_string(licentia_storage_postgres::testing::fresh_store().await).await;
}
