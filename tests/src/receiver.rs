//! `Receiver`: an HTTP endpoint on 127.0.0.1 that records every request
//! and answers from a script (status, headers, delay).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::eventually;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
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

/// Decides the reply to each request from the request itself.
type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    script: VecDeque<Reply>,
    fallback: Option<Reply>,
    responder: Option<Responder>,
}

/// An HTTP receiver on 127.0.0.1 that records requests and answers from a
/// script, then with a fallback (200 by default).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    /// Serving HTTPS (`url` says `https://`).
    tls: bool,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = app(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            state,
            tls: false,
        }
    }

    /// The same endpoint over HTTPS with `config` (see `TestCa`): a
    /// connection whose handshake fails (an untrusted server for the
    /// client, a missing or foreign client certificate for the server)
    /// records nothing. HTTP/2 when the client offers it.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = app(state.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
                });
            }
        });
        Receiver {
            addr,
            state,
            tls: true,
        }
    }
}

/// The recording, scripted handler both kinds of receiver serve.
fn app(state: Arc<Mutex<ReceiverState>>) -> axum::Router {
    let st = state;
    {
        axum::Router::new().fallback(
            move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move {
                    // Decided and recorded under the lock: the log's order
                    // is the order requests arrived and were answered in.
                    let reply = {
                        let mut s = st.lock().expect("receiver lock");
                        let mut got = Received {
                            method,
                            path: uri.path().to_string(),
                            headers,
                            body,
                            at: Instant::now(),
                            status: 0,
                        };
                        let reply = match &s.responder {
                            Some(f) => f(&got),
                            None => s
                                .script
                                .pop_front()
                                .or_else(|| s.fallback.clone())
                                .unwrap_or_else(|| Reply::status(200)),
                        };
                        got.status = reply.status;
                        s.got.push(got);
                        reply
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
        )
    }
}

impl Receiver {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Answers the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .expect("receiver lock")
            .script
            .extend(replies);
    }

    /// Answers every request with what `f` decides for it (the script and
    /// fallback are then unused).
    pub fn respond_with(&self, f: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        self.state.lock().expect("receiver lock").responder = Some(Arc::new(f));
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
