//! One loaded plugin: its own wasmtime engine (so its stack cap and pool are
//! its own), its component compiled once and cached on disk by content hash,
//! pre-instantiated against the host imports, and called in a fresh,
//! limited store each time (or, opted in, a warm instance that is dropped
//! on any trap).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::router::{Router, RouterPre};
use super::bindings::transformer::{Transformer, TransformerPre};
use super::bindings::{host, types};

/// How often the epoch advances: the resolution of plugin deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Most log lines one call may write; the rest are counted and dropped.
const LOG_LINES_PER_CALL: u32 = 20;
/// Longest log line kept.
const LOG_LINE_BYTES: usize = 1024;

/// What a plugin may use per call.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wasm instructions (roughly) per call.
    pub fuel: u64,
    /// Wall-clock time per call (epoch deadline).
    pub timeout: Duration,
    /// Linear memory per instance.
    pub memory_bytes: usize,
    /// Wasm stack.
    pub stack_bytes: usize,
    /// Largest output (payload plus headers) accepted from the plugin.
    pub max_output_bytes: usize,
    /// Keep instances between calls instead of a fresh one per call.
    pub warm: bool,
}

/// The per-call state a plugin's store carries.
pub struct Guest {
    name: Arc<str>,
    settings: Arc<BTreeMap<String, String>>,
    limits: StoreLimits,
    /// Built on the guest's first WASI call: most Rust plugins make none,
    /// and building and dropping one was a measurable part of a fresh call.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    logs_left: u32,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            // No files, network, environment or arguments.
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

impl types::Host for Guest {}

impl host::Host for Guest {
    fn log(&mut self, level: host::Level, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let mut line: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if line.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        let plugin = &*self.name;
        match level {
            host::Level::Trace => tracing::trace!(plugin, "{line}"),
            host::Level::Debug => tracing::debug!(plugin, "{line}"),
            host::Level::Info => tracing::info!(plugin, "{line}"),
            host::Level::Warn => tracing::warn!(plugin, "{line}"),
            host::Level::Error => tracing::error!(plugin, "{line}"),
        }
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }
}

/// Which world a component implements.
enum Kind {
    Transformer(TransformerPre<Guest>),
    Router(RouterPre<Guest>),
}

enum Warm {
    Transformer(Store<Guest>, Transformer),
    Router(Store<Guest>, Router),
}

/// What the compile cache did for one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// The compiled form was in the cache.
    Loaded,
    /// Compiled, and the compiled form stored for the next load.
    Stored,
    /// Compiled, but the cache could not store it: why.
    NotStored(String),
    /// Compiled; no cache was asked for.
    Off,
}

/// A compiled, pre-instantiated plugin.
pub struct Loaded {
    pub name: Arc<str>,
    pub path: PathBuf,
    /// Hex SHA-256 of the component file.
    pub hash: String,
    pub size: u64,
    /// Whether the compiled form came from the compile cache, or was
    /// compiled and stored there.
    pub cache: CacheUse,
    pub limits: Limits,
    engine: Engine,
    kind: Kind,
    settings: Arc<BTreeMap<String, String>>,
    warm: Mutex<Vec<Warm>>,
    max_warm: usize,
}

/// A failed call, with a message an operator can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError(pub String);

impl Loaded {
    /// `transformer` or `router`.
    pub fn world(&self) -> &'static str {
        match self.kind {
            Kind::Transformer(_) => "transformer",
            Kind::Router(_) => "router",
        }
    }

    pub fn is_router(&self) -> bool {
        matches!(self.kind, Kind::Router(_))
    }

    /// Compiles (or loads from `cache_dir`) and pre-instantiates `bytes`.
    /// `slots` is the most instances alive at once (calls in flight plus
    /// warm instances kept).
    pub fn load(
        name: &str,
        path: &Path,
        bytes: &[u8],
        limits: Limits,
        settings: BTreeMap<String, String>,
        cache_dir: Option<&Path>,
        slots: u32,
    ) -> anyhow::Result<Self> {
        let engine = engine_for(&limits, slots)?;
        let hash = hex::encode(Sha256::digest(bytes));
        let (component, cache) = match cache_dir {
            Some(dir) => cached_compile(&engine, bytes, &hash, dir)?,
            None => (Component::new(&engine, bytes)?, CacheUse::Off),
        };
        let mut linker = Linker::<Guest>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        forbid_blocking(&mut linker)?;
        host::add_to_linker::<Guest, HasSelf<Guest>>(&mut linker, |g| g)?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "{e:#} (plugins may import only dispatch:plugin/host and WASI 0.2, which is empty)"
            )
        })?;
        let kind = match TransformerPre::new(pre.clone()) {
            Ok(t) => Kind::Transformer(t),
            Err(te) => match RouterPre::new(pre) {
                Ok(r) => Kind::Router(r),
                Err(re) => anyhow::bail!(
                    "the component implements neither world of dispatch:plugin@0.1.0: \
                     as a transformer: {te:#}; as a router: {re:#}"
                ),
            },
        };
        register_for_ticks(&engine);
        Ok(Self {
            name: name.into(),
            path: path.to_path_buf(),
            hash,
            size: bytes.len() as u64,
            cache,
            limits,
            engine,
            kind,
            settings: Arc::new(settings),
            warm: Mutex::new(Vec::new()),
            max_warm: (slots / 2).max(1) as usize,
        })
    }

    /// The same compiled plugin with other settings (`plugin test` cases),
    /// without compiling it again.
    pub fn with_settings(&self, settings: BTreeMap<String, String>) -> Self {
        Self {
            name: self.name.clone(),
            path: self.path.clone(),
            hash: self.hash.clone(),
            size: self.size,
            cache: self.cache.clone(),
            limits: self.limits.clone(),
            engine: self.engine.clone(),
            kind: match &self.kind {
                Kind::Transformer(p) => Kind::Transformer(p.clone()),
                Kind::Router(p) => Kind::Router(p.clone()),
            },
            settings: Arc::new(settings),
            warm: Mutex::new(Vec::new()),
            max_warm: self.max_warm,
        }
    }

    fn new_store(&self) -> Store<Guest> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            Guest {
                name: self.name.clone(),
                settings: self.settings.clone(),
                limits,
                wasi: None,
                table: ResourceTable::new(),
                logs_left: LOG_LINES_PER_CALL,
            },
        );
        store.limiter(|g| &mut g.limits);
        store
    }

    /// Gives the store a full call's worth of fuel and time.
    fn arm(&self, store: &mut Store<Guest>) -> Result<(), CallError> {
        if self.limits.fuel > 0 {
            store
                .set_fuel(self.limits.fuel)
                .map_err(|e| CallError(format!("{e:#}")))?;
        }
        let ticks = self
            .limits
            .timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis()) as u64;
        store.set_epoch_deadline(ticks.max(1) + 1);
        store.epoch_deadline_trap();
        store.data_mut().logs_left = LOG_LINES_PER_CALL;
        Ok(())
    }

    fn take_warm(&self) -> Option<Warm> {
        self.warm.lock().ok()?.pop()
    }

    /// A warm instance (`unwarm` picks this world's kind) or a fresh one,
    /// armed for one call.
    fn checkout<I>(
        &self,
        unwarm: fn(Warm) -> Option<(Store<Guest>, I)>,
        instantiate: impl FnOnce(&mut Store<Guest>) -> wasmtime::Result<I>,
    ) -> Result<(Store<Guest>, I), CallError> {
        let (mut store, inst) = match self.take_warm().and_then(unwarm) {
            Some(warm) => warm,
            None => {
                let mut store = self.new_store();
                self.arm(&mut store)?;
                let inst =
                    instantiate(&mut store).map_err(|e| self.describe(&e, "instantiating"))?;
                (store, inst)
            }
        };
        self.arm(&mut store)?;
        Ok((store, inst))
    }

    fn keep_warm(&self, w: Warm) {
        if let Ok(mut pool) = self.warm.lock()
            && pool.len() < self.max_warm
        {
            pool.push(w);
        }
    }

    /// Runs the transform export. The outer error is a trap or a limit; the
    /// inner one is the plugin's own `err(...)`.
    pub fn transform(
        &self,
        event: &types::Event,
        request: &types::Request,
    ) -> Result<Result<types::Decision, String>, CallError> {
        let Kind::Transformer(pre) = &self.kind else {
            return Err(CallError(format!(
                "'{}' is a router, not a transformer",
                self.name
            )));
        };
        let (mut store, inst) = self.checkout(
            |w| match w {
                Warm::Transformer(s, i) => Some((s, i)),
                Warm::Router(..) => None,
            },
            |store| pre.instantiate(store),
        )?;
        let out = inst
            .call_transform(&mut store, event, request)
            .map_err(|e| self.describe(&e, "running"))?;
        if let Ok(types::Decision::Deliver(r)) = &out {
            self.check_output(
                r.payload.len() + headers_len(&r.destination.headers) + r.destination.url.len(),
            )?;
        }
        if self.limits.warm {
            self.keep_warm(Warm::Transformer(store, inst));
        }
        Ok(out)
    }

    /// Runs the route export.
    pub fn route(
        &self,
        event: &types::Event,
        destinations: &[types::Destination],
    ) -> Result<Result<Vec<types::Destination>, String>, CallError> {
        let Kind::Router(pre) = &self.kind else {
            return Err(CallError(format!(
                "'{}' is a transformer, not a router",
                self.name
            )));
        };
        let (mut store, inst) = self.checkout(
            |w| match w {
                Warm::Router(s, i) => Some((s, i)),
                Warm::Transformer(..) => None,
            },
            |store| pre.instantiate(store),
        )?;
        let out = inst
            .call_route(&mut store, event, destinations)
            .map_err(|e| self.describe(&e, "running"))?;
        if let Ok(list) = &out {
            let size: usize = list
                .iter()
                .map(|d| d.url.len() + d.method.len() + headers_len(&d.headers))
                .sum();
            self.check_output(size)?;
        }
        if self.limits.warm {
            self.keep_warm(Warm::Router(store, inst));
        }
        Ok(out)
    }

    fn check_output(&self, bytes: usize) -> Result<(), CallError> {
        if bytes > self.limits.max_output_bytes {
            return Err(CallError(format!(
                "returned {bytes} bytes, more than the {} allowed",
                self.limits.max_output_bytes
            )));
        }
        Ok(())
    }

    /// Turns a trap into a sentence naming the limit that was hit.
    fn describe(&self, e: &wasmtime::Error, doing: &str) -> CallError {
        let l = &self.limits;
        let text = match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => format!("ran out of fuel ({} units per call)", l.fuel),
            Some(Trap::Interrupt) => {
                format!(
                    "ran past its deadline ({} ms per call)",
                    l.timeout.as_millis()
                )
            }
            Some(Trap::StackOverflow) => {
                format!("overflowed its stack ({} KiB)", l.stack_bytes / 1024)
            }
            Some(Trap::UnreachableCodeReached) => {
                "trapped: wasm `unreachable` executed (a panic in the plugin?)".to_string()
            }
            Some(Trap::MemoryOutOfBounds) => "trapped: out-of-bounds memory access (often the \
                 plugin overflowing its own stack in linear memory: deep recursion)"
                .to_string(),
            Some(t) => format!("trapped: {t}"),
            None => {
                let all = format!("{e:#}");
                if all.contains("grow") && all.contains("memory") {
                    format!("exceeded its memory limit ({} MiB)", l.memory_bytes >> 20)
                } else {
                    // The cause, without the wasm backtrace around it.
                    e.root_cause().to_string()
                }
            }
        };
        let mut text = format!("{doing}: {text}");
        if text.len() > 2048 {
            let mut cut = 2048;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        CallError(text)
    }
}

/// Replaces WASI's blocking waits (`poll`, `pollable.block`) with a trap:
/// host code cannot be interrupted by fuel or the epoch deadline, so a
/// guest sleeping there would hold a plugin thread for as long as it asked.
/// Nothing a transform does needs to wait.
fn forbid_blocking(linker: &mut Linker<Guest>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    for name in ["poll", "[method]pollable.block"] {
        poll.func_new(name, |_, _, _, _| {
            Err(wasmtime::format_err!(
                "plugins may not block (wasi:io/poll: sleeping or waiting)"
            ))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

fn headers_len(h: &[(String, String)]) -> usize {
    h.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// An engine configured for one plugin's limits, with a pooling allocator
/// sized for `slots` live instances.
fn engine_for(limits: &Limits, slots: u32) -> anyhow::Result<Engine> {
    // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), a freed slot's memory
    // is reset by copying back only the pages the call dirtied, and stays
    // mapped: no madvise, and no page faults in the next instance (a third
    // of a fresh call's time before; BENCHMARKS.md). Elsewhere wasmtime
    // would memset the whole resident size on every reset, which costs
    // more than madvise, so it is used only with the scan.
    match Engine::new(&engine_config(limits, slots, true)) {
        Ok(engine) => {
            SCANNED_RESETS.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(engine)
        }
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::info!(
                    "plugin memory is reset with madvise: PAGEMAP_SCAN is not available ({e:#})"
                )
            });
            Ok(Engine::new(&engine_config(limits, slots, false))?)
        }
    }
}

static SCANNED_RESETS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a plugin engine was built with PAGEMAP_SCAN resets (the fast
/// path; the tests check it is the one they exercise).
pub fn scanned_resets() -> bool {
    SCANNED_RESETS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Linear memory kept mapped per slot between instances (with
/// PAGEMAP_SCAN): the Rust examples' whole memory, a part of the
/// interpreted guests'.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

fn engine_config(limits: &Limits, slots: u32, pagemap: bool) -> wasmtime::Config {
    let mut pool = PoolingAllocationConfig::default();
    if pagemap {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT.min(limits.memory_bytes));
    }
    pool.total_component_instances(slots)
        // Interpreted guests (Python, JavaScript) bring dozens of core
        // modules; small Rust ones one or two.
        .total_core_instances(slots * 64)
        .total_memories(slots * 4)
        .total_tables(slots * 16)
        .max_memory_size(limits.memory_bytes)
        .table_elements(100_000)
        // Reset small tables with memset instead of a syscall, and decommit
        // linear memories in batches: measured in benches/hot_paths.rs.
        .table_keep_resident(64 << 10)
        .decommit_batch_size(8);
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true)
        // Metering costs the guest's code about a fifth of its speed.
        .consume_fuel(limits.fuel > 0)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

/// Loads the compiled form of `bytes` from `dir`, compiling and storing it
/// first when missing. The key is the file's hash plus the engine's
/// compatibility hash (wasmtime version, target, settings), so a changed
/// setting or upgrade compiles afresh instead of loading a mismatch. Says
/// whether the entry was there, or why it could not be stored.
#[allow(unsafe_code)] // wasmtime's deserialize: see the SAFETY notes inside
fn cached_compile(
    engine: &Engine,
    bytes: &[u8],
    hash: &str,
    dir: &Path,
) -> anyhow::Result<(Component, CacheUse)> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let file = dir.join(format!("{hash}-{:016x}.cwasm", h.finish()));
    if file.exists() {
        // SAFETY: the cache directory is dispatchd's own (created 0700 and
        // documented as trusted); entries are written only by
        // `precompile_component` below, and wasmtime checks the header
        // against this engine before using one.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(c) => return Ok((c, CacheUse::Loaded)),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "ignoring an unusable plugin cache entry")
            }
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    let cache = match write_cache(dir, &file, &compiled) {
        Ok(()) => CacheUse::Stored,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not cache a compiled plugin");
            CacheUse::NotStored(format!("{}: {e}", dir.display()))
        }
    };
    // SAFETY: these bytes came from `precompile_component` on this engine
    // just now.
    Ok((unsafe { Component::deserialize(engine, &compiled)? }, cache))
}

fn write_cache(dir: &Path, file: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, file)
}

/// Every loaded plugin's engine, for the one thread that advances epochs.
fn register_for_ticks(engine: &Engine) {
    static ENGINES: OnceLock<Mutex<Vec<EngineWeak>>> = OnceLock::new();
    let engines = ENGINES.get_or_init(|| {
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    if let Some(list) = ENGINES.get()
                        && let Ok(mut list) = list.lock()
                    {
                        list.retain(|w| match w.upgrade() {
                            Some(e) => {
                                e.increment_epoch();
                                true
                            }
                            None => false,
                        });
                    }
                }
            })
            .expect("spawning the epoch thread");
        Mutex::new(Vec::new())
    });
    if let Ok(mut list) = engines.lock() {
        list.push(engine.weak());
    }
}
