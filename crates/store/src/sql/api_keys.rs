//! Programmatic API keys: the keys, their org roles and project memberships.

use sqlx::Transaction;
use tessera_domain::time::to_millis;
use tessera_domain::{ApiKeyId, GroupId, GroupRole, OrgId, OrgRole};

use super::*;
use crate::events::NewEvent;
use crate::*;

pub(crate) async fn insert_api_key<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    k: &ApiKeyRecord,
) -> StoreResult<()> {
    query(
        "INSERT INTO api_keys (id, org_id, public_key, description, private_key_masked, \
         ha1_md5_sealed, ha1_sha256_sealed, org_roles, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(k.id.to_string())
    .bind(k.org_id.to_string())
    .bind(&k.public_key)
    .bind(&k.description)
    .bind(&k.private_key_masked)
    .bind(&k.ha1_md5_sealed)
    .bind(&k.ha1_sha256_sealed)
    .bind(join_roles(&k.org_roles))
    .bind(to_millis(k.created_at))
    .execute(&mut *tx)
    .await
    .map_err(conflict("public_key"))?;
    for (group, roles) in &k.group_roles {
        upsert_key_group(tx, k.id, *group, roles).await?;
    }
    api_key_access::insert_all(tx, k.id, &k.access_list).await
}

pub(crate) async fn upsert_key_group<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    key: ApiKeyId,
    group: GroupId,
    roles: &[GroupRole],
) -> StoreResult<()> {
    query(
        "INSERT INTO api_key_groups (api_key_id, group_id, roles) VALUES (?, ?, ?) \
         ON CONFLICT (api_key_id, group_id) DO UPDATE SET roles = excluded.roles",
    )
    .bind(key.to_string())
    .bind(group.to_string())
    .bind(join_roles(roles))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl<D: Dialect> SqlStore<D> {
    /// Fills in project memberships and access lists for a page of keys, with one query each.
    async fn with_group_roles(
        &self,
        mut keys: Vec<ApiKeyRecord>,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        if keys.is_empty() {
            return Ok(keys);
        }
        let placeholders = vec!["?"; keys.len()].join(",");
        let sql = format!(
            "SELECT api_key_id, group_id, roles FROM api_key_groups WHERE api_key_id IN ({placeholders}) \
             ORDER BY api_key_id, group_id"
        );
        let mut q = query(&sql);
        for k in &keys {
            q = q.bind(k.id.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        for row in rows {
            let key_id = id(&row, "api_key_id", ApiKeyId::parse)?;
            let group = id(&row, "group_id", GroupId::parse)?;
            let roles = split_roles::<GroupRole>(&row.try_get::<String, _>("roles")?)?;
            if let Some(k) = keys.iter_mut().find(|k| k.id == key_id) {
                k.group_roles.push((group, roles));
            }
        }
        api_key_access::fill(&self.pool, &mut keys).await?;
        Ok(keys)
    }

    async fn one_key(&self, sql: &str, arg: String) -> StoreResult<Option<ApiKeyRecord>> {
        let row = query(sql).bind(arg).fetch_optional(&self.pool).await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let key = api_key_from_row(&r)?;
                Ok(self.with_group_roles(vec![key]).await?.pop())
            }
        }
    }
}

#[async_trait::async_trait]
impl<D: Dialect> ApiKeyStore for SqlStore<D> {
    async fn create_api_key(&self, key: &ApiKeyRecord, events: &[NewEvent]) -> StoreResult<()> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        insert_api_key(&mut tx, key).await?;
        tx.commit(events, Change::ApiKeys).await
    }

    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.one_key(
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.id = ?"),
            id.to_string(),
        )
        .await
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> StoreResult<Option<ApiKeyRecord>> {
        self.one_key(
            &format!("SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.public_key = ?"),
            public_key.to_owned(),
        )
        .await
    }

    async fn list_org_api_keys(&self, org: OrgId, page: Page) -> StoreResult<Listed<ApiKeyRecord>> {
        let total = count(
            &query("SELECT COUNT(*) FROM api_keys WHERE org_id = ?")
                .bind(org.to_string())
                .fetch_one(&self.pool)
                .await?,
        )?;
        let rows = query(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys k WHERE k.org_id = ? ORDER BY k.id LIMIT ? OFFSET ?"
        ))
        .bind(org.to_string())
        .bind(limit_i64(page.limit))
        .bind(limit_i64(page.offset))
        .fetch_all(&self.pool)
        .await?;
        let keys = rows
            .iter()
            .map(api_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed {
            items: self.with_group_roles(keys).await?,
            total,
        })
    }

    async fn list_group_api_keys(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ApiKeyRecord>> {
        let total = count(
            &query("SELECT COUNT(*) FROM api_key_groups WHERE group_id = ?")
                .bind(group.to_string())
                .fetch_one(&self.pool)
                .await?,
        )?;
        let rows = query(format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys k JOIN api_key_groups kg ON kg.api_key_id = k.id \
             WHERE kg.group_id = ? ORDER BY k.id LIMIT ? OFFSET ?"
        ))
        .bind(group.to_string())
        .bind(limit_i64(page.limit))
        .bind(limit_i64(page.offset))
        .fetch_all(&self.pool)
        .await?;
        let keys = rows
            .iter()
            .map(api_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Listed {
            items: self.with_group_roles(keys).await?,
            total,
        })
    }

    async fn update_api_key(
        &self,
        id: ApiKeyId,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        let r = query(
            "UPDATE api_keys SET description = COALESCE(?, description), org_roles = COALESCE(?, org_roles) WHERE id = ?",
        )
        .bind(description)
        .bind(org_roles.map(join_roles))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((group, roles)) = group_roles {
            upsert_key_group(&mut tx, id, group, roles).await?;
        }
        tx.commit(events, Change::ApiKeys).await?;
        Ok(true)
    }

    async fn set_api_key_group_roles(
        &self,
        id: ApiKeyId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        let exists = query("SELECT 1 FROM api_keys WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        upsert_key_group(&mut tx, id, group, roles).await?;
        tx.commit(events, Change::ApiKeys).await?;
        Ok(true)
    }

    async fn remove_api_key_from_group(
        &self,
        id: ApiKeyId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        let r = query("DELETE FROM api_key_groups WHERE api_key_id = ? AND group_id = ?")
            .bind(id.to_string())
            .bind(group.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::ApiKeys).await?;
        Ok(true)
    }

    async fn delete_api_key(&self, id: ApiKeyId, events: &[NewEvent]) -> StoreResult<bool> {
        let _bump = self.api_keys_change();
        let mut tx = self.work().await?;
        let r = query("DELETE FROM api_keys WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::ApiKeys).await?;
        Ok(true)
    }

    async fn add_api_key_access_entries(
        &self,
        id: ApiKeyId,
        entries: &[(AccessListEntry, NewEvent)],
    ) -> StoreResult<bool> {
        let _bump = self.api_keys_change();
        self.add_key_access(id, entries).await
    }

    async fn delete_api_key_access_entry(
        &self,
        id: ApiKeyId,
        entry_key: &str,
        keep_admitting: Option<std::net::IpAddr>,
        events: &[NewEvent],
    ) -> StoreResult<DeleteKeyAccessOutcome> {
        let _bump = self.api_keys_change();
        self.delete_key_access(id, entry_key, keep_admitting, events)
            .await
    }

    async fn record_api_key_access_use(&self, uses: &[AccessUse<ApiKeyId>]) -> StoreResult<()> {
        self.record_key_access_use(uses).await
    }
}
