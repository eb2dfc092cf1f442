//! `tessera`: an Atlas-compatible access plane.

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the request paths allocate many small,
/// short-lived buffers, and glibc malloc's consolidation showed up in profiles
/// (`scripts/bench.sh`, docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;
use std::sync::Arc;
use tessera::bootstrap::{self, BootstrapError};
use tessera::config::{Config, LogFormat, Overrides};
use tessera::server;
use tessera_domain::SystemClock;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Atlas-compatible access plane: service accounts, OAuth 2.0, API keys"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (bootstraps an empty data directory on first start).
    Serve {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Create the first organization, project and ORG_OWNER API key explicitly.
    Bootstrap {
        #[command(flatten)]
        overrides: Overrides,
        #[arg(long, default_value = server::DEFAULT_ORG_NAME)]
        org_name: String,
        #[arg(long, default_value = server::DEFAULT_PROJECT_NAME)]
        project_name: String,
    },
    /// Apply pending database migrations (SQLite in the data directory by default, or
    /// --database-url) and exit.
    Migrate {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Print the effective configuration (secrets masked).
    Config {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Add a new token-signing key; it signs after the next start, old keys keep verifying.
    RotateSigningKey {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// The event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Support operators: the only credentials that may ask for support access decisions.
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
}

#[derive(Subcommand)]
enum OperatorsCommand {
    /// Create an operator; prints its id and secret once, as JSON.
    Create {
        #[command(flatten)]
        overrides: Overrides,
        /// A name for the operator (unique; e.g. the support tool that uses it).
        #[arg(long)]
        name: String,
    },
    /// List operators as JSON (ids, names, creation times; never secrets).
    List {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Delete an operator: its credentials stop working at once.
    Delete {
        #[command(flatten)]
        overrides: Overrides,
        #[arg(long, value_parser = parse_operator_id)]
        id: tessera_domain::OperatorId,
    },
}

fn parse_operator_id(s: &str) -> Result<tessera_domain::OperatorId, String> {
    tessera_domain::OperatorId::parse(s).map_err(|e| e.to_string())
}

/// The store and the secret hasher, for the operator commands (no server, no bootstrap).
async fn operator_tools(
    overrides: &Overrides,
) -> anyhow::Result<(Arc<dyn tessera_store::Store>, Arc<tessera_http::Crypto>)> {
    let config = Config::load(overrides)?;
    let prepared = server::prepare(config, Arc::new(SystemClock)).await?;
    Ok((
        prepared.state_parts.store.clone(),
        prepared.state_parts.crypto.clone(),
    ))
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events as JSON lines on stdout (oldest first), in the shape the API serves with
    /// includeRaw=true. Resume with --since <created> --after-id <id> of the last line printed.
    Export {
        #[command(flatten)]
        overrides: Overrides,
        /// Events created at or after this instant (RFC 3339, e.g. 2026-01-01T00:00:00Z).
        #[arg(long, value_parser = parse_since)]
        since: chrono::DateTime<chrono::Utc>,
        /// Only this organization's events (its projects' included).
        #[arg(long, value_parser = parse_org)]
        org: Option<tessera_domain::OrgId>,
        /// Continue strictly after this event (the `id` of the last line printed; --since
        /// must then be that line's `created`).
        #[arg(long, value_parser = parse_event_id)]
        after_id: Option<tessera_domain::EventId>,
        /// Only events created before this instant (RFC 3339). Default: now minus the settle
        /// window (60 s + 2 x usage_flush_secs + 10 s), so nothing printed can still change or
        /// be preceded by an event still being committed.
        #[arg(long, value_parser = parse_since)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 date-time ({e}); e.g. 2026-01-01T00:00:00Z"))
}

fn parse_org(s: &str) -> Result<tessera_domain::OrgId, String> {
    tessera_domain::OrgId::parse(s).map_err(|e| e.to_string())
}

fn parse_event_id(s: &str) -> Result<tessera_domain::EventId, String> {
    tessera_domain::EventId::parse(s).map_err(|e| e.to_string())
}

/// Whether the log lines on stderr may carry ANSI colours: only when stderr is a terminal
/// (never in a file or a pipe) and `NO_COLOR` is unset or empty (no-color.org).
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colours())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Every connection is a descriptor: serve with the soft open-files limit at the hard one
/// (the listener sizes its connection limits from what is in force; see `listener`).
fn raise_open_files_limit() {
    match tessera::listener::raise_open_files_limit() {
        Ok(Some(n)) => tracing::info!(open_files_limit = n, "open files limit in force"),
        Ok(None) => tracing::info!("open files limit in force: unlimited"),
        Err(e) => tracing::warn!(
            error = %e,
            open_files_limit = ?tessera::listener::open_files_limit(),
            "could not raise the open files limit; keeping the one in force"
        ),
    }
}

/// Installs the SIGINT/SIGTERM handlers now (before the server binds, so a signal that
/// arrives right after it becomes ready is never lost) and returns the future that resolves
/// on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    })
}

fn print_bootstrap(out: &bootstrap::BootstrapOutput, data_dir: &std::path::Path) {
    println!(
        "Tessera bootstrap: these credentials are shown once (also in {}):",
        data_dir.join(bootstrap::FILE).display()
    );
    println!("  org id:      {}", out.org_id);
    println!("  project id:  {}", out.project_id);
    println!("  public key:  {}", out.public_key);
    println!("  private key: {}", out.private_key);
    println!("  console:     sign in at / as {}", out.owner_username);
    println!("  password:    {}", out.owner_password);
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config { overrides } => {
            let config = Config::load(&overrides)?;
            print!("{}", config.to_masked_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { overrides } => {
            let config = Config::load(&overrides)?;
            init_logging(config.log_format);
            let store = server::open_store(&config).await?;
            store.close().await;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateSigningKey { overrides } => {
            let config = Config::load(&overrides)?;
            tessera::fsutil::ensure_private_dir(&config.data_dir)?;
            let kid = match &config.master_key_file {
                Some(path) => {
                    let master = tessera::keys::read_master_key(path)?;
                    let store = tessera::server::open_store(&config).await?;
                    let kid = tessera::keys::ServerKeys::rotate_signing_key_shared(
                        store.as_ref(),
                        &master,
                        tessera_domain::Clock::now(&SystemClock),
                    )
                    .await;
                    store.close().await;
                    kid?
                }
                None => tessera::keys::ServerKeys::rotate_signing_key(
                    &config.data_dir,
                    tessera_domain::Clock::now(&SystemClock),
                )?,
            };
            let from = tessera::keys::SIGNING_KEY_ACTIVATION.num_seconds();
            if config.master_key_file.is_some() {
                println!(
                    "new signing key {kid}: every running node re-reads it now and signs with it from {from} s after this rotation; older keys verify until their tokens have expired"
                );
            } else {
                println!(
                    "new signing key {kid}: a running server uses it once restarted (it signs from {from} s after this rotation); older keys verify until their tokens have expired"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            command:
                EventsCommand::Export {
                    overrides,
                    since,
                    org,
                    after_id,
                    until,
                },
        } => {
            let config = Config::load(&overrides)?;
            let store = tessera::export::open_store(&config).await?;
            let until = until.unwrap_or_else(|| {
                use tessera_domain::Clock;
                tessera_domain::SystemClock.now()
                    - tessera::export::settle_window(config.usage_flush_secs)
            });
            let req = tessera::export::ExportRequest {
                since,
                org,
                after_id,
                until,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            tessera::export::export(
                &*store,
                &tessera::export::v2_base(&config),
                &req,
                tessera::export::BATCH,
                &mut out,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Operators { command } => {
            use tessera::operators;
            use tessera_domain::Clock;
            let now = SystemClock.now();
            match command {
                OperatorsCommand::Create { overrides, name } => {
                    let (store, crypto) = operator_tools(&overrides).await?;
                    let doc = operators::create(store.as_ref(), &crypto.hasher, &name, now).await?;
                    println!("{doc}");
                    store.close().await;
                }
                OperatorsCommand::List { overrides } => {
                    let (store, _) = operator_tools(&overrides).await?;
                    println!(
                        "{}",
                        serde_json::Value::Array(operators::list(store.as_ref()).await?)
                    );
                    store.close().await;
                }
                OperatorsCommand::Delete { overrides, id } => {
                    let (store, _) = operator_tools(&overrides).await?;
                    operators::delete(store.as_ref(), id, now).await?;
                    println!("deleted operator {id}");
                    store.close().await;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { overrides } => {
            let config = Config::load(&overrides)?;
            init_logging(config.log_format);
            raise_open_files_limit();
            let data_dir = config.data_dir.clone();
            let shutdown = shutdown_signal()?;
            let metrics = tessera_http::telemetry::install_recorder();
            // Before the data directory is touched: a busy address must not leave a fresh
            // directory with keys and a database behind.
            let listener = server::bind(&config).await?;
            let prepared = server::prepare(config, Arc::new(SystemClock)).await?;
            let running = server::start_on(listener, prepared, metrics, shutdown, |boot| {
                if let Some(out) = boot {
                    print_bootstrap(out, &data_dir);
                }
            })
            .await?;
            tracing::info!(addr = %running.addr, "tessera listening");
            running.task.await??;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bootstrap {
            overrides,
            org_name,
            project_name,
        } => {
            let config = Config::load(&overrides)?;
            init_logging(config.log_format);
            let data_dir = config.data_dir.clone();
            let prepared = server::prepare(config.clone(), Arc::new(SystemClock)).await?;
            let state = prepared.state_parts.state(String::new(), &config, None)?;
            match bootstrap::run(&state, &data_dir, &org_name, &project_name).await {
                Ok(out) => {
                    print_bootstrap(&out, &data_dir);
                    Ok(ExitCode::SUCCESS)
                }
                Err(BootstrapError::AlreadyDone) => {
                    eprintln!("error: this data directory is already bootstrapped; refusing to bootstrap again");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
