//! Presence basics, reconnects and a clean shutdown.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use uchat_tests::{Peer, TestRelay, befriend};

fn presence_of(asker: &Peer, user: &str) -> Result<serde_json::Value> {
    let out = asker.ok(&["--json", "presence", user])?;
    Ok(serde_json::from_str(out.lines().next().unwrap_or("null"))?)
}

/// The relay's idle timeout in these tests: the shortest it accepts.
const IDLE_TIMEOUT_SECS: u64 = 10;

/// Polls (bounded) until `user`'s presence has `online`; returns the last answer and how
/// long it took.
fn wait_for_presence(
    asker: &Peer,
    user: &str,
    online: bool,
    limit: Duration,
) -> Result<(serde_json::Value, Duration)> {
    let start = std::time::Instant::now();
    loop {
        let answer = presence_of(asker, user)?;
        if answer["online"] == online || start.elapsed() > limit {
            return Ok((answer, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_user_is_online_while_connected_and_offline_with_last_seen_after() -> Result<()> {
    let idle = IDLE_TIMEOUT_SECS.to_string();
    let relay = TestRelay::start_with(&["--idle-timeout-secs", &idle])?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let limit = Duration::from_secs(IDLE_TIMEOUT_SECS + 5);

    let mut listener = alice
        .command(&["listen", "--for", "30"])
        .stdout(Stdio::null())
        .spawn()?;
    let (answer, _) = wait_for_presence(&bob, "alice", true, limit)?;
    assert_eq!(
        answer["online"], true,
        "alice should be online while listening: {answer}"
    );
    listener.kill()?;
    listener.wait()?;
    // A killed process sends no goodbye: the relay notices by QUIC idle timeout.
    let (answer, took) = wait_for_presence(&bob, "alice", false, limit)?;
    assert_eq!(answer["online"], false, "{answer}");
    assert!(
        took <= Duration::from_secs(IDLE_TIMEOUT_SECS + 4),
        "offline {took:?} after the kill, idle timeout {IDLE_TIMEOUT_SECS} s"
    );
    assert!(answer["last_seen_ms"].as_u64().is_some(), "{answer}");

    // A listener that ends normally closes its connection and is offline right away.
    alice.ok(&["listen", "--for", "0.5"])?;
    let (answer, took) = wait_for_presence(&bob, "alice", false, limit)?;
    assert_eq!(answer["online"], false, "{answer}");
    assert!(took < Duration::from_secs(4), "a clean close took {took:?}");
    assert!(
        presence_of(&bob, "nobody")?.is_null(),
        "unknown users are left out"
    );
    Ok(())
}

#[test]
fn a_listener_reconnects_after_the_relay_restarts_and_misses_nothing() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "before")?;
    let listener = bob
        .command(&["--json", "listen", "--for", "20"])
        .stdout(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(2));
    // The relay stops cleanly (it tells connected peers it is going away) and comes back.
    relay.terminate()?;
    relay.restart()?;
    alice.send("bob", "after the restart")?;
    let out = listener.wait_with_output()?;
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let texts: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "message")
        .map(|l| l["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts, ["before", "after the restart"], "{lines:?}");
    let states: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "connection")
        .map(|l| l["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        ["connected", "disconnected", "connected"],
        "the listener reports that it connected, lost the relay and reconnected: {lines:?}"
    );
    Ok(())
}

#[test]
fn sigterm_stops_the_relay_cleanly_and_loses_nothing() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "kept across a clean stop")?;
    let status = relay.terminate()?;
    assert!(status.success(), "relay exit status {status}");
    assert!(relay.log().contains("relay stopped"), "{}", relay.log());
    relay.restart()?;
    assert_eq!(
        uchat_tests::texts(&bob.history("alice")?),
        ["kept across a clean stop"]
    );
    Ok(())
}
