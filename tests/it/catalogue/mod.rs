//! The event-type catalogue: `schema` (schemas enforced at ingest, the
//! catalogue's own rules, its paging, a change on one node enforced by
//! another) and `operational` (the events dispatchd emits about dead
//! deliveries and failing endpoints, and that it never loops).

mod operational;
mod schema;

use axum::http::StatusCode;
use dispatch_tests::Daemon;
use serde_json::{Value, json};

/// `order.created`: required fields, types, a numeric range and a nested
/// object.
pub(super) fn order_schema() -> Value {
    json!({
        "type": "object",
        "required": ["order_id", "amount", "customer"],
        "properties": {
            "order_id": {"type": "string", "minLength": 1},
            "amount": {"type": "integer", "minimum": 1, "maximum": 1000000},
            "customer": {
                "type": "object",
                "required": ["email"],
                "properties": {"email": {"type": "string"}, "vip": {"type": "boolean"}}
            }
        }
    })
}

pub(super) fn order(n: u64) -> Value {
    json!({"order_id": format!("o{n}"), "amount": 100 + n, "customer": {"email": "a@b.c"}})
}

pub(super) async fn add_order_type(d: &Daemon) {
    let (s, b) = d
        .post(
            "/event-types",
            json!({"name": "order.created", "description": "An order was placed",
                   "schema": order_schema(), "example": order(1)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}
