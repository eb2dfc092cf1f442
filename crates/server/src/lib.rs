//! The `tessera` binary as a library: configuration, key material, bootstrap and the server
//! lifecycle. `main.rs` is a thin command-line shell over [`server::start`], which tests call
//! directly to run a real server on port 0.

pub mod bootstrap;
pub mod config;
pub mod export;
pub mod fsutil;
pub mod keys;
pub mod listener;
pub mod operators;
pub mod server;
pub mod tls;
