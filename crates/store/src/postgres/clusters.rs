//! Clusters, employee-access grants and support operators on PostgreSQL (CONTRACT §10), with
//! the semantics of `sqlite/clusters.rs`.
//!
//! A grant is stored with its expiry and never swept: readers decide whether it is active at
//! their `now`. Where SQLite relies on its single writer, every check-then-write here first
//! locks the row the rule is about, so it holds across transactions on every node: the
//! project's row (`FOR UPDATE`) before `delete_group` counts its clusters and before a
//! cluster is created in it; the cluster's row before a merge of its fields, before a revoke
//! reads the grant, and before an access use's `USED` event is written for the grant the
//! decision saw (a revoke or a replacement waits for that commit, or is seen). Recording an
//! expiry is one conditional `UPDATE`, which takes the row lock and re-checks its condition.
//! Clusters are not held in memory, so these writes notify no other node.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tessera_domain::clusters::{EmployeeAccessGrant, EmployeeAccessLevel};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{ClusterId, GroupId, OperatorId, OrgId};

use super::{
    backend, commit_with, count, group_from_row, is_unique_violation, limit_i64, parse_id, pg,
    PgStore,
};
use crate::events::NewEvent;
use crate::{
    Cluster, DeleteGroupOutcome, GroupClusters, GroupFilter, Listed, Operator, Page,
    RevokeGrantOutcome, StoreError, StoreResult,
};

/// Cluster columns with the project's org (clusters `c` joined to groups `g`).
const COLUMNS: &str = "c.id, c.group_id, g.org_id, c.name, c.created_at, c.state_name, c.body, \
     c.grant_type, c.grant_expires_at, c.grant_expiry_recorded";
const FROM: &str = "FROM clusters c JOIN groups g ON g.id = c.group_id";

fn cluster_from_row(row: &PgRow) -> StoreResult<Cluster> {
    let body: String = row.try_get("body").map_err(backend)?;
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Backend(
                "malformed cluster body in store".into(),
            ))
        }
    };
    let grant_type: Option<String> = row.try_get("grant_type").map_err(backend)?;
    let grant_expires: Option<i64> = row.try_get("grant_expires_at").map_err(backend)?;
    let grant = match (grant_type, grant_expires) {
        (Some(t), Some(at)) => Some(EmployeeAccessGrant {
            level: t
                .parse::<EmployeeAccessLevel>()
                .map_err(|_| StoreError::Backend(format!("unknown grant type {t:?} in store")))?,
            expires_at: from_millis(at),
        }),
        _ => None,
    };
    Ok(Cluster {
        id: ClusterId(parse_id(row.try_get("id").map_err(backend)?)?),
        group_id: GroupId(parse_id(row.try_get("group_id").map_err(backend)?)?),
        org_id: OrgId(parse_id(row.try_get("org_id").map_err(backend)?)?),
        name: row.try_get("name").map_err(backend)?,
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
        state_name: row.try_get("state_name").map_err(backend)?,
        body,
        grant,
        grant_expiry_recorded: row.try_get("grant_expiry_recorded").map_err(backend)?,
    })
}

/// The cluster `name` of `group`; with `lock`, its row stays locked (`FOR UPDATE`) until the
/// caller's transaction ends.
async fn cluster_in(
    conn: &mut PgConnection,
    group: GroupId,
    name: &str,
    lock: bool,
) -> StoreResult<Option<Cluster>> {
    let sql = pg(&format!(
        "SELECT {COLUMNS} {FROM} WHERE c.group_id = ? AND c.name = ?{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    ));
    sqlx::query(&sql)
        .bind(group.to_string())
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .as_ref()
        .map(cluster_from_row)
        .transpose()
}

fn operator_from_row(row: &PgRow) -> StoreResult<Operator> {
    Ok(Operator {
        id: OperatorId(parse_id(row.try_get("id").map_err(backend)?)?),
        name: row.try_get("name").map_err(backend)?,
        secret_hash: row.try_get("secret_hash").map_err(backend)?,
        masked: row.try_get("masked").map_err(backend)?,
        created_at: from_millis(row.try_get("created_at").map_err(backend)?),
    })
}

impl PgStore {
    /// `delete_group`: refused while the project has clusters, in the delete's transaction.
    pub(super) async fn delete_group_checked(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome> {
        let mut tx = self.begin().await?;
        // The project's row lock orders this check against a cluster being created in it.
        let exists = sqlx::query(&pg("SELECT 1 FROM groups WHERE id = ? FOR UPDATE"))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .is_some();
        if !exists {
            return Ok(DeleteGroupOutcome::NotFound);
        }
        let clusters = count(
            &sqlx::query(&pg("SELECT COUNT(*) FROM clusters WHERE group_id = ?"))
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?,
        )?;
        if clusters > 0 {
            return Ok(DeleteGroupOutcome::HasClusters);
        }
        sqlx::query(&pg("DELETE FROM groups WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // The deletion cascades to memberships of service accounts other nodes hold.
        super::commit_logged(tx, events, &self.node, &crate::Change::Everything).await?;
        Ok(DeleteGroupOutcome::Deleted)
    }

    pub(super) async fn create_cluster_row(
        &self,
        c: &Cluster,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        // The project's row lock: a concurrent delete_group sees this cluster or runs first.
        let group = sqlx::query(&pg("SELECT 1 FROM groups WHERE id = ? FOR UPDATE"))
            .bind(c.group_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if group.is_none() {
            return Ok(false);
        }
        sqlx::query(&pg(
            "INSERT INTO clusters (id, group_id, name, created_at, state_name, body, grant_type, \
             grant_expires_at, grant_expiry_recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(c.id.to_string())
        .bind(c.group_id.to_string())
        .bind(&c.name)
        .bind(to_millis(c.created_at))
        .bind(&c.state_name)
        .bind(Value::Object(c.body.clone()).to_string())
        .bind(c.grant.map(|g| g.level.as_str()))
        .bind(c.grant.map(|g| to_millis(g.expires_at)))
        .bind(c.grant_expiry_recorded)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("cluster_name")
            } else {
                backend(e)
            }
        })?;
        commit_with(tx, events).await?;
        Ok(true)
    }

    pub(super) async fn get_cluster_row(
        &self,
        group: GroupId,
        name: &str,
    ) -> StoreResult<Option<Cluster>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        cluster_in(&mut conn, group, name, false).await
    }

    pub(super) async fn list_cluster_rows(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<Cluster>> {
        let total = count(
            &sqlx::query(&pg("SELECT COUNT(*) FROM clusters WHERE group_id = ?"))
                .bind(group.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?,
        )?;
        let sql =
            format!("SELECT {COLUMNS} {FROM} WHERE c.group_id = ? ORDER BY c.id LIMIT ? OFFSET ?");
        let items = sqlx::query(&pg(&sql))
            .bind(group.to_string())
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(cluster_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    pub(super) async fn cluster_counts_of(&self, groups: &[GroupId]) -> StoreResult<Vec<u64>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT group_id, COUNT(*) FROM clusters WHERE group_id IN ({}) GROUP BY group_id",
            vec!["?"; groups.len()].join(",")
        );
        let sql = pg(&sql);
        let mut q = sqlx::query(&sql);
        for g in groups {
            q = q.bind(g.to_string());
        }
        let mut found = std::collections::HashMap::new();
        for row in q.fetch_all(&self.pool).await.map_err(backend)? {
            let g = GroupId(parse_id(row.try_get(0).map_err(backend)?)?);
            let n: i64 = row.try_get(1).map_err(backend)?;
            found.insert(g, u64::try_from(n).unwrap_or(0));
        }
        Ok(groups
            .iter()
            .map(|g| found.get(g).copied().unwrap_or(0))
            .collect())
    }

    pub(super) async fn list_clusters_grouped(
        &self,
        org: OrgId,
        filter: &GroupFilter,
        page: Page,
    ) -> StoreResult<Listed<GroupClusters>> {
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
        let mut where_sql = String::from(
            "FROM groups WHERE org_id = ? AND EXISTS (SELECT 1 FROM clusters c WHERE c.group_id = groups.id)",
        );
        if !only.is_empty() {
            where_sql.push_str(&format!(" AND id IN ({})", vec!["?"; only.len()].join(",")));
        }
        let count_sql = format!("SELECT COUNT(*) {where_sql}");
        let page_sql = format!("SELECT * {where_sql} ORDER BY id LIMIT ? OFFSET ?");
        let cq_sql = pg(&count_sql);
        let pq_sql = pg(&page_sql);
        let mut cq = sqlx::query(&cq_sql).bind(org.to_string());
        let mut pq = sqlx::query(&pq_sql).bind(org.to_string());
        for id in only {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        let total = count(&cq.fetch_one(&self.pool).await.map_err(backend)?)?;
        let groups = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(group_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut items: Vec<GroupClusters> = groups
            .into_iter()
            .map(|group| GroupClusters {
                group,
                clusters: Vec::new(),
            })
            .collect();
        if items.is_empty() {
            return Ok(Listed { items, total });
        }
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE c.group_id IN ({}) ORDER BY c.group_id, c.id",
            vec!["?"; items.len()].join(",")
        );
        let sql = pg(&sql);
        let mut q = sqlx::query(&sql);
        for gc in &items {
            q = q.bind(gc.group.id.to_string());
        }
        for row in q.fetch_all(&self.pool).await.map_err(backend)? {
            let c = cluster_from_row(&row)?;
            if let Some(gc) = items.iter_mut().find(|gc| gc.group.id == c.group_id) {
                gc.clusters.push(c);
            }
        }
        Ok(Listed { items, total })
    }

    pub(super) async fn update_cluster_row(
        &self,
        group: GroupId,
        name: &str,
        changes: &Map<String, Value>,
        events: &[NewEvent],
    ) -> StoreResult<Option<Cluster>> {
        let mut tx = self.begin().await?;
        let Some(mut c) = cluster_in(&mut tx, group, name, true).await? else {
            return Ok(None);
        };
        for (k, v) in changes {
            c.body.insert(k.clone(), v.clone());
        }
        sqlx::query(&pg("UPDATE clusters SET body = ? WHERE id = ?"))
            .bind(Value::Object(c.body.clone()).to_string())
            .bind(c.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        commit_with(tx, events).await?;
        Ok(Some(c))
    }

    pub(super) async fn delete_cluster_row(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg("DELETE FROM clusters WHERE group_id = ? AND name = ?"))
            .bind(group.to_string())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_with(tx, events).await?;
        Ok(true)
    }

    pub(super) async fn set_grant(
        &self,
        group: GroupId,
        name: &str,
        grant: EmployeeAccessGrant,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg("UPDATE clusters SET grant_type = ?, grant_expires_at = ?, grant_expiry_recorded = FALSE \
             WHERE group_id = ? AND name = ?"))
        .bind(grant.level.as_str())
        .bind(to_millis(grant.expires_at))
        .bind(group.to_string())
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_with(tx, events).await?;
        Ok(true)
    }

    pub(super) async fn revoke_grant(
        &self,
        group: GroupId,
        name: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<RevokeGrantOutcome> {
        let mut tx = self.begin().await?;
        let Some(c) = cluster_in(&mut tx, group, name, true).await? else {
            return Ok(RevokeGrantOutcome::NotFound);
        };
        if !c.grant.is_some_and(|g| g.is_active(now)) {
            return Ok(RevokeGrantOutcome::NoActiveGrant);
        }
        sqlx::query(&pg(
            "UPDATE clusters SET grant_type = NULL, grant_expires_at = NULL, \
             grant_expiry_recorded = FALSE WHERE id = ?",
        ))
        .bind(c.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        commit_with(tx, events).await?;
        Ok(RevokeGrantOutcome::Revoked)
    }

    pub(super) async fn expired_grants(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Cluster>> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE c.grant_expires_at IS NOT NULL \
             AND c.grant_expiry_recorded = FALSE AND c.grant_expires_at <= ? \
             ORDER BY c.grant_expires_at, c.id LIMIT ?"
        );
        sqlx::query(&pg(&sql))
            .bind(to_millis(now))
            .bind(limit_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(cluster_from_row)
            .collect()
    }

    pub(super) async fn mark_grant_expiry(
        &self,
        cluster: ClusterId,
        expires_at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg("UPDATE clusters SET grant_expiry_recorded = TRUE \
             WHERE id = ? AND grant_expires_at = ? AND grant_expiry_recorded = FALSE"))
        .bind(cluster.to_string())
        .bind(to_millis(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_with(tx, events).await?;
        Ok(true)
    }

    pub(super) async fn record_access_use_if_granted(
        &self,
        cluster: ClusterId,
        grant: EmployeeAccessGrant,
        event: &NewEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let same = sqlx::query(&pg(
            "SELECT 1 FROM clusters WHERE id = ? AND grant_type = ? AND grant_expires_at = ? \
             FOR UPDATE",
        ))
        .bind(cluster.to_string())
        .bind(grant.level.as_str())
        .bind(to_millis(grant.expires_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .is_some();
        if !same {
            return Ok(false);
        }
        commit_with(tx, std::slice::from_ref(event)).await?;
        Ok(true)
    }

    pub(super) async fn insert_operator(
        &self,
        op: &Operator,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&pg("INSERT INTO operators (id, name, secret_hash, masked, created_at) VALUES (?, ?, ?, ?, ?)"))
        .bind(op.id.to_string())
        .bind(&op.name)
        .bind(&op.secret_hash)
        .bind(&op.masked)
        .bind(to_millis(op.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("operator_name")
            } else {
                backend(e)
            }
        })?;
        commit_with(tx, events).await
    }

    pub(super) async fn operator_row(&self, id: OperatorId) -> StoreResult<Option<Operator>> {
        sqlx::query(&pg("SELECT * FROM operators WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }

    pub(super) async fn operator_rows(&self) -> StoreResult<Vec<Operator>> {
        sqlx::query(&pg("SELECT * FROM operators ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    pub(super) async fn delete_operator_row(
        &self,
        id: OperatorId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(&pg("DELETE FROM operators WHERE id = ?"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        commit_with(tx, events).await?;
        Ok(true)
    }
}
