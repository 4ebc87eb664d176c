//! Wire types of the dispatchd HTTP API.
//!
//! These are the JSON shapes producers, operators and the console see. They
//! live in their own crate so that `dispatch-tui` and the tests can speak the
//! API without linking the daemon (and with it sqlx or wasmtime). Request
//! types reject unknown fields: a typo such as `event_type` for `event_types`
//! is an error, not a silently ignored key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// A stable machine-readable `code` and a human sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `POST /events`: the Dispatch seed's event shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Producer-chosen id; the same id again is a duplicate, not a new event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Any JSON value; kept byte for byte as it was sent.
    pub data: Box<RawValue>,
}

/// `202` answer to a new event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventAccepted {
    pub id: String,
    /// Always `"queued"`.
    pub status: String,
    pub created_at: String,
}

/// `POST /events/batch` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatchIn {
    /// Each item is checked on its own: one bad event does not reject the rest.
    pub events: Vec<Box<RawValue>>,
}

/// `POST /events/batch` answer: one result per submitted event, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatchOut {
    pub results: Vec<EventBatchResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatchResult {
    pub index: usize,
    /// The event's id when it was accepted or found to be a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `queued`, `duplicate` or `rejected`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `GET /events/{id}` and the `200` answer to a duplicate event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: Option<String>,
    pub data: Box<RawValue>,
    pub created_at: String,
    /// `queued` while any delivery is unfinished, `failed` when a delivery is
    /// dead, `delivered` when all are, `no_subscribers` when nothing matched.
    pub status: String,
    pub deliveries: Vec<DeliveryView>,
}

/// One event on its way to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub subscription_id: Option<String>,
    pub url: String,
    /// `pending`, `in_flight`, `scheduled`, `delivered`, `dead` or `paused`.
    pub state: String,
    /// Attempts made in the current run.
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

/// One HTTP attempt, successful or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptView {
    pub delivery_id: i64,
    pub subscription_id: Option<String>,
    pub url: String,
    /// Replay run, starting at 1; a replay starts a fresh attempt sequence.
    pub run: i32,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The first bytes of the receiver's answer.
    pub response_body: Option<String>,
    pub created_at: String,
}

/// A list answer; `next_cursor` is passed back as `?after=` for the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListOut<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Retry policy of a subscription: exponential backoff with jitter and a cap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryIn {
    pub initial_delay_ms: u64,
    pub multiplier: f64,
    pub max_delay_ms: u64,
}

/// `POST /subscriptions`. These field names are the contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub url: String,
    pub event_types: Vec<String>,
    /// Write-only. Generated (`whsec_…`) when absent and shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Requests per second to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
}

/// `PATCH /subscriptions/{id}`: every field optional; a new `secret` rotates
/// it, keeping the old one valid for the configured grace period.
/// `rate_limit` may be set to `null` to remove the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub rate_limit: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<String>>,
}

/// A subscription as the API shows it. `secret` is the full secret only in
/// the answer to the request that set it; everywhere else it is masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub headers: BTreeMap<String, String>,
    pub rate_limit: Option<u32>,
    pub max_attempts: u32,
    pub retry: RetryIn,
    pub timeout_ms: u64,
    pub plugins: Vec<String>,
    /// `active`, `paused` or `disabled`.
    pub status: String,
    /// Why it is disabled (an operator, a 410 Gone, a long outage).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub circuit: CircuitView,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /tasks`: the DispatchGO seed's one-off delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskIn {
    pub url: String,
    /// `POST` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    pub data: Box<RawValue>,
    /// Retries after the first attempt; 5 when absent, as in DispatchGO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// `202` answer to a new task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskAccepted {
    pub task_id: String,
    /// Always `"queued"`.
    pub status: String,
}

/// `GET /tasks/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskView {
    pub task_id: String,
    /// `pending`, `processing`, `completed` or `failed`, as in DispatchGO.
    pub status: String,
    pub url: String,
    pub method: String,
    pub event: String,
    /// Attempts made so far, the first one included.
    pub attempts_made: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    pub error: Option<String>,
    pub last_status_code: Option<i32>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// `GET /health` and `GET /ready`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthOut {
    /// `ok` or `unavailable`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub version: String,
}

/// `Option<Option<T>>` that tells an absent field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// An endpoint's circuit breaker, as `SubscriptionView::circuit` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CircuitView {
    /// `closed`, `open` or `half_open`.
    pub state: String,
    pub consecutive_failures: i32,
    /// When the current outage opened the circuit.
    pub opened_at: Option<String>,
    /// When an open circuit lets its next probe through.
    pub next_probe_at: Option<String>,
    pub last_success_at: Option<String>,
}

/// `GET /admin/dead-letters` filter (query string) and the `filter` of a
/// replay or purge.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// An exact event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// RFC 3339: died at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// RFC 3339: died before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `POST /admin/dead-letters/replay` and `/purge`: exactly one of `ids`
/// (at most 1000) or `filter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<DeadLetterFilter>,
}

/// How many dead letters an action touched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterActionOut {
    pub count: u64,
}

/// One dead letter: a delivery that exhausted its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub delivery_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subscription_id: Option<String>,
    pub url: String,
    /// Attempts of the last run.
    pub attempts: i32,
    pub run: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub died_at: String,
    pub created_at: String,
}
