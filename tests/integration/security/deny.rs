//! Containers Entry refuses whatever the token's patterns say: one labelled `entry.deny=true`
//! (always), a privileged one and one that mounts the Docker socket (unless the token carries
//! `allow_privileged`). Each refusal is a CLOSE `forbidden` naming the reason, with no exec in
//! dockerd's event log; the container list never offers what a session would refuse. Every
//! service of `docker-compose.yml`, as docker-compose reads it, carries the label.

use std::process::Command;

use entry::auth::Role;
use entry::store::TokenGrants;
use entry::wire::protocol::CloseReason;

use crate::common::{BASH_IMAGE, TestApp, TestContainer, WAIT, bearer, unique};

/// Opens a session running `true`; returns its CLOSE reason, line and exit code.
async fn enter(app: &TestApp, container: &str, token: &str) -> (CloseReason, String, Option<i32>) {
    let authorization = bearer(token);
    let headers = [("container", container), ("authorization", authorization.as_str()), ("command", r#"["true"]"#)];
    let transcript = app.connect(&headers).await.read_to_close(WAIT).await;
    (transcript.reason(), transcript.close_line(), transcript.exit_code())
}

/// The names `GET /api/v1/containers` offers `token`.
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let response =
        reqwest::Client::new().get(format!("{}/api/v1/containers", app.url())).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let list: serde_json::Value = response.json().await.unwrap();
    list["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn labelled_privileged_and_socket_containers_are_refused_to_an_admin() {
    let app = TestApp::start().await;
    let plain = TestContainer::start(BASH_IMAGE);
    let labelled = TestContainer::start_with(BASH_IMAGE, &["--label", "entry.deny=true"]);
    let (privileged, running) = privileged_container();
    let socket = TestContainer::start_with(BASH_IMAGE, &["-v", "/var/run/docker.sock:/var/run/docker.sock"]);
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let trusted = TokenGrants { allow_privileged: true, ..Default::default() };
    let operator = app.token_with("ops", Role::Admin, &["*"], &trusted).await;

    assert_eq!(enter(&app, &plain.name, &admin).await.2, Some(0), "the control container");
    for (container, expected) in [
        (&labelled, "is marked entry.deny=true"),
        (&privileged, "is privileged (a token needs --allow-privileged)"),
        (&socket, "mounts the Docker socket"),
    ] {
        for address in [container.name.clone(), container.compose()] {
            let (reason, line, _) = enter(&app, &address, &admin).await;
            assert_eq!(reason, CloseReason::Forbidden, "{address}: {line}");
            assert_eq!(line.split(": ").next(), Some("forbidden"), "{line}");
            assert!(line.contains(&container.name) && line.contains(expected), "{address}: {line}");
            println!("admin into {address}: {line}");
        }
    }

    // allow_privileged lets the privileged and socket containers in, never the label.
    let (reason, line, code) = enter(&app, &privileged.name, &operator).await;
    if running {
        assert_eq!(code, Some(0), "{line}");
    } else {
        assert_eq!(reason, CloseReason::ContainerNotRunning, "past the deny rules: {line}");
    }
    assert_eq!(enter(&app, &socket.compose(), &operator).await.2, Some(0));
    let (reason, line, _) = enter(&app, &labelled.name, &operator).await;
    assert_eq!(reason, CloseReason::Forbidden, "{line}");
    assert!(line.contains("entry.deny=true"), "{line}");

    for (refused, allowed) in [(&labelled, 0), (&privileged, usize::from(running)), (&socket, 1)] {
        let creates = refused.exec_creates();
        assert_eq!(creates.len(), allowed, "{}: execs {creates:?}", refused.name);
    }

    let offered = listed(&app, &admin).await;
    assert!(offered.contains(&plain.name), "{offered:?}");
    for hidden in [&labelled, &privileged, &socket] {
        assert!(!offered.contains(&hidden.name), "the list offers {} to the admin: {offered:?}", hidden.name);
    }
    let offered = listed(&app, &operator).await;
    assert!(offered.contains(&privileged.name) && offered.contains(&socket.name), "{offered:?}");
    assert!(!offered.contains(&labelled.name), "{offered:?}");
}

/// A privileged container, and whether it runs: a dockerd that may not grant every
/// capability (itself in a restricted container) cannot start one, so it is then only
/// created; Entry's deny rules come before its running check, so the refusal is the same.
fn privileged_container() -> (TestContainer, bool) {
    let (name, project) = (unique("entrytest-priv-"), unique("proj"));
    let labels = [
        format!("com.docker.compose.project={project}"),
        "com.docker.compose.service=web".to_owned(),
        "com.docker.compose.container-number=1".to_owned(),
    ];
    let docker = |verb: &str| {
        let mut command = Command::new("docker");
        command.arg(verb).args(if verb == "run" { &["-d"][..] } else { &[] });
        command.args(["--privileged", "--name", &name]);
        for label in &labels {
            command.args(["--label", label]);
        }
        command.arg(BASH_IMAGE).output().unwrap()
    };
    let running = docker("run").status.success();
    if !running {
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let create = docker("create");
        assert!(create.status.success(), "docker create: {}", String::from_utf8_lossy(&create.stderr));
        println!("this dockerd cannot run a privileged container; testing a created one");
    }
    let id = Command::new("docker").args(["inspect", "--format", "{{.Id}}", &name]).output().unwrap();
    let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    (TestContainer { name, id, project }, running)
}

/// The labels docker-compose gives each service of `docker-compose.yml` (from
/// `docker-compose config`, Compose's own reading of the file).
fn compose_labels() -> Vec<(String, Vec<String>)> {
    let compose_file = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");
    let output = Command::new("docker-compose").args(["-f", compose_file, "config"]).output().expect("docker-compose");
    assert!(output.status.success(), "docker-compose config: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let mut services: Vec<(String, Vec<String>)> = Vec::new();
    let (mut in_services, mut in_labels) = (false, false);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        match indent {
            0 => in_services = line == "services:",
            2 if in_services => {
                services.push((line.trim().trim_end_matches(':').to_owned(), Vec::new()));
                in_labels = false;
            }
            4 if in_services => in_labels = line.trim() == "labels:",
            6 if in_labels => {
                let (key, value) = line.trim().split_once(": ").unwrap();
                let label = format!("{key}={}", value.trim_matches(|c| c == '\'' || c == '"'));
                services.last_mut().unwrap().1.push(label);
            }
            _ => {}
        }
    }
    services
}

/// Every service of `docker-compose.yml` carries `entry.deny=true`, and a container with a
/// service's labels is refused to every token.
#[tokio::test]
async fn the_compose_services_are_refused() {
    let services = compose_labels();
    let names: Vec<&str> = services.iter().map(|(name, _)| name.as_str()).collect();
    for infrastructure in ["postgres", "minio", "minio-init", "entry"] {
        assert!(names.contains(&infrastructure), "{infrastructure} not in {names:?}");
    }
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin, &["*"]).await;
    let trusted = TokenGrants { allow_privileged: true, ..Default::default() };
    let operator = app.token_with("ops", Role::Admin, &["*"], &trusted).await;
    for (service, labels) in &services {
        assert!(labels.iter().any(|l| l == "entry.deny=true"), "{service} lacks entry.deny=true: {labels:?}");
        let options: Vec<String> = labels.iter().flat_map(|l| ["--label".to_owned(), l.clone()]).collect();
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let container = TestContainer::start_with(BASH_IMAGE, &options);
        for token in [&admin, &operator] {
            let (reason, line, _) = enter(&app, &container.compose(), token).await;
            assert_eq!(reason, CloseReason::Forbidden, "{service}: {line}");
            assert!(line.contains("entry.deny=true"), "{service}: {line}");
        }
        assert!(container.exec_creates().is_empty());
        assert!(!listed(&app, &admin).await.contains(&container.name));
        println!("{service} ({}): refused", labels.join(", "));
    }
}
