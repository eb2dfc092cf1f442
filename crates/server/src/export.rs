//! `tessera events export`: the event log as JSON lines on stdout, for a SIEM.
//!
//! One event per line, oldest first, in the document the API serves with `includeRaw=true`
//! (`tessera_http::routes::events::event_out`, links built from the configured public URL).
//! Paged through `Store::export_events` in (`created`, `id`) order, so a run resumed with
//! `--since <created of the last line> --after-id <id of the last line>` continues exactly
//! after that event: the cursor is the stored event's own position (millisecond `created`,
//! then id), not the whole-second `created` printed on the line.
//!
//! By default it stops at events younger than [`settle_window`] (`--until` overrides): those
//! may still change (aggregated failure counts) or be joined by an older-stamped event whose
//! transaction is still in flight, which a resumed run would otherwise skip.
//!
//! It only reads: it opens the database and nothing else (no server keys, no bootstrap).

use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tessera_domain::time::format;
use tessera_domain::{EventId, OrgId};
use tessera_http::routes::events::event_out;
use tessera_store::events::ExportCursor;
use tessera_store::{SqliteStore, Store};

use crate::config::Config;

/// Events read from the store per round trip.
pub const BATCH: u64 = 1_000;

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// Events created at or after this instant (or, with `after_id`, strictly after that
    /// event).
    pub since: DateTime<Utc>,
    pub org: Option<OrgId>,
    pub after_id: Option<EventId>,
    /// Only events created before this instant. The command line defaults it to now minus
    /// [`settle_window`], so a run never prints an event that can still change or that a
    /// transaction still in flight could place before the resume cursor.
    pub until: DateTime<Utc>,
}

/// How old an event must be before a default export prints it: an aggregated
/// failed-authentication event is stamped with its minute and its `count` grows until the
/// usage flush after that minute has ended; any other event is stamped when its request
/// starts and committed moments later. Events younger than this are left for the next run,
/// which resumes exactly after the last line printed.
pub fn settle_window(usage_flush_secs: u64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(60 + 2 * i64::try_from(usage_flush_secs).unwrap_or(3600) + 10)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--after-id {0}: no such event")]
    UnknownAfterId(EventId),
    #[error(
        "--after-id {id} was created at {created}, not at --since {since}: pass the created and id of the same line"
    )]
    CursorMismatch {
        id: EventId,
        created: String,
        since: String,
    },
    #[error("no database at {0}: nothing to export")]
    NoDatabase(String),
    #[error("store: {0}")]
    Store(#[from] tessera_store::StoreError),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

/// The absolute base URL of the v2 surface, as the server builds it.
pub fn v2_base(config: &Config) -> String {
    let scheme = if config.tls_cert.is_some() || config.tls_self_signed {
        "https"
    } else {
        "http"
    };
    let public = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}", config.listen));
    format!("{}/api/atlas/v2", public.trim_end_matches('/'))
}

/// Opens the configured database for reading the log; refuses to create an empty one.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ExportError> {
    match &config.database_url {
        Some(url) => Ok(tessera_store::open_url(url).await?),
        None => {
            let path = crate::server::database_path(config);
            if !Path::new(&path).exists() {
                return Err(ExportError::NoDatabase(path.display().to_string()));
            }
            Ok(Arc::new(SqliteStore::open(&path).await?))
        }
    }
}

/// Writes every event `req` selects to `out`, one JSON document per line, in batches of
/// `batch`; returns how many it wrote.
pub async fn export(
    store: &dyn Store,
    base: &str,
    req: &ExportRequest,
    batch: u64,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut cursor = match req.after_id {
        None => ExportCursor {
            created: req.since,
            id: None,
        },
        Some(id) => {
            let last = store
                .get_event(id)
                .await?
                .ok_or(ExportError::UnknownAfterId(id))?;
            if format(last.created) != format(req.since) {
                return Err(ExportError::CursorMismatch {
                    id,
                    created: format(last.created),
                    since: format(req.since),
                });
            }
            ExportCursor {
                created: last.created,
                id: Some(id),
            }
        }
    };
    let mut written = 0u64;
    loop {
        let events = store.export_events(req.org, cursor, batch.max(1)).await?;
        let n = events.len() as u64;
        for e in events {
            if e.created >= req.until {
                out.flush()?;
                return Ok(written);
            }
            cursor = ExportCursor {
                created: e.created,
                id: Some(e.id),
            };
            let doc = event_out(base, None, e, true);
            serde_json::to_writer(&mut *out, &doc).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        out.flush()?;
        if n < batch.max(1) {
            return Ok(written);
        }
    }
}
