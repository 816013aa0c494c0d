//! `uchat-relay`: parses flags, environment and an optional TOML file, then runs the relay
//! until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Deserialize;
use uchat_relay::config::CertPaths;
use uchat_relay::{Limits, RelayConfig, Server};

/// mimalloc instead of glibc's allocator: glibc gave each of the relay's threads a heap of
/// its own and kept freed blocks in every one (a relay moving 12,000 messages/s sat at
/// 490 MiB, most of it freed memory), and its malloc and free were a tenth of the relay's
/// CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Uchat relay: routes and queues end-to-end encrypted messages it cannot read.
#[derive(Parser, Debug)]
#[command(name = "uchat-relay", version, about)]
struct Args {
    /// UDP address to listen on [default: 0.0.0.0:4433]
    #[arg(long, env = "UCHAT_RELAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: redb file, self-signed certificate [default: ./uchat-relay-data]
    #[arg(long, env = "UCHAT_RELAY_DATA")]
    data: Option<PathBuf>,
    /// Operator certificate chain (PEM) instead of the self-signed one; needs --key
    #[arg(long, env = "UCHAT_RELAY_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert
    #[arg(long, env = "UCHAT_RELAY_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Prometheus metrics address (GET /metrics), or "off" [default: 127.0.0.1:9433]
    #[arg(long, env = "UCHAT_RELAY_METRICS")]
    metrics: Option<String>,
    /// Seconds of silence after which a connection counts as dead, at least 10 [default: 30]
    #[arg(long, env = "UCHAT_RELAY_IDLE_TIMEOUT")]
    idle_timeout_secs: Option<u64>,
    /// Largest file a user may upload, in MiB [default: 4096]
    #[arg(long, env = "UCHAT_RELAY_MAX_FILE_MIB")]
    max_file_mib: Option<u64>,
    /// Most MiB one user's files may take on the relay [default: 20480]
    #[arg(long, env = "UCHAT_RELAY_FILE_QUOTA_MIB")]
    file_quota_mib: Option<u64>,
    /// Days an uploaded file is kept [default: 30]
    #[arg(long, env = "UCHAT_RELAY_FILE_RETENTION_DAYS")]
    file_retention_days: Option<u64>,
    /// Seconds a call rings before it counts as missed, 1 to 600 [default: 45]
    #[arg(long, env = "UCHAT_RELAY_RING_TIMEOUT")]
    ring_timeout_secs: Option<u64>,
    /// Most MiB of undelivered events one user's queue may hold [default: 128]
    #[arg(long, env = "UCHAT_RELAY_MAX_QUEUE_MIB")]
    max_queue_mib: Option<u64>,
    /// Accounts one address (an IPv6 /64) may create per hour [default: 20]
    #[arg(long, env = "UCHAT_RELAY_REGISTRATIONS_PER_ADDRESS_PER_HOUR")]
    registrations_per_address_per_hour: Option<u32>,
    /// Accounts the relay creates per hour in all [default: 500]
    #[arg(long, env = "UCHAT_RELAY_REGISTRATIONS_PER_HOUR")]
    registrations_per_hour: Option<u32>,
    /// Friend requests one user may send per day [default: 100]
    #[arg(long, env = "UCHAT_RELAY_FRIEND_REQUESTS_PER_DAY")]
    friend_requests_per_day: Option<u32>,
    /// Connections the relay holds at once [default: 10000]
    #[arg(long, env = "UCHAT_RELAY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections one address (an IPv6 /64) may hold at once [default: 64]
    #[arg(long, env = "UCHAT_RELAY_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Logged-in connections one account may hold at once [default: 16]
    #[arg(long, env = "UCHAT_RELAY_MAX_CONNECTIONS_PER_USER")]
    max_connections_per_user: Option<usize>,
    /// Files one user may keep on the relay at once [default: 10000]
    #[arg(long, env = "UCHAT_RELAY_MAX_FILES")]
    max_files: Option<u64>,
    /// Most MiB one user's moments (posts, comments, likes) may take [default: 64]
    #[arg(long, env = "UCHAT_RELAY_MOMENT_QUOTA_MIB")]
    moment_quota_mib: Option<u64>,
    /// Days a moment is kept, 0 for ever [default: 365]
    #[arg(long, env = "UCHAT_RELAY_MOMENT_RETENTION_DAYS")]
    moment_retention_days: Option<u64>,
    /// Seconds a connection may stay open without logging in, 1 to 300 [default: 10]
    #[arg(long, env = "UCHAT_RELAY_LOGIN_TIMEOUT")]
    login_timeout_secs: Option<u64>,
    /// MiB of the store's file kept in memory, at least 4 [default: 128]
    #[arg(long, env = "UCHAT_RELAY_STORE_CACHE_MIB")]
    store_cache_mib: Option<u64>,
    /// TOML file with the same keys (listen, data, cert, key, metrics, idle_timeout_secs,
    /// max_file_mib, file_quota_mib, file_retention_days, ring_timeout_secs,
    /// max_queue_mib, registrations_per_address_per_hour, registrations_per_hour,
    /// friend_requests_per_day, max_connections, max_connections_per_address,
    /// max_connections_per_user, login_timeout_secs, max_files, moment_quota_mib,
    /// moment_retention_days, store_cache_mib)
    #[arg(long, env = "UCHAT_RELAY_CONFIG")]
    config: Option<PathBuf>,
}

/// The TOML file's keys; flags and environment win over it.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    metrics: Option<String>,
    idle_timeout_secs: Option<u64>,
    max_file_mib: Option<u64>,
    file_quota_mib: Option<u64>,
    file_retention_days: Option<u64>,
    ring_timeout_secs: Option<u64>,
    max_queue_mib: Option<u64>,
    registrations_per_address_per_hour: Option<u32>,
    registrations_per_hour: Option<u32>,
    friend_requests_per_day: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    max_connections_per_user: Option<usize>,
    login_timeout_secs: Option<u64>,
    max_files: Option<u64>,
    moment_quota_mib: Option<u64>,
    moment_retention_days: Option<u64>,
    store_cache_mib: Option<u64>,
}

fn read_file_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

fn build_config(args: Args) -> Result<RelayConfig> {
    let file = match &args.config {
        Some(path) => read_file_config(path)?,
        None => FileConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 4433)));
    let data_dir = args
        .data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from("uchat-relay-data"));
    let cert = match (args.cert.or(file.cert), args.key.or(file.key)) {
        (Some(cert), Some(key)) => Some(CertPaths { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!("--cert and --key must be given together"),
    };
    let mut limits = Limits::default();
    if let Some(secs) = args.idle_timeout_secs.or(file.idle_timeout_secs) {
        // Peers send keep-alives every 5 s; a timeout under twice that would drop live peers.
        anyhow::ensure!(
            secs >= 10,
            "--idle-timeout-secs must be at least 10, got {secs}"
        );
        limits.idle_timeout = Duration::from_secs(secs);
    }
    if let Some(mib) = args.max_file_mib.or(file.max_file_mib) {
        anyhow::ensure!(mib >= 1, "--max-file-mib must be at least 1");
        limits.max_file_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(mib) = args.file_quota_mib.or(file.file_quota_mib) {
        limits.file_quota_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(days) = args.file_retention_days.or(file.file_retention_days) {
        anyhow::ensure!(
            (1..=3650).contains(&days),
            "--file-retention-days must be 1 to 3650, got {days}"
        );
        limits.file_retention = Duration::from_secs(days * 24 * 60 * 60);
    }
    if let Some(secs) = args.ring_timeout_secs.or(file.ring_timeout_secs) {
        anyhow::ensure!(
            (1..=600).contains(&secs),
            "--ring-timeout-secs must be 1 to 600, got {secs}"
        );
        limits.ring_timeout = Duration::from_secs(secs);
    }
    if let Some(mib) = args.store_cache_mib.or(file.store_cache_mib) {
        anyhow::ensure!(mib >= 4, "--store-cache-mib must be at least 4, got {mib}");
        limits.store_cache_bytes =
            usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    }
    if let Some(mib) = args.max_queue_mib.or(file.max_queue_mib) {
        // A queue must hold at least the largest message with its envelope.
        anyhow::ensure!(mib >= 2, "--max-queue-mib must be at least 2, got {mib}");
        limits.max_queue_bytes = mib.saturating_mul(1 << 20);
    }
    let rate = |name: &str, value: Option<u32>, target: &mut u32| -> Result<()> {
        if let Some(n) = value {
            anyhow::ensure!(n >= 1, "--{name} must be at least 1, got {n}");
            *target = n;
        }
        Ok(())
    };
    rate(
        "registrations-per-address-per-hour",
        args.registrations_per_address_per_hour
            .or(file.registrations_per_address_per_hour),
        &mut limits.max_registrations_per_address_per_hour,
    )?;
    rate(
        "registrations-per-hour",
        args.registrations_per_hour.or(file.registrations_per_hour),
        &mut limits.max_registrations_per_hour,
    )?;
    rate(
        "friend-requests-per-day",
        args.friend_requests_per_day
            .or(file.friend_requests_per_day),
        &mut limits.max_friend_requests_per_day,
    )?;
    let count = |name: &str, value: Option<usize>, target: &mut usize| -> Result<()> {
        if let Some(n) = value {
            anyhow::ensure!(n >= 1, "--{name} must be at least 1, got {n}");
            *target = n;
        }
        Ok(())
    };
    count(
        "max-connections",
        args.max_connections.or(file.max_connections),
        &mut limits.max_connections,
    )?;
    count(
        "max-connections-per-address",
        args.max_connections_per_address
            .or(file.max_connections_per_address),
        &mut limits.max_connections_per_address,
    )?;
    count(
        "max-connections-per-user",
        args.max_connections_per_user
            .or(file.max_connections_per_user),
        &mut limits.max_connections_per_user,
    )?;
    if let Some(secs) = args.login_timeout_secs.or(file.login_timeout_secs) {
        anyhow::ensure!(
            (1..=300).contains(&secs),
            "--login-timeout-secs must be 1 to 300, got {secs}"
        );
        limits.login_timeout = Duration::from_secs(secs);
    }
    if let Some(n) = args.max_files.or(file.max_files) {
        anyhow::ensure!(n >= 1, "--max-files must be at least 1, got {n}");
        limits.max_files_per_user = n;
    }
    if let Some(mib) = args.moment_quota_mib.or(file.moment_quota_mib) {
        anyhow::ensure!(mib >= 1, "--moment-quota-mib must be at least 1, got {mib}");
        limits.moment_quota_bytes = mib.saturating_mul(1 << 20);
    }
    if let Some(days) = args.moment_retention_days.or(file.moment_retention_days) {
        anyhow::ensure!(
            days <= 36_500,
            "--moment-retention-days must be 0 (for ever) to 36500, got {days}"
        );
        limits.moment_retention = (days > 0).then(|| Duration::from_secs(days * 24 * 60 * 60));
    }
    let metrics = match args.metrics.or(file.metrics).as_deref() {
        Some("off") => None,
        Some(addr) => Some(
            addr.parse()
                .with_context(|| format!("--metrics must be HOST:PORT or \"off\", got {addr:?}"))?,
        ),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9433))),
    };
    Ok(RelayConfig {
        listen,
        data_dir,
        cert,
        metrics,
        limits,
    })
}

async fn run(args: Args) -> Result<()> {
    let config = build_config(args)?;
    let data_dir = config.data_dir.clone();
    let server = Server::spawn(config).await.with_context(|| {
        format!(
            "cannot start the relay (data directory {})",
            data_dir.display()
        )
    })?;
    println!(
        "uchat-relay listening on {} fingerprint: {}",
        server.local_addr(),
        server.fingerprint()
    );
    wait_for_stop_signal().await?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uchat-relay: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!(
            "uchat-relay: {}",
            uchat_wire::describe_error_chain(e.as_ref())
        );
        std::process::exit(1);
    }
}
