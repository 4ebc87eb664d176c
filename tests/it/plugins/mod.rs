//! WASM plugins end to end, with the real example components from
//! `plugins/dist/`: a router and a two-plugin chain on the way to a real
//! receiver, signatures over the transformed body, hostile plugins
//! contained (`containment`), hot reload under traffic, replay once a plugin
//! is fixed and the plugin commands (`operations`).

mod cases;
mod containment;
mod operations;
mod scaffold;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dispatch_tests::{
    Backend, Daemon, Receiver, both_backends, plugin_wasm, verify_with_standardwebhooks,
};
use dispatchd::config::{Config, PluginConfig};
use serde_json::{Value, json};

pub(super) const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub(super) fn plugin(file: impl Into<PathBuf>, settings: Value) -> PluginConfig {
    let mut p = PluginConfig::at(file);
    if let Value::Object(map) = settings {
        p.settings = map.into_iter().collect();
    }
    p
}

/// Runs transformer `name` once on the calling thread, on an event and a
/// request whose payload is `payload`.
pub(super) fn call_directly(
    plugins: &dispatchd::plugins::Plugins,
    name: &str,
    payload: &str,
) -> Result<dispatchd::plugins::ChainOutcome, dispatchd::plugins::PluginFailure> {
    use dispatchd::plugins::{BodyFormat, Destination, Request, stage};
    let event = stage::event_of(&dispatchd::model::Event {
        id: "evt_1".into(),
        kind: dispatchd::model::EventKind::Event,
        event_type: "x".into(),
        source: None,
        data: payload.into(),
        idempotency_key: None,
        created_at: 0,
        tenant_id: None,
        channels: Vec::new(),
        ordering_key: None,
    });
    let request = Request {
        event_type: "x".into(),
        payload: payload.into(),
        format: BodyFormat::Envelope,
        destination: Destination {
            subscription_id: "s".into(),
            url: "https://example.com/hook".into(),
            method: "POST".into(),
            headers: vec![],
        },
    };
    plugins.transform_blocking(&[name.to_string()], &event, request)
}

/// Plugins compile into a cache dir of the test's own.
pub(super) fn with_cache(cfg: &mut Config, dir: &Path) {
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

/// JavaScript and Python components compile for seconds: tests share one
/// cache.
pub(super) fn shared_cache(cfg: &mut Config) {
    cfg.plugin_host.cache_dir = dispatch_tests::shared_plugin_cache();
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

both_backends!(
    router_and_chain_deliver_transformed_and_signed,
    rust_javascript_and_python_in_one_chain,
);
