//! `entry serve`: runs the gateway until SIGTERM or SIGINT.
//!
//! On the first start with an empty store it creates an admin token and prints it once on
//! stdout (never in the logs), so a new user needs no second step. With `[gateway.tls]` a
//! certificate or key that cannot be used stops the start-up with an error naming the file.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use super::ConfigArgs;
use crate::auth::{Authenticator, Role};
use crate::http::GatewayBuilder;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log JSON lines instead of text (ENTRY_LOG_JSON=1, true, yes or on).
    #[arg(long, env = "ENTRY_LOG_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    log_json: bool,
}

#[derive(Serialize)]
struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_json);
    let config = Arc::new(args.config.load(Flags { listen: args.listen })?);
    tracing::info!(?config, "starting");
    if let Some(tls) = &config.gateway.tls {
        // Checked before anything else starts, so a bad path stops the start-up at once.
        crate::http::tls::server_config(tls).context("configuring TLS ([gateway.tls])")?;
    }
    let store = Store::open(&config.store_url()).await.context("opening the store")?;
    // Before anything touches the data directory or the sessions of this node id.
    store.claim_node(&config.node_id(), config.reaper.node_expiry).await.context("claiming this gateway's node id")?;
    let gateway = Arc::new(GatewayBuilder::new(Arc::clone(&config)).store(store.clone()).build().await?);
    first_admin_token(gateway.store(), gateway.auth()).await?;
    for engine in gateway.fleet().ping(std::time::Duration::from_secs(5)).await {
        match engine.down {
            None => tracing::info!(engine = %engine.name, "Docker engine answers"),
            Some(why) => tracing::warn!(engine = %engine.name, "{why}; its containers are refused until it answers"),
        }
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let tls = config.gateway.tls.is_some();
    tracing::info!(listen = %listener.local_addr()?, tls, pages = crate::http::pages_built(), "gateway ready");

    let stop = gateway.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    reload_rules_on_hangup(&args, &gateway);
    gateway.serve(listener).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// On SIGHUP, reads the configuration again (file, environment, flags) and puts its
/// `[[rules]]` and `[rule_options]` in place; running sessions apply them from their next Enter.
/// A configuration that does not load, or rules that do not compile, leave the rules as they
/// were (logged, and counted in `/metrics`). Nothing else of the configuration is reloaded.
fn reload_rules_on_hangup(args: &Args, gateway: &Arc<crate::http::Gateway>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => return tracing::warn!(%error, "cannot listen for SIGHUP; rules are not reloaded"),
    };
    let (config, listen, tracker) = (args.config.clone(), args.listen, gateway.engine().tracker().clone());
    let (stop, gateway) = (gateway.shutdown_token(), Arc::clone(gateway));
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(()) = hangups.recv() => {}
            }
            let config = match config.load(Flags { listen }) {
                Ok(config) => config,
                Err(error) => {
                    crate::rules::counters::reloaded(false);
                    tracing::error!(%error, "SIGHUP: the configuration does not load; the loaded rules stay");
                    continue;
                }
            };
            match gateway.guard().rules().reload(&config) {
                Ok(rules) => tracing::info!(rules, "SIGHUP: command rules reloaded"),
                Err(error) => tracing::error!(%error, "SIGHUP: the rules were not reloaded; the loaded ones stay"),
            }
        }
    });
}

async fn first_admin_token(store: &Store, auth: &Authenticator) -> anyhow::Result<()> {
    if store.token_count().await? > 0 {
        return Ok(());
    }
    let token =
        auth.create_token("admin", Role::Admin, &["*".to_owned()], &Default::default(), Some("first start")).await?;
    tracing::info!(token.id = token.id(), "created the first admin token; it is printed once on stdout");
    println!("Entry created the first admin token. It is shown only this once:");
    println!("{}", token.reveal());
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot listen for signals; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
