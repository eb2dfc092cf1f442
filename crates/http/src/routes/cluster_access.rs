//! What a cluster's `mongod` needs to enforce access now (ours):
//! `GET /api/tessera/v1/groups/{groupId}/clusters/{clusterName}/access`, for the platform's
//! provisioner, with support operator credentials (as the support decisions).
//!
//! The answer is the project's state at the domain clock's `now`, in the shapes `mongod`
//! takes: the database users the cluster admits (active, and scoped to it or unscoped) with
//! their mechanisms, SCRAM credentials (salts, iteration counts, stored and server keys; never
//! a password) and roles; the project's custom roles as `createRole` documents (privilege
//! actions in MongoDB's spelling); the X.509 CA that signs the project's managed client
//! certificates (once one exists); and the active IP access list. It carries an `ETag` (the
//! SHA-256 of the body): a provisioner polls with `If-None-Match` and gets `304` until
//! something changed, then applies the whole document.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_domain::clusters::ClusterName;
use tessera_domain::custom_roles::CustomRole;
use tessera_domain::database_users::{is_active, DbAuth};
use tessera_domain::network::NetworkTarget;
use tessera_domain::GroupId;
use tessera_store::DatabaseUser;

use super::support::OperatorCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;
use crate::state::AppState;

/// A privilege action as `mongod` spells it (`FIND` → `find`, `KILL_OP` → `killop`).
pub fn mongod_action(atlas: &str) -> String {
    const EXCEPTIONS: &[(&str, &str)] = &[
        ("KILL_OP", "killop"),
        ("IN_PROG", "inprog"),
        ("NET_STAT", "netstat"),
        ("USE_UUID", "useUUID"),
        ("RENAME_COLLECTION_SAME_DB", "renameCollectionSameDB"),
        ("SQL_GET_SCHEMA", "sqlGetSchema"),
        ("SQL_SET_SCHEMA", "sqlSetSchema"),
        ("OUT_TO_S3", "outToS3"),
    ];
    if let Some((_, m)) = EXCEPTIONS.iter().find(|(a, _)| *a == atlas) {
        return (*m).to_owned();
    }
    let mut out = String::with_capacity(atlas.len());
    for (i, word) in atlas.split('_').enumerate() {
        let lower = word.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut c = lower.chars();
            if let Some(f) = c.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(c);
            }
        }
    }
    out
}

fn mechanisms(kind: DbAuth) -> &'static [&'static str] {
    match kind {
        DbAuth::Scram => &["SCRAM-SHA-1", "SCRAM-SHA-256"],
        DbAuth::X509Customer | DbAuth::X509Managed => &["MONGODB-X509"],
        DbAuth::AwsIamUser | DbAuth::AwsIamRole => &["MONGODB-AWS"],
        DbAuth::LdapUser | DbAuth::LdapGroup => &["PLAIN"],
        DbAuth::OidcUser | DbAuth::OidcIdpGroup => &["MONGODB-OIDC"],
    }
}

fn user_doc(u: &DatabaseUser) -> Value {
    let roles: Vec<Value> = u
        .roles
        .iter()
        .map(|r| {
            let mut v = json!({"role": r.role_name, "db": r.database_name});
            if let Some(c) = &r.collection_name {
                v["collection"] = json!(c);
            }
            v
        })
        .collect();
    let mut out = json!({
        "user": u.username,
        "db": u.database_name,
        "kind": u.auth.stored(),
        "mechanisms": mechanisms(u.auth),
        "roles": roles,
    });
    if let Some(s) = u
        .scram
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        out["credentials"] = s;
    }
    out
}

fn role_doc(r: &CustomRole) -> Value {
    let privileges: Vec<Value> = r
        .actions
        .iter()
        .flat_map(|p| {
            p.resources.iter().map(move |res| {
                let resource = if res.cluster {
                    json!({"cluster": true})
                } else {
                    json!({"db": res.db.clone().unwrap_or_default(),
                           "collection": res.collection.clone().unwrap_or_default()})
                };
                json!({"resource": resource, "actions": [mongod_action(&p.action)]})
            })
        })
        .collect();
    json!({
        "role": r.role_name,
        "db": "admin",
        "privileges": privileges,
        "roles": r.inherits.iter().map(|i| json!({"role": i.role, "db": i.db})).collect::<Vec<_>>(),
    })
}

/// Whether a user's scopes admit the cluster (no scope admits every cluster).
fn admits(u: &DatabaseUser, cluster: &str) -> bool {
    u.scopes.is_empty()
        || u.scopes
            .iter()
            .any(|s| s.kind == "CLUSTER" && s.name == cluster)
}

/// `GET …/groups/{groupId}/clusters/{clusterName}/access` (operator credentials).
pub async fn access(
    State(state): State<AppState>,
    _op: OperatorCaller,
    path: PathParams,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let raw_group = path.get("groupId");
    let group_id = GroupId::parse(raw_group)?;
    let name = ClusterName::parse("clusterName", path.get("clusterName"))?;
    let group = state
        .store
        .get_group(group_id)
        .await?
        .ok_or_else(|| ApiError::group_not_found(raw_group))?;
    let cluster = state
        .store
        .get_cluster(group.id, name.as_str())
        .await?
        .ok_or_else(|| super::clusters::cluster_not_found(name.as_str(), raw_group))?;
    let now = state.clock.now();
    let users: Vec<Value> = state
        .store
        .list_database_users(group.id)
        .await?
        .iter()
        .filter(|u| is_active(u.delete_after, now) && admits(u, &cluster.name))
        .map(user_doc)
        .collect();
    let roles: Vec<Value> = state
        .store
        .list_custom_roles(group.id)
        .await?
        .iter()
        .map(role_doc)
        .collect();
    let network: Vec<Value> = state
        .store
        .list_network_access(group.id)
        .await?
        .iter()
        .filter(|e| e.is_active(now))
        .map(|e| match &e.target {
            NetworkTarget::Addr(a) => json!({"cidrBlock": a.key()}),
            NetworkTarget::AwsSecurityGroup(sg) => json!({"awsSecurityGroup": sg}),
        })
        .collect();
    let ca = super::x509::project_ca_pem(&state, group.id).await?;
    let customer = super::x509::customer_cas(&state, group.id).await?;
    let body = json!({
        "groupId": group.id.to_string(),
        "clusterName": cluster.name,
        "clusterId": cluster.id.to_string(),
        "users": users,
        "roles": roles,
        "x509": {"managedCaCertificate": ca, "customerCas": customer},
        "networkAccess": network,
    });
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let etag = HeaderValue::from_str(&format!("\"{hex}\"")).map_err(ApiError::internal)?;
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag.to_str().unwrap_or(""))
        });
    let mut resp = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_in_mongods_spelling() {
        assert_eq!(mongod_action("FIND"), "find");
        assert_eq!(
            mongod_action("BYPASS_DOCUMENT_VALIDATION"),
            "bypassDocumentValidation"
        );
        assert_eq!(mongod_action("KILL_OP"), "killop");
        assert_eq!(mongod_action("REPL_SET_GET_STATUS"), "replSetGetStatus");
        assert_eq!(mongod_action("DB_HASH"), "dbHash");
    }
}
