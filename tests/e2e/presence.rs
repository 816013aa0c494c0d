//! Presence basics, reconnects and a clean shutdown.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use uchat_tests::{Peer, TestRelay};

fn presence_of(asker: &Peer, user: &str) -> Result<serde_json::Value> {
    let out = asker.ok(&["--json", "presence", user])?;
    Ok(serde_json::from_str(out.lines().next().unwrap_or("null"))?)
}

#[test]
fn a_user_is_online_while_connected_and_has_a_last_seen_time_after() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    let mut listener = alice
        .command(&["listen", "--for", "30"])
        .stdout(Stdio::null())
        .spawn()?;
    // Wait (bounded) for alice's listener to be connected.
    let mut online = false;
    for _ in 0..50 {
        if presence_of(&bob, "alice")?["online"] == true {
            online = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(online, "alice should be online while listening");
    listener.kill()?;
    listener.wait()?;
    // A killed process sends no goodbye: the relay notices by QUIC idle timeout. Here we
    // end with a clean `listen --for` instead, which closes the connection at once.
    alice.ok(&["listen", "--for", "0.5"])?;
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        last = presence_of(&bob, "alice")?;
        if last["online"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last["online"], false, "{last}");
    assert!(last["last_seen_ms"].as_u64().is_some(), "{last}");
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
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "connection" && l["state"] == "connected"),
        "the listener reports that it reconnected: {lines:?}"
    );
    Ok(())
}

#[test]
fn sigterm_stops_the_relay_cleanly_and_loses_nothing() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
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
