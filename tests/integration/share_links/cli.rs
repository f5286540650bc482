//! Share links from the CLI against a real `entry serve` at `ENTRY_LOG=debug`: `entry sessions
//! share` prints the full link, `shares` lists it without its secret, `unshare` ends it; a
//! developer is refused; and the secret, used right and wrong, never reaches the gateway's log.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::shared;
use crate::common::server::Server;
use crate::common::{BASH_IMAGE, TestContainer};

/// Panics if `haystack` holds `secret` or any piece of it longer than 8 characters.
fn assert_no_piece(haystack: &str, secret: &str, what: &str) {
    assert!(secret.len() >= 40, "not a secret: {secret:?}");
    for start in 0..=secret.len() - 9 {
        let piece = &secret[start..start + 9];
        assert!(!haystack.contains(piece), "{what} holds {piece:?}, a piece of a share link's secret");
    }
}

/// Runs `entry …` and returns (success, stdout, stderr).
fn run(command: &mut std::process::Command) -> (bool, String, String) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_shares_lists_and_unshares_and_no_secret_reaches_the_log() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(data.path(), &[("ENTRY_LOG", "debug")]);
    let admin = server.admin_token.clone();
    let container = TestContainer::start(BASH_IMAGE);
    let (ok, _, stderr) =
        run(server.entry(&admin).args(["enter", &container.name, "--", "sh", "-c", "echo cli-$((3*3))"]));
    assert!(ok, "{stderr}");
    let (_, dev, _) = run(server.tokens().args(["create", "--user", "dana", "--role", "developer", "--allow", "*"]));
    let dev = dev.lines().last().unwrap().to_owned();

    // The session, once its recording is stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (_, listed, _) = run(server.entry(&admin).args(["sessions", "ls", "--json"]));
        let page: Value = serde_json::from_str(&listed).unwrap();
        let session = &page["sessions"][0];
        if session["recording_location"].is_string() {
            break session["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no stored recording: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let (ok, _, stderr) = run(server.entry(&dev).args(["sessions", "share", &id]));
    assert!(!ok && stderr.contains("only auditors and admins"), "{stderr}");
    let (ok, _, stderr) = run(server.entry(&admin).args(["sessions", "share", &id, "--expires", "8d"]));
    assert!(!ok && stderr.contains("at most 7d"), "{stderr}");
    let (ok, link, stderr) =
        run(server.entry(&admin).args(["sessions", "share", &id, "--expires", "1h", "--until", "90"]));
    assert!(ok, "{stderr}");
    let link = link.trim().to_owned();
    let prefix = format!("{}/share/#", server.url);
    let secret = link.strip_prefix(&prefix).unwrap_or_else(|| panic!("{link}")).to_owned();
    let link_id = secret.split('.').next().unwrap().to_owned();
    assert!(stderr.contains(&link_id) && stderr.contains("up to 90 s"), "{stderr}");
    assert!(!stderr.contains(&secret[13..]), "the secret goes to stdout only");

    // The link works, and what it does not open answers 401.
    let (status, session) = shared(&server.url, "session", &secret).await;
    assert_eq!((status, session["session_id"].as_str()), (200, Some(id.as_str())), "{session}");
    let (status, cast) = shared(&server.url, "recording", &secret).await;
    assert!(status == 200 && cast.as_str().unwrap().contains("cli-9"), "{cast}");
    let wrong = format!("{link_id}.{}", "Wq3".repeat(14) + "x");
    assert_eq!(shared(&server.url, "session", &wrong).await.0, 401);
    let http = reqwest::Client::new();
    let sessions = http.get(format!("{}/api/v1/sessions", server.url)).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(sessions.status().as_u16(), 401);
    let page = http.get(format!("{}/share/", server.url)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);

    let (ok, listed, stderr) = run(server.entry(&admin).args(["sessions", "shares", &id]));
    assert!(ok, "{stderr}");
    assert!(listed.contains(&link_id) && listed.contains("active") && listed.contains("90 s"), "{listed}");
    assert!(!listed.contains(&secret[13..]));
    let (ok, out, stderr) = run(server.entry(&admin).args(["sessions", "unshare", &link_id]));
    assert!(ok && out.contains(&format!("revoked share link {link_id}")), "{out}{stderr}");
    assert_eq!(shared(&server.url, "session", &secret).await.0, 401);
    let (ok, _, stderr) = run(server.entry(&admin).args(["sessions", "unshare", &link_id]));
    assert!(!ok && stderr.contains("already revoked"), "{stderr}");

    assert!(server.terminate().success());
    let log = server.log();
    assert!(log.contains("share link created") && log.contains("shared session viewed"), "{log}");
    assert!(log.contains(&link_id), "the link's id is logged");
    for (name, secret) in [("secret", &secret[13..]), ("wrong secret", &wrong[13..])] {
        assert_no_piece(&log, secret, &format!("the gateway's log ({name})"));
    }
}
