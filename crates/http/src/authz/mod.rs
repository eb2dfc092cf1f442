//! The authorization table: every route's rule, declared once, beside the router (`lib.rs`).
//!
//! One row per route the router registers: where it is mounted, its method and its path
//! pattern (as registered) → a named [`Rule`] of `tessera_domain::authorization`. Handlers do
//! not name requirements: they take [`RouteRule`], which finds the request's row by its
//! matched path and method, and hand the rule to the domain's decision
//! (`Principal::authorize` and the finer decisions the rule names; `Rule::admits`,
//! `Rule::may_revoke`, `Rule::may_introspect` for the rules about credentials).
//!
//! A request whose route has no row is answered 500 (fail closed), and `tests/tidy.rs` fails
//! when a route registered in `lib.rs` has no row or a row has no route. The rules that need
//! no decision beyond authentication (`Public`, and `ClientCredentials`, the token endpoint's
//! client authentication) are declared here and read by nobody.
//!
//! The two colon-action routes have one row each for their `POST`: the router cannot split a
//! segment at `:`, so `{clientId}:invite` and `{clusterName}:grant…`/`:revoke…` are the `POST`
//! of `{clientId}` and `{clusterName}`, and their handler answers unknown actions 404.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::Method;
use tessera_domain::authorization::Rule::{self};

use crate::error::ApiError;
use crate::version::Dialect;

/// Where a route is mounted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mount {
    /// `api_routes()`, at both API base paths (`/api/atlas/v2`, `/api/public/v1.0`).
    Api,
    /// Tessera's own API (`tessera_router()`, at `/api/tessera/v1`).
    Tessera,
    /// The root: OAuth endpoints, discovery documents, health.
    Root,
}

const API_BASES: &[&str] = &[
    Dialect::V2.base(),
    Dialect::V1.base(),
    crate::version::V1_ATLAS_BASE,
];
const TESSERA_BASES: &[&str] = &[crate::routes::support::BASE];

impl Mount {
    /// The base paths the mount's routes are served under.
    pub const fn prefixes(self) -> &'static [&'static str] {
        match self {
            Mount::Api => API_BASES,
            Mount::Tessera => TESSERA_BASES,
            Mount::Root => &[""],
        }
    }
}

/// A route's method (`HEAD` is served by `GET`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn of(method: &Method) -> Option<Verb> {
        match *method {
            Method::GET | Method::HEAD => Some(Verb::Get),
            Method::POST => Some(Verb::Post),
            Method::PUT => Some(Verb::Put),
            Method::PATCH => Some(Verb::Patch),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub mount: Mount,
    pub verb: Verb,
    /// The path pattern as registered in its router.
    pub path: &'static str,
    pub rule: Rule,
}

mod table;
pub use table::TABLE;

/// The full path a route of `mount` registered as `path` is matched as under `prefix` (as
/// axum nests: the route `/` of a nested router is its prefix itself).
fn full_path(prefix: &str, path: &str) -> String {
    if path == "/" && !prefix.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}{path}")
    }
}

/// The table by full matched path, then method.
static BY_PATH: LazyLock<HashMap<String, Vec<(Verb, Rule)>>> = LazyLock::new(|| {
    let mut map: HashMap<String, Vec<(Verb, Rule)>> = HashMap::new();
    for e in TABLE {
        for prefix in e.mount.prefixes() {
            map.entry(full_path(prefix, e.path))
                .or_default()
                .push((e.verb, e.rule));
        }
    }
    map
});

/// Whether `principal` may call the API route `path` (its pattern under `/api/atlas/v2`, as
/// in [`TABLE`]) with `verb` on `on`: what the browser console asks before it shows a button,
/// so a person sees exactly the actions the API would let them take.
pub fn permits(
    principal: &tessera_domain::Principal,
    verb: Verb,
    path: &str,
    on: tessera_domain::authorization::On,
) -> bool {
    TABLE
        .iter()
        .find(|e| e.mount == Mount::Api && e.verb == verb && e.path == path)
        .is_some_and(|e| {
            principal.authorize(e.rule, on) == tessera_domain::authorization::Decision::Allow
        })
}

/// The rule of the route matched as `matched_path` (the full path pattern, base path
/// included) for `method`, if the table has it.
pub fn lookup(method: &Method, matched_path: &str) -> Option<Rule> {
    let verb = Verb::of(method)?;
    BY_PATH
        .get(matched_path)?
        .iter()
        .find(|(v, _)| *v == verb)
        .map(|(_, rule)| *rule)
}

/// The rule of the request's route, from [`TABLE`]. A route without a row is a 500: nothing
/// is decided without one.
#[derive(Clone, Copy, Debug)]
pub struct RouteRule(pub Rule);

impl RouteRule {
    /// The rule for a request's parts (for extractors that decide themselves).
    pub fn of(parts: &Parts) -> Result<Rule, ApiError> {
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        matched
            .and_then(|path| lookup(&parts.method, path))
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "{} {}: no rule in the authorization table (authz::TABLE)",
                    parts.method,
                    matched.unwrap_or("(unmatched)")
                ))
            })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RouteRule {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        RouteRule::of(parts).map(RouteRule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::authorization::Rule::*;
    use tessera_domain::Requirement::*;

    #[test]
    fn each_route_has_one_row() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            assert!(
                seen.insert((e.mount, e.verb, e.path)),
                "{:?} {} {} is in the table twice",
                e.mount,
                e.verb.as_str(),
                e.path
            );
        }
    }

    #[test]
    fn lookup_finds_rows_under_every_base_path() {
        let owner = Some(Org(OrgOwner));
        for base in ["/api/atlas/v2", "/api/public/v1.0"] {
            let path = format!("{base}/orgs/{{orgId}}");
            assert_eq!(lookup(&Method::DELETE, &path), owner);
            assert_eq!(lookup(&Method::OPTIONS, &path), None);
            assert_eq!(lookup(&Method::HEAD, base), Some(Authenticated));
        }
        assert_eq!(lookup(&Method::POST, "/api/oauth/revoke"), Some(OwnTokens));
        assert_eq!(
            lookup(&Method::POST, "/api/tessera/v1/support/decisions"),
            Some(Operator)
        );
        assert_eq!(lookup(&Method::GET, "/orgs/{orgId}"), None);
    }
}
