//! Bad input gets a clear error and costs nobody else their service.

use anyhow::Result;
use uchat_peer::connection::{self, ConnectionError};
use uchat_tests::{Peer, TestRelay, befriend, texts};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::request;
use uchat_wire::{ErrorCode, PROTOCOL_VERSION, Reply, Request};

/// alice and bob still talk both ways: the relay is serving.
fn still_serving(alice: &Peer, bob: &Peer, tag: &str) -> Result<()> {
    alice.send("bob", &format!("still here after {tag}"))?;
    let got = texts(&bob.history("alice")?);
    assert_eq!(
        got.last().map(String::as_str),
        Some(format!("still here after {tag}").as_str())
    );
    Ok(())
}

#[test]
fn a_changed_relay_certificate_is_refused_with_a_clear_error() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    // Same address, new data directory: a different certificate (an impostor, or a
    // re-keyed relay the user has not been told about).
    let addr = relay.addr.clone();
    relay.kill_9();
    let impostor = TestRelay::start_at(&addr, &[])?;
    assert_ne!(impostor.fingerprint, relay.fingerprint);
    let err = alice.fails(&["send", "bob", "hi"])?;
    assert!(err.contains("pinned"), "{err}");
    assert!(
        err.contains(&impostor.fingerprint),
        "names what it saw: {err}"
    );
    assert!(err.contains("known_relays"), "says how to fix it: {err}");

    // --relay-fingerprint pins up front: a wrong one is refused before anything is sent.
    let carol = Peer::new(&impostor, "carol")?;
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let err = carol.fails(&["--relay-fingerprint", &wrong, "register", "carol"])?;
    assert!(err.contains("pinned"), "{err}");
    // The right one works.
    carol.ok(&[
        "--relay-fingerprint",
        &impostor.fingerprint,
        "register",
        "carol",
    ])?;
    Ok(())
}

#[test]
fn account_errors_are_clear_and_leave_the_relay_serving() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;

    let twin = Peer::new(&relay, "alice")?;
    let err = twin.fails(&["register", "alice"])?;
    assert!(err.contains("taken"), "duplicate username: {err}");

    let err = alice
        .command(&["login", "alice"])
        .env("UCHAT_PASSWORD", "not the password")
        .output()?;
    assert!(!err.status.success());
    let err = String::from_utf8(err.stderr)?;
    assert!(err.contains("wrong password"), "{err}");

    let stranger = Peer::new(&relay, "nobody")?;
    let err = stranger.fails(&["login", "nobody"])?;
    assert!(
        err.contains("no user named 'nobody'"),
        "unknown user: {err}"
    );

    let err = alice.fails(&["send", "nobody", "hello?"])?;
    assert!(
        err.contains("no user named 'nobody'"),
        "message to a non-existent user: {err}"
    );

    let err = alice
        .command(&["send", "bob", "x"])
        .env("UCHAT_PASSWORD", "wrong")
        .output()?;
    assert!(String::from_utf8(err.stderr)?.contains("wrong password"));

    let err = Peer::new(&relay, "Bad/Name")?.fails(&["register", "Bad/Name"])?;
    assert!(err.contains("invalid username"), "{err}");

    let short = Peer::new(&relay, "shorty")?;
    let out = short
        .command(&["register", "shorty"])
        .env("UCHAT_PASSWORD", "short")
        .output()?;
    assert!(String::from_utf8(out.stderr)?.contains("at least 8 characters"));

    still_serving(&alice, &bob, "account errors")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_are_refused_and_the_relay_keeps_serving() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let fingerprint = relay.fingerprint.parse()?;
    let link = connection::dial(&relay.addr, Some(fingerprint), "known_relays").await?;

    // A header announcing 2 MiB: refused as soon as the header arrives.
    let mut oversized = ((2 * MAX_CONTROL_FRAME_BYTES) as u32)
        .to_be_bytes()
        .to_vec();
    oversized.extend(std::iter::repeat_n(0u8, 64 * 1024));
    match link.request_raw(&oversized).await {
        Err(ConnectionError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::FrameTooLarge);
            assert!(e.message.contains("exceeds the limit"), "{}", e.message);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }

    // A complete frame whose body is not MessagePack.
    let body = [0xc1u8, 0x00, 0xff, 0x13];
    let mut malformed = (body.len() as u32).to_be_bytes().to_vec();
    malformed.extend_from_slice(&body);
    match link.request_raw(&malformed).await {
        Err(ConnectionError::Refused(e)) => assert_eq!(e.code, ErrorCode::Malformed),
        other => panic!("expected Malformed, got {other:?}"),
    }

    // Valid MessagePack of the wrong shape, and a truncated frame.
    let wrong_shape = frame::encode(&vec!["not", "a", "request"], MAX_CONTROL_FRAME_BYTES)?;
    assert!(matches!(
        link.request_raw(&wrong_shape).await,
        Err(ConnectionError::Refused(e)) if e.code == ErrorCode::Malformed
    ));
    let hello = frame::encode(
        &Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "test".into(),
        }),
        MAX_CONTROL_FRAME_BYTES,
    )?;
    assert!(matches!(
        link.request_raw(&hello[..hello.len() - 3]).await,
        Err(ConnectionError::Refused(e)) if e.code == ErrorCode::Malformed
    ));

    // Requests before Hello and from a future major version get their own clear errors.
    assert!(matches!(
        link.request(&Request::KeyCount).await,
        Err(ConnectionError::Refused(e)) if e.code == ErrorCode::ProtocolViolation
    ));
    let future = Request::Hello(request::Hello {
        protocol: uchat_wire::ProtocolVersion {
            major: 99,
            minor: 0,
        },
        client: "from the future".into(),
    });
    match link.request(&future).await {
        Err(ConnectionError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::UnsupportedProtocol);
            assert!(
                e.message.contains("99.0") && e.message.contains(&PROTOCOL_VERSION.to_string()),
                "{}",
                e.message
            );
        }
        other => panic!("expected UnsupportedProtocol, got {other:?}"),
    }

    // The same connection still works after all that…
    let hello = Request::Hello(request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "test".into(),
    });
    assert!(matches!(link.request(&hello).await?, Reply::Welcome(_)));
    assert!(matches!(
        link.request(&Request::KeyCount).await,
        Err(ConnectionError::Refused(e)) if e.code == ErrorCode::NotAuthenticated
    ));
    link.close().await;
    // …and so does everyone else.
    tokio::task::spawn_blocking(move || still_serving(&alice, &bob, "bad frames")).await??;
    Ok(())
}

#[test]
fn a_registration_whose_answer_was_lost_is_finished_by_running_it_again() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let bob = Peer::register(&relay, "bob")?;
    let alice = Peer::new(&relay, "alice")?;
    relay.kill_9();
    let err = alice.fails(&["register", "alice"])?;
    assert!(err.contains("cannot reach the relay"), "{err}");
    relay.restart()?;
    alice.ok(&["register", "alice"])?;
    // Make it look as if the relay's answer had been lost: the account exists on the
    // relay and its sealed keys are in the profile, but the profile got no token. (No uchat
    // process runs for alice, so the store is free.)
    uchat_peer::store::PeerStore::open(&alice.home().join("uchat.redb"))?.clear_token()?;
    alice.ok(&["register", "alice"])?;
    let err = alice.fails(&["register", "alice"])?;
    assert!(err.contains("already registered"), "{err}");
    befriend(&alice, &bob)?;
    alice.send("bob", "made it")?;
    assert_eq!(texts(&bob.history("alice")?), ["made it"]);
    // Someone else cannot take over the name by "retrying" with other keys.
    let other = Peer::new(&relay, "alice")?;
    let err = other.fails(&["register", "alice"])?;
    assert!(err.contains("taken"), "{err}");
    Ok(())
}
