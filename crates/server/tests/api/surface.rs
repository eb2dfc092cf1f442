//! Cross-cutting rules (CONTRACT §2-4): versions, pretty, envelope, pagination, the error
//! shape for every error, request ids, health and metrics.

use reqwest::Method;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn versioned_media_types() {
    let s = TestServer::start().await;
    let o = s.owner();
    let path = "/api/atlas/v2/orgs";
    let ok = |accept: &'static str| [("accept", accept)];
    for (accept, served) in [
        ("application/vnd.atlas.2023-01-01+json", "2023-01-01"),
        ("application/vnd.atlas.2025-06-01+json", "2023-01-01"),
        (
            "application/vnd.atlas.2024-08-05+json;charset=utf-8",
            "2023-01-01",
        ),
    ] {
        let r = s
            .call_with(&o, Method::GET, path, None, &ok(accept), Default::default())
            .await;
        r.expect(200);
        assert_eq!(
            r.headers["content-type"],
            format!("application/vnd.atlas.{served}+json;charset=utf-8")
        );
    }
    for accept in [
        "application/json",
        "*/*",
        "application/vnd.atlas.2023-01-01+xml",
    ] {
        let r = s
            .call_with(&o, Method::GET, path, None, &ok(accept), Default::default())
            .await;
        r.expect_error(406, "INVALID_ACCEPT_HEADER");
    }
    let r = s
        .call_with(
            &o,
            Method::GET,
            path,
            None,
            &ok("application/vnd.atlas.2022-12-31+json"),
            Default::default(),
        )
        .await;
    r.expect_error(406, "INVALID_VERSION_DATE");
    let r = s
        .call_with(&o, Method::GET, path, None, &[], Default::default())
        .await;
    r.expect_error(406, "INVALID_ACCEPT_HEADER");
    // v1.0 is plain JSON whatever the Accept header says.
    let r = s
        .call_with(
            &o,
            Method::GET,
            "/api/public/v1.0/orgs",
            None,
            &[],
            Default::default(),
        )
        .await;
    r.expect(200);
    assert_eq!(r.headers["content-type"], "application/json");
    // Request bodies may use the vnd type.
    let r = s
        .call_with(
            &o,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": "vnd-body", "orgId": s.org()})),
            &[
                ("accept", "application/vnd.atlas.2023-01-01+json"),
                ("content-type", "application/vnd.atlas.2023-01-01+json"),
            ],
            Default::default(),
        )
        .await;
    r.expect(200);
    s.stop().await;
}

#[tokio::test]
async fn pretty_and_envelope() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}?pretty=true", s.org()),
            None,
        )
        .await;
    r.expect(200);
    assert!(r.text.contains("\n  \"id\""), "{}", r.text);
    let plain = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}", s.org()),
            None,
        )
        .await;
    assert!(!plain.text.contains('\n'));

    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/orgs/{}?envelope=true", s.org()),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["status"], 200);
    assert_eq!(r.json["content"]["id"], s.org());
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/orgs?envelope=true", None)
        .await;
    assert_eq!(r.json["status"], 200);
    assert_eq!(r.json["results"][0]["id"], s.org());
    // Errors are enveloped too, with HTTP 200.
    let r = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/orgs/ffffffffffffffffffffffff?envelope=true",
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.json["status"], 404);
    assert_eq!(r.json["content"]["errorCode"], "ORG_NOT_FOUND");
    // A created resource keeps its status inside the envelope.
    let r = s
        .call(
            &o,
            Method::POST,
            "/api/atlas/v2/groups?envelope=true",
            Some(json!({"name": "env", "orgId": s.org()})),
        )
        .await;
    assert_eq!(r.json["status"], 200);
    assert_eq!(r.json["content"]["name"], "env");

    for bad in ["pretty=yes", "envelope=1", "pretty=true&pretty=false"] {
        let before = s.snapshot().await;
        let r = s
            .call(
                &o,
                Method::POST,
                &format!("/api/atlas/v2/groups?{bad}"),
                Some(json!({"name": "never", "orgId": s.org()})),
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{bad}: {}", r.text);
        r.error_code();
        assert_eq!(before, s.snapshot().await, "{bad} changed the store");
    }
    s.stop().await;
}

#[tokio::test]
async fn pagination_links_and_counts() {
    let s = TestServer::start().await;
    let o = s.owner();
    for i in 0..4 {
        s.call(
            &o,
            Method::POST,
            "/api/atlas/v2/groups",
            Some(json!({"name": format!("p{i}"), "orgId": s.org()})),
        )
        .await
        .expect(200);
    }
    // 5 projects in all (bootstrap + 4).
    let r = s
        .call(&o, Method::GET, "/api/atlas/v2/groups?itemsPerPage=2", None)
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 5);
    assert_eq!(r.json["results"].as_array().unwrap().len(), 2);
    let links = r.json["links"].as_array().unwrap();
    assert_eq!(links[0]["rel"], "self");
    assert_eq!(
        links[0]["href"],
        format!("{}/api/atlas/v2/groups?itemsPerPage=2", s.base)
    );
    assert_eq!(links[1]["rel"], "next");
    let next = links[1]["href"]
        .as_str()
        .unwrap()
        .strip_prefix(&s.base)
        .unwrap()
        .to_owned();
    assert_eq!(next, "/api/atlas/v2/groups?itemsPerPage=2&pageNum=2");
    let r2 = s.call(&o, Method::GET, &next, None).await;
    let rels: Vec<&str> = r2.json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, ["self", "next", "previous"]);
    assert_ne!(r2.json["results"][0]["id"], r.json["results"][0]["id"]);
    let r3 = s
        .call(
            &o,
            Method::GET,
            "/api/atlas/v2/groups?itemsPerPage=2&pageNum=3&includeCount=false",
            None,
        )
        .await;
    assert!(r3.json.get("totalCount").is_none());
    assert_eq!(r3.json["results"].as_array().unwrap().len(), 1);
    let rels: Vec<&str> = r3.json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, ["self", "previous"]);
    // Past the end: an empty page, not an error.
    let r4 = s
        .call(&o, Method::GET, "/api/atlas/v2/groups?pageNum=9", None)
        .await;
    assert_eq!(r4.json["results"].as_array().unwrap().len(), 0);
    assert_eq!(r4.json["totalCount"], 5);

    for bad in [
        "itemsPerPage=0",
        "itemsPerPage=501",
        "itemsPerPage=abc",
        "pageNum=0",
        "pageNum=-1",
        "includeCount=maybe",
        "pageNum=1.5",
    ] {
        let r = s
            .call(
                &o,
                Method::GET,
                &format!("/api/atlas/v2/groups?{bad}"),
                None,
            )
            .await;
        r.expect_error(400, "INVALID_QUERY_PARAMETER");
    }
    s.stop().await;
}

#[tokio::test]
async fn framework_errors_use_our_shape() {
    let s = TestServer::start().await;
    let o = s.owner();
    let before = s.snapshot().await;
    // Unknown route, on an API surface and outside.
    s.call(&o, Method::GET, "/api/atlas/v2/nothing/here", None)
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    s.raw(Method::GET, "/elsewhere", &[], None)
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    // Wrong method.
    s.call(&o, Method::PUT, "/api/atlas/v2/orgs", None)
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED");
    // Malformed JSON, wrong types, unknown fields, empty body, wrong content type.
    let post = |body: &'static [u8], ct: &'static str| {
        let s = &s;
        let o = &o;
        async move {
            let auth = s
                .digest_header(o, "POST", "/api/atlas/v2/groups", Default::default())
                .await;
            s.raw(
                Method::POST,
                "/api/atlas/v2/groups",
                &[
                    ("accept", "application/vnd.atlas.2023-01-01+json"),
                    ("content-type", ct),
                    ("authorization", &auth),
                ],
                Some(body.to_vec()),
            )
            .await
        }
    };
    post(b"{\"name\": ", "application/json")
        .await
        .expect_error(400, "INVALID_JSON");
    post(b"{\"name\": \"a\",", "application/json")
        .await
        .expect_error(400, "INVALID_JSON");
    post(b"{\"name\": 5, \"orgId\": \"x\"}", "application/json")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    post(b"{\"name\": \"a\"}", "application/json")
        .await
        .expect_error(400, "VALIDATION_ERROR");
    post(
        b"{\"name\": \"a\", \"orgId\": \"aaaaaaaaaaaaaaaaaaaaaaaa\", \"bogus\": 1}",
        "application/json",
    )
    .await
    .expect_error(400, "INVALID_ATTRIBUTE");
    post(b"", "application/json")
        .await
        .expect_error(400, "MISSING_REQUEST_BODY");
    post(b"name=a", "application/x-www-form-urlencoded")
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    // Oversized body (default limit 64 KiB).
    let big = json!({"name": "x".repeat(70 * 1024), "orgId": s.org()});
    s.call(&o, Method::POST, "/api/atlas/v2/groups", Some(big))
        .await
        .expect_error(413, "REQUEST_TOO_LARGE");
    assert_eq!(before, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let s = TestServer::start().await;
    let o = s.owner();
    let responses = [
        s.raw(Method::GET, "/healthz", &[], None).await,
        s.raw(Method::GET, "/api/atlas/v2/orgs", &[], None).await,
        s.call(&o, Method::GET, "/api/atlas/v2/orgs", None).await,
        s.call(&o, Method::GET, "/api/atlas/v2/bogus", None).await,
    ];
    let mut ids: Vec<String> = responses
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    // A client-supplied id is echoed.
    let r = s
        .raw(
            Method::GET,
            "/healthz",
            &[("x-request-id", "abc-123")],
            None,
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    s.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = TestServer::start().await;
    let r = s.raw(Method::GET, "/healthz", &[], None).await;
    r.expect(200);
    s.raw(Method::GET, "/readyz", &[], None).await.expect(200);
    s.call(&s.owner(), Method::GET, "/api/atlas/v2/orgs", None)
        .await
        .expect(200);
    let m = s.raw(Method::GET, "/metrics", &[], None).await;
    m.expect(200);
    assert!(m.text.contains("http_requests_total"), "{}", m.text);
    assert!(
        m.text.contains("route=\"/api/atlas/v2/orgs\""),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("http_request_duration_seconds_bucket"),
        "{}",
        m.text
    );
    s.stop().await;
}
