//! `entry verify <id>`: checks a stored recording, byte for byte as stored, against the
//! SHA-256 and size its session row recorded when it was stored. Exits 0 when they match,
//! 1 on a mismatch or an error.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::ServerArgs;
use crate::client::api::ApiClient;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Session id.
    id: String,
}

/// What a check of one recording found. (Signatures, once recordings are signed, belong
/// here too.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub session_id: String,
    /// From the session row.
    pub expected_sha256: String,
    pub expected_size: Option<u64>,
    /// Of the stored object.
    pub actual_sha256: String,
    pub actual_size: u64,
}

impl Verification {
    pub fn matches(&self) -> bool {
        self.actual_sha256.eq_ignore_ascii_case(&self.expected_sha256)
            && self.expected_size.is_none_or(|size| size == self.actual_size)
    }

    /// One line: `ok <id> sha256=… size=…`, or `MISMATCH <id> …` with both sides.
    pub fn report(&self) -> String {
        if self.matches() {
            return format!("ok {} sha256={} size={}", self.session_id, self.actual_sha256, self.actual_size);
        }
        let expected_size = self.expected_size.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
        format!(
            "MISMATCH {} expected sha256={} size={} stored sha256={} size={}",
            self.session_id, self.expected_sha256, expected_size, self.actual_sha256, self.actual_size
        )
    }
}

pub async fn run(args: Args) -> u8 {
    let verified = match args.server.client() {
        Ok(client) => verify(&client, &args.id).await,
        Err(error) => Err(error),
    };
    match verified {
        Ok(verification) => {
            println!("{}", verification.report());
            if verification.matches() { 0 } else { 1 }
        }
        Err(error) => {
            eprintln!("entry: {error:#}");
            1
        }
    }
}

/// Fetches the session's row and its stored object, and compares them.
pub async fn verify(client: &ApiClient, id: &str) -> anyhow::Result<Verification> {
    let row = client.session(id).await?;
    let Some(expected_sha256) = row.recording_sha256.clone() else {
        match row.recording_location {
            None => bail!("session {} has no stored recording (status {})", row.id, row.status.as_str()),
            Some(_) => bail!("session {} has a recording but no recorded SHA-256", row.id),
        }
    };
    let expected_size = row.recording_size.and_then(|size| u64::try_from(size).ok());
    let mut download = client.recording(&row.id, true).await?;
    let mut hasher = Sha256::new();
    let mut actual_size = 0u64;
    while let Some(chunk) = download.chunk().await.context("downloading the stored recording")? {
        hasher.update(&chunk);
        actual_size += chunk.len() as u64;
    }
    Ok(Verification {
        session_id: row.id,
        expected_sha256,
        expected_size,
        actual_sha256: hex::encode(hasher.finalize()),
        actual_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        let mut v = Verification {
            session_id: "s1".into(),
            expected_sha256: "AB".into(),
            expected_size: Some(3),
            actual_sha256: "ab".into(),
            actual_size: 3,
        };
        assert_eq!(v.report(), "ok s1 sha256=ab size=3");
        v.actual_size = 4;
        assert!(!v.matches());
        assert_eq!(v.report(), "MISMATCH s1 expected sha256=AB size=3 stored sha256=ab size=4");
        v.expected_size = None;
        assert!(v.matches());
        v.actual_sha256 = "cd".into();
        assert_eq!(v.report(), "MISMATCH s1 expected sha256=AB size=? stored sha256=cd size=4");
    }
}
