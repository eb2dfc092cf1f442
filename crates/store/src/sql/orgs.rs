//! Server-level values, bootstrap, organizations and projects.

use chrono::{DateTime, Utc};
use sqlx::Transaction;
use tessera_domain::time::to_millis;
use tessera_domain::{ApiKeyId, GroupId, GroupRole, OrgId};

use super::api_keys::{insert_api_key, upsert_key_group};
use super::*;
use crate::events::NewEvent;
use crate::*;
use tessera_domain::EventType;

pub(crate) async fn insert_org<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    org: &Org,
) -> StoreResult<()> {
    query("INSERT INTO orgs (id, name, skip_default_alerts, created_at) VALUES (?, ?, ?, ?)")
        .bind(org.id.to_string())
        .bind(&org.name)
        .bind(org.skip_default_alerts)
        .bind(to_millis(org.created_at))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(crate) async fn insert_group<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    g: &Group,
) -> StoreResult<()> {
    query(
        "INSERT INTO groups (id, org_id, name, with_default_alerts, region_usage_restrictions, tags, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(g.id.to_string())
    .bind(g.org_id.to_string())
    .bind(&g.name)
    .bind(g.with_default_alerts)
    .bind(&g.region_usage_restrictions)
    .bind(tags_json(&g.tags))
    .bind(to_millis(g.created_at))
    .execute(&mut *tx)
    .await
    .map_err(conflict("group_name"))?;
    Ok(())
}

pub(crate) async fn write_new_org<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    new: &NewOrg<'_>,
) -> StoreResult<()> {
    insert_org(tx, new.org).await?;
    if let Some(g) = new.group {
        insert_group(tx, g).await?;
    }
    if let Some(k) = new.api_key {
        insert_api_key(tx, k).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    async fn ping(&self) -> StoreResult<()> {
        query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let row = query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0).map_err(backend))
            .transpose()
    }

    async fn swap_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        // One statement each: the insert loses to a concurrent one on the primary key, and
        // the update re-checks `value` after waiting for a concurrent writer's row lock. A
        // value that changed is in the change log too (every node re-reads the server keys).
        let mut tx = self.work().await?;
        let r = match expected {
            None => {
                query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(new)
            }
            Some(old) => query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(new)
                .bind(key)
                .bind(old),
        }
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::ServerKeys).await?;
        Ok(true)
    }

    async fn bootstrap(
        &self,
        new: NewOrg<'_>,
        at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        let marker = query("INSERT INTO meta (key, value) VALUES ('bootstrapped_at', ?)")
            .bind(tessera_domain::time::format(at))
            .execute(&mut *tx)
            .await;
        match marker {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("bootstrap")),
            Err(e) => return Err(backend(e)),
            Ok(_) => {}
        }
        write_new_org(&mut tx, &new).await?;
        tx.commit(events, Change::ApiKeys).await
    }

    fn api_keys_version(&self) -> Option<u64> {
        Some(self.api_keys_version.load(Ordering::SeqCst))
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        self.dialect.changes()
    }

    fn nudge_feed(&self) {
        self.dialect.nudge();
    }

    async fn close(&self) {
        self.dialect.close().await;
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl<D: Dialect> OrgStore for SqlStore<D> {
    async fn create_org(&self, new: NewOrg<'_>, events: &[NewEvent]) -> StoreResult<()> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        write_new_org(&mut tx, &new).await?;
        tx.commit(events, Change::ApiKeys).await
    }

    async fn create_org_owned(
        &self,
        new: NewOrg<'_>,
        owner: tessera_domain::UserId,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        write_new_org(&mut tx, &new).await?;
        query("INSERT INTO org_members (org_id, user_id, org_roles) VALUES (?, ?, ?)")
            .bind(new.org.id.to_string())
            .bind(owner.to_string())
            .bind(join_roles(&tessera_domain::people::org_roles_of_owner()))
            .execute(&mut *tx)
            .await?;
        tx.commit(events, Change::ApiKeys).await
    }

    async fn get_org(&self, id: OrgId) -> StoreResult<Option<Org>> {
        let row = query("SELECT * FROM orgs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn list_orgs(
        &self,
        ids: &[OrgId],
        name: Option<&str>,
        page: Page,
    ) -> StoreResult<Listed<Org>> {
        if ids.is_empty() {
            return Ok(Listed {
                items: vec![],
                total: 0,
            });
        }
        let placeholders = vec!["?"; ids.len()].join(",");
        let filter = format!(
            "FROM orgs WHERE id IN ({placeholders}){}",
            if name.is_some() {
                // Case-insensitive prefix (Atlas), without LIKE so `%` and `_` stay literal.
                " AND substr(lower(name), 1, length(?)) = lower(?)"
            } else {
                ""
            }
        );
        let count_sql = format!("SELECT COUNT(*) {filter}");
        let page_sql = format!("SELECT * {filter} ORDER BY id LIMIT ? OFFSET ?");
        let (count_sql, page_sql) = (count_sql.clone(), page_sql.clone());
        let mut cq = query(&count_sql);
        let mut pq = query(&page_sql);
        for id in ids {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        if let Some(n) = name {
            cq = cq.bind(n.to_owned()).bind(n.to_owned());
            pq = pq.bind(n.to_owned()).bind(n.to_owned());
        }
        let total = count(&cq.fetch_one(&self.pool).await?)?;
        let rows = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(org_from_row).collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    async fn update_org(
        &self,
        id: OrgId,
        c: &OrgChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Org>> {
        let mut tx = self.work().await?;
        let select = "SELECT * FROM orgs WHERE id = ?";
        let Some(before) = query(locked::<D::Db>(select, None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let before = org_from_row(&before)?;
        query(
            "UPDATE orgs SET name = COALESCE(?, name), skip_default_alerts = COALESCE(?, skip_default_alerts) WHERE id = ?",
        )
        .bind(c.name.as_deref())
        .bind(c.skip_default_alerts)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let after = org_from_row(
            &query(select)
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        // Only what changed is recorded: a PATCH that changes nothing writes no event.
        let events = happened(events, |t| match t {
            EventType::OrgRenamed => before.name != after.name,
            EventType::OrgSettingsChanged => {
                before.skip_default_alerts != after.skip_default_alerts
            }
            _ => before != after,
        });
        tx.commit_all(&events, &[]).await?;
        Ok(Some(after))
    }

    async fn delete_org(&self, id: OrgId, events: &[NewEvent]) -> StoreResult<DeleteOrgOutcome> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        // The org's row lock orders this check after any project being created in it.
        query(locked::<D::Db>("SELECT 1 FROM orgs WHERE id = ?", None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let groups = count(
            &query("SELECT COUNT(*) FROM groups WHERE org_id = ?")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if groups > 0 {
            return Ok(DeleteOrgOutcome::HasProjects);
        }
        let r = query("DELETE FROM orgs WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(DeleteOrgOutcome::NotFound);
        }
        tx.commit(events, Change::Everything).await?;
        Ok(DeleteOrgOutcome::Deleted)
    }

    async fn create_group(
        &self,
        group: &Group,
        creator: Option<ApiKeyId>,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        insert_group(&mut tx, group).await?;
        if let Some(key) = creator {
            upsert_key_group(&mut tx, key, group.id, &[GroupRole::Owner]).await?;
        }
        tx.commit(events, Change::ApiKeys).await
    }

    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>> {
        let row = query("SELECT * FROM groups WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn get_group_by_name(&self, org: OrgId, name: &str) -> StoreResult<Option<Group>> {
        let row = query("SELECT * FROM groups WHERE org_id = ? AND name = ?")
            .bind(org.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn list_groups(
        &self,
        org: OrgId,
        name: Option<&str>,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<Group>> {
        let only: &[GroupId] = match filter {
            GroupFilter::All => &[],
            GroupFilter::Only(ids) if ids.is_empty() => {
                return Ok(Listed {
                    items: vec![],
                    total: 0,
                })
            }
            GroupFilter::Only(ids) => ids,
        };
        let mut where_sql = String::from("FROM groups WHERE org_id = ?");
        if name.is_some() {
            // Case-insensitive prefix match (Atlas), without LIKE so `%` and `_` stay literal.
            where_sql.push_str(" AND substr(lower(name), 1, length(?)) = lower(?)");
        }
        if !only.is_empty() {
            where_sql.push_str(&format!(" AND id IN ({})", vec!["?"; only.len()].join(",")));
        }
        let count_sql = format!("SELECT COUNT(*) {where_sql}");
        let page_sql = format!("SELECT * {where_sql} ORDER BY id LIMIT ? OFFSET ?");
        let (count_sql, page_sql) = (count_sql.clone(), page_sql.clone());
        let mut cq = query(&count_sql).bind(org.to_string());
        let mut pq = query(&page_sql).bind(org.to_string());
        if let Some(n) = name {
            cq = cq.bind(n.to_owned()).bind(n.to_owned());
            pq = pq.bind(n.to_owned()).bind(n.to_owned());
        }
        for id in only {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        let total = count(&cq.fetch_one(&self.pool).await?)?;
        let rows = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(group_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    async fn update_group(
        &self,
        id: GroupId,
        c: &GroupChanges,
        events: &[NewEvent],
    ) -> StoreResult<Option<Group>> {
        let mut tx = self.work().await?;
        let select = "SELECT * FROM groups WHERE id = ?";
        let Some(before) = query(locked::<D::Db>(select, None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let before = group_from_row(&before)?;
        query(
            "UPDATE groups SET name = COALESCE(?, name), with_default_alerts = COALESCE(?, with_default_alerts), \
             tags = COALESCE(?, tags) WHERE id = ?",
        )
        .bind(c.name.as_deref())
        .bind(c.with_default_alerts)
        .bind(c.tags.as_deref().map(tags_json))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(conflict("group_name"))?;
        let after = group_from_row(
            &query(select)
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        // Only what changed is recorded: a PATCH that changes nothing writes no event.
        let events = happened(events, |t| match t {
            EventType::GroupRenamed => before.name != after.name,
            EventType::GroupTagsChanged => before.tags != after.tags,
            EventType::GroupSettingsChanged => {
                before.with_default_alerts != after.with_default_alerts
            }
            _ => before != after,
        });
        tx.commit_all(&events, &[]).await?;
        Ok(Some(after))
    }

    async fn delete_group(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome> {
        let _bump = self.api_keys_change();
        self.delete_group_checked(id, events).await
    }
}
