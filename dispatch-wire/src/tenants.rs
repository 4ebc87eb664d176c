//! Tenants: the producer's customers. Each may own subscriptions, receive
//! only its own events, and hold tokens that open the producer API scoped
//! to it (a customer portal's view).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codecs::double_option;

/// `POST /tenants`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// Caller-chosen id (such as the customer's id); generated (`ten_…`)
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub id: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub name: Option<String>,
    /// Any JSON object, kept for the producer (at most 16 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Map<String, Value>>,
    /// Events per second this tenant may post; over it, ingest answers 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub rate_limit: Option<u32>,
}

/// `PATCH /tenants/{id}`: every field optional; `name` and `rate_limit`
/// may be set to `null` to remove them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// A new display name, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub name: Option<Option<String>>,
    /// New metadata, replacing the old object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Map<String, Value>>,
    /// A new ingest limit in events per second, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100000))]
    pub rate_limit: Option<Option<u32>>,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantView {
    /// The tenant's id.
    pub id: String,
    /// Its display name.
    pub name: Option<String>,
    /// The producer's metadata (an object; `{}` when none was given).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
    /// Events per second it may post; absent when unlimited.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
}

/// `DELETE /tenants/{id}`: what went with the tenant, in one transaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantDeleted {
    /// The deleted tenant's id.
    pub id: String,
    /// Its subscriptions, deleted.
    pub subscriptions: u64,
    /// Its tokens, revoked.
    pub tokens: u64,
    /// Its deliveries not yet sent (pending, scheduled or parked), deleted.
    /// Delivered and dead ones stay visible on their events.
    pub deliveries: u64,
}

/// `POST /tenants/{id}/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantTokenIn {
    /// What the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
    )]
    pub description: Option<String>,
    /// Seconds until the token stops working; it never expires when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 315360000))]
    pub expires_in_secs: Option<u64>,
}

/// `201` answer to a new token: the only time `token` is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantTokenCreated {
    /// The token's id, for listing and revoking.
    pub id: String,
    /// The bearer token (`dtt_…`). Stored hashed: it cannot be shown again.
    pub token: String,
    /// What the token is for.
    pub description: Option<String>,
    /// When it stops working (RFC 3339); absent when never.
    pub expires_at: Option<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// A token as `GET /tenants/{id}/tokens` lists it: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantTokenView {
    /// The token's id.
    pub id: String,
    /// What the token is for.
    pub description: Option<String>,
    /// When it stops working (RFC 3339); absent when never.
    pub expires_at: Option<String>,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it last opened a request (RFC 3339, to the minute).
    pub last_used_at: Option<String>,
}
