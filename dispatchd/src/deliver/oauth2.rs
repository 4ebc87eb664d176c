//! OAuth2 client credentials to endpoints: dispatchd fetches a token
//! (`grant_type=client_credentials`, the client authenticated with HTTP
//! Basic as RFC 6749 §2.3.1 requires servers to support), caches it on the
//! node until shortly before `expires_in`, shares it across the endpoint's
//! deliveries (one fetch at a time per client), and fetches a new one once
//! when the endpoint answers 401 to it. The token URL is dialled through
//! the same SSRF guard as any destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{OAuth2, Secret};
use crate::ssrf::Guard;

/// How long a token fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A token's life when the server does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Most bytes of a token answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// A failed fetch is remembered this long, so deliveries to an endpoint
/// whose token service is down fail at once instead of queueing on it.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);
/// The longest life a token is trusted for, whatever the server says.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The cache's key: the credential, the secret included as a hash (a
/// subscription naming another's client id without its secret never gets
/// that client's token).
fn key(c: &OAuth2) -> String {
    use sha2::{Digest, Sha256};
    let secret = hex::encode(Sha256::digest(c.client_secret.expose().as_bytes()));
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{secret}",
        c.token_url,
        c.client_id,
        c.scope.as_deref().unwrap_or(""),
        c.audience.as_deref().unwrap_or("")
    )
}

#[derive(Clone)]
struct Token {
    value: Secret,
    /// When it stops being used (shortly before it expires).
    refresh_at: Instant,
}

/// A credential's slot: its token, or its last failure.
#[derive(Default)]
struct Slot {
    token: Option<Token>,
    failed: Option<(String, Instant)>,
}

/// This node's tokens, one slot per credential; a slot's lock makes
/// concurrent deliveries wait for one fetch instead of each fetching.
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl Tokens {
    fn slot(&self, c: &OAuth2) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().expect("token slots");
        if slots.len() > 4096 {
            slots.clear();
        }
        slots.entry(key(c)).or_default().clone()
    }

    /// A valid token: the cached one, or a fresh one. With `rejected`, the
    /// endpoint refused that token: a new one is fetched unless another
    /// delivery already replaced it.
    pub async fn token(
        &self,
        c: &OAuth2,
        client: &reqwest::Client,
        guard: &Guard,
        rejected: Option<&Secret>,
    ) -> Result<Secret, String> {
        let slot = self.slot(c);
        let mut held = slot.lock().await;
        if let Some(t) = held.token.as_ref()
            && t.refresh_at > Instant::now()
            && rejected.is_none_or(|r| r != &t.value)
        {
            return Ok(t.value.clone());
        }
        if let Some((e, at)) = &held.failed
            && at.elapsed() < FAILURE_MEMORY
        {
            return Err(e.clone());
        }
        match fetch(c, client, guard).await {
            Ok(t) => {
                let value = t.value.clone();
                *held = Slot {
                    token: Some(t),
                    failed: None,
                };
                Ok(value)
            }
            Err(e) => {
                held.failed = Some((e.clone(), Instant::now()));
                Err(e)
            }
        }
    }
}

async fn fetch(c: &OAuth2, client: &reqwest::Client, guard: &Guard) -> Result<Token, String> {
    let url = reqwest::Url::parse(&c.token_url).map_err(|e| format!("invalid token_url: {e}"))?;
    guard.check_url(&url)?;
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = &c.scope {
        form.push(("scope", s));
    }
    if let Some(a) = &c.audience {
        form.push(("audience", a));
    }
    let started = Instant::now();
    let mut resp = client
        .post(url)
        .basic_auth(&c.client_id, Some(c.client_secret.expose()))
        .form(&form)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER {
        match resp.chunk().await.map_err(|e| e.to_string())? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    if !status.is_success() {
        let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(format!("the token endpoint answered {status}: {snippet}"));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        /// A number, or (some servers) a string of one.
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(&body)
        .map_err(|e| format!("the token endpoint's answer is not a token: {e}"))?;
    if a.access_token.is_empty()
        || reqwest::header::HeaderValue::from_str(&format!("Bearer {}", a.access_token)).is_err()
    {
        return Err("the token endpoint's access_token cannot be sent in a header".into());
    }
    let seconds = match &a.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    let life = seconds
        .map_or(DEFAULT_LIFETIME, Duration::from_secs)
        .min(MAX_LIFETIME);
    // Renewed shortly before it expires: 30 s early, or half-way through
    // a short life.
    let early = Duration::from_secs(30).min(life / 2);
    Ok(Token {
        value: a.access_token.into(),
        refresh_at: started + life - early,
    })
}
