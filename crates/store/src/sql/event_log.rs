//! The event log: written inside a change's transaction, each event numbered in its logs
//! (org, project, and each one-type view), so page 1000 of a million events is an index seek
//! to a position; other filters read with the index alone until the page is known (a
//! deferred join).

use std::collections::BTreeMap;

use sqlx::{Pool, Transaction};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{ApiKeyId, ClientId, EventId, GroupId, OrgId};

use super::{id, query, query_scalar, Dialect, Exec, Query, RowGet, SqlStore};
use crate::events::*;
use crate::EventStore;
use crate::{Listed, StoreError, StoreResult};

const COLUMNS: &str = "id, created_at, event_type, org_id, group_id, actor_kind, \
    actor_api_key_id, actor_public_key, actor_client_id, remote_address, target, count";
/// What a read returns: the written columns and a person's, when a person acted.
const READ_COLUMNS: &str = "id, created_at, event_type, org_id, group_id, actor_kind, \
    actor_api_key_id, actor_public_key, actor_client_id, remote_address, target, count, \
    actor_user_id, actor_username";

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
        Actor::User { .. } => ("user", None, None, None),
    }
}

/// A person who acted: (user id, username).
fn user_columns(actor: &Actor) -> (Option<String>, Option<String>) {
    match actor {
        Actor::User { id, username } => (Some(id.to_string()), Some(username.clone())),
        _ => (None, None),
    }
}

fn target_json<'a>(target: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = target
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The logs an event is in, in the order of its position columns (`POSITIONS`): its org's
/// log, that log's one-type view, its project's log and that log's one-type view.
fn scopes(org: Option<OrgId>, group: Option<GroupId>, event_type: &str) -> [Option<String>; 4] {
    // An org's log holds its own events only: a project's events are in the project's log.
    let own = org.filter(|_| group.is_none());
    [
        own.map(|o| format!("org:{o}")),
        own.map(|o| format!("org:{o}:{event_type}")),
        group.map(|g| format!("group:{g}")),
        group.map(|g| format!("group:{g}:{event_type}")),
    ]
}

const POSITIONS: &str = "org_pos, org_type_pos, group_pos, group_type_pos";

/// Adds `n` to each scope's count, in scope order (so two writers cannot deadlock), and
/// returns each scope's first new position: events are numbered in the order written.
async fn take_positions<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    counts: BTreeMap<String, i64>,
) -> StoreResult<BTreeMap<String, i64>> {
    let mut next = BTreeMap::new();
    for (scope, n) in counts {
        let total: i64 = query_scalar(
            "INSERT INTO event_counts (scope, n) VALUES (?, ?) \
             ON CONFLICT (scope) DO UPDATE SET n = event_counts.n + excluded.n RETURNING n",
        )
        .bind(&scope)
        .bind(n)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Backend("an upsert returned no row".into()))?;
        next.insert(scope, total - n + 1);
    }
    Ok(next)
}

/// Counts each scope of `of` once per event.
fn count_scopes<'a>(of: impl Iterator<Item = &'a [Option<String>; 4]>) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for scope in of.flatten().flatten() {
        *counts.entry(scope.clone()).or_insert(0i64) += 1;
    }
    counts
}

/// The next position in each of `scopes`.
fn place(next: &mut BTreeMap<String, i64>, scopes: &[Option<String>; 4]) -> [Option<i64>; 4] {
    scopes.clone().map(|s| {
        s.and_then(|s| next.get_mut(&s)).map(|n| {
            *n += 1;
            *n - 1
        })
    })
}

/// Writes `events` in the change's transaction, a few dozen rows per statement, each with its
/// place in its logs.
pub(super) async fn insert<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    events: &[NewEvent],
) -> StoreResult<()> {
    const ROWS_PER_STATEMENT: usize = 64;
    let scoped: Vec<_> = events
        .iter()
        .map(|e| scopes(e.org_id, e.group_id, e.event_type.as_str()))
        .collect();
    let mut next = take_positions(tx, count_scopes(scoped.iter())).await?;
    for (chunk, scoped) in events
        .chunks(ROWS_PER_STATEMENT)
        .zip(scoped.chunks(ROWS_PER_STATEMENT))
    {
        let sql = format!(
            "INSERT INTO events ({COLUMNS}, actor_user_id, actor_username, {POSITIONS}) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = query(sql);
        for (e, scopes) in chunk.iter().zip(scoped) {
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
            let (user_id, username) = user_columns(&e.actor);
            q = q.bind(user_id).bind(username);
            for pos in place(&mut next, scopes) {
                q = q.bind(pos);
            }
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
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
    // Aggregates inserted now, with their logs: placed after all are in, in scope order.
    let mut inserted = Vec::new();
    for f in failures {
        let key = f.key();
        let count = i64::try_from(f.count).unwrap_or(i64::MAX);
        let (kind, key_id, public_key, client_id) = actor_columns(&f.actor);
        // Inserted, or (the aggregate exists; a concurrent insert is waited for) nothing.
        let done = query(format!(
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
        if done.rows_affected() == 1 {
            inserted.push((key, scopes(f.org_id, None, f.event_type.as_str())));
        } else {
            query("UPDATE events SET count = count + ? WHERE agg_key = ?")
                .bind(count)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
    }
    let mut next = take_positions(tx, count_scopes(inserted.iter().map(|(_, s)| s))).await?;
    for (key, scopes) in &inserted {
        let mut q = query(format!(
            "UPDATE events SET ({POSITIONS}) = (?, ?, ?, ?) WHERE agg_key = ?"
        ));
        for pos in place(&mut next, scopes) {
            q = q.bind(pos);
        }
        q.bind(key.as_str()).execute(&mut *tx).await?;
    }
    Ok(())
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
        "user" => Actor::User {
            id: opt_id(row, "actor_user_id", tessera_domain::UserId::parse)?
                .ok_or_else(|| StoreError::Backend("event without its user".into()))?,
            username: row
                .try_get::<Option<String>, _>("actor_username")?
                .unwrap_or_default(),
        },
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
/// Narrows an org's log to what its reader may see: the org's own events if `org_events`,
/// nothing otherwise (the log holds no project's events).
fn push_visibility(qb: &mut Query<'_>, v: &EventVisibility) {
    if !v.org_events {
        qb.push(" AND 1 = 0");
    }
}

fn push_filter<'a>(qb: &mut Query<'a>, q: &'a EventQuery) {
    match q.scope {
        EventScope::Org(o) => {
            // The org's own events are exactly those numbered in its log.
            qb.push(" WHERE org_id = ")
                .push_bind(o.to_string())
                .push(" AND org_pos IS NOT NULL");
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

/// Where a listing's events have dense positions: the log's count (in `event_counts`) and the
/// position column, so page p is a range of positions found by an index seek. Filters that
/// leave gaps (dates, several types, part of an org's log) have none.
fn positioned(q: &EventQuery) -> Option<(String, &'static str)> {
    if q.min.is_some() || q.max.is_some() || q.types.len() > 1 {
        return None;
    }
    let (log, col, type_col) = match q.scope {
        EventScope::Org(o) if q.visible.org_events => {
            (format!("org:{o}"), "org_pos", "org_type_pos")
        }
        EventScope::Org(_) => return None,
        EventScope::Group(g) => (format!("group:{g}"), "group_pos", "group_type_pos"),
    };
    Some(match q.types.first() {
        None => (log, col),
        Some(t) => (format!("{log}:{t}"), type_col),
    })
}

/// A page of a log, newest first: in the order events were written (their positions).
pub(super) async fn list<DB: Exec>(
    pool: &Pool<DB>,
    q: &EventQuery,
) -> StoreResult<Listed<EventRecord>> {
    let limit = i64::try_from(q.page.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(q.page.offset).unwrap_or(i64::MAX);
    if let Some((log, col)) = positioned(q) {
        // The newest event's position is the log's count; page p ends p-1 pages below it.
        let n = query_scalar::<i64>("SELECT n FROM event_counts WHERE scope = ?")
            .bind(log)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0);
        let top = n.saturating_sub(offset);
        let mut items = Vec::new();
        if top >= 1 && limit > 0 {
            let mut qb = query(format!("SELECT {READ_COLUMNS} FROM events"));
            push_filter(&mut qb, q);
            qb.push(&format!(" AND {col} <= "))
                .push_bind(top)
                .push(&format!(" ORDER BY {col} DESC LIMIT "))
                .push_bind(limit);
            let rows = qb.fetch_all(pool).await?;
            items = rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?;
        }
        let total = if q.include_count { n } else { 0 };
        return Ok(Listed {
            items,
            total: u64::try_from(total).unwrap_or(0),
        });
    }
    // With gaps: the page's ids from the index alone, then their rows.
    let order = match q.scope {
        EventScope::Org(_) => "org_pos",
        EventScope::Group(_) => "group_pos",
    };
    let key = DB::ROW_KEY;
    let mut qb = query(format!(
        "SELECT {READ_COLUMNS} FROM events WHERE {key} IN (SELECT {key} FROM events"
    ));
    push_filter(&mut qb, q);
    qb.push(&format!(" ORDER BY {order} DESC LIMIT "))
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset)
        .push(&format!(") ORDER BY {order} DESC"));
    let rows = qb.fetch_all(pool).await?;
    let items = rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?;
    let total = if q.include_count {
        let mut qb = query("SELECT COUNT(*) FROM events");
        push_filter(&mut qb, q);
        qb.fetch_one(pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))?
    } else {
        0
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
    let row = query(format!("SELECT {READ_COLUMNS} FROM events WHERE id = ?"))
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
    let mut qb = query(format!("SELECT {READ_COLUMNS} FROM events WHERE "));
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
