//! End-to-end tests of the HTTP API: a real server over real HTTP with a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod auth;
mod groups;
mod harness;
mod lifecycle;
mod orgs;
mod surface;
