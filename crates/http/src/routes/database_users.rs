//! Database users (Atlas' "Database Users", 2023-01-01): `/groups/{groupId}/databaseUsers` and
//! `…/{databaseName}/{username}`. The rules are `tessera_domain::database_users`'; a SCRAM
//! password becomes SCRAM-SHA-1 and SCRAM-SHA-256 credentials (`tessera_protocols::scram`,
//! on a blocking thread: 25,000 PBKDF2 rounds) and is dropped, never stored, echoed or logged.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_domain::database_users::{
    check_password, is_active, DbAuth, DbRole, DbScope, AUTH_FIELDS,
};
use tessera_domain::names::refuse_invisible;
use tessera_domain::time::format;
use tessera_domain::{EventType, ValidationError};
use tessera_store::{DatabaseUser, Group, StoreError, Tag};

use super::{group_for, paginate, Base};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::Pagination;
use crate::render::Reply;
use crate::state::AppState;
use crate::wire::Ignored;

/// `CloudDatabaseUser`, as answered: never a password or a credential.
fn user_out(base: &str, u: &DatabaseUser) -> Value {
    let mut out = json!({
        "databaseName": u.database_name,
        "groupId": u.group_id.to_string(),
        "labels": u.labels.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
        "links": [{
            "href": format!(
                "{base}/groups/{}/databaseUsers/{}/{}",
                u.group_id,
                urlencoding::encode(&u.database_name),
                urlencoding::encode(&u.username)
            ),
            "rel": "self"
        }],
        "roles": u.roles,
        "scopes": u.scopes,
        "username": u.username,
    });
    for (field, value) in u.auth.wire() {
        out[field] = json!(value);
    }
    if let Some(d) = &u.description {
        out["description"] = json!(d);
    }
    if let Some(end) = u.delete_after {
        out["deleteAfterDate"] = json!(format(end));
    }
    out
}

fn not_found(username: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "USERNAME_NOT_FOUND",
        format!("No user with username {username} exists."),
    )
    .with_params([json!(username)])
}

fn already_exists(username: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "USER_ALREADY_EXISTS",
        format!("The specified user {username} already exists."),
    )
    .with_params([json!(username)])
}

/// `CloudDatabaseUser` in a request. Read-only fields are accepted and ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserIn {
    username: Option<String>,
    database_name: Option<String>,
    password: Option<String>,
    #[serde(rename = "x509Type")]
    x509_type: Option<String>,
    #[serde(rename = "awsIAMType")]
    aws_iam_type: Option<String>,
    ldap_auth_type: Option<String>,
    oidc_auth_type: Option<String>,
    roles: Option<Vec<DbRole>>,
    scopes: Option<Vec<DbScope>>,
    labels: Option<Vec<LabelIn>>,
    description: Option<String>,
    delete_after_date: Option<String>,
    group_id: Option<String>,
    #[serde(default, rename = "links")]
    _links: Ignored,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelIn {
    key: String,
    value: String,
}

impl UserIn {
    fn auth_fields(&self) -> [Option<&str>; 4] {
        [
            self.x509_type.as_deref(),
            self.aws_iam_type.as_deref(),
            self.ldap_auth_type.as_deref(),
            self.oidc_auth_type.as_deref(),
        ]
    }
}

/// Checks and applies the mutable fields of `body` to `user` (a new one, or one being
/// patched): roles, scopes, labels, description, end. Returns the password to hash, if any.
async fn apply(
    state: &AppState,
    group: &Group,
    user: &mut DatabaseUser,
    body: UserIn,
) -> ApiResult<Option<String>> {
    if let Some(g) = &body.group_id {
        if *g != group.id.to_string() {
            return Err(ValidationError::new("groupId", "must be the project of the path").into());
        }
    }
    if let Some(roles) = body.roles {
        let custom: Vec<String> = state
            .store
            .list_custom_roles(group.id)
            .await?
            .into_iter()
            .map(|r| r.role_name)
            .collect();
        for r in &roles {
            r.check(&custom)?;
        }
        user.roles = roles;
    }
    if let Some(scopes) = body.scopes {
        let clusters: Vec<String> = state
            .store
            .list_clusters(group.id, tessera_store::Page::ALL)
            .await?
            .items
            .into_iter()
            .map(|c| c.name)
            .collect();
        for s in &scopes {
            s.check(&clusters)?;
        }
        user.scopes = scopes;
    }
    if let Some(labels) = body.labels {
        user.labels = labels
            .into_iter()
            .map(|l| {
                for (field, v) in [("labels.key", &l.key), ("labels.value", &l.value)] {
                    if v.is_empty() || v.chars().count() > 255 {
                        return Err(ValidationError::new(field, "must be 1 to 255 characters"));
                    }
                    refuse_invisible(field, v)?;
                }
                Ok(Tag {
                    key: l.key,
                    value: l.value,
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(d) = body.description {
        if d.chars().count() > 100 {
            return Err(
                ValidationError::new("description", "must be at most 100 characters").into(),
            );
        }
        refuse_invisible("description", &d)?;
        user.description = Some(d);
    }
    if let Some(raw) = body.delete_after_date {
        let now = state.clock.now();
        let at = chrono::DateTime::parse_from_rfc3339(&raw)
            .map_err(|_| {
                ValidationError::new("deleteAfterDate", "must be an ISO 8601 date and time")
            })?
            .with_timezone(&chrono::Utc);
        if at <= now || at > now + chrono::Duration::days(7) {
            return Err(ValidationError::new(
                "deleteAfterDate",
                "must be in the future and at most one week from now",
            )
            .into());
        }
        user.delete_after = Some(at);
    }
    match (user.auth, body.password) {
        (DbAuth::Scram, Some(p)) => {
            check_password(&p)?;
            Ok(Some(p))
        }
        (_, Some(_)) => Err(ValidationError::new(
            "password",
            "only a SCRAM user has a password (x509Type, awsIAMType, ldapAuthType and oidcAuthType are NONE)",
        )
        .into()),
        (_, None) => Ok(None),
    }
}

/// The SCRAM credentials of `password`, computed off the request threads.
async fn scram(username: &str, password: String) -> ApiResult<String> {
    let username = username.to_owned();
    let creds = tokio::task::spawn_blocking(move || {
        tessera_protocols::scram::credentials(&username, &password)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ValidationError::new("password", e.to_string()))?;
    serde_json::to_string(&creds).map_err(|e| ApiError::internal(e.to_string()))
}

fn user_event(
    state: &AppState,
    caller: &tessera_domain::Principal,
    t: EventType,
    u: &DatabaseUser,
    group: &Group,
) -> tessera_store::events::NewEvent {
    audit::event(
        state,
        caller,
        t,
        group.org_id,
        Some(group.id),
        vec![("dbUserUsername", u.username.clone())],
    )
}

/// `listDatabaseUsers` (Project Read Only): the project's active users.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    page: Pagination,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let now = state.clock.now();
    let users: Vec<DatabaseUser> = state
        .store
        .list_database_users(group.id)
        .await?
        .into_iter()
        .filter(|u| is_active(u.delete_after, now))
        .collect();
    let listed = paginate(users, page.page());
    Ok(Reply::ok(page.list(listed, |u| user_out(&base, &u))))
}

/// `createDatabaseUser` (Project Database Access Admin): 201 with the user, never its
/// password; 409 `USER_ALREADY_EXISTS` for a name the project has.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UserIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let auth = DbAuth::from_wire(body.auth_fields())?;
    let username = body
        .username
        .clone()
        .ok_or_else(|| ValidationError::new("username", "is required"))?;
    auth.check_username(&username)?;
    let database = body
        .database_name
        .clone()
        .unwrap_or_else(|| auth.auth_database().to_owned());
    if database != auth.auth_database() {
        return Err(ValidationError::new(
            "databaseName",
            format!("must be {} for this kind of user", auth.auth_database()),
        )
        .into());
    }
    let now = state.clock.now();
    let mut user = DatabaseUser {
        group_id: group.id,
        database_name: database,
        username,
        auth,
        roles: Vec::new(),
        scopes: Vec::new(),
        labels: Vec::new(),
        description: None,
        delete_after: None,
        scram: None,
        created_at: now,
    };
    let password = apply(&state, &group, &mut user, body).await?;
    match (auth, password) {
        (DbAuth::Scram, Some(p)) => user.scram = Some(scram(&user.username, p).await?),
        (DbAuth::Scram, None) => {
            return Err(ValidationError::new("password", "is required for a SCRAM user").into())
        }
        _ => {}
    }
    let ev = user_event(&state, &caller, EventType::MongodbUserAdded, &user, &group);
    match state.store.create_database_user(&user, now, &[ev]).await {
        Err(StoreError::Conflict(_)) => return Err(already_exists(&user.username)),
        Ok(false) => return Err(ApiError::group_not_found(path.get("groupId"))),
        other => {
            other?;
        }
    }
    Ok(Reply::created(user_out(&base, &user)))
}

/// The active user the path names, or 404.
async fn named(state: &AppState, group: &Group, path: &PathParams) -> ApiResult<DatabaseUser> {
    let (db, name) = (path.get("databaseName"), path.get("username"));
    state
        .store
        .get_database_user(group.id, db, name)
        .await?
        .filter(|u| is_active(u.delete_after, state.clock.now()))
        .ok_or_else(|| not_found(name))
}

/// `getDatabaseUser` (Project Read Only).
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let user = named(&state, &group, &path).await?;
    Ok(Reply::ok(user_out(&base, &user)))
}

/// `updateDatabaseUser` (Project Database Access Admin): roles, scopes, labels, description,
/// end and (SCRAM) password; a user's names and kind do not change. An update that changes
/// nothing writes no event.
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    Base(base): Base,
    path: PathParams,
    ApiJson(body): ApiJson<UserIn>,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let mut user = named(&state, &group, &path).await?;
    if body.username.as_ref().is_some_and(|n| *n != user.username)
        || body
            .database_name
            .as_ref()
            .is_some_and(|d| *d != user.database_name)
    {
        return Err(ValidationError::new(
            "username",
            "a user's username and databaseName do not change",
        )
        .into());
    }
    if body.auth_fields().iter().any(Option::is_some)
        && DbAuth::from_wire(body.auth_fields())? != user.auth
    {
        return Err(ValidationError::new(
            AUTH_FIELDS[0],
            "a user's authentication type does not change",
        )
        .into());
    }
    if let Some(p) = apply(&state, &group, &mut user, body).await? {
        user.scram = Some(scram(&user.username, p).await?);
    }
    let ev = user_event(
        &state,
        &caller,
        EventType::MongodbUserUpdated,
        &user,
        &group,
    );
    if !state
        .store
        .update_database_user(&user, state.clock.now(), &[ev])
        .await?
    {
        return Err(not_found(&user.username));
    }
    Ok(Reply::ok(user_out(&base, &user)))
}

/// `deleteDatabaseUser` (Project Database Access Admin).
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let (db, name) = (path.get("databaseName"), path.get("username"));
    let ev = audit::event(
        &state,
        &caller,
        EventType::MongodbUserDeleted,
        group.org_id,
        Some(group.id),
        vec![("dbUserUsername", name.to_owned())],
    );
    if state
        .store
        .delete_database_user(group.id, db, name, state.clock.now(), &[ev])
        .await?
    {
        Ok(Reply::no_content())
    } else {
        Err(not_found(name))
    }
}
