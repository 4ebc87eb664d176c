//! `auth.type = oauth2_client_credentials`: one token fetch shared by a
//! hundred deliveries, one refetch when it expires, one refetch and a retry
//! after a 401, and a failing token endpoint as a failed attempt that names
//! it. The token endpoint and the receiver are real HTTP servers on
//! 127.0.0.1; the receiver accepts only the newest token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends, eventually};
use serde_json::{Value, json};

struct Server {
    rx: Receiver,
    /// Tokens handed out so far; the newest is `tok-<fetches>`.
    fetches: Arc<AtomicU64>,
    /// The receiver refuses tokens numbered below this.
    min_ok: Arc<AtomicU64>,
}

/// `/token` hands out `tok-1`, `tok-2`, … living `lifetime` seconds (or
/// answers `token_status` when not 200); `/hook` takes a handed-out token
/// numbered at least `min_ok`.
async fn server(lifetime: u64, token_status: u16) -> Server {
    let rx = Receiver::start().await;
    let fetches = Arc::new(AtomicU64::new(0));
    let min_ok = Arc::new(AtomicU64::new(1));
    let (f, m) = (fetches.clone(), min_ok.clone());
    rx.respond_with(move |req| {
        if req.path == "/token" {
            if token_status != 200 {
                return Reply::status(token_status).body("token service down");
            }
            let n = f.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::status(200)
                .header("content-type", "application/json")
                .body(
                    json!({"access_token": format!("tok-{n}"), "token_type": "Bearer",
                           "expires_in": lifetime})
                    .to_string(),
                );
        }
        let n: Option<u64> = req
            .header("authorization")
            .strip_prefix("Bearer tok-")
            .and_then(|n| n.parse().ok());
        let ok = n.is_some_and(|n| n >= m.load(Ordering::SeqCst) && n <= f.load(Ordering::SeqCst));
        Reply::status(if ok { 200 } else { 401 })
    });
    Server {
        rx,
        fetches,
        min_ok,
    }
}

fn oauth(s: &Server, max_attempts: u32) -> Value {
    json!({"id": "s", "max_attempts": max_attempts,
           "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10},
           "auth": {"type": "oauth2_client_credentials", "token_url": s.rx.url("/token"),
                    "client_id": "dispatch", "client_secret": "cs-1", "scope": "hooks:write",
                    "audience": "https://api.example"}})
}

fn hooks(s: &Server) -> Vec<u16> {
    s.rx.received()
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| r.status)
        .collect()
}

async fn a_hundred_deliveries_share_one_token(backend: Backend) {
    let s = server(3600, 200).await;
    let d = Daemon::start(backend).await;
    let sub = d.subscribe(&s.rx.url("/hook"), &["*"], oauth(&s, 3)).await;
    assert_eq!(sub["auth"]["client_secret"], "cs-1", "shown once, when set");
    let (_, read) = d.get("/subscriptions/s").await;
    assert_eq!(read["auth"]["client_secret"], "********", "{read}");
    let events: Vec<Value> = (0..100)
        .map(|n| json!({"id": format!("e{n}"), "type": "a.b", "data": {}}))
        .collect();
    let (st, b) = d.post("/events/batch", json!({"events": events})).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let all = eventually(Duration::from_secs(20), || async {
        hooks(&s).iter().filter(|c| **c == 200).count() >= 100
    })
    .await;
    assert!(all, "{:?}", hooks(&s));
    assert_eq!(s.fetches.load(Ordering::SeqCst), 1, "one token for all");
    // The same client id with another secret is another credential: it
    // never gets that token from the cache.
    let mut other = oauth(&s, 3);
    other["id"] = json!("s2");
    other["auth"]["client_secret"] = json!("a guess");
    d.subscribe(&s.rx.url("/hook"), &["b.*"], other).await;
    d.send_event("b1", "b.c", json!({})).await;
    d.wait_event_status("b1", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(s.fetches.load(Ordering::SeqCst), 2, "its own fetch");
    let t =
        s.rx.received()
            .into_iter()
            .find(|r| r.path == "/token")
            .unwrap();
    assert_eq!(
        t.header("authorization"),
        format!("Basic {}", STANDARD.encode("dispatch:cs-1"))
    );
    let form = String::from_utf8_lossy(&t.body).to_string();
    for part in [
        "grant_type=client_credentials",
        "scope=hooks%3Awrite",
        "audience=https%3A%2F%2Fapi.example",
    ] {
        assert!(form.contains(part), "{part} not in {form}");
    }
    d.finish().await;
}

async fn an_expired_token_is_fetched_again_once(backend: Backend) {
    let s = server(1, 200).await;
    let d = Daemon::start(backend).await;
    d.subscribe(&s.rx.url("/hook"), &["*"], oauth(&s, 3)).await;
    d.send_event("e1", "a.b", json!({})).await;
    d.wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    // A one-second token is renewed half-way through its life.
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.send_event("e2", "a.b", json!({})).await;
    d.wait_event_status("e2", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(s.fetches.load(Ordering::SeqCst), 2);
    d.finish().await;
}

async fn a_401_fetches_once_and_retries(backend: Backend) {
    let s = server(3600, 200).await;
    let d = Daemon::start(backend).await;
    d.subscribe(&s.rx.url("/hook"), &["*"], oauth(&s, 1)).await;
    d.send_event("e1", "a.b", json!({})).await;
    d.wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    // The endpoint revokes tok-1: only a new token gets in.
    s.min_ok.store(2, Ordering::SeqCst);
    d.send_event("e2", "a.b", json!({})).await;
    let ev = d
        .wait_event_status("e2", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(
        ev["deliveries"][0]["attempts"], 1,
        "the retry is the same attempt: {ev}"
    );
    assert_eq!(s.fetches.load(Ordering::SeqCst), 2, "one refetch");
    assert_eq!(hooks(&s), [200, 401, 200]);
    d.finish().await;
}

async fn a_failing_token_endpoint_is_a_failed_attempt(backend: Backend) {
    let s = server(3600, 500).await;
    let d = Daemon::start(backend).await;
    d.subscribe(&s.rx.url("/hook"), &["*"], oauth(&s, 1)).await;
    d.send_event("e1", "a.b", json!({})).await;
    let ev = d
        .wait_event_status("e1", "failed", Duration::from_secs(10))
        .await;
    let error = ev["deliveries"][0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("oauth2 token: "), "{error}");
    assert!(error.contains("500"), "{error}");
    assert!(hooks(&s).is_empty(), "nothing sent without a token");
    let (st, b) = d
        .patch(
            "/subscriptions/s",
            json!({"auth": {"type": "oauth2_client_credentials", "token_url": "ftp://x",
                            "client_id": "a", "client_secret": "b"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth.token_url"),
        "{b}"
    );
    d.finish().await;
}

both_backends!(
    a_hundred_deliveries_share_one_token,
    an_expired_token_is_fetched_again_once,
    a_401_fetches_once_and_retries,
    a_failing_token_endpoint_is_a_failed_attempt,
);
