//! The tenants role, written once for both backends: tenants and their
//! tokens. A tenant change bumps `subscriptions_version` like a
//! subscription change, because ingest checks tenants against the same
//! snapshot (an event for a deleted tenant must not fan out).

use async_trait::async_trait;

use super::rows::{self, TenantRow, TokenRow};
use super::subscriptions::delete_undelivered;
use super::{Backend, Page, Result};
use crate::model::{Millis, Tenant, TenantRemoval, TenantToken};

const INSERT_TENANT: &str = "INSERT INTO tenants (id, name, metadata, rate_limit, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// `created_at` ($5) never changes; compared with itself so both statements
/// bind the same list.
const UPDATE_TENANT: &str = "UPDATE tenants SET name = $2, metadata = $3, rate_limit = $4, \
     updated_at = $6 WHERE id = $1 AND $5 = $5";

macro_rules! token_columns {
    () => {
        "SELECT id, tenant_id, token_hash, description, expires_at, created_at, last_used_at \
         FROM tenant_tokens"
    };
}

/// Tenants and their API tokens.
#[async_trait]
pub trait TenantStore: Backend {
    async fn create_tenant(&self, t: &Tenant) -> Result<()> {
        write_tenant(self, t, INSERT_TENANT).await.map(|_| ())
    }

    /// Replaces a tenant's fields; false when it does not exist.
    async fn update_tenant(&self, t: &Tenant) -> Result<bool> {
        write_tenant(self, t, UPDATE_TENANT).await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = on!(self.reads(), |p| sqlx::query_as(
            "SELECT * FROM tenants WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        row.map(Tenant::try_from).transpose()
    }

    async fn list_tenants(&self, page: &Page) -> Result<Vec<Tenant>> {
        let found: Vec<TenantRow> = on!(self.reads(), |p| sqlx::query_as(
            "SELECT * FROM tenants WHERE CAST($1 AS TEXT) IS NULL OR id > $1 \
             ORDER BY id LIMIT $2"
        )
        .bind(&page.after)
        .bind(i64::from(page.limit))
        .fetch_all(p)
        .await?);
        rows::all(found)
    }

    /// Deletes the tenant with its subscriptions, its tokens and its
    /// deliveries not yet sent, in one transaction; `None` when there is
    /// no such tenant. Delivered and dead deliveries stay on their events.
    async fn delete_tenant(&self, id: &str) -> Result<Option<TenantRemoval>> {
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        // Subscription rows before their deliveries, as every writer that
        // locks both does (see `delete_subscription`).
        let subs: Vec<String> = on!(tx, |c| sqlx::query_scalar(
            "DELETE FROM subscriptions WHERE tenant_id = $1 RETURNING id"
        )
        .bind(id)
        .fetch_all(&mut **c)
        .await?);
        let deliveries = if subs.is_empty() {
            0
        } else {
            delete_undelivered(&mut tx, &subs).await?
        };
        let tokens = on!(tx, |c| sqlx::query(
            "DELETE FROM tenant_tokens WHERE tenant_id = $1"
        )
        .bind(id)
        .execute(&mut **c)
        .await?
        .rows_affected());
        let tenants = on!(tx, |c| sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        if tenants == 0 {
            // Nothing can belong to a tenant that does not exist; roll back.
            return Ok(None);
        }
        tx.commit().await?;
        self.cache().invalidate();
        Ok(Some(TenantRemoval {
            subscriptions: subs.len() as u64,
            tokens,
            deliveries,
        }))
    }

    async fn create_token(&self, t: &TenantToken) -> Result<()> {
        on!(self.writes(), |p| sqlx::query(
            "INSERT INTO tenant_tokens (id, tenant_id, token_hash, description, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.token_hash)
        .bind(&t.description)
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A page of one tenant's tokens, by id.
    async fn list_tokens(&self, tenant_id: &str, page: &Page) -> Result<Vec<TenantToken>> {
        let found: Vec<TokenRow> = on!(self.reads(), |p| {
            sqlx::query_as(concat!(
            token_columns!(),
            " WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(&page.after)
        .bind(i64::from(page.limit))
        .fetch_all(p)
        .await?
        });
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// Revokes a token of the tenant; false when it has no such token.
    async fn delete_token(&self, tenant_id: &str, token_id: &str) -> Result<bool> {
        let n = on!(self.writes(), |p| sqlx::query(
            "DELETE FROM tenant_tokens WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant_id)
        .bind(token_id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// The token whose SHA-256 is `hash`. Read where a revocation is
    /// visible at once: PostgreSQL's one pool, SQLite's readers (WAL: a
    /// committed revocation is seen by every later read).
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TenantToken>> {
        let row: Option<TokenRow> = on!(self.reads(), |p| sqlx::query_as(concat!(
            token_columns!(),
            " WHERE token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(p)
        .await?);
        Ok(row.map(Into::into))
    }

    /// Records that the token opened a request at `now`.
    async fn touch_token(&self, id: &str, now: Millis) -> Result<()> {
        on!(self.writes(), |p| sqlx::query(
            "UPDATE tenant_tokens SET last_used_at = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }
}

/// Inserts or updates a tenant (the two statements bind the same columns).
async fn write_tenant<S: Backend + ?Sized>(
    store: &S,
    t: &Tenant,
    statement: &'static str,
) -> Result<bool> {
    let rate_limit = t
        .rate_limit
        .map(|r| rows::int(r, "rate_limit"))
        .transpose()?;
    let mut tx = store.writes().begin(store.work()).await?;
    tx.bump_version().await?;
    let n = on!(tx, |c| sqlx::query(statement)
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.metadata)
        .bind(rate_limit)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut **c)
        .await?
        .rows_affected());
    tx.commit().await?;
    store.cache().invalidate();
    Ok(n == 1)
}
