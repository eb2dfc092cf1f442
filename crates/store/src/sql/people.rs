//! People (`tessera_domain::people`): users, memberships, teams, invitations; organization and
//! project settings; project limits.
//!
//! Every change to an organization's people is one unit of work over its whole document: the
//! organization's row is locked (so edits of one organization, on any node, are ordered), the
//! document read, edited by the caller's [`PeopleEdit`], checked against the domain's rules,
//! and only what differs written, with the events of what changed. An edit that changes
//! nothing writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use tessera_domain::people::{self, CloudUser, Invitation, Member, OrgPeople, Team};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{GroupId, GroupRole, InvitationId, OrgId, OrgRole, TeamId, UserId};

use super::*;
use crate::{
    join_roles, split_roles, Edited, PeopleEdit, PeopleStore, SettingsStore, StoreError,
    StoreResult,
};

fn user_from_row(row: &impl RowGet) -> StoreResult<CloudUser> {
    Ok(CloudUser {
        id: id(row, "id", UserId::parse)?,
        username: row.try_get("username")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        country: row.try_get("country")?,
        mobile_number: row.try_get("mobile_number")?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn invitation_from_row(row: &impl RowGet) -> StoreResult<Option<Invitation>> {
    let Some(raw) = row.try_get::<Option<String>, _>("invitation_id")? else {
        return Ok(None);
    };
    let id = InvitationId::parse(&raw)
        .map_err(|_| StoreError::Backend(format!("malformed invitation id {raw:?}")))?;
    Ok(Some(Invitation {
        id,
        inviter: row
            .try_get::<Option<String>, _>("inviter")?
            .unwrap_or_default(),
        created_at: from_millis(row.try_get::<Option<i64>, _>("invited_at")?.unwrap_or(0)),
        expires_at: from_millis(row.try_get::<Option<i64>, _>("expires_at")?.unwrap_or(0)),
    }))
}

/// Reads an organization's people inside `tx` (or from the pool).
async fn load<DB: Exec>(tx: &mut sqlx::Transaction<'_, DB>, org: OrgId) -> StoreResult<OrgPeople> {
    let org_s = org.to_string();
    let rows = query(
        "SELECT m.org_roles, m.invitation_id, m.inviter, m.invited_at, m.expires_at, u.* \
         FROM org_members m JOIN cloud_users u ON u.id = m.user_id \
         WHERE m.org_id = ? ORDER BY u.id",
    )
    .bind(&org_s)
    .fetch_all(&mut *tx)
    .await?;
    let mut members = Vec::with_capacity(rows.len());
    for r in &rows {
        members.push(Member {
            user: user_from_row(r)?,
            invitation: invitation_from_row(r)?,
            org_roles: split_roles::<OrgRole>(&r.try_get::<String, _>("org_roles")?)?,
            group_roles: BTreeMap::new(),
        });
    }
    let rows = query(
        "SELECT gm.group_id, gm.user_id, gm.roles FROM group_members gm \
         JOIN groups g ON g.id = gm.group_id WHERE g.org_id = ?",
    )
    .bind(&org_s)
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let user = id(r, "user_id", UserId::parse)?;
        if let Some(m) = members.iter_mut().find(|m| m.user.id == user) {
            m.group_roles.insert(
                id(r, "group_id", GroupId::parse)?,
                split_roles::<GroupRole>(&r.try_get::<String, _>("roles")?)?,
            );
        }
    }
    let rows = query("SELECT * FROM teams WHERE org_id = ? ORDER BY id")
        .bind(&org_s)
        .fetch_all(&mut *tx)
        .await?;
    let mut teams = Vec::with_capacity(rows.len());
    for r in &rows {
        teams.push(Team {
            id: id(r, "id", TeamId::parse)?,
            name: r.try_get("name")?,
            members: BTreeSet::new(),
            group_roles: BTreeMap::new(),
            created_at: from_millis(r.try_get("created_at")?),
        });
    }
    let rows = query(
        "SELECT tm.team_id, tm.user_id FROM team_members tm \
         JOIN teams t ON t.id = tm.team_id WHERE t.org_id = ?",
    )
    .bind(&org_s)
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let team = id(r, "team_id", TeamId::parse)?;
        if let Some(t) = teams.iter_mut().find(|t| t.id == team) {
            t.members.insert(id(r, "user_id", UserId::parse)?);
        }
    }
    let rows = query(
        "SELECT tg.team_id, tg.group_id, tg.roles FROM team_groups tg \
         JOIN teams t ON t.id = tg.team_id WHERE t.org_id = ?",
    )
    .bind(&org_s)
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let team = id(r, "team_id", TeamId::parse)?;
        if let Some(t) = teams.iter_mut().find(|t| t.id == team) {
            t.group_roles.insert(
                id(r, "group_id", GroupId::parse)?,
                split_roles::<GroupRole>(&r.try_get::<String, _>("roles")?)?,
            );
        }
    }
    Ok(OrgPeople {
        org,
        members,
        teams,
    })
}

impl<D: Dialect> SqlStore<D> {
    /// Writes what differs between `before` and `after` (both of one organization).
    async fn write_people(
        work: &mut Work<'_, D>,
        before: &OrgPeople,
        after: &OrgPeople,
    ) -> StoreResult<()> {
        let org = after.org.to_string();
        for b in &before.members {
            if after.member(b.user.id).is_none() {
                let user = b.user.id.to_string();
                query("DELETE FROM org_members WHERE org_id = ? AND user_id = ?")
                    .bind(&org)
                    .bind(&user)
                    .execute(&mut **work)
                    .await?;
                query(
                    "DELETE FROM group_members WHERE user_id = ? AND group_id IN \
                     (SELECT id FROM groups WHERE org_id = ?)",
                )
                .bind(&user)
                .bind(&org)
                .execute(&mut **work)
                .await?;
            }
        }
        for a in &after.members {
            let b = before.member(a.user.id);
            if b == Some(a) {
                continue;
            }
            let user = a.user.id.to_string();
            if b.is_none() {
                // A person new to Tessera (invited by name) gets an account without a password.
                query(
                    "INSERT INTO cloud_users (id, username, first_name, last_name, country, \
                     mobile_number, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&user)
                .bind(&a.user.username)
                .bind(a.user.first_name.clone())
                .bind(a.user.last_name.clone())
                .bind(a.user.country.clone())
                .bind(a.user.mobile_number.clone())
                .bind(a.user.password_hash.clone())
                .bind(to_millis(a.user.created_at))
                .execute(&mut **work)
                .await
                .map_err(conflict("username"))?;
            }
            let inv = a.invitation.as_ref();
            query(
                "INSERT INTO org_members (org_id, user_id, org_roles, invitation_id, inviter, \
                 invited_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (org_id, user_id) DO UPDATE SET org_roles = excluded.org_roles, \
                 invitation_id = excluded.invitation_id, inviter = excluded.inviter, \
                 invited_at = excluded.invited_at, expires_at = excluded.expires_at",
            )
            .bind(&org)
            .bind(&user)
            .bind(join_roles(&a.org_roles))
            .bind(inv.map(|i| i.id.to_string()))
            .bind(inv.map(|i| i.inviter.clone()))
            .bind(inv.map(|i| to_millis(i.created_at)))
            .bind(inv.map(|i| to_millis(i.expires_at)))
            .execute(&mut **work)
            .await?;
            let empty = BTreeMap::new();
            let before_groups = b.map_or(&empty, |b| &b.group_roles);
            Self::write_roles(
                work,
                "group_members",
                "user_id",
                &user,
                before_groups,
                &a.group_roles,
            )
            .await?;
        }
        for b in &before.teams {
            if after.team(b.id).is_none() {
                query("DELETE FROM teams WHERE id = ?")
                    .bind(b.id.to_string())
                    .execute(&mut **work)
                    .await?;
            }
        }
        for a in &after.teams {
            let b = before.team(a.id);
            if b == Some(a) {
                continue;
            }
            let team = a.id.to_string();
            query(
                "INSERT INTO teams (id, org_id, name, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            )
            .bind(&team)
            .bind(&org)
            .bind(&a.name)
            .bind(to_millis(a.created_at))
            .execute(&mut **work)
            .await?;
            let none = BTreeSet::new();
            let before_members = b.map_or(&none, |b| &b.members);
            for u in before_members.difference(&a.members) {
                query("DELETE FROM team_members WHERE team_id = ? AND user_id = ?")
                    .bind(&team)
                    .bind(u.to_string())
                    .execute(&mut **work)
                    .await?;
            }
            for u in a.members.difference(before_members) {
                query("INSERT INTO team_members (team_id, user_id) VALUES (?, ?)")
                    .bind(&team)
                    .bind(u.to_string())
                    .execute(&mut **work)
                    .await?;
            }
            let empty = BTreeMap::new();
            let before_groups = b.map_or(&empty, |b| &b.group_roles);
            Self::write_roles(
                work,
                "team_groups",
                "team_id",
                &team,
                before_groups,
                &a.group_roles,
            )
            .await?;
        }
        Ok(())
    }

    /// Rewrites the project role rows (`table`, keyed by `who`) that differ.
    async fn write_roles(
        work: &mut Work<'_, D>,
        table: &'static str,
        who_col: &'static str,
        who: &str,
        before: &BTreeMap<GroupId, Vec<GroupRole>>,
        after: &BTreeMap<GroupId, Vec<GroupRole>>,
    ) -> StoreResult<()> {
        for g in before.keys().filter(|g| !after.contains_key(g)) {
            query(format!(
                "DELETE FROM {table} WHERE {who_col} = ? AND group_id = ?"
            ))
            .bind(who)
            .bind(g.to_string())
            .execute(&mut **work)
            .await?;
        }
        for (g, roles) in after {
            if before.get(g) == Some(roles) {
                continue;
            }
            query(format!(
                "INSERT INTO {table} ({who_col}, group_id, roles) VALUES (?, ?, ?) \
                 ON CONFLICT ({who_col}, group_id) DO UPDATE SET roles = excluded.roles"
            ))
            .bind(who)
            .bind(g.to_string())
            .bind(join_roles(roles))
            .execute(&mut **work)
            .await
            .map_err(|e| match &e {
                // The project was deleted meanwhile (its foreign key).
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::Conflict("group")
                }
                _ => backend(e),
            })?;
        }
        Ok(())
    }

    /// Runs `edit` on `org`'s people inside `work` (see the module documentation).
    async fn edit_in(
        work: &mut Work<'_, D>,
        org: OrgId,
        now: chrono::DateTime<chrono::Utc>,
        edit: &mut (dyn PeopleEdit + '_),
    ) -> StoreResult<Edited> {
        let exists = query(locked::<D::Db>("SELECT 1 FROM orgs WHERE id = ?", None))
            .bind(org.to_string())
            .fetch_optional(&mut **work)
            .await?;
        if exists.is_none() {
            return Ok(Edited::NoOrg);
        }
        let stored = load(&mut *work, org).await?;
        // Expired invitations are gone: the edit sees the document without them, and
        // writing it removes their rows (no event: they ended by the clock).
        let before = stored.clone().without_expired(now);
        let mut after = before.clone();
        if let Err(e) = edit.apply(&mut after) {
            return Ok(Edited::Refused(e));
        }
        after.tidy();
        if let Err(e) = after.check(&before) {
            return Ok(Edited::Refused(e));
        }
        let changes = people::changes(&before, &after);
        let events = edit.events(&before, &after, &changes);
        Self::write_people(work, &stored, &after).await?;
        Ok(Edited::Done {
            people: after,
            events,
        })
    }
}

#[async_trait::async_trait]
impl<D: Dialect> PeopleStore for SqlStore<D> {
    async fn org_people(&self, org: OrgId) -> StoreResult<OrgPeople> {
        // One snapshot, so a page of members and their teams agree.
        let mut tx = self.dialect.begin_snapshot(&self.pool).await?;
        let people = load(&mut tx, org).await?;
        tx.commit().await.map_err(backend)?;
        Ok(people)
    }

    async fn edit_people(
        &self,
        org: OrgId,
        now: chrono::DateTime<chrono::Utc>,
        edit: &mut (dyn PeopleEdit + '_),
    ) -> StoreResult<Edited> {
        let mut work = self.work().await?;
        match Self::edit_in(&mut work, org, now, edit).await? {
            Edited::Done { people, events } => {
                work.commit_all(&events, &[]).await?;
                Ok(Edited::Done { people, events })
            }
            other => Ok(other),
        }
    }

    async fn create_cloud_user(
        &self,
        user: &CloudUser,
        now: chrono::DateTime<chrono::Utc>,
        memberships: &mut [(OrgId, &mut (dyn PeopleEdit + '_))],
        events: &[NewEvent],
    ) -> StoreResult<Edited> {
        let mut work = self.work().await?;
        query(
            "INSERT INTO cloud_users (id, username, first_name, last_name, country, \
             mobile_number, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(user.first_name.clone())
        .bind(user.last_name.clone())
        .bind(user.country.clone())
        .bind(user.mobile_number.clone())
        .bind(user.password_hash.clone())
        .bind(to_millis(user.created_at))
        .execute(&mut *work)
        .await
        .map_err(conflict("username"))?;
        let mut all = events.to_vec();
        let mut last = None;
        for (org, edit) in memberships.iter_mut() {
            match Self::edit_in(&mut work, *org, now, &mut **edit).await? {
                Edited::Done { people, events } => {
                    all.extend(events);
                    last = Some(people);
                }
                refused => return Ok(refused),
            }
        }
        work.commit_all(&all, &[]).await?;
        Ok(match last {
            Some(people) => Edited::Done {
                people,
                events: all,
            },
            None => Edited::Done {
                people: OrgPeople::empty(OrgId::generate(now)),
                events: all,
            },
        })
    }

    async fn get_cloud_user(&self, id: UserId) -> StoreResult<Option<CloudUser>> {
        query("SELECT * FROM cloud_users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn find_cloud_user(&self, username: &str) -> StoreResult<Option<CloudUser>> {
        query("SELECT * FROM cloud_users WHERE username = ?")
            .bind(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn update_cloud_user_profile(
        &self,
        user: &CloudUser,
        orgs: &[OrgId],
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>> {
        let mut work = self.work().await?;
        let before = query(locked::<D::Db>(
            "SELECT * FROM cloud_users WHERE id = ?",
            None,
        ))
        .bind(user.id.to_string())
        .fetch_optional(&mut *work)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()?;
        let Some(before) = before else {
            return Ok(None);
        };
        let rows = query("SELECT org_id FROM org_members WHERE user_id = ? ORDER BY org_id")
            .bind(user.id.to_string())
            .fetch_all(&mut *work)
            .await?;
        let now_orgs = rows
            .iter()
            .map(|r| super::id(r, "org_id", OrgId::parse))
            .collect::<StoreResult<Vec<_>>>()?;
        if now_orgs != orgs {
            return Ok(None);
        }
        let same = before.first_name == user.first_name
            && before.last_name == user.last_name
            && before.country == user.country
            && before.mobile_number == user.mobile_number;
        if same {
            return Ok(Some(false));
        }
        query(
            "UPDATE cloud_users SET first_name = ?, last_name = ?, country = ?, mobile_number = ? \
             WHERE id = ?",
        )
        .bind(user.first_name.clone())
        .bind(user.last_name.clone())
        .bind(user.country.clone())
        .bind(user.mobile_number.clone())
        .bind(user.id.to_string())
        .execute(&mut *work)
        .await?;
        work.commit_all(events, &[]).await?;
        Ok(Some(true))
    }

    async fn orgs_of_user(&self, id: UserId) -> StoreResult<Vec<OrgId>> {
        let rows = query("SELECT org_id FROM org_members WHERE user_id = ? ORDER BY org_id")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| super::id(r, "org_id", OrgId::parse))
            .collect()
    }
}

#[async_trait::async_trait]
impl<D: Dialect> SettingsStore for SqlStore<D> {
    async fn get_settings(&self, scope: crate::SettingsScope) -> StoreResult<Option<String>> {
        let (sql, id) = settings_sql(scope, "SELECT body FROM {t} WHERE {k} = ?");
        let row = query(&sql).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<String, _>("body")).transpose()?)
    }

    async fn put_settings(
        &self,
        scope: crate::SettingsScope,
        body: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let (sql, id) = settings_sql(scope, "SELECT body FROM {t} WHERE {k} = ?");
        let before: Option<String> = query(locked::<D::Db>(&sql, None))
            .bind(&id)
            .fetch_optional(&mut *work)
            .await?
            .map(|r| r.try_get::<String, _>("body"))
            .transpose()?;
        if before.as_deref() == Some(body) {
            return Ok(false);
        }
        let (sql, _) = settings_sql(
            scope,
            "INSERT INTO {t} ({k}, body) VALUES (?, ?) ON CONFLICT ({k}) DO UPDATE SET body = excluded.body",
        );
        query(&sql)
            .bind(&id)
            .bind(body)
            .execute(&mut *work)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::Conflict("owner")
                }
                _ => backend(e),
            })?;
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn group_limits(&self, group: GroupId) -> StoreResult<Vec<(String, i64)>> {
        let rows = query("SELECT name, value FROM group_limits WHERE group_id = ? ORDER BY name")
            .bind(group.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect()
    }

    async fn set_group_limit(
        &self,
        group: GroupId,
        name: &str,
        value: Option<i64>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let before: Option<i64> = query(locked::<D::Db>(
            "SELECT value FROM group_limits WHERE group_id = ? AND name = ?",
            None,
        ))
        .bind(group.to_string())
        .bind(name)
        .fetch_optional(&mut *work)
        .await?
        .map(|r| r.try_get::<i64, _>("value"))
        .transpose()?;
        if before == value {
            return Ok(false);
        }
        match value {
            None => query("DELETE FROM group_limits WHERE group_id = ? AND name = ?")
                .bind(group.to_string())
                .bind(name),
            Some(v) => query(
                "INSERT INTO group_limits (group_id, name, value) VALUES (?, ?, ?) \
                 ON CONFLICT (group_id, name) DO UPDATE SET value = excluded.value",
            )
            .bind(group.to_string())
            .bind(name)
            .bind(v),
        }
        .execute(&mut *work)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Conflict("group")
            }
            _ => backend(e),
        })?;
        work.commit_all(events, &[]).await?;
        Ok(true)
    }
}

fn settings_sql(scope: crate::SettingsScope, template: &str) -> (String, String) {
    let (t, k, id) = match scope {
        crate::SettingsScope::Org(o) => ("org_settings", "org_id", o.to_string()),
        crate::SettingsScope::Group(g) => ("group_settings", "group_id", g.to_string()),
        crate::SettingsScope::ProcessArgs(c) => {
            ("cluster_process_args", "cluster_id", c.to_string())
        }
        crate::SettingsScope::UserSecurity(g) => ("group_user_security", "group_id", g.to_string()),
    };
    (template.replace("{t}", t).replace("{k}", k), id)
}

/// Fails the change with `LimitExceeded` if `used` (counted by `count_sql`, bound to the
/// project id and `now` in milliseconds where it asks) passes the project's limit `name`; run
/// inside the change's unit of work, after its writes, under the project's row lock.
pub(crate) async fn enforce_limit<DB: Exec>(
    tx: &mut sqlx::Transaction<'_, DB>,
    group: GroupId,
    name: &'static str,
    count_sql: &str,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> StoreResult<()> {
    let default = tessera_domain::limits::spec(name).map_or(i64::MAX, |l| l.default);
    let limit =
        query_scalar::<i64>("SELECT value FROM group_limits WHERE group_id = ? AND name = ?")
            .bind(group.to_string())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(default);
    let mut q = query_scalar::<i64>(count_sql).bind(group.to_string());
    if let Some(now) = now {
        q = q.bind(to_millis(now));
    }
    let used = q.fetch_optional(&mut *tx).await?.unwrap_or(0);
    if tessera_domain::limits::within(used, limit) {
        Ok(())
    } else {
        Err(StoreError::LimitExceeded { name, limit })
    }
}
