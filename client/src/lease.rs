//! A floating lease that keeps itself alive: [`Client::lease`] checks one out, a background
//! task heartbeats it, and dropping the guard checks it in (or [`FloatingLease::release`]
//! does, waiting for the answer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use licentia_core::model::{FloatingCheckoutData, RuntimeBindingRequest};
use tokio::task::JoinHandle;

use crate::{Client, Error};

/// A checked-out floating seat, heartbeated in the background until dropped or released.
#[derive(Debug)]
pub struct FloatingLease {
    client: Client,
    checkout: FloatingCheckoutData,
    heartbeats: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl FloatingLease {
    /// What the checkout answered (verified), including the lease token.
    pub fn checkout(&self) -> &FloatingCheckoutData {
        &self.checkout
    }

    /// How many heartbeats the server has accepted so far.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats.load(Ordering::Relaxed)
    }

    /// Stops heartbeating and checks the lease in, waiting for the server's answer.
    ///
    /// # Errors
    ///
    /// As [`Client::checkin`].
    pub async fn release(mut self) -> Result<(), Error> {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.client
            .checkin(&self.checkout.lease_token)
            .await
            .map(drop)
    }
}

impl Drop for FloatingLease {
    /// Stops heartbeating and checks the lease in from a background task (best effort: with
    /// no runtime left, the lease times out on the server instead).
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, token) = (self.client.clone(), self.checkout.lease_token.clone());
            runtime.spawn(async move {
                let _ = client.checkin(&token).await;
            });
        }
    }
}

impl Client {
    /// Checks out a floating lease for `device` and heartbeats it every `every` until the
    /// guard is dropped or released. Pick `every` well inside the policy's floating timeout
    /// (a third of it is usual). A heartbeat the server refuses (the lease is gone) stops the
    /// task; one that fails in transport is retried at the next tick.
    ///
    /// # Errors
    ///
    /// As [`Client::checkout`] (`FLOATING_POOL_EXHAUSTED`, …).
    pub async fn lease(
        &self,
        device: &RuntimeBindingRequest,
        every: Duration,
    ) -> Result<FloatingLease, Error> {
        self.lease_in(device, None, every).await
    }

    /// [`Client::lease`] of the feature `feature_code`'s own floating pool (an extension).
    ///
    /// # Errors
    ///
    /// As [`Client::checkout_feature`].
    pub async fn lease_feature(
        &self,
        device: &RuntimeBindingRequest,
        feature_code: &str,
        every: Duration,
    ) -> Result<FloatingLease, Error> {
        self.lease_in(device, Some(feature_code), every).await
    }

    async fn lease_in(
        &self,
        device: &RuntimeBindingRequest,
        feature_code: Option<&str>,
        every: Duration,
    ) -> Result<FloatingLease, Error> {
        let checkout = match feature_code {
            Some(code) => self.checkout_feature(device, code).await?,
            None => self.checkout(device).await?,
        }
        .into_data();
        let heartbeats = Arc::new(AtomicU64::new(0));
        let (client, token, count) = (
            self.clone(),
            checkout.lease_token.clone(),
            Arc::clone(&heartbeats),
        );
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                match client.heartbeat(&token).await {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::Refused(_)) => return,
                    Err(_) => {}
                }
            }
        });
        Ok(FloatingLease {
            client: self.clone(),
            checkout,
            heartbeats,
            task: Some(task),
        })
    }
}
