//! Issue 7 items 0 and 1: every change writes its event in the change's own transaction.
//! A store failure while writing the event fails the change, and a failing change writes no
//! event (faults injected with SQLite triggers in the real database file). Failed
//! authentications are aggregated per (principal, address, minute).

use reqwest::Method;
use serde_json::{json, Value};
use tessera_domain::{GroupId, OrgId};
use tessera_store::events::{EventQuery, EventRecord, EventScope};
use tessera_store::Page;

use crate::harness::{basic, Key, TestServer};

/// Every event of the test org, its own and its projects' (its log holds only its own),
/// newest first.
async fn org_events(s: &TestServer) -> Vec<EventRecord> {
    let org = OrgId::parse(s.org()).unwrap();
    let mut all = s
        .running
        .state
        .store
        .export_events(
            Some(org),
            tessera_store::events::ExportCursor {
                created: chrono::DateTime::<chrono::Utc>::MIN_UTC,
                id: None,
            },
            100_000,
        )
        .await
        .unwrap();
    all.reverse();
    all
}

/// The org's own log (no project's events).
async fn org_log(s: &TestServer) -> Vec<EventRecord> {
    let org = OrgId::parse(s.org()).unwrap();
    s.running
        .state
        .store
        .list_events(&EventQuery {
            scope: EventScope::Org(org),
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
}

fn types(events: &[EventRecord]) -> Vec<String> {
    events.iter().map(|e| e.event_type.clone()).collect()
}

/// Makes every insert into `table` fail, from a second connection (as an operator would):
/// a SQLite trigger that raises, or its PL/pgSQL equivalent on PostgreSQL.
async fn fail_inserts(s: &TestServer, trigger: &str, table: &str) {
    s.exec_sql(
        &format!(
            "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected'); END"
        ),
        &format!(
            "CREATE OR REPLACE FUNCTION tessera_test_injected() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$; \
             CREATE TRIGGER {trigger} BEFORE INSERT ON {table} FOR EACH ROW \
             EXECUTE FUNCTION tessera_test_injected();"
        ),
    )
    .await;
}

async fn drop_trigger(s: &TestServer, trigger: &str, table: &str) {
    s.exec_sql(
        &format!("DROP TRIGGER {trigger}"),
        &format!("DROP TRIGGER {trigger} ON {table}"),
    )
    .await;
}

/// Objects for every kind of change to act on, made up front.
struct Fixture {
    project: String,
    spare_project: String,
    assigned_key: String,
    free_key: String,
    client: String,
    spare_client: String,
    secret_id: String,
}

async fn fixture(s: &TestServer, o: &Key) -> Fixture {
    let org = s.org().to_owned();
    let project = s.project().to_owned();
    let spare_project = s
        .call(
            o,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": "spare", "orgId": org})),
        )
        .await
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let r = s
            .call(
                o,
                Method::POST,
                &format!("/api/atlas/v2/orgs/{org}/apiKeys"),
                Some(json!({"desc": "k", "roles": ["ORG_MEMBER"]})),
            )
            .await;
        keys.push(r.json["id"].as_str().unwrap().to_owned());
    }
    s.call(
        o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{project}/apiKeys/{}", keys[0]),
        Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
    )
    .await
    .expect(204);
    let mut clients = Vec::new();
    for _ in 0..2 {
        let r = s
            .v2024(o, Method::POST, &s.sa_path(""), Some(json!({"name": "E", "description": "E", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24})))
            .await;
        clients.push(r.json["clientId"].as_str().unwrap().to_owned());
    }
    let client = clients[0].clone();
    let secret_id = s
        .v2024(
            o,
            Method::POST,
            &s.sa_path(&format!("/{client}/secrets")),
            Some(json!({"secretExpiresAfterHours": 24})),
        )
        .await
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.v2024(
        o,
        Method::POST,
        &s.sa_path(&format!("/{client}/accessList")),
        Some(json!([{"cidrBlock": "192.0.2.0/24"}])),
    )
    .await
    .expect(200);
    s.v2024(
        o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{project}/serviceAccounts/{client}:invite"),
        Some(json!({"roles": ["GROUP_READ_ONLY"]})),
    )
    .await
    .expect(200);
    Fixture {
        project,
        spare_project,
        assigned_key: keys[0].clone(),
        free_key: keys[1].clone(),
        client,
        spare_client: clients[1].clone(),
        secret_id,
    }
}

/// Every kind of change the API makes, each once and each valid on its own against the
/// fixture; returns what each request answered.
async fn make_every_change(s: &TestServer, o: &Key, f: &Fixture) -> Vec<(&'static str, u16)> {
    let org = s.org().to_owned();
    let (project, client) = (&f.project, &f.client);
    let (akey, fkey) = (&f.assigned_key, &f.free_key);
    let sa = |rest: &str| s.sa_path(rest);
    let v2 = |rest: String| format!("/api/atlas/v2{rest}");
    let calls: Vec<(&'static str, bool, Method, String, Option<Value>)> = vec![
        (
            "rename org",
            false,
            Method::PATCH,
            v2(format!("/orgs/{org}")),
            Some(json!({"name": "renamed-org"})),
        ),
        (
            "create project",
            false,
            Method::POST,
            v2("/groups".into()),
            Some(json!({"name": "events-p", "orgId": org})),
        ),
        (
            "rename project",
            false,
            Method::PATCH,
            v2(format!("/groups/{project}")),
            Some(json!({"name": "renamed-p"})),
        ),
        (
            "create key",
            false,
            Method::POST,
            v2(format!("/orgs/{org}/apiKeys")),
            Some(json!({"desc": "k", "roles": ["ORG_MEMBER"]})),
        ),
        (
            "update key",
            false,
            Method::PATCH,
            v2(format!("/orgs/{org}/apiKeys/{fkey}")),
            Some(json!({"desc": "k2", "roles": ["ORG_READ_ONLY"]})),
        ),
        (
            "assign key",
            false,
            Method::POST,
            v2(format!("/groups/{project}/apiKeys/{fkey}")),
            Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
        ),
        (
            "unassign key",
            false,
            Method::DELETE,
            v2(format!("/groups/{project}/apiKeys/{akey}")),
            None,
        ),
        (
            "create service account",
            true,
            Method::POST,
            sa(""),
            Some(
                json!({"name": "E", "description": "E", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24}),
            ),
        ),
        (
            "update service account",
            true,
            Method::PATCH,
            sa(&format!("/{client}")),
            Some(json!({"name": "E2", "roles": ["ORG_READ_ONLY"]})),
        ),
        (
            "add secret",
            true,
            Method::POST,
            sa(&format!("/{}/secrets", f.spare_client)),
            Some(json!({"secretExpiresAfterHours": 24})),
        ),
        (
            "delete secret",
            true,
            Method::DELETE,
            sa(&format!("/{client}/secrets/{}", f.secret_id)),
            None,
        ),
        (
            "add access entry",
            true,
            Method::POST,
            sa(&format!("/{client}/accessList")),
            Some(json!([{"cidrBlock": "198.51.100.0/24"}])),
        ),
        (
            "delete access entry",
            true,
            Method::DELETE,
            sa(&format!("/{client}/accessList/192.0.2.0%2F24")),
            None,
        ),
        (
            "assign service account",
            true,
            Method::POST,
            v2(format!(
                "/groups/{project}/serviceAccounts/{}:invite",
                f.spare_client
            )),
            Some(json!({"roles": ["GROUP_READ_ONLY"]})),
        ),
        (
            "unassign service account",
            true,
            Method::DELETE,
            v2(format!("/groups/{project}/serviceAccounts/{client}")),
            None,
        ),
        (
            "delete key",
            false,
            Method::DELETE,
            v2(format!("/orgs/{org}/apiKeys/{akey}")),
            None,
        ),
        (
            "delete service account",
            true,
            Method::DELETE,
            sa(&format!("/{}", f.spare_client)),
            None,
        ),
        (
            "delete project",
            false,
            Method::DELETE,
            v2(format!("/groups/{}", f.spare_project)),
            None,
        ),
    ];
    let mut answers = Vec::new();
    for (what, v2024, method, path, body) in calls {
        let r = if v2024 {
            s.v2024(o, method, &path, body).await
        } else {
            s.call(o, method, &path, body).await
        };
        answers.push((what, r.status.as_u16()));
    }
    answers
}

#[tokio::test]
async fn every_change_writes_its_event() {
    let s = TestServer::start().await;
    let o = s.owner();
    let boot = types(&org_events(&s).await);
    for t in ["ORG_CREATED", "GROUP_CREATED", "API_KEY_CREATED"] {
        assert!(
            boot.contains(&t.to_owned()),
            "bootstrap wrote {t}: {boot:?}"
        );
    }
    let f = fixture(&s, &o).await;
    let answers = make_every_change(&s, &o, &f).await;
    for (what, status) in &answers {
        assert!((200..300).contains(status), "{what}: {status}");
    }
    // A token revocation too.
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let token = s.token(&client).await;
    s.revoke(&client, &token).await.expect(200);

    let events = org_events(&s).await;
    let got = types(&events);
    for t in [
        "ORG_RENAMED",
        "GROUP_CREATED",
        "GROUP_RENAMED",
        "GROUP_DELETED",
        "API_KEY_CREATED",
        "API_KEY_DESCRIPTION_CHANGED",
        "API_KEY_ROLES_CHANGED",
        "API_KEY_ADDED_TO_GROUP",
        "API_KEY_REMOVED_FROM_GROUP",
        "API_KEY_DELETED",
        "SERVICE_ACCOUNT_CREATED",
        "SERVICE_ACCOUNT_DETAILS_CHANGED",
        "SERVICE_ACCOUNT_ROLES_CHANGED",
        "SERVICE_ACCOUNT_SECRET_ADDED",
        "SERVICE_ACCOUNT_SECRET_DELETED",
        "SERVICE_ACCOUNT_ACCESS_LIST_ENTRY_ADDED",
        "SERVICE_ACCOUNT_ACCESS_LIST_ENTRY_DELETED",
        "SERVICE_ACCOUNT_ADDED_TO_GROUP",
        "SERVICE_ACCOUNT_REMOVED_FROM_GROUP",
        "SERVICE_ACCOUNT_DELETED",
        "SERVICE_ACCOUNT_TOKEN_REVOKED",
    ] {
        assert!(got.contains(&t.to_owned()), "no {t} in {got:?}");
    }
    // Newest first; who, from where, about what.
    assert!(events
        .windows(2)
        .all(|w| (w[0].created, w[0].id) >= (w[1].created, w[1].id)));
    let renamed = events
        .iter()
        .find(|e| e.event_type == "ORG_RENAMED")
        .unwrap();
    assert_eq!(renamed.remote_address.as_deref(), Some("127.0.0.1"));
    assert!(matches!(
        &renamed.actor,
        tessera_store::events::Actor::ApiKey { public_key, .. } if *public_key == o.public
    ));
    let revoked = events
        .iter()
        .find(|e| e.event_type == "SERVICE_ACCOUNT_TOKEN_REVOKED")
        .unwrap();
    assert_eq!(
        revoked.actor,
        tessera_store::events::Actor::ServiceAccount(
            tessera_domain::ClientId::parse(&client.id).unwrap()
        )
    );
    // Project events carry their project and are in its log, not the org's.
    let unassigned = events
        .iter()
        .find(|e| e.event_type == "SERVICE_ACCOUNT_REMOVED_FROM_GROUP")
        .unwrap();
    assert_eq!(
        unassigned.group_id,
        Some(GroupId::parse(s.project()).unwrap())
    );
    let own = org_log(&s).await;
    assert!(own.iter().all(|e| e.group_id.is_none()));
    assert!(types(&own).contains(&"ORG_RENAMED".to_owned()));
    assert!(!types(&own).contains(&"SERVICE_ACCOUNT_REMOVED_FROM_GROUP".to_owned()));
    // Requests that change nothing write nothing.
    let before = s.snapshot().await;
    s.call(
        &o,
        Method::DELETE,
        &format!(
            "/api/atlas/v2/orgs/{}/apiKeys/5f0000000000000000000000",
            s.org()
        ),
        None,
    )
    .await
    .expect(404);
    s.call(
        &o,
        Method::PATCH,
        &format!("/api/atlas/v2/orgs/{}", s.org()),
        Some(json!({"name": ""})),
    )
    .await
    .expect(400);
    assert_eq!(s.snapshot().await, before);
}

/// A change and its event commit together or not at all: with inserts into `events` made to
/// fail, every change answers 500 and the database is exactly as before.
#[tokio::test]
async fn a_failing_event_write_fails_the_change() {
    let s = TestServer::start().await;
    let o = s.owner();
    let f = fixture(&s, &o).await;
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let token = s.token(&client).await;
    let before = s.snapshot().await;
    fail_inserts(&s, "fail_events", "events").await;
    let answers = make_every_change(&s, &o, &f).await;
    for (what, status) in &answers {
        assert_eq!(*status, 500, "{what}");
    }
    // A revocation whose event cannot be written is not acknowledged, and the token lives on.
    let r = s.revoke(&client, &token).await;
    r.expect(500);
    assert_eq!(r.json["error"], "server_error");
    s.bearer(&token, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(200);
    assert_eq!(s.snapshot().await, before, "no change without its event");
    // The registry did not take the failed writes either.
    let r = s.v2024(&o, Method::GET, &s.sa_path(""), None).await;
    assert_eq!(r.json["totalCount"], json!(3), "{}", r.text);

    // And an event never stands without its change: a change that fails writes no event.
    drop_trigger(&s, "fail_events", "events").await;
    fail_inserts(&s, "fail_keys", "api_keys").await;
    let keys_path = format!("/api/atlas/v2/orgs/{}/apiKeys", s.org());
    let body = json!({"desc": "after", "roles": ["ORG_MEMBER"]});
    let create_key = || s.call(&o, Method::POST, &keys_path, Some(body.clone()));
    create_key().await.expect_error(500, "UNEXPECTED_ERROR");
    assert_eq!(s.snapshot().await, before);
    drop_trigger(&s, "fail_keys", "api_keys").await;
    create_key().await.expect(200);
    assert_ne!(s.snapshot().await, before);
}

/// Failed authentications become events, one per (principal, address, minute) with a count,
/// so a flood of bad credentials grows a counter, not the table.
#[tokio::test]
async fn failed_authentications_are_aggregated_events() {
    let s = TestServer::start().await;
    let o = s.owner();
    let wrong = Key {
        public: o.public.clone(),
        private: "00000000-0000-0000-0000-000000000000".into(),
    };
    for _ in 0..5 {
        s.call(&wrong, Method::GET, "/api/atlas/v2/orgs", None)
            .await
            .expect(401);
    }
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    for _ in 0..3 {
        s.token_request(
            Some(&basic(
                &client.id,
                "mdb_sa_sk_wrongwrongwrongwrongwrongwrongwrongwrong",
            )),
            "grant_type=client_credentials",
        )
        .await
        .expect(401);
    }
    for _ in 0..4 {
        s.bearer("not-a-token", Method::GET, "/api/atlas/v2/orgs", None)
            .await
            .expect(401);
    }
    let state = &s.running.state;
    state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
        .unwrap();
    let events = org_events(&s).await;
    let digest: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "API_KEY_AUTHENTICATION_FAILED")
        .collect();
    assert_eq!(digest.len(), 1, "{events:?}");
    assert_eq!(digest[0].count, 5);
    assert_eq!(digest[0].remote_address.as_deref(), Some("127.0.0.1"));
    assert!(digest[0]
        .target
        .contains(&("principal".into(), o.public.clone())));
    let basic_failures: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "SERVICE_ACCOUNT_AUTHENTICATION_FAILED")
        .collect();
    assert_eq!(basic_failures.len(), 1, "{events:?}");
    assert_eq!(basic_failures[0].count, 3);
    assert!(basic_failures[0]
        .target
        .contains(&("principal".into(), client.id.clone())));
    // Another round in the same minute adds to the same events.
    s.call(&wrong, Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(401);
    state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
        .unwrap();
    let again = org_events(&s).await;
    let digest: Vec<_> = again
        .iter()
        .filter(|e| e.event_type == "API_KEY_AUTHENTICATION_FAILED")
        .collect();
    assert_eq!((digest.len(), digest[0].count), (1, 6));
    // Bearer failures name no org (the token is not trusted): they are stored, org-less.
    let dump = s.snapshot().await;
    assert!(dump.contains("'SERVICE_ACCOUNT_AUTHENTICATION_FAILED'"));
    // No password, secret or token in any of it.
    for needle in [
        wrong.private.as_str(),
        "wrongwrong",
        "not-a-token",
        o.private.as_str(),
    ] {
        assert!(!dump.contains(needle), "{needle} stored");
    }
    let _: Value = Value::Null;
}
