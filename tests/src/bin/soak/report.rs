//! The run's summary (printed as text, or as one JSON line with `--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::ledger::Delivery;
use crate::verdict::Figures;

/// Everything the run found: what ran, the samples' figures, the traffic's counters,
/// the delivery check and the relay's log.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Summary {
    /// `"soak"`, for readers of the JSON line.
    pub(crate) r#type: &'static str,
    /// Minutes of traffic.
    pub(crate) minutes: f64,
    /// How many clients ran (`--clients`), each with its own profile and netsim path.
    pub(crate) clients: usize,
    /// Operations started per second.
    pub(crate) rate_per_s: f64,
    /// The netsim profile of every client's path.
    pub(crate) profile: String,
    /// The seed of the paths and the traffic.
    pub(crate) seed: u64,
    /// Relay RSS right after it started, before any client.
    pub(crate) rss_idle_mib: f64,
    /// What the samples say.
    #[serde(flatten)]
    pub(crate) figures: Figures,
    /// Done and failed, by kind of operation.
    pub(crate) ops_by_kind: BTreeMap<&'static str, (u64, u64)>,
    /// The commonest failures, most frequent first.
    pub(crate) top_errors: Vec<(String, u64)>,
    /// Ticks whose client was busy or offline.
    pub(crate) skipped_busy: u64,
    /// Ticks skipped because too many operations were running.
    pub(crate) skipped_saturated: u64,
    /// Connections that dropped under a client.
    pub(crate) disconnects: u64,
    /// Events lagging listeners missed.
    pub(crate) lagged_events: u64,
    /// Files never downloaded because too many waited.
    pub(crate) downloads_dropped: u64,
    /// The delivery check.
    pub(crate) delivery: Delivery,
    /// Seconds the drain after the traffic took.
    pub(crate) drain_s: f64,
    /// Why the relay stopped, if it did.
    pub(crate) relay_crashed: Option<String>,
    /// Lines the relay logged (warnings and errors only).
    pub(crate) relay_log_lines: usize,
    /// Of those, lines with ERROR or a panic.
    pub(crate) relay_log_errors: usize,
    /// Why the run failed; empty when it passed.
    pub(crate) failures: Vec<String>,
}

impl Summary {
    /// A summary of the run's settings and its samples' figures; the counters, the
    /// delivery check and the verdict are filled in later.
    pub(crate) fn new(
        minutes: f64,
        clients: usize,
        rate_per_s: f64,
        profile: &str,
        seed: u64,
        figures: Figures,
    ) -> Summary {
        Summary {
            r#type: "soak",
            minutes,
            clients,
            rate_per_s,
            profile: profile.to_owned(),
            seed,
            rss_idle_mib: 0.0,
            figures,
            ops_by_kind: BTreeMap::new(),
            top_errors: Vec::new(),
            skipped_busy: 0,
            skipped_saturated: 0,
            disconnects: 0,
            lagged_events: 0,
            downloads_dropped: 0,
            delivery: Delivery::default(),
            drain_s: 0.0,
            relay_crashed: None,
            relay_log_lines: 0,
            relay_log_errors: 0,
            failures: Vec::new(),
        }
    }
}

/// The summary as lines of text.
pub(crate) fn report(summary: &Summary, csv: &Path, png: &Path) -> String {
    let s = summary;
    let f = &summary.figures;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "soak: {} clients, {:.1} min through netsim '{}' (seed {}), {} operations ({:.1}/s), {} failed",
        s.clients, s.minutes, s.profile, s.seed, f.ops, f.ops_per_s, f.errors
    );
    let _ = writeln!(
        out,
        "relay RSS: {:.1} MiB idle, {:.1} MiB when the traffic started, {:.1} MiB after the {:.1}-min warm-up, {:.1} MiB at the end, peak {:.1} MiB",
        s.rss_idle_mib,
        f.rss_start_mib,
        f.rss_after_warmup_mib,
        f.warmup_minutes,
        f.rss_end_mib,
        f.rss_peak_mib
    );
    let _ = writeln!(
        out,
        "relay RSS mean: middle third {:.2} MiB, last third {:.2} MiB: {:+.2} MiB ({:+.2} %), slope after warm-up {:+.1} MiB/h: {}",
        f.rss_middle_mean_mib,
        f.rss_last_mean_mib,
        f.rss_growth_mib,
        f.rss_growth_pct,
        f.rss_slope_mib_per_hour,
        if f.rss_flat { "flat" } else { "NOT flat" }
    );
    let _ = writeln!(
        out,
        "relay fds: {}–{} during warm-up, {}–{} after (max middle {}, last {}): {}",
        f.fd_warmup_range.0,
        f.fd_warmup_range.1,
        f.fd_after_warmup_range.0,
        f.fd_after_warmup_range.1,
        f.fd_middle_max,
        f.fd_last_max,
        if f.fds_flat { "flat" } else { "NOT flat" }
    );
    let _ = writeln!(
        out,
        "relay CPU: mean {:.1} %, max {:.1} % of one core; machine load average {:.2}; relay.redb {:.1} → {:.1} MiB ({:+.2} MiB last third against middle)",
        f.relay_cpu_mean_pct,
        f.relay_cpu_max_pct,
        f.load1_mean,
        f.db_start_mib,
        f.db_end_mib,
        f.db_growth_mib
    );
    let kinds: Vec<String> = s
        .ops_by_kind
        .iter()
        .filter(|(_, (d, f))| d + f > 0)
        .map(|(k, (d, f))| format!("{k} {d}/{f}"))
        .collect();
    let _ = writeln!(out, "operations done/failed: {}", kinds.join(", "));
    let _ = writeln!(
        out,
        "ticks skipped: {} (client busy or offline), {} (too many in flight); {} connection drops, {} events missed by lagging listeners, {} downloads dropped",
        s.skipped_busy, s.skipped_saturated, s.disconnects, s.lagged_events, s.downloads_dropped
    );
    let d = &s.delivery;
    let _ = writeln!(
        out,
        "messages: {} sent, {} acknowledged by the relay; deliveries: {} expected, {} arrived once, {} more than once, {} acknowledged but missing, {} queued and missing, {} arrived after a failed send, {} undecryptable (drain {:.0} s)",
        d.sent,
        d.acked,
        d.expected,
        d.once,
        d.duplicated,
        d.missing_acked,
        d.missing_queued,
        d.unexpected,
        d.undecryptable,
        s.drain_s
    );
    for (error, count) in &s.top_errors {
        let _ = writeln!(out, "  failed {count}×: {error}");
    }
    let _ = writeln!(
        out,
        "relay log: {} lines, {} with ERROR or panic{}",
        s.relay_log_lines,
        s.relay_log_errors,
        s.relay_crashed
            .as_ref()
            .map(|c| format!("; RELAY CRASHED: {c}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "longest time without an operation finishing: {:.0} s",
        f.longest_stall_s
    );
    let _ = writeln!(out, "wrote {} and {}", csv.display(), png.display());
    if s.failures.is_empty() {
        let _ = writeln!(
            out,
            "PASS: relay RSS and descriptors flat after the warm-up, traffic never stopped, nothing acknowledged lost"
        );
    }
    for why in &s.failures {
        let _ = writeln!(out, "FAIL: {why}");
    }
    out
}
