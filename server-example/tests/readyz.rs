//! `/readyz` answers 503 `not_ready` while the store is unavailable and recovers by itself.
//!
//! `Flaky` wraps the memory store and delegates every call; the test switches its readiness
//! read (`count_api_keys`) to `Unavailable` and back.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use common::send;
use licentia_core::crypto::StoredKey;
use licentia_core::model::*;
use licentia_core::store::*;
use licentia_server::{App, Config, router};
use licentia_storage_memory::MemoryStore;

struct Flaky<S> {
    inner: S,
    down: Arc<AtomicBool>,
}

impl<S: LicenseStore> LicenseStore for Flaky<S> {
    fn insert_license(
        &self,
        license: &License,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_license(license, events)
    }
    fn insert_licenses(
        &self,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_licenses(batch, events, idempotency)
    }
    fn find_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = StoreResult<Option<IdempotencyRecord>>> + Send {
        self.inner.find_idempotency(key)
    }
    fn get_license(&self, id: &LicenseId) -> impl Future<Output = StoreResult<License>> + Send {
        self.inner.get_license(id)
    }
    fn list_licenses(
        &self,
        query: &LicenseQuery,
    ) -> impl Future<Output = StoreResult<Vec<License>>> + Send {
        self.inner.list_licenses(query)
    }
    fn transact_license<T, F>(
        &self,
        query: AggregateQuery,
        decide: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: FnOnce(Loaded<'_>) -> Decision<T> + Send,
    {
        self.inner.transact_license(query, decide)
    }
    fn read_license(
        &self,
        query: &AggregateQuery,
    ) -> impl Future<Output = StoreResult<licentia_core::rules::LicenseAggregate>> + Send {
        self.inner.read_license(query)
    }
    fn purge_idempotency(
        &self,
        created_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_idempotency(created_before, limit)
    }
    fn record_touches(
        &self,
        touches: Vec<TouchRecord>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.record_touches(touches)
    }
    fn silent_device_licenses(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        margin: chrono::Duration,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<LicenseId>>> + Send {
        self.inner.silent_device_licenses(now, margin, limit)
    }
    fn list_devices(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Device>>> + Send {
        self.inner.list_devices(license, limit)
    }
    fn get_device(
        &self,
        license: &LicenseId,
        device: &DeviceId,
    ) -> impl Future<Output = StoreResult<Device>> + Send {
        self.inner.get_device(license, device)
    }
    fn list_license_features(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<LicenseFeature>>> + Send {
        self.inner.list_license_features(license, limit)
    }
}

impl<S: CatalogStore> CatalogStore for Flaky<S> {
    fn insert_product(
        &self,
        p: &Product,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_product(p, events)
    }
    fn get_product(&self, id: &ProductId) -> impl Future<Output = StoreResult<Product>> + Send {
        self.inner.get_product(id)
    }
    fn update_product(
        &self,
        p: &Product,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_product(p, events)
    }
    fn delete_product(
        &self,
        id: &ProductId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_product(id, events)
    }
    fn list_products(
        &self,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Product>>> + Send {
        self.inner.list_products(limit)
    }
    fn insert_version(
        &self,
        v: &ProductVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_version(v, events)
    }
    fn get_version(
        &self,
        id: &ProductVersionId,
    ) -> impl Future<Output = StoreResult<ProductVersion>> + Send {
        self.inner.get_version(id)
    }
    fn list_versions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<ProductVersion>>> + Send {
        self.inner.list_versions(product, limit)
    }
    fn insert_policy(
        &self,
        p: &Policy,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_policy(p, events)
    }
    fn get_policy(&self, id: &PolicyId) -> impl Future<Output = StoreResult<Policy>> + Send {
        self.inner.get_policy(id)
    }
    fn update_policy(
        &self,
        p: &Policy,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_policy(p, events)
    }
    fn delete_policy(
        &self,
        id: &PolicyId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_policy(id, events)
    }
    fn list_policies(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Policy>>> + Send {
        self.inner.list_policies(product, limit)
    }
    fn insert_feature(
        &self,
        f: &Feature,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_feature(f, events)
    }
    fn get_feature(&self, id: &FeatureId) -> impl Future<Output = StoreResult<Feature>> + Send {
        self.inner.get_feature(id)
    }
    fn find_feature(
        &self,
        product: &ProductId,
        code: &FeatureCode,
    ) -> impl Future<Output = StoreResult<Feature>> + Send {
        self.inner.find_feature(product, code)
    }
    fn list_features(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Feature>>> + Send {
        self.inner.list_features(product, limit)
    }
    fn insert_template(
        &self,
        t: &LicenseTemplate,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_template(t, events)
    }
    fn get_template(
        &self,
        id: &TemplateId,
    ) -> impl Future<Output = StoreResult<LicenseTemplate>> + Send {
        self.inner.get_template(id)
    }
    fn update_template(
        &self,
        t: &LicenseTemplate,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_template(t, events)
    }
    fn delete_template(
        &self,
        id: &TemplateId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_template(id, events)
    }
    fn list_templates(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<LicenseTemplate>>> + Send {
        self.inner.list_templates(product, limit)
    }
    fn insert_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_custom_field(d, events)
    }
    fn get_custom_field(
        &self,
        id: &CustomFieldId,
    ) -> impl Future<Output = StoreResult<CustomFieldDefinition>> + Send {
        self.inner.get_custom_field(id)
    }
    fn update_custom_field(
        &self,
        d: &CustomFieldDefinition,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_custom_field(d, events)
    }
    fn delete_custom_field(
        &self,
        id: &CustomFieldId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_custom_field(id, events)
    }
    fn list_custom_fields(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<CustomFieldDefinition>>> + Send {
        self.inner.list_custom_fields(product, limit)
    }
}

impl<S: CustomerStore> CustomerStore for Flaky<S> {
    fn insert_customer(
        &self,
        c: &Customer,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_customer(c, events)
    }
    fn get_customer(&self, id: &CustomerId) -> impl Future<Output = StoreResult<Customer>> + Send {
        self.inner.get_customer(id)
    }
    fn update_customer(
        &self,
        c: &Customer,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_customer(c, events)
    }
    fn delete_customer(
        &self,
        id: &CustomerId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_customer(id, events)
    }
    fn list_customers(
        &self,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Customer>>> + Send {
        self.inner.list_customers(limit)
    }
    fn put_custom_value(
        &self,
        definition: &CustomFieldId,
        resource_id: &str,
        value: Option<&CustomFieldValue>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner
            .put_custom_value(definition, resource_id, value, events)
    }
    fn list_custom_values(
        &self,
        resource_type: CustomFieldResourceType,
        resource_id: &str,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<CustomFieldValue>>> + Send {
        self.inner
            .list_custom_values(resource_type, resource_id, limit)
    }
}

impl<S: CommerceStore> CommerceStore for Flaky<S> {
    fn insert_order(
        &self,
        o: &Order,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_order(o, events)
    }
    fn get_order(&self, id: &OrderId) -> impl Future<Output = StoreResult<Order>> + Send {
        self.inner.get_order(id)
    }
    fn update_order(
        &self,
        o: &Order,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_order(o, events)
    }
    fn list_orders(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Order>>> + Send {
        self.inner.list_orders(product, limit)
    }
    fn insert_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_subscription(s, events)
    }
    fn get_subscription(
        &self,
        id: &SubscriptionId,
    ) -> impl Future<Output = StoreResult<Subscription>> + Send {
        self.inner.get_subscription(id)
    }
    fn update_subscription(
        &self,
        s: &Subscription,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_subscription(s, events)
    }
    fn list_subscriptions(
        &self,
        product: &ProductId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Subscription>>> + Send {
        self.inner.list_subscriptions(product, limit)
    }
}

impl<S: AccessStore> AccessStore for Flaky<S> {
    fn insert_api_key(
        &self,
        k: &ApiKey,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_api_key(k, events)
    }
    fn find_api_key(&self, hash: &SecretHash) -> impl Future<Output = StoreResult<ApiKey>> + Send {
        self.inner.find_api_key(hash)
    }
    fn touch_api_key(
        &self,
        id: &ApiKeyId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.touch_api_key(id, at)
    }
    fn list_api_keys(&self, limit: Limit) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send {
        self.inner.list_api_keys(limit)
    }
    fn get_api_key(&self, id: &ApiKeyId) -> impl Future<Output = StoreResult<ApiKey>> + Send {
        self.inner.get_api_key(id)
    }
    fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: chrono::DateTime<chrono::Utc>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<ApiKey>> + Send {
        self.inner.revoke_api_key(id, now, events)
    }
    fn purge_sessions(
        &self,
        expired_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_sessions(expired_before, limit)
    }
    fn count_api_keys(&self) -> impl Future<Output = StoreResult<u64>> + Send {
        let down = self.down.load(Ordering::SeqCst);
        let inner = self.inner.count_api_keys();
        async move {
            if down {
                return Err(StoreError::Unavailable {
                    source: "the test took the store down".into(),
                });
            }
            inner.await
        }
    }
    fn insert_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: &str,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_webhook(w, secret, events)
    }
    fn get_webhook(
        &self,
        id: &WebhookId,
    ) -> impl Future<Output = StoreResult<(WebhookEndpoint, String)>> + Send {
        self.inner.get_webhook(id)
    }
    fn update_webhook(
        &self,
        w: &WebhookEndpoint,
        secret: Option<&str>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.update_webhook(w, secret, events)
    }
    fn delete_webhook(
        &self,
        id: &WebhookId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_webhook(id, events)
    }
    fn list_webhooks(
        &self,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<WebhookEndpoint>>> + Send {
        self.inner.list_webhooks(limit)
    }
    fn load_signing_keys(&self) -> impl Future<Output = StoreResult<Vec<StoredKey>>> + Send {
        self.inner.load_signing_keys()
    }
    fn replace_signing_keys(
        &self,
        ring: Option<&ProductId>,
        expected_active: Option<&str>,
        keys: &[StoredKey],
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner
            .replace_signing_keys(ring, expected_active, keys, events)
    }
    fn list_events(
        &self,
        query: &EventQuery,
    ) -> impl Future<Output = StoreResult<EventPage>> + Send {
        self.inner.list_events(query)
    }
    fn append_events(&self, events: Vec<NewEvent>) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.append_events(events)
    }
}

impl<S: DeliveryStore> DeliveryStore for Flaky<S> {
    fn claim_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> impl Future<Output = StoreResult<Vec<ClaimedDelivery>>> + Send {
        self.inner.claim_deliveries(claim)
    }
    fn finish_delivery(
        &self,
        report: DeliveryReport,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        self.inner.finish_delivery(report)
    }
    fn list_deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<DeliveryId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<DeliveryPage>> + Send {
        self.inner.list_deliveries(webhook, before, limit)
    }
    fn retry_delivery(
        &self,
        webhook: &WebhookId,
        id: DeliveryId,
        now: chrono::DateTime<chrono::Utc>,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<Delivery>> + Send {
        self.inner.retry_delivery(webhook, id, now, events)
    }
    fn purge_deliveries(
        &self,
        started_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_deliveries(started_before, limit)
    }
    fn count_pending_deliveries(&self) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.count_pending_deliveries()
    }
}

type At = chrono::DateTime<chrono::Utc>;

impl<S: ReportStore> ReportStore for Flaky<S> {
    fn usage_summary(
        &self,
        query: &UsageQuery,
    ) -> impl Future<Output = StoreResult<UsageSummary>> + Send {
        self.inner.usage_summary(query)
    }
    fn usage_ledger(
        &self,
        query: &LedgerQuery,
    ) -> impl Future<Output = StoreResult<LedgerPage>> + Send {
        self.inner.usage_ledger(query)
    }
    fn list_activities(
        &self,
        query: &ActivityQuery,
    ) -> impl Future<Output = StoreResult<EventPage>> + Send {
        self.inner.list_activities(query)
    }
    fn record_runtime_errors(
        &self,
        counts: Vec<RuntimeErrorCount>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.record_runtime_errors(counts)
    }
    fn runtime_error_groups(
        &self,
        query: &RuntimeErrorQuery,
    ) -> impl Future<Output = StoreResult<RuntimeErrorReport>> + Send {
        self.inner.runtime_error_groups(query)
    }
    fn purge_runtime_errors(&self, before: At) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_runtime_errors(before)
    }
    fn insert_export(&self, export: &ReportExport) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_export(export)
    }
    fn get_export(&self, id: &ExportId) -> impl Future<Output = StoreResult<ReportExport>> + Send {
        self.inner.get_export(id)
    }
    fn export_content(
        &self,
        id: &ExportId,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send {
        self.inner.export_content(id)
    }
    fn claim_export(
        &self,
        now: At,
        lease_until: At,
    ) -> impl Future<Output = StoreResult<Option<ReportExport>>> + Send {
        self.inner.claim_export(now, lease_until)
    }
    fn finish_export(
        &self,
        id: &ExportId,
        outcome: Result<ExportArtifact, String>,
        now: At,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        self.inner.finish_export(id, outcome, now)
    }
    fn purge_exports(&self, now: At) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_exports(now)
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_store_is_down_and_recovers() {
    let down = Arc::new(AtomicBool::new(false));
    let store = Flaky {
        inner: MemoryStore::new(),
        down: Arc::clone(&down),
    };
    let router = router(App::start(store, Config::default()).await.unwrap());
    let r = send(&router, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"]["status"], "ready");

    down.store(true, Ordering::SeqCst);
    let r = send(&router, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let v = r.json();
    assert_eq!(v["data"]["status"], "not_ready", "{v}");
    assert_eq!(v["data"]["db"], "unavailable", "{v}");
    assert_eq!(v["meta"]["request_id"].as_str(), Some(r.request_id()));
    // Liveness is not readiness.
    let r = send(&router, Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);

    down.store(false, Ordering::SeqCst);
    let r = send(&router, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"]["status"], "ready");
}

impl<S: TelemetryStore> TelemetryStore for Flaky<S> {
    fn insert_telemetry(
        &self,
        record: NewTelemetry,
    ) -> impl Future<Output = StoreResult<TelemetryRecord>> + Send {
        self.inner.insert_telemetry(record)
    }
    fn list_telemetry(
        &self,
        license: &LicenseId,
        before: Option<TelemetryId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<TelemetryPage>> + Send {
        self.inner.list_telemetry(license, before, limit)
    }
    fn purge_telemetry(
        &self,
        before: At,
        limit: u32,
    ) -> impl Future<Output = StoreResult<u64>> + Send {
        self.inner.purge_telemetry(before, limit)
    }
}

impl<S: UserStore> UserStore for Flaky<S> {
    fn insert_user(
        &self,
        u: &User,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_user(u, events)
    }
    fn get_user(&self, id: &UserId) -> impl Future<Output = StoreResult<User>> + Send {
        self.inner.get_user(id)
    }
    fn find_user(&self, email: &str) -> impl Future<Output = StoreResult<User>> + Send {
        self.inner.find_user(email)
    }
    fn find_user_by_token(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = StoreResult<User>> + Send {
        self.inner.find_user_by_token(hash)
    }
    fn list_users(&self, query: &UserQuery) -> impl Future<Output = StoreResult<Vec<User>>> + Send {
        self.inner.list_users(query)
    }
    fn modify_user<F>(
        &self,
        id: &UserId,
        decide: F,
    ) -> impl Future<Output = StoreResult<User>> + Send
    where
        F: FnOnce(&User) -> UserChange + Send,
    {
        self.inner.modify_user(id, decide)
    }
}

impl<S: RegistrationStore> RegistrationStore for Flaky<S> {
    fn insert_registration(
        &self,
        r: &DeviceRegistration,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_registration(r, events)
    }
    fn get_registration(
        &self,
        id: &RegistrationId,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send {
        self.inner.get_registration(id)
    }
    fn find_registration(
        &self,
        serial: &str,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send {
        self.inner.find_registration(serial)
    }
    fn find_session(
        &self,
        token_hash: &SecretHash,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send {
        self.inner.find_session(token_hash)
    }
    fn list_registrations(
        &self,
        license: &LicenseId,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<DeviceRegistration>>> + Send {
        self.inner.list_registrations(license, limit)
    }
    fn delete_registration(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_registration(id, events)
    }
    fn end_session(
        &self,
        id: &RegistrationId,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<DeviceRegistration>> + Send {
        self.inner.end_session(id, events)
    }
    fn extend_session(
        &self,
        id: &RegistrationId,
        token_hash: &SecretHash,
        expires_at: At,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        self.inner.extend_session(id, token_hash, expires_at)
    }
}

impl<S: AllocationStore> AllocationStore for Flaky<S> {
    fn insert_contract(
        &self,
        contract: &Contract,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_contract(contract, events)
    }
    fn get_contract(&self, id: &ContractId) -> impl Future<Output = StoreResult<Contract>> + Send {
        self.inner.get_contract(id)
    }
    fn list_contracts(
        &self,
        customer: Option<&CustomerId>,
        limit: Limit,
    ) -> impl Future<Output = StoreResult<Vec<Contract>>> + Send {
        self.inner.list_contracts(customer, limit)
    }
    fn insert_contract_licenses<F>(
        &self,
        id: &ContractId,
        batch: NewLicenses<'_>,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyRecord>,
        admit: F,
    ) -> impl Future<Output = StoreResult<Result<(), licentia_core::rules::Denial>>> + Send
    where
        F: FnOnce(&Contract) -> Result<(), licentia_core::rules::Denial> + Send,
    {
        self.inner
            .insert_contract_licenses(id, batch, events, idempotency, admit)
    }
    fn assign_pool<T, F>(
        &self,
        pool: &PoolName,
        count: u32,
        decide: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: FnOnce(Vec<(License, Policy)>) -> Decision<T> + Send,
    {
        self.inner.assign_pool(pool, count, decide)
    }
}

impl<S: ArtifactStore> ArtifactStore for Flaky<S> {
    fn insert_artifact(
        &self,
        artifact: &Artifact,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.insert_artifact(artifact, events)
    }
    fn get_artifact(&self, id: &ArtifactId) -> impl Future<Output = StoreResult<Artifact>> + Send {
        self.inner.get_artifact(id)
    }
    fn list_artifacts(
        &self,
        version: &ProductVersionId,
    ) -> impl Future<Output = StoreResult<Vec<Artifact>>> + Send {
        self.inner.list_artifacts(version)
    }
}
