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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
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
            if config.master_key_file.is_some() {
                anyhow::bail!(
                    "rotating the shared signing keys (--master-key-file) is not built yet"
                );
            }
            tessera::fsutil::ensure_private_dir(&config.data_dir)?;
            let kid = tessera::keys::ServerKeys::rotate_signing_key(&config.data_dir)?;
            println!("new signing key {kid}: restart the server to sign with it");
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            command:
                EventsCommand::Export {
                    overrides,
                    since,
                    org,
                    after_id,
                },
        } => {
            let config = Config::load(&overrides)?;
            let store = tessera::export::open_store(&config).await?;
            let req = tessera::export::ExportRequest {
                since,
                org,
                after_id,
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
        Command::Serve { overrides } => {
            let config = Config::load(&overrides)?;
            init_logging(config.log_format);
            let data_dir = config.data_dir.clone();
            let shutdown = shutdown_signal()?;
            let metrics = tessera_http::telemetry::install_recorder();
            let prepared = server::prepare(config, Arc::new(SystemClock)).await?;
            let running = server::start(prepared, metrics, shutdown, |boot| {
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
