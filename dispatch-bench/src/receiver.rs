//! The receiving end: answers 200 at once, counts deliveries, and measures
//! ingest-to-delivery latency from the send time each event carries.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    latencies_us: Vec<u64>,
    ids: HashSet<u64>,
    count: u64,
    duplicates: u64,
    last_at: Option<Instant>,
    /// Deliveries by the HTTP version they came over.
    versions: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone)]
pub struct Receiver {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    /// Over HTTPS: its self-signed certificate (PEM), which subscriptions
    /// trust with `tls.ca_pem`.
    pub cert_pem: Option<String>,
}

/// How the receiver serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Https {
    /// HTTPS offering only HTTP/1.1 (ALPN).
    H1,
    /// HTTPS offering HTTP/2 first, then HTTP/1.1.
    H2,
}

/// The number after `"key":` in a JSON text, without parsing all of it.
fn number_after(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

impl Receiver {
    /// Plain HTTP, or HTTPS with a certificate made for 127.0.0.1.
    pub async fn start(https: Option<Https>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let app = app(state.clone());
        let Some(mode) = https else {
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            return Ok(Receiver {
                addr,
                state,
                cert_pem: None,
            });
        };
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?.self_signed(&key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )?;
        cfg.alpn_protocols = match mode {
            Https::H1 => vec![b"http/1.1".to_vec()],
            Https::H2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
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
        Ok(Receiver {
            addr,
            state,
            cert_pem: Some(cert.pem()),
        })
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn count(&self) -> u64 {
        self.state.lock().expect("receiver state").count
    }

    pub fn last_at(&self) -> Option<Instant> {
        self.state.lock().expect("receiver state").last_at
    }

    pub fn latencies_us(&self) -> Vec<u64> {
        self.state
            .lock()
            .expect("receiver state")
            .latencies_us
            .clone()
    }

    /// Deliveries by HTTP version (`HTTP/1.1`, `HTTP/2.0`).
    pub fn versions(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.lock().expect("receiver state").versions.clone()
    }

    /// Deliveries beyond the first per event (meaningful with one
    /// subscription).
    pub fn duplicates(&self) -> u64 {
        self.state.lock().expect("receiver state").duplicates
    }
}

/// Counts each delivery and its latency; answers 200 at once.
fn app(state: Arc<Mutex<State>>) -> axum::Router {
    let st = state;
    axum::Router::new().fallback(move |version: axum::http::Version, body: Bytes| {
        let st = st.clone();
        async move {
            let now = super::now_us();
            let sent = number_after(&body, b"\"t\":");
            let n = number_after(&body, b"\"n\":");
            let mut s = st.lock().expect("receiver state");
            s.count += 1;
            s.last_at = Some(Instant::now());
            *s.versions.entry(format!("{version:?}")).or_default() += 1;
            if let Some(t) = sent {
                s.latencies_us.push(now.saturating_sub(t));
            }
            if let Some(n) = n
                && !s.ids.insert(n)
            {
                s.duplicates += 1;
            }
            ""
        }
    })
}
