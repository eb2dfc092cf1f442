//! Storage for Tessera: one interface ([`Store`]), one implementation per backend.
//!
//! Architecture invariant: SQL lives only in this crate. Handlers and protocols see records
//! made of domain types and never a connection, a row or a dialect.
//!
//! Every method that changes more than one row does so in one transaction: a failed request
//! leaves nothing half-written.
//!
//! The unit of work: every method that makes a change takes the events that describe it
//! (`events: &[NewEvent]`) and writes them in the change's own transaction, only if the change
//! happened. A change without its event, or an event without its change, cannot be committed
//! (CONTRACT §11). Write transactions start as writers (`BEGIN IMMEDIATE` on SQLite; row
//! locks where a check-then-write needs them on PostgreSQL), so a read-then-write never fails
//! or races another writer.

use chrono::{DateTime, Utc};
use tessera_domain::{OrgRole, SecretId};

use events::NewEvent;

mod access_traits;
pub mod events;
pub mod postgres;
mod records;
mod sql;
pub mod sqlite;
mod traits;
pub use access_traits::*;
pub use postgres::PgStore;
pub use records::*;
pub use sql::{Dialect, SqlStore};
pub use sqlite::SqliteStore;
pub use traits::*;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would be broken (the string names which).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A change would take a project past one of its limits (`tessera_domain::limits`).
    #[error("limit {name} of {limit} exceeded")]
    LimitExceeded { name: &'static str, limit: i64 },
    /// The backend failed. The message is for logs, never for clients.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The backend could not be reached, or did not answer in time (a stopped server, a lost
    /// connection). Whether a write in flight committed is unknown; it was not acknowledged.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store a database URL names and applies pending migrations: `postgres://` or
/// `postgresql://` is PostgreSQL ([`PgStore`]), `sqlite:` the embedded SQLite
/// ([`SqliteStore`]); any other scheme is refused.
pub async fn open_url(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    open_url_with(url, postgres::feed::FeedSettings::default()).await
}

/// [`open_url`], with PostgreSQL's change feed driven by `feed`.
pub async fn open_url_with(
    url: &str,
    feed: postgres::feed::FeedSettings,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    if postgres::is_postgres_url(url) {
        Ok(std::sync::Arc::new(PgStore::open_with(url, feed).await?))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open_url(url).await?))
    } else {
        Err(StoreError::Backend(
            "database URL must start with sqlite:, postgres:// or postgresql://".into(),
        ))
    }
}

pub(crate) fn join_roles<R: std::fmt::Display>(roles: &[R]) -> String {
    roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn split_roles<R: std::str::FromStr>(s: &str) -> StoreResult<Vec<R>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|r| {
            r.parse()
                .map_err(|_| StoreError::Backend(format!("unknown role {r:?} in store")))
        })
        .collect()
}

/// A shipped migration is never edited: a database that applied it keeps its checksum, and
/// sqlx refuses to open it with a different file. These are the checksums (SHA-384, as sqlx
/// records them) of every shipped migration; a new migration adds its line here, an edited
/// one fails this test instead of failing at a customer's next start.
#[cfg(test)]
mod shipped_migrations {
    const SQLITE: &[(i64, &str)] = &[
        (
            1,
            "3c980713aa14f68f11a69527cb1632fcec88e7045816d6ea04fb3cec19471639bbb6526067f7be76b23ec3122137fc2f",
        ),
        (
            2,
            "7c6d3fe61f501b27f4f3e67f6bfbd3ecc1d5cc34a8f5afd24eac7d9cf2bf22a90e0dbcbe5996c13de01fe66aabf54cb9",
        ),
        (
            3,
            "7f8970a0946085e074791ac7fbb04849a82ee880e840534977f969bc5ed21f7435eee40f73e4af4fa2a98fa5a9e5a111",
        ),
        (
            4,
            "3205e1a72ccf4c5765f689606698d4a66df3b229adf373d93fd02151f3aa3e8b30f3886a26e8238f822361cf1d78c1b5",
        ),
        (
            5,
            "7bed2951969fa0f85d87583a370ad6527df2882a4c1a1ad0afc8c91f49e0000cc3838544f93662432bec431fbdeb13c1",
        ),
        (
            6,
            "beedbaed55e851e8bc418499fa07576e905cc98d5db90969aff569bfb4ea48bb9cc8a931c8342d4848bd516747852c7b",
        ),
        (
            7,
            "45f143b03f74542e52423b21ff2c5c2dc9141c93bb9c40e25aec259464e367bc31e7d5e0c85c4cf3d5bcdc69cbec6901",
        ),
        (
            8,
            "d2fe684f5afa18b14fc0798eb3dd2fb04e01b960a19997386766342620b0ed561e2ceb723be3441d91129e76c02aa45e",
        ),
        (
            9,
            "972c2a2a5eaa3f51e7921a0b61e93fc02e75934164e3ddabb32f0cc5b2fe5a5caf224b4d2d5bd771dbc0c35a3f786ee7",
        ),
        (
            10,
            "852b414f306f3a19820ba72e3e3aefe206395f62d2a178707415b319a25d86ab7773c76f7609374db8258a81554dd756",
        ),
        (
            11,
            "7ae1718184f86be672047f0d63c4263d126af6a116cde7def4351069402f0381d80ad9fc318e4cac01c5c743f00ed590",
        ),
        (
            12,
            "c83ddbea8e5c414f60a147211070dd76588e2ac779286b3f5ec4d655d1774c384e18c1e2771c5175c25a6ed90e0ad908",
        ),
    ];
    const POSTGRES: &[(i64, &str)] = &[
        (
            1,
            "db47f2ea5dc0b7f67d609d63b284a4e19c369a0fe5f74ed8347551d98a03f7861fc87dbc845bdb02964cf09a545daf76",
        ),
        (
            2,
            "3c4c3e25ed5d9f4939655eafb2aafb7dcd798faccb313675fe53ab518e12c80be3f1b8c5e871fdd29b77df9e35168a40",
        ),
        (
            3,
            "f1f990d19c98bddb5402ca7c73ef6f1256aaeef4f1c869749d007555fc5540728458455c897a2e2c86d5a7a8fc776902",
        ),
        (
            4,
            "b9f72eef6329323b4cb5d5ac363609e04b11cbe4aa8f1a7e7624a8f1b356b08560e055f798cedcd7a80d8d9bb6163ed0",
        ),
        (
            5,
            "b8bac4c9ec7d41b6bc40cf3f313748fb1c4bae6dbf1d1f353a90f742209c3c0d749a0379adfb6436b00e368e4ba0cb9c",
        ),
        (
            6,
            "943be7520914bcba6f7f228eeaa8da9bd17b056902d17bf85d1d4403b18378ee308316df4b3d0e90887d5a992a55e65f",
        ),
        (
            7,
            "96ae6f6c227823450ccf70e3951476d4044b79a54f00b8b7f6c3abba4eeffe391513e47b9d095a1bd23fdcb515a45aed",
        ),
        (
            8,
            "a3d4b943a4e3d441533f05bb5df77a55514a3ed4278f216e62594f10344cf6e2e98b41b7f242ee852539ef46695fe782",
        ),
        (
            9,
            "da1d1e7de18b0bfcc4d28ae5be05ba2d28f0437d9739d6b33e572c9a3044b2168e0ceda8aef3a79c469ef8dfb0571cd3",
        ),
        (
            10,
            "51cfa8897f92196bb89a989796e77180ef83e44829bb673b37d9f8ab304305efac2a1ce5ec348c5ab69c3ee86ca723e5",
        ),
        (
            11,
            "8737a8df13552fe4796e13db21d79015ce5482ea0b89b5318b83b34e828986adb86556859e7908db28b8387c80ca6130",
        ),
        (
            12,
            "795f2f17d3b12685e0aa864fba64d11599e01df066ae3aea86f8bf19b4aa00578d29e80526178a4057143018a6456bd6",
        ),
        (
            13,
            "ebbf93c48d902381b06adb4b50caa862814f08e9b686a451c4d54ec1f4d0e91bcf120423c395e807e50e6268770219c3",
        ),
    ];

    fn checksums(m: &sqlx::migrate::Migrator) -> Vec<(i64, String)> {
        m.iter()
            .map(|m| {
                let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
                (m.version, hex)
            })
            .collect()
    }

    fn check(dialect: &str, m: &sqlx::migrate::Migrator, shipped: &[(i64, &str)]) {
        let now = checksums(m);
        for (version, sum) in shipped {
            let found = now.iter().find(|(v, _)| v == version);
            assert!(
                found.is_some_and(|(_, s)| s == sum),
                "{dialect} migration {version} was edited or removed (shipped checksum {sum}, now {found:?}); add a new migration instead"
            );
        }
        for (version, sum) in &now {
            assert!(
                shipped.iter().any(|(v, _)| v == version),
                "{dialect} migration {version} is not listed as shipped; add (\"{version}\", \"{sum}\") to this test"
            );
        }
    }

    #[test]
    fn shipped_sqlite_migrations_are_never_edited() {
        check("SQLite", &crate::sqlite::MIGRATOR, SQLITE);
    }

    #[test]
    fn shipped_postgres_migrations_are_never_edited() {
        check("PostgreSQL", &crate::postgres::MIGRATOR, POSTGRES);
    }
}
