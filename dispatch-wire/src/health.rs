//! What `/health` and `/ready` answer. Separate from the admin types because
//! load balancers and orchestrators read it without credentials.

use serde::{Deserialize, Serialize};

/// `GET /health` and `GET /ready`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthOut {
    /// `ok` or `unavailable`.
    pub status: String,
    /// The backend and whether it answered, e.g. `postgres ok`; only on `/ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The dispatchd version answering.
    pub version: String,
}
