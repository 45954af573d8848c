//! The server writes the validation bookkeeping the engine coalesced: what is still pending
//! when it shuts down is flushed before `serve_app` returns, so a graceful stop loses nothing.

use licentia_core::engine::requests::{LicenseCreate, ProductCreate};
use licentia_core::engine::{Actor, Credential, RuntimeCall};
use licentia_core::model::{LicenseType, PolicyDraft, RuntimeBindingRequest};
use licentia_core::store::{AccessStore, EventQuery, LicenseStore};
use licentia_server::{App, Config, serve_app};
use licentia_storage_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_validations_are_written_at_shutdown() {
    let store = MemoryStore::new();
    let app = App::start(store.clone(), Config::default()).await.unwrap();
    let engine = app.engine();
    let admin = Actor::system();
    let product = engine
        .create_product(
            &admin,
            ProductCreate {
                name: "Editor".into(),
                code: "editor".into(),
                metadata: None,
                signing: None,
            },
        )
        .await
        .unwrap();
    let draft = PolicyDraft {
        name: Some("Pro".into()),
        code: Some("pro".into()),
        license_type: Some(LicenseType::Perpetual),
        ..Default::default()
    };
    let policy = engine
        .create_policy(&admin, product.id.as_str(), draft)
        .await
        .unwrap();
    let created = engine
        .create_license(
            &admin,
            LicenseCreate {
                product_id: product.id.to_string(),
                policy_id: policy.id.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let call = RuntimeCall {
        credential: Credential::LicenseKey(&created.license_key),
        idempotency_key: Some("a1"),
        request_id: "req_1",
        ip_address: None,
    };
    let device = RuntimeBindingRequest {
        fingerprint: Some("laptop".into()),
        ..Default::default()
    };
    engine.activate(call, &device).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_app(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    engine
        .validate(
            RuntimeCall {
                idempotency_key: None,
                ..call
            },
            &device,
        )
        .await
        .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    assert_eq!(engine.pending_touches(), 0, "nothing waits after the stop");
    let validated = store
        .list_events(&EventQuery {
            event_type: Some("license.validated".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(validated.events.len(), 1, "the validation was written");
    let license = store.get_license(&created.license.id).await.unwrap();
    assert!(license.last_validated_at.is_some(), "with its timestamp");
}
