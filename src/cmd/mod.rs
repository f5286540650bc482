//! The subcommands of `entry`, one module each with a `run()`.

mod enter;
mod export;
mod index;
mod keys;
mod ls;
mod migrate;
mod play;
mod recording;
mod reviews;
mod search;
mod serve;
mod sessions;
mod shares;
mod tokens;
mod verify;
mod verify_chain;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::Serialize;

/// Entry: enter Docker containers through an audited gateway.
#[derive(Debug, Parser)]
#[command(name = "entry", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::Args),
    /// Open a shell (or run a command) in a container through a gateway.
    Enter(enter::Args),
    /// List the containers you may enter, on every engine of the gateway.
    Ls(ls::Args),
    /// Create, list and revoke access tokens (works while the gateway runs).
    Tokens(tokens::Args),
    /// Apply the store's migrations.
    Migrate(ConfigArgs),
    /// List recorded sessions and show one (through a gateway's API).
    Sessions(sessions::Args),
    /// Replay a session's recording on this terminal.
    Play(play::Args),
    /// Download a session's recording.
    Recording(recording::Args),
    /// Check a recording against its session row and its signed manifest, or walk the
    /// manifest chains (`--chain`).
    Verify(verify::Args),
    /// Write one session's recording, signed manifest, public key and SHA256SUMS to a
    /// directory, for an outside auditor's `minisign -V` and `sha256sum -c`.
    Export(export::Args),
    /// The deployment's signing key: create it, show its public key.
    Keys(keys::Args),
    /// Search commands and output across recorded sessions (through a gateway's API).
    Search(search::Args),
    /// Rebuild the command index from stored recordings (works on the store directly).
    Index(index::Args),
    /// Commands held by a `review` rule: list them, approve or deny one (through a gateway's API).
    Reviews(reviews::ReviewArgs),
    /// Commands that matched a command rule, newest first (through a gateway's API).
    Alerts(reviews::AlertArgs),
}

/// Flags of every command that talks to a gateway's API.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Gateway URL.
    #[arg(long, env = "ENTRY_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// Access token.
    #[arg(long, env = "ENTRY_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// PEM file of CA certificates to trust for an https:// gateway, besides the usual ones.
    #[arg(long, env = "ENTRY_CA", global = true)]
    ca: Option<PathBuf>,
}

impl ServerArgs {
    fn client(&self) -> anyhow::Result<crate::client::api::ApiClient> {
        let Some(token) = self.token.as_deref().filter(|t| !t.trim().is_empty()) else {
            anyhow::bail!("no access token: set ENTRY_TOKEN or pass --token");
        };
        Ok(crate::client::api::ApiClient::with_ca(&self.server, Some(token), self.ca.as_deref())?)
    }
}

/// Flags every command that reads the configuration shares.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "ENTRY_CONFIG", global = true)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Data directory (embedded store and local files).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self, flags: impl Serialize) -> Result<crate::config::Config, crate::config::ConfigError> {
        #[derive(Serialize)]
        struct Merged<'a, F: Serialize> {
            #[serde(flatten)]
            common: &'a ConfigArgs,
            #[serde(flatten)]
            flags: F,
        }
        crate::config::Config::load(self.config.as_deref(), Merged { common: self, flags })
    }
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Enter(args) => return enter::run(args).await,
        Command::Ls(args) => ls::run(args).await,
        Command::Tokens(args) => tokens::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Sessions(args) => sessions::run(args).await,
        Command::Play(args) => play::run(args).await,
        Command::Recording(args) => recording::run(args).await,
        Command::Verify(args) => return verify::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Search(args) => search::run(args).await,
        Command::Index(args) => index::run(args).await,
        Command::Reviews(args) => reviews::reviews(args).await,
        Command::Alerts(args) => reviews::alerts(args).await,
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("entry: {error:#}");
            1
        }
    }
}
