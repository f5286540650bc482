//! Signed recordings: each stored recording gets a manifest (its object's SHA-256 and size, its
//! session row's facts, its command index's SHA-256, and the SHA-256 of its gateway node's
//! previous manifest) signed with the deployment's minisign key, stored beside it. `entry
//! verify` checks one session or walks a node's chain; `entry export` writes what an outside
//! auditor checks with `minisign -V` and `sha256sum -c` alone.
//!
//! Guarantees: the gateway signs only what it stored itself, after the session row is final;
//! the public key is all a verifier needs; every check compares the bytes as stored.

pub mod chain;
pub mod check;
pub mod key;
pub mod manifest;
pub mod sealer;

pub use key::{KeyError, PublicKey, SigningKey};
pub use manifest::Manifest;
pub use sealer::{MANIFEST_SUFFIX, SIGNATURE_SUFFIX, Sealer};

use std::path::Path;

/// Loads the key at `key_file`; when it is missing and `create_if_missing` (the default path of
/// a fresh data directory), makes one and logs its public key.
pub fn load_or_create(key_file: &Path, create_if_missing: bool) -> Result<SigningKey, KeyError> {
    match SigningKey::load(key_file) {
        Err(KeyError::Missing(_)) if create_if_missing => {
            let key = SigningKey::create(key_file)?;
            tracing::info!(
                key_file = %key_file.display(),
                key.id = %key.public().key_id(),
                public_key = %key.public().base64(),
                "created this deployment's signing key; verifiers need its public key (`entry keys show`)"
            );
            Ok(key)
        }
        loaded => loaded,
    }
}
