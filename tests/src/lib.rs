//! The end-to-end harness: real dispatchd nodes, real databases, real
//! receivers, all on 127.0.0.1. One module per part:
//!
//! - `db`: `Backend` names a store; `TestDb` makes a fresh one per test (a
//!   SQLite file in a temp dir, or a new PostgreSQL database, dropped when
//!   the test ends); `both_backends!` generates a test per store.
//! - `daemon`: `Daemon` runs `dispatchd::server::run` in-process on port 0;
//!   `eventually` waits on an observable condition with a deadline (no
//!   sleeps as synchronisation).
//! - `binary`: `Binary` runs the real `dispatchd` executable for signal and
//!   crash tests.
//! - `receiver`: an HTTP endpoint that records every request and answers
//!   from a script (over HTTP, or HTTPS with `Receiver::start_tls`);
//!   `raw_receiver`: a TCP endpoint that misbehaves.
//! - `proxy`: `ConnectProxy`, an HTTP CONNECT proxy that logs what it was
//!   asked for.
//! - `tls`: `TestCa`, a private CA (rcgen) issuing server and client
//!   certificates, and the receivers' rustls configurations.
//! - `verify`: the published `standardwebhooks` library, the example
//!   plugins.
//! - `cluster`: a private PostgreSQL cluster for tests that stop it.
//!
//! PostgreSQL tests need a server at `TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and have `postgres` in
//! their path; `scripts/test.sh` reports them as skipped without a server.
//! Run one anyway without a server and it prints a notice and returns,
//! unless `TEST_REQUIRE_POSTGRES=1` (CI sets it), when it fails.

pub use dispatchd;

mod binary;
mod cluster;
mod daemon;
mod db;
mod proxy;
mod raw_receiver;
mod receiver;
mod tls;
mod verify;

pub use binary::*;
pub use cluster::PgCluster;
pub use daemon::*;
pub use db::*;
pub use proxy::*;
pub use raw_receiver::*;
pub use receiver::*;
pub use tls::*;
pub use verify::*;
