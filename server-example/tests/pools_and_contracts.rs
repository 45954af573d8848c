//! Pools and reseller contracts over HTTP (extensions): licenses created unassigned into a
//! pool and handed out N at a time, and a reseller's quota of licenses issued and given back.
//! On both backends, and with two instances on one PostgreSQL database racing each other.

mod common;

use std::collections::HashSet;

use axum::Router;
use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, assert_error, send};
use licentia_core::store::Store;
use licentia_server::{App, Config, router};
use licentia_storage_memory::MemoryStore;
use serde_json::{Value, json};

fn config() -> Config {
    Config {
        rate_limits: None,
        ..Config::default()
    }
}

async fn post(router: &Router, auth: &str, uri: &str, key: Option<&str>, body: &Value) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    send(
        router,
        Method::POST,
        uri,
        Some(auth),
        &headers,
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

fn created(r: &Reply) -> Value {
    assert!(
        r.status == StatusCode::CREATED || r.status == StatusCode::OK,
        "{:?} {}",
        r.status,
        String::from_utf8_lossy(&r.bytes)
    );
    r.json()["data"].clone()
}

/// A product, policy and customer: (product id, policy id, customer id).
async fn catalog(t: &TestApp, customer_code: &str) -> (String, String, String) {
    let (id, _) = t.license().await;
    let l = t
        .admin(Method::GET, &format!("/api/v1/licenses/{id}"), None)
        .await
        .json();
    let c = t
        .admin(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name": "Reseller", "code": customer_code})),
        )
        .await;
    (
        l["data"]["product_id"].as_str().unwrap().to_owned(),
        l["data"]["policy_id"].as_str().unwrap().to_owned(),
        created(&c)["id"].as_str().unwrap().to_owned(),
    )
}

async fn customer(t: &TestApp, code: &str) -> String {
    let c = t
        .admin(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name": code, "code": code})),
        )
        .await;
    created(&c)["id"].as_str().unwrap().to_owned()
}

async fn list(t: &TestApp, uri: &str) -> Vec<Value> {
    let r = t.admin(Method::GET, uri, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.json()["data"].as_array().unwrap().clone()
}

async fn pools<S: Store + 'static>(store: S) {
    let t = TestApp::of(&App::start(store, config()).await.unwrap()).await;
    let auth = t.bearer();
    let (product, policy, _) = catalog(&t, "reseller").await;
    let buyer = customer(&t, "buyer").await;
    let fill = |count: u32| json!({"product_id": product, "policy_id": policy, "count": count, "pool": "spring"});

    // Filling: pooled licenses are unassigned, and a customer is refused with a pool.
    let mut bad = fill(2);
    bad["customer_id"] = json!(buyer);
    let r = post(
        &t.router,
        &auth,
        "/api/v1/licenses/bulk",
        Some("fill-bad"),
        &bad,
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let mut bad = fill(2);
    bad["pool"] = json!("not a pool!");
    let r = post(
        &t.router,
        &auth,
        "/api/v1/licenses/bulk",
        Some("fill-bad2"),
        &bad,
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let made = created(
        &post(
            &t.router,
            &auth,
            "/api/v1/licenses/bulk",
            Some("fill-1"),
            &fill(5),
        )
        .await,
    );
    let keys: Vec<&str> = made
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["license_key"].as_str().unwrap())
        .collect();
    assert!(
        made.as_array()
            .unwrap()
            .iter()
            .all(|c| c["license"]["pool"] == "spring" && c["license"]["customer_id"].is_null())
    );
    assert_eq!(list(&t, "/api/v1/licenses?pool=spring").await.len(), 5);

    // Assigning: the key is required; bad input is 4xx; a short pool says what remains.
    let assign = |count: u32| json!({"customer_id": buyer, "count": count});
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        None,
        &assign(2),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-0"),
        &assign(0),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-missing"),
        &json!({"customer_id": "cus_missing", "count": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-many"),
        &assign(6),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "POOL_EXHAUSTED");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds 5"),
        "{}",
        r.json()
    );
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/empty/assign",
        Some("a-empty"),
        &assign(1),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "POOL_EXHAUSTED");

    let a = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-1"),
        &assign(3),
    )
    .await;
    let assigned = created(&a);
    assert_eq!(a.status, StatusCode::OK);
    let assigned = assigned.as_array().unwrap();
    assert_eq!(assigned.len(), 3);
    assert!(
        assigned
            .iter()
            .all(|l| l["customer_id"] == json!(buyer) && l["pool"].is_null())
    );
    // A retry is the same answer; another request under the key a conflict.
    let again = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-1"),
        &assign(3),
    )
    .await;
    assert_eq!(again.bytes, a.bytes);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let r = post(
        &t.router,
        &auth,
        "/api/v1/pools/spring/assign",
        Some("a-1"),
        &assign(1),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    assert_eq!(list(&t, "/api/v1/licenses?pool=spring").await.len(), 2);
    assert_eq!(
        list(&t, &format!("/api/v1/licenses?customer_id={buyer}"))
            .await
            .len(),
        3
    );
    let events = list(&t, "/api/v1/events?event_type=license.assigned").await;
    assert_eq!(events.len(), 3, "one event per license assigned");

    // A pooled key works before and after assignment (the pool is bookkeeping, not a gate).
    let on = t
        .runtime(
            "activate",
            keys[0],
            Some("pool-on"),
            &json!({"fingerprint": "pool-1"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);

    // The scope is license:write.
    let reader = t
        .admin(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "r", "scopes": ["license:read"]})),
        )
        .await;
    let reader = format!("Bearer {}", created(&reader)["token"].as_str().unwrap());
    let r = post(
        &t.router,
        &reader,
        "/api/v1/pools/spring/assign",
        Some("a-r"),
        &assign(1),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "TOKEN_SCOPE_DENIED");
}

async fn contracts<S: Store + 'static>(store: S) {
    let t = TestApp::of(&App::start(store, config()).await.unwrap()).await;
    let auth = t.bearer();
    let (product, policy, reseller) = catalog(&t, "reseller").await;

    // Creating: the quota is bounded, references must exist, a template or a policy is named.
    for bad in [
        json!({"customer_id": reseller, "product_id": product, "policy_id": policy, "license_quota": 0}),
        json!({"customer_id": reseller, "product_id": product, "license_quota": 5}),
    ] {
        let r = t.admin(Method::POST, "/api/v1/contracts", Some(bad)).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    }
    let r = t
        .admin(Method::POST, "/api/v1/contracts", Some(json!({"customer_id": "cus_missing", "product_id": product, "policy_id": policy, "license_quota": 5})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let c = t
        .admin(Method::POST, "/api/v1/contracts", Some(json!({"customer_id": reseller, "name": "Acme resale", "product_id": product, "policy_id": policy, "license_quota": 5})))
        .await;
    let c = created(&c);
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["licenses_issued"], 0);
    assert_eq!(c["name"], "Acme resale");

    // Issuing within the quota, keys once, a retry the same bytes.
    let uri = format!("/api/v1/contracts/{id}/licenses");
    let r = post(&t.router, &auth, &uri, None, &json!({"count": 1})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED");
    let first = post(&t.router, &auth, &uri, Some("c-1"), &json!({"count": 3})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let issued = first.json()["data"].as_array().unwrap().clone();
    assert_eq!(issued.len(), 3);
    assert!(
        issued
            .iter()
            .all(|l| l["license"]["contract_id"] == json!(id)
                && l["license"]["customer_id"] == json!(reseller))
    );
    let again = post(&t.router, &auth, &uri, Some("c-1"), &json!({"count": 3})).await;
    assert_eq!(again.bytes, first.bytes);
    let r = post(&t.router, &auth, &uri, Some("c-2"), &json!({"count": 3})).await;
    assert_error(&r, StatusCode::CONFLICT, "CONTRACT_QUOTA_EXCEEDED");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 of 5"),
        "{}",
        r.json()
    );
    let got = t
        .admin(Method::GET, &format!("/api/v1/contracts/{id}"), None)
        .await
        .json();
    assert_eq!(got["data"]["licenses_issued"], 3);

    // Revoking gives the place back; a license of another contract (or none) is 404.
    let lic = issued[0]["license"]["id"].as_str().unwrap().to_owned();
    let key = issued[0]["license_key"].as_str().unwrap().to_owned();
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("{uri}/{lic}"),
        Some(&auth),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("{uri}/{lic}"),
        Some(&auth),
        &[],
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "revoking again is answered alike"
    );
    let outsider = t
        .admin(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"product_id": product, "policy_id": policy})),
        )
        .await;
    let outsider = created(&outsider)["license"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("{uri}/{outsider}"),
        Some(&auth),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let v = t
        .runtime("validate", &key, None, &json!({"fingerprint": "x"}))
        .await;
    assert_error(&v, StatusCode::FORBIDDEN, "LICENSE_REVOKED");
    let got = t
        .admin(Method::GET, &format!("/api/v1/contracts/{id}"), None)
        .await
        .json();
    assert_eq!(got["data"]["licenses_issued"], 2);
    let more = post(&t.router, &auth, &uri, Some("c-3"), &json!({"count": 3})).await;
    assert_eq!(
        more.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&more.bytes)
    );
    assert_eq!(list(&t, &uri).await.len(), 6, "revoked ones are listed too");
    assert_eq!(
        list(&t, &format!("/api/v1/contracts?customer_id={reseller}"))
            .await
            .len(),
        1
    );
    assert_eq!(list(&t, "/api/v1/contracts").await.len(), 1);
    let r = t
        .admin(Method::GET, "/api/v1/contracts/ctr_missing", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // From a template: its features come with every license.
    let f = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/features"),
            Some(json!({"name": "Export", "code": "export"})),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED);
    let fid = f.json()["data"]["id"].as_str().unwrap().to_owned();
    // Custom field values on the template: license fields of the product, one typed value.
    let field = |resource_type: &str, code: &str| json!({"resource_type": resource_type, "code": code, "name": code, "value_type": "string"});
    let fields = format!("/api/v1/products/{product}/custom-fields");
    let tier = t
        .admin(Method::POST, &fields, Some(field("license", "tier")))
        .await;
    let tier = created(&tier)["id"].as_str().unwrap().to_owned();
    let region = t
        .admin(Method::POST, &fields, Some(field("customer", "region")))
        .await;
    let region = created(&region)["id"].as_str().unwrap().to_owned();
    let templates = format!("/api/v1/products/{product}/license-templates");
    for bad in [
        json!([{"field_id": region, "string_value": "eu"}]),
        json!([{"field_id": tier, "integer_value": 3}]),
        json!([{"field_id": tier}]),
        json!([{"field_id": tier, "string_value": "a"}, {"field_id": tier, "string_value": "b"}]),
    ] {
        let r = t
            .admin(
                Method::POST,
                &templates,
                Some(json!({"name": "Bad", "policy_id": policy, "custom_fields": bad})),
            )
            .await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD");
    }
    let tpl = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/license-templates"),
            Some(
                json!({"name": "Resale", "policy_id": policy, "features": [{"feature_id": fid}],
                        "custom_fields": [{"field_id": tier, "string_value": "gold"}]}),
            ),
        )
        .await;
    let tpl = created(&tpl)["id"].as_str().unwrap().to_owned();
    let c2 = t
        .admin(
            Method::POST,
            "/api/v1/contracts",
            Some(json!({"customer_id": reseller, "template_id": tpl, "license_quota": 2})),
        )
        .await;
    let c2 = created(&c2);
    assert_eq!(c2["product_id"], json!(product));
    let uri2 = format!("/api/v1/contracts/{}/licenses", c2["id"].as_str().unwrap());
    let made = post(&t.router, &auth, &uri2, Some("t-1"), &json!({"count": 2})).await;
    let made = created(&made);
    let from_tpl = made[0]["license"]["id"].as_str().unwrap();
    let features = list(&t, &format!("/api/v1/licenses/{from_tpl}/features")).await;
    assert_eq!(features.len(), 1);
    let values = list(&t, &format!("/api/v1/licenses/{from_tpl}/custom-fields")).await;
    assert_eq!(values.len(), 1, "the template's custom field value is set");
    assert_eq!(values[0]["code"], "tier");
    assert_eq!(values[0]["string_value"], "gold");
    // The contract follows its template when the template's policy changes.
    let pol2 = t
        .admin(
            Method::POST,
            &format!("/api/v1/products/{product}/policies"),
            Some(json!({"name": "Pro 2", "code": "pro2", "license_type": "perpetual"})),
        )
        .await;
    let pol2 = created(&pol2)["id"].as_str().unwrap().to_owned();
    let r = t
        .admin(
            Method::PATCH,
            &format!("/api/v1/products/{product}/license-templates/{tpl}"),
            Some(json!({"policy_id": pol2})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("{uri2}/{from_tpl}"),
        Some(&auth),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let again = post(&t.router, &auth, &uri2, Some("t-2"), &json!({"count": 1})).await;
    assert_eq!(created(&again)[0]["license"]["policy_id"], json!(pol2));
    // The template cannot go while the contract names it.
    let r = send(
        &t.router,
        Method::DELETE,
        &format!("/api/v1/products/{product}/license-templates/{tpl}"),
        Some(&auth),
        &[],
        None,
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let events = list(&t, "/api/v1/events?event_type=contract.created").await;
    assert_eq!(events.len(), 2);

    // Retries racing the first call (one key, the whole quota): every one gets its answer,
    // none the refusal the first call's licenses would cause.
    let c4 = t
        .admin(
            Method::POST,
            "/api/v1/contracts",
            Some(json!({"customer_id": reseller, "product_id": product, "policy_id": policy, "license_quota": 5})),
        )
        .await;
    let uri4 = format!(
        "/api/v1/contracts/{}/licenses",
        created(&c4)["id"].as_str().unwrap()
    );
    let racing: Vec<_> = (0..8)
        .map(|_| {
            let (router, auth, uri) = (t.router.clone(), auth.clone(), uri4.clone());
            tokio::spawn(async move {
                post(&router, &auth, &uri, Some("race-1"), &json!({"count": 5})).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for r in racing {
        let r = r.await.unwrap();
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        answers.push(r.bytes);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for one key"
    );
    assert_eq!(list(&t, &uri4).await.len(), 5);

    // The keys as a sheet, on request; a retry gives the same sheet.
    let c3 = t
        .admin(
            Method::POST,
            "/api/v1/contracts",
            Some(json!({"customer_id": reseller, "product_id": product, "policy_id": policy, "license_quota": 4})),
        )
        .await;
    let uri3 = format!(
        "/api/v1/contracts/{}/licenses",
        created(&c3)["id"].as_str().unwrap()
    );
    let csv_headers = [("idempotency-key", "sheet-1"), ("accept", "text/csv")];
    let body = serde_json::to_vec(&json!({"count": 4})).unwrap();
    let sheet = send(
        &t.router,
        Method::POST,
        &uri3,
        Some(&auth),
        &csv_headers,
        Some(body.clone()),
    )
    .await;
    assert_eq!(sheet.status, StatusCode::CREATED);
    assert_eq!(
        sheet.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert_eq!(sheet.headers.get("cache-control").unwrap(), "no-store");
    let text = String::from_utf8(sheet.bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], licentia_server::key_sheet::COLUMNS.join(","));
    assert_eq!(lines.len(), 5, "a header and one row per license");
    let key = lines[1].split(',').nth(1).unwrap();
    assert!(key.starts_with("lsk_"), "{text}");
    let on = t
        .runtime(
            "activate",
            key,
            Some("sheet-on"),
            &json!({"fingerprint": "sheet-1"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "a key from the sheet works");
    let again = send(
        &t.router,
        Method::POST,
        &uri3,
        Some(&auth),
        &csv_headers,
        Some(body),
    )
    .await;
    assert_eq!(again.bytes, sheet.bytes, "a retry gives the same sheet");

    // Each operation is in the served document, as an extension with its scope.
    let doc = t
        .admin(Method::GET, "/api/v1/openapi.json", None)
        .await
        .json();
    for (path, method, scope) in [
        ("/api/v1/pools/{pool}/assign", "post", "license:write"),
        ("/api/v1/contracts", "post", "license:write"),
        ("/api/v1/contracts", "get", "license:read"),
        ("/api/v1/contracts/{id}", "get", "license:read"),
        ("/api/v1/contracts/{id}/licenses", "post", "license:write"),
        ("/api/v1/contracts/{id}/licenses", "get", "license:read"),
        (
            "/api/v1/contracts/{id}/licenses/{license_id}",
            "delete",
            "license:write",
        ),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["x-licentia-extension"], true, "{path} {method}");
        assert_eq!(op["x-required-scopes"], json!([scope]), "{path} {method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_memory_backend() {
    pools(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_postgres_backend() {
    pools(licentia_storage_postgres::testing::fresh_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contracts_memory_backend() {
    contracts(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contracts_postgres_backend() {
    contracts(licentia_storage_postgres::testing::fresh_store().await).await;
}

/// Two instances on one database, 32 requests at once split between them: a pool of 20 is
/// handed out exactly once, and a quota of 20 issues exactly 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_race_for_a_pool_and_a_quota() {
    use licentia_storage_postgres::testing::{fresh_database, store_on};
    const TASKS: usize = 32;
    let options = fresh_database().await;
    let a = App::start(store_on(options.clone()).await, config())
        .await
        .unwrap();
    let b = App::start(store_on(options).await, config()).await.unwrap();
    let t = TestApp::of(&a).await;
    let routers = [t.router.clone(), router(b)];
    let auth = t.bearer();
    let (product, policy, reseller) = catalog(&t, "reseller").await;
    let fill = json!({"product_id": product, "policy_id": policy, "count": 20, "pool": "race"});
    created(
        &post(
            &t.router,
            &auth,
            "/api/v1/licenses/bulk",
            Some("fill"),
            &fill,
        )
        .await,
    );
    let c = t
        .admin(Method::POST, "/api/v1/contracts", Some(json!({"customer_id": reseller, "product_id": product, "policy_id": policy, "license_quota": 20})))
        .await;
    let contract = created(&c)["id"].as_str().unwrap().to_owned();

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let router = routers[i % 2].clone();
        let auth = auth.clone();
        let reseller = reseller.clone();
        let contract = contract.clone();
        tasks.push(tokio::spawn(async move {
            let assigned = post(
                &router,
                &auth,
                "/api/v1/pools/race/assign",
                Some(&format!("p-{i}")),
                &json!({"customer_id": reseller, "count": 1}),
            )
            .await;
            let issued = post(
                &router,
                &auth,
                &format!("/api/v1/contracts/{contract}/licenses"),
                Some(&format!("c-{i}")),
                &json!({"count": 1}),
            )
            .await;
            (assigned, issued)
        }));
    }
    let mut handed = HashSet::new();
    let (mut issued, mut refused) = (0, 0);
    for task in tasks {
        let (assigned, made) = task.await.unwrap();
        match assigned.status {
            StatusCode::OK => {
                let id = assigned.json()["data"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert!(handed.insert(id), "a license handed out twice");
            }
            _ => assert_error(&assigned, StatusCode::CONFLICT, "POOL_EXHAUSTED"),
        }
        match made.status {
            StatusCode::CREATED => issued += 1,
            _ => {
                assert_error(&made, StatusCode::CONFLICT, "CONTRACT_QUOTA_EXCEEDED");
                refused += 1;
            }
        }
    }
    assert_eq!(handed.len(), 20, "every pooled license once");
    assert_eq!((issued, refused), (20, TASKS - 20), "exactly the quota");
    let got = t
        .admin(Method::GET, &format!("/api/v1/contracts/{contract}"), None)
        .await
        .json();
    assert_eq!(got["data"]["licenses_issued"], 20);
}
