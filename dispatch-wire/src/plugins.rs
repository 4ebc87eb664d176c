//! The WASM plugins loaded on the node that answers, and the outcome of
//! asking it to reload them. Per-node on purpose: each node loads its own
//! files, so these differ between nodes, unlike the cluster-wide
//! `PluginStats` of `/admin/stats`.

use serde::{Deserialize, Serialize};

/// A loaded plugin and what it has done on this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginView {
    /// The plugin's configured name.
    pub name: String,
    /// `transformer` or `router`.
    pub world: String,
    /// The component file it was loaded from.
    pub path: String,
    /// Hex SHA-256 of the component file.
    pub hash: String,
    /// Size of the component file, in bytes.
    pub size_bytes: u64,
    /// When this version was loaded (RFC 3339).
    pub loaded_at: String,
    /// Calls since start-up (across reloads), failed ones included.
    pub invocations: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Mean time per call, in microseconds.
    pub mean_us: f64,
    /// Whether instances are reused between calls.
    pub warm: bool,
}

/// `GET /admin/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginList {
    /// Every loaded plugin.
    pub plugins: Vec<PluginView>,
}

/// What a reload did for one plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginReloadResult {
    /// The plugin's configured name.
    pub name: String,
    /// `reloaded`, `unchanged`, or `failed` (the previous version keeps
    /// running).
    pub status: String,
    /// Hex SHA-256 of the component now loaded; absent when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why the reload failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /admin/plugins/reload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginReloadOut {
    /// One result per configured plugin.
    pub results: Vec<PluginReloadResult>,
}
