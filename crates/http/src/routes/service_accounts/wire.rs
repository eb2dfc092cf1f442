//! The wire shapes of service accounts (`OrgServiceAccount`, its secrets, its access-list
//! entries), with the usage not yet flushed from the registry.

use serde::Serialize;
use tessera_domain::secrets::SecretValue;
use tessera_domain::time::format;
use tessera_domain::{ClientId, SecretId};
use tessera_store::{AccessListEntry, SaSecret, ServiceAccount};

use super::super::paginate;
use crate::query::Pagination;
use crate::registry::Registry;
use crate::render::Reply;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    pub created_at: String,
    pub expires_at: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_secret_value: Option<String>,
    /// Only in the response that creates the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountOut {
    pub client_id: String,
    pub created_at: String,
    pub description: String,
    pub name: String,
    pub roles: Vec<String>,
    pub secrets: Vec<SecretOut>,
}

pub(super) fn secret_out(
    registry: &Registry,
    s: &SaSecret,
    clear: Option<&SecretValue>,
) -> SecretOut {
    SecretOut {
        created_at: format(s.created_at),
        expires_at: format(s.expires_at),
        id: s.id.to_string(),
        last_used_at: registry.secret_last_used(s.id, s.last_used_at).map(format),
        masked_secret_value: clear.is_none().then(|| s.masked.clone()),
        secret: clear.map(|c| c.expose().to_owned()),
    }
}

pub fn account_out(
    registry: &Registry,
    a: &ServiceAccount,
    clear: Option<(SecretId, &SecretValue)>,
) -> AccountOut {
    AccountOut {
        client_id: a.client_id.to_string(),
        created_at: format(a.created_at),
        description: a.description.clone(),
        name: a.name.clone(),
        roles: a.org_roles.iter().map(ToString::to_string).collect(),
        secrets: a
            .secrets
            .iter()
            .map(|s| {
                secret_out(
                    registry,
                    s,
                    clear.filter(|(id, _)| *id == s.id).map(|(_, v)| v),
                )
            })
            .collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    pub request_count: u64,
}

pub(super) fn access_out(
    registry: &Registry,
    account: ClientId,
    e: &AccessListEntry,
) -> AccessEntryOut {
    let pending = registry.access_pending(account, &e.entry.key());
    let (last_at, last_addr, extra) = match pending {
        Some((at, addr, n)) => (Some(at), Some(addr), n),
        None => (e.last_used_at, e.last_used_address.clone(), 0),
    };
    AccessEntryOut {
        cidr_block: e.entry.is_cidr.then(|| e.entry.display()),
        created_at: format(e.created_at),
        ip_address: (!e.entry.is_cidr).then(|| e.entry.display()),
        last_used_address: last_addr,
        last_used_at: last_at.map(format),
        request_count: e.request_count + extra,
    }
}

/// One page of `account`'s access list, for a caller already authorized on it.
pub fn access_page(state: &AppState, account: &ServiceAccount, page: &Pagination) -> Reply {
    let listed = paginate(account.access_list.clone(), page.page());
    Reply::ok(page.list(listed, |e| {
        access_out(&state.registry, account.client_id, &e)
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccountGroupOut {
    pub(super) group_id: String,
    pub(super) roles: Vec<String>,
}
