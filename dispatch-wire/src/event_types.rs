//! The event-type catalogue: the types producers may send, documented,
//! each with an optional JSON Schema for its `data` that ingest enforces.
//! dispatchd's own operational types (`dispatch.*`) are listed from the
//! start and cannot be changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codecs::double_option;

/// `POST /event-types`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    /// The type, as events carry it (`order.created`).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")
    )]
    pub name: String,
    /// What the event means, for the people who subscribe to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12) the event's `data` must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub schema: Option<Value>,
    /// Still accepted, but flagged on the events that carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// A sample `data`; checked against `schema` when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub example: Option<Value>,
}

/// `PATCH /event-types/{name}`: every field optional; `description`,
/// `schema` and `example` may be set to `null` to remove them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventTypePatch {
    /// A new description, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 4096))]
    pub description: Option<Option<String>>,
    /// A new schema, or `null` to stop checking the type's events.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub schema: Option<Option<Value>>,
    /// Marks the type deprecated, or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// A new example, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub example: Option<Option<Value>>,
}

/// An event type as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventTypeView {
    /// The type.
    pub name: String,
    /// What it means.
    pub description: Option<String>,
    /// The JSON Schema its events' `data` must satisfy; absent when unchecked.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub schema: Option<Value>,
    /// Whether it is deprecated.
    pub deprecated: bool,
    /// A sample `data`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub example: Option<Value>,
    /// One of dispatchd's own operational events (`dispatch.*`): emitted
    /// by dispatchd, never posted, and not editable.
    pub operational: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
}
