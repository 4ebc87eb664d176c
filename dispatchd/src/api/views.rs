//! Domain records to wire shapes.

use dispatch_wire::{
    AttemptView, CircuitView, DeadLetterView, DeliveryView, EventView, RetryIn, SubscriptionView,
};
use serde_json::value::RawValue;

use crate::model::{
    AttemptRecord, DeliveryRecord, DeliveryState, Event, RetryPolicy, Subscription, rfc3339,
};
use crate::sign;

pub fn raw(data: &str) -> Box<RawValue> {
    RawValue::from_string(data.to_string())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

pub fn delivery(d: &DeliveryRecord) -> DeliveryView {
    let waiting = matches!(d.state, DeliveryState::Pending | DeliveryState::Scheduled);
    DeliveryView {
        id: d.id,
        subscription_id: d.subscription_id.clone(),
        url: d.url.clone(),
        state: d.state,
        attempts: d.attempts,
        max_attempts: d.max_attempts,
        next_attempt_at: waiting.then(|| rfc3339(d.next_attempt_at)),
        last_status_code: d.last_status_code,
        last_error: d.last_error.clone(),
        delivered_at: d.delivered_at.map(rfc3339),
        created_at: rfc3339(d.created_at),
    }
}

pub fn attempt(a: &AttemptRecord) -> AttemptView {
    AttemptView {
        delivery_id: a.delivery_id,
        subscription_id: a.subscription_id.clone(),
        url: a.url.clone(),
        run: a.run,
        attempt: a.attempt,
        status_code: a.status_code,
        error: a.error.clone(),
        duration_ms: a.duration_ms,
        response_body: a.response_body.clone(),
        created_at: rfc3339(a.created_at),
    }
}

pub fn dead_letter(d: &crate::model::DeadLetter) -> DeadLetterView {
    let r = &d.delivery;
    DeadLetterView {
        delivery_id: r.id,
        event_id: r.event_id.clone(),
        event_type: d.event_type.clone(),
        subscription_id: r.subscription_id.clone(),
        tenant_id: d.tenant_id.clone(),
        url: r.url.clone(),
        attempts: r.attempts,
        run: r.run,
        last_status_code: r.last_status_code,
        last_error: r.last_error.clone(),
        died_at: rfc3339(r.updated_at),
        created_at: rfc3339(r.created_at),
    }
}

/// The event's overall status, derived from its deliveries.
pub fn event_status(deliveries: &[DeliveryRecord]) -> &'static str {
    if deliveries.is_empty() {
        "no_subscribers"
    } else if deliveries.iter().any(|d| !d.state.is_final()) {
        "queued"
    } else if deliveries.iter().any(|d| d.state == DeliveryState::Dead) {
        "failed"
    } else {
        "delivered"
    }
}

/// An event and its deliveries; `deprecated` when the catalogue marks its
/// type so.
pub fn event(e: &Event, deliveries: &[DeliveryRecord], deprecated: bool) -> EventView {
    EventView {
        id: e.id.clone(),
        event_type: e.event_type.clone(),
        source: e.source.clone(),
        data: raw(&e.data),
        created_at: rfc3339(e.created_at),
        tenant_id: e.tenant_id.clone(),
        channels: e.channels.clone(),
        ordering_key: e.ordering_key.clone(),
        deprecated,
        status: event_status(deliveries).to_string(),
        deliveries: deliveries.iter().map(delivery).collect(),
    }
}

pub fn retry(r: RetryPolicy) -> RetryIn {
    RetryIn {
        initial_delay_ms: r.initial_delay_ms,
        multiplier: r.multiplier,
        max_delay_ms: r.max_delay_ms,
    }
}

/// `reveal_secret` only on the answer to the create request, which set them:
/// afterwards the secret and header values are masked.
pub fn subscription(s: &Subscription, reveal_secret: bool) -> SubscriptionView {
    SubscriptionView {
        id: s.id.clone(),
        url: s.url.clone(),
        event_types: s.event_types.clone(),
        secret: if reveal_secret {
            s.secret.expose().to_string()
        } else {
            sign::mask(s.secret.expose())
        },
        // Header values often carry credentials: write-only, like the secret.
        headers: if reveal_secret {
            s.headers.clone()
        } else {
            s.headers
                .keys()
                .map(|k| (k.clone(), "********".to_string()))
                .collect()
        },
        rate_limit: s.rate_limit,
        max_attempts: s.max_attempts,
        retry: retry(s.retry),
        timeout_ms: s.timeout_ms,
        plugins: s.plugins.clone(),
        tenant_id: s.tenant_id.clone(),
        channels: s.channels.clone(),
        ordering: s.ordering,
        ordering_on_dead: s.ordering_on_dead,
        signature_scheme: s.egress.signature_scheme,
        // Public: shown always, so receivers can fetch it.
        public_key: s
            .egress
            .signing_key
            .as_ref()
            .filter(|_| s.egress.signature_scheme.ed25519())
            .and_then(|k| sign::ed25519::public_key(k.expose())),
        auth: s.egress.auth.as_ref().map(|a| auth(a, reveal_secret)),
        tls: s.egress.tls.as_ref().map(|t| dispatch_wire::TlsView {
            ca_pem: t.ca_pem.clone(),
            client_cert_pem: t.client_cert_pem.clone(),
            client_key_pem: t.client_key_pem.as_ref().map(|k| shown(k, reveal_secret)),
        }),
        proxy_url: s.egress.proxy_url.clone(),
        status: s.status,
        disabled_reason: s.health.disabled_reason.clone(),
        circuit: CircuitView {
            state: s.health.circuit_state,
            consecutive_failures: s.health.consecutive_failures,
            opened_at: s.health.circuit_opened_at.map(rfc3339),
            next_probe_at: s.health.circuit_next_probe_at.map(rfc3339),
            last_success_at: s.health.last_success_at.map(rfc3339),
        },
        created_at: rfc3339(s.created_at),
        updated_at: rfc3339(s.updated_at),
    }
}

pub fn tenant(t: &crate::model::Tenant) -> dispatch_wire::TenantView {
    dispatch_wire::TenantView {
        id: t.id.clone(),
        name: t.name.clone(),
        // Stored from a checked object; an unreadable one shows as empty.
        metadata: serde_json::from_str(&t.metadata).unwrap_or_default(),
        rate_limit: t.rate_limit,
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    }
}

pub fn token(t: &crate::model::TenantToken) -> dispatch_wire::TenantTokenView {
    dispatch_wire::TenantTokenView {
        id: t.id.clone(),
        description: t.description.clone(),
        expires_at: t.expires_at.map(rfc3339),
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
    }
}

pub fn event_type(t: &crate::model::EventType) -> dispatch_wire::EventTypeView {
    // Stored from checked JSON; an unreadable one shows as absent.
    let json = |v: &Option<String>| v.as_deref().and_then(|s| serde_json::from_str(s).ok());
    dispatch_wire::EventTypeView {
        name: t.name.clone(),
        description: t.description.clone(),
        schema: json(&t.schema),
        deprecated: t.deprecated,
        example: json(&t.example),
        operational: crate::catalogue::builtin::is_operational(&t.name),
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    }
}

/// A write-only value: itself only in the answer that set it.
fn shown(s: &crate::model::Secret, reveal: bool) -> String {
    if reveal {
        s.expose().to_string()
    } else {
        "********".into()
    }
}

/// Endpoint credentials, secrets masked unless just set.
fn auth(a: &crate::model::EndpointAuth, reveal: bool) -> dispatch_wire::EndpointAuthView {
    let shown = |s: &crate::model::Secret| shown(s, reveal);
    match a {
        crate::model::EndpointAuth::Basic { username, password } => {
            dispatch_wire::EndpointAuthView::Basic {
                username: username.clone(),
                password: shown(password),
            }
        }
        crate::model::EndpointAuth::OAuth2(o) => {
            dispatch_wire::EndpointAuthView::Oauth2ClientCredentials {
                token_url: o.token_url.clone(),
                client_id: o.client_id.clone(),
                client_secret: shown(&o.client_secret),
                scope: o.scope.clone(),
                audience: o.audience.clone(),
            }
        }
    }
}
