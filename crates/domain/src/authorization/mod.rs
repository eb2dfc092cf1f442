//! Authorization: who may call what (CONTRACT §9), decided here and nowhere else.
//!
//! Every route's need is a [`Rule`], named once in `tessera-http`'s authorization table
//! (`authz::TABLE`, beside the router). A handler reads its route's rule from that table and
//! asks this module, never compares roles itself:
//! - [`Principal::authorize`] decides the rule for the caller's own organization, an org or a
//!   project (404 before 403: [`Decision::NotFound`] when the caller has no role in the org);
//! - the finer decisions some rules add, on the resource as the handler read it:
//!   [`Principal::decide_member`] ([`Rule::GroupMember`]), [`Principal::may_change_account`]
//!   ([`Rule::GroupAccount`]), [`Principal::own_address_to_keep`] ([`Rule::KeepsOwnAccess`]);
//!   and what a caller's lists show ([`Principal::visible_groups`],
//!   [`Principal::org_log_visibility`], [`Principal::may_read_org_event`]);
//! - the rules about credentials rather than roles: [`Rule::admits`] (support operators),
//!   [`Rule::may_revoke`] (RFC 7009), [`Rule::may_introspect`] (RFC 7662).
//!
//! A rule asked about what it does not cover (an org rule on a project, a credential rule for
//! a principal) is refused: a mistake in the table fails closed.
//!
//! [`Requirement`] and its lattice (`Requirement::is_met`) are crate-private in use: code
//! outside this crate cannot apply a requirement to roles, only ask for a decision. A tidy
//! test (`crates/http/tests/tidy.rs`) keeps role comparisons inside this module.

mod decisions;
pub mod membership;
mod requirement;
pub mod sessions;

use std::fmt;

pub use decisions::{project_roles, Decision, GroupVisibility, Holder, OrgLogVisibility};
pub use requirement::Requirement;

use crate::ids::{ApiKeyId, ClientId, GroupId, OrgId};

/// A route's named requirement. The route table in `tessera-http` gives every route exactly
/// one; the variants below are the whole vocabulary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Rule {
    /// No credential: health, readiness, metrics, the JWKS and the RFC 8414 metadata.
    Public,
    /// A service account's client credentials (HTTP Basic client id and secret): the token
    /// endpoint. The token carries no scope; its rights are the account's roles when used.
    ClientCredentials,
    /// RFC 7009 revocation: an authenticated client revokes only its own tokens. A token whose
    /// subject is another client is refused (`invalid_grant`); unknown, malformed and expired
    /// tokens are nothing to revoke (200).
    OwnTokens,
    /// RFC 7662 introspection: an authenticated client learns about tokens of its own
    /// organization only; another organization's token is reported inactive.
    OwnOrgTokens,
    /// Support operator credentials (HTTP Basic `operatorId:secret`, made only by the
    /// `tessera operators` CLI). A customer's API key or token is refused (403), so no
    /// customer credential can make support access appear used or allowed.
    Operator,
    /// Any authenticated customer credential. What it is shown is confined to its own
    /// organization and, for projects, to those it may see ([`Principal::visible_groups`]).
    Authenticated,
    /// Creating an organization: `ORG_OWNER` of the caller's own organization.
    CreateOrg,
    /// The requirement in the organization the request names (404 before 403).
    Org(Requirement),
    /// The requirement in the project the request names (404 when the project is unknown or
    /// the caller has no role in its organization, then 403).
    Group(Requirement),
    /// [`Rule::Group`], acting on the project's API keys: the key acted on must reach no
    /// further than the caller (its org role at most `ORG_MEMBER`, its project roles ones the
    /// caller could assign) and the roles handed out must be ones the caller could assign
    /// (a Project Owner may anything). See [`Principal::decide_member`].
    GroupMember(Requirement),
    /// [`Rule::Group`], acting on a service account through the project: a change to the
    /// account as a whole (name, description, secrets, access list) also needs the
    /// requirement wherever else the account reaches (every other project it is assigned to,
    /// and `ORG_OWNER` when it holds an org role beyond `ORG_MEMBER`). See
    /// [`Principal::may_change_account`].
    GroupAccount(Requirement),
    /// Acting on people across organizations (a user's memberships): `org` in each
    /// organization a membership names, `group` in each project (decided per membership with
    /// [`Principal::authorize`] on `On::Org` / `On::Group`).
    Membership {
        org: Requirement,
        group: Requirement,
    },
    /// The inner rule, for removing an entry from a credential's access list: when the
    /// credential removes an entry of its own list, it must keep the entry its request comes
    /// through ("self": it cannot lock itself out). See [`Principal::own_address_to_keep`].
    KeepsOwnAccess(&'static Rule),
}

impl Rule {
    /// The rule without its [`Rule::KeepsOwnAccess`] wrapper.
    pub fn base(self) -> Rule {
        match self {
            Rule::KeepsOwnAccess(inner) => inner.base(),
            other => other,
        }
    }

    /// Whether a credential of kind `who` may be presented to a route with this rule at all
    /// (before any role is looked at): only operators to [`Rule::Operator`] routes, only
    /// customers to the routes that decide on a customer's roles, anyone to public ones.
    pub fn admits(self, who: Presenter) -> bool {
        match (self.base(), who) {
            (Rule::Public, _) => true,
            (Rule::Operator, Presenter::Operator) => true,
            (Rule::Operator, Presenter::Customer) => false,
            (_, Presenter::Operator) => false,
            (_, Presenter::Customer) => true,
        }
    }

    /// [`Rule::OwnTokens`]: whether the authenticated client `client` may revoke a token whose
    /// subject (`sub`) is `token_subject`. Any other rule: no.
    pub fn may_revoke(self, client: ClientId, token_subject: &str) -> bool {
        self == Rule::OwnTokens && token_subject == client.to_string()
    }

    /// [`Rule::OwnOrgTokens`]: whether a client of `client_org` may be told about a token of
    /// an account of `token_org` (else it is reported inactive). Any other rule: no.
    pub fn may_introspect(self, client_org: OrgId, token_org: OrgId) -> bool {
        self == Rule::OwnOrgTokens && token_org == client_org
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Org(r) => write!(f, "Org({r:?})"),
            Rule::Group(r) => write!(f, "Group({r:?})"),
            Rule::GroupMember(r) => write!(f, "GroupMember({r:?})"),
            Rule::GroupAccount(r) => write!(f, "GroupAccount({r:?})"),
            Rule::KeepsOwnAccess(inner) => write!(f, "KeepsOwnAccess({inner})"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// What a decision is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum On {
    /// The caller's own organization (its lists; creating an organization).
    Own,
    /// An organization the request names.
    Org(OrgId),
    /// A project and the organization it belongs to.
    Group { org: OrgId, group: GroupId },
}

/// A credential whose access list is acted on (for [`Rule::KeepsOwnAccess`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Credential {
    ApiKey(ApiKeyId),
    ServiceAccount(ClientId),
}

/// Who presents itself to a route (for [`Rule::admits`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Presenter {
    /// A customer's credential: an API key (Digest) or a service account's token (Bearer).
    Customer,
    /// A support operator (HTTP Basic operator credentials).
    Operator,
}

#[cfg(test)]
mod tests;
