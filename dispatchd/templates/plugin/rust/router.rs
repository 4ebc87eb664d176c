//! {{name}}: a dispatch router. dispatchd runs it once per event, at
//! fan-out, before the event's deliveries are stored.

use dispatch_plugin::{Destination, Event, Level, Route, export_router, log, setting};

struct Plugin;

impl Route for Plugin {
    /// The hook. `destinations` holds one entry per subscription the event
    /// matched. Return those to deliver to: remove entries, change their
    /// `url`, `method` or `headers`, or add entries naming other
    /// subscriptions. An empty list drops the event; an `Err` is recorded
    /// on it.
    fn route(event: Event, destinations: Vec<Destination>) -> Result<Vec<Destination>, String> {
        if event.event_type.starts_with("test.") {
            return Ok(Vec::new());
        }
        // `[plugins.NAME.settings]` in dispatch.toml: strings as they are,
        // anything else as JSON text.
        if let Some(only) = setting("only_subscription") {
            return Ok(destinations
                .into_iter()
                .filter(|d| d.subscription_id == only)
                .collect());
        }
        log(
            Level::Debug,
            &format!("routed {} to {} destinations", event.id, destinations.len()),
        );
        Ok(destinations)
    }
}

export_router!(Plugin);
