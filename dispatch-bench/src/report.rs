//! What a run measured, as text or JSON.

use std::fmt;

use serde_json::json;

pub struct Report {
    pub backend: String,
    pub mode: String,
    pub rate: u64,
    pub plugins: bool,
    pub subscriptions: usize,
    /// Tenants the events were spread over (0: none).
    pub tenants: usize,
    pub ordering_keys: usize,
    /// Ingest checked every event against a schema.
    pub schema: bool,
    pub send_secs: f64,
    pub accepted: u64,
    pub ingest_rate: f64,
    pub delivered: u64,
    pub expected: u64,
    pub delivered_rate: f64,
    pub ingest_p50_ms: f64,
    pub ingest_p99_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p95_ms: f64,
    pub e2e_p99_ms: f64,
    pub errors: u64,
    pub duplicates: u64,
    /// Deliveries by the HTTP version they arrived over.
    pub versions: std::collections::BTreeMap<String, u64>,
    pub peak_rss_mb: Option<f64>,
    /// Delivered per second in the first and the last full `--progress`
    /// interval.
    pub interval_delivered: Option<(f64, f64)>,
    /// dispatchd nodes that served the run.
    pub nodes: usize,
    /// Producers spoke HTTP/2 without TLS.
    pub h2c: bool,
    /// CPU seconds of the nodes and of PostgreSQL from the first request
    /// to the last delivery (none for an external dispatchd).
    pub cpu: Option<crate::cpu::Sample>,
    /// Delivery paused: CPU is per accepted event.
    pub paused: bool,
}

impl Report {
    /// How much the delivery rate fell from the first interval to the last
    /// (negative: it rose), in percent.
    pub fn decay_pct(&self) -> Option<f64> {
        let (first, last) = self.interval_delivered?;
        (first > 0.0).then(|| (first - last) / first * 100.0)
    }

    /// CPU µs per delivered event (per accepted one with delivery
    /// paused): dispatchd's and PostgreSQL's.
    pub fn cpu_us_per_event(&self) -> Option<(f64, f64)> {
        let cpu = self.cpu?;
        let n = if self.paused {
            self.accepted
        } else {
            self.delivered
        }
        .max(1) as f64;
        Some((cpu.dispatchd * 1e6 / n, cpu.postgres * 1e6 / n))
    }
}

/// The `p`th percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "backend": self.backend,
            "mode": self.mode,
            "target_rate": self.rate,
            "plugins": self.plugins,
            "subscriptions": self.subscriptions,
            "tenants": self.tenants,
            "ordering_keys": self.ordering_keys,
            "schema": self.schema,
            "send_seconds": self.send_secs,
            "accepted": self.accepted,
            "ingest_rate": self.ingest_rate,
            "delivered": self.delivered,
            "expected": self.expected,
            "delivered_rate": self.delivered_rate,
            "ingest_latency_ms": {"p50": self.ingest_p50_ms, "p99": self.ingest_p99_ms},
            "delivery_latency_ms": {"p50": self.e2e_p50_ms, "p95": self.e2e_p95_ms, "p99": self.e2e_p99_ms},
            "errors": self.errors,
            "duplicates": self.duplicates,
            "http_versions": self.versions,
            "peak_rss_mb": self.peak_rss_mb,
            "interval_delivered_rate": self.interval_delivered.map(|(first, last)| json!({"first": first, "last": last})),
            "decay_pct": self.decay_pct(),
            "nodes": self.nodes,
            "h2c": self.h2c,
            "paused": self.paused,
            "cpu_us_per_delivered": self.cpu_us_per_event()
                .map(|(d, p)| json!({"dispatchd": d, "postgres": p, "total": d + p})),
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.rate == 0 {
            "as fast as possible".to_string()
        } else {
            format!("{} events/s", self.rate)
        };
        writeln!(
            f,
            "dispatch-bench: {} backend, {}, {rate}{}{}{}{}",
            self.backend,
            self.mode,
            if self.plugins {
                ", plugin chain on"
            } else {
                ""
            },
            if self.tenants > 0 {
                format!(", spread over {} tenants", self.tenants)
            } else {
                String::new()
            },
            if self.ordering_keys > 0 {
                format!(", ordered over {} keys", self.ordering_keys)
            } else {
                String::new()
            },
            if self.schema {
                ", schema checked at ingest"
            } else {
                ""
            }
        )?;
        writeln!(f, "  sent for           {:.1} s", self.send_secs)?;
        writeln!(
            f,
            "  accepted           {} events ({:.0}/s)",
            self.accepted, self.ingest_rate
        )?;
        writeln!(
            f,
            "  delivered          {} of {} ({:.0}/s)",
            self.delivered, self.expected, self.delivered_rate
        )?;
        writeln!(
            f,
            "  ingest latency     p50 {:.2} ms, p99 {:.2} ms",
            self.ingest_p50_ms, self.ingest_p99_ms
        )?;
        writeln!(
            f,
            "  ingest->delivery   p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            self.e2e_p50_ms, self.e2e_p95_ms, self.e2e_p99_ms
        )?;
        writeln!(f, "  errors             {}", self.errors)?;
        writeln!(f, "  duplicates         {}", self.duplicates)?;
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        writeln!(f, "  http versions      {}", versions.join(", "))?;
        if let (Some((first, last)), Some(decay)) = (self.interval_delivered, self.decay_pct()) {
            writeln!(
                f,
                "  delivered/s        first interval {first:.0}, last full interval {last:.0} (decay {decay:.1}%)"
            )?;
        }
        if self.nodes > 1 || self.h2c {
            writeln!(
                f,
                "  served by          {} node(s), producers over {}",
                self.nodes,
                if self.h2c { "h2c" } else { "HTTP/1.1" }
            )?;
        }
        if let Some((d, p)) = self.cpu_us_per_event() {
            writeln!(
                f,
                "  CPU per {}  {:.0} µs: dispatchd {d:.0} µs, postgres {p:.0} µs",
                if self.paused {
                    "accepted "
                } else {
                    "delivered"
                },
                d + p
            )?;
        }
        match self.peak_rss_mb {
            Some(mb) => writeln!(f, "  dispatchd peak RSS {mb:.1} MiB"),
            None => writeln!(f, "  dispatchd peak RSS n/a (external)"),
        }
    }
}
