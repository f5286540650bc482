//! A share link in headless Chromium, with no account and no sign-in: the page says who shared
//! the session and until when, and plays it to the line it printed; a revoked link and an
//! expired one get the page's message and no player.

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
