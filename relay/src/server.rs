//! The relay server handle: [`Server::spawn`] starts it, [`Server::shutdown`] stops it.
//!
//! Tasks: one accept loop, one task per connection, one per request stream and one event
//! pusher per logged-in connection, which all hang off the accept loop's `JoinSet`s, and the
//! dedup pruner (`server/prune.rs`). The handle owns the accept loop and the pruner, so
//! shutting it down stops every one of them.
//!
//! Resource limits against clients that never log in: QUIC flow control caps what one
//! connection can make the relay buffer (`transport_config`), request frames are small
//! until login (`connection::MAX_PRELOGIN_FRAME_BYTES`), and argon2 work runs at most once
//! per CPU at a time (`RelayState::password_work`).

mod admission;
mod announce;
mod budget;
mod calls;
mod committer;
mod connection;
mod files;
mod metrics;
mod online;
mod page;
mod password;
mod prune;
mod push;
mod rate_limit;
mod requests;
mod stream;
mod throttle;
mod voice;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;
use uchat_store::{RelayStore, StoreError};
use uchat_wire::frame::{HEADER_BYTES, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{ALPN, CertFingerprint, ErrorCode, ErrorReply};

use crate::config::{Limits, RelayConfig};
use crate::tls::{self, TlsError};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory that could not be made: the data directory or its `files` folder.
        path: std::path::PathBuf,
        /// What the operating system said (no permission, a file in the way, ...).
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread of the relay's own (the committer, a password worker) could not start.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread's kind, as the message names it (such as "password worker").
        name: &'static str,
        /// What the operating system said when asked for the thread.
        source: std::io::Error,
    },
    /// The TLS identity could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// rustls refused the certificate or key.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The metrics endpoint could not be bound.
    #[error("cannot serve metrics on {addr}: {source} (pass --metrics off or another address)")]
    Metrics {
        /// The metrics address from the configuration (`--metrics`).
        addr: SocketAddr,
        /// What the operating system said (the address in use, not local, ...).
        source: std::io::Error,
    },
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The UDP address from the configuration (`--listen`).
        addr: SocketAddr,
        /// What the operating system said (the address in use, not local, ...).
        source: std::io::Error,
    },
}

/// Request streams a connection may have open at once. A peer sends a few requests at a
/// time; 32 leaves room for a burst of sends while bounding the per-stream state one
/// connection can make the relay hold.
const MAX_CONCURRENT_BIDI_STREAMS: u32 = 32;

/// Per-stream receive window: one full control frame (1 MiB) and a quarter more, so a
/// frame never stalls on flow control halfway.
const STREAM_RECEIVE_WINDOW_BYTES: u32 = 1280 * 1024;

/// Per-connection receive window once logged in: 4 MiB, the most unread data one
/// connection can make the relay buffer across all its streams (quinn's default is
/// unbounded); what the relay reads out of it is bounded by `budget.rs`. Before login it
/// is smaller (`connection::PRELOGIN_RECEIVE_WINDOW_BYTES`).
const CONNECTION_RECEIVE_WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// Per-connection send window: what the relay buffers for a peer that reads slowly, across
/// its event stream and downloads (quinn's default is 10 MB). 2 MiB covers the
/// bandwidth-delay product of a 100 Mbit/s path with 150 ms of round trip.
const SEND_WINDOW_BYTES: u64 = 2 * 1024 * 1024;

/// Handshakes under way above which a client must first prove its address with a QUIC
/// Retry (one more round trip), so spoofed Initial packets cannot hold handshake state.
const RETRY_ABOVE_HANDSHAKES: usize = 256;

/// Connection attempts beyond the connection limit that may be in their handshake at
/// once; past it new attempts are refused before any handshake work.
const HANDSHAKE_SLACK: usize = 1024;

// A whole control frame must fit in a stream's window, and a stream's window in the
// connection's.
const _: () =
    assert!(STREAM_RECEIVE_WINDOW_BYTES as usize >= HEADER_BYTES + MAX_CONTROL_FRAME_BYTES);
const _: () = assert!(CONNECTION_RECEIVE_WINDOW_BYTES >= STREAM_RECEIVE_WINDOW_BYTES);

/// State shared by every connection of one relay.
struct RelayState {
    store: Arc<RelayStore>,
    /// Commits messages, group messages and acknowledgements, many to a transaction.
    committer: committer::Committer,
    /// Where uploaded files' ciphertext lives (`files/` in the data directory).
    files: Arc<files::FileDir>,
    limits: Limits,
    online: Arc<online::Online>,
    /// Sends presence, profile and identity changes to online friends.
    announcer: announce::Announcer,
    login_limiter: Mutex<rate_limit::FailedLogins>,
    /// Rate limits on registrations, friend requests and group syncs.
    throttles: Arc<throttle::Throttles>,
    /// Connections held, in all and per address.
    admission: admission::Admission,
    /// Request bytes in memory, relay-wide.
    frame_budget: budget::FrameBudget,
    /// The threads (one per CPU) and permits for argon2 hashing and verifying (Register,
    /// Login): each run holds 19 MiB, so a flood of logins queues here instead of
    /// exhausting memory.
    password_work: password::PasswordWorkers,
    metrics: Arc<metrics::Metrics>,
    /// Every call that rings or talks.
    calls: Mutex<calls::CallBook>,
    /// The monotonic clock calls are timed by.
    started: Instant,
}

impl RelayState {
    /// The book of calls, locked (never held across an await).
    fn calls(&self) -> std::sync::MutexGuard<'_, calls::CallBook> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Milliseconds on the monotonic clock calls are timed by.
    fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// How many argon2 runs may go at once: the number of CPUs (1 if unknown).
fn password_work_permits() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Socket buffer the relay asks for: every leg of every call sends a datagram each 20 ms,
/// and the default (about 200 KiB, a couple of hundred datagrams) overflows when many of
/// them arrive together. The kernel caps it (`net.core.rmem_max`, `wmem_max`).
const UDP_BUFFER_BYTES: usize = 8 << 20;

/// Binds the relay's UDP socket with large buffers (best effort: a smaller cap is kept).
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // As std's bind does: an IPv6 wildcard takes IPv4 too where the system allows.
        let _ = socket.set_only_v6(false);
    }
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    tracing::debug!(
        receive = socket.recv_buffer_size().unwrap_or(0),
        send = socket.send_buffer_size().unwrap_or(0),
        "UDP socket buffers"
    );
    Ok(socket.into())
}

/// QUIC transport settings: the idle timeout from `limits`, no peer-opened unidirectional
/// streams, and flow-control windows that bound what a connection can make the relay
/// buffer, logged in or not.
fn transport_config(limits: &Limits) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(limits.idle_timeout.try_into().ok());
    transport.max_concurrent_uni_streams(0u8.into());
    transport.max_concurrent_bidi_streams(MAX_CONCURRENT_BIDI_STREAMS.into());
    transport.stream_receive_window(STREAM_RECEIVE_WINDOW_BYTES.into());
    transport.receive_window(CONNECTION_RECEIVE_WINDOW_BYTES.into());
    transport.send_window(SEND_WINDOW_BYTES);
    // BBR rather than quinn's default Cubic: Cubic reads random loss as congestion, and at
    // 1 % loss and 50 ms it sends a file at 0.3 MB/s where BBR reaches two thirds of a
    // 100 Mbit/s path (filebench). quinn calls its BBR experimental; chat traffic is tiny
    // either way, and the README's performance section has the figures.
    transport.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    transport
}

/// A running relay. Dropping it without [`Server::shutdown`] aborts its tasks.
pub struct Server {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    fingerprint: CertFingerprint,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    accept_loop: Option<tokio::task::JoinHandle<()>>,
    pruner: Option<tokio::task::JoinHandle<()>>,
    announcer: Option<tokio::task::JoinHandle<()>>,
    ring_timer: Option<tokio::task::JoinHandle<()>>,
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
        let store = Arc::new(RelayStore::open_with_cache(
            &config.data_dir.join("relay.redb"),
            config.limits.store_cache_bytes,
        )?);
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
        server_config.transport_config(Arc::new(transport_config(&config.limits)));
        // Data a client may send before its connection is accepted: a few Initial packets
        // each (quinn's defaults are 10 MB each and 100 MB in all).
        server_config
            .max_incoming(config.limits.max_connections + HANDSHAKE_SLACK)
            .incoming_buffer_size(64 * 1024)
            .incoming_buffer_size_total(16 << 20);

        let bind_error = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let socket = bind_udp(config.listen).map_err(bind_error)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
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
        let file_dir = Arc::new(files::FileDir::open(&config.data_dir).map_err(|source| {
            ServerError::DataDir {
                path: config.data_dir.join(files::FILES_DIR),
                source,
            }
        })?);
        let throttles = Arc::new(throttle::Throttles::new(&config.limits));
        let pruner = tokio::spawn(prune::run(
            store.clone(),
            file_dir.clone(),
            throttles.clone(),
            config.limits.moment_retention,
            stop_rx.clone(),
        ));
        let online = Arc::new(online::Online::default());
        let (announcer, announcer_task) =
            announce::start(store.clone(), online.clone(), metrics.clone());
        let committer =
            committer::Committer::start(store.clone(), metrics.clone()).map_err(|source| {
                ServerError::Thread {
                    name: "committer",
                    source,
                }
            })?;
        let password_work =
            password::PasswordWorkers::start(password_work_permits()).map_err(|source| {
                ServerError::Thread {
                    name: "password worker",
                    source,
                }
            })?;
        let shared = Arc::new(RelayState {
            store,
            committer,
            files: file_dir,
            limits: config.limits.clone(),
            online,
            announcer,
            login_limiter: Mutex::new(rate_limit::FailedLogins::new(&config.limits)),
            throttles,
            admission: admission::Admission::new(
                config.limits.max_connections,
                config.limits.max_connections_per_address,
            ),
            frame_budget: budget::FrameBudget::new(),
            password_work,
            metrics,
            calls: Mutex::new(calls::CallBook::new(
                u64::try_from(config.limits.ring_timeout.as_millis()).unwrap_or(u64::MAX),
            )),
            started: Instant::now(),
        });
        let ring_timer = tokio::spawn(voice::run_ring_timer(shared.clone(), stop_rx.clone()));
        let accept_loop = tokio::spawn(accept_loop(endpoint.clone(), shared, stop_rx));
        tracing::info!(%local_addr, %fingerprint, "relay listening");
        Ok(Server {
            endpoint,
            local_addr,
            fingerprint,
            metrics_addr,
            stop,
            accept_loop: Some(accept_loop),
            pruner: Some(pruner),
            announcer: Some(announcer_task),
            ring_timer: Some(ring_timer),
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
            .close(connection::CLOSE_SHUTDOWN.into(), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.await;
        }
        if let Some(pruner) = self.pruner.take() {
            let _ = pruner.await;
        }
        // Nothing is left to announce to: every connection is closed.
        if let Some(announcer) = self.announcer.take() {
            announcer.abort();
        }
        if let Some(ring_timer) = self.ring_timer.take() {
            ring_timer.abort();
        }
        tracing::info!("relay stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(accept_loop) = &self.accept_loop {
            accept_loop.abort();
        }
        if let Some(pruner) = &self.pruner {
            pruner.abort();
        }
        if let Some(announcer) = &self.announcer {
            announcer.abort();
        }
        if let Some(ring_timer) = &self.ring_timer {
            ring_timer.abort();
        }
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<RelayState>,
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
                if connections.len() >= shared.limits.max_connections + HANDSHAKE_SLACK {
                    incoming.refuse();
                } else if shared.admission.handshakes() >= RETRY_ABOVE_HANDSHAKES
                    && !incoming.remote_address_validated()
                {
                    // A client at a real address answers the Retry and comes back validated.
                    let _ = incoming.retry();
                } else {
                    let handshake = shared.admission.handshake();
                    connections.spawn(connection::serve(incoming, shared.clone(), handshake));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_work_runs_on_every_cpu_and_at_least_one() {
        let permits = password_work_permits();
        assert!(permits >= 1);
        if let Ok(cpus) = std::thread::available_parallelism() {
            assert_eq!(permits, cpus.get());
        }
    }

    /// How much `send` takes before flow control stops it (nothing read at the other
    /// end): writes until a write waits for 300 ms.
    async fn bytes_taken(send: &mut quinn::SendStream) -> usize {
        let chunk = vec![0u8; 64 * 1024];
        let mut taken = 0;
        while let Ok(written) =
            tokio::time::timeout(Duration::from_millis(300), send.write(&chunk)).await
        {
            taken += written.expect("the stream stays open");
        }
        taken
    }

    /// Whether `what` is still waiting after 300 ms (for credit the other end never gave).
    async fn waits<F: std::future::Future>(what: F) -> bool {
        tokio::time::timeout(Duration::from_millis(300), what)
            .await
            .is_err()
    }

    /// A client connected over loopback to a QUIC server with the relay's transport
    /// config that accepts the connection and then neither accepts streams nor reads:
    /// what the client may open and send is what the config grants, nothing more.
    #[tokio::test]
    async fn the_transport_bounds_streams_and_buffers() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = tls::load_or_generate(dir.path(), None).expect("the relay's certificate");
        let leaf = identity.chain[0].clone();
        let mut server_config = quinn::ServerConfig::with_single_cert(identity.chain, identity.key)
            .expect("server config");
        server_config.transport_config(Arc::new(transport_config(&Limits::default())));
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let server = quinn::Endpoint::server(server_config, loopback).expect("binds");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(leaf).expect("root");
        let mut client = quinn::Endpoint::client(loopback).expect("binds");
        client.set_default_client_config(
            quinn::ClientConfig::with_root_certificates(Arc::new(roots)).expect("client config"),
        );
        let addr = server.local_addr().expect("address");
        let (held, conn) = tokio::join!(
            async {
                server
                    .accept()
                    .await
                    .expect("incoming")
                    .await
                    .expect("accepted")
            },
            async {
                client
                    .connect(addr, "uchat-relay")
                    .expect("connects")
                    .await
                    .expect("handshake")
            },
        );
        assert!(waits(conn.open_uni()).await, "no unidirectional streams");
        let mut streams = Vec::new();
        for _ in 0..MAX_CONCURRENT_BIDI_STREAMS {
            streams.push(conn.open_bi().await.expect("within the stream limit").0);
        }
        assert!(waits(conn.open_bi()).await, "no stream beyond the limit");

        // One stream: its own window. Then more streams until the connection's window
        // is used up: the streams' sum is the connection's window.
        let mut taken = vec![bytes_taken(&mut streams[0]).await];
        assert_eq!(taken[0], STREAM_RECEIVE_WINDOW_BYTES as usize);
        for send in &mut streams[1..4] {
            taken.push(bytes_taken(send).await);
        }
        assert_eq!(
            taken.iter().sum::<usize>(),
            CONNECTION_RECEIVE_WINDOW_BYTES as usize,
            "{taken:?}"
        );
        drop(held);
    }

    /// A relay's shared state over a fresh store in `data_dir`, with `password_permits`
    /// argon2 permits, for unit tests of request handling that needs no connection.
    /// Must be called inside a tokio runtime (it starts the announcer task).
    pub(super) fn test_shared(
        data_dir: &std::path::Path,
        password_permits: usize,
    ) -> Arc<RelayState> {
        let limits = Limits::default();
        let store = Arc::new(RelayStore::open(&data_dir.join("relay.redb")).expect("opens"));
        let online = Arc::new(online::Online::default());
        let metrics = Arc::new(metrics::Metrics::new());
        let (announcer, _task) = announce::start(store.clone(), online.clone(), metrics.clone());
        let committer =
            committer::Committer::start(store.clone(), metrics.clone()).expect("thread starts");
        Arc::new(RelayState {
            store,
            committer,
            files: Arc::new(files::FileDir::open(data_dir).expect("file directory")),
            login_limiter: Mutex::new(rate_limit::FailedLogins::new(&limits)),
            throttles: Arc::new(throttle::Throttles::new(&limits)),
            admission: admission::Admission::new(
                limits.max_connections,
                limits.max_connections_per_address,
            ),
            frame_budget: budget::FrameBudget::new(),
            limits,
            online,
            announcer,
            password_work: password::PasswordWorkers::start(password_permits)
                .expect("threads start"),
            metrics,
            calls: Mutex::new(calls::CallBook::new(45_000)),
            started: Instant::now(),
        })
    }
}
