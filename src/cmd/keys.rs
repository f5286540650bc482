//! `entry keys create|show`: the deployment's signing key, in the file `[signing] key_file` names
//! (default `signing.key` in the data directory). Works on the file directly, with or without a
//! running gateway; every gateway of a deployment is given the same file.

use anyhow::Context;
use serde::Serialize;

use super::ConfigArgs;
use crate::signing::SigningKey;
use crate::signing::key::public_key_path;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Make a new signing key (refused if the file exists) and print its public key.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the public key of the signing key: its id, the base64 line `minisign -P` takes,
    /// and the `.pub` file's text.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Serialize)]
struct NoFlags {}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (config, create) = match &args.action {
        Action::Create { config } => (config, true),
        Action::Show { config } => (config, false),
    };
    let config = config.load(NoFlags {})?;
    let (key_file, _) = config.signing_key_file();
    let key = if create {
        let key = SigningKey::create(&key_file)?;
        println!("created {} (secret, mode 0600) and {}", key_file.display(), public_key_path(&key_file).display());
        key
    } else {
        SigningKey::load(&key_file).with_context(|| format!("reading {}", key_file.display()))?
    };
    let public = key.public();
    println!("key id: {}", public.key_id());
    println!("public key: {}", public.base64());
    println!("verify with: minisign -Vm manifest.json -P {}", public.base64());
    Ok(())
}
