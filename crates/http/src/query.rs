//! Query parameters common to every list and resource (CONTRACT §3): `pretty`, `envelope`,
//! `pageNum`, `itemsPerPage`, `includeCount`, and the typed readers handlers use for their own
//! (`includeRaw`, `minDate`/`maxDate`, a repeatable `eventType`). An unparsable or
//! out-of-range value is a 400, never a silent default.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::{json, Value};
use tessera_store::{Listed, Page};

use crate::error::ApiError;
use crate::state::AppState;

/// The decoded query string, in order.
#[derive(Clone, Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn from_query(q: Option<&str>) -> Result<Self, ApiError> {
        match q {
            None | Some("") => Ok(Self::default()),
            // A parameter given empty (`projectOwnerId=`, `name=`, as the Atlas CLI sends
            // them) is absent.
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(|pairs| Self(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect()))
                .map_err(|_| ApiError::validation("The query string could not be parsed.")),
        }
    }

    /// The value of a parameter given at most once (a repeated parameter is a 400).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "INVALID_QUERY_PARAMETER",
                format!("Query parameter {name} was given more than once."),
            )
            .with_params([json!(name)]));
        }
        Ok(first)
    }

    /// Every value of a parameter that may repeat (`eventType=A&eventType=B`), in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub fn invalid_param(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "INVALID_QUERY_PARAMETER",
        format!("Invalid value {value} for query parameter {name}: expected {expected}."),
    )
    .with_params([json!(name), json!(value)])
}

pub fn parse_bool_param(q: &QueryPairs, name: &str) -> Result<Option<bool>, ApiError> {
    // Any case: Python's requests sends `True`/`False`.
    match q.get(name)? {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(invalid_param(name, other, "true or false")),
    }
}

/// A date-time parameter (`minDate`, `maxDate`): ISO 8601 / RFC 3339 with `Z` or an offset,
/// read as UTC. Anything else is a 400 naming the parameter.
pub fn parse_date_param(
    q: &QueryPairs,
    name: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match q.get(name)? {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                invalid_param(
                    name,
                    v,
                    "an ISO 8601 date and time in UTC, e.g. 2026-01-01T00:00:00Z",
                )
            }),
    }
}

fn parse_int_param(
    q: &QueryPairs,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    match q.get(name)? {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid_param(
                name,
                v,
                &format!("an integer from {min} to {max}"),
            )),
        },
    }
}

/// Pagination requested by a list call, with what it needs to build `links`.
#[derive(Clone, Debug)]
pub struct Pagination {
    pub page_num: u64,
    pub items_per_page: u64,
    pub include_count: bool,
    base_url: String,
    path: String,
    query: QueryPairs,
}

pub const MAX_ITEMS_PER_PAGE: u64 = 500;

impl Pagination {
    pub fn page(&self) -> Page {
        Page {
            offset: (self.page_num - 1).saturating_mul(self.items_per_page),
            limit: self.items_per_page,
        }
    }

    fn href(&self, page_num: Option<u64>) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .0
            .iter()
            .filter(|(k, _)| page_num.is_none() || k != "pageNum")
            .cloned()
            .collect();
        if let Some(n) = page_num {
            pairs.push(("pageNum".into(), n.to_string()));
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if qs.is_empty() {
            format!("{}{}", self.base_url, self.path)
        } else {
            format!("{}{}?{}", self.base_url, self.path, qs)
        }
    }

    /// `{"links": [...], "results": [...], "totalCount": N}` for one page of results.
    pub fn list<T, W: Serialize>(&self, listed: Listed<T>, to_wire: impl Fn(T) -> W) -> Value {
        let count = listed.items.len() as u64;
        let offset = self.page().offset;
        let mut links = vec![json!({"href": self.href(None), "rel": "self"})];
        if offset + count < listed.total && count > 0 {
            links.push(json!({"href": self.href(Some(self.page_num + 1)), "rel": "next"}));
        }
        if self.page_num > 1 {
            links.push(json!({"href": self.href(Some(self.page_num - 1)), "rel": "previous"}));
        }
        let results: Vec<W> = listed.items.into_iter().map(to_wire).collect();
        let mut out = json!({"links": links, "results": results});
        if self.include_count {
            out["totalCount"] = json!(listed.total);
        }
        out
    }
}

impl FromRequestParts<AppState> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query = QueryPairs::from_query(parts.uri.query())?;
        let page_num = parse_int_param(&query, "pageNum", 1, i32::MAX as u64)?.unwrap_or(1);
        let items_per_page =
            parse_int_param(&query, "itemsPerPage", 1, MAX_ITEMS_PER_PAGE)?.unwrap_or(100);
        let include_count = parse_bool_param(&query, "includeCount")?.unwrap_or(true);
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.path().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned());
        Ok(Self {
            page_num,
            items_per_page,
            include_count,
            base_url: state.public_url(),
            path,
            query,
        })
    }
}

/// Query parameters read by name, for handlers with extra filters (`name`, ...).
pub struct Query(pub QueryPairs);

impl FromRequestParts<AppState> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        QueryPairs::from_query(parts.uri.query()).map(Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any query string: parsed or a 400, never a panic; flags accept exactly true/false.
        #[test]
        fn any_query(q in "\\PC{0,100}|(pretty|envelope|pageNum|itemsPerPage)=[a-z0-9%&=-]{0,20}") {
            if let Ok(pairs) = QueryPairs::from_query(Some(&q)) {
                if let Ok(Some(_)) = parse_bool_param(&pairs, "pretty") {
                    let v = pairs.get("pretty").ok().flatten();
                    proptest::prop_assert!(v == Some("true") || v == Some("false"));
                }
                let _ = parse_int_param(&pairs, "itemsPerPage", 1, MAX_ITEMS_PER_PAGE);
            }
        }
    }
}
