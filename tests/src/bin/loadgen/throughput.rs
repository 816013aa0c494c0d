//! `throughput` (closed loop): `--clients` connections, half senders and half receivers;
//! each sender keeps at most `--window` messages in flight (sent, not yet received) and
//! addresses the receivers round robin. After `--warmup-secs`, the messages received in
//! `--seconds` are counted; latency is send to receive.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::PairSend;
use crate::fleet::Fleet;
use crate::mesh::{Mesh, MeshRun};
use crate::relay::Relay;
use crate::report::Report;
use crate::{Ctx, Scenario, clock_us};

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    let clients = ctx.clients_or(100);
    let fleet = Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?;
    let mesh = Mesh::start(fleet, clients, ctx.args.window, ctx.args.parallel).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = JoinSet::new();
    for (index, _) in mesh.senders.iter().enumerate() {
        let (mesh_senders, fleet, shared, stop) = (
            mesh.senders.clone(),
            mesh.fleet.clone(),
            mesh.shared.clone(),
            stop_rx.clone(),
        );
        senders.spawn(async move {
            let pairs = send(index, &mesh_senders[index], &fleet, &shared, stop).await?;
            Ok::<_, anyhow::Error>((index, pairs))
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(ctx.args.warmup_secs)).await;
    let measured = ctx.seconds_or(10.0);
    mesh.open_window();
    let cpu = relay.window();
    tokio::time::sleep(measured).await;
    mesh.close_window();
    let relay_cpu_pct = cpu.cpu_pct();
    let relay_rss_mib = relay.rss_mib();
    let _ = stop_tx.send(true);
    let mut sent = vec![Vec::new(); mesh.senders.len()];
    while let Some(done) = senders.join_next().await {
        let (index, pairs) = done.context("a sender task")??;
        sent[index] = pairs;
    }
    let outcome = mesh.finish(sent).await?;
    let mut report = ctx.report(Scenario::Throughput, clients);
    report.set_count(outcome.counted, measured.as_secs_f64());
    report.set_latency(&outcome.latency);
    report.relay_cpu_pct = relay_cpu_pct;
    report.relay_rss_mib = relay_rss_mib;
    Ok(report)
}

/// One sender: while not stopped, takes a place in its window and sends the next
/// message to the next receiver, many sends at once; returns each pair's ledger once
/// every send has its answer.
async fn send(
    index: usize,
    user: &Arc<crate::fleet::User>,
    fleet: &Arc<Fleet>,
    shared: &Arc<MeshRun>,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<PairSend>> {
    let receivers = shared.receivers.len();
    let mut pairs = vec![PairSend::default(); receivers];
    let mut next = index % receivers;
    let mut in_flight = JoinSet::new();
    let window = shared.windows[index].clone();
    // Bounded by the stop signal, which the scenario sends after its window.
    loop {
        let stopped = *stop.borrow();
        if stopped && in_flight.is_empty() {
            break;
        }
        // Priorities: answers first (they keep the ledger current), then the stop
        // signal, then a new send.
        tokio::select! {
            biased;
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                let (receiver, seq): (usize, u64) = done.context("a send task")??;
                pairs[receiver].acked(seq);
                shared.acked.fetch_add(1, Ordering::AcqRel);
            }
            _ = stop.changed(), if !stopped => {}
            permit = window.acquire(), if !stopped => {
                // The receiver gives the place back when the message arrives.
                permit.context("window closed")?.forget();
                let header = pairs[next].next(index as u32, clock_us());
                let (user, fleet, to) = (user.clone(), fleet.clone(), shared.receivers[next].clone());
                let receiver = next;
                in_flight.spawn(async move {
                    fleet.send(&user, &to, header).await?;
                    Ok::<_, anyhow::Error>((receiver, header.seq))
                });
                next = (next + 1) % receivers;
            }
        }
    }
    Ok(pairs)
}
