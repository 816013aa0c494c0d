//! `group` (real mode): the earlier loadgen's group shape, kept for the README's figures.
//! `--clients` (20) real clients form one group; the first sends `--messages` (50)
//! messages to it, one after another. `msgs_per_s` counts deliveries (messages × other
//! members) per second end to end; the percentiles are send to each member's store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use uchat_peer::{Client, ClientEvent};

use crate::body::BODY_BYTES;
use crate::fleet::{Fleet, User};
use crate::relay::Relay;
use crate::report::{Report, histogram};
use crate::{Ctx, Scenario};

/// Runs the scenario.
pub(crate) async fn run(ctx: &Ctx, relay: &Relay) -> Result<Report> {
    let users = ctx.clients_or(20);
    let messages = ctx.args.messages.unwrap_or(50);
    ensure!(
        users >= 2 && messages > 0,
        "need at least 2 clients and 1 message"
    );
    let fleet = Fleet::new(ctx.mode(), &relay.addr, relay.fingerprint).await?;
    let mut clients: Vec<Client> = Vec::with_capacity(users);
    for _ in 0..users {
        match fleet.register("g").await?.0 {
            User::Real(client) => clients.push(client),
            User::Wire(_) => bail!("group runs in real mode only"),
        }
    }
    let (owner, members) = clients.split_first().context("an owner")?;
    for member in members {
        owner.social().add_friend(member.me(), "loadgen").await?;
        member.social().accept_friend(owner.me()).await?;
    }
    let names: Vec<_> = members.iter().map(|m| m.me().clone()).collect();
    let group = owner.groups().create("loadgen", &names).await?;
    let expected = members.len() as u64 * messages;
    let delivery = Arc::new(Mutex::new(histogram()));
    let mut listeners = JoinSet::new();
    for member in members {
        let mut events = member.subscribe();
        let delivery = delivery.clone();
        listeners.spawn(async move {
            let mut seen = HashSet::new();
            // Bounded by the messages expected, and by --time-limit around the scenario.
            while (seen.len() as u64) < messages {
                match events.recv().await {
                    Ok(ClientEvent::Message(m)) if m.group.is_some() && m.text.is_some() => {
                        if !seen.insert(m.id) {
                            bail!("a group message arrived twice");
                        }
                        let now_ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(0);
                        let us = now_ms.saturating_sub(m.sent_ms) * 1000;
                        delivery.lock().await.record(us.max(1))?;
                    }
                    Ok(_) => {}
                    Err(e) => bail!("a member's events ended: {e}"),
                }
            }
            Ok::<_, anyhow::Error>(seen.len() as u64)
        });
    }
    // 256 bytes of text, as the 1:1 scenarios send.
    let mut text = "群".repeat(BODY_BYTES / 3);
    while text.len() < BODY_BYTES {
        text.push('x');
    }
    let cpu = relay.window();
    let started = Instant::now();
    for _ in 0..messages {
        owner.groups().send_text(group.id, &text).await?;
    }
    let mut got = 0;
    while let Some(done) = listeners.join_next().await {
        got += done.context("a member's listener")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(got == expected, "{got} of {expected} deliveries arrived");
    let mut report = ctx.report(Scenario::Group, users);
    report.set_count(got, seconds);
    report.set_latency(&*delivery.lock().await);
    report.relay_cpu_pct = cpu.cpu_pct();
    report.relay_rss_mib = relay.rss_mib();
    for client in clients {
        client.close().await;
    }
    Ok(report)
}
