//! Signing key changes that reach every running instance (PostgreSQL).
//!
//! `licentia-server keys rotate` (or any instance's [`Engine::rotate_keys_in`]) writes the new
//! key set and notifies [`KEYS_CHANNEL`](licentia_storage_postgres::KEYS_CHANNEL) in the same
//! transaction. Each server listens on it and reloads its keys when a change commits, and
//! also re-reads them every [`KEY_RELOAD_PERIOD`] in case a notification was missed (a lost
//! listening connection, say). A rotation is therefore seen by every instance within that
//! period; `keys rotate --activate-in` (default 60 s) publishes the new key that long before
//! anyone signs with it, so no instance ever signs with a key another does not list.
//!
//! [`Engine::rotate_keys_in`]: licentia_core::engine::Engine::rotate_keys_in

use std::time::Duration;

use licentia_storage_postgres::PostgresStore;

use crate::state::App;

/// The longest an instance goes without re-reading its signing keys.
pub const KEY_RELOAD_PERIOD: Duration = Duration::from_secs(5);

/// Starts following key changes for `app`; abort the handle to stop.
pub fn spawn_key_reload(app: App<PostgresStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let listener = app.engine().store().key_changes().await;
            // Whatever changed before the listener was up is read now.
            reload(&app, &mut failing).await;
            match listener {
                Ok(mut changes) => loop {
                    tokio::select! {
                        changed = changes.next() => {
                            if changed.is_err() {
                                break;
                            }
                        }
                        () = tokio::time::sleep(KEY_RELOAD_PERIOD) => {}
                    }
                    reload(&app, &mut failing).await;
                },
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot listen for signing key changes; re-reading them periodically");
                    }
                    tokio::time::sleep(KEY_RELOAD_PERIOD).await;
                }
            }
        }
    })
}

/// Reloads the keys; a failure is logged once per outage.
async fn reload(app: &App<PostgresStore>, failing: &mut bool) {
    match app.engine().reload_keys().await {
        Ok(()) => *failing = false,
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(error = %e, "signing keys not reloaded; retrying");
        }
        Err(_) => {}
    }
}
