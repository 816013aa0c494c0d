//! The local key that seals private state on disk, derived from the user's password with
//! argon2id.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Salt length for the key derivation.
pub const SALT_BYTES: usize = 16;

/// Why a local key could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum KeyDerivationError {
    /// argon2 refused its inputs.
    #[error("key derivation failed: {reason}")]
    Argon2 {
        /// What argon2 said.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("no randomness available: {reason}")]
    Random {
        /// What failed.
        reason: String,
    },
}

/// A 32-byte key sealing the Olm account and sessions. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LocalKey([u8; 32]);

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey(<32 bytes>)")
    }
}

impl LocalKey {
    /// Derives the key from a password and salt with argon2id (m = 19 MiB, t = 2, p = 1:
    /// OWASP's recommended minimum, ~25 ms here).
    pub fn derive(password: &str, salt: &[u8]) -> Result<Self, KeyDerivationError> {
        let params =
            Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| KeyDerivationError::Argon2 {
                reason: e.to_string(),
            })?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), salt, &mut out)
            .map_err(|e| KeyDerivationError::Argon2 {
                reason: e.to_string(),
            })?;
        Ok(Self(out))
    }

    /// A fresh random salt.
    pub fn new_salt() -> Result<Vec<u8>, KeyDerivationError> {
        let mut salt = vec![0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| KeyDerivationError::Random {
            reason: e.to_string(),
        })?;
        Ok(salt)
    }

    /// Wraps raw key bytes (tests and key import).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// SHA-256 of `label`, this key and `parts`, in that order: values only this profile
    /// can make (the ids of its group notices), without the key leaving this crate.
    pub fn keyed_digest(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(label);
        hash.update(self.0);
        for part in parts {
            hash.update(part);
        }
        hash.finalize().into()
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_password_and_salt_give_the_same_key_and_others_differ() {
        let salt = [7u8; SALT_BYTES];
        let a = LocalKey::derive("correct horse", &salt).expect("derives");
        let b = LocalKey::derive("correct horse", &salt).expect("derives");
        let c = LocalKey::derive("correct horsf", &salt).expect("derives");
        let d = LocalKey::derive("correct horse", &[8u8; SALT_BYTES]).expect("derives");
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_ne!(a.bytes(), d.bytes());
        assert_eq!(format!("{a:?}"), "LocalKey(<32 bytes>)");
    }

    #[test]
    fn a_keyed_digest_is_pinned_since_stored_notice_ids_are_made_from_it() {
        let key = LocalKey::from_bytes([7; 32]);
        let digest = key.keyed_digest(b"uchat-group-notice-v2", &[&[1; 16], &5u64.to_be_bytes()]);
        assert_eq!(
            hex::encode(digest),
            "704c2211208bf65eafba409037e9b4fdcb23565c3459d48b147e8d4cf215962c"
        );
        let other = LocalKey::from_bytes([8; 32]);
        assert_ne!(
            other.keyed_digest(b"uchat-group-notice-v2", &[&[1; 16], &5u64.to_be_bytes()]),
            digest
        );
    }
}
