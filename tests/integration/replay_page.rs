//! The replay page's segmented replay in Chromium and Firefox: after opening a `top`-like
//! redraw session in the middle (`?t=`) and after a seek, the player's screen is the screen of
//! a full replay of the recording at that moment (the recording played into `avt`, the terminal
//! emulator asciinema-player runs as WebAssembly), and the page read the index and segments,
//! never the whole recording.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::browser::{Browser, Engine, in_both_browsers};
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT};
use crate::segments::{TOP_LIKE, recorded, recording_text, screen_of_full_replay};
use entry::auth::Role;

in_both_browsers!(a_seek_into_a_redraw_session_shows_the_full_replay_s_screen);

/// The player's screen, one string per row, trailing blanks trimmed.
async fn player_screen(browser: &Browser) -> Vec<String> {
    let script = "return [...document.querySelectorAll('.ap-term .ap-term-text .ap-line')].map(l => l.textContent)";
    let rows: Vec<String> = serde_json::from_value(browser.js(script, vec![]).await).unwrap_or_default();
    rows.into_iter().map(|row| row.replace('\u{a0}', " ").trim_end().to_owned()).collect()
}

/// Waits until the player's screen is the full replay's at `at`, the frame of `tick`.
async fn shows_the_full_replay_s_screen(browser: &Browser, cast: &str, at: f64, tick: u32) {
    let expected = screen_of_full_replay(cast, at);
    assert!(expected.iter().any(|l| l.contains(&format!("tick {tick:3}"))), "{expected:?}");
    browser
        .wait_until(&format!("the frame of tick {tick} on the player's screen"), WAIT, || async {
            player_screen(browser).await == expected
        })
        .await;
}

/// A quiet moment inside the redraw: 40 ms after the last event of the frame showing `tick`,
/// with the next event at least 40 ms later still.
fn quiet_moment_after(cast: &str, tick: u32) -> f64 {
    let times: Vec<(f64, String)> = cast
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e[1] == "o")
        .map(|e| (e[0].as_f64().unwrap(), e[2].as_str().unwrap().to_owned()))
        .collect();
    let label = format!("tick {tick:3}");
    let first = times.iter().position(|(_, data)| data.contains(&label)).expect("the frame is in the recording");
    // The frame's last event: the last before the next frame's first.
    let next = format!("tick {:3}", tick + 1);
    let end = times[first..].iter().position(|(_, data)| data.contains(&next)).map_or(times.len(), |i| first + i);
    let (last, next_time) = (times[end - 1].0, times.get(end).map_or(f64::INFINITY, |t| t.0));
    assert!(next_time - last > 0.08, "no quiet moment after tick {tick}: {last} then {next_time}");
    last + 0.04
}

async fn a_seek_into_a_redraw_session_shows_the_full_replay_s_screen(engine: Engine) {
    let app = TestApp::builder()
        .configure(|c| {
            c.replay.segment_every = Duration::from_secs(1);
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let row = recorded(&app, &container, TOP_LIKE, "top-done").await;
    let auditor = app.token("audrey", Role::Auditor, &[]).await;
    let cast = recording_text(&app, &row.id, &auditor).await;

    let browser = Browser::start(engine).await;
    browser.sign_in(&app.url(), &auditor).await;
    // Opened in the middle of the redraw (the page opens 0.1 s past `?t=`).
    let middle = quiet_moment_after(&cast, 12);
    browser.goto(&format!("{}/sessions/{}?t={:.6}", app.url(), row.id, middle - 0.1)).await;
    let position = "return typeof window.entrySessionTime === 'function' ? window.entrySessionTime() : null";
    browser
        .wait_until(&format!("the player at {middle} s"), WAIT, || async {
            browser.js(position, vec![]).await.as_f64().is_some_and(|p| (p - middle).abs() < 0.01)
        })
        .await;
    shows_the_full_replay_s_screen(&browser, &cast, middle, 12).await;

    // A seek further on, from the page's player: again the full replay's screen.
    let later = quiet_moment_after(&cast, 23);
    let gaps = browser.js("return window.entryIndex ? window.entryIndex.entry.gaps : null", vec![]).await;
    assert_eq!(gaps, json!([]), "no idle gap is cut in this session: player time is session time");
    browser.js("window.entryPlayer.seek(arguments[0])", vec![json!(later)]).await;
    shows_the_full_replay_s_screen(&browser, &cast, later, 23).await;
    browser.close().await;

    // The page read the index (one audited replay, segmented), not the whole recording.
    let audit = app.store.audit_entries(Some(&row.id), None, 50).await.unwrap();
    let page_replays: Vec<_> =
        audit.iter().filter(|e| e.action == "replay" && e.detail.as_deref() == Some("segmented")).collect();
    assert_eq!(page_replays.len(), 1, "{audit:?}");
}
