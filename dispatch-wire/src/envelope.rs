//! The body of a subscription delivery: the Dispatch seed's envelope
//! `{id, type, source, data, timestamp}`, unless a plugin rewrote it.
//!
//! dispatchd serialises it; receivers (the tests, the load tool) read it
//! back with the same type, borrowing from the body.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a receiver gets in the body of a subscription delivery.
///
/// ```
/// let body = br#"{"id":"evt_1","type":"order.created","source":null,
///                 "data":{"n":1},"timestamp":"2026-12-01T00:00:00.000Z"}"#;
/// let env: dispatch_wire::WebhookEnvelope = serde_json::from_slice(body).unwrap();
/// assert_eq!(env.event_type, "order.created");
/// assert_eq!(env.data.get(), r#"{"n":1}"#);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEnvelope<'a> {
    /// The event's id (the `webhook-id` header carries it too).
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The event type, as the receiver sees it (a plugin may change it).
    #[serde(rename = "type", borrow)]
    pub event_type: Cow<'a, str>,
    /// The producer's `source`, if it gave one.
    #[serde(borrow)]
    pub source: Option<Cow<'a, str>>,
    /// The producer's `data`, byte for byte.
    #[serde(borrow)]
    pub data: &'a RawValue,
    /// When dispatchd accepted the event (RFC 3339, UTC, milliseconds): the
    /// same on every attempt, so retries send the same bytes.
    pub timestamp: String,
}
