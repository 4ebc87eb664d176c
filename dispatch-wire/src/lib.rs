//! Wire types of the dispatchd HTTP API.
//!
//! These are the JSON shapes producers, operators and the console see. They
//! live in their own crate so that `dispatch-tui` and the tests can speak the
//! API without linking the daemon (and with it sqlx or wasmtime). Request
//! types reject unknown fields: a typo such as `event_type` for `event_types`
//! is an error, not a silently ignored key.
//!
//! The modules follow the API's resources; everything is re-exported at the
//! crate root, so callers name `dispatch_wire::EventIn` and never the module.

#![warn(missing_docs)]

mod codecs;
mod dead_letters;
mod envelope;
mod error;
mod event_types;
mod events;
mod health;
mod list;
mod plugins;
#[cfg(feature = "openapi")]
mod schema;
mod states;
mod stats;
mod subscriptions;
mod tasks;
mod tenants;

pub use dead_letters::*;
pub use envelope::*;
pub use error::*;
pub use event_types::*;
pub use events::*;
pub use health::*;
pub use list::*;
pub use plugins::*;
#[cfg(feature = "openapi")]
pub use schema::*;
pub use states::*;
pub use stats::*;
pub use subscriptions::*;
pub use tasks::*;
pub use tenants::*;
