//! Field rules shared by every request that carries ids, types, URLs or
//! headers. Each returns a sentence that names the offending value; the api
//! module turns it into a 422.

use std::collections::BTreeMap;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

pub const MAX_ID_LEN: usize = 255;

/// Ids appear in URL paths, so they are URL-safe: letters, digits, `._~:-`.
pub fn id(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(format!("{field} must be 1 to {MAX_ID_LEN} characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~:-".contains(&b))
    {
        return Err(format!(
            "{field} {value:?} may contain only letters, digits and . _ ~ : -"
        ));
    }
    Ok(())
}

/// Event types: `order.created`, `billing/invoice.paid`, `v2:user-deleted`.
pub fn event_type(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 255 {
        return Err("type must be 1 to 255 characters".into());
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
    {
        return Err(format!(
            "type {value:?} may contain only letters, digits and . _ : / -"
        ));
    }
    Ok(())
}

/// A list of channel names: at least `min`, at most 10, each in the
/// event-type character set, no repeats.
pub fn channels(names: &[String], min: usize) -> Result<(), String> {
    if names.len() < min || names.len() > 10 {
        return Err(if min == 0 {
            "channels may hold at most 10 names".into()
        } else {
            "channels must hold 1 to 10 names (omit it to receive every channel)".into()
        });
    }
    for (i, c) in names.iter().enumerate() {
        event_type(c)
            .map_err(|e| format!("channels[{i}]: {}", e.replacen("type", "channel", 1)))?;
        if names[..i].contains(c) {
            return Err(format!("channels[{i}]: {c:?} is listed twice"));
        }
    }
    Ok(())
}

pub fn source(value: &str) -> Result<(), String> {
    if value.len() > 255 || value.chars().any(char::is_control) {
        return Err("source must be at most 255 printable characters".into());
    }
    Ok(())
}

/// An http(s) URL with a host and no embedded credentials.
pub fn url(field: &str, value: &str) -> Result<Url, String> {
    if value.len() > 2048 {
        return Err(format!("{field} must be at most 2048 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    let url =
        Url::parse(value).map_err(|e| format!("{field} {value:?} is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{field} must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field} must have a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{field} must not embed credentials; use headers or the signing secret"
        ));
    }
    Ok(url)
}

/// Headers the daemon sets itself; a subscription may not override them.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

pub fn headers(map: &BTreeMap<String, String>) -> Result<(), String> {
    if map.len() > 50 {
        return Err("headers may hold at most 50 entries".into());
    }
    for (name, value) in map {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))?;
        if RESERVED.contains(&parsed.as_str()) || parsed.as_str().starts_with("x-dispatch-") {
            return Err(format!(
                "header {name:?} is set by dispatchd and cannot be overridden"
            ));
        }
        if value.len() > 4096 || HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "header {name:?} has a value that is not a valid HTTP header value (at most 4096 visible characters)"
            ));
        }
    }
    Ok(())
}

pub fn secret(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 1024 {
        return Err("secret must be 1 to 1024 characters".into());
    }
    if value.chars().any(char::is_control) {
        return Err("secret must not contain control characters".into());
    }
    Ok(())
}

pub fn method(value: &str) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    match upper.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => Ok(upper),
        _ => Err(format!(
            "method {value:?} must be one of GET, POST, PUT, PATCH, DELETE"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe() {
        assert!(id("id", "evt_123").is_ok());
        assert!(id("id", "a/b").is_err());
        assert!(id("id", "").is_err());
        assert!(id("id", &"x".repeat(256)).is_err());
    }

    #[test]
    fn urls_need_http_and_host() {
        assert!(url("url", "https://example.com/webhook").is_ok());
        assert!(url("url", "ftp://example.com").is_err());
        assert!(url("url", "not a url").is_err());
        assert!(url("url", "https://user:pw@example.com").is_err());
    }

    #[test]
    fn reserved_headers_are_refused() {
        let mut h = BTreeMap::new();
        h.insert("X-Api-Key".to_string(), "crm_key_88492".to_string());
        assert!(headers(&h).is_ok());
        h.insert("webhook-id".to_string(), "x".to_string());
        assert!(headers(&h).is_err());
        let mut h = BTreeMap::new();
        h.insert("X-Bad".to_string(), "a\nb".to_string());
        assert!(headers(&h).is_err());
    }
}
