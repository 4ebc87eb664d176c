//! Write [dispatch](https://github.com/) plugins in Rust.
//!
//! A plugin is a WebAssembly component implementing one world of
//! `dispatch:plugin@0.1.0` (`wit/plugin.wit`):
//!
//! - a **transformer** runs once per delivery, in a subscription's
//!   `plugins` chain: it may rewrite the payload, event type, headers, URL
//!   and method, drop the delivery, or fail (the attempt is retried);
//! - a **router** runs once per event at fan-out: it may drop, change or
//!   add destinations.
//!
//! Implement [`Transform`] (or [`Route`]) and export it with
//! [`export_transformer!`] (or [`export_router!`]):
//!
//! ```
//! use dispatch_plugin::{Decision, Event, Request, Transform, export_transformer};
//!
//! struct Shout;
//!
//! impl Transform for Shout {
//!     fn transform(_event: Event, mut request: Request) -> Result<Decision, String> {
//!         request.event_type = request.event_type.to_uppercase();
//!         request.destination.headers.push(("x-shouted".into(), "yes".into()));
//!         Ok(Decision::Deliver(request))
//!     }
//! }
//!
//! export_transformer!(Shout);
//!
//! # fn main() {
//! # use dispatch_plugin::{BodyFormat, Destination};
//! # let event = Event { id: "e1".into(), event_type: "order.created".into(), source: None,
//! #     payload: "{}".into(), received_at: 0 };
//! # let request = Request { event_type: "order.created".into(), payload: "{}".into(),
//! #     format: BodyFormat::Envelope, destination: Destination { subscription_id: "s".into(),
//! #     url: "https://example.com/hook".into(), method: "POST".into(), headers: vec![] } };
//! // The trait is plain Rust: test a plugin natively, without a runtime.
//! let Ok(Decision::Deliver(out)) = Shout::transform(event, request) else { panic!() };
//! assert_eq!(out.event_type, "ORDER.CREATED");
//! # }
//! ```
//!
//! Build it as a component with `cargo build --release --target
//! wasm32-wasip2` (crate type `cdylib`), then declare it in dispatch.toml.
//! `plugin-sdk/README.md` has the whole recipe, for JavaScript and Python
//! too.

#![deny(missing_docs)]

/// Bindings of the `transformer` world.
#[allow(missing_docs)]
pub mod transformer {
    wit_bindgen::generate!({
        path: "wit",
        world: "transformer",
        pub_export_macro: true,
        export_macro_name: "__export_transformer",
        default_bindings_module: "dispatch_plugin::transformer",
    });
}

/// Bindings of the `router` world (sharing the transformer's types).
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod router {
    wit_bindgen::generate!({
        path: "wit",
        world: "router",
        pub_export_macro: true,
        export_macro_name: "__export_router",
        default_bindings_module: "dispatch_plugin::router",
        with: {
            "dispatch:plugin/types@0.1.0": crate::transformer::dispatch::plugin::types,
            "dispatch:plugin/host@0.1.0": crate::transformer::dispatch::plugin::host,
        },
    });
}

pub use transformer::dispatch::plugin::host::Level;
pub use transformer::dispatch::plugin::types::{BodyFormat, Decision, Destination, Event, Request};

/// A plugin in a subscription's chain, run once per delivery.
pub trait Transform {
    /// `request` is what dispatchd would send (or what the previous plugin
    /// returned). Return `Decision::Deliver` with it, changed or not,
    /// `Decision::Drop(reason)` to send nothing, or `Err` to fail this
    /// attempt (it is retried, then dead-lettered).
    fn transform(event: Event, request: Request) -> Result<Decision, String>;
}

/// A plugin that chooses an event's destinations, run once per event.
pub trait Route {
    /// `destinations` has one entry per subscription the event matched.
    /// Return those to deliver to: drop entries, change their `url`,
    /// `method` or `headers`, or add entries naming other subscriptions.
    fn route(event: Event, destinations: Vec<Destination>) -> Result<Vec<Destination>, String>;
}

/// Exports a [`Transform`] implementation as the component's `transform`.
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ident) => {
        impl $crate::transformer::Guest for $plugin {
            fn transform(
                event: $crate::Event,
                request: $crate::Request,
            ) -> ::core::result::Result<$crate::Decision, ::std::string::String> {
                <$plugin as $crate::Transform>::transform(event, request)
            }
        }
        $crate::transformer::__export_transformer!($plugin with_types_in $crate::transformer);
    };
}

/// Exports a [`Route`] implementation as the component's `route`.
#[macro_export]
macro_rules! export_router {
    ($plugin:ident) => {
        impl $crate::router::Guest for $plugin {
            fn route(
                event: $crate::Event,
                destinations: ::std::vec::Vec<$crate::Destination>,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Destination>, ::std::string::String>
            {
                <$plugin as $crate::Route>::route(event, destinations)
            }
        }
        $crate::router::__export_router!($plugin with_types_in $crate::router);
    };
}

/// One of this plugin's settings (`[plugins.NAME.settings]`): strings as
/// they are, other values as JSON text.
pub fn setting(key: &str) -> Option<String> {
    transformer::dispatch::plugin::host::setting(key)
}

/// Writes a line to dispatchd's log, tagged with the plugin's name (at most
/// 20 lines per call are kept).
pub fn log(level: Level, message: &str) {
    transformer::dispatch::plugin::host::log(level, message)
}

impl Request {
    /// The value of header `name` (case-insensitive), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.destination
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name`, replacing any value it had.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.destination
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.destination
            .headers
            .push((name.to_string(), value.into()));
    }
}
