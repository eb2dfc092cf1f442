//! Service accounts: reading every account (at start), a page or one account, and changing an
//! account, its secrets, access list and project assignments.

use tessera_domain::{ClientId, GroupId, GroupRole, OrgId};

use super::*;
use crate::*;
use tessera_domain::time::to_millis;

/// How many places in an org (`service_accounts.org_pos`) a row of `sa_org_blocks` counts: a
/// page skips at most this many index entries (migration 0006/0007 uses the same number).
const SA_BLOCK: i64 = 1024;

/// Which service accounts [`PgStore::load_accounts`] reads: a subquery yielding account ids
/// (`?` placeholders bound from `args`), or every account.
pub(crate) struct AccountSelection {
    ids: Option<String>,
    args: Vec<String>,
}

impl AccountSelection {
    /// `sql` with the selection's values bound.
    fn query<'a>(&'a self, sql: &'a str) -> Query<'a> {
        self.args.iter().fold(query(sql), |q, a| q.bind(a.as_str()))
    }
}

impl<D: Dialect> SqlStore<D> {
    /// One page of accounts: `count_sql` counts them and `ids_sql` selects the page's ids in
    /// order, both filtered by `owner` (the page's limit and offset follow it in `ids_sql`).
    async fn account_page(
        &self,
        count_sql: &str,
        ids_sql: &str,
        owner: String,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        // The count and the page's ids each walk the owner's index entries: run them at once,
        // on two connections, so a page's latency is the longer walk, not their sum.
        let count_q = query(count_sql).bind(&owner).fetch_one(&self.pool);
        let ids_q = query_scalar::<String>(ids_sql)
            .bind(&owner)
            .bind(limit_i64(page.limit))
            .bind(limit_i64(page.offset))
            .fetch_all(&self.pool);
        let (count_row, ids) = tokio::try_join!(count_q, ids_q)?;
        let total = count(&count_row)?;
        let items = self.load_in_order(&ids).await?;
        Ok(Listed { items, total })
    }

    /// The accounts of `ids`, in that order.
    async fn load_in_order(&self, ids: &[String]) -> StoreResult<Vec<ServiceAccount>> {
        // In chunks: a statement's parameters are limited (SQLite: 32,766), and only
        // `Page::ALL` asks for more than one chunk.
        let mut items = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(5_000) {
            items.extend(
                self.load_accounts(&AccountSelection {
                    ids: Some(vec!["?"; chunk.len()].join(", ")),
                    args: chunk.to_vec(),
                })
                .await?,
            );
        }
        let place: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        items.sort_by_cached_key(|a| place.get(a.client_id.hex().as_str()).copied());
        Ok(items)
    }

    /// Loads the selected accounts, ordered by id, with their secrets (by id), lists (by entry)
    /// and projects (by id), from one snapshot.
    /// Linear in the rows read: children are matched to their account through a map.
    async fn load_accounts(&self, sel: &AccountSelection) -> StoreResult<Vec<ServiceAccount>> {
        let (filter, child_filter) = match &sel.ids {
            Some(ids) => (
                format!(" WHERE id IN ({ids})"),
                format!(" WHERE account_id IN ({ids})"),
            ),
            None => (String::new(), String::new()),
        };
        // No ORDER BY: sequential scans instead of index walks (or sorts) on the server; the
        // order is restored below in memory.
        let sql_a = format!("SELECT * FROM service_accounts{filter}");
        let sql_s = format!("SELECT * FROM sa_secrets{child_filter}");
        let sql_l = format!("SELECT * FROM sa_access_list{child_filter}");
        let sql_g = format!("SELECT * FROM sa_groups{child_filter}");
        // One snapshot for the four queries, so an account is never mixed with children
        // written after it was read.
        let mut tx = self.dialect.begin_snapshot(&self.pool).await?;
        let mut accounts: Vec<ServiceAccount> = Vec::new();
        sel.query(&sql_a)
            .for_each(&mut tx, |row| {
                accounts.push(account_from_row(row)?);
                Ok(())
            })
            .await?;
        accounts.sort_unstable_by_key(|a| a.client_id);
        let index: std::collections::HashMap<ClientId, usize> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.client_id, i))
            .collect();
        sel.query(&sql_s)
            .for_each(&mut tx, |row| {
                let (id, secret) = secret_from_row(row)?;
                if let Some(&i) = index.get(&id) {
                    accounts[i].secrets.push(secret);
                }
                Ok(())
            })
            .await?;
        sel.query(&sql_l)
            .for_each(&mut tx, |row| {
                let (id, entry) = access_from_row(row)?;
                if let Some(&i) = index.get(&id) {
                    accounts[i].access_list.push(entry);
                }
                Ok(())
            })
            .await?;
        sel.query(&sql_g)
            .for_each(&mut tx, |row| {
                let account = id(row, "account_id", ClientId::parse_hex)?;
                let group = id(row, "group_id", GroupId::parse)?;
                let roles = split_roles::<GroupRole>(&row.try_get::<String, _>("roles")?)?;
                if let Some(&i) = index.get(&account) {
                    accounts[i].group_roles.push((group, roles));
                }
                Ok(())
            })
            .await?;
        tx.commit().await?;
        // Pushing one child at a time leaves spare capacity; a million accounts kept in
        // memory should hold only what they have.
        for a in &mut accounts {
            a.secrets.sort_unstable_by_key(|x| x.id);
            a.access_list.sort_by_cached_key(|e| e.entry.key());
            a.group_roles.sort_unstable_by_key(|(g, _)| *g);
            a.secrets.shrink_to_fit();
            a.access_list.shrink_to_fit();
            a.group_roles.shrink_to_fit();
        }
        Ok(accounts)
    }
}

pub(crate) async fn insert_access_entries<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ClientId,
    entries: &[AccessListEntry],
) -> StoreResult<()> {
    for e in entries {
        query(
            "INSERT INTO sa_access_list (account_id, entry, is_cidr, created_at, last_used_at, last_used_address, request_count) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, entry) DO NOTHING",
        )
        .bind(id.hex())
        .bind(e.entry.key())
        .bind(e.entry.is_cidr)
        .bind(to_millis(e.created_at))
        .bind(e.last_used_at.map(to_millis))
        .bind(&e.last_used_address)
        .bind(limit_i64(e.request_count))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(crate) async fn insert_secret<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ClientId,
    s: &SaSecret,
) -> StoreResult<()> {
    query(
        "INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s.id.to_string())
    .bind(id.hex())
    .bind(&s.hash)
    .bind(&s.masked)
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.expires_at))
    .bind(s.last_used_at.map(to_millis))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) async fn upsert_sa_group<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ClientId,
    group: GroupId,
    roles: &[GroupRole],
) -> StoreResult<()> {
    query(
        "INSERT INTO sa_groups (account_id, group_id, roles) VALUES (?, ?, ?) \
         ON CONFLICT (account_id, group_id) DO UPDATE SET roles = excluded.roles",
    )
    .bind(id.hex())
    .bind(group.to_string())
    .bind(join_roles(roles))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether the account exists, read inside the caller's transaction with its row locked
/// (`FOR UPDATE`) until that transaction ends, so check-then-write rules on the account
/// (the secret limit) run one transaction at a time on every node.
pub(crate) async fn account_exists<DB: Exec>(
    tx: &mut Transaction<'_, DB>,
    id: ClientId,
) -> StoreResult<bool> {
    Ok(query(locked::<DB>(
        "SELECT 1 FROM service_accounts WHERE id = ?",
        None,
    ))
    .bind(id.hex())
    .fetch_optional(&mut *tx)
    .await?
    .is_some())
}

#[async_trait::async_trait]
impl<D: Dialect> AccountStore for SqlStore<D> {
    async fn list_service_accounts(&self) -> StoreResult<Vec<ServiceAccount>> {
        self.load_accounts(&AccountSelection {
            ids: None,
            args: Vec::new(),
        })
        .await
    }

    async fn list_org_service_accounts(
        &self,
        org: OrgId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        // In the order created (their places in the org): the page starts in the block of
        // 1,024 places where the running count of live accounts passes the page's offset.
        let org = org.to_string();
        let blocks =
            query("SELECT block, n FROM sa_org_blocks WHERE org_id = ? AND n > 0 ORDER BY block")
                .bind(&org)
                .fetch_all(&self.pool)
                .await?;
        let offset = limit_i64(page.offset);
        let (mut total, mut start) = (0i64, None);
        for row in &blocks {
            let (block, n): (i64, i64) = (row.try_get("block")?, row.try_get("n")?);
            if start.is_none() && total + n > offset {
                start = Some((block, offset - total));
            }
            total += n;
        }
        let ids = match start {
            Some((block, skip)) if page.limit > 0 => {
                query_scalar::<String>(
                    "SELECT id FROM service_accounts WHERE org_id = ? AND org_pos > ? \
                     ORDER BY org_pos LIMIT ? OFFSET ?",
                )
                .bind(&org)
                .bind(block * SA_BLOCK)
                .bind(limit_i64(page.limit))
                .bind(skip)
                .fetch_all(&self.pool)
                .await?
            }
            _ => Vec::new(),
        };
        Ok(Listed {
            items: self.load_in_order(&ids).await?,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn list_group_service_accounts(
        &self,
        group: GroupId,
        page: Page,
    ) -> StoreResult<Listed<ServiceAccount>> {
        self.account_page(
            "SELECT COUNT(*) FROM sa_groups WHERE group_id = ?",
            "SELECT account_id FROM sa_groups WHERE group_id = ? ORDER BY account_id LIMIT ? OFFSET ?",
            group.to_string(),
            page,
        )
        .await
    }

    async fn get_service_account(&self, id: ClientId) -> StoreResult<Option<ServiceAccount>> {
        Ok(self
            .load_accounts(&AccountSelection {
                ids: Some("SELECT CAST(? AS TEXT)".into()),
                args: vec![id.hex()],
            })
            .await?
            .pop())
    }

    async fn create_service_account(
        &self,
        a: &ServiceAccount,
        events: &[NewEvent],
    ) -> StoreResult<()> {
        let mut tx = self.work().await?;
        // The account's place in its org: the next one, never reused.
        let pos: i64 = query_scalar(
            "INSERT INTO sa_org_counts (org_id, n, last_pos) VALUES (?, 1, 1) ON CONFLICT (org_id) \
             DO UPDATE SET n = sa_org_counts.n + 1, last_pos = sa_org_counts.last_pos + 1 RETURNING last_pos",
        )
        .bind(a.org_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Backend("an upsert returned no row".into()))?;
        query(
            "INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at, org_pos) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.client_id.hex())
        .bind(a.org_id.to_string())
        .bind(&a.name)
        .bind(&a.description)
        .bind(join_roles(&a.org_roles))
        .bind(to_millis(a.created_at))
        .bind(pos)
        .execute(&mut *tx)
        .await?;
        query(
            "INSERT INTO sa_org_blocks (org_id, block, n) VALUES (?, ?, 1) \
             ON CONFLICT (org_id, block) DO UPDATE SET n = sa_org_blocks.n + 1",
        )
        .bind(a.org_id.to_string())
        .bind((pos - 1) / SA_BLOCK)
        .execute(&mut *tx)
        .await?;
        for secret in &a.secrets {
            insert_secret(&mut tx, a.client_id, secret).await?;
        }
        for (group, roles) in &a.group_roles {
            upsert_sa_group(&mut tx, a.client_id, *group, roles).await?;
        }
        insert_access_entries(&mut tx, a.client_id, &a.access_list).await?;
        tx.commit(events, Change::Account(a.client_id)).await
    }

    async fn update_service_account(
        &self,
        id: ClientId,
        name: Option<&str>,
        description: Option<&str>,
        org_roles: Option<&[OrgRole]>,
        group_roles: Option<(GroupId, &[GroupRole])>,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query(
            "UPDATE service_accounts SET name = COALESCE(?, name), description = COALESCE(?, description), \
             org_roles = COALESCE(?, org_roles) WHERE id = ?",
        )
        .bind(name)
        .bind(description)
        .bind(org_roles.map(join_roles))
        .bind(id.hex())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((group, roles)) = group_roles {
            upsert_sa_group(&mut tx, id, group, roles).await?;
        }
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn delete_service_account(&self, id: ClientId, events: &[NewEvent]) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let gone = query("DELETE FROM service_accounts WHERE id = ? RETURNING org_id, org_pos")
            .bind(id.hex())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(gone) = gone else {
            return Ok(false);
        };
        let org: String = gone.try_get("org_id")?;
        let pos: Option<i64> = gone.try_get("org_pos")?;
        query("UPDATE sa_org_counts SET n = n - 1 WHERE org_id = ?")
            .bind(&org)
            .execute(&mut *tx)
            .await?;
        query("UPDATE sa_org_blocks SET n = n - 1 WHERE org_id = ? AND block = ?")
            .bind(&org)
            .bind(pos.map(|p| (p - 1) / SA_BLOCK))
            .execute(&mut *tx)
            .await?;
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn add_service_account_secret(
        &self,
        id: ClientId,
        secret: &SaSecret,
        max_active: usize,
        now: DateTime<Utc>,
        events: &[NewEvent],
    ) -> StoreResult<AddSecretOutcome> {
        let mut tx = self.work().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(AddSecretOutcome::NotFound);
        }
        let active = count(
            &query("SELECT COUNT(*) FROM sa_secrets WHERE account_id = ? AND expires_at > ?")
                .bind(id.hex())
                .bind(to_millis(now))
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if active >= max_active as u64 {
            return Ok(AddSecretOutcome::TooMany);
        }
        insert_secret(&mut tx, id, secret).await?;
        tx.commit(events, Change::Account(id)).await?;
        Ok(AddSecretOutcome::Added)
    }

    async fn delete_service_account_secret(
        &self,
        id: ClientId,
        secret: SecretId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM sa_secrets WHERE account_id = ? AND id = ?")
            .bind(id.hex())
            .bind(secret.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn record_secret_use(&self, uses: &[(SecretId, DateTime<Utc>)]) -> StoreResult<()> {
        // Rows in one order on every node, so two nodes' flushes cannot deadlock.
        let mut uses = uses.to_vec();
        uses.sort_by_key(|(id, _)| *id);
        let mut tx = self.work().await?;
        for (id, at) in &uses {
            // Never moves the time back (a flush that lost a race to a later one).
            query(
                "UPDATE sa_secrets SET last_used_at = ? \
                 WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
            )
            .bind(to_millis(*at))
            .bind(id.to_string())
            .bind(to_millis(*at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit_all(&[], &[]).await
    }

    async fn add_access_entries(
        &self,
        id: ClientId,
        entries: &[AccessListEntry],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(false);
        }
        insert_access_entries(&mut tx, id, entries).await?;
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn delete_access_entry(
        &self,
        id: ClientId,
        entry_key: &str,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM sa_access_list WHERE account_id = ? AND entry = ?")
            .bind(id.hex())
            .bind(entry_key)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn record_access_use(&self, uses: &[AccessUse]) -> StoreResult<()> {
        // Rows in one order on every node, so two nodes' flushes cannot deadlock.
        let mut uses = uses.to_vec();
        uses.sort_by(|x, y| (x.account, &x.entry_key).cmp(&(y.account, &y.entry_key)));
        let mut tx = self.work().await?;
        for u in &uses {
            query(
                "UPDATE sa_access_list SET last_used_at = ?, last_used_address = ?, request_count = request_count + ? \
                 WHERE account_id = ? AND entry = ?",
            )
            .bind(to_millis(u.at))
            .bind(&u.address)
            .bind(limit_i64(u.count))
            .bind(u.account.hex())
            .bind(&u.entry_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit_all(&[], &[]).await
    }

    async fn set_service_account_group_roles(
        &self,
        id: ClientId,
        group: GroupId,
        roles: &[GroupRole],
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        if !account_exists(&mut tx, id).await? {
            return Ok(false);
        }
        upsert_sa_group(&mut tx, id, group, roles).await?;
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }

    async fn remove_service_account_from_group(
        &self,
        id: ClientId,
        group: GroupId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.work().await?;
        let r = query("DELETE FROM sa_groups WHERE account_id = ? AND group_id = ?")
            .bind(id.hex())
            .bind(group.to_string())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit(events, Change::Account(id)).await?;
        Ok(true)
    }
}
