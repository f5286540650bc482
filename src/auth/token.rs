//! Access token format, generation and hashing.
//!
//! A token reads `<id>.<secret>`: the id (`tk` + 10 base32 characters) finds the row, the
//! secret (32 random bytes, base64url) is checked against its stored hash: `$sha256$<hex>`, the
//! SHA-256 of the secret. A 256-bit random secret cannot be guessed or searched for offline, so
//! a slow password hash adds nothing but cost (argon2id took 19.6 ms and 19 MiB per check, paid
//! at every session start); tokens hashed with argon2id by earlier versions are still checked
//! that way, and rehashed on their first use. Guarantees: the secret is never stored or logged;
//! `Debug` of a [`Token`] hides it; a stored hash is compared in constant time.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

const ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// How a SHA-256 secret hash begins.
const SHA256_PREFIX: &str = "$sha256$";

/// A token as a client presents it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    id: String,
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}.***)", self.id)
    }
}

impl Token {
    /// A fresh random token.
    pub fn generate() -> Self {
        Self { id: random_id("tk"), secret: random_secret() }
    }

    /// Splits a presented token; `None` when it is not in Entry's format.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = split_secret(text, "tk")?;
        Some(Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// The public part.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole token, to show once to its owner.
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The hash of the secret to store: `$sha256$` and its SHA-256 in hex.
    pub fn hash(&self) -> String {
        sha256_hash(&self.secret)
    }

    /// The secret part (for the verified-secret cache only; never log it).
    pub(super) fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether a stored hash is an argon2id one (slow to check: a few a time, off the async
    /// threads; rehashed once it matched).
    pub fn is_slow_hash(hash: &str) -> bool {
        !hash.starts_with(SHA256_PREFIX)
    }

    /// Whether the secret matches a stored hash (SHA-256 or argon2id). A malformed hash never
    /// matches.
    pub fn verify(&self, hash: &str) -> bool {
        if hash.starts_with(SHA256_PREFIX) {
            return matches_sha256(&self.secret, hash);
        }
        PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(self.secret.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    }
}

/// A fresh random id: `prefix` and 10 base32 characters.
pub(super) fn random_id(prefix: &str) -> String {
    // ThreadRng is a CSPRNG seeded from the operating system.
    let mut rng = rand::rng();
    let id: String = (0..10).map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())])).collect();
    format!("{prefix}{id}")
}

/// A fresh random secret: 32 bytes, base64url (43 characters).
pub(super) fn random_secret() -> String {
    let secret: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(secret)
}

/// Whether `text` is `<prefix><id>.<secret>` as [`random_id`] and [`random_secret`] make them;
/// split when it is.
pub(super) fn split_secret<'a>(text: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let (id, secret) = text.trim().split_once('.')?;
    let secret_ok = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (is_id(id, prefix) && secret_ok).then_some((id, secret))
}

/// Whether `id` is `<prefix>` and 10 base32 characters, as [`random_id`] makes them.
pub(super) fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| rest.len() == 10 && rest.bytes().all(|b| ID_ALPHABET.contains(&b)))
}

/// The hash of a secret to store: `$sha256$` and its SHA-256 in hex.
pub(super) fn sha256_hash(secret: &str) -> String {
    use sha2::Digest;
    format!("{SHA256_PREFIX}{}", hex::encode(sha2::Sha256::digest(secret.as_bytes())))
}

/// Whether `secret` hashes to the stored `hash` (a `$sha256$` one), compared in constant time:
/// every byte is compared whatever the first difference.
pub(super) fn matches_sha256(secret: &str, hash: &str) -> bool {
    let expected = sha256_hash(secret);
    expected.len() == hash.len() && expected.bytes().zip(hash.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_verify() {
        let token = Token::generate();
        let text = token.reveal();
        let parsed = Token::parse(&text).unwrap();
        assert_eq!(parsed, token);
        let hash = token.hash();
        assert!(hash.starts_with("$sha256$") && hash.len() == 8 + 64 && !Token::is_slow_hash(&hash));
        assert!(!hash.contains(&token.secret));
        assert!(parsed.verify(&hash));
        assert!(!Token::generate().verify(&hash));
        assert!(!token.verify("not a hash"));
        assert!(!token.verify("$sha256$"));
        assert!(!token.verify(&hash[..hash.len() - 1]));

        // A token an earlier version hashed with argon2id still verifies.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let legacy = Argon2::default().hash_password(token.secret.as_bytes(), &salt).unwrap().to_string();
        assert!(Token::is_slow_hash(&legacy));
        assert!(parsed.verify(&legacy));
        assert!(!Token::generate().verify(&legacy));
        assert!(!format!("{token:?}").contains(&token.secret));
    }

    #[test]
    fn foreign_formats_are_not_tokens() {
        for bad in [
            "",
            "abc",
            "tk.x",
            "tkaaaaaaaaaa.short",
            "Bearer x",
            "tkaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
    }
}
