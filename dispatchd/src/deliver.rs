//! Sending one attempt: build the signed request, POST it, read a capped
//! prefix of the answer, and say what happened.
//!
//! This module knows HTTP and signing, not the queue: the worker
//! (`crate::queue`) decides what an outcome means for the delivery's state.
//! `clients` holds the HTTP clients (one per TLS setting), `oauth2` the
//! endpoint tokens of OAuth2 client credentials.

mod clients;
pub mod oauth2;

pub use clients::{Proxy, check_tls};
use clients::{builder, client_key, with_tls};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Method, StatusCode};
use serde_json::value::RawValue;

use crate::config::Config;
use crate::model::{
    ClaimedDelivery, EndpointAuth, Event, EventKind, Millis, OAuth2, Secret, SignatureScheme,
    TlsSettings, now_ms,
};
use crate::sign;
use crate::ssrf::Guard;

pub const USER_AGENT_VALUE: &str = concat!("dispatchd/", env!("CARGO_PKG_VERSION"));

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub url: String,
    pub success: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub response_prefix: Option<String>,
    /// The receiver's `Retry-After` on a 429 or 503, already clamped.
    pub retry_after: Option<Duration>,
    pub started_at: Millis,
}

/// A fully built request, ready to send (and to inspect in tests).
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub url: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    /// The subscription's TLS settings, when it has any: sent with the
    /// client made for them.
    pub tls: Option<TlsSettings>,
    /// OAuth2 client credentials: `send` adds the bearer token.
    pub oauth2: Option<OAuth2>,
    /// The CONNECT proxy it goes out through, if any.
    pub proxy: Option<Proxy>,
}

/// Most distinct TLS settings kept with a client of their own; past it the
/// cache starts over (old settings linger only until then).
const MAX_TLS_CLIENTS: usize = 1024;

pub struct Deliverer {
    client: reqwest::Client,
    /// One client per distinct TLS setting (a private CA, a client
    /// certificate), made at first use and kept, so its connection pool
    /// and HTTP/2 sessions survive from one delivery to the next.
    tls_clients: Mutex<HashMap<[u8; 32], reqwest::Client>>,
    /// OAuth2 tokens of endpoints, shared by their deliveries on this node.
    tokens: oauth2::Tokens,
    /// `delivery.proxy_url`.
    proxy: Option<String>,
    max_idle: usize,
    guard: Arc<Guard>,
    default_timeout: Duration,
    max_response_bytes: usize,
    stored_response_bytes: usize,
    retry_after_max: Duration,
    max_timeout: Duration,
}

impl Deliverer {
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let guard = Arc::new(cfg.ssrf_guard());
        let max_idle = cfg.queue.max_in_flight as usize;
        let client = builder(Some(&guard), max_idle).build()?;
        Ok(Self {
            client,
            tls_clients: Mutex::default(),
            tokens: oauth2::Tokens::default(),
            proxy: (!cfg.delivery.proxy_url.is_empty()).then(|| cfg.delivery.proxy_url.clone()),
            max_idle,
            guard,
            default_timeout: Duration::from_millis(cfg.delivery.timeout_ms),
            max_response_bytes: cfg.delivery.max_response_bytes,
            stored_response_bytes: cfg.delivery.stored_response_bytes,
            retry_after_max: Duration::from_secs(cfg.delivery.retry_after_max_secs),
            max_timeout: Duration::from_millis(cfg.max_timeout_ms()),
        })
    }

    /// Builds the signed request for this attempt. `None` when there is
    /// nowhere to send it (the subscription was deleted meanwhile).
    pub fn prepare(&self, d: &ClaimedDelivery, now: Millis) -> Option<PreparedRequest> {
        let sub = d.subscription.as_ref();
        let url = d
            .inline
            .url
            .clone()
            .or_else(|| sub.map(|s| s.url.clone()))?;
        let method = d
            .inline
            .method
            .as_deref()
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or(Method::POST);
        let body: Bytes = match &d.inline.body {
            Some(b) => Bytes::from(b.clone()),
            None => envelope(d).into(),
        };
        let timestamp = now / 1000;
        let msg_id = &d.event.id;

        let mut secrets: Vec<&str> = Vec::with_capacity(2);
        if let Some(s) = &d.inline.secret {
            secrets.push(s.expose());
        } else if let Some(s) = sub {
            secrets.push(s.secret.expose());
            if let (Some(prev), Some(until)) = (&s.previous_secret, s.previous_secret_expires_at)
                && until > now
            {
                secrets.push(prev.expose());
            }
        }

        let mut headers = HeaderMap::new();
        let custom: Option<&BTreeMap<String, String>> =
            d.inline.headers.as_ref().or(sub.map(|s| &s.headers));
        for (k, v) in custom.into_iter().flatten() {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set("webhook-id", msg_id.clone());
        set("webhook-timestamp", timestamp.to_string());
        set("x-dispatch-event-id", msg_id.clone());
        set(
            "x-dispatch-event-type",
            d.inline
                .event_type
                .clone()
                .unwrap_or_else(|| d.event.event_type.clone()),
        );
        set("x-dispatch-timestamp", timestamp.to_string());
        // A task's inline secret signs v1 only; a subscription signs what
        // its scheme says.
        let signing = sub.map(|s| &s.egress).filter(|_| d.inline.secret.is_none());
        let scheme = signing.map_or(SignatureScheme::V1, |e| e.signature_scheme);
        let mut entries = Vec::with_capacity(4);
        if scheme.hmac() && !secrets.is_empty() {
            entries.push(sign::standard_header(
                secrets.iter().copied(),
                msg_id,
                timestamp,
                &body,
            ));
        }
        if let Some(e) = signing.filter(|_| scheme.ed25519()) {
            let in_grace = sub
                .and_then(|s| s.previous_secret_expires_at)
                .is_some_and(|until| until > now);
            let previous = e.previous_signing_key.as_ref().filter(|_| in_grace);
            for key in e.signing_key.iter().chain(previous) {
                entries.extend(sign::ed25519::signature(
                    key.expose(),
                    msg_id,
                    timestamp,
                    &body,
                ));
            }
        }
        if !entries.is_empty() {
            set("webhook-signature", entries.join(" "));
        }
        if let Some(primary) = secrets.first() {
            set(
                "x-dispatch-signature",
                sign::dispatch_header(primary, &body),
            );
        }
        // Credentials go only to the subscription's own URL, never to one a
        // plugin chose.
        let own_url = sub.is_some_and(|s| s.url == url);
        let egress = sub.map(|s| &s.egress);
        let mut oauth2 = None;
        match egress.and_then(|e| e.auth.as_ref()).filter(|_| own_url) {
            None => {}
            Some(EndpointAuth::Basic { username, password }) => {
                let token = STANDARD.encode(format!("{username}:{}", password.expose()));
                authorize(&mut headers, &format!("Basic {token}"));
            }
            Some(EndpointAuth::OAuth2(o)) => oauth2 = Some(o.clone()),
        }
        // Clamped to the lease too: a timeout stored before queue.lease_secs
        // was lowered must not outlive the claim.
        let timeout = sub
            .map(|s| Duration::from_millis(s.timeout_ms))
            .filter(|_| d.event.kind == EventKind::Event)
            .unwrap_or(self.default_timeout)
            .min(self.max_timeout);
        Some(PreparedRequest {
            url,
            method,
            headers,
            body,
            timeout,
            tls: egress.and_then(|e| e.tls.clone()).filter(|_| own_url),
            oauth2,
            proxy: match egress.and_then(|e| e.proxy_url.clone()) {
                Some(url) => Some(Proxy {
                    url,
                    trusted: false,
                }),
                None => self.proxy.clone().map(|url| Proxy { url, trusted: true }),
            },
        })
    }

    /// The client for these TLS settings and this proxy, made once.
    /// Building one loads a trust store (milliseconds): off the reactor.
    async fn client_for(
        &self,
        t: Option<&TlsSettings>,
        proxy: Option<&Proxy>,
    ) -> Result<reqwest::Client, String> {
        let key = client_key(t, proxy);
        if let Some(c) = self.tls_clients.lock().expect("tls clients").get(&key) {
            return Ok(c.clone());
        }
        let guard = proxy.is_none_or(|p| !p.trusted).then(|| self.guard.clone());
        let (t, proxy, max_idle) = (t.cloned(), proxy.cloned(), self.max_idle);
        let client = tokio::task::spawn_blocking(move || {
            let mut b = builder(guard.as_ref(), max_idle);
            if let Some(t) = &t {
                b = with_tls(b, t)?;
            }
            if let Some(p) = &proxy {
                b = b.proxy(reqwest::Proxy::all(&p.url).map_err(|e| format!("proxy_url: {e}"))?);
            }
            b.build().map_err(|e| format!("tls: {e}"))
        })
        .await
        .map_err(|e| format!("tls: {e}"))??;
        let mut clients = self.tls_clients.lock().expect("tls clients");
        if clients.len() >= MAX_TLS_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// An OAuth2 token, fetched with the delivery's own client (its TLS
    /// settings and proxy) within `within`.
    async fn bearer(
        &self,
        o: &OAuth2,
        client: &reqwest::Client,
        proxy: Option<&Proxy>,
        rejected: Option<&Secret>,
        within: Duration,
    ) -> Result<Secret, String> {
        let fetch = async {
            if let Some(p) = proxy {
                self.check_proxied(&o.token_url, p).await?;
            }
            self.tokens.token(o, client, &self.guard, rejected).await
        };
        match tokio::time::timeout(within, fetch).await {
            Err(_) => Err("oauth2 token: timed out".into()),
            Ok(r) => r.map_err(|e| format!("oauth2 token: {e}")),
        }
    }

    /// A proxied destination is allowed only if every address its name
    /// resolves to is (the proxy may pick any of them); a subscription's
    /// own proxy must be allowed too.
    async fn check_proxied(&self, url: &str, proxy: &Proxy) -> Result<(), String> {
        let mut names = vec![reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?];
        if !proxy.trusted {
            names.push(
                reqwest::Url::parse(&proxy.url).map_err(|e| format!("invalid proxy_url: {e}"))?,
            );
        }
        for u in names {
            self.guard.check_url(&u)?;
            let Some(url::Host::Domain(host)) = u.host() else {
                continue;
            };
            let port = u.port_or_known_default().unwrap_or(443);
            let addrs = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?;
            for a in addrs {
                self.guard
                    .check_ip(a.ip())
                    .map_err(|e| format!("{host} resolves to a refused address; {e}"))?;
            }
        }
        Ok(())
    }

    /// Sends one prepared request and classifies the answer.
    pub async fn send(&self, req: PreparedRequest) -> AttemptResult {
        let started_at = now_ms();
        let start = Instant::now();
        let url = req.url.clone();
        // Literal addresses skip DNS, so the resolver cannot see them.
        let literal = reqwest::Url::parse(&req.url)
            .map_err(|e| format!("invalid URL: {e}"))
            .and_then(|u| self.guard.check_url(&u));
        let failed = |error: String| AttemptResult {
            url: url.clone(),
            success: false,
            status_code: None,
            error: Some(error),
            duration_ms: start.elapsed().as_millis() as i64,
            response_prefix: None,
            retry_after: None,
            started_at,
        };
        if let Err(refused) = literal {
            return failed(refused);
        }
        // One deadline for the whole attempt (checks, token, request and a
        // retry after a 401): the pipeline sized `timeout` to the lease.
        let deadline = start + req.timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        if let Some(p) = &req.proxy {
            // The proxy resolves the destination: check it here first, every
            // address it has, before the proxy is asked.
            let checked = tokio::time::timeout(left(), self.check_proxied(&req.url, p)).await;
            match checked {
                Err(_) => {
                    return failed(format!("timed out after {} ms", req.timeout.as_millis()));
                }
                Ok(Err(e)) => return failed(e),
                Ok(Ok(())) => {}
            }
        }
        let client = match (&req.tls, &req.proxy) {
            (None, None) => self.client.clone(),
            (t, p) => match self.client_for(t.as_ref(), p.as_ref()).await {
                Ok(c) => c,
                Err(e) => return failed(e),
            },
        };
        let mut headers = req.headers;
        let mut token = None;
        if let Some(o) = &req.oauth2 {
            match self
                .bearer(o, &client, req.proxy.as_ref(), None, left())
                .await
            {
                Ok(t) => {
                    authorize(&mut headers, &format!("Bearer {}", t.expose()));
                    token = Some(t);
                }
                Err(e) => return failed(e),
            }
        }
        let send = |headers: HeaderMap, within: Duration| {
            client
                .request(req.method.clone(), &req.url)
                .headers(headers)
                .body(req.body.clone())
                .timeout(within.max(Duration::from_millis(1)))
                .send()
        };
        let mut result = send(headers.clone(), left()).await;
        // A 401 to the token: fetch a new one (once, whoever asks first)
        // and try again with it, in what is left of the attempt's time.
        if let (Some(o), Some(old), Ok(resp)) = (&req.oauth2, &token, &result)
            && resp.status() == StatusCode::UNAUTHORIZED
        {
            match self
                .bearer(o, &client, req.proxy.as_ref(), Some(old), left())
                .await
            {
                Ok(t) => {
                    authorize(&mut headers, &format!("Bearer {}", t.expose()));
                    result = send(headers, left()).await;
                }
                Err(e) => return failed(e),
            }
        }
        let mut out = AttemptResult {
            url,
            success: false,
            status_code: None,
            error: None,
            duration_ms: 0,
            response_prefix: None,
            retry_after: None,
            started_at,
        };
        match result {
            Err(e) => out.error = Some(describe(&e, req.timeout)),
            Ok(mut resp) => {
                let status = resp.status();
                out.status_code = Some(status.as_u16());
                out.success = status.is_success();
                if matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) {
                    out.retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| crate::retry::parse_retry_after(v, self.retry_after_max));
                }
                // Read at most max_response_bytes; a huge or endless body costs
                // no more than that (and the request timeout bounds a slow one).
                let mut buf: Vec<u8> = Vec::new();
                let mut body_error = None;
                while buf.len() < self.max_response_bytes {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = self.max_response_bytes - buf.len();
                            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            body_error = Some(describe(&e, req.timeout));
                            break;
                        }
                    }
                }
                if !buf.is_empty() {
                    let keep = &buf[..buf.len().min(self.stored_response_bytes)];
                    // NUL is valid UTF-8 but PostgreSQL text refuses it.
                    out.response_prefix =
                        Some(String::from_utf8_lossy(keep).replace('\0', "\u{FFFD}"));
                }
                out.error = if status.is_redirection() {
                    Some(format!("redirect ({status}) not followed"))
                } else if !status.is_success() {
                    Some(format!("receiver answered {status}"))
                } else {
                    // The receiver accepted it; a broken body after a 2xx
                    // status does not undo that.
                    body_error.map(|e| format!("accepted, but reading the answer failed: {e}"))
                };
            }
        }
        out.duration_ms = start.elapsed().as_millis() as i64;
        out
    }
}

/// The envelope `{id, type, source, data, timestamp}` of a subscription
/// delivery. Built the same way on every attempt, so retries send the same
/// bytes.
/// Sets `Authorization`, marked sensitive (never logged by hyper).
fn authorize(headers: &mut HeaderMap, value: &str) {
    if let Ok(mut v) = HeaderValue::from_str(value) {
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
}

pub fn envelope(d: &ClaimedDelivery) -> Vec<u8> {
    let data = RawValue::from_string(d.event.data.clone())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
    envelope_for(&d.event, &d.event.event_type, &data)
}

/// The envelope of `event` with `event_type` and `data` in place of its own
/// (a plugin may have rewritten them). Deterministic: the timestamp is the
/// event's ingest time, not the attempt's.
pub fn envelope_for(event: &Event, event_type: &str, data: &RawValue) -> Vec<u8> {
    let env = dispatch_wire::WebhookEnvelope {
        id: event.id.as_str().into(),
        event_type: event_type.into(),
        source: event.source.as_deref().map(Into::into),
        data,
        timestamp: crate::model::rfc3339(event.created_at),
    };
    serde_json::to_vec(&env).expect("envelope serializes")
}

/// A one-line, secret-free account of a failed request.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout after {} ms", timeout.as_millis());
    }
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let detail = chain.last().cloned().unwrap_or_else(|| e.to_string());
    if let Some(refused) = chain.iter().find(|m| m.contains("blocked destination")) {
        return refused.clone();
    }
    if e.is_connect() {
        format!("connection failed: {detail}")
    } else if e.is_body() || e.is_decode() {
        format!("reading the answer failed: {detail}")
    } else {
        format!("request failed: {detail}")
    }
}
