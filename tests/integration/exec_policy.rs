//! The exec policy against a real dockerd: who may run as whom (an image whose `USER` is `app`),
//! the environment deny-list and token allow-lists, refused before any exec exists; and what
//! shaped the exec on the session row, in the API and in the recording's header, with secret
//! values redacted everywhere.

use crate::common::{APP_IMAGE, BASH_IMAGE, TestApp, TestContainer, WAIT, bearer, is_final, wait_for_newest};
use entry::auth::Role;
use entry::recorder::asciicast;
use entry::store::TokenGrants;
use entry::wire::protocol::CloseReason;

const ENTRY: &str = env!("CARGO_BIN_EXE_entry");

/// Runs `command` without a TTY with the extra `headers`; returns the transcript.
async fn run(
    app: &TestApp,
    container: &TestContainer,
    token: &str,
    command: &str,
    headers: &[(&'static str, &str)],
) -> crate::common::Transcript {
    let auth = bearer(token);
    let mut all = vec![("container", container.name.as_str()), ("authorization", &auth), ("tty", "false")];
    all.push(("command", command));
    all.extend_from_slice(headers);
    app.connect(&all).await.read_to_close(WAIT).await
}

fn grants(users: &[&str], env_allow: Option<&[&str]>) -> TokenGrants {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    TokenGrants { exec_users: owned(users), env_allow: env_allow.map(owned), ..TokenGrants::default() }
}

/// Session rows in the store, newest first.
async fn rows(app: &TestApp) -> Vec<entry::store::SessionRow> {
    let filter = entry::store::SessionFilter { limit: 100, ..Default::default() };
    app.store.sessions(&filter).await.unwrap()
}

const ID_U: &str = r#"["sh","-c","id -u"]"#;

#[tokio::test]
async fn without_a_grant_only_the_containers_user_runs() {
    let app = TestApp::start().await;
    let container = TestContainer::start(APP_IMAGE);
    let token = app.token("alice", Role::Developer, &["entrytest-*"]).await;

    // No -u: the image's USER, app.
    let transcript = run(&app, &container, &token, ID_U, &[]).await;
    assert_eq!((transcript.stdout_text().as_str(), transcript.exit_code()), ("1000\n", Some(0)));
    let row = wait_for_newest(&app.store, WAIT, "final row", is_final).await;
    assert_eq!((row.exec_user.as_deref(), row.exec_user_effective.as_deref()), (None, Some("app")));
    // Asking for the configured user by its name is the same string, so allowed.
    let transcript = run(&app, &container, &token, ID_U, &[("user", "app")]).await;
    assert_eq!(transcript.stdout_text(), "1000\n");
    let execs = container.exec_creates();
    assert_eq!(execs.len(), 2, "{execs:?}");

    // Anything else is refused before an exec exists, naming the user; no row either.
    for user in ["0", "root", "root:root", "1000"] {
        let transcript = run(&app, &container, &token, ID_U, &[("user", user)]).await;
        assert_eq!(transcript.reason(), CloseReason::Forbidden, "{user}: {}", transcript.close_line());
        assert_eq!(
            transcript.close_line(),
            format!("forbidden: alice may not run as {user} in {} (allowed: the container's user app)", container.name)
        );
        assert!(transcript.stdout.is_empty());
    }
    assert_eq!(container.exec_creates(), execs, "a refused user got an exec");
    assert_eq!(rows(&app).await.len(), 2);
}

#[tokio::test]
async fn a_granted_user_runs_matched_as_written_and_admins_run_as_anyone() {
    let app = TestApp::start().await;
    let container = TestContainer::start(APP_IMAGE);
    let token = app.token_with("alice", Role::Developer, &["entrytest-*"], &grants(&["0"], None)).await;
    let transcript = run(&app, &container, &token, ID_U, &[("user", "0")]).await;
    assert_eq!((transcript.stdout_text().as_str(), transcript.exit_code()), ("0\n", Some(0)));
    let row = wait_for_newest(&app.store, WAIT, "final row", is_final).await;
    assert_eq!((row.exec_user.as_deref(), row.exec_user_effective.as_deref()), (Some("0"), Some("0")));
    // A grant of `0` is not one of `root`: names are not resolved.
    let before = container.exec_creates();
    let transcript = run(&app, &container, &token, ID_U, &[("user", "root")]).await;
    assert_eq!(transcript.reason(), CloseReason::Forbidden);
    assert!(transcript.close_line().ends_with("(allowed: the container's user app, 0)"), "{}", transcript.close_line());
    assert_eq!(container.exec_creates(), before);

    let admin = app.token("root-admin", Role::Admin, &["*"]).await;
    let transcript = run(&app, &container, &admin, ID_U, &[("user", "root")]).await;
    assert_eq!(transcript.stdout_text(), "0\n");
    let row = wait_for_newest(&app.store, WAIT, "admin's row", |r| is_final(r) && r.user == "root-admin").await;
    assert_eq!((row.exec_user.as_deref(), row.exec_user_effective.as_deref()), (Some("root"), Some("root")));
}

#[tokio::test]
async fn deny_listed_variables_are_refused_by_name_before_any_exec() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let developer = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let admin = app.token("boss", Role::Admin, &["*"]).await;
    // BASH_ENV would run /tmp/x before the command; none of it would be typed.
    let command = r#"["bash","-c","echo ran"]"#;
    for (entry, name) in [
        ("BASH_ENV=/tmp/x", "BASH_ENV"),
        ("LD_PRELOAD=/tmp/x.so", "LD_PRELOAD"),
        ("PROMPT_COMMAND=touch /tmp/pwned", "PROMPT_COMMAND"),
        ("PATH=/tmp", "PATH"),
        ("TERM=dumb", "TERM"),
    ] {
        for (who, token) in [("alice", &developer), ("boss", &admin)] {
            let env = serde_json::to_string(&["FOO=1", entry]).unwrap();
            let transcript = run(&app, &container, token, command, &[("env", &env)]).await;
            assert_eq!(transcript.reason(), CloseReason::Forbidden, "{entry}: {}", transcript.close_line());
            assert_eq!(
                transcript.close_line(),
                format!("forbidden: {who} may not set {name}: the gateway refuses it (exec.env_deny)")
            );
        }
    }
    assert_eq!(container.exec_creates(), Vec::<String>::new(), "a refused environment got an exec");
    assert!(rows(&app).await.is_empty());

    // A gateway configured with its own deny-list lets PATH through and refuses what it lists.
    let app = TestApp::builder()
        .configure(|c| c.exec.env_deny = vec![entry::config::EnvPattern::new("SECRET_*").unwrap()])
        .start()
        .await;
    let token = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let transcript =
        run(&app, &container, &token, r#"["sh","-c","echo $PATH"]"#, &[("env", r#"["PATH=/bin:/x"]"#)]).await;
    assert_eq!(transcript.stdout_text(), "/bin:/x\n");
    let transcript = run(&app, &container, &token, command, &[("env", r#"["SECRET_A=1"]"#)]).await;
    assert!(transcript.close_line().contains("may not set SECRET_A"), "{}", transcript.close_line());
}

#[tokio::test]
async fn a_tokens_env_allow_list_admits_only_its_names() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token_with("alice", Role::Developer, &["entrytest-*"], &grants(&[], Some(&["FOO", "APP_*"]))).await;
    let command = r#"["sh","-c","echo $FOO:$APP_MODE"]"#;
    let transcript = run(&app, &container, &token, command, &[("env", r#"["FOO=1","BAR=1"]"#)]).await;
    assert_eq!(transcript.reason(), CloseReason::Forbidden);
    assert_eq!(transcript.close_line(), "forbidden: alice may not set BAR: the token allows only FOO, APP_*");
    assert_eq!(container.exec_creates(), Vec::<String>::new());
    let transcript = run(&app, &container, &token, command, &[("env", r#"["FOO=1","APP_MODE=x"]"#)]).await;
    assert_eq!((transcript.stdout_text().as_str(), transcript.exit_code()), ("1:x\n", Some(0)));
    // The deny-list still applies on top of an allow-list.
    let wide = app.token_with("bob", Role::Developer, &["entrytest-*"], &grants(&[], Some(&["LD_*"]))).await;
    let transcript = run(&app, &container, &wide, command, &[("env", r#"["LD_PRELOAD=/x.so"]"#)]).await;
    assert!(transcript.close_line().contains("may not set LD_PRELOAD"), "{}", transcript.close_line());
}

#[tokio::test]
async fn the_row_the_api_and_the_recording_carry_what_shaped_the_exec_without_secrets() {
    let app = TestApp::start().await;
    let container = TestContainer::start(APP_IMAGE);
    let token = app.token_with("alice", Role::Developer, &["entrytest-*"], &grants(&["0"], None)).await;
    let command = r#"["sh","-c","echo $MODE:$(pwd):$(id -u):${#DB_PASSWORD}"]"#;
    let env = r#"["MODE=debug","DB_PASSWORD=hunter2"]"#;
    let transcript = run(&app, &container, &token, command, &[("user", "0"), ("workdir", "/tmp"), ("env", env)]).await;
    // The exec got the real value (7 characters); the record never holds it.
    assert_eq!(transcript.stdout_text(), "debug:/tmp:0:7\n");
    let row =
        wait_for_newest(&app.store, WAIT, "stored recording", |r| is_final(r) && r.recording_sha256.is_some()).await;
    let expected_env: std::collections::BTreeMap<String, String> =
        [("DB_PASSWORD", "[redacted]"), ("MODE", "debug")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(row.exec_user.as_deref(), Some("0"));
    assert_eq!(row.exec_user_effective.as_deref(), Some("0"));
    assert_eq!(row.workdir.as_deref(), Some("/tmp"));
    assert_eq!(row.exec_env.as_ref(), Some(&expected_env));
    assert!(!row.tty);
    assert!(!format!("{row:?}").contains("hunter2"));

    let auditor = bearer(&app.token("audrey", Role::Auditor, &[]).await);
    let client = reqwest::Client::new();
    let api = |path: String| client.get(format!("{}{path}", app.url())).header("authorization", &auditor).send();
    let body = api(format!("/api/v1/sessions/{}", row.id)).await.unwrap().text().await.unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["exec_user"], "0");
    assert_eq!(json["exec_user_effective"], "0");
    assert_eq!(json["workdir"], "/tmp");
    assert_eq!(json["exec_env"], serde_json::json!({"MODE": "debug", "DB_PASSWORD": "[redacted]"}));
    assert_eq!(json["tty"], false);
    let openapi = api("/api/v1/openapi.json".into()).await.unwrap().json::<serde_json::Value>().await.unwrap();
    let properties = &openapi["components"]["schemas"]["SessionRow"]["properties"];
    for field in ["exec_user", "exec_user_effective", "workdir", "exec_env"] {
        assert!(properties[field]["description"].is_string(), "{field}: {properties}");
    }

    let cast = api(format!("/api/v1/sessions/{}/recording", row.id)).await.unwrap().text().await.unwrap();
    assert!(!cast.contains("hunter2"), "{cast}");
    let header = asciicast::parse_header(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header.env.get("MODE").map(String::as_str), Some("debug"));
    assert_eq!(header.env.get("DB_PASSWORD").map(String::as_str), Some("[redacted]"));
    assert_eq!(header.env.get("SHELL").map(String::as_str), Some("sh"));
    assert!(header.env.contains_key("TERM"));
    let entry = header.entry.expect("the header's entry object");
    assert_eq!(entry.session, row.id);
    assert_eq!((entry.user.as_str(), entry.container.as_str()), ("alice", container.name.as_str()));
    assert_eq!((entry.exec_user.as_deref(), entry.exec_user_effective.as_str()), (Some("0"), "0"));
    assert_eq!((entry.workdir.as_deref(), entry.tty), (Some("/tmp"), false));
    assert_eq!(entry.command, ["sh", "-c", "echo $MODE:$(pwd):$(id -u):${#DB_PASSWORD}"]);

    // asciinema's own parser reads the header with Entry's additions.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &cast).unwrap();
    let cat = std::process::Command::new("python3").args(["-m", "asciinema", "cat"]).arg(file.path()).output().unwrap();
    assert!(cat.status.success(), "asciinema cat: {}", String::from_utf8_lossy(&cat.stderr));
    assert_eq!(cat.stdout, transcript.stdout);

    // Nor is the secret anywhere in the store's files (SQLite and its journal).
    for entry in std::fs::read_dir(&app.config.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(!bytes.windows(7).any(|w| w == b"hunter2"), "hunter2 in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_enter_is_refused_with_the_line_and_exit_code_125() {
    let app = TestApp::start().await;
    let container = TestContainer::start(APP_IMAGE);
    let token = app.token("alice", Role::Developer, &["entrytest-*"]).await;
    let enter = |args: &[&str]| {
        std::process::Command::new(ENTRY)
            .env("ENTRY_SERVER", app.url())
            .env("ENTRY_TOKEN", &token)
            .arg("enter")
            .args(args)
            .arg(&container.name)
            .args(["--", "sh", "-c", "id -u; echo $FOO"])
            .output()
            .unwrap()
    };
    let output = tokio::task::block_in_place(|| enter(&["-u", "0", "-e", "FOO=bar"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("forbidden: alice may not run as 0 in {}", container.name)), "{stderr}");
    let output = tokio::task::block_in_place(|| enter(&["-e", "BASH_ENV=/tmp/x"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&output.stderr).contains("may not set BASH_ENV"));
    let output = tokio::task::block_in_place(|| enter(&["-e", "FOO=bar"]));
    assert_eq!((String::from_utf8_lossy(&output.stdout).as_ref(), output.status.code()), ("1000\nbar\n", Some(0)));
}
