//! Custom database roles (issue 16 item 2): create, list, get, update, delete; actions and
//! inherited roles validated against MongoDB's; no cycles; a role in use stays; database
//! users may hold them; events; roles; bad input changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::clusters::{group_event_types, project_key};
use crate::harness::TestServer;

fn roles(p: &str, rest: &str) -> String {
    format!("/api/atlas/v2/groups/{p}/customDBRoles/roles{rest}")
}

fn role(name: &str, inherits: &[&str]) -> Value {
    json!({
        "roleName": name,
        "actions": [{"action": "FIND", "resources": [{"db": "sales", "collection": "orders"}]},
                    {"action": "SERVER_STATUS", "resources": [{"cluster": true}]}],
        "inheritedRoles": inherits.iter().map(|r| json!({"db": "admin", "role": r})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn custom_roles_are_kept_checked_and_used() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let r = s
        .call(
            &o,
            Method::POST,
            &roles(&p, ""),
            Some(role("salesReader", &["read"])),
        )
        .await;
    r.expect(202);
    assert_eq!(r.json["roleName"], "salesReader");
    s.call(
        &o,
        Method::POST,
        &roles(&p, ""),
        Some(role("auditor", &["salesReader"])),
    )
    .await
    .expect(202);
    let list = s.call(&o, Method::GET, &roles(&p, ""), None).await;
    list.expect(200);
    assert_eq!(list.json.as_array().unwrap().len(), 2);
    let one = s
        .call(&o, Method::GET, &roles(&p, "/salesReader"), None)
        .await;
    assert_eq!(one.json["actions"][1]["resources"][0]["cluster"], true);
    // Bad input: the documented error, nothing written.
    let before = s.snapshot().await;
    for (body, code, status) in [
        (role("salesReader", &[]), "DUPLICATE_CUSTOM_ROLE_NAME", 409),
        (
            json!({"roleName": "x", "actions": [{"action": "FLY", "resources": [{"cluster": true}]}]}),
            "VALIDATION_ERROR",
            400,
        ),
        (role("y", &["noSuchRole"]), "VALIDATION_ERROR", 400),
        (role("read", &[]), "VALIDATION_ERROR", 400),
        (json!({"roleName": "z"}), "VALIDATION_ERROR", 400),
    ] {
        s.call(&o, Method::POST, &roles(&p, ""), Some(body))
            .await
            .expect_error(status, code);
    }
    // A cycle: salesReader may not inherit auditor, which inherits it.
    s.call(
        &o,
        Method::PATCH,
        &roles(&p, "/salesReader"),
        Some(json!({"inheritedRoles": [{"db": "admin", "role": "auditor"}]})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    let ro = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    let after_key = s.snapshot().await;
    s.call(&ro, Method::POST, &roles(&p, ""), Some(role("w", &[])))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(after_key, s.snapshot().await);
    assert_ne!(before, after_key, "only the key was added");
    // A database user may hold a custom role; the role then stays.
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("/api/atlas/v2/groups/{p}/databaseUsers"),
            Some(json!({"databaseName": "admin", "username": "app", "password": "correct horse battery",
                        "roles": [{"roleName": "auditor", "databaseName": "admin"}]})),
        )
        .await;
    r.expect(201);
    let r = s
        .call(&o, Method::DELETE, &roles(&p, "/auditor"), None)
        .await;
    r.expect_error(409, "ROLE_IN_USE");
    let r = s
        .call(&o, Method::DELETE, &roles(&p, "/salesReader"), None)
        .await;
    r.expect_error(409, "ROLE_IN_USE");
    // Update: a no-op writes nothing; a change writes CUSTOM_ROLE_UPDATED.
    let same = s
        .call(
            &o,
            Method::PATCH,
            &roles(&p, "/salesReader"),
            Some(json!({"inheritedRoles": [{"db": "admin", "role": "read"}]})),
        )
        .await;
    same.expect(200);
    s.call(
        &o,
        Method::PATCH,
        &roles(&p, "/salesReader"),
        Some(json!({"inheritedRoles": []})),
    )
    .await
    .expect(200);
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{p}/databaseUsers/admin/app"),
        None,
    )
    .await
    .expect(204);
    s.call(&o, Method::DELETE, &roles(&p, "/auditor"), None)
        .await
        .expect(204);
    s.call(&o, Method::DELETE, &roles(&p, "/auditor"), None)
        .await
        .expect_error(404, "ATLAS_CUSTOM_ROLE_NOT_FOUND");
    let types = group_event_types(&s, &p).await;
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("CUSTOM_ROLE_ADDED"), 2, "{types:?}");
    assert_eq!(count("CUSTOM_ROLE_UPDATED"), 1, "{types:?}");
    assert_eq!(count("CUSTOM_ROLE_DELETED"), 1, "{types:?}");
    s.stop().await;
}
