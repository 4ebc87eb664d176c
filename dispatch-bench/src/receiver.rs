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
}

#[derive(Clone)]
pub struct Receiver {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
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
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let st = st.clone();
            async move {
                let now = super::now_us();
                let sent = number_after(&body, b"\"t\":");
                let n = number_after(&body, b"\"n\":");
                let mut s = st.lock().expect("receiver state");
                s.count += 1;
                s.last_at = Some(Instant::now());
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
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, state })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

    /// Deliveries beyond the first per event (meaningful with one
    /// subscription).
    pub fn duplicates(&self) -> u64 {
        self.state.lock().expect("receiver state").duplicates
    }
}
