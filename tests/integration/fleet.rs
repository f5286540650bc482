//! One gateway, several Docker engines: three private dockerds on this machine, each in its own
//! network and UTS namespace (`fleet/daemons.rs`), reached through their unix sockets as
//! `[[runtime.engines]]`; and a real Swarm made of them (`fleet/swarm.rs`).
//!
//! Shown here: containers entered on each engine by their bare names, with the start time per
//! engine; a name on two engines refused with both candidates, and entered once qualified; a
//! token whose patterns name one engine entering there without ambiguity and never learning of
//! the other; the container list across engines; engine 2 hung (frozen): a session elsewhere
//! waits for it at most 5 s by bare name and not at all when qualified; engine 3 stopped: its
//! containers refused with a message naming it, the others entered, `/readyz`, the list and the
//! containers page (in Chromium) naming it, a terminal opened there on `engine/container`; a
//! client dropped on engine 2 reaped through engine 2 by the sweeper of a gateway that did not
//! run it; each Swarm slot entered on its node (the task's hostname is its node's), found again
//! after the swarm moved it, a node reached through its `entry.endpoint` label, and LAIN's
//! headers resolving a stack's service.

mod daemons;
mod swarm;

use std::time::{Duration, Instant};

use crate::common::browser::{Browser, Engine as BrowserEngine};
use crate::common::server::Server;
use crate::common::{Session, TestApp, WAIT, bearer, unique};
use daemons::{Fleet, FleetDaemon};
use entry::auth::Role;
use entry::config::EngineConfig;
use entry::runtime::{EngineSpec, Fleet as EntryFleet, FleetEngine, FleetError, SwarmOptions};
use entry::store::{SessionStatus, Store};
use entry::wire::protocol::CloseReason;
use fantoccini::Locator;
use fantoccini::key::Key;

/// An engine of the gateway's configuration for a daemon of the fleet.
fn engine(name: &str, daemon: &FleetDaemon) -> EngineConfig {
    EngineConfig {
        name: name.to_owned(),
        endpoint: daemon.socket.clone(),
        tls: None,
        cert_path: None,
        swarm_node: None,
        labels: Default::default(),
    }
}

/// A container running the bash test image on `daemon`, with no network (the fleet's daemons
/// have no bridge) and `hostname` as its host name.
fn run_container(daemon: &FleetDaemon, name: &str, hostname: &str) {
    daemon.run(&["run", "-d", "--name", name, "--hostname", hostname, "--network", "none", "entry-test-bash"]);
}

/// How many processes in `container` on `daemon` carry the session's marker.
fn marked_processes(daemon: &FleetDaemon, container: &str, session_id: &str) -> usize {
    let script = format!("grep -l 'ENTRY_SESSION={session_id}' /proc/[0-9]*/environ 2>/dev/null | wc -l");
    daemon.run(&["exec", container, "sh", "-c", &script]).parse().expect("a count")
}

/// Runs `hostname` in `container` through the gateway; its output, close reason and line.
async fn hostname_in(app: &TestApp, token: &str, container: &str) -> (String, CloseReason, String) {
    let headers = [("container", container), ("authorization", token), ("command", r#"["hostname"]"#)];
    let transcript = app.connect(&headers).await.read_to_close(WAIT).await;
    (transcript.stdout_text().trim().to_owned(), transcript.reason(), transcript.close_line())
}

async fn readyz(app: &TestApp) -> (u16, String) {
    let response = reqwest::get(format!("{}/readyz", app.url())).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `GET /api/v1/containers` with `authorization` (`Bearer …`).
async fn containers(app: &TestApp, authorization: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/containers", app.url()))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Milliseconds from opening `/enter` to the first output of `hostname`, median of `runs`.
async fn start_time(app: &TestApp, token: &str, container: &str, expect: &str, runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let headers = [("container", container), ("authorization", token), ("command", r#"["hostname"]"#)];
        let begun = Instant::now();
        let mut session = app.connect(&headers).await;
        session.read_until(expect, WAIT).await;
        times.push(begun.elapsed().as_secs_f64() * 1000.0);
        session.read_to_close(WAIT).await;
    }
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gateway_enters_three_engines_and_an_engine_that_is_down_blocks_no_other() {
    let mut fleet = tokio::task::spawn_blocking(|| Fleet::start(3)).await.unwrap();
    let names: Vec<String> = (1..=3).map(|i| unique(&format!("on-e{i}"))).collect();
    let twin = unique("twin");
    for (i, name) in names.iter().enumerate() {
        run_container(fleet.daemon(i + 1), name, &format!("inside-e{}", i + 1));
    }
    run_container(fleet.daemon(1), &twin, "twin-on-e1");
    run_container(fleet.daemon(2), &twin, "twin-on-e2");
    let engines: Vec<EngineConfig> = (1..=3).map(|i| engine(&format!("e{i}"), fleet.daemon(i))).collect();
    let app = TestApp::builder().configure(|config| config.runtime.engines = engines).start().await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);

    // Each container is found on its engine by its bare name, and the session row says where.
    for (i, name) in names.iter().enumerate() {
        let (output, reason, line) = hostname_in(&app, &admin, name).await;
        assert_eq!((output.as_str(), reason), (format!("inside-e{}", i + 1).as_str(), CloseReason::Exited), "{line}");
        let row = crate::common::newest_session(&app.store).await;
        assert_eq!((row.engine.as_str(), row.container_name.as_str()), (format!("e{}", i + 1).as_str(), name.as_str()));
    }
    for (i, name) in names.iter().enumerate() {
        let median = start_time(&app, &admin, name, &format!("inside-e{}", i + 1), 5).await;
        println!("session start (open to first output), engine e{}: median of 5 {median:.1} ms", i + 1);
    }

    // A name on two engines is refused with both, and entered once qualified.
    let (_, reason, line) = hostname_in(&app, &admin, &twin).await;
    assert_eq!(reason, CloseReason::Ambiguous, "{line}");
    assert!(line.contains(&format!("e1/{twin}")) && line.contains(&format!("e2/{twin}")), "{line}");
    assert!(line.contains("name one as engine/container"), "{line}");
    let (output, reason, _) = hostname_in(&app, &admin, &format!("e2/{twin}")).await;
    assert_eq!((output.as_str(), reason), ("twin-on-e2", CloseReason::Exited));
    let (output, _, _) = hostname_in(&app, &admin, &format!("e1/{twin}")).await;
    assert_eq!(output, "twin-on-e1");
    // An engine no one configured is no path anywhere.
    let (_, reason, line) = hostname_in(&app, &admin, &format!("e9/{twin}")).await;
    assert_eq!((reason, line.as_str()), (CloseReason::ContainerNotFound, "no engine named e9"));

    // A token whose patterns name engine 1 only: the twin is its one candidate, and the
    // containers of the other engines do not exist for it, nor appear among candidates.
    let e1_only = bearer(&app.token("dora", Role::Developer, &["e1/*"]).await);
    let (output, reason, _) = hostname_in(&app, &e1_only, &twin).await;
    assert_eq!((output.as_str(), reason), ("twin-on-e1", CloseReason::Exited));
    let (_, reason, line) = hostname_in(&app, &e1_only, &names[1]).await;
    assert_eq!(reason, CloseReason::ContainerNotFound, "{line}");
    let (_, reason, _) = hostname_in(&app, &e1_only, &format!("e2/{twin}")).await;
    assert_eq!(reason, CloseReason::ContainerNotFound);
    let listed = containers(&app, &e1_only).await;
    let seen: Vec<String> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}/{}", c["engine"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert!(seen.contains(&format!("e1/{twin}")) && seen.contains(&format!("e1/{}", names[0])), "{seen:?}");
    assert!(seen.iter().all(|c| c.starts_with("e1/")), "{seen:?}");

    // The list across engines: every engine up, each container with its engine.
    let listed = containers(&app, &admin).await;
    let states: Vec<(&str, &str)> = listed["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("e1", "up"), ("e2", "up"), ("e3", "up")]);
    let on_e3 = listed["containers"].as_array().unwrap().iter().find(|c| c["name"] == names[2].as_str()).unwrap();
    assert_eq!((on_e3["engine"].as_str(), on_e3["image"].as_str()), (Some("e3"), Some("entry-test-bash")));
    assert_eq!(readyz(&app).await, (200, "ready\n".to_owned()));

    // Engine 2 hangs (its socket takes connections, nothing answers): a bare name waits for it
    // no longer than 5 s, a name qualified with another engine does not wait for it at all,
    // and both `/readyz` and the list name it.
    fleet.daemon(2).freeze();
    let begun = Instant::now();
    let (output, reason, line) = hostname_in(&app, &admin, &names[0]).await;
    assert_eq!((output.as_str(), reason), ("inside-e1", CloseReason::Exited), "{line}");
    let bare = begun.elapsed();
    let begun = Instant::now();
    let (output, _, _) = hostname_in(&app, &admin, &format!("e1/{}", names[0])).await;
    assert_eq!(output, "inside-e1");
    let qualified = begun.elapsed();
    println!("with engine e2 hung, a session on e1: by bare name {bare:?}, as e1/… {qualified:?}");
    assert!(qualified < Duration::from_secs(5), "a session on e1 waited for the hung e2: {qualified:?}");
    assert_eq!(readyz(&app).await, (200, "ready, degraded\nengine e2 did not answer within 2s\n".to_owned()));
    let listed = containers(&app, &admin).await;
    let e2 = listed["engines"].as_array().unwrap().iter().find(|e| e["name"] == "e2").unwrap().clone();
    assert_eq!(e2, serde_json::json!({"name": "e2", "state": "down", "detail": "engine e2 did not answer within 5s"}));
    fleet.daemon(2).thaw();
    assert_eq!(readyz(&app).await, (200, "ready\n".to_owned()));

    // Engine 3 stops: its containers are refused naming it; the others are entered as before.
    tokio::task::block_in_place(|| fleet.daemon_mut(3).stop());
    let (_, reason, line) = hostname_in(&app, &admin, &names[2]).await;
    assert_eq!(reason, CloseReason::RuntimeUnavailable, "{line}");
    assert!(line.contains("engine e3 is unreachable"), "{line}");
    let (_, reason, line) = hostname_in(&app, &admin, &format!("e3/{}", names[2])).await;
    assert_eq!(reason, CloseReason::RuntimeUnavailable, "{line}");
    assert!(line.contains("engine e3 is unreachable"), "{line}");
    let begun = Instant::now();
    let (output, reason, _) = hostname_in(&app, &admin, &names[0]).await;
    assert_eq!((output.as_str(), reason), ("inside-e1", CloseReason::Exited));
    println!("with engine e3 down, a session on e1 took {:?}", begun.elapsed());
    let (output, _, _) = hostname_in(&app, &admin, &format!("e2/{twin}")).await;
    assert_eq!(output, "twin-on-e2");
    assert_eq!(readyz(&app).await, (200, "ready, degraded\nengine e3 is unreachable\n".to_owned()));
    let listed = containers(&app, &admin).await;
    let e3 = listed["engines"].as_array().unwrap().iter().find(|e| e["name"] == "e3").unwrap().clone();
    assert_eq!(e3, serde_json::json!({"name": "e3", "state": "down", "detail": "engine e3 is unreachable"}));
    let names_listed: Vec<&str> =
        listed["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names_listed.contains(&names[0].as_str()) && names_listed.contains(&names[1].as_str()));
    assert!(!names_listed.contains(&names[2].as_str()));
    containers_page_names_the_engine_that_is_down_and_opens_a_qualified_terminal(&app, &admin, &twin).await;

    // Back up: entered again, ready again.
    tokio::task::block_in_place(|| fleet.daemon_mut(3).restart());
    fleet.daemon(3).run(&["start", &names[2]]);
    let (output, _, _) = hostname_in(&app, &admin, &names[2]).await;
    assert_eq!(output, "inside-e3");
    assert_eq!(readyz(&app).await, (200, "ready\n".to_owned()));
}

/// The containers page, in Chromium, with engine 3 down: a line names it, the other engines'
/// rows carry their engine, and a row's terminal opens `engine/container` on that engine.
async fn containers_page_names_the_engine_that_is_down_and_opens_a_qualified_terminal(
    app: &TestApp,
    admin: &str,
    twin: &str,
) {
    let token = admin.strip_prefix("Bearer ").unwrap();
    let browser = Browser::start(BrowserEngine::Chromium).await;
    browser.sign_in(&app.url(), token).await;
    browser.goto(&format!("{}/containers", app.url())).await;
    let down = browser.wait_for_text("#engines-down", "Engine e3 is down", WAIT).await;
    assert_eq!(down.trim(), "Engine e3 is down: engine e3 is unreachable");
    let row = format!("#containers tr[data-container='{twin}'][data-engine='e2']");
    let text = browser.wait_for_text(&row, twin, WAIT).await;
    assert!(text.starts_with("e2") && text.contains("running"), "{text}");
    browser.click(&format!("{row} a.open")).await;
    browser
        .wait_until("the terminal's session", WAIT, || async {
            browser.js("return document.querySelector(\"#status[data-state='live']\") !== null", vec![]).await == true
        })
        .await;
    assert_eq!(browser.path().await, format!("/terminal?container=e2%2F{twin}"));
    let input = browser.client.find(Locator::Css(".xterm-helper-textarea")).await.unwrap();
    input.send_keys(&format!("hostname{}", char::from(Key::Enter))).await.unwrap();
    browser.wait_for_terminal("twin-on-e2", WAIT).await;
    // The session list names the container with its engine.
    browser.goto(&format!("{}/sessions", app.url())).await;
    browser.wait_for_text("#sessions tbody", &format!("e2/{twin}"), WAIT).await;
    browser.close().await;
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_dropped_on_engine_2_is_reaped_through_engine_2_by_a_gateway_that_did_not_run_it() {
    let fleet = tokio::task::spawn_blocking(|| Fleet::start(3)).await.unwrap();
    let container = unique("reap-e2");
    run_container(fleet.daemon(2), &container, "reap-e2");
    let dir = tempfile::tempdir().unwrap();
    let engines: String = (1..=3)
        .map(|i| format!("[[runtime.engines]]\nname = \"e{i}\"\nendpoint = \"{}\"\n", fleet.daemon(i).socket))
        .collect();
    let config = dir.path().join("entry.toml");
    std::fs::write(&config, engines).unwrap();
    let store_url = format!("sqlite://{}?mode=rwc", dir.path().join("shared.db").display());
    let common = [
        ("ENTRY_CONFIG", config.to_str().unwrap()),
        ("ENTRY_STORE__URL", store_url.as_str()),
        ("ENTRY_REAPER__SWEEP_INTERVAL", "1s"),
        ("ENTRY_REAPER__NODE_EXPIRY", "3s"),
    ];
    let mut first =
        Server::start_with(&dir.path().join("g1"), &[common.as_slice(), &[("ENTRY_NODE_ID", "g1")]].concat());
    let url = format!("ws://127.0.0.1:{}/enter", first.port);
    let target = format!("e2/{container}");
    let mut session = Session::connect(&url, &[("container", &target), ("access-token", &first.admin_token)]).await;
    session.type_text("sleep 1000 & cat\r").await;
    let store = Store::open(&store_url).await.unwrap();
    let id = crate::common::wait_for_newest(&store, WAIT, "a session row", |row| !row.exec_id.is_empty()).await.id;
    let deadline = Instant::now() + WAIT;
    while marked_processes(fleet.daemon(2), &container, &id) < 3 {
        assert!(Instant::now() < deadline, "the session's shell, sleep and cat never ran on engine 2");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("gateway g1 RSS with one session on e2, three engines: {} KiB", rss_kib(first.child.id()));
    // `entry ls` lists across the engines, each container with the address to enter it by.
    let listed = first.entry(&first.admin_token).arg("ls").output().unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{text}{}", String::from_utf8_lossy(&listed.stderr));
    let header = text.lines().next().unwrap_or_default();
    assert!(header.starts_with("ENGINE") && header.contains("ENTER AS"), "{text}");
    let line = text.lines().find(|l| l.contains(&container)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("e2") && line.contains(&format!("e2/{container}")) && line.contains("running"), "{text}");
    // The gateway dies with its client: Docker keeps the shell and its children.
    first.kill();
    drop(session);
    assert_eq!(
        marked_processes(fleet.daemon(2), &container, &id),
        3,
        "docker does not end an exec whose client is gone"
    );

    // A gateway that does not reach engine 2 sweeps too: it leaves the session alone.
    let partial = dir.path().join("without-e2.toml");
    let without_e2: String = [1, 3]
        .iter()
        .map(|i| format!("[[runtime.engines]]\nname = \"e{i}\"\nendpoint = \"{}\"\n", fleet.daemon(*i).socket))
        .collect();
    std::fs::write(&partial, without_e2).unwrap();
    let blind_env = [
        ("ENTRY_CONFIG", partial.to_str().unwrap()),
        ("ENTRY_STORE__URL", store_url.as_str()),
        ("ENTRY_REAPER__SWEEP_INTERVAL", "1s"),
        ("ENTRY_REAPER__NODE_EXPIRY", "3s"),
        ("ENTRY_NODE_ID", "g3"),
    ];
    let blind = Server::join(&dir.path().join("g3"), &blind_env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blind.log().contains("left to one that does") {
        assert!(Instant::now() < deadline, "g3 never swept past the session; its log:\n{}", blind.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = store.session(&id).await.unwrap().unwrap();
    assert_eq!(row.status, SessionStatus::Live, "a gateway without engine 2 claimed its session");
    assert_eq!(marked_processes(fleet.daemon(2), &container, &id), 3);

    let begun = Instant::now();
    let second = Server::join(&dir.path().join("g2"), &[common.as_slice(), &[("ENTRY_NODE_ID", "g2")]].concat());
    let deadline = Instant::now() + Duration::from_secs(30);
    while marked_processes(fleet.daemon(2), &container, &id) != 0 {
        assert!(Instant::now() < deadline, "not reaped 30 s after g2 started; g2's log:\n{}", second.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("g2 start to no marked process on e2: {:?} (g1's heartbeat expires after 3 s)", begun.elapsed());
    // The reap's outcome is written once its final scan and inspect are done.
    let row = loop {
        let row = store.session(&id).await.unwrap().unwrap();
        if row.reap_status.is_some() {
            break row;
        }
        assert!(Instant::now() < deadline, "the reap's outcome was never written; g2's log:\n{}", second.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((row.engine.as_str(), row.node_id.as_str()), ("e2", "g1"));
    assert_eq!(row.status, SessionStatus::Interrupted);
    assert_eq!(row.reap_status.as_deref(), Some("reaped"), "{:?}", row.reap_detail);
    let detail = row.reap_detail.unwrap_or_default();
    assert!(detail.contains("3 ended, 0 left"), "{detail}");
    assert!(second.log().contains("session orphaned by its gateway; reaping"), "{}", second.log());
    println!("gateway g2 RSS after the sweep: {} KiB", rss_kib(second.child.id()));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_swarm_slot_is_entered_on_its_node_and_found_again_after_the_swarm_moves_it() {
    let fleet = tokio::task::spawn_blocking(|| Fleet::start(3)).await.unwrap();
    tokio::task::block_in_place(|| fleet.form_swarm()).expect("a swarm of the three daemons");
    // Node 1 by an engine named as its host, node 2 by `swarm_node`, node 3 only through its
    // `entry.endpoint` label.
    let node3 = fleet.node_id(3);
    fleet.manager().run(&[
        "node",
        "update",
        "--label-add",
        &format!("entry.endpoint={}", fleet.daemon(3).socket),
        &node3,
    ]);
    let first = engine("entry-fleet-1", fleet.daemon(1));
    let second = EngineConfig { swarm_node: Some("entry-fleet-2".into()), ..engine("b", fleet.daemon(2)) };
    let service = unique("web").replace(['.', '_'], "-");
    let tasks = tokio::task::block_in_place(|| {
        fleet.create_service(&service, "entry-test-bash", 3, Some(1), &[]);
        fleet.wait_tasks(&service, 3)
    });
    let app = TestApp::builder()
        .configure(|config| config.runtime.engines = vec![first.clone(), second.clone()])
        .start()
        .await;
    let admin = bearer(&app.token("root", Role::Admin, &["*"]).await);

    let engine_of = |node: usize| match node {
        1 => "entry-fleet-1",
        2 => "b",
        _ => "entry-fleet-3",
    };
    for task in &tasks {
        let slot = format!("{service}.{}", task.slot);
        let begun = Instant::now();
        let (output, reason, line) = hostname_in(&app, &admin, &slot).await;
        assert_eq!(reason, CloseReason::Exited, "{slot}: {line}");
        assert_eq!(output, fleet.daemon(task.node).hostname, "{slot} ran elsewhere than its task's node");
        let row = crate::common::newest_session(&app.store).await;
        assert_eq!(
            (row.engine.as_str(), row.container_id.as_str()),
            (engine_of(task.node), task.container_id.as_str())
        );
        println!("swarm slot {slot} on node {}: session of `hostname` in {:?}", task.node, begun.elapsed());
    }

    // The swarm moves a slot's task off its node: the same address finds it on the new one.
    let mover = unique("mover").replace(['.', '_'], "-");
    let before = tokio::task::block_in_place(|| {
        fleet.remove_service(&service);
        fleet.create_service(&mover, "entry-test-bash", 2, Some(1), &[]);
        fleet.wait_tasks(&mover, 2).remove(0)
    });
    let (output, _, _) = hostname_in(&app, &admin, &format!("{mover}.1")).await;
    assert_eq!(output, fleet.daemon(before.node).hostname);
    let moved = tokio::task::block_in_place(|| {
        fleet.drain(before.node);
        fleet.wait_moved(&mover, 1, before.node)
    });
    assert_ne!((moved.node, &moved.container_id), (before.node, &before.container_id));
    let (output, reason, line) = hostname_in(&app, &admin, &format!("{mover}.1")).await;
    assert_eq!(reason, CloseReason::Exited, "{line}");
    assert_eq!(output, fleet.daemon(moved.node).hostname, "slot 1 was not found again on its new node");
    let row = crate::common::newest_session(&app.store).await;
    assert_eq!((row.engine.as_str(), row.container_id.as_str()), (engine_of(moved.node), moved.container_id.as_str()));
    println!("slot {mover}.1 moved from node {} to node {} and was entered there", before.node, moved.node);
    tokio::task::block_in_place(|| fleet.activate(before.node));

    // LAIN's headers name a stack's service: app `shop` and proc `web` are service `shop_web`.
    let stack = unique("shop").replace(['.', '_'], "-");
    let stack_service = format!("{stack}_web");
    let lain_task = tokio::task::block_in_place(|| {
        fleet.create_service(&stack_service, "entry-test-bash", 1, None, &[]);
        fleet.wait_tasks(&stack_service, 1).remove(0)
    });
    let headers = [
        ("app-name", stack.as_str()),
        ("proc-name", "web"),
        ("instance-no", "1"),
        ("authorization", admin.as_str()),
        ("command", r#"["hostname"]"#),
    ];
    let transcript = app.connect(&headers).await.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Exited, "{}", transcript.close_line());
    assert_eq!(transcript.stdout_text().trim(), fleet.daemon(lain_task.node).hostname);

    // Another gateway finds the label's engine by its name, as its sweeper does for a row.
    let options = SwarmOptions { enabled: true, label_endpoints: true, tls: None, timeout_secs: 10 };
    let built: Vec<FleetEngine> = [first, second]
        .into_iter()
        .map(|e| {
            let spec = EngineSpec {
                name: e.name,
                endpoint: e.endpoint,
                tls: None,
                swarm_node: e.swarm_node,
                labels: e.labels,
            };
            spec.build(10).unwrap()
        })
        .collect();
    let other = EntryFleet::new(built, options, Duration::from_secs(5));
    let found = other.engine("entry-fleet-3").await.expect("the labelled node's engine");
    assert_eq!(found.labels.get("entry.endpoint"), Some(&fleet.daemon(3).socket));
    assert!(found.runtime.ping().await.is_ok());
    assert!(matches!(other.engine("entry-fleet-9").await, Err(FleetError::UnknownEngine(_))));

    // A slot that does not exist is not found.
    let (_, reason, _) = hostname_in(&app, &admin, &format!("{service}.7")).await;
    assert_eq!(reason, CloseReason::ContainerNotFound);
}
