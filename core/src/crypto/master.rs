//! Signing seeds sealed at rest under a master key.
//!
//! A store that persists signing keys (a database shared by several servers, say) should not
//! hold their seeds in the clear. [`MasterKey::seal_seed`] encrypts a seed with AES-256-GCM
//! under a key derived from the master key with HKDF-SHA256 (info `licentia-seed-seal-v1`);
//! the `kid` is the associated data, so a sealed seed cannot be moved to another key id.
//!
//! Sealing is deterministic and needs no randomness: the 96-bit nonce is an HMAC-SHA256 (under
//! a second derived key) of the `kid` and the seed (a synthetic IV). A nonce repeats only for
//! the same `kid` and seed, which then seal to the same bytes, so no two different
//! plaintexts ever share a nonce. Sealed form: `nonce (12) || ciphertext (32) || tag (16)`.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::encoding::b64_decode_array;
use super::error::KeyError;
use super::signing::SecretSeed;

const SEAL_HKDF_INFO: &[u8] = b"licentia-seed-seal-v1";
const NONCE_LEN: usize = 12;
/// First MAC input of a sealed secret's nonce (seeds start with their kid's length, never 2^64-1).
const SECRET_NONCE_LABEL: &[u8] = b"licentia-secret-seal-v1";
/// Length of a sealed seed: nonce, 32 encrypted bytes, 16-byte tag.
pub const SEALED_SEED_LEN: usize = NONCE_LEN + 32 + 16;

/// A 32-byte master key that seals signing seeds at rest.
///
/// Zeroized on drop; `Debug` prints `MasterKey([redacted])`.
pub struct MasterKey {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// From 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let ikm = Zeroizing::new(bytes);
        let hk = Hkdf::<Sha256>::new(None, &ikm[..]);
        let mut okm = Zeroizing::new([0u8; 64]);
        hk.expand(SEAL_HKDF_INFO, &mut okm[..])
            .unwrap_or_else(|_| unreachable!("64 bytes is a valid HKDF-SHA256 output length"));
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        enc.copy_from_slice(&okm[..32]);
        mac.copy_from_slice(&okm[32..]);
        Self { enc, mac }
    }

    /// Parses the standard padded base64 of 32 bytes (e.g. from `openssl rand -base64 32`).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidMasterKey`] for anything else.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes =
            Zeroizing::new(b64_decode_array::<32>(s.trim()).ok_or(KeyError::InvalidMasterKey)?);
        Ok(Self::from_bytes(*bytes))
    }

    /// Seals `seed`, bound to `kid`.
    pub fn seal_seed(&self, kid: &str, seed: &SecretSeed) -> Vec<u8> {
        self.seal(self.nonce(kid, seed), kid, &seed.expose_secret()[..])
    }

    /// Opens what [`MasterKey::seal_seed`] sealed for `kid`.
    ///
    /// # Errors
    ///
    /// [`KeyError::SealBroken`] when `sealed` was sealed under another master key or `kid`,
    /// or was altered.
    pub fn open_seed(&self, kid: &str, sealed: &[u8]) -> Result<SecretSeed, KeyError> {
        if sealed.len() != SEALED_SEED_LEN {
            return Err(KeyError::SealBroken);
        }
        let plain = self.open(kid, sealed)?;
        let bytes: [u8; 32] = plain[..].try_into().map_err(|_| KeyError::SealBroken)?;
        Ok(SecretSeed::from_bytes(bytes))
    }

    /// Seals a secret of any length (a webhook endpoint's signing secret, say), bound to
    /// `aad` (the endpoint id): `nonce (12) || ciphertext || tag (16)`, deterministic like
    /// [`MasterKey::seal_seed`]. The nonce's MAC input starts with a label of its own, so a
    /// secret and a seed never share a nonce even under the same associated data.
    pub fn seal_secret(&self, aad: &str, secret: &[u8]) -> Vec<u8> {
        let nonce = self.mac_nonce(&[SECRET_NONCE_LABEL, aad.as_bytes(), secret]);
        self.seal(nonce, aad, secret)
    }

    /// Opens what [`MasterKey::seal_secret`] sealed for `aad`.
    ///
    /// # Errors
    ///
    /// [`KeyError::SealBroken`] when `sealed` was sealed under another master key or `aad`,
    /// or was altered.
    pub fn open_secret(&self, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.open(aad, sealed)
    }

    /// `nonce || AES-256-GCM(msg, aad)`.
    fn seal(&self, nonce: [u8; NONCE_LEN], aad: &str, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + msg.len() + 16);
        out.extend_from_slice(&nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce.into(),
                Payload {
                    msg,
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any message below 64 GiB"));
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The plaintext of what [`Self::seal`] wrote for `aad`.
    fn open(&self, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(KeyError::SealBroken);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::SealBroken)?;
        self.cipher()
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::SealBroken)
    }

    /// HMAC of length-prefixed `parts`, truncated to a nonce.
    fn mac_nonce(&self, parts: &[&[u8]]) -> [u8; NONCE_LEN] {
        self.mac_tag(|mac| {
            for part in parts {
                mac.update(&(part.len() as u64).to_be_bytes());
                mac.update(part);
            }
        })
    }

    /// The HMAC (under the derived MAC key) of what `write` feeds it, truncated to a nonce.
    fn mac_tag(&self, write: impl FnOnce(&mut Hmac<Sha256>)) -> [u8; NONCE_LEN] {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.mac[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        write(&mut mac);
        let tag = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag[..NONCE_LEN]);
        nonce
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.enc).into())
    }

    /// The synthetic IV: HMAC(kid length, kid, seed), truncated.
    fn nonce(&self, kid: &str, seed: &SecretSeed) -> [u8; NONCE_LEN] {
        self.mac_tag(|mac| {
            mac.update(&(kid.len() as u64).to_be_bytes());
            mac.update(kid.as_bytes());
            mac.update(&seed.expose_secret()[..]);
        })
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(b: u8) -> SecretSeed {
        SecretSeed::from_bytes([b; 32])
    }

    #[test]
    fn sealed_seeds_open_only_with_their_master_key_and_kid() {
        let master = MasterKey::from_bytes([7; 32]);
        let sealed = master.seal_seed("k1", &seed(1));
        assert_eq!(sealed.len(), SEALED_SEED_LEN);
        assert_eq!(
            master.open_seed("k1", &sealed).unwrap().expose_secret(),
            &[1; 32]
        );
        assert_eq!(
            master.open_seed("k2", &sealed).unwrap_err(),
            KeyError::SealBroken
        );
        let other = MasterKey::from_bytes([8; 32]);
        assert_eq!(
            other.open_seed("k1", &sealed).unwrap_err(),
            KeyError::SealBroken
        );
        let mut altered = sealed.clone();
        altered[20] ^= 1;
        assert_eq!(
            master.open_seed("k1", &altered).unwrap_err(),
            KeyError::SealBroken
        );
        assert_eq!(
            master.open_seed("k1", &sealed[..40]).unwrap_err(),
            KeyError::SealBroken
        );
    }

    #[test]
    fn sealing_is_deterministic_and_nonces_differ_per_seed() {
        let master = MasterKey::from_bytes([7; 32]);
        assert_eq!(
            master.seal_seed("k1", &seed(1)),
            master.seal_seed("k1", &seed(1))
        );
        let a = master.seal_seed("k1", &seed(1));
        let b = master.seal_seed("k1", &seed(2));
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        // The seed never appears in the sealed bytes.
        assert!(!a.windows(32).any(|w| w == [1; 32]));
    }

    #[test]
    fn sealed_secrets_open_only_with_their_master_key_and_aad() {
        let master = MasterKey::from_bytes([7; 32]);
        let sealed = master.seal_secret("whk_1", b"whsec_abcdefghijklmnop");
        assert_eq!(
            sealed,
            master.seal_secret("whk_1", b"whsec_abcdefghijklmnop")
        );
        assert!(
            !sealed.windows(6).any(|w| w == b"whsec_"),
            "the secret is not in the clear"
        );
        assert_eq!(
            &master.open_secret("whk_1", &sealed).unwrap()[..],
            b"whsec_abcdefghijklmnop"
        );
        assert_eq!(
            master.open_secret("whk_2", &sealed).unwrap_err(),
            KeyError::SealBroken
        );
        let other = MasterKey::from_bytes([8; 32]);
        assert_eq!(
            other.open_secret("whk_1", &sealed).unwrap_err(),
            KeyError::SealBroken
        );
        let mut altered = sealed.clone();
        altered[13] ^= 1;
        assert_eq!(
            master.open_secret("whk_1", &altered).unwrap_err(),
            KeyError::SealBroken
        );
        assert_eq!(
            master.open_secret("whk_1", &sealed[..20]).unwrap_err(),
            KeyError::SealBroken
        );
    }

    #[test]
    fn master_keys_parse_from_base64_of_32_bytes() {
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let a = MasterKey::from_base64(b64).unwrap();
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let b = MasterKey::from_bytes(bytes);
        assert_eq!(a.seal_seed("k", &seed(3)), b.seal_seed("k", &seed(3)));
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::InvalidMasterKey
        );
        assert_eq!(format!("{a:?}"), "MasterKey([redacted])");
    }
}
