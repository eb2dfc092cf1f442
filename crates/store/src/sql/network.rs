//! The project IP access list (`network_access`): entries by project and key, each written
//! with its event in one unit of work. A put locks the project's row first, so two puts to one
//! project (on any node) are ordered, and each writes the event of what it changed: an entry
//! new or past its end is `ADDED`, one whose comment or end changed is `UPDATED`, one sent
//! again unchanged writes nothing.

use tessera_domain::access::AccessEntry;
use tessera_domain::network::{NetworkEntry, NetworkTarget};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::GroupId;

use super::*;
use crate::{NetworkPut, NetworkStore, StoreError, StoreResult};

fn entry_from_row(row: &impl RowGet) -> StoreResult<NetworkEntry> {
    let key: String = row.try_get("entry")?;
    let kind: String = row.try_get("kind")?;
    let malformed = || StoreError::Backend(format!("malformed network access entry {key:?}"));
    let target = match kind.as_str() {
        "sg" => NetworkTarget::AwsSecurityGroup(key.clone()),
        "ip" | "cidr" => NetworkTarget::Addr(AccessEntry {
            net: key.parse().map_err(|_| malformed())?,
            is_cidr: kind == "cidr",
        }),
        _ => return Err(malformed()),
    };
    Ok(NetworkEntry {
        target,
        comment: row.try_get("comment")?,
        delete_after: row
            .try_get::<Option<i64>, _>("delete_after")?
            .map(from_millis),
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn kind(t: &NetworkTarget) -> &'static str {
    match t {
        NetworkTarget::Addr(a) if a.is_cidr => "cidr",
        NetworkTarget::Addr(_) => "ip",
        NetworkTarget::AwsSecurityGroup(_) => "sg",
    }
}

#[async_trait::async_trait]
impl<D: Dialect> NetworkStore for SqlStore<D> {
    async fn list_network_access(&self, group: GroupId) -> StoreResult<Vec<NetworkEntry>> {
        let rows = query("SELECT * FROM network_access WHERE group_id = ? ORDER BY entry")
            .bind(group.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn put_network_access(
        &self,
        group: GroupId,
        puts: &[NetworkPut],
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let exists = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(group.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let mut events = Vec::new();
        for put in puts {
            let e = &put.entry;
            let key = e.target.key();
            let before = query("SELECT * FROM network_access WHERE group_id = ? AND entry = ?")
                .bind(group.to_string())
                .bind(&key)
                .fetch_optional(&mut *work)
                .await?
                .as_ref()
                .map(entry_from_row)
                .transpose()?
                .filter(|b| b.is_active(now));
            let (created, event) = match &before {
                None => (e.created_at, &put.added),
                Some(b) if b.comment == e.comment && b.delete_after == e.delete_after => continue,
                Some(b) => (b.created_at, &put.updated),
            };
            query(
                "INSERT INTO network_access (group_id, entry, kind, comment, delete_after, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (group_id, entry) DO UPDATE SET \
                 kind = excluded.kind, comment = excluded.comment, \
                 delete_after = excluded.delete_after, created_at = excluded.created_at",
            )
            .bind(group.to_string())
            .bind(&key)
            .bind(kind(&e.target))
            .bind(e.comment.clone())
            .bind(e.delete_after.map(to_millis))
            .bind(to_millis(created))
            .execute(&mut *work)
            .await?;
            events.push(event.clone());
        }
        super::people::enforce_limit(
            &mut work,
            group,
            tessera_domain::limits::NETWORK_ENTRIES,
            "SELECT COUNT(*) FROM network_access WHERE group_id = ? \
             AND (delete_after IS NULL OR delete_after > ?)",
            Some(now),
        )
        .await?;
        work.commit_all(&events, &[]).await?;
        Ok(true)
    }

    async fn delete_network_access(
        &self,
        group: GroupId,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        // An entry past its end is already gone: deleting it removes the row, but no event.
        let gone = query(
            "DELETE FROM network_access WHERE group_id = ? AND entry = ? RETURNING delete_after",
        )
        .bind(group.to_string())
        .bind(key)
        .fetch_optional(&mut *work)
        .await?;
        let Some(gone) = gone else {
            return Ok(false);
        };
        let end: Option<i64> = gone.try_get("delete_after")?;
        if end.is_some_and(|end| end <= to_millis(now)) {
            work.commit_all(&[], &[]).await?;
            return Ok(false);
        }
        work.commit_all(events, &[]).await?;
        Ok(true)
    }
}
