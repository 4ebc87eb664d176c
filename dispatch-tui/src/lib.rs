//! `dispatch-tui`: the operator's console for dispatchd. It speaks only the
//! admin API (`dispatch-wire` types over HTTP): no database, no WASM.
//!
//! - `app`: state and the update function (keys and answers in, commands out).
//! - `ui`: drawing, generic over ratatui's backend.
//! - `client`: the admin API and the `/admin/stream` reader.
//! - `run`: the loop that ties them to a terminal.

pub mod app;
pub mod client;
pub mod run;
pub mod ui;
