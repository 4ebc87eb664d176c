//! Event-type patterns: which subscriptions an event goes to.
//!
//! A pattern is an exact type (`order.created`), a prefix wildcard over
//! whole segments (`order.*` matches `order.created` and
//! `order.item.added`, not `order` or `orders.created`), or `*` for all.
//! dispatchd's operational events (`dispatch.*`) reach only patterns that
//! name them: `*` and every pattern outside `dispatch.` skip them, so a
//! subscription opts in.

use crate::model::{Event, Subscription};

/// Whether `event_type` matches `pattern`.
pub fn matches(pattern: &str, event_type: &str) -> bool {
    let operational = crate::catalogue::builtin::PREFIX;
    if event_type.starts_with(operational) && !pattern.starts_with(operational) {
        return false;
    }
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// Checks a pattern when a subscription is written.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let body = pattern.strip_suffix(".*").unwrap_or(pattern);
    if body.is_empty() || body.len() > 200 {
        return Err(format!(
            "event type pattern {pattern:?} must be 1 to 200 characters"
        ));
    }
    if body.contains('*') {
        return Err(format!(
            "event type pattern {pattern:?}: `*` is only allowed alone or as a final `.*` segment"
        ));
    }
    crate::validate::event_type(body).map_err(|e| format!("event type pattern {pattern:?}: {e}"))
}

/// Whether `event` goes to `s`: the same tenant (or both without one), a
/// matching type pattern, and, when the subscription lists channels, one
/// channel in common.
pub fn accepts(s: &Subscription, event: &Event) -> bool {
    s.tenant_id == event.tenant_id
        && s.event_types.iter().any(|p| matches(p, &event.event_type))
        && s.channels
            .as_ref()
            .is_none_or(|wanted| wanted.iter().any(|c| event.channels.contains(c)))
}

/// The subscriptions `event` fans out to, out of `subscriptions` (usually
/// the snapshot's lane of its tenant). Paused and disabled ones included:
/// their deliveries are created parked, and flow when the subscription is
/// resumed or enabled.
pub fn select<'a>(
    subscriptions: &'a [Subscription],
    event: &'a Event,
) -> impl Iterator<Item = &'a Subscription> + 'a {
    subscriptions.iter().filter(move |s| accepts(s, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_segments() {
        assert!(matches("order.*", "order.created"));
        assert!(matches("order.*", "order.item.added"));
        assert!(!matches("order.*", "invoice.paid"));
        assert!(!matches("order.*", "order"));
        assert!(!matches("order.*", "orders.created"));
        assert!(!matches("order.*", "order."));
        assert!(matches("*", "anything"));
        assert!(matches("invoice.paid", "invoice.paid"));
        assert!(!matches("invoice.paid", "invoice.paid.late"));
    }

    #[test]
    fn operational_events_reach_only_patterns_that_name_them() {
        assert!(!matches("*", "dispatch.delivery.dead"));
        assert!(matches("dispatch.*", "dispatch.delivery.dead"));
        assert!(matches("dispatch.endpoint.*", "dispatch.endpoint.disabled"));
        assert!(!matches("dispatch.endpoint.*", "dispatch.delivery.dead"));
    }

    #[test]
    fn patterns_are_validated() {
        assert!(validate_pattern("order.*").is_ok());
        assert!(validate_pattern("*").is_ok());
        assert!(validate_pattern("order.created").is_ok());
        assert!(validate_pattern("or*der").is_err());
        assert!(validate_pattern("").is_err());
        assert!(validate_pattern("*.created").is_err());
        assert!(validate_pattern("order created").is_err());
    }
}
