//! The event-type catalogue as ingest enforces it: every type's schema
//! compiled once (draft 2020-12, `jsonschema`), shared by every request,
//! and reloaded when the catalogue's version moves. A node reloads at once
//! after its own changes (`refresh`) and polls the version once a second
//! (`watch`) for other nodes'.
//!
//! `builtin` holds dispatchd's operational types, always in the catalogue.

pub mod builtin;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonschema::Validator;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::model::EventType;
use crate::store::{Result, Store};

/// How often a node asks whether another node changed the catalogue.
pub const POLL: Duration = Duration::from_secs(1);

/// Why an event's data was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The type is not in the catalogue and `api.require_known_event_types`
    /// is on.
    Unknown(String),
    /// The data breaks the type's schema: the message names the JSON
    /// pointer and the rule.
    Violation(String),
}

/// One type as ingest checks it.
struct Entry {
    /// The compiled schema; `Err` when a stored schema no longer compiles
    /// (its events are refused, naming it, never let through unchecked).
    schema: Option<std::result::Result<Validator, String>>,
    deprecated: bool,
}

#[derive(Default)]
struct Compiled {
    version: i64,
    types: HashMap<String, Entry>,
}

/// The node's compiled catalogue.
pub struct Catalogue {
    store: Arc<dyn Store>,
    require_known: bool,
    current: RwLock<Arc<Compiled>>,
}

impl Catalogue {
    /// Reads and compiles the catalogue.
    pub async fn load(store: Arc<dyn Store>, require_known: bool) -> Result<Self> {
        let c = Self {
            store,
            require_known,
            current: RwLock::new(Arc::new(Compiled {
                version: i64::MIN,
                types: HashMap::new(),
            })),
        };
        c.refresh().await?;
        Ok(c)
    }

    /// Reloads the catalogue if its version moved since the last load.
    pub async fn refresh(&self) -> Result<()> {
        let version = self.store.catalogue_version().await?;
        if version == self.snapshot().version {
            return Ok(());
        }
        let (version, stored) = self.store.event_types().await?;
        // Compiling may take a while for big schemas: not on the reactor.
        let compiled = tokio::task::spawn_blocking(move || compile_all(version, stored))
            .await
            .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
        // Two refreshes may overlap (the poll, a write's): keep the newer.
        let mut current = self.current.write().expect("catalogue lock");
        if compiled.version > current.version {
            *current = Arc::new(compiled);
        }
        Ok(())
    }

    /// Polls the version every `POLL` until `stop`, reloading on a change.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::debug!(error = %e, "catalogue not reloaded; retrying");
            }
        }
    }

    fn snapshot(&self) -> Arc<Compiled> {
        self.current.read().expect("catalogue lock").clone()
    }

    /// Checks an event's data (JSON text) against its type's schema.
    /// Returns whether the type is deprecated.
    pub fn check(&self, event_type: &str, data: &str) -> std::result::Result<bool, Refusal> {
        let snap = self.snapshot();
        let Some(entry) = snap.types.get(event_type) else {
            if self.require_known {
                return Err(Refusal::Unknown(format!(
                    "type: {event_type:?} is not in the event-type catalogue \
                     (api.require_known_event_types is on)"
                )));
            }
            return Ok(false);
        };
        match &entry.schema {
            None => {}
            Some(Err(e)) => {
                return Err(Refusal::Violation(format!(
                    "the stored schema of {event_type:?} cannot be used: {e}"
                )));
            }
            Some(Ok(v)) => check_data(v, data).map_err(Refusal::Violation)?,
        }
        Ok(entry.deprecated)
    }

    /// Whether the type is marked deprecated.
    pub fn deprecated(&self, event_type: &str) -> bool {
        self.snapshot()
            .types
            .get(event_type)
            .is_some_and(|e| e.deprecated)
    }
}

fn compile_all(version: i64, stored: Vec<EventType>) -> Compiled {
    let mut types = HashMap::new();
    for t in builtin::types().iter().cloned().chain(stored) {
        let schema = t.schema.as_deref().map(|s| {
            serde_json::from_str::<Value>(s)
                .map_err(|e| e.to_string())
                .and_then(|v| compile(&v))
                .inspect_err(|e| {
                    tracing::error!(event_type = %t.name, error = %e, "a stored schema does not compile");
                })
        });
        types.insert(
            t.name,
            Entry {
                schema,
                deprecated: t.deprecated,
            },
        );
    }
    Compiled { version, types }
}

/// Compiles a schema as draft 2020-12 (checked against the meta-schema).
/// References outside the schema are not fetched: this build has no
/// resolver for files or URLs, so a remote `$ref` is an error. `pattern`s
/// run on the linear-time `regex` engine, so no payload can make a check
/// backtrack (a pattern with look-around is refused when written).
pub fn compile(schema: &Value) -> std::result::Result<Validator, String> {
    jsonschema::draft202012::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|e| describe(&e, "schema"))
}

/// Checks an event's data (JSON text, as ingested) against a compiled
/// schema: what ingest pays per event of a type with a schema. The common
/// case, valid data, takes the validator's fast path; only a failure
/// walks the errors to describe them.
pub fn check_data(v: &Validator, data: &str) -> std::result::Result<(), String> {
    let value: Value = serde_json::from_str(data).map_err(|e| format!("data: {e}"))?;
    if v.is_valid(&value) {
        return Ok(());
    }
    Err(violation(v, &value, "data").unwrap_or_else(|| "data: breaks the schema".into()))
}

/// The first way `value` breaks the schema, naming where (under `root`,
/// the field it came in) and which rule, and how many more there are.
pub fn violation(v: &Validator, value: &Value, root: &str) -> Option<String> {
    let mut errors = v.iter_errors(value);
    let first = errors.next()?;
    let more = errors.take(99).count();
    let mut m = describe(&first, root);
    if more > 0 {
        m.push_str(&format!(" (and {more} more)"));
    }
    Some(m)
}

/// `data/amount: -5 is less than the minimum of 0 (rule "minimum" at
/// schema /properties/amount/minimum)`.
fn describe(e: &jsonschema::ValidationError<'_>, root: &str) -> String {
    let schema_path = e.schema_path().to_string();
    let rule = schema_path.rsplit('/').next().unwrap_or_default();
    format!(
        "{root}{}: {e} (rule {rule:?} at schema {})",
        e.instance_path(),
        if schema_path.is_empty() {
            "/"
        } else {
            &schema_path
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_violation_names_the_pointer_and_the_rule() {
        let v = compile(&json!({
            "type": "object",
            "properties": {"amount": {"type": "integer", "minimum": 0}},
            "required": ["amount"]
        }))
        .unwrap();
        let m = violation(&v, &json!({"amount": -5}), "data").unwrap();
        assert!(m.starts_with("data/amount: "), "{m}");
        assert!(m.contains("\"minimum\""), "{m}");
        assert!(violation(&v, &json!({"amount": 5}), "data").is_none());
    }

    #[test]
    fn a_bad_schema_is_refused_when_compiled() {
        for bad in [
            json!({"type": "objekt"}),
            json!({"minimum": "zero"}),
            json!({"pattern": "(?=a)b"}),
            json!({"$ref": "https://example.com/schema.json"}),
        ] {
            let e = compile(&bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} compiled"));
            assert!(e.starts_with("schema"), "{e}");
        }
    }

    /// Schemas that recursed without end in older validators compile (or
    /// are refused) without overflowing the stack.
    #[test]
    fn self_referencing_schemas_do_not_recurse_forever() {
        for s in [
            json!({"$ref": "#", "unevaluatedProperties": false}),
            json!({"$dynamicRef": "#", "unevaluatedItems": false}),
            json!({"properties": {"a": {"$ref": "#"}}, "unevaluatedProperties": false}),
        ] {
            if let Ok(v) = compile(&s) {
                let _ = violation(&v, &json!({"a": {"a": {"b": 1}}}), "data");
            }
        }
    }

    #[test]
    fn the_builtin_examples_satisfy_their_schemas() {
        for t in builtin::types() {
            let schema: Value = serde_json::from_str(t.schema.as_deref().unwrap()).unwrap();
            let example: Value = serde_json::from_str(t.example.as_deref().unwrap()).unwrap();
            assert_eq!(
                violation(&compile(&schema).unwrap(), &example, "data"),
                None,
                "{}",
                t.name
            );
        }
    }
}
