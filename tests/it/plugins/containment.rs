//! Hostile plugins are contained: each fails only its own delivery, and a
//! thousand hostile calls leave the daemon's memory flat.

use std::time::{Duration, Instant};

use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends, eventually, plugin_wasm};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

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

both_backends!(hostile_plugins_fail_only_their_own_delivery);

/// Fresh instances reuse pool slots whose memory is reset by copying back
/// only the dirtied pages: nothing of an earlier call may survive. The
/// warm instance shows what surviving looks like (so this can fail).
#[tokio::test]
async fn a_fresh_instance_remembers_nothing_of_earlier_calls() {
    use dispatchd::plugins::{ChainOutcome, Plugins};
    let mut cfg = dispatchd::config::Config::default();
    let tmp = tempfile::tempdir().unwrap();
    with_cache(&mut cfg, tmp.path());
    cfg.plugin_host.watch_interval_ms = 0;
    let hostile = plugin_wasm("hostile.wasm");
    cfg.plugins.insert(
        "fresh".into(),
        plugin(&hostile, json!({"mode": "remember"})),
    );
    let mut warm = plugin(&hostile, json!({"mode": "remember"}));
    warm.warm = true;
    cfg.plugins.insert("warm".into(), warm);
    let plugins = Plugins::start(&cfg).await.unwrap();
    let calls = |name: &str| match call_directly(&plugins, name, "{}") {
        Ok(ChainOutcome::Deliver(r)) => r
            .destination
            .headers
            .iter()
            .find(|(k, _)| k == "x-hostile-calls")
            .map(|(_, v)| v.clone())
            .unwrap(),
        other => panic!("{other:?}"),
    };
    // Linux 6.7+ has PAGEMAP_SCAN: there the reused slots are reset by
    // copying back dirtied pages, the path this test is about.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut version = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    if (major, minor) >= (6, 7) {
        assert!(dispatchd::plugins::scanned_resets(), "kernel {release}");
    }
    for _ in 0..50 {
        assert_eq!(calls("fresh"), "1/1");
    }
    let seen: Vec<String> = (0..3).map(|_| calls("warm")).collect();
    assert_eq!(
        seen,
        ["1/1", "2/2", "3/3"],
        "a warm instance keeps its memory"
    );
}

/// `fuel = 0` turns metering off; the deadline still stops a loop.
#[tokio::test]
async fn an_unmetered_plugin_is_still_stopped_by_its_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("dispatch.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.spin]\npath = {:?}\nfuel = 0\ntimeout_ms = 20\n",
            plugin_wasm("hostile.wasm")
        ),
    )
    .unwrap();
    let event = tmp.path().join("event.json");
    std::fs::write(&event, r#"{"type": "x", "data": {"mode": "loop"}}"#).unwrap();
    let started = Instant::now();
    let (code, out) = dispatch_tests::run_dispatchd(
        &[
            "--config",
            config.to_str().unwrap(),
            "plugin",
            "run",
            "spin",
            "--event",
            event.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("ran past its deadline (20 ms per call)"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
}
