//! The case file, read strictly (an unknown field is an error, so a typo
//! cannot make a case pass), and the JSON an outcome is compared as.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::plugins::{BodyFormat, Destination, Request};

/// The URL a case's request goes to unless it names one.
const URL: &str = "https://example.com/webhook";

/// What a request or destination in `expect` may name.
const REQUEST_FIELDS: &[&str] = &[
    "url",
    "method",
    "headers",
    "payload",
    "payload_text",
    "event_type",
    "format",
];
const DESTINATION_FIELDS: &[&str] = &["subscription_id", "url", "method", "headers"];
/// What a case's event may hold: `POST /events`'s fields, and when it was
/// received (milliseconds since the epoch; default 0, so runs repeat).
const EVENT_FIELDS: &[&str] = &[
    "type",
    "data",
    "id",
    "source",
    "tenant_id",
    "ordering_key",
    "received_at",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// What the case is about, for the reader.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    event: Value,
    #[serde(default)]
    request: Option<RequestIn>,
    #[serde(default)]
    destinations: Option<Vec<DestinationIn>>,
    #[serde(default)]
    settings: BTreeMap<String, Value>,
    expect: Expected,
}

/// A transformer's input request: what differs from the one dispatchd
/// would build from the event.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestIn {
    url: Option<String>,
    method: Option<String>,
    subscription_id: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The payload as JSON (default: the event's `data`).
    payload: Option<Value>,
    /// The payload as text, for a `raw` one that is not JSON.
    payload_text: Option<String>,
    event_type: Option<String>,
    format: Option<Format>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Format {
    Envelope,
    Raw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationIn {
    subscription_id: String,
    url: Option<String>,
    #[serde(default = "post")]
    method: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn post() -> String {
    "POST".into()
}

/// What the case expects.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// `deliver`, `drop` or `error` (a router's empty answer is `drop`).
    pub decision: String,
    /// A transformer's request, partially: only the fields named are
    /// compared, and of `headers` only the names listed (`null`: absent;
    /// `{}`: no headers at all).
    pub request: Option<Value>,
    /// A substring of the drop reason or the error.
    pub message: Option<String>,
    /// A router's destinations, in order, each partially as `request`.
    pub destinations: Option<Vec<Value>>,
}

/// A parsed case.
pub struct Case {
    pub event: crate::model::Event,
    pub request: Request,
    pub destinations: Vec<Destination>,
    pub settings: BTreeMap<String, Value>,
    pub expect: Expected,
}

/// What the plugin answered, as the case sees it.
pub enum Outcome {
    Deliver(Request),
    Routed(Vec<Destination>),
    Drop(String),
    Error(String),
}

impl Case {
    /// Parses a case for a router (`router`) or a transformer.
    pub fn parse(raw: &str, router: bool) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let file: CaseFile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string() {
                p if p == "." => e.inner().to_string(),
                p => format!("{p}: {}", e.inner()),
            })?;
        only_fields("event", &file.event, EVENT_FIELDS)?;
        let received_at = match file.event.get("received_at") {
            None => 0,
            Some(v) => v
                .as_i64()
                .filter(|ms| *ms >= 0)
                .ok_or("event.received_at: milliseconds since the Unix epoch")?,
        };
        let (mut event, mut request) =
            crate::plugins::stage::dry_run_input(&file.event.to_string(), URL)
                .map_err(|e| format!("event: {e}"))?;
        event.created_at = received_at;
        let expect = file.expect;
        if !["deliver", "drop", "error"].contains(&expect.decision.as_str()) {
            return Err(format!(
                "expect.decision: {:?} is not one of deliver, drop, error",
                expect.decision
            ));
        }
        if expect.decision != "deliver"
            && (expect.request.is_some() || expect.destinations.is_some())
        {
            return Err(format!(
                "expect: a {:?} sends nothing to compare: drop `request`/`destinations`",
                expect.decision
            ));
        }
        let (wrong_in, wrong_out) = if router {
            (file.request.is_some(), expect.request.is_some())
        } else {
            (file.destinations.is_some(), expect.destinations.is_some())
        };
        if wrong_in || wrong_out {
            return Err(if router {
                "this plugin is a router: give `destinations`, not `request`".into()
            } else {
                "this plugin is a transformer: give `request`, not `destinations`".into()
            });
        }
        if let Some(r) = &expect.request {
            only_fields("expect.request", r, REQUEST_FIELDS)?;
        }
        for (i, d) in expect.destinations.iter().flatten().enumerate() {
            only_fields(&format!("expect.destinations[{i}]"), d, DESTINATION_FIELDS)?;
        }
        if let Some(r) = file.request {
            apply(&mut request, r)?;
        }
        let destinations = match file.destinations {
            Some(list) => list
                .into_iter()
                .map(|d| Destination {
                    subscription_id: d.subscription_id,
                    url: d.url.unwrap_or_else(|| URL.into()),
                    method: d.method,
                    headers: d.headers.into_iter().collect(),
                })
                .collect(),
            None => vec![Destination {
                subscription_id: "sub_1".into(),
                ..request.destination.clone()
            }],
        };
        Ok(Self {
            event,
            request,
            destinations,
            settings: file.settings,
            expect,
        })
    }
}

fn apply(request: &mut Request, r: RequestIn) -> Result<(), String> {
    if r.payload.is_some() && r.payload_text.is_some() {
        return Err("request: give `payload` or `payload_text`, not both".into());
    }
    if let Some(p) = r.payload {
        request.payload = p.to_string();
    }
    if let Some(p) = r.payload_text {
        request.payload = p;
    }
    if let Some(t) = r.event_type {
        request.event_type = t;
    }
    if let Some(f) = r.format {
        request.format = match f {
            Format::Envelope => BodyFormat::Envelope,
            Format::Raw => BodyFormat::Raw,
        };
    }
    let d = &mut request.destination;
    if let Some(u) = r.url {
        d.url = u;
    }
    if let Some(m) = r.method {
        d.method = m;
    }
    if let Some(id) = r.subscription_id {
        d.subscription_id = id;
    }
    d.headers = r.headers.into_iter().collect();
    Ok(())
}

fn only_fields(at: &str, v: &Value, allowed: &[&str]) -> Result<(), String> {
    let Some(map) = v.as_object() else {
        return Err(format!("{at}: must be an object"));
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{at}.{k} is not a field (expected some of: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// The fields of `r` that `want` names, as JSON.
pub fn request_json(r: &Request, want: &Value) -> Value {
    let mut out = Map::new();
    for key in want.as_object().into_iter().flat_map(|m| m.keys()) {
        let v = match key.as_str() {
            "url" => json!(r.destination.url),
            "method" => json!(r.destination.method),
            "event_type" => json!(r.event_type),
            "format" => json!(match r.format {
                BodyFormat::Envelope => "envelope",
                BodyFormat::Raw => "raw",
            }),
            "payload" => serde_json::from_str(&r.payload)
                .unwrap_or_else(|_| json!(format!("(not JSON) {}", r.payload))),
            "payload_text" => json!(r.payload),
            "headers" => headers_json(&r.destination.headers, &want["headers"]),
            _ => continue,
        };
        out.insert(key.clone(), v);
    }
    Value::Object(out)
}

/// The fields of `d` that `want` names (all of them when `want` is not an
/// object: an entry the case did not expect).
pub fn destination_json(d: &Destination, want: &Value) -> Value {
    let full = json!({
        "subscription_id": d.subscription_id,
        "url": d.url,
        "method": d.method,
        "headers": headers_json(&d.headers, &Value::Null),
    });
    let Some(want) = want.as_object() else {
        return full;
    };
    let mut out = Map::new();
    for key in want.keys() {
        let v = match key.as_str() {
            "headers" => headers_json(&d.headers, &want["headers"]),
            k => full[k].clone(),
        };
        out.insert(key.clone(), v);
    }
    Value::Object(out)
}

/// The headers `want` lists (by name, case-insensitively; `null` when
/// absent), or all of them when it is not a non-empty object (so `{}`
/// means "no headers").
fn headers_json(headers: &[(String, String)], want: &Value) -> Value {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(Value::Null, |(_, v)| json!(v))
    };
    match want.as_object().filter(|m| !m.is_empty()) {
        Some(names) => Value::Object(names.keys().map(|k| (k.clone(), find(k))).collect()),
        None => Value::Object(headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    }
}
