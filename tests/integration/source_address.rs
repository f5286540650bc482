//! Which address a request counts as, against a real gateway and dockerd: the failure
//! throttle counts verifications under way, so a burst of parallel wrong tokens from one
//! address gets no more checks than its budget (API and sessions) while a burst of valid ones
//! is queued, never refused; behind a proxy listed in
//! `auth.trusted_proxies`, `X-Forwarded-For` gives the source for the throttle, the session
//! row and the audit log, and from any other peer the header is ignored.

use std::time::Duration;

use crate::common::{SH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;
use entry::config::IpNet;
use entry::wire::protocol::CloseReason;
use futures::future::join_all;

/// `token` with its secret replaced: the id finds the row, so the secret is really verified.
fn wrong_secret(token: &str) -> String {
    let (id, _) = token.split_once('.').unwrap();
    format!("{id}.{}", "A".repeat(43))
}

/// A gateway whose sources may fail `max_failures` times a minute.
async fn budgeted(max_failures: usize) -> TestApp {
    TestApp::builder()
        .configure(|c| {
            c.auth.max_failures = max_failures;
            c.auth.failure_window = Duration::from_secs(60);
        })
        .start()
        .await
}

/// `GET url` with `authorization`, `n` at once: their statuses.
async fn parallel_gets(url: &str, authorization: &str, n: usize) -> Vec<u16> {
    let http = reqwest::Client::new();
    join_all((0..n).map(|_| async {
        http.get(url).header("authorization", authorization).send().await.unwrap().status().as_u16()
    }))
    .await
}

fn trusting(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|net| IpNet::try_from((*net).to_owned()).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_parallel_wrong_tokens_gets_no_more_verifications_than_the_budget() {
    let app = budgeted(3).await;
    let good = app.token("alice", Role::Auditor, &["*"]).await;
    let wrong = bearer(&wrong_secret(&good));
    let statuses = parallel_gets(&format!("{}/api/v1/sessions", app.url()), &wrong, 16).await;
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((checked, refused), (3, 13), "{statuses:?}");

    // Sessions the same way, from an address whose budget is fresh: another gateway.
    let app = budgeted(2).await;
    let container = TestContainer::start(SH_IMAGE);
    let good = app.token("bob", Role::Developer, &["*"]).await;
    let wrong = bearer(&wrong_secret(&good));
    let reasons: Vec<CloseReason> = join_all((0..8).map(|_| async {
        let mut session = app.connect(&[("container", &container.name), ("authorization", &wrong)]).await;
        session.read_to_close(WAIT).await.reason()
    }))
    .await;
    let checked = reasons.iter().filter(|&&r| r == CloseReason::Unauthorised).count();
    let refused = reasons.iter().filter(|&&r| r == CloseReason::LimitExceeded).count();
    assert_eq!((checked, refused), (2, 6), "{reasons:?}");
    assert_eq!(container.exec_creates(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_parallel_valid_tokens_is_queued_past_the_budget_not_refused() {
    let app = budgeted(2).await;
    let container = TestContainer::start(SH_IMAGE);
    let token = app.token("dave", Role::Developer, &["*"]).await;
    let good = bearer(&token);
    let url = format!("{}/api/v1/sessions", app.url());
    let statuses = parallel_gets(&url, &good, 24).await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let reasons: Vec<CloseReason> = join_all((0..12).map(|_| async {
        let mut session =
            app.connect(&[("container", &container.name), ("authorization", &good), ("command", r#"["true"]"#)]).await;
        session.read_to_close(WAIT).await.reason()
    }))
    .await;
    assert!(reasons.iter().all(|&r| r == CloseReason::Exited), "{reasons:?}");
    // The budget is untouched: two wrong tokens are still checked before the source is refused.
    let wrong = bearer(&wrong_secret(&token));
    let http = reqwest::Client::new();
    for expected in [401, 401, 429] {
        assert_eq!(http.get(&url).header("authorization", &wrong).send().await.unwrap().status(), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_source_and_otherwise_it_is_ignored() {
    let app = TestApp::builder()
        .configure(|c| {
            c.auth.max_failures = 2;
            c.auth.trusted_proxies = trusting(&["127.0.0.1", "10.0.0.0/8"]);
        })
        .start()
        .await;
    let container = TestContainer::start(SH_IMAGE);
    let good = app.token("carol", Role::Admin, &["*"]).await;
    let wrong = bearer(&wrong_secret(&good));
    let http = reqwest::Client::new();
    let sessions = format!("{}/api/v1/sessions", app.url());
    let get = |auth: String, forwarded: &'static str| {
        http.get(&sessions).header("authorization", auth).header("x-forwarded-for", forwarded).send()
    };
    // One client behind the proxy uses up its failures (a hop it forged on the left is not
    // believed: the proxy appended the real one, and 10.0.0.9 is a proxy of ours).
    for _ in 0..2 {
        assert_eq!(get(wrong.clone(), "6.6.6.6, 198.51.100.7, 10.0.0.9").await.unwrap().status(), 401);
    }
    let refused = get(bearer(&good), "198.51.100.7").await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap_or_default().contains("too many failed authentications from 198.51.100.7"),
        "{body}"
    );
    // Other clients of the same proxy are not refused with it.
    assert_eq!(get(bearer(&good), "198.51.100.8").await.unwrap().status(), 200);

    // A session's row and the audit log name the forwarded client.
    let mut session = app
        .connect(&[
            ("container", &container.name),
            ("authorization", &bearer(&good)),
            ("command", r#"["true"]"#),
            ("x-forwarded-for", "203.0.113.5"),
        ])
        .await;
    assert_eq!(session.read_to_close(WAIT).await.reason(), CloseReason::Exited);
    let row = crate::common::wait_for_newest(&app.store, WAIT, "a final row", crate::common::is_final).await;
    assert_eq!(row.source_addr, "203.0.113.5:0");
    let replay = http
        .get(format!("{}/api/v1/sessions/{}/recording", app.url(), row.id))
        .header("authorization", bearer(&good))
        .header("x-forwarded-for", "203.0.113.6")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let audited = app.store.audit_entries(Some(&row.id), None, 10).await.unwrap();
    assert!(audited.iter().any(|e| e.action == "replay" && e.source_addr == "203.0.113.6:0"), "{audited:?}");

    // A gateway that does not trust its peer ignores the header: the failures count against
    // 127.0.0.1 whatever the header says, and the row names 127.0.0.1.
    let app = TestApp::builder()
        .configure(|c| {
            c.auth.max_failures = 2;
            c.auth.trusted_proxies = trusting(&["10.0.0.1"]);
        })
        .start()
        .await;
    let good = app.token("dave", Role::Admin, &["*"]).await;
    let sessions = format!("{}/api/v1/sessions", app.url());
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let answer = http
            .get(&sessions)
            .header("authorization", bearer(&wrong_secret(&good)))
            .header("x-forwarded-for", forged)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    let refused =
        http.get(&sessions).header("authorization", bearer(&good)).header("x-forwarded-for", "198.51.100.3").send();
    let refused = refused.await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["message"].as_str().unwrap_or_default().contains("from 127.0.0.1"), "{body}");
}
