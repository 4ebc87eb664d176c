//! The `/` filter: one line of text parsed into terms, applied to the live
//! tail and the dead-letter list. Parsed once when the line is applied,
//! not on every redraw, since every frame filters every kept row.

use dispatch_wire::{AttemptEvent, DeadLetterView, EndpointStats};

/// The `/` filter: `sub:ID`, `tenant:ID`, `type:T` and `status:S` terms,
/// and free words matched anywhere in a row. `tenant:` narrows the
/// endpoints and dead letters to one tenant's (the live tail carries no
/// tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub subscription_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub words: Vec<String>,
}

impl Filter {
    pub fn parse(text: &str) -> Self {
        let mut f = Filter::default();
        for term in text.split_whitespace() {
            if let Some(v) = term.strip_prefix("sub:") {
                f.subscription_id = Some(v.to_string());
            } else if let Some(v) = term.strip_prefix("tenant:") {
                f.tenant_id = Some(v.to_string());
            } else if let Some(v) = term.strip_prefix("type:") {
                f.event_type = Some(v.to_string());
            } else if let Some(v) = term.strip_prefix("status:") {
                f.status = Some(v.to_lowercase());
            } else {
                f.words.push(term.to_lowercase());
            }
        }
        f
    }

    fn words_match(&self, haystack: &str) -> bool {
        let h = haystack.to_lowercase();
        self.words.iter().all(|w| h.contains(w.as_str()))
    }

    pub fn attempt(&self, a: &AttemptEvent) -> bool {
        let status = match (a.ok, a.status_code) {
            (true, _) => "ok".to_string(),
            (false, Some(c)) => c.to_string(),
            (false, None) => "error".to_string(),
        };
        self.subscription_id
            .as_ref()
            .is_none_or(|s| a.subscription_id.as_deref() == Some(s.as_str()))
            && self.event_type.as_ref().is_none_or(|t| a.event_type == *t)
            && self
                .status
                .as_ref()
                .is_none_or(|s| *s == status || (s == "failed" && !a.ok) || (s == "ok" && a.ok))
            && self.words_match(&format!(
                "{} {} {} {} {}",
                a.event_id,
                a.event_type,
                a.subscription_id.as_deref().unwrap_or("task"),
                a.url,
                a.error.as_deref().unwrap_or("")
            ))
    }

    /// Dead letters: `sub:`, `tenant:` and `type:` go to the server; words
    /// filter here.
    pub fn dead_letter(&self, d: &DeadLetterView) -> bool {
        self.words_match(&format!(
            "{} {} {} {} {} {}",
            d.event_id,
            d.event_type,
            d.subscription_id.as_deref().unwrap_or("task"),
            d.tenant_id.as_deref().unwrap_or(""),
            d.url,
            d.last_error.as_deref().unwrap_or("")
        ))
    }

    /// Endpoints: `sub:` and `tenant:` exactly, words anywhere.
    pub fn endpoint(&self, e: &EndpointStats) -> bool {
        self.subscription_id
            .as_ref()
            .is_none_or(|s| e.subscription_id == *s)
            && self
                .tenant_id
                .as_ref()
                .is_none_or(|t| e.tenant_id.as_deref() == Some(t.as_str()))
            && self.words_match(&format!(
                "{} {} {} {}",
                e.subscription_id,
                e.tenant_id.as_deref().unwrap_or(""),
                e.health,
                e.url
            ))
    }
}
