//! `latency`: two users A and B; A sends to B, B's client echoes each message back to A;
//! `--warmup` round trips, then `--count` measured ones, strictly one at a time. Reports
//! the round trip's percentiles (two passes through the relay, each acknowledged).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::body::PairSend;
use crate::fleet::Fleet;
use crate::relay::Relay;
use crate::report::{Report, histogram};
use crate::{Ctx, Scenario, clock_us};

/// How long one message may take to come round before the run counts as broken.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(30);

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    let fleet = Arc::new(Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?);
    let (a, _) = fleet.register("a").await?;
    let (b, _) = fleet.register("b").await?;
    a.befriend(&b).await.context("befriending A and B")?;
    let mut a_inbox = a.inbox().await?;
    let mut b_inbox = b.inbox().await?;
    let total = ctx.args.warmup + ctx.args.count;
    let a_name = a.name().clone();
    let b_name = b.name().clone();

    // B echoes every message back to A with its header unchanged, and checks that they
    // come one after another.
    let echo_fleet = fleet.clone();
    let echo = tokio::spawn(async move {
        for expected in 1..=total {
            let arrival = b_inbox.next(ROUND_TRIP_LIMIT).await?.with_context(|| {
                format!("B got no message {expected} within {ROUND_TRIP_LIMIT:?}")
            })?;
            ensure!(
                arrival.from == a_name && arrival.header.seq == expected,
                "B expected message {expected} from {a_name}, got {} from {}",
                arrival.header.seq,
                arrival.from
            );
            echo_fleet.send(&b, &a_name, arrival.header).await?;
        }
        b_inbox.flush().await?;
        Ok::<_, anyhow::Error>(b)
    });

    let mut pair = PairSend::default();
    let mut round_trips = histogram();
    let mut window = None;
    for i in 0..total {
        if i == ctx.args.warmup {
            window = Some((Instant::now(), relay.window()));
        }
        let started = Instant::now();
        let header = pair.next(0, clock_us());
        fleet.send(&a, &b_name, header).await?;
        pair.acked(header.seq);
        let back = a_inbox.next(ROUND_TRIP_LIMIT).await?.with_context(|| {
            format!(
                "message {} did not come back within {ROUND_TRIP_LIMIT:?}",
                header.seq
            )
        })?;
        ensure!(
            back.from == b_name && back.header == header,
            "A expected its message {} back from {b_name}, got {} from {}",
            header.seq,
            back.header.seq,
            back.from
        );
        if i >= ctx.args.warmup {
            round_trips.record((started.elapsed().as_micros() as u64).max(1))?;
        }
    }
    let (window_start, cpu) = window.context("no measured round trips (--count 0)")?;
    let seconds = window_start.elapsed().as_secs_f64();
    let mut report = ctx.report(Scenario::Latency, 2);
    report.relay_cpu_pct = cpu.cpu_pct();
    report.relay_rss_mib = relay.rss_mib();
    report.set_count(ctx.args.count, seconds);
    report.set_latency(&round_trips);

    a_inbox.flush().await?;
    let b = echo.await.context("the echo task")??;
    a.close().await;
    b.close().await;
    fleet.dialer().wait_idle(Duration::from_secs(1)).await;
    Ok(report)
}
