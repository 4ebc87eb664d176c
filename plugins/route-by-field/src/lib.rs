//! Routes each event by a value in its payload: the `field` setting is a
//! JSON pointer (e.g. `/region`), `routes` a JSON object from values to
//! URLs (e.g. `{"eu": "https://eu.example.com/hook"}`). Every destination
//! of the event goes to the URL its value names. With `drop_unmatched =
//! true`, an event whose value has no route goes nowhere; otherwise it
//! keeps its destinations as they are.

use std::collections::BTreeMap;

use dispatch_plugin::{Destination, Event, Route, export_router, setting};
use serde_json::Value;

pub struct RouteByField;

impl Route for RouteByField {
    fn route(event: Event, destinations: Vec<Destination>) -> Result<Vec<Destination>, String> {
        let rules = Rules::from_settings(
            setting("field").as_deref(),
            setting("routes").as_deref(),
            setting("drop_unmatched").as_deref(),
        )?;
        rules.apply(&event.payload, destinations)
    }
}

export_router!(RouteByField);

/// The router's settings, parsed.
pub struct Rules {
    field: String,
    routes: BTreeMap<String, String>,
    drop_unmatched: bool,
}

impl Rules {
    pub fn from_settings(
        field: Option<&str>,
        routes: Option<&str>,
        drop_unmatched: Option<&str>,
    ) -> Result<Self, String> {
        let field = field.ok_or("setting `field` (a JSON pointer) is required")?;
        if !field.starts_with('/') {
            return Err(format!("setting `field`: {field:?} is not a JSON pointer"));
        }
        let routes = routes.ok_or("setting `routes` (value -> URL) is required")?;
        let routes: BTreeMap<String, String> = serde_json::from_str(routes)
            .map_err(|e| format!("setting `routes` must be a JSON object of URLs: {e}"))?;
        let drop_unmatched = matches!(drop_unmatched, Some("true"));
        Ok(Self {
            field: field.to_string(),
            routes,
            drop_unmatched,
        })
    }

    pub fn apply(
        &self,
        payload: &str,
        mut dests: Vec<Destination>,
    ) -> Result<Vec<Destination>, String> {
        let payload: Value =
            serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let key = match payload.pointer(&self.field) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        match key.and_then(|k| self.routes.get(&k)) {
            Some(url) => {
                for d in &mut dests {
                    d.url = url.clone();
                }
                Ok(dests)
            }
            None if self.drop_unmatched => Ok(Vec::new()),
            None => Ok(dests),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> Destination {
        Destination {
            subscription_id: "s1".into(),
            url: "https://default.example.com".into(),
            method: "POST".into(),
            headers: vec![],
        }
    }

    fn rules(drop: bool) -> Rules {
        Rules::from_settings(
            Some("/region"),
            Some(r#"{"eu":"https://eu.example.com","us":"https://us.example.com"}"#),
            Some(if drop { "true" } else { "false" }),
        )
        .unwrap()
    }

    #[test]
    fn routes_by_value() {
        let out = rules(false)
            .apply(r#"{"region":"eu"}"#, vec![dest()])
            .unwrap();
        assert_eq!(out[0].url, "https://eu.example.com");
    }

    #[test]
    fn unmatched_values_keep_or_drop() {
        let out = rules(false)
            .apply(r#"{"region":"mars"}"#, vec![dest()])
            .unwrap();
        assert_eq!(out[0].url, "https://default.example.com");
        assert!(rules(true).apply(r#"{}"#, vec![dest()]).unwrap().is_empty());
    }

    #[test]
    fn settings_are_checked() {
        assert!(Rules::from_settings(None, Some("{}"), None).is_err());
        assert!(Rules::from_settings(Some("region"), Some("{}"), None).is_err());
        assert!(Rules::from_settings(Some("/r"), Some("[]"), None).is_err());
    }
}
