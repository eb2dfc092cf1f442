//! Federated authentication (`federation_settings`, `identity_providers`,
//! `connected_org_configs`, `role_mappings`; migrations 0012 SQLite / 0013 PostgreSQL).
//! Settings of an IdP and of a connected org config are JSON documents; the ids other rows
//! name are columns. Every change is one unit of work that first locks the federation's row
//! (`federation_settings`, `FOR UPDATE` on PostgreSQL; SQLite's single writer), so "no
//! connected org uses this IdP", "the IdP is the federation's", "the config names an IdP"
//! and "the group name is unused" hold when the change commits. Nothing here is held in
//! memory, so commits publish no change.

use serde_json::{json, Value};
use tessera_domain::federation::{
    ConnectedOrgConfig, FederationSettings, IdentityProvider, OidcConfig, RoleAssignment,
    RoleMapping,
};
use tessera_domain::time::{from_millis, to_millis};
use tessera_domain::{FederationSettingsId, GroupId, IdentityProviderId, OrgId, RoleMappingId};

use super::*;
use crate::{
    split_roles, DeleteProvider, FederationStore, PutConfig, PutMapping, StoreError, StoreResult,
};

fn malformed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("malformed {what} in store: {e}"))
}

fn settings_from_row(row: &impl RowGet) -> StoreResult<FederationSettings> {
    Ok(FederationSettings {
        id: id(row, "id", FederationSettingsId::parse)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn provider_from_row(row: &impl RowGet) -> StoreResult<IdentityProvider> {
    let body: String = row.try_get("body")?;
    let config: OidcConfig =
        serde_json::from_str(&body).map_err(|e| malformed("identity provider", e))?;
    Ok(IdentityProvider {
        id: id(row, "id", IdentityProviderId::parse)?,
        federation_id: id(row, "federation_id", FederationSettingsId::parse)?,
        config,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn config_body(c: &ConnectedOrgConfig) -> String {
    json!({
        "dataAccessIdentityProviderIds": c.data_access_identity_provider_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "domainAllowList": c.domain_allow_list,
        "domainRestrictionEnabled": c.domain_restriction_enabled,
        "postAuthRoleGrants": c.post_auth_role_grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
    .to_string()
}

fn config_from_row(row: &impl RowGet) -> StoreResult<ConnectedOrgConfig> {
    let body: String = row.try_get("body")?;
    let v: Value = serde_json::from_str(&body).map_err(|e| malformed("connected org", e))?;
    let provider: Option<String> = row.try_get("identity_provider_id")?;
    let parse_idp =
        |s: &str| IdentityProviderId::parse(s).map_err(|e| malformed("identity provider id", e));
    Ok(ConnectedOrgConfig {
        org_id: id(row, "org_id", OrgId::parse)?,
        federation_id: id(row, "federation_id", FederationSettingsId::parse)?,
        identity_provider_id: provider.as_deref().map(parse_idp).transpose()?,
        data_access_identity_provider_ids: strings(&v, "dataAccessIdentityProviderIds")
            .iter()
            .map(|s| parse_idp(s))
            .collect::<StoreResult<_>>()?,
        domain_allow_list: strings(&v, "domainAllowList"),
        domain_restriction_enabled: v["domainRestrictionEnabled"].as_bool().unwrap_or(false),
        post_auth_role_grants: split_roles(&strings(&v, "postAuthRoleGrants").join(","))?,
    })
}

fn assignments_json(a: &[RoleAssignment]) -> String {
    let items: Vec<Value> = a
        .iter()
        .map(|a| match a {
            RoleAssignment::Org { org_id, role } => {
                json!({"orgId": org_id.to_string(), "role": role.to_string()})
            }
            RoleAssignment::Group { group_id, role } => {
                json!({"groupId": group_id.to_string(), "role": role.to_string()})
            }
        })
        .collect();
    Value::Array(items).to_string()
}

fn mapping_from_row(row: &impl RowGet) -> StoreResult<RoleMapping> {
    let body: String = row.try_get("assignments")?;
    let v: Value = serde_json::from_str(&body).map_err(|e| malformed("role mapping", e))?;
    let mut role_assignments = Vec::new();
    for a in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        let role = a["role"].as_str().unwrap_or_default();
        let bad = || malformed("role assignment", a);
        let assignment = match (a["orgId"].as_str(), a["groupId"].as_str()) {
            (Some(o), None) => RoleAssignment::Org {
                org_id: OrgId::parse(o).map_err(|_| bad())?,
                role: role.parse().map_err(|_| bad())?,
            },
            (None, Some(g)) => RoleAssignment::Group {
                group_id: GroupId::parse(g).map_err(|_| bad())?,
                role: role.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        role_assignments.push(assignment);
    }
    Ok(RoleMapping {
        id: id(row, "id", RoleMappingId::parse)?,
        org_id: id(row, "org_id", OrgId::parse)?,
        external_group_name: row.try_get("external_group_name")?,
        role_assignments,
    })
}

const PROVIDERS: &str =
    "SELECT id, federation_id, body, created_at, updated_at FROM identity_providers";
const CONFIGS: &str =
    "SELECT org_id, federation_id, identity_provider_id, body FROM connected_org_configs";

impl<D: Dialect> SqlStore<D> {
    /// Locks a federation's row (by its id or its organization's); `None` when it is gone.
    async fn lock_federation(
        work: &mut Work<'_, D>,
        column: &'static str,
        value: String,
    ) -> StoreResult<Option<FederationSettings>> {
        let sql = format!("SELECT * FROM federation_settings WHERE {column} = ?");
        let row = query(locked::<D::Db>(&sql, None))
            .bind(value)
            .fetch_optional(&mut **work)
            .await?;
        row.as_ref().map(settings_from_row).transpose()
    }

    async fn config_in(
        work: &mut Work<'_, D>,
        org: OrgId,
    ) -> StoreResult<Option<ConnectedOrgConfig>> {
        let row = query(format!("{CONFIGS} WHERE org_id = ?"))
            .bind(org.to_string())
            .fetch_optional(&mut **work)
            .await?;
        row.as_ref().map(config_from_row).transpose()
    }
}

const ORG_GROUPS: &str = "SELECT id FROM groups WHERE org_id = ?";

fn group_ids<R: RowGet>(rows: &[R]) -> StoreResult<Vec<GroupId>> {
    rows.iter().map(|r| id(r, "id", GroupId::parse)).collect()
}

/// Leaves out project assignments of projects that are no longer the org's.
fn live(mut m: RoleMapping, groups: &[GroupId]) -> RoleMapping {
    m.role_assignments.retain(|a| match a {
        RoleAssignment::Group { group_id, .. } => groups.contains(group_id),
        RoleAssignment::Org { .. } => true,
    });
    m
}

#[async_trait::async_trait]
impl<D: Dialect> FederationStore for SqlStore<D> {
    async fn ensure_federation_settings(
        &self,
        org: OrgId,
        new_id: FederationSettingsId,
        now: chrono::DateTime<chrono::Utc>,
        events: &[NewEvent],
    ) -> StoreResult<Option<FederationSettings>> {
        let row = query("SELECT * FROM federation_settings WHERE org_id = ?")
            .bind(org.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return settings_from_row(&row).map(Some);
        }
        let mut work = self.work().await?;
        let exists = query(locked::<D::Db>("SELECT 1 FROM orgs WHERE id = ?", None))
            .bind(org.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        // Another request may have made them while this one waited for the lock.
        if let Some(s) = Self::lock_federation(&mut work, "org_id", org.to_string()).await? {
            return Ok(Some(s));
        }
        let settings = FederationSettings {
            id: new_id,
            org_id: org,
            created_at: now,
        };
        query("INSERT INTO federation_settings (id, org_id, created_at) VALUES (?, ?, ?)")
            .bind(new_id.to_string())
            .bind(org.to_string())
            .bind(to_millis(now))
            .execute(&mut *work)
            .await?;
        let config = ConnectedOrgConfig::new(org, new_id);
        query("INSERT INTO connected_org_configs (org_id, federation_id, identity_provider_id, body) VALUES (?, ?, NULL, ?)")
            .bind(org.to_string())
            .bind(new_id.to_string())
            .bind(config_body(&config))
            .execute(&mut *work)
            .await?;
        work.commit_all(events, &[]).await?;
        Ok(Some(settings))
    }

    async fn federation_settings(
        &self,
        id: FederationSettingsId,
    ) -> StoreResult<Option<FederationSettings>> {
        let row = query("SELECT * FROM federation_settings WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(settings_from_row).transpose()
    }

    async fn identity_providers(
        &self,
        federation: FederationSettingsId,
    ) -> StoreResult<Vec<IdentityProvider>> {
        let rows = query(format!("{PROVIDERS} WHERE federation_id = ? ORDER BY id"))
            .bind(federation.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider_from_row).collect()
    }

    async fn identity_provider(
        &self,
        id: IdentityProviderId,
    ) -> StoreResult<Option<IdentityProvider>> {
        let row = query(format!("{PROVIDERS} WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider_from_row).transpose()
    }

    async fn create_identity_provider(
        &self,
        idp: &IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        let fed = idp.federation_id.to_string();
        if Self::lock_federation(&mut work, "id", fed.clone())
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let body = serde_json::to_string(&idp.config).map_err(|e| malformed("provider", e))?;
        query(
            "INSERT INTO identity_providers (id, federation_id, legacy_id, protocol, idp_type, body, created_at, updated_at) \
             VALUES (?, ?, ?, 'OIDC', ?, ?, ?, ?)",
        )
        .bind(idp.id.to_string())
        .bind(fed)
        .bind(idp.legacy_id())
        .bind(idp.config.idp_type.as_str())
        .bind(body)
        .bind(to_millis(idp.created_at))
        .bind(to_millis(idp.updated_at))
        .execute(&mut *work)
        .await
        .map_err(conflict("identity provider id"))?;
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn update_identity_provider(
        &self,
        idp: &IdentityProvider,
        events: &[NewEvent],
    ) -> StoreResult<Option<bool>> {
        let mut work = self.work().await?;
        if Self::lock_federation(&mut work, "id", idp.federation_id.to_string())
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let row = query(format!("{PROVIDERS} WHERE id = ? AND federation_id = ?"))
            .bind(idp.id.to_string())
            .bind(idp.federation_id.to_string())
            .fetch_optional(&mut *work)
            .await?;
        let Some(current) = row.as_ref().map(provider_from_row).transpose()? else {
            return Ok(None);
        };
        if current.config == idp.config {
            return Ok(Some(false));
        }
        let body = serde_json::to_string(&idp.config).map_err(|e| malformed("provider", e))?;
        query("UPDATE identity_providers SET body = ?, idp_type = ?, updated_at = ? WHERE id = ?")
            .bind(body)
            .bind(idp.config.idp_type.as_str())
            .bind(to_millis(idp.updated_at))
            .bind(idp.id.to_string())
            .execute(&mut *work)
            .await?;
        work.commit_all(events, &[]).await?;
        Ok(Some(true))
    }

    async fn delete_identity_provider(
        &self,
        federation: FederationSettingsId,
        id: IdentityProviderId,
        events: &[NewEvent],
    ) -> StoreResult<DeleteProvider> {
        let mut work = self.work().await?;
        if Self::lock_federation(&mut work, "id", federation.to_string())
            .await?
            .is_none()
        {
            return Ok(DeleteProvider::Missing);
        }
        let exists = query("SELECT 1 FROM identity_providers WHERE id = ? AND federation_id = ?")
            .bind(id.to_string())
            .bind(federation.to_string())
            .fetch_optional(&mut *work)
            .await?;
        if exists.is_none() {
            return Ok(DeleteProvider::Missing);
        }
        // Connected orgs of any federation may name it (here: only its own).
        let rows = query(CONFIGS).fetch_all(&mut *work).await?;
        for r in &rows {
            let c = config_from_row(r)?;
            if c.identity_provider_id == Some(id)
                || c.data_access_identity_provider_ids.contains(&id)
            {
                return Ok(DeleteProvider::InUse);
            }
        }
        query("DELETE FROM identity_providers WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *work)
            .await?;
        work.commit_all(events, &[]).await?;
        Ok(DeleteProvider::Deleted)
    }

    async fn connected_org_configs(
        &self,
        federation: FederationSettingsId,
    ) -> StoreResult<Vec<ConnectedOrgConfig>> {
        let rows = query(format!("{CONFIGS} WHERE federation_id = ? ORDER BY org_id"))
            .bind(federation.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(config_from_row).collect()
    }

    async fn connected_org_config(&self, org: OrgId) -> StoreResult<Option<ConnectedOrgConfig>> {
        let row = query(format!("{CONFIGS} WHERE org_id = ?"))
            .bind(org.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(config_from_row).transpose()
    }

    async fn put_connected_org_config(
        &self,
        config: &ConnectedOrgConfig,
        events: &[NewEvent],
    ) -> StoreResult<PutConfig> {
        let mut work = self.work().await?;
        let fed = config.federation_id.to_string();
        if Self::lock_federation(&mut work, "id", fed.clone())
            .await?
            .is_none()
        {
            return Ok(PutConfig::Missing);
        }
        let Some(current) = Self::config_in(&mut work, config.org_id).await? else {
            return Ok(PutConfig::Missing);
        };
        if current.federation_id != config.federation_id {
            return Ok(PutConfig::Missing);
        }
        let named = config
            .identity_provider_id
            .iter()
            .chain(&config.data_access_identity_provider_ids);
        for idp in named {
            let found =
                query("SELECT 1 FROM identity_providers WHERE id = ? AND federation_id = ?")
                    .bind(idp.to_string())
                    .bind(fed.clone())
                    .fetch_optional(&mut *work)
                    .await?;
            if found.is_none() {
                return Ok(PutConfig::UnknownProvider(*idp));
            }
        }
        if current == *config {
            return Ok(PutConfig::Done(false));
        }
        query(
            "UPDATE connected_org_configs SET identity_provider_id = ?, body = ? WHERE org_id = ?",
        )
        .bind(config.identity_provider_id.map(|i| i.to_string()))
        .bind(config_body(config))
        .bind(config.org_id.to_string())
        .execute(&mut *work)
        .await?;
        work.commit_all(events, &[]).await?;
        Ok(PutConfig::Done(true))
    }

    async fn role_mappings(&self, org: OrgId) -> StoreResult<Vec<RoleMapping>> {
        let rows =
            query("SELECT * FROM role_mappings WHERE org_id = ? ORDER BY external_group_name")
                .bind(org.to_string())
                .fetch_all(&self.pool)
                .await?;
        let groups = query(ORG_GROUPS)
            .bind(org.to_string())
            .fetch_all(&self.pool)
            .await?;
        let groups = group_ids(&groups)?;
        rows.iter()
            .map(|r| mapping_from_row(r).map(|m| live(m, &groups)))
            .collect()
    }

    async fn put_role_mapping(
        &self,
        mapping: &RoleMapping,
        create: bool,
        events: &[NewEvent],
    ) -> StoreResult<PutMapping> {
        let mut work = self.work().await?;
        let org = mapping.org_id;
        if Self::lock_federation(&mut work, "org_id", org.to_string())
            .await?
            .is_none()
        {
            return Ok(PutMapping::NoProvider);
        }
        let config = Self::config_in(&mut work, org).await?;
        if config.and_then(|c| c.identity_provider_id).is_none() {
            return Ok(PutMapping::NoProvider);
        }
        let rows = query("SELECT * FROM role_mappings WHERE org_id = ?")
            .bind(org.to_string())
            .fetch_all(&mut *work)
            .await?;
        let existing: Vec<RoleMapping> = rows
            .iter()
            .map(mapping_from_row)
            .collect::<StoreResult<_>>()?;
        let current = existing.iter().find(|m| m.id == mapping.id);
        match (current, create) {
            (Some(_), true) => return Err(StoreError::Conflict("role mapping id")),
            (None, false) => return Ok(PutMapping::Missing),
            (Some(c), false) if c == mapping => return Ok(PutMapping::Done(false)),
            _ => {}
        }
        if existing
            .iter()
            .any(|m| m.id != mapping.id && m.external_group_name == mapping.external_group_name)
        {
            return Ok(PutMapping::Duplicate);
        }
        let groups = query(ORG_GROUPS)
            .bind(org.to_string())
            .fetch_all(&mut *work)
            .await?;
        let groups = group_ids(&groups)?;
        if let Err(e) = mapping.check(&groups) {
            return Ok(PutMapping::Invalid(e));
        }
        let assignments = assignments_json(&mapping.role_assignments);
        let statement = if create {
            "INSERT INTO role_mappings (external_group_name, assignments, id, org_id) VALUES (?, ?, ?, ?)"
        } else {
            "UPDATE role_mappings SET external_group_name = ?, assignments = ? WHERE id = ? AND org_id = ?"
        };
        query(statement)
            .bind(&mapping.external_group_name)
            .bind(assignments)
            .bind(mapping.id.to_string())
            .bind(org.to_string())
            .execute(&mut *work)
            .await
            .map_err(conflict("externalGroupName"))?;
        work.commit_all(events, &[]).await?;
        Ok(PutMapping::Done(true))
    }

    async fn delete_role_mapping(
        &self,
        org: OrgId,
        id: RoleMappingId,
        events: &[NewEvent],
    ) -> StoreResult<bool> {
        let mut work = self.work().await?;
        if Self::lock_federation(&mut work, "org_id", org.to_string())
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let done = query("DELETE FROM role_mappings WHERE id = ? AND org_id = ?")
            .bind(id.to_string())
            .bind(org.to_string())
            .execute(&mut *work)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        work.commit_all(events, &[]).await?;
        Ok(true)
    }

    async fn oidc_workforce_providers(&self) -> StoreResult<Vec<IdentityProvider>> {
        let rows = query(format!(
            "{PROVIDERS} WHERE protocol = 'OIDC' AND idp_type = 'WORKFORCE' AND EXISTS \
             (SELECT 1 FROM connected_org_configs c WHERE c.identity_provider_id = identity_providers.id) \
             ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_from_row).collect()
    }

    async fn connected_orgs_of_provider(
        &self,
        id: IdentityProviderId,
    ) -> StoreResult<Vec<(ConnectedOrgConfig, Vec<RoleMapping>)>> {
        let rows = query(format!(
            "{CONFIGS} WHERE identity_provider_id = ? ORDER BY org_id"
        ))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let config = config_from_row(r)?;
            let mappings = self.role_mappings(config.org_id).await?;
            out.push((config, mappings));
        }
        Ok(out)
    }
}
