//! `soak`: does the relay's memory stay flat under a long stretch of ordinary use?
//! (issue #19)
//!
//! It starts the real `uchat-relay` binary as its own process, puts a netsim path with
//! the `lossy` profile (50 ms ± 20 ms each way, 5 % loss) between every client and the
//! relay, and drives mixed traffic from `--clients` real `uchat_peer::Client`s, each
//! with its own profile directory and redb store and Olm end to end: 1:1 messages
//! between friends, group messages in a few groups, small file transfers (upload, then
//! the recipient's download), moments (posts, likes, comments, feed pages, and authors
//! deleting their oldest posts so the relay's data stays about the same size), presence
//! queries, profile changes, and clients going offline and coming back (closing their
//! client and opening the profile again). Operations start at a steady `--rate` per
//! second, far below what the relay can do, so what the run shows is memory, not
//! overload.
//!
//! Every second it samples the relay process from /proc: resident memory (`VmRSS`),
//! open file descriptors (entries of `/proc/PID/fd`), CPU time, and the size of its redb
//! file, with the operations done and failed. It writes them to `soak.csv` in `--out`
//! and draws `soak.png`.
//!
//! The verdict (`verdict.rs`) comes from the data: the first third of the run is the
//! warm-up; RSS is flat when the last third's mean is at most 5 % above the middle
//! third's, descriptors when the last third's highest count is at most 4 above the
//! middle third's. The run also fails if no operation finished for 60 s, if no message
//! moved, or if, once the traffic stops and every client is online again, a message the
//! relay acknowledged never arrived or arrived twice. Any failure exits nonzero.
//!
//! Every loop is bounded: the traffic by `--minutes`, each operation by a timeout, the
//! drain by a fixed deadline. What it does not do: place calls (`callbench` covers the
//! voice path), or restart the relay.
//!
//! Modules: `mix` (kinds of operation and the seeded dice), `setup` (registration,
//! friendships, groups), `shared` (state the tasks share), `clients` (listeners,
//! closing and reopening), `jobs` (one operation), `drive` (the driver and the drain),
//! `ledger` (the delivery check), `sampler` (the samples, read with `uchat_tests::procfs`), `samples` (the
//! CSV), `verdict`, `plot`, `report`.

mod clients;
mod drive;
mod jobs;
mod ledger;
mod mix;
mod plot;
mod report;
mod sampler;
mod samples;
mod setup;
mod shared;
mod verdict;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::time::Instant;
use uchat_netsim::Topology;
use uchat_tests::TestRelay;

use crate::clients::close_all;
use crate::drive::{drain, drive};
use crate::report::{Summary, report};
use crate::setup::{Setup, set_up};
use crate::shared::{DRAIN_LIMIT, OP_TIMEOUT, SoakWorld, add_counters, lock};
use crate::verdict::{failures, figures, mib};

/// Mixed traffic through a lossy path for a long while; relay memory and descriptors
/// sampled every second.
#[derive(Parser, Debug)]
#[command(name = "soak", about)]
pub(crate) struct Args {
    /// Minutes of traffic (fractions allowed, for short trials)
    #[arg(long, default_value_t = 30.0)]
    pub(crate) minutes: f64,
    /// Clients, each with its own profile directory and its own netsim path
    #[arg(long, default_value_t = 30)]
    pub(crate) clients: usize,
    /// Operations started per second, all clients together
    #[arg(long, default_value_t = 30.0)]
    pub(crate) rate: f64,
    /// Groups, each of --group-size clients who are all friends
    #[arg(long, default_value_t = 3)]
    pub(crate) groups: usize,
    /// Members per group
    #[arg(long, default_value_t = 6)]
    pub(crate) group_size: usize,
    /// The netsim profile between each client and the relay
    #[arg(long, default_value = "lossy")]
    pub(crate) profile: String,
    /// Seed of the paths' randomness and of every choice the traffic makes
    #[arg(long, default_value_t = 19)]
    pub(crate) seed: u64,
    /// Directory for soak.csv and soak.png (made if needed)
    #[arg(long, default_value = "soak-out")]
    pub(crate) out: PathBuf,
    /// Also write everything the relay printed (warnings and errors) to this file
    #[arg(long)]
    pub(crate) relay_log: Option<PathBuf>,
    /// Print one JSON summary line on stdout instead of the text report
    #[arg(long)]
    pub(crate) json: bool,
    /// Run nothing: draw soak.png again from the soak.csv in --out (figures from the
    /// samples only)
    #[arg(long)]
    pub(crate) replot: bool,
}

/// Runs the soak (or, with `--replot`, only draws the plot again).
async fn run(args: Args) -> Result<()> {
    if args.clients < 5 || args.rate <= 0.0 || args.minutes <= 0.0 {
        bail!("need at least 5 clients, a positive --rate and positive --minutes");
    }
    if args.group_size < 2 || args.group_size > args.clients {
        bail!("--group-size must be between 2 and --clients");
    }
    if args.replot {
        let samples = samples::read_csv(&args.out.join("soak.csv"))?;
        let minutes = samples.last().map_or(0.0, |s| s.t_s / 60.0);
        let figures = figures(&samples)?;
        let summary = Summary::new(
            minutes,
            args.clients,
            args.rate,
            &args.profile,
            args.seed,
            figures,
        );
        let png = args.out.join("soak.png");
        plot::draw_png(&png, &samples, &summary)?;
        println!("redrew {} from {} samples", png.display(), samples.len());
        return Ok(());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot make {}", args.out.display()))?;
    let scratch = tempfile::tempdir()?;
    // Every client reaches the relay from 127.0.0.1 here, where real users would come
    // from addresses of their own: MANY_USERS lifts the per-address limits.
    let mut relay = TestRelay::start_quiet(uchat_tests::MANY_USERS)?;
    eprintln!(
        "relay pid {} on {}; registering {} clients through netsim '{}'…",
        relay.pid().unwrap_or(0),
        relay.addr,
        args.clients,
        args.profile
    );
    let rss_idle_mib = mib(relay.rss_kib()? as f64);
    let mut topology = Topology::new(args.seed);
    let setup_started = Instant::now();
    let Setup {
        clients,
        options,
        partners,
        groups,
    } = set_up(&args, &relay, &mut topology, scratch.path()).await?;
    eprintln!(
        "set up in {:.0} s; relay RSS {:.1} MiB; {:.1} min of traffic at {}/s…",
        setup_started.elapsed().as_secs_f64(),
        mib(relay.rss_kib()? as f64),
        args.minutes,
        args.rate
    );
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.minutes * 60.0);
    let shared = SoakWorld::new(
        clients,
        options,
        partners,
        groups,
        scratch.path().join("files"),
        until + DRAIN_LIMIT + OP_TIMEOUT + Duration::from_secs(60),
    )
    .await;
    let driver = tokio::spawn(drive(shared.clone(), args.rate, args.seed, until));
    let (samples, crashed) = sampler::sample(&mut relay, &shared, start, until).await;
    if crashed.is_some() {
        driver.abort();
    }
    let _ = driver.await;
    let figures = figures(&samples)?;
    let mut summary = Summary::new(
        args.minutes,
        args.clients,
        args.rate,
        &args.profile,
        args.seed,
        figures,
    );
    add_counters(&mut summary, &shared);
    summary.rss_idle_mib = rss_idle_mib;
    summary.relay_crashed = crashed;
    if summary.relay_crashed.is_none() {
        eprintln!("traffic done; waiting for every message to arrive…");
        summary.drain_s = drain(&shared).await;
    }
    summary.delivery = lock(&shared.ledger).check();
    let log = relay.log();
    summary.relay_log_lines = log.lines().count();
    summary.relay_log_errors = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("panic"))
        .count();
    summary.failures = failures(
        &summary.figures,
        &summary.delivery,
        summary.relay_crashed.as_deref(),
    );
    if let Some(path) = &args.relay_log {
        std::fs::write(path, &log).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let csv = args.out.join("soak.csv");
    let png = args.out.join("soak.png");
    samples::write_csv(&csv, &samples)?;
    plot::draw_png(&png, &samples, &summary)?;
    // Close every client before the relay stops, so none waits on a dead connection.
    close_all(&shared).await;
    topology.shutdown().await;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", report(&summary, &csv, &png));
    }
    if let Some(crash) = &summary.relay_crashed {
        eprintln!(
            "the relay stopped ({crash}); its log ends:\n{}",
            tail(&log, 40)
        );
    }
    if !summary.failures.is_empty() {
        bail!("the soak failed: {}", summary.failures.join("; "));
    }
    Ok(())
}

/// The last `lines` lines of `log`.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn main() {
    let args = Args::parse();
    let failure = uchat_tests::Failure {
        json: args.json,
        ..Default::default()
    };
    uchat_tests::run_main_with("soak", failure, run(args));
}
