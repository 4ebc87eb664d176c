//! A private PostgreSQL cluster for fault tests: `initdb` into a temp dir
//! with this machine's PostgreSQL binaries, served on a free loopback port,
//! so a test can stop, kill and restart it without disturbing anything
//! else. Removed (stopped immediately) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::free_port;

pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The newest installed PostgreSQL's `bin` directory.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    /// Whether a private cluster can be made here (PostgreSQL's server
    /// binaries are installed). Prints a notice when not, or fails when CI
    /// requires PostgreSQL.
    pub fn available() -> bool {
        let ok = pg_bin().is_some();
        if !ok {
            if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("PostgreSQL server binaries (initdb) are required but not installed");
            }
            eprintln!("notice: no PostgreSQL server binaries (initdb); skipping this fault test");
        }
        ok
    }

    /// Creates and starts a cluster.
    pub fn start() -> Self {
        let bin = pg_bin().expect("PostgreSQL binaries");
        let dir = tempfile::Builder::new()
            .prefix("dispatch-pg-")
            .tempdir()
            .expect("temp dir");
        let c = PgCluster {
            bin,
            dir,
            port: free_port(),
        };
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to the
            // postgres user.
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(c.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the cluster directory failed");
        }
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        c.start_server();
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Runs one of the PostgreSQL binaries (as postgres when we are root).
    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL binary");
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200 \
             -c fsync=on -c synchronous_commit=on \
             -c shared_preload_libraries=pg_stat_statements",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                self.log().to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stops the server: `fast` (clean) or `immediate` (like a crash).
    pub fn stop_server(&self, mode: &str) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        );
    }

    /// The `postgres` database as a URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
