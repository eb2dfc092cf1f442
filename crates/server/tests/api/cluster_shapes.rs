//! Cluster documents a typed client can always read (issue 16 items 4 and 6): a body whose
//! known fields have the wrong types is refused and changes nothing; the record reads at
//! 2023-02-01 in the older shape (the Atlas CLI); creates and updates answer at 2024-10-23;
//! `processArgs` is kept with the record; network containers follow the clusters' regions.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Key, Resp, TestServer};

async fn at(s: &TestServer, k: &Key, v: &str, m: Method, path: &str, body: Option<Value>) -> Resp {
    let accept = format!("application/vnd.atlas.{v}+json");
    s.call_with(k, m, path, body, &[("accept", &accept)], Default::default())
        .await
}

fn cluster_body(name: &str, region: &str) -> Value {
    json!({
        "name": name,
        "clusterType": "REPLICASET",
        "replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{
            "providerName": "AWS", "regionName": region, "priority": 7,
            "electableSpecs": {"instanceSize": "M10", "nodeCount": 3, "diskSizeGB": 40}
        }]}]
    })
}

#[tokio::test]
async fn wrong_types_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let base = format!("/api/atlas/v2/groups/{p}/clusters");
    let before = s.snapshot().await;
    for bad in [
        json!({"name": "poison", "configServerType": true, "replicationSpecs": "x"}),
        json!({"name": "poison", "replicationSpecs": [{"regionConfigs": [{"priority": "high"}]}]}),
        json!({"name": "poison", "paused": "no"}),
    ] {
        let r = at(&s, &o, "2024-08-05", Method::POST, &base, Some(bad.clone())).await;
        r.expect_error(400, "VALIDATION_ERROR");
    }
    assert_eq!(before, s.snapshot().await, "a refused cluster was stored");
    at(
        &s,
        &o,
        "2024-08-05",
        Method::POST,
        &base,
        Some(cluster_body("c1", "US_EAST_1")),
    )
    .await
    .expect(201);
    let r = at(
        &s,
        &o,
        "2024-08-05",
        Method::PATCH,
        &format!("{base}/c1"),
        Some(json!({"labels": {"key": "a"}})),
    )
    .await;
    r.expect_error(400, "VALIDATION_ERROR");
    // Fields the description does not know are kept as sent.
    let r = at(
        &s,
        &o,
        "2024-08-05",
        Method::PATCH,
        &format!("{base}/c1"),
        Some(json!({"somethingNew": [1, "two"]})),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["somethingNew"], json!([1, "two"]));
    s.stop().await;
}

#[tokio::test]
async fn versions_the_clients_send() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let base = format!("/api/atlas/v2/groups/{p}/clusters");
    // A create asked at 2024-10-23 answers at 2024-10-23.
    let r = at(
        &s,
        &o,
        "2024-10-23",
        Method::POST,
        &base,
        Some(cluster_body("c1", "US_EAST_1")),
    )
    .await;
    r.expect(201);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.atlas.2024-10-23+json;charset=utf-8"
    );
    // The Atlas CLI reads at 2023-02-01: one shard per spec, the disk size at the top.
    for path in [base.clone(), format!("{base}/c1")] {
        let r = at(&s, &o, "2023-02-01", Method::GET, &path, None).await;
        r.expect(200);
        assert_eq!(
            r.headers["content-type"],
            "application/vnd.atlas.2023-02-01+json;charset=utf-8"
        );
        let doc = if r.json.get("results").is_some() {
            r.json["results"][0].clone()
        } else {
            r.json.clone()
        };
        assert_eq!(doc["replicationSpecs"][0]["numShards"], 1, "{doc}");
        assert_eq!(doc["diskSizeGB"], 40);
    }
    let r = at(
        &s,
        &o,
        "2024-08-05",
        Method::GET,
        &format!("{base}/c1"),
        None,
    )
    .await;
    assert_eq!(
        r.json["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["diskSizeGB"],
        40
    );
    // 2023-01-01 predates the resource: 406.
    at(&s, &o, "2023-01-01", Method::GET, &base, None)
        .await
        .expect_error(406, "INVALID_VERSION_DATE");
    s.stop().await;
}

#[tokio::test]
async fn process_args_and_containers() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let base = format!("/api/atlas/v2/groups/{p}/clusters");
    at(
        &s,
        &o,
        "2024-08-05",
        Method::POST,
        &base,
        Some(cluster_body("c1", "US_EAST_1")),
    )
    .await
    .expect(201);
    at(
        &s,
        &o,
        "2024-08-05",
        Method::POST,
        &base,
        Some(cluster_body("c2", "EU_WEST_1")),
    )
    .await
    .expect(201);
    let pa = format!("{base}/c1/processArgs");
    let r = at(&s, &o, "2024-08-05", Method::GET, &pa, None).await;
    r.expect(200);
    assert_eq!(r.json["javascriptEnabled"], true);
    assert_eq!(r.json["minimumEnabledTlsProtocol"], "TLS1_2");
    let r = at(
        &s,
        &o,
        "2024-08-05",
        Method::PATCH,
        &pa,
        Some(json!({"javascriptEnabled": false, "oplogSizeMB": 2048})),
    )
    .await;
    r.expect(200);
    let r = at(&s, &o, "2023-01-01", Method::GET, &pa, None).await;
    assert_eq!(r.json["javascriptEnabled"], false);
    assert_eq!(r.json["oplogSizeMB"], 2048);
    at(
        &s,
        &o,
        "2024-08-05",
        Method::PATCH,
        &pa,
        Some(json!({"oplogSizeMB": "big"})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    at(
        &s,
        &o,
        "2024-08-05",
        Method::GET,
        &format!("{base}/nope/processArgs"),
        None,
    )
    .await
    .expect_error(404, "CLUSTER_NOT_FOUND");
    let ro = crate::clusters::project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    at(
        &s,
        &ro,
        "2024-08-05",
        Method::PATCH,
        &pa,
        Some(json!({"noTableScan": true})),
    )
    .await
    .expect_error(403, "USER_UNAUTHORIZED");
    // Containers: one per region the clusters use.
    let c = format!("/api/atlas/v2/groups/{p}/containers?providerName=AWS");
    let r = s.call(&o, Method::GET, &c, None).await;
    r.expect(200);
    let regions: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["regionName"].as_str().unwrap())
        .collect();
    assert_eq!(regions, vec!["EU_WEST_1", "US_EAST_1"]);
    let again = s.call(&o, Method::GET, &c, None).await;
    assert_eq!(r.json["results"], again.json["results"], "stable ids");
    let none = s
        .call(
            &o,
            Method::GET,
            &format!("/api/atlas/v2/groups/{p}/containers?providerName=GCP"),
            None,
        )
        .await;
    assert_eq!(none.json["totalCount"], 0);
    s.stop().await;
}
