//! `entry export ID -o DIR`: writes what an outside auditor needs to check one session with
//! standard tools only: `session.cast.gz` (the recording exactly as stored), `manifest.json` and
//! `manifest.json.minisig` (its signed manifest), `minisign.pub` (the public key) and
//! `SHA256SUMS`; then `minisign -Vm manifest.json -P <key>` and `sha256sum -c SHA256SUMS` check
//! it, and the manifest's `recording.sha256` is the cast's line of `SHA256SUMS`.
//!
//! Guarantees: nothing is exported that does not verify here first (the signature against the
//! given or the gateway's key, the recording against the manifest); files are written to
//! `.partial` names and renamed at the end, so a failed export leaves no file that looks whole;
//! an existing file in DIR is never overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::ServerArgs;
use super::verify::KeyArgs;
use crate::client::api::ApiClient;
use crate::signing::manifest::Manifest;

/// The files an export writes, in `SHA256SUMS` order first.
const CAST: &str = "session.cast.gz";
const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.json.minisig";
const PUBLIC_KEY: &str = "minisign.pub";
const SUMS: &str = "SHA256SUMS";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Session id.
    id: String,
    /// Directory to write to (created if missing; files in it are never overwritten).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let written = export(&client, &args.id, &args.output, &args.key).await?;
    for (name, sha256) in written {
        println!("{sha256}  {}", args.output.join(name).display());
    }
    Ok(())
}

/// Exports session `id` to `dir`; returns each file written with its SHA-256.
pub async fn export(
    client: &ApiClient,
    id: &str,
    dir: &Path,
    key: &KeyArgs,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in [CAST, MANIFEST, SIGNATURE, PUBLIC_KEY, SUMS] {
        if dir.join(name).exists() {
            bail!("{} already exists; export to an empty directory", dir.join(name).display());
        }
    }
    let (public_key, _) = key.key(client).await?;
    let manifest_bytes = client.manifest(id).await.context("fetching the manifest")?;
    let signature = client.manifest_signature(id).await.context("fetching the manifest's signature")?;
    public_key
        .verify(&manifest_bytes, &String::from_utf8_lossy(&signature))
        .context("the manifest's signature does not verify; nothing exported")?;
    let manifest = Manifest::parse(&manifest_bytes)?;

    let mut files = Files { dir, partial: Vec::new() };
    let cast_sha256 = files.download(client, id).await?;
    let signed = &manifest.recording.sha256;
    if !cast_sha256.eq_ignore_ascii_case(signed) {
        bail!("the stored recording has sha256 {cast_sha256}, its signed manifest says {signed}; nothing exported");
    }
    let manifest_sha256 = files.write(MANIFEST, &manifest_bytes)?;
    let signature_sha256 = files.write(SIGNATURE, &signature)?;
    let key_sha256 = files.write(PUBLIC_KEY, public_key.file_text().as_bytes())?;
    let sums = format!("{cast_sha256}  {CAST}\n{manifest_sha256}  {MANIFEST}\n");
    let sums_sha256 = files.write(SUMS, sums.as_bytes())?;
    files.commit()?;
    Ok(vec![
        (CAST, cast_sha256),
        (MANIFEST, manifest_sha256),
        (SIGNATURE, signature_sha256),
        (PUBLIC_KEY, key_sha256),
        (SUMS, sums_sha256),
    ])
}

/// Files written under `.partial` names until [`Files::commit`]; removed if dropped before.
struct Files<'a> {
    dir: &'a Path,
    partial: Vec<&'static str>,
}

impl Files<'_> {
    fn partial_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.partial"))
    }

    fn write(&mut self, name: &'static str, bytes: &[u8]) -> anyhow::Result<String> {
        let path = self.partial_path(name);
        self.partial.push(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }

    /// Downloads the stored recording as `session.cast.gz`; returns its SHA-256.
    async fn download(&mut self, client: &ApiClient, id: &str) -> anyhow::Result<String> {
        let path = self.partial_path(CAST);
        self.partial.push(CAST);
        let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut download = client.recording(id, true).await.context("downloading the recording")?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = download.chunk().await.context("downloading the recording")? {
            hasher.update(&chunk);
            file.write_all(&chunk).with_context(|| format!("writing {}", path.display()))?;
        }
        file.sync_all()?;
        Ok(hex::encode(hasher.finalize()))
    }

    fn commit(mut self) -> anyhow::Result<()> {
        for name in std::mem::take(&mut self.partial) {
            let (from, to) = (self.partial_path(name), self.dir.join(name));
            std::fs::rename(&from, &to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    }
}

impl Drop for Files<'_> {
    fn drop(&mut self) {
        for name in &self.partial {
            let _ = std::fs::remove_file(self.partial_path(name));
        }
    }
}
