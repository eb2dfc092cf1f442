//! Federated authentication (Atlas' "Federated Authentication"), OIDC workforce identity
//! providers only: an organization's federation settings, the identity providers (IdPs) of a
//! federation, the organization's connected org config (which IdP it signs in through, the
//! org roles everyone signing in gets) and its role mappings (an IdP group's org and project
//! roles).
//!
//! Decisions (ours, docs/api.md "Federated authentication"): an organization has one
//! federation, made on first need, and is its only connected organization; an IdP's legacy
//! 20-hex id (`oktaIdpId`) is the last 20 hex digits of its 24-hex id.
//!
//! [`roles_from_groups`] is what a sign-in through an IdP grants: the connected org's
//! `postAuthRoleGrants` plus the roles of every mapping whose group the person is in.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::refuse_invisible;
use crate::{
    FederationSettingsId, GroupId, GroupRole, IdentityProviderId, OrgId, OrgRole, RoleMappingId,
    ValidationError,
};

/// An organization's federation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationSettings {
    pub id: FederationSettingsId,
    pub org_id: OrgId,
    pub created_at: DateTime<Utc>,
}

/// `idpType`: who signs in through the IdP (people, or workloads with their own tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdpType {
    Workforce,
    Workload,
}

impl IdpType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpType::Workforce => "WORKFORCE",
            IdpType::Workload => "WORKLOAD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "WORKFORCE" => Some(IdpType::Workforce),
            "WORKLOAD" => Some(IdpType::Workload),
            _ => None,
        }
    }
}

/// `authorizationType`: roles from the token's groups, or from the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthorizationType {
    Group,
    User,
}

impl AuthorizationType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationType::Group => "GROUP",
            AuthorizationType::User => "USER",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GROUP" => Some(AuthorizationType::Group),
            "USER" => Some(AuthorizationType::User),
            _ => None,
        }
    }
}

/// What an OIDC IdP is configured with (the `FederationOidc…IdentityProviderUpdate` fields;
/// the protocol is always OIDC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcConfig {
    pub idp_type: IdpType,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub issuer_uri: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub authorization_type: Option<AuthorizationType>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub user_claim: Option<String>,
    #[serde(default)]
    pub requested_scopes: Vec<String>,
    #[serde(default)]
    pub associated_domains: Vec<String>,
}

/// An identity provider of a federation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProvider {
    pub id: IdentityProviderId,
    pub federation_id: FederationSettingsId,
    pub config: OidcConfig,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl IdentityProvider {
    /// The legacy 20-hex id (`oktaIdpId`, and a connected org's `identityProviderId`).
    pub fn legacy_id(&self) -> String {
        legacy_id(self.id)
    }
}

/// The legacy 20-hex id of an IdP: the last 20 hex digits of its id (ours).
pub fn legacy_id(id: IdentityProviderId) -> String {
    let hex = id.to_string();
    hex.get(4..).unwrap_or_default().to_owned()
}

/// Whether `s` is a legacy 20-hex IdP id.
pub fn is_legacy_id(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const MAX_TEXT: usize = 1000;

fn text(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    refuse_invisible(field, s)
}

/// Checks an issuer URI: an absolute `https://` URL with a host; `http://` only for a
/// loopback host (`localhost`, `127.0.0.1`, `[::1]`), so a test IdP can run on loopback
/// (ours).
pub fn check_issuer_uri(s: &str) -> Result<(), ValidationError> {
    const FIELD: &str = "issuerUri";
    let reason = "must be an absolute https URL (http only for localhost or 127.0.0.1)";
    text(FIELD, s, MAX_TEXT)?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::new(FIELD, reason));
    }
    let (rest, secure) = if let Some(r) = s.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = s.strip_prefix("http://") {
        (r, false)
    } else {
        return Err(ValidationError::new(FIELD, reason));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host_ok = !host.is_empty() && !authority.contains('@');
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
    if host_ok && (secure || loopback) {
        Ok(())
    } else {
        Err(ValidationError::new(FIELD, reason))
    }
}

impl OidcConfig {
    /// Checks the configuration: `displayName` 1 to 50 characters, `issuerUri`
    /// ([`check_issuer_uri`]), a non-empty `clientId` for a WORKFORCE IdP, `audience` for a
    /// WORKLOAD one, free texts without invisible characters, no duplicate domains.
    pub fn check(&self) -> Result<(), ValidationError> {
        text("displayName", &self.display_name, 50)?;
        check_issuer_uri(&self.issuer_uri)?;
        if let Some(d) = &self.description {
            refuse_invisible("description", d)?;
            if d.chars().count() > MAX_TEXT {
                return Err(ValidationError::new(
                    "description",
                    format!("must be at most {MAX_TEXT} characters"),
                ));
            }
        }
        match (&self.idp_type, &self.client_id) {
            (_, Some(c)) => text("clientId", c, MAX_TEXT)?,
            (IdpType::Workforce, None) => {
                return Err(ValidationError::new(
                    "clientId",
                    "is required for a WORKFORCE identity provider",
                ))
            }
            (IdpType::Workload, None) => {}
        }
        if self.idp_type == IdpType::Workload && self.audience.is_none() {
            return Err(ValidationError::new(
                "audience",
                "is required for a WORKLOAD identity provider",
            ));
        }
        for (field, v) in [
            ("audience", &self.audience),
            ("groupsClaim", &self.groups_claim),
            ("userClaim", &self.user_claim),
        ] {
            if let Some(v) = v {
                text(field, v, MAX_TEXT)?;
            }
        }
        if self.authorization_type == Some(AuthorizationType::Group) && self.groups_claim.is_none()
        {
            return Err(ValidationError::new(
                "groupsClaim",
                "is required when authorizationType is GROUP",
            ));
        }
        for s in &self.requested_scopes {
            text("requestedScopes", s, 200)?;
        }
        let mut seen = BTreeSet::new();
        for d in &self.associated_domains {
            text("associatedDomains", d, 253)?;
            if !seen.insert(d.to_ascii_lowercase()) {
                return Err(ValidationError::new(
                    "associatedDomains",
                    format!("lists {d} twice"),
                ));
            }
        }
        Ok(())
    }
}

/// An organization's connected org config: which IdP its people sign in through, and what
/// everyone signing in gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedOrgConfig {
    pub org_id: OrgId,
    pub federation_id: FederationSettingsId,
    /// The IdP for signing in to MongoDB Cloud (`identityProviderId`), if any.
    pub identity_provider_id: Option<IdentityProviderId>,
    /// IdPs for data access (`dataAccessIdentityProviderIds`).
    pub data_access_identity_provider_ids: Vec<IdentityProviderId>,
    pub domain_allow_list: Vec<String>,
    pub domain_restriction_enabled: bool,
    /// Org roles granted to anyone signing in through the IdP.
    pub post_auth_role_grants: Vec<OrgRole>,
}

impl ConnectedOrgConfig {
    /// The config of an organization newly connected: no IdP, nothing granted.
    pub fn new(org_id: OrgId, federation_id: FederationSettingsId) -> Self {
        Self {
            org_id,
            federation_id,
            identity_provider_id: None,
            data_access_identity_provider_ids: Vec::new(),
            domain_allow_list: Vec::new(),
            domain_restriction_enabled: false,
            post_auth_role_grants: Vec::new(),
        }
    }

    /// Checks the config on its own: domains well formed and listed once, no role granted
    /// twice, and nothing granted without an IdP (Atlas: post-authorization grants need one).
    pub fn check(&self) -> Result<(), ValidationError> {
        let mut seen = BTreeSet::new();
        for d in &self.domain_allow_list {
            text("domainAllowList", d, 253)?;
            if d.contains(char::is_whitespace) || !seen.insert(d.to_ascii_lowercase()) {
                return Err(ValidationError::new(
                    "domainAllowList",
                    format!("{d} is malformed or listed twice"),
                ));
            }
        }
        let grants: BTreeSet<_> = self.post_auth_role_grants.iter().collect();
        if grants.len() != self.post_auth_role_grants.len() {
            return Err(ValidationError::new(
                "postAuthRoleGrants",
                "lists a role twice",
            ));
        }
        let ids: BTreeSet<_> = self.data_access_identity_provider_ids.iter().collect();
        if ids.len() != self.data_access_identity_provider_ids.len() {
            return Err(ValidationError::new(
                "dataAccessIdentityProviderIds",
                "lists an identity provider twice",
            ));
        }
        if self.identity_provider_id.is_none() && !self.post_auth_role_grants.is_empty() {
            return Err(ValidationError::new(
                "postAuthRoleGrants",
                "needs an identityProviderId",
            ));
        }
        Ok(())
    }
}

/// One role a mapping grants: an org role in the connected org, or a project role in one of
/// its projects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleAssignment {
    Org { org_id: OrgId, role: OrgRole },
    Group { group_id: GroupId, role: GroupRole },
}

/// A role mapping: the roles of everyone in the IdP group `external_group_name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMapping {
    pub id: RoleMappingId,
    pub org_id: OrgId,
    pub external_group_name: String,
    pub role_assignments: Vec<RoleAssignment>,
}

impl RoleMapping {
    /// Checks a mapping of the connected org `org_id`, whose projects are `org_groups`:
    /// `externalGroupName` 1 to 200 characters; at least one org role (Atlas); every org
    /// role in `org_id`, every project one of its projects; no assignment twice.
    pub fn check(&self, org_groups: &[GroupId]) -> Result<(), ValidationError> {
        text("externalGroupName", &self.external_group_name, 200)?;
        let mut has_org_role = false;
        let mut seen = BTreeSet::new();
        for a in &self.role_assignments {
            if !seen.insert(*a) {
                return Err(ValidationError::new(
                    "roleAssignments",
                    "lists an assignment twice",
                ));
            }
            match a {
                RoleAssignment::Org { org_id, .. } => {
                    if *org_id != self.org_id {
                        return Err(ValidationError::new(
                            "roleAssignments.orgId",
                            format!("must be the connected organization {}", self.org_id),
                        ));
                    }
                    has_org_role = true;
                }
                RoleAssignment::Group { group_id, .. } => {
                    if !org_groups.contains(group_id) {
                        return Err(ValidationError::new(
                            "roleAssignments.groupId",
                            format!(
                                "{group_id} is not a project of organization {}",
                                self.org_id
                            ),
                        ));
                    }
                }
            }
        }
        if !has_org_role {
            return Err(ValidationError::new(
                "roleAssignments",
                "must include at least one organization role",
            ));
        }
        Ok(())
    }
}

/// What a sign-in through the connected org's IdP grants a person in the IdP groups
/// `groups`: the config's `postAuthRoleGrants` and the roles of every mapping whose
/// `externalGroupName` is one of `groups` (org roles of other organizations, which a checked
/// mapping never holds, are skipped). Each role once, in the enums' order.
pub fn roles_from_groups(
    config: &ConnectedOrgConfig,
    mappings: &[RoleMapping],
    groups: &[String],
) -> (Vec<OrgRole>, Vec<(GroupId, GroupRole)>) {
    let mut org: BTreeSet<OrgRole> = config.post_auth_role_grants.iter().copied().collect();
    let mut projects: BTreeSet<(GroupId, GroupRole)> = BTreeSet::new();
    let in_groups = |m: &&RoleMapping| groups.contains(&m.external_group_name);
    for m in mappings.iter().filter(in_groups) {
        for a in &m.role_assignments {
            match *a {
                RoleAssignment::Org { org_id, role } if org_id == config.org_id => {
                    org.insert(role);
                }
                RoleAssignment::Org { .. } => {}
                RoleAssignment::Group { group_id, role } => {
                    projects.insert((group_id, role));
                }
            }
        }
    }
    (org.into_iter().collect(), projects.into_iter().collect())
}

/// A sign-in's roles in one organization: its org roles, and its own roles per project.
pub type SignInGrants = (
    Vec<OrgRole>,
    std::collections::BTreeMap<GroupId, Vec<GroupRole>>,
);

/// What signing in through the provider grants `username` in one connected organization:
/// its org roles and its own project roles, or `None` when the organization's domain
/// restriction does not admit the address or no role is mapped to the person's `groups` (the
/// membership is then left as it is).
pub fn sign_in_grants(
    config: &ConnectedOrgConfig,
    mappings: &[RoleMapping],
    groups: &[String],
    username: &str,
) -> Option<SignInGrants> {
    let domain = username.rsplit('@').next().unwrap_or("");
    let admitted = !config.domain_restriction_enabled
        || config
            .domain_allow_list
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain));
    if !admitted {
        return None;
    }
    let (org, projects) = roles_from_groups(config, mappings, groups);
    if org.is_empty() {
        return None;
    }
    let mut by_group: std::collections::BTreeMap<GroupId, Vec<GroupRole>> = Default::default();
    for (g, r) in projects {
        by_group.entry(g).or_default().push(r);
    }
    Some((org, by_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn config() -> OidcConfig {
        OidcConfig {
            idp_type: IdpType::Workforce,
            display_name: "Okta".into(),
            description: None,
            issuer_uri: "https://idp.example.com/oauth2/default".into(),
            client_id: Some("0oa123".into()),
            audience: Some("api://tessera".into()),
            authorization_type: Some(AuthorizationType::Group),
            groups_claim: Some("groups".into()),
            user_claim: Some("sub".into()),
            requested_scopes: vec!["openid".into()],
            associated_domains: vec!["example.com".into()],
        }
    }

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com",
            "https://idp.example.com:8443/realms/x",
            "http://localhost:9000/",
            "http://127.0.0.1:41234",
            "http://[::1]:80/x",
        ] {
            assert!(check_issuer_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "idp.example.com",
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://",
            "https:///path",
            "https://user@idp.example.com",
            "https://idp example.com",
            "http://localhost.evil.com",
            "urn:idp:default",
        ] {
            assert!(check_issuer_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oidc_config_needs_what_its_type_needs() {
        assert!(config().check().is_ok());
        let mut c = config();
        c.client_id = None;
        assert_eq!(c.check().map_err(|e| e.field), Err("clientId".into()));
        c.client_id = Some(" ".into());
        assert_eq!(c.check().map_err(|e| e.field), Err("clientId".into()));
        let mut c = config();
        c.display_name = "x".repeat(51);
        assert_eq!(c.check().map_err(|e| e.field), Err("displayName".into()));
        let mut c = config();
        c.groups_claim = None;
        assert_eq!(c.check().map_err(|e| e.field), Err("groupsClaim".into()));
        let mut c = config();
        c.idp_type = IdpType::Workload;
        c.client_id = None;
        assert!(c.check().is_ok());
        c.audience = None;
        assert_eq!(c.check().map_err(|e| e.field), Err("audience".into()));
    }

    #[test]
    fn legacy_ids_are_the_last_twenty_hex_digits() {
        let id = IdentityProviderId::generate(t());
        let legacy = legacy_id(id);
        assert!(is_legacy_id(&legacy));
        assert!(id.to_string().ends_with(&legacy));
        assert!(!is_legacy_id(&id.to_string()));
    }

    fn mapping(org: OrgId, name: &str, a: Vec<RoleAssignment>) -> RoleMapping {
        RoleMapping {
            id: RoleMappingId::generate(t()),
            org_id: org,
            external_group_name: name.into(),
            role_assignments: a,
        }
    }

    #[test]
    fn mappings_stay_inside_their_organization() {
        let org = OrgId::generate(t());
        let other = OrgId::generate(t());
        let p = GroupId::generate(t());
        let foreign = GroupId::generate(t());
        let member = RoleAssignment::Org {
            org_id: org,
            role: OrgRole::Member,
        };
        let ok = mapping(
            org,
            "dbas",
            vec![
                member,
                RoleAssignment::Group {
                    group_id: p,
                    role: GroupRole::Owner,
                },
            ],
        );
        assert!(ok.check(&[p]).is_ok());
        assert!(ok.check(&[foreign]).is_err(), "a project of another org");
        let no_org_role = mapping(
            org,
            "x",
            vec![RoleAssignment::Group {
                group_id: p,
                role: GroupRole::ReadOnly,
            }],
        );
        assert!(no_org_role.check(&[p]).is_err());
        let wrong_org = mapping(
            org,
            "x",
            vec![RoleAssignment::Org {
                org_id: other,
                role: OrgRole::Member,
            }],
        );
        assert!(wrong_org.check(&[]).is_err());
        assert!(mapping(org, "x", vec![member, member]).check(&[]).is_err());
        assert!(mapping(org, "", vec![member]).check(&[]).is_err());
    }

    #[test]
    fn a_sign_in_gets_the_grants_and_the_mappings_of_its_groups() {
        let org = OrgId::generate(t());
        let fed = FederationSettingsId::generate(t());
        let (p1, p2) = (GroupId::generate(t()), GroupId::generate(t()));
        let mut cfg = ConnectedOrgConfig::new(org, fed);
        cfg.post_auth_role_grants = vec![OrgRole::Member];
        let mappings = vec![
            mapping(
                org,
                "dbas",
                vec![
                    RoleAssignment::Org {
                        org_id: org,
                        role: OrgRole::ReadOnly,
                    },
                    RoleAssignment::Group {
                        group_id: p1,
                        role: GroupRole::Owner,
                    },
                ],
            ),
            mapping(
                org,
                "devs",
                vec![
                    RoleAssignment::Org {
                        org_id: org,
                        role: OrgRole::Member,
                    },
                    RoleAssignment::Group {
                        group_id: p2,
                        role: GroupRole::ReadOnly,
                    },
                ],
            ),
        ];
        let (o, g) = roles_from_groups(&cfg, &mappings, &["dbas".into(), "other".into()]);
        assert_eq!(o, vec![OrgRole::ReadOnly, OrgRole::Member]);
        assert_eq!(g, vec![(p1, GroupRole::Owner)]);
        let (o, g) = roles_from_groups(&cfg, &mappings, &[]);
        assert_eq!(o, vec![OrgRole::Member]);
        assert!(g.is_empty());
        let (o, g) = roles_from_groups(&cfg, &mappings, &["dbas".into(), "devs".into()]);
        assert_eq!(o, vec![OrgRole::ReadOnly, OrgRole::Member]);
        assert_eq!(g.len(), 2);
        // Group names match exactly.
        let (_, g) = roles_from_groups(&cfg, &mappings, &["DBAS".into()]);
        assert!(g.is_empty());
    }
}
