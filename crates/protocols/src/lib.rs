//! Pure protocol functions: no I/O, no HTTP framework, time passed in.
//!
//! * [`digest`]: HTTP Digest access authentication (RFC 7616) as MongoDB Atlas speaks it,
//!   with stateless HMAC-authenticated nonces and `nc` replay tracking.
//! * [`basic`]: HTTP Basic credentials for OAuth 2.0 clients (RFC 6749 §2.3.1).
//! * [`jwt`]: compact JWS access tokens, ES256 only.
//! * [`password`]: a person's password as an argon2id hash (PHC string).
//!
//! Every function that depends on the current time takes `now` as a parameter; nothing here
//! reads the clock, touches the network or the file system.

pub mod basic;
pub mod digest;
pub mod jwt;
pub mod password;
pub mod scram;
