//! Hot paths, measured with criterion: signing, subscription matching, JSON
//! handling, a schema check at ingest, and a plugin call (fresh instance, warm instance, a chain of
//! three). `cargo bench -p dispatchd --bench hot_paths`; figures and the
//! machine they came from are in BENCHMARKS.md.
//!
//! The plugin benchmarks load the example components from plugins/dist/
//! (scripts/build-plugins.sh builds them) and are skipped with a notice when
//! they are missing.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dispatchd::config::{Config, PluginConfig};
use dispatchd::model::{
    ClaimedDelivery, Event, EventKind, Health, InlineDestination, RetryPolicy, Subscription,
};
use dispatchd::plugins::{BodyFormat, Destination, Plugins, Request, stage};

const BODY: &str = r#"{"order":"A-1042","total":99.5,"currency":"EUR","customer":{"id":"c_77","email":"ada@example.com"},"items":[{"sku":"X1","qty":2},{"sku":"Y9","qty":1}]}"#;

fn event() -> Event {
    Event {
        id: "evt_01J9ZQ3W8Y".into(),
        kind: EventKind::Event,
        event_type: "order.created".into(),
        source: Some("shop".into()),
        data: BODY.into(),
        idempotency_key: None,
        created_at: 1_764_000_000_000,
        tenant_id: None,
        channels: Vec::new(),
        ordering_key: None,
    }
}

fn subscription(id: usize, types: &[&str], plugins: &[&str]) -> Subscription {
    Subscription {
        id: format!("sub_{id}"),
        url: "https://example.com/hook".into(),
        event_types: types.iter().map(|s| s.to_string()).collect(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        headers: BTreeMap::new(),
        rate_limit: None,
        max_attempts: 10,
        retry: RetryPolicy {
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 3_600_000,
        },
        timeout_ms: 30_000,
        plugins: plugins.iter().map(|s| s.to_string()).collect(),
        tenant_id: None,
        channels: None,
        ordering: dispatchd::model::Ordering::None,
        ordering_on_dead: dispatchd::model::OnDead::Skip,
        egress: Default::default(),
        status: dispatchd::model::SubscriptionStatus::Active,
        created_at: 0,
        updated_at: 0,
        health: Health::default(),
    }
}

fn signing(c: &mut Criterion) {
    let body = dispatchd::deliver::envelope(&claimed(vec![]));
    c.bench_function("sign/standard_webhooks_1_secret", |b| {
        b.iter(|| {
            dispatchd::sign::standard_header(
                ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                black_box("evt_01J9ZQ3W8Y"),
                1_764_000_000,
                black_box(&body),
            )
        })
    });
    c.bench_function("sign/x_dispatch_signature", |b| {
        b.iter(|| dispatchd::sign::dispatch_header("a-signing-secret", black_box(&body)))
    });
}

fn matching(c: &mut Criterion) {
    let subs: Vec<Subscription> = (0..1000)
        .map(|i| match i % 4 {
            0 => subscription(i, &["order.*"], &[]),
            1 => subscription(i, &["invoice.paid", "invoice.failed"], &[]),
            2 => subscription(i, &["user.created"], &[]),
            _ => subscription(i, &["*"], &[]),
        })
        .collect();
    let e = event();
    c.bench_function("match/1000_subscriptions", |b| {
        b.iter(|| dispatchd::matching::select(black_box(&subs), black_box(&e)).count())
    });
}

fn claimed(plugins: Vec<&str>) -> ClaimedDelivery {
    ClaimedDelivery {
        id: 1,
        run: 1,
        attempt: 1,
        claim: 1,
        max_attempts: 10,
        event: event(),
        subscription: Some(subscription(1, &["order.*"], &plugins)),
        subscription_id: Some("sub_1".into()),
        inline: InlineDestination::default(),
    }
}

fn json(c: &mut Criterion) {
    let body = format!(r#"{{"id":"evt_1","type":"order.created","source":"shop","data":{BODY}}}"#);
    c.bench_function("json/parse_event_in", |b| {
        b.iter(|| {
            serde_json::from_slice::<dispatch_wire::EventIn>(black_box(body.as_bytes())).unwrap()
        })
    });
    let d = claimed(vec![]);
    c.bench_function("json/envelope", |b| {
        b.iter(|| dispatchd::deliver::envelope(black_box(&d)))
    });
}

/// What ingest adds per event when its type has a schema: parse the data
/// and validate it. A typical 1 KB order against a 10-property schema
/// (types, a numeric range, an enum, a pattern, a nested object, an array).
fn schema_check(c: &mut Criterion) {
    let schema = serde_json::json!({
        "type": "object",
        "required": ["order_id", "amount", "currency", "customer", "items"],
        "properties": {
            "order_id": {"type": "string", "pattern": "^A-[0-9]+$"},
            "amount": {"type": "number", "minimum": 0, "maximum": 1000000},
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "customer": {
                "type": "object",
                "required": ["id", "email"],
                "properties": {"id": {"type": "string"}, "email": {"type": "string"}}
            },
            "items": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "object", "required": ["sku", "qty"],
                          "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}
            },
            "paid": {"type": "boolean"},
            "note": {"type": "string", "maxLength": 2000},
            "channel": {"type": "string"},
            "created": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }
    });
    let items: Vec<_> = (0..6)
        .map(|i| serde_json::json!({"sku": format!("SKU-{i:04}"), "qty": i + 1}))
        .collect();
    let data = serde_json::json!({
        "order_id": "A-1042", "amount": 99.5, "currency": "EUR",
        "customer": {"id": "c_77", "email": "ada@example.com"},
        "items": items, "paid": true, "channel": "web", "created": 1_764_000_000_000u64,
        "tags": ["gift", "priority"], "note": "x".repeat(560)
    })
    .to_string();
    assert!((900..1200).contains(&data.len()), "{} bytes", data.len());
    let v = dispatchd::catalogue::compile(&schema).expect("the schema compiles");
    assert_eq!(dispatchd::catalogue::check_data(&v, &data), Ok(()));
    c.bench_function("schema/check_1kb_10_properties", |b| {
        b.iter(|| dispatchd::catalogue::check_data(black_box(&v), black_box(&data)))
    });
    c.bench_function("schema/compile_10_properties", |b| {
        b.iter(|| dispatchd::catalogue::compile(black_box(&schema)))
    });
}

fn dist(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(file);
    p.exists().then_some(p)
}

fn plugin_calls(c: &mut Criterion) {
    let (Some(redact), Some(hostile), Some(slack)) = (
        dist("redact_fields.wasm"),
        dist("hostile.wasm"),
        dist("slack_message.wasm"),
    ) else {
        eprintln!(
            "notice: plugins/dist is missing (run scripts/build-plugins.sh); skipping plugin benchmarks"
        );
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = Config::default().into_dev();
    cfg.plugin_host.cache_dir = cache.path().to_path_buf();
    cfg.plugin_host.watch_interval_ms = 0;
    let with = |path: &PathBuf, warm: bool, settings: &[(&str, &str)]| {
        let mut p = PluginConfig::at(path);
        p.warm = warm;
        p.settings = settings
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        p
    };
    let pointers = [("pointers", r#"["/customer/email"]"#)];
    cfg.plugins
        .insert("redact".into(), with(&redact, false, &pointers));
    cfg.plugins
        .insert("redact_warm".into(), with(&redact, true, &pointers));
    cfg.plugins.insert("tag".into(), with(&hostile, false, &[]));
    cfg.plugins
        .insert("tag2".into(), with(&hostile, false, &[]));
    cfg.plugins
        .insert("tag3".into(), with(&hostile, false, &[]));
    cfg.plugins
        .insert("tag_warm".into(), with(&hostile, true, &[]));
    cfg.plugins.insert("slack".into(), with(&slack, false, &[]));
    cfg.plugins
        .insert("slack_warm".into(), with(&slack, true, &[]));
    // `fuel = 0`: the same plugins without fuel metering.
    for (name, path, settings) in [
        ("redact_unmetered", &redact, &pointers[..]),
        ("tag_unmetered", &hostile, &[]),
        ("slack_unmetered", &slack, &[]),
    ] {
        let mut p = with(path, false, settings);
        p.fuel = 0;
        cfg.plugins.insert(name.into(), p);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugins: Arc<Plugins> = rt.block_on(Plugins::start(&cfg)).unwrap();
    let ev = stage::event_of(&event());
    let request = Request {
        event_type: "order.created".into(),
        payload: BODY.into(),
        format: BodyFormat::Envelope,
        destination: Destination {
            subscription_id: "sub_1".into(),
            url: "https://example.com/hook".into(),
            method: "POST".into(),
            headers: vec![],
        },
    };
    let mut run = |name: &str, chain: &[&str], ev: &dispatchd::plugins::Event| {
        let chain: Vec<String> = chain.iter().map(|s| s.to_string()).collect();
        c.bench_function(name, |b| {
            b.iter(|| {
                plugins
                    .transform_blocking(&chain, ev, request.clone())
                    .unwrap()
            })
        });
    };
    // The host's own cost: a plugin that only adds a header (the hostile
    // fixture on a payload without a mode).
    let mut bare = ev.clone();
    bare.payload = "0".into();
    run("plugin/overhead_fresh_instance", &["tag"], &bare);
    run("plugin/overhead_warm_instance", &["tag_warm"], &bare);
    run(
        "plugin/chain_of_three_overhead_fresh",
        &["tag", "tag2", "tag3"],
        &bare,
    );
    // A real transform: parse the payload, mask a field, serialize.
    run("plugin/rust_transform_fresh_instance", &["redact"], &ev);
    run("plugin/rust_transform_warm_instance", &["redact_warm"], &ev);
    run(
        "plugin/chain_of_three_fresh",
        &["redact", "tag", "slack"],
        &ev,
    );
    run(
        "plugin/chain_of_three_warm",
        &["redact_warm", "tag_warm", "slack_warm"],
        &ev,
    );
    run(
        "plugin/rust_transform_fresh_unmetered",
        &["redact_unmetered"],
        &ev,
    );
    run(
        "plugin/chain_of_three_fresh_unmetered",
        &["redact_unmetered", "tag_unmetered", "slack_unmetered"],
        &ev,
    );
}

criterion_group!(benches, signing, matching, json, schema_check, plugin_calls);
criterion_main!(benches);
