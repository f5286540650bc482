//! The command index from the command line: `entry index rebuild` reads a stored recording back
//! into the index (the same rows every time, a session whose recording is gone reported and
//! skipped with a failing exit status), `entry search` finds its command and output through
//! the API, and `entry sessions commands` lists it.

use std::process::Output;

use crate::common::server::ENTRY;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::store::{CommandRow, IndexKind, SearchFilter};
use entry::wire::search::{CommandList, HitKind, SearchPage};

const TYPED: &str = "echo rebuilt-$((2+3))";

/// `entry <args>` against `app`'s gateway.
async fn entry(app: &TestApp, token: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(ENTRY);
    command.args(args).env("ENTRY_SERVER", app.url()).env("ENTRY_TOKEN", token).env_remove("ENTRY_CONFIG");
    command.output().await.expect("run entry")
}

/// `entry index rebuild <args>` on `app`'s data directory (its store and recordings).
async fn rebuild(app: &TestApp, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(ENTRY);
    command.args(["index", "rebuild"]).args(args).arg("--data-dir").arg(&app.config.data_dir);
    command.env_remove("ENTRY_CONFIG").output().await.expect("run entry index rebuild")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The session's commands and the output hits of `rebuilt-5`, as stored.
async fn indexed(app: &TestApp, id: &str) -> (Vec<CommandRow>, Vec<(i64, String)>, i64) {
    let commands = app.store.commands(id).await.unwrap();
    let filter = SearchFilter { text: "rebuilt-5".into(), limit: 50, ..Default::default() };
    let hits = app.store.search(IndexKind::Output, &filter).await.unwrap();
    let hits = hits.into_iter().filter(|hit| hit.session_id == id).map(|hit| (hit.seq, hit.text)).collect();
    (commands, hits, app.store.output_lines(id).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn index_rebuild_reads_the_recording_back_and_search_finds_it() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Admin, &["*"]).await;
    let auth = bearer(&token);
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["bash"]"#)]).await;
    session.winch(100, 30).await;
    session.read_until("# ", WAIT).await;
    session.type_text(&format!("{TYPED}\r")).await;
    session.read_until("rebuilt-5\r\n", WAIT).await;
    session.type_text("exit\r").await;
    session.read_to_close(WAIT).await;
    let row = wait_for_newest(&app.store, WAIT, "final status", is_final).await;
    assert!(row.recording_location.is_some(), "{row:?}");
    let id = row.id.clone();

    // Whatever the live index wrote goes, so the rows below are the rebuild's.
    app.store.replace_index(&id, &[], &[]).await.unwrap();
    let rebuilt = rebuild(&app, &["--session", &id]).await;
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    let progress = text(&rebuilt.stderr);
    assert!(progress.contains(&format!("[1/1] {id}: ")) && progress.contains(" output lines"), "{progress}");
    let (commands, output, lines) = indexed(&app, &id).await;
    assert!(commands.iter().any(|c| c.text == TYPED), "{commands:?}");
    assert!(commands.iter().any(|c| c.text == "exit"), "{commands:?}");
    assert!(output.iter().any(|(_, text)| text.contains("rebuilt-5") && !text.contains("$((")), "{output:?}");

    // Again: the same rows, replaced rather than added to.
    let again = rebuild(&app, &["--session", &id]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(indexed(&app, &id).await, (commands.clone(), output, lines));

    // Through the API: the command and the output line, newest first, the full session id.
    let found = entry(&app, &token, &["search", "rebuilt", "--json"]).await;
    assert!(found.status.success(), "{}", text(&found.stderr));
    let page: SearchPage = serde_json::from_slice(&found.stdout).unwrap();
    assert!(page.hits.iter().all(|hit| hit.session_id == id), "{page:?}");
    let command = page.hits.iter().find(|hit| hit.kind == HitKind::Command).expect("a command hit");
    assert_eq!((command.text.as_str(), command.user.as_str()), (TYPED, "alice"));
    assert!(page.hits.iter().any(|hit| hit.kind == HitKind::Output && hit.text.contains("rebuilt-5")), "{page:?}");
    let one = entry(&app, &token, &["search", "rebuilt", "--kind", "commands", "--json"]).await;
    let one: SearchPage = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one.hits.len(), 1, "{one:?}");
    // --limit caps the hits; the rest are there to ask for.
    let limited = entry(&app, &token, &["search", "rebuilt", "--limit", "1"]).await;
    assert!(limited.status.success(), "{}", text(&limited.stderr));
    let table = text(&limited.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.starts_with("WHEN (UTC)") && table.contains(&id), "{table}");
    assert!(!table.contains('\x1b'), "bold on a pipe: {table:?}");
    assert!(text(&limited.stderr).contains("more hits"), "{}", text(&limited.stderr));

    // The session's commands.
    let listed = entry(&app, &token, &["sessions", "commands", &id]).await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let table = text(&listed.stdout);
    assert!(table.starts_with("AT") && table.lines().any(|line| line.ends_with(TYPED)), "{table}");
    let listed = entry(&app, &token, &["sessions", "commands", &id, "--json"]).await;
    let list: CommandList = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list.session_id, id);
    assert_eq!(list.commands.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), [TYPED, "exit"]);

    // A session whose recording is gone is reported and skipped; the others are indexed, and
    // the exit status says something failed.
    let mut short = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("tty", "false"),
            ("command", r#"["true"]"#),
        ])
        .await;
    short.read_to_close(WAIT).await;
    let gone = wait_for_newest(&app.store, WAIT, "final status", |r| r.id != id && is_final(r)).await;
    let location = gone.recording_location.clone().expect("a stored recording");
    std::fs::remove_file(location.strip_prefix("file://").expect("a file:// location")).unwrap();
    let all = rebuild(&app, &["--since", "1h"]).await;
    let progress = text(&all.stderr);
    assert_eq!(all.status.code(), Some(1), "{progress}");
    assert!(progress.contains(&format!("{}: skipped: ", gone.id)), "{progress}");
    assert!(progress.contains(&format!("{id}: 2 commands")), "{progress}");
    assert!(progress.contains("1 of 2 sessions could not be indexed"), "{progress}");
    assert_eq!(indexed(&app, &id).await.0, commands);
}
