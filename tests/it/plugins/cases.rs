//! `dispatchd plugin test`: every example plugin passes the cases beside
//! it, and a case that is wrong fails with a line naming the field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dispatch_tests::{plugin_wasm, run_dispatchd_within};

fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// Runs `dispatchd plugin test` (JavaScript and Python components take
/// seconds to compile on a busy machine: the shared cache saves that).
async fn plugin_test(wasm: &Path, cases: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let (wasm, cases) = (wasm.display().to_string(), cases.display().to_string());
    let mut args = vec!["plugin", "test", &wasm, "--cases", &cases];
    args.extend_from_slice(extra);
    let cache = dispatch_tests::shared_plugin_cache().display().to_string();
    run_dispatchd_within(
        Duration::from_secs(120),
        &args,
        &[("DISPATCH_PLUGIN_HOST__CACHE_DIR", cache)],
    )
    .await
}

#[tokio::test]
async fn every_example_plugin_passes_its_cases() {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(plugins_dir()).unwrap().flatten() {
        let cases = entry.path().join("cases");
        if !cases.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().replace('-', "_");
        let wasm = plugin_wasm(&format!("{name}.wasm"));
        let n = std::fs::read_dir(&cases)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count();
        runs.push(tokio::spawn(async move {
            let (code, out) = plugin_test(&wasm, &cases, &[]).await;
            (name, n, code, out)
        }));
    }
    assert!(runs.len() >= 7, "the examples have cases: {}", runs.len());
    for run in runs {
        let (name, n, code, out) = run.await.unwrap();
        assert_eq!(code, Some(0), "{name}: {out}");
        let plural = if n == 1 { "" } else { "s" };
        assert!(
            out.contains(&format!("{n} case{plural}: {n} passed, 0 failed")),
            "{name}: {out}"
        );
        let ok = out.lines().filter(|l| l.starts_with("ok    ")).count();
        assert_eq!(ok, n, "a line per case: {out}");
    }
}

#[tokio::test]
async fn a_wrong_expectation_fails_with_a_diff_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let case = |file: &str, body: &str| std::fs::write(tmp.path().join(file), body).unwrap();
    // Right but for one field of the payload, and a header that is absent.
    case(
        "a-wrong.json",
        r#"{"event": {"type": "payment.created", "data": {"card": {"number": "4242"}, "n": 1}},
            "settings": {"pointers": ["/card/number"]},
            "expect": {"decision": "deliver", "request": {
                "payload": {"card": {"number": "[hidden]"}, "n": 1},
                "headers": {"x-redacted": "yes"}}}}"#,
    );
    // The same, right: it passes beside the failures.
    case(
        "b-right.json",
        r#"{"event": {"type": "payment.created", "data": {"card": {"number": "4242"}}},
            "expect": {"decision": "deliver", "request": {"payload": {"card": {"number": "[redacted]"}}}}}"#,
    );
    // A typo in a key is an invalid case, not a silent pass.
    case(
        "c-typo.json",
        r#"{"event": {"type": "x", "data": {}}, "expect": {"decision": "deliver", "reqest": {}}}"#,
    );
    case(
        "d-wrong-decision.json",
        r#"{"event": {"type": "x", "data": {}}, "expect": {"decision": "drop"}}"#,
    );
    case(
        "e-router-input.json",
        r#"{"event": {"type": "x", "data": {}}, "destinations": [], "expect": {"decision": "drop"}}"#,
    );
    case(
        "f-event-typo.json",
        r#"{"event": {"type": "x", "data": {}, "sorce": "shop"}, "expect": {"decision": "deliver"}}"#,
    );
    // `null` removes the --settings file's pointers: nothing is masked.
    case(
        "g-null-removes.json",
        r#"{"event": {"type": "x", "data": {"card": {"number": "4242"}}},
            "settings": {"pointers": null},
            "expect": {"decision": "deliver", "request": {"payload": {"card": {"number": "4242"}}}}}"#,
    );
    // `{}` means no headers at all.
    case(
        "h-no-headers.json",
        r#"{"event": {"type": "x", "data": {}}, "request": {"headers": {"x-a": "1"}},
            "expect": {"decision": "deliver", "request": {"headers": {}}}}"#,
    );
    case(
        "i-drop-with-request.json",
        r#"{"event": {"type": "x", "data": {}}, "expect": {"decision": "drop", "request": {}}}"#,
    );
    // Settings for every case from a TOML file, as dispatch.toml has them.
    let settings = tmp.path().join("settings.toml");
    std::fs::write(&settings, "pointers = [\"/card/number\"]\n").unwrap();
    let (code, out) = plugin_test(
        &plugin_wasm("redact_fields.wasm"),
        tmp.path(),
        &["--settings", settings.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    for line in [
        "FAIL  ",
        r#"request.payload.card.number: expected "[hidden]", got "[redacted]""#,
        r#"request.headers.x-redacted: expected "yes", got null"#,
        "b-right.json",
        "expect.reqest: unknown field `reqest`",
        r#"decision: expected "drop", got "deliver""#,
        "this plugin is a transformer: give `request`, not `destinations`",
        "event.sorce is not a field",
        r#"request.headers.x-a: not expected, got "1""#,
        "a \"drop\" sends nothing to compare",
        "9 cases: 2 passed, 7 failed",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    for passed in ["b-right.json", "g-null-removes.json"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("ok    ") && l.ends_with(passed)),
            "{passed}: {out}"
        );
    }

    // Bad arguments: exit 2, saying what is wrong.
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = plugin_test(&plugin_wasm("redact_fields.wasm"), empty.path(), &[]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("holds no *.json cases"), "{out}");
    std::fs::write(&settings, "pointers = [").unwrap();
    let (code, out) = plugin_test(
        &plugin_wasm("redact_fields.wasm"),
        tmp.path(),
        &["--settings", settings.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--settings"), "{out}");
}

/// The C example on one warm instance for many calls: its settings strings
/// are freed every call (an absent one must not be), so a double free
/// would corrupt its heap and show as wrong answers or a trap.
#[tokio::test]
async fn the_c_example_stays_right_on_a_warm_instance() {
    use dispatchd::plugins::{ChainOutcome, Plugins};
    let mut cfg = dispatchd::config::Config::default();
    let tmp = tempfile::tempdir().unwrap();
    super::with_cache(&mut cfg, tmp.path());
    cfg.plugin_host.watch_interval_ms = 0;
    let mut p = super::plugin(
        plugin_wasm("c_field_filter.wasm"),
        serde_json::json!({"field": "status", "equals": "paid"}),
    );
    p.warm = true;
    cfg.plugins.insert("filter".into(), p);
    let plugins = Plugins::start(&cfg).await.unwrap();
    for i in 0..2_000 {
        let (payload, delivers) = match i % 3 {
            0 => (format!(r#"{{"status": "paid", "n": {i}}}"#), true),
            1 => (format!(r#"{{"status": "pending", "n": {i}}}"#), false),
            _ => (format!(r#"{{"n": {i}}}"#), false),
        };
        match super::call_directly(&plugins, "filter", &payload) {
            Ok(ChainOutcome::Deliver(r)) => {
                assert!(delivers, "call {i}: delivered {payload}");
                assert_eq!(r.payload, payload, "call {i}");
            }
            Ok(ChainOutcome::Drop { reason, .. }) => {
                assert!(!delivers, "call {i}: dropped {payload}: {reason}");
                assert!(reason.starts_with("c-field-filter: "), "{reason}");
            }
            Err(e) => panic!("call {i}: {e}"),
        }
    }
}
