//! `Daemon`: a dispatchd node running in this process on port 0, with a
//! client for its API; and `eventually`, the harness's only way to wait.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use dispatchd::config::Config;

use crate::{Backend, TestDb};

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
            .then(|| {
                cfg.api
                    .keys
                    .first()
                    .map(|k| format!("Bearer {}", k.expose()))
            })
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
