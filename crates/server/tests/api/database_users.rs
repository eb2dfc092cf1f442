//! Database users (issue 16 item 2, first part): create, list, get, update, delete for every
//! kind; a SCRAM password kept only as SCRAM credentials; temporary users ended by the clock;
//! scopes naming the project's clusters; roles; bad input that changes nothing.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::clusters::{create_cluster, group_event_types, new_project, project_key};
use crate::harness::{t0, TestServer};

fn users(project: &str, rest: &str) -> String {
    format!("/api/atlas/v2/groups/{project}/databaseUsers{rest}")
}

fn scram_user(name: &str) -> Value {
    json!({
        "databaseName": "admin",
        "username": name,
        "password": "correct horse battery",
        "roles": [{"roleName": "readWrite", "databaseName": "sales", "collectionName": "orders"}],
    })
}

#[tokio::test]
async fn users_of_every_kind_are_created_read_updated_and_deleted() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "db").await;
    create_cluster(&s, &o, &p, "c1").await;
    let mut app = scram_user("app");
    app["scopes"] = json!([{"name": "c1", "type": "CLUSTER"}]);
    app["labels"] = json!([{"key": "team", "value": "payments"}]);
    app["groupId"] = json!(p);
    let r = s.call(&o, Method::POST, &users(&p, ""), Some(app)).await;
    r.expect(201);
    assert!(!r.text.contains("correct horse"), "{}", r.text);
    assert!(r.json.get("password").is_none());
    assert_eq!(r.json["x509Type"], "NONE");
    assert_eq!(r.json["awsIAMType"], "NONE");
    assert_eq!(r.json["scopes"], json!([{"name": "c1", "type": "CLUSTER"}]));
    assert_eq!(r.json["roles"][0]["collectionName"], "orders");
    assert!(r.json["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/groups/{p}/databaseUsers/admin/app")));
    // The password is kept only as SCRAM credentials: salts and keys, no password.
    let rows = s
        .text_rows(
            "SELECT scram FROM database_users WHERE username = ?",
            &["app"],
        )
        .await;
    let scram: Value = serde_json::from_str(rows[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(scram["SCRAM-SHA-1"]["iterationCount"], 10_000);
    assert_eq!(scram["SCRAM-SHA-256"]["iterationCount"], 15_000);
    assert!(!s.snapshot().await.contains("correct horse"));
    // Other kinds: no password, `$external` (or `admin` for group-mapped users).
    let arn = "arn:aws:iam::123456789012:role/app";
    for body in [
        json!({"databaseName": "$external", "username": "CN=app,OU=eng", "x509Type": "CUSTOMER",
               "roles": [{"roleName": "read", "databaseName": "sales"}]}),
        json!({"databaseName": "$external", "username": arn, "awsIAMType": "ROLE",
               "roles": [{"roleName": "readAnyDatabase", "databaseName": "admin"}]}),
        json!({"databaseName": "admin", "username": "CN=dba,OU=groups", "ldapAuthType": "GROUP",
               "roles": [{"roleName": "atlasAdmin", "databaseName": "admin"}]}),
        json!({"databaseName": "admin", "username": "idp1/engineers", "oidcAuthType": "IDP_GROUP",
               "roles": [{"roleName": "read", "databaseName": "sales"}]}),
    ] {
        let r = s
            .call(&o, Method::POST, &users(&p, ""), Some(body.clone()))
            .await;
        assert_eq!(r.status, 201, "{body}: {}", r.text);
    }
    let r = s
        .call(
            &o,
            Method::GET,
            &users(&p, &format!("/$external/{}", arn.replace('/', "%2F"))),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["awsIAMType"], "ROLE");
    let r = s.call(&o, Method::GET, &users(&p, ""), None).await;
    assert_eq!(r.json["totalCount"], 5, "{}", r.text);
    // The same name again: 409, nothing written.
    let before = s.snapshot().await;
    s.call(&o, Method::POST, &users(&p, ""), Some(scram_user("app")))
        .await
        .expect_error(409, "USER_ALREADY_EXISTS");
    assert_eq!(s.snapshot().await, before);
    // A new password: new credentials. The same roles again: no event.
    let events_before = group_event_types(&s, &p).await;
    let r = s
        .call(
            &o,
            Method::PATCH,
            &users(&p, "/admin/app"),
            Some(json!({"roles": [{"roleName": "readWrite", "databaseName": "sales", "collectionName": "orders"}]})),
        )
        .await;
    r.expect(200);
    assert_eq!(group_event_types(&s, &p).await, events_before);
    s.call(
        &o,
        Method::PATCH,
        &users(&p, "/admin/app"),
        Some(json!({"password": "another long one"})),
    )
    .await
    .expect(200);
    let after = s
        .text_rows(
            "SELECT scram FROM database_users WHERE username = ?",
            &["app"],
        )
        .await;
    assert_ne!(after, rows);
    s.call(
        &o,
        Method::PATCH,
        &users(&p, "/admin/app"),
        Some(json!({"x509Type": "MANAGED"})),
    )
    .await
    .expect(400);
    // A temporary user ends by the clock.
    let mut temp = scram_user("temp");
    temp["deleteAfterDate"] = json!((t0() + Duration::hours(6)).to_rfc3339());
    s.call(&o, Method::POST, &users(&p, ""), Some(temp))
        .await
        .expect(201);
    s.call(&o, Method::GET, &users(&p, "/admin/temp"), None)
        .await
        .expect(200);
    s.clock.advance(Duration::hours(6));
    s.call(&o, Method::GET, &users(&p, "/admin/temp"), None)
        .await
        .expect_error(404, "USERNAME_NOT_FOUND");
    // Its name is free again.
    s.call(&o, Method::POST, &users(&p, ""), Some(scram_user("temp")))
        .await
        .expect(201);
    s.call(&o, Method::DELETE, &users(&p, "/admin/app"), None)
        .await
        .expect(204);
    s.call(&o, Method::DELETE, &users(&p, "/admin/app"), None)
        .await
        .expect_error(404, "USERNAME_NOT_FOUND");
    let types: Vec<String> = group_event_types(&s, &p)
        .await
        .into_iter()
        .filter(|t| t.starts_with("MONGODB_USER_"))
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "MONGODB_USER_ADDED").count(),
        7
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "MONGODB_USER_UPDATED")
            .count(),
        1
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("MONGODB_USER_DELETED")
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_users_change_nothing_and_roles_decide() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "db").await;
    let before = s.snapshot().await;
    let mut x509_with_password = scram_user("CN=x");
    x509_with_password["databaseName"] = json!("$external");
    x509_with_password["x509Type"] = json!("CUSTOMER");
    let with = |k: &str, v: Value| {
        let mut b = scram_user("app");
        b[k] = v;
        b
    };
    for body in [
        x509_with_password,
        with("password", json!("short")),
        with("password", Value::Null),
        with("databaseName", json!("$external")),
        with("x509Type", json!("KERBEROS")),
        with("ldapAuthType", json!("NONSENSE")),
        with(
            "roles",
            json!([{"roleName": "root", "databaseName": "admin"}]),
        ),
        with(
            "roles",
            json!([{"roleName": "atlasAdmin", "databaseName": "sales"}]),
        ),
        with(
            "roles",
            json!([{"roleName": "read", "databaseName": "bad.name"}]),
        ),
        with(
            "scopes",
            json!([{"name": "no-such-cluster", "type": "CLUSTER"}]),
        ),
        with("scopes", json!([{"name": "c1", "type": "SOMETHING"}])),
        with(
            "deleteAfterDate",
            json!((t0() + Duration::days(8)).to_rfc3339()),
        ),
        with("description", json!("x".repeat(101))),
        with("groupId", json!("000000000000000000000000")),
        with("color", json!("red")),
        with("username", json!("")),
        json!({"databaseName": "$external", "username": "app", "awsIAMType": "USER"}),
        json!({"databaseName": "$external", "username": "CN=x", "x509Type": "CUSTOMER", "awsIAMType": "USER"}),
    ] {
        let r = s
            .call(&o, Method::POST, &users(&p, ""), Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    assert_eq!(s.snapshot().await, before);
    // Roles: a reader reads, a database access admin changes, a cluster manager does not.
    let reader = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    let admin = project_key(&s, &p, &["GROUP_DATABASE_ACCESS_ADMIN"]).await;
    let clusters = project_key(&s, &p, &["GROUP_CLUSTER_MANAGER"]).await;
    s.call(&reader, Method::GET, &users(&p, ""), None)
        .await
        .expect(200);
    s.call(&reader, Method::POST, &users(&p, ""), Some(scram_user("a")))
        .await
        .expect(403);
    s.call(
        &clusters,
        Method::POST,
        &users(&p, ""),
        Some(scram_user("a")),
    )
    .await
    .expect(403);
    s.call(&admin, Method::POST, &users(&p, ""), Some(scram_user("a")))
        .await
        .expect(201);
    s.call(&reader, Method::DELETE, &users(&p, "/admin/a"), None)
        .await
        .expect(403);
    s.call(&admin, Method::DELETE, &users(&p, "/admin/a"), None)
        .await
        .expect(204);
    s.stop().await;
}
