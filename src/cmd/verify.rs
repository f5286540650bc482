//! `entry verify <id>`: checks a stored recording, byte for byte as stored, against the SHA-256
//! and size its session row recorded, then against its signed manifest: the signature, the
//! object, the row, the command index and the link to its node's previous manifest.
//! `entry verify --chain` walks the nodes' chains of manifests ([`super::verify_chain`]). Exits
//! 0 when everything checks, 1 on any mismatch, unverifiable signature or error.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::ServerArgs;
use crate::client::api::ApiClient;
use crate::signing::PublicKey;
use crate::signing::check::{Evidence, Outcome, check};
use crate::signing::manifest::Manifest;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Session id.
    #[arg(required_unless_present = "chain", conflicts_with = "chain")]
    id: Option<String>,
    /// Walk the gateway nodes' chains of manifests instead: report gaps (deleted sessions),
    /// forks, broken links and manifests that are altered or unreadable.
    #[arg(long)]
    chain: bool,
    /// Only this node's chain (default: every node that signed manifests).
    #[arg(long, requires = "chain")]
    node: Option<String>,
    /// Only manifests signed at or after: RFC 3339, a date, or a duration ago (7d).
    #[arg(long, requires = "chain", value_parser = super::sessions::parse_time)]
    since: Option<i64>,
    #[command(flatten)]
    key: KeyArgs,
}

/// Which public key checks signatures.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The signing key's public half: minisign's base64 line (`RW…`) or a `.pub` file's path.
    /// Default: the one the gateway serves, which proves only that the gateway signed it.
    #[arg(long, env = "ENTRY_SIGNING_PUBLIC_KEY")]
    public_key: Option<String>,
}

impl KeyArgs {
    /// The key, and a line saying where it came from.
    pub async fn key(&self, client: &ApiClient) -> anyhow::Result<(PublicKey, String)> {
        match &self.public_key {
            Some(given) => {
                let path = std::path::Path::new(given);
                let text = if path.is_file() {
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
                } else {
                    given.clone()
                };
                let key = PublicKey::parse(&text).context("--public-key")?;
                let source = format!("key {} (given)", key.key_id());
                Ok((key, source))
            }
            None => {
                let view = client.signing_key().await.context("fetching the gateway's signing key")?;
                let key = PublicKey::parse(&view.public_key).context("the gateway's signing key")?;
                let source = format!("key {} (the gateway's; pin one with --public-key)", key.key_id());
                Ok((key, source))
            }
        }
    }
}

/// What a check of one recording against its session row found.
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
    let checked = match args.server.client() {
        Ok(client) => match &args.id {
            Some(id) => verify_session(&client, id, &args.key).await,
            None => super::verify_chain::verify_chains(&client, args.node.as_deref(), args.since, &args.key).await,
        },
        Err(error) => Err(error),
    };
    match checked {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            eprintln!("entry: {error:#}");
            1
        }
    }
}

/// Checks one session: its stored object against its row (the first line), then its manifest's
/// signature, the object, the row and the command index against the manifest, and the link to
/// its node's previous manifest. Prints a line per check; true when nothing is bad.
async fn verify_session(client: &ApiClient, id: &str, key: &KeyArgs) -> anyhow::Result<bool> {
    let row = match client.session(id).await {
        Ok(row) => Some(row),
        Err(error) if error.code() == Some("not_found") => None,
        Err(error) => return Err(error.into()),
    };
    let mut good = true;
    let object = match &row {
        Some(_) => {
            let verification = verify(client, id).await?;
            println!("{}", verification.report());
            good &= verification.matches();
            Ok((verification.actual_sha256, verification.actual_size))
        }
        None => Err("no session row (deleted, or expired by retention)".to_owned()),
    };
    let manifest = match client.manifest(id).await {
        Ok(bytes) => bytes,
        Err(error) => {
            println!("BAD {id}: no signed manifest ({error})");
            return Ok(false);
        }
    };
    let signature = client.manifest_signature(id).await.context("fetching the manifest's signature")?;
    let (public_key, source) = key.key(client).await?;
    println!("using {source}");
    let commands = match &row {
        Some(_) => client.commands(id).await.map(|list| list.commands).map_err(|e| e.to_string()),
        None => Err("no session row".to_owned()),
    };
    let previous_session = Manifest::parse(&manifest).ok().and_then(|m| m.previous).map(|link| link.session);
    let previous = match previous_session {
        Some(session) => Some(client.manifest(&session).await.map(|b| b.to_vec()).map_err(|e| e.to_string())),
        None => None,
    };
    let evidence = Evidence {
        manifest: &manifest,
        signature: &String::from_utf8_lossy(&signature),
        key: &public_key,
        object,
        row: row.as_ref().ok_or_else(|| "no session row (deleted, or expired by retention)".to_owned()),
        commands: commands.as_deref().map_err(Clone::clone),
        previous,
    };
    let (manifest, mut outcomes) = check(&evidence);
    if let (None, Some(manifest)) = (&row, &manifest) {
        outcomes.push(gone_row(client, id, manifest).await);
    }
    for outcome in &outcomes {
        println!("{}", outcome.line());
        good &= !outcome.is_bad();
    }
    Ok(good)
}

/// Why a signed session has no row: expired by retention (its manifest row says when), or
/// deleted outside Entry.
async fn gone_row(client: &ApiClient, id: &str, manifest: &Manifest) -> Outcome {
    let listed = client.manifest_chain(&manifest.node, 0, manifest.seq - 1).await;
    let entry = match listed {
        Ok(page) => page.manifests.into_iter().find(|entry| entry.session_id == id),
        Err(error) => return Outcome::Skipped(format!("session row: gone; its chain entry cannot be read: {error}")),
    };
    match entry.and_then(|entry| entry.expired_at) {
        Some(at) => {
            let when = chrono::DateTime::from_timestamp_millis(at).map(|t| t.to_rfc3339()).unwrap_or_default();
            Outcome::Ok(format!("session row: expired by retention at {when}; the manifest stays"))
        }
        None => Outcome::Bad("session row: gone, and retention did not expire it: deleted outside Entry".into()),
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
