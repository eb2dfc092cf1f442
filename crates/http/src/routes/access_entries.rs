//! Access-list entries in request bodies, for service accounts and API keys alike: how many
//! one request may add, how each is validated, and the refusal to remove the entry a request
//! itself comes through (the rule's `KeepsOwnAccess`).

use axum::http::StatusCode;
use serde_json::json;
use tessera_domain::access::AccessEntry;
use tessera_store::AccessListEntry;

use crate::error::{ApiError, ApiResult};

/// Most entries accepted in one request body (Atlas).
pub const MAX_ACCESS_ENTRIES_PER_REQUEST: usize = 200;

/// Validates the entries of an access-list request body, given as (`ipAddress`,
/// `cidrBlock`) pairs, for service accounts and API keys alike: 1 to
/// [`MAX_ACCESS_ENTRIES_PER_REQUEST`] entries, each exactly one of the two fields, each a valid
/// IPv4 or IPv6 address or CIDR block. Any invalid entry rejects the whole body.
pub fn new_access_entries(
    items: impl ExactSizeIterator<Item = (Option<String>, Option<String>)>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Vec<AccessListEntry>> {
    if items.len() == 0 || items.len() > MAX_ACCESS_ENTRIES_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "The request body must list 1 to {MAX_ACCESS_ENTRIES_PER_REQUEST} entries."
        )));
    }
    let mut entries = Vec::with_capacity(items.len());
    for (ip, cidr) in items {
        let entry = match (ip, cidr) {
            (Some(ip), None) => AccessEntry::from_ip_address(&ip)?,
            (None, Some(cidr)) => AccessEntry::from_cidr_block(&cidr)?,
            _ => {
                return Err(ApiError::validation(
                    "Each entry must have exactly one of ipAddress and cidrBlock.",
                ))
            }
        };
        entries.push(AccessListEntry {
            entry,
            created_at: now,
            last_used_at: None,
            last_used_address: None,
            request_count: 0,
        });
    }
    Ok(entries)
}

/// The refusal to remove an entry the request itself comes through (Atlas).
pub fn cannot_remove_caller_entry(raw: &str, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY",
        format!("The entry {raw} cannot be removed by this request: {why}"),
    )
    .with_params([json!(raw)])
}
