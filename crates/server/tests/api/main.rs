//! End-to-end tests of the HTTP API: a real server over real HTTP with a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_key_access;
mod api_keys;
mod attacks;
mod auth;
mod concurrency;
mod connections;
mod digest_cache;
mod event_writes;
mod events;
mod every_route;
mod group_service_accounts;
mod groups;
mod harness;
mod input_rules;
mod lifecycle;
mod oauth;
mod orgs;
mod review;
mod service_accounts;
mod store_faults;
mod surface;
mod system_status;
mod tls;
mod two_nodes;
