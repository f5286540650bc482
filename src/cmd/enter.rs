//! `entry enter <container> [-- command…]`: a shell or a command in a container, through a
//! gateway. Exits with the shell's exit code, like `docker exec`.

use std::io::IsTerminal;

use crate::client::{self, EnterOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id, name, Compose address `project.service.N` or Swarm slot `service.N`;
    /// `engine/…` to look on one engine only (`entry ls` lists them).
    container: String,
    /// Command to run instead of the default shell.
    #[arg(last = true)]
    command: Vec<String>,
    /// Gateway URL.
    #[arg(long, env = "ENTRY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Access token.
    #[arg(long, env = "ENTRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of CA certificates to trust for an https:// gateway, besides the usual ones.
    #[arg(long, env = "ENTRY_CA")]
    ca: Option<std::path::PathBuf>,
    /// User to run as in the container.
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory in the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Extra environment variable KEY=VALUE; repeatable.
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a TTY even when stdin is not a terminal.
    #[arg(short = 't', long, conflicts_with = "no_tty")]
    tty: bool,
    /// Do not allocate a TTY even when stdin is a terminal.
    #[arg(short = 'T', long)]
    no_tty: bool,
}

pub async fn run(args: Args) -> u8 {
    let tty = args.tty || (!args.no_tty && std::io::stdin().is_terminal());
    let options = EnterOptions {
        server: args.server,
        token: args.token,
        container: args.container,
        command: (!args.command.is_empty()).then_some(args.command),
        user: args.user,
        workdir: args.workdir,
        env: args.env,
        tty,
        ca: args.ca,
    };
    match client::enter(options).await {
        // Exit codes are 0..=255 on Unix; a signal death is reported by Docker as 128+n.
        Ok(code) => u8::try_from(code).unwrap_or(1),
        Err(error) => {
            eprintln!("entry: {error}");
            client::EXIT_LOST as u8
        }
    }
}
