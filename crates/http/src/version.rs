//! API dialects and media-type versioning (CONTRACT §2).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;

/// Which surface a request came in on. One implementation serves both; this is a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Atlas Admin API v2 at `/api/atlas/v2`, versioned media types.
    V2,
    /// Cloud Manager Public API v1.0 at `/api/public/v1.0`, `application/json`.
    V1,
}

/// Where Atlas' own clients look for the v1.0 surface (`mongodb-atlas-api-client`'s default):
/// the same routes as [`Dialect::V1`]'s base, in the same dialect.
pub const V1_ATLAS_BASE: &str = "/api/atlas/v1.0";

impl Dialect {
    /// The base path the surface is mounted at.
    pub const fn base(self) -> &'static str {
        match self {
            Dialect::V2 => "/api/atlas/v2",
            Dialect::V1 => "/api/public/v1.0",
        }
    }
}

/// The resource version a v2 request is served at (`YYYY-MM-DD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedVersion(pub &'static str);

/// The versions a family of resources exists at, oldest first.
pub type Versions = &'static [&'static str];

pub const V2023: Versions = &["2023-01-01"];
pub const V2024: Versions = &["2024-08-05"];
/// `deleteCluster`: 2023-02-01 in Atlas' description, and the 2024-08-05 of its family.
pub const V_DELETE_CLUSTER: Versions = &["2023-02-01", "2024-08-05"];

/// `returnAllControlPlaneIpAddresses`.
pub const V_CONTROL_PLANE: Versions = &["2023-11-15"];
/// `getCluster` and `listClusters`: 2023-02-01 (the older document, which the Atlas CLI asks
/// for) and 2024-08-05.
pub const V_CLUSTER_READ: Versions = &["2023-02-01", "2024-08-05"];
/// `createCluster` and `updateCluster`: 2024-08-05 and 2024-10-23 (one document).
pub const V_CLUSTER_WRITE: Versions = &["2024-08-05", "2024-10-23"];
/// A cluster's `processArgs`.
pub const V_PROCESS_ARGS: Versions = &["2023-01-01", "2024-08-05"];
/// "MongoDB Cloud Users" of organizations, projects and teams.
pub const V_USERS: Versions = &["2025-02-19"];
/// `addUserToProject`.
pub const V_PROJECT_ACCESS: Versions = &["2023-02-01"];
/// An identity provider's create, get, update and delete (`createIdentityProvider`, …).
pub const V_IDENTITY_PROVIDERS: Versions = &["2023-11-15"];
/// Flex clusters' resources.
pub const V_FLEX: Versions = &["2024-11-13"];

/// Marks a request that names no served operation (an unserved action under a served path):
/// it is not version-negotiated, so its handler answers 404, not a version error.
#[derive(Clone, Copy, Debug)]
pub struct NotAnOperation;

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The dates requested by an `Accept` header's `application/vnd.atlas.<date>+json` ranges.
pub fn requested_dates(accept: &str) -> Vec<&str> {
    accept
        .split(',')
        .filter_map(|range| {
            let media = range.split(';').next()?.trim();
            const PREFIX: &str = "application/vnd.atlas.";
            let head = media.get(..PREFIX.len())?;
            if !head.eq_ignore_ascii_case(PREFIX) {
                return None;
            }
            let rest = media.get(PREFIX.len()..)?;
            let date = rest.strip_suffix("+json")?;
            is_date(date).then_some(date)
        })
        .collect()
}

/// The newest version in `versions` not later than any requested date (the latest such).
pub fn negotiate(accept: Option<&str>, versions: Versions) -> Result<&'static str, ApiError> {
    let Some(accept) = accept else {
        return Err(not_acceptable_header());
    };
    let dates = requested_dates(accept);
    if dates.is_empty() {
        return Err(not_acceptable_header());
    }
    dates
        .iter()
        .filter_map(|d| versions.iter().rev().find(|v| **v <= *d).copied())
        .max()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "INVALID_VERSION_DATE",
                format!(
                    "No version of this resource exists at or before the requested date; available versions: {}.",
                    versions.join(", ")
                ),
            )
            .with_params(versions.iter().map(|v| json!(v)))
        })
}

fn not_acceptable_header() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "INVALID_ACCEPT_HEADER",
        "The Accept header must name a version: application/vnd.atlas.YYYY-MM-DD+json.",
    )
}

/// Route layer: on the v2 surface, negotiate the version before the handler runs.
pub async fn versioned(State(versions): State<Versions>, req: Request, next: Next) -> Response {
    let dialect = req.extensions().get::<Dialect>().copied();
    if dialect != Some(Dialect::V2) || req.extensions().get::<NotAnOperation>().is_some() {
        return next.run(req).await;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    match negotiate(accept, versions) {
        Ok(v) => {
            // The handler may read it too (a resource whose shape differs by version).
            let mut req = req;
            req.extensions_mut().insert(ServedVersion(v));
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(ServedVersion(v));
            resp
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any Accept header: a served version or a 406, never a panic.
        #[test]
        fn any_accept_header(s in "\\PC{0,200}|application/vnd\\.atlas\\.[0-9-]{0,12}\\+json.{0,20}") {
            let _ = negotiate(Some(&s), &["2023-01-01", "2024-08-05"]);
        }
    }

    #[test]
    fn negotiation() {
        let v: Versions = &["2023-01-01", "2024-08-05"];
        assert_eq!(
            negotiate(Some("application/vnd.atlas.2023-01-01+json"), v).unwrap(),
            "2023-01-01"
        );
        assert_eq!(
            negotiate(Some("application/vnd.atlas.2024-01-01+json"), v).unwrap(),
            "2023-01-01"
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.atlas.2025-03-12+json;charset=utf-8"),
                v
            )
            .unwrap(),
            "2024-08-05"
        );
        assert_eq!(
            negotiate(
                Some("application/json, application/vnd.atlas.2024-08-05+json"),
                v
            )
            .unwrap(),
            "2024-08-05"
        );
        assert_eq!(
            negotiate(Some("application/vnd.atlas.2022-12-31+json"), v)
                .unwrap_err()
                .code,
            "INVALID_VERSION_DATE"
        );
        for bad in [
            None,
            Some("application/json"),
            Some("*/*"),
            Some("application/vnd.atlas.2023-1-01+json"),
            Some("application/vnd.atlas.+json"),
        ] {
            assert_eq!(
                negotiate(bad, v).unwrap_err().status,
                StatusCode::NOT_ACCEPTABLE,
                "{bad:?}"
            );
        }
    }
}
