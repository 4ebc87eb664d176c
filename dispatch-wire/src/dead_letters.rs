//! Dead letters: deliveries that used up their attempts, and the operator's
//! replay and purge requests over them. One filter type serves both the
//! list's query string and an action's body, so "what I see" and "what I
//! act on" cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::codecs::object_only;
use crate::events::AttemptView;

/// `GET /admin/dead-letters` filter (query string) and the `filter` of a
/// replay or purge.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    /// Only this subscription's dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub subscription_id: Option<String>,
    /// Only the dead letters of this tenant's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub tenant_id: Option<String>,
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
    /// The dead letters' delivery ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub ids: Option<Vec<i64>>,
    /// Every dead letter this matches.
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
    /// Dead letters replayed or purged.
    pub count: u64,
}

/// One dead letter: a delivery that exhausted its attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterView {
    /// The dead delivery's id; replay and purge take it.
    pub delivery_id: i64,
    /// The event it carried.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The subscription it was for; absent for a task.
    pub subscription_id: Option<String>,
    /// The tenant of its event; absent for a tenant-less event.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The destination URL.
    pub url: String,
    /// Attempts of the last run.
    pub attempts: i32,
    /// The run that died, from 1; each replay starts a new one.
    pub run: i32,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the delivery died (RFC 3339).
    pub died_at: String,
    /// When the delivery was created (RFC 3339).
    pub created_at: String,
}

/// `GET /admin/dead-letters/{id}`: one dead letter with what an operator
/// needs to judge it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterDetail {
    /// The dead letter itself.
    pub dead_letter: DeadLetterView,
    /// The event's source, if the producer gave one.
    pub source: Option<String>,
    /// The event's payload, as ingested.
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Box<RawValue>,
    /// The request headers configured for this destination (values of
    /// secret-looking headers masked).
    pub headers: BTreeMap<String, String>,
    /// Every attempt of every run, oldest first.
    pub attempts: Vec<AttemptView>,
}
