//! Reading a process's figures from Linux's /proc: the parsers are pure functions of the
//! files' text, so they are tested on fixed lines.

use anyhow::{Context, Result};

/// Clock ticks per second in /proc/PID/stat (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_S: f64 = 100.0;

/// Resident memory in KiB from the text of /proc/PID/status (its `VmRSS:` line).
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// CPU seconds (user + system) from the text of /proc/PID/stat. The command name in
/// parentheses may hold spaces and parentheses, so fields count from the last `)`.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Field 3 (state) is the first after the name; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

/// The one-minute load average from the text of /proc/loadavg.
pub fn load1(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// A process's figures of one moment.
pub struct Reading {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Entries of /proc/PID/fd.
    pub fds: u64,
    /// CPU seconds used so far (None if /proc/PID/stat did not parse).
    pub cpu_s: Option<f64>,
}

/// Reads process `pid`'s memory, descriptors and CPU time; an error once it is gone.
pub fn read(pid: u32) -> Result<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let rss_kib = vm_rss_kib(&status).context("no VmRSS line in /proc/PID/status")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("cannot list /proc/{pid}/fd"))?
        .count() as u64;
    let cpu_s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cpu_seconds(&s));
    Ok(Reading {
        rss_kib,
        fds,
        cpu_s,
    })
}

/// The machine's one-minute load average (0 if unreadable).
pub fn machine_load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| load1(&l))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_its_line() {
        let status =
            "Name:\tuchat-relay\nVmPeak:\t  99999 kB\nVmRSS:\t   23456 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(vm_rss_kib(status), Some(23456));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
        assert_eq!(vm_rss_kib("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn cpu_counts_from_the_last_parenthesis() {
        // A name with a space and a parenthesis; utime 250 and stime 50 ticks.
        let stat = "4242 (uchat (relay) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 100 1000 500";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("4242 (short) S 1"), None);
        assert_eq!(cpu_seconds("no parenthesis at all"), None);
    }

    #[test]
    fn load_is_the_first_field() {
        assert_eq!(load1("1.25 0.80 0.50 2/345 6789\n"), Some(1.25));
        assert_eq!(load1(""), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let reading = read(std::process::id()).expect("our own /proc entry");
        assert!(reading.rss_kib > 0);
        assert!(reading.fds >= 3, "stdin, stdout, stderr at least");
    }
}
