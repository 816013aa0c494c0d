//! `idle` (wire mode): `--clients` (1,000) accounts are registered, then (on loadgen's
//! own relay) the relay is restarted so that the "before" reading is of a fresh process
//! over the same data; the clients log in (session resume) `--parallel` (50) at a time
//! and stay idle; after `--idle-secs` (3) the relay's RSS is read.
//! `relay_rss_per_client_kib` = (RSS with the clients - RSS before them) / clients;
//! `relay_cpu_pct` is the relay's CPU while they idle (keep-alives).
//!
//! All connections share one UDP socket, and an idle client holds only its quinn
//! connection: no task, no buffer, so 20,000 of them fit in one loadgen.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;
use uchat_tests::wire_client::WireClient;

use crate::fleet::{Account, Fleet, PASSWORD};
use crate::relay::Relay;
use crate::report::{Report, histogram};
use crate::{Ctx, Scenario};

/// How long the restarted relay is given to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &mut Relay) -> Result<Report> {
    let clients = ctx.clients_or(1000);
    let parallel = ctx.args.parallel.max(1);
    let fleet = Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?;
    let accounts = register(&fleet, clients, parallel).await?;
    fleet.dialer().wait_idle(Duration::from_secs(2)).await;
    if relay.restart()? {
        tokio::time::sleep(SETTLE).await;
    }
    let before_kib = relay.rss_kib();

    // A fresh socket: the old one's connections are gone with the old relay process.
    let fleet = std::sync::Arc::new(Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?);
    let mut logins = histogram();
    let mut held = Vec::with_capacity(clients);
    let mut running = JoinSet::new();
    for account in accounts {
        if running.len() >= parallel {
            let (client, took) = running.join_next().await.context("a login")???;
            held.push(client);
            logins.record(took)?;
        }
        let fleet = fleet.clone();
        running.spawn(async move {
            let started = Instant::now();
            let client = WireClient::resume(fleet.dialer(), account.name.clone(), account.token())
                .await
                .context("resuming an idle client")?;
            Ok::<_, anyhow::Error>((client, (started.elapsed().as_micros() as u64).max(1)))
        });
    }
    while let Some(done) = running.join_next().await {
        let (client, took) = done.context("a login task")??;
        held.push(client);
        logins.record(took)?;
    }
    let cpu = relay.window();
    let idle = Duration::from_secs_f64(ctx.args.idle_secs);
    tokio::time::sleep(idle).await;
    let relay_cpu_pct = cpu.cpu_pct();
    let after_kib = relay.rss_kib();
    for client in &held {
        client.close().await;
    }
    fleet.dialer().wait_idle(Duration::from_secs(2)).await;

    let mut report = ctx.report(Scenario::Idle, clients);
    report.seconds = idle.as_secs_f64();
    // The percentiles are of one client's connect and resume, `--parallel` at a time.
    report.set_latency(&logins);
    report.relay_cpu_pct = relay_cpu_pct;
    report.relay_rss_mib = after_kib.map(|kib| kib as f64 / 1024.0);
    report.relay_rss_per_client_kib = match (before_kib, after_kib) {
        (Some(before), Some(after)) => Some((after as f64 - before as f64) / clients.max(1) as f64),
        _ => None,
    };
    Ok(report)
}

/// Registers `count` accounts, `parallel` at a time, closing each connection.
async fn register(fleet: &Fleet, count: usize, parallel: usize) -> Result<Vec<Account>> {
    let mut accounts = Vec::with_capacity(count);
    let mut running = JoinSet::new();
    for i in 0..count {
        if running.len() >= parallel {
            accounts.push(running.join_next().await.context("a registration")???);
        }
        let name = fleet.new_name("i")?;
        let dialer = fleet.dialer_handle();
        running.spawn(async move {
            let client = WireClient::register(&dialer, name, PASSWORD)
                .await
                .with_context(|| format!("registering idle account {i}"))?;
            let account = Account::wire(&client);
            client.close().await;
            Ok::<_, anyhow::Error>(account)
        });
    }
    while let Some(done) = running.join_next().await {
        accounts.push(done??);
    }
    Ok(accounts)
}
