//! Slow and idle clients against the real gateway: 1,000 connections that trickle a request
//! header a byte at a time (and some that send nothing) are all closed by
//! `gateway.header_timeout`, while `/healthz` answers and a live session (its WebSocket long
//! past the timeout) keeps working; the per-address cap closes the connection over it at
//! once, counts it in `/metrics`, and leaves other addresses alone; on the TLS listener a
//! client that never handshakes, or trickles its header after the handshake, is closed alike;
//! accepted sockets, plain and TLS, carry TCP keepalive.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use entry::auth::Role;
use entry::config::GatewayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Trickling connections, spread over source addresses under the default per-address cap.
const SLOW_CLIENTS: usize = 1_000;
const SOURCES: usize = 5;

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// Sends a request line, then one header byte every 200 ms (nothing at all when `silent`),
/// until the gateway closes the connection; returns how long that took (`None`: still open
/// after `give_up`).
async fn trickle(from: IpAddr, addr: SocketAddr, silent: bool, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = connect_from(from, addr).await.expect("connect");
    if !silent {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("request line");
    }
    let header = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut byte = header.iter().cycle();
    let mut buf = [0u8; 512];
    while started.elapsed() < give_up {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                // hyper answers a header timeout with nothing; anything read is still a close.
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if !silent && stream.write_all(&[*byte.next().unwrap_or(&b'a')]).await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
    None
}

/// Whether the gateway closes `stream` within `within` (anything still to read is read).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

async fn healthz(app: &TestApp) -> u16 {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    client.get(format!("{}/healthz", app.url())).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.url())).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_trickling_connections_are_closed_while_health_and_a_session_carry_on() {
    let app = TestApp::builder()
        .configure(|c| {
            c.gateway.header_timeout = HEADER_TIMEOUT;
            // The default caps (the test harness turns the per-address one off).
            c.gateway.max_connections_per_address = GatewayConfig::default().max_connections_per_address;
        })
        .start()
        .await;
    let container = TestContainer::start(BASH_IMAGE);
    let auth = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app.connect(&[("container", &container.name), ("authorization", &auth)]).await;
    session.type_text("echo before-$((1+1))\r").await;
    session.read_until("before-2", WAIT).await;

    let started = Instant::now();
    let give_up = HEADER_TIMEOUT * 5;
    // In bursts of 50, so the kernel's accept queue (1,024 in the test) never overflows: a
    // silent connection dropped there would wait for a SYN-ACK retry, not for the gateway.
    let mut slow = Vec::new();
    for i in 0..SLOW_CLIENTS {
        let from = IpAddr::from([127, 0, 0, 10 + (i % SOURCES) as u8]);
        // One in ten sends nothing at all after connecting.
        slow.push(tokio::spawn(trickle(from, app.addr, i % 10 == 0, give_up)));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Meanwhile, legitimate requests and the session are served.
    tokio::time::sleep(HEADER_TIMEOUT / 2).await;
    assert_eq!(healthz(&app).await, 200, "/healthz during the slowloris");
    session.type_text("echo during-$((2+2))\r").await;
    session.read_until("during-4", WAIT).await;

    let mut closed_after = Vec::new();
    let mut open = Vec::new();
    for (i, task) in slow.into_iter().enumerate() {
        match task.await.unwrap() {
            Some(took) => closed_after.push(took),
            None => open.push(i),
        }
    }
    assert!(open.is_empty(), "{} connections still open after {give_up:?}: {open:?}", open.len());
    let (first, last) = (closed_after.iter().min().unwrap(), closed_after.iter().max().unwrap());
    println!(
        "{SLOW_CLIENTS} trickling connections: closed between {first:?} and {last:?} after connecting \
         (header timeout {HEADER_TIMEOUT:?}); all closed {:?} after the first connect",
        started.elapsed()
    );
    // Closed by the timeout: not before it, and soon after it.
    assert!(*first >= HEADER_TIMEOUT - Duration::from_millis(100), "closed too early: {first:?}");
    assert!(*last <= HEADER_TIMEOUT + Duration::from_secs(3), "closed too late: {last:?}");

    // The session's WebSocket outlived the header timeout, and still works; so does /healthz.
    assert_eq!(healthz(&app).await, 200, "/healthz after the slowloris");
    session.type_text("echo after-$((3+3)); exit\r").await;
    let end = session.read_to_close(WAIT).await;
    assert!(end.stdout_text().contains("after-6"), "{}", end.stdout_text());

    // An idle keep-alive connection is closed by the same timeout after its answer.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let idle_since = Instant::now();
    assert!(closed_within(&mut idle, HEADER_TIMEOUT + Duration::from_secs(3)).await, "idle keep-alive stayed open");
    println!("idle keep-alive connection closed after {:?}", idle_since.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_address_cap_closes_the_next_connection_at_once_and_spares_other_addresses() {
    const CAP: usize = 8;
    let app = TestApp::builder().configure(|c| c.gateway.max_connections_per_address = CAP).start().await;
    let refused_before = metric(&app, "entry_connections_refused_total{limit=\"max_connections_per_address\"}").await;
    let crowded = IpAddr::from([127, 0, 0, 20]);
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(connect_from(crowded, app.addr).await.unwrap());
    }
    // Accepted ones stay open (the header timeout is 10 s)...
    tokio::time::sleep(Duration::from_millis(300)).await;
    for stream in &mut held {
        assert!(!closed_within(stream, Duration::from_millis(50)).await, "a connection under the cap was closed");
    }
    // ...the one over the cap is closed at once, without an answer.
    let mut over = connect_from(crowded, app.addr).await.unwrap();
    let _ = over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let refused_at = Instant::now();
    assert!(
        closed_within(&mut over, Duration::from_secs(1)).await,
        "connection {} from one address was served",
        CAP + 1
    );
    println!("connection {} from one address closed after {:?}", CAP + 1, refused_at.elapsed());
    let refused = metric(&app, "entry_connections_refused_total{limit=\"max_connections_per_address\"}").await;
    assert!(refused > refused_before, "the refusal was not counted: {refused_before} then {refused}");

    // Another address is served meanwhile.
    let mut other = connect_from(IpAddr::from([127, 0, 0, 21]), app.addr).await.unwrap();
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    other.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    // A place given back is a place again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(crowded, app.addr).await.unwrap();
    again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    again.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    // Accepted sockets carry TCP keepalive (the kernel's keepalive timer runs on them).
    let sockets = Command::new("ss").args(["-tnoH", "state", "established", "src", &app.addr.to_string()]).output();
    let sockets = String::from_utf8_lossy(&sockets.unwrap().stdout).into_owned();
    let lines: Vec<_> = sockets.lines().collect();
    assert!(!lines.is_empty(), "ss shows no accepted socket");
    assert!(lines.iter().all(|line| line.contains("timer:(keepalive")), "{sockets}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tls_listener_closes_silent_and_trickling_clients_too() {
    let pki = super::tls::pki();
    let tls = entry::config::TlsConfig { cert: pki.cert.clone(), key: pki.key.clone() };
    let app = TestApp::builder()
        .configure(|c| {
            c.gateway.tls = Some(tls);
            c.gateway.header_timeout = HEADER_TIMEOUT;
        })
        .start()
        .await;
    let slack = Duration::from_secs(2);

    // No handshake at all.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, HEADER_TIMEOUT + slack).await, "a silent TLS client stayed connected");
    let silent_closed = started.elapsed();
    assert!(silent_closed >= HEADER_TIMEOUT - Duration::from_millis(100), "{silent_closed:?}");

    // A finished handshake, then a header trickled a byte every 200 ms.
    let connector = tokio_rustls::TlsConnector::from(entry::client::tls::client_config(&pki.ca).unwrap());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let started = Instant::now();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let trickled_closed = loop {
        tokio::select! {
            read = tls.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { break started.elapsed() },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if tls.write_all(b"a").await.is_err() { break started.elapsed() }
                assert!(started.elapsed() < HEADER_TIMEOUT + slack, "a trickling TLS client stayed connected");
            }
        }
    };
    assert!(trickled_closed >= HEADER_TIMEOUT - Duration::from_millis(100), "{trickled_closed:?}");
    println!("TLS: silent client closed after {silent_closed:?}, trickling one after {trickled_closed:?}");

    // Accepted TLS sockets carry TCP keepalive too.
    let _held = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sockets = Command::new("ss").args(["-tnoH", "state", "established", "src", &app.addr.to_string()]).output();
    let sockets = String::from_utf8_lossy(&sockets.unwrap().stdout).into_owned();
    assert!(!sockets.is_empty() && sockets.lines().all(|line| line.contains("timer:(keepalive")), "{sockets}");
}
