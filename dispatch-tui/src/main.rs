//! `dispatch-tui --url URL --token TOKEN`: the operator's console.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dispatch_tui::{app::App, client::Client, run};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use serde::Deserialize;

/// The operator's console for dispatchd: live queue, throughput and latency,
/// dead letters, endpoints and plugins.
///
/// Settings come from flags, then the environment, then the config file.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// dispatchd's base URL [default: http://127.0.0.1:8080].
    #[arg(long, env = "DISPATCH_URL")]
    url: Option<String>,
    /// An admin token (`admin.tokens` in dispatch.toml); none in --dev.
    #[arg(long, env = "DISPATCH_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refresh interval in milliseconds [default: 1000].
    #[arg(long, env = "DISPATCH_TUI_REFRESH_MS")]
    refresh_ms: Option<u64>,
    /// A TOML file with `url`, `token` and `refresh_ms`
    /// [default: $XDG_CONFIG_HOME/dispatch/tui.toml, or ~/.config/dispatch/tui.toml].
    #[arg(long, env = "DISPATCH_TUI_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    token: Option<String>,
    refresh_ms: Option<u64>,
}

fn file_config(explicit: Option<PathBuf>) -> anyhow::Result<FileConfig> {
    let default = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("dispatch/tui.toml"));
    let (path, required) = match explicit {
        Some(p) => (p, true),
        None => match default {
            Some(p) => (p, false),
            None => return Ok(FileConfig::default()),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = file_config(cli.config)?;
    let url = cli
        .url
        .or(file.url)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = cli.token.or(file.token);
    let refresh = Duration::from_millis(
        cli.refresh_ms
            .or(file.refresh_ms)
            .unwrap_or(1000)
            .clamp(250, 30_000),
    );
    let client = Client::new(&url, token)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Keys are read on a thread of their own and handed to the loop.
    let (keys_tx, keys) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if let Event::Key(k) = ev
                && k.kind != KeyEventKind::Release
                && keys_tx.send(k).is_err()
            {
                return;
            }
        }
    });
    let mut terminal = ratatui::init();
    let result = rt.block_on(run::run(
        &mut terminal,
        client,
        App::new(&url, refresh),
        keys,
    ));
    ratatui::restore();
    // The key thread may be blocked in read(): do not wait for it.
    rt.shutdown_background();
    result
}
