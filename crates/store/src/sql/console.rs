//! The browser console's sessions, sign-ins in progress and TOTP factors (`console_sessions`,
//! `console_logins`, `user_totp`). Rows are keyed by the keyed hash of a cookie's id; what
//! must be recoverable (a one-time message, a sign-in's PKCE verifier) arrives sealed.

use chrono::{DateTime, Utc};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::UserId;

use super::*;
use crate::{ConsoleSession, ConsoleStore, StoreResult, TotpFactor};

fn session_from_row(row: &impl RowGet) -> StoreResult<ConsoleSession> {
    let roles: String = row.try_get("roles")?;
    Ok(ConsoleSession {
        user_id: id(row, "user_id", UserId::parse)?,
        csrf: row.try_get("csrf")?,
        via: row.try_get("via")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| StoreError::Backend(format!("malformed session roles: {e}")))?,
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
    })
}

fn roles_json(roles: &[String]) -> StoreResult<String> {
    serde_json::to_string(roles).map_err(|e| StoreError::Backend(format!("session roles: {e}")))
}

#[async_trait::async_trait]
impl<D: Dialect> ConsoleStore for SqlStore<D> {
    async fn create_session(
        &self,
        id_hash: &str,
        session: &ConsoleSession,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let mut work = self.work().await?;
        // Sessions that ended by the clock go as new ones begin.
        query("DELETE FROM console_sessions WHERE expires_at <= ?")
            .bind(to_millis(session.created_at))
            .execute(&mut *work)
            .await?;
        query(
            "INSERT INTO console_sessions (id_hash, user_id, csrf, via, roles, created_at, \
             expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(session.user_id.to_string())
        .bind(&session.csrf)
        .bind(&session.via)
        .bind(roles_json(&session.roles)?)
        .bind(to_millis(session.created_at))
        .bind(to_millis(session.expires_at))
        .execute(&mut *work)
        .await?;
        work.commit_all(events, &[]).await
    }

    async fn console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ConsoleSession>> {
        query("SELECT * FROM console_sessions WHERE id_hash = ? AND expires_at > ?")
            .bind(id_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn set_session_roles(&self, id_hash: &str, roles: &[String]) -> StoreResult<()> {
        let mut work = self.work().await?;
        query("UPDATE console_sessions SET roles = ? WHERE id_hash = ?")
            .bind(roles_json(roles)?)
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        work.commit_all(&[], &[]).await
    }

    async fn end_session(&self, id_hash: &str, events: &[NewEvent]) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let r = query("DELETE FROM console_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn set_flash(&self, id_hash: &str, sealed: &[u8]) -> StoreResult<()> {
        let mut work = self.work().await?;
        query("UPDATE console_sessions SET flash = ? WHERE id_hash = ?")
            .bind(sealed.to_vec())
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        work.commit_all(&[], &[]).await
    }

    async fn take_flash(&self, id_hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut work = self.work().await?;
        let row = query(locked::<D::Db>(
            "SELECT flash FROM console_sessions WHERE id_hash = ?",
            None,
        ))
        .bind(id_hash)
        .fetch_optional(&mut *work)
        .await?;
        let flash: Option<Vec<u8>> = match row {
            Some(r) => r.try_get("flash")?,
            None => None,
        };
        if flash.is_none() {
            return Ok(None);
        }
        query("UPDATE console_sessions SET flash = NULL WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        work.commit_all(&[], &[]).await?;
        Ok(flash)
    }

    async fn put_login(
        &self,
        id_hash: &str,
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut work = self.work().await?;
        query("INSERT INTO console_logins (id_hash, body, expires_at) VALUES (?, ?, ?)")
            .bind(id_hash)
            .bind(sealed.to_vec())
            .bind(to_millis(expires_at))
            .execute(&mut *work)
            .await?;
        work.commit_all(&[], &[]).await
    }

    async fn get_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>> {
        let row = query("SELECT body FROM console_logins WHERE id_hash = ? AND expires_at > ?")
            .bind(id_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    async fn take_login(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Vec<u8>>> {
        let mut work = self.work().await?;
        // Sign-ins abandoned long ago go with every one taken.
        query("DELETE FROM console_logins WHERE expires_at <= ? AND id_hash <> ?")
            .bind(to_millis(now))
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        let row = query(locked::<D::Db>(
            "SELECT body, expires_at FROM console_logins WHERE id_hash = ?",
            None,
        ))
        .bind(id_hash)
        .fetch_optional(&mut *work)
        .await?;
        let Some(row) = row else {
            work.commit_all(&[], &[]).await?;
            return Ok(None);
        };
        query("DELETE FROM console_logins WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut *work)
            .await?;
        work.commit_all(&[], &[]).await?;
        let expires: i64 = row.try_get("expires_at")?;
        if expires <= to_millis(now) {
            return Ok(None);
        }
        Ok(Some(row.try_get("body")?))
    }

    async fn totp_factor(&self, user: UserId) -> StoreResult<Option<TotpFactor>> {
        let row = query("SELECT * FROM user_totp WHERE user_id = ?")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let enrolled: Option<i64> = r.try_get("enrolled_at")?;
            Ok(TotpFactor {
                secret_sealed: r.try_get("secret_sealed")?,
                enrolled: enrolled.is_some(),
                last_step: r.try_get("last_step")?,
            })
        })
        .transpose()
    }

    async fn start_totp(&self, user: UserId, sealed: &[u8]) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let r = query(
            "INSERT INTO user_totp (user_id, secret_sealed, last_step) VALUES (?, ?, 0) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed \
             WHERE user_totp.enrolled_at IS NULL",
        )
        .bind(user.to_string())
        .bind(sealed.to_vec())
        .execute(&mut *work)
        .await?;
        work.commit_all(&[], &[]).await?;
        Ok(r.rows_affected() == 1)
    }

    async fn use_totp_step(
        &self,
        user: UserId,
        step: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let r = query(
            "UPDATE user_totp SET last_step = ?, enrolled_at = COALESCE(enrolled_at, ?) \
             WHERE user_id = ? AND last_step < ?",
        )
        .bind(step)
        .bind(to_millis(now))
        .bind(user.to_string())
        .bind(step)
        .execute(&mut *work)
        .await?;
        work.commit_all(&[], &[]).await?;
        Ok(r.rows_affected() == 1)
    }
}
