//! Remembers, for a short while, which token secrets passed the argon2id check, and bounds how
//! many argon2id checks run at once.
//!
//! argon2id is slow and takes 19 MiB of memory on purpose. Without this, every API request and
//! every session paid for one, and a burst of 100 sessions held 100 of them at once (about
//! 15 MiB of gateway memory per session stayed behind in the allocator). Guarantees: a secret
//! is remembered only as a keyed SHA-256 (the key is random per process), only together with
//! the stored hash it matched (a re-issued token does not match), and at most [`TTL`]; the
//! token row is still read on every request, so revocation and role changes take effect at
//! once; at most [`MAX_ENTRIES`] are kept; at most `permits` argon2id checks run at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// How long a verified secret is trusted without argon2id.
pub const TTL: Duration = Duration::from_secs(60);
/// Most tokens remembered; the oldest half is forgotten beyond it.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    digest: [u8; 32],
    stored_hash: String,
    verified_at: Instant,
}

/// Recently verified token secrets, and the argon2id limit.
pub struct VerifiedTokens {
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
    argon2: Semaphore,
}

impl VerifiedTokens {
    /// A cache that lets `permits` argon2id checks run at once.
    pub fn new(permits: usize) -> Self {
        Self { key: rand::random(), entries: Mutex::new(HashMap::new()), argon2: Semaphore::new(permits.max(1)) }
    }

    /// Whether `secret` of token `id` matched `stored_hash` less than [`TTL`] ago.
    pub fn recently_verified(&self, id: &str, secret: &str, stored_hash: &str) -> bool {
        let digest = self.digest(secret);
        let Ok(entries) = self.entries.lock() else { return false };
        entries.get(id).is_some_and(|entry| {
            entry.digest == digest && entry.stored_hash == stored_hash && entry.verified_at.elapsed() < TTL
        })
    }

    /// Remembers that `secret` of token `id` matched `stored_hash` just now.
    pub fn remember(&self, id: &str, secret: &str, stored_hash: &str) {
        let entry =
            Entry { digest: self.digest(secret), stored_hash: stored_hash.to_owned(), verified_at: Instant::now() };
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.verified_at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = entries.values().map(|entry| entry.verified_at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                entries.retain(|_, entry| entry.verified_at > cut);
            }
        }
        entries.insert(id.to_owned(), entry);
    }

    /// Runs the argon2id check `verify` when a permit is free (off the async threads).
    pub async fn verify(&self, verify: impl FnOnce() -> bool + Send + 'static) -> bool {
        let Ok(_permit) = self.argon2.acquire().await else { return false };
        tokio::task::spawn_blocking(verify).await.unwrap_or(false)
    }

    fn digest(&self, secret: &str) -> [u8; 32] {
        Sha256::new().chain_update(self.key).chain_update(secret.as_bytes()).finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_and_stored_hash_are_remembered() {
        let cache = VerifiedTokens::new(2);
        assert!(!cache.recently_verified("tk1", "secret", "$argon2id$a"));
        cache.remember("tk1", "secret", "$argon2id$a");
        assert!(cache.recently_verified("tk1", "secret", "$argon2id$a"));
        assert!(!cache.recently_verified("tk1", "secreT", "$argon2id$a"), "another secret");
        assert!(!cache.recently_verified("tk1", "secret", "$argon2id$b"), "a re-issued token");
        assert!(!cache.recently_verified("tk2", "secret", "$argon2id$a"), "another token");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifiedTokens::new(1);
        for i in 0..(MAX_ENTRIES + 10) {
            cache.remember(&format!("tk{i}"), "s", "h");
        }
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len}");
        assert!(cache.recently_verified(&format!("tk{}", MAX_ENTRIES + 9), "s", "h"), "the newest stays");
    }

    #[tokio::test]
    async fn checks_beyond_the_permits_wait() {
        let cache = std::sync::Arc::new(VerifiedTokens::new(1));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let checks = (0..4).map(|_| {
            let (cache, running, most) = (cache.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                cache
                    .verify(move || {
                        let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        true
                    })
                    .await
            })
        });
        for check in checks.collect::<Vec<_>>() {
            assert!(check.await.unwrap());
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
