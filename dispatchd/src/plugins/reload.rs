//! Hot reload: a changed file is compiled aside and swapped in atomically
//! (calls already running keep the version they started with); one that
//! fails to load keeps its previous version. `watch` polls the files.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{Entry, Loaded, Plugins, ReloadReport, limits_of};
use crate::config::PluginConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

impl Plugins {
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
}
