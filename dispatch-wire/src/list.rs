//! The envelope of every paginated list. Kept generic and on its own
//! because every list route shares it, whatever resource it pages over.

use serde::{Deserialize, Serialize};

/// A list answer; `next_cursor` is passed back as `?after=` for the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListOut<T> {
    /// This page's items.
    pub data: Vec<T>,
    /// Where the next page starts; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
