//! Named profiles of typical networks: `lan`, `wifi`, `4g`, `3g`, `satellite`, `lossy`.
//!
//! Each profile is a pair of [`LinkConfig`]s: `up` from the host to the network (the
//! uplink), `down` back. The figures are typical values, not measurements of any one
//! network; the comment on each profile's function says where each number comes from and
//! which are our own estimates. Every profile has a 1500-byte MTU (Ethernet's, which QUIC's
//! 1200-byte minimum fits in).
//!
//! Queues: a rate-limited direction queues about 100 ms of traffic at its rate, and at
//! least [`DEFAULT_QUEUE_BYTES`]. That is our choice, not a measured figure: real buffers
//! range from a few milliseconds to seconds ("bufferbloat").

use std::time::Duration;

use super::link::{DEFAULT_QUEUE_BYTES, LinkConfig};

/// Ethernet's MTU, kept on every profile.
const MTU_BYTES: usize = 1500;

/// A named network: both directions of a path.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The name `profile` looks up (`lan`, `wifi`, `4g`, `3g`, `satellite`, `lossy`).
    pub name: &'static str,
    /// One line: what network this is and its figures.
    pub description: &'static str,
    /// Host → network.
    pub up: LinkConfig,
    /// Network → host.
    pub down: LinkConfig,
}

/// Every built-in profile, from best to worst network (with `lossy` last).
pub fn profiles() -> Vec<Profile> {
    vec![
        lan(),
        wifi(),
        mobile_4g(),
        mobile_3g(),
        satellite(),
        lossy(),
    ]
}

/// The built-in profile called `name` (ASCII case ignored).
pub fn profile(name: &str) -> Option<Profile> {
    profiles()
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A link with the given figures, the Ethernet MTU and the queue rule of the module docs.
fn link(
    latency: Duration,
    jitter: Duration,
    loss: f64,
    rate_bits_per_sec: Option<u64>,
) -> LinkConfig {
    let queue_bytes = rate_bits_per_sec
        .map(|rate| usize::try_from(rate / 8 / 10).unwrap_or(usize::MAX))
        .unwrap_or(0)
        .max(DEFAULT_QUEUE_BYTES);
    LinkConfig {
        latency,
        jitter,
        loss,
        rate_bits_per_sec,
        queue_bytes,
        mtu: Some(MTU_BYTES),
        ..LinkConfig::default()
    }
}

/// A switched wired LAN: 0.2 ms ± 0.05 ms one way, no loss, no rate limit.
///
/// Switched Ethernet round trips are well under a millisecond (what `ping` shows on any
/// office or home LAN); 0.2 ms one way and the 0.05 ms jitter are our estimate of that
/// order of magnitude. Wired Ethernet's bit error rate makes loss negligible. No rate limit:
/// at 1 Gbit/s (IEEE 802.3ab) the LAN is never the bottleneck for a chat or a call.
fn lan() -> Profile {
    let one_way = link(
        Duration::from_micros(200),
        Duration::from_micros(50),
        0.0,
        None,
    );
    Profile {
        name: "lan",
        description: "wired LAN: 0.2 ms ± 0.05 ms, no loss, no rate limit",
        up: one_way.clone(),
        down: one_way,
    }
}

/// Home Wi-Fi: 3 ms ± 2 ms one way, 0.5 % loss, 50 Mbit/s each way.
///
/// Wi-Fi adds a few milliseconds and noticeable jitter over wired access (contention and
/// link-layer retransmission on a shared medium); 3 ms ± 2 ms is our estimate of a home
/// 802.11n/ac network at moderate range, not a published figure. 802.11 retransmits lost
/// frames itself, so the loss IP sees is small; 0.5 % is our estimate for a busy or
/// distant access point. 50 Mbit/s is our estimate of real 802.11n/ac throughput, well
/// below the nominal PHY rates, shared by both directions in reality but modelled as 50
/// each way.
fn wifi() -> Profile {
    let one_way = link(ms(3), ms(2), 0.005, Some(50_000_000));
    Profile {
        name: "wifi",
        description: "home Wi-Fi: 3 ms ± 2 ms, 0.5 % loss, 50 Mbit/s each way",
        up: one_way.clone(),
        down: one_way,
    }
}

/// 4G/LTE: 25 ms ± 8 ms one way, 0.1 % loss, 20 Mbit/s down, 8 Mbit/s up.
///
/// Crowd-sourced reports (OpenSignal's mobile network experience reports, Ofcom's UK
/// mobile performance reports) typically put 4G round-trip latency around 30–60 ms and
/// download speeds in the tens of Mbit/s; we take a 50 ms round trip (25 ms one way) and
/// 20 Mbit/s down. Upload is typically a fraction of download in those reports; 8 Mbit/s
/// is our estimate. The jitter (8 ms) is our estimate of scheduling and HARQ variation.
/// LTE's HARQ and RLC retransmissions hide most radio loss (3GPP TS 23.203 sets a 10⁻⁶
/// packet error loss target for the default bearer, QCI 9); 0.1 % is our estimate of the
/// residual loss from handovers and fades.
fn mobile_4g() -> Profile {
    Profile {
        name: "4g",
        description: "4G/LTE: 25 ms ± 8 ms, 0.1 % loss, 20 Mbit/s down, 8 Mbit/s up",
        up: link(ms(25), ms(8), 0.001, Some(8_000_000)),
        down: link(ms(25), ms(8), 0.001, Some(20_000_000)),
    }
}

/// 3G (UMTS/HSPA): 100 ms ± 25 ms one way, 1 % loss, 1.5 Mbit/s down, 384 kbit/s up.
///
/// 384 kbit/s is the highest UMTS Release 99 (3GPP) bearer rate, what an uplink without
/// HSUPA gets. HSPA downloads were commonly reported at 1–2 Mbit/s in practice
/// (OpenSignal's 3G averages were in that range); we take 1.5 Mbit/s. 3G round trips of
/// 150–250 ms are typical of the same reports; 100 ms one way is in that range, and the
/// ±25 ms jitter is our estimate. 1 % loss is the low end of the 1–2 % commonly quoted for
/// 3G data; for comparison, 3GPP's conversational voice class (QCI 1, TS 23.203) tolerates
/// 1 %.
fn mobile_3g() -> Profile {
    Profile {
        name: "3g",
        description: "3G (UMTS/HSPA): 100 ms ± 25 ms, 1 % loss, 1.5 Mbit/s down, 384 kbit/s up",
        up: link(ms(100), ms(25), 0.01, Some(384_000)),
        down: link(ms(100), ms(25), 0.01, Some(1_500_000)),
    }
}

/// Geostationary satellite: 300 ms ± 10 ms one way, 0.5 % loss, 25 Mbit/s down, 3
/// Mbit/s up.
///
/// A geostationary satellite orbits 35,786 km up, so ground → satellite → ground is at
/// least about 240 ms at the speed of light; with slant range, the gateway and the
/// terrestrial leg, GEO internet round trips are commonly reported around 600 ms, hence 300
/// ms one way. The rates are those advertised for consumer GEO plans (HughesNet Gen5:
/// 25 Mbit/s down, 3 Mbit/s up). The jitter (10 ms) and the loss (0.5 %, after the link's
/// own error correction, worse in rain) are our estimates. Low-orbit constellations
/// (Starlink) have round trips of a few tens of milliseconds and behave more like `4g`.
fn satellite() -> Profile {
    Profile {
        name: "satellite",
        description: "geostationary satellite: 300 ms ± 10 ms, 0.5 % loss, 25 Mbit/s down, 3 Mbit/s up",
        up: link(ms(300), ms(10), 0.005, Some(3_000_000)),
        down: link(ms(300), ms(10), 0.005, Some(25_000_000)),
    }
}

/// A deliberately bad path for tests: exactly 5 % random loss and 50 ms ± 20 ms each way,
/// no rate limit.
///
/// Not a measured network: the figures are the ones issue 3 asks the chat tests to survive
/// (every message arrives exactly once and in order).
fn lossy() -> Profile {
    let one_way = link(ms(50), ms(20), 0.05, None);
    Profile {
        name: "lossy",
        description: "test path: 50 ms ± 20 ms, 5 % random loss, no rate limit",
        up: one_way.clone(),
        down: one_way,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_validates_and_carries_quic_datagrams() {
        let all = profiles();
        assert_eq!(
            all.iter().map(|p| p.name).collect::<Vec<_>>(),
            ["lan", "wifi", "4g", "3g", "satellite", "lossy"]
        );
        for p in &all {
            for (direction, config) in [("up", &p.up), ("down", &p.down)] {
                assert_eq!(config.validate(), Ok(()), "{} {direction}", p.name);
                assert_eq!(config.mtu, Some(1500), "{} {direction}", p.name);
            }
            assert!(!p.description.is_empty());
            assert_eq!(profile(p.name).as_ref(), Some(p));
        }
    }

    #[test]
    fn lossy_has_exactly_the_issue_figures() {
        let lossy = profile("lossy").expect("lossy is built in");
        for config in [&lossy.up, &lossy.down] {
            assert_eq!(config.loss, 0.05);
            assert_eq!(config.latency, Duration::from_millis(50));
            assert_eq!(config.jitter, Duration::from_millis(20));
            assert_eq!(config.rate_bits_per_sec, None);
            assert_eq!(config.burst_loss, None);
            assert_eq!(config.reorder, 0.0);
            assert_eq!(config.duplicate, 0.0);
        }
    }

    #[test]
    fn lookup_ignores_case_and_rejects_unknown_names() {
        assert_eq!(profile("4G").map(|p| p.name), Some("4g"));
        assert_eq!(profile("dial-up"), None);
    }

    #[test]
    fn rate_limited_queues_hold_a_tenth_of_a_second() {
        let p = profile("4g").expect("4g is built in");
        assert_eq!(p.down.queue_bytes, 250_000);
        let slow = profile("3g").expect("3g is built in");
        assert_eq!(slow.up.queue_bytes, DEFAULT_QUEUE_BYTES);
    }
}
