//! Subscriptions: where events go and how hard dispatchd tries. The create
//! and patch shapes are separate types because a patch must tell "leave
//! as is" from "set", and for `rate_limit` also from "remove".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codecs::{double_option, object_only};
#[cfg(feature = "openapi")]
use crate::schema::{ChannelName, EventTypePattern, HeaderValueText};

/// Retry policy of a subscription: exponential backoff with jitter and a cap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryIn {
    /// Delay before the first retry, in milliseconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400000))]
    pub initial_delay_ms: u64,
    /// Factor each further delay grows by.
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
    /// Caller-chosen id; generated (`sub_…`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub id: Option<String>,
    /// The endpoint deliveries are sent to.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub url: String,
    /// Event-type patterns to match: exact types, `prefix.*` or `*`.
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
    /// Extra headers sent with every delivery; their values are write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Requests per second to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub rate_limit: Option<u32>,
    /// Attempts per delivery, the first included; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_attempts: Option<u32>,
    /// Backoff between attempts; the server default when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub retry: Option<RetryIn>,
    /// Per-request timeout in milliseconds; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 60000))]
    pub timeout_ms: Option<u64>,
    /// Loaded transformer plugins each delivery passes through, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub plugins: Option<Vec<String>>,
    /// The tenant that owns it; without one it is global and receives only
    /// events sent without a `tenant_id`. Must name an existing tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")
    )]
    pub tenant_id: Option<String>,
    /// When set, only events carrying at least one of these channels
    /// (at most 10 names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ChannelName>>, min_items = 1, max_items = 10))]
    pub channels: Option<Vec<String>>,
    /// `per_key`: the deliveries of one ordering key go one at a time, in
    /// the order their events were accepted. `none` (the default): as
    /// they come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<crate::Ordering>,
    /// For `per_key`: whether a dead head lets the next delivery of its key
    /// go (`skip`, the default) or stops the key until it is replayed or
    /// purged (`block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_on_dead: Option<crate::OnDead>,
    /// `v1` (HMAC, the default), `v1a` (ed25519: dispatchd makes the key
    /// pair and shows `public_key`) or `v1+v1a` (both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<crate::SignatureScheme>,
    /// Credentials dispatchd presents to the endpoint; write-only secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<EndpointAuthIn>,
    /// A private CA to trust for this endpoint and a client certificate
    /// to present (mTLS).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub tls: Option<TlsIn>,
    /// An HTTP CONNECT proxy for this endpoint's deliveries, instead of
    /// `delivery.proxy_url`. Its address passes the SSRF guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub proxy_url: Option<String>,
}

/// `PATCH /subscriptions/{id}`: every field optional; a new `secret` rotates
/// it, keeping the old one valid for the configured grace period.
/// `rate_limit` may be set to `null` to remove the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    /// A new endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub url: Option<String>,
    /// New event-type patterns, replacing the old list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<EventTypePattern>>, min_items = 1, max_items = 100))]
    pub event_types: Option<Vec<String>>,
    /// A new signing secret; write-only.
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
    /// New extra headers, replacing the old set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, HeaderValueText>>))]
    pub headers: Option<BTreeMap<String, String>>,
    /// A new limit in requests per second, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100000))]
    pub rate_limit: Option<Option<u32>>,
    /// New attempts per delivery, the first included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_attempts: Option<u32>,
    /// A new backoff policy.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_only::deserialize"
    )]
    pub retry: Option<RetryIn>,
    /// A new per-request timeout, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 60000))]
    pub timeout_ms: Option<u64>,
    /// New transformer plugins, replacing the old list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub plugins: Option<Vec<String>>,
    /// New channels, replacing the old list, or `null` to receive every
    /// channel again.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ChannelName>>, min_items = 1, max_items = 10))]
    pub channels: Option<Option<Vec<String>>>,
    /// A new ordering; it applies to the deliveries not yet sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<crate::Ordering>,
    /// A new rule for a dead head; `skip` releases keys it blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_on_dead: Option<crate::OnDead>,
    /// A new signature scheme; a key pair is made when it first needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<crate::SignatureScheme>,
    /// New endpoint credentials, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub auth: Option<Option<EndpointAuthIn>>,
    /// New TLS settings, replacing the old, or `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub tls: Option<Option<TlsIn>>,
    /// A new proxy, or `null` for the configured one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
    )]
    pub proxy_url: Option<Option<String>>,
}

/// A subscription as the API shows it. `secret` is the full secret only in
/// the answer to the request that set it; everywhere else it is masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    /// The subscription's id.
    pub id: String,
    /// The endpoint deliveries are sent to.
    pub url: String,
    /// The event-type patterns it matches.
    pub event_types: Vec<String>,
    /// The signing secret, masked except in the answer that set it.
    pub secret: String,
    /// Extra headers; values masked except in the answer that set them.
    pub headers: BTreeMap<String, String>,
    /// Requests per second; absent when unlimited.
    pub rate_limit: Option<u32>,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub retry: RetryIn,
    /// Per-request timeout, in milliseconds.
    pub timeout_ms: u64,
    /// Transformer plugins each delivery passes through, in order.
    pub plugins: Vec<String>,
    /// The tenant that owns it; absent for a global subscription.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The channels it is limited to; absent when it receives every channel.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Whether deliveries of one ordering key go one at a time, in order.
    #[serde(default = "crate::Ordering::default_none")]
    pub ordering: crate::Ordering,
    /// What a dead head does to its key (for `per_key`).
    #[serde(default = "crate::OnDead::default_skip")]
    pub ordering_on_dead: crate::OnDead,
    /// Which signatures its deliveries carry.
    #[serde(default = "crate::SignatureScheme::default_v1")]
    pub signature_scheme: crate::SignatureScheme,
    /// The ed25519 public key (`whpk_<base64>`) that verifies its `v1a`
    /// signatures; absent when it signs only `v1`. Public: always shown.
    #[serde(default)]
    pub public_key: Option<String>,
    /// The credentials it presents; secrets masked.
    #[serde(default)]
    pub auth: Option<EndpointAuthView>,
    /// Its TLS settings; the client key masked.
    #[serde(default)]
    pub tls: Option<TlsView>,
    /// Its own egress proxy, if it has one.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Whether it receives deliveries.
    pub status: crate::SubscriptionStatus,
    /// Why it is disabled (an operator, a 410 Gone, a long outage).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// The endpoint's circuit breaker.
    pub circuit: CircuitView,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
}

/// An endpoint's circuit breaker, as `SubscriptionView::circuit` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CircuitView {
    /// Closed, open or half-open.
    pub state: crate::CircuitState,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// When the current outage opened the circuit.
    pub opened_at: Option<String>,
    /// When an open circuit lets its next probe through.
    pub next_probe_at: Option<String>,
    /// The latest successful delivery (RFC 3339).
    pub last_success_at: Option<String>,
}

/// Credentials dispatchd presents to an endpoint with every delivery.
/// `Debug` prints no secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EndpointAuthIn {
    /// `Authorization: Basic` (RFC 7617).
    Basic {
        /// No `:` and no control characters.
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 255,
                pattern = "^[^:\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        username: String,
        /// Write-only.
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 1024,
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        password: String,
    },
    /// `Authorization: Bearer` with a token dispatchd fetches from
    /// `token_url` (`grant_type=client_credentials`, the client sent with
    /// HTTP Basic), cached until shortly before it expires and fetched
    /// again once after a 401.
    Oauth2ClientCredentials {
        /// The token endpoint; the SSRF guard applies to it.
        #[cfg_attr(
            feature = "openapi",
            schema(max_length = 2048, pattern = "^https?://[^\\s@/?#]+([/?#][^\\s]*)?$")
        )]
        token_url: String,
        /// The client's id.
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 255,
                pattern = "^[^:\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        client_id: String,
        /// Write-only.
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 1024,
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        client_secret: String,
        /// Space-separated scopes to ask for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 1024,
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        scope: Option<String>,
        /// The audience to ask for (Auth0 and others).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(
                min_length = 1,
                max_length = 1024,
                pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
            )
        )]
        audience: Option<String>,
    },
}

impl std::fmt::Debug for EndpointAuthIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Self::Oauth2ClientCredentials {
                token_url,
                client_id,
                scope,
                audience,
                ..
            } => f
                .debug_struct("Oauth2ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"***")
                .field("scope", scope)
                .field("audience", audience)
                .finish(),
        }
    }
}

/// `EndpointAuthIn` as the API shows it: secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EndpointAuthView {
    /// `Authorization: Basic`.
    Basic {
        /// The user name.
        username: String,
        /// Masked, except in the answer that set it.
        password: String,
    },
    /// A bearer token from OAuth2 client credentials.
    Oauth2ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client's id.
        client_id: String,
        /// Masked, except in the answer that set it.
        client_secret: String,
        /// The scopes asked for.
        scope: Option<String>,
        /// The audience asked for.
        audience: Option<String>,
    },
}

/// TLS to an endpoint, in addition to the system's trusted roots: a
/// private CA, and a client certificate with its key (mTLS). PEM, checked
/// when written; the key is write-only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TlsIn {
    /// A CA certificate (PEM) trusted for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 65536))]
    pub ca_pem: Option<String>,
    /// The client certificate (PEM, its chain may follow) presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 65536))]
    pub client_cert_pem: Option<String>,
    /// Its private key (PEM); required with `client_cert_pem`. Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 65536))]
    pub client_key_pem: Option<String>,
}

impl std::fmt::Debug for TlsIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIn")
            .field("ca_pem", &self.ca_pem)
            .field("client_cert_pem", &self.client_cert_pem)
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// `TlsIn` as the API shows it: the key masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TlsView {
    /// The CA certificate trusted.
    pub ca_pem: Option<String>,
    /// The client certificate presented.
    pub client_cert_pem: Option<String>,
    /// `********` when a key is set.
    pub client_key_pem: Option<String>,
}
