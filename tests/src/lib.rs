//! The end-to-end harness: real dispatchd nodes, real databases, real
//! receivers, all on 127.0.0.1.
//!
//! - `Backend` names a store; `TestDb` makes a fresh one per test (a SQLite
//!   file in a temp dir, or a new PostgreSQL database).
//! - `Daemon` runs `dispatchd::server::run` in-process on port 0;
//!   `Binary` runs the real `dispatchd` executable for signal tests.
//! - `Receiver` is an HTTP endpoint that records every request and answers
//!   from a script (status, headers, delay).
//! - `eventually` waits on an observable condition with a deadline: no
//!   sleeps as synchronisation.
//!
//! PostgreSQL tests need a server at `TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without one they print a
//! notice and pass, unless `TEST_REQUIRE_POSTGRES=1` (CI sets it).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use dispatchd::config::Config;
use serde_json::Value;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use dispatchd;

mod cluster;
pub use cluster::PgCluster;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each named async fn
/// taking a `Backend`: `both_backends!(retries_then_delivers, ...)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::postgres_available().await {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether PostgreSQL answers. Prints a notice (or fails, when CI requires
/// Postgres) if it does not.
pub async fn postgres_available() -> bool {
    let ok = matches!(
        tokio::time::timeout(
            Duration::from_secs(3),
            sqlx::PgConnection::connect(&pg_admin_url())
        )
        .await,
        Ok(Ok(_))
    );
    if !ok {
        if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL at {} is required but not reachable",
                pg_admin_url()
            );
        }
        eprintln!(
            "notice: PostgreSQL not reachable at {}; skipping this PostgreSQL test",
            pg_admin_url()
        );
    }
    ok
}

/// A fresh database for one test.
pub struct TestDb {
    pub backend: Backend,
    /// `postgres://…` or empty for SQLite.
    pub url: String,
    pub sqlite_path: PathBuf,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// A database someone else owns (a private cluster's), left in place.
    pub fn at_url(url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            backend: Backend::Postgres,
            url: url.to_string(),
            sqlite_path: dir.path().join("unused.db"),
            pg_name: None,
            _dir: dir,
        }
    }

    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite_path = dir.path().join("dispatch.db");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: String::new(),
                sqlite_path,
                pg_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("dispatch_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let base = pg_admin_url();
                let url = match base.rfind('/') {
                    Some(i) => format!("{}/{name}", &base[..i]),
                    None => panic!("TEST_PG_URL must end with /database"),
                };
                TestDb {
                    backend,
                    url,
                    sqlite_path,
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A dev-mode configuration pointing at this database, tuned for tests:
    /// quick polls and sweeps.
    pub fn config(&self) -> Config {
        let mut cfg = Config::default().into_dev();
        cfg.database.url = self.url.clone();
        cfg.database.sqlite_path = self.sqlite_path.clone();
        cfg.database.max_connections = 5;
        cfg.queue.poll_interval_ms = 100;
        cfg.retention.sweep_interval_secs = 1;
        cfg.shutdown.grace_secs = 5;
        cfg
    }

    /// Rows in `table`, read straight from the database (for what no API
    /// shows, such as attempts left behind by a deleted delivery).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    /// Drops the PostgreSQL database (SQLite files go with the temp dir).
    pub async fn drop_db(&self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

/// A dispatchd node running in this process.
pub struct Daemon {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub db: Arc<TestDb>,
    /// `Authorization` sent by the request helpers (not by raw `http`) when
    /// the node requires auth.
    auth: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    /// Starts a node on a fresh database of `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = Arc::new(TestDb::new(backend).await);
        Self::start_on(db, tweak).await
    }

    /// Starts a node on an existing database (a restart, or a second node).
    pub async fn start_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = db.config();
        tweak(&mut cfg);
        cfg.validate().expect("test config is valid");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let auth = (!cfg.dev)
            .then(|| cfg.api.keys.first().map(|k| format!("Bearer {k}")))
            .flatten();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dispatchd::server::run(
            listener,
            Arc::new(cfg),
            async move {
                let _ = stopped.await;
            },
        ));
        let daemon = Daemon {
            addr,
            auth,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            db,
            stop: Some(stop),
            task: Some(task),
        };
        let ready = eventually(Duration::from_secs(20), || async {
            daemon
                .http
                .get(daemon.url("/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        assert!(ready, "dispatchd did not become ready");
        daemon
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth_header(&self) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(a) = &self.auth {
            h.insert(
                reqwest::header::AUTHORIZATION,
                a.parse().expect("header value"),
            );
        }
        h
    }

    /// Stops the node gracefully and checks it stopped cleanly.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    /// Stops the node, then drops its database.
    pub async fn finish(mut self) {
        self.shutdown().await;
        self.db.drop_db().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("dispatchd stops within 30 s")
                .expect("dispatchd task does not panic");
            result.expect("dispatchd run returns Ok");
        }
    }

    /// One request with the node's credentials; the answer's status and
    /// JSON body (`Null` when empty).
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .headers(self.auth_header());
        if let Some(body) = body {
            req = req.json(&body);
        }
        split(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a subscription to `url` for `types` with extra fields merged in.
    pub async fn subscribe(&self, url: &str, types: &[&str], extra: Value) -> Value {
        let mut body = serde_json::json!({"url": url, "event_types": types});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, sub) = self.post("/subscriptions", body).await;
        assert_eq!(status, StatusCode::CREATED, "{sub}");
        sub
    }

    /// Posts an event and asserts it was queued.
    pub async fn send_event(&self, id: &str, event_type: &str, data: Value) {
        let (status, body) = self
            .post(
                "/events",
                serde_json::json!({"id": id, "type": event_type, "data": data}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    /// Waits until the event's status is `status` and returns the event.
    pub async fn wait_event_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (_, ev) = self.get(&format!("/events/{id}")).await;
            if ev["status"] == status {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "event {id} did not reach {status:?}; last seen: {ev}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn split(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let bytes = resp.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "answer is not JSON (status {status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, value)
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("delivered body is JSON")
    }
}

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn body(mut self, b: impl Into<String>) -> Self {
        self.body = b.into();
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    script: VecDeque<Reply>,
    fallback: Option<Reply>,
}

/// An HTTP receiver on 127.0.0.1 that records requests and answers from a
/// script, then with a fallback (200 by default).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move {
                    let reply = {
                        let mut s = st.lock().expect("receiver lock");
                        s.got.push(Received {
                            method,
                            path: uri.path().to_string(),
                            headers,
                            body,
                            at: Instant::now(),
                        });
                        s.script
                            .pop_front()
                            .or_else(|| s.fallback.clone())
                            .unwrap_or_else(|| Reply::status(200))
                    };
                    tokio::time::sleep(reply.delay).await;
                    let mut resp = axum::http::Response::builder().status(reply.status);
                    for (k, v) in &reply.headers {
                        resp = resp.header(k, v);
                    }
                    resp.body(axum::body::Body::from(reply.body))
                        .expect("response")
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .expect("receiver lock")
            .script
            .extend(replies);
    }

    /// Answers every unscripted request with this.
    pub fn always(&self, reply: Reply) {
        self.state.lock().expect("receiver lock").fallback = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver lock").got.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().expect("receiver lock").got.len()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let ok = eventually(within, || async { self.count() >= n }).await;
        assert!(ok, "receiver got {} requests, expected {n}", self.count());
        self.received()
    }
}

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
    let mut cmd = tokio::process::Command::new(dispatchd_binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("dispatchd finishes")
        .expect("run dispatchd");
    // Diagnostics first, then what the command printed.
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    (out.status.code(), text)
}

/// Verifies a delivery with the PyPI `standardwebhooks` library, unchanged.
pub fn verify_with_standardwebhooks(secret: &str, got: &Received) -> Result<(), String> {
    let headers = serde_json::json!({
        "webhook-id": got.header("webhook-id"),
        "webhook-timestamp": got.header("webhook-timestamp"),
        "webhook-signature": got.header("webhook-signature"),
    });
    let script = "import sys, json\n\
                  from standardwebhooks.webhooks import Webhook\n\
                  secret, headers = sys.argv[1], json.loads(sys.argv[2])\n\
                  body = sys.stdin.buffer.read()\n\
                  Webhook(secret).verify(body, headers)\n\
                  print('verified')\n";
    let mut child = std::process::Command::new(python())
        .args(["-c", script, secret, &headers.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python()))?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&got.body).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified") {
        Ok(())
    } else {
        Err(format!(
            "standardwebhooks rejected the delivery (is it installed? scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A compiled example plugin from `plugins/dist/` (scripts/build-plugins.sh
/// builds them; scripts/test.sh runs it first).
pub fn plugin_wasm(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A raw TCP endpoint on 127.0.0.1 that reads a request and then does
/// `misbehave` with the socket.
pub async fn raw_receiver<F, Fut>(misbehave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let misbehave = std::sync::Arc::new(misbehave);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let misbehave = misbehave.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // Read until the end of the headers (bodies here are small).
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                misbehave(sock).await;
            });
        }
    });
    format!("http://{addr}/hostile")
}
