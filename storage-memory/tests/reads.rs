//! One hot license does not serialise its readers, and writers queued on it do not block the
//! runtime: while a write holds the license, reads of it complete, and writers waiting for it
//! yield their worker instead of parking it.

use std::time::Duration;

use licentia_core::conformance::fixtures::{activate, by_id, parse, seed, t0};
use licentia_core::model::LicenseType;
use licentia_core::store::{Decision, LicenseStore};
use licentia_storage_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_queued_writers_do_not_block_while_a_write_holds_the_license() {
    let store = MemoryStore::new();
    let s = seed(&store, 1, LicenseType::Perpetual, |p| p.max_activations = 2).await;
    let id = s.license.id.clone();
    activate(&store, &id, "fp-1", parse("dev_0001"), t0())
        .await
        .expect("a seat is free");

    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn({
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .transact_license(by_id(&id), move |_| {
                    let _ = entered_tx.send(());
                    // Parks this thread (handing its worker to another thread) until released.
                    tokio::task::block_in_place(|| release_rx.recv().ok());
                    Decision::nothing(())
                })
                .await
                .unwrap();
        }
    });
    entered_rx.await.unwrap();

    // More writers than worker threads queue on the same license. A blocking lock would park
    // every worker; the async one parks none.
    let queued: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .transact_license(by_id(&id), |_| Decision::nothing(()))
                    .await
                    .unwrap();
            })
        })
        .collect();
    tokio::task::yield_now().await;

    // Readers on other tasks still run and see the committed state. (A liveness bound, not a
    // timing claim: with the license's state locked they would never finish.)
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move { store.read_license(&by_id(&id)).await.unwrap() })
        })
        .collect();
    for r in readers {
        let agg = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .expect("a read completes while a write holds the license")
            .unwrap();
        assert_eq!(agg.active_devices().count(), 1);
    }

    release_tx.send(()).unwrap();
    holder.await.unwrap();
    for w in queued {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("queued writers run once the license is free")
            .unwrap();
    }
}
