//! `offline`: one sender queues `--messages` (10,000) messages to a friend with no
//! connection, `--window` sends at a time: `store_msgs_per_s` counts until the relay
//! acknowledged the last. Then the friend connects and resumes its session and reads
//! its queue: `drain_s` runs from the connect to the last message received and
//! acknowledged (the relay confirmed the `Ack`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::task::JoinSet;

use crate::body::{PairCheck, PairSend};
use crate::fleet::{Fleet, User};
use crate::relay::Relay;
use crate::report::Report;
use crate::{Ctx, Scenario, clock_us};

/// How long the drain may wait for one message before the run counts as broken.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(60);

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    let messages = ctx.args.messages.unwrap_or(10_000);
    ensure!(messages > 0, "--messages must be positive");
    let fleet = std::sync::Arc::new(Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?);
    let (sender, _) = fleet.register("o").await?;
    let (receiver, account) = fleet.register("q").await?;
    sender.befriend(&receiver).await.context("befriending")?;
    receiver.close().await;
    let sender = std::sync::Arc::new(sender);

    let cpu = relay.window();
    let store_started = Instant::now();
    let mut pair = PairSend::default();
    let mut in_flight = JoinSet::new();
    let to = account.name.clone();
    for _ in 0..messages {
        if in_flight.len() >= ctx.args.window.max(1) {
            let seq = in_flight.join_next().await.context("a send")???;
            pair.acked(seq);
        }
        let header = pair.next(0, clock_us());
        let (fleet, sender, to) = (fleet.clone(), sender.clone(), to.clone());
        in_flight.spawn(async move {
            fleet.send(&sender, &to, header).await?;
            Ok::<_, anyhow::Error>(header.seq)
        });
    }
    while let Some(done) = in_flight.join_next().await {
        pair.acked(done.context("a send")??);
    }
    let store_s = store_started.elapsed().as_secs_f64();
    ensure!(
        pair.acked_count() == messages,
        "not every message was acknowledged"
    );

    let drain_started = Instant::now();
    let receiver = fleet.reopen(&account).await?;
    let mut inbox = receiver.inbox().await?;
    let mut check = PairCheck::default();
    // Bounded by `messages` arrivals, each within ARRIVAL_LIMIT.
    while check.received() < messages {
        let arrival = inbox
            .next(ARRIVAL_LIMIT)
            .await?
            .with_context(|| format!("only {} of {messages} messages arrived", check.received()))?;
        ensure!(
            arrival.from == *sender.name(),
            "a message from {} in the queue",
            arrival.from
        );
        if let Err(anomaly) = check.take(&arrival.header) {
            bail!("the queue's messages came wrong: {anomaly:?}");
        }
    }
    inbox.flush().await?;
    if let User::Real(client) = &receiver {
        client.catch_up(ARRIVAL_LIMIT).await?;
    }
    let drain_s = drain_started.elapsed().as_secs_f64();
    let relay_cpu_pct = cpu.cpu_pct();
    let relay_rss_mib = relay.rss_mib();
    receiver.close().await;
    if let Ok(sender) = std::sync::Arc::try_unwrap(sender) {
        sender.close().await;
    }
    fleet.dialer().wait_idle(Duration::from_secs(1)).await;

    let mut report = ctx.report(Scenario::Offline, 2);
    report.set_count(messages, drain_s);
    report.store_msgs_per_s = Some(messages as f64 / store_s);
    report.drain_s = Some(drain_s);
    report.relay_cpu_pct = relay_cpu_pct;
    report.relay_rss_mib = relay_rss_mib;
    Ok(report)
}
