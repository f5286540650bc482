//! Encrypted links from the gateway to what it depends on, against real servers with a CA
//! made at test time (rcgen): a private PostgreSQL with `ssl = on` that accepts only TLS
//! (`hostssl`), reached with `sslmode=verify-full` (a session's row written and read back, a
//! wrong CA refused at start with the store named and no password shown); and a private
//! dockerd with `--tlsverify` on a loopback port of its own network namespace, reached with a
//! client certificate (`[docker] tls`/`cert_path`), a wrong CA or a foreign client refused.

mod docker;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::{ENTRY, Server};
use crate::common::{SH_IMAGE, TestApp, TestContainer, WAIT, bearer};
use crate::faults::postgres::PrivatePostgres;
use entry::auth::Role;
use entry::runtime::{ContainerAddress, ContainerRuntime, DockerRuntime, DockerTls};
use entry::store::Store;
use entry::wire::protocol::CloseReason;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A CA of the test's own.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate and its key (PEM) for `names`, for a server or a client.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("entry"));
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A PostgreSQL that speaks only TLS, with a server certificate for 127.0.0.1 from `ca`.
fn tls_postgres(ca: &Ca) -> PrivatePostgres {
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    PrivatePostgres::start_with(
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        &[("server.crt", &cert), ("server.key", &key), ("pg_hba.conf", "hostssl all all 127.0.0.1/32 trust\n")],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_store_over_verified_tls_keeps_sessions_and_a_wrong_ca_is_refused_at_start() {
    let ca = Ca::new("Entry test CA");
    let server = tls_postgres(&ca);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let base = format!("postgres://entry:pw-not-for-logs@127.0.0.1:{}/postgres", server.port);

    // The server takes no cleartext connection: what follows is TLS.
    let clear = Store::connect(&format!("{base}?sslmode=disable")).await.unwrap_err();
    assert!(clear.to_string().contains("no pg_hba.conf entry"), "{clear}");

    let url = format!("{base}?sslmode=verify-full&sslrootcert={}", ca_file.display());
    let app = TestApp::builder().configure(|c| c.store.url = Some(url.clone())).start().await;
    assert!(app.store.is_postgres());
    let container = TestContainer::start(SH_IMAGE);
    let token = bearer(&app.token("alice", Role::Developer, &["*"]).await);
    let mut session = app
        .connect(&[("container", &container.name), ("authorization", &token), ("command", r#"["echo","over tls"]"#)])
        .await;
    let transcript = session.read_to_close(WAIT).await;
    assert_eq!(transcript.reason(), CloseReason::Exited, "{}", transcript.close_line());
    assert!(transcript.stdout_text().contains("over tls"));
    let row = crate::common::wait_for_newest(&app.store, WAIT, "a final row", crate::common::is_final).await;
    assert_eq!((row.user.as_str(), row.container_name.as_str()), ("alice", container.name.as_str()));
    // Read back on a second verified connection.
    let reader = Store::connect(&url).await.unwrap();
    assert_eq!(reader.session(&row.id).await.unwrap().map(|r| r.id), Some(row.id.clone()));
    reader.close().await;

    // `entry serve` with another CA: refused at start, the store named, the password not shown.
    let other = Ca::new("Some other CA");
    let other_file = write(dir.path(), "other-ca.pem", &other.pem());
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other_file.display());
    let started = Instant::now();
    let output = Command::new(ENTRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("ENTRY_STORE__URL", &wrong)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let named =
        format!("cannot open the store postgres://entry@127.0.0.1:{}/postgres?sslmode=verify-full", server.port);
    assert!(stderr.contains(&named), "{stderr}");
    assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{stderr}");
    assert!(!stderr.contains("pw-not-for-logs"), "{stderr}");
}

// Blocking calls (`entry` commands) hold a worker while the relay needs others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tcp_dockerd_is_reached_over_tls_with_a_client_certificate_and_nothing_else() {
    // As `entry`'s main does: bollard's TLS uses the process's rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = Ca::new("Entry docker CA");
    let certs = tempfile::tempdir().unwrap();
    let (server_cert, server_key) = ca.issue(&["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let daemon = docker::TlsDocker::start(
        &write(certs.path(), "daemon-ca.pem", &ca.pem()),
        &write(certs.path(), "server.pem", &server_cert),
        &write(certs.path(), "server-key.pem", &server_key),
    );
    daemon.load_image(SH_IMAGE);
    let container = daemon.run(&["run", "-d", "--network", "none", SH_IMAGE, "sleep", "300"]);
    let relay = docker::Relay::start(daemon.pid(), docker::TLS_PORT).await;
    let host = format!("tcp://{}", relay.addr);

    // Entry's client directory in the DOCKER_CERT_PATH layout.
    let client_dir = certs.path().join("entry");
    std::fs::create_dir(&client_dir).unwrap();
    let (client_cert, client_key) = ca.issue(&["entry"], ExtendedKeyUsagePurpose::ClientAuth);
    write(&client_dir, "ca.pem", &ca.pem());
    write(&client_dir, "cert.pem", &client_cert);
    write(&client_dir, "key.pem", &client_key);
    let runtime = DockerRuntime::with_tls(Some(&host), 10, Some(DockerTls::in_dir(&client_dir))).unwrap();
    assert!(runtime.uses_tls());
    runtime.ping().await.expect("the TLS daemon answers");
    let found = runtime.resolve(&ContainerAddress::Name(container.clone())).await.unwrap();
    assert!(found.running && found.image.contains(SH_IMAGE), "{found:?}");

    // Cleartext to the TLS port is refused (what a build without TLS would do).
    let clear = DockerRuntime::with_tls(Some(&format!("http://{}", relay.addr)), 5, None).unwrap();
    assert!(clear.ping().await.is_err());
    // A client certificate the daemon's CA did not sign is refused by the daemon.
    let stranger = Ca::new("Stranger CA");
    let foreign_dir = certs.path().join("foreign");
    std::fs::create_dir(&foreign_dir).unwrap();
    let (foreign_cert, foreign_key) = stranger.issue(&["mallory"], ExtendedKeyUsagePurpose::ClientAuth);
    write(&foreign_dir, "ca.pem", &ca.pem());
    write(&foreign_dir, "cert.pem", &foreign_cert);
    write(&foreign_dir, "key.pem", &foreign_key);
    let foreign = DockerRuntime::with_tls(Some(&host), 5, Some(DockerTls::in_dir(&foreign_dir))).unwrap();
    assert!(foreign.ping().await.is_err(), "a foreign client certificate was accepted");
    // A daemon that the configured CA did not sign is refused by Entry.
    let wrong_ca_dir = certs.path().join("wrong-ca");
    std::fs::create_dir(&wrong_ca_dir).unwrap();
    write(&wrong_ca_dir, "ca.pem", &stranger.pem());
    write(&wrong_ca_dir, "cert.pem", &client_cert);
    write(&wrong_ca_dir, "key.pem", &client_key);
    let wrong_ca = DockerRuntime::with_tls(Some(&host), 5, Some(DockerTls::in_dir(&wrong_ca_dir))).unwrap();
    let refused = wrong_ca.ping().await.unwrap_err();
    assert!(refused.to_string().contains("invalid peer certificate: UnknownIssuer"), "{refused}");

    // `entry serve` configured with `[docker] tls` and `cert_path` runs a session through it.
    let data = tempfile::tempdir().unwrap();
    let client_path = client_dir.display().to_string();
    let server = Server::start_with(
        data.path(),
        &[("ENTRY_DOCKER__HOST", &host), ("ENTRY_DOCKER__TLS", "true"), ("ENTRY_DOCKER__CERT_PATH", &client_path)],
    );
    let output = server
        .entry(&server.admin_token)
        .args(["enter", &container, "--", "sh", "-c", "echo through-tls; exit 3"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "through-tls\n", "{}", server.log());
    assert_eq!(output.status.code(), Some(3));
    drop(server);

    // A missing key file stops `entry serve` at start, naming the file.
    std::fs::remove_file(client_dir.join("key.pem")).unwrap();
    let output = Command::new(ENTRY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("again"))
        .envs([("ENTRY_DOCKER__HOST", host.as_str()), ("ENTRY_DOCKER__TLS", "true")])
        .env("ENTRY_DOCKER__CERT_PATH", &client_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("key.pem"), "{stderr}");
}
