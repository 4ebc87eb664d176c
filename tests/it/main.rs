//! The end-to-end suite, one binary (as svix-server and mini-redis do): a
//! module per area, each test starting real servers on port 0 against a
//! real database and real receivers (the harness is the `dispatch-tests`
//! library, `tests/src`).
//!
//! Every test that needs PostgreSQL has `postgres` in its path
//! (`both_backends!` puts it in a `postgres` module), so the runner can
//! report them as skipped when no server answers
//! (`scripts/test.sh` filters them out with nextest).

mod admin_stats;
mod api;
mod catalogue;
mod console;
mod delivery;
mod egress;
mod faults;
mod hostile;
mod metrics;
mod ordering;
mod plugins;
mod process;
mod resilience;
mod seeds;
mod ssrf;
mod store;
mod tenants;
mod tidy;
