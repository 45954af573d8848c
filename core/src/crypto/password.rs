//! Passwords of management users: Argon2id (RFC 9106) PHC strings.
//!
//! The salt comes from the host's RNG (16 bytes), like every other random input of this crate.
//! Parameters are Argon2's defaults (19 MiB, 2 passes, 1 lane, the OWASP minimum for
//! Argon2id); they are written into each PHC string, so stronger ones later still verify the
//! old hashes. Hashing takes tens of milliseconds by design: hosts run it off their async
//! workers.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted password, in bytes (hashing cost grows with it).
pub const MAX_PASSWORD_LEN: usize = 256;

/// A password hash as stored: an Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Hashes `password` with a fresh salt from `rng`.
    pub fn new(password: &str, rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let hash = Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .unwrap_or_else(|_| unreachable!("16-byte salts and default parameters are valid"));
        Self(hash.to_string())
    }

    /// A stored PHC string, as read back from a store.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the one hashed (the comparison is constant-time). A stored string
    /// that is not a valid PHC string matches nothing.
    pub fn verify(&self, password: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), self.0.as_str())
            .is_ok()
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_PASSWORD_LEN`] characters.
    #[error("a password must be at least {MIN_PASSWORD_LEN} characters long")]
    TooShort,
    /// More than [`MAX_PASSWORD_LEN`] bytes.
    #[error("a password must be at most {MAX_PASSWORD_LEN} bytes long")]
    TooLong,
}

/// Checks a new password's length (no composition rules: length is what counts, NIST SP
/// 800-63B).
///
/// # Errors
///
/// [`PasswordError`] when it is too short or too long.
pub fn check_new_password(password: &str) -> Result<Zeroizing<String>, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(Zeroizing::new(password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn hashes_verify_only_their_password() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let h = PasswordHash::new("correct horse battery", &mut rng);
        assert!(
            h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.as_str()
        );
        assert!(h.verify("correct horse battery"));
        assert!(!h.verify("correct horse batterY"));
        assert!(!h.verify(""));
        // A fresh salt each time; the stored form reads back.
        let again = PasswordHash::new("correct horse battery", &mut rng);
        assert_ne!(h, again);
        assert!(PasswordHash::from_stored(h.as_str().to_owned()).verify("correct horse battery"));
        assert!(!PasswordHash::from_stored("not a phc string".into()).verify("x"));
        assert!(!format!("{h:?}").contains("argon2"));
    }

    #[test]
    fn new_passwords_are_checked_for_length() {
        assert_eq!(
            check_new_password("short").unwrap_err(),
            PasswordError::TooShort
        );
        assert_eq!(
            check_new_password("ééééééééééé").unwrap_err(),
            PasswordError::TooShort,
            "characters are counted, not bytes"
        );
        assert!(check_new_password("twelve chars").is_ok());
        assert_eq!(
            check_new_password(&"x".repeat(257)).unwrap_err(),
            PasswordError::TooLong
        );
    }
}
