//! `GET /admin/plugins` and `POST /admin/plugins/reload`.

use axum::Json;
use axum::extract::State;
use dispatch_wire::{ErrorResponse, PluginList, PluginReloadOut, PluginReloadResult, PluginView};

use crate::api::AppState;

#[utoipa::path(
    get,
    path = "/admin/plugins",
    tag = "admin",
    responses(
        (status = 200, description = "Loaded plugins with this node's call statistics", body = PluginList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    )
)]
pub async fn plugins(State(st): State<AppState>) -> Json<PluginList> {
    Json(PluginList {
        plugins: st
            .plugins
            .list()
            .into_iter()
            .map(|p| PluginView {
                name: p.name,
                world: p.world.into(),
                path: p.path.display().to_string(),
                hash: p.hash,
                size_bytes: p.size,
                loaded_at: crate::model::rfc3339(p.loaded_at),
                invocations: p.invocations,
                errors: p.errors,
                mean_us: p.mean_us,
                warm: p.warm,
            })
            .collect(),
    })
}

#[utoipa::path(
    post,
    path = "/admin/plugins/reload",
    tag = "admin",
    responses(
        (status = 200, description = "Every configured plugin's file read again; changed ones recompiled and swapped in (calls in flight finish on the old version). A plugin that fails to load keeps its previous version and says why.", body = PluginReloadOut),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    )
)]
pub async fn reload_plugins(State(st): State<AppState>) -> Json<PluginReloadOut> {
    let results = st
        .plugins
        .reload()
        .await
        .into_iter()
        .map(|r| {
            if let Some(e) = &r.error {
                tracing::warn!(plugin = %r.name, error = %e, "plugin reload failed; the previous version keeps running");
            }
            PluginReloadResult {
                name: r.name,
                status: r.status.into(),
                hash: r.hash,
                error: r.error,
            }
        })
        .collect();
    Json(PluginReloadOut { results })
}
