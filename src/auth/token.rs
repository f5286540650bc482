//! Access token format, generation and hashing.
//!
//! A token reads `<id>.<secret>`: the id (`tk` + 10 base32 characters) finds the row, the
//! secret (32 random bytes, base64url) is checked against its argon2id hash. Guarantees: the
//! secret is never stored or logged; `Debug` of a [`Token`] hides it.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

const ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

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
        // ThreadRng is a CSPRNG seeded from the operating system.
        let mut rng = rand::rng();
        let id: String = (0..10).map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())])).collect();
        let secret: [u8; 32] = rng.random();
        Self { id: format!("tk{id}"), secret: URL_SAFE_NO_PAD.encode(secret) }
    }

    /// Splits a presented token; `None` when it is not in Entry's format.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().split_once('.')?;
        let id_ok = id
            .strip_prefix("tk")
            .is_some_and(|rest| rest.len() == 10 && rest.bytes().all(|b| ID_ALPHABET.contains(&b)));
        let secret_ok =
            secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (id_ok && secret_ok).then(|| Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    /// The public part.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The whole token, to show once to its owner.
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The argon2id hash of the secret, in PHC format.
    pub fn hash(&self) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Ok(Argon2::default().hash_password(self.secret.as_bytes(), &salt)?.to_string())
    }

    /// Whether the secret matches a stored hash. A malformed hash never matches.
    /// The secret part (for the verified-secret cache only; never log it).
    pub(super) fn secret(&self) -> &str {
        &self.secret
    }

    pub fn verify(&self, hash: &str) -> bool {
        PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(self.secret.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    }
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
        let hash = token.hash().unwrap();
        assert!(!hash.contains(&token.secret));
        assert!(parsed.verify(&hash));
        assert!(!Token::generate().verify(&hash));
        assert!(!token.verify("not a hash"));
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
