//! Issue 6 items 3 and 5: unknown API paths challenge before they 404, and input the subset
//! rejects is rejected (bodies of the wrong shape, explicit nulls, colon actions with the
//! wrong method), while what the subset allows (upper-case client ids) is accepted.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestServer;

/// Unauthenticated → 401 with the Digest challenge; authenticated → 404 RESOURCE_NOT_FOUND.
#[tokio::test]
async fn unknown_api_paths_challenge_before_not_found() {
    let s = TestServer::start().await;
    for base in ["/api/atlas/v2", "/api/public/v1.0"] {
        for rest in [
            "/nope",
            "/orgs/x/y/z/w",
            "/groups/5f0000000000000000000000/whatever",
        ] {
            let path = format!("{base}{rest}");
            let r = s.raw(Method::GET, &path, &[], None).await;
            r.expect_error(401, "UNAUTHORIZED");
            let challenges: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
            assert!(
                challenges.iter().any(|h| h
                    .to_str()
                    .unwrap()
                    .starts_with("Digest realm=\"MMS Public API\"")),
                "{path}: {challenges:?}"
            );
            // Bad credentials are still a 401, never a 404.
            let r = s
                .raw(
                    Method::GET,
                    &path,
                    &[("authorization", "Bearer nope")],
                    None,
                )
                .await;
            r.expect(401);
            let r = s.call(&s.owner(), Method::GET, &path, None).await;
            r.expect_error(404, "RESOURCE_NOT_FOUND");
        }
    }
    // Paths outside the API surfaces need no credentials to be unknown.
    s.raw(Method::GET, "/nope", &[], None)
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
}

/// A body the subset describes as an object must be an object (serde would read a struct
/// from an array), and list bodies must be arrays of objects.
#[tokio::test]
async fn bodies_must_have_the_schema_shape() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (_, key_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let key_path = format!("/api/atlas/v2/orgs/{}/apiKeys/{key_id}", s.org());
    let before = s.snapshot().await;
    for body in [
        json!([null, null]),
        json!(["desc", ["ORG_OWNER"]]),
        json!("desc"),
        json!(5),
        json!(true),
    ] {
        let r = s
            .call(&o, Method::PATCH, &key_path, Some(body.clone()))
            .await;
        r.expect_error(400, "VALIDATION_ERROR");
        assert!(
            r.json["detail"].as_str().unwrap().contains("object"),
            "{body}: {}",
            r.text
        );
    }
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let access = s.sa_path(&format!("/{}/accessList", client.id));
    let before_sa = s.snapshot().await;
    for body in [
        json!({"ipAddress": "192.0.2.1"}),
        json!([["192.0.2.1"]]),
        json!([{"ipAddress": "192.0.2.1"}, ["192.0.2.2"]]),
    ] {
        let r = s.v2024(&o, Method::POST, &access, Some(body.clone())).await;
        r.expect_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(s.snapshot().await, before_sa);
    // The well-formed body still works.
    s.v2024(
        &o,
        Method::POST,
        &access,
        Some(json!([{"ipAddress": "192.0.2.1"}])),
    )
    .await
    .expect(200);
    assert_ne!(before, s.snapshot().await);
}

/// The subset has no nullable request field: an explicit null is a 400 naming the attribute,
/// not "absent".
#[tokio::test]
async fn explicit_null_is_refused_naming_the_field() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (_, key_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let org = s.org().to_owned();
    let project = s.project().to_owned();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::PATCH,
            format!("/api/atlas/v2/orgs/{org}/apiKeys/{key_id}"),
            json!({"desc": null}),
            "desc",
        ),
        (
            Method::PATCH,
            format!("/api/atlas/v2/orgs/{org}/apiKeys/{key_id}"),
            json!({"desc": "ok", "roles": null}),
            "roles",
        ),
        (
            Method::PATCH,
            format!("/api/atlas/v2/orgs/{org}"),
            json!({"name": null}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/atlas/v2/groups/{project}"),
            json!({"name": null}),
            "name",
        ),
        (
            Method::POST,
            "/api/atlas/v2/groups".to_owned(),
            json!({"name": "p", "orgId": org, "tags": [{"key": "k", "value": null}]}),
            "tags[0].value",
        ),
        (
            Method::PATCH,
            s.sa_path(&format!("/{}", client.id)),
            json!({"name": null}),
            "name",
        ),
        (
            Method::PATCH,
            s.sa_path(&format!("/{}", client.id)),
            json!({"roles": null}),
            "roles",
        ),
        (
            Method::POST,
            s.sa_path(&format!("/{}/accessList", client.id)),
            json!([{"ipAddress": null}]),
            "[0].ipAddress",
        ),
        (
            Method::POST,
            s.sa_path(&format!("/{}/secrets", client.id)),
            json!({"secretExpiresAfterHours": null}),
            "secretExpiresAfterHours",
        ),
    ];
    let before = s.snapshot().await;
    for (method, path, body, field) in cases {
        let r = s.v2024(&o, method.clone(), &path, Some(body.clone())).await;
        r.expect_error(400, "INVALID_ATTRIBUTE");
        assert_eq!(
            r.json["parameters"],
            json!([field]),
            "{method} {path} {body}"
        );
        assert!(
            r.json["detail"].as_str().unwrap().contains(field),
            "{}",
            r.text
        );
    }
    assert_eq!(s.snapshot().await, before, "nothing changed");
}

/// The subset's clientId pattern allows upper-case hex: the same account either way.
#[tokio::test]
async fn upper_case_client_ids_name_the_same_account() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let hex = client
        .id
        .strip_prefix("mdb_sa_id_")
        .unwrap()
        .to_ascii_uppercase();
    let upper = format!("mdb_sa_id_{hex}");
    let r = s
        .v2024(&o, Method::GET, &s.sa_path(&format!("/{upper}")), None)
        .await;
    r.expect(200);
    assert_eq!(r.json["clientId"], client.id, "shown in its canonical form");
    let r = s
        .v2024(
            &o,
            Method::PATCH,
            &s.sa_path(&format!("/{upper}")),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Renamed");
    let groups = format!(
        "/api/atlas/v2/groups/{}/serviceAccounts/{upper}:invite",
        s.project()
    );
    let r = s
        .v2024(
            &o,
            Method::POST,
            &groups,
            Some(json!({"roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["clientId"], client.id);
    // The token endpoint knows it by either spelling too.
    let r = s
        .token_request(
            Some(&crate::harness::basic(&upper, &client.secret)),
            "grant_type=client_credentials",
        )
        .await;
    r.expect(200);
}

/// `{clientId}` and `{clientId}:invite` are distinct resources with their own methods.
#[tokio::test]
async fn colon_actions_answer_405_with_allow() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (client, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    for base in ["/api/atlas/v2", "/api/public/v1.0"] {
        let accept = if base.ends_with("v2") {
            "application/vnd.atlas.2024-08-05+json"
        } else {
            "application/json"
        };
        let group_sa = format!(
            "{base}/groups/{}/serviceAccounts/{}",
            s.project(),
            client.id
        );
        let org_sa = format!("{base}/orgs/{}/serviceAccounts/{}", s.org(), client.id);
        let cases = [
            (Method::PATCH, format!("{group_sa}:invite"), "POST"),
            (Method::GET, format!("{group_sa}:invite"), "POST"),
            (Method::DELETE, format!("{group_sa}:invite"), "POST"),
            (
                Method::OPTIONS,
                group_sa.clone(),
                "GET, HEAD, PATCH, DELETE",
            ),
            (Method::POST, org_sa.clone(), "DELETE"),
        ];
        for (method, path, allow) in cases {
            let r = s
                .call_with(
                    &o,
                    method.clone(),
                    &path,
                    Some(json!({"roles": ["GROUP_READ_ONLY"]})),
                    &[("accept", accept)],
                    Default::default(),
                )
                .await;
            r.expect_error(405, "METHOD_NOT_ALLOWED");
            let got = r
                .headers
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let got = got.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
            assert!(
                got.contains(allow),
                "{method} {path}: Allow {got}, want {allow}"
            );
        }
    }
    assert_eq!(s.snapshot().await, before);
}

/// Issue 14 item 11.1: no free-text value that reaches an event may carry a Unicode control
/// (Cc) or format (Cf) character (`"\u{202e}ecila"` shows as `alice`): every name and
/// description is refused with the usual 400, naming the field, and nothing is written.
#[tokio::test]
async fn control_and_format_characters_are_refused_in_every_name() {
    let s = TestServer::start().await;
    let o = s.owner();
    let org = s.org().to_owned();
    let (_, key_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    let before = s.snapshot().await;
    for bad in ["\u{202e}ecila", "al\u{200b}ice", "\u{feff}x", "a\u{7}b"] {
        let cases: Vec<(Method, String, Value, &str)> = vec![
            (
                Method::POST,
                format!("/api/atlas/v2/orgs/{org}/apiKeys"),
                json!({"desc": bad, "roles": ["ORG_MEMBER"]}),
                "desc",
            ),
            (
                Method::PATCH,
                format!("/api/atlas/v2/orgs/{org}/apiKeys/{key_id}"),
                json!({"desc": bad}),
                "desc",
            ),
            (
                Method::PATCH,
                format!("/api/atlas/v2/orgs/{org}"),
                json!({"name": bad}),
                "name",
            ),
            (
                Method::POST,
                "/api/atlas/v2/groups".to_owned(),
                json!({"name": bad, "orgId": org}),
                "name",
            ),
            (
                Method::PATCH,
                format!("/api/atlas/v2/groups/{}", s.project()),
                json!({"name": bad}),
                "name",
            ),
            (
                Method::POST,
                format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
                json!({"name": bad, "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24}),
                "name",
            ),
            (
                Method::POST,
                format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
                json!({"name": "n", "description": bad, "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24}),
                "description",
            ),
        ];
        for (method, path, body, field) in cases {
            let r = if path.contains("serviceAccounts") {
                s.v2024(&o, method.clone(), &path, Some(body)).await
            } else {
                s.call(&o, method.clone(), &path, Some(body)).await
            };
            r.expect_error(400, "VALIDATION_ERROR");
            let detail = r.json["detail"].as_str().unwrap();
            assert!(
                detail.contains(field) && detail.contains("format (Cf)"),
                "{method} {path} {bad:?}: {detail}"
            );
            assert_eq!(r.json["parameters"], json!([field]), "{method} {path}");
        }
    }
    assert_eq!(before, s.snapshot().await, "nothing was written");
}
