//! The event logs over HTTP (`/orgs/{orgId}/events`, `/groups/{groupId}/events`, both
//! surfaces), `tessera events export`, and the rule that no secret, key, token or hash ever
//! reaches an event.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{basic, Key, TestServer};

const V2: &str = "/api/atlas/v2";
const V1: &str = "/api/public/v1.0";

fn org_events(s: &TestServer, base: &str, query: &str) -> String {
    format!("{base}/orgs/{}/events{query}", s.org())
}

fn group_events(s: &TestServer, base: &str, query: &str) -> String {
    format!("{base}/groups/{}/events{query}", s.project())
}

fn results(r: &crate::harness::Resp) -> Vec<Value> {
    r.json["results"].as_array().unwrap().clone()
}

fn types(r: &crate::harness::Resp) -> Vec<String> {
    results(r)
        .iter()
        .map(|e| e["eventTypeName"].as_str().unwrap().to_owned())
        .collect()
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn create_project(s: &TestServer, key: &Key, org: &str, name: &str) -> String {
    let r = s
        .call(
            key,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": name, "orgId": org})),
        )
        .await;
    r.expect(200);
    r.json["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn org_log_is_newest_first_in_the_subset_shape_on_both_surfaces() {
    let s = TestServer::start().await;
    let o = s.owner();
    s.clock.advance(chrono::Duration::seconds(10));
    let (k, k_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.clock.advance(chrono::Duration::seconds(10));
    let second = create_project(&s, &o, s.org(), "Second").await;

    let r = s.call(&o, Method::GET, &org_events(&s, V2, ""), None).await;
    r.expect(200);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    // Bootstrap's org events (the org, its key, its first owner joining), then the key:
    // newest first. The projects' creations are in their own logs, not the org's.
    assert_eq!(
        types(&r),
        [
            "API_KEY_CREATED",
            "JOINED_ORG",
            "API_KEY_CREATED",
            "ORG_CREATED"
        ]
    );
    assert_eq!(r.json["totalCount"], 4);
    let all = results(&r);
    let created: Vec<&str> = all.iter().map(|e| e["created"].as_str().unwrap()).collect();
    let mut sorted = created.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted, "newest first");
    let in_project = s
        .call(
            &o,
            Method::GET,
            &format!("{V2}/groups/{second}/events"),
            None,
        )
        .await;
    assert_eq!(types(&in_project), ["GROUP_CREATED"]);
    assert_eq!(results(&in_project)[0]["created"], "2026-01-01T00:00:20Z");

    // The key's creation: who, from where, what.
    let ev = &all[0];
    assert_eq!(ev["eventTypeName"], "API_KEY_CREATED");
    assert_eq!(
        keys_of(ev),
        [
            "apiKeyId",
            "created",
            "eventTypeName",
            "id",
            "isGlobalAdmin",
            "links",
            "orgId",
            "publicKey",
            "remoteAddress",
            "targetPublicKey"
        ]
    );
    assert_eq!(ev["created"], "2026-01-01T00:00:10Z");
    assert_eq!(ev["orgId"], s.org());
    assert_eq!(ev["publicKey"], o.public.as_str());
    assert_eq!(ev["apiKeyId"].as_str().unwrap().len(), 24);
    assert_eq!(ev["remoteAddress"], "127.0.0.1");
    assert_eq!(ev["targetPublicKey"], k.public.as_str());
    assert_eq!(ev["isGlobalAdmin"], false);
    let id = ev["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ev["links"],
        json!([{"href": format!("{}{V2}/orgs/{}/events/{id}", s.base, s.org()), "rel": "self"}])
    );

    // Bootstrap is Tessera itself: no actor fields, no address.
    let boot = all.last().unwrap();
    assert_eq!(boot["eventTypeName"], "ORG_CREATED");
    for absent in ["apiKeyId", "publicKey", "clientId", "remoteAddress", "raw"] {
        assert!(boot.get(absent).is_none(), "{absent} in {boot}");
    }

    // includeRaw adds every target field, the actor kind and the count.
    let r = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V2, "?includeRaw=true"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(
        results(&r)[0]["raw"],
        json!({"targetPublicKey": k.public, "targetApiKeyId": k_id, "actorKind": "API_KEY", "count": 1})
    );
    assert_eq!(results(&r)[2]["raw"]["actorKind"], "SYSTEM");

    // One event by id, on both surfaces; the v1.0 link is v1.0's.
    let one = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V2, &format!("/{id}")),
            None,
        )
        .await;
    one.expect(200);
    assert_eq!(one.json, all[0]);
    let one = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V1, &format!("/{id}?includeRaw=true")),
            None,
        )
        .await;
    one.expect(200);
    assert_eq!(one.headers["content-type"], "application/json");
    assert_eq!(
        one.json["links"][0]["href"],
        format!("{}{V1}/orgs/{}/events/{id}", s.base, s.org())
    );
    assert_eq!(one.json["raw"]["targetApiKeyId"], k_id.as_str());
    let v1 = s.call(&o, Method::GET, &org_events(&s, V1, ""), None).await;
    v1.expect(200);
    assert_eq!(v1.json["totalCount"], 4);
    assert_eq!(
        types(&v1),
        types(&s.call(&o, Method::GET, &org_events(&s, V2, ""), None).await)
    );
    s.stop().await;
}

#[tokio::test]
async fn service_account_actor_and_the_project_log() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (sa, _) = s.new_service_account(&["ORG_OWNER"]).await;
    let token = s.token(&sa).await;
    // A change made with a Bearer token names the service account, not a key.
    let r = s
        .bearer(
            &token,
            Method::POST,
            &format!("{V2}/orgs/{}/apiKeys", s.org()),
            Some(json!({"desc": "by sa", "roles": ["ORG_MEMBER"]})),
        )
        .await;
    r.expect(200);
    let made = r.json["publicKey"].as_str().unwrap().to_owned();
    let r = s
        .bearer(&token, Method::GET, &org_events(&s, V2, ""), None)
        .await;
    r.expect(200);
    let ev = &results(&r)[0];
    assert_eq!(ev["eventTypeName"], "API_KEY_CREATED");
    assert_eq!(ev["targetPublicKey"], made.as_str());
    assert_eq!(ev["clientId"], sa.id.as_str());
    assert!(ev.get("apiKeyId").is_none() && ev.get("publicKey").is_none());

    // A project event: in the project's log and in its org's.
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/groups/{}/apiKeys", s.project()),
            Some(json!({"desc": "proj", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let g = s
        .call(
            &o,
            Method::GET,
            &group_events(&s, V2, "?includeRaw=true"),
            None,
        )
        .await;
    g.expect(200);
    let group_results = results(&g);
    assert!(group_results.len() >= 2, "{}", g.text);
    assert_eq!(g.json["totalCount"], group_results.len());
    for e in &group_results {
        assert_eq!(e["groupId"], s.project(), "{e}");
        assert_eq!(e["orgId"], s.org(), "{e}");
        let id = e["id"].as_str().unwrap();
        assert_eq!(
            e["links"][0]["href"],
            format!("{}{V2}/groups/{}/events/{id}", s.base, s.project())
        );
    }
    assert_eq!(group_results[0]["eventTypeName"], "API_KEY_ADDED_TO_GROUP");
    let org_log = s.call(&o, Method::GET, &org_events(&s, V2, ""), None).await;
    let org_ids: Vec<String> = results(&org_log)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for e in &group_results {
        let id = e["id"].as_str().unwrap();
        // A project's events are in its log only (Atlas' org views list none of them).
        assert!(!org_ids.iter().any(|x| x == id), "{id} is in the org log");
        s.call(
            &o,
            Method::GET,
            &org_events(&s, V1, &format!("/{id}")),
            None,
        )
        .await
        .expect(404);
        s.call(
            &o,
            Method::GET,
            &group_events(&s, V1, &format!("/{id}")),
            None,
        )
        .await
        .expect(200);
    }
    // An org-level event is not in the project's log.
    let org_only = results(&org_log)
        .into_iter()
        .find(|e| e.get("groupId").is_none())
        .unwrap();
    let org_only = org_only["id"].as_str().unwrap();
    s.call(
        &o,
        Method::GET,
        &group_events(&s, V2, &format!("/{org_only}")),
        None,
    )
    .await
    .expect_error(404, "EVENT_NOT_FOUND");
    // Another project's event is not in this project's log.
    let other = create_project(&s, &o, s.org(), "Other").await;
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("{V2}/groups/{other}/events"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(types(&r), ["GROUP_CREATED"]);
    let other_event = results(&r)[0]["id"].as_str().unwrap().to_owned();
    s.call(
        &o,
        Method::GET,
        &group_events(&s, V2, &format!("/{other_event}")),
        None,
    )
    .await
    .expect_error(404, "EVENT_NOT_FOUND");
    s.stop().await;
}

async fn list(s: &TestServer, q: &str) -> crate::harness::Resp {
    s.call(&s.owner(), Method::GET, &org_events(s, V2, q), None)
        .await
}

#[tokio::test]
async fn filters_dates_and_pagination() {
    let s = TestServer::start().await;
    let o = s.owner();
    // Five keys, one a minute: created at t0 + 60 s, 120 s, ... 300 s.
    for _ in 0..5 {
        s.clock.advance(chrono::Duration::seconds(60));
        s.new_org_key(&["ORG_MEMBER"]).await;
    }

    // eventType repeats: either name.
    let r = list(&s, "?eventType=API_KEY_CREATED&eventType=ORG_CREATED").await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 7);
    assert!(types(&r)
        .iter()
        .all(|t| t == "API_KEY_CREATED" || t == "ORG_CREATED"));
    assert_eq!(types(&r).len(), 7);
    // A well-formed name Tessera never records matches nothing.
    let r = list(&s, "?eventType=CLUSTER_CREATED").await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 0);
    assert_eq!(results(&r).len(), 0);
    // Malformed names are refused.
    for bad in ["api_key_created", "A-B", "_X"] {
        let r = list(&s, &format!("?eventType={bad}")).await;
        r.expect_error(400, "INVALID_QUERY_PARAMETER");
        assert_eq!(r.json["parameters"][0], "eventType", "{bad}");
    }
    // At most 100 of them.
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("eventType=T{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    list(&s, &format!("?{}", many(100))).await.expect(200);
    list(&s, &format!("?{}", many(101)))
        .await
        .expect_error(400, "INVALID_QUERY_PARAMETER");

    // Dates: inclusive bounds, ISO 8601 in UTC (an offset is converted).
    let r = list(
        &s,
        "?minDate=2026-01-01T00:02:00Z&maxDate=2026-01-01T00:04:00Z",
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 3);
    let created: Vec<String> = results(&r)
        .iter()
        .map(|e| e["created"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        created,
        [
            "2026-01-01T00:04:00Z",
            "2026-01-01T00:03:00Z",
            "2026-01-01T00:02:00Z"
        ]
    );
    let r = list(&s, "?minDate=2026-01-01T01:04:00%2B01:00").await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 2);
    let r = list(&s, "?maxDate=2026-01-01T00:00:59Z").await;
    assert_eq!(
        types(&r).len(),
        3,
        "bootstrap's org events: the org, its key, its first owner joining (its project's is in its log)"
    );
    // Given empty (as the Atlas CLI sends unset flags): absent.
    let all = list(&s, "").await;
    let r = list(&s, "?maxDate=&eventType=").await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], all.json["totalCount"]);
    for (q, param) in [
        ("?minDate=yesterday", "minDate"),
        ("?minDate=2026-01-01", "minDate"),
        ("?maxDate=2026-13-01T00:00:00Z", "maxDate"),
        ("?includeRaw=yes", "includeRaw"),
    ] {
        let r = list(&s, q).await;
        r.expect_error(400, "INVALID_QUERY_PARAMETER");
        assert_eq!(r.json["parameters"][0], param, "{q}: {}", r.text);
    }
    // Given twice (the common rule for a parameter that does not repeat).
    let r = list(
        &s,
        "?minDate=2026-01-01T00:00:00Z&minDate=2026-01-01T00:00:00Z",
    )
    .await;
    r.expect_error(400, "INVALID_QUERY_PARAMETER");
    assert_eq!(r.json["parameters"][0], "minDate");
    // maxDate before minDate.
    let r = list(
        &s,
        "?minDate=2026-01-01T00:03:00Z&maxDate=2026-01-01T00:02:59Z",
    )
    .await;
    r.expect_error(400, "INVALID_QUERY_PARAMETER");
    assert_eq!(r.json["parameters"][0], "maxDate");
    assert!(r.json["detail"]
        .as_str()
        .unwrap()
        .contains("before minDate"));
    // Equal bounds are fine.
    let r = list(
        &s,
        "?minDate=2026-01-01T00:03:00Z&maxDate=2026-01-01T00:03:00Z",
    )
    .await;
    assert_eq!(r.json["totalCount"], 1);

    // Pagination: pages of 2 of the six API_KEY_CREATED, links keep the filter.
    let all = list(&s, "?eventType=API_KEY_CREATED").await;
    let all_ids: Vec<Value> = results(&all).iter().map(|e| e["id"].clone()).collect();
    assert_eq!(all_ids.len(), 6);
    let mut paged = Vec::new();
    for n in 1..=3 {
        let r = list(
            &s,
            &format!("?eventType=API_KEY_CREATED&itemsPerPage=2&pageNum={n}"),
        )
        .await;
        r.expect(200);
        assert_eq!(r.json["totalCount"], 6);
        let rels: Vec<&str> = r.json["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        match n {
            1 => assert_eq!(rels, ["self", "next"]),
            2 => assert_eq!(rels, ["self", "next", "previous"]),
            _ => assert_eq!(rels, ["self", "previous"]),
        }
        for l in r.json["links"].as_array().unwrap() {
            assert!(
                l["href"]
                    .as_str()
                    .unwrap()
                    .contains("eventType=API_KEY_CREATED"),
                "{l}"
            );
        }
        paged.extend(results(&r).iter().map(|e| e["id"].clone()));
    }
    assert_eq!(paged, all_ids, "pages partition the listing, in order");
    let r = list(&s, "?includeCount=false&itemsPerPage=1").await;
    r.expect(200);
    assert!(r.json.get("totalCount").is_none());
    assert_eq!(results(&r).len(), 1);
    let r = list(&s, "?pageNum=100").await;
    r.expect(200);
    assert_eq!(results(&r).len(), 0);
    assert_eq!(r.json["totalCount"], 8);

    // The project log takes the same filters.
    let r = s
        .call(
            &o,
            Method::GET,
            &group_events(
                &s,
                V1,
                "?eventType=GROUP_CREATED&maxDate=2026-01-01T00:00:00Z",
            ),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(types(&r), ["GROUP_CREATED"]);
    s.call(
        &o,
        Method::GET,
        &group_events(
            &s,
            V2,
            "?minDate=2026-01-01T00:03:00Z&maxDate=2026-01-01T00:02:00Z",
        ),
        None,
    )
    .await
    .expect_error(400, "INVALID_QUERY_PARAMETER");
    s.stop().await;
}

#[tokio::test]
async fn roles_other_orgs_unknown_and_malformed_ids() {
    let s = TestServer::start().await;
    let o = s.owner();
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/groups/{}/apiKeys", s.project()),
            Some(json!({"desc": "proj", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let reader = Key {
        public: r.json["publicKey"].as_str().unwrap().into(),
        private: r.json["privateKey"].as_str().unwrap().into(),
    };
    // Another organization, with its own owner key and project.
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/orgs"),
            Some(json!({"name": "Second", "apiKey": {"desc": "first", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let second = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let other = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let second_project = create_project(&s, &other, &second, "Theirs").await;
    let theirs = s
        .call(
            &other,
            Method::GET,
            &format!("{V2}/orgs/{second}/events"),
            None,
        )
        .await;
    theirs.expect(200);
    assert!(types(&theirs).contains(&"ORG_CREATED".to_owned()));
    assert!(!types(&theirs).contains(&"GROUP_CREATED".to_owned()));
    let their_event = results(&theirs)[0]["id"].as_str().unwrap().to_owned();
    let ours = s.call(&o, Method::GET, &org_events(&s, V2, ""), None).await;
    assert!(
        !ours.text.contains(&second),
        "another org's events leak into ours"
    );
    // An event of the org itself (of no project): an ORG_MEMBER reads it through the org log.
    let our_event = results(&ours)
        .into_iter()
        .find(|e| e.get("groupId").is_none())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A project's event is in the project's log only.
    assert!(results(&ours).iter().all(|e| e.get("groupId").is_none()));
    let in_project = s
        .call(&o, Method::GET, &group_events(&s, V2, ""), None)
        .await;
    let our_group_event = results(&in_project)[0]["id"].as_str().unwrap().to_owned();

    let before = s.snapshot().await;
    for base in [V2, V1] {
        // Organization Member reads the org log; Project Read Only is needed for a project's.
        s.call(&member, Method::GET, &org_events(&s, base, ""), None)
            .await
            .expect(200);
        s.call(
            &member,
            Method::GET,
            &org_events(&s, base, &format!("/{our_event}")),
            None,
        )
        .await
        .expect(200);
        s.call(&member, Method::GET, &group_events(&s, base, ""), None)
            .await
            .expect_error(403, "USER_UNAUTHORIZED");
        // Nor does it read that project's events through the org log.
        s.call(
            &member,
            Method::GET,
            &org_events(&s, base, &format!("/{our_group_event}")),
            None,
        )
        .await
        .expect_error(404, "EVENT_NOT_FOUND");
        s.call(
            &member,
            Method::GET,
            &group_events(&s, base, &format!("/{our_group_event}")),
            None,
        )
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
        s.call(&reader, Method::GET, &group_events(&s, base, ""), None)
            .await
            .expect(200);
        s.call(
            &reader,
            Method::GET,
            &group_events(&s, base, &format!("/{our_group_event}")),
            None,
        )
        .await
        .expect(200);

        // Another org: 404 for its log, whatever our role; its events are not ours.
        s.call(
            &o,
            Method::GET,
            &format!("{base}/orgs/{second}/events"),
            None,
        )
        .await
        .expect_error(404, "ORG_NOT_FOUND");
        s.call(
            &o,
            Method::GET,
            &format!("{base}/orgs/{second}/events/{their_event}"),
            None,
        )
        .await
        .expect_error(404, "ORG_NOT_FOUND");
        s.call(
            &o,
            Method::GET,
            &format!("{base}/groups/{second_project}/events"),
            None,
        )
        .await
        .expect_error(404, "GROUP_NOT_FOUND");
        s.call(
            &o,
            Method::GET,
            &org_events(&s, base, &format!("/{their_event}")),
            None,
        )
        .await
        .expect_error(404, "EVENT_NOT_FOUND");
        s.call(&other, Method::GET, &org_events(&s, base, ""), None)
            .await
            .expect_error(404, "ORG_NOT_FOUND");
        s.call(
            &other,
            Method::GET,
            &format!("{base}/orgs/{second}/events/{our_event}"),
            None,
        )
        .await
        .expect_error(404, "EVENT_NOT_FOUND");

        // Unknown and malformed ids.
        let r = s
            .call(
                &o,
                Method::GET,
                &org_events(&s, base, "/0123456789abcdef01234567"),
                None,
            )
            .await;
        r.expect_error(404, "EVENT_NOT_FOUND");
        assert_eq!(r.json["parameters"], json!(["0123456789abcdef01234567"]));
        s.call(
            &o,
            Method::GET,
            &group_events(&s, base, "/0123456789abcdef01234567"),
            None,
        )
        .await
        .expect_error(404, "EVENT_NOT_FOUND");
        for bad in [
            "nope",
            "0123456789ABCDEF01234567",
            "0123456789abcdef0123456",
        ] {
            let r = s
                .call(
                    &o,
                    Method::GET,
                    &org_events(&s, base, &format!("/{bad}")),
                    None,
                )
                .await;
            r.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.json["parameters"], json!(["eventId"]), "{bad}");
            s.call(
                &o,
                Method::GET,
                &group_events(&s, base, &format!("/{bad}")),
                None,
            )
            .await
            .expect_error(400, "VALIDATION_ERROR");
        }
        s.call(&o, Method::GET, &format!("{base}/orgs/xyz/events"), None)
            .await
            .expect_error(400, "VALIDATION_ERROR");
        s.call(&o, Method::GET, &format!("{base}/groups/xyz/events"), None)
            .await
            .expect_error(400, "VALIDATION_ERROR");
        // Reading needs credentials.
        let r = s
            .raw(
                Method::GET,
                &org_events(&s, base, ""),
                &[("accept", "application/vnd.atlas.2023-01-01+json")],
                None,
            )
            .await;
        r.expect_error(401, "UNAUTHORIZED");
        // The log is read-only.
        s.call(&o, Method::POST, &org_events(&s, base, ""), Some(json!({})))
            .await
            .expect_error(405, "METHOD_NOT_ALLOWED");
    }
    assert_eq!(
        before,
        s.snapshot().await,
        "reading the log changed the store"
    );
    s.stop().await;
}

/// Every credential the test makes, in every form it could leak in.
fn forms_of(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    if let Some(rest) = secret.strip_prefix("mdb_sa_sk_") {
        out.push(rest.to_owned());
    }
    if secret.contains('-') {
        out.push(secret.replace('-', ""));
    }
    out
}

fn blob_forms(bytes: &[u8]) -> Vec<String> {
    use base64::Engine;
    vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        base64::engine::general_purpose::STANDARD.encode(bytes),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ]
}

#[tokio::test]
async fn no_secret_key_token_or_hash_reaches_any_event() {
    let s = TestServer::start().await;
    let o = s.owner();
    let mut secrets: Vec<String> = vec![o.private.clone()];

    // API keys: created, changed, assigned, unassigned, deleted; one in a new org.
    let (k, k_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    secrets.push(k.private.clone());
    let keys = format!("{V2}/orgs/{}/apiKeys", s.org());
    s.call(
        &o,
        Method::PATCH,
        &format!("{keys}/{k_id}"),
        Some(json!({"desc": "changed", "roles": ["ORG_READ_ONLY"]})),
    )
    .await
    .expect(200);
    s.call(
        &o,
        Method::POST,
        &format!("{V2}/groups/{}/apiKeys/{k_id}", s.project()),
        Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
    )
    .await
    .expect(204);
    let r = s
        .call(
            &o,
            Method::DELETE,
            &format!("{V2}/groups/{}/apiKeys/{k_id}", s.project()),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let (gone, gone_id) = s.new_org_key(&["ORG_MEMBER"]).await;
    secrets.push(gone.private.clone());
    let r = s
        .call(&o, Method::DELETE, &format!("{keys}/{gone_id}"), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/orgs"),
            Some(json!({"name": "Second", "apiKey": {"desc": "first", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    secrets.push(r.json["apiKey"]["privateKey"].as_str().unwrap().to_owned());

    // Service accounts: created, second secret, token, use, revoke, secret deleted, access
    // list added and deleted, details changed, one deleted.
    let (sa, body) = s.new_service_account(&["ORG_OWNER"]).await;
    secrets.push(sa.secret.clone());
    let first_secret_id = body["secrets"][0]["id"].as_str().unwrap().to_owned();
    let r = s
        .v2024(
            &o,
            Method::POST,
            &s.sa_path(&format!("/{}/secrets", sa.id)),
            Some(json!({"secretExpiresAfterHours": 8})),
        )
        .await;
    r.expect(201);
    let second_secret = r.json["secret"].as_str().unwrap().to_owned();
    secrets.push(second_secret.clone());
    let sa2 = crate::harness::Client {
        id: sa.id.clone(),
        secret: second_secret,
    };
    let token = s.token(&sa2).await;
    secrets.push(token.clone());
    let signature = token.rsplit('.').next().unwrap().to_owned();
    secrets.push(signature);
    let jti = {
        use base64::Engine;
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    // The token makes a change (its own event), then is revoked.
    s.bearer(
        &token,
        Method::PATCH,
        &format!("{V2}/orgs/{}/apiKeys/{k_id}", s.org()),
        Some(json!({"desc": "by token"})),
    )
    .await
    .expect(200);
    s.revoke(&sa2, &token).await.expect(200);
    s.v2024(
        &o,
        Method::DELETE,
        &s.sa_path(&format!("/{}/secrets/{first_secret_id}", sa.id)),
        None,
    )
    .await
    .expect(204);
    let al = s.sa_path(&format!("/{}/accessList", sa.id));
    s.v2024(
        &o,
        Method::POST,
        &al,
        Some(json!([{"cidrBlock": "192.0.2.0/24"}, {"ipAddress": "127.0.0.1"}])),
    )
    .await
    .expect(200);
    s.v2024(&o, Method::DELETE, &format!("{al}/192.0.2.0%2F24"), None)
        .await
        .expect(204);
    s.v2024(
        &o,
        Method::PATCH,
        &s.sa_path(&format!("/{}", sa.id)),
        Some(json!({"name": "Renamed", "roles": ["ORG_MEMBER", "ORG_READ_ONLY"]})),
    )
    .await
    .expect(200);
    let (doomed, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    secrets.push(doomed.secret.clone());
    s.v2024(
        &o,
        Method::DELETE,
        &s.sa_path(&format!("/{}", doomed.id)),
        None,
    )
    .await
    .expect(204);

    // Failed authentications with real principals and wrong (or revoked) credentials: the
    // attempted credential must not be recorded either.
    let wrong_private = "00000000-0000-4000-8000-00000000beef".to_owned();
    let wrong = Key {
        public: k.public.clone(),
        private: wrong_private.clone(),
    };
    s.call(&wrong, Method::GET, &org_events(&s, V2, ""), None)
        .await
        .expect(401);
    let wrong_secret = "mdb_sa_sk_wrongwrongwrongwrongwrongwrongwrong1".to_owned();
    s.token_request(
        Some(&basic(&sa.id, &wrong_secret)),
        "grant_type=client_credentials",
    )
    .await
    .expect(401);
    s.bearer(&token, Method::GET, &org_events(&s, V2, ""), None)
        .await
        .expect(401);
    secrets.push(wrong_private);
    secrets.push(wrong_secret);

    // Everything the log holds, through the API (with raw) and straight from the table.
    let mut served = String::new();
    for base in [V2, V1] {
        for path in [
            org_events(&s, base, "?includeRaw=true&itemsPerPage=500"),
            group_events(&s, base, "?includeRaw=true&itemsPerPage=500"),
        ] {
            let r = s.call(&o, Method::GET, &path, None).await;
            r.expect(200);
            for e in results(&r) {
                let id = e["id"].as_str().unwrap();
                let one = s
                    .call(
                        &o,
                        Method::GET,
                        &format!("{}/{id}?includeRaw=true", path.split('?').next().unwrap()),
                        None,
                    )
                    .await;
                one.expect(200);
                served.push_str(&one.text);
            }
            served.push_str(&r.text);
        }
    }
    let dump: String = s
        .snapshot()
        .await
        .lines()
        .filter(|l| l.starts_with("events:") || l.starts_with("event_counts:"))
        .collect::<Vec<_>>()
        .join("\n");

    // The test reads what it should: the changes above are there.
    for expected in [
        "API_KEY_ROLES_CHANGED",
        "API_KEY_DELETED",
        "SERVICE_ACCOUNT_SECRET_ADDED",
        "SERVICE_ACCOUNT_SECRET_DELETED",
        "SERVICE_ACCOUNT_TOKEN_REVOKED",
        "SERVICE_ACCOUNT_ACCESS_LIST_ENTRY_DELETED",
        "SERVICE_ACCOUNT_DELETED",
    ] {
        assert!(served.contains(expected), "{expected} not served");
        assert!(dump.contains(expected), "{expected} not stored");
    }
    assert!(served.contains(&jti), "the revoked token's id is recorded");
    assert!(served.contains(&sa.id) && dump.contains(&sa.id));

    // Hashes and sealed key material, as stored.
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT secret_hash FROM sa_secrets",
        "SELECT ha1_md5_sealed FROM api_keys",
        "SELECT ha1_sha256_sealed FROM api_keys",
    ] {
        blobs.extend(s.blob_rows(sql).await);
    }
    assert!(blobs.len() >= 4, "hashes and sealed HA1s to look for");
    let mut needles: Vec<String> = secrets.iter().flat_map(|s| forms_of(s)).collect();
    needles.extend(blobs.iter().flat_map(|b| blob_forms(b)));
    for needle in &needles {
        assert!(needle.len() >= 16, "a needle too short to mean anything");
        assert!(
            !served.contains(needle.as_str()),
            "served events hold {needle}"
        );
        assert!(
            !dump.contains(needle.as_str()),
            "stored events hold {needle}"
        );
    }
    s.stop().await;
}

/// Runs `tessera events export` against the test server's data directory.
fn export_cli(s: &TestServer, args: &[&str]) -> std::process::Output {
    let data = s.dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_clear()
        .args(["events", "export", "--data-dir"])
        .arg(&data)
        .args(["--public-url", &s.base]);
    if let Some(url) = &s.database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.args(args).output().unwrap()
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn export_prints_the_api_shape_oldest_first_and_resumes_exactly() {
    let s = TestServer::start().await;
    let o = s.owner();
    // Events in the same millisecond (ties broken by id) and within one second, so the
    // whole-second `created` on a line is not enough to resume from.
    for i in 0..6 {
        if i % 2 == 1 {
            s.clock.advance(chrono::Duration::milliseconds(300));
        }
        s.new_org_key(&["ORG_MEMBER"]).await;
    }
    s.clock.advance(chrono::Duration::seconds(5));
    create_project(&s, &o, s.org(), "Later").await;
    // Another organization's events: only without --org.
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/orgs"),
            Some(json!({"name": "Second"})),
        )
        .await;
    r.expect(201);
    let second = r.json["organization"]["id"].as_str().unwrap().to_owned();

    let api = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V2, "?includeRaw=true&itemsPerPage=500"),
            None,
        )
        .await;
    api.expect(200);
    // The org's log and its projects' logs together: what export prints for the org.
    let mut expected = results(&api);
    assert_eq!(expected.len(), 3 + 6, "{}", api.text);
    let projects = s
        .call(
            &o,
            Method::GET,
            &format!("{V2}/orgs/{}/groups", s.org()),
            None,
        )
        .await;
    for g in results(&projects) {
        let id = g["id"].as_str().unwrap();
        let log = s
            .call(
                &o,
                Method::GET,
                &format!("{V2}/groups/{id}/events?includeRaw=true&itemsPerPage=500"),
                None,
            )
            .await;
        // Links name where each was read; export names the project's log for its events.
        expected.extend(results(&log));
    }
    expected.sort_by(|a, b| {
        (a["created"].as_str(), a["id"].as_str()).cmp(&(b["created"].as_str(), b["id"].as_str()))
    });
    assert_eq!(expected.len(), 4 + 6 + 1, "{}", api.text);

    // The same documents the API serves, oldest first.
    let all = lines(&export_cli(
        &s,
        &["--since", "2026-01-01T00:00:00Z", "--org", s.org()],
    ));
    assert_eq!(all, expected);
    let everything = lines(&export_cli(&s, &["--since", "2026-01-01T00:00:00Z"]));
    assert_eq!(everything.len(), all.len() + 1);
    assert_eq!(everything.last().unwrap()["orgId"], second.as_str());
    assert_eq!(everything.last().unwrap()["eventTypeName"], "ORG_CREATED");
    // --since bounds from below.
    let late = lines(&export_cli(
        &s,
        &["--since", "2026-01-01T00:00:01Z", "--org", s.org()],
    ));
    assert_eq!(late, all[all.len() - 1..].to_vec());

    // Resume after every line: exactly the rest, no duplicate, no gap.
    for cut in 0..all.len() {
        let last = &all[cut];
        let rest = lines(&export_cli(
            &s,
            &[
                "--since",
                last["created"].as_str().unwrap(),
                "--after-id",
                last["id"].as_str().unwrap(),
                "--org",
                s.org(),
            ],
        ));
        assert_eq!(rest, all[cut + 1..].to_vec(), "resumed after line {cut}");
    }

    // A cursor whose two halves disagree, or that names no event, is refused.
    let out = export_cli(
        &s,
        &[
            "--since",
            "2025-01-01T00:00:00Z",
            "--after-id",
            all[2]["id"].as_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--after-id"));
    assert!(out.stdout.is_empty());
    let out = export_cli(
        &s,
        &[
            "--since",
            "2026-01-01T00:00:00Z",
            "--after-id",
            "0123456789abcdef01234567",
        ],
    );
    assert!(!out.status.success());
    for bad in [
        vec!["--since", "yesterday"],
        vec!["--since", "2026-01-01T00:00:00Z", "--org", "nope"],
        vec!["--since", "2026-01-01T00:00:00Z", "--after-id", "nope"],
        vec![],
    ] {
        let out = export_cli(&s, &bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(out.stdout.is_empty());
    }

    // Paging through the store in small batches gives the same lines.
    let config = tessera::config::Config {
        public_url: Some(s.base.clone()),
        ..s.store_config()
    };
    let store = tessera::export::open_store(&config).await.unwrap();
    for batch in [1, 2, 3, 1000] {
        let mut out = Vec::new();
        let n = tessera::export::export(
            &*store,
            &tessera::export::v2_base(&config),
            &tessera::export::ExportRequest {
                since: crate::harness::t0(),
                org: Some(tessera_domain::OrgId::parse(s.org()).unwrap()),
                after_id: None,
                until: crate::harness::t0() + chrono::TimeDelta::days(1),
            },
            batch,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(n as usize, all.len());
        let got: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, all, "batch {batch}");
    }
    // `until` is exclusive. At whole seconds, "stamped before it" is "`created` (whole
    // seconds, RFC 3339) sorts before it"; the last project was made 5.9 s after t0.
    for secs in [0, 5, 86_400] {
        let until = crate::harness::t0() + chrono::TimeDelta::seconds(secs);
        let cut = tessera_domain::time::format(until);
        let want = all
            .iter()
            .filter(|e| e["created"].as_str().unwrap() < cut.as_str())
            .count();
        assert!(secs != 5 || (0 < want && want < all.len()), "{want}");
        let mut out = Vec::new();
        let n = tessera::export::export(
            store.as_ref(),
            &tessera::export::v2_base(&config),
            &tessera::export::ExportRequest {
                since: crate::harness::t0() - chrono::TimeDelta::days(1),
                org: Some(tessera_domain::OrgId::parse(s.org()).unwrap()),
                after_id: None,
                until,
            },
            2,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(n as usize, want, "until {until}");
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), want);
    }
    s.stop().await;
}

#[tokio::test]
async fn failed_authentications_show_their_count() {
    use tessera_domain::{EventType, OrgId};
    use tessera_store::events::{Actor, AuthFailure};
    let s = TestServer::start().await;
    let o = s.owner();
    // Written as the authentication layer does (the aggregation is the store's).
    let config = s.store_config();
    let store = tessera::export::open_store(&config).await.unwrap();
    let failure = |count| AuthFailure {
        event_type: EventType::ApiKeyAuthenticationFailed,
        org_id: Some(OrgId::parse(s.org()).unwrap()),
        principal: o.public.clone(),
        actor: Actor::Anonymous,
        remote_address: Some("192.0.2.7".parse().unwrap()),
        minute: crate::harness::t0(),
        count,
    };
    tessera_store::EventStore::record_auth_failures(&*store, &[failure(3)])
        .await
        .unwrap();
    tessera_store::EventStore::record_auth_failures(&*store, &[failure(2)])
        .await
        .unwrap();
    let r = s
        .call(
            &o,
            Method::GET,
            &org_events(
                &s,
                V2,
                "?eventType=API_KEY_AUTHENTICATION_FAILED&includeRaw=true",
            ),
            None,
        )
        .await;
    r.expect(200);
    let all = results(&r);
    assert_eq!(all.len(), 1, "{}", r.text);
    let ev = &all[0];
    assert_eq!(ev["count"], 5);
    assert_eq!(ev["remoteAddress"], "192.0.2.7");
    assert_eq!(
        ev["raw"],
        json!({"principal": o.public, "actorKind": "ANONYMOUS", "count": 5})
    );
    for absent in ["apiKeyId", "publicKey", "clientId", "groupId"] {
        assert!(ev.get(absent).is_none(), "{absent} in {ev}");
    }
    // Other events carry no top-level count.
    let r = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V2, "?eventType=ORG_CREATED"),
            None,
        )
        .await;
    assert!(results(&r)[0].get("count").is_none());
    s.stop().await;
}

/// All of an org log's ids (newest first) as `key` reads it, page by page (`per` a page),
/// checking that every page carries the same `totalCount`.
async fn walk_org_log(s: &TestServer, key: &Key, query: &str, per: usize) -> (Vec<String>, u64) {
    let mut ids = Vec::new();
    let mut total = None;
    for page in 1.. {
        let sep = if query.is_empty() { "?" } else { "&" };
        let path = org_events(
            s,
            V2,
            &format!("{query}{sep}itemsPerPage={per}&pageNum={page}"),
        );
        let r = s.call(key, Method::GET, &path, None).await;
        r.expect(200);
        let n = r.json["totalCount"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(n), n, "page {page}: totalCount moved");
        let got = results(&r);
        ids.extend(got.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if got.len() < per {
            break;
        }
    }
    (ids, total.unwrap_or(0))
}

/// Issue 16 item 5 (replacing issue 14 item 11.2): an org's log holds the org's own events
/// only, as Atlas' org event views; a project's events are in the project's log, which needs
/// Project Read Only there. Every member of the org reads the same org log, whole, in pages
/// whose `totalCount` agrees; a project's event is not found through the org log.
#[tokio::test]
async fn org_log_shows_only_events_of_places_the_caller_may_read() {
    let s = TestServer::start().await;
    let o = s.owner();
    let org = s.org().to_owned();
    let mine = s.project().to_owned();
    let theirs = create_project(&s, &o, &org, "Elsewhere").await;
    for (i, project) in [&theirs, &mine, &theirs, &theirs, &mine].iter().enumerate() {
        s.call(
            &o,
            Method::PATCH,
            &format!("{V2}/groups/{project}"),
            Some(json!({"name": format!("Renamed-{i}")})),
        )
        .await
        .expect(200);
    }
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("{V2}/groups/{mine}/apiKeys"),
            Some(json!({"desc": "proj", "roles": ["GROUP_READ_ONLY"]})),
        )
        .await;
    r.expect(200);
    let reader = Key {
        public: r.json["publicKey"].as_str().unwrap().into(),
        private: r.json["privateKey"].as_str().unwrap().into(),
    };
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (org_reader, _) = s.new_org_key(&["ORG_READ_ONLY"]).await;
    s.call(
        &reader,
        Method::GET,
        &format!("{V2}/groups/{theirs}/events"),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");

    // The org's log, as the owner reads it: the org's own events only.
    let all = s
        .call(
            &o,
            Method::GET,
            &org_events(&s, V2, "?itemsPerPage=500"),
            None,
        )
        .await;
    all.expect(200);
    let everything = results(&all);
    assert!(everything.iter().all(|e| e.get("groupId").is_none()));
    let ids: Vec<String> = everything
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for per in [2, 3, 500] {
        for key in [&reader, &member, &org_reader] {
            let (got, total) = walk_org_log(&s, key, "", per).await;
            assert_eq!(got, ids, "{per} a page");
            assert_eq!(total, ids.len() as u64);
        }
    }
    // The renames are in the projects' logs, each readable where its reader has a role.
    let (none, total) = walk_org_log(&s, &reader, "?eventType=GROUP_RENAMED", 1).await;
    assert!(none.is_empty() && total == 0);
    let of = |project: &str| {
        format!("{V2}/groups/{project}/events?eventType=GROUP_RENAMED&itemsPerPage=500")
    };
    let mine_renamed = s.call(&reader, Method::GET, &of(&mine), None).await;
    mine_renamed.expect(200);
    assert_eq!(mine_renamed.json["totalCount"], 2);
    s.call(&reader, Method::GET, &of(&theirs), None)
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    let theirs_renamed = s.call(&o, Method::GET, &of(&theirs), None).await;
    assert_eq!(theirs_renamed.json["totalCount"], 3);
    // A project's event is not found through the org log, whoever asks.
    for e in results(&theirs_renamed) {
        let id = e["id"].as_str().unwrap();
        for key in [&o, &org_reader] {
            s.call(
                key,
                Method::GET,
                &org_events(&s, V1, &format!("/{id}")),
                None,
            )
            .await
            .expect_error(404, "EVENT_NOT_FOUND");
        }
    }
    s.stop().await;
}

/// Issue 16 item 5: `GROUP_TAGS_MODIFIED` names the resource tagged (Atlas' view has it), and
/// only a change of the tags writes it.
#[tokio::test]
async fn tag_events_name_their_resource() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    for _ in 0..2 {
        s.call(
            &o,
            Method::PATCH,
            &format!("{V2}/groups/{p}"),
            Some(json!({"tags": [{"key": "env", "value": "dev"}]})),
        )
        .await
        .expect(200);
    }
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("{V2}/groups/{p}/events?eventType=GROUP_TAGS_MODIFIED&includeRaw=true"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 1, "{}", r.text);
    let e = &results(&r)[0];
    assert_eq!(e["resourceType"], "project");
    assert_eq!(e["resourceId"], p.as_str());
    s.stop().await;
}
