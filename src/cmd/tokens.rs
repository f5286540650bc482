//! `entry tokens create|list|revoke`: manages access tokens directly in the configured store,
//! so it works with or without a running gateway.
//!
//! Guarantees: every creation and revocation is in the audit log with the OS user who ran the
//! command (actor `cli:<user>`, role `operator`, source `cli`); a revocation is written there
//! before it happens, and a creation that cannot be written there is undone.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::ConfigArgs;
use crate::auth::{Authenticator, Role};
use crate::store::{Store, TokenGrants, now_millis};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a token; the token is printed once, on the last line of stdout.
    Create {
        /// Whose token it is.
        #[arg(long)]
        user: String,
        #[arg(long, value_enum, default_value = "developer")]
        role: Role,
        /// Container pattern it may enter (name or Compose address glob); repeatable.
        /// Admins default to `*`.
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// Exec user it may ask for with `-u` (name, uid, name:group); repeatable. Without
        /// one, sessions run as the container's configured user only.
        #[arg(long = "exec-user")]
        exec_users: Vec<String>,
        /// Environment variable it may set with `-e` (a name or a `PREFIX*` glob); repeatable.
        /// With any, only these are accepted (the deny-list still applies); without, any name
        /// the gateway's deny-list does not refuse.
        #[arg(long = "env-allow")]
        env_allow: Vec<String>,
        /// May enter privileged containers and containers that mount the Docker socket.
        #[arg(long)]
        allow_privileged: bool,
        /// How long it is valid, e.g. `30d`, `12h`; without, until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config.load(())?;
    let store = Store::open(&config.store_url()).await.context("opening the store")?;
    let result = act(&store, args.action).await;
    store.close().await;
    result
}

async fn act(store: &Store, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Create { user, role, mut allow, exec_users, env_allow, allow_privileged, expires } => {
            if allow.is_empty() {
                match role {
                    Role::Admin => allow.push("*".into()),
                    Role::Developer => bail!("a developer token needs at least one --allow pattern"),
                    Role::Auditor => {}
                }
            }
            let expires_at = expires
                .map(|d| i64::try_from(d.as_millis()).ok().and_then(|ms| now_millis().checked_add(ms)))
                .map(|at| at.context("--expires is too far in the future"))
                .transpose()?;
            let grants = TokenGrants {
                exec_users,
                env_allow: (!env_allow.is_empty()).then_some(env_allow),
                allow_privileged,
                expires_at,
            };
            let auth = Authenticator::new(store.clone(), None);
            let actor = actor();
            let token = auth.create_token(&user, role, &allow, &grants, Some(&actor)).await?;
            let audited = match store.token(token.id()).await {
                Ok(Some(row)) => audit(store, &actor, "token_create", &row.summary()).await,
                Ok(None) => Err(anyhow::anyhow!("the new token is not in the store")),
                Err(error) => Err(error.into()),
            };
            if let Err(error) = audited {
                let _ = store.revoke_token(token.id()).await;
                return Err(error.context("the token was not created: its creation cannot be audited"));
            }
            println!("id: {}", token.id());
            println!("user: {user}");
            println!("role: {}", role.as_str());
            println!("allow: {}", allow.join(" "));
            if !grants.exec_users.is_empty() {
                println!("exec users: {}", grants.exec_users.join(" "));
            }
            if let Some(names) = &grants.env_allow {
                println!("env allowed: {}", names.join(" "));
            }
            if grants.allow_privileged {
                println!("privileged containers: allowed");
            }
            if let Some(at) = grants.expires_at {
                println!("expires: {}", format_time(at));
            }
            println!("{}", token.reveal());
        }
        Action::List => {
            println!("{:<14} {:<16} {:<10} {:<22} {:<8} ALLOW", "ID", "USER", "ROLE", "CREATED", "STATE");
            for token in store.tokens().await? {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else if token.grants.expired(now_millis()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<16} {:<10} {:<22} {:<8} {}",
                    token.id,
                    token.user,
                    token.role,
                    format_time(token.created_at),
                    state,
                    token.allow.join(" ")
                );
            }
        }
        Action::Revoke { id } => {
            let Some(row) = store.token(&id).await?.filter(|row| row.revoked_at.is_none()) else {
                bail!("no active token with id {id}");
            };
            audit(store, &actor(), "token_revoke", &row.summary()).await.context("the token was not revoked")?;
            if !store.revoke_token(&id).await? {
                bail!("no active token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// Who runs this command, for the audit log: `cli:` and the OS user (`$USER`, `$LOGNAME`, else
/// the uid).
fn actor() -> String {
    use std::os::unix::fs::MetadataExt;
    let user = ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|user| !user.is_empty() && !user.chars().any(char::is_control))
        .or_else(|| std::fs::metadata("/proc/self").ok().map(|m| format!("uid{}", m.uid())))
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

/// Writes a token change to the audit log.
async fn audit(store: &Store, actor: &str, action: &str, detail: &str) -> anyhow::Result<()> {
    store.audit(actor, "operator", action, None, "cli", Some(detail)).await.context("writing the audit log")?;
    Ok(())
}

fn format_time(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| millis.to_string())
}
