//! dispatchd's own operational event types: listed in the catalogue from
//! the start, with their schemas, and never editable. The emitter
//! (`operational`) builds their data; these schemas are what it promises.

use serde_json::{Value, json};

use crate::model::{EventType, Millis};

/// The prefix no producer may post: only dispatchd emits these types, and
/// only patterns that name it (`dispatch.*`) receive them.
pub const PREFIX: &str = "dispatch.";

/// A delivery used up its attempts.
pub const DELIVERY_DEAD: &str = "dispatch.delivery.dead";
/// An endpoint was disabled (410, sustained failures or an operator).
pub const ENDPOINT_DISABLED: &str = "dispatch.endpoint.disabled";
/// An endpoint's circuit opened after consecutive failures.
pub const CIRCUIT_OPENED: &str = "dispatch.endpoint.circuit_opened";
/// An endpoint's circuit closed again.
pub const CIRCUIT_CLOSED: &str = "dispatch.endpoint.circuit_closed";

/// When these types first shipped: their `created_at` on every node.
const SHIPPED: Millis = 1_796_083_200_000;

/// Whether `name` is one of dispatchd's own (or reserved for them).
pub fn is_operational(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// The four operational types, by name: built once, read by every list
/// and lookup of the catalogue.
pub fn types() -> &'static [EventType] {
    static TYPES: std::sync::LazyLock<Vec<EventType>> = std::sync::LazyLock::new(build);
    &TYPES
}

fn build() -> Vec<EventType> {
    let sub = json!({"type": "string", "description": "The subscription (endpoint) concerned."});
    [
        (
            DELIVERY_DEAD,
            "A delivery used up its attempts and is now a dead letter (replayable).",
            object(
                json!({
                    "event_id": {"type": "string"},
                    "event_type": {"type": "string"},
                    "subscription_id": sub.clone(),
                    "attempts": {"type": "integer", "minimum": 0},
                    "last_error": {"type": ["string", "null"]}
                }),
                &[
                    "event_id",
                    "event_type",
                    "subscription_id",
                    "attempts",
                    "last_error",
                ],
            ),
            json!({"event_id": "evt_1", "event_type": "order.created",
                   "subscription_id": "sub_1", "attempts": 8,
                   "last_error": "HTTP 503 Service Unavailable"}),
        ),
        (
            ENDPOINT_DISABLED,
            "An endpoint was disabled: it answered 410 Gone, its circuit stayed open too \
             long, or an operator disabled it. Nothing is sent to it until it is enabled.",
            object(
                json!({
                    "subscription_id": sub.clone(),
                    "reason": {"enum": ["gone", "sustained_failures", "operator"]},
                    "detail": {"type": ["string", "null"]}
                }),
                &["subscription_id", "reason", "detail"],
            ),
            json!({"subscription_id": "sub_1", "reason": "gone",
                   "detail": "the receiver answered 410 Gone"}),
        ),
        (
            CIRCUIT_OPENED,
            "An endpoint's circuit opened after consecutive failures: its deliveries wait \
             until a probe succeeds.",
            object(
                json!({
                    "subscription_id": sub.clone(),
                    "consecutive_failures": {"type": "integer", "minimum": 0}
                }),
                &["subscription_id", "consecutive_failures"],
            ),
            json!({"subscription_id": "sub_1", "consecutive_failures": 5}),
        ),
        (
            CIRCUIT_CLOSED,
            "An endpoint's circuit closed again: deliveries flow.",
            object(json!({"subscription_id": sub}), &["subscription_id"]),
            json!({"subscription_id": "sub_1"}),
        ),
    ]
    .into_iter()
    .map(|(name, description, schema, example)| EventType {
        name: name.to_string(),
        description: Some(description.to_string()),
        schema: Some(schema.to_string()),
        deprecated: false,
        example: Some(example.to_string()),
        created_at: SHIPPED,
        updated_at: SHIPPED,
    })
    .collect()
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}
