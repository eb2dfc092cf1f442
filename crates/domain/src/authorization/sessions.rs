//! A browser console session and the roles it began with: a session lasts only while its
//! person still holds every role it began with (a role removed, or the person removed from an
//! organization, ends it at the next request).

use std::collections::BTreeSet;

use crate::Principal;

/// The roles `principals` hold, as the marks a session keeps ("org:<id>:ORG_OWNER",
/// "group:<id>:GROUP_READ_ONLY"), sorted.
pub fn role_marks<'a>(principals: impl IntoIterator<Item = &'a Principal>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for p in principals {
        for r in &p.org_roles {
            out.insert(format!("org:{}:{}", p.org_id, r.as_str()));
        }
        for (g, held) in &p.group_roles {
            for r in held {
                out.insert(format!("group:{g}:{}", r.as_str()));
            }
        }
    }
    out.into_iter().collect()
}

/// Whether a session that began with `began` must end, its person holding `now`.
pub fn lost_a_role(began: &[String], now: &[String]) -> bool {
    let now: BTreeSet<&String> = now.iter().collect();
    began.iter().any(|m| !now.contains(m))
}

/// Whether the person holds a role the session did not begin with (it is then kept with it).
pub fn gained_a_role(began: &[String], now: &[String]) -> bool {
    lost_a_role(now, began)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrgId, OrgRole, PrincipalKind, UserId};

    #[test]
    fn a_session_ends_when_any_role_it_began_with_is_gone() {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let org = OrgId::generate(t);
        let p = |roles: Vec<OrgRole>| Principal {
            kind: PrincipalKind::User {
                id: UserId::generate(t),
                username: "a@example.com".into(),
            },
            org_id: org,
            org_roles: roles,
            group_roles: Default::default(),
            remote_address: None,
        };
        let both = role_marks([&p(vec![OrgRole::Owner, OrgRole::Member])]);
        let owner = role_marks([&p(vec![OrgRole::Owner])]);
        assert_eq!(both.len(), 2);
        assert!(lost_a_role(&both, &owner));
        assert!(!lost_a_role(&owner, &both));
        assert!(gained_a_role(&owner, &both));
        assert!(lost_a_role(&owner, &[]), "removed from the organization");
        assert!(!lost_a_role(&[], &[]), "a person with invitations only");
    }
}
