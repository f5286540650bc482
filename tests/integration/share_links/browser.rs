//! A share link in headless Chromium, with no account and no sign-in: the page says who shared
//! the session and until when, and plays it to the line it printed; a revoked link and an
//! expired one get the page's message and no player. An auditor creates a link from the replay
//! page's Share button, and a developer sees none.

use std::time::Duration;

use serde_json::json;

use super::{create, finished};
use crate::common::browser::{Browser, Engine};
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use entry::auth::Role;

/// Waits for the page to show a refused link: its message, and no player.
async fn shows_refusal(browser: &Browser) {
    browser.wait_for_text("#error", "invalid, has expired or was revoked", WAIT).await;
    assert_eq!(browser.js("return document.body.dataset.state", vec![]).await, "refused");
    assert_eq!(browser.js("return document.querySelectorAll('.ap-player').length", vec![]).await, 0);
    assert_eq!(browser.js("return document.querySelector('.share-layout').hidden", vec![]).await, true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_plays_its_session_in_chromium_without_an_account_until_revoked_or_expired() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = finished(&app, &container).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let (status, created) = create(&app.url(), &row.id, &auditor, json!({ "expires_in": "1h" })).await;
    assert_eq!(status, 201, "{created}");
    let link = format!("{}{}", app.url(), created["url"].as_str().unwrap());

    let browser = Browser::start(Engine::Chromium).await;
    browser.goto(&link).await;
    let shared_by = browser.wait_for_text("#shared-by", "Shared by audrey until ", WAIT).await;
    assert!(!shared_by.contains("up to"), "{shared_by}");
    assert!(browser.text("#meta").await.contains(&row.id));
    // No way into the rest of the gateway from here.
    assert_eq!(browser.js("return document.querySelectorAll('a[href]').length", vec![]).await, 0);
    // Played as a user would, to the line the session printed.
    let play = browser.client.wait().for_element(fantoccini::Locator::Css(".ap-playback-button")).await.unwrap();
    assert!(!browser.text(".ap-player").await.contains("shared-marker-42"), "shown before playing");
    play.click().await.unwrap();
    browser.wait_for_text(".ap-term", "shared-marker-42", WAIT).await;
    // The browser never signed in: it holds no cookie of the gateway.
    assert_eq!(browser.js("return document.cookie", vec![]).await, "");

    // Revoked: the same link, reloaded, gets the message and no player.
    let revoke = format!("{}/api/v1/shares/{}/revoke", app.url(), created["id"].as_str().unwrap());
    let response = reqwest::Client::new().post(revoke).header("authorization", bearer(&auditor)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    browser.goto("about:blank").await;
    browser.goto(&link).await;
    shows_refusal(&browser).await;

    // Expired: a 2 s link (that it works before is shown by the API tests, where no browser's
    // page load competes with 2 s) gets the message.
    let (_, short) = create(&app.url(), &row.id, &auditor, json!({ "expires_in": "2s" })).await;
    let short_link = format!("{}{}", app.url(), short["url"].as_str().unwrap());
    let created_at = std::time::Instant::now();
    // A link cut at 1 s says so.
    let (_, cut) = create(&app.url(), &row.id, &auditor, json!({ "until": 1 })).await;
    browser.goto("about:blank").await;
    browser.goto(&format!("{}{}", app.url(), cut["url"].as_str().unwrap())).await;
    browser.wait_for_text("#shared-by", "up to 1 s", WAIT).await;
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(created_at.elapsed())).await;
    browser.goto("about:blank").await;
    browser.goto(&short_link).await;
    shows_refusal(&browser).await;

    // A link cut short of its secret: a message too.
    browser.goto("about:blank").await;
    browser.goto(&format!("{}/share/#{}", app.url(), created["id"].as_str().unwrap())).await;
    browser.wait_for_text("#error", "whole share link", WAIT).await;
    browser.close().await;

    let audit = app.store.audit_entries(Some(&row.id), None, 100).await.unwrap();
    let views = audit.iter().filter(|e| e.action == "share_view" && e.source_addr.starts_with("127.0.0.1:")).count();
    assert_eq!(views, 2, "one view per page load that showed the session: {audit:?}");
    assert!(audit.iter().any(|e| e.action == "share_replay"), "{audit:?}");
}

async fn hidden(browser: &Browser, selector: &str) -> bool {
    browser.js("return document.querySelector(arguments[0]).hidden", vec![json!(selector)]).await == true
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_shares_a_session_from_its_replay_page_and_a_developer_cannot() {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = finished(&app, &container).await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let page = format!("{}/sessions/{}", app.url(), row.id);

    let browser = Browser::start(Engine::Chromium).await;
    browser.sign_in(&app.url(), &auditor).await;
    browser.goto(&page).await;
    browser.wait_for_text("#meta", &container.name, WAIT).await;
    browser.wait_until("the Share button", WAIT, || async { !hidden(&browser, "#share").await }).await;
    browser.click("#share").await;
    assert_eq!(browser.js("return document.querySelector('#share-expiry').value", vec![]).await, "24h");
    // The API's refusal is shown as text, and no link.
    browser.js("document.querySelector('#share-until').value = '1e13'", vec![]).await;
    browser.click("#share-create").await;
    browser.wait_for_text("#share-error", "until must be a number of seconds", WAIT).await;
    assert!(hidden(&browser, "#share-result").await);
    browser.js("document.querySelector('#share-until').value = ''", vec![]).await;
    browser.click("#share-create").await;
    browser.wait_until("the share link", WAIT, || async { !hidden(&browser, "#share-result").await }).await;
    let link = browser.js("return document.querySelector('#share-link').value", vec![]).await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/share/#sh", app.url())), "{link}");
    assert!(browser.text("#share-expires").await.starts_with("Expires at "));
    assert_eq!(browser.text("#share-error").await, "");
    browser.close().await;
    let shares = app.store.shares_of(&row.id).await.unwrap();
    assert_eq!(shares.len(), 1);
    let hours = (shares[0].expires_at - shares[0].created_at) as f64 / 3_600_000.0;
    assert!((hours - 24.0).abs() < 0.01, "{hours} h");

    // A browser that never signed in opens the link.
    let outsider = Browser::start(Engine::Chromium).await;
    outsider.goto(&link).await;
    outsider.wait_for_text("#shared-by", "Shared by audrey until ", WAIT).await;
    outsider.close().await;

    // A developer sees the session and no Share button.
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let developer = Browser::start(Engine::Chromium).await;
    developer.sign_in(&app.url(), &alice).await;
    developer.goto(&page).await;
    developer.wait_for_text("#meta", &container.name, WAIT).await;
    assert!(hidden(&developer, "#share").await && hidden(&developer, "#share-box").await);
    developer.close().await;
}
