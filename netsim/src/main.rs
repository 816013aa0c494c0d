//! `uchat-netsim`: runs one impaired UDP path until Ctrl-C (`proxy`), or lists the named
//! network profiles (`profiles`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use uchat_netsim::model::link::LinkConfig;
use uchat_netsim::model::loss::GilbertElliott;
use uchat_netsim::model::nat::NatKind;
use uchat_netsim::model::profile::{profile, profiles};
use uchat_netsim::{PathConfig, Proxy};

/// Network simulator: puts latency, jitter, loss, reordering, a rate limit, an MTU and NAT
/// behaviour between UDP endpoints on this machine.
#[derive(Parser, Debug)]
#[command(name = "uchat-netsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Forward UDP from --listen to --upstream through an impaired path until Ctrl-C
    Proxy(Box<ProxyArgs>),
    /// List the named profiles and their figures
    Profiles,
    /// Measure the simulator's own overhead: datagrams/s forwarded with no impairment and
    /// the latency added at that rate, against plain loopback UDP
    Bench {
        /// Seconds per measurement (direct, then proxied)
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Datagrams kept in flight
        #[arg(long, default_value_t = 32)]
        window: usize,
    },
}

/// Impairments given on the command line apply to both directions and override the
/// profile's.
#[derive(clap::Args, Debug)]
struct ProxyArgs {
    /// Address clients send to
    #[arg(long)]
    listen: SocketAddr,
    /// Address datagrams are forwarded to
    #[arg(long)]
    upstream: SocketAddr,
    /// Start from a named profile (see `uchat-netsim profiles`)
    #[arg(long)]
    profile: Option<String>,
    /// One-way latency in milliseconds
    #[arg(long)]
    latency: Option<f64>,
    /// Jitter in milliseconds (each datagram's delay varies by up to ± this)
    #[arg(long)]
    jitter: Option<f64>,
    /// Random loss in percent
    #[arg(long)]
    loss: Option<f64>,
    /// Bursty loss: Gilbert–Elliott transition probabilities P_GB,P_BG (0..1)
    #[arg(long, value_name = "P_GB,P_BG")]
    burst_loss: Option<String>,
    /// Reordering in percent
    #[arg(long)]
    reorder: Option<f64>,
    /// Duplication in percent
    #[arg(long)]
    duplicate: Option<f64>,
    /// Rate limit in kbit/s
    #[arg(long)]
    rate: Option<u64>,
    /// Largest datagram in bytes (larger ones are dropped)
    #[arg(long)]
    mtu: Option<usize>,
    /// NAT the clients sit behind
    #[arg(long, default_value = "none")]
    nat: NatKind,
    /// Seconds an unused NAT mapping lives (RFC 4787 asks for at least 120)
    #[arg(long, default_value_t = 120)]
    nat_timeout: u64,
    /// Seed of every random choice (same seed, same input: same drops and delays)
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn millis(ms: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0)
        .with_context(|| format!("{flag} takes milliseconds ≥ 0, got {ms}"))
}

fn percent(pct: f64, flag: &str) -> Result<f64> {
    if !(0.0..=100.0).contains(&pct) {
        bail!("{flag} takes a percentage from 0 to 100, got {pct}");
    }
    Ok(pct / 100.0)
}

fn burst(spec: &str) -> Result<GilbertElliott> {
    let (gb, bg) = spec
        .split_once(',')
        .with_context(|| format!("--burst-loss takes P_GB,P_BG, got {spec:?}"))?;
    let parse = |s: &str| -> Result<f64> {
        let p: f64 = s
            .trim()
            .parse()
            .with_context(|| format!("--burst-loss: {s:?} is not a number"))?;
        if !(0.0..=1.0).contains(&p) {
            bail!("--burst-loss probabilities are from 0 to 1, got {p}");
        }
        Ok(p)
    };
    Ok(GilbertElliott::new(parse(gb)?, parse(bg)?))
}

/// Applies the command line's impairments on top of `link`.
fn apply(args: &ProxyArgs, mut link: LinkConfig) -> Result<LinkConfig> {
    if let Some(ms) = args.latency {
        link.latency = millis(ms, "--latency")?;
    }
    if let Some(ms) = args.jitter {
        link.jitter = millis(ms, "--jitter")?;
    }
    if let Some(pct) = args.loss {
        link.loss = percent(pct, "--loss")?;
    }
    if let Some(spec) = &args.burst_loss {
        link.burst_loss = Some(burst(spec)?);
    }
    if let Some(pct) = args.reorder {
        link.reorder = percent(pct, "--reorder")?;
    }
    if let Some(pct) = args.duplicate {
        link.duplicate = percent(pct, "--duplicate")?;
    }
    if let Some(kbit) = args.rate {
        if kbit == 0 {
            bail!("--rate must be at least 1 kbit/s");
        }
        link.rate_bits_per_sec = Some(
            kbit.checked_mul(1000)
                .with_context(|| format!("--rate {kbit} kbit/s is too large"))?,
        );
    }
    if let Some(mtu) = args.mtu {
        link.mtu = Some(mtu);
    }
    link.validate().context("invalid path")?;
    Ok(link)
}

async fn proxy(args: ProxyArgs) -> Result<()> {
    let (up, down) = match &args.profile {
        Some(name) => {
            let p = profile(name).with_context(|| {
                let names: Vec<_> = profiles().iter().map(|p| p.name).collect();
                format!("no profile named {name:?}; try one of {}", names.join(", "))
            })?;
            (p.up, p.down)
        }
        None => (LinkConfig::default(), LinkConfig::default()),
    };
    let config = PathConfig {
        up: apply(&args, up)?,
        down: apply(&args, down)?,
        nat: args.nat,
        nat_timeout: Duration::from_secs(args.nat_timeout),
        seed: args.seed,
    };
    let proxy = Proxy::spawn(args.listen, args.upstream, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "uchat-netsim proxy listening on {} forwarding to {} (profile {}, nat {}, seed {})",
        proxy.local_addr(),
        args.upstream,
        args.profile.as_deref().unwrap_or("none"),
        args.nat,
        args.seed
    );
    wait_for_stop().await?;
    println!("{}", proxy.stats());
    proxy.shutdown().await;
    Ok(())
}

async fn wait_for_stop() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

async fn bench(seconds: f64, window: usize) -> Result<()> {
    let duration = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero() && d.as_secs() <= 600)
        .with_context(|| {
            format!("--seconds takes a number above 0 and up to 600, got {seconds}")
        })?;
    anyhow::ensure!(
        (1..=10_000).contains(&window),
        "--window takes 1 to 10000, got {window}"
    );
    let report = uchat_netsim::bench::run(duration, window)
        .await
        .context("benchmark failed")?;
    println!("{report}");
    Ok(())
}

fn print_profiles() {
    use std::io::Write;
    // Write errors (a closed pipe, as with `| head`) just end the listing.
    let mut out = std::io::stdout().lock();
    for p in profiles() {
        let _ = writeln!(out, "{:<10} {}", p.name, p.description)
            .and_then(|()| writeln!(out, "{:<10}   up:   {}", "", describe(&p.up)))
            .and_then(|()| writeln!(out, "{:<10}   down: {}", "", describe(&p.down)));
    }
}

fn describe(link: &LinkConfig) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut parts = vec![format!("{} ms ± {} ms", ms(link.latency), ms(link.jitter))];
    parts.push(format!("loss {:.1} %", link.loss * 100.0));
    if let Some(b) = &link.burst_loss {
        parts.push(format!("burst loss {:.1} % mean", b.mean_loss() * 100.0));
    }
    if let Some(rate) = link.rate_bits_per_sec {
        parts.push(format!("{} kbit/s", rate / 1000));
    }
    if let Some(mtu) = link.mtu {
        parts.push(format!("mtu {mtu}"));
    }
    parts.join(", ")
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Profiles => {
            print_profiles();
            Ok(())
        }
        Command::Proxy(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(proxy(*args)),
            Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
        },
        Command::Bench { seconds, window } => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(bench(seconds, window)),
            Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
        },
    };
    if let Err(e) = result {
        eprintln!("uchat-netsim: {e:#}");
        std::process::exit(1);
    }
}
