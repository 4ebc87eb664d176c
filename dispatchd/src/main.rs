//! The `dispatchd` binary: flags, configuration, logging, then `server::run`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatchd::config::Config;

// glibc's allocator showed up at ~13% of the daemon's CPU under load
// (malloc_consolidate, unlink_chunk: many small short-lived buffers moving
// between the runtime's threads); mimalloc's per-thread free lists do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dispatch: a durable, signed webhook dispatcher.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (see the documented dispatch.toml).
    #[arg(long, short, env = "DISPATCH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Local development: embedded SQLite unless DATABASE_URL is set,
    /// 127.0.0.1 only, no API authentication. Never in production.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and deliver webhooks (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check or dry-run a WASM plugin.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate a component against the plugin interface
    /// (dispatch:plugin@0.1.0, worlds `transformer` and `router`).
    Check {
        /// The component (.wasm).
        file: PathBuf,
    },
    /// Run a plugin once on an event and print what it decided.
    Run {
        /// A plugin declared in the config (its limits and settings apply),
        /// or a .wasm file (default limits, no settings).
        plugin: String,
        /// The event, as POST /events takes it: {"type", "data", ...}.
        #[arg(long)]
        event: PathBuf,
        /// The destination URL the plugin sees.
        #[arg(long, default_value = "https://example.com/webhook")]
        url: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(Command::Plugin(cmd)) = &cli.command {
        // Plugin log lines (the host's `log` import) go to stderr.
        let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
        return plugin_command(cmd, cli.config.as_deref(), &env);
    }
    let migrating = matches!(cli.command, Some(Command::Migrate));
    // `migrate` only needs the database settings, not API keys.
    let cfg = match Config::load(cli.config.as_deref(), &env, cli.dev || migrating) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("dispatchd: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dispatchd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => migrate(&cfg).await,
            Command::Serve => serve(cfg).await,
            Command::Plugin(_) => unreachable!("handled before start-up"),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatchd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let store = dispatchd::store::open(cfg).await.context("migrating")?;
    eprintln!("dispatchd: migrations applied ({})", store.backend());
    Ok(())
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let addr = cfg.listen_addr()?;
    if cfg.dev {
        dev_banner(&cfg, addr);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (server.addr)"))?;
    dispatchd::server::run(
        listener,
        Arc::new(cfg),
        dispatchd::server::shutdown_signal(),
    )
    .await
}

fn dev_banner(cfg: &Config, addr: std::net::SocketAddr) {
    let storage = if cfg.uses_postgres() {
        "PostgreSQL (DATABASE_URL)".to_string()
    } else {
        format!("embedded SQLite at {}", cfg.database.sqlite_path.display())
    };
    eprintln!(
        "\n\
         ==================================================================\n\
         \x20 dispatchd is running in DEV MODE. Do not use it in production.\n\
         \x20   - API authentication is OFF\n\
         \x20   - listening on http://{addr} (loopback only)\n\
         \x20   - storage: {storage}\n\
         ==================================================================\n"
    );
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `dispatchd plugin check|run`: exit 0 when the plugin is valid (check) or
/// decided something (run), 1 when it failed, 2 for bad arguments.
fn plugin_command(
    cmd: &PluginCommand,
    config: Option<&std::path::Path>,
    env: &[(String, String)],
) -> std::process::ExitCode {
    use dispatchd::config::PluginConfig;
    use std::process::ExitCode;
    match cmd {
        PluginCommand::Check { file } => {
            match dispatchd::plugins::load_file("check", &PluginConfig::at(file)) {
                Ok(p) => {
                    println!(
                        "ok: {} is a dispatch:plugin@0.1.0 {} ({} bytes, sha256 {})",
                        file.display(),
                        p.world(),
                        p.size,
                        p.hash
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "dispatchd: {} is not a usable plugin: {e:#}",
                        file.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        PluginCommand::Run { plugin, event, url } => {
            let declared = Config::load(config, env, true)
                .ok()
                .and_then(|c| c.plugins.get(plugin).cloned());
            let pc = declared.unwrap_or_else(|| PluginConfig::at(plugin));
            let raw = match std::fs::read_to_string(event) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("dispatchd: cannot read {}: {e}", event.display());
                    return ExitCode::from(2);
                }
            };
            let (ev, request) = match dispatchd::plugins::stage::dry_run_input(&raw, url) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("dispatchd: {}: {e}", event.display());
                    return ExitCode::from(2);
                }
            };
            let loaded = match dispatchd::plugins::load_file(plugin, &pc) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("dispatchd: plugin {plugin}: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            match dispatchd::plugins::stage::dry_run(loaded, &ev, request) {
                Ok(out) => {
                    println!("{out:#}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dispatchd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
