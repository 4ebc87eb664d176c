//! `dispatchd plugin check|run`: validate a component against the WIT, or
//! run a plugin once on an event and print what it decided. The flags are
//! declared here, next to what they run; `main.rs` only dispatches.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::{Config, PluginConfig};

/// The `plugin` subcommands.
#[derive(Subcommand)]
pub enum PluginCommand {
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

/// `dispatchd plugin check|run`: exit 0 when the plugin is valid (check) or
/// decided something (run), 1 when it failed, 2 for bad arguments.
pub fn run(
    cmd: &PluginCommand,
    config: Option<&std::path::Path>,
    env: &[(String, String)],
) -> std::process::ExitCode {
    use std::process::ExitCode;
    match cmd {
        PluginCommand::Check { file } => match super::load_file("check", &PluginConfig::at(file)) {
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
        },
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
            let (ev, request) = match super::stage::dry_run_input(&raw, url) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("dispatchd: {}: {e}", event.display());
                    return ExitCode::from(2);
                }
            };
            let loaded = match super::load_file(plugin, &pc) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("dispatchd: plugin {plugin}: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            match super::stage::dry_run(loaded, &ev, request) {
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
