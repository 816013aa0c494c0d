//! `loadgen`: a bounded load test of messaging through a real relay.
//!
//! It starts a relay in this process (or uses `--relay`), registers `--users` users with
//! the real `uchat_peer::Client`, and has every user send `--messages` messages to the
//! next one, all at once. With `--group`, the users form one group instead and the first
//! sends `--messages` messages to it, one after another. It reports end-to-end
//! throughput and latency percentiles: until the relay acknowledged a send (it is then
//! durably queued for every recipient), and until each recipient's client had decrypted
//! and stored it. Every loop is bounded by count and by `--time-limit`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use uchat_peer::{Client, ClientEvent, ClientOptions};
use uchat_relay::{RelayConfig, Server};
use uchat_wire::UserName;

/// Load test of 1:1 messaging through a relay.
#[derive(Parser, Debug)]
#[command(name = "loadgen", about)]
struct Args {
    /// Users, each sending to the next (the last to the first)
    #[arg(long, default_value_t = 20)]
    users: usize,
    /// Messages each user sends
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Bytes of text per message
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Use this relay ("HOST:PORT") instead of one started here
    #[arg(long)]
    relay: Option<String>,
    /// The relay's fingerprint, with --relay
    #[arg(long)]
    relay_fingerprint: Option<String>,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Put all users in one group; the first sends every message to it
    #[arg(long)]
    group: bool,
}

const PASSWORD: &str = "loadgen password";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn histogram() -> Result<Histogram<u64>> {
    // Microseconds from 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn line(name: &str, h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

async fn run(args: Args) -> Result<()> {
    if args.users < 2 || args.messages == 0 || args.size == 0 {
        bail!("need at least 2 users, 1 message and 1 byte per message");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = tempfile::tempdir()?;
    let (server, relay, fingerprint) = match &args.relay {
        Some(addr) => (None, addr.clone(), args.relay_fingerprint.clone()),
        None => {
            let mut config = RelayConfig::new("127.0.0.1:0".parse()?, scratch.path().join("relay"));
            config.limits.max_failed_logins_per_address = u32::MAX;
            uchat_tests::allow_many_users(&mut config.limits);
            let server = Server::spawn(config).await?;
            let addr = server.local_addr().to_string();
            let fp = server.fingerprint().to_string();
            (Some(server), addr, Some(fp))
        }
    };
    let relay_fingerprint = fingerprint
        .map(|f| f.parse())
        .transpose()
        .context("bad fingerprint")?;
    let run_id = now_ms() % 1_000_000;
    eprintln!("registering {} users on {relay}…", args.users);
    let mut clients = Vec::new();
    for i in 0..args.users {
        let name = UserName::parse(&format!("lg{run_id}u{i}"))?;
        let options = ClientOptions {
            home: scratch.path().join(format!("user{i}")),
            relay: Some(relay.clone()),
            relay_fingerprint,
        };
        clients.push(Arc::new(Client::register(options, name, PASSWORD).await?));
    }
    let names: Vec<UserName> = clients.iter().map(|c| c.me().clone()).collect();
    if args.group {
        let outcome = run_group(&args, &clients, &names).await;
        close_all(clients).await;
        if let Some(server) = server {
            server.shutdown().await;
        }
        return outcome;
    }
    // Each user writes to the next one: make each such pair friends.
    for (i, client) in clients.iter().enumerate() {
        let next = (i + 1) % clients.len();
        if next != i && !client.add_friend(&names[next], "loadgen").await? {
            clients[next].accept_friend(&names[i]).await?;
        }
    }
    let expected = args.users * args.messages;
    let delivery = Arc::new(Mutex::new(histogram()?));
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let duplicates = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for client in &clients {
        let mut events = client.subscribe();
        let (delivery, received, duplicates) =
            (delivery.clone(), received.clone(), duplicates.clone());
        let per_user = args.messages;
        listeners.spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while seen.len() < per_user {
                match events.recv().await {
                    Ok(ClientEvent::Message(m)) => {
                        if !seen.insert(m.id) {
                            duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        let us = now_ms().saturating_sub(m.sent_ms) * 1000;
                        let _ = delivery.lock().await.record(us.max(1));
                        received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    }
    let text = "负".repeat(args.size / 3) + &"x".repeat(args.size % 3);
    let acked = Arc::new(Mutex::new(histogram()?));
    let started = tokio::time::Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (i, client) in clients.iter().enumerate() {
        let (client, to, text, acked) = (
            client.clone(),
            names[(i + 1) % names.len()].clone(),
            text.clone(),
            acked.clone(),
        );
        let count = args.messages;
        senders.spawn(async move {
            for _ in 0..count {
                let t = tokio::time::Instant::now();
                client.send_text(&to, &text).await?;
                let _ = acked
                    .lock()
                    .await
                    .record((t.elapsed().as_micros() as u64).max(1));
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    let limit = Duration::from_secs(args.time_limit);
    let all = async {
        while let Some(r) = senders.join_next().await {
            r??;
        }
        while listeners.join_next().await.is_some() {}
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(limit, all)
        .await
        .with_context(|| format!("not done within --time-limit {} s", args.time_limit))??;
    let elapsed = started.elapsed();
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{} users, {} messages of {} bytes: {} received, {} duplicates, in {:.2} s",
        args.users,
        expected,
        text.len(),
        got,
        duplicates.load(std::sync::atomic::Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} messages/s end to end",
        got as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{}",
        line(
            "send until the relay acked (durably queued)",
            &*acked.lock().await
        )
    );
    println!(
        "{}",
        line(
            "send until the recipient stored it",
            &*delivery.lock().await
        )
    );
    close_all(clients).await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    if got != expected {
        bail!("{got} of {expected} messages arrived");
    }
    Ok(())
}

/// Closes every client at once (each waits for its connection to drain).
async fn close_all(clients: Vec<Arc<Client>>) {
    let mut closing = tokio::task::JoinSet::new();
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            closing.spawn(client.close());
        }
    }
    while closing.join_next().await.is_some() {}
}

/// Group mode: every user in one group, the first sending every message.
async fn run_group(args: &Args, clients: &[Arc<Client>], names: &[UserName]) -> Result<()> {
    let (owner, members) = clients.split_first().context("an owner")?;
    for member in members {
        owner.add_friend(member.me(), "loadgen").await?;
        member.accept_friend(owner.me()).await?;
    }
    let group = owner.create_group("loadgen", &names[1..]).await?;
    let expected = members.len() * args.messages;
    let delivery = Arc::new(Mutex::new(histogram()?));
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut listeners = tokio::task::JoinSet::new();
    for member in members {
        let mut events = member.subscribe();
        let (delivery, received) = (delivery.clone(), received.clone());
        let per_member = args.messages;
        listeners.spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while seen.len() < per_member {
                match events.recv().await {
                    Ok(ClientEvent::Message(m)) if m.group.is_some() && m.text.is_some() => {
                        if seen.insert(m.id) {
                            let us = now_ms().saturating_sub(m.sent_ms) * 1000;
                            let _ = delivery.lock().await.record(us.max(1));
                            received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
    }
    let text = "群".repeat(args.size / 3) + &"x".repeat(args.size % 3);
    let mut acked = histogram()?;
    let started = tokio::time::Instant::now();
    let limit = Duration::from_secs(args.time_limit);
    let all = async {
        for _ in 0..args.messages {
            let t = tokio::time::Instant::now();
            owner.send_group_text(group.id, &text).await?;
            let _ = acked.record((t.elapsed().as_micros() as u64).max(1));
        }
        let sent = started.elapsed();
        while listeners.join_next().await.is_some() {}
        Ok::<_, anyhow::Error>(sent)
    };
    let sent_in = tokio::time::timeout(limit, all)
        .await
        .with_context(|| format!("not done within --time-limit {} s", args.time_limit))??;
    let elapsed = started.elapsed();
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "group of {} members, {} messages of {} bytes from one sender: {} of {} deliveries in {:.2} s",
        clients.len(),
        args.messages,
        text.len(),
        got,
        expected,
        elapsed.as_secs_f64()
    );
    println!(
        "sender: {:.0} messages/s acknowledged ({:.2} s for all); {:.0} deliveries/s end to end",
        args.messages as f64 / sent_in.as_secs_f64(),
        sent_in.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{}",
        line(
            "send until the relay acked (queued for every member)",
            &acked
        )
    );
    println!(
        "{}",
        line("send until each member stored it", &*delivery.lock().await)
    );
    if got != expected {
        bail!("{got} of {expected} deliveries arrived");
    }
    Ok(())
}

fn main() {
    uchat_tests::run_main("loadgen", run(Args::parse()));
}
