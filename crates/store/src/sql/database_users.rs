//! Database users (`database_users`): one row per (project, database, username), roles,
//! scopes and labels as JSON, SCRAM credentials as JSON (never a password). Each change is one
//! unit of work with its event; a user past its `deleteAfterDate` counts as gone (a create of
//! its name replaces it, an update or delete does not find it).

use tessera_domain::database_users::{is_active, DbAuth};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::GroupId;

use super::*;
use crate::{DatabaseUser, DatabaseUserStore, StoreError, StoreResult, Tag};

fn json<T: serde::de::DeserializeOwned>(row: &impl RowGet, col: &str) -> StoreResult<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Backend(format!("malformed {col}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn user_from_row(row: &impl RowGet) -> StoreResult<DatabaseUser> {
    let auth: String = row.try_get("auth")?;
    let labels: Vec<(String, String)> = json(row, "labels")?;
    Ok(DatabaseUser {
        group_id: id(row, "group_id", GroupId::parse)?,
        database_name: row.try_get("database_name")?,
        username: row.try_get("username")?,
        auth: DbAuth::from_stored(&auth)
            .ok_or_else(|| StoreError::Backend(format!("unknown database user kind {auth:?}")))?,
        roles: json(row, "roles")?,
        scopes: json(row, "scopes")?,
        labels: labels
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
        description: row.try_get("description")?,
        delete_after: row
            .try_get::<Option<i64>, _>("delete_after")?
            .map(from_millis),
        scram: row.try_get("scram")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn labels_json(u: &DatabaseUser) -> String {
    let pairs: Vec<(&str, &str)> = u
        .labels
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    to_json(&pairs)
}

impl<D: Dialect> SqlStore<D> {
    /// The user of that name, read (and with `lock`, row-locked) inside `work`.
    async fn user_in(
        work: &mut Work<'_, D>,
        group: GroupId,
        database: &str,
        username: &str,
    ) -> StoreResult<Option<DatabaseUser>> {
        query(locked::<D::Db>(
            "SELECT * FROM database_users WHERE group_id = ? AND database_name = ? AND username = ?",
            None,
        ))
        .bind(group.to_string())
        .bind(database)
        .bind(username)
        .fetch_optional(&mut **work)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }
}

#[async_trait::async_trait]
impl<D: Dialect> DatabaseUserStore for SqlStore<D> {
    async fn list_database_users(&self, group: GroupId) -> StoreResult<Vec<DatabaseUser>> {
        let rows = query(
            "SELECT * FROM database_users WHERE group_id = ? ORDER BY database_name, username",
        )
        .bind(group.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn get_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
    ) -> StoreResult<Option<DatabaseUser>> {
        query("SELECT * FROM database_users WHERE group_id = ? AND database_name = ? AND username = ?")
            .bind(group.to_string())
            .bind(database)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn create_database_user(
        &self,
        u: &DatabaseUser,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let group = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(u.group_id.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if group.is_none() {
            return Ok(false);
        }
        match Self::user_in(&mut work, u.group_id, &u.database_name, &u.username).await? {
            Some(old) if is_active(old.delete_after, now) => {
                return Err(StoreError::Conflict("database_user"))
            }
            Some(_) => {
                query("DELETE FROM database_users WHERE group_id = ? AND database_name = ? AND username = ?")
                    .bind(u.group_id.to_string())
                    .bind(&u.database_name)
                    .bind(&u.username)
                    .execute(&mut *work)
                    .await?;
            }
            None => {}
        }
        query(
            "INSERT INTO database_users (group_id, database_name, username, auth, roles, scopes, \
             labels, description, delete_after, scram, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(u.group_id.to_string())
        .bind(&u.database_name)
        .bind(&u.username)
        .bind(u.auth.stored())
        .bind(to_json(&u.roles))
        .bind(to_json(&u.scopes))
        .bind(labels_json(u))
        .bind(u.description.clone())
        .bind(u.delete_after.map(to_millis))
        .bind(u.scram.clone())
        .bind(to_millis(u.created_at))
        .execute(&mut *work)
        .await
        .map_err(conflict("database_user"))?;
        super::people::enforce_limit(
            &mut work,
            u.group_id,
            tessera_domain::limits::DATABASE_USERS,
            "SELECT COUNT(*) FROM database_users WHERE group_id = ? \
             AND (delete_after IS NULL OR delete_after > ?)",
            Some(now),
        )
        .await?;
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn update_database_user(
        &self,
        u: &DatabaseUser,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let Some(old) = Self::user_in(&mut work, u.group_id, &u.database_name, &u.username).await?
        else {
            return Ok(false);
        };
        if !is_active(old.delete_after, now) {
            return Ok(false);
        }
        query(
            "UPDATE database_users SET roles = ?, scopes = ?, labels = ?, description = ?, \
             delete_after = ?, scram = ? WHERE group_id = ? AND database_name = ? AND username = ?",
        )
        .bind(to_json(&u.roles))
        .bind(to_json(&u.scopes))
        .bind(labels_json(u))
        .bind(u.description.clone())
        .bind(u.delete_after.map(to_millis))
        .bind(u.scram.clone())
        .bind(u.group_id.to_string())
        .bind(&u.database_name)
        .bind(&u.username)
        .execute(&mut *work)
        .await?;
        // An update that changes nothing writes no event.
        let same = old.roles == u.roles
            && old.scopes == u.scopes
            && old.labels == u.labels
            && old.description == u.description
            && old.delete_after == u.delete_after
            && old.scram == u.scram;
        work.commit_all(if same { &[] } else { events }, &[])
            .await?;
        Ok(true)
    }

    async fn delete_database_user(
        &self,
        group: GroupId,
        database: &str,
        username: &str,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let gone = query(
            "DELETE FROM database_users WHERE group_id = ? AND database_name = ? AND username = ? \
             RETURNING delete_after",
        )
        .bind(group.to_string())
        .bind(database)
        .bind(username)
        .fetch_optional(&mut *work)
        .await?;
        let Some(gone) = gone else {
            return Ok(false);
        };
        let end: Option<i64> = gone.try_get("delete_after")?;
        if !is_active(end.map(from_millis), now) {
            work.commit_all(&[], &[]).await?;
            return Ok(false);
        }
        work.commit_all(events, &[]).await?;
        Ok(true)
    }
}
