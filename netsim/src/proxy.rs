//! The UDP proxy: one impaired path between clients and an upstream address, run on tokio.
//!
//! Clients send to the proxy's listen address; each client address gets its own upstream
//! socket, as a NAT gives each inside host its own mapping, so the upstream sees one
//! distinct source per client. Datagrams go through a [`Link`] per direction (shared by all
//! clients, like one access link) and, when configured, a [`Nat`] that filters what may
//! come back in. Delayed datagrams wait in a [`Scheduler`] until their arrival time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::model::link::{Link, LinkConfig, Verdict};
use crate::model::nat::{Nat, NatKind};
use crate::model::stats::LinkStats;

/// Largest datagram the proxy reads (the UDP maximum).
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// Client mappings (each an upstream socket) kept at most; past this, the least recently
/// used is forgotten, as a NAT whose table is full would, so a flood of source addresses
/// cannot exhaust file descriptors.
const MAX_CLIENT_MAPPINGS: usize = 512;

/// Bytes of delayed datagrams the proxy holds at most (like netem's `limit`); past this,
/// datagrams are dropped and counted, so a flood into a long delay cannot exhaust memory.
const MAX_IN_FLIGHT_BYTES: usize = 64 << 20;

/// How one path behaves.
#[derive(Clone, Debug)]
pub struct PathConfig {
    /// Client → upstream.
    pub up: LinkConfig,
    /// Upstream → client.
    pub down: LinkConfig,
    /// The NAT the clients sit behind.
    pub nat: NatKind,
    /// How long an unused NAT mapping lives.
    pub nat_timeout: Duration,
    /// Seed of every random choice on the path.
    pub seed: u64,
}

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            up: LinkConfig::default(),
            down: LinkConfig::default(),
            nat: NatKind::None,
            // RFC 4787 REQ-5: UDP mappings must not expire in less than 2 minutes.
            nat_timeout: Duration::from_secs(120),
            seed: 0,
        }
    }
}

/// Counters of both directions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathStats {
    /// Client → upstream.
    pub up: LinkStats,
    /// Upstream → client.
    pub down: LinkStats,
    /// Datagrams from upstream the NAT refused.
    pub nat_dropped: u64,
    /// Datagrams lost in the simulator itself, not by the configured impairments: the
    /// in-flight limit was reached, a socket could not be bound, or a send failed. Should
    /// stay 0; if not, the figures above overstate what was delivered.
    pub local_dropped: u64,
}

impl std::fmt::Display for PathStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "up:   {}", self.up)?;
        writeln!(f, "down: {}", self.down)?;
        writeln!(f, "nat:  {} inbound datagrams refused", self.nat_dropped)?;
        write!(
            f,
            "simulator: {} datagrams lost locally (limits, socket errors)",
            self.local_dropped
        )
    }
}

/// A datagram waiting for its arrival time.
struct Scheduled {
    at: Instant,
    order: u64,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Sends datagrams at their arrival times, in arrival order.
struct Scheduler {
    tx: mpsc::UnboundedSender<Scheduled>,
}

impl Scheduler {
    fn spawn(
        tasks: &mut JoinSet<()>,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
        local_dropped: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Scheduled>();
        tasks.spawn(async move {
            let mut queue: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
            loop {
                // Send everything due without touching a timer: tokio's timers have a
                // 1 ms granularity, which would add up to 1 ms to every datagram.
                let now = Instant::now();
                while queue.peek().is_some_and(|Reverse(s)| s.at <= now) {
                    if let Some(Reverse(due)) = queue.pop() {
                        in_flight.fetch_sub(due.bytes.len(), std::sync::atomic::Ordering::Relaxed);
                        // A send error (buffer full, port gone) loses the datagram; it is
                        // counted so the statistics do not claim a delivery.
                        if due.socket.send_to(&due.bytes, due.to).await.is_err() {
                            local_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                let next = queue.peek().map(|Reverse(s)| s.at);
                tokio::select! {
                    // Priority: take in new datagrams first (they may be due at once),
                    // then wake for the next one due.
                    biased;
                    item = rx.recv() => match item {
                        Some(item) => queue.push(Reverse(item)),
                        None => break,
                    },
                    _ = async { tokio::time::sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {}
                }
            }
        });
        Self { tx }
    }
}

/// One direction: its link model and its scheduler.
struct Direction {
    link: Mutex<Link>,
    scheduler: Scheduler,
}

/// The proxy's state, shared by its tasks: both directions' link models and schedulers,
/// the NAT, and the counters its statistics report.
struct ProxyState {
    start: Instant,
    listen: Arc<UdpSocket>,
    upstream: SocketAddr,
    up: Direction,
    down: Direction,
    nat: Mutex<Nat>,
    nat_dropped: Mutex<u64>,
    local_dropped: Arc<std::sync::atomic::AtomicU64>,
    /// Bytes scheduled and not yet sent, both directions.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    order: std::sync::atomic::AtomicU64,
}

impl ProxyState {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn lost_locally(&self) {
        self.local_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs a datagram through `direction`'s link and schedules what survives.
    fn forward(
        &self,
        direction: &Direction,
        socket: &Arc<UdpSocket>,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        let verdict = direction
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(self.now(), bytes.len());
        if let Verdict::Deliver(arrivals) = verdict {
            for arrival in arrivals {
                let held = self
                    .in_flight
                    .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
                if held + bytes.len() > MAX_IN_FLIGHT_BYTES {
                    self.in_flight
                        .fetch_sub(bytes.len(), std::sync::atomic::Ordering::Relaxed);
                    self.lost_locally();
                    continue;
                }
                let order = self
                    .order
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = direction.scheduler.tx.send(Scheduled {
                    at: self.start + arrival,
                    order,
                    socket: socket.clone(),
                    to,
                    bytes: bytes.to_vec(),
                });
            }
        }
    }
}

/// A running proxy. Dropping it stops every task.
pub struct Proxy {
    local_addr: SocketAddr,
    shared: Arc<ProxyState>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Proxy {
    /// Binds `listen` and forwards between its clients and `upstream` through the path.
    pub async fn spawn(
        listen: SocketAddr,
        upstream: SocketAddr,
        config: PathConfig,
    ) -> io::Result<Proxy> {
        for link in [&config.up, &config.down] {
            link.validate()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        }
        if config.nat != NatKind::None && config.nat_timeout < Duration::from_secs(1) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a NAT mapping timeout must be at least 1 s",
            ));
        }
        let socket = Arc::new(UdpSocket::bind(listen).await?);
        let local_addr = socket.local_addr()?;
        let mut tasks = JoinSet::new();
        let public_ip = if upstream.is_ipv6() {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        } else {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        };
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let local_dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let shared = Arc::new(ProxyState {
            start: Instant::now(),
            listen: socket,
            upstream,
            up: Direction {
                link: Mutex::new(Link::new(config.up.clone(), config.seed)),
                scheduler: Scheduler::spawn(&mut tasks, in_flight.clone(), local_dropped.clone()),
            },
            down: Direction {
                link: Mutex::new(Link::new(config.down.clone(), config.seed.wrapping_add(1))),
                scheduler: Scheduler::spawn(&mut tasks, in_flight.clone(), local_dropped.clone()),
            },
            nat: Mutex::new(Nat::new(
                config.nat,
                public_ip,
                config.nat_timeout,
                config.seed.wrapping_add(2),
            )),
            nat_dropped: Mutex::new(0),
            local_dropped,
            in_flight,
            order: std::sync::atomic::AtomicU64::new(0),
        });
        tasks.spawn(run_clients(shared.clone()));
        Ok(Proxy {
            local_addr,
            shared,
            tasks,
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of both directions' counters.
    pub fn stats(&self) -> PathStats {
        let lock = |d: &Direction| {
            d.link
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stats()
                .clone()
        };
        PathStats {
            up: lock(&self.shared.up),
            down: lock(&self.shared.down),
            nat_dropped: *self
                .shared
                .nat_dropped
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            local_dropped: self
                .shared
                .local_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Stops forwarding.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// One client's mapping: the socket its datagrams leave from upstream.
struct Mapping {
    public: SocketAddr,
    socket: Arc<UdpSocket>,
    reader: tokio::task::AbortHandle,
    last_used: Duration,
}

/// Reads clients' datagrams, gives each client (and, behind a symmetric NAT, each new
/// mapping) an upstream socket, and forwards up.
async fn run_clients(shared: Arc<ProxyState>) {
    let mut mappings: HashMap<SocketAddr, Mapping> = HashMap::new();
    let mut readers = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let (len, client) = match shared.listen.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors surface here on some systems; they concern one datagram only.
            Err(_) => continue,
        };
        let public = shared
            .nat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .outbound(shared.now(), client, shared.upstream);
        // Finished (aborted) readers are reaped as we go.
        while readers.try_join_next().is_some() {}
        let fresh = mappings.get(&client).is_none_or(|m| m.public != public);
        if fresh && !mappings.contains_key(&client) && mappings.len() >= MAX_CLIENT_MAPPINGS {
            let oldest = mappings
                .iter()
                .min_by_key(|(_, m)| m.last_used)
                .map(|(addr, _)| *addr);
            if let Some(evicted) = oldest.and_then(|addr| mappings.remove(&addr)) {
                evicted.reader.abort();
            }
        }
        if fresh {
            // Loopback upstreams get loopback sockets; any other upstream (a relay on
            // another host) gets a socket that can reach it.
            let bind: SocketAddr = match (
                shared.upstream.is_ipv6(),
                shared.upstream.ip().is_loopback(),
            ) {
                (true, true) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
                (false, true) => (std::net::Ipv4Addr::LOCALHOST, 0).into(),
                (true, false) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
                (false, false) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            };
            let socket = match UdpSocket::bind(bind).await {
                Ok(socket) => socket,
                Err(_) => {
                    // Out of sockets (file descriptors): forget the least recently used
                    // mapping, as a full NAT table would, and try once more.
                    let oldest = mappings
                        .iter()
                        .min_by_key(|(_, m)| m.last_used)
                        .map(|(addr, _)| *addr);
                    if let Some(evicted) = oldest.and_then(|addr| mappings.remove(&addr)) {
                        evicted.reader.abort();
                    }
                    match UdpSocket::bind(bind).await {
                        Ok(socket) => socket,
                        Err(_) => {
                            shared.lost_locally();
                            continue;
                        }
                    }
                }
            };
            let socket = Arc::new(socket);
            let reader = readers.spawn(run_upstream_reader(
                shared.clone(),
                socket.clone(),
                client,
                public,
            ));
            // A new mapping for the same client (the old one expired) replaces the old
            // socket, as a NAT forgets the old port.
            if let Some(old) = mappings.insert(
                client,
                Mapping {
                    public,
                    socket,
                    reader,
                    last_used: shared.now(),
                },
            ) {
                old.reader.abort();
            }
        }
        if let Some(mapping) = mappings.get_mut(&client) {
            mapping.last_used = shared.now();
            shared.forward(&shared.up, &mapping.socket, shared.upstream, &buf[..len]);
        }
    }
}

/// Reads what comes back to one mapping's upstream socket, lets the NAT filter it, and
/// forwards it down to the client.
async fn run_upstream_reader(
    shared: Arc<ProxyState>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    public: SocketAddr,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(_) => continue,
        };
        let inside = shared
            .nat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .inbound(shared.now(), from, public);
        if inside != Some(client) {
            *shared
                .nat_dropped
                .lock()
                .unwrap_or_else(PoisonError::into_inner) += 1;
            continue;
        }
        let listen = shared.listen.clone();
        shared.forward(&shared.down, &listen, client, &buf[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that tells each sender the address it saw them from.
    async fn reflector() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let addr = socket.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((_, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(from.to_string().as_bytes(), from).await;
            }
        });
        (addr, task)
    }

    async fn recv_text(socket: &UdpSocket, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 2048];
        match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => Some(String::from_utf8_lossy(&buf[..len]).into_owned()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn datagrams_flow_both_ways_through_one_upstream_address_per_client() {
        let (upstream, _task) = reflector().await;
        let proxy = Proxy::spawn(
            "127.0.0.1:0".parse().expect("addr"),
            upstream,
            PathConfig::default(),
        )
        .await
        .expect("spawns");
        let alice = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let bob = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        let mut seen = Vec::new();
        for client in [&alice, &bob] {
            for _ in 0..50 {
                client
                    .send_to(b"hi", proxy.local_addr())
                    .await
                    .expect("sends");
                let text = recv_text(client, Duration::from_secs(5))
                    .await
                    .expect("an echo");
                seen.push(text);
            }
        }
        // Each client has one stable upstream address, different from the other's and from
        // its own real address.
        assert!(seen[..50].iter().all(|a| *a == seen[0]));
        assert!(seen[50..].iter().all(|a| *a == seen[50]));
        assert_ne!(seen[0], seen[50]);
        assert_ne!(seen[0], alice.local_addr().expect("addr").to_string());
        let stats = proxy.stats();
        assert_eq!((stats.up.sent, stats.down.delivered), (100, 100));
    }

    /// Sends from a client through a path behind `nat`, then has a stranger send to the
    /// client's public address; returns whether the stranger's datagram got through.
    async fn stranger_gets_through(nat: NatKind) -> bool {
        let (upstream, _task) = reflector().await;
        let config = PathConfig {
            nat,
            ..PathConfig::default()
        };
        let proxy = Proxy::spawn("127.0.0.1:0".parse().expect("addr"), upstream, config)
            .await
            .expect("spawns");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        client
            .send_to(b"hi", proxy.local_addr())
            .await
            .expect("sends");
        let public: SocketAddr = recv_text(&client, Duration::from_secs(5))
            .await
            .expect("an echo")
            .parse()
            .expect("an address");
        let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
        stranger
            .send_to(b"unsolicited", public)
            .await
            .expect("sends");
        let got = recv_text(&client, Duration::from_millis(500)).await;
        got.as_deref() == Some("unsolicited")
    }

    #[tokio::test]
    async fn a_symmetric_nat_drops_unsolicited_inbound_and_a_full_cone_does_not() {
        assert!(!stranger_gets_through(NatKind::Symmetric).await);
        assert!(!stranger_gets_through(NatKind::PortRestricted).await);
        assert!(stranger_gets_through(NatKind::FullCone).await);
    }
}
