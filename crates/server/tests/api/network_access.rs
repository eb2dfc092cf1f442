//! The project IP access list (issue 16 item 3): add, list, get, status, update, delete on
//! `accessList` and v1.0's `whitelist`; temporary entries ended by the clock; events only for
//! what changed; roles; bad input that changes nothing; `ipinfo`, `ipAddresses` and the
//! control plane's addresses.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::clusters::{group_event_types, new_project, project_key, second_org};
use crate::harness::{t0, TestServer};

fn acl(project: &str, rest: &str) -> String {
    format!("/api/atlas/v2/groups/{project}/accessList{rest}")
}

fn entries(r: &crate::harness::Resp) -> Vec<Value> {
    r.json["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn entries_are_added_listed_updated_and_removed() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "net").await;
    let end = (t0() + Duration::days(2)).to_rfc3339();
    let r = s
        .call(
            &o,
            Method::POST,
            &acl(&p, ""),
            Some(json!([
                {"ipAddress": "192.0.2.7", "comment": "office"},
                {"cidrBlock": "198.51.100.0/24"},
                {"awsSecurityGroup": "sg-903004f8", "comment": "peered"},
                {"ipAddress": "203.0.113.9", "deleteAfterDate": end},
            ])),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 4, "{}", r.text);
    let by_key = |list: &[Value], k: &str| -> Value {
        list.iter()
            .find(|e| e["cidrBlock"] == k || e["awsSecurityGroup"] == k)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let listed = entries(&s.call(&o, Method::GET, &acl(&p, ""), None).await);
    let ip = by_key(&listed, "192.0.2.7/32");
    assert_eq!(ip["ipAddress"], "192.0.2.7");
    assert_eq!(ip["comment"], "office");
    assert_eq!(ip["groupId"], p.as_str());
    assert!(ip["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/groups/{p}/accessList/192.0.2.7%2F32")));
    let block = by_key(&listed, "198.51.100.0/24");
    assert!(block.get("ipAddress").is_none(), "{block}");
    assert!(block.get("comment").is_none());
    assert_eq!(by_key(&listed, "sg-903004f8")["comment"], "peered");
    assert_eq!(
        by_key(&listed, "203.0.113.9/32")["deleteAfterDate"],
        "2026-01-03T00:00:00Z"
    );
    // One entry, by each form of its path.
    for path in [
        "192.0.2.7",
        "192.0.2.7%2F32",
        "198.51.100.0%2F24",
        "sg-903004f8",
    ] {
        s.call(&o, Method::GET, &acl(&p, &format!("/{path}")), None)
            .await
            .expect(200);
        let st = s
            .call(&o, Method::GET, &acl(&p, &format!("/{path}/status")), None)
            .await;
        st.expect(200);
        assert_eq!(st.json, json!({"STATUS": "ACTIVE"}));
    }
    // Sent again unchanged: nothing written. A new comment: one update.
    let before = group_event_types(&s, &p).await;
    s.call(
        &o,
        Method::POST,
        &acl(&p, ""),
        Some(json!([{"ipAddress": "192.0.2.7", "comment": "office"}])),
    )
    .await
    .expect(200);
    assert_eq!(group_event_types(&s, &p).await, before);
    s.call(
        &o,
        Method::POST,
        &acl(&p, ""),
        Some(json!([{"cidrBlock": "192.0.2.7/32", "comment": "home"}])),
    )
    .await
    .expect(200);
    let one = s.call(&o, Method::GET, &acl(&p, "/192.0.2.7"), None).await;
    assert_eq!(one.json["comment"], "home");
    // The temporary entry ends at its date, by the clock.
    s.clock.advance(Duration::days(2));
    let after = entries(&s.call(&o, Method::GET, &acl(&p, ""), None).await);
    assert_eq!(after.len(), 3, "{after:?}");
    s.call(&o, Method::GET, &acl(&p, "/203.0.113.9"), None)
        .await
        .expect_error(404, "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND");
    s.call(&o, Method::DELETE, &acl(&p, "/203.0.113.9"), None)
        .await
        .expect_error(404, "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND");
    // Removed once.
    s.call(&o, Method::DELETE, &acl(&p, "/198.51.100.0%2F24"), None)
        .await
        .expect(204);
    s.call(&o, Method::DELETE, &acl(&p, "/198.51.100.0%2F24"), None)
        .await
        .expect_error(404, "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND");
    let types: Vec<String> = group_event_types(&s, &p)
        .await
        .into_iter()
        .filter(|t| t.starts_with("NETWORK_PERMISSION_ENTRY_"))
        .collect();
    assert_eq!(
        types,
        [
            "NETWORK_PERMISSION_ENTRY_ADDED",
            "NETWORK_PERMISSION_ENTRY_ADDED",
            "NETWORK_PERMISSION_ENTRY_ADDED",
            "NETWORK_PERMISSION_ENTRY_ADDED",
            "NETWORK_PERMISSION_ENTRY_UPDATED",
            "NETWORK_PERMISSION_ENTRY_REMOVED",
        ]
    );
    // The same list under v1.0's names, at both v1.0 bases.
    for base in ["/api/public/v1.0", "/api/atlas/v1.0"] {
        for name in ["whitelist", "accessList"] {
            let r = s
                .call(&o, Method::GET, &format!("{base}/groups/{p}/{name}"), None)
                .await;
            r.expect(200);
            assert_eq!(r.json["totalCount"], 2, "{base} {name}: {}", r.text);
        }
    }
    let r = s
        .call(
            &o,
            Method::POST,
            &format!("/api/public/v1.0/groups/{p}/whitelist"),
            Some(json!([{"ipAddress": "192.0.2.8"}])),
        )
        .await;
    r.expect(200);
    s.call(
        &o,
        Method::DELETE,
        &format!("/api/atlas/v1.0/groups/{p}/whitelist/192.0.2.8"),
        None,
    )
    .await
    .expect(204);
    s.stop().await;
}

#[tokio::test]
async fn bad_entries_change_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "net").await;
    s.call(
        &o,
        Method::POST,
        &acl(&p, ""),
        Some(json!([{"ipAddress": "192.0.2.7"}])),
    )
    .await
    .expect(200);
    let before = s.snapshot().await;
    let far = (t0() + Duration::days(8)).to_rfc3339();
    let past = (t0() - Duration::seconds(1)).to_rfc3339();
    let soon = (t0() + Duration::days(1)).to_rfc3339();
    for body in [
        json!([]),
        json!([{"cidrBlock": "10.0.0.1/8"}]),
        json!([{"cidrBlock": "10.0.0.0/33"}]),
        json!([{"ipAddress": "192.0.2.300"}]),
        json!([{"ipAddress": "192.0.2.9", "cidrBlock": "192.0.2.0/24"}]),
        json!([{"comment": "nothing"}]),
        json!([{"awsSecurityGroup": "sg-nothex"}]),
        json!([{"awsSecurityGroup": "sg-903004f8", "deleteAfterDate": soon}]),
        json!([{"ipAddress": "192.0.2.9", "deleteAfterDate": far}]),
        json!([{"ipAddress": "192.0.2.9", "deleteAfterDate": past}]),
        json!([{"ipAddress": "192.0.2.9", "deleteAfterDate": "tomorrow"}]),
        json!([{"ipAddress": "192.0.2.9", "comment": "x".repeat(81)}]),
        json!([{"ipAddress": "192.0.2.9", "color": "red"}]),
        // One entry twice (a block and the address it is) in one body.
        json!([{"ipAddress": "192.0.2.9"}, {"cidrBlock": "192.0.2.9/32"}]),
        // A good entry with a bad one: neither is written.
        json!([{"ipAddress": "192.0.2.10"}, {"cidrBlock": "nope"}]),
        json!({"ipAddress": "192.0.2.11"}),
    ] {
        let r = s
            .call(&o, Method::POST, &acl(&p, ""), Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
    s.call(&o, Method::GET, &acl(&p, "/not-an-address"), None)
        .await
        .expect(400);
    assert_eq!(s.snapshot().await, before);
    s.stop().await;
}

#[tokio::test]
async fn roles_decide_who_reads_and_who_changes() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = new_project(&s, "net").await;
    let reader = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    let entry = Some(json!([{"ipAddress": "192.0.2.7"}]));
    s.call(&reader, Method::GET, &acl(&p, ""), None)
        .await
        .expect(200);
    s.call(&reader, Method::POST, &acl(&p, ""), entry.clone())
        .await
        .expect(403);
    s.call(&o, Method::POST, &acl(&p, ""), entry.clone())
        .await
        .expect(200);
    s.call(&reader, Method::GET, &acl(&p, "/192.0.2.7"), None)
        .await
        .expect(200);
    s.call(&reader, Method::DELETE, &acl(&p, "/192.0.2.7"), None)
        .await
        .expect(403);
    // Another organization's owner does not learn the project exists.
    let (theirs, _) = second_org(&s).await;
    s.call(&theirs, Method::GET, &acl(&p, ""), None)
        .await
        .expect(404);
    s.call(&theirs, Method::POST, &acl(&p, ""), entry)
        .await
        .expect(404);
    s.stop().await;
}

#[tokio::test]
async fn ipinfo_ip_addresses_and_the_control_plane() {
    let s = TestServer::start().await;
    let o = s.owner();
    let r = s.call(&o, Method::GET, "/api/private/ipinfo", None).await;
    r.expect(200);
    assert_eq!(r.json, json!({"currentIpv4Address": "127.0.0.1"}));
    s.raw(Method::GET, "/api/private/ipinfo", &[], None)
        .await
        .expect(401);
    let p = s.project().to_owned();
    crate::clusters::create_cluster(&s, &o, &p, "c1").await;
    let r = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{p}/ipAddresses"),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["groupId"], p.as_str());
    assert_eq!(r.json["services"]["clusters"][0]["clusterName"], "c1");
    let r = s
        .raw(
            Method::GET,
            "/api/atlas/v2/unauth/controlPlaneIPAddresses",
            &[("accept", "application/vnd.atlas.2023-11-15+json")],
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.json["inbound"],
        json!({"aws": {}, "azure": {}, "gcp": {}})
    );
    s.stop().await;
}
