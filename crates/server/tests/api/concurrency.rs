//! Concurrent writes of every kind against one server: none may fail with a 5xx (SQLite's
//! `database is locked` surfaced as 500 before writes started as writers), and the limits that
//! read before they write still hold.

use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

use crate::harness::TestServer;

/// Tasks per kind of write, and rounds per task.
const TASKS: usize = 6;
const ROUNDS: usize = 6;

async fn mixed_writes(s: Arc<TestServer>, kind: usize, task: usize) -> Vec<(String, u16)> {
    let o = s.owner();
    let mut seen = Vec::new();
    let mut note = |what: &str, r: &crate::harness::Resp| {
        seen.push((format!("{what}: {}", r.text), r.status.as_u16()));
    };
    for round in 0..ROUNDS {
        match kind {
            // Service accounts: create, then delete.
            0 => {
                let r = s
                    .v2024(
                        &o,
                        Method::POST,
                        &s.sa_path(""),
                        Some(
                            json!({"name": format!("sa {task} {round}"), "description": "c",
                            "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24}),
                        ),
                    )
                    .await;
                note("create service account", &r);
                if let Some(id) = r.json["clientId"].as_str() {
                    let r = s
                        .v2024(&o, Method::DELETE, &s.sa_path(&format!("/{id}")), None)
                        .await;
                    note("delete service account", &r);
                }
            }
            // Secrets: create on a fresh account (read, count, insert), then delete.
            1 => {
                let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
                let secrets = s.sa_path(&format!("/{}/secrets", c.id));
                let r = s
                    .v2024(
                        &o,
                        Method::POST,
                        &secrets,
                        Some(json!({"secretExpiresAfterHours": 8})),
                    )
                    .await;
                note("create secret", &r);
                if let Some(id) = r.json["id"].as_str() {
                    let r = s
                        .v2024(&o, Method::DELETE, &format!("{secrets}/{id}"), None)
                        .await;
                    note("delete secret", &r);
                }
            }
            // Tokens: mint, then revoke (a durable write).
            2 => {
                let (c, _) = s.new_service_account(&["ORG_MEMBER"]).await;
                for _ in 0..3 {
                    let t = s.token(&c).await;
                    let r = s.revoke(&c, &t).await;
                    note("revoke", &r);
                }
            }
            // Projects: create, patch, delete.
            3 => {
                let r = s
                    .call(
                        &o,
                        Method::POST,
                        "/api/atlas/v2/groups",
                        Some(json!({"name": format!("p{task}-{round}"), "orgId": s.org()})),
                    )
                    .await;
                note("create project", &r);
                if let Some(id) = r.json["id"].as_str() {
                    let path = format!("/api/atlas/v2/groups/{id}");
                    let r = s
                        .call(
                            &o,
                            Method::PATCH,
                            &path,
                            Some(json!({"name": format!("q{task}-{round}")})),
                        )
                        .await;
                    note("patch project", &r);
                    let r = s.call(&o, Method::DELETE, &path, None).await;
                    note("delete project", &r);
                }
            }
            // API keys: create, patch, assign to the bootstrap project (read, then upsert).
            _ => {
                let base = format!("/api/atlas/v2/orgs/{}/apiKeys", s.org());
                let r = s
                    .call(
                        &o,
                        Method::POST,
                        &base,
                        Some(json!({"desc": "k", "roles": ["ORG_MEMBER"]})),
                    )
                    .await;
                note("create api key", &r);
                if let Some(id) = r.json["id"].as_str() {
                    let r = s
                        .call(
                            &o,
                            Method::PATCH,
                            &format!("{base}/{id}"),
                            Some(json!({"desc": "k2", "roles": ["ORG_READ_ONLY"]})),
                        )
                        .await;
                    note("patch api key", &r);
                    let r = s
                        .call(
                            &o,
                            Method::POST,
                            &format!("/api/atlas/v2/groups/{}/apiKeys/{id}", s.project()),
                            Some(json!([{"roles": ["GROUP_READ_ONLY"]}])),
                        )
                        .await;
                    note("assign api key", &r);
                }
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_every_kind_never_fail() {
    let s = Arc::new(TestServer::start_with(|c| c.oauth_rate_limit_per_minute = 0).await);
    // One account that every "limit" task races to add a secret to: it starts with one
    // unexpired secret, so exactly one more may be added.
    let (limited, _) = s.new_service_account(&["ORG_MEMBER"]).await;
    let limited_secrets = s.sa_path(&format!("/{}/secrets", limited.id));

    let mut tasks = Vec::new();
    for kind in 0..5 {
        for task in 0..TASKS {
            tasks.push(tokio::spawn(mixed_writes(s.clone(), kind, task)));
        }
    }
    let mut limit_tasks = Vec::new();
    for _ in 0..(TASKS * 2) {
        let s = s.clone();
        let path = limited_secrets.clone();
        limit_tasks.push(tokio::spawn(async move {
            let r = s
                .v2024(
                    &s.owner(),
                    Method::POST,
                    &path,
                    Some(json!({"secretExpiresAfterHours": 8})),
                )
                .await;
            (r.text.clone(), r.status.as_u16())
        }));
    }

    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let mut limit_results = Vec::new();
    for t in limit_tasks {
        limit_results.push(t.await.unwrap());
    }
    let failures: Vec<_> = all
        .iter()
        .chain(limit_results.iter())
        .filter(|(_, status)| *status >= 500)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} writes failed: {:?}",
        failures.len(),
        all.len() + limit_results.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    let refused: Vec<_> = all
        .iter()
        .filter(|(_, st)| !(200..300).contains(st))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");

    // The limit held under the race: one creation won, the rest were refused.
    let won = limit_results.iter().filter(|(_, st)| *st == 201).count();
    let over = limit_results.iter().filter(|(_, st)| *st == 409).count();
    assert_eq!((won, over), (1, TASKS * 2 - 1), "{limit_results:?}");
    let r = s
        .v2024(
            &s.owner(),
            Method::GET,
            &s.sa_path(&format!("/{}", limited.id)),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["secrets"].as_array().unwrap().len(), 2, "{}", r.text);
}
