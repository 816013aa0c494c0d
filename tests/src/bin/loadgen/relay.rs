//! The relay under load: a `uchat-relay` process loadgen starts (the binary next to
//! loadgen, a fresh data directory, limits lifted for many users from one address) or
//! one given with `--relay`; and what its process used over a measured window (CPU time
//! from /proc/PID/stat, RSS from /proc/PID/status).

use std::time::Instant;

use anyhow::{Context, Result};
use uchat_tests::{MANY_USERS, TestRelay, procfs};
use uchat_wire::CertFingerprint;

/// Flags loadgen's own relay gets beyond [`MANY_USERS`]: the idle scenario holds tens of
/// thousands of connections from one address.
const MORE_CONNECTIONS: &[&str] = &["--max-connections", "1000000"];

/// The relay a scenario runs against.
pub(crate) struct Relay {
    /// The process loadgen started, if it did.
    owned: Option<TestRelay>,
    /// "HOST:PORT".
    pub(crate) addr: String,
    /// Its certificate's fingerprint.
    pub(crate) fingerprint: CertFingerprint,
    /// The process to measure, if known.
    pub(crate) pid: Option<u32>,
}

impl Relay {
    /// Starts a fresh relay process of loadgen's own.
    pub(crate) fn start() -> Result<Self> {
        let flags = [MANY_USERS, MORE_CONNECTIONS].concat();
        let relay = TestRelay::start_quiet(&flags).context("cannot start uchat-relay")?;
        Ok(Self {
            addr: relay.addr.clone(),
            fingerprint: relay.fingerprint.parse().context("relay fingerprint")?,
            pid: relay.pid(),
            owned: Some(relay),
        })
    }

    /// A relay someone else runs.
    pub(crate) fn external(addr: &str, fingerprint: &str, pid: Option<u32>) -> Result<Self> {
        Ok(Self {
            owned: None,
            addr: addr.to_string(),
            fingerprint: fingerprint
                .parse()
                .context("--relay-fingerprint must be sha256:<64 hex digits>")?,
            pid,
        })
    }

    /// Restarts loadgen's own relay on the same address and data (SIGTERM, then the same
    /// flags), so that the next reading is of a fresh process; false for a relay given
    /// with `--relay`, which is left alone.
    pub(crate) fn restart(&mut self) -> Result<bool> {
        let Some(relay) = self.owned.as_mut() else {
            return Ok(false);
        };
        let flags = [MANY_USERS, MORE_CONNECTIONS].concat();
        relay.restart_with(&flags)?;
        self.pid = relay.pid();
        Ok(true)
    }

    /// The process's resident memory now, MiB (`None` without a pid).
    pub(crate) fn rss_mib(&self) -> Option<f64> {
        self.rss_kib().map(|kib| kib as f64 / 1024.0)
    }

    /// The process's resident memory now, KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        procfs::read(self.pid?).ok().map(|r| r.rss_kib)
    }

    /// Starts measuring the process's CPU time.
    pub(crate) fn window(&self) -> CpuWindow {
        CpuWindow {
            pid: self.pid,
            start: Instant::now(),
            cpu_s: self.cpu_s(),
        }
    }

    fn cpu_s(&self) -> Option<f64> {
        procfs::read(self.pid?).ok().and_then(|r| r.cpu_s)
    }

    /// Stops the relay loadgen started, if it did (SIGTERM, then SIGKILL).
    pub(crate) fn stop(mut self) {
        if let Some(mut relay) = self.owned.take() {
            let _ = relay.terminate();
        }
    }
}

/// CPU time of the relay process from a start.
pub(crate) struct CpuWindow {
    pid: Option<u32>,
    start: Instant,
    cpu_s: Option<f64>,
}

impl CpuWindow {
    /// The relay's CPU use since the start, in % of one core (200 = two cores busy).
    pub(crate) fn cpu_pct(&self) -> Option<f64> {
        let now = procfs::read(self.pid?).ok()?.cpu_s?;
        let wall = self.start.elapsed().as_secs_f64();
        let before = self.cpu_s?;
        (wall > 0.0).then(|| (now - before) / wall * 100.0)
    }
}
