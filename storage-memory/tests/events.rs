//! The event log: newest first, cursor paging, filters.

mod common;

use common::*;
use licentia_core::model::AuditActorType;
use licentia_core::store::{AccessStore, EventQuery, Limit};
use licentia_storage_memory::MemoryStore;

/// Appends 25 events: resource `r-{i}` for i in 1..=25, type `even` or `odd`, every fifth
/// caused by a license.
async fn seeded() -> MemoryStore {
    let store = MemoryStore::new();
    for i in 1..=25 {
        let mut e = event(if i % 2 == 0 { "even" } else { "odd" }, &format!("r-{i}"));
        if i % 5 == 0 {
            e.actor_type = AuditActorType::License;
        }
        store.append_events(vec![e]).await.unwrap();
    }
    store
}

fn resources(page: &licentia_core::store::EventPage) -> Vec<String> {
    page.events
        .iter()
        .map(|e| e.resource_id.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_newest_first_by_cursor() {
    let store = seeded().await;
    let mut q = EventQuery {
        limit: Limit::new(Some(10)),
        ..EventQuery::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list_events(&q).await.unwrap();
        pages += 1;
        assert!(page.events.len() <= 10);
        seen.extend(page.events.iter().map(|e| e.sequence));
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(Some(cursor), page.events.last().map(|e| e.sequence));
                q.before = Some(cursor);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=25).rev().collect::<Vec<i64>>());
}

#[tokio::test]
async fn an_exact_last_page_has_no_cursor() {
    let store = seeded().await;
    let q = EventQuery {
        before: Some(11),
        limit: Limit::new(Some(10)),
        ..EventQuery::default()
    };
    let page = store.list_events(&q).await.unwrap();
    assert_eq!(page.events.len(), 10);
    assert_eq!(page.next_cursor, None, "nothing older than sequence 1");
    let q = EventQuery {
        before: Some(1),
        ..EventQuery::default()
    };
    let page = store.list_events(&q).await.unwrap();
    assert!(page.events.is_empty() && page.next_cursor.is_none());
}

#[tokio::test]
async fn filters_apply_before_the_page_size() {
    let store = seeded().await;
    let q = EventQuery {
        event_type: Some("even".into()),
        limit: Limit::new(Some(5)),
        ..EventQuery::default()
    };
    let page = store.list_events(&q).await.unwrap();
    assert_eq!(resources(&page), ["r-24", "r-22", "r-20", "r-18", "r-16"]);
    assert_eq!(page.next_cursor, Some(16));

    let q = EventQuery {
        actor_type: Some(AuditActorType::License),
        before: Some(20),
        ..EventQuery::default()
    };
    let page = store.list_events(&q).await.unwrap();
    assert_eq!(resources(&page), ["r-15", "r-10", "r-5"]);
    assert_eq!(page.next_cursor, None);

    let q = EventQuery {
        resource_id: Some("r-7".into()),
        resource_type: Some("test".into()),
        ..EventQuery::default()
    };
    let page = store.list_events(&q).await.unwrap();
    assert_eq!(resources(&page), ["r-7"]);
    let q = EventQuery {
        resource_type: Some("other".into()),
        ..EventQuery::default()
    };
    assert!(store.list_events(&q).await.unwrap().events.is_empty());
}

#[tokio::test]
async fn the_default_page_is_fifty_and_every_event_keeps_its_data() {
    let store = MemoryStore::new();
    let mut e = event("product.created", "prod_0001");
    e.metadata
        .insert("code".into(), serde_json::json!("editor"));
    e.ip_address = Some("192.0.2.1".into());
    let many: Vec<_> = (0..60).map(|_| e.clone()).collect();
    store.append_events(many).await.unwrap();
    let page = store.list_events(&EventQuery::default()).await.unwrap();
    assert_eq!(page.events.len(), 50);
    assert_eq!(page.next_cursor, Some(11));
    assert_eq!(page.events[0], e.clone().into_event(60));
}
