//! The error body every failing request answers with. One shape for every
//! route, so a client needs a single decoder for failures; the `code` is
//! the stable part, the `message` is for people.

use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// A stable machine-readable `code` and a human sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable identifier of the kind of failure, such as `validation_failed`.
    pub code: String,
    /// A sentence for people; its wording may change between versions.
    pub message: String,
}
