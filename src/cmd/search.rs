//! `entry search <TEXT>`: finds commands and output lines across recorded sessions, through a
//! gateway's API, newest first, as a table or the API's JSON.
//!
//! Guarantees: at most `--limit` hits, fetched page after page (each page continues exactly
//! where the last ended); a hit's text is printed on one line with its control characters
//! replaced (a recording never sends escape sequences to this terminal), its match in bold
//! only when stdout is a terminal.

use std::io::IsTerminal;

use anyhow::{Context, bail};

use super::ServerArgs;
use super::sessions::{aligned, format_offset, format_time, parse_time, push_printable};
use crate::wire::search::{HitKind, SearchHit, SearchPage, SearchQuery};

/// The most hits the API returns in one page.
const PAGE: usize = 500;
const BOLD: &str = "\x1b[1m";
const NOT_BOLD: &str = "\x1b[22m";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// What to find: a case-insensitive substring of a command or of a line of output.
    text: String,
    /// Where to look.
    #[arg(long, default_value = "all", value_parser = ["commands", "output", "all"])]
    kind: String,
    /// Only this user's sessions.
    #[arg(long)]
    user: Option<String>,
    /// Only sessions in this container (name or full id).
    #[arg(long)]
    container: Option<String>,
    /// Only sessions started at or after: RFC 3339 (2026-11-29T10:00:00Z), a date, or a
    /// duration ago (2h, 30m).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only sessions started before (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// At most this many hits.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// Print the API's JSON (one page of all the hits) instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.text.trim().is_empty() {
        bail!("nothing to search for");
    }
    let client = args.server.client()?;
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut query = SearchQuery {
        q: Some(args.text.clone()),
        kind: Some(args.kind.clone()),
        user: args.user.clone(),
        container: args.container.clone(),
        since: args.since.map(|t| t.to_string()),
        until: args.until.map(|t| t.to_string()),
        limit: None,
        before: None,
    };
    let mut found = SearchPage { hits: Vec::new(), next: None };
    loop {
        query.limit = Some((limit - found.hits.len()).min(PAGE).to_string());
        let page = client.search(&query).await.context("searching")?;
        let empty = page.hits.is_empty();
        found.hits.extend(page.hits);
        found.next = page.next;
        match &found.next {
            Some(next) if !empty && found.hits.len() < limit => query.before = Some(next.clone()),
            _ => break,
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    print!("{}", table(&found.hits, std::io::stdout().is_terminal()));
    if found.next.is_some() {
        eprintln!("(more hits: raise --limit)");
    }
    Ok(())
}

/// The hits as an aligned table, the match in bold when `bold`.
fn table(hits: &[SearchHit], bold: bool) -> String {
    let header = ["WHEN (UTC)", "USER", "CONTAINER", "KIND", "SESSION", "AT", "TEXT"];
    let rows: Vec<[String; 7]> = hits
        .iter()
        .map(|hit| {
            let at_ms = if hit.at.is_finite() { (hit.at.max(0.0) * 1000.0) as i64 } else { 0 };
            let kind = match hit.kind {
                HitKind::Command => "command",
                HitKind::Output => "output",
            };
            [
                format_time(hit.session_started_at.saturating_add(at_ms)),
                one_line(&hit.user, None, false),
                one_line(&hit.container, None, false),
                kind.to_owned(),
                one_line(&hit.session_id, None, false),
                format_offset(hit.at),
                one_line(&hit.text, hit.highlight, bold),
            ]
        })
        .collect();
    aligned(&header, &rows)
}

/// `text` on one line (line breaks as ⏎), the characters `highlight` spans in bold when `bold`.
fn one_line(text: &str, highlight: Option<[usize; 2]>, bold: bool) -> String {
    let [start, end] = highlight.filter(|[start, end]| bold && start < end).unwrap_or([usize::MAX; 2]);
    let mut out = String::with_capacity(text.len() + BOLD.len() + NOT_BOLD.len());
    let mut open = false;
    for (i, ch) in text.chars().enumerate() {
        if open && i == end {
            out.push_str(NOT_BOLD);
            open = false;
        }
        if i == start {
            out.push_str(BOLD);
            open = true;
        }
        push_printable(&mut out, ch, "⏎");
    }
    if open {
        out.push_str(NOT_BOLD);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::search::CommandFlag;

    fn hit(text: &str, highlight: Option<[usize; 2]>) -> SearchHit {
        SearchHit {
            session_id: "0190a0b0-c0d0-7e0f-8000-000000000001".into(),
            user: "alice".into(),
            container: "shop-web-1".into(),
            session_started_at: 1_795_968_000_000,
            at: 75.4,
            kind: HitKind::Command,
            text: text.into(),
            highlight,
            flags: vec![CommandFlag::Continued],
        }
    }

    #[test]
    fn a_hit_is_one_line_its_match_bold_only_on_a_terminal() {
        assert_eq!(one_line("für x\nyz", Some([1, 3]), true), "f\x1b[1mür\x1b[22m x⏎yz");
        assert_eq!(one_line("für x\nyz", Some([1, 3]), false), "für x⏎yz");
        // To the end, past the end, empty and inverted spans.
        assert_eq!(one_line("abc", Some([1, 3]), true), "a\x1b[1mbc\x1b[22m");
        assert_eq!(one_line("abc", Some([2, 9]), true), "ab\x1b[1mc\x1b[22m");
        assert_eq!(one_line("abc", Some([1, 1]), true), "abc");
        assert_eq!(one_line("abc", Some([2, 1]), true), "abc");
        assert_eq!(one_line("abc", Some([5, 9]), true), "abc");
        // A recording's escape sequences never reach the terminal.
        assert_eq!(one_line("a\x1b[2Jb\tc\r\n", None, true), "a\u{fffd}[2Jb c⏎");
    }

    #[test]
    fn the_table_shows_when_who_where_and_the_full_session_id() {
        let text = table(&[hit("make\nall", Some([0, 4]))], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("WHEN (UTC)") && lines[0].ends_with("AT    TEXT"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "2026-11-29",
                "16:01:15",
                "alice",
                "shop-web-1",
                "command",
                "0190a0b0-c0d0-7e0f-8000-000000000001",
                "1:15",
                "make⏎all"
            ]
        );
    }
}
