//! Secrets never reach the logs or the store: a real `entry serve` at `ENTRY_LOG=debug` (text,
//! then JSON) sees tokens through `entry enter`, LAIN's `access-token` header, the API with
//! Bearer tokens, the browser sign-in and its cookie on the web terminal, and wrong secrets
//! on each path; afterwards neither its logs nor its SQLite files hold any secret or any
//! 9-character piece of one, and the first admin token was printed once, on stdout only.

use std::process::Stdio;

use entry::store::Store;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::server::Server;
use crate::common::{BASH_IMAGE, Session, TestContainer, WAIT};

/// The secret part of a token (`<id>.<secret>`).
fn secret_of(token: &str) -> &str {
    token.split_once('.').map_or(token, |(_, secret)| secret)
}

/// A token with the same id as `token` and a wrong secret.
fn wrong_secret(token: &str) -> String {
    format!("{}.{}", token.split('.').next().unwrap(), "Wq3".repeat(14) + "x")
}

/// Panics if `haystack` holds `secret` or any piece of it longer than 8 characters.
fn assert_no_piece(haystack: &str, secret: &str, what: &str, secret_name: &str) {
    assert!(secret.len() >= 40, "{secret_name} is not a secret: {secret:?}");
    for start in 0..=secret.len() - 9 {
        let piece = &secret[start..start + 9];
        assert!(!haystack.contains(piece), "{what} holds {piece:?}, a piece of the {secret_name}");
    }
}

async fn run(json: bool) {
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![("ENTRY_LOG", "debug")];
    if json {
        env.push(("ENTRY_LOG_JSON", "1"));
    }
    let mut server = Server::start_with(data.path(), &env);
    let admin = server.admin_token.clone();
    let container = TestContainer::start(BASH_IMAGE);
    let created = server
        .tokens()
        .args(["create", "--user", "alice", "--role", "developer", "--allow", "proj*", "--allow", "entrytest-*"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let alice = String::from_utf8(created.stdout).unwrap().lines().last().unwrap().to_owned();
    let wrong = wrong_secret(&alice);

    // `entry enter`, right and wrong.
    let enter = |token: &str| {
        server
            .entry(token)
            .args(["enter", &container.name, "--", "sh", "-c", "echo logged"])
            .stdin(Stdio::null())
            .output()
    };
    let output = enter(&alice).unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(enter(&wrong).unwrap().status.code(), Some(125));

    // LAIN's access-token header on /enter.
    let enter_url = format!("ws://127.0.0.1:{}/enter", server.port);
    let headers =
        [("container", container.name.as_str()), ("access-token", admin.as_str()), ("command", r#"["true"]"#)];
    assert_eq!(Session::connect(&enter_url, &headers).await.read_to_close(WAIT).await.exit_code(), Some(0));

    // The API with Bearer tokens, right and wrong; the browser sign-in, right and wrong.
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| http.get(format!("{}{path}", server.url)).bearer_auth(token).send();
    assert_eq!(get("/api/v1/sessions", &alice).await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/api/v1/tokens", &admin).await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/api/v1/sessions", &wrong).await.unwrap().status().as_u16(), 401);
    let login = |token: &str| {
        http.post(format!("{}/api/v1/login", server.url)).json(&serde_json::json!({ "token": token })).send()
    };
    assert_eq!(login(&wrong).await.unwrap().status().as_u16(), 401);
    let signed_in = login(&alice).await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let cookie_secret = cookie.split_once('=').unwrap().1.to_owned();
    let me = http.get(format!("{}/api/v1/me", server.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status().as_u16(), 200);

    // The web terminal with the cookie.
    let url = format!("ws://127.0.0.1:{}/api/v1/terminal?container={}", server.port, container.name);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    request.headers_mut().insert("origin", server.url.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (output, _) = super::type_and_read_to_close(&mut ws, "echo web-$((40+2)); exit\r").await;
    assert!(output.contains("web-42"), "{output}");
    let out = http.post(format!("{}/api/v1/logout", server.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(out.status().as_u16(), 204);

    // The CLI's API commands.
    let listed = server.entry(&admin).args(["sessions", "ls"]).output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));

    assert!(server.terminate().success());
    let log = server.log();
    let stdout = server.rest_of_stdout();

    // The logs are the real thing: debug level, every session, in the format asked for.
    // (Migration statements logged at debug level are SQL text, not events: not counted.)
    let sessions = log.lines().filter(|l| l.contains("session started") && !l.contains("db.statement")).count();
    assert_eq!(sessions, 3, "three sessions started (CLI, LAIN header, web terminal):\n{log}");
    assert!(log.contains(if json { "\"level\":\"DEBUG\"" } else { " DEBUG " }), "no debug lines:\n{log}");
    if json {
        for line in log.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(value.is_object(), "{line}");
        }
    }
    let secrets =
        [("admin token", secret_of(&admin)), ("token", secret_of(&alice)), ("wrong secret", secret_of(&wrong))];
    let cookie_secrets =
        [("sign-in cookie", cookie_secret.as_str()), ("sign-in cookie secret", secret_of(&cookie_secret))];
    for (name, secret) in secrets.iter().chain(&cookie_secrets) {
        assert_no_piece(&log, secret, "the gateway's log", name);
        assert_no_piece(&stdout, secret, "the gateway's stdout after the admin token", name);
    }
    assert!(stdout.is_empty(), "the gateway printed more on stdout: {stdout:?}");
    assert!(log.lines().count() > 50, "{} log lines", log.lines().count());
    println!("{} log lines ({} bytes), no secret in them", log.lines().count(), log.len());

    // The store holds hashes only: not in a column, not anywhere in its files.
    let store = Store::open(&server.store_url()).await.unwrap();
    for token in [&admin, &alice] {
        let row = store.token(token.split('.').next().unwrap()).await.unwrap().unwrap();
        assert!(row.secret_hash.starts_with("$sha256$"), "{}", row.secret_hash);
        assert!(!row.secret_hash.contains(secret_of(token)));
    }
    store.close().await;
    let mut files = String::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("entry.db")) {
            match std::fs::read(&path) {
                Ok(bytes) => files.push_str(&String::from_utf8_lossy(&bytes)),
                // SQLite removes its -wal and -shm files when the last connection closes, which
                // may happen between listing the directory and reading them.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => panic!("reading {}: {error}", path.display()),
            }
        }
    }
    assert!(files.len() > 10_000, "the store's files were not read");
    for (name, secret) in secrets.iter().chain(&cookie_secrets) {
        assert_no_piece(&files, secret, "the store's files", name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_reaches_the_text_logs_or_the_store() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_reaches_the_json_logs_or_the_store() {
    run(true).await;
}
