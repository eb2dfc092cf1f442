//! The store contract: behaviour every backend must have, written once against `&dyn Store`.
//! SQLite runs it here on a real file; PostgreSQL (module `postgres`, tests named `pg_*`) runs
//! the same functions, each test on a database of its own on the server of
//! `TESSERA_TEST_POSTGRES_URL` (`scripts/with-postgres.sh cargo test --workspace`). Without
//! that URL the PostgreSQL tests say on stderr that they did not run (and fail instead when
//! `TESSERA_REQUIRE_POSTGRES=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use tessera_domain::access::AccessEntry;
use tessera_domain::{ApiKeyId, ClientId, GroupId, GroupRole, OrgId, OrgRole, SecretId};
use tessera_store::*;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn org(name: &str) -> Org {
    Org {
        id: OrgId::generate(t0()),
        name: name.into(),
        skip_default_alerts: false,
        created_at: t0(),
    }
}

fn group(org: OrgId, name: &str) -> Group {
    Group {
        id: GroupId::generate(t0()),
        org_id: org,
        name: name.into(),
        with_default_alerts: true,
        region_usage_restrictions: None,
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
        created_at: t0(),
    }
}

fn key(org: OrgId, public: &str, roles: Vec<OrgRole>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::generate(t0()),
        org_id: org,
        public_key: public.into(),
        description: "d".into(),
        private_key_masked: "****".into(),
        ha1_md5_sealed: vec![1, 2, 3],
        ha1_sha256_sealed: vec![4, 5, 6],
        org_roles: roles,
        group_roles: vec![],
        created_at: t0(),
        access_list: vec![],
    }
}

/// An event about an API key's access list (the store writes it with the change).
fn key_event(id: ApiKeyId, entry: &str) -> events::NewEvent {
    events::NewEvent {
        id: tessera_domain::EventId::generate(t0()),
        created: t0(),
        event_type: tessera_domain::EventType::ApiKeyAccessListEntryAdded,
        org_id: None,
        group_id: None,
        actor: events::Actor::System,
        remote_address: None,
        target: vec![
            ("targetApiKeyId", id.to_string()),
            ("whitelistEntry", entry.to_owned()),
        ],
    }
}

fn access_entry(s: &str) -> AccessListEntry {
    AccessListEntry {
        entry: AccessEntry::parse_any(s).unwrap(),
        created_at: t0(),
        last_used_at: None,
        last_used_address: None,
        request_count: 0,
    }
}

/// A token-revocation event (the store writes it with the revocation).
fn revoked_event(client: ClientId, jti: &str) -> events::NewEvent {
    events::NewEvent {
        id: tessera_domain::EventId::generate(t0()),
        created: t0(),
        event_type: tessera_domain::EventType::ServiceAccountTokenRevoked,
        org_id: None,
        group_id: None,
        actor: events::Actor::ServiceAccount(client),
        remote_address: None,
        target: vec![("tokenId", jti.to_owned())],
    }
}

fn secret(expires_in_hours: i64) -> SaSecret {
    SaSecret {
        id: SecretId::generate(t0()),
        hash: vec![9; 32],
        masked: "mdb_sa_sk_****abcd".into(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(expires_in_hours),
        last_used_at: None,
    }
}

fn account(org: OrgId) -> ServiceAccount {
    ServiceAccount {
        client_id: ClientId::generate(t0()),
        org_id: org,
        name: "sa".into(),
        description: "desc".into(),
        org_roles: vec![OrgRole::Member],
        group_roles: vec![],
        created_at: t0(),
        secrets: vec![secret(24)],
        access_list: vec![],
    }
}

async fn orgs_groups_and_keys(s: &dyn Store) {
    let o = org("A");
    let g = group(o.id, "p");
    let k = key(o.id, "abcdefgh", vec![OrgRole::Owner]);
    s.bootstrap(
        NewOrg {
            org: &o,
            group: Some(&g),
            api_key: Some(&k),
        },
        t0(),
        &[],
    )
    .await
    .unwrap();
    assert!(s.meta("bootstrapped_at").await.unwrap().is_some());
    // A second bootstrap is refused and writes nothing.
    let o2 = org("B");
    let err = s
        .bootstrap(
            NewOrg {
                org: &o2,
                group: None,
                api_key: None,
            },
            t0(),
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("bootstrap")));
    assert!(s.get_org(o2.id).await.unwrap().is_none());

    assert_eq!(s.get_org(o.id).await.unwrap().unwrap(), o);
    assert_eq!(s.get_group(g.id).await.unwrap().unwrap(), g);
    assert_eq!(
        s.get_group_by_name(o.id, "p").await.unwrap().unwrap().id,
        g.id
    );
    // Project names are unique per org; a failed insert leaves nothing.
    let dup = group(o.id, "p");
    assert!(matches!(
        s.create_group(&dup, None, &[]).await,
        Err(StoreError::Conflict("group_name"))
    ));
    assert!(s.get_group(dup.id).await.unwrap().is_none());

    // Paging and the case-insensitive filters.
    for n in ["q1", "q2", "Q3"] {
        s.create_group(&group(o.id, n), Some(k.id), &[])
            .await
            .unwrap();
    }
    let page = s
        .list_groups(
            o.id,
            Some("q"),
            &GroupFilter::All,
            Page {
                offset: 1,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.len(), 1);
    let only = s
        .list_groups(o.id, None, &GroupFilter::Only(vec![g.id]), Page::ALL)
        .await
        .unwrap();
    assert_eq!(only.total, 1);
    assert_eq!(
        s.list_orgs(&[o.id], Some("a"), Page::ALL)
            .await
            .unwrap()
            .total,
        1
    );

    // Partial updates keep the fields they do not name.
    let renamed = s
        .update_group(
            g.id,
            &GroupChanges {
                name: Some("p2".into()),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.tags, g.tags);
    let untagged = s
        .update_group(
            g.id,
            &GroupChanges {
                tags: Some(vec![]),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untagged.name, "p2");
    assert!(matches!(
        s.update_group(
            g.id,
            &GroupChanges {
                name: Some("q1".into()),
                ..Default::default()
            },
            &[]
        )
        .await,
        Err(StoreError::Conflict("group_name"))
    ));
    let o_upd = s
        .update_org(
            o.id,
            &OrgChanges {
                skip_default_alerts: Some(true),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (o_upd.name.as_str(), o_upd.skip_default_alerts),
        ("A", true)
    );
    assert!(s
        .update_org(OrgId::generate(t0()), &OrgChanges::default(), &[])
        .await
        .unwrap()
        .is_none());

    // The creator key became owner of the projects it created.
    let stored = s
        .get_api_key_by_public_key("abcdefgh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.group_roles.len(), 3);
    assert!(stored
        .group_roles
        .iter()
        .all(|(_, r)| r == &vec![GroupRole::Owner]));
    assert!(matches!(
        s.create_api_key(&key(o.id, "abcdefgh", vec![]), &[]).await,
        Err(StoreError::Conflict("public_key"))
    ));

    // Atomic key update: description, org roles and project roles together.
    assert!(s
        .update_api_key(
            k.id,
            Some("new"),
            Some(&[OrgRole::ReadOnly]),
            Some((g.id, &[GroupRole::ReadOnly])),
            &[]
        )
        .await
        .unwrap());
    let updated = s.get_api_key(k.id).await.unwrap().unwrap();
    assert_eq!(updated.description, "new");
    assert_eq!(updated.org_roles, vec![OrgRole::ReadOnly]);
    assert!(updated
        .group_roles
        .contains(&(g.id, vec![GroupRole::ReadOnly])));
    assert!(!s
        .update_api_key(ApiKeyId::generate(t0()), Some("x"), None, None, &[])
        .await
        .unwrap());

    // An org with projects cannot be deleted; deleting a project cascades its assignments.
    assert_eq!(
        s.delete_org(o.id, &[]).await.unwrap(),
        DeleteOrgOutcome::HasProjects
    );
    assert_eq!(
        s.delete_group(g.id, &[]).await.unwrap(),
        DeleteGroupOutcome::Deleted
    );
    assert!(!s
        .get_api_key(k.id)
        .await
        .unwrap()
        .unwrap()
        .group_roles
        .iter()
        .any(|(x, _)| *x == g.id));
    for gr in s
        .list_groups(o.id, None, &GroupFilter::All, Page::ALL)
        .await
        .unwrap()
        .items
    {
        s.delete_group(gr.id, &[]).await.unwrap();
    }
    assert_eq!(
        s.delete_org(o.id, &[]).await.unwrap(),
        DeleteOrgOutcome::Deleted
    );
    assert!(
        s.get_api_key(k.id).await.unwrap().is_none(),
        "keys go with their org"
    );
    assert_eq!(
        s.delete_org(o.id, &[]).await.unwrap(),
        DeleteOrgOutcome::NotFound
    );
}

async fn service_accounts(s: &dyn Store) {
    let o = org("SA");
    s.create_org(
        NewOrg {
            org: &o,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let g = group(o.id, "proj");
    s.create_group(&g, None, &[]).await.unwrap();
    let a = account(o.id);
    s.create_service_account(&a, &[]).await.unwrap();
    assert_eq!(
        s.get_service_account(a.client_id).await.unwrap().unwrap(),
        a
    );

    // At most `max_active` unexpired secrets, counted at `now` in the same transaction.
    assert_eq!(
        s.add_service_account_secret(a.client_id, &secret(8), 2, t0(), &[])
            .await
            .unwrap(),
        AddSecretOutcome::Added
    );
    assert_eq!(
        s.add_service_account_secret(a.client_id, &secret(8), 2, t0(), &[])
            .await
            .unwrap(),
        AddSecretOutcome::TooMany
    );
    let later = t0() + Duration::hours(8);
    assert_eq!(
        s.add_service_account_secret(a.client_id, &secret(48), 2, later, &[])
            .await
            .unwrap(),
        AddSecretOutcome::Added
    );
    assert_eq!(
        s.add_service_account_secret(ClientId::generate(t0()), &secret(8), 2, t0(), &[])
            .await
            .unwrap(),
        AddSecretOutcome::NotFound
    );
    let first = a.secrets[0].id;
    s.record_secret_use(&[(first, t0() + Duration::minutes(5))])
        .await
        .unwrap();
    s.record_secret_use(&[(first, t0() + Duration::minutes(1))])
        .await
        .unwrap(); // never goes back
    let stored = s.get_service_account(a.client_id).await.unwrap().unwrap();
    assert_eq!(
        stored.secrets[0].last_used_at,
        Some(t0() + Duration::minutes(5))
    );
    assert!(s
        .delete_service_account_secret(a.client_id, first, &[])
        .await
        .unwrap());
    assert!(!s
        .delete_service_account_secret(a.client_id, first, &[])
        .await
        .unwrap());

    // Access lists: duplicates ignored, usage counted.
    let e = |cidr: &str| AccessListEntry {
        entry: AccessEntry::from_cidr_block(cidr).unwrap(),
        created_at: t0(),
        last_used_at: None,
        last_used_address: None,
        request_count: 0,
    };
    assert!(s
        .add_access_entries(a.client_id, &[e("10.0.0.0/8"), e("10.0.0.0/8")], &[])
        .await
        .unwrap());
    s.record_access_use(&[AccessUse {
        account: a.client_id,
        entry_key: "10.0.0.0/8".into(),
        at: t0(),
        address: "10.1.1.1".into(),
        count: 3,
    }])
    .await
    .unwrap();
    let stored = s.get_service_account(a.client_id).await.unwrap().unwrap();
    assert_eq!(stored.access_list.len(), 1);
    assert_eq!(stored.access_list[0].request_count, 3);
    assert_eq!(
        stored.access_list[0].last_used_address.as_deref(),
        Some("10.1.1.1")
    );

    // Project roles, updated atomically with the account.
    assert!(s
        .update_service_account(
            a.client_id,
            Some("renamed"),
            None,
            None,
            Some((g.id, &[GroupRole::ReadOnly])),
            &[]
        )
        .await
        .unwrap());
    let stored = s.get_service_account(a.client_id).await.unwrap().unwrap();
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.group_roles, vec![(g.id, vec![GroupRole::ReadOnly])]);
    assert!(s
        .remove_service_account_from_group(a.client_id, g.id, &[])
        .await
        .unwrap());
    assert!(!s
        .remove_service_account_from_group(a.client_id, g.id, &[])
        .await
        .unwrap());

    // Revocations live until the token would have expired.
    s.revoke_token(
        "jti-1",
        a.client_id,
        t0() + Duration::hours(1),
        revoked_event(a.client_id, "jti-1"),
    )
    .await
    .unwrap();
    s.revoke_token(
        "jti-1",
        a.client_id,
        t0() + Duration::hours(1),
        revoked_event(a.client_id, "jti-1"),
    )
    .await
    .unwrap();
    s.revoke_token(
        "jti-2",
        a.client_id,
        t0() - Duration::hours(1),
        revoked_event(a.client_id, "jti-2"),
    )
    .await
    .unwrap();
    let live = s.revoked_tokens(t0()).await.unwrap();
    assert_eq!(
        live.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(),
        ["jti-1"]
    );
    assert_eq!(s.purge_revoked_tokens(t0()).await.unwrap(), 1);

    // Deleting the account takes everything with it; list shows the rest.
    let b = account(o.id);
    s.create_service_account(&b, &[]).await.unwrap();
    assert!(s.delete_service_account(a.client_id, &[]).await.unwrap());
    assert!(s.get_service_account(a.client_id).await.unwrap().is_none());
    let all = s.list_service_accounts().await.unwrap();
    assert!(all.iter().any(|x| x.client_id == b.client_id));
    assert!(!all.iter().any(|x| x.client_id == a.client_id));
}

/// API-key access lists: entries load with the key, duplicates are ignored (and their events
/// not written), a delete that would lock `keep_admitting` out changes nothing, counters add up.
async fn api_key_access_lists(s: &dyn Store) {
    let o = org("K");
    let k = key(o.id, "kkkkkkkk", vec![OrgRole::Owner]);
    s.create_org(
        NewOrg {
            org: &o,
            group: None,
            api_key: Some(&k),
        },
        &[],
    )
    .await
    .unwrap();
    let a = access_entry("127.0.0.2");
    let b = access_entry("10.0.0.0/8");
    let v6 = access_entry("2001:db8::/32");
    let (ea, eb) = (key_event(k.id, "a"), key_event(k.id, "b"));
    assert!(s
        .add_api_key_access_entries(k.id, &[(a.clone(), ea.clone()), (b.clone(), eb.clone())])
        .await
        .unwrap());
    assert!(s.get_event(ea.id).await.unwrap().is_some());
    assert!(s.get_event(eb.id).await.unwrap().is_some());
    // A duplicate is ignored and its event is not written; the new entry's is.
    let (dup, ev6) = (key_event(k.id, "a again"), key_event(k.id, "v6"));
    let mut a_again = a.clone();
    a_again.created_at = t0() + Duration::hours(1);
    assert!(s
        .add_api_key_access_entries(k.id, &[(a_again, dup.clone()), (v6.clone(), ev6.clone())])
        .await
        .unwrap());
    assert!(s.get_event(dup.id).await.unwrap().is_none());
    assert!(s.get_event(ev6.id).await.unwrap().is_some());
    let stored = s.get_api_key(k.id).await.unwrap().unwrap();
    let keys: Vec<String> = stored.access_list.iter().map(|e| e.entry.key()).collect();
    assert_eq!(keys, ["10.0.0.0/8", "127.0.0.2/32", "2001:db8::/32"]);
    assert_eq!(
        stored.access_list[1].created_at,
        t0(),
        "the first add is kept"
    );
    assert!(!stored.access_list[1].entry.is_cidr && stored.access_list[0].entry.is_cidr);
    // Loaded the same way by public key and in lists.
    let by_public = s
        .get_api_key_by_public_key("kkkkkkkk")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_public.access_list, stored.access_list);
    let listed = s.list_org_api_keys(o.id, Page::ALL).await.unwrap();
    assert_eq!(listed.items[0].access_list, stored.access_list);

    // Unknown key: nothing written.
    let ghost = key_event(k.id, "ghost");
    assert!(!s
        .add_api_key_access_entries(ApiKeyId::generate(t0()), &[(a.clone(), ghost.clone())])
        .await
        .unwrap());
    assert!(s.get_event(ghost.id).await.unwrap().is_none());

    // Usage counters add up and do not touch other entries.
    let use_a = |n| AccessUse {
        account: k.id,
        entry_key: "127.0.0.2/32".to_owned(),
        at: t0() + Duration::minutes(n),
        address: "127.0.0.2".to_owned(),
        count: 2,
    };
    s.record_api_key_access_use(&[use_a(1)]).await.unwrap();
    s.record_api_key_access_use(&[use_a(2)]).await.unwrap();
    let stored = s.get_api_key(k.id).await.unwrap().unwrap();
    assert_eq!(stored.access_list[1].request_count, 4);
    assert_eq!(
        stored.access_list[1].last_used_at,
        Some(t0() + Duration::minutes(2))
    );
    assert_eq!(
        stored.access_list[1].last_used_address.as_deref(),
        Some("127.0.0.2")
    );
    assert_eq!(stored.access_list[0].request_count, 0);

    // Deletes: unknown entry, a lock-out refused (nothing written), then allowed ones.
    let caller: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let ev = key_event(k.id, "del");
    assert_eq!(
        s.delete_api_key_access_entry(
            k.id,
            "192.0.2.0/24",
            Some(caller),
            std::slice::from_ref(&ev)
        )
        .await
        .unwrap(),
        DeleteKeyAccessOutcome::NotFound
    );
    assert_eq!(
        s.delete_api_key_access_entry(
            k.id,
            "127.0.0.2/32",
            Some(caller),
            std::slice::from_ref(&ev)
        )
        .await
        .unwrap(),
        DeleteKeyAccessOutcome::WouldLockOut
    );
    assert!(s.get_event(ev.id).await.unwrap().is_none());
    assert_eq!(
        s.get_api_key(k.id)
            .await
            .unwrap()
            .unwrap()
            .access_list
            .len(),
        3
    );
    // Removing other entries keeps the caller admitted.
    for entry in ["10.0.0.0/8", "2001:db8::/32"] {
        let ev = key_event(k.id, entry);
        assert_eq!(
            s.delete_api_key_access_entry(k.id, entry, Some(caller), std::slice::from_ref(&ev))
                .await
                .unwrap(),
            DeleteKeyAccessOutcome::Deleted
        );
        assert!(s.get_event(ev.id).await.unwrap().is_some());
    }
    // The last entry may go: an empty list admits everyone.
    assert_eq!(
        s.delete_api_key_access_entry(k.id, "127.0.0.2/32", Some(caller), &[])
            .await
            .unwrap(),
        DeleteKeyAccessOutcome::Deleted
    );
    // Without a caller to keep admitted, any entry may go.
    s.add_api_key_access_entries(
        k.id,
        &[
            (a.clone(), key_event(k.id, "x")),
            (b.clone(), key_event(k.id, "y")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.delete_api_key_access_entry(k.id, "127.0.0.2/32", None, &[])
            .await
            .unwrap(),
        DeleteKeyAccessOutcome::Deleted
    );
    // Deleting the key takes its list with it.
    assert!(s.delete_api_key(k.id, &[]).await.unwrap());
    assert_eq!(
        s.delete_api_key_access_entry(k.id, "10.0.0.0/8", None, &[])
            .await
            .unwrap(),
        DeleteKeyAccessOutcome::NotFound
    );
}

/// Pages of an organization's and a project's service accounts come from the store's own
/// pagination, ordered by client id, each account whole (secrets, list, projects).
async fn service_account_pages(s: &dyn Store) {
    let o = org("Pages");
    let other = org("Other pages");
    for x in [&o, &other] {
        s.create_org(
            NewOrg {
                org: x,
                group: None,
                api_key: None,
            },
            &[],
        )
        .await
        .unwrap();
    }
    let g = group(o.id, "paged");
    s.create_group(&g, None, &[]).await.unwrap();
    let mut mine = Vec::new();
    for i in 0..5 {
        let mut a = account(o.id);
        a.secrets.push(secret(48));
        if i % 2 == 0 {
            a.group_roles = vec![(g.id, vec![GroupRole::ReadOnly])];
            a.access_list = vec![access_entry("192.0.2.0/24")];
        }
        s.create_service_account(&a, &[]).await.unwrap();
        mine.push(a);
    }
    for _ in 0..2 {
        s.create_service_account(&account(other.id), &[])
            .await
            .unwrap();
    }
    mine.sort_by_key(|a| a.client_id);
    let page = s
        .list_org_service_accounts(
            o.id,
            Page {
                offset: 1,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.items, mine[1..3].to_vec());
    let past = s
        .list_org_service_accounts(
            o.id,
            Page {
                offset: 5,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!((past.total, past.items.len()), (5, 0));
    // The count follows creations and deletions, per organization.
    assert!(s
        .delete_service_account(mine[0].client_id, &[])
        .await
        .unwrap());
    assert!(!s
        .delete_service_account(mine[0].client_id, &[])
        .await
        .unwrap());
    let after = s
        .list_org_service_accounts(
            o.id,
            Page {
                offset: 0,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(after.total, 4);
    assert_eq!(after.items, mine[1..3].to_vec());
    let theirs = s
        .list_org_service_accounts(other.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!((theirs.total, theirs.items.len()), (2, 2));
    let empty = org("No accounts");
    s.create_org(
        NewOrg {
            org: &empty,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let none = s
        .list_org_service_accounts(empty.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));
    s.create_service_account(&mine[0], &[]).await.unwrap();
    let assigned: Vec<ServiceAccount> = mine
        .iter()
        .filter(|a| !a.group_roles.is_empty())
        .cloned()
        .collect();
    let page = s
        .list_group_service_accounts(g.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items, assigned);
    let page = s
        .list_group_service_accounts(
            g.id,
            Page {
                offset: 2,
                limit: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items, assigned[2..].to_vec());
}

fn page(offset: u64, limit: u64) -> Page {
    Page { offset, limit }
}

/// Deep pages are positions (architecture.md, "Deep pages"): page p of a log, of one type's
/// view of it and of a project's log, and page p of an org's accounts after deletions in
/// several position blocks, are the slices a walk from the top gives.
async fn deep_pages(s: &dyn Store) {
    use tessera_domain::EventType as T;
    let o = org("Deep");
    s.create_org(
        NewOrg {
            org: &o,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let g = group(o.id, "deep");
    s.create_group(&g, None, &[]).await.unwrap();
    // 240 events of three types, a third of them in the project, in batches of 40 (six
    // transactions), as the log's writers would: newest written last.
    let types = [T::GroupCreated, T::ApiKeyCreated, T::ServiceAccountCreated];
    let mut written = Vec::new();
    for batch in 0..6 {
        let events: Vec<events::NewEvent> = (0..40)
            .map(|i| {
                let n = batch * 40 + i;
                let mut e = cluster_event(types[n % 3], o.id, g.id);
                e.group_id = (n % 3 == 0).then_some(g.id);
                e
            })
            .collect();
        written.extend(events.iter().map(|e| (e.id, e.event_type, e.group_id)));
        let gb = group(o.id, &format!("batch {batch}"));
        s.create_group(&gb, None, &events).await.unwrap();
    }
    written.reverse();
    let listing = |scope, types: Vec<String>, offset, limit| events::EventQuery {
        scope,
        types,
        min: None,
        max: None,
        page: page(offset, limit),
        include_count: true,
        visible: events::EventVisibility::ALL,
    };
    let org_log = events::EventScope::Org(o.id);
    let group_log = events::EventScope::Group(g.id);
    let views: Vec<(
        events::EventScope,
        Vec<String>,
        Vec<tessera_domain::EventId>,
    )> = vec![
        // The org's log holds its own events (no project) only.
        (
            org_log,
            vec![],
            written
                .iter()
                .filter(|w| w.2.is_none())
                .map(|w| w.0)
                .collect(),
        ),
        (
            org_log,
            vec!["API_KEY_CREATED".into()],
            written
                .iter()
                .filter(|w| w.2.is_none() && w.1 == T::ApiKeyCreated)
                .map(|w| w.0)
                .collect(),
        ),
        (
            group_log,
            vec![],
            written
                .iter()
                .filter(|w| w.2.is_some())
                .map(|w| w.0)
                .collect(),
        ),
        (
            group_log,
            vec!["GROUP_CREATED".into()],
            written
                .iter()
                .filter(|w| w.2.is_some() && w.1 == T::GroupCreated)
                .map(|w| w.0)
                .collect(),
        ),
    ];
    for (scope, types, all) in views {
        for (offset, limit) in [
            (0, 7),
            (7, 7),
            (33, 10),
            (70, 100),
            (79, 5),
            (80, 5),
            (500, 5),
        ] {
            let got = s
                .list_events(&listing(scope, types.clone(), offset, limit))
                .await
                .unwrap();
            let want: Vec<tessera_domain::EventId> = all
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .copied()
                .collect();
            assert_eq!(got.total, all.len() as u64, "{scope:?} {types:?}");
            assert_eq!(
                got.items.iter().map(|e| e.id).collect::<Vec<_>>(),
                want,
                "{scope:?} {types:?} at {offset}"
            );
        }
    }
    // Accounts: three blocks of places (1,024 each), gaps in the first two.
    let mut accounts = Vec::new();
    for _ in 0..2_100 {
        let a = account(o.id);
        s.create_service_account(&a, &[]).await.unwrap();
        accounts.push(a.client_id);
    }
    let gone: Vec<ClientId> = accounts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 9 == 4 && *i < 1_500)
        .map(|(_, c)| *c)
        .collect();
    for c in &gone {
        assert!(s.delete_service_account(*c, &[]).await.unwrap());
    }
    accounts.retain(|c| !gone.contains(c));
    for (offset, limit) in [
        (0, 100),
        (900, 100),
        (1_000, 100),
        (1_050, 3),
        (1_930, 100),
        (2_000, 10),
    ] {
        let got = s
            .list_org_service_accounts(o.id, page(offset, limit))
            .await
            .unwrap();
        let want: Vec<ClientId> = accounts
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .copied()
            .collect();
        assert_eq!(got.total, accounts.len() as u64);
        assert_eq!(
            got.items.iter().map(|a| a.client_id).collect::<Vec<_>>(),
            want,
            "accounts at {offset}"
        );
    }
}

/// Compare-and-set of server-level values: the first writer wins, a stale `expected` loses.
async fn meta_swaps(s: &dyn Store) {
    assert_eq!(s.meta("shared").await.unwrap(), None);
    assert!(s.swap_meta("shared", None, "a", &[]).await.unwrap());
    assert!(!s.swap_meta("shared", None, "b", &[]).await.unwrap());
    assert_eq!(s.meta("shared").await.unwrap().as_deref(), Some("a"));
    assert!(!s.swap_meta("shared", Some("x"), "c", &[]).await.unwrap());
    assert!(s.swap_meta("shared", Some("a"), "c", &[]).await.unwrap());
    assert!(!s.swap_meta("shared", Some("a"), "d", &[]).await.unwrap());
    assert_eq!(s.meta("shared").await.unwrap().as_deref(), Some("c"));
    assert!(!s.swap_meta("absent", Some("a"), "b", &[]).await.unwrap());
    assert_eq!(s.meta("absent").await.unwrap(), None);
    // A swap's events are written only when it happened (a key rotation is recorded once,
    // however many nodes race it).
    let rotated = |kid: &str| events::NewEvent {
        id: tessera_domain::EventId::generate(t0()),
        created: t0(),
        event_type: tessera_domain::EventType::SigningKeyRotated,
        org_id: None,
        group_id: None,
        actor: events::Actor::System,
        remote_address: None,
        target: vec![("kid", kid.to_owned())],
    };
    let rotations = || async {
        s.export_events(
            None,
            events::ExportCursor {
                created: t0(),
                id: None,
            },
            1_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "SIGNING_KEY_ROTATED")
        .map(|e| e.target[0].1.clone())
        .collect::<Vec<_>>()
    };
    assert!(!s
        .swap_meta("shared", Some("a"), "e", &[rotated("lost")])
        .await
        .unwrap());
    assert!(s
        .swap_meta("shared", Some("c"), "e", &[rotated("won")])
        .await
        .unwrap());
    assert_eq!(rotations().await, ["won"]);
}

fn cluster(org: OrgId, group: GroupId, name: &str) -> Cluster {
    let mut body = serde_json::Map::new();
    body.insert("clusterType".into(), serde_json::json!("REPLICASET"));
    Cluster {
        id: tessera_domain::ClusterId::generate(t0()),
        group_id: group,
        org_id: org,
        name: name.into(),
        created_at: t0(),
        state_name: "IDLE".into(),
        body,
        grant: None,
        grant_expiry_recorded: false,
    }
}

fn cluster_event(t: tessera_domain::EventType, org: OrgId, group: GroupId) -> events::NewEvent {
    events::NewEvent {
        id: tessera_domain::EventId::generate(t0()),
        created: t0(),
        event_type: t,
        org_id: Some(org),
        group_id: Some(group),
        actor: events::Actor::System,
        remote_address: None,
        target: vec![("clusterName", "c".into())],
    }
}

async fn group_event_types(s: &dyn Store, group: GroupId) -> Vec<String> {
    let mut v: Vec<String> = s
        .list_events(&events::EventQuery {
            scope: events::EventScope::Group(group),
            types: vec![],
            min: None,
            max: None,
            page: Page::ALL,
            include_count: true,
            visible: tessera_store::events::EventVisibility::ALL,
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    v.reverse();
    v
}

/// The unit of work writes an event only for what happened: a PATCH that changes nothing
/// writes none, and one that changes only the name writes only the rename.
async fn events_only_for_changes(s: &dyn Store) {
    use tessera_domain::EventType as T;
    let o = org("uow");
    s.create_org(
        tessera_store::NewOrg {
            org: &o,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let g = group(o.id, "uow-project");
    s.create_group(&g, None, &[]).await.unwrap();
    let same_org = tessera_store::OrgChanges {
        name: Some(o.name.clone()),
        skip_default_alerts: Some(o.skip_default_alerts),
    };
    let org_events = [
        cluster_event(T::OrgRenamed, o.id, g.id),
        cluster_event(T::OrgSettingsChanged, o.id, g.id),
    ];
    let org_events: Vec<_> = org_events
        .into_iter()
        .map(|mut e| {
            e.group_id = Some(g.id);
            e
        })
        .collect();
    s.update_org(o.id, &same_org, &org_events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        group_event_types(s, g.id).await,
        Vec::<String>::new(),
        "no-op org PATCH"
    );
    let same_group = tessera_store::GroupChanges {
        name: Some(g.name.clone()),
        with_default_alerts: Some(g.with_default_alerts),
        tags: Some(g.tags.clone()),
    };
    let group_events = [
        cluster_event(T::GroupRenamed, o.id, g.id),
        cluster_event(T::GroupTagsChanged, o.id, g.id),
        cluster_event(T::GroupSettingsChanged, o.id, g.id),
    ];
    s.update_group(g.id, &same_group, &group_events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        group_event_types(s, g.id).await,
        Vec::<String>::new(),
        "no-op project PATCH"
    );
    let renamed = tessera_store::GroupChanges {
        name: Some("uow-renamed".into()),
        ..same_group
    };
    s.update_group(g.id, &renamed, &group_events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        group_event_types(s, g.id).await,
        ["GROUP_RENAMED"],
        "only the rename"
    );
}

/// Clusters, their grants (stored with the expiry, never swept), the project-deletion guard.
async fn clusters_and_grants(s: &dyn Store) {
    use tessera_domain::clusters::{EmployeeAccessGrant, EmployeeAccessLevel};
    use tessera_domain::EventType as T;
    let o = org("Clusters");
    let g = group(o.id, "with-clusters");
    s.create_org(
        NewOrg {
            org: &o,
            group: Some(&g),
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let c = cluster(o.id, g.id, "c0");
    let ev = |t| cluster_event(t, o.id, g.id);
    assert!(s
        .create_cluster(&c, &[ev(T::ClusterCreated)])
        .await
        .unwrap());
    // Names are unique per project; nothing is written on a conflict.
    let dup = cluster(o.id, g.id, "c0");
    assert!(matches!(
        s.create_cluster(&dup, &[ev(T::ClusterCreated)]).await,
        Err(StoreError::Conflict("cluster_name"))
    ));
    // A project that is gone: false, nothing written.
    assert!(!s
        .create_cluster(&cluster(o.id, GroupId::generate(t0()), "x"), &[])
        .await
        .unwrap());
    let got = s.get_cluster(g.id, "c0").await.unwrap().unwrap();
    assert_eq!(got, c);
    assert!(s.get_cluster(g.id, "C0").await.unwrap().is_none());
    let c1 = cluster(o.id, g.id, "c1");
    s.create_cluster(&c1, &[]).await.unwrap();
    assert_eq!(
        s.cluster_counts(&[GroupId::generate(t0()), g.id])
            .await
            .unwrap(),
        vec![0, 2]
    );
    assert!(s.cluster_counts(&[]).await.unwrap().is_empty());
    let page = s
        .list_clusters(
            g.id,
            Page {
                offset: 1,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items, vec![c1.clone()]);
    let all = s
        .list_clusters_by_group(o.id, &GroupFilter::All, Page::ALL)
        .await
        .unwrap();
    assert_eq!(all.total, 1);
    assert_eq!(all.items[0].group.id, g.id);
    assert_eq!(all.items[0].clusters.len(), 2);
    let none = s
        .list_clusters_by_group(o.id, &GroupFilter::Only(vec![]), Page::ALL)
        .await
        .unwrap();
    assert_eq!(none.total, 0);

    // Update merges top-level fields.
    let mut changes = serde_json::Map::new();
    changes.insert("paused".into(), serde_json::json!(true));
    let u = s
        .update_cluster(g.id, "c0", &changes, &[ev(T::ClusterUpdated)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.body["clusterType"], "REPLICASET");
    assert_eq!(u.body["paused"], true);
    assert!(s
        .update_cluster(g.id, "nope", &changes, &[])
        .await
        .unwrap()
        .is_none());

    // A project with clusters cannot be deleted.
    assert_eq!(
        s.delete_group(g.id, &[]).await.unwrap(),
        DeleteGroupOutcome::HasClusters
    );
    assert_eq!(
        s.delete_group(GroupId::generate(t0()), &[]).await.unwrap(),
        DeleteGroupOutcome::NotFound
    );

    // Grants.
    let grant = EmployeeAccessGrant {
        level: EmployeeAccessLevel::ClusterInfrastructure,
        expires_at: t0() + Duration::hours(1),
    };
    assert!(s
        .set_employee_access_grant(g.id, "c0", grant, &[ev(T::EmployeeAccessGranted)])
        .await
        .unwrap());
    assert!(!s
        .set_employee_access_grant(g.id, "nope", grant, &[])
        .await
        .unwrap());
    let stored = s.get_cluster(g.id, "c0").await.unwrap().unwrap();
    assert_eq!(stored.grant, Some(grant));
    assert!(!stored.grant_expiry_recorded);
    // A use is recorded only against the grant as stored.
    let other = EmployeeAccessGrant {
        level: EmployeeAccessLevel::ClusterDatabaseLogs,
        ..grant
    };
    assert!(!s
        .record_employee_access_use(c.id, other, &ev(T::EmployeeAccessUsed))
        .await
        .unwrap());
    assert!(s
        .record_employee_access_use(c.id, grant, &ev(T::EmployeeAccessUsed))
        .await
        .unwrap());
    // Nothing expired yet.
    assert!(s
        .unrecorded_expired_grants(t0(), 10)
        .await
        .unwrap()
        .is_empty());
    // At the instant of expiry it is expired and unrecorded, once.
    let at = grant.expires_at;
    let expired = s.unrecorded_expired_grants(at, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, c.id);
    assert!(s
        .record_grant_expiry(c.id, at, &[ev(T::EmployeeAccessExpired)])
        .await
        .unwrap());
    assert!(!s
        .record_grant_expiry(c.id, at, &[ev(T::EmployeeAccessExpired)])
        .await
        .unwrap());
    assert!(s
        .unrecorded_expired_grants(at, 10)
        .await
        .unwrap()
        .is_empty());
    // Revoking an expired grant changes nothing.
    assert_eq!(
        s.revoke_employee_access(g.id, "c0", at, &[ev(T::EmployeeAccessRevoked)])
            .await
            .unwrap(),
        RevokeGrantOutcome::NoActiveGrant
    );
    // A new grant replaces the old one; revoking it while active clears it.
    let g2 = EmployeeAccessGrant {
        level: EmployeeAccessLevel::ClusterDatabaseLogs,
        expires_at: at + Duration::hours(1),
    };
    s.set_employee_access_grant(g.id, "c0", g2, &[ev(T::EmployeeAccessGranted)])
        .await
        .unwrap();
    assert!(
        !s.get_cluster(g.id, "c0")
            .await
            .unwrap()
            .unwrap()
            .grant_expiry_recorded
    );
    assert_eq!(
        s.revoke_employee_access(g.id, "c0", at, &[ev(T::EmployeeAccessRevoked)])
            .await
            .unwrap(),
        RevokeGrantOutcome::Revoked
    );
    assert_eq!(
        s.get_cluster(g.id, "c0").await.unwrap().unwrap().grant,
        None
    );
    assert_eq!(
        s.revoke_employee_access(g.id, "nope", at, &[])
            .await
            .unwrap(),
        RevokeGrantOutcome::NotFound
    );
    // A use against a revoked grant is refused.
    assert!(!s
        .record_employee_access_use(c.id, g2, &ev(T::EmployeeAccessUsed))
        .await
        .unwrap());
    assert_eq!(
        group_event_types(s, g.id).await,
        [
            "CLUSTER_CREATED",
            "CLUSTER_UPDATE_SUBMITTED",
            "EMPLOYEE_ACCESS_GRANTED",
            "EMPLOYEE_ACCESS_USED",
            "EMPLOYEE_ACCESS_EXPIRED",
            "EMPLOYEE_ACCESS_GRANTED",
            "EMPLOYEE_ACCESS_REVOKED",
        ]
    );

    // Deleting clusters frees the project.
    assert!(s
        .delete_cluster(g.id, "c0", &[ev(T::ClusterDeleted)])
        .await
        .unwrap());
    assert!(!s.delete_cluster(g.id, "c0", &[]).await.unwrap());
    assert!(s.delete_cluster(g.id, "c1", &[]).await.unwrap());
    assert_eq!(
        s.delete_group(g.id, &[]).await.unwrap(),
        DeleteGroupOutcome::Deleted
    );
}

async fn operators(s: &dyn Store) {
    let op = Operator {
        id: tessera_domain::OperatorId::generate(t0()),
        name: "support-tool".into(),
        secret_hash: vec![7; 32],
        masked: "tss_op_sk_****abcd".into(),
        created_at: t0(),
    };
    s.create_operator(&op, &[]).await.unwrap();
    let again = Operator {
        id: tessera_domain::OperatorId::generate(t0()),
        ..op.clone()
    };
    assert!(matches!(
        s.create_operator(&again, &[]).await,
        Err(StoreError::Conflict("operator_name"))
    ));
    assert_eq!(s.get_operator(op.id).await.unwrap(), Some(op.clone()));
    assert_eq!(s.list_operators().await.unwrap(), vec![op.clone()]);
    assert!(s.delete_operator(op.id, &[]).await.unwrap());
    assert!(!s.delete_operator(op.id, &[]).await.unwrap());
    assert_eq!(s.get_operator(op.id).await.unwrap(), None);
}

/// Federation: settings made once, IdPs of their federation only, an IdP in use stays,
/// role mappings checked on the org's projects, what sign-in reads.
async fn federation(s: &dyn Store) {
    use tessera_domain::federation::*;
    use tessera_domain::{FederationSettingsId, IdentityProviderId, RoleMappingId};
    let o = org("Fed");
    let g = group(o.id, "fp");
    s.create_org(
        NewOrg {
            org: &o,
            group: Some(&g),
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let first = FederationSettingsId::generate(t0());
    let made = s
        .ensure_federation_settings(o.id, first, t0(), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(made.id, first);
    let again = s
        .ensure_federation_settings(o.id, FederationSettingsId::generate(t0()), t0(), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, first, "made once");
    assert!(s
        .ensure_federation_settings(OrgId::generate(t0()), first, t0(), &[])
        .await
        .unwrap()
        .is_none());
    let idp = IdentityProvider {
        id: IdentityProviderId::generate(t0()),
        federation_id: first,
        config: OidcConfig {
            idp_type: IdpType::Workforce,
            display_name: "Okta".into(),
            description: None,
            issuer_uri: "https://idp.example.com".into(),
            client_id: Some("c".into()),
            audience: None,
            authorization_type: Some(AuthorizationType::Group),
            groups_claim: Some("groups".into()),
            user_claim: None,
            requested_scopes: vec!["openid".into()],
            associated_domains: vec![],
        },
        created_at: t0(),
        updated_at: t0(),
    };
    assert!(s.create_identity_provider(&idp, &[]).await.unwrap());
    assert_eq!(
        s.identity_provider(idp.id).await.unwrap(),
        Some(idp.clone())
    );
    assert!(
        s.oidc_workforce_providers().await.unwrap().is_empty(),
        "not connected yet"
    );
    assert_eq!(
        s.put_role_mapping(
            &RoleMapping {
                id: RoleMappingId::generate(t0()),
                org_id: o.id,
                external_group_name: "early".into(),
                role_assignments: vec![RoleAssignment::Org {
                    org_id: o.id,
                    role: OrgRole::Member
                }],
            },
            true,
            &[],
        )
        .await
        .unwrap(),
        PutMapping::NoProvider
    );
    let mut config = s.connected_org_config(o.id).await.unwrap().unwrap();
    config.identity_provider_id = Some(IdentityProviderId::generate(t0()));
    assert!(matches!(
        s.put_connected_org_config(&config, &[]).await.unwrap(),
        PutConfig::UnknownProvider(_)
    ));
    config.identity_provider_id = Some(idp.id);
    config.post_auth_role_grants = vec![OrgRole::Member];
    assert_eq!(
        s.put_connected_org_config(&config, &[]).await.unwrap(),
        PutConfig::Done(true)
    );
    assert_eq!(
        s.put_connected_org_config(&config, &[]).await.unwrap(),
        PutConfig::Done(false)
    );
    assert_eq!(
        s.delete_identity_provider(first, idp.id, &[])
            .await
            .unwrap(),
        DeleteProvider::InUse
    );
    let mapping = RoleMapping {
        id: RoleMappingId::generate(t0()),
        org_id: o.id,
        external_group_name: "dbas".into(),
        role_assignments: vec![
            RoleAssignment::Org {
                org_id: o.id,
                role: OrgRole::ReadOnly,
            },
            RoleAssignment::Group {
                group_id: g.id,
                role: GroupRole::Owner,
            },
        ],
    };
    assert_eq!(
        s.put_role_mapping(&mapping, true, &[]).await.unwrap(),
        PutMapping::Done(true)
    );
    let mut dup = mapping.clone();
    dup.id = RoleMappingId::generate(t0());
    assert_eq!(
        s.put_role_mapping(&dup, true, &[]).await.unwrap(),
        PutMapping::Duplicate
    );
    let mut foreign = mapping.clone();
    foreign.role_assignments.push(RoleAssignment::Group {
        group_id: GroupId::generate(t0()),
        role: GroupRole::ReadOnly,
    });
    assert!(matches!(
        s.put_role_mapping(&foreign, false, &[]).await.unwrap(),
        PutMapping::Invalid(_)
    ));
    assert_eq!(
        s.oidc_workforce_providers().await.unwrap(),
        vec![idp.clone()]
    );
    let connected = s.connected_orgs_of_provider(idp.id).await.unwrap();
    assert_eq!(connected, vec![(config.clone(), vec![mapping.clone()])]);
    let (org_roles, project_roles) =
        roles_from_groups(&connected[0].0, &connected[0].1, &["dbas".into()]);
    assert_eq!(org_roles, vec![OrgRole::ReadOnly, OrgRole::Member]);
    assert_eq!(project_roles, vec![(g.id, GroupRole::Owner)]);
    assert!(s.delete_role_mapping(o.id, mapping.id, &[]).await.unwrap());
    assert!(!s.delete_role_mapping(o.id, mapping.id, &[]).await.unwrap());
    config.identity_provider_id = None;
    config.post_auth_role_grants = vec![];
    assert_eq!(
        s.put_connected_org_config(&config, &[]).await.unwrap(),
        PutConfig::Done(true)
    );
    assert_eq!(
        s.delete_identity_provider(first, idp.id, &[])
            .await
            .unwrap(),
        DeleteProvider::Deleted
    );
    assert!(s.identity_provider(idp.id).await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("contract.db"))
        .await
        .unwrap();
    store.ping().await.unwrap();
    orgs_groups_and_keys(&store).await;
    service_accounts(&store).await;
    api_key_access_lists(&store).await;
    service_account_pages(&store).await;
    meta_swaps(&store).await;
    clusters_and_grants(&store).await;
    operators(&store).await;
    events_only_for_changes(&store).await;
    deep_pages(&store).await;
    federation(&store).await;
    // Durable: a second handle on the same file sees the data.
    store.close().await;
    let again = SqliteStore::open(&dir.path().join("contract.db"))
        .await
        .unwrap();
    assert!(again.meta("bootstrapped_at").await.unwrap().is_some());
    assert!(again.ping().await.is_ok());
}

/// Concurrent writers: read-then-write transactions never fail with `database is locked`, the
/// secret limit holds under the race, and every concurrent revocation (group commit) is
/// committed before its call returns.
async fn concurrent_writes(s: std::sync::Arc<dyn Store>) {
    let o = org("C");
    s.create_org(
        NewOrg {
            org: &o,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let a = account(o.id);
    s.create_service_account(&a, &[]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        let id = a.client_id;
        tasks.push(tokio::spawn(async move {
            let mut sec = secret(24);
            sec.id = SecretId::generate(t0() + Duration::seconds(i));
            s.add_service_account_secret(id, &sec, 2, t0(), &[]).await
        }));
    }
    // 72 revocations of 64 tokens: duplicates may land in the same batch.
    for i in 0..72 {
        let s = s.clone();
        let id = a.client_id;
        tasks.push(tokio::spawn(async move {
            let jti = format!("c-{}", i % 64);
            s.revoke_token(&jti, id, t0() + Duration::hours(1), revoked_event(id, &jti))
                .await
                .map(|()| AddSecretOutcome::Added)
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().unwrap());
    }
    let added = outcomes[..16]
        .iter()
        .filter(|o| **o == AddSecretOutcome::Added)
        .count();
    assert_eq!(added, 1, "{outcomes:?}");
    let stored = s.get_service_account(a.client_id).await.unwrap().unwrap();
    assert_eq!(stored.secrets.len(), 2);
    let live = s.revoked_tokens(t0()).await.unwrap();
    for i in 0..64 {
        assert!(live.iter().any(|(j, _)| *j == format!("c-{i}")), "c-{i}");
    }
}

/// One revocation, one event: many concurrent revocations of one token (and one more after
/// them) record it once and write exactly one `SERVICE_ACCOUNT_TOKEN_REVOKED` event; the
/// tokens revoked once each beside them get one each.
async fn one_revocation_one_event(s: std::sync::Arc<dyn Store>) {
    let o = org("R");
    s.create_org(
        NewOrg {
            org: &o,
            group: None,
            api_key: None,
        },
        &[],
    )
    .await
    .unwrap();
    let a = account(o.id);
    s.create_service_account(&a, &[]).await.unwrap();
    let event = move |jti: &str| events::NewEvent {
        id: tessera_domain::EventId::generate(t0()),
        org_id: Some(o.id),
        ..revoked_event(a.client_id, jti)
    };
    let revoke = |jti: String| {
        let s = s.clone();
        let event = event(&jti);
        tokio::spawn(async move {
            s.revoke_token(&jti, a.client_id, t0() + Duration::hours(1), event)
                .await
        })
    };
    let mut tasks = Vec::new();
    for i in 0..48 {
        tasks.push(revoke("same".to_owned()));
        if i % 4 == 0 {
            tasks.push(revoke(format!("other-{i}")));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    revoke("same".to_owned()).await.unwrap().unwrap();
    let logged = s
        .list_events(&events::EventQuery {
            scope: events::EventScope::Org(o.id),
            types: vec!["SERVICE_ACCOUNT_TOKEN_REVOKED".to_owned()],
            min: None,
            max: None,
            page: Page::ALL,
            include_count: true,
            visible: tessera_store::events::EventVisibility::ALL,
        })
        .await
        .unwrap();
    let mut per_token = std::collections::BTreeMap::<String, usize>::new();
    for e in &logged.items {
        let jti = e
            .target
            .iter()
            .find(|(k, _)| k == "tokenId")
            .map(|(_, v)| v.clone())
            .unwrap();
        *per_token.entry(jti).or_default() += 1;
    }
    assert_eq!(per_token.len(), 13, "{per_token:?}");
    assert!(per_token.values().all(|n| *n == 1), "{per_token:?}");
    assert_eq!(logged.total, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_revocation_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    one_revocation_one_event(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).await.unwrap());
    concurrent_writes(store.clone()).await;
    store.close().await;
    // Acknowledged revocations are on disk.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.revoked_tokens(t0()).await.unwrap().len(), 64);
}

#[tokio::test]
async fn sqlite_api_key_version_moves_on_key_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("v.db")).await.unwrap();
    api_key_version_moves_on_key_writes(&s).await;
}

async fn api_key_version_moves_on_key_writes(s: &dyn Store) {
    let o = org("V");
    let g = group(o.id, "p");
    let k = key(o.id, "vvvvvvvv", vec![OrgRole::Owner]);
    let mut last = s.api_keys_version().unwrap();
    let mut moved = |s: &dyn Store, what: &str| {
        let now = s.api_keys_version().unwrap();
        assert!(now > last, "{what} must move the API-key version");
        last = now;
    };
    s.create_org(
        NewOrg {
            org: &o,
            group: Some(&g),
            api_key: Some(&k),
        },
        &[],
    )
    .await
    .unwrap();
    moved(s, "create_org");
    s.update_api_key(k.id, Some("d2"), Some(&[OrgRole::Member]), None, &[])
        .await
        .unwrap();
    moved(s, "update_api_key");
    s.set_api_key_group_roles(k.id, g.id, &[GroupRole::Owner], &[])
        .await
        .unwrap();
    moved(s, "set_api_key_group_roles");
    s.remove_api_key_from_group(k.id, g.id, &[]).await.unwrap();
    moved(s, "remove_api_key_from_group");
    let g2 = group(o.id, "q");
    s.create_group(&g2, Some(k.id), &[]).await.unwrap();
    moved(s, "create_group");
    s.delete_group(g2.id, &[]).await.unwrap();
    moved(s, "delete_group");
    let entry = access_entry("127.0.0.2");
    s.add_api_key_access_entries(k.id, &[(entry, key_event(k.id, "e"))])
        .await
        .unwrap();
    moved(s, "add_api_key_access_entries");
    s.delete_api_key_access_entry(k.id, "127.0.0.2/32", None, &[])
        .await
        .unwrap();
    moved(s, "delete_api_key_access_entry");
    s.delete_api_key(k.id, &[]).await.unwrap();
    moved(s, "delete_api_key");
    s.delete_group(g.id, &[]).await.unwrap();
    moved(s, "delete_group");
    s.delete_org(o.id, &[]).await.unwrap();
    moved(s, "delete_org");
}

/// The same contract on PostgreSQL.
mod postgres {
    use super::*;
    use std::sync::Arc;
    use tessera_store::postgres::test_support::{admin_url, ScratchDatabase};

    /// A fresh database, or `None` when no PostgreSQL server is configured (said on stderr).
    async fn scratch(test: &str) -> Option<ScratchDatabase> {
        let admin = admin_url(test).unwrap_or_else(|e| panic!("{e}"))?;
        let unique = tessera_domain::ObjectId::generate(t0()).to_hex();
        Some(ScratchDatabase::create(&admin, &unique).await.unwrap())
    }

    #[tokio::test]
    async fn pg_meets_the_contract() {
        let Some(db) = scratch("pg_meets_the_contract").await else {
            return;
        };
        let store = PgStore::open(&db.url).await.unwrap();
        store.ping().await.unwrap();
        orgs_groups_and_keys(&store).await;
        service_accounts(&store).await;
        api_key_access_lists(&store).await;
        service_account_pages(&store).await;
        meta_swaps(&store).await;
        clusters_and_grants(&store).await;
        operators(&store).await;
        events_only_for_changes(&store).await;
        deep_pages(&store).await;
        federation(&store).await;
        store.close().await;
        // Committed: a second connection pool sees the data.
        let again = PgStore::open(&db.url).await.unwrap();
        assert!(again.meta("bootstrapped_at").await.unwrap().is_some());
        assert!(again.ping().await.is_ok());
        again.close().await;
        db.drop_database().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_one_revocation_one_event() {
        let Some(db) = scratch("pg_one_revocation_one_event").await else {
            return;
        };
        let store = Arc::new(PgStore::open(&db.url).await.unwrap());
        one_revocation_one_event(store.clone()).await;
        store.close().await;
        db.drop_database().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_concurrent_writers() {
        let Some(db) = scratch("pg_concurrent_writers").await else {
            return;
        };
        let store = Arc::new(PgStore::open(&db.url).await.unwrap());
        concurrent_writes(store.clone()).await;
        store.close().await;
        let again = PgStore::open(&db.url).await.unwrap();
        assert_eq!(again.revoked_tokens(t0()).await.unwrap().len(), 64);
        again.close().await;
        db.drop_database().await.unwrap();
    }

    /// Two stores on one database (two nodes): the secret limit holds across them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_secret_limit_holds_across_two_pools() {
        let Some(db) = scratch("pg_secret_limit_holds_across_two_pools").await else {
            return;
        };
        let a = Arc::new(PgStore::open(&db.url).await.unwrap());
        let b = Arc::new(PgStore::open(&db.url).await.unwrap());
        let o = org("Two");
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: None,
            },
            &[],
        )
        .await
        .unwrap();
        let mut acc = account(o.id);
        acc.secrets.clear();
        a.create_service_account(&acc, &[]).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = acc.client_id;
            tasks.push(tokio::spawn(async move {
                let mut sec = secret(24);
                sec.id = SecretId::generate(t0() + Duration::seconds(i));
                s.add_service_account_secret(id, &sec, 2, t0(), &[]).await
            }));
        }
        let mut added = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() == AddSecretOutcome::Added {
                added += 1;
            }
        }
        assert_eq!(added, 2);
        let stored = b.get_service_account(acc.client_id).await.unwrap().unwrap();
        assert_eq!(stored.secrets.len(), 2);
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// Two stores on one database: a project's deletion and a cluster's creation in it, at
    /// once from the two pools, are ordered by the project's row lock: either the project is
    /// deleted and the creation finds no project, or the cluster is created and the deletion
    /// is refused; never a backend error (the clusters' foreign key is never what decides).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pg_project_deletion_and_cluster_creation_race() {
        let Some(db) = scratch("pg_project_deletion_and_cluster_creation_race").await else {
            return;
        };
        let a = Arc::new(PgStore::open(&db.url).await.unwrap());
        let b = Arc::new(PgStore::open(&db.url).await.unwrap());
        let o = org("Race");
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: None,
            },
            &[],
        )
        .await
        .unwrap();
        let (mut deleted, mut created) = (0, 0);
        for i in 0..24 {
            let g = group(o.id, &format!("p{i}"));
            a.create_group(&g, None, &[]).await.unwrap();
            let c = cluster(o.id, g.id, "c");
            let (da, cb) = (a.clone(), b.clone());
            let del = tokio::spawn(async move { da.delete_group(g.id, &[]).await });
            let make = tokio::spawn(async move { cb.create_cluster(&c, &[]).await });
            let (del, make) = (del.await.unwrap(), make.await.unwrap());
            let won = match (del.unwrap(), make.unwrap()) {
                (DeleteGroupOutcome::Deleted, false) => false,
                (DeleteGroupOutcome::HasClusters, true) => true,
                other => panic!("round {i}: inconsistent outcome {other:?}"),
            };
            let left = a
                .list_clusters(
                    g.id,
                    Page {
                        offset: 0,
                        limit: 10,
                    },
                )
                .await
                .unwrap();
            assert_eq!(left.total, u64::from(won), "round {i}");
            assert_eq!(a.get_group(g.id).await.unwrap().is_some(), won, "round {i}");
            if won {
                created += 1;
            } else {
                deleted += 1;
            }
        }
        assert_eq!(deleted + created, 24);
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// The next change that is not a heartbeat (`Synced`).
    async fn next(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
        // A bound against a hang (changes take milliseconds), not a timing assertion.
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            loop {
                match rx.recv().await.unwrap() {
                    Change::Synced(_) => continue,
                    change => return change,
                }
            }
        })
        .await
        .expect("a change within 60 s")
    }

    /// The next change that is not a heartbeat, nudging the feed until one comes (a poll that
    /// failed on a busy machine waits for the next tick, an hour in the test that uses this).
    async fn nudged(b: &PgStore, rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
        for _ in 0..600 {
            b.nudge_feed();
            let wait = std::time::Duration::from_millis(100);
            while let Ok(got) = tokio::time::timeout(wait, rx.recv()).await {
                match got.unwrap() {
                    Change::Synced(_) => continue,
                    change => return change,
                }
            }
        }
        panic!("no change within 60 s of nudging");
    }

    /// Changes already received that are not heartbeats.
    fn pending(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Vec<Change> {
        let mut out = Vec::new();
        while let Ok(change) = rx.try_recv() {
            if !matches!(change, Change::Synced(_)) {
                out.push(change);
            }
        }
        out
    }

    /// What one node writes reaches another node's handle as a `Change` (the change log), and
    /// API-key writes move the other handle's API-key version; a handle skips its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_changes_reach_the_other_node() {
        let Some(db) = scratch("pg_changes_reach_the_other_node").await else {
            return;
        };
        let a = PgStore::open(&db.url).await.unwrap();
        let b = PgStore::open(&db.url).await.unwrap();
        let mut at_a = a.changes().unwrap();
        let mut at_b = b.changes().unwrap();
        let o = org("N");
        let k = key(o.id, "nnnnnnnn", vec![OrgRole::Owner]);
        let before = b.api_keys_version().unwrap();
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: Some(&k),
            },
            &[],
        )
        .await
        .unwrap();
        assert_eq!(next(&mut at_b).await, Change::ApiKeys);
        assert!(b.api_keys_version().unwrap() > before);
        let acc = account(o.id);
        a.create_service_account(&acc, &[]).await.unwrap();
        assert_eq!(next(&mut at_b).await, Change::Account(acc.client_id));
        let exp = t0() + Duration::hours(1);
        a.revoke_token(
            "n-1",
            acc.client_id,
            exp,
            revoked_event(acc.client_id, "n-1"),
        )
        .await
        .unwrap();
        assert_eq!(
            next(&mut at_b).await,
            Change::Revoked {
                jti: "n-1".into(),
                expires_at: exp
            }
        );
        // B's own write reaches A, not B.
        b.delete_service_account(acc.client_id, &[]).await.unwrap();
        assert_eq!(next(&mut at_a).await, Change::Account(acc.client_id));
        // A rolled-back change notifies nobody; a marker written after it arrives first.
        assert!(!a.delete_service_account(acc.client_id, &[]).await.unwrap());
        let marker = account(o.id);
        a.create_service_account(&marker, &[]).await.unwrap();
        assert_eq!(next(&mut at_b).await, Change::Account(marker.client_id));
        // B's own write was not heard by B.
        assert_eq!(
            pending(&mut at_b),
            Vec::<Change>::new(),
            "a handle does not hear itself"
        );
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// Cutting every connection a node holds (its feed reader, its wake-up listener, its pool)
    /// loses nothing: what another node wrote meanwhile is read from the change log by sequence
    /// number once the reader reconnects, and key writes still move the API-key version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_a_cut_feed_loses_nothing() {
        let Some(db) = scratch("pg_a_cut_feed_loses_nothing").await else {
            return;
        };
        let a = PgStore::open(&db.url).await.unwrap();
        let b = PgStore::open(&db.url).await.unwrap();
        let mut at_b = b.changes().unwrap();
        let before = b.api_keys_version().unwrap();
        let o = org("R");
        let k = key(o.id, "rrrrrrrr", vec![OrgRole::Owner]);
        {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
            // Every other session on this database: A's and B's pools, readers and listeners.
            let cut: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert!(
                cut.len() >= 2 && cut.iter().all(|c| *c),
                "sessions cut: {cut:?}"
            );
            admin.close().await.unwrap();
        }
        // Written while B's reader is away (A's pool reconnects on use).
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: Some(&k),
            },
            &[],
        )
        .await
        .unwrap();
        let acc = account(o.id);
        a.create_service_account(&acc, &[]).await.unwrap();
        assert_eq!(next(&mut at_b).await, Change::ApiKeys);
        assert_eq!(next(&mut at_b).await, Change::Account(acc.client_id));
        assert!(b.api_keys_version().unwrap() > before);
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// A change whose transaction took its sequence number before a node started, and commits
    /// after a later change was committed (so below the log's head when the node read it), is
    /// still read: the node starts with the numbers missing below the head as gaps.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_a_change_in_flight_when_a_node_starts_is_read() {
        use sqlx::Connection;
        let Some(db) = scratch("pg_a_change_in_flight_when_a_node_starts_is_read").await else {
            return;
        };
        let a = PgStore::open(&db.url).await.unwrap();
        let o = org("F");
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: None,
            },
            &[],
        )
        .await
        .unwrap();
        let acc = account(o.id);
        // Another node's write, in flight: its change row takes a number and waits.
        let mut writer = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
        sqlx::query(
            "INSERT INTO change_log (node, kind, subject, created_at) \
             VALUES ('another', 'sa', $1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
        )
        .bind(acc.client_id.hex())
        .execute(&mut writer)
        .await
        .unwrap();
        // A later change commits above it, and then B starts.
        let marker = account(o.id);
        a.create_service_account(&marker, &[]).await.unwrap();
        let b = PgStore::open(&db.url).await.unwrap();
        let mut at_b = b.changes().unwrap();
        sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
        a.create_service_account(&acc, &[]).await.unwrap();
        // B hears of the in-flight change (and of the later account write).
        let mut heard = Vec::new();
        while !heard.contains(&Change::Account(acc.client_id)) || heard.len() < 2 {
            heard.push(next(&mut at_b).await);
        }
        assert_eq!(
            heard,
            vec![
                Change::Account(acc.client_id),
                Change::Account(acc.client_id)
            ],
            "the in-flight row (a gap at start), then A's write"
        );
        writer.close().await.unwrap();
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// A node that comes back to find rows it never read purged (it was away past the log's
    /// retention, or suspended) re-reads everything instead of skipping them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_rows_purged_before_a_node_read_them_mean_everything() {
        use sqlx::Connection;
        let Some(db) = scratch("pg_rows_purged_before_a_node_read_them_mean_everything").await
        else {
            return;
        };
        // B polls only when nudged (its heartbeat is an hour), and raw rows wake nobody.
        let b = PgStore::open_with(
            &db.url,
            tessera_store::postgres::feed::FeedSettings {
                poll_every: std::time::Duration::from_secs(3600),
                poll_timeout: std::time::Duration::from_secs(30),
            },
        )
        .await
        .unwrap();
        let mut at_b = b.changes().unwrap();
        let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let o = org("P");
        let ids: Vec<ClientId> = (0..4).map(|_| account(o.id).client_id).collect();
        let log = |id: ClientId| {
            sqlx::query(
                "INSERT INTO change_log (node, kind, subject, created_at) \
                 VALUES ('another', 'sa', $1, 0)",
            )
            .bind(id.hex())
        };
        // B reads the first row (in a poll after this subscription).
        log(ids[0]).execute(&mut other).await.unwrap();
        assert_eq!(nudged(&b, &mut at_b).await, Change::Account(ids[0]));
        // Written and purged in one transaction, so no poll of B (a nudge above may still be
        // pending) can read the second and third rows before the purge takes them.
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        for id in &ids[1..] {
            log(*id).execute(&mut other).await.unwrap();
        }
        // The purge takes the first three rows before B reads the second and the third.
        let third: i64 =
            sqlx::query_scalar("SELECT seq FROM change_log ORDER BY seq OFFSET 2 LIMIT 1")
                .fetch_one(&mut other)
                .await
                .unwrap();
        sqlx::query("DELETE FROM change_log WHERE seq <= $1")
            .bind(third)
            .execute(&mut other)
            .await
            .unwrap();
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        let mut heard = Vec::new();
        while !heard.contains(&Change::Everything) {
            heard.push(nudged(&b, &mut at_b).await);
        }
        assert_eq!(heard, vec![Change::Account(ids[3]), Change::Everything]);
        other.close().await.unwrap();
        b.close().await;
        db.drop_database().await.unwrap();
    }

    /// Failed authentications flushed by two nodes into the same (principal, address,
    /// minute) aggregate: one event whose count is the sum, counted once in the totals.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pg_two_nodes_add_to_one_failure_aggregate() {
        let Some(db) = scratch("pg_two_nodes_add_to_one_failure_aggregate").await else {
            return;
        };
        let a = Arc::new(PgStore::open(&db.url).await.unwrap());
        let b = Arc::new(PgStore::open(&db.url).await.unwrap());
        let o = org("F");
        a.create_org(
            NewOrg {
                org: &o,
                group: None,
                api_key: None,
            },
            &[],
        )
        .await
        .unwrap();
        let failure = |count| events::AuthFailure {
            event_type: tessera_domain::EventType::ApiKeyAuthenticationFailed,
            org_id: Some(o.id),
            principal: "abcdefgh".into(),
            actor: events::Actor::Anonymous,
            remote_address: Some("192.0.2.7".parse().unwrap()),
            minute: t0(),
            count,
        };
        let mut tasks = Vec::new();
        for i in 0..20u64 {
            let s: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let f = failure(i + 1);
            tasks.push(tokio::spawn(
                async move { s.record_auth_failures(&[f]).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let listed = a
            .list_events(&events::EventQuery {
                scope: events::EventScope::Org(o.id),
                types: vec![],
                min: None,
                max: None,
                page: Page::ALL,
                include_count: true,
                visible: tessera_store::events::EventVisibility::ALL,
            })
            .await
            .unwrap();
        assert_eq!(listed.total, 1);
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].count, (1..=20).sum::<u64>());
        a.close().await;
        b.close().await;
        db.drop_database().await.unwrap();
    }

    #[tokio::test]
    async fn pg_api_key_version_moves_on_key_writes() {
        let Some(db) = scratch("pg_api_key_version_moves_on_key_writes").await else {
            return;
        };
        let s = PgStore::open(&db.url).await.unwrap();
        api_key_version_moves_on_key_writes(&s).await;
        s.close().await;
        db.drop_database().await.unwrap();
    }
}
