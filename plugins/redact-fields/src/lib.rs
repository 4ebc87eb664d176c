//! Redacts fields of the payload before it leaves: every JSON pointer in
//! the `pointers` setting (a JSON array, e.g. `["/card/number", "/ssn"]`)
//! that exists is replaced by `"[redacted]"`. Pointers that do not exist
//! are ignored; a payload that is not JSON is an error.

use dispatch_plugin::{Decision, Event, Request, Transform, export_transformer, setting};
use serde_json::Value;

pub struct RedactFields;

/// The replacement for redacted values.
pub const MASK: &str = "[redacted]";

impl Transform for RedactFields {
    fn transform(_event: Event, request: Request) -> Result<Decision, String> {
        let pointers = pointers(setting("pointers").as_deref())?;
        redact(request, &pointers).map(Decision::Deliver)
    }
}

export_transformer!(RedactFields);

/// Parses the `pointers` setting (absent: nothing to redact).
pub fn pointers(raw: Option<&str>) -> Result<Vec<String>, String> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let list: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| format!("setting `pointers` must be a JSON array of strings: {e}"))?;
    if let Some(bad) = list.iter().find(|p| !p.is_empty() && !p.starts_with('/')) {
        return Err(format!(
            "setting `pointers`: {bad:?} is not a JSON pointer (start it with /)"
        ));
    }
    Ok(list)
}

/// The request with every pointer's value masked.
pub fn redact(mut request: Request, pointers: &[String]) -> Result<Request, String> {
    if pointers.is_empty() {
        return Ok(request);
    }
    let mut payload: Value =
        serde_json::from_str(&request.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    for p in pointers {
        if let Some(v) = payload.pointer_mut(p) {
            *v = Value::String(MASK.into());
        }
    }
    request.payload = payload.to_string();
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_plugin::{BodyFormat, Destination};

    fn request(payload: &str) -> Request {
        Request {
            event_type: "payment.created".into(),
            payload: payload.into(),
            format: BodyFormat::Envelope,
            destination: Destination {
                subscription_id: "s".into(),
                url: "https://example.com".into(),
                method: "POST".into(),
                headers: vec![],
            },
        }
    }

    #[test]
    fn masks_existing_pointers_and_ignores_missing_ones() {
        let p = pointers(Some(r#"["/card/number", "/nope", "/items/0/secret"]"#)).unwrap();
        let out = redact(
            request(r#"{"card":{"number":"4242","exp":"12/30"},"items":[{"secret":1}]}"#),
            &p,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out.payload).unwrap();
        assert_eq!(v["card"]["number"], MASK);
        assert_eq!(v["card"]["exp"], "12/30");
        assert_eq!(v["items"][0]["secret"], MASK);
    }

    #[test]
    fn bad_settings_and_payloads_are_errors() {
        assert!(pointers(Some("not json")).is_err());
        assert!(pointers(Some(r#"["card"]"#)).is_err());
        let p = pointers(Some(r#"["/a"]"#)).unwrap();
        assert!(redact(request("not json"), &p).is_err());
    }
}
