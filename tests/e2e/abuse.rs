//! What one stranger, or one friend, must not be able to do to other users or the relay
//! (issue #19's findings), each shown through the CLI contract or, where no well-behaved
//! client would send it, with raw requests.

use std::time::{Duration, Instant};
use uchat_wire::{reply, request};

use anyhow::{Context, Result};
use uchat_peer::connection::{self, RelayLink};
use uchat_tests::{Peer, TestRelay, raw_login};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{ErrorCode, MessageId, PROTOCOL_VERSION, Request, Response, UserName};

#[test]
fn a_friend_request_does_not_open_the_targets_profile_to_the_requester() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let mallory = Peer::register(&relay, "mallory")?;
    alice.ok(&["profile", "set", "--signature", "only for my friends"])?;
    mallory.ok(&["friends", "add", "alice", "--note", "let me in"])?;

    let err = mallory.fails(&["profile", "show", "alice"])?;
    assert!(err.contains("not your friend"), "{err}");
    // The one asked may look at who is asking before answering.
    let shown = alice.ok(&["profile", "show", "mallory"])?;
    assert!(shown.contains("mallory"), "{shown}");
    Ok(())
}

#[test]
fn friend_requests_that_ended_leave_nothing_queued_and_a_loop_of_them_is_slowed() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let mallory = Peer::register(&relay, "mallory")?;
    // alice is offline; mallory asks, blocks her (which ends the request), unblocks, and
    // again. Before the fix each round left one more friend_request in alice's queue,
    // until it was full and her friends' messages were refused.
    let mut refusals = Vec::new();
    for round in 0..8 {
        match mallory.run(&[
            "friends",
            "add",
            "alice",
            "--note",
            &format!("round {round}"),
        ])? {
            out if out.status.success() => {}
            out => refusals.push(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
        mallory.ok(&["friends", "block", "alice"])?;
        mallory.ok(&["friends", "unblock", "alice"])?;
    }
    assert_eq!(
        refusals.len(),
        8 - 3,
        "three a day to one person: {refusals:?}"
    );
    assert!(
        refusals[0].contains("too many friend requests to this user; try again in"),
        "{}",
        refusals[0]
    );
    let events = uchat_tests::json_lines(&alice.ok(&["--json", "listen", "--for", "2"])?)?;
    let requests: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "friend_request")
        .collect();
    assert!(
        requests.is_empty(),
        "withdrawn requests arrived: {requests:?}"
    );
    Ok(())
}

#[test]
fn one_address_registers_twenty_accounts_an_hour_and_is_then_told_to_wait() -> Result<()> {
    let relay = TestRelay::start()?;
    for i in 0..20 {
        Peer::register(&relay, &format!("user{i}"))?;
    }
    let late = Peer::new(&relay, "late")?;
    let err = late.fails(&["register", "late"])?;
    assert!(
        err.contains("too many registrations from your address; try again in 3 minutes"),
        "{err}"
    );
    // Nothing was made for the refused name, and logins are not throttled by it.
    let err = late.fails(&["login", "late"])?;
    assert!(err.contains("no user named 'late'"), "{err}");
    Ok(())
}

/// A raw connection that said Hello and nothing else.
async fn hello_only(relay: &TestRelay) -> Result<RelayLink> {
    let link = connection::dial(&relay.addr, Some(relay.fingerprint.parse()?), "known").await?;
    link.request(&Request::Hello(request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "idle stranger".into(),
    }))
    .await?;
    Ok(link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_holds_its_share_of_connections_and_none_stays_without_logging_in() -> Result<()>
{
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = tokio::task::spawn_blocking(|| {
        TestRelay::start_with(&[
            "--max-connections-per-address",
            "4",
            "--login-timeout-secs",
            "3",
        ])
    })
    .await??;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(hello_only(&relay).await?);
    }
    let err = hello_only(&relay)
        .await
        .err()
        .context("a fifth is refused")?;
    assert!(
        err.to_string()
            .contains("too many connections from your address (4); close some and try again"),
        "{err}"
    );
    // None of them logs in: each is closed at the deadline, saying why.
    let started = Instant::now();
    for link in &idle {
        let reason = tokio::time::timeout(Duration::from_secs(10), link.closed()).await?;
        assert!(
            reason.contains("log in within 3 s of connecting"),
            "{reason}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The places are free again.
    let link = hello_only(&relay).await?;
    drop(link);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_arrives_is_given_up_on_its_own_stream() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay =
        tokio::task::spawn_blocking(|| TestRelay::start_with(&["--login-timeout-secs", "60"]))
            .await??;
    let link = hello_only(&relay).await?;
    // Two bytes of a four-byte header, then nothing.
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(30), async {
        let quic = link.quic();
        let (mut send, mut recv) = quic.open_bi().await?;
        send.write_all(&[0, 0]).await?;
        let answer = recv.read_to_end(4096).await?;
        anyhow::Ok(frame::decode_frame::<Response>(
            &answer,
            MAX_CONTROL_FRAME_BYTES,
        )?)
    })
    .await??;
    let Response::Error(err) = err else {
        anyhow::bail!("expected a refusal, got {err:?}");
    };
    assert_eq!(err.code, ErrorCode::Malformed);
    assert!(
        err.message.contains("did not arrive within 10 s"),
        "{}",
        err.message
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // The connection itself goes on.
    link.request(&Request::Hello(request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "still here".into(),
    }))
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_cost_the_relay_little_memory_and_an_account_few_connections()
-> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = tokio::task::spawn_blocking(TestRelay::start).await??;
    let names = ["alice", "bob"];
    let (relay, _peers) = tokio::task::spawn_blocking(move || {
        let peers = uchat_tests::register_friends(&relay, &names)?;
        anyhow::Ok((relay, peers))
    })
    .await??;
    // bob is offline while alice fills his queue with 200 large messages (80 MB).
    let alice = raw_login(&relay, "alice").await?;
    let bob = UserName::parse("bob")?;
    for i in 0..200u32 {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        alice
            .request(&Request::Send(request::Send {
                to: bob.clone(),
                id: MessageId(id),
                ciphertext: vec![(i % 251) as u8; 400 * 1024],
            }))
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = relay.rss_kib()?;
    // bob logs in as often as he may and never reads his events.
    let mut slow = Vec::new();
    for _ in 0..16 {
        slow.push(raw_login(&relay, "bob").await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = relay.rss_kib()?;
    let grown_mib = after.saturating_sub(before) / 1024;
    println!("relay RSS {before} KiB before, {after} KiB with 16 stalled readers");
    // Each holds at most its send window (2 MiB) and one batch (1 MiB and an event).
    assert!(
        grown_mib < 128,
        "16 stalled readers of an 80 MB queue grew the relay by {grown_mib} MiB"
    );
    let refused = raw_login(&relay, "bob")
        .await
        .err()
        .context("a 17th is refused")?;
    assert!(
        refused
            .to_string()
            .contains("this account has 16 connections to the relay already"),
        "{refused}"
    );
    // Everyone else is still served.
    alice
        .request(&Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "still here".into(),
        }))
        .await?;
    Ok(())
}

#[test]
fn a_friends_escape_sequences_reach_the_terminal_escaped_and_json_exactly() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = uchat_tests::register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    // Retitle the window, clear the screen, set the clipboard, reorder a line.
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;Y3VybCBldmlsfHNo\u{7}ok \u{202e}txt.exe";
    bob.send("alice", hostile)?;
    let shown = alice.run(&["history", "bob"])?;
    assert!(shown.status.success());
    for control in [0x1b_u8, 0x07] {
        assert!(
            !shown.stdout.contains(&control),
            "byte {control:#x} reached the terminal: {:?}",
            String::from_utf8_lossy(&shown.stdout)
        );
    }
    let text = String::from_utf8(shown.stdout)?;
    assert!(text.contains("\\u{1b}]0;pwned\\u{7}"), "{text}");
    assert!(text.contains("\\u{202e}txt.exe"), "{text}");
    // JSON escapes it by itself, and carries the text exactly.
    let history = alice.history("bob")?;
    let texts = uchat_tests::texts(&history);
    assert_eq!(texts, [hostile]);
    Ok(())
}

#[test]
fn empty_uploads_are_bounded_by_a_count_not_just_by_bytes() -> Result<()> {
    let relay = TestRelay::start_with(&["--max-files", "4"])?;
    let peers = uchat_tests::register_friends(&relay, &["alice", "bob"])?;
    let alice = &peers[0];
    let dir = tempfile::tempdir()?;
    // An empty file reserves no bytes of the quota: before, one could make records
    // without end.
    for i in 0..4 {
        let path = dir.path().join(format!("empty-{i}"));
        std::fs::write(&path, b"")?;
        alice.ok(&["send-file", "bob", path.to_str().context("path")?])?;
    }
    let path = dir.path().join("one-too-many");
    std::fs::write(&path, b"")?;
    let err = alice.fails(&["send-file", "bob", path.to_str().context("path")?])?;
    assert!(err.contains("the limit of 4 files on the relay"), "{err}");
    Ok(())
}

/// Opens up to `streams` request streams on `link` and sends on each the header of a
/// `frame_bytes` request and as much of its body as flow control lets through in a moment,
/// never the last byte: what a stranger does to make the relay hold buffers for nothing.
/// Returns the streams (dropping them would reset them) and the bytes sent.
async fn pin_partial_frames(
    link: &RelayLink,
    streams: usize,
    frame_bytes: u32,
) -> (Vec<quinn::SendStream>, u64) {
    let quic = link.quic();
    let mut held = Vec::new();
    let mut sent = 0u64;
    for _ in 0..streams {
        let Ok(Ok((mut send, _recv))) =
            tokio::time::timeout(Duration::from_millis(300), quic.open_bi()).await
        else {
            break; // the relay allows no more streams
        };
        let mut bytes = frame_bytes.to_be_bytes().to_vec();
        bytes.resize(4 + frame_bytes as usize - 1, 0x91);
        // A write that flow control holds back is simply left unfinished.
        let mut offset = 0;
        while offset < bytes.len() {
            match tokio::time::timeout(Duration::from_millis(200), send.write(&bytes[offset..]))
                .await
            {
                Ok(Ok(n)) => offset += n,
                _ => break,
            }
        }
        sent += offset as u64;
        held.push(send);
    }
    (held, sent)
}

/// Connections that each pin what they may (see [`pin_partial_frames`]), opened at once;
/// `logged_in` logs each in as mallory first. Returns them, their streams and the bytes sent.
async fn pinning_connections(
    relay: &TestRelay,
    connections: usize,
    logged_in: bool,
) -> Result<(Vec<(RelayLink, Vec<quinn::SendStream>)>, u64)> {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let link = if logged_in {
            raw_login(relay, "mallory").await?
        } else {
            match hello_only(relay).await {
                Ok(link) => link,
                Err(_) => break, // the address holds all it may
            }
        };
        // Each asks for more streams than the relay allows (4 before login, 32 after),
        // each carrying the largest control frame (1 MiB; 64 KiB before login).
        let streams = if logged_in { 40 } else { 16 };
        opening.spawn(async move {
            let (streams, bytes) = pin_partial_frames(&link, streams, 1 << 20).await;
            (link, streams, bytes)
        });
    }
    let mut held = Vec::new();
    let mut sent = 0;
    while let Some(done) = opening.join_next().await {
        let (link, streams, bytes) = done?;
        sent += bytes;
        held.push((link, streams));
    }
    Ok((held, sent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_pin_all_they_may_cost_the_relay_bounded_memory() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = tokio::task::spawn_blocking(|| {
        let relay = TestRelay::start()?;
        uchat_tests::register_friends(&relay, &["mallory"])?;
        anyhow::Ok(relay)
    })
    .await??;
    let idle = relay.rss_kib()?;

    // Before logging in: as many connections as one address may hold, each with every
    // stream it may open, each stream a request as large as allowed that never ends.
    let (strangers, sent) = pinning_connections(&relay, 64, false).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_login = relay.rss_kib()?;
    let grown_before_login = before_login.saturating_sub(idle) / 1024;
    println!(
        "{} connections before login sent {} MiB of requests that never end: relay RSS {idle} KiB idle, {before_login} KiB then (+{grown_before_login} MiB)",
        strangers.len(),
        sent >> 20
    );
    for (link, _) in &strangers {
        link.quic().close(0u32.into(), b"done");
    }
    drop(strangers);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Logged in: as many connections as one account may hold, each doing the same.
    let base = relay.rss_kib()?;
    let (mallory, sent) = pinning_connections(&relay, 16, true).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logged_in = relay.rss_kib()?;
    let grown_logged_in = logged_in.saturating_sub(base) / 1024;
    println!(
        "{} connections of one account sent {} MiB of requests that never end: relay RSS {base} KiB before, {logged_in} KiB then (+{grown_logged_in} MiB)",
        mallory.len(),
        sent >> 20
    );
    // Before a connection logs in the relay reads at most 4 streams of 64 KiB frames
    // through a 256 KiB window: measured +8 MiB, against +30 MiB before the fix (1 MiB
    // frames on every stream a connection opened).
    assert!(
        grown_before_login < 20,
        "64 connections before login grew the relay by {grown_before_login} MiB"
    );
    // After login, at most 4 MiB of request frames read and a 4 MiB window unread a
    // connection: 8 MiB by design, but measured 15 to 26 MiB (235 to 424 MiB here, 408 to
    // 502 MiB before the fix), an open problem SECURITY.md states. This bound only
    // catches growth without end: 16 connections (one account's) of 32 MiB.
    assert!(
        grown_logged_in < 16 * 32,
        "16 connections of one account grew the relay by {grown_logged_in} MiB"
    );
    // Everyone else is still served.
    let other = tokio::task::spawn_blocking(move || {
        let peers = uchat_tests::register_friends(&relay, &["alice", "bob"])?;
        peers[0].ok(&["send", "bob", "still served"])?;
        anyhow::Ok(())
    });
    other.await??;
    drop(mallory);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_adding_and_removing_a_member_in_a_loop_is_slowed() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = tokio::task::spawn_blocking(|| {
        let relay = TestRelay::start()?;
        uchat_tests::register_friends(&relay, &["owner", "victim", "carol"])?;
        anyhow::Ok(relay)
    })
    .await??;
    // Every membership change writes a row to every member's queue, past their quotas
    // (a member's view of the group is built from all of them): a loop of them grew the
    // victim's and carol's queues without end.
    let owner = raw_login(&relay, "owner").await?;
    let victim = UserName::parse("victim")?;
    let carol = UserName::parse("carol")?;
    let uchat_wire::Reply::Group(reply::Group { group }) = owner
        .request(&Request::CreateGroup(request::CreateGroup {
            name: "loop".into(),
            members: vec![carol.clone()],
        }))
        .await?
    else {
        anyhow::bail!("no group");
    };
    let mut changes = 0;
    let refusal = loop {
        let request = if changes % 2 == 0 {
            Request::InviteToGroup(request::InviteToGroup {
                group: group.id,
                user: victim.clone(),
            })
        } else {
            Request::KickFromGroup(request::KickFromGroup {
                group: group.id,
                user: victim.clone(),
            })
        };
        match owner.request(&request).await {
            Ok(_) => changes += 1,
            Err(e) => break e.to_string(),
        }
        anyhow::ensure!(changes < 200, "200 changes of one member were all accepted");
    };
    assert_eq!(changes, 10, "{refusal}");
    assert!(
        refusal.contains("too many group changes for this user; try again in"),
        "{refusal}"
    );
    Ok(())
}
