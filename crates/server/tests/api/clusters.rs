//! Cluster records (CONTRACT §10): create, list, get, patch, delete on both surfaces, the
//! cross-project listing, the project-deletion guard, roles, and bad input that changes
//! nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Key, TestServer};

pub const V2024: &str = "application/vnd.atlas.2024-08-05+json";

pub fn clusters(project: &str, rest: &str) -> String {
    format!("/api/atlas/v2/groups/{project}/clusters{rest}")
}

/// Creates a cluster named `name` in `project` as `key`; returns the document.
pub async fn create_cluster(s: &TestServer, key: &Key, project: &str, name: &str) -> Value {
    let r = s
        .v2024(
            key,
            Method::POST,
            &clusters(project, ""),
            Some(json!({"name": name, "clusterType": "REPLICASET"})),
        )
        .await;
    r.expect(201);
    r.json.clone()
}

/// Creates a project and returns its id.
pub async fn new_project(s: &TestServer, name: &str) -> String {
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": name, "orgId": s.org()})),
        )
        .await;
    r.expect(200);
    r.json["id"].as_str().unwrap().to_owned()
}

/// An API key made for `project` (ORG_MEMBER plus `roles` there).
pub async fn project_key(s: &TestServer, project: &str, roles: &[&str]) -> Key {
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            &format!("/api/atlas/v2/groups/{project}/apiKeys"),
            Some(json!({"desc": "project key", "roles": roles})),
        )
        .await;
    r.expect(200);
    Key {
        public: r.json["publicKey"].as_str().unwrap().to_owned(),
        private: r.json["privateKey"].as_str().unwrap().to_owned(),
    }
}

/// A second organization with a project of its own: (its owner key, its project id).
pub async fn second_org(s: &TestServer) -> (Key, String) {
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(json!({"name": "Second", "apiKey": {"desc": "first", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let org2 = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let key2 = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let r = s
        .call(
            &key2,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": "theirs", "orgId": org2})),
        )
        .await;
    r.expect(200);
    let p2 = r.json["id"].as_str().unwrap().to_owned();
    (key2, p2)
}

/// The event type names of a project's log, oldest first.
pub async fn group_event_types(s: &TestServer, project: &str) -> Vec<String> {
    let r = s
        .call(
            &s.owner(),
            Method::GET,
            &format!("/api/atlas/v2/groups/{project}/events?itemsPerPage=500&includeRaw=true"),
            None,
        )
        .await;
    r.expect(200);
    let mut v: Vec<String> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventTypeName"].as_str().unwrap().to_owned())
        .collect();
    v.reverse();
    v
}

#[tokio::test]
async fn cluster_records_on_both_surfaces() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let r = s
        .v2024(
            &o,
            Method::POST,
            &clusters(&p, ""),
            Some(json!({
                "name": "Cluster0",
                "clusterType": "REPLICASET",
                "replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7}]}],
                "labels": [{"key": "env", "value": "prod"}],
                // Server-owned fields are ignored, never stored.
                "id": "ffffffffffffffffffffffff",
                "groupId": "eeeeeeeeeeeeeeeeeeeeeeee",
                "stateName": "DELETED",
                "createDate": "2000-01-01T00:00:00Z",
                "mongoDBEmployeeAccessGrant": {"grantType": "CLUSTER_INFRASTRUCTURE", "expirationTime": "2026-01-02T00:00:00Z"}
            })),
        )
        .await;
    r.expect(201);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.atlas.2024-08-05+json;charset=utf-8"
    );
    let c = r.json.clone();
    let id = c["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "ffffffffffffffffffffffff");
    assert_eq!(id.len(), 24);
    assert_eq!(c["name"], "Cluster0");
    assert_eq!(c["groupId"], p.as_str());
    assert_eq!(c["createDate"], "2026-01-01T00:00:00Z");
    assert_eq!(c["stateName"], "IDLE");
    assert_eq!(c["clusterType"], "REPLICASET");
    assert_eq!(c["replicationSpecs"][0]["regionConfigs"][0]["priority"], 7);
    assert_eq!(c["labels"][0]["value"], "prod");
    assert!(c.get("mongoDBEmployeeAccessGrant").is_none(), "{c}");
    assert_eq!(
        c["links"][0]["href"],
        format!("{}{}", s.base, clusters(&p, "/Cluster0"))
    );

    // The same name again: 409, nothing written.
    let before = s.snapshot().await;
    s.v2024(
        &o,
        Method::POST,
        &clusters(&p, ""),
        Some(json!({"name": "Cluster0"})),
    )
    .await
    .expect_error(409, "DUPLICATE_CLUSTER_NAME");
    assert_eq!(before, s.snapshot().await);

    // Read on the v1.0 surface: the same document.
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/public/v1.0/groups/{p}/clusters/Cluster0"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["replicationSpecs"], c["replicationSpecs"]);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    // v2 resources exist at 2024-08-05 only: an older date is 406.
    s.call_with(
        &o,
        Method::GET,
        &clusters(&p, "/Cluster0"),
        None,
        &[("accept", "application/vnd.atlas.2023-01-01+json")],
        Default::default(),
    )
    .await
    .expect_error(406, "INVALID_VERSION_DATE");

    // Paginated list.
    for n in ["Cluster1", "Cluster2"] {
        create_cluster(&s, &o, &p, n).await;
    }
    let r = s
        .v2024(
            &o,
            Method::GET,
            &clusters(&p, "?itemsPerPage=2&pageNum=1"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 3);
    let names: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Cluster0", "Cluster1"]);
    assert!(r.json["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["rel"] == "next"));

    // PATCH merges top-level fields; server fields stay the server's.
    let r = s
        .v2024(
            &o,
            Method::PATCH,
            &clusters(&p, "/Cluster0"),
            Some(json!({"paused": true, "clusterType": "SHARDED", "name": "Cluster0", "stateName": "X"})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["paused"], true);
    assert_eq!(r.json["clusterType"], "SHARDED");
    assert_eq!(r.json["labels"], c["labels"]);
    assert_eq!(r.json["stateName"], "IDLE");
    assert_eq!(r.json["id"], id.as_str());
    // Renaming is refused.
    let before = s.snapshot().await;
    s.v2024(
        &o,
        Method::PATCH,
        &clusters(&p, "/Cluster0"),
        Some(json!({"name": "Renamed"})),
    )
    .await
    .expect_error(400, "CLUSTER_RENAME_NOT_SUPPORTED");
    assert_eq!(before, s.snapshot().await);

    // Delete: 202, then CLUSTER_NOT_FOUND everywhere.
    s.v2024(&o, Method::DELETE, &clusters(&p, "/Cluster2"), None)
        .await
        .expect(202);
    for m in [Method::GET, Method::DELETE] {
        s.v2024(&o, m, &clusters(&p, "/Cluster2"), None)
            .await
            .expect_error(404, "CLUSTER_NOT_FOUND");
    }
    let r = s
        .v2024(&o, Method::GET, &clusters(&p, "/Cluster2"), None)
        .await;
    assert_eq!(r.json["parameters"], json!(["Cluster2", p]));

    assert_eq!(
        group_event_types(&s, &p)
            .await
            .into_iter()
            .filter(|t| t.starts_with("CLUSTER_"))
            .collect::<Vec<_>>(),
        [
            "CLUSTER_CREATED",
            "CLUSTER_CREATED",
            "CLUSTER_CREATED",
            "CLUSTER_UPDATE_SUBMITTED",
            "CLUSTER_DELETE_SUBMITTED"
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn a_project_with_clusters_cannot_be_deleted() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "doomed").await;
    create_cluster(&s, &o, &p, "c1").await;
    let before = s.snapshot().await;
    for base in ["/api/atlas/v2", "/api/public/v1.0"] {
        s.call(&o, Method::DELETE, &format!("{base}/groups/{p}"), None)
            .await
            .expect_error(409, "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS");
    }
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused delete changed the store"
    );
    s.v2024(&o, Method::DELETE, &clusters(&p, "/c1"), None)
        .await
        .expect(202);
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v2/groups/{p}"),
        None,
    )
    .await
    .expect(204);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let (_, theirs) = second_org(&s).await;
    let before = s.snapshot().await;
    let long = "x".repeat(65);
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"clusterType": "REPLICASET"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": "bad name"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": "-leading"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": "under_score"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": long})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": 5})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!(["Cluster9"])),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&p, ""),
            Some(json!({"name": "Cluster9", "paused": null})),
            400,
            "INVALID_ATTRIBUTE",
        ),
        (
            Method::POST,
            clusters("not-a-group", ""),
            Some(json!({"name": "Cluster9"})),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::POST,
            clusters(&theirs, ""),
            Some(json!({"name": "Cluster9"})),
            404,
            "GROUP_NOT_FOUND",
        ),
        (
            Method::POST,
            clusters("cccccccccccccccccccccccc", ""),
            Some(json!({"name": "Cluster9"})),
            404,
            "GROUP_NOT_FOUND",
        ),
        (
            Method::GET,
            clusters(&p, "/bad_name"),
            None,
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::GET,
            clusters(&p, &format!("/{long}")),
            None,
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::GET,
            clusters(&p, "/Nope"),
            None,
            404,
            "CLUSTER_NOT_FOUND",
        ),
        (
            Method::GET,
            clusters(&theirs, "/Cluster0"),
            None,
            404,
            "GROUP_NOT_FOUND",
        ),
        (
            Method::PATCH,
            clusters(&p, "/Nope"),
            Some(json!({"paused": true})),
            404,
            "CLUSTER_NOT_FOUND",
        ),
        (
            Method::PATCH,
            clusters(&p, "/Cluster0"),
            Some(json!({"name": "Other"})),
            400,
            "CLUSTER_RENAME_NOT_SUPPORTED",
        ),
        (
            Method::PATCH,
            clusters(&p, "/Cluster0"),
            Some(json!({"name": 1})),
            400,
            "CLUSTER_RENAME_NOT_SUPPORTED",
        ),
        (
            Method::DELETE,
            clusters(&p, "/Nope"),
            None,
            404,
            "CLUSTER_NOT_FOUND",
        ),
        (
            Method::DELETE,
            clusters(&p, "/-x"),
            None,
            400,
            "VALIDATION_ERROR",
        ),
        (
            Method::DELETE,
            clusters(&theirs, "/Cluster0"),
            None,
            404,
            "GROUP_NOT_FOUND",
        ),
        // A `POST` naming no action names no operation (`clusters/tenantUpgrade` looks the
        // same): 404, at any version.
        (
            Method::POST,
            clusters(&p, "/Cluster0"),
            Some(json!({})),
            404,
            "RESOURCE_NOT_FOUND",
        ),
        (
            Method::POST,
            clusters(&p, "/Cluster0:pause"),
            Some(json!({})),
            404,
            "RESOURCE_NOT_FOUND",
        ),
        (
            Method::GET,
            clusters(&p, "/Cluster0:grantMongoDBEmployeeAccess"),
            None,
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let r = s.v2024(&o, method.clone(), &path, body.clone()).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{method} {path} {body:?}: {}",
            r.text
        );
        assert_eq!(r.error_code(), code, "{method} {path} {body:?}");
    }
    // Invalid JSON.
    let auth = s
        .digest_header(&o, "POST", &clusters(&p, ""), Default::default())
        .await;
    s.raw(
        Method::POST,
        &clusters(&p, ""),
        &[
            ("accept", V2024),
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        Some(b"{\"name\": ".to_vec()),
    )
    .await
    .expect_error(400, "INVALID_JSON");
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused request changed the store"
    );
    s.stop().await;
}

#[tokio::test]
async fn roles_decide_what_a_caller_may_do_to_clusters() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    create_cluster(&s, &o, &p, "Cluster0").await;
    let read_only = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    let manager = project_key(&s, &p, &["GROUP_CLUSTER_MANAGER"]).await;
    let support = project_key(&s, &p, &["GROUP_SUPPORT_ACCESS_MANAGER"]).await;
    let other = new_project(&s, "other").await;
    let elsewhere = project_key(&s, &other, &["GROUP_OWNER"]).await;

    // Read-only: reads, nothing else.
    let before = s.snapshot().await;
    s.v2024(&read_only, Method::GET, &clusters(&p, ""), None)
        .await
        .expect(200);
    s.v2024(&read_only, Method::GET, &clusters(&p, "/Cluster0"), None)
        .await
        .expect(200);
    for (m, path, body) in [
        (Method::POST, clusters(&p, ""), Some(json!({"name": "x"}))),
        (
            Method::PATCH,
            clusters(&p, "/Cluster0"),
            Some(json!({"paused": true})),
        ),
        (Method::DELETE, clusters(&p, "/Cluster0"), None),
    ] {
        for k in [&read_only, &support, &elsewhere] {
            s.v2024(k, m.clone(), &path, body.clone())
                .await
                .expect_error(403, "USER_UNAUTHORIZED");
        }
    }
    // An owner of another project of the org cannot read this one's clusters (403: it is
    // in the org, so the project's existence is no secret to it).
    s.v2024(&elsewhere, Method::GET, &clusters(&p, ""), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(before, s.snapshot().await);

    // Cluster managers create and change; only a project owner deletes.
    create_cluster(&s, &manager, &p, "Managed").await;
    s.v2024(
        &manager,
        Method::PATCH,
        &clusters(&p, "/Managed"),
        Some(json!({"paused": true})),
    )
    .await
    .expect(200);
    s.v2024(&manager, Method::DELETE, &clusters(&p, "/Managed"), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    let owner = project_key(&s, &p, &["GROUP_OWNER"]).await;
    s.v2024(&owner, Method::DELETE, &clusters(&p, "/Managed"), None)
        .await
        .expect(202);

    // A service account's project role decides what its token may do.
    let (sa, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let token = s.token(&sa).await;
    let bearer = |m: Method, path: String, body: Option<Value>| {
        let s = &s;
        let token = token.clone();
        async move {
            let auth = format!("Bearer {token}");
            let mut h = vec![("accept", V2024), ("authorization", auth.as_str())];
            let bytes = body.map(|b| {
                h.push(("content-type", "application/json"));
                serde_json::to_vec(&b).unwrap()
            });
            s.raw(m, &path, &h, bytes).await
        }
    };
    // Unassigned: a member of the org without a role in the project: 403.
    bearer(Method::GET, clusters(&p, ""), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(
        &o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{p}/serviceAccounts/{}:invite", sa.id),
        Some(json!({"roles": ["GROUP_READ_ONLY"]})),
    )
    .await
    .expect(200);
    bearer(Method::GET, clusters(&p, "/Cluster0"), None)
        .await
        .expect(200);
    bearer(
        Method::POST,
        clusters(&p, ""),
        Some(json!({"name": "ByToken"})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.v2024(
        &o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{p}/serviceAccounts/{}:invite", sa.id),
        Some(json!({"roles": ["GROUP_CLUSTER_MANAGER"]})),
    )
    .await
    .expect(200);
    bearer(
        Method::POST,
        clusters(&p, ""),
        Some(json!({"name": "ByToken"})),
    )
    .await
    .expect(201);
    s.stop().await;
}

#[tokio::test]
async fn the_cross_project_listing_shows_what_the_caller_can_see() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let q = new_project(&s, "second").await;
    let _empty = new_project(&s, "empty").await;
    create_cluster(&s, &o, &p, "a1").await;
    create_cluster(&s, &o, &p, "a2").await;
    let b1 = create_cluster(&s, &o, &q, "b1").await;
    let (key2, theirs) = second_org(&s).await;
    create_cluster(&s, &key2, &theirs, "hidden").await;

    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/clusters", None)
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 2, "{}", r.json);
    let results = r.json["results"].as_array().unwrap();
    let first = results.iter().find(|g| g["groupId"] == p.as_str()).unwrap();
    assert_eq!(first["groupName"], "Project0");
    assert_eq!(first["orgId"], s.org());
    assert_eq!(first["orgName"], "Tessera");
    let names: Vec<&str> = first["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a1", "a2"]);
    let second = results.iter().find(|g| g["groupId"] == q.as_str()).unwrap();
    assert_eq!(second["clusters"][0]["clusterId"], b1["id"]);

    // Paged by project.
    let r = s
        .call(
            &o,
            Method::GET,
            "/api/public/v1.0/clusters?itemsPerPage=1&pageNum=2",
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["results"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["totalCount"], 2);

    // Projects count their cluster records, in lists and alone.
    let r = s.call(&o, Method::GET, "/api/atlas/v2/groups", None).await;
    let count_of = |v: &Value, id: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .unwrap()["clusterCount"]
            .clone()
    };
    assert_eq!(count_of(&r.json, &p), 2);
    assert_eq!(count_of(&r.json, &q), 1);
    assert_eq!(count_of(&r.json, &_empty), 0);
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/public/v1.0/orgs/{}/groups", s.org()),
            None,
        )
        .await;
    assert_eq!(count_of(&r.json, &p), 2);
    let r = s
        .call(&o, Method::GET, &format!("/api/atlas/v2/groups/{q}"), None)
        .await;
    assert_eq!(r.json["clusterCount"], 1);
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/groups/byName/second", None)
        .await;
    assert_eq!(r.json["clusterCount"], 1);

    // A key with a role in one project sees that project only.
    let reader = project_key(&s, &q, &["GROUP_READ_ONLY"]).await;
    let r = s
        .call(&reader, Method::GET, "/api/atlas/v2/clusters", None)
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 1);
    assert_eq!(r.json["results"][0]["groupId"], q.as_str());
    s.stop().await;
}
