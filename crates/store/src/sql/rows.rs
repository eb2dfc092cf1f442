//! Reading rows into records, and the small conversions every area shares.

use chrono::{DateTime, Utc};
use tessera_domain::access::AccessEntry;
use tessera_domain::time::from_millis;
use tessera_domain::{ApiKeyId, ClientId, GroupId, OrgId, OrgRole, SecretId};

use super::*;
use crate::*;

pub(crate) fn org_from_row(row: &impl RowGet) -> StoreResult<Org> {
    Ok(Org {
        id: id(row, "id", OrgId::parse)?,
        name: row.try_get("name")?,
        skip_default_alerts: row.try_get("skip_default_alerts")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

pub(crate) fn group_from_row(row: &impl RowGet) -> StoreResult<Group> {
    let tags_json: String = row.try_get("tags")?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&tags_json)
        .map_err(|e| StoreError::Backend(format!("malformed tags in store: {e}")))?;
    Ok(Group {
        id: id(row, "id", GroupId::parse)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        name: row.try_get("name")?,
        with_default_alerts: row.try_get("with_default_alerts")?,
        region_usage_restrictions: row.try_get("region_usage_restrictions")?,
        tags: pairs
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
        created_at: from_millis(row.try_get("created_at")?),
    })
}

pub(crate) fn tags_json(tags: &[Tag]) -> String {
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn api_key_from_row(row: &impl RowGet) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: id(row, "id", ApiKeyId::parse)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        public_key: row.try_get("public_key")?,
        description: row.try_get("description")?,
        private_key_masked: row.try_get("private_key_masked")?,
        ha1_md5_sealed: row.try_get("ha1_md5_sealed")?,
        ha1_sha256_sealed: row.try_get("ha1_sha256_sealed")?,
        org_roles: split_roles::<OrgRole>(&row.try_get::<String, _>("org_roles")?)?,
        group_roles: Vec::new(),
        created_at: from_millis(row.try_get("created_at")?),
        access_list: Vec::new(),
    })
}

pub(crate) const API_KEY_COLUMNS: &str =
    "k.id, k.org_id, k.public_key, k.description, k.private_key_masked, \
     k.ha1_md5_sealed, k.ha1_sha256_sealed, k.org_roles, k.created_at";

pub(crate) fn limit_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn count(row: &impl RowGet) -> StoreResult<u64> {
    let n: i64 = row.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn opt_millis(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

pub(crate) fn account_from_row(row: &impl RowGet) -> StoreResult<ServiceAccount> {
    Ok(ServiceAccount {
        client_id: id(row, "id", ClientId::parse_hex)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        org_roles: split_roles::<OrgRole>(&row.try_get::<String, _>("org_roles")?)?,
        group_roles: Vec::new(),
        created_at: from_millis(row.try_get("created_at")?),
        secrets: Vec::new(),
        access_list: Vec::new(),
    })
}

pub(crate) fn secret_from_row(row: &impl RowGet) -> StoreResult<(ClientId, SaSecret)> {
    Ok((
        id(row, "account_id", ClientId::parse_hex)?,
        SaSecret {
            id: id(row, "id", SecretId::parse)?,
            hash: row.try_get("secret_hash")?,
            masked: row.try_get("masked")?,
            created_at: from_millis(row.try_get("created_at")?),
            expires_at: from_millis(row.try_get("expires_at")?),
            last_used_at: opt_millis(row.try_get("last_used_at")?),
        },
    ))
}

/// One access-list entry with its counters (the columns both owners' tables share).
pub(crate) fn entry_from_row(row: &impl RowGet) -> StoreResult<AccessListEntry> {
    let key: String = row.try_get("entry")?;
    let is_cidr: bool = row.try_get("is_cidr")?;
    let mut entry = AccessEntry::from_cidr_block(&key)
        .map_err(|_| StoreError::Backend(format!("malformed access entry {key:?} in store")))?;
    entry.is_cidr = is_cidr;
    let count: i64 = row.try_get("request_count")?;
    Ok(AccessListEntry {
        entry,
        created_at: from_millis(row.try_get("created_at")?),
        last_used_at: opt_millis(row.try_get("last_used_at")?),
        last_used_address: row.try_get("last_used_address")?,
        request_count: u64::try_from(count).unwrap_or(0),
    })
}

pub(crate) fn access_from_row(row: &impl RowGet) -> StoreResult<(ClientId, AccessListEntry)> {
    Ok((
        id(row, "account_id", ClientId::parse_hex)?,
        entry_from_row(row)?,
    ))
}

/// An id stored in column `col`, made by `parse` (a newtype's `parse`).
pub(crate) fn id<T>(
    row: &impl RowGet,
    col: &str,
    parse: fn(&str) -> Result<T, tessera_domain::ValidationError>,
) -> StoreResult<T> {
    let s: String = row.try_get(col)?;
    parse(&s).map_err(|_| StoreError::Backend(format!("malformed id {s:?} in store")))
}
