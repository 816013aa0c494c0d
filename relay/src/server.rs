//! The relay server handle: [`Server::spawn`] starts it, [`Server::shutdown`] stops it.
//!
//! Tasks: one accept loop, one task per connection, one per request stream and one event
//! pusher per logged-in connection. They all hang off the accept loop's `JoinSet`s, so
//! shutting the handle down stops every one of them.

mod connection;
mod metrics;
mod online;
mod push;
mod rate_limit;
mod requests;
mod stream;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;
use uchat_store::{RelayStore, StoreError};
use uchat_wire::{ALPN, CertFingerprint, ErrorCode, ErrorReply};

use crate::config::{Limits, RelayConfig};
use crate::tls::{self, TlsError};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS identity could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// rustls refused the certificate or key.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The metrics endpoint could not be bound.
    #[error("cannot serve metrics on {addr}: {source} (pass --metrics off or another address)")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// State shared by every connection of one relay.
struct Shared {
    store: Arc<RelayStore>,
    limits: Limits,
    online: online::Online,
    login_limiter: Mutex<rate_limit::FailedLogins>,
    metrics: Arc<metrics::Metrics>,
}

/// A running relay. Dropping it without [`Server::shutdown`] aborts its tasks.
pub struct Server {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: CertFingerprint,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    accept_loop: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Server {
    /// Opens the store, loads or makes the certificate, binds the endpoint and starts serving.
    pub async fn spawn(config: RelayConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = Arc::new(RelayStore::open(&config.data_dir.join("relay.redb"))?);
        let identity = tls::load_or_generate(&config.data_dir, config.cert.as_ref())?;
        let fingerprint = identity.fingerprint();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)?;
        tls_config.alpn_protocols = vec![ALPN.to_vec()];
        let quic_tls = quinn::crypto::rustls::QuicServerConfig::try_from(tls_config)
            .map_err(|e| ServerError::Rustls(rustls::Error::General(e.to_string())))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_tls));
        let mut transport = quinn::TransportConfig::default();
        transport.max_idle_timeout(config.limits.idle_timeout.try_into().ok());
        transport.max_concurrent_uni_streams(0u8.into());
        server_config.transport_config(Arc::new(transport));

        let endpoint = quinn::Endpoint::server(server_config, config.listen).map_err(|source| {
            ServerError::Bind {
                addr: config.listen,
                source,
            }
        })?;
        let local_addr = endpoint.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;

        let metrics = Arc::new(metrics::Metrics::new());
        let (stop, stop_rx) = watch::channel(false);
        let metrics_addr = match config.metrics {
            Some(addr) => {
                let (bound, _task) = metrics::serve(addr, metrics.clone(), stop_rx.clone())
                    .await
                    .map_err(|source| ServerError::Metrics { addr, source })?;
                tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
                Some(bound)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            store,
            limits: config.limits.clone(),
            online: online::Online::default(),
            login_limiter: Mutex::new(rate_limit::FailedLogins::new(&config.limits)),
            metrics,
        });
        let accept_loop = tokio::spawn(accept_loop(endpoint.clone(), shared, stop_rx));
        tracing::info!(%local_addr, %fingerprint, "relay listening");
        Ok(Server {
            endpoint,
            local_addr,
            fingerprint,
            metrics_addr,
            stop,
            accept_loop: Some(accept_loop),
        })
    }

    /// The address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The certificate fingerprint peers pin.
    pub fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// Stops accepting, closes every connection with a "shutting down" reason, waits briefly
    /// for peers to be told, and stops every task. Every acknowledged message is already
    /// committed to redb, so nothing is lost.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.await;
        }
        tracing::info!("relay stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(accept_loop) = &self.accept_loop {
            accept_loop.abort();
        }
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Priority: a stop request wins over new connections; finished connection
            // tasks are reaped last.
            biased;
            _ = stop.changed() => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                connections.spawn(connection::serve(incoming, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Connection tasks end when the endpoint closes their connections; give them a moment
    // to record last-seen times, then stop the rest.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a blocking store call off the async threads; failures become the error reply the
/// peer will see.
async fn blocking<T, F>(f: F) -> Result<T, ErrorReply>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(requests::store_failure(e)),
        Err(e) => {
            tracing::error!(error = %e, "store task failed");
            Err(ErrorReply {
                code: ErrorCode::Internal,
                message: "the relay failed internally; try again".into(),
            })
        }
    }
}
