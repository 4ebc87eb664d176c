//! WASM plugins: the registry of loaded components, the transform chain a
//! subscription runs per delivery, the routers run per event, statistics,
//! and hot reload.
//!
//! A call never runs on the async reactor: it goes to the plugin threads
//! (`runner`). A reload compiles the new version aside and swaps it in
//! atomically; calls already running keep the version they started with.

pub mod bindings;
mod engine;
mod runner;
pub mod stage;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

pub use bindings::types::{BodyFormat, Decision, Destination, Event, Request};
pub use engine::{CallError, Limits, Loaded};
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

#[derive(Debug, Clone, Copy, PartialEq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
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

    /// Loads every configured plugin whose file changed (or all, the first
    /// time). A plugin that fails keeps its previous version.
    pub async fn reload(&self) -> Vec<ReloadReport> {
        let _one = self.reloading.lock().await;
        let mut reports = Vec::new();
        for (name, pc) in &self.configs {
            reports.push(self.reload_one(name, pc, false).await);
        }
        reports
    }

    async fn reload_one(
        &self,
        name: &str,
        pc: &PluginConfig,
        only_if_changed: bool,
    ) -> ReloadReport {
        let old = self.snapshot().get(name).cloned();
        let now_stamp = stamp(&pc.path);
        if only_if_changed && old.as_ref().is_some_and(|e| e.stamp == now_stamp) {
            return ReloadReport {
                name: name.to_string(),
                status: "unchanged",
                hash: old.map(|e| e.plugin.hash.clone()),
                error: None,
            };
        }
        let failed = |error: String| ReloadReport {
            name: name.to_string(),
            status: "failed",
            hash: None,
            error: Some(error),
        };
        let bytes = match tokio::fs::read(&pc.path).await {
            Ok(b) => b,
            Err(e) => return failed(format!("cannot read {}: {e}", pc.path.display())),
        };
        if let Some(e) = &old
            && e.plugin.hash == hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        {
            // Touched, not changed: remember the new stamp only.
            self.swap(
                name,
                Arc::new(Entry {
                    plugin: e.plugin.clone(),
                    stats: e.stats.clone(),
                    loaded_at: e.loaded_at,
                    stamp: now_stamp,
                }),
            );
            return ReloadReport {
                name: name.to_string(),
                status: "unchanged",
                hash: Some(e.plugin.hash.clone()),
                error: None,
            };
        }
        let limits = limits_of(pc, self.max_output_bytes);
        let settings = pc.settings_text();
        let cache = self.cache_dir.clone();
        let slots = self.slots;
        let (n, path) = (name.to_string(), pc.path.clone());
        // Compiling takes seconds for large guests: keep it off the reactor
        // and off the plugin threads that serve calls.
        let loaded = tokio::task::spawn_blocking(move || {
            Loaded::load(&n, &path, &bytes, limits, settings, cache.as_deref(), slots)
        })
        .await;
        let plugin = match loaded {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return failed(format!("{e:#}")),
            Err(e) => return failed(format!("loading panicked: {e}")),
        };
        let wanted_router = self.routers.iter().any(|r| r == name);
        if wanted_router != plugin.is_router() {
            return failed(format!(
                "is a {} but is {} in plugin_host.routers",
                plugin.world(),
                if wanted_router {
                    "listed"
                } else {
                    "not listed"
                }
            ));
        }
        let hash = plugin.hash.clone();
        self.swap(
            name,
            Arc::new(Entry {
                plugin: Arc::new(plugin),
                stats: self.stats_for(name),
                loaded_at: crate::model::now_ms(),
                stamp: now_stamp,
            }),
        );
        tracing::info!(plugin = name, hash = %hash, "plugin loaded");
        ReloadReport {
            name: name.to_string(),
            status: "reloaded",
            hash: Some(hash),
            error: None,
        }
    }

    fn swap(&self, name: &str, entry: Arc<Entry>) {
        let mut cur = self.current.write().expect("plugin table lock");
        let mut next = (**cur).clone();
        next.insert(name.to_string(), entry);
        *cur = Arc::new(next);
    }

    /// Reloads plugins whose files change, every `interval`, until shutdown.
    pub fn watch(self: &Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        if interval.is_zero() || self.configs.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.cancelled() => return,
                }
                let _one = this.reloading.lock().await;
                for (name, pc) in &this.configs {
                    let r = this.reload_one(name, pc, true).await;
                    if let Some(e) = r.error {
                        tracing::warn!(plugin = %name, error = %e, "changed plugin did not load; the previous version keeps running");
                    }
                }
            }
        });
    }

    /// Runs `chain` (transformer names, in order) over one delivery's
    /// request, on a plugin thread.
    pub async fn transform(
        &self,
        chain: &[String],
        event: Event,
        request: Request,
    ) -> Result<ChainOutcome, PluginFailure> {
        let steps = self.resolve(chain)?;
        match self
            .runner
            .run(move || run_chain(&steps, &event, request))
            .await
        {
            Some(out) => out,
            None => Err(PluginFailure::new(
                chain.first().map_or("", |s| s.as_str()),
                "the plugin host failed (a bug in dispatchd; see its log)",
            )),
        }
    }

    /// The same as `transform`, on the calling thread (benchmarks, the CLI).
    pub fn transform_blocking(
        &self,
        chain: &[String],
        event: &Event,
        request: Request,
    ) -> Result<ChainOutcome, PluginFailure> {
        let steps = self.resolve(chain)?;
        run_chain(&steps, event, request)
    }

    /// Runs the routers over several events' destinations at once.
    pub async fn route_many(
        &self,
        items: Vec<(Event, Vec<Destination>)>,
    ) -> Vec<Result<Vec<Destination>, PluginFailure>> {
        let n = items.len();
        let steps = match self.resolve(&self.routers) {
            Ok(s) => s,
            Err(f) => return vec![Err(f); n],
        };
        let out = self
            .runner
            .run(move || {
                items
                    .into_iter()
                    .map(|(event, dests)| run_routers(&steps, &event, dests))
                    .collect::<Vec<_>>()
            })
            .await;
        out.unwrap_or_else(|| {
            vec![
                Err(PluginFailure::new(
                    self.routers.first().map_or("", |s| s.as_str()),
                    "the plugin host failed (a bug in dispatchd; see its log)",
                ));
                n
            ]
        })
    }

    /// Runs one loaded router on the calling thread (the CLI's dry run).
    pub fn route_blocking(
        &self,
        name: &str,
        event: &Event,
        destinations: Vec<Destination>,
    ) -> Result<Vec<Destination>, PluginFailure> {
        let steps = self.resolve(&[name.to_string()])?;
        run_routers(&steps, event, destinations)
    }

    /// The loaded plugins for `names`, with their stats, as of now: a reload
    /// during the call does not change what it runs.
    fn resolve(&self, names: &[String]) -> Result<Vec<Step>, PluginFailure> {
        let table = self.snapshot();
        names
            .iter()
            .map(|n| match table.get(n) {
                Some(e) => Ok(Step {
                    plugin: e.plugin.clone(),
                    stats: e.stats.clone(),
                }),
                None => Err(PluginFailure::new(
                    n,
                    "is not loaded (not declared in [plugins], or it failed to load)",
                )),
            })
            .collect()
    }
}

struct Step {
    plugin: Arc<Loaded>,
    stats: Arc<Stats>,
}

fn run_chain(
    steps: &[Step],
    event: &Event,
    mut request: Request,
) -> Result<ChainOutcome, PluginFailure> {
    for step in steps {
        let name = &*step.plugin.name;
        let start = Instant::now();
        let out = step.plugin.transform(event, &request);
        step.stats
            .record(start.elapsed(), !matches!(out, Ok(Ok(_))));
        match out {
            Ok(Ok(Decision::Deliver(next))) => request = next,
            Ok(Ok(Decision::Drop(reason))) => {
                return Ok(ChainOutcome::Drop {
                    plugin: name.to_string(),
                    reason,
                });
            }
            Ok(Err(message)) => {
                return Err(PluginFailure::new(
                    name,
                    format!("returned an error: {message}"),
                ));
            }
            Err(CallError(message)) => return Err(PluginFailure::new(name, message)),
        }
    }
    Ok(ChainOutcome::Deliver(request))
}

fn run_routers(
    steps: &[Step],
    event: &Event,
    mut destinations: Vec<Destination>,
) -> Result<Vec<Destination>, PluginFailure> {
    for step in steps {
        let name = &*step.plugin.name;
        let start = Instant::now();
        let out = step.plugin.route(event, &destinations);
        step.stats
            .record(start.elapsed(), !matches!(out, Ok(Ok(_))));
        destinations = match out {
            Ok(Ok(d)) => d,
            Ok(Err(message)) => {
                return Err(PluginFailure::new(
                    name,
                    format!("returned an error: {message}"),
                ));
            }
            Err(CallError(message)) => return Err(PluginFailure::new(name, message)),
        };
    }
    Ok(destinations)
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
/// uncached.
pub fn load_file(name: &str, pc: &PluginConfig) -> anyhow::Result<Loaded> {
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
        None,
        2,
    )
}

/// Runs one loaded plugin once, on the calling thread, for a dry run.
pub fn run_once(plugin: Loaded, event: &Event, request: Request) -> Result<DryRun, PluginFailure> {
    let step = Step {
        plugin: Arc::new(plugin),
        stats: Arc::default(),
    };
    if step.plugin.is_router() {
        run_routers(
            std::slice::from_ref(&step),
            event,
            vec![request.destination],
        )
        .map(DryRun::Routed)
    } else {
        run_chain(std::slice::from_ref(&step), event, request).map(DryRun::Transformed)
    }
}

/// What a dry run produced.
pub enum DryRun {
    Transformed(ChainOutcome),
    Routed(Vec<Destination>),
}
