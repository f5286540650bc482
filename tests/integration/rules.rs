//! Command rules end to end, in real bash through the gateway: a `block` rule stops
//! `rm -rf /data` typed with tab completion and edits, split over a `\` continuation, pasted in
//! one message with its Tab and Enter, or fed without a TTY (the file is still there after
//! each); a `review` is approved (with `entry reviews`), denied, timed out or cancelled with
//! Ctrl-C, and decided only by another admin, once; a `kill` ends the session `rule` and reaps
//! it; a `notify` reaches a real SMTP server (Python's aiosmtpd, over STARTTLS) and a webhook
//! receiver that fails once, with the replay link; commands no rule matches run as before; every hit is a row, an alert, a marker
//! in the recording and a `blocked` command in the index.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{BASH_IMAGE, SH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::config::{Config, RuleConfig, SmtpConfig};
use entry::recorder::asciicast::{self, EventKind};
use entry::store::{HitFilter, SessionStatus};
use entry::wire::protocol::CloseReason;
use entry::wire::rules::RuleAction;

const KEY_GAP: Duration = Duration::from_millis(20);

async fn type_chars(session: &mut Session, text: &str) {
    for ch in text.chars() {
        session.type_text(&ch.to_string()).await;
        tokio::time::sleep(KEY_GAP).await;
    }
}

/// Types `line` a key at a time, then Enter, and waits for `marker`.
async fn run(session: &mut Session, line: &str, marker: &str) -> String {
    type_chars(session, line).await;
    session.type_text("\r").await;
    String::from_utf8_lossy(&session.read_until(marker, WAIT).await.stdout).into_owned()
}

async fn app_with(rules: Vec<RuleConfig>, edit: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::builder()
        .configure(move |config| {
            config.rules = rules;
            edit(config);
        })
        .start()
        .await
}

async fn bash(app: &TestApp, container: &TestContainer, token: &str) -> Session {
    let auth = bearer(token);
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["bash"]"#)]).await;
    session.winch(120, 30).await;
    session.read_until("# ", WAIT).await;
    session
}

fn data_kept(container: &TestContainer) -> bool {
    let output = Command::new("docker").args(["exec", &container.name, "ls", "/data"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).contains("keep")
}

/// The markers of a finished session's recording.
async fn markers(app: &TestApp, token: &str, session_id: &str) -> Vec<String> {
    let url = format!("{}/api/v1/sessions/{session_id}/recording", app.url());
    let text = reqwest::Client::new().get(&url).bearer_auth(token).send().await.unwrap().text().await.unwrap();
    let (_, events) = asciicast::parse(&text).unwrap();
    events
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Marker(label) => Some(label),
            _ => None,
        })
        .collect()
}

async fn finished(app: &TestApp) -> entry::store::SessionRow {
    wait_for_newest(&app.store, WAIT, "the session's final row", is_final).await
}

#[tokio::test]
async fn a_block_rule_stops_rm_rf_data_however_it_is_typed() {
    let app = app_with(vec![RuleConfig::new("drop-data", r"rm\s+-rf\s+/data", RuleAction::Block)], |_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let admin = app.token("root-admin", Role::Admin, &["*"]).await;
    let mut session = bash(&app, &container, &token).await;
    run(&mut session, "mkdir -p /data; touch /data/keep; echo made-$((1+1))", "made-2").await;
    // Typed with a typo fixed and tab completion: `rm -rf /dx`, backspace, `a`, Tab → /data/.
    type_chars(&mut session, "rm -rf /dx").await;
    session.type_text("\x7f").await;
    type_chars(&mut session, "a\t").await;
    // The screen shows `rm -rf /data/`: the echo of `a`, then the completion `ta/`.
    session.read_until("ata/", WAIT).await;
    session.type_text("\r").await;
    let shown = String::from_utf8_lossy(&session.read_until("(ask an admin)", WAIT).await.stdout).into_owned();
    assert!(shown.contains("Entry: blocked by rule \"drop-data\""), "{shown:?}");
    assert!(data_kept(&container));
    // The line is cleared: the next command runs alone.
    let after = run(&mut session, "ls /data; echo list-$((1+1))", "list-2").await;
    assert!(after.contains("keep"), "{after:?}");
    // Over a `\` continuation.
    run(&mut session, "rm -rf \\", "> ").await;
    type_chars(&mut session, "/data").await;
    session.type_text("\r").await;
    session.read_until("(ask an admin)", WAIT).await;
    // The continuation goes on with a harmless line: the blocked one left nothing behind.
    let shown = run(&mut session, "/nonexistent-dir; echo cont-$((1+1))", "cont-2").await;
    assert!(!shown.contains("data") && !shown.contains("Entry:"), "{shown:?}");
    run(&mut session, "echo cont-$((2+2))", "cont-4").await;
    assert!(data_kept(&container));
    // Pasted in one message, completion and Enter included: the gate waits for the shell's echo.
    session.type_text("rm -rf /da\t\r").await;
    session.read_until("(ask an admin)", WAIT).await;
    run(&mut session, "echo paste-$((3+3))", "paste-6").await;
    assert!(data_kept(&container));
    // Keys the terminal does not show are matched as typed, and never kept in the hit.
    run(&mut session, "read -s secret; echo got-${#secret}", "secret").await;
    type_chars(&mut session, "rm -rf /data").await;
    session.type_text("\r").await;
    session.read_until("(ask an admin)", WAIT).await;
    session.type_text("\x03").await;
    run(&mut session, "echo unechoed-$((4+4))", "unechoed-8").await;
    run(&mut session, "exit", "exit").await;
    let row = finished(&app).await;
    assert_eq!(row.close_reason.as_deref(), Some("exited"));
    let hits =
        app.store.hits(&HitFilter { session_id: Some(row.id.clone()), limit: 10, ..Default::default() }).await.unwrap();
    let commands: Vec<(&str, &str)> = hits.iter().rev().map(|h| (h.command.as_str(), h.outcome.as_str())).collect();
    assert_eq!(
        commands,
        [
            ("rm -rf /data/", "blocked"),
            ("rm -rf \\\n/data", "blocked"),
            ("rm -rf /data/", "blocked"),
            ("[unechoed input]", "blocked")
        ],
        "{hits:#?}"
    );
    assert!(hits.iter().all(|h| h.rule == "drop-data" && h.user_name == "dev" && h.offset_ms > 0));
    let markers = markers(&app, &admin, &row.id).await;
    assert_eq!(markers.iter().filter(|m| m.starts_with("blocked: drop-data: rm -rf")).count(), 3, "{markers:?}");
    // The index has the blocked commands flagged, and the others as usual.
    let indexed = app.store.commands(&row.id).await.unwrap();
    let blocked = indexed.iter().filter(|c| c.flags.contains("blocked")).count();
    assert_eq!(blocked, 4, "{indexed:#?}");
    assert!(indexed.iter().any(|c| c.text == "ls /data; echo list-$((1+1))" && c.flags.is_empty()), "{indexed:#?}");
}

#[tokio::test]
async fn commands_no_rule_matches_run_as_before() {
    let rules = (0..100)
        .map(|i| RuleConfig::new(&format!("r{i}"), &format!(r"rm\s+-rf\s+/srv{i}\b"), RuleAction::Block))
        .collect();
    let app = app_with(rules, |_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let mut session = bash(&app, &container, &token).await;
    let shown = run(&mut session, "echo fine-$((7*6)); echo rm -rf /srv", "fine-42").await;
    assert!(!shown.contains("Entry:"), "{shown:?}");
    run(&mut session, "exit", "exit").await;
    let row = finished(&app).await;
    assert!(
        app.store
            .hits(&HitFilter { session_id: Some(row.id), limit: 10, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
}

/// Waits for the pending hit of the newest held command.
async fn pending(app: &TestApp) -> entry::store::RuleHitRow {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let filter = HitFilter { outcome: Some("pending".into()), limit: 1, ..Default::default() };
        if let Some(hit) = app.store.hits(&filter).await.unwrap().into_iter().next() {
            return hit;
        }
        assert!(tokio::time::Instant::now() < deadline, "no held command");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `entry <args>` against the app; returns (exit code, stdout, stderr).
async fn cli(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(crate::common::server::ENTRY)
        .args(args)
        .env("ENTRY_SERVER", app.url())
        .env("ENTRY_TOKEN", token)
        .output()
        .await
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

async fn decide(app: &TestApp, token: &str, id: &str, verdict: &str) -> (u16, serde_json::Value) {
    let url = format!("{}/api/v1/reviews/{id}/{verdict}", app.url());
    let response = reqwest::Client::new().post(&url).bearer_auth(token).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_review_runs_the_command_once_another_admin_approves_and_never_otherwise() {
    let app = app_with(vec![RuleConfig::new("held", r"echo\s+held-", RuleAction::Review)], |c| {
        c.rule_options.review_timeout = Duration::from_secs(2);
    })
    .await;
    let container = TestContainer::start(BASH_IMAGE);
    let dev = app.token("dev", Role::Developer, &["*"]).await;
    let boss = app.token("boss", Role::Admin, &["*"]).await;
    let other_dev = app.token("eve", Role::Developer, &["*"]).await;
    let mut session = bash(&app, &container, &dev).await;

    // Approved by an admin: it runs.
    type_chars(&mut session, "echo held-$((10+1))").await;
    session.type_text("\r").await;
    session.read_until("waiting for approval (Ctrl-C to cancel)", WAIT).await;
    let hit = pending(&app).await;
    assert_eq!((hit.command.as_str(), hit.rule.as_str()), ("echo held-$((10+1))", "held"));
    // Not by a developer, not by the command's own user.
    assert_eq!(decide(&app, &other_dev, &hit.id, "approve").await.0, 403);
    assert_eq!(decide(&app, &dev, &hit.id, "approve").await.0, 403);
    // The admin sees it with `entry reviews ls` and approves it with `entry reviews approve`.
    let (code, listed, _) = cli(&app, &boss, &["reviews", "ls"]).await;
    assert!(code == 0 && listed.contains(&hit.id) && listed.contains("echo held-$((10+1))"), "{listed}");
    let (code, approved, error) = cli(&app, &boss, &["reviews", "approve", &hit.id]).await;
    assert_eq!(code, 0, "{error}");
    assert!(approved.starts_with("approved: echo held-$((10+1)) runs now"), "{approved}");
    let shown = String::from_utf8_lossy(&session.read_until("held-11\r\n", WAIT).await.stdout).into_owned();
    assert!(shown.contains("approved by boss"), "{shown:?}");
    // A second decision is too late.
    let (status, body) = decide(&app, &boss, &hit.id, "deny").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_pending")), "{body}");
    let (code, _, error) = cli(&app, &boss, &["reviews", "deny", &hit.id]).await;
    assert!(code != 0 && error.contains("approved by boss"), "{error}");

    // Denied: it never runs.
    type_chars(&mut session, "echo held-$((20+2))").await;
    session.type_text("\r").await;
    session.read_until("waiting for approval", WAIT).await;
    let hit = pending(&app).await;
    assert_eq!(decide(&app, &boss, &hit.id, "deny").await.0, 200);
    session.read_until("denied by boss", WAIT).await;
    let after = run(&mut session, "echo next-$((1+2))", "next-3").await;
    assert!(!after.contains("held-22"), "{after:?}");

    // Nobody decides within review_timeout: it never runs.
    type_chars(&mut session, "echo held-$((30+3))").await;
    session.type_text("\r").await;
    session.read_until("nobody approved it in time", WAIT).await;
    let after = run(&mut session, "echo next-$((2+2))", "next-4").await;
    assert!(!after.contains("held-33"), "{after:?}");

    // Ctrl-C cancels it; keys typed while it waits are not passed on.
    type_chars(&mut session, "echo held-$((40+4))").await;
    session.type_text("\r").await;
    session.read_until("waiting for approval", WAIT).await;
    session.type_text("touch /tmp/typed-while-held\r").await;
    session.type_text("\x03").await;
    session.read_until("cancelled", WAIT).await;
    let after = run(&mut session, "ls /tmp; echo next-$((3+2))", "next-5").await;
    assert!(!after.contains("held-44") && !after.contains("typed-while-held"), "{after:?}");
    run(&mut session, "exit", "exit").await;

    let row = finished(&app).await;
    let hits =
        app.store.hits(&HitFilter { session_id: Some(row.id.clone()), limit: 10, ..Default::default() }).await.unwrap();
    for h in hits.iter().rev() {
        println!(
            "{} {:>9} {:<6} {:<22} {:<10} {:?}",
            h.rule, h.outcome, h.action, h.command, h.offset_ms, h.decided_by
        );
    }
    let outcomes: Vec<(&str, Option<&str>)> =
        hits.iter().rev().map(|h| (h.outcome.as_str(), h.decided_by.as_deref())).collect();
    assert_eq!(
        outcomes,
        [("approved", Some("boss")), ("denied", Some("boss")), ("timed_out", None), ("cancelled", Some("dev"))]
    );
    let markers = markers(&app, &boss, &row.id).await;
    for expected in [
        "review: held",
        "approved: held by boss",
        "denied: held by boss",
        "timed out: held",
        "not passed on while held: touch /tmp/typed-while-held",
        "cancelled: held",
    ] {
        assert!(markers.iter().any(|m| m.starts_with(expected)), "{expected} in {markers:?}");
    }
    // The decisions are in the audit log, with who took them.
    let audit = app.store.audit_entries(Some(&row.id), None, 50).await.unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|a| (a.action.as_str(), a.actor.as_str())).collect();
    assert!(actions.contains(&("review_approve", "boss")) && actions.contains(&("review_deny", "boss")), "{actions:?}");
    // Alerts: auditors see them; the developer sees their own; another developer none.
    let alerts = |token: String| {
        let url = format!("{}/api/v1/alerts?session={}", app.url(), row.id);
        async move {
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(alerts(boss.clone()).await["hits"].as_array().unwrap().len(), 4);
    assert_eq!(alerts(dev.clone()).await["hits"].as_array().unwrap().len(), 4);
    assert_eq!(alerts(other_dev.clone()).await["hits"].as_array().unwrap().len(), 0);
    // Without a token nothing of it answers; the rules are for admins only.
    let http = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/api/v1/alerts".to_owned()),
        ("GET", "/api/v1/rules".to_owned()),
        ("POST", format!("/api/v1/reviews/{}/approve", hits[0].id)),
    ] {
        let url = format!("{}{path}", app.url());
        let request = if method == "GET" { http.get(&url) } else { http.post(&url) };
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401, "{method} {path}");
    }
    let rules = |token: &str| http.get(format!("{}/api/v1/rules", app.url())).bearer_auth(token.to_owned()).send();
    assert_eq!(rules(&dev).await.unwrap().status().as_u16(), 403);
    let loaded: serde_json::Value = rules(&boss).await.unwrap().json().await.unwrap();
    assert_eq!(loaded["rules"][0]["name"], "held", "{loaded}");
    assert_eq!(
        (loaded["rules"][0]["action"].as_str(), loaded["review_timeout_secs"].as_u64()),
        (Some("review"), Some(2))
    );
    // An admin's own held command is decided by another admin, never by its own user.
    let mut own = bash(&app, &container, &boss).await;
    type_chars(&mut own, "echo held-$((70+7))").await;
    own.type_text("\r").await;
    own.read_until("waiting for approval", WAIT).await;
    let hit = pending(&app).await;
    let (status, body) = decide(&app, &boss, &hit.id, "approve").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    let other_admin = app.token("bea", Role::Admin, &["*"]).await;
    assert_eq!(decide(&app, &other_admin, &hit.id, "approve").await.0, 200);
    own.read_until("held-77\r\n", WAIT).await;
}

#[tokio::test]
async fn a_kill_rule_ends_the_session_rule_and_reaps_it() {
    let app = app_with(vec![RuleConfig::new("no-listeners", r"\bnc\s+-l", RuleAction::Kill)], |_| {}).await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let mut session = bash(&app, &container, &token).await;
    run(&mut session, "sleep 1000 & echo bg-$((5+5))", "bg-10").await;
    type_chars(&mut session, "nc -l -p 4444").await;
    session.type_text("\r").await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Rule, "{}", transcript.close_line());
    assert!(transcript.close_line().contains("no-listeners"), "{}", transcript.close_line());
    let row = wait_for_newest(&app.store, WAIT, "reaped", |r| is_final(r) && r.reap_status.is_some()).await;
    assert_eq!(row.status, SessionStatus::Killed);
    assert_eq!(row.close_reason.as_deref(), Some("rule"));
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    assert_eq!(container.marked_processes(&row.id), 0);
    assert!(!container.runs("sleep 1000"));
    let hits = app.store.hits(&HitFilter { session_id: Some(row.id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.outcome.as_str()).collect::<Vec<_>>(), ["killed"]);
}

#[tokio::test]
async fn without_a_tty_each_stdin_line_is_checked_whole() {
    let app = app_with(vec![RuleConfig::new("drop-data", r"rm\s+-rf\s+/data", RuleAction::Block)], |_| {}).await;
    let container = TestContainer::start(SH_IMAGE);
    Command::new("docker")
        .args(["exec", &container.name, "sh", "-c", "mkdir -p /data && touch /data/keep"])
        .status()
        .unwrap();
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let auth = bearer(&token);
    let mut session = app
        .connect(&[
            ("container", &container.name),
            ("authorization", &auth),
            ("command", r#"["sh"]"#),
            ("tty", "false"),
        ])
        .await;
    // A line sent in pieces is checked once it is whole.
    session.type_text("rm -r").await;
    session.type_text("f /data; echo gone\n").await;
    session.read_until("ask an admin", WAIT).await;
    session.type_text("echo still-$((2*2))\n").await;
    session.read_until("still-4", WAIT).await;
    assert!(data_kept(&container));
    session.send(entry::wire::protocol::RequestMessage::stdin_eof()).await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(!transcript.stdout_text().contains("gone"), "{}", transcript.stdout_text());
}

/// A webhook receiver on loopback that answers 503 to its first call (so the gateway retries)
/// and keeps the bodies of the rest.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let (kept, counted) = (Arc::clone(&received), Arc::clone(&calls));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let (kept, counted) = (Arc::clone(&kept), Arc::clone(&counted));
            async move {
                let mut calls = counted.lock().unwrap();
                *calls += 1;
                if *calls == 1 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                kept.lock().unwrap().push(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Python's aiosmtpd on loopback, printing each message it gets.
struct SmtpServer {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl SmtpServer {
    /// With `tls` (certificate, key), it offers STARTTLS and refuses mail without it.
    fn start(dir: &std::path::Path, tls: Option<(&std::path::Path, &std::path::Path)>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = dir.join("smtp.log");
        let log = std::fs::File::create(&out).unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["-m", "aiosmtpd", "-n", "-l", &listen];
        if let Some((cert, key)) = tls {
            args.extend(["--tlscert", cert.to_str().unwrap(), "--tlskey", key.to_str().unwrap()]);
        }
        args.extend(["-c", "aiosmtpd.handlers.Debugging", "stdout"]);
        let child = Command::new("python3")
            .args(&args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, out }
    }

    /// What it printed, quoted-printable soft line breaks and `=3D` decoded.
    fn received(&self) -> String {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn notify_reaches_a_real_smtp_server_and_a_webhook_with_the_replay_link() {
    let dir = tempfile::tempdir().unwrap();
    // The mail server offers STARTTLS and takes mail only over it; the gateway insists on it
    // and trusts the test's CA.
    let pki = crate::security::tls::pki();
    let smtp = SmtpServer::start(dir.path(), Some((&pki.cert, &pki.key)));
    let ca = pki.ca.clone();
    let (hook, received) = webhook_receiver().await;
    let mut watch = RuleConfig::new("watch-shadow", r"cat\s+/etc/shadow", RuleAction::Notify);
    watch.notify = true;
    let port = smtp.port;
    let app = app_with(vec![watch], move |config| {
        config.notify.webhook = Some(hook);
        config.notify.email_to = vec!["security@example.com".into()];
        config.notify.public_url = Some("https://entry.example.com".into());
        config.notify.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            require_tls: true,
            ca: Some(ca),
            username: None,
            password: None,
            from: "entry@example.com".into(),
        });
    })
    .await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let mut session = bash(&app, &container, &token).await;
    run(&mut session, "sleep 1.2; cat /etc/shadow; echo shown-$((8*8))", "shown-64").await;
    run(&mut session, "exit", "exit").await;
    let row = finished(&app).await;
    // The command ran (notify never holds it) and the hit is recorded.
    let hits =
        app.store.hits(&HitFilter { session_id: Some(row.id.clone()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].outcome, "notified");
    let seconds = hits[0].offset_ms / 1000;
    let link = format!("https://entry.example.com/sessions/{}?t={seconds}", row.id);
    // The webhook failed once, so its delivery came on the second try, about a second later.
    let deadline = tokio::time::Instant::now() + WAIT;
    while received.lock().unwrap().is_empty() || !smtp.received().contains(&row.id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification: {:?} / {}",
            received.lock().unwrap(),
            smtp.received()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = received.lock().unwrap()[0].clone();
    assert_eq!(body["rule"], "watch-shadow");
    assert_eq!(body["user"], "dev");
    assert_eq!(body["container"], container.name.as_str());
    assert_eq!(body["command"], "sleep 1.2; cat /etc/shadow; echo shown-$((8*8))");
    assert_eq!(body["outcome"], "notified");
    assert_eq!(body["replay_url"], link.as_str());
    let mail = smtp.received();
    assert!(mail.contains("To: security@example.com"), "{mail}");
    assert!(mail.contains("watch-shadow") && mail.contains(&link) && mail.contains("cat /etc/shadow"), "{mail}");
}

#[tokio::test]
async fn a_decision_taken_on_another_gateway_reaches_the_held_command_and_a_kill_ends_a_held_one() {
    let db = crate::common::db::TestDb::new(crate::common::db::Backend::Postgres).await;
    let gateway = |node: &'static str| {
        let url = db.url.clone();
        app_with(vec![RuleConfig::new("held", r"echo\s+held-", RuleAction::Review)], move |c| {
            c.store.url = Some(url);
            c.node_id = Some(node.into());
        })
    };
    let (a, b) = (gateway("gw-a").await, gateway("gw-b").await);
    let container = TestContainer::start(BASH_IMAGE);
    let dev = a.token("dev", Role::Developer, &["*"]).await;
    let boss = a.token("boss", Role::Admin, &["*"]).await;
    let mut session = bash(&a, &container, &dev).await;
    type_chars(&mut session, "echo held-$((50+5))").await;
    session.type_text("\r").await;
    session.read_until("waiting for approval", WAIT).await;
    let hit = pending(&b).await;
    assert_eq!(hit.node_id, "gw-a");
    let decided = std::time::Instant::now();
    assert_eq!(decide(&b, &boss, &hit.id, "approve").await.0, 200);
    session.read_until("held-55\r\n", WAIT).await;
    println!("approved on gw-b, ran on gw-a {:?} later", decided.elapsed());
    // gw-a hears of it through PostgreSQL's NOTIFY (and would by its 0.5 s poll without it).
    assert!(decided.elapsed() < Duration::from_secs(3), "{:?}", decided.elapsed());

    // A session killed while a command waits: the command never runs, its hit says so.
    type_chars(&mut session, "echo held-$((60+6))").await;
    session.type_text("\r").await;
    session.read_until("waiting for approval", WAIT).await;
    let held = pending(&a).await;
    let url = format!("{}/api/v1/sessions/{}/kill", b.url(), held.session_id);
    let killed = reqwest::Client::new().post(&url).bearer_auth(&boss).send().await.unwrap();
    assert_eq!(killed.status().as_u16(), 202);
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Killed);
    assert!(!transcript.stdout_text().contains("held-66"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = a.store.hit(&held.id).await.unwrap().unwrap();
        if now.outcome != "pending" {
            assert_eq!(now.outcome, "ended");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the held command's hit stayed pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_block_rule_clears_the_line_in_busybox_sh_too() {
    let app = app_with(vec![RuleConfig::new("drop-data", r"rm\s+-rf\s+/data", RuleAction::Block)], |_| {}).await;
    let container = TestContainer::start(SH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let auth = bearer(&token);
    let mut session =
        app.connect(&[("container", &container.name), ("authorization", &auth), ("command", r#"["sh"]"#)]).await;
    session.winch(100, 30).await;
    session.read_until("# ", WAIT).await;
    run(&mut session, "mkdir -p /data; touch /data/keep; echo made-$((1+1))", "made-2").await;
    // Typed with the cursor moved back into the line: Ctrl-E first, then Ctrl-U clears it all.
    type_chars(&mut session, "rm -rf /data").await;
    session.type_text("\x1b[D\x1b[D").await;
    session.type_text("\r").await;
    session.read_until("(ask an admin)", WAIT).await;
    let after = run(&mut session, "ls /data; echo sh-$((2+3))", "sh-5").await;
    assert!(after.contains("keep") && !after.contains("not found"), "{after:?}");
    assert!(data_kept(&container));
}
