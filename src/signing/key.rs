//! The deployment's ed25519 signing key, in minisign's formats: the secret key file (unencrypted:
//! the gateway signs unattended), its public key (`<key file>.pub`, and the one-line base64 form
//! `minisign -P` takes), and signatures that Debian's `minisign -V` checks.
//!
//! Guarantees: a key file is created 0600 and never overwritten; the secret key is never
//! printed, logged or shown by `Debug`; a signature is checked against its key id before its
//! bytes, and only prehashed (current) minisign signatures are accepted.

use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why a key could not be made, read or used, or a signature did not verify.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {0} already exists; it is never overwritten")]
    Exists(PathBuf),
    #[error("signing key file {0} does not exist: create it with `entry keys create`")]
    Missing(PathBuf),
    #[error("cannot write the signing key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read the signing key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an unencrypted minisign secret key: {detail}")]
    BadSecret { path: PathBuf, detail: String },
    #[error("not a minisign public key: {0}")]
    BadPublic(String),
    #[error("not a minisign signature: {0}")]
    BadSignature(String),
    #[error("signed by key {signed_by}, not by key {expected}")]
    OtherKey { signed_by: String, expected: String },
    #[error("the signature does not match: {0}")]
    Mismatch(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The secret key and its public half.
pub struct SigningKey {
    secret: minisign::SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.public.key_id()).finish_non_exhaustive()
    }
}

/// The public file written beside a secret key file: `<key file>.pub`.
pub fn public_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

impl SigningKey {
    /// Makes a new key pair and writes it to `key_file` (0600, refused if it exists) and
    /// `<key_file>.pub`, creating the directory (0700) if needed.
    pub fn create(key_file: &Path) -> Result<Self, KeyError> {
        if key_file.exists() {
            return Err(KeyError::Exists(key_file.to_owned()));
        }
        let pair = minisign::KeyPair::generate_unencrypted_keypair().map_err(|e| KeyError::Sign(e.to_string()))?;
        let key = Self { public: PublicKey { key: pair.pk }, secret: pair.sk };
        let comment = format!("Entry signing key {}", key.public.key_id());
        let secret_text = key.secret.to_box(Some(&comment)).map_err(|e| KeyError::Sign(e.to_string()))?.into_string();
        let write = |path: &Path, text: &str, create_new: bool| -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::store::files::create_private_dirs(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).mode(if create_new { 0o600 } else { 0o644 });
            if create_new {
                options.create_new(true)
            } else {
                options.create(true).truncate(true)
            };
            options.open(path)?.write_all(text.as_bytes())
        };
        write(key_file, &secret_text, true).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(key_file.to_owned()),
            _ => KeyError::Write { path: key_file.to_owned(), source },
        })?;
        let public_path = public_key_path(key_file);
        write(&public_path, &key.public.file_text(), false)
            .map_err(|source| KeyError::Write { path: public_path, source })?;
        Ok(key)
    }

    /// Reads the secret key at `key_file`.
    pub fn load(key_file: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(key_file).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => KeyError::Missing(key_file.to_owned()),
            _ => KeyError::Read { path: key_file.to_owned(), source },
        })?;
        let bad = |detail: String| KeyError::BadSecret { path: key_file.to_owned(), detail };
        let secret = minisign::SecretKeyBox::from_string(&text)
            .and_then(|b| b.into_unencrypted_secret_key())
            .map_err(|e| bad(e.to_string()))?;
        let public = minisign::PublicKey::from_secret_key(&secret).map_err(|e| bad(e.to_string()))?;
        Ok(Self { secret, public: PublicKey { key: public } })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A minisign signature of `bytes` (the text of a `.minisig` file) with `trusted_comment`
    /// (signed too; one line).
    pub fn sign(&self, bytes: &[u8], trusted_comment: &str) -> Result<String, KeyError> {
        let untrusted = format!("signature from Entry signing key {}", self.public.key_id());
        let signature = minisign::sign(
            Some(&self.public.key),
            &self.secret,
            Cursor::new(bytes),
            Some(&trusted_comment.replace(['\r', '\n'], " ")),
            Some(&untrusted),
        )
        .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(signature.into_string())
    }
}

/// A public key: what verifies signatures.
#[derive(Clone)]
pub struct PublicKey {
    key: minisign::PublicKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// Reads a public key from its base64 line (`RW…`, as `minisign -P` takes it) or from a
    /// whole `.pub` file's text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
            .ok_or_else(|| KeyError::BadPublic("empty".into()))?;
        let key = minisign::PublicKey::from_base64(line).map_err(|e| KeyError::BadPublic(e.to_string()))?;
        Ok(Self { key })
    }

    /// The base64 line (`minisign -P <this>`).
    pub fn base64(&self) -> String {
        self.key.to_base64()
    }

    /// The key id as minisign prints it (16 hex digits).
    pub fn key_id(&self) -> String {
        key_id(self.key.keynum())
    }

    /// The text of a minisign `.pub` file.
    pub fn file_text(&self) -> String {
        format!("untrusted comment: minisign public key {}\n{}\n", self.key_id(), self.base64())
    }

    /// Checks `signature` (a `.minisig` file's text) over `bytes`; returns its trusted comment.
    pub fn verify(&self, bytes: &[u8], signature: &str) -> Result<String, KeyError> {
        let signature =
            minisign::SignatureBox::from_string(signature).map_err(|e| KeyError::BadSignature(e.to_string()))?;
        if signature.keynum() != self.key.keynum() {
            return Err(KeyError::OtherKey { signed_by: key_id(signature.keynum()), expected: self.key_id() });
        }
        minisign::verify(&self.key, &signature, Cursor::new(bytes), true, false, false)
            .map_err(|e| KeyError::Mismatch(e.to_string()))?;
        signature.trusted_comment().map_err(|e| KeyError::BadSignature(e.to_string()))
    }
}

/// minisign prints a key number as the little-endian u64 it holds, in upper-case hex.
fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(keynum) {
        *to = *from;
    }
    format!("{:016X}", u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_key_signs_what_its_public_key_verifies_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let key = SigningKey::create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.public().base64(), key.public().base64());
        let public = PublicKey::parse(&std::fs::read_to_string(public_key_path(&path)).unwrap()).unwrap();
        assert_eq!(public.base64(), key.public().base64());

        let signature = loaded.sign(b"manifest bytes", "session:s1 seq:1").unwrap();
        assert_eq!(public.verify(b"manifest bytes", &signature).unwrap(), "session:s1 seq:1");
        assert!(matches!(public.verify(b"manifest bytez", &signature), Err(KeyError::Mismatch(_))));
        let other = SigningKey::create(&dir.path().join("other.key")).unwrap();
        assert!(matches!(other.public().verify(b"manifest bytes", &signature), Err(KeyError::OtherKey { .. })));
        assert!(matches!(public.verify(b"manifest bytes", "garbage"), Err(KeyError::BadSignature(_))));
    }

    #[test]
    fn an_existing_key_file_is_never_overwritten_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let first = SigningKey::create(&path).unwrap();
        assert!(matches!(SigningKey::create(&path), Err(KeyError::Exists(_))));
        assert_eq!(SigningKey::load(&path).unwrap().public().key_id(), first.public().key_id());
        assert!(matches!(SigningKey::load(&dir.path().join("none.key")), Err(KeyError::Missing(_))));
        std::fs::write(dir.path().join("bad.key"), "not a key").unwrap();
        assert!(matches!(SigningKey::load(&dir.path().join("bad.key")), Err(KeyError::BadSecret { .. })));
    }

    #[test]
    fn debug_shows_the_key_id_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::create(&dir.path().join("k")).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public().key_id()), "{shown}");
        let secret_file = std::fs::read_to_string(dir.path().join("k")).unwrap();
        let secret_line = secret_file.lines().nth(1).unwrap();
        assert!(!shown.contains(&secret_line[..20]), "{shown}");
    }
}
