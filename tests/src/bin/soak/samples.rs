//! One second's sample of the relay and the traffic, and the CSV the samples are kept in
//! (`soak.csv`, one line a second, read back by `--replot`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow};

/// One second's sample of the relay and the traffic.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the traffic started.
    pub(crate) t_s: f64,
    /// The relay's resident memory (`VmRSS`), KiB.
    pub(crate) rss_kib: u64,
    /// The relay's open file descriptors.
    pub(crate) fds: u64,
    /// Relay CPU over the last second, percent of one core.
    pub(crate) cpu_pct: f64,
    /// The relay's redb file, bytes.
    pub(crate) db_bytes: u64,
    /// Operations done so far.
    pub(crate) ops: u64,
    /// Operations failed so far.
    pub(crate) errors: u64,
    /// Operations running.
    pub(crate) in_flight: usize,
    /// Clients closed on purpose (going offline).
    pub(crate) offline: usize,
    /// The machine's one-minute load average (the box is shared).
    pub(crate) load1: f64,
}

/// The CSV's first line.
const HEADER: &str =
    "t_s,rss_kib,fds,relay_cpu_pct,relay_db_bytes,ops,errors,in_flight,offline,load1";

/// The samples as CSV text, a header line first.
pub(crate) fn to_csv(samples: &[Sample]) -> String {
    let mut csv = format!("{HEADER}\n");
    for s in samples {
        let _ = writeln!(
            csv,
            "{:.1},{},{},{:.1},{},{},{},{},{},{:.2}",
            s.t_s,
            s.rss_kib,
            s.fds,
            s.cpu_pct,
            s.db_bytes,
            s.ops,
            s.errors,
            s.in_flight,
            s.offline,
            s.load1
        );
    }
    csv
}

/// Samples from CSV text written by `to_csv`.
pub(crate) fn from_csv(text: &str) -> Result<Vec<Sample>> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(anyhow!("not a soak.csv: the first line is not `{HEADER}`"));
    }
    lines
        .enumerate()
        .map(|(n, line)| parse_line(line).with_context(|| format!("line {}", n + 2)))
        .collect()
}

fn parse_line(line: &str) -> Result<Sample> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 10 {
        return Err(anyhow!("{} fields, not 10", f.len()));
    }
    Ok(Sample {
        t_s: f[0].parse()?,
        rss_kib: f[1].parse()?,
        fds: f[2].parse()?,
        cpu_pct: f[3].parse()?,
        db_bytes: f[4].parse()?,
        ops: f[5].parse()?,
        errors: f[6].parse()?,
        in_flight: f[7].parse()?,
        offline: f[8].parse()?,
        load1: f[9].parse()?,
    })
}

/// Reads back a `soak.csv` (for `--replot`).
pub(crate) fn read_csv(path: &Path) -> Result<Vec<Sample>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_csv(&text).with_context(|| path.display().to_string())
}

/// Writes the samples to `path` as CSV.
pub(crate) fn write_csv(path: &Path, samples: &[Sample]) -> Result<()> {
    std::fs::write(path, to_csv(samples))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_come_back_from_their_csv() {
        let samples: Vec<Sample> = (0..3u32)
            .map(|i| Sample {
                t_s: f64::from(i) + 0.5,
                rss_kib: 20_000 + u64::from(i),
                fds: 40,
                cpu_pct: 12.5,
                db_bytes: 1 << 20,
                ops: 30 * u64::from(i),
                errors: 1,
                in_flight: 3,
                offline: 2,
                load1: 1.25,
            })
            .collect();
        assert_eq!(from_csv(&to_csv(&samples)).expect("parses"), samples);
    }

    #[test]
    fn a_damaged_csv_is_refused() {
        assert!(from_csv("t,rss\n1,2\n").is_err());
        let short = format!("{HEADER}\n1.0,2,3\n");
        assert!(from_csv(&short).is_err());
        let word = format!("{HEADER}\n1.0,many,3,0,0,0,0,0,0,0\n");
        assert!(from_csv(&word).is_err());
    }
}
