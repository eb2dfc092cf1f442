//! A newer binary upgrades a database made by an earlier release's migrations without losing
//! data. `tests/fixtures/` keeps such databases, made by migrations 0001–0003 (see
//! `tests/fixtures/README.md`): a SQLite file and a PostgreSQL dump. Each test copies (or
//! restores) its fixture, opens it with today's store, which applies every newer migration,
//! and reads every row back through the `Store` trait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use tessera_domain::access::AccessEntry;
use tessera_domain::{
    ApiKeyId, ClientId, EventId, EventType, GroupId, GroupRole, ObjectId, OrgId, OrgRole, SecretId,
};
use tessera_store::events::{Actor, EventQuery, EventScope, ExportCursor, NewEvent};
use tessera_store::*;

const SQLITE_FIXTURE: &str = "tests/fixtures/release-0003.sqlite";
const POSTGRES_FIXTURE: &str = "tests/fixtures/release-0003.postgres.sql";

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn org() -> Org {
    Org {
        id: OrgId::parse("6955b90000000000000000a1").unwrap(),
        name: "Fixture Org".into(),
        skip_default_alerts: true,
        created_at: t0(),
    }
}

fn group() -> Group {
    Group {
        id: GroupId::parse("6955b90000000000000000b1").unwrap(),
        org_id: org().id,
        name: "Fixture Project".into(),
        with_default_alerts: false,
        region_usage_restrictions: None,
        tags: vec![Tag {
            key: "env".into(),
            value: "fixture".into(),
        }],
        created_at: t0() + Duration::seconds(1),
    }
}

fn entry(s: &str, uses: u64) -> AccessListEntry {
    AccessListEntry {
        entry: AccessEntry::parse_any(s).unwrap(),
        created_at: t0() + Duration::seconds(2),
        last_used_at: (uses > 0).then(|| t0() + Duration::seconds(3)),
        last_used_address: (uses > 0).then(|| "192.0.2.10".to_owned()),
        request_count: uses,
    }
}

fn api_key() -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::parse("6955b90000000000000000c1").unwrap(),
        org_id: org().id,
        public_key: "fixturek".into(),
        description: "fixture key".into(),
        private_key_masked: "********-****-****-****-****abcdef01".into(),
        ha1_md5_sealed: vec![1, 2, 3, 4, 5],
        ha1_sha256_sealed: vec![6, 7, 8, 9, 10],
        org_roles: vec![OrgRole::Owner],
        group_roles: vec![(group().id, vec![GroupRole::Owner, GroupRole::ReadOnly])],
        created_at: t0() + Duration::seconds(2),
        access_list: vec![entry("192.0.2.0/24", 0)],
    }
}

fn account() -> ServiceAccount {
    ServiceAccount {
        client_id: ClientId::parse_hex("6955b90000000000000000d1").unwrap(),
        org_id: org().id,
        name: "fixture-sa".into(),
        description: "fixture service account".into(),
        org_roles: vec![OrgRole::Member],
        group_roles: vec![(group().id, vec![GroupRole::ReadOnly])],
        created_at: t0() + Duration::seconds(3),
        secrets: vec![SaSecret {
            id: SecretId::parse("6955b90000000000000000e1").unwrap(),
            hash: vec![0xab; 32],
            masked: "mdb_sa_sk_****wxyz".into(),
            created_at: t0() + Duration::seconds(3),
            expires_at: t0() + Duration::hours(24),
            last_used_at: Some(t0() + Duration::seconds(30)),
        }],
        access_list: vec![entry("198.51.100.7", 4)],
    }
}

fn event() -> NewEvent {
    NewEvent {
        id: EventId::parse("6955b90000000000000000f1").unwrap(),
        created: t0() + Duration::seconds(3),
        event_type: EventType::ServiceAccountCreated,
        org_id: Some(org().id),
        group_id: None,
        actor: Actor::ApiKey {
            id: api_key().id,
            public_key: api_key().public_key,
        },
        remote_address: Some("192.0.2.10".parse().unwrap()),
        target: vec![("targetClientId", account().client_id.to_string())],
    }
}

const JTI: &str = "fixture-jti";

/// Writes the fixture's rows (what an earlier release would have written).
async fn fill(s: &dyn Store) {
    let (o, g, k) = (org(), group(), api_key());
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
    s.create_service_account(&account(), &[event()])
        .await
        .unwrap();
    s.revoke_token(
        JTI,
        account().client_id,
        t0() + Duration::days(3650),
        NewEvent {
            id: EventId::parse("6955b90000000000000000f2").unwrap(),
            created: t0() + Duration::seconds(4),
            event_type: EventType::ServiceAccountTokenRevoked,
            org_id: Some(o.id),
            group_id: None,
            actor: Actor::ServiceAccount(account().client_id),
            remote_address: None,
            target: vec![("tokenId", JTI.to_owned())],
        },
    )
    .await
    .unwrap();
}

/// Every row of the fixture, read back through the trait.
async fn check(s: &dyn Store) {
    assert_eq!(
        s.meta("bootstrapped_at").await.unwrap().as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(s.get_org(org().id).await.unwrap(), Some(org()));
    assert_eq!(s.get_group(group().id).await.unwrap(), Some(group()));
    assert_eq!(s.get_api_key(api_key().id).await.unwrap(), Some(api_key()));
    assert_eq!(
        s.get_api_key_by_public_key("fixturek").await.unwrap(),
        Some(api_key())
    );
    assert_eq!(
        s.get_service_account(account().client_id).await.unwrap(),
        Some(account())
    );
    assert_eq!(s.list_service_accounts().await.unwrap(), vec![account()]);
    // Counts kept since 0005 are filled in from the rows already there.
    let page = s
        .list_org_service_accounts(org().id, Page::ALL)
        .await
        .unwrap();
    assert_eq!((page.total, page.items), (1, vec![account()]));
    let revoked = s.revoked_tokens(t0()).await.unwrap();
    assert_eq!(revoked, vec![(JTI.to_owned(), t0() + Duration::days(3650))]);
    let events = s
        .list_events(&EventQuery {
            scope: EventScope::Org(org().id),
            types: vec![],
            min: None,
            max: None,
            page: Page::ALL,
            include_count: true,
            visible: tessera_store::events::EventVisibility::ALL,
        })
        .await
        .unwrap();
    assert_eq!(events.total, 2);
    let created = s.get_event(event().id).await.unwrap().unwrap();
    assert_eq!(created.event_type, "SERVICE_ACCOUNT_CREATED");
    assert_eq!(created.created, event().created);
    assert_eq!(created.actor, event().actor);
    assert_eq!(created.remote_address.as_deref(), Some("192.0.2.10"));
    assert_eq!(
        created.target,
        vec![("targetClientId".to_owned(), account().client_id.to_string())]
    );
    let exported = s
        .export_events(
            None,
            ExportCursor {
                created: t0(),
                id: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(exported.len(), 2);
    // And the upgraded database takes writes.
    let mut second = account();
    second.client_id = ClientId::parse_hex("6955b90000000000000000d2").unwrap();
    second.secrets.clear();
    second.access_list.clear();
    second.group_roles.clear();
    s.create_service_account(&second, &[]).await.unwrap();
    assert_eq!(s.list_service_accounts().await.unwrap().len(), 2);
}

#[tokio::test]
async fn sqlite_database_made_by_0001_to_0003_upgrades_without_data_loss() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SQLITE_FIXTURE);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    std::fs::copy(&fixture, &path).unwrap();
    // The fixture is what migrations 0001-0003 made, nothing later.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(versions, vec![1, 2, 3]);
        conn.close().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn postgres_dump_made_by_0001_to_0003_upgrades_without_data_loss() {
    use tessera_store::postgres::test_support::{admin_url, ScratchDatabase};
    let Some(admin) = admin_url("postgres_dump_made_by_0001_to_0003_upgrades_without_data_loss")
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let db = ScratchDatabase::create(&admin, &ObjectId::generate(t0()).to_hex())
        .await
        .unwrap();
    let dump = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(POSTGRES_FIXTURE),
    )
    .unwrap();
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(&dump).execute(&mut conn).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM public._sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(versions, vec![1, 2, 3]);
        conn.close().await.unwrap();
    }
    let store = PgStore::open(&db.url).await.unwrap();
    check(&store).await;
    store.close().await;
    db.drop_database().await.unwrap();
}

/// Writes the fixtures. Run by hand only when a release's schema is frozen (see
/// `tests/fixtures/README.md`); never in the suite, which must keep the old files.
#[tokio::test]
#[ignore = "writes tests/fixtures; run by hand (tests/fixtures/README.md)"]
async fn write_fixtures() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SQLITE_FIXTURE);
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).await.unwrap();
    fill(&store).await;
    store.close().await;
    if let Ok(url) = std::env::var("TESSERA_FIXTURE_POSTGRES_URL") {
        let store = PgStore::open(&url).await.unwrap();
        fill(&store).await;
        store.close().await;
    }
}
