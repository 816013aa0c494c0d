//! `rate` (open loop): the throughput scenario's connections, but messages go out at
//! `--rate` per second whatever the relay does, paced in 1 ms ticks and spread round
//! robin over the senders (each sender's round robin over the receivers). A message
//! whose sender already has `--cap` in flight is skipped and counted as `capped`.
//! Latency is send to receive, of every message in the measured window.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::body::PairSend;
use crate::fleet::Fleet;
use crate::mesh::Mesh;
use crate::relay::Relay;
use crate::report::Report;
use crate::{Ctx, Scenario, clock_us};

/// The pacing tick.
const TICK: Duration = Duration::from_millis(1);

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    ensure!(ctx.args.rate > 0, "--rate must be positive");
    let clients = ctx.clients_or(100);
    let fleet = Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?;
    let mesh = Mesh::start(fleet, clients, ctx.args.cap, ctx.args.parallel).await?;
    let n_senders = mesh.senders.len();
    let n_receivers = mesh.shared.receivers.len();
    let mut pairs = vec![vec![PairSend::default(); n_receivers]; n_senders];
    let mut next_receiver: Vec<usize> = (0..n_senders).map(|s| s % n_receivers).collect();
    let mut next_sender = 0;
    let mut in_flight = JoinSet::new();
    let mut capped_in_window = 0u64;
    let warmup = Duration::from_secs_f64(ctx.args.warmup_secs);
    let measured = ctx.seconds_or(10.0);
    let started = Instant::now();
    let (window_opens, window_closes) = (started + warmup, started + warmup + measured);
    let mut window = None;
    let mut figures = None;
    let mut issued = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Bounded by `window_closes`, then by the answers still in flight.
    loop {
        // Priorities: answers first (cheap, and they keep the ledger current), then the
        // next tick.
        tokio::select! {
            biased;
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                let (s, r, seq): (usize, usize, u64) = done.context("a send task")??;
                pairs[s][r].acked(seq);
                mesh.shared.acked.fetch_add(1, Ordering::AcqRel);
            }
            now = tick.tick(), if figures.is_none() => {
                if window.is_none() && now >= window_opens {
                    mesh.open_window();
                    window = Some(relay.window());
                }
                if now >= window_closes {
                    mesh.close_window();
                    figures = Some((window.as_ref().and_then(|w| w.cpu_pct()), relay.rss_mib()));
                    continue;
                }
                // Everything due by now at the offered rate goes out at this tick.
                let due = (now - started).as_secs_f64() * ctx.args.rate as f64;
                while (issued as f64) < due {
                    issued += 1;
                    let s = next_sender;
                    next_sender = (next_sender + 1) % n_senders;
                    match mesh.shared.windows[s].try_acquire() {
                        Ok(permit) => permit.forget(),
                        Err(_) => {
                            if window.is_some() {
                                capped_in_window += 1;
                            }
                            continue;
                        }
                    }
                    let r = next_receiver[s];
                    next_receiver[s] = (r + 1) % n_receivers;
                    let header = pairs[s][r].next(s as u32, clock_us());
                    let (user, fleet, to) = (
                        mesh.senders[s].clone(),
                        mesh.fleet.clone(),
                        mesh.shared.receivers[r].clone(),
                    );
                    in_flight.spawn(async move {
                        fleet.send(&user, &to, header).await?;
                        Ok::<_, anyhow::Error>((s, r, header.seq))
                    });
                }
            }
            else => break,
        }
        if figures.is_some() && in_flight.is_empty() {
            break;
        }
    }
    let (relay_cpu_pct, relay_rss_mib) = figures.context("the window never closed")?;
    let outcome = mesh.finish(pairs).await?;
    let mut report = ctx.report(Scenario::Rate, clients);
    report.set_count(outcome.counted, measured.as_secs_f64());
    report.set_latency(&outcome.latency);
    report.relay_cpu_pct = relay_cpu_pct;
    report.relay_rss_mib = relay_rss_mib;
    report.offered_per_s = Some(ctx.args.rate);
    report.capped = Some(capped_in_window);
    Ok(report)
}
