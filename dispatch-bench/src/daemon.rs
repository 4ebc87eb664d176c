//! The dispatchd under test: the nodes this tool started (one, or several
//! sharing one PostgreSQL database), or an external one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{Args, Backend};

pub struct Daemon {
    /// Each node's base URL; producers' connections are spread over them.
    pub bases: Vec<String>,
    children: Vec<tokio::process::Child>,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl Daemon {
    pub fn external(url: &str) -> Self {
        Daemon {
            bases: vec![url.trim_end_matches('/').to_string()],
            children: Vec::new(),
            _dir: None,
            pg_drop: None,
        }
    }

    /// The first node's base URL (where setup requests go).
    pub fn base(&self) -> &str {
        &self.bases[0]
    }

    /// The started nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|c| c.id()).collect()
    }

    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let exe = match &args.dispatchd {
            Some(p) => p.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("no directory")?
                .join("dispatchd"),
        };
        if !exe.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p dispatchd) or pass --dispatchd",
                exe.display()
            );
        }
        if args.nodes > 1 && args.backend != Backend::Postgres {
            bail!("--nodes above 1 needs --backend postgres (nodes share its database)");
        }
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("dispatch.toml");
        let mut toml = format!(
            "[plugin_host]\ncache_dir = {:?}\nwatch_interval_ms = 0\n",
            dir.path().join("cache")
        );
        if args.plugins {
            let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../plugins/dist/redact_fields.wasm");
            if !wasm.exists() {
                bail!(
                    "{} is missing: run scripts/build-plugins.sh",
                    wasm.display()
                );
            }
            toml.push_str(&format!(
                "[plugins.redact]\npath = {:?}\n[plugins.redact.settings]\npointers = [\"/pad\"]\n",
                wasm.canonicalize()?
            ));
        }
        std::fs::write(&config, toml)?;
        let mut database_url = None;
        let mut pg_drop = None;
        if args.backend == Backend::Postgres {
            let name = format!("dispatch_bench_{}", std::process::id());
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&args.pg_url)
                .await
                .with_context(|| format!("connecting to {}", args.pg_url))?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut admin)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            let base = args
                .pg_url
                .rsplit_once('/')
                .map_or(args.pg_url.as_str(), |(b, _)| b);
            database_url = Some(format!("{base}/{name}"));
            pg_drop = Some((args.pg_url.clone(), name));
        }
        let mut daemon = Daemon {
            bases: Vec::new(),
            children: Vec::new(),
            _dir: None,
            pg_drop,
        };
        for _ in 0..args.nodes.max(1) {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut cmd = tokio::process::Command::new(&exe);
            cmd.arg("--dev")
                .arg("--config")
                .arg(&config)
                .env("ADDR", format!("127.0.0.1:{port}"))
                .env(
                    "DISPATCH_DATABASE__SQLITE_PATH",
                    dir.path().join("bench.db"),
                )
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            if let Some(url) = &database_url {
                cmd.env("DATABASE_URL", url);
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            daemon.children.push(child);
            let base = format!("http://127.0.0.1:{port}");
            wait_ready(&base).await?;
            daemon.bases.push(base);
        }
        daemon._dir = Some(dir);
        Ok(daemon)
    }

    /// Peak resident memory (VmHWM) of the started nodes (the largest).
    pub fn peak_rss_mb(&self) -> Option<f64> {
        self.pids()
            .into_iter()
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let kb: f64 = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some(kb / 1024.0)
            })
            .reduce(f64::max)
    }

    pub async fn stop(mut self) {
        for child in &mut self.children {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for child in &mut self.children {
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        if let Some((url, name)) = self.pg_drop.take()
            && let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/ready")).send().await
            && r.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("dispatchd at {base} did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
