//! WASM plugins end to end, with the real example components from
//! `plugins/dist/`: a router and a two-plugin chain on the way to a real
//! receiver, signatures over the transformed body, hostile plugins
//! contained, hot reload under traffic, and replay once a plugin is fixed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dispatch_tests::{
    Backend, Daemon, Receiver, Reply, both_backends, eventually, plugin_wasm, run_dispatchd,
    verify_with_standardwebhooks,
};
use dispatchd::config::{Config, PluginConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn plugin(file: impl Into<PathBuf>, settings: Value) -> PluginConfig {
    let mut p = PluginConfig::at(file);
    if let Value::Object(map) = settings {
        p.settings = map.into_iter().collect();
    }
    p
}

/// Plugins compile into a cache dir of the test's own.
fn with_cache(cfg: &mut Config, dir: &Path) {
    cfg.plugin_host.cache_dir = dir.join("cache");
}

async fn router_and_chain_deliver_transformed_and_signed(backend: Backend) {
    let rx = Receiver::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let eu = rx.url("/eu");
    let d = Daemon::start_with(backend, |cfg| {
        with_cache(cfg, tmp.path());
        cfg.plugins.insert(
            "region".into(),
            plugin(
                plugin_wasm("route_by_field.wasm"),
                json!({"field": "/region", "routes": {"eu": eu}}),
            ),
        );
        cfg.plugins.insert(
            "redact".into(),
            plugin(
                plugin_wasm("redact_fields.wasm"),
                json!({"pointers": ["/card/number"]}),
            ),
        );
        cfg.plugins.insert(
            "slack".into(),
            plugin(
                plugin_wasm("slack_message.wasm"),
                json!({"title": "Payment"}),
            ),
        );
        cfg.plugin_host.routers = vec!["region".into()];
    })
    .await;
    let sub = d
        .subscribe(
            &rx.url("/default"),
            &["payment.*"],
            json!({"secret": WHSEC, "plugins": ["redact", "slack"]}),
        )
        .await;
    d.send_event(
        "evt_eu",
        "payment.created",
        json!({"region": "eu", "card": {"number": "4242424242424242"}}),
    )
    .await;
    d.send_event(
        "evt_us",
        "payment.created",
        json!({"region": "us", "card": {"number": "5555"}}),
    )
    .await;
    let got = rx.wait_for(2, Duration::from_secs(15)).await;
    let eu_hit = got
        .iter()
        .find(|r| r.path == "/eu")
        .expect("router sent evt_eu to /eu");
    let us_hit = got
        .iter()
        .find(|r| r.path == "/default")
        .expect("unrouted evt_us kept the subscription's URL");
    assert_eq!(eu_hit.header("webhook-id"), "evt_eu");
    assert_eq!(us_hit.header("webhook-id"), "evt_us");
    for hit in [eu_hit, us_hit] {
        let body = String::from_utf8_lossy(&hit.body).to_string();
        assert!(!body.contains("4242") && !body.contains("5555"), "{body}");
        let msg = hit.json();
        assert!(
            msg["text"]
                .as_str()
                .unwrap()
                .starts_with("Payment: event evt_"),
            "{msg}"
        );
        assert!(body.contains("[redacted]"), "{body}");
        assert_eq!(
            hit.header("content-type"),
            "application/json; charset=utf-8"
        );
        // The signature covers the bytes that arrived: the transformed body.
        verify_with_standardwebhooks(WHSEC, hit).unwrap();
    }
    // The stored delivery shows where it went.
    let (_, ev) = d.get("/events/evt_eu").await;
    assert_eq!(ev["deliveries"][0]["url"], rx.url("/eu"), "{ev}");
    assert_eq!(ev["deliveries"][0]["subscription_id"], sub["id"]);
    let (_, list) = d.get("/admin/plugins").await;
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["redact", "region", "slack"]);
    let region = &list["plugins"][1];
    assert_eq!(region["world"], "router");
    assert_eq!(region["invocations"], 2);
    assert_eq!(list["plugins"][0]["invocations"], 2);
    assert_eq!(region["hash"].as_str().unwrap().len(), 64);
    d.finish().await;
}

async fn hostile_plugins_fail_only_their_own_delivery(backend: Backend) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(backend, |cfg| {
        with_cache(cfg, tmp.path());
        let mut p = plugin(plugin_wasm("hostile.wasm"), json!({}));
        p.fuel = 50_000_000;
        // Fuel, not the clock, stops the loop, even on a loaded machine.
        p.timeout_ms = 5000;
        p.memory_mb = 16;
        p.stack_kb = 256;
        cfg.plugins.insert("hostile".into(), p);
    })
    .await;
    d.subscribe(
        &rx.url("/hook"),
        &["*"],
        json!({"plugins": ["hostile"], "max_attempts": 1}),
    )
    .await;
    let cases = [
        ("loop", "ran out of fuel"),
        ("memory", "exceeded its memory limit (16 MiB)"),
        ("recursion", "out-of-bounds memory access"),
        ("deep-stack", "overflowed its stack (256 KiB)"),
        ("sleep", "plugins may not block"),
        ("unreachable", "`unreachable` executed"),
        ("big-output", "memory limit"),
        ("fail", "returned an error: hostile plugin fails on purpose"),
    ];
    for (mode, _) in cases {
        d.send_event(&format!("bad_{mode}"), "t.x", json!({"mode": mode}))
            .await;
    }
    d.send_event("dropped", "t.x", json!({"mode": "drop"}))
        .await;
    for i in 0..20 {
        d.send_event(&format!("ok_{i}"), "t.x", json!({"mode": "ok", "n": i}))
            .await;
    }
    let got = rx.wait_for(20, Duration::from_secs(20)).await;
    assert!(got.iter().all(|r| r.header("x-hostile") == "passed"));
    for (mode, expected) in cases {
        let ev = d
            .wait_event_status(&format!("bad_{mode}"), "failed", Duration::from_secs(20))
            .await;
        let delivery = &ev["deliveries"][0];
        assert_eq!(delivery["state"], "dead");
        let err = delivery["last_error"].as_str().unwrap();
        assert!(
            err.starts_with("plugin 'hostile' failed:") && err.contains(expected),
            "{mode}: {err}"
        );
        let (_, attempts) = d.get(&format!("/events/bad_{mode}/attempts")).await;
        assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "{attempts}");
        assert_eq!(attempts["data"][0]["status_code"], Value::Null);
    }
    let ev = d
        .wait_event_status("dropped", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(ev["deliveries"][0]["state"], "dropped");
    assert_eq!(
        ev["deliveries"][0]["last_error"],
        "dropped by plugin 'hostile': hostile plugin drops on purpose"
    );
    // Nothing but the 20 good events reached the receiver, and plugin
    // failures did not count against the endpoint's circuit.
    assert_eq!(rx.count(), 20);
    let (_, subs) = d.get("/subscriptions").await;
    assert_eq!(
        subs["data"][0]["circuit"]["consecutive_failures"], 0,
        "{subs}"
    );
    let (_, list) = d.get("/admin/plugins").await;
    assert_eq!(list["plugins"][0]["errors"], 8, "{list}");
    assert_eq!(list["plugins"][0]["invocations"], 29, "{list}");
    // The same counts reach /admin/stats through the database (reported
    // once a second), where every node's calls are summed.
    let name = list["plugins"][0]["name"].clone();
    let summed = eventually(Duration::from_secs(5), || async {
        let (_, stats) = d.get("/admin/stats").await;
        stats["plugins"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name).cloned())
            .is_some_and(|p| {
                p["invocations"] == 29 && p["errors"] == 8 && p["mean_us"].as_f64() > Some(0.0)
            })
    })
    .await;
    assert!(summed, "{:#}", d.get("/admin/stats").await.1["plugins"]);
    d.finish().await;
}

/// Resident memory of this process (the in-process daemon's), in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test]
async fn a_thousand_hostile_calls_leave_memory_flat() {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(Backend::Sqlite, |cfg| {
        with_cache(cfg, tmp.path());
        let mut p = plugin(plugin_wasm("hostile.wasm"), json!({}));
        p.fuel = 5_000_000;
        p.memory_mb = 32;
        cfg.plugins.insert("hostile".into(), p);
    })
    .await;
    d.subscribe(
        &rx.url("/hook"),
        &["*"],
        json!({"plugins": ["hostile"], "max_attempts": 1}),
    )
    .await;
    let modes = [
        "memory",
        "unreachable",
        "recursion",
        "deep-stack",
        "big-output",
        "loop",
    ];
    let round = |from: usize, to: usize| {
        let d = &d;
        async move {
            for start in (from..to).step_by(100) {
                let events: Vec<Value> = (start..start + 100)
                    .map(|i| json!({"id": format!("h{i}"), "type": "t.x", "data": {"mode": modes[i % modes.len()]}}))
                    .collect();
                let (status, body) = d.post("/events/batch", json!({"events": events})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            let done = eventually(Duration::from_secs(120), || async {
                let (_, list) = d.get("/admin/plugins").await;
                list["plugins"][0]["invocations"].as_u64() == Some(to as u64)
            })
            .await;
            assert!(done, "the plugin was not called {to} times");
        }
    };
    round(0, 100).await;
    let warm = rss_bytes();
    let started = Instant::now();
    round(100, 1000).await;
    let after = rss_bytes();
    let grown_mb = (after.saturating_sub(warm)) as f64 / 1048576.0;
    println!(
        "900 hostile calls in {:?}; RSS {:.1} MiB -> {:.1} MiB",
        started.elapsed(),
        warm as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert!(
        grown_mb < 48.0,
        "RSS grew {grown_mb:.1} MiB over 900 hostile calls"
    );
    // Still serving: a good event goes through.
    d.send_event("fine", "t.x", json!({"mode": "ok"})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-id"), "fine");
    let (_, list) = d.get("/admin/plugins").await;
    assert_eq!(list["plugins"][0]["errors"], 1000);
    d.finish().await;
}

/// Replaces `path` atomically, as a deploy would.
fn replace(path: &Path, with: &Path) {
    let tmp = path.with_extension("new");
    std::fs::copy(with, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn hot_reload_swaps_a_plugin_while_events_flow() {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live.wasm");
    std::fs::copy(plugin_wasm("redact_fields.wasm"), &live).unwrap();
    let d = Daemon::start_with(Backend::Sqlite, |cfg| {
        with_cache(cfg, tmp.path());
        cfg.plugin_host.watch_interval_ms = 100;
        cfg.plugins.insert("live".into(), plugin(&live, json!({})));
    })
    .await;
    d.subscribe(&rx.url("/hook"), &["*"], json!({"plugins": ["live"]}))
        .await;
    let (_, before) = d.get("/admin/plugins").await;
    let total = 300;
    let producer = {
        let http = d.http.clone();
        let url = d.url("/events");
        tokio::spawn(async move {
            for i in 0..total {
                let r = http
                    .post(&url)
                    .json(&json!({"id": format!("r{i:03}"), "type": "t.x", "data": {"mode": "ok"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    replace(&live, &plugin_wasm("hostile.wasm"));
    producer.await.unwrap();
    let got = rx.wait_for(total, Duration::from_secs(30)).await;
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "every event arrived");
    let swapped = got
        .iter()
        .filter(|r| r.header("x-hostile") == "passed")
        .count();
    assert!(
        swapped > 0 && swapped < total,
        "the new version took over mid-stream ({swapped} of {total})"
    );
    let (_, after) = d.get("/admin/plugins").await;
    assert_ne!(before["plugins"][0]["hash"], after["plugins"][0]["hash"]);
    // An explicit reload of an unchanged file changes nothing.
    let (status, out) = d.post("/admin/plugins/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["results"][0]["status"], "unchanged");
    // A broken file does not replace the working version.
    std::fs::write(tmp.path().join("broken.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    replace(&live, &tmp.path().join("broken.wasm"));
    let (_, out) = d.post("/admin/plugins/reload", json!({})).await;
    assert_eq!(out["results"][0]["status"], "failed", "{out}");
    d.send_event("still_works", "t.x", json!({"mode": "ok"}))
        .await;
    let got = rx.wait_for(total + 1, Duration::from_secs(10)).await;
    assert_eq!(got[total].header("x-hostile"), "passed");
    d.finish().await;
}

#[tokio::test]
async fn plugin_failures_are_dead_letters_replayable_once_fixed() {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("fixable.wasm");
    std::fs::copy(plugin_wasm("hostile.wasm"), &live).unwrap();
    let d = Daemon::start_with(Backend::Sqlite, |cfg| {
        with_cache(cfg, tmp.path());
        cfg.plugin_host.watch_interval_ms = 0;
        cfg.plugins
            .insert("fixable".into(), plugin(&live, json!({"mode": "fail"})));
    })
    .await;
    d.subscribe(
        &rx.url("/hook"),
        &["*"],
        json!({"plugins": ["fixable"], "max_attempts": 2,
               "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10}}),
    )
    .await;
    d.send_event("needs_fix", "order.created", json!({"total": 1}))
        .await;
    let ev = d
        .wait_event_status("needs_fix", "failed", Duration::from_secs(10))
        .await;
    let delivery_id = ev["deliveries"][0]["id"].as_i64().unwrap();
    let (_, dead) = d.get("/admin/dead-letters").await;
    assert_eq!(dead["data"][0]["delivery_id"], delivery_id, "{dead}");
    assert!(
        dead["data"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("hostile plugin fails on purpose")
    );
    // Fix: a plugin that passes the request through (no `pointers` set).
    replace(&live, &plugin_wasm("redact_fields.wasm"));
    let (_, out) = d.post("/admin/plugins/reload", json!({})).await;
    assert_eq!(out["results"][0]["status"], "reloaded", "{out}");
    let (status, out) = d
        .post("/admin/dead-letters/replay", json!({"ids": [delivery_id]}))
        .await;
    assert_eq!((status, out["count"].as_u64()), (StatusCode::OK, Some(1)));
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"], json!({"total": 1}));
    let (_, attempts) = d.get("/events/needs_fix/attempts").await;
    let runs: Vec<(i64, i64)> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["run"].as_i64().unwrap(), a["attempt"].as_i64().unwrap()))
        .collect();
    assert_eq!(runs, [(1, 1), (1, 2), (2, 1)], "{attempts}");
    d.finish().await;
}

#[tokio::test]
async fn plugins_are_checked_where_they_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(Backend::Sqlite, |cfg| {
        with_cache(cfg, tmp.path());
        // A router missing its required settings fails on every event.
        cfg.plugins.insert(
            "misconfigured".into(),
            plugin(plugin_wasm("route_by_field.wasm"), json!({})),
        );
        cfg.plugin_host.routers = vec!["misconfigured".into()];
    })
    .await;
    let (status, body) = d
        .post(
            "/subscriptions",
            json!({"url": "https://example.com/h", "event_types": ["*"], "plugins": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"nope\"")
    );
    let (status, body) = d
        .post(
            "/subscriptions",
            json!({"url": "https://example.com/h", "event_types": ["*"], "plugins": ["misconfigured"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a router is not a transformer: {body}"
    );
    let (status, body) = d
        .post("/events", json!({"id": "r1", "type": "t.x", "data": {}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "plugin_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("setting `field`")
    );
    let (status, _) = d.get("/events/r1").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused event is not stored"
    );
    let (status, body) = d
        .post(
            "/events/batch",
            json!({"events": [{"id": "b1", "type": "t.x", "data": {}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert_eq!(body["results"][0]["error"]["code"], "plugin_failed");
    d.finish().await;
}

/// JavaScript and Python components compile for seconds: tests share one
/// cache (keyed by content hash, so it is never stale) under target/.
fn shared_cache(cfg: &mut Config) {
    cfg.plugin_host.cache_dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache");
}

/// Rust, JavaScript and Python plugins in one chain, in that order: each
/// sees the previous one's output.
async fn rust_javascript_and_python_in_one_chain(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start_with(backend, |cfg| {
        shared_cache(cfg);
        cfg.plugins.insert(
            "redact".into(),
            plugin(
                plugin_wasm("redact_fields.wasm"),
                json!({"pointers": ["/customer/email"]}),
            ),
        );
        let mut js = plugin(plugin_wasm("js_enrich.wasm"), json!({"suffix": ".js"}));
        js.timeout_ms = 2000;
        cfg.plugins.insert("js".into(), js);
        let mut py = plugin(plugin_wasm("py_enrich.wasm"), json!({"suffix": ".py"}));
        py.timeout_ms = 2000;
        py.warm = true;
        cfg.plugins.insert("py".into(), py);
    })
    .await;
    d.subscribe(
        &rx.url("/hook"),
        &["order.*"],
        json!({"secret": WHSEC, "plugins": ["redact", "js", "py"]}),
    )
    .await;
    for i in 0..3 {
        d.send_event(
            &format!("poly_{i}"),
            "order.created",
            json!({"total": 19.995, "customer": {"email": "ada@example.com"}}),
        )
        .await;
    }
    d.send_event("poly_drop", "order.created", json!({"drop": true}))
        .await;
    let got = rx.wait_for(3, Duration::from_secs(60)).await;
    for hit in &got {
        let body = hit.json();
        assert_eq!(body["type"], "order.created.js.py", "{body}");
        assert_eq!(hit.header("x-dispatch-event-type"), "order.created.js.py");
        assert_eq!(body["data"]["customer"]["email"], "[redacted]", "{body}");
        assert_eq!(body["data"]["total_cents"], 2000, "{body}");
        assert_eq!(body["data"]["enriched_by"], "py", "python ran last: {body}");
        assert_eq!(hit.header("x-enriched-by"), "py");
        verify_with_standardwebhooks(WHSEC, hit).unwrap();
    }
    let ev = d
        .wait_event_status("poly_drop", "delivered", Duration::from_secs(30))
        .await;
    assert_eq!(ev["deliveries"][0]["state"], "dropped");
    assert_eq!(
        ev["deliveries"][0]["last_error"],
        "dropped by plugin 'js': js plugin: drop requested"
    );
    let (_, list) = d.get("/admin/plugins").await;
    let stats: Vec<(String, u64)> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["invocations"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stats,
        [
            ("js".to_string(), 4),
            ("py".to_string(), 3),
            ("redact".to_string(), 4)
        ]
    );
    d.finish().await;
}

#[tokio::test]
async fn the_plugin_commands_check_and_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |f: &str| plugin_wasm(f).display().to_string();
    let (code, out) = run_dispatchd(&["plugin", "check", &path("slack_message.wasm")], &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("is a dispatch:plugin@0.1.0 transformer"),
        "{out}"
    );
    let (code, out) = run_dispatchd(&["plugin", "check", &path("route_by_field.wasm")], &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("router"), "{out}");
    // A core module, not a component; and not wasm at all.
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (code, out) = run_dispatchd(&["plugin", "check", &core.display().to_string()], &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("core WebAssembly module, not a component"),
        "{out}"
    );
    let text = tmp.path().join("plugin.wasm");
    std::fs::write(&text, "hello").unwrap();
    let (code, out) = run_dispatchd(&["plugin", "check", &text.display().to_string()], &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not a WebAssembly file"), "{out}");

    // A dry run with the plugin's settings from the config file.
    let config = tmp.path().join("dispatch.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.redact]\npath = {:?}\n[plugins.redact.settings]\npointers = [\"/card\"]\n",
            path("redact_fields.wasm")
        ),
    )
    .unwrap();
    let event = tmp.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"type": "payment.created", "data": {"card": "4242", "n": 1}}"#,
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "plugin",
        "run",
        "redact",
        "--event",
        event.to_str().unwrap(),
    ];
    let (code, out) = run_dispatchd(&args, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    let printed: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("JSON: {out}"));
    assert_eq!(printed["decision"], "deliver");
    let body: Value = serde_json::from_str(printed["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"], json!({"card": "[redacted]", "n": 1}));
    // A failing plugin: exit 1 and the reason.
    std::fs::write(&event, r#"{"type": "x", "data": {"mode": "loop"}}"#).unwrap();
    let (code, out) = run_dispatchd(
        &[
            "plugin",
            "run",
            &path("hostile.wasm"),
            "--event",
            event.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    // Fuel or the deadline, whichever a loaded machine hits first.
    assert!(
        out.contains("ran out of fuel") || out.contains("ran past its deadline"),
        "{out}"
    );
}

both_backends!(
    router_and_chain_deliver_transformed_and_signed,
    rust_javascript_and_python_in_one_chain,
    hostile_plugins_fail_only_their_own_delivery,
);
