//! Tests of the decisions: the role lattice applied to principals, and the named rules.

use super::*;
use crate::ids::{ApiKeyId, ClientId, GroupId, OrgId};
use crate::principal::{Principal, PrincipalKind};
use crate::roles::{GroupRole, OrgRole};
use crate::time::from_millis;

fn principal(org_roles: Vec<OrgRole>, groups: Vec<(GroupId, Vec<GroupRole>)>) -> Principal {
    let now = from_millis(0);
    Principal {
        kind: PrincipalKind::ApiKey {
            id: ApiKeyId::generate(now),
            public_key: "abcdefgh".into(),
        },
        org_id: OrgId::parse("000000000000000000000001").unwrap(),
        org_roles,
        group_roles: groups.into_iter().collect(),
        remote_address: None,
    }
}

#[test]
fn other_org_is_not_found_not_forbidden() {
    let p = principal(vec![OrgRole::Owner], vec![]);
    let other = OrgId::parse("000000000000000000000002").unwrap();
    assert_eq!(
        p.decide_org(other, Requirement::OrgMember),
        Decision::NotFound
    );
    let g = GroupId::generate(from_millis(0));
    assert_eq!(
        p.decide_group(other, g, Requirement::ProjectReadOnly),
        Decision::NotFound
    );
    assert_eq!(
        p.decide_org(p.org_id, Requirement::OrgOwner),
        Decision::Allow
    );
}

#[test]
fn access_managers_cannot_escalate() {
    let g = GroupId::generate(from_millis(0));
    let am = principal(
        vec![OrgRole::Member],
        vec![(g, vec![GroupRole::AccessManager, GroupRole::ReadOnly])],
    );
    let org = am.org_id;
    assert!(am.may_assign_group_roles(org, g, &[GroupRole::ReadOnly]));
    assert!(am.may_assign_group_roles(org, g, &[GroupRole::AccessManager]));
    assert!(!am.may_assign_group_roles(org, g, &[GroupRole::Owner]));
    assert!(!am.may_assign_group_roles(org, g, &[GroupRole::ClusterManager]));
    assert!(am.may_manage_member(org, g, &[OrgRole::Member], &[GroupRole::ReadOnly]));
    assert!(!am.may_manage_member(org, g, &[OrgRole::Member], &[GroupRole::Owner]));
    assert!(!am.may_manage_member(org, g, &[OrgRole::Owner], &[GroupRole::ReadOnly]));
    let owner = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
    assert!(owner.may_assign_group_roles(owner.org_id, g, &[GroupRole::Owner]));
    assert!(owner.may_manage_member(owner.org_id, g, &[OrgRole::Owner], &[GroupRole::Owner]));
    let org_owner = principal(vec![OrgRole::Owner], vec![]);
    assert!(org_owner.may_assign_group_roles(org_owner.org_id, g, &[GroupRole::Owner]));
}

#[test]
fn member_without_project_role_is_forbidden() {
    let g = GroupId::generate(from_millis(0));
    let h = GroupId::generate(from_millis(0));
    let p = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::ReadOnly])]);
    assert_eq!(
        p.decide_org(p.org_id, Requirement::OrgOwner),
        Decision::Forbidden
    );
    assert_eq!(
        p.decide_group(p.org_id, g, Requirement::ProjectReadOnly),
        Decision::Allow
    );
    assert_eq!(
        p.decide_group(p.org_id, g, Requirement::ProjectOwner),
        Decision::Forbidden
    );
    assert_eq!(
        p.decide_group(p.org_id, h, Requirement::ProjectReadOnly),
        Decision::Forbidden
    );
    assert!(p.can_list_group(p.org_id, g));
    assert!(!p.can_list_group(p.org_id, h));
}

#[test]
fn visible_groups_follow_the_org_role() {
    let g = GroupId::generate(from_millis(0));
    let h = GroupId::generate(from_millis(1000));
    for role in [OrgRole::Owner, OrgRole::ReadOnly] {
        let p = principal(vec![OrgRole::Member, role], vec![]);
        assert_eq!(p.visible_groups(p.org_id), GroupVisibility::All, "{role}");
    }
    for role in [
        OrgRole::Member,
        OrgRole::GroupCreator,
        OrgRole::BillingAdmin,
        OrgRole::BillingReadOnly,
    ] {
        let p = principal(
            vec![role],
            vec![(h, vec![GroupRole::ReadOnly]), (g, vec![GroupRole::Owner])],
        );
        let mut both = vec![g, h];
        both.sort();
        assert_eq!(
            p.visible_groups(p.org_id),
            GroupVisibility::Only(both),
            "{role}"
        );
        // Nothing of another organization.
        let other = OrgId::parse("000000000000000000000002").unwrap();
        assert_eq!(p.visible_groups(other), GroupVisibility::Only(vec![]));
    }
    let owner = principal(vec![OrgRole::Owner], vec![]);
    let other = OrgId::parse("000000000000000000000002").unwrap();
    assert_eq!(owner.visible_groups(other), GroupVisibility::Only(vec![]));
}

#[test]
fn an_org_log_shows_only_what_its_reader_may_read_where_it_happened() {
    let g = GroupId::generate(from_millis(0));
    let h = GroupId::generate(from_millis(1000));
    let other = OrgId::parse("000000000000000000000002").unwrap();
    // A GROUP_READ_ONLY of g (an ORG_MEMBER): the org's own events and g's, not h's.
    let p = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::ReadOnly])]);
    assert_eq!(
        p.org_log_visibility(p.org_id),
        OrgLogVisibility {
            org_events: true,
            groups: GroupVisibility::Only(vec![g]),
        }
    );
    assert!(p.may_read_org_event(p.org_id, None));
    assert!(p.may_read_org_event(p.org_id, Some(g)));
    assert!(!p.may_read_org_event(p.org_id, Some(h)));
    assert_eq!(
        p.decide_group(p.org_id, h, Requirement::ProjectReadOnly),
        Decision::Forbidden,
        "the project log it would be refused"
    );
    // Org owners and org read-only read every project's events.
    for role in [OrgRole::Owner, OrgRole::ReadOnly] {
        let p = principal(vec![role], vec![]);
        let v = p.org_log_visibility(p.org_id);
        assert!(v.org_events, "{role}");
        assert_eq!(v.groups, GroupVisibility::All, "{role}");
        assert!(p.may_read_org_event(p.org_id, Some(h)), "{role}");
    }
    // Billing roles read the org's own events only, unless they hold a project role.
    let p = principal(vec![OrgRole::BillingAdmin], vec![]);
    assert_eq!(
        p.org_log_visibility(p.org_id).groups,
        GroupVisibility::Only(vec![])
    );
    assert!(!p.may_read_org_event(p.org_id, Some(g)));
    // Nothing of another org.
    let v = p.org_log_visibility(other);
    assert!(!v.org_events);
    assert_eq!(v.groups, GroupVisibility::Only(vec![]));
    assert!(!p.may_read_org_event(other, None));
}

#[test]
fn managing_an_account_through_a_project_needs_its_whole_reach() {
    let g = GroupId::generate(from_millis(0));
    let h = GroupId::generate(from_millis(1000));
    let req = Requirement::ProjectOwner;
    let po = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
    let org = po.org_id;
    // An org member assigned only here: yes.
    assert!(po.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g]));
    // Any org role beyond ORG_MEMBER: no (the promotion race of issue 6).
    for role in [OrgRole::Owner, OrgRole::ReadOnly, OrgRole::GroupCreator] {
        assert!(
            !po.may_manage_account_via_group(org, g, req, &[OrgRole::Member, role], [g]),
            "{role}"
        );
    }
    // Assigned to a project where the caller lacks the role: no.
    assert!(!po.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
    let both = principal(
        vec![OrgRole::Member],
        vec![(g, vec![GroupRole::Owner]), (h, vec![GroupRole::Owner])],
    );
    assert!(both.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
    // An access manager in the other project meets an access-manager requirement only.
    let am = principal(
        vec![OrgRole::Member],
        vec![
            (g, vec![GroupRole::Owner]),
            (h, vec![GroupRole::AccessManager]),
        ],
    );
    assert!(am.may_manage_account_via_group(
        org,
        g,
        Requirement::ProjectAccessManager,
        &[OrgRole::Member],
        [g, h]
    ));
    assert!(!am.may_manage_account_via_group(org, g, req, &[OrgRole::Member], [g, h]));
    // The org owner may manage anything in the org, but nothing elsewhere.
    let oo = principal(vec![OrgRole::Owner], vec![]);
    assert!(oo.may_manage_account_via_group(org, g, req, &[OrgRole::Owner], [g, h]));
    let other = OrgId::parse("000000000000000000000002").unwrap();
    assert!(!oo.may_manage_account_via_group(other, g, req, &[OrgRole::Owner], [g]));
}

#[test]
fn credential_rules() {
    let now = from_millis(0);
    let me = ClientId::generate(now);
    let other = ClientId::generate(now);
    assert!(Rule::OwnTokens.may_revoke(me, &me.to_string()));
    assert!(!Rule::OwnTokens.may_revoke(me, &other.to_string()));
    assert!(!Rule::OwnOrgTokens.may_revoke(me, &me.to_string()));
    let org = OrgId::parse("000000000000000000000001").unwrap();
    let other_org = OrgId::parse("000000000000000000000002").unwrap();
    assert!(Rule::OwnOrgTokens.may_introspect(org, org));
    assert!(!Rule::OwnOrgTokens.may_introspect(org, other_org));
    assert!(!Rule::OwnTokens.may_introspect(org, org));
    assert!(Rule::Operator.admits(Presenter::Operator));
    assert!(!Rule::Operator.admits(Presenter::Customer));
    assert!(!Rule::Org(Requirement::OrgOwner).admits(Presenter::Operator));
    assert!(Rule::Org(Requirement::OrgOwner).admits(Presenter::Customer));
    assert!(Rule::Public.admits(Presenter::Operator));
}

#[test]
fn keeps_own_access_wraps_its_rule() {
    static INNER: Rule = Rule::Org(Requirement::OrgOwner);
    let rule = Rule::KeepsOwnAccess(&INNER);
    assert_eq!(rule.base(), INNER);
    assert_eq!(rule.to_string(), "KeepsOwnAccess(Org(OrgOwner))");
}

#[test]
fn authorize_applies_the_rule_to_its_scope_only() {
    let g = GroupId::generate(from_millis(0));
    let p = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
    let org = p.org_id;
    let other = OrgId::parse("000000000000000000000002").unwrap();
    let on_group = On::Group { org, group: g };
    assert_eq!(p.authorize(Rule::Authenticated, On::Own), Decision::Allow);
    assert_eq!(p.authorize(Rule::CreateOrg, On::Own), Decision::Forbidden);
    let owner = principal(vec![OrgRole::Owner], vec![]);
    assert_eq!(owner.authorize(Rule::CreateOrg, On::Own), Decision::Allow);
    let org_member = Rule::Org(Requirement::OrgMember);
    assert_eq!(p.authorize(org_member, On::Org(org)), Decision::Allow);
    assert_eq!(p.authorize(org_member, On::Org(other)), Decision::NotFound);
    let org_owner = Rule::Org(Requirement::OrgOwner);
    assert_eq!(p.authorize(org_owner, On::Org(org)), Decision::Forbidden);
    for rule in [
        Rule::Group(Requirement::ProjectOwner),
        Rule::GroupMember(Requirement::ProjectOwner),
        Rule::GroupAccount(Requirement::ProjectOwner),
    ] {
        assert_eq!(p.authorize(rule, on_group), Decision::Allow, "{rule}");
        let elsewhere = On::Group {
            org: other,
            group: g,
        };
        assert_eq!(p.authorize(rule, elsewhere), Decision::NotFound, "{rule}");
    }
    static WRAPPED: Rule = Rule::GroupAccount(Requirement::ProjectOwner);
    assert_eq!(
        p.authorize(Rule::KeepsOwnAccess(&WRAPPED), on_group),
        Decision::Allow
    );
    // A rule asked about what it does not cover, or about credentials: refused.
    assert_eq!(p.authorize(org_member, on_group), Decision::Forbidden);
    let group_ro = Rule::Group(Requirement::ProjectReadOnly);
    assert_eq!(p.authorize(group_ro, On::Org(org)), Decision::Forbidden);
    assert_eq!(
        p.authorize(Rule::CreateOrg, On::Org(org)),
        Decision::Forbidden
    );
    for rule in [
        Rule::Operator,
        Rule::OwnTokens,
        Rule::OwnOrgTokens,
        Rule::ClientCredentials,
    ] {
        assert_eq!(
            owner.authorize(rule, On::Own),
            Decision::Forbidden,
            "{rule}"
        );
        let o = owner.org_id;
        assert_eq!(owner.authorize(rule, On::Org(o)), Decision::Forbidden);
    }
}

#[test]
fn group_member_rule_limits_reach_and_roles_handed_out() {
    let g = GroupId::generate(from_millis(0));
    let am = principal(
        vec![OrgRole::Member],
        vec![(g, vec![GroupRole::AccessManager, GroupRole::ReadOnly])],
    );
    let org = am.org_id;
    let rule = Rule::GroupMember(Requirement::ProjectAccessManager);
    let read_only = vec![(g, vec![GroupRole::ReadOnly])];
    let owner_there = vec![(g, vec![GroupRole::Owner])];
    let member = |org_roles: &'static [OrgRole], groups| Holder {
        org_roles,
        group_roles: groups,
    };
    let m = &[OrgRole::Member][..];
    assert!(am.decide_member(rule, org, g, Some(member(m, &read_only)), None));
    assert!(!am.decide_member(rule, org, g, Some(member(m, &owner_there)), None));
    let oo = &[OrgRole::Owner][..];
    assert!(!am.decide_member(rule, org, g, Some(member(oo, &read_only)), None));
    assert!(am.decide_member(rule, org, g, None, Some(&[GroupRole::ReadOnly])));
    assert!(!am.decide_member(rule, org, g, None, Some(&[GroupRole::Owner])));
    assert!(!am.decide_member(
        rule,
        org,
        g,
        Some(member(m, &read_only)),
        Some(&[GroupRole::ClusterManager])
    ));
    // Another rule adds nothing.
    let plain = Rule::Group(Requirement::ProjectAccessManager);
    assert!(am.decide_member(plain, org, g, Some(member(oo, &owner_there)), None));
    // A project owner may act on anyone and hand out anything.
    let po = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
    assert!(po.decide_member(
        rule,
        org,
        g,
        Some(member(oo, &owner_there)),
        Some(&[GroupRole::Owner])
    ));
}

#[test]
fn group_account_rule_needs_the_accounts_whole_reach() {
    let g = GroupId::generate(from_millis(0));
    let h = GroupId::generate(from_millis(1000));
    let po = principal(vec![OrgRole::Member], vec![(g, vec![GroupRole::Owner])]);
    let org = po.org_id;
    let rule = Rule::GroupAccount(Requirement::ProjectOwner);
    let here = vec![(g, vec![GroupRole::ReadOnly])];
    let both = vec![
        (g, vec![GroupRole::ReadOnly]),
        (h, vec![GroupRole::ReadOnly]),
    ];
    let acct = |org_roles: &'static [OrgRole], groups| Holder {
        org_roles,
        group_roles: groups,
    };
    let m = &[OrgRole::Member][..];
    assert!(po.may_change_account(rule, org, g, acct(m, &here)));
    assert!(!po.may_change_account(rule, org, g, acct(m, &both)));
    let promoted = &[OrgRole::Member, OrgRole::Owner][..];
    assert!(!po.may_change_account(rule, org, g, acct(promoted, &here)));
    static INNER: Rule = Rule::GroupAccount(Requirement::ProjectOwner);
    let wrapped = Rule::KeepsOwnAccess(&INNER);
    assert!(!po.may_change_account(wrapped, org, g, acct(m, &both)));
    // Another rule adds nothing.
    let plain = Rule::Group(Requirement::ProjectOwner);
    assert!(po.may_change_account(plain, org, g, acct(promoted, &both)));
    assert_eq!(project_roles(&both, h), Some(&[GroupRole::ReadOnly][..]));
    assert_eq!(project_roles(&here, h), None);
}

#[test]
fn keeps_own_access_applies_to_the_callers_own_list_only() {
    let now = from_millis(0);
    let key = ApiKeyId::generate(now);
    let client = ClientId::generate(now);
    let mut p = principal(vec![OrgRole::Owner], vec![]);
    p.kind = PrincipalKind::ApiKey {
        id: key,
        public_key: "abcdefgh".into(),
    };
    let peer: std::net::IpAddr = [192, 0, 2, 1].into();
    static INNER: Rule = Rule::Org(Requirement::OrgOwner);
    let rule = Rule::KeepsOwnAccess(&INNER);
    assert_eq!(
        p.own_address_to_keep(rule, Credential::ApiKey(key), peer),
        Some(peer)
    );
    let other = ApiKeyId::generate(from_millis(1000));
    assert_eq!(
        p.own_address_to_keep(rule, Credential::ApiKey(other), peer),
        None
    );
    assert_eq!(
        p.own_address_to_keep(rule, Credential::ServiceAccount(client), peer),
        None
    );
    assert_eq!(
        p.own_address_to_keep(INNER, Credential::ApiKey(key), peer),
        None,
        "a rule without the guard keeps nothing"
    );
    p.kind = PrincipalKind::ServiceAccount {
        client_id: client,
        secret_id: crate::ids::SecretId::generate(now),
    };
    assert_eq!(
        p.own_address_to_keep(rule, Credential::ServiceAccount(client), peer),
        Some(peer)
    );
}
