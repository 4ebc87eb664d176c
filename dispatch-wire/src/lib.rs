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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// A stable machine-readable `code` and a human sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `POST /events`: the Dispatch seed's event shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Producer-chosen id; the same id again is a duplicate, not a new event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub id: Option<String>,
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub source: Option<String>,
    /// Any JSON value; kept byte for byte as it was sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
}

/// `202` answer to a new event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventAccepted {
    pub id: String,
    /// Always `"queued"`.
    pub status: String,
    pub created_at: String,
}

/// `POST /events/batch` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventBatchIn {
    /// Each item is checked on its own: one bad event does not reject the rest.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Value>, min_items = 1, max_items = 1000))]
    pub events: Vec<Box<RawValue>>,
}

/// `POST /events/batch` answer: one result per submitted event, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatchOut {
    pub results: Vec<EventBatchResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    pub created_at: String,
    /// `queued` while any delivery is unfinished, `failed` when a delivery is
    /// dead, `delivered` when all are, `no_subscribers` when nothing matched.
    pub status: String,
    pub deliveries: Vec<DeliveryView>,
}

/// One event on its way to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: i64,
    pub subscription_id: Option<String>,
    pub url: String,
    /// `pending`, `in_flight`, `scheduled`, `delivered`, `dead`, `paused`, or
    /// `dropped` (a plugin decided not to send it; `last_error` says why).
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListOut<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Retry policy of a subscription: exponential backoff with jitter and a cap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryIn {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400000))]
    pub initial_delay_ms: u64,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub multiplier: f64,
    /// At least `initial_delay_ms`, at most 7 days.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800000))]
    pub max_delay_ms: u64,
}

/// `POST /subscriptions`. These field names are the contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub id: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<EventTypePattern>, min_items = 1, max_items = 100))]
    pub event_types: Vec<String>,
    /// Write-only. Generated (`whsec_…`) when absent and shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1024,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )
    )]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Requests per second to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_attempts: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub retry: Option<RetryIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 60000))]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub plugins: Option<Vec<String>>,
}

/// `PATCH /subscriptions/{id}`: every field optional; a new `secret` rotates
/// it, keeping the old one valid for the configured grace period.
/// `rate_limit` may be set to `null` to remove the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<EventTypePattern>>, min_items = 1, max_items = 100))]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1024,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )
    )]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100000))]
    pub rate_limit: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_attempts: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub retry: Option<RetryIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 60000))]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub plugins: Option<Vec<String>>,
}

/// A subscription as the API shows it. `secret` is the full secret only in
/// the answer to the request that set it; everywhere else it is masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskIn {
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub url: String,
    /// `POST` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(GET|POST|PUT|PATCH|DELETE|get|post|put|patch|delete)$")
    )]
    pub method: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1024,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        )
    )]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    /// Retries after the first attempt; 5 when absent, as in DispatchGO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 99))]
    pub max_retries: Option<u32>,
}

/// `202` answer to a new task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskAccepted {
    pub task_id: String,
    /// Always `"queued"`.
    pub status: String,
}

/// `GET /tasks/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthOut {
    /// `ok` or `unavailable`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub version: String,
}

/// Documentation-only schema of one event-type pattern: an exact type, a
/// final `.*` wildcard over whole segments, or `*`.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^(\\*|[A-Za-z0-9._:/-]{1,200}(\\.\\*)?)$")]
pub struct EventTypePattern(pub String);

/// Documentation-only schema of a header value: visible ASCII.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[ -~]{0,4096}$")]
pub struct HeaderValueText(pub String);

/// Documentation-only schema of `DeadLetterAction`: exactly one of the two.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum DeadLetterSelection {
    Ids(DeadLetterIds),
    Filter(DeadLetterByFilter),
}

/// At most 1000 delivery ids.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterIds {
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<i64>,
}

/// Every dead letter matching the filter.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterByFilter {
    pub filter: DeadLetterFilter,
}

/// Reads an optional nested struct from a JSON object only. serde's
/// derived struct deserializers also take an array of positional fields,
/// so without this `{"filter": [null, null]}` would read as an empty filter.
mod object_only {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? {
            None => Ok(None),
            Some(map) => serde_json::from_value(serde_json::Value::Object(map))
                .map(Some)
                .map_err(D::Error::custom),
        }
    }
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub subscription_id: Option<String>,
    /// An exact event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub event_type: Option<String>,
    /// RFC 3339: died at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub since: Option<String>,
    /// RFC 3339: died before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub until: Option<String>,
}

/// `POST /admin/dead-letters/replay` and `/purge`: exactly one of `ids`
/// (at most 1000) or `filter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeadLetterAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub ids: Option<Vec<i64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub filter: Option<DeadLetterFilter>,
}

/// How many dead letters an action touched.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterActionOut {
    pub count: u64,
}

/// A loaded plugin and what it has done on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginView {
    pub name: String,
    /// `transformer` or `router`.
    pub world: String,
    pub path: String,
    /// Hex SHA-256 of the component file.
    pub hash: String,
    pub size_bytes: u64,
    /// When this version was loaded (RFC 3339).
    pub loaded_at: String,
    /// Calls since start-up (across reloads), failed ones included.
    pub invocations: u64,
    pub errors: u64,
    /// Mean time per call, in microseconds.
    pub mean_us: f64,
    /// Whether instances are reused between calls.
    pub warm: bool,
}

/// `GET /admin/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

/// What a reload did for one plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginReloadResult {
    pub name: String,
    /// `reloaded`, `unchanged`, or `failed` (the previous version keeps
    /// running).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /admin/plugins/reload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginReloadOut {
    pub results: Vec<PluginReloadResult>,
}

/// One dead letter: a delivery that exhausted its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// `GET /admin/stats`: a snapshot counted from the database, so every node
/// answers the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminStats {
    /// When the snapshot was taken (RFC 3339).
    pub generated_at: String,
    /// `postgres` or `sqlite`.
    pub backend: String,
    pub deliveries: DeliveryCounts,
    /// Milliseconds the oldest pending delivery has waited; absent when none
    /// is pending.
    pub oldest_pending_age_ms: Option<i64>,
    /// Mean per-second rates over the last minute.
    pub rates: Rates,
    /// The last minute, one point per whole second, oldest first.
    pub throughput: Vec<ThroughputPoint>,
    /// Ingest to delivery, for deliveries that succeeded in the last minute.
    pub latency_ms: LatencyStats,
    pub endpoints: Vec<EndpointStats>,
    pub plugins: Vec<PluginStats>,
    pub nodes: Vec<NodeView>,
}

/// Deliveries per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCounts {
    pub pending: i64,
    pub in_flight: i64,
    pub scheduled: i64,
    pub delivered: i64,
    pub dead: i64,
    pub paused: i64,
    /// Dropped by a plugin.
    pub dropped: i64,
}

/// Events ingested, and attempts that delivered or failed, per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rates {
    pub window_secs: u32,
    pub ingested_per_sec: f64,
    pub delivered_per_sec: f64,
    pub failed_per_sec: f64,
}

/// One second of traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThroughputPoint {
    /// Unix seconds.
    pub at: i64,
    pub ingested: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// Latency percentiles in milliseconds, over at most the latest 10,000
/// samples of the window; absent when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencyStats {
    pub samples: u64,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

/// One endpoint (subscription): its health, circuit and backlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointStats {
    pub subscription_id: String,
    pub url: String,
    /// `active`, `paused` or `disabled`.
    pub status: String,
    /// `closed`, `open` or `half_open`.
    pub circuit_state: String,
    pub consecutive_failures: i32,
    /// Requests per second; absent when unlimited.
    pub rate_limit: Option<i32>,
    pub last_success_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// `healthy`, `failing`, `open`, `paused`, `disabled` or `idle`.
    pub health: String,
    /// Waiting deliveries: pending, scheduled and in flight.
    pub backlog: i64,
    pub paused: i64,
    pub dead: i64,
    /// Attempts in the last minute.
    pub delivered_last_minute: i64,
    pub failed_last_minute: i64,
}

/// One plugin's calls across every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginStats {
    pub name: String,
    pub invocations: i64,
    pub errors: i64,
    /// Mean time per call, in microseconds.
    pub mean_us: f64,
}

/// A dispatchd node sharing the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    pub id: String,
    pub started_at: String,
    pub last_seen: String,
    /// Seen within three sweep intervals.
    pub live: bool,
}

/// One attempt, as `GET /admin/stream` sends it (`event: attempt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptEvent {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subscription_id: Option<String>,
    pub run: i32,
    pub attempt: i32,
    pub url: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// RFC 3339.
    pub at: String,
    /// A 2xx answer.
    pub ok: bool,
}

/// `GET /admin/dead-letters/{id}`: one dead letter with what an operator
/// needs to judge it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterDetail {
    pub dead_letter: DeadLetterView,
    pub source: Option<String>,
    /// The event's payload, as ingested.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    /// The request headers configured for this destination (values of
    /// secret-looking headers masked).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Every attempt of every run, oldest first.
    pub attempts: Vec<AttemptView>,
}
