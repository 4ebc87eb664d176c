//! `dispatch-tui` in a real terminal: tmux runs it against the real
//! `dispatchd --dev` binary, and `tmux capture-pane` reads the screen.
//! Skipped with a notice where tmux is not installed.

use std::process::Command;
use std::time::{Duration, Instant};

use dispatch_tests::{Backend, Binary, Receiver, Reply, TestDb, eventually, workspace_binary};
use serde_json::{Value, json};

/// A tmux session running the console; killed on drop.
struct Console {
    session: String,
}

impl Console {
    fn start(url: &str, config_home: &std::path::Path) -> Self {
        let session = format!("dispatch-tui-test-{}", std::process::id());
        let cmd = format!(
            "env XDG_CONFIG_HOME={} TERM=xterm-256color {} --url {url} --refresh-ms 250",
            config_home.display(),
            workspace_binary("dispatch-tui").display()
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "150",
                "-y",
                "40",
                &cmd,
            ])
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux new-session failed");
        Console { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    /// Waits until the screen contains `needle`; the screen on failure.
    async fn wait_for(&self, needle: &str, within: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                return Err(format!("{needle:?} never showed; the screen:\n{s}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .output();
    }
}

/// The number after `│label ` on the Overview's "Now" panel.
fn figure(screen: &str, label: &str) -> Option<i64> {
    let key = format!("│{label} ");
    screen.lines().find_map(|l| {
        let rest = &l[l.find(&key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

async fn stats(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_tmux_matches_stats_replays_and_survives_a_restart() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("notice: tmux is not installed; skipping the console end-to-end test");
        return;
    }
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.always(Reply::status(500));
    let db = TestDb::new(Backend::Sqlite).await;
    let mut daemon = Binary::start_dev(&db, &[]).await;
    let base = daemon.base.clone();
    let http = reqwest::Client::new();
    post(
        &http,
        &base,
        "/subscriptions",
        json!({"id": "good", "url": good.url("/in"), "event_types": ["ok.*"]}),
    )
    .await;
    post(
        &http,
        &base,
        "/subscriptions",
        json!({"id": "bad", "url": bad.url("/in"), "event_types": ["bad.*"], "max_attempts": 2,
               "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10}}),
    )
    .await;
    for i in 0..3 {
        post(
            &http,
            &base,
            "/events",
            json!({"id": format!("dead{i}"), "type": "bad.thing", "data": {"i": i}}),
        )
        .await;
    }
    let dead_ready = eventually(Duration::from_secs(15), || async {
        stats(&http, &base).await["deliveries"]["dead"] == 3
    })
    .await;
    assert!(dead_ready, "3 dead letters");

    let home = tempfile::tempdir().unwrap();
    let console = Console::start(&base, home.path());
    console
        .wait_for("· connected ·", Duration::from_secs(10))
        .await
        .unwrap();

    // 1,000 events flow while the Overview is compared with /admin/stats.
    let producer = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            for b in 0..20 {
                let events: Vec<Value> = (0..50)
                    .map(|i| json!({"id": format!("ok{b}_{i}"), "type": "ok.thing", "data": {"i": i}}))
                    .collect();
                post(&http, &base, "/events/batch", json!({"events": events})).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut compared = 0;
    while !producer.is_finished() || compared < 3 {
        let before = stats(&http, &base).await["deliveries"]["delivered"]
            .as_i64()
            .unwrap();
        // One refresh (250 ms) and the time to draw it.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let screen = console.screen();
        let after = stats(&http, &base).await["deliveries"]["delivered"]
            .as_i64()
            .unwrap();
        let shown = figure(&screen, "delivered").unwrap_or_else(|| panic!("{screen}"));
        assert!(
            before <= shown && shown <= after,
            "shown {shown}, /admin/stats {before}..{after}:\n{screen}"
        );
        compared += 1;
    }
    producer.await.unwrap();

    // Keys are answered while deliveries run at full speed.
    let keys_at_speed = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let events: Vec<Value> = (0..1000)
                .map(|i| json!({"id": format!("fast{i}"), "type": "ok.thing", "data": {}}))
                .collect();
            for chunk in events.chunks(100) {
                post(&http, &base, "/events/batch", json!({"events": chunk})).await;
            }
        })
    };
    let mut answers = Vec::new();
    for (key, shows) in [
        ("2", "Deliveries: live tail"),
        ("1", "│Deliveries"),
        ("2", "Deliveries: live tail"),
        ("1", "│Deliveries"),
    ] {
        console.keys(&[key]);
        answers.push(
            console
                .wait_for(shows, Duration::from_secs(5))
                .await
                .unwrap(),
        );
    }
    keys_at_speed.await.unwrap();
    eprintln!("console: keys answered in {answers:?} while delivering");
    assert!(good.wait_for(2000, Duration::from_secs(60)).await.len() >= 2000);

    // Once the flow settles the Overview equals /admin/stats exactly.
    let settled = eventually(Duration::from_secs(10), || async {
        let s = stats(&http, &base).await;
        let screen = console.screen();
        figure(&screen, "delivered") == s["deliveries"]["delivered"].as_i64()
            && figure(&screen, "dead") == Some(3)
            && figure(&screen, "pending") == Some(0)
    })
    .await;
    assert!(settled, "{}", console.screen());

    // Dead letters: three listed; inspect one; replay it from the console.
    console.keys(&["3"]);
    console
        .wait_for("Dead letters: 3 listed", Duration::from_secs(5))
        .await
        .unwrap();
    console.keys(&["Enter"]);
    console
        .wait_for("Payload", Duration::from_secs(5))
        .await
        .unwrap();
    let detail = console.screen();
    assert!(detail.contains("answered 500"), "{detail}");
    bad.always(Reply::status(200));
    console.keys(&["r"]);
    console
        .wait_for("Replay dead letter", Duration::from_secs(5))
        .await
        .unwrap();
    console.keys(&["y"]);
    // The receiver saw 3 × 2 failed attempts, then the replay.
    let got = bad.wait_for(7, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 7, "the replayed dead letter is delivered once");
    assert_eq!(got[6].json()["id"], "dead0", "the one inspected");
    console
        .wait_for("Dead letters: 2 listed", Duration::from_secs(5))
        .await
        .unwrap();
    let s = stats(&http, &base).await;
    assert_eq!(s["deliveries"]["dead"], 2);

    // The daemon dies: the console says so, then recovers on its own.
    let port = daemon.port;
    daemon.kill9().await;
    console
        .wait_for("disconnected, retrying", Duration::from_secs(5))
        .await
        .unwrap();
    let daemon = Binary::start_dev_on(&db, port, &[]).await;
    console
        .wait_for("· connected ·", Duration::from_secs(10))
        .await
        .unwrap();
    console
        .wait_for("Dead letters: 2 listed", Duration::from_secs(5))
        .await
        .unwrap();
    console.keys(&["q"]);
    drop(daemon);
}
