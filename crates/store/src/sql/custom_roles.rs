//! Custom database roles (`custom_db_roles`): one row per (project, role name), the role as
//! JSON. Every change locks the project's row, reads the project's roles and checks them
//! together (`tessera_domain::custom_roles::check_project`: inherited roles known, no cycle)
//! before it writes; a delete refuses a role another role inherits or a database user holds.

use tessera_domain::custom_roles::{self, CustomRole};
use tessera_domain::database_users::DbRole;
use tessera_domain::time::to_millis;
use tessera_domain::GroupId;

use super::*;
use crate::{CustomRoleStore, DeleteRole, PutRole, StoreError, StoreResult};

fn role_from_row(row: &impl RowGet) -> StoreResult<CustomRole> {
    let body: String = row.try_get("body")?;
    serde_json::from_str(&body)
        .map_err(|e| StoreError::Backend(format!("malformed custom role: {e}")))
}

impl<D: Dialect> SqlStore<D> {
    /// Locks the project's row and reads its roles; `None` when the project is gone.
    async fn roles_in(
        work: &mut Work<'_, D>,
        group: GroupId,
    ) -> StoreResult<Option<Vec<CustomRole>>> {
        let exists = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(group.to_string())
            .fetch_optional(&mut **work)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = query("SELECT body FROM custom_db_roles WHERE group_id = ? ORDER BY role_name")
            .bind(group.to_string())
            .fetch_all(&mut **work)
            .await?;
        Ok(Some(
            rows.iter().map(role_from_row).collect::<StoreResult<_>>()?,
        ))
    }
}

#[async_trait::async_trait]
impl<D: Dialect> CustomRoleStore for SqlStore<D> {
    async fn list_custom_roles(&self, group: GroupId) -> StoreResult<Vec<CustomRole>> {
        let rows = query("SELECT body FROM custom_db_roles WHERE group_id = ? ORDER BY role_name")
            .bind(group.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(role_from_row).collect()
    }

    async fn put_custom_role(
        &self,
        group: GroupId,
        role: &CustomRole,
        create: bool,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<PutRole> {
        let mut work = self.work().await?;
        let Some(mut defined) = Self::roles_in(&mut work, group).await? else {
            return Ok(PutRole::NoGroup);
        };
        let at = defined.iter().position(|r| r.role_name == role.role_name);
        match (at, create) {
            (Some(_), true) => return Ok(PutRole::Exists),
            (None, false) => return Ok(PutRole::Missing),
            (Some(i), false) if defined[i] == *role => return Ok(PutRole::Done),
            (Some(i), false) => defined[i] = role.clone(),
            (None, true) => defined.push(role.clone()),
        }
        if let Err(e) = custom_roles::check_project(&defined) {
            return Ok(PutRole::Invalid(e));
        }
        let body = serde_json::to_string(role)
            .map_err(|e| StoreError::Backend(format!("custom role: {e}")))?;
        query(
            "INSERT INTO custom_db_roles (group_id, role_name, body, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (group_id, role_name) DO UPDATE SET body = excluded.body",
        )
        .bind(group.to_string())
        .bind(&role.role_name)
        .bind(body)
        .bind(to_millis(now))
        .execute(&mut *work)
        .await?;
        super::people::enforce_limit(
            &mut work,
            group,
            tessera_domain::limits::CUSTOM_ROLES,
            "SELECT COUNT(*) FROM custom_db_roles WHERE group_id = ?",
            None,
        )
        .await?;
        work.commit_all(events, &[]).await?;
        Ok(PutRole::Done)
    }

    async fn delete_custom_role(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<DeleteRole> {
        let mut work = self.work().await?;
        let Some(defined) = Self::roles_in(&mut work, group).await? else {
            return Ok(DeleteRole::Missing);
        };
        if !defined.iter().any(|r| r.role_name == name) {
            return Ok(DeleteRole::Missing);
        }
        let mut users: Vec<String> = custom_roles::inheritors(&defined, name)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let rows = query("SELECT username, roles FROM database_users WHERE group_id = ?")
            .bind(group.to_string())
            .fetch_all(&mut *work)
            .await?;
        for r in &rows {
            let held: Vec<DbRole> = serde_json::from_str(&r.try_get::<String, _>("roles")?)
                .map_err(|e| StoreError::Backend(format!("malformed roles: {e}")))?;
            if held.iter().any(|h| h.role_name == name) {
                users.push(r.try_get("username")?);
            }
        }
        if !users.is_empty() {
            return Ok(DeleteRole::InUse(users));
        }
        query("DELETE FROM custom_db_roles WHERE group_id = ? AND role_name = ?")
            .bind(group.to_string())
            .bind(name)
            .execute(&mut *work)
            .await?;
        work.commit_all(events, &[]).await?;
        Ok(DeleteRole::Deleted)
    }
}
