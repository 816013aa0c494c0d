//! `loadgen` runs every scenario end to end at a tiny size, in both modes where it has
//! them, against a real relay, and keeps `shared/cli.md`'s contract: exit 0, one JSON
//! line with the contract's fields, figures that make sense. loadgen itself fails if an
//! acknowledged message is lost, duplicated or reordered, so exit 0 also says every
//! message arrived once and in order. Only correctness is checked here, never speed.

use std::process::{Command, Output};

use anyhow::{Context, Result};
use serde_json::Value;
use uchat_tests::{MANY_USERS, TestRelay, bin};

/// Fields every scenario's JSON object has (`shared/cli.md`).
const FIELDS: &[&str] = &[
    "scenario",
    "mode",
    "clients",
    "messages",
    "seconds",
    "msgs_per_s",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "relay_cpu_pct",
    "relay_rss_mib",
];

fn loadgen(args: &[&str]) -> Result<Output> {
    Command::new(bin("loadgen"))
        .args(args)
        .output()
        .context("cannot run loadgen")
}

/// Runs `loadgen SCENARIO --json ARGS`, requires success and returns its one JSON object
/// after checking the fields every scenario has.
fn run_json(scenario: &str, mode: &str, args: &[&str]) -> Result<Value> {
    let out = loadgen(&[&[scenario, "--json", "--mode", mode], args].concat())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen {scenario} --mode {mode} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line per scenario: {stdout}");
    let report: Value = serde_json::from_str(lines[0])?;
    for field in FIELDS {
        assert!(report.get(field).is_some(), "{field} missing in {report}");
    }
    assert_eq!(report["scenario"], scenario, "{report}");
    assert_eq!(report["mode"], mode, "{report}");
    assert!(
        report["seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{report}"
    );
    assert!(
        report["relay_rss_mib"].as_f64().is_some_and(|r| r > 0.0),
        "loadgen's own relay is measured: {report}"
    );
    assert!(
        report["relay_cpu_pct"].as_f64().is_some_and(|c| c >= 0.0),
        "{report}"
    );
    if let (Some(p50), Some(p99), Some(p999)) = (
        report["p50_ms"].as_f64(),
        report["p99_ms"].as_f64(),
        report["p999_ms"].as_f64(),
    ) {
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{report}");
    }
    Ok(report)
}

fn number(report: &Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {report}"))
}

/// The scenarios both modes have, at a tiny size.
fn check_common_scenarios(mode: &str) -> Result<()> {
    let latency = run_json("latency", mode, &["--count", "20", "--warmup", "2"])?;
    assert_eq!(number(&latency, "messages"), 20.0, "{latency}");
    assert_eq!(number(&latency, "clients"), 2.0, "{latency}");
    assert!(latency["p50_ms"].is_number(), "{latency}");

    let throughput = run_json(
        "throughput",
        mode,
        &["--clients", "4", "--seconds", "1", "--warmup-secs", "0.2"],
    )?;
    assert_eq!(number(&throughput, "clients"), 4.0, "{throughput}");
    assert!(number(&throughput, "messages") > 0.0, "{throughput}");
    assert!(number(&throughput, "msgs_per_s") > 0.0, "{throughput}");

    let offline = run_json("offline", mode, &["--messages", "300"])?;
    assert_eq!(number(&offline, "messages"), 300.0, "{offline}");
    assert!(number(&offline, "store_msgs_per_s") > 0.0, "{offline}");
    assert!(number(&offline, "drain_s") > 0.0, "{offline}");
    Ok(())
}

#[test]
fn loadgen_wire_mode_delivers_every_message_once_in_every_scenario() -> Result<()> {
    check_common_scenarios("wire")?;

    let rate = run_json(
        "rate",
        "wire",
        &[
            "--clients",
            "4",
            "--rate",
            "200",
            "--seconds",
            "1",
            "--warmup-secs",
            "0.2",
        ],
    )?;
    assert_eq!(number(&rate, "offered_per_s"), 200.0, "{rate}");
    assert!(number(&rate, "messages") > 0.0, "{rate}");
    assert!(number(&rate, "capped") >= 0.0, "{rate}");

    let idle = run_json(
        "idle",
        "wire",
        &["--clients", "20", "--parallel", "5", "--idle-secs", "0.5"],
    )?;
    assert_eq!(number(&idle, "clients"), 20.0, "{idle}");
    assert!(idle["relay_rss_per_client_kib"].is_number(), "{idle}");

    let logins = run_json(
        "logins",
        "wire",
        &["--clients", "4", "--parallel", "4", "--seconds", "0.5"],
    )?;
    assert!(number(&logins, "logins_per_s") > 0.0, "{logins}");
    assert!(number(&logins, "password_logins_per_s") > 0.0, "{logins}");
    Ok(())
}

#[test]
fn loadgen_real_mode_delivers_every_message_once_end_to_end() -> Result<()> {
    check_common_scenarios("real")
}

#[test]
fn loadgen_refuses_scenarios_a_mode_lacks_with_exit_code_2() -> Result<()> {
    for scenario in ["rate", "idle", "logins"] {
        let out = loadgen(&[scenario, "--mode", "real", "--json"])?;
        assert_eq!(out.status.code(), Some(2), "{scenario}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not implemented in real mode"), "{stderr}");
    }
    Ok(())
}

#[test]
fn loadgen_measures_a_given_relay_only_with_its_pid() -> Result<()> {
    let relay = TestRelay::start_with(MANY_USERS)?;
    let pid = relay.pid().context("relay pid")?.to_string();
    let given = [
        "--relay",
        relay.addr.as_str(),
        "--relay-fingerprint",
        relay.fingerprint.as_str(),
    ];
    let small = ["--count", "5", "--warmup", "1"];
    let with_pid = run_json(
        "latency",
        "wire",
        &[&given[..], &["--relay-pid", &pid], &small].concat(),
    )?;
    assert!(with_pid["relay_rss_mib"].is_number(), "{with_pid}");

    let out = loadgen(&[&["latency", "--json"], &given[..], &small].concat())?;
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert!(report["relay_cpu_pct"].is_null(), "{report}");
    assert!(report["relay_rss_mib"].is_null(), "{report}");
    assert_eq!(report["messages"], 5, "{report}");
    Ok(())
}
