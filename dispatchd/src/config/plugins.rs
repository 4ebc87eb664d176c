//! One plugin's entry, `[plugins.NAME]`: its file, its limits and its
//! settings, checked at load.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One plugin (`[plugins.NAME]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component file (`.wasm`).
    pub path: PathBuf,
    /// Fuel per call (about one unit per wasm instruction). 0 turns fuel
    /// metering off: `timeout_ms` alone then bounds a call's CPU, and the
    /// guest's code runs faster (BENCHMARKS.md).
    #[serde(default = "PluginConfig::default_fuel")]
    pub fuel: u64,
    /// Wall-clock limit per call.
    #[serde(default = "PluginConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Limit of each linear memory (a component usually has one).
    #[serde(default = "PluginConfig::default_memory_mb")]
    pub memory_mb: u64,
    /// Wasm stack limit.
    #[serde(default = "PluginConfig::default_stack_kb")]
    pub stack_kb: u64,
    /// Reuse instances between calls (for guests with a costly start-up,
    /// such as JavaScript and Python); an instance that traps is dropped.
    #[serde(default)]
    pub warm: bool,
    /// Values the plugin reads with `setting(key)`: strings as they are,
    /// anything else as JSON.
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl PluginConfig {
    fn default_fuel() -> u64 {
        100_000_000
    }
    fn default_timeout_ms() -> u64 {
        100
    }
    fn default_memory_mb() -> u64 {
        64
    }
    fn default_stack_kb() -> u64 {
        512
    }

    /// A plugin at `path` with every limit at its default.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            fuel: Self::default_fuel(),
            timeout_ms: Self::default_timeout_ms(),
            memory_mb: Self::default_memory_mb(),
            stack_kb: Self::default_stack_kb(),
            warm: false,
            settings: BTreeMap::new(),
        }
    }

    /// The settings as the plugin sees them.
    pub fn settings_text(&self) -> BTreeMap<String, String> {
        settings_text(&self.settings)
    }

    pub(super) fn check(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |message: &str| ConfigError::Plugin {
            name: name.to_string(),
            message: message.to_string(),
        };
        if crate::validate::id("name", name).is_err() {
            return Err(bad(
                "plugin names may use letters, digits, '.', '_', '-' and ':' (at most 255)",
            ));
        }
        if self.path.as_os_str().is_empty() {
            return Err(bad("path must name a .wasm component"));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(bad("timeout_ms must be between 1 and 60000"));
        }
        if !(1..=4096).contains(&self.memory_mb) {
            return Err(bad("memory_mb must be between 1 and 4096"));
        }
        if !(16..=4096).contains(&self.stack_kb) {
            return Err(bad("stack_kb must be between 16 and 4096"));
        }
        Ok(())
    }
}

/// Settings as a plugin reads them with `setting(key)`: strings as they
/// are, anything else as JSON text.
pub fn settings_text(settings: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    settings
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}
