//! API-key access lists (issue 7 item 4): list, add, get, delete on both surfaces; enforcement
//! on Digest requests from client sockets bound to 127.0.0.2 / 127.0.0.3 / ::1; bad input with
//! the store unchanged; the events written; the self lock-out refusal.

use reqwest::Method;
use serde_json::{json, Value};
use std::net::IpAddr;

use crate::harness::{Key, Resp, TestServer};

/// A server listening on every address (IPv4 and IPv6), so clients can connect from
/// 127.0.0.2, 127.0.0.3 and ::1.
async fn dual_stack_server() -> TestServer {
    let mut s = TestServer::start_with(|c| c.listen = "[::]:0".parse().unwrap()).await;
    s.base = format!("http://127.0.0.1:{}", s.running.addr.port());
    s
}

/// A Digest call whose TCP connection comes from `from`.
async fn call_from(
    s: &TestServer,
    from: &str,
    key: &Key,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let from: IpAddr = from.parse().unwrap();
    let host = match from {
        IpAddr::V4(_) => "127.0.0.1".to_owned(),
        IpAddr::V6(_) => "[::1]".to_owned(),
    };
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let auth = s
        .digest_header(key, method.as_str(), path, Default::default())
        .await;
    let accept = if path.starts_with("/api/atlas/v2") {
        "application/vnd.atlas.2023-01-01+json"
    } else {
        "application/json"
    };
    let mut rb = client
        .request(
            method,
            format!("http://{host}:{}{path}", s.running.addr.port()),
        )
        .header("accept", accept)
        .header("authorization", auth);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

fn acl_path(s: &TestServer, key_id: &str, rest: &str) -> String {
    format!(
        "/api/atlas/v2/orgs/{}/apiKeys/{key_id}/accessList{rest}",
        s.org()
    )
}

fn v1_acl_path(s: &TestServer, key_id: &str, rest: &str) -> String {
    format!(
        "/api/public/v1.0/orgs/{}/apiKeys/{key_id}/accessList{rest}",
        s.org()
    )
}

fn entries(r: &Resp) -> Vec<String> {
    r.json["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", r.text))
        .iter()
        .map(|e| {
            e["ipAddress"]
                .as_str()
                .or(e["cidrBlock"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_key_with_a_list_is_refused_from_other_addresses_on_both_surfaces() {
    let s = dual_stack_server().await;
    let owner = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_OWNER"]).await;
    let org_v2 = format!("/api/atlas/v2/orgs/{}", s.org());
    let org_v1 = format!("/api/public/v1.0/orgs/{}", s.org());

    // Empty list: every address is allowed. This also puts the key in the Digest cache.
    for from in ["127.0.0.2", "127.0.0.3", "::1"] {
        call_from(&s, from, &k, Method::GET, &org_v2, None)
            .await
            .expect(200);
    }

    let r = s
        .call(
            &owner,
            Method::POST,
            &acl_path(&s, &kid, ""),
            Some(json!([{"ipAddress": "127.0.0.2"}, {"cidrBlock": "::1/128"}])),
        )
        .await;
    r.expect(200);
    assert_eq!(entries(&r), ["127.0.0.2", "::1/128"]);
    assert_eq!(r.json["totalCount"], 2);

    for path in [&org_v2, &org_v1] {
        // Allowed addresses, an IPv4 entry and an IPv6 block.
        call_from(&s, "127.0.0.2", &k, Method::GET, path, None)
            .await
            .expect(200);
        call_from(&s, "::1", &k, Method::GET, path, None)
            .await
            .expect(200);
        // Any other address: 403, although the Digest response is right (and the key was
        // cached before the list changed).
        let r = call_from(&s, "127.0.0.3", &k, Method::GET, path, None).await;
        r.expect_error(403, "IP_ADDRESS_NOT_ON_ACCESS_LIST");
        assert_eq!(r.json["parameters"], json!(["127.0.0.3"]));
        assert_eq!(
            r.json["detail"],
            "IP address 127.0.0.3 is not allowed to access this resource."
        );
        let r = call_from(&s, "127.0.0.1", &k, Method::GET, path, None).await;
        r.expect_error(403, "IP_ADDRESS_NOT_ON_ACCESS_LIST");
    }
    // The refusal comes only after the key is proven: a wrong password is a 401.
    let wrong = Key {
        public: k.public.clone(),
        private: "00000000-0000-4000-8000-000000000000".into(),
    };
    call_from(&s, "127.0.0.3", &wrong, Method::GET, &org_v2, None)
        .await
        .expect(401);
    // Other keys are not affected.
    call_from(&s, "127.0.0.3", &owner, Method::GET, &org_v2, None)
        .await
        .expect(200);

    // Usage: two admitted requests each from 127.0.0.2 and ::1, shown before the flush...
    let list = s
        .call(&owner, Method::GET, &acl_path(&s, &kid, ""), None)
        .await;
    list.expect(200);
    let v4 = &list.json["results"][0];
    assert_eq!(v4["count"], 2, "{}", list.text);
    assert_eq!(v4["lastUsedAddress"], "127.0.0.2");
    assert_eq!(v4["lastUsed"], "2026-01-01T00:00:00Z");
    assert_eq!(list.json["results"][1]["lastUsedAddress"], "::1");
    // ...and the same after it (written to the store once, not counted twice).
    let state = &s.running.state;
    state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
        .unwrap();
    assert!(s.snapshot().await.contains("api_key_access_list:'"),);
    let after = s
        .call(&owner, Method::GET, &acl_path(&s, &kid, ""), None)
        .await;
    assert_eq!(after.json["results"][0]["count"], 2, "{}", after.text);
    assert_eq!(after.json["results"][0]["lastUsedAddress"], "127.0.0.2");
    let stored = state
        .store
        .get_api_key(tessera_domain::ApiKeyId::parse(&kid).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.access_list[0].request_count, 2);

    // Removing the IPv6 entry (by another key) takes effect on the next request.
    s.call(
        &owner,
        Method::DELETE,
        &acl_path(&s, &kid, "/::1%2F128"),
        None,
    )
    .await
    .expect(204);
    call_from(&s, "::1", &k, Method::GET, &org_v2, None)
        .await
        .expect_error(403, "IP_ADDRESS_NOT_ON_ACCESS_LIST");
    // The last entry removed: the empty list allows everyone again.
    s.call(
        &owner,
        Method::DELETE,
        &acl_path(&s, &kid, "/127.0.0.2"),
        None,
    )
    .await
    .expect(204);
    for from in ["127.0.0.3", "::1"] {
        call_from(&s, from, &k, Method::GET, &org_v1, None)
            .await
            .expect(200);
    }
    s.stop().await;
}

#[tokio::test]
async fn list_get_and_delete_on_both_surfaces_with_url_encoded_entries() {
    let s = TestServer::start().await;
    let owner = s.owner();
    let (_, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    let r = s
        .call(
            &owner,
            Method::POST,
            &v1_acl_path(&s, &kid, ""),
            Some(json!([
                {"cidrBlock": "192.0.2.0/24"},
                {"ipAddress": "2001:db8::7"},
                {"cidrBlock": "2001:db8:1::/48"},
                {"ipAddress": "198.51.100.4"}
            ])),
        )
        .await;
    r.expect(200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json["totalCount"], 4);

    // Paginated, with the subset's field names for API keys.
    let page = s
        .call(
            &owner,
            Method::GET,
            &format!("{}?itemsPerPage=3&pageNum=2", acl_path(&s, &kid, "")),
            None,
        )
        .await;
    page.expect(200);
    assert_eq!(
        page.headers["content-type"],
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    assert_eq!(page.json["totalCount"], 4);
    assert_eq!(page.json["results"].as_array().unwrap().len(), 1);
    let rels: Vec<&str> = page.json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert!(
        rels.contains(&"previous") && rels.contains(&"self"),
        "{rels:?}"
    );

    let one = s
        .call(
            &owner,
            Method::GET,
            &acl_path(&s, &kid, "/192.0.2.0%2F24"),
            None,
        )
        .await;
    one.expect(200);
    let mut fields: Vec<&str> = one
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["cidrBlock", "created", "links"], "{}", one.text);
    assert_eq!(one.json["cidrBlock"], "192.0.2.0/24");
    // Never used: no `count` (the description's minimum is 1).
    assert!(one.json.get("count").is_none(), "{}", one.text);
    assert_eq!(one.json["created"], "2026-01-01T00:00:00Z");
    assert_eq!(
        one.json["links"][0]["href"],
        format!(
            "{}/api/atlas/v2/orgs/{}/apiKeys/{kid}/accessList/192.0.2.0%2F24",
            s.base,
            s.org()
        )
    );
    let v6 = s
        .call(
            &owner,
            Method::GET,
            &v1_acl_path(&s, &kid, "/2001:db8::7"),
            None,
        )
        .await;
    v6.expect(200);
    assert_eq!(v6.json["ipAddress"], "2001:db8::7");
    assert!(v6.json.get("cidrBlock").is_none());
    // The path may also name a block in lowercase %2f.
    s.call(
        &owner,
        Method::GET,
        &acl_path(&s, &kid, "/2001:db8:1::%2f48"),
        None,
    )
    .await
    .expect(200);

    // An ORG_MEMBER key reads (Organization Member) but may not change the list.
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.call(&member, Method::GET, &acl_path(&s, &kid, ""), None)
        .await
        .expect(200);

    s.call(
        &owner,
        Method::DELETE,
        &v1_acl_path(&s, &kid, "/192.0.2.0%2F24"),
        None,
    )
    .await
    .expect(204);
    s.call(
        &owner,
        Method::DELETE,
        &acl_path(&s, &kid, "/2001:db8::7"),
        None,
    )
    .await
    .expect(204);
    s.call(
        &owner,
        Method::GET,
        &acl_path(&s, &kid, "/192.0.2.0%2F24"),
        None,
    )
    .await
    .expect_error(404, "ACCESS_LIST_ENTRY_NOT_FOUND");
    let left = s
        .call(&owner, Method::GET, &acl_path(&s, &kid, ""), None)
        .await;
    assert_eq!(entries(&left), ["198.51.100.4", "2001:db8:1::/48"]);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_wrong_role_and_unknown_ids_change_nothing() {
    let s = TestServer::start().await;
    let owner = s.owner();
    let (_, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    let (member, _) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.call(
        &owner,
        Method::POST,
        &acl_path(&s, &kid, ""),
        Some(json!([{"ipAddress": "192.0.2.1"}])),
    )
    .await
    .expect(200);
    // A second organization with its own key.
    let r = s
        .call(
            &owner,
            Method::POST,
            "/api/atlas/v2/orgs",
            Some(json!({"name": "Second", "apiKey": {"desc": "first", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let second = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let second_key = r.json["apiKey"]["id"].as_str().unwrap().to_owned();
    let before = s.snapshot().await;
    // Its key through its org (where the caller has no role): 404 ORG_NOT_FOUND, never 403;
    // through ours: 404 API_KEY_NOT_FOUND.
    for (m, body) in [
        (Method::GET, None),
        (Method::POST, Some(json!([{"ipAddress": "192.0.2.9"}]))),
    ] {
        s.call(
            &owner,
            m.clone(),
            &format!("/api/atlas/v2/orgs/{second}/apiKeys/{second_key}/accessList"),
            body.clone(),
        )
        .await
        .expect_error(404, "ORG_NOT_FOUND");
        s.call(&owner, m, &acl_path(&s, &second_key, ""), body)
            .await
            .expect_error(404, "API_KEY_NOT_FOUND");
    }
    s.call(
        &owner,
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{second}/apiKeys/{second_key}/accessList/192.0.2.1"),
        None,
    )
    .await
    .expect_error(404, "ORG_NOT_FOUND");

    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"ipAddress": format!("10.0.{}.{}", i / 250, i % 250)}))
        .collect();
    let bad_bodies = [
        json!([{"ipAddress": "300.1.1.1"}]),
        json!([{"ipAddress": "192.0.2.0/24"}]),
        json!([{"ipAddress": "not an address"}]),
        json!([{"cidrBlock": "192.0.2.7/24"}]),
        json!([{"cidrBlock": "192.0.2.0/33"}]),
        json!([{"cidrBlock": "2001:db8::/129"}]),
        json!([{"cidrBlock": "192.0.2.0"}]),
        json!([{"ipAddress": "192.0.2.9", "cidrBlock": "192.0.2.0/24"}]),
        json!([{}]),
        json!([{"ipAddress": "192.0.2.9"}, {"ipAddress": "nope"}]),
        json!([{"ipAddress": "192.0.2.9", "comment": "x"}]),
        json!([]),
        json!({"ipAddress": "192.0.2.9"}),
        Value::Array(too_many),
    ];
    for body in bad_bodies {
        let r = s
            .call(
                &owner,
                Method::POST,
                &acl_path(&s, &kid, ""),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text);
        assert!(
            ["VALIDATION_ERROR", "INVALID_JSON", "INVALID_ATTRIBUTE"].contains(&r.error_code()),
            "{body}: {}",
            r.text
        );
    }
    // 200 entries at once is the limit, not past it (checked on a fresh key below).

    // Malformed entries in the path.
    for bad in ["/300.1.1.1", "/abc", "/192.0.2.7%2F24", "/192.0.2.0%2F40"] {
        for m in [Method::GET, Method::DELETE] {
            s.call(&owner, m.clone(), &acl_path(&s, &kid, bad), None)
                .await
                .expect_error(400, "VALIDATION_ERROR");
        }
    }
    // Unknown entries and keys; a malformed key id.
    for m in [Method::GET, Method::DELETE] {
        s.call(&owner, m.clone(), &acl_path(&s, &kid, "/192.0.2.2"), None)
            .await
            .expect_error(404, "ACCESS_LIST_ENTRY_NOT_FOUND");
        s.call(
            &owner,
            m.clone(),
            &acl_path(&s, "aaaaaaaaaaaaaaaaaaaaaaaa", "/192.0.2.1"),
            None,
        )
        .await
        .expect_error(404, "API_KEY_NOT_FOUND");
    }
    s.call(
        &owner,
        Method::POST,
        &acl_path(&s, "aaaaaaaaaaaaaaaaaaaaaaaa", ""),
        Some(json!([{"ipAddress": "192.0.2.9"}])),
    )
    .await
    .expect_error(404, "API_KEY_NOT_FOUND");
    s.call(&owner, Method::GET, &acl_path(&s, "NOT-AN-ID", ""), None)
        .await
        .expect_error(400, "VALIDATION_ERROR");
    // Another organization's id: 404, never 403.
    let foreign = format!("/api/atlas/v2/orgs/aaaaaaaaaaaaaaaaaaaaaaaa/apiKeys/{kid}/accessList");
    s.call(&owner, Method::GET, &foreign, None)
        .await
        .expect_error(404, "ORG_NOT_FOUND");
    // Wrong role: an ORG_MEMBER may read but not add or delete (Organization Owner).
    s.call(
        &member,
        Method::POST,
        &acl_path(&s, &kid, ""),
        Some(json!([{"ipAddress": "192.0.2.9"}])),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    s.call(
        &member,
        Method::DELETE,
        &acl_path(&s, &kid, "/192.0.2.1"),
        None,
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    assert_eq!(
        before,
        s.snapshot().await,
        "a refused request changed the store"
    );

    // Exactly 200 entries are accepted.
    let (_, other) = s.new_org_key(&["ORG_MEMBER"]).await;
    let two_hundred: Vec<Value> = (0..200)
        .map(|i| json!({"ipAddress": format!("10.1.{}.{}", i / 250, i % 250)}))
        .collect();
    let r = s
        .call(
            &owner,
            Method::POST,
            &acl_path(&s, &other, ""),
            Some(Value::Array(two_hundred)),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 200);
    s.stop().await;
}

/// The events table's rows of `event_type`: (target JSON, actor public key, remote address).
async fn events_of(
    s: &TestServer,
    event_type: &str,
) -> Vec<(Value, Option<String>, Option<String>)> {
    s.text_rows(
        "SELECT target, actor_public_key, remote_address FROM events WHERE event_type = ? ORDER BY id",
        &[event_type],
    )
    .await
    .into_iter()
    .map(|r| {
        (
            serde_json::from_str(r[0].as_deref().unwrap()).unwrap(),
            r[1].clone(),
            r[2].clone(),
        )
    })
    .collect()
}

#[tokio::test]
async fn every_added_and_deleted_entry_is_an_event() {
    let s = TestServer::start().await;
    let owner = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_MEMBER"]).await;
    s.call(
        &owner,
        Method::POST,
        &acl_path(&s, &kid, ""),
        Some(json!([{"ipAddress": "192.0.2.1"}, {"cidrBlock": "2001:db8::/32"}])),
    )
    .await
    .expect(200);
    // A duplicate is ignored (200) and writes no event; the new entry beside it does.
    let r = s
        .call(
            &owner,
            Method::POST,
            &acl_path(&s, &kid, ""),
            Some(json!([{"ipAddress": "192.0.2.1"}, {"ipAddress": "192.0.2.3"}])),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalCount"], 3);
    s.call(
        &owner,
        Method::DELETE,
        &acl_path(&s, &kid, "/2001:db8::%2F32"),
        None,
    )
    .await
    .expect(204);

    let added = events_of(&s, "API_KEY_ACCESS_LIST_ENTRY_ADDED").await;
    let entries: Vec<&str> = added
        .iter()
        .map(|(t, _, _)| t["whitelistEntry"].as_str().unwrap())
        .collect();
    assert_eq!(entries, ["192.0.2.1/32", "2001:db8::/32", "192.0.2.3/32"]);
    for (target, actor, addr) in &added {
        assert_eq!(target["targetApiKeyId"], kid.as_str());
        assert_eq!(target["targetPublicKey"], k.public.as_str());
        assert_eq!(actor.as_deref(), Some(owner.public.as_str()));
        assert_eq!(addr.as_deref(), Some("127.0.0.1"));
    }
    let deleted = events_of(&s, "API_KEY_ACCESS_LIST_ENTRY_DELETED").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].0["whitelistEntry"], "2001:db8::/32");
    assert_eq!(deleted[0].0["targetApiKeyId"], kid.as_str());
    // No private key in any event.
    let dump = s.snapshot().await;
    for line in dump.lines().filter(|l| l.starts_with("events:")) {
        assert!(!line.contains(&k.private) && !line.contains(&owner.private));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_key_cannot_remove_the_entries_its_own_request_needs() {
    let s = dual_stack_server().await;
    let owner = s.owner();
    let (k, kid) = s.new_org_key(&["ORG_OWNER"]).await;
    s.call(
        &owner,
        Method::POST,
        &acl_path(&s, &kid, ""),
        Some(json!([{"ipAddress": "127.0.0.2"}, {"cidrBlock": "10.0.0.0/8"}])),
    )
    .await
    .expect(200);
    let before = s.snapshot().await;

    // The key itself, from 127.0.0.2: removing 127.0.0.2 would leave [10.0.0.0/8].
    let r = call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::DELETE,
        &acl_path(&s, &kid, "/127.0.0.2"),
        None,
    )
    .await;
    r.expect_error(400, "CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY");
    assert!(
        r.json["detail"].as_str().unwrap().contains("127.0.0.2"),
        "the reason names the address: {}",
        r.text
    );
    // Nothing changed (the usage counters are still in memory).
    assert_eq!(before, s.snapshot().await);

    // Entries the request does not depend on may go.
    call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::DELETE,
        &acl_path(&s, &kid, "/10.0.0.0%2F8"),
        None,
    )
    .await
    .expect(204);
    // Another entry admits the caller too: then 127.0.0.2 may go.
    call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::POST,
        &acl_path(&s, &kid, ""),
        Some(json!([{"cidrBlock": "127.0.0.0/8"}, {"ipAddress": "192.0.2.1"}])),
    )
    .await
    .expect(200);
    call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::DELETE,
        &acl_path(&s, &kid, "/127.0.0.2"),
        None,
    )
    .await
    .expect(204);
    // Over v1.0 the same rule: 127.0.0.0/8 is now the entry the caller needs.
    call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::DELETE,
        &v1_acl_path(&s, &kid, "/127.0.0.0%2F8"),
        None,
    )
    .await
    .expect_error(400, "CANNOT_REMOVE_CALLER_ACCESS_LIST_ENTRY");
    // Another key (the owner) may remove it: the rule protects a key from itself.
    s.call(
        &owner,
        Method::DELETE,
        &acl_path(&s, &kid, "/192.0.2.1"),
        None,
    )
    .await
    .expect(204);
    // The only entry left: removing it empties the list, which admits everyone.
    call_from(
        &s,
        "127.0.0.2",
        &k,
        Method::DELETE,
        &acl_path(&s, &kid, "/127.0.0.0%2F8"),
        None,
    )
    .await
    .expect(204);
    call_from(&s, "::1", &k, Method::GET, &acl_path(&s, &kid, ""), None)
        .await
        .expect(200);
    s.stop().await;
}
