//! What one stranger, or one friend, must not be able to do to other users or the relay
//! (issue #19's findings), each shown through the CLI contract or, where no well-behaved
//! client would send it, with raw requests.

use anyhow::Result;
use uchat_tests::{Peer, TestRelay};

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
