//! `entry sessions share|shares|unshare`: share links to one finished session, through a
//! gateway's API.
//!
//! Guarantees: a created link (with its secret) is printed once, on stdout only; a list never
//! shows a secret; times are printed in UTC.

use anyhow::Context;

use super::sessions::{aligned, format_time};
use crate::client::api::ApiClient;
use crate::wire::shares::{NewShare, ShareInfo};

/// Creates a link and prints it (`ENTRY_SERVER` and the path the gateway gave).
pub(super) async fn share(
    client: &ApiClient,
    id: &str,
    expires: String,
    until: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    let request = NewShare { expires_in: Some(expires), until };
    let created = client.share(id, &request).await.context("sharing the session")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&created)?);
        return Ok(());
    }
    let up_to = created.until.map(|t| format!(", up to {t} s")).unwrap_or_default();
    eprintln!("share link {} until {} UTC{up_to} (shown this once):", created.id, format_time(created.expires_at));
    println!("{}", client.link(&created.url));
    Ok(())
}

/// Prints a session's links.
pub(super) async fn list(client: &ApiClient, id: &str, json: bool) -> anyhow::Result<()> {
    let links = client.shares(id).await.context("listing the session's share links")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&links)?);
    } else {
        print!("{}", table(&links));
    }
    Ok(())
}

/// Revokes a link.
pub(super) async fn unshare(client: &ApiClient, link_id: &str) -> anyhow::Result<()> {
    let link = client.unshare(link_id).await.context("revoking the share link")?;
    println!("revoked share link {} of session {}", link.id, link.session_id);
    Ok(())
}

/// The links as an aligned table.
fn table(links: &[ShareInfo]) -> String {
    let header = ["ID", "STATE", "BY", "CREATED (UTC)", "EXPIRES (UTC)", "UNTIL"];
    let rows: Vec<[String; 6]> = links
        .iter()
        .map(|link| {
            [
                link.id.clone(),
                link.state.clone(),
                link.created_by.clone(),
                format_time(link.created_at),
                format_time(link.expires_at),
                link.until.map_or_else(|| "-".to_owned(), |t| format!("{t} s")),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_no_secret() {
        let link = ShareInfo {
            id: "shabcdefghjk".into(),
            session_id: "0190a0b0-c0d0-7e0f-8000-000000000001".into(),
            created_by: "audrey".into(),
            created_at: 1_795_968_000_000,
            expires_at: 1_796_054_400_000,
            until: Some(90.0),
            revoked_at: None,
            revoked_by: None,
            state: "active".into(),
        };
        let text = table(&[link]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("UNTIL"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            ["shabcdefghjk", "active", "audrey", "2026-11-29", "16:00:00", "2026-11-30", "16:00:00", "90", "s"]
        );
    }
}
