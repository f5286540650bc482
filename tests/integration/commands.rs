//! The command index end to end: a person's keystrokes typed into real bash and busybox sh
//! through the gateway (tab completion, history recall and edit, Ctrl-R, backspace, a two-line
//! `for` loop, a heredoc, a paste of three lines, vi opened and quit, `read -s` and a
//! `sudo`-style no-echo prompt) give the commands as the user saw them, at times within the
//! recording; passwords are never indexed; search finds commands and output for their owner and
//! not for another developer; a late watcher of `top` gets the terminal model's screen.

use std::time::Duration;

use crate::common::{BASH_IMAGE, SH_IMAGE, Session, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::store::IndexKind;

/// Pause between keys, as a fast typist.
const KEY_GAP: Duration = Duration::from_millis(25);

/// Types `keys` one key at a time (an escape sequence is one key).
async fn typed(session: &mut Session, keys: &[&str]) {
    for key in keys {
        session.type_text(key).await;
        tokio::time::sleep(KEY_GAP).await;
    }
}

/// Types each character of `text` as its own key.
async fn type_chars(session: &mut Session, text: &str) {
    for ch in text.chars() {
        session.type_text(&ch.to_string()).await;
        tokio::time::sleep(KEY_GAP).await;
    }
}

/// Types `line` and Enter, then waits for `marker` in the output.
async fn run(session: &mut Session, line: &str, marker: &str) {
    type_chars(session, line).await;
    session.type_text("\r").await;
    session.read_until(marker, WAIT).await;
}

async fn commands(app: &TestApp, session_id: &str) -> Vec<(f64, String, String)> {
    let rows = app.store.commands(session_id).await.expect("commands");
    rows.into_iter().map(|c| (c.at_ms as f64 / 1000.0, c.text, c.flags)).collect()
}

#[tokio::test]
async fn bash_keystrokes_give_the_commands_as_the_user_saw_them() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("dev", Role::Developer, &["*"]).await;
    let auth = bearer(&token);
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["bash"]"#)]).await;
    session.winch(100, 30).await;
    session.read_until("# ", WAIT).await;
    run(&mut session, "mkdir -p /tmp; touch /tmp/notes-file.txt; echo ready-$((1+1))", "ready-2").await;
    // Tab completion.
    type_chars(&mut session, "ls /tmp/notes-f").await;
    typed(&mut session, &["\t"]).await;
    session.read_until("notes-file.txt", WAIT).await;
    session.type_text("\r").await;
    session.read_until("# ", WAIT).await;
    // History recall and edit: up arrow, three backspaces, new text.
    run(&mut session, "echo history-one", "history-one\r\n").await;
    typed(&mut session, &["\x1b[A", "\x7f", "\x7f", "\x7f"]).await;
    type_chars(&mut session, "two").await;
    session.type_text("\r").await;
    session.read_until("history-two\r\n", WAIT).await;
    // Ctrl-R finds the first one again.
    typed(&mut session, &["\x12"]).await;
    type_chars(&mut session, "ory-o").await;
    session.read_until("echo history-one", WAIT).await;
    session.type_text("\r").await;
    session.read_until("history-one\r\n", WAIT).await;
    // Backspace over a typo.
    type_chars(&mut session, "echo bakx").await;
    typed(&mut session, &["\x7f", "\x7f"]).await;
    run(&mut session, "ck-$((3*3))", "back-9").await;
    // A two-line loop and a heredoc.
    run(&mut session, "for i in 1 2; do", "> ").await;
    run(&mut session, "echo loop-$i; done", "loop-2").await;
    run(&mut session, "cat <<EOF", "> ").await;
    run(&mut session, "heredoc-body", "> ").await;
    run(&mut session, "EOF", "heredoc-body\r\n").await;
    // A paste of three lines.
    session.type_text("echo paste-1\recho paste-2\recho paste-3\r").await;
    session.read_until("paste-3\r\n", WAIT).await;
    // vi opened and quit.
    run(&mut session, "vi /tmp/notes-file.txt", "notes-file.txt").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    typed(&mut session, &["i", "x", "y"]).await;
    // vi tells a lone ESC from an escape sequence by the pause after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.type_text("\x1b").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    typed(&mut session, &[":", "q", "!", "\r"]).await;
    run(&mut session, "echo after-$((5*5))", "after-25").await;
    // read -s, and a sudo-style prompt with echo off.
    run(&mut session, "read -s -p 'Password: ' pw; echo; echo got-${#pw}", "Password: ").await;
    type_chars(&mut session, "hunter2").await;
    session.type_text("\r").await;
    session.read_until("got-7", WAIT).await;
    run(
        &mut session,
        "stty -echo; printf 'sudo password: '; read pw; stty echo; echo; echo sudo-${#pw}",
        "sudo password: ",
    )
    .await;
    type_chars(&mut session, "s3cret").await;
    session.type_text("\r").await;
    session.read_until("sudo-6", WAIT).await;
    run(&mut session, "exit", "exit").await;
    session.read_to_close(WAIT).await;

    let row = wait_for_newest(&app.store, WAIT, "a final row", is_final).await;
    let got = commands(&app, &row.id).await;
    let texts: Vec<(&str, &str)> = got.iter().map(|(_, text, flags)| (text.as_str(), flags.as_str())).collect();
    println!("commands of the bash session:\n{got:#?}");
    assert_eq!(
        texts,
        [
            ("mkdir -p /tmp; touch /tmp/notes-file.txt; echo ready-$((1+1))", ""),
            ("ls /tmp/notes-file.txt", ""),
            ("echo history-one", ""),
            ("echo history-two", ""),
            ("echo history-one", ""),
            ("echo back-$((3*3))", ""),
            ("for i in 1 2; do\necho loop-$i; done", "continued"),
            ("cat <<EOF\nheredoc-body\nEOF", "continued"),
            ("echo paste-1", "paste"),
            ("echo paste-2", "paste"),
            ("echo paste-3", "paste"),
            ("vi /tmp/notes-file.txt", "program"),
            ("echo after-$((5*5))", ""),
            ("read -s -p 'Password: ' pw; echo; echo got-${#pw}", ""),
            ("[unechoed input]", "unechoed"),
            ("stty -echo; printf 'sudo password: '; read pw; stty echo; echo; echo sudo-${#pw}", ""),
            ("[unechoed input]", "unechoed"),
            ("exit", ""),
        ]
    );
    let duration = (row.ended_at.expect("ended") - row.started_at) as f64 / 1000.0;
    let times: Vec<f64> = got.iter().map(|(at, ..)| *at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times in order: {times:?}");
    assert!(times.iter().all(|at| *at > 0.0 && *at <= duration + 0.5), "times within {duration} s: {times:?}");

    // The passwords are nowhere in the index; the output is.
    for secret in ["hunter2", "s3cret"] {
        for kind in [IndexKind::Command, IndexKind::Output] {
            let filter = entry::store::SearchFilter { text: secret.into(), limit: 10, ..Default::default() };
            assert!(app.store.search(kind, &filter).await.unwrap().is_empty(), "{secret} was indexed");
        }
    }
    let filter = entry::store::SearchFilter { text: "loop-2".into(), limit: 10, ..Default::default() };
    assert_eq!(app.store.search(IndexKind::Output, &filter).await.unwrap().len(), 1);

    // Search through the API: the owner finds the command and output; another developer does not.
    let client = reqwest::Client::new();
    let search = |token: String, query: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/search?{query}", app.url());
        async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, page) = search(token.clone(), "q=history-two&kind=all").await;
    assert_eq!(status, 200, "{page}");
    let hits = page["hits"].as_array().unwrap();
    assert!(hits.iter().any(|h| h["kind"] == "command" && h["text"] == "echo history-two"), "{page}");
    assert!(hits.iter().any(|h| h["kind"] == "output" && h["text"] == "history-two"), "{page}");
    let hit = hits.iter().find(|h| h["kind"] == "command").unwrap();
    assert_eq!(hit["session_id"], row.id.as_str());
    assert_eq!(hit["highlight"], serde_json::json!([5, 16]));
    let other = app.token("eve", Role::Developer, &["*"]).await;
    let (status, page) = search(other.clone(), "q=history-two").await;
    assert_eq!((status, page["hits"].as_array().unwrap().len()), (200, 0), "{page}");
    let (status, _) = search(other.clone(), "q=history-two&user=dev").await;
    assert_eq!(status, 403);
    let (status, _) = search(other, "kind=commands").await;
    assert_eq!(status, 400, "q is required");
    let audited = app.store.audit_entries(None, None, 50).await.unwrap();
    assert!(
        audited.iter().any(|e| e.action == "search" && e.detail.as_deref().is_some_and(|d| d.contains("history-two")))
    );
}

#[tokio::test]
async fn busybox_sh_commands_and_stdin_lines_without_a_terminal() {
    let app = TestApp::start().await;
    let container = TestContainer::start(SH_IMAGE);
    let auth = bearer(&app.token("dev", Role::Developer, &["*"]).await);
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["sh"]"#)]).await;
    session.read_until("# ", WAIT).await;
    run(&mut session, "echo sh-$((4*4))", "sh-16").await;
    type_chars(&mut session, "echo typx").await;
    typed(&mut session, &["\x7f"]).await;
    run(&mut session, "o-fixed", "typo-fixed\r\n").await;
    run(&mut session, "exit", "exit").await;
    session.read_to_close(WAIT).await;
    let row = wait_for_newest(&app.store, WAIT, "a final row", is_final).await;
    let got: Vec<String> = commands(&app, &row.id).await.into_iter().map(|(_, text, _)| text).collect();
    assert_eq!(got, ["echo sh-$((4*4))", "echo typo-fixed", "exit"]);

    // Without a TTY, each stdin line is a command.
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", r#"["sh"]"#),
            ("tty", "false"),
        ])
        .await;
    session.type_text("echo plain-1\necho plain-2\n").await;
    session.read_until("plain-2", WAIT).await;
    session.type_text("exit\n").await;
    session.read_to_close(WAIT).await;
    let row = wait_for_newest(&app.store, WAIT, "a final row", |r| is_final(r) && !r.tty).await;
    let got: Vec<String> = commands(&app, &row.id).await.into_iter().map(|(_, text, _)| text).collect();
    assert_eq!(got, ["echo plain-1", "echo plain-2", "exit"]);
}

/// The screen a terminal of `cols`×`rows` shows after `output`.
fn screen_after(cols: usize, rows: usize, output: &str) -> Vec<String> {
    let mut terminal = avt::Terminal::new(cols, rows).unwrap();
    terminal.feed(output);
    terminal.screen().visible_lines().map(|line| line.text().trim_end().to_owned()).collect()
}

/// A developer's bash session at 90×25 with its first prompt read, and an auditor's bearer
/// header to watch it with.
async fn watched_bash(app: &TestApp, container: &TestContainer) -> (Session, String, String) {
    let auth = bearer(&app.token("dev", Role::Developer, &["*"]).await);
    let auditor = bearer(&app.token("audrey", Role::Auditor, &["*"]).await);
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["bash"]"#)]).await;
    session.winch(90, 25).await;
    let seen = session.read_until("# ", WAIT).await.stdout_text();
    (session, seen, auditor)
}

#[tokio::test]
async fn a_late_watcher_of_top_starts_from_the_exact_screen() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, mut seen, auditor) = watched_bash(&app, &container).await;
    // Far more than the 64 KiB of recent output a watcher used to get, one screen of top, then
    // a redraw by cursor addressing, and quiet.
    let line = "seq 1 40000; top -n 1; printf '\\e[3;30Hredrawn-%s\\e[20;1H' $((6*7)); sleep 30\r";
    session.type_text(line).await;
    seen += &session.read_until("redrawn-42", WAIT).await.stdout_text();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = wait_for_newest(&app.store, WAIT, "a live row", |_| true).await.id;
    let url = format!("ws://{}/api/v1/sessions/{id}/watch", app.addr);
    let mut watcher = Session::connect(&url, &[("authorization", &auditor)]).await;
    let first = watcher.read_until("redrawn-42", WAIT).await;
    assert_eq!(first.resizes, ["90 25"]);
    let dump = first.stdout_text();
    assert!(dump.len() < 16 * 1024, "the watcher got a screen, not the backlog: {} bytes", dump.len());
    // The client's whole stream, emulated from the start, shows exactly the watcher's screen.
    let client_screen = screen_after(90, 25, &seen);
    let watcher_screen = screen_after(90, 25, &dump);
    assert!(watcher_screen.iter().any(|line| line.contains("Mem:")), "top's screen: {watcher_screen:#?}");
    assert_eq!(watcher_screen, client_screen);
    session.type_text("\x03").await;
    session.read_until("# ", WAIT).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
}

#[tokio::test]
async fn a_session_idle_past_the_model_s_sleep_is_watched_and_indexed_as_before() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let (mut session, mut seen, auditor) = watched_bash(&app, &container).await;
    // Every byte the client saw, up to the prompt after the output, so its screen is known.
    type_chars(&mut session, "PS1='P> '").await;
    session.type_text("\r").await;
    seen += &session.read_until("\r\nP> ", WAIT).await.stdout_text();
    type_chars(&mut session, "printf '\\e[1;33mbefore-%s\\e[m\\n' $((2*3))").await;
    session.type_text("\r").await;
    seen += &session.read_until("before-6\x1b[m\r\nP> ", WAIT).await.stdout_text();
    // Idle past the terminal model's sleep (it ticks every 500 ms).
    let idle = Duration::from_secs_f64(entry::index::model::SLEEP_AFTER + 1.5);
    tokio::time::sleep(idle).await;
    let id = wait_for_newest(&app.store, WAIT, "a live row", |_| true).await.id;
    let url = format!("ws://{}/api/v1/sessions/{id}/watch", app.addr);
    let mut watcher = Session::connect(&url, &[("authorization", &auditor)]).await;
    let dump = watcher.read_until("before-6", WAIT).await.stdout_text();
    assert_eq!(screen_after(90, 25, &dump), screen_after(90, 25, &seen), "the sleeping model's screen");
    // Woken by the next keys, it reads the command as it always did.
    run(&mut session, "echo after-$((4+4))", "after-8").await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let row = wait_for_newest(&app.store, WAIT, "final row", is_final).await;
    let texts: Vec<String> = commands(&app, &row.id).await.into_iter().map(|(_, text, _)| text).collect();
    assert_eq!(texts, ["PS1='P> '", "printf '\\e[1;33mbefore-%s\\e[m\\n' $((2*3))", "echo after-$((4+4))", "exit"]);
}
