//! Building small networks for tests in a few lines: hosts reach a public service (the
//! relay) through paths with profiles and NATs, and the topology hands out the addresses
//! to give them.
//!
//! ```no_run
//! # async fn demo(relay: std::net::SocketAddr) -> std::io::Result<()> {
//! use uchat_netsim::{Topology, model::profile::profile};
//! let mut net = Topology::new(7);
//! let lossy = profile("lossy").expect("a built-in profile");
//! let alice_sees_relay_at = net.path_to(relay, &lossy).await?;
//! // hand `alice_sees_relay_at` to alice as the relay address
//! println!("{}", net.stats()[0]);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use crate::model::nat::NatKind;
use crate::model::profile::Profile;
use crate::proxy::{PathConfig, PathStats, Proxy};

/// A set of impaired paths, each with its own seed derived from the topology's.
#[derive(Debug)]
pub struct Topology {
    seed: u64,
    paths: Vec<Proxy>,
}

impl Topology {
    /// An empty topology; every path's randomness derives from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            paths: Vec::new(),
        }
    }

    fn next_seed(&self) -> u64 {
        // Distinct, reproducible, well-mixed seeds per path (SplitMix64's finalizer), so
        // no path's directions share a seed with another path or another topology.
        let mut z = self
            .seed
            .wrapping_add((self.paths.len() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A path to `upstream` shaped like `profile`: returns the loopback address a host
    /// uses instead of `upstream`.
    pub async fn path_to(
        &mut self,
        upstream: SocketAddr,
        profile: &Profile,
    ) -> std::io::Result<SocketAddr> {
        self.path_behind_nat(upstream, profile, NatKind::None).await
    }

    /// A path to `upstream` from hosts behind a NAT of `kind`, shaped like `profile`.
    pub async fn path_behind_nat(
        &mut self,
        upstream: SocketAddr,
        profile: &Profile,
        kind: NatKind,
    ) -> std::io::Result<SocketAddr> {
        self.path_with(
            upstream,
            PathConfig {
                up: profile.up.clone(),
                down: profile.down.clone(),
                nat: kind,
                ..PathConfig::default()
            },
        )
        .await
    }

    /// A path with a fully spelled-out configuration (its seed is replaced by the
    /// topology's derived seed).
    pub async fn path_with(
        &mut self,
        upstream: SocketAddr,
        config: PathConfig,
    ) -> std::io::Result<SocketAddr> {
        let listen: SocketAddr = if upstream.is_ipv6() {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        } else {
            (std::net::Ipv4Addr::LOCALHOST, 0).into()
        };
        let config = PathConfig {
            seed: self.next_seed(),
            ..config
        };
        let proxy = Proxy::spawn(listen, upstream, config).await?;
        let addr = proxy.local_addr();
        self.paths.push(proxy);
        Ok(addr)
    }

    /// Every path's counters, in creation order.
    pub fn stats(&self) -> Vec<PathStats> {
        self.paths.iter().map(Proxy::stats).collect()
    }

    /// Stops every path.
    pub async fn shutdown(self) {
        for path in self.paths {
            path.shutdown().await;
        }
    }
}
