//! `dispatch-bench`: a load tool for dispatchd.
//!
//! Starts a dispatchd (or targets one with `--url`), runs a fast receiver on
//! 127.0.0.1, creates subscriptions to it, drives events for a fixed time
//! (as fast as possible or at `--rate`, single POSTs over `--connections`
//! keep-alive connections or batches of `--batch`), then reports ingest and
//! delivery rates, ingest latency, ingest-to-delivery latency, errors,
//! dispatchd's peak RSS and the CPU per delivered event (dispatchd and
//! PostgreSQL). Loopback only and bounded in time.

mod cpu;
mod daemon;
mod receiver;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::{Parser, ValueEnum};
use serde_json::json;

use daemon::Daemon;
use receiver::Receiver;
use report::{Report, percentile};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Load dispatchd and measure it.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Store of the dispatchd this tool starts.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server for `--backend postgres` (a fresh database is
    /// created on it and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Target a running dispatchd instead of starting one (it must reach
    /// this tool's receiver on 127.0.0.1: run it with --dev). Peak RSS is
    /// then not reported.
    #[arg(long)]
    url: Option<String>,
    /// The dispatchd executable to start (default: next to this one).
    #[arg(long)]
    dispatchd: Option<PathBuf>,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Events per second in total (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Concurrent keep-alive connections sending.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per request: 1 posts to /events, more to /events/batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Subscriptions matching every event (each event fans out to all).
    #[arg(long, default_value_t = 1)]
    subscriptions: usize,
    /// dispatchd nodes to start on one PostgreSQL database; producers'
    /// connections are spread over them round robin.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Producers speak HTTP/2 without TLS (h2c, prior knowledge): their
    /// requests share one connection per node instead of one each.
    #[arg(long)]
    h2c: bool,
    /// Spread the events over this many tenants, each with one
    /// subscription of its own (instead of `--subscriptions` global ones):
    /// every event still reaches exactly one endpoint. 0: no tenants.
    #[arg(long, default_value_t = 0)]
    tenants: usize,
    /// Give the events this many ordering keys (round robin) and the
    /// subscriptions `"ordering": "per_key"`: each key's deliveries go
    /// one at a time. 0: unordered.
    #[arg(long, default_value_t = 0)]
    ordering_keys: usize,
    /// Serve the receiver over HTTPS (a certificate made for 127.0.0.1,
    /// trusted by the subscriptions with `tls.ca_pem`), offering only
    /// HTTP/1.1 (`h1`) or HTTP/2 first (`h2`).
    #[arg(long, value_enum)]
    https: Option<receiver::Https>,
    /// Register `bench.created` in the event-type catalogue with a
    /// 10-property JSON Schema for the events' data, so ingest checks
    /// every event against it.
    #[arg(long)]
    schema: bool,
    /// Run each delivery through the example plugin chain (redact-fields
    /// from plugins/dist/; run scripts/build-plugins.sh first).
    #[arg(long)]
    plugins: bool,
    /// Pause every subscription before sending (`POST
    /// /admin/subscriptions/{id}/pause`): deliveries are stored parked, none
    /// is sent, and the run measures ingest alone.
    #[arg(long)]
    paused: bool,
    /// Bytes of padding in each event's data.
    #[arg(long, default_value_t = 100)]
    payload_bytes: usize,
    /// How long to wait after sending for deliveries to catch up, seconds.
    #[arg(long, default_value_t = 60)]
    drain: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Every this many seconds, print the rates of the last interval to
    /// stderr; the report then compares the first and last intervals'
    /// delivery rates (decay over a long run). 0: off.
    #[arg(long, default_value_t = 0)]
    progress: u64,
}

/// The schema `--schema` registers: the three fields every bench event
/// carries, checked, and seven optional ones it does not.
fn bench_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["t", "n", "pad"],
        "properties": {
            "t": {"type": "integer", "minimum": 0},
            "n": {"type": "integer", "minimum": 0},
            "pad": {"type": "string", "maxLength": 1048576},
            "customer": {"type": "string"},
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "amount": {"type": "number", "minimum": 0},
            "items": {"type": "array", "maxItems": 100},
            "note": {"type": "string", "maxLength": 500},
            "paid": {"type": "boolean"},
            "address": {"type": "object"}
        }
    })
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.connections == 0 || args.duration == 0 {
        bail!("--batch, --connections and --duration must be at least 1");
    }
    let receiver = Receiver::start(args.https).await?;
    let daemon = match &args.url {
        Some(url) => Daemon::external(url),
        None => Daemon::start(&args).await?,
    };
    let mut http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30));
    if args.h2c {
        http = http.http2_prior_knowledge();
    }
    let http = http.build()?;
    if args.tenants > 0 && args.subscriptions != 1 {
        bail!("--tenants gives each tenant one subscription: leave --subscriptions out");
    }
    for t in 0..args.tenants {
        let r = http
            .post(format!("{}/tenants", daemon.base()))
            .json(&json!({"id": format!("t{t}")}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating a tenant: {} {}", r.status(), r.text().await?);
        }
    }
    if args.schema {
        let r = http
            .post(format!("{}/event-types", daemon.base()))
            .json(&json!({"name": "bench.created", "schema": bench_schema()}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!(
                "creating the event type: {} {}",
                r.status(),
                r.text().await?
            );
        }
    }
    let endpoints = args.tenants.max(args.subscriptions);
    for i in 0..endpoints {
        let mut body = json!({
            "url": receiver.url(&format!("/s{i}")),
            "event_types": ["bench.*"],
        });
        if args.tenants > 0 {
            body["tenant_id"] = json!(format!("t{i}"));
        }
        if args.plugins {
            body["plugins"] = json!(["redact"]);
        }
        if args.ordering_keys > 0 {
            body["ordering"] = json!("per_key");
        }
        if let Some(pem) = &receiver.cert_pem {
            body["tls"] = json!({"ca_pem": pem});
        }
        let r = http
            .post(format!("{}/subscriptions", daemon.base()))
            .json(&body)
            .send()
            .await?;
        if r.status() != 201 {
            bail!(
                "creating a subscription: {} {}",
                r.status(),
                r.text().await?
            );
        }
        if args.paused {
            let created: serde_json::Value = r.json().await?;
            let id = created["id"].as_str().unwrap_or_default();
            let r = http
                .post(format!("{}/admin/subscriptions/{id}/pause", daemon.base()))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("pausing a subscription: {} {}", r.status(), r.text().await?);
            }
        }
    }

    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let padding = "x".repeat(args.payload_bytes);
    let send_for = Duration::from_secs(args.duration);
    let pids = daemon.pids();
    let cpu_before = cpu::Sample::take(&pids);
    let started = Instant::now();
    let sent_counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (http, base) = (http.clone(), daemon.bases[c % daemon.bases.len()].clone());
        let (accepted, errors, counter) = (accepted.clone(), errors.clone(), sent_counter.clone());
        let padding = padding.clone();
        let (batch, rate, conns) = (args.batch, args.rate, args.connections);
        let tenants = args.tenants as u64;
        let keys = args.ordering_keys as u64;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Each connection's share of a fixed rate, as requests per second.
            let interval = (rate > 0)
                .then(|| Duration::from_secs_f64(conns as f64 * batch as f64 / rate as f64));
            let mut next_at =
                Instant::now() + interval.unwrap_or_default() * c as u32 / conns as u32;
            while started.elapsed() < send_for {
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next_at.into()).await;
                    next_at += iv;
                }
                let n = counter.fetch_add(batch as u64, Ordering::Relaxed);
                let event = |k: u64| {
                    let mut e = json!({"id": format!("b{k}"), "type": "bench.created",
                           "data": {"t": now_us(), "n": k, "pad": padding}});
                    if tenants > 0 {
                        e["tenant_id"] = json!(format!("t{}", k % tenants));
                    }
                    if keys > 0 {
                        e["ordering_key"] = json!(format!("k{}", k % keys));
                    }
                    e
                };
                let t0 = Instant::now();
                let resp = if batch == 1 {
                    http.post(format!("{base}/events"))
                        .json(&event(n))
                        .send()
                        .await
                } else {
                    let events: Vec<_> = (n..n + batch as u64).map(event).collect();
                    http.post(format!("{base}/events/batch"))
                        .json(&json!({"events": events}))
                        .send()
                        .await
                };
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t0.elapsed().as_micros() as u64);
                        accepted.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let intervals = (args.progress > 0).then(|| {
        let every = Duration::from_secs(args.progress);
        let (accepted, receiver) = (accepted.clone(), receiver.clone());
        tokio::spawn(async move {
            // Delivered/s of each interval that lay wholly within sending.
            let mut rates = Vec::new();
            let mut ended = Duration::ZERO;
            let (mut last_in, mut last_out) = (0, 0);
            let mut tick = tokio::time::interval_at((Instant::now() + every).into(), every);
            while started.elapsed() < send_for {
                tick.tick().await;
                let (now_in, now_out) = (accepted.load(Ordering::Relaxed), receiver.count());
                let secs = every.as_secs_f64();
                let (rate_in, rate_out) = (
                    (now_in - last_in) as f64 / secs,
                    (now_out - last_out) as f64 / secs,
                );
                eprintln!(
                    "  t={:>5.0}s  accepted {rate_in:>8.0}/s  delivered {rate_out:>8.0}/s  backlog {}",
                    started.elapsed().as_secs_f64(),
                    now_in.saturating_sub(now_out)
                );
                ended += every;
                if ended <= send_for {
                    rates.push(rate_out);
                }
                (last_in, last_out) = (now_in, now_out);
            }
            rates
        })
    });
    let mut ingest_us = Vec::new();
    for t in tasks {
        ingest_us.extend(t.await?);
    }
    let send_secs = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    // With tenants, each event goes to its tenant's one subscription.
    let fan_out = if args.tenants > 0 {
        1
    } else {
        args.subscriptions
    };
    // Paused: every delivery is stored parked, none is expected.
    let expected = if args.paused {
        0
    } else {
        accepted * fan_out as u64
    };

    // Drain: wait until every accepted event reached every subscription.
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
    while receiver.count() < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = receiver.count();
    let cpu_used = cpu_before.until(cpu::Sample::take(&pids));
    let interval_rates = match intervals {
        Some(task) => task.await?,
        None => Vec::new(),
    };
    let deliver_secs = receiver
        .last_at()
        .map_or(send_secs, |t| t.duration_since(started).as_secs_f64());
    let mut e2e = receiver.latencies_us();
    ingest_us.sort_unstable();
    e2e.sort_unstable();
    let report = Report {
        backend: match (&args.url, args.backend) {
            (Some(_), _) => "external".into(),
            (None, Backend::Sqlite) => "sqlite".into(),
            (None, Backend::Postgres) => "postgres".into(),
        },
        mode: format!(
            "{}{}",
            if args.batch == 1 {
                format!("single POST /events over {} connections", args.connections)
            } else {
                format!(
                    "POST /events/batch of {} over {} connections",
                    args.batch, args.connections
                )
            },
            match (args.paused, args.https) {
                (true, _) => ", delivery paused",
                (false, None) => "",
                (false, Some(receiver::Https::H1)) => ", delivered over HTTPS with HTTP/1.1",
                (false, Some(receiver::Https::H2)) => ", delivered over HTTPS with HTTP/2 offered",
            }
        ),
        paused: args.paused,
        rate: args.rate,
        plugins: args.plugins,
        subscriptions: endpoints,
        tenants: args.tenants,
        ordering_keys: args.ordering_keys,
        schema: args.schema,
        send_secs,
        accepted,
        ingest_rate: accepted as f64 / send_secs,
        delivered,
        expected,
        delivered_rate: delivered as f64 / deliver_secs.max(1e-9),
        ingest_p50_ms: percentile(&ingest_us, 50.0) / 1000.0,
        ingest_p99_ms: percentile(&ingest_us, 99.0) / 1000.0,
        e2e_p50_ms: percentile(&e2e, 50.0) / 1000.0,
        e2e_p95_ms: percentile(&e2e, 95.0) / 1000.0,
        e2e_p99_ms: percentile(&e2e, 99.0) / 1000.0,
        errors: errors.load(Ordering::Relaxed),
        duplicates: receiver.duplicates(),
        versions: receiver.versions(),
        peak_rss_mb: daemon.peak_rss_mb(),
        nodes: daemon.bases.len(),
        h2c: args.h2c,
        cpu: (!pids.is_empty()).then_some(cpu_used),
        interval_delivered: match interval_rates.as_slice() {
            [first, .., last] => Some((*first, *last)),
            _ => None,
        },
    };
    daemon.stop().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{report}");
    }
    if delivered < expected {
        bail!(
            "{} of {expected} deliveries did not arrive within --drain",
            expected - delivered
        );
    }
    Ok(())
}
