//! Reshapes an event into a Slack-style incoming-webhook message:
//! `{"text": "...", "blocks": [...]}`, sent as the raw body (no envelope).
//! The `title` setting prefixes the text (default: the event type).

use dispatch_plugin::{
    BodyFormat, Decision, Event, Request, Transform, export_transformer, setting,
};
use serde_json::{Value, json};

pub struct SlackMessage;

impl Transform for SlackMessage {
    fn transform(event: Event, request: Request) -> Result<Decision, String> {
        Ok(Decision::Deliver(reshape(
            &event,
            request,
            setting("title").as_deref(),
        )?))
    }
}

export_transformer!(SlackMessage);

/// The request with a Slack message as its raw body.
pub fn reshape(
    event: &Event,
    mut request: Request,
    title: Option<&str>,
) -> Result<Request, String> {
    let data: Value =
        serde_json::from_str(&request.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let title = title.unwrap_or(&request.event_type);
    let mut fields = Vec::new();
    if let Value::Object(map) = &data {
        for (k, v) in map.iter().take(10) {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            fields.push(json!({"type": "mrkdwn", "text": format!("*{k}*\n{shown}")}));
        }
    }
    let text = format!("{title}: event {} ({})", event.id, request.event_type);
    let mut blocks =
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{title}*")}})];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    request.payload = json!({"text": text, "blocks": blocks}).to_string();
    request.format = BodyFormat::Raw;
    request.set_header("content-type", "application/json; charset=utf-8");
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_plugin::Destination;

    #[test]
    fn builds_a_slack_message() {
        let event = Event {
            id: "evt_1".into(),
            event_type: "order.created".into(),
            source: None,
            payload: r#"{"order":"A-1","total":42}"#.into(),
            received_at: 0,
        };
        let req = Request {
            event_type: "order.created".into(),
            payload: event.payload.clone(),
            format: BodyFormat::Envelope,
            destination: Destination {
                subscription_id: "s".into(),
                url: "https://hooks.example.com".into(),
                method: "POST".into(),
                headers: vec![],
            },
        };
        let out = reshape(&event, req, Some("New order")).unwrap();
        assert!(matches!(out.format, BodyFormat::Raw));
        let v: Value = serde_json::from_str(&out.payload).unwrap();
        assert_eq!(v["text"], "New order: event evt_1 (order.created)");
        assert_eq!(v["blocks"][1]["fields"][0]["text"], "*order*\nA-1");
    }
}
