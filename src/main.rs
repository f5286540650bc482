//! The `entry` binary: parses the command line and runs one subcommand.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = entry::cmd::Cli::parse();
    // Several dependencies enable different rustls crypto backends: pick one for the process
    // (an error only means one was installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("entry: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(entry::cmd::run(cli));
    // Do not wait for a blocking stdin read the terminal client may leave behind.
    runtime.shutdown_background();
    ExitCode::from(code)
}
