//! `run(listener, cfg, shutdown)`: everything a node runs, wired together.
//!
//! Takes an already bound listener and a shutdown future (the mini-redis
//! pattern), so tests bind `127.0.0.1:0` and stop a node on demand.
//!
//! Shutdown order matters. When `shutdown` resolves: the HTTP server stops
//! accepting and finishes the requests it has (each one answered after its
//! commit); at the same moment the worker stops claiming and gives in-flight
//! deliveries the grace period, handing unfinished ones back to the queue;
//! then the sweeper stops. Only then does `run` return, and the process
//! exits 0.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::deliver::Deliverer;
use crate::ingest::Ingestor;
use crate::pipeline::Pipeline;
use crate::plugins::Plugins;
use crate::queue::{self, Worker};
use crate::store::{self, Store};

/// Opens the configured store, then serves until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    cfg: Arc<Config>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = store::open(&cfg).await.context("opening the store")?;
    run_with_store(listener, cfg, store, shutdown).await
}

pub async fn run_with_store(
    listener: TcpListener,
    cfg: Arc<Config>,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let node = format!("node-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let deliverer = Arc::new(Deliverer::new(&cfg).context("building the HTTP client")?);
    let stop = CancellationToken::new();

    let plugins = Plugins::start(&cfg).await.context("loading plugins")?;
    plugins.watch(
        Duration::from_millis(cfg.plugin_host.watch_interval_ms),
        stop.clone(),
    );
    let beat = queue::liveness::Beat::new();
    // Before the worker claims anything: this node is alive, and whatever
    // a dead node (or this node's previous run) held is due again now.
    queue::liveness::first(store.as_ref(), &node, cfg.node_timeout(), &beat).await;
    // The heartbeat outlives the worker's drain at shutdown: a node still
    // finishing its sends must not look dead to the others.
    let beating = CancellationToken::new();
    let liveness = tokio::spawn(queue::liveness::run(
        store.clone(),
        node.clone(),
        cfg.node_timeout(),
        beat.clone(),
        beating.clone(),
    ));
    let (handoff, handed) = queue::Handoff::new(&cfg, node.clone(), beat.clone());
    let worker = tokio::spawn(
        Worker {
            store: store.clone(),
            pipeline: Arc::new(Pipeline {
                deliverer,
                plugins: plugins.clone(),
                cfg: cfg.clone(),
            }),
            cfg: cfg.clone(),
            node: node.clone(),
            beat: beat.clone(),
            handoff: handoff.clone(),
            handed,
        }
        .run(stop.clone()),
    );
    let sweeper = tokio::spawn(queue::sweep(store.clone(), cfg.clone(), stop.clone()));

    let reporter = tokio::spawn(crate::telemetry::report_plugin_counters(
        store.clone(),
        plugins.clone(),
        node.clone(),
        stop.clone(),
    ));
    // Not awaited at shutdown: a vacuum under way ends with the process
    // (the database releases its lock with the connection).
    tokio::spawn(queue::upkeep(store.clone(), cfg.clone(), stop.clone()));
    let ingest = Ingestor::start(store.clone(), plugins.clone(), handoff);
    tokio::spawn(ingest.gate().watch(store.clone(), stop.clone()));
    let catalogue = Arc::new(
        crate::catalogue::Catalogue::load(store.clone(), cfg.api.require_known_event_types)
            .await
            .context("loading the event-type catalogue")?,
    );
    tokio::spawn(catalogue.clone().watch(stop.clone()));
    tokio::spawn(crate::operational::run(
        store.clone(),
        ingest.clone(),
        stop.clone(),
    ));
    let state = AppState::new(api::Shared {
        store: store.clone(),
        ingest,
        plugins,
        cfg: cfg.clone(),
        guard: Arc::new(cfg.ssrf_guard()),
        metrics: crate::telemetry::install(),
        stats: Arc::new(api::StatsHub::new(store.clone(), cfg.node_timeout())),
        beat: beat.clone(),
        tenant_limits: Arc::default(),
        catalogue,
    });
    let app = api::router(state);
    tracing::info!(
        addr = %listener.local_addr()?,
        backend = store.backend(),
        node = %node,
        "dispatchd listening"
    );
    let stop_on_signal = stop.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests, draining deliveries");
            stop_on_signal.cancel();
        })
        .await;
    stop.cancel();
    let _ = worker.await;
    beating.cancel();
    let _ = sweeper.await;
    let _ = liveness.await;
    let _ = reporter.await;
    tracing::info!("dispatchd stopped");
    served.context("serving HTTP")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `dispatchd migrate`: applies migrations and says which store.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let store = store::open(cfg).await.context("migrating")?;
    eprintln!("dispatchd: migrations applied ({})", store.backend());
    Ok(())
}

/// `dispatchd serve`: binds `server.addr`, prints the dev banner when in
/// dev mode, and runs until SIGINT or SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let addr = cfg.listen_addr()?;
    if cfg.dev {
        dev_banner(&cfg, addr);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (server.addr)"))?;
    run(listener, Arc::new(cfg), shutdown_signal()).await
}

fn dev_banner(cfg: &Config, addr: std::net::SocketAddr) {
    let storage = if cfg.uses_postgres() {
        "PostgreSQL (DATABASE_URL)".to_string()
    } else {
        format!("embedded SQLite at {}", cfg.database.sqlite_path.display())
    };
    eprintln!(
        "\n\
         ==================================================================\n\
         \x20 dispatchd is running in DEV MODE. Do not use it in production.\n\
         \x20   - API authentication is OFF\n\
         \x20   - listening on http://{addr} (loopback only)\n\
         \x20   - storage: {storage}\n\
         ==================================================================\n"
    );
}
