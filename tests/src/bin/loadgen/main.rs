//! `loadgen`: load tests of the relay in the shapes the peer baselines use (Prosody,
//! ejabberd, Mosquitto; `docs/performance.md` describes each shape), so the figures
//! compare side by side.
//!
//! ```text
//! loadgen SCENARIO [--mode real|wire] [--relay HOST:PORT --relay-fingerprint sha256:<hex> [--relay-pid PID]]
//!         [--clients N] [--rate N] [--seconds N] [--json]
//! SCENARIO: latency | throughput | rate | offline | idle | logins   (and: group, all)
//! ```
//!
//! Without `--relay` each scenario runs against a fresh `uchat-relay` process loadgen
//! starts itself (`relay`), whose CPU and memory it reads from /proc. `wire` mode (the
//! default) loads the relay alone with protocol-level clients sending opaque 256-byte
//! ciphertexts (`uchat_tests::wire_client`, all on one UDP socket); `real` mode runs the
//! real `uchat_peer::Client` end to end (Olm, a store per client) for `latency`,
//! `throughput`, `offline` and `group`, and refuses the others with exit code 2.
//!
//! Every message carries a header (`body`) by which the receiving side checks that each
//! one the relay acknowledged arrived exactly once and, where the relay promises an
//! order, in order; any loss, duplicate or reordering makes loadgen fail. Every wait is
//! bounded by a count and by `--time-limit`.
//!
//! Modules: `fleet` (the users in either mode), `relay` (the process and /proc),
//! `report` (JSON and human lines), one per scenario, and `mesh` (the 50×50 senders and
//! receivers `throughput` and `rate` share).

mod body;
mod fleet;
mod group;
mod idle;
mod latency;
mod logins;
mod mesh;
mod offline;
mod rate;
mod relay;
mod report;
mod throughput;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::relay::Relay;
use crate::report::Report;

/// Load tests of the relay in the shapes of the peer baselines.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "loadgen",
    about = "Load tests of the relay in the shapes of the peer baselines (latency, throughput, rate, offline, idle, logins)"
)]
struct Args {
    /// What to measure.
    scenario: Scenario,
    /// `wire`: protocol-level clients (the relay alone); `real`: the real client end to end.
    #[arg(long, value_enum, default_value_t = Mode::Wire)]
    mode: Mode,
    /// Load this relay ("HOST:PORT") instead of a fresh process of loadgen's own.
    #[arg(long, requires = "relay_fingerprint")]
    relay: Option<String>,
    /// The relay's certificate fingerprint ("sha256:<hex>"), with --relay.
    #[arg(long, requires = "relay")]
    relay_fingerprint: Option<String>,
    /// The relay's process id, with --relay, to read its CPU and memory.
    #[arg(long, requires = "relay")]
    relay_pid: Option<u32>,
    /// Connections (throughput, rate: 100, half senders; idle: 1000; logins: 50 accounts;
    /// group: 20 members).
    #[arg(long)]
    clients: Option<usize>,
    /// Offered rate of the rate scenario, messages/s.
    #[arg(long, default_value_t = 12_000)]
    rate: u64,
    /// Measured window of throughput and rate (10), and of each half of logins (5), s.
    #[arg(long)]
    seconds: Option<f64>,
    /// One JSON object per scenario on a line of its own.
    #[arg(long)]
    json: bool,
    /// Warm-up before the measured window of throughput and rate, s.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Measured round trips of latency.
    #[arg(long, default_value_t = 2_000)]
    count: u64,
    /// Warm-up round trips of latency.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Messages offline queues (group: each member's share of messages sent).
    #[arg(long)]
    messages: Option<u64>,
    /// Messages a sender may have in flight (sent, not yet received) in throughput, and
    /// sends offline keeps going at once.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// Messages a sender may have in flight in rate before more are skipped (`capped`).
    #[arg(long, default_value_t = 1_000)]
    cap: usize,
    /// Clients logging in at once (idle, logins).
    #[arg(long, default_value_t = 50)]
    parallel: usize,
    /// Idle: seconds the clients stay idle before the relay's memory is read.
    #[arg(long, default_value_t = 3.0)]
    idle_secs: f64,
    /// Give up on a scenario after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    time_limit: u64,
}

/// What to measure (`docs/performance.md` describes each shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Round trips A → B → A, one at a time.
    Latency,
    /// Closed loop: senders × receivers with a window of messages in flight.
    Throughput,
    /// Open loop at `--rate`, paced in 1 ms ticks.
    Rate,
    /// A queue of messages to a user with no connection, then its drain.
    Offline,
    /// Many logged-in idle connections: the relay's memory per client.
    Idle,
    /// Password and session-resume logins, 50 at a time.
    Logins,
    /// One sender to one group of `--clients` members (real mode).
    Group,
    /// Every one of the six in turn (the ones the mode supports), each on a fresh relay.
    All,
}

impl Scenario {
    const SIX: [Scenario; 6] = [
        Scenario::Latency,
        Scenario::Throughput,
        Scenario::Rate,
        Scenario::Offline,
        Scenario::Idle,
        Scenario::Logins,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Throughput => "throughput",
            Scenario::Rate => "rate",
            Scenario::Offline => "offline",
            Scenario::Idle => "idle",
            Scenario::Logins => "logins",
            Scenario::Group => "group",
            Scenario::All => "all",
        }
    }

    fn supports(self, mode: Mode) -> bool {
        match self {
            Scenario::Latency | Scenario::Throughput | Scenario::Offline => true,
            Scenario::Rate | Scenario::Idle | Scenario::Logins => mode == Mode::Wire,
            Scenario::Group => mode == Mode::Real,
            Scenario::All => true,
        }
    }
}

/// Which clients load the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Protocol-level clients with opaque ciphertexts: measures the relay alone.
    Wire,
    /// The real `uchat_peer::Client`, end to end.
    Real,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Wire => "wire",
            Mode::Real => "real",
        }
    }
}

/// The scenario asked for does not exist in this mode: exit code 2, no figures.
#[derive(Debug, thiserror::Error)]
#[error("scenario {scenario} is not implemented in {mode} mode")]
struct Unsupported {
    scenario: &'static str,
    mode: &'static str,
}

/// Microseconds since loadgen's clock started: the send time in every message header
/// (sender and receiver are in this one process).
fn clock_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// What every scenario gets: the arguments, with defaults resolved.
struct Ctx {
    args: Args,
}

impl Ctx {
    fn mode(&self) -> Mode {
        self.args.mode
    }

    fn clients_or(&self, default: usize) -> usize {
        self.args.clients.unwrap_or(default)
    }

    fn seconds_or(&self, default: f64) -> Duration {
        Duration::from_secs_f64(self.args.seconds.unwrap_or(default).max(0.001))
    }

    /// The overall bound on any one wait in a scenario.
    fn time_limit(&self) -> Duration {
        Duration::from_secs(self.args.time_limit)
    }

    /// A report with the fields every scenario fills the same way.
    fn report(&self, scenario: Scenario, clients: usize) -> Report {
        Report {
            scenario: scenario.name(),
            mode: self.mode().name(),
            clients,
            ..Report::default()
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    clock_us();
    let scenarios: Vec<Scenario> = match args.scenario {
        Scenario::All => Scenario::SIX
            .into_iter()
            .filter(|s| s.supports(args.mode))
            .collect(),
        one if !one.supports(args.mode) => {
            return Err(Unsupported {
                scenario: one.name(),
                mode: args.mode.name(),
            }
            .into());
        }
        one => vec![one],
    };
    let ctx = Ctx { args };
    for scenario in scenarios {
        let mut relay = match &ctx.args.relay {
            Some(addr) => Relay::external(
                addr,
                ctx.args.relay_fingerprint.as_deref().unwrap_or_default(),
                ctx.args.relay_pid,
            )?,
            None => Relay::start()?,
        };
        if !ctx.args.json {
            eprintln!(
                "loadgen: {} ({} mode) against {}",
                scenario.name(),
                ctx.mode().name(),
                relay.addr
            );
        }
        let outcome = tokio::time::timeout(ctx.time_limit(), run_one(&ctx, scenario, &mut relay))
            .await
            .with_context(|| {
                format!(
                    "{} did not finish within --time-limit {} s",
                    scenario.name(),
                    ctx.args.time_limit
                )
            });
        relay.stop();
        let report = outcome??;
        if ctx.args.json {
            println!("{}", report.json());
        } else {
            println!("{}", report.human());
        }
    }
    Ok(())
}

async fn run_one(ctx: &Ctx, scenario: Scenario, relay: &mut Relay) -> Result<Report> {
    match scenario {
        Scenario::Latency => latency::run(ctx, relay).await,
        Scenario::Throughput => throughput::run(ctx, relay).await,
        Scenario::Rate => rate::run(ctx, relay).await,
        Scenario::Offline => offline::run(ctx, relay).await,
        Scenario::Idle => idle::run(ctx, relay).await,
        Scenario::Logins => logins::run(ctx, relay).await,
        Scenario::Group => group::run(ctx, relay).await,
        Scenario::All => bail!("`all` is expanded before it runs"),
    }
}

fn main() {
    let args = Args::parse();
    let failure = uchat_tests::Failure {
        json: args.json,
        exit_code: |e| {
            if e.downcast_ref::<Unsupported>().is_some() {
                2
            } else {
                1
            }
        },
    };
    uchat_tests::run_main_with("loadgen", failure, run(args));
}
