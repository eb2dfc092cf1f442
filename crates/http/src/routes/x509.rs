//! X.509 for database users: `createDatabaseUserCertificate` and
//! `listDatabaseUserCertificates` (`/groups/{groupId}/databaseUsers/{username}/certs`), and a
//! project's customer-managed X.509 (`/groups/{groupId}/userSecurity`, and
//! `…/userSecurity/customerX509`, `disableCustomerManagedX509`).
//!
//! Managed certificates are signed by a CA Tessera keeps per project (ECDSA P-256, made at the
//! first issuance; its key sealed with the server's sealing key, bound to the project). A
//! certificate is issued to an active X.509 `MANAGED` user (`CN=<username>`, client
//! authentication, `monthsUntilExpiration` 1 to 24, 3 by default); its private key is in the
//! answer and nowhere else. What was issued (serial, subject, dates) is recorded with its
//! event. The CA's certificate is what a cluster's `mongod` trusts (`cluster_access`).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Months, Utc};
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::{EventType, GroupId};
use tessera_store::{Group, SettingsScope, UserCert};

use super::{group_for, paginate, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;

fn gen_err(e: rcgen::Error) -> ApiError {
    ApiError::internal(format!("certificate generation: {e}"))
}

fn to_time(t: DateTime<Utc>) -> ApiResult<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(ApiError::internal)
}

fn aad(group: GroupId) -> Vec<u8> {
    format!("tessera project CA {group}").into_bytes()
}

/// The CA's parameters: the same for a project every time (its name and key identify it).
fn ca_params(group: GroupId, now: DateTime<Utc>) -> ApiResult<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Tessera");
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Tessera project {group} database users CA"),
    );
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p.not_before = to_time(now - chrono::Duration::hours(1))?;
    p.not_after = to_time(now + chrono::Duration::days(3650))?;
    Ok(p)
}

/// The project's CA certificate (PEM), once one exists.
pub async fn project_ca_pem(state: &AppState, group: GroupId) -> ApiResult<Option<String>> {
    Ok(state.store.project_ca(group).await?.map(|(pem, _)| pem))
}

/// The project's CA (made now if it has none) as an issuer: its certificate and key.
async fn issuer(
    state: &AppState,
    group: &Group,
) -> ApiResult<(rcgen::Certificate, rcgen::KeyPair)> {
    let now = state.clock.now();
    let stored = match state.store.project_ca(group.id).await? {
        Some(ca) => ca,
        None => {
            let key = rcgen::KeyPair::generate().map_err(gen_err)?;
            let cert = ca_params(group.id, now)?
                .self_signed(&key)
                .map_err(gen_err)?;
            let sealed = state
                .crypto
                .sealer
                .seal(key.serialize_pem().as_bytes(), &aad(group.id));
            let sealed: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
            state
                .store
                .ensure_project_ca(group.id, (cert.pem(), sealed), now)
                .await?
                .ok_or_else(|| ApiError::group_not_found(&group.id.to_string()))?
        }
    };
    let sealed: Vec<u8> = (0..stored.1.len())
        .step_by(2)
        .filter_map(|i| stored.1.get(i..i + 2))
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    let pem = state
        .crypto
        .sealer
        .open(&sealed, &aad(group.id))
        .map_err(|_| ApiError::internal("the project CA's key does not open"))?;
    let pem = String::from_utf8(pem).map_err(ApiError::internal)?;
    let key = rcgen::KeyPair::from_pem(&pem).map_err(gen_err)?;
    // Re-signed with the same name and key: a certificate it issues verifies against the
    // stored CA certificate (the issuer is named and identified by key, not by signature).
    let cert = ca_params(group.id, now)?
        .self_signed(&key)
        .map_err(gen_err)?;
    Ok((cert, key))
}

/// `UserCert` in a request: only `monthsUntilExpiration` is the client's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertIn {
    months_until_expiration: Option<i64>,
    #[serde(default, rename = "_id")]
    _id: crate::wire::Ignored,
    #[serde(default, rename = "createdAt")]
    _created: crate::wire::Ignored,
    #[serde(default, rename = "groupId")]
    _group: crate::wire::Ignored,
    #[serde(default, rename = "links")]
    _links: crate::wire::Ignored,
    #[serde(default, rename = "notAfter")]
    _not_after: crate::wire::Ignored,
    #[serde(default, rename = "subject")]
    _subject: crate::wire::Ignored,
}

fn random_serial() -> ApiResult<i64> {
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::internal("no randomness"))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(i64::from_be_bytes(b))
}

fn no_user(group: &Group, username: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "USERNAME_NOT_FOUND",
        format!(
            "No X.509 MANAGED database user {username} exists in group {}.",
            group.id
        ),
    )
    .with_params([json!(username), json!(group.id.to_string())])
}

/// `createDatabaseUserCertificate` (Project Owner): 201 with the PEM of the certificate and
/// its private key (shown once).
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(body): ApiJson<CertIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let username = path.get("username").to_owned();
    let months = body.months_until_expiration.unwrap_or(3);
    if !(1..=24).contains(&months) {
        return Err(tessera_domain::ValidationError::new(
            "monthsUntilExpiration",
            "must be from 1 to 24",
        )
        .into());
    }
    let user = state
        .store
        .get_database_user(group.id, "$external", &username)
        .await?
        .filter(|u| u.auth == tessera_domain::database_users::DbAuth::X509Managed)
        .filter(|u| tessera_domain::database_users::is_active(u.delete_after, state.clock.now()))
        .ok_or_else(|| no_user(&group, &username))?;
    let (ca, ca_key) = issuer(&state, &group).await?;
    let now = state.clock.now();
    let not_after = now
        .checked_add_months(Months::new(u32::try_from(months).unwrap_or(3)))
        .ok_or_else(|| ApiError::internal("date out of range"))?;
    let serial = random_serial()?;
    let subject = format!("CN={}", user.username);
    let key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, user.username.clone());
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial.to_be_bytes()));
    p.not_before = to_time(now - chrono::Duration::minutes(5))?;
    p.not_after = to_time(not_after)?;
    let cert = p.signed_by(&key, &ca, &ca_key).map_err(gen_err)?;
    let record = UserCert {
        group_id: group.id,
        username: user.username.clone(),
        serial,
        subject: subject.clone(),
        created_at: now,
        not_after,
    };
    let ev = audit::event(
        &state,
        &caller,
        EventType::X509CertificateCreated,
        group.org_id,
        Some(group.id),
        vec![
            ("dbUserUsername", user.username.clone()),
            ("serial", serial.to_string()),
        ],
    );
    if !state.store.record_user_cert(&record, &[ev]).await? {
        return Err(no_user(&group, &username));
    }
    Ok(Reply::created(Value::String(format!(
        "{}{}",
        cert.pem(),
        key.serialize_pem()
    ))))
}

/// `listDatabaseUserCertificates` (Project Read Only): the user's unexpired certificates.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let username = path.get("username");
    let now = state.clock.now();
    let certs: Vec<UserCert> = state
        .store
        .list_user_certs(group.id, username)
        .await?
        .into_iter()
        .filter(|c| c.not_after > now)
        .collect();
    let listed = paginate(certs, page.page());
    Ok(Reply::ok(page.list(listed, |c| {
        json!({
            "_id": c.serial,
            "createdAt": tessera_domain::time::format(c.created_at),
            "groupId": c.group_id.to_string(),
            "notAfter": tessera_domain::time::format(c.not_after),
            "subject": c.subject,
            "links": [{"href": format!("{base}/groups/{}/databaseUsers/{}/certs", c.group_id, urlencoding::encode(&c.username)), "rel": "self"}],
        })
    })))
}

/// The project's `userSecurity` document (customer-managed X.509; LDAP is not served).
async fn user_security(state: &AppState, base: &str, group: &Group) -> ApiResult<Value> {
    let stored = state
        .store
        .get_settings(SettingsScope::UserSecurity(group.id))
        .await?;
    let x509: Value = match stored {
        Some(s) => serde_json::from_str(&s).map_err(ApiError::internal)?,
        None => json!({}),
    };
    Ok(json!({
        "customerX509": x509,
        "ldap": {},
        "links": [{"href": format!("{base}/groups/{}/userSecurity", group.id), "rel": "self"}],
    }))
}

/// Checks a PEM bundle of certificates: one or more `CERTIFICATE` blocks of DER.
fn check_cas(pem: &str) -> ApiResult<()> {
    let bad = || {
        ApiError::from(tessera_domain::ValidationError::new(
            "customerX509.cas",
            "must be PEM certificates",
        ))
    };
    let mut found = 0;
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + 27..];
        let end = after.find("-----END CERTIFICATE-----").ok_or_else(bad)?;
        let b64: String = after[..end].split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        if der.first() != Some(&0x30) {
            return Err(bad());
        }
        found += 1;
        rest = &after[end + 25..];
    }
    if found == 0 || pem.len() > 64 * 1024 {
        return Err(bad());
    }
    Ok(())
}

/// `getLdapConfiguration` (Project Owner): the `userSecurity` document.
pub async fn get_user_security(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    Ok(Reply::ok(user_security(&state, &base, &group).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerX509In {
    cas: Option<String>,
    #[serde(default)]
    links: crate::wire::Ignored,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserSecurityIn {
    customer_x509: Option<CustomerX509In>,
    ldap: Option<Value>,
    #[serde(default)]
    links: crate::wire::Ignored,
}

/// `saveLdapConfiguration` (Project Owner): sets the customer-managed X.509 CAs (`cas`). LDAP
/// is not served: a non-empty `ldap` is a 400.
pub async fn update_user_security(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UserSecurityIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let _ = (body.links, body.customer_x509.as_ref().map(|c| &c.links));
    if body
        .ldap
        .as_ref()
        .is_some_and(|l| l.as_object().is_none_or(|o| !o.is_empty()))
    {
        return Err(
            ApiError::validation("LDAP is not served by Tessera; send no ldap settings.")
                .with_params([json!("ldap")]),
        );
    }
    if let Some(cas) = body.customer_x509.and_then(|c| c.cas) {
        check_cas(&cas)?;
        let doc = json!({"cas": cas}).to_string();
        let ev = audit::event(
            &state,
            &caller,
            EventType::X509CustomerCaUpdated,
            group.org_id,
            Some(group.id),
            vec![],
        );
        state
            .store
            .put_settings(SettingsScope::UserSecurity(group.id), &doc, &[ev])
            .await?;
    }
    Ok(Reply::accepted(user_security(&state, &base, &group).await?))
}

/// `disableCustomerManagedX509` (Project Owner): clears the customer CAs; 202 with the
/// document. An event only when there was something to clear.
pub async fn disable_customer_x509(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let scope = SettingsScope::UserSecurity(group.id);
    if state
        .store
        .get_settings(scope)
        .await?
        .is_some_and(|s| s != "{}")
    {
        let ev = audit::event(
            &state,
            &caller,
            EventType::X509CustomerCaDisabled,
            group.org_id,
            Some(group.id),
            vec![],
        );
        state.store.put_settings(scope, "{}", &[ev]).await?;
    }
    Ok(Reply::accepted(user_security(&state, &base, &group).await?))
}

/// The customer CAs a project trusts (for `cluster_access`).
pub async fn customer_cas(state: &AppState, group: GroupId) -> ApiResult<Option<String>> {
    let stored = state
        .store
        .get_settings(SettingsScope::UserSecurity(group))
        .await?;
    Ok(stored
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.get("cas").and_then(Value::as_str).map(str::to_owned)))
}
