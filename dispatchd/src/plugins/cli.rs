//! `dispatchd plugin new|check|run|test`: start a plugin project, validate
//! a component against the WIT, run a plugin once on an event, or run its
//! fixture cases. The flags are declared here, next to what they run;
//! `main.rs` only dispatches.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::{Config, PluginConfig};

/// The `plugin` subcommands.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Start a plugin project: the source with a comment per hook,
    /// `build.sh`, a README and `cases/` with a passing case.
    New(super::scaffold::NewArgs),
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
    /// Run fixture cases against a plugin, in the daemon's sandbox: each
    /// `DIR/*.json` holds an event, what the plugin receives, and what it
    /// must answer (plugin-sdk/README.md describes the format).
    Test {
        /// A plugin declared in the config (its limits and settings apply),
        /// or a .wasm file (default limits).
        plugin: String,
        /// The folder of case files.
        #[arg(long, default_value = "cases")]
        cases: PathBuf,
        /// Settings for every case: a TOML table as under
        /// `[plugins.NAME.settings]`, or a .json object. A case's own
        /// `settings` win.
        #[arg(long)]
        settings: Option<PathBuf>,
    },
}

/// A plugin named on the command line: one declared in the config, or a
/// file with default limits, and the compile cache the daemon would use
/// (`plugin_host.cache_dir`), so a second `plugin test` of an unchanged
/// component skips compiling it. A `--config` that does not load is an
/// error, not a silent fallback to reading the name as a file.
fn resolve(
    plugin: &str,
    config: Option<&std::path::Path>,
    env: &[(String, String)],
) -> Result<(PluginConfig, PathBuf), String> {
    match Config::load(config, env, true) {
        Ok(c) => Ok((
            c.plugins
                .get(plugin)
                .cloned()
                .unwrap_or_else(|| PluginConfig::at(plugin)),
            c.plugin_host.cache_dir,
        )),
        Err(e) if config.is_some() => Err(e.to_string()),
        Err(_) => Ok((
            PluginConfig::at(plugin),
            crate::config::PluginHostConfig::default().cache_dir,
        )),
    }
}

/// `dispatchd plugin ...`: exit 0 when the plugin is valid (check), decided
/// something (run) or passed every case (test); 1 when it failed; 2 for bad
/// arguments.
pub fn run(
    cmd: &PluginCommand,
    config: Option<&std::path::Path>,
    env: &[(String, String)],
) -> std::process::ExitCode {
    use std::process::ExitCode;
    match cmd {
        PluginCommand::Check { file } => {
            let cache = match resolve("", config, env) {
                Ok((_, cache)) => cache,
                Err(e) => {
                    eprintln!("dispatchd: {e}");
                    return ExitCode::from(2);
                }
            };
            check(file, &cache)
        }
        PluginCommand::New(args) => super::scaffold::run(args),
        PluginCommand::Test {
            plugin,
            cases,
            settings,
        } => match resolve(plugin, config, env) {
            Ok((pc, cache)) => test(plugin, &pc, &cache, cases, settings.as_deref()),
            Err(e) => {
                eprintln!("dispatchd: {e}");
                ExitCode::from(2)
            }
        },
        PluginCommand::Run { plugin, event, url } => {
            let (pc, cache) = match resolve(plugin, config, env) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("dispatchd: {e}");
                    return ExitCode::from(2);
                }
            };
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
            let loaded = match super::load_file(plugin, &pc, &cache) {
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

/// `dispatchd plugin check`: the world it implements, or why it is not a
/// usable plugin.
fn check(file: &std::path::Path, cache: &std::path::Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    match super::load_file("check", &PluginConfig::at(file), cache) {
        Ok(p) => {
            use super::CacheUse;
            let cache = match &p.cache {
                CacheUse::Loaded => "compiled form from the cache".to_owned(),
                CacheUse::Stored => "compiled and cached".to_owned(),
                CacheUse::NotStored(why) => format!("compiled; not cached: {why}"),
                CacheUse::Off => "compiled".to_owned(),
            };
            println!(
                "ok: {} is a dispatch:plugin@0.1.0 {} ({} bytes, sha256 {}; {cache})",
                file.display(),
                p.world(),
                p.size,
                p.hash,
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

/// `dispatchd plugin test`: a line per case, the differences under a
/// failed one, and a summary.
fn test(
    name: &str,
    pc: &PluginConfig,
    cache: &std::path::Path,
    dir: &std::path::Path,
    settings: Option<&std::path::Path>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let files = match super::cases::case_files(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("dispatchd: {e}");
            return ExitCode::from(2);
        }
    };
    let mut base = pc.settings.clone();
    if let Some(path) = settings {
        match super::cases::settings_file(path) {
            Ok(s) => base.extend(s),
            Err(e) => {
                eprintln!("dispatchd: --settings {e}");
                return ExitCode::from(2);
            }
        }
    }
    let loaded = match super::load_file(name, pc, cache) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dispatchd: plugin {name}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let verdicts: Vec<_> = files
        .iter()
        .map(|f| {
            let v = super::cases::run_case(&loaded, &base, f);
            match v.problems.as_slice() {
                [] => println!("ok    {}", f.display()),
                problems => {
                    println!("FAIL  {}", f.display());
                    for p in problems {
                        println!("        {p}");
                    }
                }
            }
            v
        })
        .collect();
    println!("{}", super::cases::summary(&verdicts));
    if verdicts.iter().all(|v| v.problems.is_empty()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
