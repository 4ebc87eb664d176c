//! The real executables: `Binary` runs `dispatchd` as a child process (for
//! signals, kill -9 and configuration errors), `run_dispatchd` runs it to
//! completion.

use std::path::PathBuf;
use std::time::Duration;

use crate::{TestDb, eventually};

/// The `dispatchd` executable next to this test binary.
pub fn dispatchd_binary() -> PathBuf {
    workspace_binary("dispatchd")
}

/// A workspace executable next to this test binary (`dispatchd`,
/// `dispatch-tui`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The Python with the `standardwebhooks` package (scripts/test.sh makes it).
pub fn python() -> String {
    std::env::var("TEST_PYTHON").unwrap_or_else(|_| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    })
}

/// A free port on 127.0.0.1 (bound, then released for a child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The real `dispatchd` executable running as a child process.
pub struct Binary {
    pub child: tokio::process::Child,
    pub port: u16,
    pub base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    /// Runs `dispatchd --dev` on `db` at a free port, with extra env vars.
    pub async fn start_dev(db: &TestDb, env: &[(&str, &str)]) -> Self {
        Self::start_dev_on(db, free_port(), env).await
    }

    /// The same on a given port (a restart where producers expect it).
    pub async fn start_dev_on(db: &TestDb, port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("dispatchd.log");
        let mut cmd = tokio::process::Command::new(dispatchd_binary());
        cmd.arg("--dev")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ADDR", format!("127.0.0.1:{port}"))
            .env("DISPATCH_DATABASE__SQLITE_PATH", &db.sqlite_path)
            .env("DISPATCH_QUEUE__POLL_INTERVAL_MS", "100")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true);
        if !db.url.is_empty() {
            cmd.env("DATABASE_URL", &db.url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn dispatchd");
        let bin = Binary {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let ready = eventually(Duration::from_secs(20), || async {
            http.get(format!("{}/ready", bin.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(ready, "dispatchd did not become ready:\n{}", bin.log());
        bin
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill9(&mut self) {
        self.child.start_kill().expect("kill -9");
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("dispatchd did not exit within {within:?}:\n{}", self.log()))
            .expect("wait");
        status.code()
    }
}

/// Runs `dispatchd` with `args` and `env` to completion: (exit code, stderr).
pub async fn run_dispatchd(args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String) {
    run_dispatchd_within(Duration::from_secs(30), args, env).await
}

/// `run_dispatchd` with a longer bound, for commands that compile a large
/// component (JavaScript and Python plugins compile in seconds each).
pub async fn run_dispatchd_within(
    limit: Duration,
    args: &[&str],
    env: &[(&str, String)],
) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(dispatchd_binary());
    // The plugin commands cache compiled components; unless the test
    // names a cache, each call gets its own, gone when it returns, so
    // nothing is written under the working directory.
    let cache = tempfile::tempdir().expect("a cache directory");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DISPATCH_PLUGIN_HOST__CACHE_DIR", cache.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .expect("dispatchd finishes")
        .expect("run dispatchd");
    // Diagnostics first, then what the command printed.
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    (out.status.code(), text)
}
