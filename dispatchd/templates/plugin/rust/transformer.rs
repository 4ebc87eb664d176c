//! {{name}}: a dispatch transformer. dispatchd runs it once per delivery,
//! in the `plugins` chain of each subscription that lists it, before it
//! signs and sends the request.

use dispatch_plugin::{
    Decision, Event, Level, Request, Transform, export_transformer, log, setting,
};

struct Plugin;

impl Transform for Plugin {
    /// The hook. `request` is what dispatchd would send (or what the
    /// previous plugin of the chain returned). Return it, changed or not,
    /// as `Decision::Deliver`; `Decision::Drop(reason)` sends nothing; an
    /// `Err` fails this attempt (retried, then dead-lettered).
    fn transform(event: Event, mut request: Request) -> Result<Decision, String> {
        if event.event_type.starts_with("test.") {
            return Ok(Decision::Drop("test events are not delivered".into()));
        }
        // `[plugins.NAME.settings]` in dispatch.toml: strings as they are,
        // anything else as JSON text.
        let tag = setting("tag").unwrap_or_else(|| "{{name}}".into());
        request.set_header("x-processed-by", tag);
        log(Level::Debug, &format!("processed {}", event.id));
        Ok(Decision::Deliver(request))
    }
}

export_transformer!(Plugin);
