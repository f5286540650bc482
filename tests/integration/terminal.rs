//! The web terminal end to end, in headless Chromium and Firefox against a real gateway and
//! dockerd: the container list, a shell typed into through xterm.js (UTF-8 both ways, a
//! 64 KiB paste, output split inside a character), resizing, refusals, the recorded session
//! on the sessions and replay pages; and, without a browser, the Origin check that keeps
//! other sites' pages off the terminal WebSocket.

use crate::common::browser::{Browser, Engine, in_both_browsers};
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT};
use entry::auth::Role;
use entry::store::SessionStatus;
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::json;
use sha2::{Digest, Sha256};

in_both_browsers!(
    a_developer_opens_a_terminal_from_the_container_list_and_utf8_goes_both_ways,
    the_shell_follows_the_window_size_and_says_when_the_connection_is_lost,
    refusals_are_shown_and_create_no_exec,
    a_web_session_is_listed_as_web_and_replays,
);

/// Waits for the shell's prompt (bash's own, `bash-5.2# `).
async fn wait_for_prompt(browser: &Browser) {
    browser
        .wait_until("the prompt", WAIT, || async { browser.terminal_text().await.trim_end().ends_with(['#', '$']) })
        .await;
}

/// Types `text` and then Enter into the terminal, as key presses (WebDriver send_keys on
/// xterm.js's hidden textarea, which has the keyboard focus).
async fn type_line(browser: &Browser, text: &str) {
    let input = browser.client.find(Locator::Css(".xterm-helper-textarea")).await.unwrap();
    input.send_keys(&format!("{text}{}", char::from(Key::Enter))).await.unwrap();
}

/// Waits for the prompt, then makes bash's line editor 8-bit clean. The test image (FROM
/// scratch, static bash) has no locale but C, in which readline turns bytes above 127 into
/// Meta keys and so garbles typed UTF-8 (any shell in a C locale does, whatever the client);
/// an image with a UTF-8 locale needs none of this.
async fn ready_for_utf8(browser: &Browser) {
    wait_for_prompt(browser).await;
    type_line(
        browser,
        "bind 'set input-meta on'; bind 'set convert-meta off'; bind 'set output-meta on'; echo rea''dy",
    )
    .await;
    browser.wait_for_terminal("\nready", WAIT).await;
}

/// Pastes `text` into the terminal as the user's clipboard would (xterm.js's paste).
async fn paste(browser: &Browser, text: &str) {
    browser.js("window.entryTerminal.paste(arguments[0])", vec![json!(text)]).await;
}

/// Waits until `#status` is in `state`; returns its text.
async fn wait_for_state(browser: &Browser, state: &str) -> String {
    let selector = format!("#status[data-state='{state}']");
    browser
        .wait_until(&format!("the status {state:?}"), WAIT, || async {
            browser.js("return document.querySelector(arguments[0]) !== null", vec![json!(selector)]).await == true
        })
        .await;
    browser.text("#status").await
}

/// Opens `/terminal?container=…` and waits until the session is live.
async fn open_terminal(browser: &Browser, app: &TestApp, container: &str) {
    // Names and Compose addresses need no escaping in a query.
    browser.goto(&format!("{}/terminal?container={container}", app.url())).await;
    wait_for_state(browser, "live").await;
}

/// 65,536 bytes of UTF-8 mixing ASCII, Chinese and emoji, without line breaks (which a
/// terminal's paste turns into carriage returns).
fn mixed_text() -> String {
    const UNIT: &str = "Entry 你好，世界 😀 paste-test 0123456789 终端 ";
    let mut text = String::new();
    while text.len() + UNIT.len() <= 65_536 {
        text.push_str(UNIT);
    }
    while text.len() < 65_536 {
        text.push('.');
    }
    text
}

async fn a_developer_opens_a_terminal_from_the_container_list_and_utf8_goes_both_ways(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let stopped = TestContainer::start(BASH_IMAGE);
    stopped.stop();
    let developer = app.token("alice", Role::Developer, &[&container.name, &stopped.name]).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &developer).await;
    browser.click("#topbar a[data-nav='containers']").await;
    browser.wait_until("the container list", WAIT, || async { browser.path().await == "/containers" }).await;
    let row = format!("#containers tr[data-container='{}'][data-state='running']", container.compose());
    let text = browser.wait_for_text(&row, &container.name, WAIT).await;
    assert!(text.contains(BASH_IMAGE) && text.contains("running") && text.contains("Open terminal"), "{text}");
    let stopped_row = format!("#containers tr[data-container='{}'][data-state='exited']", stopped.compose());
    let text = browser.wait_for_text(&stopped_row, &stopped.name, WAIT).await;
    assert!(text.contains("exited"), "{text}");
    let links =
        browser.js("return document.querySelectorAll(arguments[0]).length", vec![json!(format!("{stopped_row} a"))]);
    assert_eq!(links.await, 0, "a stopped container has no terminal link");
    browser.click(&format!("{row} a.open")).await;

    wait_for_state(&browser, "live").await;
    assert_eq!(browser.path().await, format!("/terminal?container={}", container.compose()));
    assert_eq!(browser.text("#title").await, container.compose());
    let focused = "return document.activeElement?.classList.contains('xterm-helper-textarea') === true";
    browser
        .wait_until("the terminal to have the focus", WAIT, || async { browser.js(focused, vec![]).await == true })
        .await;
    ready_for_utf8(&browser).await;

    // Typed as key presses, Chinese included (both drivers type characters that are on no
    // keyboard by sending them as the key's text).
    type_line(&browser, "echo 你好-$((6*7))").await;
    browser.wait_for_terminal("# echo 你好-$((6*7))\n你好-42", WAIT).await;

    // Ctrl+Shift+C copies the selection (Ctrl+C stays the shell's interrupt); the clipboard
    // is stubbed, as a headless browser has none to read back.
    let stub = "window.copied = []; navigator.clipboard.writeText = async (text) => { window.copied.push(text); };";
    browser.js(stub, vec![]).await;
    browser.js("window.entryTerminal.selectAll()", vec![]).await;
    let input = browser.client.find(Locator::Css(".xterm-helper-textarea")).await.unwrap();
    let chord = [Key::Control, Key::Shift].map(char::from).iter().collect::<String>()
        + "c"
        + &char::from(Key::Null).to_string();
    input.send_keys(&chord).await.unwrap();
    browser
        .wait_until("the selection copied", WAIT, || async {
            browser.js("return window.copied.join('')", vec![]).await.as_str().is_some_and(|t| t.contains("你好-42"))
        })
        .await;

    // A 64 KiB paste of mixed UTF-8 reaches the shell byte for byte (raw mode: no line
    // editing, no echo, no 4 KiB line limit).
    type_line(
        &browser,
        "mkdir -p /tmp; stty raw -echo; echo raw-$((2*3)); head -c 65536 > /tmp/paste; stty sane; echo pasted-$((3*3))",
    )
    .await;
    browser.wait_for_terminal("raw-6", WAIT).await;
    let text = mixed_text();
    assert_eq!(text.len(), 65_536);
    paste(&browser, &text).await;
    browser.wait_for_terminal("pasted-9", WAIT).await;
    type_line(&browser, "sha256sum /tmp/paste").await;
    let expected = hex::encode(Sha256::digest(text.as_bytes()));
    browser.wait_for_terminal(&format!("{expected}  /tmp/paste"), WAIT).await;

    // Output whose Chinese character is split between two reads renders whole.
    type_line(&browser, r"printf 'split:\344\275'; sleep 0.3; printf '\240\345\245\275:done\n'").await;
    let output = browser.wait_for_terminal("split:你好:done", WAIT).await;
    assert!(!output.contains('\u{fffd}'), "a replacement character: {output}");
    browser.close().await;

    let row = crate::common::newest_session(&app.store).await;
    assert_eq!((row.user.as_str(), row.client_kind.as_str()), ("alice", "web"));
    assert_eq!(row.container_name, container.name);
}

/// `stty size` in the shell, as "rows cols", read back from the terminal.
async fn stty_size(browser: &Browser, marker: &str) -> String {
    type_line(browser, &format!("echo {marker}=$(stty size)=")).await;
    let output = browser.wait_for_terminal(&format!("\n{marker}="), WAIT).await;
    let line = output.lines().rev().find(|line| line.starts_with(&format!("{marker}="))).unwrap();
    line.trim_start_matches(&format!("{marker}=")).trim_end_matches('=').to_owned()
}

/// The terminal's size as "rows cols".
async fn terminal_size(browser: &Browser) -> String {
    let size = browser.js("return `${window.entryTerminal.rows} ${window.entryTerminal.cols}`", vec![]).await;
    size.as_str().unwrap().to_owned()
}

async fn the_shell_follows_the_window_size_and_says_when_the_connection_is_lost(engine: Engine) {
    let mut app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &developer).await;
    open_terminal(&browser, &app, &container.compose()).await;
    wait_for_prompt(&browser).await;

    let before = terminal_size(&browser).await;
    assert_eq!(stty_size(&browser, "before").await, before, "the first WINCH");
    browser.client.set_window_size(900, 600).await.unwrap();
    browser
        .wait_until("the terminal to fit the smaller window", WAIT, || async {
            terminal_size(&browser).await != before
        })
        .await;
    // The WINCH leaves with the fit, and the gateway resizes the exec before it reads the
    // keys typed next.
    let after = terminal_size(&browser).await;
    assert_eq!(stty_size(&browser, "after").await, after, "the WINCH after the resize (before: {before})");
    let [rows, cols] = [0, 1].map(|i| after.split(' ').nth(i).unwrap().parse::<u32>().unwrap());
    let [rows_before, cols_before] = [0, 1].map(|i| before.split(' ').nth(i).unwrap().parse::<u32>().unwrap());
    assert!(cols < cols_before && rows < rows_before, "{before} -> {after}");

    // A connection that drops after opening (here: closed under the page's feet) leaves the
    // page disconnected, and the shell and its background job are reaped like a CLI
    // session's; with the gateway gone, a new session's socket never opens.
    type_line(&browser, "sleep 1000 & echo bg-$((6*7))").await;
    browser.wait_for_terminal("bg-42", WAIT).await;
    browser.js("window.entrySocket.close()", vec![]).await;
    wait_for_state(&browser, "disconnected").await;
    assert!(!browser.js("return document.querySelector('#reconnect').hidden", vec![]).await.as_bool().unwrap());
    let row = crate::common::wait_for_newest(&app.store, WAIT, "reaped", |r| {
        crate::common::is_final(r) && r.reap_status.is_some()
    })
    .await;
    assert_eq!((row.initial_rows, row.initial_cols), (Some(rows_before.into()), Some(cols_before.into())));
    assert_eq!(
        (row.close_reason.as_deref(), row.reap_status.as_deref()),
        (Some("client_gone"), Some("reaped")),
        "{row:?}"
    );
    assert_eq!(container.marked_processes(&row.id), 0);
    app.shutdown().await;
    browser.click("#reconnect").await;
    wait_for_state(&browser, "refused").await;
    browser.wait_for_text("#error", "refused the terminal connection", WAIT).await;
    browser.close().await;
}

async fn refusals_are_shown_and_create_no_exec(engine: Engine) {
    let app = TestApp::start().await;
    let mine = TestContainer::start(BASH_IMAGE);
    let outside = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&mine.name]).await;
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &developer).await;

    // The list does not hold the container, and opening it directly is refused by the gateway
    // with the words it uses for a container that does not exist.
    browser.goto(&format!("{}/containers", app.url())).await;
    browser.wait_for_text("#containers", &mine.name, WAIT).await;
    assert!(!browser.text("#containers").await.contains(&outside.name));
    browser.goto(&format!("{}/terminal?container={}", app.url(), outside.name)).await;
    wait_for_state(&browser, "refused").await;
    let error = browser.wait_for_text("#error", &outside.name, WAIT).await;
    // Answered as a container that does not exist: no oracle of other teams' containers.
    assert!(error.contains(&format!("container {} not found", outside.name)), "{error}");
    assert!(browser.text("#status").await.contains(&outside.name));
    assert!(!browser.js("return document.querySelector('#reconnect').hidden", vec![]).await.as_bool().unwrap());
    assert!(!browser.terminal_text().await.contains("not found"), "the CLOSE line went into the terminal");
    assert_eq!(outside.exec_creates(), Vec::<String>::new());

    // A container that does not exist.
    browser.goto(&format!("{}/terminal?container=no-such-container-{}", app.url(), std::process::id())).await;
    wait_for_state(&browser, "refused").await;
    browser.wait_for_text("#error", "not found", WAIT).await;

    // An auditor is refused by the container list and by the terminal page, before any socket.
    browser.js("return fetch('/api/v1/logout', {method: 'POST'}).then(r => r.status)", vec![]).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    browser.sign_in(&app.url(), &auditor).await;
    browser.goto(&format!("{}/containers", app.url())).await;
    browser.wait_for_text("#error", "auditors never enter containers", WAIT).await;
    assert_eq!(
        browser.js("return document.querySelectorAll('#topbar a[data-nav=containers]').length", vec![]).await,
        0
    );
    browser.goto(&format!("{}/terminal?container={}", app.url(), mine.name)).await;
    wait_for_state(&browser, "refused").await;
    browser.wait_for_text("#error", "may not enter containers", WAIT).await;
    assert_eq!(browser.js("return window.entrySocket === undefined", vec![]).await, true);
    browser.close().await;
    assert_eq!(mine.exec_creates(), Vec::<String>::new());
}

async fn a_web_session_is_listed_as_web_and_replays(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &developer).await;
    open_terminal(&browser, &app, &container.name).await;
    ready_for_utf8(&browser).await;
    type_line(&browser, "echo 你好-$((6*7))").await;
    browser.wait_for_terminal("# echo 你好-$((6*7))\n你好-42", WAIT).await;
    type_line(&browser, "echo term=$TERM").await;
    browser.wait_for_terminal("\nterm=xterm-256color", WAIT).await;
    let live = crate::common::newest_session(&app.store).await;
    assert_eq!((live.client_kind.as_str(), live.status), ("web", SessionStatus::Live));

    type_line(&browser, "exit 4").await;
    let status = wait_for_state(&browser, "closed").await;
    assert!(status.contains("The shell exited with code 4.") && !status.contains(">>>"), "{status}");
    assert!(!browser.terminal_text().await.contains("exited with code"), "the CLOSE line went into the terminal");
    assert!(!browser.js("return document.querySelector('#reconnect').hidden", vec![]).await.as_bool().unwrap());
    let row = crate::common::wait_for_newest(&app.store, WAIT, "the recorded session", crate::common::is_final).await;
    assert_eq!(row.id, live.id);
    assert_eq!((row.client_kind.as_str(), row.status, row.exit_code), ("web", SessionStatus::Ended, Some(4)));
    assert!(row.recording_error.is_none(), "{:?}", row.recording_error);

    // "New session" opens another session in the same page.
    browser.click("#reconnect").await;
    wait_for_state(&browser, "live").await;
    crate::common::wait_for_newest(&app.store, WAIT, "a second session", |r| r.id != row.id).await;
    type_line(&browser, "exit").await;
    wait_for_state(&browser, "closed").await;

    browser.goto(&format!("{}/sessions", app.url())).await;
    let selector = format!("#sessions tr[data-session-id='{}']", row.id);
    let text = browser.wait_for_text(&selector, "ended", WAIT).await;
    assert!(text.contains("web") && text.contains(&container.name), "{text}");
    browser.click(&format!("{selector} a.replay")).await;
    browser
        .wait_until("the replay page", WAIT, || async { browser.path().await == format!("/sessions/{}", row.id) })
        .await;
    browser.click(".ap-playback-button").await;
    browser.wait_for_text(".ap-term", "echo 你好-$((6*7))", WAIT).await;
    browser.close().await;
}

/// Signs `token` in through the API and returns the cookie (`name=value`).
async fn sign_in_cookie(app: &TestApp, token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/login", app.url()))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

fn terminal_url(app: &TestApp, container: &str) -> String {
    format!("ws://{}/api/v1/terminal?container={container}&term=xterm-256color", app.addr)
}

/// Tries the terminal WebSocket's upgrade with `cookie` from a page of `origin`; returns
/// the HTTP status of the gateway's answer.
async fn upgrade_status(app: &TestApp, container: &str, cookie: &str, origin: &str) -> u16 {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
    let mut request = terminal_url(app, container).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    request.headers_mut().insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(error) => panic!("the upgrade failed otherwise than by an HTTP answer: {error}"),
    }
}

/// A session on the terminal WebSocket, opened with `cookie` from a page of `origin`.
async fn terminal_session(app: &TestApp, container: &str, cookie: &str, origin: &str) -> crate::common::Session {
    crate::common::Session::connect(&terminal_url(app, container), &[("cookie", cookie), ("origin", origin)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_pages_of_the_gateways_own_or_an_allowed_origin_open_the_terminal() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    let cookie = sign_in_cookie(&app, &developer).await;

    assert_eq!(upgrade_status(&app, &container.name, &cookie, "http://evil.example").await, 403);
    assert_eq!(container.exec_creates(), Vec::<String>::new(), "a refused upgrade created an exec");

    let mut session = terminal_session(&app, &container.name, &cookie, &app.url()).await;
    session.type_text("echo own-$((40+2)); exit\r").await;
    session.read_until("own-42", WAIT).await;
    session.read_to_close(WAIT).await;
    assert_eq!(container.exec_creates().len(), 1, "{:?}", container.exec_creates());
    let row = crate::common::wait_for_newest(&app.store, WAIT, "the session", crate::common::is_final).await;
    assert_eq!((row.client_kind.as_str(), row.status), ("web", SessionStatus::Ended));

    // An origin in gateway.allowed_origins is let in too; others still are not.
    let console = "http://console.example";
    let app = TestApp::builder().configure(|c| c.gateway.allowed_origins = vec![console.to_owned()]).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &[&container.name]).await;
    let cookie = sign_in_cookie(&app, &developer).await;
    assert_eq!(upgrade_status(&app, &container.name, &cookie, "http://evil.example").await, 403);
    assert_eq!(container.exec_creates(), Vec::<String>::new(), "a refused upgrade created an exec");
    let mut session = terminal_session(&app, &container.name, &cookie, console).await;
    session.type_text("echo allowed-$((40+3)); exit\r").await;
    session.read_until("allowed-43", WAIT).await;
    session.read_to_close(WAIT).await;
}
