//! `GET /enter` against a real dockerd: running commands, exit codes, WINCH, UTF-8, the bash
//! to sh fallback, and the reasons a session is refused.

use std::time::Duration;

use crate::common::{BASH_IMAGE, SH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::wire::protocol::CloseReason;

#[tokio::test]
async fn command_runs_and_its_exit_code_comes_back() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &["proj*"]).await;
    let auth = bearer(&token);
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", r#"["sh","-c","echo hi; exit 7"]"#),
            ("tty", "false"),
        ])
        .await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.stdout_text(), "hi\n");
    assert_eq!(transcript.reason(), CloseReason::Exited);
    assert_eq!(transcript.exit_code(), Some(7));
    assert_eq!(container.exec_creates(), ["exec_create: sh -c echo hi; exit 7"]);
}

#[tokio::test]
async fn stderr_is_separate_without_a_tty() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["entrytest-*"]).await);
    let mut session = app
        .connect(&[
            ("container", &container.name),
            ("authorization", &auth),
            ("command", r#"["sh","-c","echo out; echo err >&2"]"#),
            ("tty", "false"),
        ])
        .await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.stdout_text(), "out\n");
    assert_eq!(String::from_utf8_lossy(&transcript.stderr), "err\n");
    assert_eq!(transcript.exit_code(), Some(0));
}

#[tokio::test]
async fn stty_size_follows_winch_including_one_sent_before_the_stream_is_ready() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    // Sent at once, before the gateway has even created the exec.
    session.winch(123, 45).await;
    session.type_text("stty size\r").await;
    session.read_until("45 123", WAIT).await;
    session.winch(90, 33).await;
    session.type_text("stty size\r").await;
    session.read_until("33 90", WAIT).await;
    session.type_text("exit 3\r").await;
    let end = session.read_to_close(WAIT).await;
    assert_eq!((end.reason(), end.exit_code()), (CloseReason::Exited, Some(3)));
}

#[tokio::test]
async fn utf8_output_split_at_every_byte_position_arrives_whole() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let text = "a你好😀é";
    let bytes = text.as_bytes();
    // For every cut, print the two halves in separate writes with a pause between, so the
    // gateway reads them separately.
    let octal = |part: &[u8]| part.iter().map(|b| format!("\\{b:03o}")).collect::<String>();
    let script: String = (0..=bytes.len())
        .map(|cut| format!("printf '{}'; sleep 0.05; printf '{}'; ", octal(&bytes[..cut]), octal(&bytes[cut..])))
        .collect();
    let command = serde_json::to_string(&["sh", "-c", &script]).unwrap();
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", &command)]).await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.exit_code(), Some(0), "{}", transcript.close_line());
    assert_eq!(transcript.stdout_text(), text.repeat(bytes.len() + 1));
    assert!(transcript.messages.len() >= bytes.len(), "the output arrived in {} messages", transcript.messages.len());
    for message in &transcript.messages {
        assert!(std::str::from_utf8(message).is_ok(), "message cut inside a character: {message:?}");
    }
}

#[tokio::test]
async fn invalid_bytes_pass_through_and_never_stall() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","printf 'a\\377b\\344'; sleep 0.05; printf 'c'"]"#;
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", command),
            ("tty", "false"),
        ])
        .await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.stdout, b"a\xffb\xe4c");
    assert_eq!(transcript.exit_code(), Some(0));
}

#[tokio::test]
async fn an_image_without_bash_gets_sh() {
    let app = TestApp::start().await;
    let container = TestContainer::start(SH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app.connect(&[("container", &container.compose()), ("authorization", &auth)]).await;
    session.type_text("echo \"[$0]\"; exit 5\r").await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(transcript.stdout_text().contains("[sh]"), "{}", transcript.stdout_text());
    assert!(!transcript.stdout_text().contains("OCI runtime"), "{}", transcript.stdout_text());
    assert_eq!(transcript.exit_code(), Some(5));
    assert_eq!(container.exec_creates(), ["exec_create: bash", "exec_create: sh"]);
}

#[tokio::test]
async fn lain_headers_work() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let token = app.token("alice", Role::Developer, &["proj*"]).await;
    let mut session = app
        .connect(&[
            ("app-name", &container.project),
            ("proc-name", "web"),
            ("instance-no", "1"),
            ("access-token", &token),
            ("term-type", "vt100"),
        ])
        .await;
    session.type_text("echo \"term=$TERM marker=${ENTRY_SESSION:+set}\"; exit\r").await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(transcript.stdout_text().contains("term=vt100 marker=set"), "{}", transcript.stdout_text());
    assert_eq!(transcript.close_line(), ">>> You quit the container safely.");
}

#[tokio::test]
async fn user_workdir_and_env_reach_the_exec() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let grants = entry::store::TokenGrants { exec_users: vec!["1234".into()], ..Default::default() };
    let auth = bearer(&app.token_with("alice", Role::Developer, &["proj*"], &grants).await);
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", r#"["sh","-c","echo $(id -u):$(pwd):$GREETING"]"#),
            ("user", "1234"),
            ("workdir", "/etc"),
            ("env", r#"["GREETING=你好"]"#),
            ("tty", "false"),
        ])
        .await;
    assert_eq!(session.read_to_close(WAIT).await.stdout_text(), "1234:/etc:你好\n");
}

#[tokio::test]
async fn a_missing_command_reports_like_docker_exec() {
    let app = TestApp::start().await;
    let container = TestContainer::start(SH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app
        .connect(&[("container", &container.compose()), ("authorization", &auth), ("command", r#"["nosuchcmd"]"#)])
        .await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(transcript.stdout_text().contains("executable file not found"), "{}", transcript.stdout_text());
    assert!(matches!(transcript.exit_code(), Some(126 | 127)));
}

#[tokio::test]
async fn stopped_and_missing_containers_get_their_own_reasons() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    container.stop();
    let auth = bearer(&app.token("admin", Role::Admin, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    let stopped = session.read_to_close(WAIT).await;
    assert_eq!(stopped.reason(), CloseReason::ContainerNotRunning, "{}", stopped.close_line());
    let mut session = app.connect(&[("container", "entrytest-no-such-container"), ("authorization", &auth)]).await;
    let missing = session.read_to_close(WAIT).await;
    assert_eq!(missing.reason(), CloseReason::ContainerNotFound, "{}", missing.close_line());
    let mut session = app.connect(&[("container", "noproj.web.9"), ("authorization", &auth)]).await;
    assert_eq!(session.read_to_close(WAIT).await.reason(), CloseReason::ContainerNotFound);
    assert!(container.exec_creates().is_empty());
}

#[tokio::test]
async fn stdin_eof_ends_a_session_without_a_tty() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let mut session = app
        .connect(&[
            ("container", &container.compose()),
            ("authorization", &auth),
            ("command", r#"["wc","-c"]"#),
            ("tty", "false"),
        ])
        .await;
    session.type_text(&"x".repeat(100_000)).await;
    session.send(entry::wire::protocol::RequestMessage::stdin_eof()).await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.stdout_text().trim(), "100000");
    assert_eq!(transcript.exit_code(), Some(0));
}

#[tokio::test]
async fn pings_are_sent_on_the_configured_interval() {
    let app = TestApp::builder().configure(|c| c.gateway.ping_interval = Duration::from_millis(200)).start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["proj*"]).await);
    let command = r#"["sh","-c","sleep 1; echo done"]"#;
    let mut session =
        app.connect(&[("container", &container.compose()), ("authorization", &auth), ("command", command)]).await;
    let transcript = session.read_to_close(WAIT).await;
    assert!(transcript.pings >= 3, "{} pings in 1 s", transcript.pings);
    assert_eq!(transcript.exit_code(), Some(0));
}
