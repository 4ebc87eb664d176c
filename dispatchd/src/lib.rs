//! dispatchd: the dispatch webhook daemon, as a library.
//!
//! `main.rs` parses flags, loads `Config` and calls `server::run`; tests call
//! `server::run` directly with a listener on `127.0.0.1:0`. See
//! ARCHITECTURE.md for the codemap and the path of one event.

pub mod api;
pub mod catalogue;
pub mod circuit;
pub mod config;
pub mod deliver;
pub mod ingest;
pub mod matching;
pub mod model;
pub mod operational;
pub mod pipeline;
pub mod plugins;
pub mod queue;
pub mod ratelimit;
pub mod retry;
pub mod secret;
pub mod server;
pub mod sign;
pub mod ssrf;
pub mod store;
pub mod telemetry;
pub mod validate;
