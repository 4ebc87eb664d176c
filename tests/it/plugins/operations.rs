//! Running plugins: hot reload under traffic, failures as replayable dead
//! letters, plugins checked where they are named, and `dispatchd plugin
//! check|run`.

use std::path::Path;
use std::time::Duration;

use dispatch_tests::{Backend, Daemon, Receiver, Reply, plugin_wasm, run_dispatchd};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

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
    // The attempt is recorded just after the receiver answered.
    let recorded = || async {
        let (_, a) = d.get("/events/needs_fix/attempts").await;
        a["data"].as_array().is_some_and(|l| l.len() == 3)
    };
    assert!(
        dispatch_tests::eventually(Duration::from_secs(10), recorded).await,
        "the replayed attempt is recorded"
    );
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
    // A compile cache that cannot be written: the plugin still checks,
    // and the answer says it was not cached (not "compiled and cached").
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let cache = file.join("cache").display().to_string();
    let (code, out) = run_dispatchd(
        &["plugin", "check", &path("route_by_field.wasm")],
        &[("DISPATCH_PLUGIN_HOST__CACHE_DIR", cache.clone())],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("compiled; not cached: {cache}")),
        "{out}"
    );
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
