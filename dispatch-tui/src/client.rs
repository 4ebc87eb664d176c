//! The admin API over HTTP: one method per route the console uses, and the
//! `/admin/stream` reader. Errors come back as one readable line.

use std::time::Duration;

use dispatch_wire::{
    AdminStats, AttemptEvent, DeadLetterActionOut, DeadLetterDetail, DeadLetterView, EventTypeView,
    ListOut, PluginList, PluginReloadOut,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

pub type Result<T> = std::result::Result<T, String>;

impl Client {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(describe)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(describe)?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(format!("{}: {msg}", status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("unexpected answer: {e}"))
    }

    pub async fn stats(&self) -> Result<AdminStats> {
        self.call(self.request(reqwest::Method::GET, "/admin/stats"))
            .await
    }

    /// Up to 1,000 dead letters matching the server-side filter.
    pub async fn dead_letters(
        &self,
        subscription_id: Option<&str>,
        tenant_id: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<Vec<DeadLetterView>> {
        let mut q = vec![("limit", "1000")];
        if let Some(s) = subscription_id {
            q.push(("subscription_id", s));
        }
        if let Some(t) = tenant_id {
            q.push(("tenant_id", t));
        }
        if let Some(t) = event_type {
            q.push(("event_type", t));
        }
        let out: ListOut<DeadLetterView> = self
            .call(
                self.request(reqwest::Method::GET, "/admin/dead-letters")
                    .query(&q),
            )
            .await?;
        Ok(out.data)
    }

    pub async fn dead_letter(&self, id: i64) -> Result<DeadLetterDetail> {
        self.call(self.request(reqwest::Method::GET, &format!("/admin/dead-letters/{id}")))
            .await
    }

    /// `action` is `replay` or `purge`; `body` is `{"ids": [...]}` or
    /// `{"filter": {...}}`.
    pub async fn dead_letter_action(&self, action: &str, body: &Value) -> Result<u64> {
        let out: DeadLetterActionOut = self
            .call(
                self.request(
                    reqwest::Method::POST,
                    &format!("/admin/dead-letters/{action}"),
                )
                .json(body),
            )
            .await?;
        Ok(out.count)
    }

    /// `action` is `pause`, `resume`, `disable` or `enable`.
    pub async fn endpoint_action(&self, id: &str, action: &str) -> Result<()> {
        let _: Value = self
            .call(self.request(
                reqwest::Method::POST,
                &format!("/admin/subscriptions/{id}/{action}"),
            ))
            .await?;
        Ok(())
    }

    pub async fn plugins(&self) -> Result<PluginList> {
        self.call(self.request(reqwest::Method::GET, "/admin/plugins"))
            .await
    }

    /// The catalogue, every page (operational types included).
    pub async fn event_types(&self) -> Result<Vec<EventTypeView>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("limit", "1000".to_string())];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page: ListOut<EventTypeView> = self
                .call(
                    self.request(reqwest::Method::GET, "/admin/event-types")
                        .query(&q),
                )
                .await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(c) if all.len() < 10_000 => after = Some(c),
                _ => return Ok(all),
            }
        }
    }

    pub async fn reload_plugins(&self) -> Result<PluginReloadOut> {
        self.call(self.request(reqwest::Method::POST, "/admin/plugins/reload"))
            .await
    }

    /// Follows `/admin/stream`, calling `on_attempt` for each attempt, until
    /// the connection ends or fails.
    pub async fn follow_attempts(&self, mut on_attempt: impl FnMut(AttemptEvent)) -> Result<()> {
        let mut resp = self
            .request(reqwest::Method::GET, "/admin/stream")
            .send()
            .await
            .map_err(describe)?;
        if !resp.status().is_success() {
            return Err(format!("stream answered {}", resp.status().as_u16()));
        }
        let mut sse = SseParser::default();
        // The daemon sends at least a snapshot a second: silence means gone.
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .map_err(|_| "stream went quiet".to_string())?
            .map_err(describe)?
        {
            for (event, data) in sse.feed(&chunk) {
                if event == "attempt"
                    && let Ok(a) = serde_json::from_str(&data)
                {
                    on_attempt(a);
                }
            }
        }
        Err("stream closed".into())
    }
}

/// A short reason for a failed request, without the URL's noise.
fn describe(e: reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = s.to_string();
            src = s.source();
        }
        msg
    }
}

/// Splits a `text/event-stream` body into (event, data) pairs.
#[derive(Default)]
pub struct SseParser {
    buf: String,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let mut event = "message".to_string();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim_start().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                out.push((event, data.join("\n")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: attempt\ndata: {\"a\"").is_empty());
        let got = p.feed(b":1}\n\n: keep-alive\n\nevent: stats\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                ("attempt".to_string(), "{\"a\":1}".to_string()),
                ("stats".to_string(), "{}".to_string())
            ]
        );
    }
}
