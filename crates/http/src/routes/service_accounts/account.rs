//! The account-level operations of service accounts that the org routes (`super`) and the
//! project routes (`super::super::group_service_accounts`) share: creating an account, its
//! secrets and its access list, each made by someone [`Acting`] through a route, and the
//! request bodies they read.
//!
//! Every change to an existing account is the registry's unit of work
//! (`crate::registry::unit_of_work::change_existing`): the route's account check runs on the
//! account as read under the registry's write lock, then the store is written (with the
//! change's events) and the account reloaded.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_domain::access::AccessEntry;
use tessera_domain::authorization::Credential;
use tessera_domain::names::{ServiceAccountDescription, ServiceAccountName};
use tessera_domain::roles::OrgRole;
use tessera_domain::secrets::{
    generate_service_account_secret, mask_service_account_secret, SecretValue,
};
use tessera_domain::service_accounts::{secret_expiry, MAX_ACTIVE_SECRETS};
use tessera_domain::{ClientId, OrgId, Principal, Rule, SecretId};
use tessera_domain::{EventType, GroupId};
use tessera_store::{AddSecretOutcome, SaSecret, ServiceAccount};

use super::super::access_entries::{cannot_remove_caller_entry, new_access_entries};
use super::super::paginate;
use super::wire::{access_out, secret_out};
use crate::audit;
use crate::error::{ApiError, ApiResult};
use crate::query::Pagination;
use crate::registry::unit_of_work::{change_existing, no_check, reload, AccountCheck};
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::Ignored;

/// Makes a new secret: (record with keyed hash, clear value to show once).
/// A new secret of `org`'s account, valid `hours`: at most the server's maximum and the
/// organization's `maxServiceAccountSecretValidityInHours` (its settings), if it set one.
pub async fn new_secret(
    state: &AppState,
    org: OrgId,
    hours: i64,
) -> ApiResult<(SaSecret, SecretValue)> {
    let org_max = crate::routes::settings::max_secret_hours(state, org).await?;
    let max = org_max.map_or(state.settings.max_secret_hours, |m| {
        m.min(state.settings.max_secret_hours)
    });
    let now = state.clock.now();
    let expires_at = secret_expiry(hours, max, now)?;
    let value = generate_service_account_secret();
    let record = SaSecret {
        id: SecretId::generate(now),
        hash: state.crypto.hasher.hash(value.expose()),
        masked: mask_service_account_secret(&value),
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    Ok((record, value))
}

/// Who changes an account, and through which route: the caller, its route's rule (from the
/// table in `crate::authz`), the project the route names (`None`: an org route; the change's
/// events are that project's) and the decision to make on the account as read under the
/// registry's write lock.
pub struct Acting<'a> {
    pub caller: &'a Principal,
    pub rule: Rule,
    pub group: Option<GroupId>,
    pub check: AccountCheck<'a>,
}

impl<'a> Acting<'a> {
    /// Through an org route: authorized on the org, nothing to decide on the account.
    pub fn org(caller: &'a Principal, rule: Rule) -> Self {
        Acting {
            caller,
            rule,
            group: None,
            check: &no_check,
        }
    }
}

/// `OrgServiceAccountRequest` / `GroupServiceAccountRequest` (same fields; the roles are
/// org roles for the one, project roles for the other).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIn {
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub secret_expires_after_hours: i64,
}

/// A newly created account and its first secret's clear value (to be shown once).
pub struct Created {
    pub account: Arc<ServiceAccount>,
    pub secret_id: SecretId,
    pub secret: SecretValue,
}

/// Validates `body`'s name, description and lifetime, then creates the account in `org` with
/// `org_roles` and `group_roles` (the caller has parsed the roles for its scope).
pub async fn create_account(
    state: &AppState,
    caller: &Principal,
    org: OrgId,
    body: &CreateIn,
    org_roles: Vec<OrgRole>,
    group_roles: Vec<(tessera_domain::GroupId, Vec<tessera_domain::GroupRole>)>,
) -> ApiResult<Created> {
    let name = ServiceAccountName::parse(&body.name)?;
    let description = ServiceAccountDescription::parse(&body.description)?;
    let (secret, value) = new_secret(state, org, body.secret_expires_after_hours).await?;
    let secret_id = secret.id;
    let now = state.clock.now();
    let account = ServiceAccount {
        client_id: ClientId::generate(now),
        org_id: org,
        name: name.into_inner(),
        description: description.into_inner(),
        org_roles,
        group_roles,
        created_at: now,
        secrets: vec![secret],
        access_list: Vec::new(),
    };
    let target = audit::account_target(account.client_id);
    let mut events = vec![audit::event(
        state,
        caller,
        EventType::ServiceAccountCreated,
        org,
        None,
        target.clone(),
    )];
    events.extend(account.group_roles.iter().map(|(g, _)| {
        audit::event(
            state,
            caller,
            EventType::ServiceAccountAddedToGroup,
            org,
            Some(*g),
            target.clone(),
        )
    }));
    let _guard = state.registry.write().await;
    state
        .store
        .create_service_account(&account, &events)
        .await?;
    let stored = reload(state, account.client_id).await?;
    tracing::info!(client_id = %stored.client_id, org_id = %org, "service account created");
    Ok(Created {
        account: stored,
        secret_id,
        secret: value,
    })
}

/// `OrgServiceAccountUpdateRequest` / `GroupServiceAccountUpdateRequest` (roles are org or
/// project roles by route).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateIn {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<String>>,
}

impl UpdateIn {
    /// The validated new name and description, where given.
    pub fn texts(
        &self,
    ) -> ApiResult<(
        Option<ServiceAccountName>,
        Option<ServiceAccountDescription>,
    )> {
        let name = self
            .name
            .as_deref()
            .map(ServiceAccountName::parse)
            .transpose()?;
        let description = self
            .description
            .as_deref()
            .map(ServiceAccountDescription::parse)
            .transpose()?;
        Ok((name, description))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretIn {
    secret_expires_after_hours: i64,
}

/// Adds a secret to `account`, for a caller authorized on it (org or project route). At most
/// [`MAX_ACTIVE_SECRETS`] unexpired secrets: the store counts them and inserts in one
/// transaction (`Store::add_service_account_secret`), so the limit holds under concurrent
/// requests and across nodes; one too many is 409 `SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED`.
pub async fn add_secret(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    body: SecretIn,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let (secret, value) =
        new_secret(state, account.org_id, body.secret_expires_after_hours).await?;
    let secret = &secret;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let mut target = audit::account_target(account.client_id);
        target.push(("secretId", secret.id.to_string()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountSecretAdded,
            account.org_id,
            group,
            target,
        );
        let outcome = state
            .store
            .add_service_account_secret(
                account.client_id,
                secret,
                MAX_ACTIVE_SECRETS,
                state.clock.now(),
                &[ev],
            )
            .await?;
        match outcome {
            AddSecretOutcome::Added => {}
            AddSecretOutcome::NotFound => {
                return Err(ApiError::service_account_not_found(&account.client_id.to_string()))
            }
            AddSecretOutcome::TooMany => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "SERVICE_ACCOUNT_SECRET_LIMIT_EXCEEDED",
                    format!(
                        "Service account {} already has {MAX_ACTIVE_SECRETS} unexpired secrets; delete one first.",
                        account.client_id
                    ),
                )
                .with_params([json!(account.client_id.to_string()), json!(MAX_ACTIVE_SECRETS)]))
            }
        }
        Ok(())
    })
    .await?;
    Ok(Reply::created(secret_out(
        &state.registry,
        secret,
        Some(&value),
    )))
}

/// Deletes secret `raw` of `account`, for a caller authorized on it.
pub async fn remove_secret(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    raw: &str,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let secret = SecretId::parse(raw)?;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let mut target = audit::account_target(account.client_id);
        target.push(("secretId", secret.to_string()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountSecretDeleted,
            account.org_id,
            group,
            target,
        );
        if !state
            .store
            .delete_service_account_secret(account.client_id, secret, &[ev])
            .await?
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "SERVICE_ACCOUNT_SECRET_NOT_FOUND",
                format!("No secret with ID {raw} exists for this service account."),
            )
            .with_params([json!(raw)]));
        }
        Ok(())
    })
    .await?;
    tracing::info!(client_id = %account.client_id, secret_id = %secret, "secret deleted; tokens minted with it end now");
    Ok(Reply::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessEntryIn {
    cidr_block: Option<String>,
    ip_address: Option<String>,
    #[serde(default, rename = "createdAt")]
    _created_at: Ignored,
    #[serde(default, rename = "lastUsedAddress")]
    _last_used_address: Ignored,
    #[serde(default, rename = "lastUsedAt")]
    _last_used_at: Ignored,
    #[serde(default, rename = "requestCount")]
    _request_count: Ignored,
}

/// Adds entries to `account`'s access list, for a caller authorized on it; answers with the
/// first page of the list.
pub async fn add_access_entries(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    page: &Pagination,
    body: Vec<AccessEntryIn>,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let entries = new_access_entries(
        body.into_iter().map(|i| (i.ip_address, i.cidr_block)),
        state.clock.now(),
    )?;
    let ((), stored) = change_existing(state, account.client_id, by.check, |account| async move {
        // One event per entry that is new (entries already present are ignored).
        let events: Vec<_> = entries
            .iter()
            .filter(|e| {
                !account
                    .access_list
                    .iter()
                    .any(|a| a.entry.key() == e.entry.key())
            })
            .map(|e| {
                let mut target = audit::account_target(account.client_id);
                target.push(("whitelistEntry", e.entry.key()));
                audit::event(
                    state,
                    caller,
                    EventType::ServiceAccountAccessListEntryAdded,
                    account.org_id,
                    group,
                    target,
                )
            })
            .collect();
        if !state
            .store
            .add_access_entries(account.client_id, &entries, &events)
            .await?
        {
            return Err(ApiError::service_account_not_found(
                &account.client_id.to_string(),
            ));
        }
        Ok(())
    })
    .await?;
    let listed = paginate(stored.access_list.clone(), page.page());
    Ok(Reply::ok(page.list(listed, |e| {
        access_out(&state.registry, stored.client_id, &e)
    })))
}

/// Removes entry `raw` from `account`'s access list, for a caller authorized on it; `peer` is
/// the address the request comes from (see the rule's `KeepsOwnAccess`).
pub async fn remove_access_entry(
    state: &AppState,
    by: &Acting<'_>,
    account: &ServiceAccount,
    raw: &str,
    peer: IpAddr,
) -> ApiResult<Reply> {
    let (caller, group) = (by.caller, by.group);
    let entry = AccessEntry::parse_any(raw)?;
    let ((), _stored) = change_existing(state, account.client_id, by.check, |account| async move {
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ACCESS_LIST_ENTRY_NOT_FOUND",
                format!("No access list entry {raw} exists for this service account."),
            )
            .with_params([json!(raw)])
        };
        if !account
            .access_list
            .iter()
            .any(|e| e.entry.key() == entry.key())
        {
            return Err(not_found());
        }
        // `KeepsOwnAccess`: the account may not remove the entry its own request comes
        // through (Atlas).
        let own = Credential::ServiceAccount(account.client_id);
        if let Some(addr) = caller.own_address_to_keep(by.rule, own, peer) {
            if entry.contains(addr) {
                return Err(cannot_remove_caller_entry(
                    raw,
                    "it allows the address this request comes from.",
                ));
            }
        }
        let mut target = audit::account_target(account.client_id);
        target.push(("whitelistEntry", entry.key()));
        let ev = audit::event(
            state,
            caller,
            EventType::ServiceAccountAccessListEntryDeleted,
            account.org_id,
            group,
            target,
        );
        if !state
            .store
            .delete_access_entry(account.client_id, &entry.key(), &[ev])
            .await?
        {
            return Err(not_found());
        }
        Ok(())
    })
    .await?;
    Ok(Reply::no_content())
}
