//! Documentation-only schemas: types that exist so the OpenAPI document can
//! state constraints the Rust types do not carry (a pattern on each list
//! item or map value, "exactly one of" between two fields). Nothing parses
//! into them, so they are compiled only with the `openapi` feature.

use crate::dead_letters::DeadLetterFilter;

/// Documentation-only schema of one event-type pattern: an exact type, a
/// final `.*` wildcard over whole segments, or `*`.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^(\\*|[A-Za-z0-9._:/-]{1,200}(\\.\\*)?)$")]
pub struct EventTypePattern(pub String);

/// Documentation-only schema of one channel name: the event-type
/// character set.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._:/-]{1,255}$")]
pub struct ChannelName(pub String);

/// Documentation-only schema of a header value: visible ASCII.
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^[ -~]{0,4096}$")]
pub struct HeaderValueText(pub String);

/// Documentation-only schema of `DeadLetterAction`: exactly one of the two.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum DeadLetterSelection {
    /// Act on the listed dead letters.
    Ids(DeadLetterIds),
    /// Act on every dead letter the filter matches.
    Filter(DeadLetterByFilter),
}

/// At most 1000 delivery ids.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterIds {
    /// The dead letters' delivery ids.
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<i64>,
}

/// Every dead letter matching the filter.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterByFilter {
    /// Which dead letters to act on.
    pub filter: DeadLetterFilter,
}
