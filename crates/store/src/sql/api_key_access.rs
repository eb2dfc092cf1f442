//! API-key access lists on PostgreSQL (CONTRACT §7, "the same holds for API keys"): the same
//! entries and counters as a service account's list, in `api_key_access_list`.
//!
//! The lock-out check of a delete runs inside the delete's transaction, after the key's row
//! lock (`SELECT … FROM api_keys WHERE id = $1 FOR UPDATE`), which orders it after any other
//! change to the list on any node.

use sqlx::{Pool, Transaction};
use std::net::IpAddr;
use tessera_domain::access::allows;
use tessera_domain::time::to_millis;
use tessera_domain::ApiKeyId;

use super::*;
use crate::events::NewEvent;
use crate::{
    AccessListEntry, AccessUse, ApiKeyRecord, Change, DeleteKeyAccessOutcome, StoreResult,
};

/// Inserts `entry` unless the key already has it; whether a row was written.
async fn insert_entry<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ApiKeyId,
    e: &AccessListEntry,
) -> StoreResult<bool> {
    let r = query(
        "INSERT INTO api_key_access_list (api_key_id, entry, is_cidr, created_at, last_used_at, last_used_address, request_count) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (api_key_id, entry) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(e.entry.key())
    .bind(e.entry.is_cidr)
    .bind(to_millis(e.created_at))
    .bind(e.last_used_at.map(to_millis))
    .bind(&e.last_used_address)
    .bind(limit_i64(e.request_count))
    .execute(&mut *tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Writes a new key's initial list (inside `create_api_key`'s transaction).
pub(super) async fn insert_all<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ApiKeyId,
    entries: &[AccessListEntry],
) -> StoreResult<()> {
    for e in entries {
        insert_entry(tx, id, e).await?;
    }
    Ok(())
}

async fn entries_of<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ApiKeyId,
) -> StoreResult<Vec<AccessListEntry>> {
    query("SELECT * FROM api_key_access_list WHERE api_key_id = ? ORDER BY entry")
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
}

/// Fills in the access lists of `keys` with one query.
pub(super) async fn fill<DB: Exec>(pool: &Pool<DB>, keys: &mut [ApiKeyRecord]) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let placeholders = vec!["?"; keys.len()].join(",");
    let sql = format!(
        "SELECT * FROM api_key_access_list WHERE api_key_id IN ({placeholders}) \
         ORDER BY api_key_id, entry"
    );
    let mut q = query(sql);
    for k in keys.iter() {
        q = q.bind(k.id.to_string());
    }
    let rows = q.fetch_all(pool).await?;
    for row in &rows {
        let key_id = id(row, "api_key_id", ApiKeyId::parse)?;
        let entry = entry_from_row(row)?;
        if let Some(k) = keys.iter_mut().find(|k| k.id == key_id) {
            k.access_list.push(entry);
        }
    }
    Ok(())
}

impl<D: Dialect> SqlStore<D> {
    pub(super) async fn add_key_access(
        &self,
        id: ApiKeyId,
        entries: &[(AccessListEntry, NewEvent)],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let exists = query(locked::<D::Db>("SELECT 1 FROM api_keys WHERE id = ?", None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        let mut events = Vec::with_capacity(entries.len());
        for (entry, event) in entries {
            if insert_entry(&mut tx, id, entry).await? {
                events.push(event.clone());
            }
        }
        tx.commit(&events, Change::ApiKeys).await?;
        Ok(true)
    }

    pub(super) async fn delete_key_access(
        &self,
        id: ApiKeyId,
        entry_key: &str,
        keep_admitting: Option<IpAddr>,
        events: &[NewEvent],
    ) -> StoreResult<DeleteKeyAccessOutcome> {
        let mut tx = self.work().await?;
        // The key's row lock orders this check-then-delete after any other change to the list
        // (on every node): two concurrent deletes cannot lock the caller out together.
        let key_exists = query(locked::<D::Db>("SELECT 1 FROM api_keys WHERE id = ?", None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !key_exists {
            return Ok(DeleteKeyAccessOutcome::NotFound);
        }
        let r = query("DELETE FROM api_key_access_list WHERE api_key_id = ? AND entry = ?")
            .bind(id.to_string())
            .bind(entry_key)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(DeleteKeyAccessOutcome::NotFound);
        }
        if let Some(addr) = keep_admitting {
            let left = entries_of(&mut tx, id).await?;
            if !allows(left.iter().map(|e| &e.entry), addr) {
                // Dropping `tx` rolls the delete back.
                return Ok(DeleteKeyAccessOutcome::WouldLockOut);
            }
        }
        tx.commit(events, Change::ApiKeys).await?;
        Ok(DeleteKeyAccessOutcome::Deleted)
    }

    pub(super) async fn record_key_access_use(
        &self,
        uses: &[AccessUse<ApiKeyId>],
    ) -> StoreResult<()> {
        // Rows in one order on every node, so two nodes' flushes cannot deadlock.
        let mut uses = uses.to_vec();
        uses.sort_by(|x, y| (x.account, &x.entry_key).cmp(&(y.account, &y.entry_key)));
        let mut tx = self.work().await?;
        for u in &uses {
            query(
                "UPDATE api_key_access_list SET last_used_at = ?, last_used_address = ?, \
                 request_count = request_count + ? WHERE api_key_id = ? AND entry = ?",
            )
            .bind(to_millis(u.at))
            .bind(&u.address)
            .bind(limit_i64(u.count))
            .bind(u.account.to_string())
            .bind(&u.entry_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit_all(&[], &[]).await
    }
}
