//! Tasks: DispatchGO's one-off deliveries, a URL and a body with no
//! subscription behind them. Their shapes follow DispatchGO's names rather
//! than ours so that its clients keep working unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::events::AttemptView;
#[cfg(feature = "openapi")]
use crate::schema::HeaderValueText;

/// `POST /tasks`: the DispatchGO seed's one-off delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskIn {
    /// Where the request is sent.
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
    /// The event type, sent as the `x-dispatch-event-type` header.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub event: String,
    /// Signs the request when given; the request goes unsigned otherwise.
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
    /// Extra headers sent with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    /// The request body: any JSON value, sent as it was given.
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
    /// The generated id, for `GET /tasks/{id}`.
    pub task_id: String,
    /// Always `"queued"`.
    pub status: String,
}

/// `GET /tasks/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskView {
    /// The task's id.
    pub task_id: String,
    /// `pending`, `processing`, `completed` or `failed`, as in DispatchGO.
    pub status: String,
    /// Where the request is sent.
    pub url: String,
    /// The request's HTTP method.
    pub method: String,
    /// The task's event type.
    pub event: String,
    /// Attempts made so far, the first one included.
    pub attempts_made: i32,
    /// Attempts made after the first.
    pub retry_count: i32,
    /// Retries allowed after the first attempt.
    pub max_retries: i32,
    /// Why the latest attempt failed, when it did.
    pub error: Option<String>,
    /// The HTTP status of the latest attempt, when the receiver answered.
    pub last_status_code: Option<i32>,
    /// When the task was accepted (RFC 3339).
    pub created_at: String,
    /// When it was delivered (RFC 3339).
    pub completed_at: Option<String>,
    /// When the next attempt is due, while one is waiting.
    pub next_attempt_at: Option<String>,
    /// Every attempt made.
    pub attempts: Vec<AttemptView>,
}
