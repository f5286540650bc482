//! `entry recording download <id> [-o FILE|-]`: saves a session's recording (plain asciicast,
//! or with `--raw` the gzip object exactly as stored) from a gateway.
//!
//! Guarantees: a file appears under its name only complete (written to `FILE.partial`, then
//! renamed); a failed download leaves no file behind.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use super::ServerArgs;
use crate::client::api::Download;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Download a recording.
    Download {
        /// Session id.
        id: String,
        /// Where to write it; `-` for stdout (default: `<id>.cast`, or `<id>.cast.gz` with --raw).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The stored gzip object, byte for byte, instead of the asciicast text.
        #[arg(long)]
        raw: bool,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.action {
        Action::Download { id, output, raw } => {
            let mut download = client.recording(&id, raw).await?;
            let extension = if raw { "cast.gz" } else { "cast" };
            let output = output.unwrap_or_else(|| PathBuf::from(format!("{id}.{extension}")));
            if output == Path::new("-") {
                let mut stdout = tokio::io::stdout();
                copy(&mut download, &mut stdout).await?;
                return Ok(());
            }
            let bytes = save(&mut download, &output).await?;
            eprintln!("wrote {} ({bytes} bytes)", output.display());
        }
    }
    Ok(())
}

/// Writes the download to `path` through a temporary file; returns the bytes written.
async fn save(download: &mut Download, path: &Path) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = async {
        let mut file =
            tokio::fs::File::create(&partial).await.with_context(|| format!("cannot create {}", partial.display()))?;
        let bytes = copy(download, &mut file).await?;
        file.sync_all().await.with_context(|| format!("writing {}", partial.display()))?;
        tokio::fs::rename(&partial, path).await.with_context(|| format!("cannot create {}", path.display()))?;
        Ok(bytes)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}

/// Copies the download to `out`; returns the bytes copied.
async fn copy(download: &mut Download, out: &mut (impl AsyncWriteExt + Unpin)) -> anyhow::Result<u64> {
    let mut bytes = 0u64;
    while let Some(chunk) = download.chunk().await.context("downloading the recording")? {
        out.write_all(&chunk).await.context("writing the recording")?;
        bytes += chunk.len() as u64;
    }
    out.flush().await.context("writing the recording")?;
    Ok(bytes)
}
