//! Voice calls through the real relay, driven by the CLI (`call`, `answer`, `reject`,
//! `listen`) with WAV files as the audio, and at library level for what no client sends:
//! forged signalling, and what the relay forwards.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use uchat_peer::voice::analysis::{align, speech_like, windowed_correlation};
use uchat_peer::voice::audio::read_wav_mono_48k;
use uchat_tests::{JsonListener, Peer, TestRelay, befriend, register_friends};

/// Relay flags for signalling tests: a short ring, the shortest idle timeout.
const QUICK_RELAY: [&str; 4] = ["--ring-timeout-secs", "3", "--idle-timeout-secs", "10"];

fn write_wav(path: &Path, samples: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        writer.write_sample(s)?;
    }
    writer.finalize()?;
    Ok(())
}

/// The `call` line with `state`, if `lines` has one.
fn call_state<'a>(lines: &'a [Value], state: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["type"] == "call" && l["state"] == state)
}

/// Runs `uchat --json ARGS` to its end (bounded) and returns its lines.
fn run_json(peer: &Peer, args: &[&str], limit: Duration) -> Result<Vec<Value>> {
    let process = JsonListener::spawn(peer, args)?;
    let (_, lines) = process
        .finish(limit)
        .with_context(|| format!("uchat {args:?} as {}", peer.name))?;
    Ok(lines)
}

/// Starts `uchat --json answer ARGS` (or `reject`) and waits until it is online.
fn callee(peer: &Peer, args: &[&str]) -> Result<JsonListener> {
    let mut process = JsonListener::spawn(peer, args)?;
    process
        .wait_for(Duration::from_secs(30), |l| {
            l["type"] == "connection" && l["state"] == "connected"
        })
        .with_context(|| format!("{} did not come online", peer.name))?;
    Ok(process)
}

fn ended_reason(lines: &[Value]) -> Option<String> {
    call_state(lines, "ended").and_then(|l| l["reason"].as_str().map(str::to_owned))
}

#[test]
fn a_call_through_the_relay_carries_the_callers_voice_into_the_callees_wav() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let voice = speech_like(6.0, 42);
    write_wav(&input, &voice)?;

    let answering = callee(
        bob,
        &["answer", "--output", output.to_str().context("path")?],
    )?;
    // alice's file ends the call once it has played.
    let alice_lines = run_json(
        alice,
        &["call", "bob", "--input", input.to_str().context("path")?],
        Duration::from_secs(60),
    )?;
    let (_, bob_lines) = answering.finish(Duration::from_secs(30))?;

    for state in ["ringing", "connected", "ended"] {
        assert!(
            call_state(&alice_lines, state).is_some(),
            "{state}: {alice_lines:?}"
        );
    }
    assert!(
        call_state(&bob_lines, "incoming").is_some(),
        "{bob_lines:?}"
    );
    let alice_end = call_state(&alice_lines, "ended").context("alice's end")?;
    let bob_end = call_state(&bob_lines, "ended").context("bob's end")?;
    assert_eq!(alice_end["reason"], "hung_up");
    assert_eq!(alice_end["by"], "me");
    assert_eq!(bob_end["reason"], "hung_up");
    assert_eq!(bob_end["by"], "alice", "{bob_end}");
    assert!(
        alice_lines
            .iter()
            .any(|l| l["type"] == "call_stats" && l["path"] == "relay"),
        "stats every second: {alice_lines:?}"
    );

    let heard = read_wav_mono_48k(&output)?;
    let fit = align(&voice, &heard, 48_000 * 3);
    let summary = &bob_end["summary"];
    let mouth_to_ear = summary["mouth_to_ear_ms"]
        .as_f64()
        .context("bob's summary reports the mouth-to-ear delay")?;
    eprintln!(
        "correlation {:.3} at a lag of {} ms into bob's recording; mouth-to-ear {mouth_to_ear:.1} ms; bob's summary {summary}",
        fit.correlation,
        fit.lag / 48
    );
    assert!(fit.correlation >= 0.8, "{fit:?}");
    assert!(
        (20.0..1000.0).contains(&mouth_to_ear),
        "a plausible pipeline delay on loopback: {mouth_to_ear} ms"
    );
    assert!(
        summary["frames_received"].as_u64().unwrap_or(0) >= 250,
        "{summary}"
    );
    Ok(())
}

#[test]
fn the_callee_rejects_or_the_caller_cancels_and_a_missed_call_is_left() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);

    // Rejected.
    let rejecting = callee(bob, &["reject"])?;
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("rejected"),
        "{lines:?}"
    );
    assert!(call_state(&lines, "connected").is_none());
    let (_, bob_lines) = rejecting.finish(Duration::from_secs(10))?;
    assert!(
        call_state(&bob_lines, "rejected").is_some(),
        "{bob_lines:?}"
    );

    // Cancelled before an answer: bob's listener hears it ring, end, and be missed.
    let mut listening = JsonListener::start(bob, 30)?;
    let lines = run_json(
        alice,
        &["call", "bob", "--ring", "1"],
        Duration::from_secs(30),
    )?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("cancelled"),
        "{lines:?}"
    );
    for (state, reason) in [
        ("incoming", None),
        ("ended", Some("cancelled")),
        ("missed", Some("cancelled")),
    ] {
        listening
            .wait_for(Duration::from_secs(10), |l| {
                l["type"] == "call"
                    && l["state"] == state
                    && reason.is_none_or(|r| l["reason"] == r)
            })
            .with_context(|| format!("bob hears {state}: {:?}", listening.lines()))?;
    }
    Ok(())
}

#[test]
fn nobody_answering_times_out_and_an_offline_callee_is_told_at_once() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);

    // bob is offline: alice hears so at once, and bob finds a missed call later.
    let started = Instant::now();
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("offline"),
        "{lines:?}"
    );
    assert!(call_state(&lines, "ringing").is_none());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // bob listens but does not answer: the relay's 3 s ring timeout ends it for both.
    let mut listening = JsonListener::start(bob, 40)?;
    listening
        .wait_for(Duration::from_secs(10), |l| {
            l["type"] == "call" && l["state"] == "missed" && l["reason"] == "offline"
        })
        .with_context(|| format!("the offline call was missed: {:?}", listening.lines()))?;
    let started = Instant::now();
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    let rang_for = started.elapsed();
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("timeout"),
        "{lines:?}"
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(12)).contains(&rang_for),
        "{rang_for:?}"
    );
    for state in ["ended", "missed"] {
        listening
            .wait_for(Duration::from_secs(10), |l| {
                l["type"] == "call" && l["state"] == state && l["reason"] == "timeout"
            })
            .with_context(|| format!("bob hears {state}: {:?}", listening.lines()))?;
    }
    Ok(())
}

#[test]
fn a_callee_in_a_call_is_busy_and_the_callee_may_hang_up_first() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);

    // bob takes carol's call and hangs up after 4 s; carol waits for him to.
    let answering = callee(bob, &["answer", "--for", "4"])?;
    let calling = JsonListener::spawn(carol, &["call", "bob"])?;
    let mut calling = calling;
    calling
        .wait_for(Duration::from_secs(20), |l| {
            l["type"] == "call" && l["state"] == "connected"
        })
        .with_context(|| format!("carol connects: {:?}", calling.lines()))?;
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(20))?;
    assert_eq!(ended_reason(&lines).as_deref(), Some("busy"), "{lines:?}");

    let (_, carol_lines) = calling.finish(Duration::from_secs(30))?;
    let end = call_state(&carol_lines, "ended").context("carol's end")?;
    assert_eq!(end["reason"], "hung_up");
    assert_eq!(end["by"], "bob", "{end}");
    let (_, bob_lines) = answering.finish(Duration::from_secs(10))?;
    assert_eq!(
        call_state(&bob_lines, "ended").context("bob's end")?["by"],
        "me"
    );
    Ok(())
}

#[test]
fn a_peer_whose_connection_dies_mid_call_ends_the_call_for_the_other_side() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let mut answering = callee(bob, &["answer"])?;
    let mut calling = JsonListener::spawn(alice, &["call", "bob"])?;
    calling
        .wait_for(Duration::from_secs(20), |l| {
            l["type"] == "call_stats" && l["frames_received"].as_u64().unwrap_or(0) > 0
        })
        .with_context(|| format!("the call is under way: {:?}", calling.lines()))?;
    answering.child().kill()?;
    let killed = Instant::now();
    let (ended, lines) = calling.finish(Duration::from_secs(30))?;
    let took = ended.duration_since(killed);
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("connection_lost"),
        "{lines:?}"
    );
    // Within the idle timeout (10 s) and the time to notice.
    assert!(
        took < Duration::from_secs(13),
        "ended {took:?} after the kill"
    );
    Ok(())
}

#[test]
fn a_lossy_jittery_path_keeps_the_call_intelligible_with_fec() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let relay = TestRelay::start()?;
    let relay_addr: std::net::SocketAddr = relay.addr.parse()?;
    let mut net = uchat_netsim::Topology::new(7);
    let link = uchat_netsim::model::link::LinkConfig {
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(30),
        loss: 0.10,
        ..Default::default()
    };
    let path = runtime.block_on(net.path_with(
        relay_addr,
        uchat_netsim::proxy::PathConfig {
            up: link.clone(),
            down: link,
            ..Default::default()
        },
    ))?;
    let alice = Peer::via(&path.to_string(), "alice")?;
    let bob = Peer::new(&relay, "bob")?;
    let pin = ["--relay-fingerprint", relay.fingerprint.as_str()];
    alice.ok(&[&pin[..], &["register", "alice"]].concat())?;
    bob.ok(&["register", "bob"])?;
    befriend(&alice, &bob)?;

    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let voice = speech_like(8.0, 9);
    write_wav(&input, &voice)?;
    let answering = callee(
        &bob,
        &["answer", "--output", output.to_str().context("path")?],
    )?;
    let alice_lines = run_json(
        &alice,
        &["call", "bob", "--input", input.to_str().context("path")?],
        Duration::from_secs(90),
    )?;
    let (_, bob_lines) = answering.finish(Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&alice_lines).as_deref(),
        Some("hung_up"),
        "{alice_lines:?}"
    );
    let summary = &call_state(&bob_lines, "ended").context("bob's end")?["summary"];
    let heard = read_wav_mono_48k(&output)?;
    let fit = align(&voice, &heard, 48_000 * 3);
    let windowed = windowed_correlation(&voice, &heard, fit.lag, 48_000 / 2, 48 * 120);
    eprintln!(
        "10 % loss, 30 ms jitter: correlation {:.3} overall, {windowed:.3} in half-second windows; bob's summary {summary}",
        fit.correlation
    );
    let (loss, recovered) = (
        summary["loss"].as_f64().unwrap_or(0.0),
        summary["fec_recovered"].as_u64().unwrap_or(0),
    );
    assert!(loss > 0.03, "the path lost voice: {summary}");
    assert!(recovered >= 10, "FEC rebuilt lost frames: {summary}");
    assert!(windowed >= 0.6, "intelligible: {windowed:.3}");
    if fit.correlation < 0.6 {
        bail!(
            "the whole recording correlates {:.3} with the input",
            fit.correlation
        );
    }
    runtime.block_on(net.shutdown());
    Ok(())
}
