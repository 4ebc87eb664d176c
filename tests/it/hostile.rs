//! Hostile receivers cost one attempt each, with a clear recorded error,
//! and never slow down delivery to healthy receivers.

use std::time::{Duration, Instant};

use dispatch_tests::{Backend, Daemon, Receiver, both_backends, raw_receiver};
use serde_json::json;
use tokio::io::AsyncWriteExt;

async fn last_error(d: &Daemon, id: &str) -> String {
    let ev = d
        .wait_event_status(id, "failed", Duration::from_secs(15))
        .await;
    let dl = &ev["deliveries"][0];
    assert_eq!(dl["attempts"], 1, "one attempt: {ev}");
    dl["last_error"].as_str().unwrap_or("").to_string()
}

async fn hostile_receivers_cost_one_attempt(backend: Backend) {
    let healthy = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let one_try = json!({"max_attempts": 1, "timeout_ms": 1500});

    // Headers dripped one byte every 300 ms: the timeout ends it.
    let drip = raw_receiver(|mut s| async move {
        for b in b"HTTP/1.1 200 OK\r\n\r\n" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    // A reset right after the request.
    let reset = raw_receiver(|s| async move {
        // Zero linger: closing sends a reset, not a FIN.
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    // A 1 GiB answer: only 64 KiB is read.
    let huge = raw_receiver(|mut s| async move {
        let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1073741824\r\n\r\n";
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(1024 * 1024 * 1024 / chunk.len()) {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    // TLS spoken to a plain HTTP port.
    let plain = Receiver::start().await;
    let tls_to_plain = format!("https://127.0.0.1:{}/", plain.addr.port());

    for (ty, url) in [
        ("hostile.drip", &drip),
        ("hostile.reset", &reset),
        ("hostile.huge", &huge),
        ("hostile.tls", &tls_to_plain),
    ] {
        d.subscribe(url, &[ty], one_try.clone()).await;
    }
    d.subscribe(&healthy.url("/ok"), &["healthy"], json!({}))
        .await;

    let started = Instant::now();
    for ty in ["drip", "reset", "huge", "tls"] {
        d.send_event(&format!("evt_{ty}"), &format!("hostile.{ty}"), json!({}))
            .await;
    }
    // Healthy deliveries flow at full pace meanwhile.
    for i in 0..50 {
        d.send_event(&format!("ok{i}"), "healthy", json!({})).await;
    }
    healthy.wait_for(50, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "healthy deliveries waited on hostile ones: {:?}",
        started.elapsed()
    );

    let err = last_error(&d, "evt_drip").await;
    assert!(err.contains("timeout"), "{err}");
    let err = last_error(&d, "evt_reset").await;
    assert!(!err.is_empty(), "a reset is recorded");
    let err = last_error(&d, "evt_huge").await;
    assert!(err.contains("500"), "{err}");
    let (_, attempts) = d.get("/events/evt_huge/attempts").await;
    let a = &attempts["data"][0];
    assert_eq!(a["response_body"].as_str().unwrap().len(), 4096);
    assert!(
        a["duration_ms"].as_i64().unwrap() < 1500,
        "stopped after 64 KiB: {a}"
    );
    let err = last_error(&d, "evt_tls").await;
    assert!(err.contains("connection"), "{err}");
    assert_eq!(plain.count(), 0);
    d.finish().await;
}

/// A receiver that answers 2xx and then drips its body still counts as a
/// delivery: it accepted the webhook.
async fn accepted_then_slow_body_is_delivered(backend: Backend) {
    let slow = raw_receiver(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let d = Daemon::start(backend).await;
    d.subscribe(&slow, &["*"], json!({"timeout_ms": 500})).await;
    d.send_event("evt_slow", "a.b", json!({})).await;
    let ev = d
        .wait_event_status("evt_slow", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(ev["deliveries"][0]["attempts"], 1);
    let (_, attempts) = d.get("/events/evt_slow/attempts").await;
    let err = attempts["data"][0]["error"].as_str().unwrap_or("");
    assert!(err.contains("accepted"), "{attempts}");
    d.finish().await;
}

both_backends!(
    hostile_receivers_cost_one_attempt,
    accepted_then_slow_body_is_delivered,
);
