//! One scenario's result: the `--json` line (the command-line contract's fields, kept in a type of
//! its own so that the contract cannot change by accident) and the human lines.

use hdrhistogram::Histogram;
use serde::Serialize;

/// What one scenario measured. Fields that do not apply to it are `null` in JSON.
#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct Report {
    /// The scenario's name.
    pub(crate) scenario: &'static str,
    /// "wire" or "real".
    pub(crate) mode: &'static str,
    /// Connections the scenario held.
    pub(crate) clients: usize,
    /// Messages (latency: round trips; logins: logins) counted in the measured window.
    pub(crate) messages: u64,
    /// Length of the measured window, s.
    pub(crate) seconds: f64,
    /// `messages` per second of the window.
    pub(crate) msgs_per_s: f64,
    /// Latency percentiles of the scenario's latency (see each scenario), ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999_ms: Option<f64>,
    /// The relay process's CPU over the window, % of one core.
    pub(crate) relay_cpu_pct: Option<f64>,
    /// The relay process's resident memory at the window's end, MiB.
    pub(crate) relay_rss_mib: Option<f64>,
    /// offline: messages queued per second until the relay acknowledged the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store_msgs_per_s: Option<f64>,
    /// offline: s from the recipient's connect to its last message received and
    /// acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) drain_s: Option<f64>,
    /// idle: (RSS with the clients - RSS before them) / clients, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay_rss_per_client_kib: Option<f64>,
    /// logins: session-resume logins per second (connect, `Hello`, `Resume`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) logins_per_s: Option<f64>,
    /// logins: password logins per second (connect, `Hello`, `Login`: an argon2 check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) password_logins_per_s: Option<f64>,
    /// logins: password login time, p50, ms (the p*_ms fields are the resume logins').
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_p50_ms: Option<f64>,
    /// logins: password login time, p99, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_p99_ms: Option<f64>,
    /// rate: the offered rate, messages/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offered_per_s: Option<u64>,
    /// rate: messages not sent because their sender had too many in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) capped: Option<u64>,
}

impl Report {
    /// Sets how many messages the scenario counted over how many seconds, and the rate
    /// that makes (`msgs_per_s` is never set apart from them).
    pub(crate) fn set_count(&mut self, messages: u64, seconds: f64) {
        self.messages = messages;
        self.seconds = seconds;
        self.msgs_per_s = if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        };
    }

    /// Sets the latency percentiles from a histogram of microseconds.
    pub(crate) fn set_latency(&mut self, histogram: &Histogram<u64>) {
        if histogram.is_empty() {
            return;
        }
        self.p50_ms = Some(ms(histogram, 0.5));
        self.p99_ms = Some(ms(histogram, 0.99));
        self.p999_ms = Some(ms(histogram, 0.999));
    }

    /// The `--json` line.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"message\":\"{e}\"}}"))
    }

    /// A short line for people.
    pub(crate) fn human(&self) -> String {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
        let mut line = format!(
            "{:<10} {:<4} clients {:>6}  messages {:>8} in {:>6.2} s  {:>9.0}/s  p50 {} p99 {} p99.9 {}  relay cpu {} rss {}",
            self.scenario,
            self.mode,
            self.clients,
            self.messages,
            self.seconds,
            self.msgs_per_s,
            opt(self.p50_ms, " ms"),
            opt(self.p99_ms, " ms"),
            opt(self.p999_ms, " ms"),
            opt(self.relay_cpu_pct, " %"),
            opt(self.relay_rss_mib, " MiB"),
        );
        let extras = [
            ("store", self.store_msgs_per_s, "/s"),
            ("drain", self.drain_s, " s"),
            ("rss/client", self.relay_rss_per_client_kib, " KiB"),
            ("resume logins", self.logins_per_s, "/s"),
            ("password logins", self.password_logins_per_s, "/s"),
            ("password p50", self.password_p50_ms, " ms"),
            ("password p99", self.password_p99_ms, " ms"),
        ];
        for (name, value, unit) in extras {
            if let Some(value) = value {
                line.push_str(&format!("  {name} {value:.2}{unit}"));
            }
        }
        if let Some(offered) = self.offered_per_s {
            line.push_str(&format!("  offered {offered}/s"));
        }
        if let Some(capped) = self.capped {
            line.push_str(&format!("  capped {capped}"));
        }
        line
    }
}

/// A histogram of microseconds, 1 µs to 10 minutes, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("fixed, valid bounds")
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}
