//! Command rules through the real `entry enter` binary on a pseudo-terminal (util-linux
//! `script` gives it one, so it runs raw as on a person's terminal) against an `entry serve`
//! process: a `block` rule stops `rm -rf /da<Tab>`; SIGHUP loads a new rule into the running
//! session, and a file with a bad rule keeps the loaded ones; `entry alerts` lists the hits.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::server::{ENTRY, Server};
use crate::common::{BASH_IMAGE, TestContainer, WAIT};

/// `entry enter` on a pty: keys go in through `script`'s stdin, the screen comes out of its stdout.
struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    fn enter(server: &Server, token: &str, container: &str) -> Self {
        let command = format!("{ENTRY} enter {container}");
        let mut child = Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env("ENTRY_SERVER", &server.url)
            .env("ENTRY_TOKEN", token)
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux)");
        let (keys, mut out) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (tx, screen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buffer) {
                if tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self { child, keys, screen, seen: Vec::new() }
    }

    fn type_keys(&mut self, keys: &str) {
        for ch in keys.chars() {
            self.keys.write_all(ch.to_string().as_bytes()).unwrap();
            self.keys.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `needle` in what the terminal showed since the last call; returns that.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(at) = text.find(needle) {
                let shown = text[..at + needle.len()].to_owned();
                self.seen = text.as_bytes()[at + needle.len()..].to_vec();
                return shown;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.extend_from_slice(&bytes),
                Err(_) => panic!("{needle:?} not shown; so far: {text:?}"),
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_rules(path: &std::path::Path, rules: &[(&str, &str, &str)]) {
    let mut text = String::new();
    for (name, pattern, action) in rules {
        text.push_str(&format!("[[rules]]\nname = {name:?}\npattern = '{pattern}'\naction = {action:?}\n\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn hang_up(server: &Server) {
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    // SAFETY: kill(2) on the gateway process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    // The reload is logged; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
}

fn metrics(server: &Server) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn entry_enter_on_a_terminal_is_stopped_by_a_rule_and_sighup_reloads_the_rules() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("entry.toml");
    write_rules(&config, &[("drop-data", r"rm\s+-rf\s+/data", "block")]);
    let server = Server::start_with(&data.path().join("gw"), &[("ENTRY_CONFIG", config.to_str().unwrap())]);
    let container = TestContainer::start(BASH_IMAGE);
    let mut terminal = Terminal::enter(&server, &server.admin_token, &container.name);
    terminal.wait_for("# ");
    terminal.type_keys("mkdir -p /data; touch /data/keep; echo made-$((1+1))\r");
    terminal.wait_for("made-2");
    terminal.type_keys("rm -rf /da\t");
    terminal.wait_for("ta/");
    terminal.type_keys("\r");
    terminal.wait_for("Entry: blocked by rule \"drop-data\" (ask an admin)");
    terminal.type_keys("ls /data; echo listed-$((2+2))\r");
    let listed = terminal.wait_for("listed-4");
    assert!(listed.contains("keep"), "{listed:?}");

    // A new rule reaches the running session on SIGHUP.
    write_rules(&config, &[("drop-data", r"rm\s+-rf\s+/data", "block"), ("no-second", r"echo\s+second-", "block")]);
    hang_up(&server);
    terminal.type_keys("echo second-$((1+1))\r");
    terminal.wait_for("blocked by rule \"no-second\"");
    // A file with a bad rule is refused whole: the loaded rules stay.
    write_rules(&config, &[("broken", "rm (", "block")]);
    hang_up(&server);
    terminal.type_keys("echo second-$((2+1))\r");
    terminal.wait_for("blocked by rule \"no-second\"");
    let shown = metrics(&server);
    assert!(shown.contains("entry_rule_reloads_total{result=\"loaded\"} 1"), "{shown}");
    assert!(shown.contains("entry_rule_reloads_total{result=\"refused\"} 1"), "{shown}");
    assert!(shown.contains("entry_rule_hits_total{outcome=\"blocked\"} 3"), "{shown}");
    terminal.type_keys("echo ran-$((3+3))\r");
    let after = terminal.wait_for("ran-6");
    assert!(!after.contains("second-2") && !after.contains("second-3"), "{after:?}");
    terminal.type_keys("exit\r");

    // The hits through the CLI.
    let output = Command::new(ENTRY)
        .args(["alerts", "--limit", "10"])
        .env("ENTRY_SERVER", &server.url)
        .env("ENTRY_TOKEN", &server.admin_token)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    println!("{table}");
    assert_eq!(table.lines().filter(|l| l.contains("blocked")).count(), 3, "{table}");
    assert!(table.contains("rm -rf /data/") && table.contains("no-second"), "{table}");
}
