//! The simulator's own overhead: how many datagrams per second a path with no impairment
//! forwards, and how much latency it adds at that rate, against plain loopback UDP.
//!
//! An echo server stands in for the upstream. A client keeps a fixed window of 1,200-byte
//! datagrams in flight (each carries its send time) for a fixed duration, first straight to
//! the echo server, then through a [`Proxy`]; every echo is one round trip, so through the
//! proxy each counts two forwarded datagrams (up and down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::proxy::{PathConfig, Proxy};

/// Size of each datagram: QUIC's minimum initial size, typical of Uchat's traffic.
pub const DATAGRAM_BYTES: usize = 1200;

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Round trips completed per second, straight to the echo server.
    pub direct_round_trips_per_sec: f64,
    /// Round trips completed per second, through the proxy.
    pub proxied_round_trips_per_sec: f64,
    /// Datagrams the proxy forwarded per second (two per round trip).
    pub proxy_datagrams_per_sec: f64,
    /// Median round-trip time, straight.
    pub direct_rtt_median: Duration,
    /// Median round-trip time, through the proxy (at the proxied rate).
    pub proxied_rtt_median: Duration,
    /// 99th percentile round-trip time, through the proxy.
    pub proxied_rtt_p99: Duration,
}

impl BenchReport {
    /// Latency the proxy adds to one pass (half the round-trip difference of medians).
    pub fn added_latency_per_pass(&self) -> Duration {
        self.proxied_rtt_median
            .saturating_sub(self.direct_rtt_median)
            / 2
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "direct:  {:>9.0} round trips/s, rtt median {:?}",
            self.direct_round_trips_per_sec, self.direct_rtt_median
        )?;
        writeln!(
            f,
            "proxied: {:>9.0} round trips/s = {:.0} datagrams/s forwarded, rtt median {:?}, p99 {:?}",
            self.proxied_round_trips_per_sec,
            self.proxy_datagrams_per_sec,
            self.proxied_rtt_median,
            self.proxied_rtt_p99
        )?;
        write!(
            f,
            "added latency per pass (median): {:?}",
            self.added_latency_per_pass()
        )
    }
}

/// Echoes every datagram back to its sender until dropped.
async fn echo_server() -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let socket = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..len], from).await;
        }
    });
    Ok((addr, task))
}

/// Keeps `window` datagrams in flight to `target` for `duration`; returns round trips per
/// second and every round-trip time.
async fn drive(
    target: SocketAddr,
    duration: Duration,
    window: usize,
) -> std::io::Result<(f64, Vec<Duration>)> {
    let socket = Arc::new(UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?);
    let start = Instant::now();
    let mut payload = vec![0u8; DATAGRAM_BYTES];
    let stamp = |payload: &mut Vec<u8>| {
        let nanos = start.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&nanos.to_be_bytes());
    };
    for _ in 0..window {
        stamp(&mut payload);
        socket.send_to(&payload, target).await?;
    }
    let mut rtts = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let deadline = start + duration;
    loop {
        // A datagram lost on loopback (buffer overflow) would shrink the window; a short
        // timeout puts it back.
        match tokio::time::timeout_at(
            deadline.min(Instant::now() + Duration::from_millis(50)),
            socket.recv_from(&mut buf),
        )
        .await
        {
            Ok(Ok((len, _))) if len >= 8 => {
                let sent = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0; 8]));
                let now = start.elapsed().as_nanos() as u64;
                rtts.push(Duration::from_nanos(now.saturating_sub(sent)));
            }
            Ok(_) => {}
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            break;
        }
        stamp(&mut payload);
        socket.send_to(&payload, target).await?;
    }
    let rate = rtts.len() as f64 / duration.as_secs_f64();
    Ok((rate, rtts))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Measures the direct path, then the proxied path, each for `duration` with `window`
/// datagrams in flight.
pub async fn run(duration: Duration, window: usize) -> std::io::Result<BenchReport> {
    let (echo, echo_task) = echo_server().await?;
    let (direct_rate, mut direct) = drive(echo, duration, window).await?;
    let proxy = Proxy::spawn(
        (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        echo,
        PathConfig::default(),
    )
    .await?;
    let (proxied_rate, mut proxied) = drive(proxy.local_addr(), duration, window).await?;
    proxy.shutdown().await;
    echo_task.abort();
    direct.sort();
    proxied.sort();
    Ok(BenchReport {
        direct_round_trips_per_sec: direct_rate,
        proxied_round_trips_per_sec: proxied_rate,
        proxy_datagrams_per_sec: proxied_rate * 2.0,
        direct_rtt_median: percentile(&direct, 0.5),
        proxied_rtt_median: percentile(&proxied, 0.5),
        proxied_rtt_p99: percentile(&proxied, 0.99),
    })
}
