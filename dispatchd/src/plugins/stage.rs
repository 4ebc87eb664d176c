//! Where plugins meet deliveries: the request a transform chain sees and
//! what its answer becomes, and the destinations routers see and the
//! deliveries their answer becomes. Everything a plugin returns is checked
//! by the same rules as the API's input before it is stored.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;

use super::{BodyFormat, ChainOutcome, Destination, Event, PluginFailure, Plugins, Request};
use crate::model::{ClaimedDelivery, InlineDestination, NewDelivery, Subscription};
use crate::validate;

/// The event as a plugin sees it.
pub fn event_of(e: &crate::model::Event) -> Event {
    Event {
        id: e.id.clone(),
        event_type: e.event_type.clone(),
        source: e.source.clone(),
        payload: e.data.clone(),
        received_at: e.created_at.max(0) as u64,
    }
}

/// A subscription's destination as a router sees it.
pub fn destination_of(s: &Subscription) -> Destination {
    Destination {
        subscription_id: s.id.clone(),
        url: s.url.clone(),
        method: "POST".into(),
        headers: s
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// What a delivery's transform stage decided.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Send this request, and store it for later attempts.
    Deliver(InlineDestination),
    /// Send nothing.
    Drop { plugin: String, reason: String },
    /// A plugin failed: this attempt fails, without reaching the endpoint.
    Fail(PluginFailure),
}

/// Whether the subscription's chain still has to run for this delivery: it
/// has one, and no earlier attempt stored its output.
pub fn needs_transform(d: &ClaimedDelivery) -> bool {
    d.inline.body.is_none()
        && d.subscription
            .as_ref()
            .is_some_and(|s| !s.plugins.is_empty())
}

/// Runs the subscription's chain over the request dispatchd would send.
pub async fn transform(plugins: &Plugins, d: &ClaimedDelivery) -> Transform {
    let Some(sub) = d.subscription.as_ref() else {
        return Transform::Fail(PluginFailure::new("", "the subscription was deleted"));
    };
    let request = Request {
        event_type: d.event.event_type.clone(),
        payload: d.event.data.clone(),
        format: BodyFormat::Envelope,
        destination: Destination {
            subscription_id: sub.id.clone(),
            url: d.inline.url.clone().unwrap_or_else(|| sub.url.clone()),
            method: d.inline.method.clone().unwrap_or_else(|| "POST".into()),
            headers: d
                .inline
                .headers
                .as_ref()
                .unwrap_or(&sub.headers)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
    };
    match plugins
        .transform(&sub.plugins, event_of(&d.event), request)
        .await
    {
        Ok(ChainOutcome::Deliver(r)) => match inline_of(&d.event, r) {
            Ok(inline) => Transform::Deliver(inline),
            Err(message) => Transform::Fail(PluginFailure::new(
                sub.plugins.last().map_or("", |s| s.as_str()),
                format!("returned a request that cannot be sent: {message}"),
            )),
        },
        Ok(ChainOutcome::Drop { plugin, reason }) => Transform::Drop { plugin, reason },
        Err(f) => Transform::Fail(f),
    }
}

/// The stored form of a chain's request: checked like API input, the body
/// built once (so every attempt sends the same bytes).
pub fn inline_of(event: &crate::model::Event, r: Request) -> Result<InlineDestination, String> {
    validate::event_type(&r.event_type)?;
    validate::url("url", &r.destination.url)?;
    let method = validate::method(&r.destination.method)?;
    let headers: BTreeMap<String, String> = r.destination.headers.into_iter().collect();
    validate::headers(&headers)?;
    let body = match r.format {
        BodyFormat::Envelope => {
            let data = RawValue::from_string(r.payload).map_err(|e| {
                format!("payload is not JSON ({e}); return format `raw` to send it as it is")
            })?;
            String::from_utf8(crate::deliver::envelope_for(event, &r.event_type, &data))
                .expect("serde_json writes UTF-8")
        }
        BodyFormat::Raw => r.payload,
    };
    Ok(InlineDestination {
        url: Some(r.destination.url),
        method: Some(method),
        headers: Some(headers),
        secret: None,
        body: Some(body),
        event_type: Some(r.event_type),
    })
}

/// Checks a router's answer as the daemon does before storing its
/// deliveries: each destination names one of the `known` subscriptions,
/// once, with a valid URL, method and headers.
pub fn check_routed(known: &[&str], destinations: &[Destination]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for d in destinations {
        if !known.contains(&d.subscription_id.as_str()) {
            return Err(format!(
                "returned subscription {:?}, which does not exist",
                d.subscription_id
            ));
        }
        if !seen.insert(d.subscription_id.as_str()) {
            return Err(format!(
                "returned subscription {:?} twice",
                d.subscription_id
            ));
        }
        validate::url("url", &d.url)?;
        validate::method(&d.method)?;
        validate::headers(&d.headers.iter().cloned().collect())?;
    }
    Ok(())
}

/// The deliveries a router's answer stands for. Each destination must name
/// a subscription (once); what differs from that subscription is stored as
/// the delivery's own destination.
pub fn deliveries_from(
    subscriptions: &[Subscription],
    event: &crate::model::Event,
    destinations: Vec<Destination>,
) -> Result<Vec<NewDelivery>, String> {
    let known: Vec<&str> = subscriptions.iter().map(|s| s.id.as_str()).collect();
    check_routed(&known, &destinations)?;
    let mut out = Vec::with_capacity(destinations.len());
    for d in destinations {
        let sub = subscriptions
            .iter()
            .find(|s| s.id == d.subscription_id)
            .expect("check_routed: every destination names a subscription");
        let method = validate::method(&d.method)?;
        let headers: BTreeMap<String, String> = d.headers.into_iter().collect();
        out.push(NewDelivery {
            subscription_id: Some(sub.id.clone()),
            inline: InlineDestination {
                url: (d.url != sub.url).then_some(d.url),
                method: (method != "POST").then_some(method),
                headers: (headers != sub.headers).then_some(headers),
                ..Default::default()
            },
            max_attempts: sub.max_attempts,
            // Each destination keeps its own order of the key.
            ordering_key: sub.ordering_key_for(event),
            leased: false,
        });
    }
    Ok(out)
}

/// The event and request a dry run (`dispatchd plugin run`) starts from:
/// `raw` is an event as `POST /events` takes it.
pub fn dry_run_input(raw: &str, url: &str) -> Result<(crate::model::Event, Request), String> {
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
    let event_type = v["type"]
        .as_str()
        .ok_or("the event needs a \"type\" string")?
        .to_string();
    let data = v.get("data").ok_or("the event needs \"data\"")?.to_string();
    let event = crate::model::Event {
        id: v["id"].as_str().unwrap_or("evt_dry_run").to_string(),
        kind: crate::model::EventKind::Event,
        event_type: event_type.clone(),
        source: v["source"].as_str().map(String::from),
        data: data.clone(),
        idempotency_key: None,
        created_at: crate::model::now_ms(),
        tenant_id: v["tenant_id"].as_str().map(String::from),
        channels: Vec::new(),
        ordering_key: v["ordering_key"].as_str().map(String::from),
    };
    let request = Request {
        event_type,
        payload: data,
        format: BodyFormat::Envelope,
        destination: Destination {
            subscription_id: "dry-run".into(),
            url: url.to_string(),
            method: "POST".into(),
            headers: Vec::new(),
        },
    };
    Ok((event, request))
}

/// Runs a plugin once and describes the outcome as JSON: for a transformer
/// the exact request that would be sent (body included), for a router the
/// destinations.
pub fn dry_run(
    plugin: super::Loaded,
    event: &crate::model::Event,
    request: Request,
) -> Result<serde_json::Value, PluginFailure> {
    use serde_json::json;
    let name = plugin.name.to_string();
    let destinations = vec![request.destination.clone()];
    match super::run_once(plugin, &event_of(event), request, destinations)? {
        super::DryRun::Transformed(ChainOutcome::Deliver(r)) => {
            let inline = inline_of(event, r).map_err(|m| {
                PluginFailure::new(
                    &name,
                    format!("returned a request that cannot be sent: {m}"),
                )
            })?;
            Ok(json!({
                "decision": "deliver",
                "event_type": inline.event_type,
                "method": inline.method,
                "url": inline.url,
                "headers": inline.headers,
                "body": inline.body,
            }))
        }
        super::DryRun::Transformed(ChainOutcome::Drop { reason, .. }) => {
            Ok(json!({"decision": "drop", "reason": reason}))
        }
        super::DryRun::Routed(dests) => Ok(json!({
            "decision": "route",
            "destinations": dests.iter().map(|d| json!({
                "subscription_id": d.subscription_id,
                "url": d.url,
                "method": d.method,
                "headers": d.headers,
            })).collect::<Vec<_>>(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Health, RetryPolicy};

    fn event() -> crate::model::Event {
        crate::model::Event {
            id: "e1".into(),
            kind: EventKind::Event,
            event_type: "order.created".into(),
            source: None,
            data: r#"{"a":1}"#.into(),
            idempotency_key: None,
            created_at: 0,
            tenant_id: None,
            channels: Vec::new(),
            ordering_key: None,
        }
    }

    fn request(headers: Vec<(String, String)>, payload: &str, format: BodyFormat) -> Request {
        Request {
            event_type: "order.renamed".into(),
            payload: payload.into(),
            format,
            destination: Destination {
                subscription_id: "s1".into(),
                url: "https://example.com/x".into(),
                method: "PUT".into(),
                headers,
            },
        }
    }

    fn sub(id: &str) -> Subscription {
        Subscription {
            id: id.into(),
            url: "https://example.com/hook".into(),
            event_types: vec!["*".into()],
            secret: "s".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            headers: BTreeMap::new(),
            rate_limit: None,
            max_attempts: 3,
            retry: RetryPolicy {
                initial_delay_ms: 1,
                multiplier: 1.0,
                max_delay_ms: 1,
            },
            timeout_ms: 1000,
            plugins: vec![],
            tenant_id: None,
            channels: None,
            ordering: crate::model::Ordering::None,
            ordering_on_dead: crate::model::OnDead::Skip,
            egress: Default::default(),
            status: crate::model::SubscriptionStatus::Active,
            created_at: 0,
            updated_at: 0,
            health: Health::default(),
        }
    }

    #[test]
    fn chain_output_becomes_the_stored_request() {
        let out = inline_of(
            &event(),
            request(vec![], r#"{"b":2}"#, BodyFormat::Envelope),
        )
        .unwrap();
        assert_eq!(out.method.as_deref(), Some("PUT"));
        assert_eq!(out.event_type.as_deref(), Some("order.renamed"));
        let body: serde_json::Value = serde_json::from_str(out.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["type"], "order.renamed");
        assert_eq!(body["data"], serde_json::json!({"b": 2}));
        let raw = inline_of(&event(), request(vec![], "plain text", BodyFormat::Raw)).unwrap();
        assert_eq!(raw.body.as_deref(), Some("plain text"));
    }

    #[test]
    fn chain_output_obeys_the_api_rules() {
        let sig = vec![("webhook-signature".to_string(), "forged".to_string())];
        let e = inline_of(&event(), request(sig, "{}", BodyFormat::Envelope)).unwrap_err();
        assert!(e.contains("set by dispatchd"), "{e}");
        let e = inline_of(&event(), request(vec![], "not json", BodyFormat::Envelope)).unwrap_err();
        assert!(e.contains("payload is not JSON"), "{e}");
        let mut r = request(vec![], "{}", BodyFormat::Envelope);
        r.destination.url = "file:///etc/passwd".into();
        assert!(inline_of(&event(), r).is_err());
    }

    #[test]
    fn router_answers_name_real_subscriptions_once() {
        let mut subs = [sub("s1"), sub("s2")];
        subs[1].ordering = crate::model::Ordering::PerKey;
        let mut keyed = event();
        keyed.ordering_key = Some("acct-1".into());
        let mut moved = destination_of(&subs[0]);
        moved.url = "https://eu.example.com/hook".into();
        let out = deliveries_from(&subs, &keyed, vec![moved, destination_of(&subs[1])]).unwrap();
        // Only the per_key subscription's delivery waits its key's turn.
        assert_eq!(out[0].ordering_key, None);
        assert_eq!(out[1].ordering_key.as_deref(), Some("acct-1"));
        assert_eq!(
            out[0].inline.url.as_deref(),
            Some("https://eu.example.com/hook")
        );
        assert_eq!(
            out[1].inline,
            InlineDestination::default(),
            "unchanged: nothing stored"
        );
        let e = deliveries_from(
            &subs,
            &keyed,
            vec![destination_of(&subs[0]), destination_of(&subs[0])],
        )
        .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let mut ghost = destination_of(&subs[0]);
        ghost.subscription_id = "nope".into();
        assert!(
            deliveries_from(&subs, &keyed, vec![ghost])
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
