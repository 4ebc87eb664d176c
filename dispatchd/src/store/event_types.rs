//! The event-type catalogue, written once for both backends. Every change
//! bumps `catalogue_version` in its transaction; each node polls the
//! version (`catalogue_version`) and reloads the whole catalogue when it
//! moved, so a schema changed on one node is enforced by all of them
//! within a poll.

use async_trait::async_trait;

use super::{Backend, Page, Result};
use crate::model::EventType;

const INSERT: &str = "INSERT INTO event_types (name, description, schema, deprecated, example, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `created_at` ($6) never changes; compared with itself so both statements
/// bind the same list.
const UPDATE: &str = "UPDATE event_types SET description = $2, schema = $3, deprecated = $4, \
     example = $5, updated_at = $7 WHERE name = $1 AND $6 = $6";

const VERSION: &str = "SELECT value FROM dispatch_meta WHERE key = 'catalogue_version'";

const BUMP: &str = "UPDATE dispatch_meta SET value = value + 1 WHERE key = 'catalogue_version'";

/// The catalogue: documented event types and their schemas.
#[async_trait]
pub trait EventTypeStore: Backend {
    async fn create_event_type(&self, t: &EventType) -> Result<()> {
        write(self, t, INSERT).await.map(|_| ())
    }

    /// Replaces a type's fields; false when it does not exist.
    async fn update_event_type(&self, t: &EventType) -> Result<bool> {
        write(self, t, UPDATE).await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        Ok(on!(self.reads(), |p| sqlx::query_as(
            "SELECT * FROM event_types WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(p)
        .await?))
    }

    /// A page of types by name.
    async fn list_event_types(&self, page: &Page) -> Result<Vec<EventType>> {
        Ok(on!(self.reads(), |p| sqlx::query_as(
            "SELECT * FROM event_types WHERE CAST($1 AS TEXT) IS NULL OR name > $1 \
             ORDER BY name LIMIT $2"
        )
        .bind(&page.after)
        .bind(i64::from(page.limit))
        .fetch_all(p)
        .await?))
    }

    /// False when there is no such type.
    async fn delete_event_type(&self, name: &str) -> Result<bool> {
        let mut tx = self.writes().begin(self.work()).await?;
        on!(tx, |c| sqlx::query(BUMP)
            .execute(&mut **c)
            .await?
            .rows_affected());
        let n = on!(tx, |c| sqlx::query(
            "DELETE FROM event_types WHERE name = $1"
        )
        .bind(name)
        .execute(&mut **c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The catalogue's version: moves with every change, on any node.
    async fn catalogue_version(&self) -> Result<i64> {
        Ok(on!(self.reads(), |p| sqlx::query_scalar(VERSION)
            .fetch_one(p)
            .await?))
    }

    /// The whole catalogue and the version it was read at, in one
    /// transaction (a change between the two reads makes the catalogue
    /// look older than it is, so the next poll reloads it again).
    async fn event_types(&self) -> Result<(i64, Vec<EventType>)> {
        let mut tx = self.reads().begin(self.work()).await?;
        let read = on!(tx, |c| (
            sqlx::query_scalar(VERSION).fetch_one(&mut **c).await?,
            sqlx::query_as("SELECT * FROM event_types ORDER BY name")
                .fetch_all(&mut **c)
                .await?,
        ));
        tx.commit().await?;
        Ok(read)
    }
}

async fn write<S: Backend + ?Sized>(
    store: &S,
    t: &EventType,
    statement: &'static str,
) -> Result<bool> {
    let mut tx = store.writes().begin(store.work()).await?;
    on!(tx, |c| sqlx::query(BUMP)
        .execute(&mut **c)
        .await?
        .rows_affected());
    let n = on!(tx, |c| sqlx::query(statement)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.schema)
        .bind(t.deprecated)
        .bind(&t.example)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut **c)
        .await?
        .rows_affected());
    tx.commit().await?;
    Ok(n == 1)
}
