//! The relay's Prometheus endpoint counts what happens, and nothing private.

use anyhow::Result;
use uchat_tests::{Peer, TestRelay, befriend, metric};

#[test]
fn the_metrics_endpoint_counts_messages_and_requests_without_names_or_content() -> Result<()> {
    let port = TestRelay::free_tcp_port()?;
    let addr = format!("127.0.0.1:{port}");
    let relay = TestRelay::start_with(&["--metrics", &addr])?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "counted, not read: Quokka-4411")?;
    alice.send("bob", "twice")?;
    let (status, body) = TestRelay::http_get(&addr, "/metrics")?;
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        metric(&body, "uchat_messages_queued_total"),
        Some(2.0),
        "{body}"
    );
    // The friend request to bob and its acceptance to alice.
    assert_eq!(
        metric(&body, "uchat_events_pushed_total"),
        Some(2.0),
        "{body}"
    );

    bob.history("alice")?;
    let (_, body) = TestRelay::http_get(&addr, "/metrics")?;
    // And the two messages, pushed to bob.
    assert_eq!(
        metric(&body, "uchat_events_pushed_total"),
        Some(4.0),
        "{body}"
    );
    // bob's delivered and read receipts are messages to the relay like any other (the
    // delivered ones may come as one or two, as the messages arrived together or not).
    let queued = metric(&body, "uchat_messages_queued_total").unwrap_or_default();
    assert!((4.0..=5.0).contains(&queued), "{body}");

    alice.fails(&["send", "nobody", "x"])?;
    let (_, body) = TestRelay::http_get(&addr, "/metrics")?;
    assert!(
        body.contains(r#"uchat_requests_total{kind="register",outcome="ok"} 2"#),
        "{body}"
    );
    assert!(
        body.contains(r#"kind="claim_key",outcome="UnknownUser""#),
        "{body}"
    );
    assert!(body.contains("uchat_connections "), "{body}");
    for private in ["alice", "bob", "nobody", "Quokka"] {
        assert!(
            !body.contains(private),
            "metrics must not name {private}: {body}"
        );
    }
    let (status, _) = TestRelay::http_get(&addr, "/")?;
    assert!(status.contains("404"), "{status}");
    Ok(())
}

#[test]
fn a_metrics_address_in_use_is_a_clear_start_error() -> Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let out = std::process::Command::new(uchat_tests::bin("uchat-relay"))
        .args(["--listen", "127.0.0.1:0", "--metrics", &addr, "--data"])
        .arg(tempfile::tempdir()?.path())
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("cannot serve metrics") && err.contains("--metrics off"),
        "{err}"
    );
    Ok(())
}
