//! `callbench`: how the voice path performs, in two bounded measurements.
//!
//! - `callbench relay --calls 50,100,200`: starts a relay process, sets up that many calls
//!   between pairs of real clients (real signalling, real Olm-keyed offers), then has every
//!   leg send a voice-sized datagram every 20 ms through the relay for `--seconds`, and
//!   reports the share that did not arrive, the relay's forwarding latency and its CPU use.
//!   The senders skip Opus (the relay never decodes anything), so the machine's cores go
//!   to the relay rather than to codecs that are not under test.
//! - `callbench pipeline --loss 0,5`: two voice engines joined in this process by a path
//!   that loses that share of datagrams at random (and adds no delay), one playing a
//!   speech-like signal: the delay the pipeline adds (capture to playout, found by aligning
//!   what came out with what went in), its own mouth-to-ear estimate, and what FEC and
//!   concealment did.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use uchat_peer::crypto::voice::{CallKeyPair, CallRole};
use uchat_peer::voice::analysis::{align, speech_like};
use uchat_peer::voice::audio::{PcmInput, PcmOutput, Silence};
use uchat_peer::voice::engine::{DatagramLink, MediaSettings, run_media};
use uchat_peer::voice::stats::CallPath;
use uchat_peer::{CallProgress, Client, ClientOptions, ConnectedCall, Placed};
use uchat_tests::TestRelay;
use uchat_wire::msg::call::voice_datagram;
use uchat_wire::{CallId, UserName};

#[derive(Parser, Debug)]
#[command(name = "callbench", about)]
struct Args {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Concurrent calls through one relay: loss, latency and relay CPU per step
    Relay {
        /// Numbers of concurrent calls to try, in order
        #[arg(long, value_delimiter = ',', default_values_t = [25, 50, 100, 200])]
        calls: Vec<usize>,
        /// Seconds of voice per step
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Bytes per datagram after the routing header (a sealed 24 kbit/s Opus frame is
        /// about 60 + 23)
        #[arg(long, default_value_t = 90)]
        payload: usize,
    },
    /// The voice pipeline's added latency and quality over a lossy in-process path
    Pipeline {
        /// Loss percentages to try
        #[arg(long, value_delimiter = ',', default_values_t = [0.0, 5.0])]
        loss: Vec<f64>,
        /// Seconds of speech per run
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

const PASSWORD: &str = "callbench password";
/// Frames per second per leg.
const FRAME_INTERVAL: Duration = Duration::from_millis(20);

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Two clients in a call (kept open for the whole run).
struct Pair {
    caller: Arc<Client>,
    callee: Arc<Client>,
}

async fn register(relay: &TestRelay, home: &std::path::Path, name: &str) -> Result<Client> {
    let options = ClientOptions {
        home: home.join(name),
        relay: Some(relay.addr.clone()),
        relay_fingerprint: Some(relay.fingerprint.parse()?),
    };
    Ok(Client::register(options, UserName::parse(name)?, PASSWORD).await?)
}

/// Sets up one call between a new pair of friends; returns both sides connected.
async fn connect_pair(
    relay: &TestRelay,
    home: &std::path::Path,
    i: usize,
) -> Result<(Pair, ConnectedCall, ConnectedCall)> {
    let caller = register(relay, home, &format!("caller{i}")).await?;
    let callee = register(relay, home, &format!("callee{i}")).await?;
    if !caller.social().add_friend(callee.me(), "callbench").await? {
        callee.social().accept_friend(caller.me()).await?;
    }
    let Placed::Ringing(placed) = caller.calls().place(callee.me()).await? else {
        bail!("call {i} did not ring");
    };
    let incoming = callee
        .calls()
        .wait_for_call(None, Duration::from_secs(20))
        .await?
        .with_context(|| format!("call {i} never rang"))?;
    let answered = callee.calls().answer(&incoming).await?;
    let CallProgress::Connected(placed_side) =
        caller.calls().wait_for_answer(&placed, None).await?
    else {
        bail!("call {i} did not connect");
    };
    let pair = Pair {
        caller: Arc::new(caller),
        callee: Arc::new(callee),
    };
    Ok((pair, *placed_side, answered))
}

/// What one leg received.
#[derive(Default)]
struct Received {
    count: AtomicU64,
}

/// Sends a datagram every 20 ms on `link` with `leg`'s handle until `until`; each carries
/// its sequence number and send time (µs since `epoch`).
async fn send_leg(
    send: Box<dyn Fn(Vec<u8>) -> bool + Send + Sync>,
    leg: u32,
    payload: usize,
    epoch: Instant,
    until: Instant,
    sent: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut seq = 0u32;
    while Instant::now() < until {
        tick.tick().await;
        let mut body = Vec::with_capacity(payload.max(12));
        body.extend_from_slice(&seq.to_be_bytes());
        let micros = epoch.elapsed().as_micros() as u64;
        body.extend_from_slice(&micros.to_be_bytes());
        body.resize(payload.max(12), 0x5a);
        if send(voice_datagram(leg, &body)) {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        seq = seq.wrapping_add(1);
    }
}

/// Counts what arrives on `link` until `until`, recording each datagram's latency.
async fn receive_leg(
    mut receive: tokio::sync::mpsc::Receiver<Vec<u8>>,
    epoch: Instant,
    until: Instant,
    received: Arc<Received>,
    latency: Arc<std::sync::Mutex<Histogram<u64>>>,
) {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Some(datagram)) = tokio::time::timeout(left, receive.recv()).await else {
            return;
        };
        let Some(stamp) = datagram.get(8..16) else {
            continue;
        };
        let sent_us = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
        let now_us = epoch.elapsed().as_micros() as u64;
        received.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = latency.lock() {
            let _ = h.record(now_us.saturating_sub(sent_us).max(1));
        }
    }
}

async fn relay_mode(calls: Vec<usize>, seconds: u64, payload: usize) -> Result<()> {
    let relay = TestRelay::start_quiet(uchat_tests::MANY_USERS)?;
    let pid = relay.pid().context("relay pid")?;
    let home = tempfile::tempdir()?;
    let most = calls.iter().copied().max().unwrap_or(0);
    eprintln!(
        "setting up {most} calls (2 × {most} clients) on {}…",
        relay.addr
    );
    let mut set_up = Vec::new();
    for i in 0..most {
        set_up.push(connect_pair(&relay, home.path(), i).await?);
        if (i + 1) % 25 == 0 {
            eprintln!("  {} calls connected", i + 1);
        }
    }
    println!(
        "| concurrent calls | datagrams/s through the relay | lost | forwarding latency p50 / p99 / max | relay CPU (of one core) |"
    );
    println!("|---:|---:|---:|---|---:|");
    for &n in &calls {
        let epoch = Instant::now();
        let start = epoch + Duration::from_millis(200);
        let until = start + Duration::from_secs(seconds);
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(Received::default());
        let latency = Arc::new(std::sync::Mutex::new(histogram()?));
        let mut legs = tokio::task::JoinSet::new();
        for (i, (pair, caller_side, callee_side)) in set_up.iter().take(n).enumerate() {
            for (side, (client, leg)) in [
                (&pair.caller, caller_side.leg()),
                (&pair.callee, callee_side.leg()),
            ]
            .into_iter()
            .enumerate()
            {
                let DatagramLink { send, receive } = client.calls().datagram_link()?;
                let sent = sent.clone();
                // Real calls do not tick together: spread the legs over the 20 ms.
                let offset = FRAME_INTERVAL * (2 * i + side) as u32 / (2 * n) as u32;
                legs.spawn(async move {
                    tokio::time::sleep_until((start + offset).into()).await;
                    send_leg(send, leg, payload, epoch, until, sent).await;
                });
                legs.spawn(receive_leg(
                    receive,
                    epoch,
                    until + Duration::from_millis(500),
                    received.clone(),
                    latency.clone(),
                ));
            }
        }
        let cpu_before = cpu_seconds(pid);
        while let Some(done) = legs.join_next().await {
            done?;
        }
        let cpu = cpu_before
            .zip(cpu_seconds(pid))
            .map(|(a, b)| (b - a) / (seconds as f64 + 0.7));
        let (sent, got) = (
            sent.load(Ordering::Relaxed),
            received.count.load(Ordering::Relaxed),
        );
        let lost = 1.0 - got as f64 / sent.max(1) as f64;
        let h = latency
            .lock()
            .map_err(|_| anyhow::anyhow!("latency lock"))?;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {n} | {:.0} | {:.3} % ({} of {sent}) | {:.2} / {:.2} / {:.2} ms | {} |",
            sent as f64 / seconds as f64,
            lost * 100.0,
            sent.saturating_sub(got),
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0,
            cpu.map_or_else(|| "?".to_owned(), |c| format!("{:.0} %", c * 100.0)),
        );
    }
    for (pair, caller_side, _) in &set_up {
        let _ = pair.caller.calls().hang_up(caller_side.call).await;
    }
    Ok(())
}

async fn pipeline_mode(losses: Vec<f64>, seconds: f64) -> Result<()> {
    println!(
        "| loss | added latency (capture → playout) | mouth-to-ear estimate | correlation | FEC recovered | concealed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for loss in losses {
        let call = CallId([1; 16]);
        let (alice_pair, bob_pair) = (CallKeyPair::generate(), CallKeyPair::generate());
        let (alice_public, bob_public) = (alice_pair.public_bytes(), bob_pair.public_bytes());
        let alice_keys = alice_pair.agree(&bob_public, call, CallRole::Caller)?;
        let bob_keys = bob_pair.agree(&alice_public, call, CallRole::Callee)?;
        // A seeded, uniform loss decision per datagram.
        let threshold = (loss / 100.0 * u64::MAX as f64) as u64;
        let (alice_link, bob_link) = DatagramLink::pair(move |n| {
            let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) < threshold
        });
        // Both ends use the same leg handle: nothing rewrites it on this path.
        let settings = |end_after_input| MediaSettings {
            leg: 1,
            path: CallPath::Direct,
            silence_timeout: Duration::from_secs(5),
            end_after_input,
        };
        let voice = speech_like(seconds, 3);
        let heard = PcmOutput::default();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (_never, never_rx) = tokio::sync::watch::channel(false);
        let alice = tokio::spawn(run_media(
            alice_keys,
            settings(Some(Duration::from_millis(500))),
            alice_link,
            Box::new(PcmInput::new(voice.clone())),
            Box::new(Silence),
            |_| {},
            never_rx,
        ));
        let bob = tokio::spawn(run_media(
            bob_keys,
            settings(None),
            bob_link,
            Box::new(Silence),
            Box::new(heard.clone()),
            |_| {},
            stop_rx,
        ));
        alice.await??;
        let _ = stop_tx.send(true);
        let (_, summary) = bob.await??;
        let fit = align(&voice, &heard.samples(), 48_000);
        println!(
            "| {loss:.0} % | {:.1} ms | {} | {:.3} | {} | {} |",
            fit.lag as f64 / 48.0,
            summary
                .mouth_to_ear_ms
                .map_or_else(|| "?".to_owned(), |d| format!("{d:.1} ms")),
            fit.correlation,
            summary.fec_recovered,
            summary.concealed,
        );
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    uchat_tests::run_main("callbench", async {
        match args.command {
            Mode::Relay {
                calls,
                seconds,
                payload,
            } => relay_mode(calls, seconds, payload).await,
            Mode::Pipeline { loss, seconds } => pipeline_mode(loss, seconds).await,
        }
    });
}
