//! Prometheus metrics: counters the daemon bumps as it works, and gauges
//! read from the database when `/metrics` is scraped.
//!
//! - `dispatch_events_ingested_total{kind}`: events (and tasks) stored.
//! - `dispatch_deliveries_total{outcome}`: attempts by result (`delivered`,
//!   `retry`, `dead`) and claims handed back unattempted (`deferred` for a
//!   rate-limit slot, `released` at shutdown).
//! - `dispatch_attempt_duration_seconds{result}`: HTTP attempt latency.
//! - `dispatch_queue_depth{state}`: deliveries per state, from the database,
//!   so every node reports the same.
//! - `dispatch_circuit_state{subscription_id}`: 0 closed, 1 half-open,
//!   2 open, for the endpoints the admin snapshot lists (the first
//!   `store::stats::MAX_ENDPOINTS` by id).
//!
//! The two gauges come from the node's shared admin snapshot
//! (`api::StatsHub`): a scrape runs no query of its own.
//!
//! The recorder is process-global (the `metrics` facade); several nodes in
//! one process, as in tests, share the counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::model::{CircuitState, DeliveryState};
use dispatch_wire::AdminStats;

use crate::store::Store;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("dispatch_attempt_duration_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then the
            // handle renders nothing of ours, which /metrics shows plainly.
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples pile up until something drains them: a
            // scrape, or this. Unscraped, a 10-minute dispatch-bench run at
            // 11,000 deliveries/s grew the daemon to 195 MiB.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawn the metrics upkeep thread");
            handle
        })
        .clone()
}

pub fn events_ingested(kind: &'static str, n: u64) {
    metrics::counter!("dispatch_events_ingested_total", "kind" => kind).increment(n);
}

pub fn delivery_outcome(outcome: &'static str) {
    metrics::counter!("dispatch_deliveries_total", "outcome" => outcome).increment(1);
}

pub fn attempt_duration(success: bool, millis: i64) {
    let result = if success { "success" } else { "failure" };
    metrics::histogram!("dispatch_attempt_duration_seconds", "result" => result)
        .record(millis.max(0) as f64 / 1000.0);
}

/// Renders the process's counters and histograms, then the gauges read
/// from the database, taken from the node's shared admin snapshot (at most
/// a second old, so a scrape costs no query of its own). Written here
/// rather than recorded as `metrics` gauges, so that a deleted
/// subscription's series goes with it.
pub fn render(handle: &PrometheusHandle, snapshot: Option<&AdminStats>) -> String {
    use std::fmt::Write;
    let mut out = handle.render();
    let Some(s) = snapshot else {
        return out;
    };
    let d = &s.deliveries;
    out.push_str(
        "# HELP dispatch_queue_depth Deliveries per state, counted from the database.\n\
         # TYPE dispatch_queue_depth gauge\n",
    );
    for (state, n) in [
        (DeliveryState::Pending, d.pending),
        (DeliveryState::InFlight, d.in_flight),
        (DeliveryState::Scheduled, d.scheduled),
        (DeliveryState::Delivered, d.delivered),
        (DeliveryState::Dead, d.dead),
        (DeliveryState::Paused, d.paused),
        (DeliveryState::Dropped, d.dropped),
        (DeliveryState::Held, d.held),
    ] {
        let _ = writeln!(out, "dispatch_queue_depth{{state=\"{state}\"}} {n}");
    }
    out.push_str(
        "# HELP dispatch_blocked_keys Ordered keys stopped by a dead head (ordering_on_dead: block).\n\
         # TYPE dispatch_blocked_keys gauge\n",
    );
    let _ = writeln!(out, "dispatch_blocked_keys {}", s.blocked_keys);
    out.push_str(
        "# HELP dispatch_circuit_state Circuit of each endpoint: 0 closed, 1 half-open, 2 open.\n\
         # TYPE dispatch_circuit_state gauge\n",
    );
    for e in &s.endpoints {
        let v = match e.circuit_state {
            CircuitState::Open => 2,
            CircuitState::HalfOpen => 1,
            CircuitState::Closed => 0,
        };
        let id = label(&e.subscription_id);
        let _ = writeln!(
            out,
            "dispatch_circuit_state{{subscription_id=\"{id}\"}} {v}"
        );
    }
    out
}

/// A label value escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes this node's plugin counters to the database once a second (when
/// they changed, and once more at shutdown), so `GET /admin/stats` can sum
/// them over every node.
pub async fn report_plugin_counters(
    store: std::sync::Arc<dyn Store>,
    plugins: std::sync::Arc<crate::plugins::Plugins>,
    node: String,
    stop: tokio_util::sync::CancellationToken,
) {
    use crate::store::stats::PluginCounters;
    let mut reported: Vec<PluginCounters> = Vec::new();
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => false,
            _ = stop.cancelled() => true,
        };
        let now: Vec<PluginCounters> = plugins
            .list()
            .into_iter()
            .map(|p| PluginCounters {
                name: p.name,
                invocations: p.invocations as i64,
                errors: p.errors as i64,
                total_us: (p.mean_us * p.invocations as f64).round() as i64,
            })
            .collect();
        let changed: Vec<PluginCounters> = now
            .iter()
            .filter(|c| !reported.contains(c))
            .cloned()
            .collect();
        if !changed.is_empty() {
            match store.record_plugin_counters(&node, &changed).await {
                Ok(()) => reported = now,
                Err(e) => tracing::debug!(error = %e, "plugin counters not recorded; retrying"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// Logs to stderr at `log.level` (or `RUST_LOG`), as JSON when
/// `log.format = "json"`.
pub fn init_logging(cfg: &crate::config::Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Logs to stderr at `info` (or `RUST_LOG`): the plugin commands, whose
/// plugins' `log` lines go there too.
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
