//! The `dispatchd` binary: parses the flags and hands over to the library
//! (`server::serve`, `server::migrate`, `plugins::cli`). Nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispatchd::config::Config;
use dispatchd::plugins::cli::PluginCommand;

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
    /// Start, check, dry-run or test a WASM plugin.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Plugin(cmd) = &command {
        dispatchd::telemetry::init_stderr_logging();
        return dispatchd::plugins::cli::run(cmd, cli.config.as_deref(), &env);
    }
    let migrating = matches!(command, Command::Migrate);
    // `migrate` only needs the database settings, not API keys.
    let cfg = match Config::load(cli.config.as_deref(), &env, cli.dev || migrating) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("dispatchd: {e}");
            return ExitCode::from(2);
        }
    };
    dispatchd::telemetry::init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dispatchd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        if migrating {
            dispatchd::server::migrate(&cfg).await
        } else {
            dispatchd::server::serve(cfg).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatchd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
