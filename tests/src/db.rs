//! Test databases: `Backend` names a store, `TestDb` makes a fresh one per
//! test (a SQLite file in a temp dir, or a new PostgreSQL database, dropped
//! when the `TestDb` is), and `both_backends!` runs a test on each.

use std::path::PathBuf;
use std::time::Duration;

use dispatchd::config::Config;
use sqlx::Connection;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each named async fn
/// taking a `Backend`: `both_backends!(retries_then_delivers, ...)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::postgres_available().await {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether PostgreSQL answers. Prints a notice (or fails, when CI requires
/// Postgres) if it does not.
pub async fn postgres_available() -> bool {
    let ok = matches!(
        tokio::time::timeout(
            Duration::from_secs(3),
            sqlx::PgConnection::connect(&pg_admin_url())
        )
        .await,
        Ok(Ok(_))
    );
    if !ok {
        if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL at {} is required but not reachable",
                pg_admin_url()
            );
        }
        eprintln!(
            "notice: PostgreSQL not reachable at {}; skipping this PostgreSQL test",
            pg_admin_url()
        );
    }
    ok
}

/// A fresh database for one test.
pub struct TestDb {
    pub backend: Backend,
    /// `postgres://…` or empty for SQLite.
    pub url: String,
    pub sqlite_path: PathBuf,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// A database someone else owns (a private cluster's), left in place.
    pub fn at_url(url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            backend: Backend::Postgres,
            url: url.to_string(),
            sqlite_path: dir.path().join("unused.db"),
            pg_name: None,
            _dir: dir,
        }
    }

    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite_path = dir.path().join("dispatch.db");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: String::new(),
                sqlite_path,
                pg_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("dispatch_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let base = pg_admin_url();
                let url = match base.rfind('/') {
                    Some(i) => format!("{}/{name}", &base[..i]),
                    None => panic!("TEST_PG_URL must end with /database"),
                };
                TestDb {
                    backend,
                    url,
                    sqlite_path,
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A dev-mode configuration pointing at this database, tuned for tests:
    /// quick polls and sweeps.
    pub fn config(&self) -> Config {
        let mut cfg = Config::default().into_dev();
        cfg.database.url = self.url.clone().into();
        cfg.database.sqlite_path = self.sqlite_path.clone();
        cfg.database.max_connections = 5;
        cfg.queue.poll_interval_ms = 100;
        cfg.retention.sweep_interval_secs = 1;
        cfg.shutdown.grace_secs = 5;
        cfg
    }

    /// Rows in `table`, read straight from the database (for what no API
    /// shows, such as attempts left behind by a deleted delivery).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    /// Deliveries not (yet) in state `delivered`, read straight from the
    /// database: what a receiver's count cannot tell (a killed node's send
    /// may have reached the receiver while the delivery is still its).
    pub async fn undelivered(&self) -> i64 {
        self.count_rows("deliveries WHERE state <> 'delivered'")
            .await
    }

    /// Runs one statement straight on the database (to corrupt a row, say,
    /// as no API can).
    pub async fn execute(&self, statement: &'static str) {
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(statement)
                    .execute(&mut c)
                    .await
                    .expect(statement);
            }
            Backend::Sqlite => {
                let url = format!("sqlite://{}", self.sqlite_path.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open");
                sqlx::query(statement)
                    .execute(&mut c)
                    .await
                    .expect(statement);
            }
        }
    }

    /// Drops the PostgreSQL database now (SQLite files go with the temp
    /// dir). Dropping the `TestDb` does the same.
    pub async fn drop_db(&self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

impl Drop for TestDb {
    /// The test is over: its PostgreSQL database goes (`WITH (FORCE)`, so a
    /// node still connected does not keep it). A thread of its own, since
    /// the test's runtime may be gone or busy shutting down.
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        });
        let _ = dropped.join();
    }
}
