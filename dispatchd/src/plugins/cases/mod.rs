//! `dispatchd plugin test`: fixture cases that pin what a plugin decides,
//! run in the daemon's sandbox with its limits, without a daemon.
//!
//! A case is one JSON file: the event (as `POST /events` takes it), what
//! the plugin receives beside it (a transformer's `request`, a router's
//! `destinations`), settings, and the expected answer. A transformer's
//! output is checked by the rules the daemon applies before storing it, so
//! a request the daemon would refuse is an `error` here too.

mod diff;
mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use diff::diff;
use model::{Case, Expected, Outcome};

use super::{ChainOutcome, DryRun, Loaded};

/// One case's verdict: the file, and what differed (empty: it passed).
pub struct Verdict {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

/// The case files of `dir`: every `*.json`, by name.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{} holds no *.json cases", dir.display()));
    }
    Ok(files)
}

/// Runs the case in `file` against `plugin`, with `settings` (the
/// `--settings` file's) under the case's own.
pub fn run_case(plugin: &Loaded, settings: &BTreeMap<String, Value>, file: &Path) -> Verdict {
    let problems = match std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|raw| Case::parse(&raw, plugin.is_router()))
    {
        Ok(case) => check(plugin, settings, case),
        Err(e) => vec![format!("invalid case: {e}")],
    };
    Verdict {
        file: file.to_path_buf(),
        problems,
    }
}

fn check(plugin: &Loaded, settings: &BTreeMap<String, Value>, case: Case) -> Vec<String> {
    // The case's settings over the others; `null` removes one.
    let mut all = settings.clone();
    for (k, v) in &case.settings {
        match v {
            Value::Null => all.remove(k),
            v => all.insert(k.clone(), v.clone()),
        };
    }
    let plugin = plugin.with_settings(crate::config::settings_text(&all));
    let event = super::stage::event_of(&case.event);
    let known: Vec<String> = case
        .destinations
        .iter()
        .map(|d| d.subscription_id.clone())
        .collect();
    let outcome = match super::run_once(plugin, &event, case.request, case.destinations) {
        // What the daemon does with an answer before storing it: checks
        // it, and sends the method upper-cased and one value per header.
        Ok(DryRun::Transformed(ChainOutcome::Deliver(mut r))) => {
            match super::stage::inline_of(&case.event, r.clone()) {
                Ok(inline) => {
                    r.destination.method = inline.method.unwrap_or(r.destination.method);
                    r.destination.headers =
                        inline.headers.unwrap_or_default().into_iter().collect();
                    Outcome::Deliver(r)
                }
                Err(m) => Outcome::Error(format!("returned a request that cannot be sent: {m}")),
            }
        }
        Ok(DryRun::Transformed(ChainOutcome::Drop { reason, .. })) => Outcome::Drop(reason),
        Ok(DryRun::Routed(d)) => {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            match super::stage::check_routed(&known, &d) {
                Err(m) => Outcome::Error(m),
                Ok(()) if d.is_empty() => Outcome::Drop(String::new()),
                Ok(()) => Outcome::Routed(d),
            }
        }
        Err(f) => Outcome::Error(f.message),
    };
    compare(&case.expect, &outcome)
}

/// What differs between the expectation and the outcome, one line each.
fn compare(expect: &Expected, got: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if expect.decision != got.decision() {
        problems.push(format!(
            "decision: expected {:?}, got {:?}{}",
            expect.decision,
            got.decision(),
            match got {
                Outcome::Error(m) | Outcome::Drop(m) if !m.is_empty() => format!(" ({m})"),
                _ => String::new(),
            }
        ));
        return problems;
    }
    if let Some(want) = &expect.message {
        let said = match got {
            Outcome::Error(m) | Outcome::Drop(m) => m.as_str(),
            _ => "",
        };
        if !said.contains(want.as_str()) {
            problems.push(format!(
                "message: expected it to contain {want:?}, got {said:?}"
            ));
        }
    }
    match got {
        Outcome::Deliver(r) => {
            if let Some(want) = &expect.request {
                diff(
                    "request",
                    want,
                    &model::request_json(r, want),
                    &mut problems,
                );
            }
        }
        Outcome::Routed(d) => {
            if let Some(want) = &expect.destinations {
                let got: Vec<Value> = d
                    .iter()
                    .zip(want.iter().chain(std::iter::repeat(&Value::Null)))
                    .map(|(d, w)| model::destination_json(d, w))
                    .collect();
                diff(
                    "destinations",
                    &Value::Array(want.clone()),
                    &Value::Array(got),
                    &mut problems,
                );
            }
        }
        _ => {}
    }
    problems
}

/// The `--settings` file: a TOML table (as under `[plugins.NAME.settings]`
/// in dispatch.toml) or, for a `.json` file, a JSON object.
pub fn settings_file(path: &Path) -> Result<BTreeMap<String, Value>, String> {
    use figment::providers::{Format, Toml};
    let bad = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    if path.extension().is_some_and(|x| x == "json") {
        let raw = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
        return serde_json::from_str(&raw).map_err(|e| bad(&e));
    }
    figment::Figment::from(Toml::file_exact(path))
        .extract::<BTreeMap<String, Value>>()
        .map_err(|e| bad(&e))
}

/// A summary line: `3 cases: 2 passed, 1 failed`.
pub fn summary(verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.problems.is_empty()).count();
    let n = verdicts.len();
    format!(
        "{n} case{}: {} passed, {failed} failed",
        if n == 1 { "" } else { "s" },
        n - failed
    )
}

impl Outcome {
    /// The `expect.decision` this outcome satisfies.
    fn decision(&self) -> &'static str {
        match self {
            Self::Deliver(_) | Self::Routed(_) => "deliver",
            Self::Drop(_) => "drop",
            Self::Error(_) => "error",
        }
    }
}
