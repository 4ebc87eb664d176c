//! Events as producers send them and as the API shows them back, with the
//! deliveries and attempts an event fans out into. `data` stays a raw JSON
//! value throughout so the payload reaches receivers byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ErrorBody;

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
    /// The event type subscriptions match on, such as `order.created`.
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub event_type: String,
    /// Where the event came from, as the producer names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub source: Option<String>,
    /// Any JSON value; kept byte for byte as it was sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    /// The tenant the event is for: it fans out only to that tenant's
    /// subscriptions. Without one, only to global subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub tenant_id: Option<String>,
    /// Channels the event carries (at most 10): a subscription with
    /// channels receives it only if they share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<crate::ChannelName>>, max_items = 10))]
    pub channels: Option<Vec<String>>,
    /// Events with one key go to a `per_key` subscription one at a time,
    /// in the order they were accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub ordering_key: Option<String>,
}

/// `202` answer to a new event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventAccepted {
    /// The event's id: the producer's, or a generated one.
    pub id: String,
    /// Always `"queued"`.
    pub status: String,
    /// When the event was accepted (RFC 3339).
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
    /// One entry per submitted event, in the order they were sent.
    pub results: Vec<EventBatchResult>,
}

/// What became of one event of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatchResult {
    /// The event's position in the submitted `events`, from 0.
    pub index: usize,
    /// The event's id when it was accepted or found to be a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `queued`, `duplicate` or `rejected`.
    pub status: String,
    /// Why the event was rejected; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `GET /events/{id}` and the `200` answer to a duplicate event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    /// The event's id.
    pub id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Where the event came from, if the producer said.
    pub source: Option<String>,
    /// The payload, as ingested.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    /// When the event was accepted (RFC 3339).
    pub created_at: String,
    /// The tenant it is for; absent for a tenant-less event.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The channels it carries.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Its ordering key, if the producer gave one.
    #[serde(default)]
    pub ordering_key: Option<String>,
    /// Whether its type is marked deprecated in the catalogue.
    #[serde(default)]
    pub deprecated: bool,
    /// `queued` while any delivery is unfinished, `failed` when a delivery is
    /// dead, `delivered` when all are, `no_subscribers` when nothing matched.
    pub status: String,
    /// One delivery per destination the event matched.
    pub deliveries: Vec<DeliveryView>,
}

/// One event on its way to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    /// The delivery's id.
    pub id: i64,
    /// The subscription it goes to; absent for a task.
    pub subscription_id: Option<String>,
    /// The destination URL.
    pub url: String,
    /// Where it stands (`dropped`: a plugin decided not to send it;
    /// `last_error` says why).
    pub state: crate::DeliveryState,
    /// Attempts made in the current run.
    pub attempts: i32,
    /// Attempts a run may make before the delivery is dead.
    pub max_attempts: i32,
    /// When the next attempt is due, while the delivery is pending or scheduled.
    pub next_attempt_at: Option<String>,
    /// The HTTP status of the latest attempt, when the receiver answered.
    pub last_status_code: Option<i32>,
    /// Why the latest attempt failed, or why a plugin dropped the delivery.
    pub last_error: Option<String>,
    /// When it was delivered (RFC 3339).
    pub delivered_at: Option<String>,
    /// When the delivery was created (RFC 3339).
    pub created_at: String,
}

/// One HTTP attempt, successful or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    /// The delivery this attempt belongs to.
    pub delivery_id: i64,
    /// The delivery's subscription; absent for a task.
    pub subscription_id: Option<String>,
    /// The URL the request went to.
    pub url: String,
    /// Replay run, starting at 1; a replay starts a fresh attempt sequence.
    pub run: i32,
    /// The attempt's number within its run, from 1.
    pub attempt: i32,
    /// The receiver's HTTP status; absent when no answer came.
    pub status_code: Option<i32>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: i64,
    /// The first bytes of the receiver's answer.
    pub response_body: Option<String>,
    /// When the attempt was made (RFC 3339).
    pub created_at: String,
}
