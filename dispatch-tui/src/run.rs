//! The event loop: draws, reads keys, refreshes on a timer, and runs the
//! app's commands as background tasks so the screen never waits on the
//! network. Generic over ratatui's backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::KeyEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{App, Cmd, Msg};
use crate::client::Client;

/// Runs until the operator quits or `keys` closes.
pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    client: Client,
    mut app: App,
    mut keys: mpsc::UnboundedReceiver<KeyEvent>,
) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let follower = tokio::spawn(follow(client.clone(), tx.clone()));
    let stats_busy = Arc::new(AtomicBool::new(false));
    let mut next_tick = Instant::now();
    let result = loop {
        terminal.draw(|f| crate::ui::draw(f, &app))?;
        let msg = tokio::select! {
            key = keys.recv() => match key {
                Some(k) => Msg::Key(k),
                None => break Ok(()),
            },
            Some(m) = rx.recv() => m,
            _ = tokio::time::sleep_until(next_tick) => {
                next_tick = Instant::now() + app.refresh;
                Msg::Tick
            }
        };
        let mut pending = vec![msg];
        // Take everything that is already waiting before drawing again.
        while let Ok(m) = rx.try_recv() {
            pending.push(m);
        }
        for msg in pending {
            let was_key = matches!(msg, Msg::Key(_));
            for cmd in app.update(msg) {
                execute(cmd, &client, &tx, &stats_busy);
            }
            if was_key && next_tick > Instant::now() + app.refresh {
                // A faster refresh applies at once.
                next_tick = Instant::now() + app.refresh;
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    follower.abort();
    result
}

/// Follows the attempt stream, reconnecting after a second when it drops.
async fn follow(client: Client, tx: mpsc::UnboundedSender<Msg>) {
    loop {
        let sent = client
            .follow_attempts(|a| {
                let _ = tx.send(Msg::Attempt(a));
            })
            .await;
        if tx.is_closed() {
            return;
        }
        let _ = sent;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn execute(
    cmd: Cmd,
    client: &Client,
    tx: &mpsc::UnboundedSender<Msg>,
    stats_busy: &Arc<AtomicBool>,
) {
    let client = client.clone();
    let tx = tx.clone();
    match cmd {
        Cmd::Quit => {}
        Cmd::FetchStats => {
            // One at a time: a slow daemon must not pile up requests.
            if stats_busy.swap(true, Ordering::AcqRel) {
                return;
            }
            let busy = stats_busy.clone();
            tokio::spawn(async move {
                let r = client.stats().await;
                busy.store(false, Ordering::Release);
                let _ = tx.send(Msg::Stats(r));
            });
        }
        Cmd::FetchDeadLetters {
            subscription_id,
            tenant_id,
            event_type,
        } => {
            tokio::spawn(async move {
                let r = client
                    .dead_letters(
                        subscription_id.as_deref(),
                        tenant_id.as_deref(),
                        event_type.as_deref(),
                    )
                    .await;
                let _ = tx.send(Msg::DeadLetters(r));
            });
        }
        Cmd::FetchDetail(id) => {
            tokio::spawn(async move {
                let _ = tx.send(Msg::Detail(client.dead_letter(id).await));
            });
        }
        Cmd::FetchPlugins => {
            tokio::spawn(async move {
                let _ = tx.send(Msg::Plugins(client.plugins().await));
            });
        }
        Cmd::FetchEventTypes => {
            tokio::spawn(async move {
                let _ = tx.send(Msg::EventTypes(client.event_types().await));
            });
        }
        Cmd::DeadLetters(action, body) => {
            tokio::spawn(async move {
                let r = client
                    .dead_letter_action(action, &body)
                    .await
                    .map(|n| format!("{action}: {n} dead letter{}", if n == 1 { "" } else { "s" }));
                let _ = tx.send(Msg::Done(r));
            });
        }
        Cmd::Endpoint(id, action) => {
            tokio::spawn(async move {
                let r = client
                    .endpoint_action(&id, action)
                    .await
                    .map(|()| format!("{action}: {id}"));
                let _ = tx.send(Msg::Done(r));
            });
        }
        Cmd::ReloadPlugins => {
            tokio::spawn(async move {
                let r = client.reload_plugins().await.map(|out| {
                    let parts: Vec<String> = out
                        .results
                        .iter()
                        .map(|r| match &r.error {
                            Some(e) => format!("{} {} ({e})", r.name, r.status),
                            None => format!("{} {}", r.name, r.status),
                        })
                        .collect();
                    format!("reload: {}", parts.join(", "))
                });
                let _ = tx.send(Msg::Done(r));
            });
        }
    }
}
