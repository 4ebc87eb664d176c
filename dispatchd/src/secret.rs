//! `Secret`: a string that never shows itself. API keys, admin and metrics
//! tokens, the database URL (its password), subscription and task signing
//! secrets live in it, so no log line, error or panic message can carry
//! one by accident: `Debug` and `Display` print `***`. The value is read
//! with `expose()`, where it is really needed (signing, comparing, binding
//! to a statement, connecting).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A string whose `Debug` and `Display` are `***`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its length in bytes (for the minimum-length checks).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_itself() {
        let s = Secret::from("whsec_hunter2");
        assert_eq!(format!("{s:?} {s} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "whsec_hunter2");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"whsec_hunter2\"");
    }
}
