//! The sampler: once a second, the relay's memory, descriptors, CPU and database size
//! from /proc and the file system, with the traffic's counters beside them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use uchat_tests::TestRelay;

use crate::samples::Sample;
use crate::shared::SoakWorld;
use uchat_tests::procfs;

/// How often a progress line goes to stderr.
const PRINT_EVERY: Duration = Duration::from_secs(60);

/// Samples the relay every second until `until`; stops early (with the reason) if the
/// relay process is gone or its /proc entry cannot be read.
pub(crate) async fn sample(
    relay: &mut TestRelay,
    shared: &SoakWorld,
    start: Instant,
    until: Instant,
) -> (Vec<Sample>, Option<String>) {
    let mut samples = Vec::new();
    let Some(pid) = relay.pid() else {
        return (samples, Some("the relay is not running".into()));
    };
    let db = relay.data_dir().join("relay.redb");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_cpu = procfs::read(pid).ok().and_then(|r| r.cpu_s).unwrap_or(0.0);
    let mut last_at = Instant::now();
    let mut last_print = Instant::now();
    while Instant::now() < until {
        tick.tick().await;
        if !relay.is_running() {
            return (samples, Some("the relay process exited".into()));
        }
        let reading = match procfs::read(pid) {
            Ok(reading) => reading,
            Err(e) => {
                return (
                    samples,
                    Some(format!("cannot read the relay's /proc: {e:#}")),
                );
            }
        };
        let cpu = reading.cpu_s.unwrap_or(last_cpu);
        let now = Instant::now();
        let cpu_pct =
            (cpu - last_cpu) / now.duration_since(last_at).as_secs_f64().max(1e-3) * 100.0;
        (last_cpu, last_at) = (cpu, now);
        let c = &shared.counters;
        let s = Sample {
            t_s: now.duration_since(start).as_secs_f64(),
            rss_kib: reading.rss_kib,
            fds: reading.fds,
            cpu_pct,
            db_bytes: std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0),
            ops: c.done_total(),
            errors: c.failed_total(),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            offline: c.offline.load(Ordering::Relaxed),
            load1: procfs::machine_load1(),
        };
        if now.duration_since(last_print) >= PRINT_EVERY {
            last_print = now;
            eprintln!(
                "  {:5.1} min: RSS {:.1} MiB, {} fds, relay CPU {:.0} %, {} ops, {} errors, {} offline",
                s.t_s / 60.0,
                s.rss_kib as f64 / 1024.0,
                s.fds,
                s.cpu_pct,
                s.ops,
                s.errors,
                s.offline
            );
        }
        samples.push(s);
    }
    (samples, None)
}
