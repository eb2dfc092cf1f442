//! X.509 for database users and what a cluster's mongod pulls (issue 16 item 2): managed
//! certificates signed by the project's CA (verified with webpki), listed without their keys;
//! customer CAs set and disabled; the operator endpoint with the users, SCRAM credentials,
//! custom roles, CA and access list, an ETag, and operator credentials only.

use std::sync::Arc;

use reqwest::Method;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{json, Value};

use crate::clusters::project_key;
use crate::employee_access::operator;
use crate::harness::{basic, TestServer};
use tessera_domain::Clock;

fn users(p: &str, rest: &str) -> String {
    format!("/api/atlas/v2/groups/{p}/databaseUsers{rest}")
}

async fn managed_user(s: &TestServer, p: &str, name: &str) {
    s.call(
        &s.owner(),
        Method::POST,
        &users(p, ""),
        Some(
            json!({"databaseName": "$external", "username": name, "x509Type": "MANAGED",
                    "roles": [{"roleName": "read", "databaseName": "sales"}]}),
        ),
    )
    .await
    .expect(201);
}

fn ca_of(s: &str) -> String {
    s.to_owned()
}

#[tokio::test]
async fn managed_certificates_chain_to_the_project_ca() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    managed_user(&s, &p, "reporting").await;
    let certs = users(&p, "/reporting/certs");
    let r = s
        .call(
            &o,
            Method::POST,
            &certs,
            Some(json!({"monthsUntilExpiration": 2})),
        )
        .await;
    r.expect(201);
    let pem = r.json.as_str().unwrap().to_owned();
    assert!(pem.contains("-----BEGIN CERTIFICATE-----"));
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----"));
    // The project's CA, as the operator endpoint gives it, verifies the certificate.
    let (id, secret) = operator(&s, "provisioner").await;
    s.v2024(
        &o,
        Method::POST,
        &format!("/api/atlas/v2/groups/{p}/clusters"),
        Some(json!({"name": "c1"})),
    )
    .await
    .expect(201);
    let access = s
        .raw(
            Method::GET,
            &format!("/api/tessera/v1/groups/{p}/clusters/c1/access"),
            &[("authorization", &basic(&id, &secret))],
            None,
        )
        .await;
    access.expect(200);
    let ca_pem = ca_of(
        access.json["x509"]["managedCaCertificate"]
            .as_str()
            .unwrap(),
    );
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
    let leaf = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(s.clock.now().timestamp()).unwrap() + 60,
    ));
    verifier
        .verify_client_cert(&leaf, &[], now)
        .expect("the certificate chains to the project's CA");
    // A second certificate is signed by the same CA.
    let r2 = s.call(&o, Method::POST, &certs, Some(json!({}))).await;
    r2.expect(201);
    let leaf2 = CertificateDer::from_pem_slice(r2.json.as_str().unwrap().as_bytes()).unwrap();
    verifier.verify_client_cert(&leaf2, &[], now).unwrap();
    // Listed without keys; expired ones leave the list.
    let list = s.call(&o, Method::GET, &certs, None).await;
    list.expect(200);
    assert_eq!(list.json["totalCount"], 2);
    assert_eq!(list.json["results"][0]["subject"], "CN=reporting");
    assert!(!list.text.contains("PRIVATE KEY"));
    s.clock.advance(chrono::Duration::days(62));
    let list = s.call(&o, Method::GET, &certs, None).await;
    assert_eq!(
        list.json["totalCount"], 1,
        "the 2-month certificate expired"
    );
    // Bad input and other kinds of user: refused, nothing recorded.
    let before = s.snapshot().await;
    s.call(
        &o,
        Method::POST,
        &certs,
        Some(json!({"monthsUntilExpiration": 25})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::POST,
        &users(&p, "/nobody/certs"),
        Some(json!({})),
    )
    .await
    .expect_error(404, "USERNAME_NOT_FOUND");
    let ro = project_key(&s, &p, &["GROUP_READ_ONLY"]).await;
    let after_key = s.snapshot().await;
    s.call(&ro, Method::POST, &certs, Some(json!({})))
        .await
        .expect_error(403, "USER_UNAUTHORIZED");
    s.call(&ro, Method::GET, &certs, None).await.expect(200);
    assert_ne!(before, after_key);
    assert_eq!(after_key, s.snapshot().await);
    s.stop().await;
}

#[tokio::test]
async fn customer_x509_is_set_and_disabled() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let us = format!("/api/atlas/v2/groups/{p}/userSecurity");
    let ca = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    };
    s.call(
        &o,
        Method::PATCH,
        &us,
        Some(json!({"customerX509": {"cas": "not a pem"}})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    s.call(
        &o,
        Method::PATCH,
        &us,
        Some(json!({"ldap": {"hostname": "ldap.example.com"}})),
    )
    .await
    .expect_error(400, "VALIDATION_ERROR");
    let r = s
        .call(
            &o,
            Method::PATCH,
            &us,
            Some(json!({"customerX509": {"cas": ca}})),
        )
        .await;
    r.expect(202);
    assert_eq!(r.json["customerX509"]["cas"], Value::String(ca.clone()));
    let r = s
        .call(&o, Method::DELETE, &format!("{us}/customerX509"), None)
        .await;
    r.expect(202);
    assert_eq!(r.json["customerX509"], json!({}));
    // Disabling what is off writes nothing.
    let before = s.snapshot().await;
    s.call(&o, Method::DELETE, &format!("{us}/customerX509"), None)
        .await
        .expect(202);
    assert_eq!(before, s.snapshot().await);
    let types = crate::clusters::group_event_types(&s, &p).await;
    assert!(types.contains(&"X509_CUSTOMER_CA_UPDATED".to_owned()));
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "X509_CUSTOMER_CA_DISABLED")
            .count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_cluster_pulls_what_it_enforces() {
    let s = TestServer::start().await;
    let o = s.owner();
    let p = s.project().to_owned();
    let g = |rest: &str| format!("/api/atlas/v2/groups/{p}{rest}");
    for name in ["c1", "c2"] {
        s.v2024(
            &o,
            Method::POST,
            &g("/clusters"),
            Some(json!({"name": name})),
        )
        .await
        .expect(201);
    }
    s.call(
        &o,
        Method::POST,
        &g("/customDBRoles/roles"),
        Some(json!({"roleName": "killer", "actions": [{"action": "KILL_OP", "resources": [{"cluster": true}]}]})),
    )
    .await
    .expect(202);
    for body in [
        json!({"databaseName": "admin", "username": "app", "password": "correct horse battery",
               "roles": [{"roleName": "killer", "databaseName": "admin"}]}),
        json!({"databaseName": "admin", "username": "only-c2", "password": "correct horse battery",
               "roles": [{"roleName": "read", "databaseName": "x"}], "scopes": [{"name": "c2", "type": "CLUSTER"}]}),
    ] {
        s.call(&o, Method::POST, &g("/databaseUsers"), Some(body))
            .await
            .expect(201);
    }
    s.call(
        &o,
        Method::POST,
        &g("/accessList"),
        Some(json!([{"cidrBlock": "198.51.100.0/24"}])),
    )
    .await
    .expect(200);
    let (id, secret) = operator(&s, "provisioner").await;
    let auth = basic(&id, &secret);
    let url = format!("/api/tessera/v1/groups/{p}/clusters/c1/access");
    let r = s
        .raw(Method::GET, &url, &[("authorization", &auth)], None)
        .await;
    r.expect(200);
    let names: Vec<&str> = r.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app"], "only-c2 is scoped to another cluster");
    let app = &r.json["users"][0];
    assert_eq!(app["mechanisms"], json!(["SCRAM-SHA-1", "SCRAM-SHA-256"]));
    assert_eq!(app["credentials"]["SCRAM-SHA-256"]["iterationCount"], 15000);
    assert!(app["credentials"]["SCRAM-SHA-1"]["storedKey"].is_string());
    assert!(!r.text.contains("correct horse"), "never a password");
    assert_eq!(
        r.json["roles"][0]["privileges"][0]["actions"],
        json!(["killop"])
    );
    assert_eq!(
        r.json["networkAccess"],
        json!([{"cidrBlock": "198.51.100.0/24"}])
    );
    // The ETag holds until something changes.
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let same = s
        .raw(
            Method::GET,
            &url,
            &[("authorization", &auth), ("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(same.status, 304);
    s.call(
        &o,
        Method::DELETE,
        &g("/accessList/198.51.100.0%2F24"),
        None,
    )
    .await
    .expect(204);
    let changed = s
        .raw(
            Method::GET,
            &url,
            &[("authorization", &auth), ("if-none-match", &etag)],
            None,
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.json["networkAccess"], json!([]));
    // Operator credentials only; unknown clusters are 404.
    let digest = s.call(&o, Method::GET, &url, None).await;
    digest.expect_error(403, "OPERATOR_CREDENTIALS_REQUIRED");
    s.raw(Method::GET, &url, &[], None).await.expect(401);
    s.raw(
        Method::GET,
        &format!("/api/tessera/v1/groups/{p}/clusters/nope/access"),
        &[("authorization", &auth)],
        None,
    )
    .await
    .expect_error(404, "CLUSTER_NOT_FOUND");
    s.stop().await;
}
