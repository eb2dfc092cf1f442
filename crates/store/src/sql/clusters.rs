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
use tessera_domain::clusters::{EmployeeAccessGrant, EmployeeAccessLevel};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{ClusterId, GroupId, OperatorId, OrgId};

use super::*;
use crate::events::NewEvent;
use crate::ClusterStore;
use crate::{
    Change, Cluster, DeleteGroupOutcome, GroupClusters, GroupFilter, Listed, Operator, Page,
    RevokeGrantOutcome, StoreError, StoreResult,
};

/// Cluster columns with the project's org (clusters `c` joined to groups `g`).
const COLUMNS: &str = "c.id, c.group_id, g.org_id, c.name, c.created_at, c.state_name, c.body, \
     c.grant_type, c.grant_expires_at, c.grant_expiry_recorded";
const FROM: &str = "FROM clusters c JOIN groups g ON g.id = c.group_id";

fn cluster_from_row(row: &impl RowGet) -> StoreResult<Cluster> {
    let body: String = row.try_get("body")?;
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Backend(
                "malformed cluster body in store".into(),
            ))
        }
    };
    let grant_type: Option<String> = row.try_get("grant_type")?;
    let grant_expires: Option<i64> = row.try_get("grant_expires_at")?;
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
        id: id(row, "id", ClusterId::parse)?,
        group_id: id(row, "group_id", GroupId::parse)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        name: row.try_get("name")?,
        created_at: from_millis(row.try_get("created_at")?),
        state_name: row.try_get("state_name")?,
        body,
        grant,
        grant_expiry_recorded: row.try_get("grant_expiry_recorded")?,
    })
}

/// The cluster `name` of `group`; with `lock`, its row stays locked (`FOR UPDATE`) until the
/// caller's transaction ends.
fn cluster_in<'c, O: On<'c> + 'c>(
    on: O,
    group: GroupId,
    name: &'c str,
    lock: bool,
) -> futures_util::future::BoxFuture<'c, StoreResult<Option<Cluster>>> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE c.group_id = ? AND c.name = ?");
    let sql = if lock {
        locked::<O::Db>(&sql, Some("c"))
    } else {
        sql
    };
    // Boxed: see `Query::fetch_all`.
    Box::pin(async move {
        query(sql)
            .bind(group.to_string())
            .bind(name)
            .fetch_optional(on)
            .await?
            .as_ref()
            .map(cluster_from_row)
            .transpose()
    })
}

fn operator_from_row(row: &impl RowGet) -> StoreResult<Operator> {
    Ok(Operator {
        id: id(row, "id", OperatorId::parse)?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        masked: row.try_get("masked")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl<D: Dialect> SqlStore<D> {
    /// `delete_group`: refused while the project has clusters, in the delete's transaction.
    pub(super) async fn delete_group_checked(
        &self,
        id: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteGroupOutcome> {
        let mut tx = self.work().await?;
        // The project's row lock orders this check against a cluster being created in it.
        let exists = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(DeleteGroupOutcome::NotFound);
        }
        let clusters = count(
            &query("SELECT COUNT(*) FROM clusters WHERE group_id = ?")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if clusters > 0 {
            return Ok(DeleteGroupOutcome::HasClusters);
        }
        query("DELETE FROM groups WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        // The deletion cascades to memberships of service accounts other nodes hold.
        tx.commit(events, Change::Everything).await?;
        Ok(DeleteGroupOutcome::Deleted)
    }
}

#[async_trait::async_trait]
impl<D: Dialect> ClusterStore for SqlStore<D> {
    async fn create_cluster(&self, c: &Cluster, events: &[NewEvent]) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        // The project's row lock: a concurrent delete_group sees this cluster or runs first.
        let group = query(locked::<D::Db>("SELECT 1 FROM groups WHERE id = ?", None))
            .bind(c.group_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if group.is_none() {
            return Ok(false);
        }
        query(
            "INSERT INTO clusters (id, group_id, name, created_at, state_name, body, grant_type, \
             grant_expires_at, grant_expiry_recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
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
        .map_err(conflict("cluster_name"))?;
        super::people::enforce_limit(
            &mut tx,
            c.group_id,
            tessera_domain::limits::CLUSTERS,
            "SELECT COUNT(*) FROM clusters WHERE group_id = ?",
            None,
        )
        .await?;
        tx.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn get_cluster(&self, group: GroupId, name: &str) -> StoreResult<Option<Cluster>> {
        let mut conn = self.pool.acquire().await?;
        cluster_in(&mut conn, group, name, false).await
    }

    async fn list_clusters(&self, group: GroupId, page: Page) -> StoreResult<Listed<Cluster>> {
        let total = count(
            &query("SELECT COUNT(*) FROM clusters WHERE group_id = ?")
                .bind(group.to_string())
                .fetch_one(&self.pool)
                .await?,
        )?;
        let sql =
            format!("SELECT {COLUMNS} {FROM} WHERE c.group_id = ? ORDER BY c.id LIMIT ? OFFSET ?");
        let items = query(&sql)
            .bind(group.to_string())
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cluster_from_row)
            .collect::<StoreResult<_>>()?;
        Ok(Listed { items, total })
    }

    async fn cluster_counts(&self, groups: &[GroupId]) -> StoreResult<Vec<u64>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT group_id, COUNT(*) FROM clusters WHERE group_id IN ({}) GROUP BY group_id",
            vec!["?"; groups.len()].join(",")
        );
        let mut q = query(&sql);
        for g in groups {
            q = q.bind(g.to_string());
        }
        let mut found = std::collections::HashMap::new();
        for row in q.fetch_all(&self.pool).await? {
            let g = id(&row, "group_id", GroupId::parse)?;
            let n: i64 = row.try_get(1)?;
            found.insert(g, u64::try_from(n).unwrap_or(0));
        }
        Ok(groups
            .iter()
            .map(|g| found.get(g).copied().unwrap_or(0))
            .collect())
    }

    async fn list_clusters_by_group(
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
        let cq_sql = count_sql.clone();
        let pq_sql = page_sql.clone();
        let mut cq = query(&cq_sql).bind(org.to_string());
        let mut pq = query(&pq_sql).bind(org.to_string());
        for id in only {
            cq = cq.bind(id.to_string());
            pq = pq.bind(id.to_string());
        }
        let total = count(&cq.fetch_one(&self.pool).await?)?;
        let groups = pq
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool)
            .await?
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
        let mut q = query(&sql);
        for gc in &items {
            q = q.bind(gc.group.id.to_string());
        }
        for row in q.fetch_all(&self.pool).await? {
            let c = cluster_from_row(&row)?;
            if let Some(gc) = items.iter_mut().find(|gc| gc.group.id == c.group_id) {
                gc.clusters.push(c);
            }
        }
        Ok(Listed { items, total })
    }

    async fn update_cluster(
        &self,
        group: GroupId,
        name: &str,
        changes: &Map<String, Value>,
        events: &[NewEvent],
    ) -> StoreResult<Option<Cluster>> {
        let mut tx = self.work().await?;
        let Some(mut c) = cluster_in(&mut *tx, group, name, true).await? else {
            return Ok(None);
        };
        for (k, v) in changes {
            c.body.insert(k.clone(), v.clone());
        }
        query("UPDATE clusters SET body = ? WHERE id = ?")
            .bind(Value::Object(c.body.clone()).to_string())
            .bind(c.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit_all(events, &[]).await?;
        Ok(Some(c))
    }

    async fn delete_cluster(
        &self,
        group: GroupId,
        name: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM clusters WHERE group_id = ? AND name = ?")
            .bind(group.to_string())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn set_employee_access_grant(
        &self,
        group: GroupId,
        name: &str,
        grant: EmployeeAccessGrant,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("UPDATE clusters SET grant_type = ?, grant_expires_at = ?, grant_expiry_recorded = FALSE \
             WHERE group_id = ? AND name = ?")
        .bind(grant.level.as_str())
        .bind(to_millis(grant.expires_at))
        .bind(group.to_string())
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn revoke_employee_access(
        &self,
        group: GroupId,
        name: &str,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<RevokeGrantOutcome> {
        let mut tx = self.work().await?;
        let Some(c) = cluster_in(&mut *tx, group, name, true).await? else {
            return Ok(RevokeGrantOutcome::NotFound);
        };
        if !c.grant.is_some_and(|g| g.is_active(now)) {
            return Ok(RevokeGrantOutcome::NoActiveGrant);
        }
        query(
            "UPDATE clusters SET grant_type = NULL, grant_expires_at = NULL, \
             grant_expiry_recorded = FALSE WHERE id = ?",
        )
        .bind(c.id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit_all(events, &[]).await?;
        Ok(RevokeGrantOutcome::Revoked)
    }

    async fn unrecorded_expired_grants(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<Cluster>> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE c.grant_expires_at IS NOT NULL \
             AND c.grant_expiry_recorded = FALSE AND c.grant_expires_at <= ? \
             ORDER BY c.grant_expires_at, c.id LIMIT ?"
        );
        query(&sql)
            .bind(to_millis(now))
            .bind(limit_i64(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cluster_from_row)
            .collect()
    }

    async fn record_grant_expiry(
        &self,
        cluster: ClusterId,
        expires_at: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query(
            "UPDATE clusters SET grant_expiry_recorded = TRUE \
             WHERE id = ? AND grant_expires_at = ? AND grant_expiry_recorded = FALSE",
        )
        .bind(cluster.to_string())
        .bind(to_millis(expires_at))
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn record_employee_access_use(
        &self,
        cluster: ClusterId,
        grant: EmployeeAccessGrant,
        event: &NewEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let same = query(locked::<D::Db>(
            "SELECT 1 FROM clusters WHERE id = ? AND grant_type = ? AND grant_expires_at = ?",
            None,
        ))
        .bind(cluster.to_string())
        .bind(grant.level.as_str())
        .bind(to_millis(grant.expires_at))
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !same {
            return Ok(false);
        }
        tx.commit_all(std::slice::from_ref(event), &[]).await?;
        Ok(true)
    }

    async fn create_operator(&self, op: &Operator, events: &[NewEvent]) -> StoreResult<()> {
        let mut tx = self.work().await?;
        query("INSERT INTO operators (id, name, secret_hash, masked, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(op.id.to_string())
        .bind(&op.name)
        .bind(&op.secret_hash)
        .bind(&op.masked)
        .bind(to_millis(op.created_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict("operator_name"))?;
        tx.commit_all(events, &[]).await
    }

    async fn get_operator(&self, id: OperatorId) -> StoreResult<Option<Operator>> {
        query("SELECT * FROM operators WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(operator_from_row)
            .transpose()
    }

    async fn list_operators(&self) -> StoreResult<Vec<Operator>> {
        query("SELECT * FROM operators ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(operator_from_row)
            .collect()
    }

    async fn delete_operator(&self, id: OperatorId, events: &[NewEvent]) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM operators WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit_all(events, &[]).await?;
        Ok(true)
    }
}
