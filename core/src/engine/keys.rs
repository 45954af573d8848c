//! The signing keys: the global ring, and the rings of products that sign with their own
//! (`Product.signing = product`).
//!
//! A product's answers, the refusals about its licenses and its offline envelopes are signed by
//! its own ring when it has one that signs, else by the global ring. A product switched back to
//! the global ring keeps its keys, all retired, so that what they signed still verifies; they
//! stay listed by [`Engine::public_keys`] with their `product_id`. Every ring rotates alone
//! (each is replaced in the store without touching the others), and clients pick the key by
//! `kid` as before.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde_json::json;

use super::{Actor, Clock, Engine, EngineError};
use crate::crypto::{KeyError, KeyRing, PublicKeyInfo, StoredKey};
use crate::model::{KeyStatus, ProductId, Signing};
use crate::rules::DomainEvent;
use crate::store::{Store, StoreError};

/// Every key ring the engine signs and verifies with.
#[derive(Debug)]
pub(super) struct KeyChain {
    global: KeyRing,
    products: BTreeMap<ProductId, ProductRing>,
}

/// A product's own keys.
#[derive(Debug)]
enum ProductRing {
    /// The product signs with its own ring.
    Signing(KeyRing),
    /// The product is back on the global ring; its keys, all retired, are kept for
    /// verification.
    Kept(Vec<StoredKey>),
}

impl KeyChain {
    /// Groups stored keys into their rings. The global ring must have its active key; a
    /// product's ring without one is kept for verification only.
    fn from_stored(keys: Vec<StoredKey>) -> Result<Self, KeyError> {
        let mut global = Vec::new();
        let mut products: BTreeMap<ProductId, Vec<StoredKey>> = BTreeMap::new();
        for k in keys {
            match k.product_id.clone() {
                None => global.push(k),
                Some(p) => products.entry(p).or_default().push(k),
            }
        }
        let products = products
            .into_iter()
            .map(|(p, keys)| {
                let ring = if keys.iter().any(|k| k.status == KeyStatus::Active) {
                    ProductRing::Signing(KeyRing::from_stored(keys)?)
                } else {
                    ProductRing::Kept(keys)
                };
                Ok((p, ring))
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(Self {
            global: KeyRing::from_stored(global)?,
            products,
        })
    }

    /// The ring that signs for `product` (the global one for `None` and for a product
    /// without a ring of its own that signs).
    pub(super) fn signer(&self, product: Option<&ProductId>) -> &KeyRing {
        match product.and_then(|p| self.products.get(p)) {
            Some(ProductRing::Signing(ring)) => ring,
            _ => &self.global,
        }
    }

    /// The global ring.
    pub(super) fn global(&self) -> &KeyRing {
        &self.global
    }

    fn signing_of(&self, product: &ProductId) -> Signing {
        match self.products.get(product) {
            Some(ProductRing::Signing(_)) => Signing::Product,
            _ => Signing::Global,
        }
    }

    fn public_keys_at(&self, now: DateTime<Utc>) -> Vec<PublicKeyInfo> {
        let mut keys = self.global.public_keys_at(now);
        for ring in self.products.values() {
            match ring {
                ProductRing::Signing(ring) => keys.extend(ring.public_keys_at(now)),
                ProductRing::Kept(kept) => keys.extend(kept.iter().map(StoredKey::public_info)),
            }
        }
        keys
    }
}

impl<S: Store, C: Clock, R: CryptoRng + Send> Engine<S, C, R> {
    /// Signs a runtime refusal ([`crypto::refusal`](crate::crypto::refusal)) with the key
    /// that signs now for `product` (the [`Denial::product`](crate::rules::Denial::product)
    /// of the refusal; `None` when no license was found), as answers are signed.
    ///
    /// # Errors
    ///
    /// `Internal` if the refusal cannot be put in canonical form (it always can: it holds
    /// strings only).
    pub fn sign_refusal(
        &self,
        refusal: &crate::crypto::Refusal,
        product: Option<&ProductId>,
    ) -> Result<crate::crypto::Signed<crate::crypto::Refusal>, EngineError> {
        let now = self.clock.now();
        self.with_signer(product, |k| k.sign_at(now, refusal))
            .map_err(|e| EngineError::Internal(Box::new(e)))
    }

    /// The public key set clients verify with: every ring's keys (the global ring's first,
    /// then each product's with its `product_id`), the active ones and every retired one.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        let now = self.clock.now();
        self.chain().public_keys_at(now)
    }

    /// Which ring signs `product`'s answers on this instance now.
    pub fn signing_of(&self, product: &ProductId) -> Signing {
        self.chain().signing_of(product)
    }

    /// Makes a new active global signing key and retires the old one; earlier signatures
    /// still verify.
    ///
    /// # Errors
    ///
    /// `Conflict` when another instance rotated at the same time (reload and retry), or storage
    /// failures.
    pub async fn rotate_keys(&self, actor: &Actor) -> Result<PublicKeyInfo, EngineError> {
        self.rotate_keys_in(actor, chrono::Duration::zero()).await
    }

    /// Makes a new global signing key that is published now and signs from `delay` on
    /// ([`KeyRing::rotate_at`]); `delay` of zero rotates at once. With several instances,
    /// choose a delay longer than the time they take to reload their keys (the server: at
    /// once by `LISTEN`/`NOTIFY` on PostgreSQL, at worst its periodic re-read), so that every
    /// instance lists the key before any signs with it.
    ///
    /// # Errors
    ///
    /// As [`Self::rotate_keys`].
    pub async fn rotate_keys_in(
        &self,
        actor: &Actor,
        delay: chrono::Duration,
    ) -> Result<PublicKeyInfo, EngineError> {
        self.rotate_ring(actor, None, delay).await
    }

    /// [`Self::rotate_keys_in`] for the own ring of `product` (its id or its code): only that
    /// ring changes.
    ///
    /// # Errors
    ///
    /// `NotFound` product (a code names only a product that signs with its own keys);
    /// `Conflict` when the product named by id signs with the global ring (set its `signing`
    /// to `product` first) or another instance rotated at the same time; storage failures.
    pub async fn rotate_product_keys_in(
        &self,
        actor: &Actor,
        product: &str,
        delay: chrono::Duration,
    ) -> Result<PublicKeyInfo, EngineError> {
        let product = self.product_named(product).await?;
        self.rotate_ring(actor, Some(&product), delay).await
    }

    /// The product `name` is the id or the code of. Only products with rings of their own can
    /// be rotated, so a code is looked for among those (few) before any other lookup.
    async fn product_named(&self, name: &str) -> Result<ProductId, EngineError> {
        let own: Vec<ProductId> = self.chain().products.keys().cloned().collect();
        for id in own {
            if id.as_str() == name {
                return Ok(id);
            }
            match self.store.get_product(&id).await {
                Ok(p) if p.code.as_str() == name => return Ok(id),
                // A deleted product's kept keys name no product any more.
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let id = super::catalog::parse_id(name, "product")?;
        Ok(self.store.get_product(&id).await?.id)
    }

    async fn rotate_ring(
        &self,
        actor: &Actor,
        product: Option<&ProductId>,
        delay: chrono::Duration,
    ) -> Result<PublicKeyInfo, EngineError> {
        let now = self.clock.now();
        let activates_at = now.checked_add_signed(delay).unwrap_or(now);
        let (expected, next, info) = {
            let chain = self.chain();
            let current = match product {
                None => chain.global(),
                Some(p) => match chain.products.get(p) {
                    Some(ProductRing::Signing(ring)) => ring,
                    _ => {
                        return Err(EngineError::Conflict(
                            "the product signs with the global keys: set its signing to \
                             product to give it keys of its own",
                        ));
                    }
                },
            };
            let mut next = KeyRing::from_stored(current.export()).map_err(EngineError::internal)?;
            let info = self.with_rng(|rng| next.rotate_at(rng, now, activates_at));
            (current.active_kid().to_owned(), next, info)
        };
        let event = actor.event(
            DomainEvent::new(
                "signing_key.rotated",
                "signing_key",
                info.kid.clone(),
                [
                    ("retired_kid", json!(expected)),
                    ("activates_at", json!(info.activates_at)),
                    ("product_id", json!(product)),
                ],
            ),
            now,
        );
        self.store
            .replace_signing_keys(product, Some(&expected), &next.export(), vec![event])
            .await?;
        self.put_ring(product, ProductRing::Signing(next));
        Ok(info)
    }

    /// Gives `product` a signing ring of its own (`Signing::Product`: a fresh active key,
    /// beside any keys it kept) or puts it back on the global ring (its keys retired and
    /// kept). Nothing happens when it already signs that way.
    pub(super) async fn set_signing(
        &self,
        actor: &Actor,
        product: &ProductId,
        signing: Signing,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let change = {
            let chain = self.chain();
            match (signing, chain.products.get(product)) {
                (Signing::Product, Some(ProductRing::Signing(_)))
                | (Signing::Global, None | Some(ProductRing::Kept(_))) => return Ok(()),
                (Signing::Product, kept) => {
                    let kept = match kept {
                        Some(ProductRing::Kept(keys)) => keys.clone(),
                        _ => Vec::new(),
                    };
                    let ring = self
                        .with_rng(|rng| KeyRing::generate_for(product.clone(), kept, rng, now))
                        .map_err(EngineError::internal)?;
                    let event = DomainEvent::new(
                        "signing_key.created",
                        "signing_key",
                        ring.active_kid(),
                        [("product_id", json!(product))],
                    );
                    (None, ring.export(), ProductRing::Signing(ring), event)
                }
                (Signing::Global, Some(ProductRing::Signing(ring))) => {
                    let kept = ring.retire_all();
                    let event = DomainEvent::new(
                        "signing_key.retired",
                        "signing_key",
                        ring.active_kid(),
                        [("product_id", json!(product))],
                    );
                    let expected = Some(ring.active_kid().to_owned());
                    (expected, kept.clone(), ProductRing::Kept(kept), event)
                }
            }
        };
        let (expected, keys, ring, event) = change;
        let written = self
            .store
            .replace_signing_keys(
                Some(product),
                expected.as_deref(),
                &keys,
                vec![actor.event(event, now)],
            )
            .await;
        match written {
            Ok(()) => {
                self.put_ring(Some(product), ring);
                Ok(())
            }
            // Another instance changed the ring meanwhile: take its, and see whether it is
            // what was asked for.
            Err(StoreError::Conflict { reason }) => {
                self.reload_keys().await?;
                match self.signing_of(product) == signing {
                    true => Ok(()),
                    false => Err(EngineError::Conflict(reason)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reloads every signing key ring from the store (after another instance rotated or
    /// switched a product's signing).
    ///
    /// # Errors
    ///
    /// Storage failures or unusable stored keys.
    pub async fn reload_keys(&self) -> Result<(), EngineError> {
        let chain = load_chain(&self.store).await?;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = chain;
        Ok(())
    }

    /// Runs `f` with the ring that signs for `product` now.
    pub(crate) fn with_signer<T>(
        &self,
        product: Option<&ProductId>,
        f: impl FnOnce(&KeyRing) -> T,
    ) -> T {
        f(self.chain().signer(product))
    }

    fn chain(&self) -> std::sync::RwLockReadGuard<'_, KeyChain> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn put_ring(&self, product: Option<&ProductId>, ring: ProductRing) {
        let mut chain = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        match (product, ring) {
            (None, ProductRing::Signing(ring)) => chain.global = ring,
            (None, ProductRing::Kept(_)) => unreachable!("the global ring always signs"),
            (Some(p), ring) => {
                chain.products.insert(p.clone(), ring);
            }
        }
    }
}

/// The stored key rings, making and storing the first global key when there is none.
pub(super) async fn start_chain<S: Store>(
    store: &S,
    now: DateTime<Utc>,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<KeyChain, EngineError> {
    let stored = store.load_signing_keys().await?;
    if stored.iter().any(|k| k.product_id.is_none()) {
        return KeyChain::from_stored(stored).map_err(EngineError::internal);
    }
    let ring = KeyRing::generate(rng, now);
    let event = Actor::system().event(
        DomainEvent::new("signing_key.created", "signing_key", ring.active_kid(), []),
        now,
    );
    match store
        .replace_signing_keys(None, None, &ring.export(), vec![event])
        .await
    {
        // Another instance created the first key at the same moment: use theirs.
        Ok(()) | Err(StoreError::Conflict { .. }) => load_chain(store).await,
        Err(e) => Err(e.into()),
    }
}

async fn load_chain<S: Store>(store: &S) -> Result<KeyChain, EngineError> {
    KeyChain::from_stored(store.load_signing_keys().await?).map_err(EngineError::internal)
}
