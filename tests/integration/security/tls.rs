//! TLS termination: `[gateway.tls]` with a CA and a server certificate made at test time
//! (rcgen); health, sign-in (a `__Host-` cookie, the only name accepted over TLS), the CLI's
//! session over wss and the API over https, the web terminal over wss (an `http://` origin
//! refused); plain HTTP to the TLS port fails; verification is never off; unusable
//! certificate or key files stop `entry serve` at start with the file named.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entry::auth::Role;
use entry::config::TlsConfig;
use entry::wire::protocol::CloseReason;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::server::ENTRY;
use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT};

/// A CA, and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Entry test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "entry gateway");
    let cert = params.signed_by(&key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("cert.pem", cert.pem()),
        key: write("key.pem", key.serialize_pem()),
        dir,
    }
}

fn https_client(ca: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder().add_root_certificate(ca).build().unwrap()
}

/// Every cause of an error, joined (reqwest's own message only names the URL).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_gateway_serves_health_sign_in_and_sessions_over_https_and_wss_only() {
    let pki = pki();
    let tls = TlsConfig { cert: pki.cert.clone(), key: pki.key.clone() };
    let mut app = TestApp::builder().configure(|c| c.gateway.tls = Some(tls)).start().await;
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    let https = https_client(&pki.ca);

    let health = https.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!((health.status().as_u16(), health.text().await.unwrap().as_str()), (200, "ok\n"));

    // Verification stays on: a client without the CA is refused, by name.
    let untrusted = reqwest::get(format!("{base}/healthz")).await.unwrap_err();
    assert!(causes(&untrusted).contains("UnknownIssuer"), "{}", causes(&untrusted));

    // Plain HTTP to the TLS port gets no HTTP answer, and the gateway carries on.
    assert!(reqwest::get(format!("http://{}/healthz", app.addr)).await.is_err());
    let mut plain = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered: {:?}", String::from_utf8_lossy(&answer));
    assert_eq!(https.get(format!("{base}/healthz")).send().await.unwrap().status().as_u16(), 200);

    // The sign-in cookie is Secure, HttpOnly and SameSite=Strict over TLS.
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let login = https.post(format!("{base}/api/v1/login")).json(&serde_json::json!({ "token": admin })).send();
    let login = login.await.unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    // Over TLS the cookie is host-bound (`__Host-`), and only that name is accepted: a plain
    // `entry_session` (which a sibling domain or a cleartext page could plant) is not.
    let secret = cookie.strip_prefix("__Host-entry_session=").unwrap_or_else(|| panic!("{set_cookie}"));
    let me = |cookie: String| https.get(format!("{base}/api/v1/me")).header("cookie", cookie).send();
    assert_eq!(me(cookie.clone()).await.unwrap().status().as_u16(), 200);
    assert_eq!(me(format!("entry_session={secret}")).await.unwrap().status().as_u16(), 401);

    // `entry enter` over wss with the CA from ENTRY_CA; refused without it.
    let container = TestContainer::start(BASH_IMAGE);
    let enter = |ca: Option<&Path>| {
        let mut command = Command::new(ENTRY);
        command.args(["enter", &container.name, "--", "sh", "-c", "echo tls-$((6*7))"]);
        command.env("ENTRY_SERVER", &base).env("ENTRY_TOKEN", &admin).env_remove("ENTRY_CA").stdin(Stdio::null());
        if let Some(ca) = ca {
            command.env("ENTRY_CA", ca);
        }
        command.output().unwrap()
    };
    let started = Instant::now();
    let output = enter(Some(&pki.ca));
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "tls-42\n");
    let row = crate::common::wait_for_newest(&app.store, WAIT, "the session", crate::common::is_final).await;
    assert_eq!((row.exit_code, row.client_kind.as_str()), (Some(0), "cli"));
    assert!(row.source_addr.starts_with("127.0.0.1:"), "the peer address survives TLS: {}", row.source_addr);
    let output = enter(None);
    assert_eq!(output.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect") && stderr.contains("UnknownIssuer"), "{stderr}");
    println!("entry enter over wss: {took:?}");

    // The API commands over https with --ca.
    let listed = Command::new(ENTRY)
        .args(["sessions", "ls", "--server", &base, "--token", &admin, "--ca"])
        .arg(&pki.ca)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&row.id[..8]),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );

    // The web terminal over wss, with the cookie, from the gateway's own https origin; the
    // same host and port over http is another origin, refused.
    let url = format!("wss://127.0.0.1:{}/api/v1/terminal?container={}", app.addr.port(), container.name);
    let connector = tokio_tungstenite::Connector::Rustls(entry::client::tls::client_config(&pki.ca).unwrap());
    let mut request = url.clone().into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    request.headers_mut().insert("origin", base.replace("https://", "http://").parse().unwrap());
    let refused = tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector.clone())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("an http origin on the TLS gateway was not refused: {:?}", other.map(|(_, r)| r.status())),
    }
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    request.headers_mut().insert("origin", base.parse().unwrap());
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector)).await.unwrap();
    let (output, close) = super::type_and_read_to_close(&mut ws, "echo wss-$((6*7)); exit\r").await;
    assert!(output.contains("wss-42"), "{output}");
    assert_eq!(close.map(|c| c.reason()), Some(CloseReason::Exited));

    // Graceful shutdown works on the TLS listener too.
    let started = Instant::now();
    app.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}

/// Runs `entry serve` with `[gateway.tls]` set to `cert` and `key`; returns its exit code and
/// stderr once it exits (it must, within [`super::START_FAILS_WITHIN`]).
fn serve_with_tls(cert: &Path, key: &Path) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(ENTRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .env("ENTRY_GATEWAY__TLS__CERT", cert)
        .env("ENTRY_GATEWAY__TLS__KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + super::START_FAILS_WITHIN;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("entry serve started with cert {} and key {}", cert.display(), key.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.stdout.is_empty(), "it printed a token before refusing: {:?}", output.stdout);
    assert!(!data.path().join("data").exists(), "it created its data directory before refusing");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn entry_serve_refuses_to_start_with_unusable_tls_files_and_names_them() {
    let (pki, other) = (self::pki(), self::pki());
    let missing = pki.dir.path().join("missing.pem");
    let cases: [(&Path, &Path, &str); 4] = [
        (&missing, &pki.key, "cannot read the TLS certificate"),
        (&pki.cert, &missing, "cannot read the TLS private key"),
        (&pki.key, &pki.key, "holds no PEM certificate"),
        (&pki.cert, &other.key, "cannot be used together"),
    ];
    for (cert, key, expected) in cases {
        let (code, stderr) = serve_with_tls(cert, key);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("configuring TLS") && stderr.contains(expected), "{expected}: {stderr}");
        let named = if expected.contains("key") { key } else { cert };
        assert!(stderr.contains(&named.display().to_string()), "{stderr}");
    }
}
