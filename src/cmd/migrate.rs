//! `entry migrate`: applies the store's migrations and says which are applied.

use anyhow::Context;

use super::ConfigArgs;
use crate::store::{MIGRATOR, Store};

pub async fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let config = args.load(())?;
    let store = Store::open(&config.store_url()).await.context("opening the store")?;
    for migration in MIGRATOR.iter() {
        println!("applied {} {}", migration.version, migration.description);
    }
    store.close().await;
    Ok(())
}
