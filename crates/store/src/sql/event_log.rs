//! The event log: written inside a change's transaction, read with the index alone
//! until the page is known (a deferred join), so page 1000 of a million events skips index
//! entries, not table rows.

use sqlx::{Pool, Transaction};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{ApiKeyId, ClientId, EventId, GroupId, OrgId};

use super::{id, query, query_scalar, Dialect, Exec, Query, RowGet, SqlStore};
use crate::events::*;
use crate::EventStore;
use crate::{GroupFilter, Listed, StoreError, StoreResult};

const COLUMNS: &str = "id, created_at, event_type, org_id, group_id, actor_kind, \
    actor_api_key_id, actor_public_key, actor_client_id, remote_address, target, count";

fn actor_columns(actor: &Actor) -> (&'static str, Option<String>, Option<String>, Option<String>) {
    match actor {
        Actor::ApiKey { id, public_key } => (
            "api_key",
            Some(id.to_string()),
            Some(public_key.clone()),
            None,
        ),
        Actor::ServiceAccount(c) => ("service_account", None, None, Some(c.hex())),
        Actor::System => ("system", None, None, None),
        Actor::Anonymous => ("anonymous", None, None, None),
    }
}

fn target_json<'a>(target: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = target
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn scopes(org: Option<OrgId>, group: Option<GroupId>) -> impl Iterator<Item = String> {
    org.map(|o| format!("org:{o}"))
        .into_iter()
        .chain(group.map(|g| format!("group:{g}")))
}

/// Adds `n` to each scope's count (the totals of unfiltered listings), in scope order.
async fn add_counts<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    counts: std::collections::BTreeMap<String, i64>,
) -> StoreResult<()> {
    for (scope, n) in counts {
        query(
            "INSERT INTO event_counts (scope, n) VALUES (?, ?) \
             ON CONFLICT (scope) DO UPDATE SET n = event_counts.n + excluded.n",
        )
        .bind(scope)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Writes `events` in the change's transaction, a few dozen rows per statement.
pub(super) async fn insert<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    events: &[NewEvent],
) -> StoreResult<()> {
    const ROWS_PER_STATEMENT: usize = 64;
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"; chunk.len()].join(", ")
        );
        let mut q = query(sql);
        for e in chunk {
            let (kind, key_id, public_key, client_id) = actor_columns(&e.actor);
            q = q
                .bind(e.id.to_string())
                .bind(to_millis(e.created))
                .bind(e.event_type.as_str())
                .bind(e.org_id.map(|o| o.to_string()))
                .bind(e.group_id.map(|g| g.to_string()))
                .bind(kind)
                .bind(key_id)
                .bind(public_key)
                .bind(client_id)
                .bind(e.remote_address.map(|a| a.to_string()))
                .bind(target_json(e.target.iter().map(|(k, v)| (*k, v.as_str()))));
        }
        q.execute(&mut *tx).await?;
    }
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        for scope in scopes(e.org_id, e.group_id) {
            *counts.entry(scope).or_insert(0i64) += 1;
        }
    }
    add_counts(tx, counts).await
}

/// Adds failed authentications to their (principal, address, minute) aggregates: a new
/// aggregate is inserted (and counted in its scope), an existing one (of this node or another)
/// adds to its count. In aggregation-key order, so two nodes' flushes cannot deadlock.
pub(super) async fn add_auth_failures<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    failures: &[AuthFailure],
) -> StoreResult<()> {
    let mut failures: Vec<&AuthFailure> = failures.iter().collect();
    failures.sort_by_cached_key(|f| f.key());
    let mut counts = std::collections::BTreeMap::new();
    for f in failures {
        let key = f.key();
        let count = i64::try_from(f.count).unwrap_or(i64::MAX);
        let (kind, key_id, public_key, client_id) = actor_columns(&f.actor);
        // Inserted, or (the aggregate exists; a concurrent insert is waited for) nothing.
        let inserted = query(format!(
            "INSERT INTO events ({COLUMNS}, agg_key) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (agg_key) DO NOTHING"
        ))
        .bind(EventId::generate(f.minute).to_string())
        .bind(to_millis(f.minute))
        .bind(f.event_type.as_str())
        .bind(f.org_id.map(|o| o.to_string()))
        .bind(kind)
        .bind(key_id)
        .bind(public_key)
        .bind(client_id)
        .bind(f.remote_address.map(|a| a.to_string()))
        .bind(target_json(std::iter::once(("principal", f.principal.as_str()))))
        .bind(count)
        .bind(key.as_str())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            for scope in scopes(f.org_id, None) {
                *counts.entry(scope).or_insert(0i64) += 1;
            }
        } else {
            query("UPDATE events SET count = count + ? WHERE agg_key = ?")
                .bind(count)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
    }
    add_counts(tx, counts).await
}

fn opt_id<T>(
    row: &impl RowGet,
    col: &str,
    parse: fn(&str) -> Result<T, tessera_domain::ValidationError>,
) -> StoreResult<Option<T>> {
    let v: Option<String> = row.try_get(col)?;
    v.map(|s| parse(&s).map_err(|_| StoreError::Backend(format!("malformed id {s:?} in store"))))
        .transpose()
}

fn record(row: &impl RowGet) -> StoreResult<EventRecord> {
    let kind: String = row.try_get("actor_kind")?;
    let actor = match kind.as_str() {
        "api_key" => Actor::ApiKey {
            id: opt_id(row, "actor_api_key_id", ApiKeyId::parse)?
                .ok_or_else(|| StoreError::Backend("event without its API key".into()))?,
            public_key: row
                .try_get::<Option<String>, _>("actor_public_key")?
                .unwrap_or_default(),
        },
        "service_account" => Actor::ServiceAccount(
            opt_id(row, "actor_client_id", ClientId::parse_hex)?
                .ok_or_else(|| StoreError::Backend("event without its client id".into()))?,
        ),
        "system" => Actor::System,
        _ => Actor::Anonymous,
    };
    let target: String = row.try_get("target")?;
    let target = match serde_json::from_str::<serde_json::Value>(&target) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    Ok(EventRecord {
        id: id(row, "id", EventId::parse)?,
        created: from_millis(row.try_get("created_at")?),
        event_type: row.try_get("event_type")?,
        org_id: opt_id(row, "org_id", OrgId::parse)?,
        group_id: opt_id(row, "group_id", GroupId::parse)?,
        actor,
        remote_address: row.try_get("remote_address")?,
        target,
        count: u64::try_from(row.try_get::<i64, _>("count")?).unwrap_or(0),
    })
}

/// The `WHERE` of a listing.
/// Narrows an org's log to what its reader may see: the org's own events (no project) if
/// `org_events`, and the events of the projects in `groups`.
fn push_visibility<'a>(qb: &mut Query<'a>, v: &'a EventVisibility) {
    match (&v.groups, v.org_events) {
        (GroupFilter::All, true) => {}
        (GroupFilter::All, false) => {
            qb.push(" AND group_id IS NOT NULL");
        }
        (GroupFilter::Only(ids), org_events) => {
            qb.push(if org_events {
                " AND (group_id IS NULL OR group_id IN ("
            } else {
                " AND (group_id IN ("
            });
            if ids.is_empty() {
                // `IN ()` is not SQL; no id matches this.
                qb.push("NULL");
            }
            for (i, g) in ids.iter().enumerate() {
                qb.push(if i == 0 { "" } else { ", " })
                    .push_bind(g.to_string());
            }
            qb.push("))");
        }
    }
}

fn push_filter<'a>(qb: &mut Query<'a>, q: &'a EventQuery) {
    match q.scope {
        EventScope::Org(o) => {
            qb.push(" WHERE org_id = ").push_bind(o.to_string());
            push_visibility(qb, &q.visible);
        }
        EventScope::Group(g) => {
            qb.push(" WHERE group_id = ").push_bind(g.to_string());
        }
    };
    if !q.types.is_empty() {
        qb.push(" AND event_type IN (");
        for (i, t) in q.types.iter().enumerate() {
            qb.push(if i == 0 { "" } else { ", " })
                .push_bind(t.as_str());
        }
        qb.push(")");
    }
    if let Some(min) = q.min {
        qb.push(" AND created_at >= ").push_bind(to_millis(min));
    }
    if let Some(max) = q.max {
        qb.push(" AND created_at <= ").push_bind(to_millis(max));
    }
}

pub(super) async fn list<DB: Exec>(
    pool: &Pool<DB>,
    q: &EventQuery,
) -> StoreResult<Listed<EventRecord>> {
    let limit = i64::try_from(q.page.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(q.page.offset).unwrap_or(i64::MAX);
    // The page's ids from the index alone, then their rows.
    let key = DB::ROW_KEY;
    let mut qb = query(format!(
        "SELECT {COLUMNS} FROM events WHERE {key} IN (SELECT {key} FROM events"
    ));
    push_filter(&mut qb, q);
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset)
        .push(") ORDER BY created_at DESC, id DESC");
    let rows = qb.fetch_all(pool).await?;
    let items = rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?;
    let total = if !q.include_count {
        0
    } else if q.types.is_empty()
        && q.min.is_none()
        && q.max.is_none()
        && (matches!(q.scope, EventScope::Group(_)) || q.visible.is_all())
    {
        let scope = match q.scope {
            EventScope::Org(o) => format!("org:{o}"),
            EventScope::Group(g) => format!("group:{g}"),
        };
        query_scalar::<i64>("SELECT n FROM event_counts WHERE scope = ?")
            .bind(scope)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0)
    } else {
        let mut qb = query("SELECT COUNT(*) FROM events");
        push_filter(&mut qb, q);
        qb.fetch_one(pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))?
    };
    Ok(Listed {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) async fn get<DB: Exec>(
    pool: &Pool<DB>,
    id: EventId,
) -> StoreResult<Option<EventRecord>> {
    let row = query(format!("SELECT {COLUMNS} FROM events WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(record).transpose()
}

pub(super) async fn export<DB: Exec>(
    pool: &Pool<DB>,
    org: Option<OrgId>,
    after: ExportCursor,
    limit: u64,
) -> StoreResult<Vec<EventRecord>> {
    let ms = to_millis(after.created);
    let mut qb = query(format!("SELECT {COLUMNS} FROM events WHERE "));
    match after.id {
        // Strictly after the last event printed: same millisecond, larger id, or later.
        Some(id) => {
            qb.push("(created_at > ")
                .push_bind(ms)
                .push(" OR (created_at = ")
                .push_bind(ms)
                .push(" AND id > ")
                .push_bind(id.to_string())
                .push("))");
        }
        None => {
            qb.push("created_at >= ").push_bind(ms);
        }
    }
    if let Some(o) = org {
        qb.push(" AND org_id = ").push_bind(o.to_string());
    }
    qb.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = qb.fetch_all(pool).await?;
    rows.iter().map(record).collect()
}

#[async_trait::async_trait]
impl<D: Dialect> EventStore for SqlStore<D> {
    async fn list_events(&self, q: &EventQuery) -> StoreResult<Listed<EventRecord>> {
        list(&self.pool, q).await
    }

    async fn get_event(&self, id: EventId) -> StoreResult<Option<EventRecord>> {
        get(&self.pool, id).await
    }

    async fn export_events(
        &self,
        org: Option<OrgId>,
        after: ExportCursor,
        limit: u64,
    ) -> StoreResult<Vec<EventRecord>> {
        export(&self.pool, org, after, limit).await
    }

    async fn record_auth_failures(&self, failures: &[AuthFailure]) -> StoreResult<()> {
        if failures.is_empty() {
            return Ok(());
        }
        let mut tx = self.work().await?;
        add_auth_failures(&mut tx, failures).await?;
        tx.commit_all(&[], &[]).await
    }
}
