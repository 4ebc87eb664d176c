//! WASM plugins: the registry of loaded components, the transform chain a
//! subscription runs per delivery, the routers run per event, statistics,
//! and hot reload.
//!
//! A call never runs on the async reactor: it goes to the plugin threads
//! (`runner`). A reload compiles the new version aside and swaps it in
//! atomically; calls already running keep the version they started with.

pub mod bindings;
mod calls;
pub mod cases;
pub mod cli;
mod engine;
mod reload;
mod runner;
mod scaffold;
pub mod stage;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use bindings::types::{BodyFormat, Decision, Destination, Event, Request};
pub use calls::{DryRun, run_once};
pub use engine::{CacheUse, CallError, Limits, Loaded, scanned_resets};
use reload::FileStamp;
use runner::Runner;

use crate::config::{Config, PluginConfig};
use crate::model::Millis;

/// A plugin that failed, and how.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin '{plugin}' failed: {message}")]
pub struct PluginFailure {
    pub plugin: String,
    pub message: String,
}

impl PluginFailure {
    fn new(plugin: &str, message: impl Into<String>) -> Self {
        Self {
            plugin: plugin.to_string(),
            message: message.into(),
        }
    }
}

/// What a chain of transformers decided.
#[derive(Debug, Clone)]
pub enum ChainOutcome {
    Deliver(Request),
    Drop { plugin: String, reason: String },
}

/// Calls, failures and time, per plugin name (kept across reloads).
#[derive(Debug, Default)]
pub struct Stats {
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub total_ns: AtomicU64,
}

impl Stats {
    fn record(&self, elapsed: Duration, failed: bool) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        self.total_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One plugin as `GET /admin/plugins` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub name: String,
    pub path: PathBuf,
    pub world: &'static str,
    pub hash: String,
    pub size: u64,
    pub loaded_at: Millis,
    pub invocations: u64,
    pub errors: u64,
    pub mean_us: f64,
    pub warm: bool,
}

/// What one reload did for one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadReport {
    pub name: String,
    /// `reloaded`, `unchanged` or `failed` (the old version keeps running).
    pub status: &'static str,
    pub hash: Option<String>,
    pub error: Option<String>,
}

struct Entry {
    plugin: Arc<Loaded>,
    /// This name's statistics (shared by every version), looked up once at
    /// load rather than on each call.
    stats: Arc<Stats>,
    loaded_at: Millis,
    stamp: Option<FileStamp>,
}

pub struct Plugins {
    configs: BTreeMap<String, PluginConfig>,
    routers: Vec<String>,
    cache_dir: Option<PathBuf>,
    max_output_bytes: usize,
    slots: u32,
    current: RwLock<Arc<BTreeMap<String, Arc<Entry>>>>,
    stats: Mutex<HashMap<String, Arc<Stats>>>,
    runner: Runner,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Plugins {
    /// Loads every plugin in the configuration. A plugin that does not load
    /// stops start-up, naming it.
    pub async fn start(cfg: &Config) -> anyhow::Result<Arc<Self>> {
        let threads = match cfg.plugin_host.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let this = Arc::new(Self {
            configs: cfg.plugins.clone(),
            routers: cfg.plugin_host.routers.clone(),
            cache_dir: Some(cfg.plugin_host.cache_dir.clone()),
            max_output_bytes: cfg.api.max_body_bytes,
            // Calls in flight (one per thread) plus as many warm instances.
            slots: threads as u32 * 2 + 2,
            current: RwLock::new(Arc::new(BTreeMap::new())),
            stats: Mutex::new(HashMap::new()),
            runner: Runner::new(threads)?,
            reloading: tokio::sync::Mutex::new(()),
        });
        for report in this.reload().await {
            if let Some(e) = report.error {
                anyhow::bail!("plugin '{}': {e}", report.name);
            }
        }
        Ok(this)
    }

    /// No plugins: what `--dev` without a config and most tests run with.
    pub fn none() -> Arc<Self> {
        Arc::new(Self {
            configs: BTreeMap::new(),
            routers: Vec::new(),
            cache_dir: None,
            max_output_bytes: 0,
            slots: 2,
            current: RwLock::new(Arc::new(BTreeMap::new())),
            stats: Mutex::new(HashMap::new()),
            runner: Runner::new(1).expect("one plugin thread"),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, Arc<Entry>>> {
        self.current.read().expect("plugin table lock").clone()
    }

    fn stats_for(&self, name: &str) -> Arc<Stats> {
        self.stats
            .lock()
            .expect("plugin stats lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    pub fn has_routers(&self) -> bool {
        !self.routers.is_empty()
    }

    /// The router whose answer becomes the deliveries.
    pub fn last_router(&self) -> &str {
        self.routers.last().map_or("", |s| s.as_str())
    }

    /// Whether `name` is a loaded transformer (what a subscription may list).
    pub fn is_transformer(&self, name: &str) -> bool {
        self.snapshot()
            .get(name)
            .is_some_and(|e| !e.plugin.is_router())
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.snapshot()
            .iter()
            .map(|(name, e)| {
                let s = &e.stats;
                let calls = s.invocations.load(Ordering::Relaxed);
                let ns = s.total_ns.load(Ordering::Relaxed);
                PluginInfo {
                    name: name.clone(),
                    path: e.plugin.path.clone(),
                    world: e.plugin.world(),
                    hash: e.plugin.hash.clone(),
                    size: e.plugin.size,
                    loaded_at: e.loaded_at,
                    invocations: calls,
                    errors: s.errors.load(Ordering::Relaxed),
                    mean_us: if calls == 0 {
                        0.0
                    } else {
                        ns as f64 / calls as f64 / 1000.0
                    },
                    warm: e.plugin.limits.warm,
                }
            })
            .collect()
    }
}

/// A plugin's limits from its configuration.
pub fn limits_of(pc: &PluginConfig, max_output_bytes: usize) -> Limits {
    Limits {
        fuel: pc.fuel,
        timeout: Duration::from_millis(pc.timeout_ms),
        memory_bytes: (pc.memory_mb as usize) << 20,
        stack_bytes: (pc.stack_kb as usize) << 10,
        max_output_bytes,
        warm: pc.warm,
    }
}

/// Loads one component outside the daemon (the `dispatchd plugin` commands),
/// through the compile cache in `cache_dir`.
pub fn load_file(name: &str, pc: &PluginConfig, cache_dir: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(&pc.path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", pc.path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        anyhow::bail!("{} is not a WebAssembly file", pc.path.display());
    }
    if bytes.starts_with(b"\0asm\x01\0\0\0") {
        anyhow::bail!(
            "{} is a core WebAssembly module, not a component: build for wasm32-wasip2 \
             (Rust), or wrap it with `wasm-tools component new`",
            pc.path.display()
        );
    }
    Loaded::load(
        name,
        &pc.path,
        &bytes,
        limits_of(pc, 5 << 20),
        pc.settings_text(),
        Some(cache_dir),
        2,
    )
}
