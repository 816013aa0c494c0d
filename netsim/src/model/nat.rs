//! A NAT box: maps inside addresses to public ports and filters what may come back in.
//!
//! Behaviours, in RFC 4787 terms:
//!
//! | [`NatKind`] | mapping | filtering |
//! |---|---|---|
//! | `None` | no translation | none |
//! | `FullCone` | endpoint-independent | endpoint-independent: anyone may send to a mapping |
//! | `AddressRestricted` | endpoint-independent | address-dependent: only IPs the mapping has sent to, from any port |
//! | `PortRestricted` | endpoint-independent | address-and-port-dependent: only the exact ip:port the mapping has sent to |
//! | `Symmetric` | address-and-port-dependent: a new public port per destination | address-and-port-dependent |
//!
//! A mapping expires `mapping_timeout` after its last *outbound* use. Inbound datagrams do
//! not refresh it: RFC 4787 (REQ-6) requires outbound refresh and leaves inbound refresh
//! optional, and not refreshing is the stricter case a peer must survive (it has to keep
//! sending to keep its mapping). Filtering permissions live as long as their mapping. An
//! expired mapping is forgotten; the next outbound datagram gets a new public port.
//!
//! Public ports are allocated sequentially in 20000..60000 from a pseudo-random start drawn
//! from the seed, skipping ports in use and wrapping around. If every port is in use the
//! least recently used mapping is evicted. Hairpinning (an inside host reaching another
//! through the public address) is not modelled.
//!
//! Pure: time comes in as `now` (virtual, since the start of the simulation, non-decreasing).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Public ports the NAT hands out: clear of the well-known and registered ports most
/// services bind, and below the usual ephemeral range (Linux starts at 32768, but it is
/// a different host's range, so overlap would be harmless).
const PUBLIC_PORTS: Range<u16> = 20_000..60_000;

/// How a NAT maps and filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// No NAT: addresses pass unchanged and nothing is filtered.
    #[default]
    None,
    /// Endpoint-independent mapping and filtering ("full cone").
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering ("restricted cone").
    AddressRestricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering: a public port per destination.
    Symmetric,
}

impl NatKind {
    /// Every kind, from most to least permissive.
    pub const ALL: [NatKind; 5] = [
        NatKind::None,
        NatKind::FullCone,
        NatKind::AddressRestricted,
        NatKind::PortRestricted,
        NatKind::Symmetric,
    ];

    /// The name [`FromStr`] takes and [`Display`](fmt::Display) prints.
    pub fn name(self) -> &'static str {
        match self {
            NatKind::None => "none",
            NatKind::FullCone => "full-cone",
            NatKind::AddressRestricted => "restricted",
            NatKind::PortRestricted => "port-restricted",
            NatKind::Symmetric => "symmetric",
        }
    }
}

impl fmt::Display for NatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no [`NatKind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown NAT kind {input:?}; expected one of none, full-cone, restricted, port-restricted, symmetric"
)]
pub struct ParseNatKindError {
    /// What was given.
    pub input: String,
}

impl FromStr for NatKind {
    type Err = ParseNatKindError;

    /// Parses `none`, `full-cone`, `restricted` (also `address-restricted`),
    /// `port-restricted` or `symmetric`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "address-restricted" {
            return Ok(NatKind::AddressRestricted);
        }
        NatKind::ALL
            .into_iter()
            .find(|kind| kind.name() == lower)
            .ok_or_else(|| ParseNatKindError {
                input: s.to_owned(),
            })
    }
}

/// What identifies a mapping: the inside address, and for a symmetric NAT the destination.
type MappingKey = (SocketAddr, Option<SocketAddr>);

/// One public port in use.
#[derive(Clone, Debug)]
struct Mapping {
    key: MappingKey,
    last_used: Duration,
    /// Destinations this mapping has sent to (port-dependent filtering).
    contacted: HashSet<SocketAddr>,
    /// Their IPs (address-dependent filtering).
    contacted_ips: HashSet<IpAddr>,
}

/// A NAT box between inside hosts and the public side. A pure state machine.
#[derive(Clone, Debug)]
pub struct Nat {
    kind: NatKind,
    public_ip: IpAddr,
    mapping_timeout: Duration,
    by_key: HashMap<MappingKey, u16>,
    by_port: HashMap<u16, Mapping>,
    /// `(last_used, port)` of every mapping, oldest first, for expiry and eviction.
    by_age: BTreeSet<(Duration, u16)>,
    next_port: u16,
}

impl Nat {
    /// A NAT of `kind` whose public side is `public_ip`; mappings live `mapping_timeout`
    /// after their last outbound use; the first public port is drawn from `seed`.
    pub fn new(kind: NatKind, public_ip: IpAddr, mapping_timeout: Duration, seed: u64) -> Self {
        let next_port = StdRng::seed_from_u64(seed).random_range(PUBLIC_PORTS);
        Self {
            kind,
            public_ip,
            mapping_timeout,
            by_key: HashMap::new(),
            by_port: HashMap::new(),
            by_age: BTreeSet::new(),
            next_port,
        }
    }

    /// The kind of NAT.
    pub fn kind(&self) -> NatKind {
        self.kind
    }

    /// The public IP its mappings use.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// How long a mapping lives after its last outbound use.
    pub fn mapping_timeout(&self) -> Duration {
        self.mapping_timeout
    }

    /// An inside host at `inside` sends to `dest`: returns the public address the datagram
    /// leaves from (creating or refreshing a mapping).
    pub fn outbound(&mut self, now: Duration, inside: SocketAddr, dest: SocketAddr) -> SocketAddr {
        if self.kind == NatKind::None {
            return inside;
        }
        self.expire(now);
        let key = (inside, (self.kind == NatKind::Symmetric).then_some(dest));
        let port = match self.by_key.get(&key) {
            Some(&port) => port,
            None => self.create(now, key),
        };
        if let Some(mapping) = self.by_port.get_mut(&port) {
            self.by_age.remove(&(mapping.last_used, port));
            mapping.last_used = now;
            self.by_age.insert((now, port));
            mapping.contacted.insert(dest);
            mapping.contacted_ips.insert(dest.ip());
        }
        SocketAddr::new(self.public_ip, port)
    }

    /// A datagram from `from` arrives at public address `public`: the inside host it goes
    /// to, or `None` if the NAT drops it (no mapping, mapping expired, or filtered). Does
    /// not refresh the mapping.
    pub fn inbound(
        &mut self,
        now: Duration,
        from: SocketAddr,
        public: SocketAddr,
    ) -> Option<SocketAddr> {
        if self.kind == NatKind::None {
            return Some(public);
        }
        if public.ip() != self.public_ip {
            return None;
        }
        self.expire(now);
        let mapping = self.by_port.get(&public.port())?;
        let allowed = match self.kind {
            NatKind::None | NatKind::FullCone => true,
            NatKind::AddressRestricted => mapping.contacted_ips.contains(&from.ip()),
            NatKind::PortRestricted | NatKind::Symmetric => mapping.contacted.contains(&from),
        };
        allowed.then_some(mapping.key.0)
    }

    /// Live mappings, as of the last call to [`outbound`](Self::outbound),
    /// [`inbound`](Self::inbound) or [`expire`](Self::expire).
    pub fn mappings(&self) -> usize {
        self.by_port.len()
    }

    /// Forgets every mapping unused (outbound) for `mapping_timeout` at `now`.
    pub fn expire(&mut self, now: Duration) {
        while let Some(&(last_used, port)) = self.by_age.first() {
            if now < last_used.saturating_add(self.mapping_timeout) {
                break;
            }
            self.remove(last_used, port);
        }
    }

    /// A new mapping for `key` on a free port; returns the port.
    fn create(&mut self, now: Duration, key: MappingKey) -> u16 {
        let port = self.free_port();
        self.by_key.insert(key, port);
        self.by_port.insert(
            port,
            Mapping {
                key,
                last_used: now,
                contacted: HashSet::new(),
                contacted_ips: HashSet::new(),
            },
        );
        self.by_age.insert((now, port));
        port
    }

    /// The next free public port, evicting the least recently used mapping if none is.
    fn free_port(&mut self) -> u16 {
        for _ in PUBLIC_PORTS {
            let port = self.next_port;
            self.next_port = if port + 1 >= PUBLIC_PORTS.end {
                PUBLIC_PORTS.start
            } else {
                port + 1
            };
            if !self.by_port.contains_key(&port) {
                return port;
            }
        }
        match self.by_age.first().copied() {
            Some((last_used, port)) => {
                self.remove(last_used, port);
                port
            }
            // Unreachable: every port in the range is in use, so `by_age` is not empty.
            None => self.next_port,
        }
    }

    fn remove(&mut self, last_used: Duration, port: u16) {
        self.by_age.remove(&(last_used, port));
        if let Some(mapping) = self.by_port.remove(&port) {
            self.by_key.remove(&mapping.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);
    const PUBLIC_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("a valid socket address in the test")
    }

    fn nat(kind: NatKind) -> Nat {
        Nat::new(kind, PUBLIC_IP, TIMEOUT, 42)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn symmetric_maps_each_destination_to_its_own_port() {
        let mut nat = nat(NatKind::Symmetric);
        let inside = addr("10.0.0.2:5000");
        let a = nat.outbound(secs(0), inside, addr("198.51.100.1:443"));
        let b = nat.outbound(secs(0), inside, addr("198.51.100.2:443"));
        let c = nat.outbound(secs(0), inside, addr("198.51.100.1:444"));
        assert_ne!(a.port(), b.port());
        assert_ne!(a.port(), c.port());
        assert_ne!(b.port(), c.port());
        assert_eq!(a.ip(), PUBLIC_IP);
        // The same destination again reuses its mapping.
        assert_eq!(nat.outbound(secs(1), inside, addr("198.51.100.1:443")), a);
        assert_eq!(nat.mappings(), 3);
    }

    #[test]
    fn symmetric_drops_unsolicited_and_cross_destination_inbound() {
        let mut nat = nat(NatKind::Symmetric);
        let inside = addr("10.0.0.2:5000");
        let server = addr("198.51.100.1:443");
        let other = addr("198.51.100.2:443");
        let to_server = nat.outbound(secs(0), inside, server);
        let to_other = nat.outbound(secs(0), inside, other);
        assert_eq!(nat.inbound(secs(1), server, to_server), Some(inside));
        // Never contacted.
        assert_eq!(nat.inbound(secs(1), addr("192.0.2.9:443"), to_server), None);
        // Contacted, but through a different mapping.
        assert_eq!(nat.inbound(secs(1), other, to_server), None);
        assert_eq!(nat.inbound(secs(1), server, to_other), None);
        // Same IP, other port.
        assert_eq!(
            nat.inbound(secs(1), addr("198.51.100.1:444"), to_server),
            None
        );
    }

    #[test]
    fn full_cone_uses_one_mapping_and_accepts_anyone_once_mapped() {
        let mut nat = nat(NatKind::FullCone);
        let inside = addr("10.0.0.2:5000");
        let public = addr("203.0.113.1:1");
        // Nothing mapped yet: nothing gets in.
        assert_eq!(nat.inbound(secs(0), addr("192.0.2.9:1"), public), None);
        let a = nat.outbound(secs(0), inside, addr("198.51.100.1:443"));
        let b = nat.outbound(secs(0), inside, addr("198.51.100.2:80"));
        assert_eq!(a, b);
        assert_eq!(nat.mappings(), 1);
        assert_eq!(
            nat.inbound(secs(1), addr("192.0.2.9:1234"), a),
            Some(inside)
        );
    }

    #[test]
    fn inside_hosts_get_distinct_sequential_ports() {
        let mut nat = nat(NatKind::FullCone);
        let server = addr("198.51.100.1:443");
        let a = nat.outbound(secs(0), addr("10.0.0.2:5000"), server);
        let b = nat.outbound(secs(0), addr("10.0.0.3:5000"), server);
        assert!(PUBLIC_PORTS.contains(&a.port()));
        assert!(b.port() == a.port() + 1 || b.port() == PUBLIC_PORTS.start);
        assert_eq!(nat.inbound(secs(1), server, b), Some(addr("10.0.0.3:5000")));
    }

    #[test]
    fn first_port_depends_on_the_seed() {
        let first = |seed| {
            Nat::new(NatKind::FullCone, PUBLIC_IP, TIMEOUT, seed).outbound(
                secs(0),
                addr("10.0.0.2:5000"),
                addr("198.51.100.1:443"),
            )
        };
        assert_eq!(first(1), first(1));
        assert_ne!(first(1), first(2));
    }

    #[test]
    fn address_restricted_accepts_contacted_ips_on_any_port_only() {
        let mut nat = nat(NatKind::AddressRestricted);
        let inside = addr("10.0.0.2:5000");
        let public = nat.outbound(secs(0), inside, addr("198.51.100.1:443"));
        assert_eq!(
            nat.outbound(secs(0), inside, addr("198.51.100.2:80")),
            public
        );
        assert_eq!(
            nat.inbound(secs(1), addr("198.51.100.1:443"), public),
            Some(inside)
        );
        assert_eq!(
            nat.inbound(secs(1), addr("198.51.100.1:9999"), public),
            Some(inside)
        );
        assert_eq!(
            nat.inbound(secs(1), addr("198.51.100.2:1"), public),
            Some(inside)
        );
        assert_eq!(nat.inbound(secs(1), addr("198.51.100.3:443"), public), None);
    }

    #[test]
    fn port_restricted_accepts_only_the_exact_contacted_endpoint() {
        let mut nat = nat(NatKind::PortRestricted);
        let inside = addr("10.0.0.2:5000");
        let server = addr("198.51.100.1:443");
        let public = nat.outbound(secs(0), inside, server);
        assert_eq!(
            nat.outbound(secs(0), inside, addr("198.51.100.2:80")),
            public
        );
        assert_eq!(nat.inbound(secs(1), server, public), Some(inside));
        assert_eq!(
            nat.inbound(secs(1), addr("198.51.100.2:80"), public),
            Some(inside)
        );
        assert_eq!(nat.inbound(secs(1), addr("198.51.100.1:444"), public), None);
        assert_eq!(nat.inbound(secs(1), addr("198.51.100.3:443"), public), None);
    }

    #[test]
    fn mappings_expire_after_the_timeout_since_last_outbound_use() {
        for kind in NatKind::ALL.into_iter().filter(|k| *k != NatKind::None) {
            let mut nat = nat(kind);
            let inside = addr("10.0.0.2:5000");
            let server = addr("198.51.100.1:443");
            let public = nat.outbound(secs(0), inside, server);
            // Inbound does not refresh.
            assert_eq!(
                nat.inbound(secs(20), server, public),
                Some(inside),
                "{kind}"
            );
            assert_eq!(
                nat.inbound(TIMEOUT - Duration::from_millis(1), server, public),
                Some(inside)
            );
            assert_eq!(nat.inbound(TIMEOUT, server, public), None, "{kind}");
            assert_eq!(nat.mappings(), 0, "{kind}");
            // Sending again makes a new mapping on a new port.
            let again = nat.outbound(TIMEOUT, inside, server);
            assert_ne!(again, public, "{kind}");
            // Outbound refreshes.
            assert_eq!(nat.outbound(TIMEOUT + secs(20), inside, server), again);
            assert_eq!(
                nat.inbound(TIMEOUT + secs(45), server, again),
                Some(inside),
                "{kind}"
            );
            assert_eq!(
                nat.inbound(TIMEOUT + secs(50), server, again),
                None,
                "{kind}"
            );
        }
    }

    #[test]
    fn inbound_to_another_ip_or_unmapped_port_is_dropped() {
        let mut nat = nat(NatKind::FullCone);
        let inside = addr("10.0.0.2:5000");
        let server = addr("198.51.100.1:443");
        let public = nat.outbound(secs(0), inside, server);
        let wrong_ip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)), public.port());
        assert_eq!(nat.inbound(secs(1), server, wrong_ip), None);
        let wrong_port = SocketAddr::new(PUBLIC_IP, public.port() ^ 1);
        assert_eq!(nat.inbound(secs(1), server, wrong_port), None);
    }

    #[test]
    fn none_passes_everything_unchanged() {
        let mut nat = nat(NatKind::None);
        let inside = addr("10.0.0.2:5000");
        assert_eq!(
            nat.outbound(secs(0), inside, addr("198.51.100.1:443")),
            inside
        );
        let anyone = addr("192.0.2.9:1");
        assert_eq!(nat.inbound(secs(1000), anyone, inside), Some(inside));
        assert_eq!(nat.mappings(), 0);
    }

    #[test]
    fn exhausted_port_range_evicts_the_least_recently_used_mapping() {
        let mut nat = nat(NatKind::Symmetric);
        let inside = addr("10.0.0.2:5000");
        let first_dest = addr("198.51.100.1:1");
        let first = nat.outbound(secs(0), inside, first_dest);
        let total = PUBLIC_PORTS.len();
        for i in 1..total {
            let dest = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)), 1);
            nat.outbound(secs(1), inside, dest);
        }
        assert_eq!(nat.mappings(), total);
        let extra = nat.outbound(secs(2), inside, addr("192.0.2.1:1"));
        assert_eq!(extra.port(), first.port());
        assert_eq!(nat.mappings(), total);
        assert_eq!(nat.inbound(secs(2), first_dest, first), None);
    }

    #[test]
    fn kind_parses_and_displays_its_cli_names() {
        for kind in NatKind::ALL {
            assert_eq!(kind.to_string().parse::<NatKind>(), Ok(kind));
        }
        assert_eq!("Full-Cone".parse::<NatKind>(), Ok(NatKind::FullCone));
        assert_eq!(
            "address-restricted".parse::<NatKind>(),
            Ok(NatKind::AddressRestricted)
        );
        let err = "cone".parse::<NatKind>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "unknown NAT kind \"cone\"; expected one of none, full-cone, restricted, \
                 port-restricted, symmetric"
            )
        );
    }
}
