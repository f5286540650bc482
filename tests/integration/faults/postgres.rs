//! A private PostgreSQL server for fault tests, so that one can be stopped and started without
//! touching the machine's shared cluster: a fresh `initdb` data directory in a temporary
//! directory, run as the `postgres` user on a free port of 127.0.0.1 only (no Unix socket),
//! trust authentication for the `entry` superuser (or settings and files of the test's own, e.g.
//! TLS). Dropping it stops it and removes the data.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The private server; stopped and removed on drop.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Creates the data directory and starts the server.
    pub fn start() -> Self {
        Self::start_with("", &[])
    }

    /// Like [`PrivatePostgres::start`], with `settings` added to `postgresql.conf` and `files`
    /// (name, contents) written into the data directory, owned by `postgres` with mode 0600
    /// (what a server key needs). A file named `pg_hba.conf` replaces the server's.
    pub fn start_with(extra_settings: &str, files: &[(&str, &str)]) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("entry-fault-pg").tempdir().expect("tempdir");
        as_root(Command::new("chown").arg("postgres:").arg(dir.path()));
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let initdb =
            as_postgres(
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(bin.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "entry", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            );
        assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n{extra_settings}\n"
        );
        for (name, contents) in files {
            let path = data.join(name);
            std::fs::write(&path, contents).expect("write a file of the data directory");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            as_root(Command::new("chown").arg("postgres:").arg(&path));
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("write postgresql.conf");
        let server = Self { port, bin, data, log, _dir: dir };
        server.start_again();
        server
    }

    /// `postgres://entry@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://entry@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        as_postgres(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(args),
        )
    }

    /// Stops the server as `pg_ctl stop` does by default (fast: open connections are ended).
    pub fn stop(&self) {
        let output = self.pg_ctl(&["-w", "-m", "fast", "stop"]);
        assert!(output.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_again(&self) {
        let output = self.pg_ctl(&["-w", "-t", "60", "start"]);
        assert!(
            output.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
    }
}

/// The newest installed PostgreSQL's programs (Debian: `/usr/lib/postgresql/<major>/bin`).
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/run installs it)")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin").1
}

fn as_postgres(command: &mut Command) -> Output {
    command.current_dir("/").output().expect("runuser (util-linux) and the postgres user")
}

fn as_root(command: &mut Command) {
    let output = command.output().expect("chown");
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}
