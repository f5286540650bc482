//! `entry reviews ls|approve|deny` and `entry alerts`: commands held for review and the hits
//! of command rules, through a gateway's API.
//!
//! Guarantees: a command's text is printed on one line with its control characters replaced (a
//! hit never sends escape sequences to this terminal); a decision that comes too late (already
//! decided, timed out, cancelled) exits non-zero with what settled it.

use anyhow::Context;

use super::ServerArgs;
use super::sessions::{aligned, format_offset, format_time, printable};
use crate::wire::rules::{AlertQuery, RuleHit};

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReviewCommand {
    /// List the commands waiting for a decision.
    Ls {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a held command run (admins; not your own).
    Approve { id: String },
    /// Refuse a held command: its line is cleared (admins; not your own).
    Deny { id: String },
}

#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Only this session's hits.
    #[arg(long)]
    session: Option<String>,
    /// Only hits with this outcome (notified, blocked, pending, approved, denied, timed_out,
    /// cancelled, killed, ended).
    #[arg(long)]
    outcome: Option<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

pub async fn reviews(args: ReviewArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.command {
        ReviewCommand::Ls { json } => {
            let query = AlertQuery { outcome: Some("pending".into()), limit: Some(1000), ..AlertQuery::default() };
            let page = client.alerts(&query).await.context("listing held commands")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page.hits)?);
            } else if page.hits.is_empty() {
                eprintln!("no command waits for a decision");
            } else {
                print!("{}", table(&page.hits));
            }
        }
        ReviewCommand::Approve { id } | ReviewCommand::Deny { id } if id.trim().is_empty() => {
            anyhow::bail!("which held command? pass its id (entry reviews ls)")
        }
        ReviewCommand::Approve { id } => {
            let decided = client.decide(&id, true).await.context("approving")?;
            println!("approved: {} runs now in {}", one_line(&decided.hit.command), decided.hit.container);
        }
        ReviewCommand::Deny { id } => {
            let decided = client.decide(&id, false).await.context("denying")?;
            println!("denied: {} does not run in {}", one_line(&decided.hit.command), decided.hit.container);
        }
    }
    Ok(())
}

pub async fn alerts(args: AlertArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let query = AlertQuery {
        session: args.session.clone(),
        outcome: args.outcome.clone(),
        before: None,
        limit: Some(args.limit),
    };
    let page = client.alerts(&query).await.context("listing alerts")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
    } else {
        print!("{}", table(&page.hits));
        if page.next.is_some() {
            eprintln!("(more alerts: raise --limit)");
        }
    }
    Ok(())
}

fn table(hits: &[RuleHit]) -> String {
    let header = ["ID", "WHEN (UTC)", "USER", "CONTAINER", "RULE", "ACTION", "OUTCOME", "SESSION", "AT", "COMMAND"];
    let rows: Vec<[String; 10]> = hits
        .iter()
        .map(|hit| {
            let outcome = match &hit.decided_by {
                Some(by) => format!("{} by {}", hit.outcome_str(), one_line(by)),
                None => hit.outcome_str().to_owned(),
            };
            [
                hit.id.clone(),
                format_time(hit.at),
                one_line(&hit.user),
                one_line(&hit.container),
                one_line(&hit.rule),
                hit.action.as_str().to_owned(),
                outcome,
                hit.session_id.clone(),
                format_offset(hit.offset),
                one_line(&hit.command),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

/// `text` on one line, control characters replaced, line breaks as ⏎.
fn one_line(text: &str) -> String {
    printable(text, "⏎")
}
