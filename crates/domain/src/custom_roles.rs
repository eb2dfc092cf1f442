//! Custom database roles (Atlas' "Custom Database Roles"): a project's own MongoDB roles, made
//! of privilege actions on resources and roles they inherit. Actions are MongoDB's privilege
//! actions as Atlas names them ([`PRIVILEGE_ACTIONS`]); inherited roles are MongoDB's built-in
//! roles or other custom roles of the project, without a cycle.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::database_users::BUILT_IN_ROLES;
use crate::names::refuse_invisible;
use crate::ValidationError;

/// The privilege actions a custom role may grant (`DatabasePrivilegeAction.action`).
pub const PRIVILEGE_ACTIONS: &[&str] = &[
    "FIND",
    "INSERT",
    "REMOVE",
    "UPDATE",
    "BYPASS_DOCUMENT_VALIDATION",
    "USE_UUID",
    "KILL_OP",
    "BYPASS_DEFAULT_MAX_TIME_MS",
    "CREATE_COLLECTION",
    "CREATE_INDEX",
    "DROP_COLLECTION",
    "ENABLE_PROFILER",
    "KILL_ANY_CURSOR",
    "CHANGE_STREAM",
    "COLL_MOD",
    "COMPACT",
    "CONVERT_TO_CAPPED",
    "DROP_DATABASE",
    "DROP_INDEX",
    "RE_INDEX",
    "RENAME_COLLECTION_SAME_DB",
    "SET_USER_WRITE_BLOCK",
    "BYPASS_USER_WRITE_BLOCK",
    "LIST_SESSIONS",
    "KILL_ANY_SESSION",
    "COLL_STATS",
    "CONN_POOL_STATS",
    "DB_HASH",
    "DB_STATS",
    "GET_CMD_LINE_OPTS",
    "GET_LOG",
    "GET_PARAMETER",
    "GET_SHARD_MAP",
    "HOST_INFO",
    "IN_PROG",
    "LIST_DATABASES",
    "LIST_COLLECTIONS",
    "LIST_INDEXES",
    "LIST_SHARDS",
    "NET_STAT",
    "REPL_SET_GET_CONFIG",
    "REPL_SET_GET_STATUS",
    "SERVER_STATUS",
    "VALIDATE",
    "SHARDING_STATE",
    "TOP",
    "SQL_GET_SCHEMA",
    "SQL_SET_SCHEMA",
    "VIEW_ALL_HISTORY",
    "OUT_TO_S3",
    "OUT_TO_AZURE",
    "OUT_TO_GCS",
    "STORAGE_GET_CONFIG",
    "STORAGE_SET_CONFIG",
    "FLUSH_ROUTER_CONFIG",
    "ENABLE_SHARDING",
    "CHECK_METADATA_CONSISTENCY",
    "MOVE_CHUNK",
    "SPLIT_CHUNK",
    "ANALYZE_SHARD_KEY",
    "REFINE_COLLECTION_SHARD_KEY",
    "CLEAR_JUMBO_FLAG",
    "RESHARD_COLLECTION",
    "SHARDED_DATA_DISTRIBUTION",
    "GET_STREAM_PROCESSOR",
    "CREATE_STREAM_PROCESSOR",
    "PROCESS_STREAM_PROCESSOR",
    "START_STREAM_PROCESSOR",
    "STOP_STREAM_PROCESSOR",
    "DROP_STREAM_PROCESSOR",
    "SAMPLE_STREAM_PROCESSOR",
    "LIST_STREAM_PROCESSORS",
    "LIST_CONNECTIONS",
    "STREAM_PROCESSOR_STATS",
];

/// Built-in roles a custom role may inherit beyond those a user may hold.
const MORE_BUILT_IN: &[&str] = &[
    "dbOwner",
    "userAdmin",
    "clusterAdmin",
    "clusterManager",
    "hostManager",
    "restore",
    "userAdminAnyDatabase",
];

/// Where an action applies: the whole cluster, or a database (and a collection of it; an
/// empty collection is every collection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(default)]
    pub cluster: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

/// One privilege (`DatabasePrivilegeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privilege {
    pub action: String,
    #[serde(default)]
    pub resources: Vec<Resource>,
}

/// A role inherited (`DatabaseInheritedRole`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inherited {
    pub db: String,
    pub role: String,
}

/// A custom role (`UserCustomDBRole`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomRole {
    pub role_name: String,
    #[serde(default)]
    pub actions: Vec<Privilege>,
    #[serde(default, rename = "inheritedRoles")]
    pub inherits: Vec<Inherited>,
}

fn is_built_in(name: &str) -> bool {
    BUILT_IN_ROLES.iter().any(|(n, _)| *n == name) || MORE_BUILT_IN.contains(&name)
}

/// Checks a role name: 1 to 64 of `[A-Za-z0-9_-]`, not a built-in role's.
pub fn check_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ValidationError::new(
            "roleName",
            "must be 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    if is_built_in(name) {
        return Err(ValidationError::new(
            "roleName",
            format!("{name} is a built-in role"),
        ));
    }
    Ok(())
}

impl CustomRole {
    /// Checks the role on its own: its name, each action and resource, each inherited role's
    /// database, and that it grants something.
    pub fn check(&self) -> Result<(), ValidationError> {
        check_name(&self.role_name)?;
        if self.actions.is_empty() && self.inherits.is_empty() {
            return Err(ValidationError::new(
                "actions",
                "a role grants at least one action or inherits at least one role",
            ));
        }
        for p in &self.actions {
            if !PRIVILEGE_ACTIONS.contains(&p.action.as_str()) {
                return Err(ValidationError::new(
                    "actions.action",
                    format!("{:?} is not a MongoDB privilege action", p.action),
                ));
            }
            if p.resources.is_empty() {
                return Err(ValidationError::new(
                    "actions.resources",
                    "every action names at least one resource",
                ));
            }
            for r in &p.resources {
                match (r.cluster, &r.db, &r.collection) {
                    (true, None, None) => {}
                    (false, Some(db), coll) => {
                        refuse_invisible("actions.resources.db", db)?;
                        if db.len() > 64 || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
                            return Err(ValidationError::new(
                                "actions.resources.db",
                                "is not a MongoDB database name",
                            ));
                        }
                        if let Some(c) = coll {
                            refuse_invisible("actions.resources.collection", c)?;
                            if c.contains(['$', '\0']) {
                                return Err(ValidationError::new(
                                    "actions.resources.collection",
                                    "is not a collection name",
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(ValidationError::new(
                            "actions.resources",
                            "a resource is either {\"cluster\": true} or a db (and collection)",
                        ))
                    }
                }
            }
        }
        for i in &self.inherits {
            if i.db.is_empty()
                || i.db.len() > 64
                || i.db.contains(['/', '\\', '.', ' ', '"', '$', '\0'])
            {
                return Err(ValidationError::new(
                    "inheritedRoles.db",
                    "is not a MongoDB database name",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a project's custom roles together: every inherited role is built in or one of
/// them, and no role inherits itself, directly or through others.
pub fn check_project(roles: &[CustomRole]) -> Result<(), ValidationError> {
    let by_name: BTreeMap<&str, &CustomRole> =
        roles.iter().map(|r| (r.role_name.as_str(), r)).collect();
    for r in roles {
        for i in &r.inherits {
            if !is_built_in(&i.role) && !by_name.contains_key(i.role.as_str()) {
                return Err(ValidationError::new(
                    "inheritedRoles.role",
                    format!(
                        "{:?} is neither a built-in role nor a custom role of this project",
                        i.role
                    ),
                ));
            }
        }
    }
    // A depth-first walk from each role; meeting the start again is a cycle.
    for start in roles {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = start.inherits.iter().map(|i| i.role.as_str()).collect();
        while let Some(n) = stack.pop() {
            if n == start.role_name {
                return Err(ValidationError::new(
                    "inheritedRoles",
                    format!("{} would inherit itself", start.role_name),
                ));
            }
            if seen.insert(n) {
                if let Some(r) = by_name.get(n) {
                    stack.extend(r.inherits.iter().map(|i| i.role.as_str()));
                }
            }
        }
    }
    Ok(())
}

/// The custom roles that inherit `name`.
pub fn inheritors<'a>(defined: &'a [CustomRole], name: &str) -> Vec<&'a str> {
    defined
        .iter()
        .filter(|r| r.inherits.iter().any(|i| i.role == name))
        .map(|r| r.role_name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, inherits: &[&str]) -> CustomRole {
        CustomRole {
            role_name: name.into(),
            actions: vec![Privilege {
                action: "FIND".into(),
                resources: vec![Resource {
                    cluster: false,
                    db: Some("sales".into()),
                    collection: Some(String::new()),
                }],
            }],
            inherits: inherits
                .iter()
                .map(|r| Inherited {
                    db: "admin".into(),
                    role: (*r).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn actions_and_names_are_mongodbs() {
        assert!(role("reader", &["read"]).check().is_ok());
        let mut bad = role("reader", &[]);
        bad.actions[0].action = "FLY".into();
        assert!(bad.check().is_err());
        assert!(role("read", &[]).check().is_err(), "a built-in name");
        assert!(role("has space", &[]).check().is_err());
        let mut both = role("x", &[]);
        both.actions[0].resources[0].cluster = true;
        assert!(both.check().is_err(), "cluster and db at once");
        let empty = CustomRole {
            role_name: "empty".into(),
            actions: vec![],
            inherits: vec![],
        };
        assert!(empty.check().is_err());
    }

    #[test]
    fn inheritance_is_known_and_acyclic() {
        assert!(check_project(&[role("a", &["read"]), role("b", &["a"])]).is_ok());
        assert!(check_project(&[role("a", &["nope"])]).is_err());
        assert!(check_project(&[role("a", &["b"]), role("b", &["c"]), role("c", &["a"])]).is_err());
        assert!(check_project(&[role("a", &["a"])]).is_err());
        assert_eq!(
            inheritors(&[role("a", &["read"]), role("b", &["a"])], "a"),
            vec!["b"]
        );
    }
}
