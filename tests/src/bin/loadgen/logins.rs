//! `logins` (wire mode): `--clients` (50) accounts log in over and over, `--parallel`
//! (50) at a time, each login a new QUIC connection, `Hello` and the login, then a
//! close. First password logins (`Login`: an argon2 check on the relay) for `--seconds`
//! (5), then session resumes (`Resume` with the token: no password) for as long.
//!
//! The one JSON object carries both: `logins_per_s` and the `p*_ms` percentiles are the
//! resumes' (what a returning client does on every connect), `password_logins_per_s`,
//! `password_p50_ms` and `password_p99_ms` the password logins'. `relay_cpu_pct` spans
//! both halves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use uchat_tests::wire_client::{Dialer, WireClient};

use crate::fleet::{Account, Fleet, PASSWORD};
use crate::relay::Relay;
use crate::report::{Report, histogram};
use crate::{Ctx, Scenario};

/// Login tasks per source address. The relay counts a password check in progress as a
/// failed login until it succeeds, and allows 30 per address (`Limits`'
/// `max_failed_logins_per_address`, not a flag of the binary): 25 at once stay under it.
const TASKS_PER_ADDRESS: usize = 25;

/// The sockets the login tasks use: on a loopback relay, one per [`TASKS_PER_ADDRESS`]
/// tasks, bound to 127.0.0.2, 127.0.0.3, ... (all of 127/8 is loopback on Linux);
/// otherwise the fleet's one socket.
async fn dialers(fleet: &Fleet, parallel: usize) -> Result<Vec<Arc<Dialer>>> {
    let loopback = fleet
        .relay_ip()
        .is_some_and(|ip| ip.is_loopback() && ip.is_ipv4());
    if !loopback {
        return Ok(vec![fleet.dialer_handle()]);
    }
    let mut dialers = Vec::new();
    for i in 0..parallel.max(1).div_ceil(TASKS_PER_ADDRESS) {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8);
        dialers.push(Arc::new(fleet.dialer_from(source.into()).await?));
    }
    Ok(dialers)
}

/// Which way to log in.
#[derive(Clone, Copy)]
enum Way {
    Password,
    Resume,
}

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    let clients = ctx.clients_or(50);
    ensure!(clients > 0, "--clients must be positive");
    let fleet = Arc::new(Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?);
    let mut accounts = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (user, account) = fleet.register("l").await?;
        user.close().await;
        accounts.push(account);
    }
    let phase = ctx.seconds_or(5.0);
    let cpu = relay.window();
    let (password_count, password) =
        measure(&fleet, &accounts, Way::Password, phase, ctx.args.parallel).await?;
    let (resume_count, resume) =
        measure(&fleet, &accounts, Way::Resume, phase, ctx.args.parallel).await?;
    let relay_cpu_pct = cpu.cpu_pct();

    let seconds = phase.as_secs_f64();
    let mut report = ctx.report(Scenario::Logins, clients);
    report.set_count(resume_count, seconds);
    report.set_latency(&resume);
    report.logins_per_s = Some(resume_count as f64 / seconds);
    report.password_logins_per_s = Some(password_count as f64 / seconds);
    if !password.is_empty() {
        report.password_p50_ms = Some(password.value_at_quantile(0.5) as f64 / 1000.0);
        report.password_p99_ms = Some(password.value_at_quantile(0.99) as f64 / 1000.0);
    }
    report.relay_cpu_pct = relay_cpu_pct;
    report.relay_rss_mib = relay.rss_mib();
    Ok(report)
}

/// Logs the accounts in `way` for `phase`, `parallel` at a time (each account by one
/// task, one login after another, so that no account holds more than one connection);
/// returns the logins finished within the phase and their times (µs).
async fn measure(
    fleet: &Arc<Fleet>,
    accounts: &[Account],
    way: Way,
    phase: Duration,
    parallel: usize,
) -> Result<(u64, Histogram<u64>)> {
    let dialers = dialers(fleet, parallel).await?;
    let ends = Instant::now() + phase;
    let mut tasks = JoinSet::new();
    for (i, chunk) in accounts
        .chunks(accounts.len().div_ceil(parallel.max(1)))
        .enumerate()
    {
        let chunk = chunk.to_vec();
        let dialer = dialers[i / TASKS_PER_ADDRESS % dialers.len()].clone();
        tasks.spawn(async move {
            let mut times = histogram();
            let mut count = 0u64;
            // Bounded by the phase's end.
            'phase: loop {
                for account in &chunk {
                    if Instant::now() >= ends {
                        break 'phase;
                    }
                    let started = Instant::now();
                    let client = match way {
                        Way::Password => {
                            WireClient::login(&dialer, account.name.clone(), PASSWORD).await
                        }
                        Way::Resume => {
                            WireClient::resume(&dialer, account.name.clone(), account.token()).await
                        }
                    }
                    .with_context(|| format!("logging in as {}", account.name))?;
                    let took = started.elapsed();
                    client.close().await;
                    if Instant::now() <= ends {
                        count += 1;
                        times.record((took.as_micros() as u64).max(1))?;
                    }
                }
            }
            Ok::<_, anyhow::Error>((count, times))
        });
    }
    let mut count = 0;
    let mut times = histogram();
    while let Some(done) = tasks.join_next().await {
        let (n, h) = done.context("a login task")??;
        count += n;
        times.add(&h)?;
    }
    for dialer in dialers {
        dialer.wait_idle(Duration::from_secs(2)).await;
    }
    Ok((count, times))
}
