//! MongoDB employee access (CONTRACT §10, seed 002): grant and revoke as the seed shows them,
//! a grant that shows while active and ends by itself at its expiry (the clock is moved,
//! nothing sleeps), and support decisions (ours) that only operators may ask and that every
//! customer sees in the project's log.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

use crate::clusters::{
    clusters, create_cluster, group_event_types, new_project, project_key, second_org, V2024,
};
use crate::harness::{basic, t0, Key, Resp, TestServer};

const GRANT: &str = ":grantMongoDBEmployeeAccess";
const REVOKE: &str = ":revokeMongoDBEmployeeAccess";
const DECISIONS: &str = "/api/tessera/v1/support/decisions";

fn at(hours: i64) -> String {
    tessera_domain::time::format(t0() + Duration::hours(hours))
}

async fn grant(
    s: &TestServer,
    key: &Key,
    project: &str,
    name: &str,
    level: &str,
    hours: i64,
) -> Resp {
    s.v2024(
        key,
        Method::POST,
        &clusters(project, &format!("/{name}{GRANT}")),
        Some(json!({"grantType": level, "expirationTime": at(hours)})),
    )
    .await
}

async fn revoke(s: &TestServer, key: &Key, project: &str, name: &str) -> Resp {
    s.v2024(
        key,
        Method::POST,
        &clusters(project, &format!("/{name}{REVOKE}")),
        None,
    )
    .await
}

async fn cluster_doc(s: &TestServer, project: &str, name: &str) -> Value {
    let r = s
        .v2024(
            &s.owner(),
            Method::GET,
            &clusters(project, &format!("/{name}")),
            None,
        )
        .await;
    r.expect(200);
    r.json.clone()
}

/// An operator made the way `tessera operators create` makes one: (id, secret).
pub async fn operator(s: &TestServer, name: &str) -> (String, String) {
    let state = &s.running.state;
    let doc = tessera::operators::create(
        state.store.as_ref(),
        &state.crypto.hasher,
        name,
        state.clock.now(),
    )
    .await
    .unwrap();
    (
        doc["id"].as_str().unwrap().to_owned(),
        doc["secret"].as_str().unwrap().to_owned(),
    )
}

pub async fn decide(s: &TestServer, auth: Option<&str>, body: Value) -> Resp {
    let mut h = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    s.raw(
        Method::POST,
        DECISIONS,
        &h,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

fn question(project: &str, name: &str, level: &str) -> Value {
    json!({"staffMember": "alice@support", "groupId": project, "clusterName": name, "grantType": level})
}

#[tokio::test]
async fn a_grant_shows_while_active_and_ends_by_itself() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let r = grant(&s, &o, &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 2).await;
    r.expect(204);
    assert!(r.text.is_empty());
    let doc = cluster_doc(&s, &p, "Cluster0").await;
    let g = &doc["mongoDBEmployeeAccessGrant"];
    assert_eq!(g["grantType"], "CLUSTER_INFRASTRUCTURE");
    assert_eq!(g["expirationTime"], "2026-01-01T02:00:00Z");
    assert_eq!(g["links"][0]["rel"], "self");
    // The list shows it too.
    let r = s.v2024(&o, Method::GET, &clusters(&p, ""), None).await;
    assert_eq!(
        r.json["results"][0]["mongoDBEmployeeAccessGrant"]["grantType"],
        "CLUSTER_INFRASTRUCTURE"
    );

    // One millisecond before expiry it is there; at the instant of expiry it is gone.
    s.clock
        .advance(Duration::hours(2) - Duration::milliseconds(1));
    assert!(cluster_doc(&s, &p, "Cluster0").await["mongoDBEmployeeAccessGrant"].is_object());
    assert!(!group_event_types(&s, &p)
        .await
        .contains(&"EMPLOYEE_ACCESS_EXPIRED".to_owned()));
    s.clock.advance(Duration::milliseconds(1));
    let doc = cluster_doc(&s, &p, "Cluster0").await;
    assert!(doc.get("mongoDBEmployeeAccessGrant").is_none(), "{doc}");
    // The expiry is recorded once, however often it is observed.
    cluster_doc(&s, &p, "Cluster0").await;
    s.v2024(&o, Method::GET, &clusters(&p, ""), None)
        .await
        .expect(200);
    let types = group_event_types(&s, &p).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| t.starts_with("EMPLOYEE_ACCESS"))
            .collect::<Vec<_>>(),
        ["EMPLOYEE_ACCESS_GRANTED", "EMPLOYEE_ACCESS_EXPIRED"]
    );
    // The event says which grant ended.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!(
                "/api/atlas/v2/groups/{p}/events?eventType=EMPLOYEE_ACCESS_EXPIRED&includeRaw=true"
            ),
            None,
        )
        .await;
    let e = &r.json["results"][0];
    assert_eq!(e["raw"]["grantType"], "CLUSTER_INFRASTRUCTURE");
    assert_eq!(e["raw"]["clusterName"], "Cluster0");
    assert_eq!(e["raw"]["expirationTime"], "2026-01-01T02:00:00Z");
    assert_eq!(e["raw"]["actorKind"], "SYSTEM");
    s.stop().await;
}

#[tokio::test]
async fn the_periodic_pass_records_an_unobserved_expiry_once() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    grant(&s, &o, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
        .await
        .expect(204);
    let state = &s.running.state;
    let pass = || tessera_http::routes::clusters::record_expired_grants(state);
    assert_eq!(pass().await.unwrap(), 0);
    s.clock.advance(Duration::hours(1));
    // The server's periodic round (what runs every usage_flush_secs) records it, with no
    // request having looked at the cluster.
    tessera::server::periodic_work(state).await;
    assert!(group_event_types(&s, &p)
        .await
        .contains(&"EMPLOYEE_ACCESS_EXPIRED".to_owned()));
    assert_eq!(pass().await.unwrap(), 0);
    cluster_doc(&s, &p, "Cluster0").await;
    let types = group_event_types(&s, &p).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "EMPLOYEE_ACCESS_EXPIRED")
            .count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn revoke_ends_a_grant_and_a_new_grant_replaces_the_old() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    // Nothing to revoke: 204, nothing written.
    let before = s.snapshot().await;
    revoke(&s, &o, &p, "Cluster0").await.expect(204);
    assert_eq!(before, s.snapshot().await);

    grant(&s, &o, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
        .await
        .expect(204);
    grant(
        &s,
        &o,
        &p,
        "Cluster0",
        "CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA",
        48,
    )
    .await
    .expect(204);
    let g = cluster_doc(&s, &p, "Cluster0").await["mongoDBEmployeeAccessGrant"].clone();
    assert_eq!(
        g["grantType"],
        "CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA"
    );
    assert_eq!(g["expirationTime"], at(48));
    // The replaced grant's expiry passing means nothing now.
    s.clock.advance(Duration::hours(1));
    assert!(cluster_doc(&s, &p, "Cluster0").await["mongoDBEmployeeAccessGrant"].is_object());

    revoke(&s, &o, &p, "Cluster0").await.expect(204);
    assert!(cluster_doc(&s, &p, "Cluster0")
        .await
        .get("mongoDBEmployeeAccessGrant")
        .is_none());
    let before = s.snapshot().await;
    revoke(&s, &o, &p, "Cluster0").await.expect(204);
    assert_eq!(
        before,
        s.snapshot().await,
        "a second revoke wrote something"
    );
    assert_eq!(
        group_event_types(&s, &p)
            .await
            .into_iter()
            .filter(|t| t.starts_with("EMPLOYEE_ACCESS"))
            .collect::<Vec<_>>(),
        [
            "EMPLOYEE_ACCESS_GRANTED",
            "EMPLOYEE_ACCESS_GRANTED",
            "EMPLOYEE_ACCESS_REVOKED"
        ]
    );
    // The revoke event names who revoked and what.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!(
                "/api/atlas/v2/groups/{p}/events?eventType=EMPLOYEE_ACCESS_REVOKED&includeRaw=true"
            ),
            None,
        )
        .await;
    let e = &r.json["results"][0];
    assert_eq!(e["publicKey"], o.public.as_str());
    assert_eq!(e["remoteAddress"], "127.0.0.1");
    assert_eq!(e["raw"]["clusterName"], "Cluster0");
    s.stop().await;
}

#[tokio::test]
async fn bad_grants_change_nothing() {
    let s = TestServer::start_with(|c| c.max_employee_access_hours = 24).await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let (_, theirs) = second_org(&s).await;
    let before = s.snapshot().await;
    let path = clusters(&p, &format!("/Cluster0{GRANT}"));
    let ok_level = "CLUSTER_DATABASE_LOGS";
    let cases: Vec<(String, Value, u16, &str, &str)> = vec![
        (
            path.clone(),
            json!({"expirationTime": at(1)}),
            400,
            "VALIDATION_ERROR",
            "grantType",
        ),
        (
            path.clone(),
            json!({"grantType": "EVERYTHING", "expirationTime": at(1)}),
            400,
            "INVALID_ENUM_VALUE",
            "grantType",
        ),
        (
            path.clone(),
            json!({"grantType": "cluster_database_logs", "expirationTime": at(1)}),
            400,
            "INVALID_ENUM_VALUE",
            "grantType",
        ),
        (
            path.clone(),
            json!({"grantType": 1, "expirationTime": at(1)}),
            400,
            "VALIDATION_ERROR",
            "grantType",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": "tomorrow"}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": "2026-01-02"}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": "2026-01-01T05:00:00"}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": at(0)}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": at(-1)}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": tessera_domain::time::format(t0() + Duration::hours(24) + Duration::seconds(1))}),
            400,
            "VALIDATION_ERROR",
            "expirationTime",
        ),
        (
            path.clone(),
            json!({"grantType": ok_level, "expirationTime": at(1), "extra": true}),
            400,
            "INVALID_ATTRIBUTE",
            "extra",
        ),
        (
            path.clone(),
            json!({"grantType": null, "expirationTime": at(1)}),
            400,
            "INVALID_ATTRIBUTE",
            "grantType",
        ),
        (
            clusters(&p, &format!("/Nope{GRANT}")),
            json!({"grantType": ok_level, "expirationTime": at(1)}),
            404,
            "CLUSTER_NOT_FOUND",
            "Nope",
        ),
        (
            clusters(&p, &format!("/bad_name{GRANT}")),
            json!({"grantType": ok_level, "expirationTime": at(1)}),
            400,
            "VALIDATION_ERROR",
            "clusterName",
        ),
        (
            clusters("nope", &format!("/Cluster0{GRANT}")),
            json!({"grantType": ok_level, "expirationTime": at(1)}),
            400,
            "VALIDATION_ERROR",
            "groupId",
        ),
        (
            clusters(&theirs, &format!("/Cluster0{GRANT}")),
            json!({"grantType": ok_level, "expirationTime": at(1)}),
            404,
            "GROUP_NOT_FOUND",
            "No group",
        ),
        (
            clusters(&p, &format!("/Nope{REVOKE}")),
            json!({}),
            404,
            "CLUSTER_NOT_FOUND",
            "Nope",
        ),
        (
            clusters(&theirs, &format!("/Cluster0{REVOKE}")),
            json!({}),
            404,
            "GROUP_NOT_FOUND",
            "No group",
        ),
        (
            clusters(&p, "/Cluster0:grantMongoDBEmployeeAccessX"),
            json!({}),
            404,
            "RESOURCE_NOT_FOUND",
            "Cannot find",
        ),
    ];
    for (path, body, status, code, mentions) in cases {
        let r = s.v2024(&o, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), status, "{path} {body}: {}", r.text);
        assert_eq!(r.error_code(), code, "{path} {body}");
        assert!(
            r.json["detail"].as_str().unwrap().contains(mentions),
            "{path} {body}: detail should name {mentions}: {}",
            r.text
        );
    }
    // No body at all, and a body that is not JSON.
    s.v2024(&o, Method::POST, &path, None)
        .await
        .expect_error(400, "MISSING_REQUEST_BODY");
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused grant changed the store"
    );
    // Exactly the configured maximum is fine.
    grant(&s, &o, &p, "Cluster0", ok_level, 24)
        .await
        .expect(204);
    s.stop().await;
}

#[tokio::test]
async fn who_may_grant_and_revoke() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let before = s.snapshot().await;
    for roles in [
        vec!["GROUP_READ_ONLY"],
        vec!["GROUP_ACCESS_MANAGER"],
        vec!["GROUP_DATA_ACCESS_ADMIN", "GROUP_NETWORK_ACCESS_MANAGER"],
    ] {
        let k = project_key(&s, &p, &roles).await;
        let snap = s.snapshot().await;
        grant(&s, &k, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
            .await
            .expect_error(403, "USER_UNAUTHORIZED");
        revoke(&s, &k, &p, "Cluster0")
            .await
            .expect_error(403, "USER_UNAUTHORIZED");
        // It still reads the cluster.
        s.v2024(&k, Method::GET, &clusters(&p, "/Cluster0"), None)
            .await
            .expect(200);
        assert_eq!(snap, s.snapshot().await, "{roles:?}");
    }
    let _ = before;
    for role in [
        "GROUP_SUPPORT_ACCESS_MANAGER",
        "GROUP_CLUSTER_MANAGER",
        "GROUP_OWNER",
    ] {
        let k = project_key(&s, &p, &[role]).await;
        grant(&s, &k, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
            .await
            .expect(204);
        revoke(&s, &k, &p, "Cluster0").await.expect(204);
    }
    // A role in another project of the org is no role here.
    let other = new_project(&s, "other").await;
    let elsewhere = project_key(&s, &other, &["GROUP_OWNER"]).await;
    grant(&s, &elsewhere, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    // Another org's owner: the project does not exist for it.
    let (key2, _) = second_org(&s).await;
    grant(&s, &key2, &p, "Cluster0", "CLUSTER_DATABASE_LOGS", 1)
        .await
        .expect_error(404, "GROUP_NOT_FOUND");

    // A service account's token: its project role decides.
    let (sa, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let token = s.token(&sa).await;
    let bearer_grant = |hours: i64| {
        let auth = format!("Bearer {token}");
        let s = &s;
        let path = clusters(&p, &format!("/Cluster0{GRANT}"));
        async move {
            s.raw(
                Method::POST,
                &path,
                &[
                    ("accept", V2024),
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                Some(
                    serde_json::to_vec(
                        &json!({"grantType": "CLUSTER_INFRASTRUCTURE", "expirationTime": at(hours)}),
                    )
                    .unwrap(),
                ),
            )
            .await
        }
    };
    // Unassigned (an org member without a role here): 403.
    bearer_grant(1).await.expect_error(403, "USER_UNAUTHORIZED");
    let invite = |roles: Value| {
        let s = &s;
        let path = format!("/api/atlas/v2/groups/{p}/serviceAccounts/{}:invite", sa.id);
        async move {
            s.v2024(
                &s.owner(),
                Method::POST,
                &path,
                Some(json!({"roles": roles})),
            )
            .await
            .expect(200);
        }
    };
    invite(json!(["GROUP_READ_ONLY"])).await;
    bearer_grant(1).await.expect_error(403, "USER_UNAUTHORIZED");
    invite(json!(["GROUP_SUPPORT_ACCESS_MANAGER"])).await;
    bearer_grant(3).await.expect(204);
    assert_eq!(
        cluster_doc(&s, &p, "Cluster0").await["mongoDBEmployeeAccessGrant"]["expirationTime"],
        at(3)
    );
    // The grant event names the service account.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{p}/events?eventType=EMPLOYEE_ACCESS_GRANTED"),
            None,
        )
        .await;
    assert_eq!(r.json["results"][0]["clientId"], sa.id.as_str());
    s.stop().await;
}

#[tokio::test]
async fn support_decisions_follow_the_grant_and_are_visible_to_the_customer() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let (op_id, op_secret) = operator(&s, "support-console").await;
    let auth = basic(&op_id, &op_secret);

    // No grant yet.
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json,
        json!({"allowed": false, "reason": "NO_ACTIVE_GRANT", "grantType": null, "expiresAt": null})
    );
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    grant(&s, &o, &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 2)
        .await
        .expect(204);
    // At or below the granted level: allowed, and recorded.
    for level in ["CLUSTER_DATABASE_LOGS", "CLUSTER_INFRASTRUCTURE"] {
        let r = decide(&s, Some(&auth), question(&p, "Cluster0", level)).await;
        r.expect(200);
        assert_eq!(
            r.json,
            json!({"allowed": true, "reason": "GRANT_ACTIVE", "grantType": "CLUSTER_INFRASTRUCTURE", "expiresAt": at(2)})
        );
    }
    // Above it: refused, nothing recorded.
    let before = s.snapshot().await;
    let r = decide(
        &s,
        Some(&auth),
        question(
            &p,
            "Cluster0",
            "CLUSTER_INFRASTRUCTURE_AND_APP_SERVICES_SYNC_DATA",
        ),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["allowed"], false);
    assert_eq!(r.json["reason"], "LEVEL_NOT_GRANTED");
    assert_eq!(r.json["grantType"], "CLUSTER_INFRASTRUCTURE");
    // Unknown cluster or project: refused, nothing recorded.
    for q in [
        question(&p, "Nope", "CLUSTER_DATABASE_LOGS"),
        question(
            "cccccccccccccccccccccccc",
            "Cluster0",
            "CLUSTER_DATABASE_LOGS",
        ),
    ] {
        let r = decide(&s, Some(&auth), q).await;
        r.expect(200);
        assert_eq!(r.json["allowed"], false);
        assert_eq!(r.json["reason"], "UNKNOWN_CLUSTER");
    }
    assert_eq!(before, s.snapshot().await);

    // Every allowed decision is in the project's log, with who, level, cluster.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!(
                "/api/atlas/v2/groups/{p}/events?eventType=EMPLOYEE_ACCESS_USED&includeRaw=true"
            ),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 2);
    let e = &r.json["results"][0];
    assert_eq!(e["employeeIdentifier"], "alice@support");
    assert_eq!(e["created"], "2026-01-01T00:00:00Z");
    assert_eq!(e["groupId"], p.as_str());
    assert_eq!(e["raw"]["grantType"], "CLUSTER_INFRASTRUCTURE");
    assert_eq!(e["raw"]["clusterName"], "Cluster0");
    assert_eq!(e["raw"]["operatorId"], op_id.as_str());
    assert_eq!(e["raw"]["operatorName"], "support-console");
    let r = s
        .call(
            &o,
            Method::GET,
            &format!(
                "/api/public/v1.0/orgs/{}/events?eventType=EMPLOYEE_ACCESS_USED",
                s.org()
            ),
            None,
        )
        .await;
    // A project's events are in its log, not the org's.
    assert_eq!(r.json["totalCount"], 0);
    // No secret in any event.
    assert!(!s.snapshot().await.contains(&op_secret));

    // Right after a revoke, the very next decision is refused.
    revoke(&s, &o, &p, "Cluster0").await.expect(204);
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    assert_eq!(r.json["allowed"], false);
    assert_eq!(r.json["reason"], "NO_ACTIVE_GRANT");

    // And at the instant of expiry.
    grant(&s, &o, &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 1)
        .await
        .expect(204);
    s.clock
        .advance(Duration::hours(1) - Duration::milliseconds(1));
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    assert_eq!(r.json["allowed"], true);
    s.clock.advance(Duration::milliseconds(1));
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    assert_eq!(r.json["allowed"], false);
    assert_eq!(r.json["reason"], "GRANT_EXPIRED");
    assert_eq!(r.json["grantType"], Value::Null);
    // Observing the expiry recorded it.
    let types = group_event_types(&s, &p).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "EMPLOYEE_ACCESS_EXPIRED")
            .count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "EMPLOYEE_ACCESS_USED")
            .count(),
        3
    );
    s.stop().await;
}

#[tokio::test]
async fn only_operators_may_ask() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    grant(&s, &o, &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 2)
        .await
        .expect(204);
    let (op_id, op_secret) = operator(&s, "console").await;
    let q = question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS");
    let before = s.snapshot().await;

    // No credentials: 401 with a Basic challenge.
    let r = decide(&s, None, q.clone()).await;
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"Tessera support\""
    );
    // Bad operator credentials: 401.
    for auth in [
        basic(&op_id, "tss_op_sk_wrong"),
        basic("cccccccccccccccccccccccc", &op_secret),
        basic("not-an-id", &op_secret),
        "Basic !!!".to_owned(),
    ] {
        decide(&s, Some(&auth), q.clone())
            .await
            .expect_error(401, "UNAUTHORIZED");
    }
    // A customer's credentials, even the org owner's: 403.
    let digest = s
        .digest_header(&o, "POST", DECISIONS, Default::default())
        .await;
    decide(&s, Some(&digest), q.clone())
        .await
        .expect_error(403, "OPERATOR_CREDENTIALS_REQUIRED");
    let (sa, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let token = s.token(&sa).await;
    let snap = s.snapshot().await;
    decide(&s, Some(&format!("Bearer {token}")), q.clone())
        .await
        .expect_error(403, "OPERATOR_CREDENTIALS_REQUIRED");
    // A service account's client credentials are not an operator's.
    decide(&s, Some(&basic(&sa.id, &sa.secret)), q.clone())
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert_eq!(snap, s.snapshot().await);
    let _ = before;
    // The failed operator authentications are counted and written by the next flush, as
    // aggregated events with the operator id when it was well-formed (no organization).
    let state = &s.running.state;
    state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
        .unwrap();
    let failures: Vec<_> = state
        .store
        .export_events(
            None,
            tessera_store::events::ExportCursor {
                created: t0(),
                id: None,
            },
            1000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "SUPPORT_OPERATOR_AUTHENTICATION_FAILED")
        .collect();
    let count_for = |principal: &str| -> u64 {
        failures
            .iter()
            .filter(|e| {
                e.target
                    .iter()
                    .any(|(k, v)| k == "principal" && v == principal)
            })
            .map(|e| e.count)
            .sum()
    };
    assert_eq!(count_for(&op_id), 1, "{failures:?}");
    assert_eq!(count_for("cccccccccccccccccccccccc"), 1);
    // `not-an-id`, a garbled header, a service account's client id.
    assert_eq!(count_for("-"), 3, "{failures:?}");
    assert!(failures.iter().all(|e| e.org_id.is_none()));
    let snap = s.snapshot().await;
    assert!(!snap.contains(&op_secret));

    // Bad questions: 400, nothing written.
    let auth = basic(&op_id, &op_secret);
    for (body, code) in [
        (
            json!({"groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "a\nb", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        // Unicode format characters: a right-to-left override ("alice" on screen), a
        // zero-width space, a byte-order mark.
        (
            json!({"staffMember": "\u{202e}ecila", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "al\u{200b}ice", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "\u{feff}alice", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "x", "groupId": "nope", "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "x", "groupId": p, "clusterName": "bad name", "grantType": "CLUSTER_DATABASE_LOGS"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"staffMember": "x", "groupId": p, "clusterName": "Cluster0", "grantType": "ALL"}),
            "INVALID_ENUM_VALUE",
        ),
        (
            json!({"staffMember": "x", "groupId": p, "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS", "more": 1}),
            "INVALID_ATTRIBUTE",
        ),
    ] {
        decide(&s, Some(&auth), body.clone())
            .await
            .expect_error(400, code);
    }
    assert_eq!(snap, s.snapshot().await);

    // A deleted operator's credentials stop working at once.
    let state = &s.running.state;
    tessera::operators::delete(
        state.store.as_ref(),
        tessera_domain::OperatorId::parse(&op_id).unwrap(),
        state.clock.now(),
    )
    .await
    .unwrap();
    decide(&s, Some(&auth), q)
        .await
        .expect_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn a_store_failure_is_never_an_unrecorded_allow() {
    let (s, store) = crate::store_faults::start_failing().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    grant(&s, &o, &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 2)
        .await
        .expect(204);
    let (op_id, op_secret) = operator(&s, "console").await;
    let auth = basic(&op_id, &op_secret);
    store.fail_access_use.store(true, Ordering::SeqCst);
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    r.expect_error(500, "UNEXPECTED_ERROR");
    assert!(!r.text.contains("allowed"), "{}", r.text);
    store.fail_access_use.store(false, Ordering::SeqCst);
    let r = decide(
        &s,
        Some(&auth),
        question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
    )
    .await;
    assert_eq!(r.json["allowed"], true);
    s.stop().await;
}

#[tokio::test]
async fn operators_are_stored_hashed_and_listed_without_secrets() {
    let s = TestServer::start().await;
    let (id, secret) = operator(&s, "console").await;
    assert!(secret.starts_with("tss_op_sk_"));
    let snap = s.snapshot().await;
    assert!(snap.contains(&id));
    assert!(
        !snap.contains(&secret),
        "an operator secret is stored in clear"
    );
    let state = &s.running.state;
    let listed = tessera::operators::list(state.store.as_ref())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(!listed[0].to_string().contains(&secret));
    // Names are unique.
    let err = tessera::operators::create(
        state.store.as_ref(),
        &state.crypto.hasher,
        "console",
        state.clock.now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    s.stop().await;
}

/// Grants, revokes and support decisions on one cluster at once, and creations of one
/// cluster name: no 5xx, one creation wins, and every allowed decision left its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_revokes_and_decisions_race_safely() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let (op_id, op_secret) = operator(&s, "console").await;
    let auth = basic(&op_id, &op_secret);
    let mut tasks = Vec::new();
    for task in 0..4 {
        let s = s.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..5 {
                let r = if (task + round) % 2 == 0 {
                    grant(&s, &s.owner(), &p, "Cluster0", "CLUSTER_INFRASTRUCTURE", 1).await
                } else {
                    revoke(&s, &s.owner(), &p, "Cluster0").await
                };
                seen.push((r.status.as_u16(), r.text.clone(), None));
            }
            seen
        }));
    }
    for _ in 0..4 {
        let s = s.clone();
        let p = p.clone();
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..5 {
                let r = decide(
                    &s,
                    Some(&auth),
                    question(&p, "Cluster0", "CLUSTER_DATABASE_LOGS"),
                )
                .await;
                seen.push((
                    r.status.as_u16(),
                    r.text.clone(),
                    r.json["allowed"].as_bool(),
                ));
            }
            seen
        }));
    }
    for _ in 0..4 {
        let s = s.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let r = s
                .v2024(
                    &s.owner(),
                    Method::POST,
                    &clusters(&p, ""),
                    Some(json!({"name": "Raced"})),
                )
                .await;
            vec![(r.status.as_u16(), r.text.clone(), None)]
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let errors: Vec<_> = all.iter().filter(|(st, _, _)| *st >= 500).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let created = all.iter().filter(|(st, _, _)| *st == 201).count();
    let duplicate = all
        .iter()
        .filter(|(st, text, _)| *st == 409 && text.contains("DUPLICATE_CLUSTER_NAME"))
        .count();
    assert_eq!((created, duplicate), (1, 3), "{all:?}");
    let allowed = all.iter().filter(|(_, _, a)| *a == Some(true)).count() as u64;
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{p}/events?eventType=EMPLOYEE_ACCESS_USED"),
            None,
        )
        .await;
    assert_eq!(
        r.json["totalCount"], allowed,
        "one USED event per allowed answer"
    );
}
