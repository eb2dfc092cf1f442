//! X.509 for database users: `project_cas` (one CA per project; its key only sealed) and
//! `db_user_certs` (what was issued, never a key). A certificate is recorded with its event
//! under the project's row lock, and only while the project still has the user it names.

use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::GroupId;

use super::*;
use crate::{StoreResult, UserCert, X509Store};

fn cert_from_row(row: &impl RowGet) -> StoreResult<UserCert> {
    Ok(UserCert {
        group_id: id(row, "group_id", GroupId::parse)?,
        username: row.try_get("username")?,
        serial: row.try_get("serial")?,
        subject: row.try_get("subject")?,
        created_at: from_millis(row.try_get("created_at")?),
        not_after: from_millis(row.try_get("not_after")?),
    })
}

#[async_trait::async_trait]
impl<D: Dialect> X509Store for SqlStore<D> {
    async fn project_ca(&self, group: GroupId) -> StoreResult<Option<(String, String)>> {
        let row = query("SELECT cert_pem, key_sealed FROM project_cas WHERE group_id = ?")
            .bind(group.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("cert_pem")?, r.try_get("key_sealed")?)))
            .transpose()
    }

    async fn ensure_project_ca(
        &self,
        group: GroupId,
        ca: (String, String),
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<(String, String)>> {
        let mut work = self.work().await?;
        let exists = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(group.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        query(
            "INSERT INTO project_cas (group_id, cert_pem, key_sealed, created_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (group_id) DO NOTHING",
        )
        .bind(group.to_string())
        .bind(ca.0)
        .bind(ca.1)
        .bind(to_millis(now))
        .execute(&mut *work)
        .await?;
        let row = query("SELECT cert_pem, key_sealed FROM project_cas WHERE group_id = ?")
            .bind(group.to_string())
            .fetch_one(&mut *work)
            .await?;
        let kept = (row.try_get("cert_pem")?, row.try_get("key_sealed")?);
        work.commit_all(&[], &[]).await?;
        Ok(Some(kept))
    }

    async fn record_user_cert(&self, cert: &UserCert, events: &[NewEvent]) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let exists = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(cert.group_id.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let user = query(
            "SELECT delete_after FROM database_users WHERE group_id = ? \
             AND database_name = '$external' AND username = ? AND auth = 'x509_managed'",
        )
        .bind(cert.group_id.to_string())
        .bind(&cert.username)
        .fetch_optional(&mut *work)
        .await?;
        let active = match user {
            None => false,
            Some(r) => r
                .try_get::<Option<i64>, _>("delete_after")?
                .is_none_or(|end| end > to_millis(cert.created_at)),
        };
        if !active {
            return Ok(false);
        }
        query(
            "INSERT INTO db_user_certs (group_id, username, serial, subject, created_at, not_after) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(cert.group_id.to_string())
        .bind(&cert.username)
        .bind(cert.serial)
        .bind(&cert.subject)
        .bind(to_millis(cert.created_at))
        .bind(to_millis(cert.not_after))
        .execute(&mut *work)
        .await
        .map_err(conflict("serial"))?;
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn list_user_certs(&self, group: GroupId, username: &str) -> StoreResult<Vec<UserCert>> {
        let rows = query(
            "SELECT * FROM db_user_certs WHERE group_id = ? AND username = ? \
             ORDER BY created_at DESC, serial",
        )
        .bind(group.to_string())
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cert_from_row).collect()
    }
}
