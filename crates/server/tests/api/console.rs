//! The browser console's security rules over real HTTP (a cookie-keeping client; the real
//! browser suite is tests/console): sign-in with a password and a single-use TOTP code,
//! sessions that end when a role is removed, CSRF and same-site checks on every form, the
//! route table deciding what a person may do, sign-in limits and their events, secrets shown
//! once.

use std::collections::BTreeMap;

use regex::Regex;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;
use tessera_domain::Clock;

/// A browser: keeps cookies, never follows redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    set_cookies: Vec<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn csrf(&self) -> String {
        let re = Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        re.captures(&self.body)
            .map(|c| c[1].to_owned())
            .unwrap_or_default()
    }
}

impl Browser {
    fn new(s: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.base.clone(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        site: &str,
    ) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("sec-fetch-site", site);
        if let Some(f) = form {
            req = req.form(f);
        }
        let res = req.send().await.unwrap();
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap().to_owned();
            let (kv, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            self.set_cookies.push(v);
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None, "none").await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form), "same-origin")
            .await
    }
}

fn code(secret_b32: &str, s: &TestServer) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret).unwrap();
    totp.generate(s.clock.now().timestamp() as u64)
}

/// Password, then the TOTP step (enrolling if needed); the browser and the TOTP secret.
async fn sign_in(
    s: &TestServer,
    username: &str,
    password: &str,
    secret: Option<&str>,
) -> (Browser, String) {
    let mut b = Browser::new(s);
    let login = b.get("/login").await;
    assert_eq!(login.status, 200);
    let token = login.csrf();
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/login/totp");
    let page = b.get("/login/totp").await;
    let secret = match secret {
        Some(known) => {
            assert!(
                !page.body.contains("totp-secret"),
                "an enrolled secret is never shown again"
            );
            known.to_owned()
        }
        None => {
            let re = Regex::new(r#"id="totp-secret">([A-Z2-7]+)<"#).unwrap();
            re.captures(&page.body).expect("enrolment shows the secret")[1].to_owned()
        }
    };
    let r = b
        .post(
            "/login/totp",
            &[("csrf", &page.csrf()), ("code", &code(&secret, s))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/");
    (b, secret)
}

async fn new_person(s: &TestServer, name: &str, role: &str) -> String {
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/atlas/v2/users",
            Some(json!({
                "username": name, "password": "a long enough password",
                "firstName": "Rea", "lastName": "Der",
                "roles": [{"orgId": s.org(), "roleName": role}],
            })),
        )
        .await;
    r.expect(200);
    r.json["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn console_sign_in_is_a_password_then_a_single_use_totp_code() {
    let s = TestServer::start().await;
    let (owner, pass) = (s.boot.owner_username.clone(), s.boot.owner_password.clone());
    let mut b = Browser::new(&s);
    let token = b.get("/login").await.csrf();
    // A wrong password: 401 and the form again, no sign-in in progress.
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("username", &owner),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong email or password."));
    assert!(b.get("/login/totp").await.location().ends_with("/login"));
    // Without the login form's token, even the right password is refused.
    let r = b
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("username", &owner),
                ("password", &pass),
            ],
        )
        .await;
    assert_eq!(r.status, 403);

    let (mut b, secret) = sign_in(&s, &owner, &pass, None).await;
    let session = b.cookies["__Host-tessera-session"].clone();
    let set = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-tessera-session="))
        .unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("<h1>Organizations</h1>"));
    // The store keeps the session's keyed hash, never its id.
    let rows = s
        .text_rows("SELECT id_hash FROM console_sessions", &[])
        .await;
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0][0].as_deref(), Some(session.as_str()));

    // The same code again (same 30 s step) is refused: a code is used once.
    let mut again = Browser::new(&s);
    let token = again.get("/login").await.csrf();
    again
        .post(
            "/login",
            &[("csrf", &token), ("username", &owner), ("password", &pass)],
        )
        .await;
    let page = again.get("/login/totp").await;
    assert!(!page.body.contains("totp-secret"));
    let r = again
        .post(
            "/login/totp",
            &[("csrf", &page.csrf()), ("code", &code(&secret, &s))],
        )
        .await;
    assert_eq!(r.status, 401, "a replayed code must be refused");
    // The next step's code is accepted (the sign-in was put back for another try).
    s.clock.advance(chrono::Duration::seconds(30));
    let r = again
        .post(
            "/login/totp",
            &[("csrf", &page.csrf()), ("code", &code(&secret, &s))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // Signing out ends the session in the store.
    let csrf = b.get("/").await.csrf();
    let r = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.location(), "/login");
    b.cookies.insert("__Host-tessera-session".into(), session);
    assert_eq!(b.get("/").await.location(), "/login");
    s.stop().await;
}

#[tokio::test]
async fn removing_a_role_or_the_person_ends_their_sessions_at_the_next_request() {
    let s = TestServer::start().await;
    let id = new_person(&s, "member@example.com", "ORG_MEMBER").await;
    let (mut b, secret) = sign_in(&s, "member@example.com", "a long enough password", None).await;
    assert_eq!(b.get(&format!("/orgs/{}", s.org())).await.status, 200);
    // A role change that removes ORG_MEMBER: the session ends at once.
    s.call(
        &s.owner(),
        Method::PUT,
        &format!("/api/atlas/v2/orgs/{}/users/{id}/roles", s.org()),
        Some(json!({"orgRoles": ["ORG_READ_ONLY"]})),
    )
    .await
    .expect(200);
    let r = b.get(&format!("/orgs/{}", s.org())).await;
    assert_eq!(r.location(), "/login?ended=1");
    assert_eq!(
        b.get("/").await.location(),
        "/login",
        "the session is gone for good"
    );

    // Signed in again with the role held now, then removed from the organization.
    s.clock.advance(chrono::Duration::seconds(30));
    let (mut b, _) = sign_in(
        &s,
        "member@example.com",
        "a long enough password",
        Some(&secret),
    )
    .await;
    assert_eq!(b.get(&format!("/orgs/{}", s.org())).await.status, 200);
    s.call_with(
        &s.owner(),
        Method::DELETE,
        &format!("/api/atlas/v2/orgs/{}/users/{id}", s.org()),
        None,
        &[("accept", "application/vnd.atlas.2025-02-19+json")],
        tessera_protocols::digest::DigestAlgorithm::Sha256,
    )
    .await
    .expect(204);
    assert_eq!(b.get("/").await.location(), "/login?ended=1");
    let n = s
        .text_rows("SELECT CAST(COUNT(*) AS TEXT) FROM console_sessions", &[])
        .await;
    assert_eq!(n[0][0].as_deref(), Some("0"));
    s.stop().await;
}

#[tokio::test]
async fn forms_need_this_sessions_token_and_this_site_and_the_route_tables_leave() {
    let s = TestServer::start().await;
    let (mut b, _) = sign_in(
        &s,
        &s.boot.owner_username.clone(),
        &s.boot.owner_password.clone(),
        None,
    )
    .await;
    let list = format!("/groups/{}/accessList", s.project());
    let page = b.get(&list).await;
    assert!(page.body.contains("Add entry"));
    let csrf = page.csrf();
    // No token, another session's token, another site: refused, nothing written.
    let r = b.post(&list, &[("entry", "203.0.113.7")]).await;
    assert_eq!(r.status, 403);
    let r = b
        .post(&list, &[("csrf", "AAAA"), ("entry", "203.0.113.7")])
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .send(
            Method::POST,
            &list,
            Some(&[("csrf", &csrf), ("entry", "203.0.113.7")]),
            "cross-site",
        )
        .await;
    assert_eq!(r.status, 403);
    let api = s
        .call(
            &s.owner(),
            Method::GET,
            &format!("/api/atlas/v2{list}"),
            None,
        )
        .await;
    assert_eq!(api.json["totalCount"], 0, "{}", api.text);
    // With both: added, then back to the page (post/redirect/get).
    let r = b
        .post(
            &list,
            &[
                ("csrf", &csrf),
                ("entry", "203.0.113.7"),
                ("comment", "<b>office</b>"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&list).await;
    assert!(
        page.body.contains("&lt;b&gt;office&lt;/b&gt;"),
        "markup is shown as text"
    );
    assert!(!page.body.contains("<b>office</b>"));

    // A read-only member sees no change buttons, and the API's table refuses their forged post.
    new_person(&s, "reader@example.com", "ORG_READ_ONLY").await;
    let (mut r_b, _) = sign_in(&s, "reader@example.com", "a long enough password", None).await;
    let accounts = format!("/orgs/{}/serviceAccounts", s.org());
    let page = r_b.get(&accounts).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Create service account"));
    let forged = r_b
        .post(
            &accounts,
            &[
                ("csrf", &page.csrf()),
                ("name", "sneaky"),
                ("description", "x"),
                ("role", "ORG_OWNER"),
                ("hours", "24"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let access = r_b.get(&list).await;
    assert!(!access.body.contains("Add entry") && !access.body.contains("Remove 203.0.113.7"));
    let forged = r_b
        .post(
            &format!("{list}/remove"),
            &[("csrf", &access.csrf()), ("entry", "203.0.113.7")],
        )
        .await;
    assert_eq!(forged.status, 403);
    // Pages carry the strict CSP.
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_new_service_account_secret_is_shown_once_and_never_in_a_url() {
    let s = TestServer::start().await;
    let (mut b, _) = sign_in(
        &s,
        &s.boot.owner_username.clone(),
        &s.boot.owner_password.clone(),
        None,
    )
    .await;
    let accounts = format!("/orgs/{}/serviceAccounts", s.org());
    let csrf = b.get(&accounts).await.csrf();
    let r = b
        .post(
            &accounts,
            &[
                ("csrf", &csrf),
                ("name", "ci"),
                ("description", "CI"),
                ("role", "ORG_MEMBER"),
                ("hours", "24"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location().to_owned();
    assert!(
        !to.contains("mdb_sa_sk_"),
        "the secret is never in a URL: {to}"
    );
    let first = b.get(&to).await;
    let re = Regex::new(r#"id="new-secret">(mdb_sa_sk_[^<]+)<"#).unwrap();
    let secret = re.captures(&first.body).expect("shown once")[1].to_owned();
    assert!(!b.get(&to).await.body.contains(&secret), "and only once");
    // The secret works: the account gets a token with it.
    let client_id = to.rsplit('/').next().unwrap();
    s.token_request(
        Some(&basic(client_id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .expect(200);
    s.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_limited_and_each_failure_is_an_event() {
    let s = TestServer::start().await;
    let owner = s.boot.owner_username.clone();
    let mut b = Browser::new(&s);
    let token = b.get("/login").await.csrf();
    for _ in 0..5 {
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", &token),
                    ("username", &owner),
                    ("password", "guess"),
                ],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("username", &owner),
                ("password", &s.boot.owner_password.clone()),
            ],
        )
        .await;
    assert_eq!(r.status, 429, "even the right password waits");
    assert!(r.body.contains("Too many attempts"));
    assert!(r.headers.contains_key("retry-after"));
    s.clock.advance(chrono::Duration::seconds(61));
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("username", &owner),
                ("password", &s.boot.owner_password.clone()),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let state = &s.running.state;
    state
        .registry
        .flush(state.store.as_ref(), state.clock.now())
        .await
        .unwrap();
    let events = s
        .call(
            &s.owner(),
            Method::GET,
            &format!(
                "/api/atlas/v2/orgs/{}/events?eventType=CONSOLE_AUTHENTICATION_FAILED",
                s.org()
            ),
            None,
        )
        .await;
    events.expect(200);
    let total: i64 = events.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 6, "{}", events.text);
    assert!(
        !events.text.contains("guess"),
        "what was typed is never recorded"
    );
    s.stop().await;
}

#[tokio::test]
async fn employee_access_is_granted_revoked_and_every_use_listed_on_the_cluster_page() {
    let s = TestServer::start().await;
    crate::clusters::create_cluster(&s, &s.owner(), s.project(), "Cluster0").await;
    let (mut b, _) = sign_in(
        &s,
        &s.boot.owner_username.clone(),
        &s.boot.owner_password.clone(),
        None,
    )
    .await;
    let page_path = format!("/groups/{}/clusters/Cluster0", s.project());
    let page = b.get(&page_path).await;
    assert!(page.body.contains("Grant access") && !page.body.contains("Revoke access"));
    let until = (s.clock.now() + chrono::Duration::hours(5))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let r = b
        .post(
            &format!("{page_path}/grant"),
            &[
                ("csrf", &page.csrf()),
                ("level", "CLUSTER_DATABASE_LOGS"),
                ("until", &until),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&page_path).await;
    assert!(
        page.body.contains("CLUSTER_DATABASE_LOGS until"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("5 h 0 min left"),
        "the time left, by the server's clock"
    );
    // A MongoDB employee uses the access: the page lists it.
    let (id, secret) = crate::employee_access::operator(&s, "support-desk").await;
    let r = crate::employee_access::decide(
        &s,
        Some(&basic(&id, &secret)),
        json!({"staffMember": "alice@support", "groupId": s.project(), "clusterName": "Cluster0", "grantType": "CLUSTER_DATABASE_LOGS"}),
    )
    .await;
    assert_eq!(r.json["allowed"], true, "{}", r.text);
    let page = b.get(&page_path).await;
    assert!(
        page.body.contains("alice@support"),
        "the use is listed: {}",
        page.body
    );
    let r = b
        .post(&format!("{page_path}/revoke"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(r.status, 303);
    let page = b.get(&page_path).await;
    assert!(page.body.contains("Current grant: none"));
    s.stop().await;
}

#[tokio::test]
async fn an_invitation_is_accepted_in_the_console() {
    let s = TestServer::start().await;
    new_person(&s, "newcomer@example.com", "ORG_MEMBER").await;
    // A second organization (with its own owner key) invites them.
    let r = s
        .call(
            &s.owner(),
            Method::POST,
            "/api/public/v1.0/orgs",
            Some(json!({"name": "Second", "apiKey": {"desc": "k", "roles": ["ORG_OWNER"]}})),
        )
        .await;
    r.expect(201);
    let second = r.json["organization"]["id"].as_str().unwrap().to_owned();
    let k = Key {
        public: r.json["apiKey"]["publicKey"].as_str().unwrap().into(),
        private: r.json["apiKey"]["privateKey"].as_str().unwrap().into(),
    };
    let v25 = "application/vnd.atlas.2025-02-19+json";
    let users = format!("/api/atlas/v2/orgs/{second}/users");
    s.call_with(
        &k,
        Method::POST,
        &users,
        Some(json!({"username": "newcomer@example.com", "roles": {"orgRoles": ["ORG_MEMBER"]}})),
        &[("accept", v25), ("content-type", v25)],
        tessera_protocols::digest::DigestAlgorithm::Sha256,
    )
    .await
    .expect(201);
    let (mut b, _) = sign_in(&s, "newcomer@example.com", "a long enough password", None).await;
    let home = b.get("/").await;
    assert!(
        home.body.contains("Accept invitation to Second"),
        "{}",
        home.body
    );
    assert_eq!(
        b.get(&format!("/orgs/{second}")).await.status,
        404,
        "not a member yet"
    );
    // Without the session's token: refused.
    let r = b.post(&format!("/invitations/{second}/accept"), &[]).await;
    assert_eq!(r.status, 403);
    let r = b
        .post(
            &format!("/invitations/{second}/accept"),
            &[("csrf", &home.csrf())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get(&format!("/orgs/{second}")).await.status, 200);
    let active = s
        .call_with(
            &k,
            Method::GET,
            &format!("{users}?orgMembershipStatus=ACTIVE"),
            None,
            &[("accept", v25)],
            tessera_protocols::digest::DigestAlgorithm::Sha256,
        )
        .await;
    assert!(
        active.text.contains("newcomer@example.com"),
        "{}",
        active.text
    );
    s.stop().await;
}
