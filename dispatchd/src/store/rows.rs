//! Rows as the database returns them, and their checked conversion to the
//! domain types of `crate::model`.
//!
//! Every conversion is `TryFrom`: a state name this version does not know,
//! JSON that does not parse or an integer out of range is a
//! `StoreError::Corrupt` naming the table, row and column, never a silent
//! default.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::plan::EndpointBefore;
use super::{Result, StoreError};
use crate::circuit::CircuitRow;
use crate::model::{
    AttemptRecord, ClaimToken, ClaimedDelivery, DeadLetter, DeliveryRecord, Event, EventKind,
    Health, InlineDestination, LeasedDelivery, RetryPolicy, Subscription, Tenant, TenantToken,
};

/// A corrupt-row error for `table` row `id`, column `column`.
pub(crate) fn corrupt(
    table: &str,
    id: impl std::fmt::Display,
    column: &str,
    why: impl std::fmt::Display,
) -> StoreError {
    StoreError::Corrupt(format!("{table} row {id}: column {column}: {why}"))
}

/// Parses a state name stored in `column`.
pub(crate) fn parse<T: std::str::FromStr>(table: &str, id: &str, column: &str, v: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| corrupt(table, id, column, e))
}

/// Decodes a JSON column.
fn json<T: DeserializeOwned>(table: &str, id: &str, column: &str, v: &str) -> Result<T> {
    serde_json::from_str(v).map_err(|e| corrupt(table, id, column, e))
}

/// A non-negative integer column.
fn unsigned<T: TryFrom<i64>>(table: &str, id: &str, column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(table, id, column, format!("{v} is out of range")))
}

/// A subscription's integer for an INT column (checked by the API; an
/// out-of-range value is refused, not wrapped).
pub(crate) fn int(v: u32, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| StoreError::Other(format!("{what} {v} does not fit the column")))
}

/// A subscription's integer for a BIGINT column.
pub(crate) fn bigint(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Other(format!("{what} {v} does not fit the column")))
}

/// Serialises a map or list of strings for a JSON column.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("strings and numbers serialize")
}

#[derive(sqlx::FromRow)]
pub(crate) struct SubscriptionRow {
    pub id: String,
    pub url: String,
    pub event_types: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub headers: String,
    pub rate_limit: Option<i32>,
    pub max_attempts: i32,
    pub retry_initial_delay_ms: i64,
    pub retry_multiplier: f64,
    pub retry_max_delay_ms: i64,
    pub timeout_ms: i64,
    pub plugins: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub tenant_id: Option<String>,
    pub channels: Option<String>,
    pub ordering: String,
    pub ordering_on_dead: String,
    pub egress: Option<String>,
    #[sqlx(flatten)]
    pub health: HealthRow,
}

/// The circuit-breaker columns of a subscription.
#[derive(sqlx::FromRow)]
pub(crate) struct HealthRow {
    pub circuit_state: String,
    pub consecutive_failures: i32,
    pub circuit_opened_at: Option<i64>,
    pub circuit_next_probe_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

impl TryFrom<SubscriptionRow> for Subscription {
    type Error = StoreError;
    fn try_from(r: SubscriptionRow) -> Result<Self> {
        const T: &str = "subscriptions";
        let id = r.id.as_str();
        let h = r.health;
        Ok(Subscription {
            event_types: json(T, id, "event_types", &r.event_types)?,
            headers: json(T, id, "headers", &r.headers)?,
            plugins: json(T, id, "plugins", &r.plugins)?,
            channels: r
                .channels
                .as_deref()
                .map(|c| json(T, id, "channels", c))
                .transpose()?,
            tenant_id: r.tenant_id,
            ordering: parse(T, id, "ordering", &r.ordering)?,
            ordering_on_dead: parse(T, id, "ordering_on_dead", &r.ordering_on_dead)?,
            egress: super::egress::read(id, r.egress.as_deref())?,
            status: parse(T, id, "status", &r.status)?,
            rate_limit: r
                .rate_limit
                .map(|v| unsigned(T, id, "rate_limit", v.into()))
                .transpose()?,
            max_attempts: unsigned(T, id, "max_attempts", r.max_attempts.into())?,
            retry: RetryPolicy {
                initial_delay_ms: unsigned(
                    T,
                    id,
                    "retry_initial_delay_ms",
                    r.retry_initial_delay_ms,
                )?,
                multiplier: r.retry_multiplier,
                max_delay_ms: unsigned(T, id, "retry_max_delay_ms", r.retry_max_delay_ms)?,
            },
            timeout_ms: unsigned(T, id, "timeout_ms", r.timeout_ms)?,
            health: Health {
                circuit_state: parse(T, id, "circuit_state", &h.circuit_state)?,
                consecutive_failures: h.consecutive_failures,
                circuit_opened_at: h.circuit_opened_at,
                circuit_next_probe_at: h.circuit_next_probe_at,
                last_success_at: h.last_success_at,
                disabled_reason: h.disabled_reason,
            },
            url: r.url,
            secret: r.secret.into(),
            previous_secret: r.previous_secret.map(Into::into),
            previous_secret_expires_at: r.previous_secret_expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            id: r.id,
        })
    }
}

/// Converts every row, stopping at the first corrupt one.
pub(crate) fn all<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    pub id: String,
    pub kind: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub source: Option<String>,
    pub data: String,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub tenant_id: Option<String>,
    pub channels: Option<String>,
    pub ordering_key: Option<String>,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self> {
        let kind = match r.kind.as_str() {
            "event" => EventKind::Event,
            "task" => EventKind::Task,
            other => {
                return Err(corrupt(
                    "events",
                    &r.id,
                    "kind",
                    format!("unknown kind {other:?}"),
                ));
            }
        };
        let channels = match r.channels.as_deref() {
            Some(c) => json("events", &r.id, "channels", c)?,
            None => Vec::new(),
        };
        Ok(Event {
            channels,
            tenant_id: r.tenant_id,
            ordering_key: r.ordering_key,
            id: r.id,
            kind,
            event_type: r.event_type,
            source: r.source,
            data: r.data,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub subscription_id: Option<String>,
    pub url: String,
    pub method: String,
    pub state: String,
    pub run: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(DeliveryRecord {
            state: parse("deliveries", &r.id.to_string(), "state", &r.state)?,
            id: r.id,
            event_id: r.event_id,
            subscription_id: r.subscription_id,
            url: r.url,
            method: r.method,
            run: r.run,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            next_attempt_at: r.next_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            delivered_at: r.delivered_at,
        })
    }
}

/// An endpoint's circuit and status, read under lock by a completion.
#[derive(sqlx::FromRow)]
pub(crate) struct EndpointRow {
    pub id: String,
    pub circuit_state: String,
    pub consecutive_failures: i32,
    pub circuit_opened_at: Option<i64>,
    pub circuit_next_probe_at: Option<i64>,
    pub status: String,
    pub last_success_at: Option<i64>,
    /// The database's clock, when the read asked for it.
    #[sqlx(default)]
    pub now: Option<i64>,
}

impl TryFrom<EndpointRow> for EndpointBefore {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<Self> {
        const T: &str = "subscriptions";
        Ok(EndpointBefore {
            circuit: CircuitRow {
                state: parse(T, &r.id, "circuit_state", &r.circuit_state)?,
                consecutive_failures: r.consecutive_failures,
                opened_at: r.circuit_opened_at,
                next_probe_at: r.circuit_next_probe_at,
            },
            status: parse(T, &r.id, "status", &r.status)?,
            last_success_at: r.last_success_at,
            id: r.id,
        })
    }
}

/// A dead delivery with its event's type.
#[derive(sqlx::FromRow)]
pub(crate) struct DeadRow {
    #[sqlx(flatten)]
    pub delivery: DeliveryRow,
    pub event_type: String,
    pub tenant_id: Option<String>,
}

impl TryFrom<DeadRow> for DeadLetter {
    type Error = StoreError;
    fn try_from(r: DeadRow) -> Result<Self> {
        Ok(DeadLetter {
            delivery: r.delivery.try_into()?,
            event_type: r.event_type,
            tenant_id: r.tenant_id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: String,
    pub name: Option<String>,
    pub metadata: String,
    pub rate_limit: Option<i32>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(Tenant {
            rate_limit: r
                .rate_limit
                .map(|v| unsigned("tenants", &r.id, "rate_limit", v.into()))
                .transpose()?,
            id: r.id,
            name: r.name,
            metadata: r.metadata,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: String,
    pub tenant_id: String,
    pub token_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<TokenRow> for TenantToken {
    fn from(r: TokenRow) -> Self {
        TenantToken {
            id: r.id,
            tenant_id: r.tenant_id,
            token_hash: r.token_hash,
            description: r.description,
            expires_at: r.expires_at,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub delivery_id: i64,
    pub event_id: String,
    pub subscription_id: Option<String>,
    pub run: i32,
    pub attempt: i32,
    pub url: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
    pub created_at: i64,
}

impl TryFrom<AttemptRow> for AttemptRecord {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<Self> {
        Ok(AttemptRecord {
            delivery_id: r.delivery_id,
            event_id: r.event_id,
            subscription_id: r.subscription_id,
            run: r.run,
            attempt: r.attempt,
            url: r.url,
            status_code: r.status_code,
            error: r.error,
            duration_ms: r.duration_ms,
            response_body: r.response_body,
            created_at: r.created_at,
        })
    }
}

/// The columns a claim returns: the delivery, its event, its live
/// subscription (if any; `claim_columns!` names them `s_*`) and its inline
/// destination.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow {
    pub id: i64,
    pub run: i32,
    pub attempts: i32,
    pub claims: i32,
    pub max_attempts: i32,
    pub subscription_id: Option<String>,
    pub dest_url: Option<String>,
    pub dest_method: Option<String>,
    pub dest_headers: Option<String>,
    pub dest_secret: Option<String>,
    pub body: Option<String>,
    pub dest_type: Option<String>,
    pub e_id: String,
    pub e_kind: String,
    pub e_type: String,
    pub e_source: Option<String>,
    pub e_data: String,
    pub e_idempotency_key: Option<String>,
    pub e_created_at: i64,
    pub e_tenant_id: Option<String>,
    pub e_channels: Option<String>,
    pub e_ordering_key: Option<String>,
    pub s_id: Option<String>,
    pub s_url: Option<String>,
    pub s_event_types: Option<String>,
    pub s_secret: Option<String>,
    pub s_previous_secret: Option<String>,
    pub s_previous_secret_expires_at: Option<i64>,
    pub s_headers: Option<String>,
    pub s_rate_limit: Option<i32>,
    pub s_max_attempts: Option<i32>,
    pub s_retry_initial_delay_ms: Option<i64>,
    pub s_retry_multiplier: Option<f64>,
    pub s_retry_max_delay_ms: Option<i64>,
    pub s_timeout_ms: Option<i64>,
    pub s_plugins: Option<String>,
    pub s_status: Option<String>,
    pub s_created_at: Option<i64>,
    pub s_updated_at: Option<i64>,
    pub s_egress: Option<String>,
}

impl TryFrom<ClaimRow> for ClaimedDelivery {
    type Error = StoreError;
    fn try_from(r: ClaimRow) -> Result<Self> {
        let event = Event::try_from(EventRow {
            id: r.e_id,
            kind: r.e_kind,
            event_type: r.e_type,
            source: r.e_source,
            data: r.e_data,
            idempotency_key: r.e_idempotency_key,
            created_at: r.e_created_at,
            tenant_id: r.e_tenant_id,
            channels: r.e_channels,
            ordering_key: r.e_ordering_key,
        })?;
        // The LEFT JOIN's columns are all set when `s_id` is: a NULL among
        // them is as corrupt as a bad value.
        let subscription = match r.s_id {
            None => None,
            Some(id) => {
                let missing = |c: &str| corrupt("subscriptions", &id, c, "NULL");
                let row = SubscriptionRow {
                    url: r.s_url.ok_or_else(|| missing("url"))?,
                    event_types: r.s_event_types.ok_or_else(|| missing("event_types"))?,
                    secret: r.s_secret.ok_or_else(|| missing("secret"))?,
                    previous_secret: r.s_previous_secret,
                    previous_secret_expires_at: r.s_previous_secret_expires_at,
                    headers: r.s_headers.ok_or_else(|| missing("headers"))?,
                    rate_limit: r.s_rate_limit,
                    max_attempts: r.s_max_attempts.ok_or_else(|| missing("max_attempts"))?,
                    retry_initial_delay_ms: r
                        .s_retry_initial_delay_ms
                        .ok_or_else(|| missing("retry_initial_delay_ms"))?,
                    retry_multiplier: r
                        .s_retry_multiplier
                        .ok_or_else(|| missing("retry_multiplier"))?,
                    retry_max_delay_ms: r
                        .s_retry_max_delay_ms
                        .ok_or_else(|| missing("retry_max_delay_ms"))?,
                    timeout_ms: r.s_timeout_ms.ok_or_else(|| missing("timeout_ms"))?,
                    plugins: r.s_plugins.ok_or_else(|| missing("plugins"))?,
                    status: r.s_status.ok_or_else(|| missing("status"))?,
                    created_at: r.s_created_at.ok_or_else(|| missing("created_at"))?,
                    updated_at: r.s_updated_at.ok_or_else(|| missing("updated_at"))?,
                    // Routing is done, and the completion reads how the
                    // key goes on: the claim needs none of these.
                    tenant_id: None,
                    channels: None,
                    ordering: "none".into(),
                    ordering_on_dead: "skip".into(),
                    egress: r.s_egress,
                    // A claim does not need the endpoint's health: the
                    // completion reads it under lock.
                    health: HealthRow {
                        circuit_state: "closed".into(),
                        consecutive_failures: 0,
                        circuit_opened_at: None,
                        circuit_next_probe_at: None,
                        last_success_at: None,
                        disabled_reason: None,
                    },
                    id,
                };
                Some(Subscription::try_from(row)?)
            }
        };
        let headers = r
            .dest_headers
            .map(|h| {
                json::<BTreeMap<String, String>>(
                    "deliveries",
                    &r.id.to_string(),
                    "dest_headers",
                    &h,
                )
            })
            .transpose()?;
        Ok(ClaimedDelivery {
            id: r.id,
            run: r.run,
            attempt: r.attempts,
            claim: r.claims,
            max_attempts: r.max_attempts,
            event,
            subscription,
            subscription_id: r.subscription_id,
            inline: InlineDestination {
                url: r.dest_url,
                method: r.dest_method,
                headers,
                secret: r.dest_secret.map(Into::into),
                body: r.body,
                event_type: r.dest_type,
            },
        })
    }
}

/// A delivery row `insert_events` created leased (its event and
/// subscription are never NULL then: the columns are optional to decode).
#[derive(sqlx::FromRow)]
pub(crate) struct CreatedRow {
    id: i64,
    run: i32,
    attempts: i32,
    claims: i32,
    max_attempts: i32,
    event_id: Option<String>,
    subscription_id: Option<String>,
}

impl CreatedRow {
    /// The lease, when the row was created leased.
    pub(crate) fn leased(self) -> Option<LeasedDelivery> {
        Some(LeasedDelivery {
            token: ClaimToken {
                id: self.id,
                run: self.run,
                attempt: self.attempts,
                claim: self.claims,
            },
            max_attempts: self.max_attempts,
            event_id: self.event_id?,
            subscription_id: self.subscription_id?,
        })
    }
}
