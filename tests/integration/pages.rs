//! The web pages end to end, in headless Chromium against a real gateway and dockerd: sign-in,
//! the sessions page, search, replay in asciinema-player (at a moment, with the command list),
//! live watch, kill, the messages a page shows when the API refuses, and command rules: a held
//! command approved from the sessions page and denied from the live page, the alerts page, and
//! a block rule stopping a command typed into the web terminal.

use std::process::Stdio;
use std::time::Duration;

use crate::common::browser::{Browser, Engine, in_both_browsers};
use crate::common::{BASH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::RuleConfig;
use entry::store::SessionStatus;
use entry::wire::rules::RuleAction;
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::json;
use tokio::io::AsyncReadExt;

in_both_browsers!(
    an_auditor_replays_a_finished_session_in_the_player,
    an_admin_kills_a_live_cli_session_from_the_sessions_page,
    a_live_session_is_watched_and_replayed_up_to_now_until_it_ends,
    pages_say_clearly_when_the_api_refuses,
    an_auditor_searches_output_and_opens_the_replay_paused_at_the_hit,
    an_admin_approves_a_held_command_from_the_sessions_page,
    an_admin_denies_a_held_command_from_the_live_page,
    a_list_page_s_filters_follow_the_address,
    the_web_terminal_is_stopped_by_a_block_rule,
);

/// Runs a developer's finished session that printed `replay-marker-42`; returns its id.
async fn finished_session(app: &TestApp, container: &TestContainer) -> String {
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    session.type_text("echo replay-marker-$((6*7))\r").await;
    session.read_until("replay-marker-42", WAIT).await;
    session.winch(90, 25).await;
    session.type_text("exit 3\r").await;
    session.read_to_close(WAIT).await;
    crate::common::wait_for_newest(&app.store, WAIT, "stored recording", crate::common::is_final).await.id
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_served_with_a_strict_content_security_policy() {
    let app = TestApp::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str| http.get(format!("{}{path}", app.url())).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status().as_u16(), 303);
    assert_eq!(root.headers()["location"], "/sessions");
    for path in [
        "/login",
        "/sessions",
        "/sessions/01a22800-0000-7000-8000-000000000000",
        "/audit",
        "/search",
        "/alerts",
        "/share/",
    ] {
        let page = get(path).await.unwrap();
        assert_eq!(page.status().as_u16(), 200, "{path}: were the pages built? (npm --prefix player run build)");
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
        let html = page.text().await.unwrap();
        assert!(html.contains("/assets/") && !html.contains("<script>"), "{path}: inline script or no assets");
    }
    let script = get("/assets/sessions.js").await.unwrap();
    assert_eq!(script.status().as_u16(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().contains("javascript"));
    let etag = script.headers()["etag"].clone();
    let again = http.get(format!("{}/assets/sessions.js", app.url())).header("if-none-match", etag).send().await;
    assert_eq!(again.unwrap().status().as_u16(), 304);
    for missing in ["/assets/nope.js", "/assets/../Cargo.toml", "/assets/%2e%2e/Cargo.toml"] {
        assert_eq!(get(missing).await.unwrap().status().as_u16(), 404, "{missing}");
    }
}

async fn an_auditor_replays_a_finished_session_in_the_player(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let id = finished_session(&app, &container).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    assert_eq!(browser.path().await, "/sessions");
    browser.wait_for_text("#whoami", "audrey", WAIT).await;
    let row = format!("#sessions tr[data-session-id='{id}']");
    let text = browser.wait_for_text(&row, "alice", WAIT).await;
    assert!(text.contains(&container.name) && text.contains("ended"), "{text}");
    browser.click(&format!("{row} a.replay")).await;

    browser.wait_until("the replay page", WAIT, || async { browser.path().await == format!("/sessions/{id}") }).await;
    let meta = browser.wait_for_text("#meta", &container.name, WAIT).await;
    assert!(meta.contains("alice") && meta.contains("ended"), "{meta}");
    let download = browser.js("return document.querySelector('#download').getAttribute('href')", vec![]).await;
    assert_eq!(download, format!("/api/v1/sessions/{id}/recording"));
    // Markers at both resizes and at the exit.
    browser
        .wait_until("the player's markers", WAIT, || async {
            browser.js("return Array.isArray(window.entryMarkers)", vec![]).await == true
        })
        .await;
    let markers = browser.js("return window.entryMarkers.map(m => m[1])", vec![]).await;
    let markers: Vec<String> = serde_json::from_value(markers).unwrap();
    assert!(markers.iter().any(|m| m.contains("90x25")), "{markers:?}");
    assert!(markers.last().is_some_and(|m| m.contains("exit 3")), "{markers:?}");

    // Play it as a user would, until the known line is on the player's screen.
    let play = browser.client.wait().for_element(fantoccini::Locator::Css(".ap-playback-button")).await.unwrap();
    assert_eq!(browser.js("return document.querySelectorAll('.ap-player .ap-term').length", vec![]).await, 1);
    assert!(!browser.text(".ap-player").await.contains("replay-marker-42"), "shown before playing");
    play.click().await.unwrap();
    browser.wait_for_text(".ap-term", "replay-marker-42", WAIT).await;
    browser.close().await;

    let audit = app.store.audit_entries(Some(&id), None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "audrey" && e.action == "replay"), "{audit:?}");
}

async fn an_admin_kills_a_live_cli_session_from_the_sessions_page(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &["*"]).await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let mut cli = tokio::process::Command::new(crate::common::server::ENTRY)
        .args(["enter", &container.name, "-T", "--", "sh", "-c", "echo cli-ready; exec sleep 1000"])
        .env("ENTRY_SERVER", app.url())
        .env("ENTRY_TOKEN", &developer)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let row =
        crate::common::wait_for_newest(&app.store, WAIT, "a live session", |r| r.status == SessionStatus::Live).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &admin).await;
    let selector = format!("#sessions tr[data-session-id='{}']", row.id);
    browser.wait_for_text(&selector, "live", WAIT).await;
    browser.click(&format!("{selector} button.kill")).await;
    browser.click("#kill-confirm").await;

    let status = tokio::time::timeout(WAIT, cli.wait()).await.expect("the CLI ended").unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    cli.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
    cli.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(stdout.contains("cli-ready"), "{stdout}");
    assert!(format!("{stdout}{stderr}").contains("terminated by root"), "{stdout}\n{stderr}");
    browser.wait_for_text("#notice", "root", WAIT).await;
    let selector = format!("#sessions tr[data-session-id='{}'][data-status='killed']", row.id);
    browser.wait_for_text(&selector, "killed", WAIT).await;
    browser.close().await;

    let row = crate::common::wait_for_newest(&app.store, WAIT, "reaped", |r| {
        crate::common::is_final(r) && r.reap_status.is_some()
    })
    .await;
    assert_eq!(row.status, SessionStatus::Killed);
    assert_eq!(container.marked_processes(&row.id), 0);
}

async fn a_live_session_is_watched_and_replayed_up_to_now_until_it_ends(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    session.type_text("echo before-$((40+1))\r").await;
    session.read_until("before-41", WAIT).await;
    let id = crate::common::newest_session(&app.store).await.id;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    browser.goto(&format!("{}/sessions/{id}/live", app.url())).await;
    browser.wait_for_text("#terminal", "before-41", WAIT).await;
    browser.wait_for_text("#status", "live", WAIT).await;
    let size = || browser.js("return [window.entryTerminal.cols, window.entryTerminal.rows]", vec![]);
    assert_eq!(size().await, serde_json::json!([100, 30]), "the watch terminal has the session's size");
    session.winch(90, 25).await;
    session.type_text("echo during-$((40+2))\r").await;
    browser.wait_for_text("#terminal", "during-42", WAIT).await;
    assert_eq!(size().await, serde_json::json!([90, 25]), "the watch terminal follows resizes");

    // The running session replays up to its last flush, and the page says it is running.
    browser.goto(&format!("{}/sessions/{id}", app.url())).await;
    browser.wait_for_text("#notice", "still running", WAIT).await;
    browser.click(".ap-playback-button").await;
    browser.wait_for_text(".ap-term", "before-41", WAIT).await;

    browser.goto(&format!("{}/sessions/{id}/live", app.url())).await;
    browser.wait_for_text("#status", "live", WAIT).await;
    session.type_text("exit 5\r").await;
    session.read_to_close(WAIT).await;
    let status = browser.wait_for_text("#status", "exit", WAIT).await;
    assert!(status.contains('5'), "{status}");
    browser.close().await;
}

async fn pages_say_clearly_when_the_api_refuses(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let id = finished_session(&app, &container).await;
    let browser = Browser::start(engine).await;

    // Not signed in: every page sends the browser to sign in, and back afterwards.
    browser.goto(&format!("{}/audit", app.url())).await;
    browser.wait_until("the sign-in page", WAIT, || async { browser.path().await.starts_with("/login?next=") }).await;
    let input = browser.client.wait().for_element(fantoccini::Locator::Css("#token")).await.unwrap();
    input.send_keys("tkaaaaaaaaaa.wrong").await.unwrap();
    browser.click("#login button[type=submit]").await;
    browser.wait_for_text("#error", "invalid or revoked token", WAIT).await;
    assert!(browser.path().await.starts_with("/login"));

    // A developer who is not alice: her session does not exist for him, the audit log is closed.
    let bob = app.token("bob", Role::Developer, &["*"]).await;
    browser.sign_in(&app.url(), &bob).await;
    browser.goto(&format!("{}/sessions/{id}", app.url())).await;
    browser.wait_for_text("#error", "no session", WAIT).await;
    browser.goto(&format!("{}/audit", app.url())).await;
    browser.wait_for_text("#error", "forbidden", WAIT).await;
    browser.goto(&format!("{}/sessions", app.url())).await;
    browser.wait_for_text("#sessions", "No sessions", WAIT).await;
    assert!(!browser.text("#sessions").await.contains(&id));

    // The owner replays, but may not watch (it is over anyway) or kill.
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    browser.js("return fetch('/api/v1/logout', {method: 'POST'}).then(r => r.status)", vec![]).await;
    browser.sign_in(&app.url(), &alice).await;
    browser.wait_for_text(&format!("#sessions tr[data-session-id='{id}']"), "ended", WAIT).await;
    let kill_buttons = browser.js("return document.querySelectorAll('#sessions button.kill').length", vec![]).await;
    assert_eq!(kill_buttons, 0);
    browser.goto(&format!("{}/sessions/{id}/live", app.url())).await;
    browser.wait_for_text("#error", "not live", WAIT).await;
    browser.close().await;
}

async fn an_auditor_searches_output_and_opens_the_replay_paused_at_the_hit(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.winch(100, 30).await;
    session.type_text("echo needle-$((6*7))\r").await;
    session.read_until("needle-42", WAIT).await;
    // Seconds of nothing after the hit, so that "paused at the hit" differs from "at the end".
    tokio::time::sleep(Duration::from_secs(3)).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let id = crate::common::wait_for_newest(&app.store, WAIT, "stored recording", crate::common::is_final).await.id;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;

    // The hit is in the index before the browser looks for it.
    let http = reqwest::Client::new();
    let search = format!("{}/api/v1/search?q=needle-42", app.url());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = http.get(&search).header("authorization", bearer(&auditor)).send().await.unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap();
        if status.is_success() && body["hits"].as_array().is_some_and(|hits| !hits.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no hit for needle-42: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // From the sessions page's search box to the search page.
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    assert_eq!(browser.path().await, "/sessions");
    let input = browser.client.wait().for_element(fantoccini::Locator::Css("#search input[name=q]")).await.unwrap();
    input.send_keys("needle-42").await.unwrap();
    browser.click("#search button[type=submit]").await;
    browser.wait_until("the search page", WAIT, || async { browser.path().await.starts_with("/search?") }).await;
    let path = browser.path().await;
    assert!(path.contains("q=needle-42") && path.contains("kind=all"), "{path}");
    let results = browser.wait_for_text("#results tbody", "needle-42", WAIT).await;
    assert!(results.contains("alice") && results.contains(&container.name), "{results}");
    assert_eq!(browser.text("#results tbody tr mark").await, "needle-42", "the match is marked");
    let hit = "#results tbody tr a.hit";
    let href = browser.js("return document.querySelector(arguments[0]).getAttribute('href')", vec![hit.into()]).await;
    let href = href.as_str().unwrap().to_owned();
    let prefix = format!("/sessions/{id}?t=");
    assert!(href.starts_with(&prefix), "{href}");
    let t: f64 = href[prefix.len()..].parse().unwrap();
    assert!(t > 0.0, "{href}");

    // The hit opens the replay paused at its moment, with the line on the player's screen.
    browser.click(hit).await;
    browser.wait_until("the replay page at the hit", WAIT, || async { browser.path().await == href }).await;
    browser.wait_for_text(".ap-term", "needle-42", WAIT).await;
    // The page opens a moment (0.1 s) past the hit, whose time is rounded to the millisecond.
    let position = "return typeof window.entrySessionTime === 'function' ? window.entrySessionTime() : null";
    browser
        .wait_until(&format!("the player at {t} s"), WAIT, || async {
            browser.js(position, vec![]).await.as_f64().is_some_and(|p| p >= t && p < t + 0.25)
        })
        .await;
    let current = "return window.entryPlayer.getCurrentTime()";
    let before = browser.js(current, vec![]).await.as_f64().unwrap();
    assert!(before > 0.0 && before < t + 0.25, "player time {before}, hit at {t}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(browser.js(current, vec![]).await.as_f64().unwrap(), before, "the player is paused");
    assert!(browser.js(position, vec![]).await.as_f64().unwrap() < t + 1.0, "not at the end");

    // The command list has the command as typed; it is the current one at its output.
    let commands = browser.wait_for_text("#commands", "echo needle-$((6*7))", WAIT).await;
    assert!(!commands.contains("no command index"), "{commands}");
    let entry = "#commands [data-at]";
    let at = browser
        .js(
            "return [...document.querySelectorAll(arguments[0])].find(e => e.textContent.includes('echo needle-')).dataset.at",
            vec![entry.into()],
        )
        .await;
    let at: f64 = at.as_str().unwrap().parse().unwrap();
    assert!(at > 0.0 && at <= t, "the command at {at}, its output at {t}");
    browser.wait_for_text("#commands .current", "echo needle-", WAIT).await;

    // Clicking a command seeks the player there.
    browser.js("document.querySelector('#commands .current button').scrollIntoView()", vec![]).await;
    browser.click("#commands .current button").await;
    browser
        .wait_until(&format!("the player at the command ({at} s)"), WAIT, || async {
            browser.js(position, vec![]).await.as_f64().is_some_and(|p| (p - at).abs() < 0.1)
        })
        .await;

    // Nothing found, and a query the API refuses, each say so.
    browser.goto(&format!("{}/search?q=no-such-needle&kind=output", app.url())).await;
    browser.wait_for_text("#results", "No output matches", WAIT).await;
    browser.goto(&format!("{}/search?q=needle&since=yesterday", app.url())).await;
    let error = browser.wait_for_text("#error", "Could not search", WAIT).await;
    assert!(error.contains("400"), "{error}");
    browser.close().await;
}

/// A gateway with one command rule, `name`, acting on commands that match `pattern`.
async fn app_with_rule(name: &str, pattern: &str, action: RuleAction) -> TestApp {
    let rule = RuleConfig::new(name, pattern, action);
    TestApp::builder()
        .configure(|c| {
            c.rules = vec![rule];
            c.rule_options.review_timeout = Duration::from_secs(60);
        })
        .start()
        .await
}

/// Alice's bash session, in which `line` and Enter are held for review; returns it and its id.
async fn held_command(app: &TestApp, container: &TestContainer, line: &str) -> (Session, String) {
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let headers =
        [("container", container.name.as_str()), ("authorization", auth.as_str()), ("command", r#"["bash"]"#)];
    let mut session = app.connect(&headers).await;
    session.winch(100, 30).await;
    session.read_until("# ", WAIT).await;
    session.type_text(line).await;
    session.type_text("\r").await;
    session.read_until("waiting for approval", WAIT).await;
    let id = crate::common::newest_session(&app.store).await.id;
    (session, id)
}

/// The `href` of the first element matching `selector`.
async fn href(browser: &Browser, selector: &str) -> String {
    let script = "return document.querySelector(arguments[0]).getAttribute('href')";
    browser.js(script, vec![json!(selector)]).await.as_str().unwrap_or_default().to_owned()
}

/// Whether the element `selector` is hidden.
async fn hidden(browser: &Browser, selector: &str) -> bool {
    browser.js("return document.querySelector(arguments[0]).hidden", vec![json!(selector)]).await == true
}

async fn an_admin_approves_a_held_command_from_the_sessions_page(engine: Engine) {
    let app = app_with_rule("needs-approval", "appro", RuleAction::Review).await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = held_command(&app, &container, "echo appro''ved-$((6*7))").await;
    let admin = app.token("root", Role::Admin, &["*"]).await;

    // The session is badged; the held command waits above the table with its rule.
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &admin).await;
    let row = format!("#sessions tr[data-session-id='{id}']");
    let text = browser.wait_for_text(&row, "review pending", WAIT).await;
    assert!(text.contains("1 alert"), "{text}");
    assert_eq!(href(&browser, &format!("{row} a.badge-alerts")).await, format!("/alerts?session={id}"));
    let held = format!("#reviews li[data-session-id='{id}']");
    let text = browser.wait_for_text(&held, "echo appro''ved-$((6*7))", WAIT).await;
    assert!(text.contains("needs-approval") && text.contains("alice"), "{text}");
    browser.click(&format!("{held} button.approve")).await;

    // The command runs, and the user is told who approved it.
    let output = session.read_until("approved-42", WAIT).await.stdout_text();
    assert!(output.contains(" - approved by root"), "{output}");
    browser.wait_for_text("#notice", "root approved", WAIT).await;
    browser.wait_until("the held command gone", WAIT, || hidden(&browser, "#reviews")).await;
    browser
        .wait_until("the review badge gone", WAIT, || async { !browser.text(&row).await.contains("review pending") })
        .await;

    // The alerts page lists it as approved by root, linked to the replay at its second.
    browser.click("#topbar a[data-nav='alerts']").await;
    browser.wait_until("the alerts page", WAIT, || async { browser.path().await == "/alerts" }).await;
    let hit = format!("#alerts tbody tr[data-session-id='{id}'][data-outcome='approved']");
    let text = browser.wait_for_text(&hit, "echo appro''ved-$((6*7))", WAIT).await;
    for part in ["alice", container.name.as_str(), "needs-approval", "review", "approved", "root"] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    let link = href(&browser, &format!("{hit} a.command")).await;
    let second = link.strip_prefix(&format!("/sessions/{id}?t=")).unwrap_or_else(|| panic!("{link}"));
    second.parse::<u64>().unwrap_or_else(|e| panic!("{link}: {e}"));
    assert_eq!(browser.js("return document.querySelectorAll('#alerts button.approve').length", vec![]).await, 0);
    browser.close().await;
}

async fn an_admin_denies_a_held_command_from_the_live_page(engine: Engine) {
    let app = app_with_rule("needs-approval", "appro", RuleAction::Review).await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, id) = held_command(&app, &container, "echo appro''ved-$((7*8))").await;
    let admin = app.token("root", Role::Admin, &["*"]).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &admin).await;
    browser.goto(&format!("{}/sessions/{id}/live", app.url())).await;
    browser.wait_for_text("#status", "live", WAIT).await;
    // A watcher who came after the hold sees the typed line (the screen is the shell's; the
    // gateway's notice went only to who was there), and the held command above it.
    browser.wait_for_terminal("# echo appro''ved-$((7*8))", WAIT).await;
    let held = "#reviews li[data-hit-id]";
    let text = browser.wait_for_text(held, "echo appro''ved-$((7*8))", WAIT).await;
    assert!(text.contains("needs-approval"), "{text}");
    browser.click(&format!("{held} button.deny")).await;

    // The user and the watcher are told; the command never runs, and the shell goes on.
    let output = session.read_until("denied by root", WAIT).await.stdout_text();
    browser.wait_for_terminal(" - denied by root", WAIT).await;
    browser.wait_for_text("#notice", "root denied", WAIT).await;
    browser.wait_until("the held command gone", WAIT, || hidden(&browser, "#reviews")).await;
    session.type_text("echo after-$((1+1))\r").await;
    let after = session.read_until("after-2", WAIT).await.stdout_text();
    assert!(!format!("{output}{after}").contains("approved-56"), "the denied command ran: {output}{after}");
    assert!(!browser.terminal_text().await.contains("approved-56"));

    // Filtered by session and outcome, the alerts page has it, denied by root.
    browser.goto(&format!("{}/alerts?session={id}&outcome=denied", app.url())).await;
    let text = browser.wait_for_text("#alerts tbody tr[data-outcome='denied']", "root", WAIT).await;
    assert!(text.contains("echo appro''ved-$((7*8))"), "{text}");
    browser.close().await;
}

/// Types keys into the page's xterm.js terminal (its textarea, which has the keyboard focus).
async fn type_keys(browser: &Browser, keys: &str) {
    let input = browser.client.find(Locator::Css(".xterm-helper-textarea")).await.unwrap();
    input.send_keys(keys).await.unwrap();
}

async fn the_web_terminal_is_stopped_by_a_block_rule(engine: Engine) {
    let app = app_with_rule("no-data-wipe", r"rm\s+-rf\s+/data", RuleAction::Block).await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    let (tab, enter) = (char::from(Key::Tab), char::from(Key::Enter));

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &developer).await;
    browser.goto(&format!("{}/terminal?container={}", app.url(), container.compose())).await;
    browser
        .wait_until("the terminal live", WAIT, || async {
            browser.js("return document.querySelector('#status').dataset.state", vec![]).await == "live"
        })
        .await;
    browser.wait_until("the prompt", WAIT, || async { browser.terminal_text().await.trim_end().ends_with('#') }).await;
    type_keys(&browser, &format!("mkdir -p /data; touch /data/keep; echo ma''de{enter}")).await;
    browser.wait_for_terminal("\nmade", WAIT).await;

    // Completed with Tab, as typed: the rule reads the line the terminal shows.
    type_keys(&browser, &format!("rm -rf /da{tab}")).await;
    browser.wait_for_terminal("rm -rf /data/", WAIT).await;
    type_keys(&browser, &enter.to_string()).await;
    let text = browser.wait_for_terminal("blocked by rule \"no-data-wipe\"", WAIT).await;
    assert!(text.contains("ask an admin"), "{text}");

    // Nothing was removed, and the shell takes the next command.
    let listed = std::process::Command::new("docker").args(["exec", &container.name, "ls", "/data"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "keep");
    type_keys(&browser, &format!("echo ne''xt-$((2+3)){enter}")).await;
    browser.wait_for_terminal("\nnext-5", WAIT).await;

    // The developer finds the hit, blocked, on the alerts page.
    browser.goto(&format!("{}/alerts", app.url())).await;
    let text = browser.wait_for_text("#alerts tbody tr[data-outcome='blocked']", "no-data-wipe", WAIT).await;
    assert!(text.contains("rm -rf /data") && text.contains("block"), "{text}");
    browser.close().await;
}

/// The filter form of a list page (here the alerts page, through the one binding every list
/// page uses) puts its filters in the address, clears them on reset, and shows an earlier
/// entry's filters again on Back.
async fn a_list_page_s_filters_follow_the_address(engine: Engine) {
    let app = TestApp::start().await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    browser.goto(&format!("{}/alerts", app.url())).await;
    let search =
        || async { browser.js("return location.search", vec![]).await.as_str().unwrap_or_default().to_owned() };
    let outcome =
        || async { browser.js("return document.querySelector('#alert-filters [name=outcome]').value", vec![]).await };
    browser.wait_until("the alerts page", WAIT, || async { browser.path().await == "/alerts" }).await;
    browser
        .js(
            "const form = document.getElementById('alert-filters'); \
             form.elements.outcome.value = 'blocked'; form.requestSubmit();",
            vec![],
        )
        .await;
    browser.wait_until("the filter in the address", WAIT, || async { search().await == "?outcome=blocked" }).await;
    browser.js("document.getElementById('alert-filters').reset();", vec![]).await;
    browser
        .wait_until("the filter cleared", WAIT, || async { search().await.is_empty() && outcome().await == "" })
        .await;
    browser.js("history.back();", vec![]).await;
    browser
        .wait_until("the filter back", WAIT, || async {
            search().await == "?outcome=blocked" && outcome().await == "blocked"
        })
        .await;
    browser.close().await;
}
