//! Who is calling: an authenticated credential and the roles it holds. What it may do is
//! decided in [`crate::authorization`].

use std::collections::HashMap;

use crate::ids::{ApiKeyId, ClientId, GroupId, OrgId, SecretId, UserId};
use crate::roles::{GroupRole, OrgRole};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    ApiKey {
        id: ApiKeyId,
        public_key: String,
    },
    ServiceAccount {
        client_id: ClientId,
        secret_id: SecretId,
    },
    /// A person (a MongoDB Cloud user), with its roles in one organization: its own and its
    /// teams' (`crate::people::OrgPeople::principal`).
    User {
        id: UserId,
        username: String,
    },
}

/// An authenticated caller with the roles it holds right now. Every credential belongs to
/// exactly one organization (as in Atlas).
#[derive(Clone, Debug)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub org_id: OrgId,
    pub org_roles: Vec<OrgRole>,
    pub group_roles: HashMap<GroupId, Vec<GroupRole>>,
    /// Where the request came from (its client address), for the events it causes.
    pub remote_address: Option<std::net::IpAddr>,
}
