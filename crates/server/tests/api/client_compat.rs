//! What real Atlas clients sent and Tessera refused (issue 16 items 4 and 6): the Atlas CLI's
//! empty query parameters and `name=`, Python's `False`, an unserved action under a served
//! path, `OPTIONS` on an action, `deleteCluster` at 2023-02-01, `/api/atlas/v1.0`,
//! `listEventTypes`, flex clusters, and an access-list entry never used.

use reqwest::Method;
use serde_json::json;

use crate::clusters::{clusters, create_cluster};
use crate::harness::TestServer;

#[tokio::test]
async fn empty_parameters_are_absent_and_org_names_are_prefixes() {
    let s = TestServer::start().await;
    let o = s.owner();
    let org_name = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}", s.org()),
            None,
        )
        .await
        .json["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let count = |q: &'static str| {
        let s = &s;
        let o = o.clone();
        async move {
            let r = s
                .call(&o, Method::GET, &format!("/api/atlas/v2/orgs?{q}"), None)
                .await;
            r.expect(200);
            r.json["totalCount"].as_u64().unwrap()
        }
    };
    // The Atlas CLI's `organizations list`.
    assert_eq!(count("includeCount=true&name=&pageNum=1").await, 1);
    let prefix: String = org_name.chars().take(3).collect::<String>().to_uppercase();
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs?name={prefix}"),
            None,
        )
        .await;
    assert_eq!(r.json["totalCount"], 1, "{prefix}: {}", r.text);
    assert_eq!(count("name=zzz-no-such").await, 0);
    // Python sends booleans capitalized.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}?envelope=False&pretty=TRUE", s.org()),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["id"], s.org());
    s.call(&o, Method::GET, "/api/atlas/v2/orgs?envelope=maybe", None)
        .await
        .expect_error(400, "INVALID_QUERY_PARAMETER");
    // The Atlas CLI's `projects create` sends `projectOwnerId=`.
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/groups?projectOwnerId=",
            Some(json!({"name": "from-the-cli", "orgId": s.org()})),
        )
        .await;
    r.expect(200);
    s.stop().await;
}

#[tokio::test]
async fn unserved_actions_are_not_found_and_actions_advertise_their_methods() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "c1").await;
    // MongoDB's MCP server's `atlas-upgrade-cluster`, at its version.
    for (path, accept) in [
        ("/tenantUpgrade", "application/vnd.atlas.2023-01-01+json"),
        ("/c1:pause", "application/vnd.atlas.2023-01-01+json"),
        ("/c1", "application/vnd.atlas.2024-08-05+json"),
    ] {
        let r = s
            .call_with(
                &o,
                Method::POST,
                &clusters(&p, path),
                Some(json!({})),
                &[("accept", accept)],
                tessera_protocols::digest::DigestAlgorithm::Md5,
            )
            .await;
        r.expect_error(404, "RESOURCE_NOT_FOUND");
    }
    // Authentication still comes first.
    s.raw(
        Method::POST,
        &clusters(&p, "/tenantUpgrade"),
        &[("accept", "application/vnd.atlas.2023-01-01+json")],
        None,
    )
    .await
    .expect(401);
    let allow = |r: &crate::harness::Resp| {
        r.headers
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let v24 = [("accept", "application/vnd.atlas.2024-08-05+json")];
    let action = s
        .call_with(
            &o,
            Method::OPTIONS,
            &clusters(&p, "/c1:grantMongoDBEmployeeAccess"),
            None,
            &v24,
            tessera_protocols::digest::DigestAlgorithm::Md5,
        )
        .await;
    assert_eq!(action.status, 405, "{:?} {}", action.headers, action.text);
    assert_eq!(allow(&action).as_deref(), Some("POST"));
    let resource = s
        .call_with(
            &o,
            Method::OPTIONS,
            &clusters(&p, "/c1"),
            None,
            &v24,
            tessera_protocols::digest::DigestAlgorithm::Md5,
        )
        .await;
    assert_eq!(resource.status, 405);
    assert_eq!(
        allow(&resource).as_deref(),
        Some("GET, HEAD, PATCH, DELETE")
    );
    s.stop().await;
}

#[tokio::test]
async fn delete_cluster_at_its_described_version() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "c1").await;
    let r = s
        .call_with(
            &o,
            Method::DELETE,
            &clusters(&p, "/c1"),
            None,
            &[("accept", "application/vnd.atlas.2023-02-01+json")],
            tessera_protocols::digest::DigestAlgorithm::Md5,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/vnd.atlas.2023-02-01+json"));
    // Reads are served at 2023-02-01 too (cluster_shapes.rs); a change is not.
    let r = s
        .call_with(
            &o,
            Method::PATCH,
            &clusters(&p, "/c1"),
            Some(serde_json::json!({"paused": true})),
            &[("accept", "application/vnd.atlas.2023-02-01+json")],
            tessera_protocols::digest::DigestAlgorithm::Md5,
        )
        .await;
    r.expect_error(406, "INVALID_VERSION_DATE");
    s.stop().await;
}

#[tokio::test]
async fn atlas_v1_base_event_types_and_flex_clusters() {
    let s = TestServer::start().await;
    let o = s.owner();
    // `mongodb-atlas-api-client`'s default base URL.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v1.0/orgs/{}", s.org()),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["id"], s.org());
    let r = s
        .raw(Method::GET, "/api/atlas/v1.0/no/such/path", &[], None)
        .await;
    r.expect(401);
    assert!(r.headers.get("www-authenticate").is_some());
    let r = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/eventTypes?itemsPerPage=500",
            None,
        )
        .await;
    r.expect(200);
    let names: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), tessera_domain::EventType::ALL.len());
    assert!(names.contains(&"API_KEY_CREATED"));
    assert_eq!(r.json["results"][0]["alertable"], false);
    let r = s
        .call_with(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{}/flexClusters", s.project()),
            None,
            &[("accept", "application/vnd.atlas.2024-11-13+json")],
            tessera_protocols::digest::DigestAlgorithm::Md5,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 0);
    assert_eq!(r.json["results"], json!([]));
    s.stop().await;
}
