//! `entry sessions ls|show|commands|kill|hold|release|share|shares|unshare`: lists recorded
//! sessions, shows one and the commands typed in it, kills one, puts one on legal hold or releases
//! it, shares one (see `shares`), through a gateway's API; and the time and table formats the
//! other commands that print sessions share.
//!
//! Guarantees: text that came from a session (a command, a line of output) is printed with its
//! control characters replaced, so a recording can never send escape sequences to the
//! terminal of whoever reads it.

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};

use super::ServerArgs;
use crate::client::api::SessionQuery;
use crate::client::api::SessionView;
use crate::wire::search::CommandEntry;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List sessions, newest first.
    Ls {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
        /// Only sessions in this container (name or full id).
        #[arg(long)]
        container: Option<String>,
        /// Only sessions with this status: live, finalising, ended, killed, interrupted, failed.
        #[arg(long)]
        status: Option<String>,
        /// Only sessions started at or after: RFC 3339 (2026-11-29T10:00:00Z), a date, or a
        /// duration ago (2h, 30m).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Only sessions started before (same forms as --since).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// Only sessions older than this session id (the next page).
        #[arg(long)]
        before: Option<String>,
        /// At most this many sessions (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End a live session wherever it runs (admins only); it is reaped and recorded as killed.
    Kill { id: String },
    /// Put an ended session on legal hold (auditors, admins): retention never deletes it.
    Hold {
        id: String,
        /// Why (shown with the session everywhere; at most 500 characters, one line).
        #[arg(long)]
        reason: String,
    },
    /// Release a session's legal hold (auditors, admins); it then expires as any other.
    Release { id: String },
    /// Show one session.
    Show {
        id: String,
        /// Print the API's JSON instead of key: value lines.
        #[arg(long)]
        json: bool,
    },
    /// List the commands typed in a session, as its terminal showed them.
    Commands {
        id: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a link that opens this finished session's replay without an account (auditors,
    /// admins); prints the link, whose secret is shown this once.
    Share {
        id: String,
        /// How long the link works (at most 7d).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Show the session only up to this many seconds from its start.
        #[arg(long)]
        until: Option<f64>,
        /// Print the API's JSON (with the link's path) instead of the link.
        #[arg(long)]
        json: bool,
    },
    /// List the share links of a session (never their secrets).
    Shares {
        id: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a share link: it stops working at once.
    Unshare { link_id: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.server.client()?;
    match args.action {
        Action::Ls { user, container, status, since, until, before, limit, json } => {
            let (since, until, limit) =
                (since.map(|t| t.to_string()), until.map(|t| t.to_string()), Some(limit.to_string()));
            let query = SessionQuery { user, container, status, since, until, before, limit };
            let page = client.sessions(&query).await.context("listing sessions")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            print!("{}", table(&page.sessions));
            if let Some(next) = page.next {
                eprintln!("(more: --before {next})");
            }
        }
        Action::Kill { id } => {
            let outcome = client.kill(&id).await?;
            let how = match outcome.delivery {
                crate::client::api::KillDelivery::Local => "ended",
                crate::client::api::KillDelivery::Notified => "kill sent to",
            };
            println!("{how} session {} on gateway {}", outcome.session, outcome.node);
        }
        Action::Hold { id, reason } => {
            let outcome = client.hold(&id, &reason).await?;
            let hold = &outcome.hold;
            let what = if outcome.changed { "put on hold" } else { "already on hold" };
            println!(
                "session {} {what} by {} at {} UTC: {} (storage legal hold: {})",
                outcome.session,
                printable(&hold.by, " "),
                format_time(hold.at),
                printable(&hold.reason, " "),
                outcome.storage.as_str()
            );
        }
        Action::Release { id } => {
            let outcome = client.release(&id).await?;
            let storage = outcome.storage.as_str();
            println!("session {} released from hold (storage legal hold: {storage})", outcome.session);
        }
        Action::Show { id, json } => {
            let row = client.session(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&row)?);
            } else {
                print!("{}", details(&row));
            }
        }
        Action::Share { id, expires, until, json } => super::shares::share(&client, &id, expires, until, json).await?,
        Action::Shares { id, json } => super::shares::list(&client, &id, json).await?,
        Action::Unshare { link_id } => super::shares::unshare(&client, &link_id).await?,
        Action::Commands { id, json } => {
            let list = client.commands(&id).await.context("listing the session's commands")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", command_table(&list.commands));
            }
        }
    }
    Ok(())
}

/// A time for `--since`/`--until`, as unix milliseconds.
pub(super) fn parse_time(text: &str) -> anyhow::Result<i64> {
    parse_time_at(text, Utc::now())
}

fn parse_time_at(text: &str, now: DateTime<Utc>) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis());
    }
    match humantime_serde::re::humantime::parse_duration(text) {
        Ok(ago) => {
            let ago = chrono::Duration::from_std(ago).context("duration too long")?;
            now.checked_sub_signed(ago).map(|t| t.timestamp_millis()).context("duration too long")
        }
        Err(_) => bail!("expected an RFC 3339 time (2026-11-29T10:00:00Z), a date, or a duration ago (2h, 30m)"),
    }
}

/// `2026-11-29 10:00:00`, in UTC.
pub(super) fn format_time(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| millis.to_string())
}

/// `850ms`, `4.2s`, `42s`, `3m07s`, `2h05m`.
fn format_duration(millis: i64) -> String {
    let millis = millis.max(0);
    let seconds = millis / 1000;
    match seconds {
        _ if millis < 1000 => format!("{millis}ms"),
        0..10 => format!("{}.{}s", seconds, (millis % 1000) / 100),
        10..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn duration_of(row: &SessionView) -> String {
    row.ended_at.map(|end| format_duration(end - row.started_at)).unwrap_or_else(|| "-".into())
}

/// The status, with `held` after it for a session on legal hold (`ended,held`).
fn status_of(row: &SessionView) -> String {
    match row.hold {
        Some(_) => format!("{},held", row.status.as_str()),
        None => row.status.as_str().to_owned(),
    }
}

/// A session's legal hold as one line: `reason (by alice, 2026-12-07 08:00:00 UTC)`.
fn hold_of(row: &SessionView) -> String {
    row.hold.as_ref().map_or_else(
        || "-".to_owned(),
        |hold| {
            let (reason, by) = (printable(&hold.reason, " "), printable(&hold.by, " "));
            format!("{reason} (by {by}, {} UTC)", format_time(hold.at))
        },
    )
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The container as the list shows it: on its engine, unless that is the only one, `local`.
fn qualified(row: &SessionView) -> String {
    if row.engine == crate::config::DEFAULT_ENGINE {
        row.container_name.clone()
    } else {
        format!("{}/{}", row.engine, row.container_name)
    }
}

/// The session list as an aligned table.
fn table(rows: &[SessionView]) -> String {
    let header = ["ID", "USER", "CONTAINER", "STATUS", "STARTED (UTC)", "DURATION", "EXIT", "BYTES OUT"];
    let lines: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.id.clone(),
                row.user.clone(),
                qualified(row),
                status_of(row),
                format_time(row.started_at),
                duration_of(row),
                or_dash(row.exit_code),
                row.bytes_out.to_string(),
            ]
        })
        .collect();
    aligned(&header, &lines)
}

/// Rows under a header, each column but the last padded to its widest cell.
pub(super) fn aligned<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_row(&mut out, header.iter().copied(), &widths);
    for row in rows {
        push_row(&mut out, row.as_ref().iter().map(String::as_str), &widths);
    }
    out
}

/// One line of [`aligned`].
fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>, widths: &[usize]) {
    let mut line = String::new();
    let mut cells = cells.zip(widths).peekable();
    while let Some((cell, width)) = cells.next() {
        if cells.peek().is_none() {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<width$}  "));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A session's commands: AT, FLAGS, TEXT, the later lines of a command indented under its
/// first.
fn command_table(commands: &[CommandEntry]) -> String {
    let mut rows = Vec::with_capacity(commands.len());
    let mut later = Vec::with_capacity(commands.len());
    for command in commands {
        let flags: Vec<&str> = command.flags.iter().map(|flag| flag.as_str()).collect();
        let flags = if flags.is_empty() { "-".to_owned() } else { flags.join(",") };
        let text = printable(&command.text, "\n");
        let mut lines = text.split('\n');
        let first = lines.next().unwrap_or_default().to_owned();
        later.push(lines.map(str::to_owned).collect::<Vec<_>>());
        rows.push([format_offset_tenths(command.at), flags, first]);
    }
    let header = ["AT", "FLAGS", "TEXT"];
    let width = |i: usize| rows.iter().map(|row| row[i].chars().count()).fold(header[i].len(), usize::max);
    let indent = " ".repeat(width(0) + 2 + width(1) + 2);
    let table = aligned(&header, &rows);
    let mut lines = table.lines();
    let mut out = String::new();
    if let Some(header) = lines.next() {
        out.push_str(header);
        out.push('\n');
    }
    for (line, more) in lines.zip(&later) {
        out.push_str(line);
        out.push('\n');
        for text in more {
            out.push_str(format!("{indent}{text}").trim_end());
            out.push('\n');
        }
    }
    out
}

/// `text` safe to print on a terminal: line breaks as `newline`, tabs as spaces, other control
/// characters (the escape sequences a recording may hold) as U+FFFD.
pub(super) fn printable(text: &str, newline: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        push_printable(&mut out, ch, newline);
    }
    out
}

/// Appends `ch` as [`printable`] shows it.
pub(super) fn push_printable(out: &mut String, ch: char, newline: &str) {
    match ch {
        '\n' => out.push_str(newline),
        '\r' => {}
        '\t' => out.push(' '),
        ch if ch.is_control() => out.push('\u{fffd}'),
        ch => out.push(ch),
    }
}

/// Seconds into a session as `m:ss` (`h:mm:ss` past an hour).
pub(super) fn format_offset(at: f64) -> String {
    let seconds = if at.is_finite() { at.max(0.0).floor() as u64 } else { 0 };
    clock(seconds)
}

/// Seconds into a session as `m:ss.s` (`h:mm:ss.s` past an hour).
fn format_offset_tenths(at: f64) -> String {
    let tenths = if at.is_finite() { (at.max(0.0) * 10.0).round() as u64 } else { 0 };
    format!("{}.{}", clock(tenths / 10), tenths % 10)
}

fn clock(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if hours > 0 { format!("{hours}:{minutes:02}:{seconds:02}") } else { format!("{minutes}:{seconds:02}") }
}

/// One session as `key: value` lines.
fn details(row: &SessionView) -> String {
    let size = |cols: Option<i64>, rows: Option<i64>| match (cols, rows) {
        (Some(cols), Some(rows)) => format!("{cols}x{rows}"),
        _ => "-".into(),
    };
    let time = |millis: Option<i64>| millis.map(|m| format!("{} UTC", format_time(m))).unwrap_or_else(|| "-".into());
    let runs_as = match row.exec_user_effective.as_deref() {
        Some("") => "root (image default)".to_owned(),
        other => or_dash(other),
    };
    let env = row.exec_env.as_ref().map(|env| serde_json::to_string(env).unwrap_or_default());
    let fields: [(&str, String); 36] = [
        ("id", row.id.clone()),
        ("user", row.user.clone()),
        ("role", row.role.as_str().to_owned()),
        ("token", or_dash(row.token_id.as_ref())),
        ("source", row.source_addr.clone()),
        ("client", row.client_kind.clone()),
        ("engine", row.engine.clone()),
        ("container", row.container_name.clone()),
        ("container id", row.container_id.clone()),
        ("image", row.container_image.clone()),
        ("command", serde_json::to_string(&row.command).unwrap_or_default()),
        ("tty", row.tty.to_string()),
        ("exec user asked", or_dash(row.exec_user.as_ref())),
        ("exec user", runs_as),
        ("workdir", or_dash(row.workdir.as_ref())),
        ("env", or_dash(env.as_ref())),
        ("node", row.node_id.clone()),
        ("exec id", row.exec_id.clone()),
        ("status", row.status.as_str().to_owned()),
        ("hold", hold_of(row)),
        ("started", time(Some(row.started_at))),
        ("ended", time(row.ended_at)),
        ("duration", duration_of(row)),
        ("exit code", or_dash(row.exit_code)),
        ("close reason", or_dash(row.close_reason.map(|reason| reason.as_str()))),
        ("close detail", or_dash(row.close_detail.as_ref().filter(|d| !d.is_empty()))),
        ("initial size", size(row.initial_cols, row.initial_rows)),
        ("last size", size(row.last_cols, row.last_rows)),
        ("bytes in", row.bytes_in.to_string()),
        ("bytes out", row.bytes_out.to_string()),
        ("recording", or_dash(row.recording_location.as_ref())),
        ("recording size", or_dash(row.recording_size)),
        ("recording sha256", or_dash(row.recording_sha256.as_ref())),
        ("recording error", or_dash(row.recording_error.as_ref())),
        ("reap", or_dash(row.reap_status.map(|status| status.as_str()))),
        ("reap detail", or_dash(row.reap_detail.as_ref())),
    ];
    fields.iter().map(|(key, value)| format!("{key}: {}\n", value.replace('\n', " "))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::api::SessionStatus;

    #[test]
    fn times() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z").unwrap().with_timezone(&Utc);
        let noon = now.timestamp_millis();
        assert_eq!(parse_time_at("2026-11-29T12:00:00Z", now).unwrap(), noon);
        assert_eq!(parse_time_at("2026-11-29T13:00:00+01:00", now).unwrap(), noon);
        assert_eq!(parse_time_at("2h", now).unwrap(), noon - 2 * 3_600_000);
        assert_eq!(parse_time_at("30m", now).unwrap(), noon - 30 * 60_000);
        assert_eq!(parse_time_at("2026-11-29", now).unwrap(), noon - 12 * 3_600_000);
        assert!(parse_time_at("yesterday", now).is_err());
        assert!(parse_time_at("99999999999h", now).is_err());
        assert_eq!(format_time(noon), "2026-11-29 12:00:00");
    }

    #[test]
    fn durations() {
        let cases = [(850, "850ms"), (4_230, "4.2s"), (42_000, "42s"), (187_000, "3m07s"), (7_500_000, "2h05m")];
        for (millis, text) in cases {
            assert_eq!(format_duration(millis), text);
        }
        assert_eq!(format_duration(-5), "0ms");
    }

    fn row() -> SessionView {
        SessionView {
            id: "0190a0b0-c0d0-7e0f-8000-000000000001".into(),
            user: "alice".into(),
            role: crate::wire::api::Role::Developer,
            token_id: Some("tk1".into()),
            source_addr: "127.0.0.1:5000".into(),
            client_kind: "cli".into(),
            engine: "local".into(),
            container_id: "abc".into(),
            container_name: "shop-web-1".into(),
            container_image: "bash".into(),
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            tty: false,
            exec_user: None,
            exec_user_effective: Some(String::new()),
            workdir: None,
            exec_env: Some(Default::default()),
            node_id: "gw-1".into(),
            exec_id: "e1".into(),
            started_at: 1_795_968_000_000,
            ended_at: Some(1_795_968_004_230),
            status: SessionStatus::Ended,
            exit_code: Some(3),
            close_reason: Some(crate::wire::api::EndReason::Closed(crate::wire::protocol::CloseReason::Exited)),
            close_detail: Some(String::new()),
            initial_cols: None,
            initial_rows: None,
            last_cols: None,
            last_rows: None,
            bytes_in: 0,
            bytes_out: 10,
            recording_location: None,
            recording_size: None,
            recording_sha256: None,
            recording_text_size: None,
            recording_error: None,
            reap_status: None,
            reap_killed: None,
            reap_detail: None,
            rule_hits: 0,
            pending_reviews: 0,
            hold: None,
        }
    }

    #[test]
    fn table_and_details() {
        let text = table(&[row()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split_whitespace().next(), Some("ID"));
        assert!(lines[0].ends_with("EXIT  BYTES OUT"), "{text}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        let expected = ["0190a0b0-c0d0-7e0f-8000-000000000001", "alice", "shop-web-1", "ended", "2026-11-29"];
        assert_eq!(cells[..5], expected);
        assert_eq!(cells[5..], ["16:00:00", "4.2s", "3", "10"]);
        let shown = details(&row());
        assert!(shown.contains("command: [\"sh\",\"-c\",\"exit 3\"]\n"), "{shown}");
        assert!(shown.contains("exit code: 3\n") && shown.contains("close detail: -\n"), "{shown}");
        assert!(shown.contains("hold: -\n"), "{shown}");
        let mut held = row();
        held.hold = Some(crate::wire::api::HoldView {
            reason: "case 7\u{1b}[2J".into(),
            by: "carol".into(),
            at: 1_795_968_000_000,
        });
        assert!(
            details(&held).contains("hold: case 7\u{fffd}[2J (by carol, 2026-11-29 16:00:00 UTC)\n"),
            "{}",
            details(&held)
        );
        assert!(table(&[held]).contains(" ended,held "));
    }

    #[test]
    fn commands_and_offsets() {
        use crate::wire::search::CommandFlag;
        let entry =
            |at: f64, text: &str, flags: Vec<CommandFlag>| CommandEntry { seq: 0, at, text: text.into(), flags };
        let text = command_table(&[
            entry(2.06, "ls -la", vec![]),
            entry(75.0, "for i in 1 2; do\n  echo $i\ndone", vec![CommandFlag::Continued, CommandFlag::Paste]),
            entry(3_725.0, "cat \x1b[2J", vec![]),
        ]);
        let indent = " ".repeat(9 + 2 + 15 + 2);
        let expected = format!(
            "AT         FLAGS            TEXT\n\
             0:02.1     -                ls -la\n\
             1:15.0     continued,paste  for i in 1 2; do\n\
             {indent}  echo $i\n\
             {indent}done\n\
             1:02:05.0  -                cat \u{fffd}[2J\n"
        );
        assert_eq!(text, expected);
        assert_eq!(format_offset(59.99), "0:59");
        assert_eq!(format_offset(f64::NAN), "0:00");
        assert_eq!(format_offset(3_600.0), "1:00:00");
        assert_eq!(printable("a\tb\r\n\u{9b}c", "⏎"), "a b⏎\u{fffd}c");
    }
}
