//! Wire types: the JSON shapes of the subset yaml, kept apart from domain and store types.
//! Request types deny unknown fields; read-only fields a client may echo back are accepted
//! and ignored (`Ignored`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_domain::time::format;
use tessera_store::{ApiKeyRecord, Group, Org, Tag};

/// A read-only attribute a client may send back; its value is ignored.
pub type Ignored = Option<serde::de::IgnoredAny>;

pub fn self_link(href: String) -> Vec<Value> {
    vec![json!({"href": href, "rel": "self"})]
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgOut {
    pub id: String,
    pub is_deleted: bool,
    pub links: Vec<Value>,
    pub name: String,
    pub skip_default_alerts_settings: bool,
}

pub fn org_out(base: &str, o: Org) -> OrgOut {
    OrgOut {
        links: self_link(format!("{base}/orgs/{}", o.id)),
        id: o.id.to_string(),
        is_deleted: false,
        name: o.name,
        skip_default_alerts_settings: o.skip_default_alerts,
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TagWire {
    pub key: String,
    pub value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOut {
    pub cluster_count: u64,
    pub created: String,
    pub id: String,
    pub links: Vec<Value>,
    pub name: String,
    pub org_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_usage_restrictions: Option<String>,
    pub tags: Vec<TagWire>,
    pub with_default_alerts_settings: bool,
}

/// `Group`; `cluster_count` is how many cluster records the project has.
pub fn group_out(base: &str, g: Group, cluster_count: u64) -> GroupOut {
    GroupOut {
        cluster_count,
        created: format(g.created_at),
        links: self_link(format!("{base}/groups/{}", g.id)),
        id: g.id.to_string(),
        name: g.name,
        org_id: g.org_id.to_string(),
        region_usage_restrictions: g.region_usage_restrictions,
        tags: g
            .tags
            .into_iter()
            .map(|t| TagWire {
                key: t.key,
                value: t.value,
            })
            .collect(),
        with_default_alerts_settings: g.with_default_alerts,
    }
}

pub fn tags_in(tags: Vec<TagWire>) -> Result<Vec<Tag>, tessera_domain::ValidationError> {
    tags.into_iter()
        .map(|t| {
            let ok = |s: &str| (1..=255).contains(&s.chars().count());
            if ok(&t.key) && ok(&t.value) {
                Ok(Tag {
                    key: t.key,
                    value: t.value,
                })
            } else {
                Err(tessera_domain::ValidationError::new(
                    "tags",
                    "each key and value must be 1 to 255 characters",
                ))
            }
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub role_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyOut {
    pub desc: String,
    pub id: String,
    pub links: Vec<Value>,
    /// Masked except in the one response that creates the key.
    pub private_key: String,
    pub public_key: String,
    pub roles: Vec<RoleAssignment>,
}

pub fn api_key_out(base: &str, k: ApiKeyRecord, private_key: Option<String>) -> ApiKeyOut {
    let mut roles: Vec<RoleAssignment> = k
        .org_roles
        .iter()
        .map(|r| RoleAssignment {
            group_id: None,
            org_id: Some(k.org_id.to_string()),
            role_name: r.to_string(),
        })
        .collect();
    for (group, group_roles) in &k.group_roles {
        roles.extend(group_roles.iter().map(|r| RoleAssignment {
            group_id: Some(group.to_string()),
            org_id: None,
            role_name: r.to_string(),
        }));
    }
    ApiKeyOut {
        desc: k.description,
        links: self_link(format!("{base}/orgs/{}/apiKeys/{}", k.org_id, k.id)),
        id: k.id.to_string(),
        private_key: private_key.unwrap_or(k.private_key_masked),
        public_key: k.public_key,
        roles,
    }
}

/// `CreateAtlasOrganizationApiKey` / `CreateAtlasProjectApiKey`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyIn {
    pub desc: String,
    pub roles: Vec<String>,
}

/// `UpdateAtlasOrganizationApiKey` / `UpdateAtlasProjectApiKey`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyIn {
    pub desc: Option<String>,
    pub roles: Option<Vec<String>>,
}

/// `UserAccessRoleAssignment` (body items of `addGroupApiKey`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserAccessRoleAssignmentIn {
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub user_id: Ignored,
}

/// `ClusterDescription20240805`: the client's other fields as sent, then the server's
/// (`id`, `name`, `groupId`, `createDate`, `stateName`, `links`), and
/// `mongoDBEmployeeAccessGrant` only while the grant is active at `now`.
pub fn cluster_out(
    base: &str,
    c: &tessera_store::Cluster,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut doc = c.body.clone();
    let href = format!("{base}/groups/{}/clusters/{}", c.group_id, c.name);
    doc.insert("id".into(), json!(c.id.to_string()));
    doc.insert("name".into(), json!(c.name));
    doc.insert("groupId".into(), json!(c.group_id.to_string()));
    doc.insert("createDate".into(), json!(format(c.created_at)));
    doc.insert("stateName".into(), json!(c.state_name));
    doc.insert("links".into(), json!(self_link(href.clone())));
    if let Some(g) = c.grant.filter(|g| g.is_active(now)) {
        doc.insert(
            "mongoDBEmployeeAccessGrant".into(),
            json!({
                "grantType": g.level.as_str(),
                "expirationTime": format(g.expires_at),
                "links": self_link(href),
            }),
        );
    }
    Value::Object(doc)
}

/// One cluster in the cross-project listing (`GET /clusters`).
pub fn cluster_summary_out(c: &tessera_store::Cluster) -> Value {
    json!({
        "clusterId": c.id.to_string(),
        "name": c.name,
        "stateName": c.state_name,
    })
}
