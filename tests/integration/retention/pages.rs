//! Legal hold in the pages, in headless Chromium and Firefox: an auditor holds a finished
//! session from its replay page with a hostile reason (shown as text, never as HTML), the
//! sessions page marks it held, its developer sees the banner but no Hold or Release button,
//! and the auditor releases it.

use crate::common::browser::{Browser, Engine, in_both_browsers};
use crate::common::{BASH_IMAGE, TestApp, TestContainer};
use entry::auth::Role;
use serde_json::json;

in_both_browsers!(an_auditor_holds_and_releases_a_session_from_its_replay_page);

const WAIT: std::time::Duration = crate::common::WAIT;
const REASON: &str = "case 7 <img src=x onerror=\"window.pwned=1\"> & co";

async fn hidden(browser: &Browser, selector: &str) -> bool {
    browser.js("return document.querySelector(arguments[0]).hidden", vec![json!(selector)]).await == true
}

async fn an_auditor_holds_and_releases_a_session_from_its_replay_page(engine: Engine) {
    let app = TestApp::start().await;
    let container = TestContainer::start(BASH_IMAGE);
    let alice = app.token("alice", Role::Developer, &["*"]).await;
    let row = super::finished(&app, &container, &alice, "page").await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    browser.goto(&format!("{}/sessions/{}", app.url(), row.id)).await;
    browser.wait_for_text("#meta", &container.name, WAIT).await;
    browser.wait_until("the Hold button", WAIT, || async { !hidden(&browser, "#hold").await }).await;
    assert!(hidden(&browser, "#release").await && hidden(&browser, "#hold-banner").await);
    browser.click("#hold").await;
    let input = browser.client.wait().for_element(fantoccini::Locator::Css("#hold-reason")).await.unwrap();
    input.send_keys(REASON).await.unwrap();
    browser.click("#hold-confirm").await;
    let banner = browser.wait_for_text("#hold-banner", "case 7", WAIT).await;
    assert!(banner.contains(REASON) && banner.contains("audrey"), "{banner}");
    assert_eq!(browser.js("return document.querySelectorAll('#hold-banner img').length", vec![]).await, 0);
    assert_eq!(browser.js("return window.pwned === undefined", vec![]).await, true);
    assert!(hidden(&browser, "#hold").await && !hidden(&browser, "#release").await);
    let held = app.store.session(&row.id).await.unwrap().unwrap().hold.expect("held");
    assert_eq!((held.reason.as_str(), held.by.as_str()), (REASON, "audrey"));

    browser.goto(&format!("{}/sessions", app.url())).await;
    let selector = format!("#sessions tr[data-session-id='{}'] .badge-held", row.id);
    browser.wait_for_text(&selector, "held", WAIT).await;

    // Its developer sees it held, and may neither hold nor release.
    let developer = Browser::start(engine).await;
    developer.sign_in(&app.url(), &alice).await;
    developer.goto(&format!("{}/sessions/{}", app.url(), row.id)).await;
    developer.wait_for_text("#hold-banner", "case 7", WAIT).await;
    assert!(hidden(&developer, "#hold").await && hidden(&developer, "#release").await);
    developer.close().await;

    browser.goto(&format!("{}/sessions/{}", app.url(), row.id)).await;
    browser.wait_for_text("#hold-banner", "case 7", WAIT).await;
    browser.click("#release").await;
    browser.wait_until("the banner gone", WAIT, || async { hidden(&browser, "#hold-banner").await }).await;
    browser.close().await;
    assert!(app.store.session(&row.id).await.unwrap().unwrap().hold.is_none());
}
