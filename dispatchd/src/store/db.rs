//! The two databases behind one handle, so SQL that is the same in both
//! dialects is run by code written once.
//!
//! `Db` is a pool of either backend and `Tx` a transaction on one. The
//! `on!` macro runs a body on whichever it holds: the body is expanded once
//! per backend, so it type-checks against each dialect's own sqlx types,
//! and where the dialects differ it takes a `pg` and a `sqlite` body side
//! by side. `Tx` also owns the two things that differ in every write: the
//! clock (`now`: the database's `dispatch_now_ms()` on PostgreSQL, so
//! nodes with skewed clocks agree; the process clock on SQLite, the only
//! node) and the wake-up (`wake`: `NOTIFY` inside the transaction on
//! PostgreSQL, an in-process signal after the commit on SQLite).

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::Notify;

use super::{Result, sql};
use crate::model::{Millis, now_ms};

/// Runs `$body` with `$c` bound to the connection (pool or transaction)
/// behind a `Db` or a `Tx`, or one body per dialect:
/// `on!(x, pg => |c| …, sqlite => |c| …)`.
macro_rules! on {
    ($v:expr, |$c:ident| $body:expr) => {
        on!($v, pg => |$c| $body, sqlite => |$c| $body)
    };
    ($v:expr, pg => |$p:ident| $pg:expr, sqlite => |$s:ident| $lite:expr $(,)?) => {
        match $v.conn() {
            $crate::store::db::Conn::Pg($p) => $pg,
            $crate::store::db::Conn::Sqlite($s) => $lite,
        }
    };
}

/// A pool of either backend.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Pg(&'a PgPool),
    Sqlite(&'a SqlitePool),
}

/// What `on!` binds: a pool, or a transaction's connection.
pub enum Conn<P, S> {
    Pg(P),
    Sqlite(S),
}

impl<'a> Db<'a> {
    pub(crate) fn conn(self) -> Conn<&'a PgPool, &'a SqlitePool> {
        match self {
            Db::Pg(p) => Conn::Pg(p),
            Db::Sqlite(p) => Conn::Sqlite(p),
        }
    }

    /// Begins a transaction; `work` is signalled after it commits if it
    /// asked to wake the workers (on PostgreSQL the `NOTIFY` does that for
    /// every node).
    pub(crate) async fn begin(self, work: &Arc<Notify>) -> Result<Tx> {
        let inner = match self {
            Db::Pg(p) => Inner::Pg(p.begin().await?),
            Db::Sqlite(p) => Inner::Sqlite(p.begin().await?),
        };
        Ok(Tx {
            inner,
            now: None,
            wake: false,
            work: work.clone(),
        })
    }
}

enum Inner {
    Pg(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A transaction on either backend.
pub struct Tx {
    inner: Inner,
    now: Option<Millis>,
    wake: bool,
    work: Arc<Notify>,
}

impl Tx {
    /// Whether this is a PostgreSQL transaction (rows can be locked).
    pub(crate) fn is_pg(&self) -> bool {
        matches!(self.inner, Inner::Pg(_))
    }

    pub(crate) fn conn(
        &mut self,
    ) -> Conn<&mut Transaction<'static, Postgres>, &mut Transaction<'static, Sqlite>> {
        match &mut self.inner {
            Inner::Pg(t) => Conn::Pg(t),
            Inner::Sqlite(t) => Conn::Sqlite(t),
        }
    }

    /// The transaction's time, read once.
    pub(crate) async fn now(&mut self) -> Result<Millis> {
        if let Some(now) = self.now {
            return Ok(now);
        }
        let now = on!(
            self,
            pg => |c|
                sqlx::query_scalar("SELECT dispatch_now_ms()")
                    .fetch_one(&mut **c)
                    .await?,
            sqlite => |_c| now_ms(),
        );
        self.now = Some(now);
        Ok(now)
    }

    /// The clock `now` answers from here on, read by another statement.
    pub(crate) fn set_now(&mut self, now: Millis) {
        self.now.get_or_insert(now);
    }

    /// Wakes the queue's workers once this transaction commits.
    pub(crate) async fn wake(&mut self) -> Result<()> {
        if !self.wake {
            self.wake = true;
            if let Conn::Pg(c) = self.conn() {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(WORK_CHANNEL)
                    .execute(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Pg(t) => t.commit().await?,
            Inner::Sqlite(t) => {
                t.commit().await?;
                if self.wake {
                    self.work.notify_one();
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self.inner {
            Inner::Pg(t) => t.rollback().await?,
            Inner::Sqlite(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// `sql::BUMP_VERSION`: the first statement of every subscription
    /// change.
    pub(crate) async fn bump_version(&mut self) -> Result<()> {
        on!(self, |c| {
            sqlx::query(sql::BUMP_VERSION).execute(&mut **c).await?;
        });
        Ok(())
    }

    /// Parks (or, with `unpark`, unparks) these subscriptions' deliveries;
    /// returns how many moved.
    pub(crate) async fn park(&mut self, subs: &[String], unpark: bool) -> Result<u64> {
        let statement = if unpark { sql::UNPARK } else { sql::PARK };
        let now = self.now().await?;
        let mut n = 0;
        for sub in subs {
            n += on!(self, |c| sqlx::query(statement)
                .bind(sub)
                .bind(now)
                .execute(&mut **c)
                .await?
                .rows_affected());
        }
        Ok(n)
    }
}

/// The channel PostgreSQL nodes `LISTEN` on for new work.
pub(crate) const WORK_CHANNEL: &str = "dispatch_work";
