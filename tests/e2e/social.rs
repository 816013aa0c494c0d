//! Friends, presence pushes and profiles, through the CLI contract (`friends …`,
//! `profile …`, `listen --json`), plus forged requests at the protocol level.

use std::time::{Duration, Instant};
use uchat_wire::{reply, request};

use anyhow::{Context, Result};
use serde::Serialize;
use uchat_peer::connection::{self, ConnectionError, RelayLink};
use uchat_tests::{JsonListener, Peer, TestRelay, befriend, json_lines, refused};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{AvatarChange, ErrorCode, PROTOCOL_VERSION, Reply, Request, UserName};

/// The relay's idle timeout in the presence test: the shortest it accepts.
const IDLE_TIMEOUT_SECS: u64 = 10;

fn friends_of(peer: &Peer) -> Result<Vec<serde_json::Value>> {
    json_lines(&peer.ok(&["--json", "friends", "list"])?)
}

fn friend_names(peer: &Peer) -> Result<Vec<String>> {
    Ok(friends_of(peer)?
        .iter()
        .map(|f| f["user"].as_str().unwrap_or_default().to_string())
        .collect())
}

fn requests_of(peer: &Peer) -> Result<Vec<serde_json::Value>> {
    json_lines(&peer.ok(&["--json", "friends", "requests"])?)
}

fn profile_of(asker: &Peer, user: &str) -> Result<serde_json::Value> {
    let lines = json_lines(&asker.ok(&["--json", "profile", "show", user])?)?;
    lines.into_iter().next().context("one profile line")
}

#[test]
fn a_request_waits_for_an_offline_user_and_friendship_gates_messages() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    // Strangers cannot message each other.
    let err = alice.fails(&["send", "bob", "hi stranger"])?;
    assert!(
        err.contains("not your friend") && err.contains("friends add bob"),
        "{err}"
    );

    // bob is offline (no uchat process) when alice asks.
    let note = "我是 alice，我们在 RustConf 见过 👋";
    let sent = json_lines(&alice.ok(&["--json", "friends", "add", "bob", "--note", note])?)?;
    assert_eq!(sent[0]["type"], "friend_request_sent");
    assert_eq!(sent[0]["became_friends"], false);
    let outgoing = requests_of(&alice)?;
    assert_eq!(outgoing.len(), 1);
    assert_eq!(outgoing[0]["type"], "friend_request_sent");
    assert_eq!(outgoing[0]["to"], "bob");

    // When bob comes online, the request arrives as an event with its note…
    let mut listener = JsonListener::start(&bob, 5)?;
    let (_, event) = listener
        .wait_for(Duration::from_secs(10), |l| l["type"] == "friend_request")
        .context("bob sees the request as an event")?;
    assert_eq!(event["from"], "alice");
    assert_eq!(event["note"], note);
    drop(listener);
    // …and in his pending list; nobody is a friend yet.
    let incoming = requests_of(&bob)?;
    assert_eq!(incoming.len(), 1, "{incoming:?}");
    assert_eq!(incoming[0]["type"], "friend_request");
    assert_eq!(incoming[0]["from"], "alice");
    assert_eq!(incoming[0]["note"], note);
    assert!(friend_names(&alice)?.is_empty());

    bob.ok(&["friends", "accept", "alice"])?;
    assert_eq!(friend_names(&alice)?, ["bob"]);
    assert_eq!(friend_names(&bob)?, ["alice"]);
    assert!(requests_of(&alice)?.is_empty() && requests_of(&bob)?.is_empty());
    let human = bob.ok(&["friends", "list"])?;
    assert!(human.starts_with("alice ("), "{human}");

    // Friends can talk both ways.
    alice.send("bob", "now we can talk")?;
    bob.send("alice", "indeed 当然")?;
    assert_eq!(
        uchat_tests::texts(&bob.history("alice")?),
        ["now we can talk", "indeed 当然"]
    );

    // alice removes bob: both lose each other, and neither can write any more.
    alice.ok(&["friends", "remove", "bob"])?;
    assert!(friend_names(&alice)?.is_empty());
    assert!(friend_names(&bob)?.is_empty());
    for (from, to) in [(&alice, "bob"), (&bob, "alice")] {
        let err = from.fails(&["send", to, "still there?"])?;
        assert!(err.contains("not your friend"), "{err}");
    }
    let history = bob.history("alice")?;
    let from_alice: Vec<_> = history.iter().filter(|m| m["from"] == "alice").collect();
    assert_eq!(from_alice.len(), 1, "nothing new reached bob: {history:?}");
    let refused = history.last().context("bob's refused message")?;
    assert_eq!(refused["text"], "still there?");
    assert_eq!(refused["status"], "failed", "kept, marked as not sent");
    Ok(())
}

#[test]
fn mutual_requests_make_friends_and_blocks_are_silent() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    let mallory = Peer::register(&relay, "mallory")?;
    alice.ok(&["friends", "add", "bob"])?;
    let out = json_lines(&bob.ok(&["--json", "friends", "add", "alice"])?)?;
    assert_eq!(out[0]["became_friends"], true, "{out:?}");
    assert_eq!(friend_names(&alice)?, ["bob"]);

    // bob blocks mallory, then mallory's requests "succeed" for her but reach nobody.
    bob.ok(&["friends", "block", "mallory"])?;
    mallory.ok(&["friends", "add", "bob", "--note", "let me in"])?;
    assert!(requests_of(&bob)?.is_empty());
    // A friend bob blocks can still write, is told it was sent, and bob never gets it.
    befriend(&alice, &mallory)?;
    bob.ok(&["friends", "block", "alice"])?;
    let listed = friends_of(&bob)?;
    assert_eq!(listed[0]["blocked"], true, "{listed:?}");
    alice.send("bob", "can you hear me?")?;
    assert!(bob.history("alice")?.is_empty());
    let err = bob.fails(&["send", "alice", "hi"])?;
    assert!(
        err.contains("you blocked 'alice'") && err.contains("unblock"),
        "{err}"
    );
    bob.ok(&["friends", "unblock", "alice"])?;
    alice.send("bob", "and now?")?;
    let from_alice: Vec<_> = bob
        .history("alice")?
        .into_iter()
        .filter(|m| m["from"] == "alice")
        .collect();
    assert_eq!(uchat_tests::texts(&from_alice), ["and now?"]);
    Ok(())
}

/// When a listener saw a presence event for `user` with `online`.
fn presence_seen(
    listener: &mut JsonListener,
    user: &str,
    online: bool,
    limit: Duration,
) -> Option<Instant> {
    listener
        .wait_for(limit, |l| {
            l["type"] == "presence" && l["user"] == user && l["online"] == online
        })
        .map(|(at, _)| at)
}

#[test]
fn presence_changes_reach_online_friends_within_a_second() -> Result<()> {
    let idle = IDLE_TIMEOUT_SECS.to_string();
    let relay = TestRelay::start_with(&["--idle-timeout-secs", &idle])?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    let carol = Peer::register(&relay, "carol")?;
    befriend(&alice, &bob)?;
    let mut watcher = JsonListener::start(&bob, 60)?;
    // carol is no friend of alice's: she is told nothing.
    let mut stranger = JsonListener::start(&carol, 60)?;

    // alice comes online and goes away cleanly.
    let session = JsonListener::start(&alice, 2)?;
    let (connected, _) = session.lines()[0].clone();
    let online_at = presence_seen(&mut watcher, "alice", true, Duration::from_secs(5))
        .context("bob sees alice come online")?;
    assert!(
        online_at.saturating_duration_since(connected) <= Duration::from_secs(1),
        "online event {:?} after alice connected",
        online_at.saturating_duration_since(connected)
    );
    let (closed, _) = session.finish(Duration::from_secs(30))?;
    let offline_at = presence_seen(&mut watcher, "alice", false, Duration::from_secs(5))
        .context("bob sees alice go offline")?;
    let took = offline_at.saturating_duration_since(closed);
    assert!(
        took <= Duration::from_secs(1),
        "offline event {took:?} after alice left"
    );
    let offline = watcher
        .lines()
        .into_iter()
        .find(|(_, l)| l["type"] == "presence" && l["online"] == false)
        .map(|(_, l)| l)
        .context("the offline event")?;
    assert!(offline["last_seen_ms"].as_u64().is_some(), "{offline}");

    // A connection that dies without a goodbye: the relay notices by idle timeout.
    let seen = watcher.lines().len();
    let mut crashed = JsonListener::start(&alice, 60)?;
    watcher
        .wait_for_after(seen, Duration::from_secs(5), |l| {
            l["type"] == "presence" && l["user"] == "alice" && l["online"] == true
        })
        .context("online again")?;
    let before = watcher.lines().len();
    crashed.child().kill()?;
    let killed = Instant::now();
    let deadline = Duration::from_secs(IDLE_TIMEOUT_SECS + 5);
    let (dropped, _) = watcher
        .wait_for_after(before, deadline, |l| {
            l["type"] == "presence" && l["user"] == "alice" && l["online"] == false
        })
        .context("bob sees alice's dead connection go offline")?;
    let took = dropped.saturating_duration_since(killed);
    assert!(
        took <= Duration::from_secs(IDLE_TIMEOUT_SECS + 1),
        "offline {took:?} after the kill, idle timeout {IDLE_TIMEOUT_SECS} s"
    );
    assert!(
        stranger
            .lines()
            .iter()
            .all(|(_, l)| l["type"] != "presence"),
        "carol is not alice's friend: {:?}",
        stranger.lines()
    );
    let _ = stranger.child().kill();
    Ok(())
}

#[test]
fn a_user_with_two_peers_online_stays_online_until_the_last_leaves() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let carol = Peer::register(&relay, "carol")?;
    befriend(&carol, &alice)?;
    // A second peer of alice's: a copy of her profile directory (same keys and session).
    let twin = Peer::new(&relay, "alice")?;
    copy_dir(alice.home(), twin.home())?;
    let mut watcher = JsonListener::start(&bob, 60)?;
    let first = JsonListener::start(&alice, 2)?;
    let second = JsonListener::start(&twin, 60)?;
    presence_seen(&mut watcher, "alice", true, Duration::from_secs(5)).context("online")?;
    first.finish(Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        presence_seen(&mut watcher, "alice", false, Duration::ZERO).is_none(),
        "one of alice's peers is still online: {:?}",
        watcher.lines()
    );
    let online = json_lines(&carol.ok(&["--json", "presence", "alice"])?)?;
    assert_eq!(online[0]["online"], true, "{online:?}");
    drop(second);
    presence_seen(&mut watcher, "alice", false, Duration::from_secs(45))
        .context("offline once the last peer is gone")?;
    Ok(())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// A small PNG photo-like picture: a gradient with a red square.
fn write_picture(path: &std::path::Path, width: u32, height: u32) -> Result<()> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        if (width / 3..2 * width / 3).contains(&x) && (height / 3..2 * height / 3).contains(&y) {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }
    });
    picture.save(path)?;
    Ok(())
}

#[test]
fn profile_changes_reach_online_friends_at_once_and_offline_friends_later() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = uchat_tests::register_friends(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);
    let dir = tempfile::tempdir()?;
    let picture = dir.path().join("me.jpg");
    write_picture(&picture, 640, 480)?;
    carol.ok(&["friends", "list"])?; // carol has seen alice's old profile

    let mut watcher = JsonListener::start(bob, 30)?;
    let signature = "生活就像一盒巧克力 🍫";
    let set = json_lines(&alice.ok(&[
        "--json",
        "profile",
        "set",
        "--signature",
        signature,
        "--avatar",
        picture.to_str().context("utf-8 path")?,
    ])?)?;
    let version = set[0]["avatar_version"]
        .as_str()
        .context("an avatar version")?
        .to_string();
    let (_, event) = watcher
        .wait_for(Duration::from_secs(5), |l| {
            l["type"] == "profile" && l["user"] == "alice"
        })
        .context("bob, online, gets the change as an event")?;
    assert_eq!(event["signature"], signature);
    assert_eq!(event["avatar_version"], version.as_str());
    drop(watcher);

    let avatar = dir.path().join("alice.png");
    let shown = json_lines(&bob.ok(&[
        "--json",
        "profile",
        "show",
        "alice",
        "--avatar-out",
        avatar.to_str().context("utf-8 path")?,
    ])?)?;
    assert_eq!(shown[0]["signature"], signature);
    assert_eq!(
        shown[0]["avatar_from_cache"], false,
        "first fetch downloads"
    );
    let png = image::open(&avatar)?;
    assert_eq!((png.width(), png.height()), (256, 256), "resized square");
    // Unchanged avatars are not downloaded again.
    let again = profile_of(bob, "alice")?;
    assert_eq!(again["avatar_from_cache"], true, "{again}");
    assert_eq!(again["avatar_bytes"], shown[0]["avatar_bytes"]);

    // carol was offline: her next run picks the change up.
    let mut late = JsonListener::start(carol, 3)?;
    let (_, event) = late
        .wait_for(Duration::from_secs(5), |l| {
            l["type"] == "profile" && l["user"] == "alice"
        })
        .context("carol sees the change on her next run")?;
    assert_eq!(event["signature"], signature);
    drop(late);
    assert_eq!(profile_of(carol, "alice")?["signature"], signature);
    let human = carol.ok(&["friends", "list"])?;
    assert!(human.contains(signature), "{human}");
    Ok(())
}

#[test]
fn bad_social_input_gets_clear_errors_and_changes_nothing() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    alice.ok(&["profile", "set", "--signature", "原来的签名"])?;
    let before = profile_of(&alice, "alice")?;
    let dir = tempfile::tempdir()?;

    let huge = dir.path().join("huge.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(10 * 1024 * 1024, 0x42);
    std::fs::write(&huge, bytes)?;
    let err = alice.fails(&["profile", "set", "--avatar", huge.to_str().context("path")?])?;
    assert!(
        err.contains("10.0 MiB") && err.contains("limit is 8 MiB"),
        "{err}"
    );

    let text = dir.path().join("notes.png");
    std::fs::write(&text, "these are my notes, not a picture")?;
    let err = alice.fails(&["profile", "set", "--avatar", text.to_str().context("path")?])?;
    assert!(err.contains("is not a picture uchat can read"), "{err}");

    let long = "长".repeat(2000);
    let err = alice.fails(&["profile", "set", "--signature", &long])?;
    assert!(
        err.contains("2000 characters") && err.contains("limit is 200"),
        "{err}"
    );
    assert_eq!(
        profile_of(&alice, "alice")?,
        before,
        "the profile is unchanged"
    );

    let err = alice.fails(&["friends", "add", "alice"])?;
    assert!(err.contains("yourself"), "{err}");
    alice.ok(&["friends", "add", "bob", "--note", "first"])?;
    let err = alice.fails(&["friends", "add", "bob", "--note", "second"])?;
    assert!(err.contains("already asked 'bob'"), "{err}");
    let err = alice.fails(&["friends", "accept", "bob"])?;
    assert!(
        err.contains("no pending friend request from 'bob'"),
        "{err}"
    );
    let err = bob.fails(&["friends", "accept", "carol"])?;
    assert!(
        err.contains("no pending friend request from 'carol'"),
        "{err}"
    );
    let err = alice.fails(&["friends", "add", "nobody"])?;
    assert!(err.contains("no user named 'nobody'"), "{err}");
    let err = alice.fails(&["friends", "add", "bob", "--note", &"n".repeat(201)])?;
    assert!(err.contains("note is 201 characters"), "{err}");
    let incoming = requests_of(&bob)?;
    assert_eq!(incoming.len(), 1, "one request, the first: {incoming:?}");
    assert_eq!(incoming[0]["note"], "first");
    assert!(friend_names(&alice)?.is_empty() && friend_names(&bob)?.is_empty());
    Ok(())
}

/// A raw connection to the relay logged in as `user`.
async fn logged_in(relay: &TestRelay, user: &str) -> Result<RelayLink> {
    uchat_tests::raw_login(relay, user).await
}

/// Requests as a forger would write them: the real ones plus a `user` field naming
/// someone else.
#[derive(Serialize)]
#[serde(tag = "type", content = "body")]
enum Forged {
    Friends {
        user: String,
    },
    FriendRequests {
        user: String,
    },
    SetProfile {
        user: String,
        signature: Option<String>,
    },
}

async fn forged(link: &RelayLink, request: &Forged) -> Result<Reply, ConnectionError> {
    let bytes = frame::encode(request, MAX_CONTROL_FRAME_BYTES).expect("small");
    link.request_raw(&bytes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_writes_another_users_social_data() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = TestRelay::start()?;
    let names = ["alice", "bob", "mallory"];
    let peers = tokio::task::spawn_blocking({
        let relay_addr = relay.addr.clone();
        move || -> Result<Vec<Peer>> {
            let peers = names
                .iter()
                .map(|n| {
                    let p = Peer::via(&relay_addr, n)?;
                    p.ok(&["register", n])?;
                    Ok(p)
                })
                .collect::<Result<Vec<_>>>()?;
            befriend(&peers[0], &peers[1])?;
            peers[1].ok(&["profile", "set", "--signature", "bob's own words"])?;
            peers[0].ok(&["friends", "add", "mallory", "--note", "for alice's eyes"])?;
            Ok(peers)
        }
    })
    .await??;
    let mallory = logged_in(&relay, "mallory").await?;

    // Lists take no user: a request naming someone is refused, and the real request
    // answers with the asker's own lists.
    for request in [
        Forged::Friends { user: "bob".into() },
        Forged::FriendRequests { user: "bob".into() },
    ] {
        assert_eq!(
            refused(forged(&mallory, &request).await).code,
            ErrorCode::Malformed
        );
    }
    match mallory.request(&Request::Friends).await? {
        Reply::Friends(reply::Friends { friends }) => assert!(friends.is_empty(), "{friends:?}"),
        other => panic!("{other:?}"),
    }
    match mallory.request(&Request::FriendRequests).await? {
        Reply::FriendRequests(reply::FriendRequests { incoming, outgoing }) => {
            assert!(outgoing.is_empty());
            assert_eq!(incoming.len(), 1, "only mallory's own: {incoming:?}");
            assert_eq!(incoming[0].user.as_str(), "alice");
        }
        other => panic!("{other:?}"),
    }
    // Profiles and presence are for friends only.
    let err = refused(
        mallory
            .request(&Request::GetProfile(request::GetProfile {
                user: UserName::parse("bob")?,
                known_avatar_version: None,
            }))
            .await,
    );
    assert_eq!(err.code, ErrorCode::NotFriends);
    assert!(
        err.message.contains("'bob' is not your friend"),
        "{}",
        err.message
    );
    match mallory
        .request(&Request::Presence(request::Presence {
            users: vec![UserName::parse("bob")?, UserName::parse("alice")?],
        }))
        .await?
    {
        Reply::Presence(reply::Presence { users }) => assert!(users.is_empty(), "{users:?}"),
        other => panic!("{other:?}"),
    }
    // Nor can anyone start a session with a stranger (claiming their one-time keys).
    let err = refused(
        mallory
            .request(&Request::ClaimKey(request::ClaimKey {
                user: UserName::parse("bob")?,
            }))
            .await,
    );
    assert_eq!(err.code, ErrorCode::NotFriends);

    // A profile write naming bob changes mallory's own profile, never bob's.
    let reply = forged(
        &mallory,
        &Forged::SetProfile {
            user: "bob".into(),
            signature: Some("pwned".into()),
        },
    )
    .await?;
    assert!(
        matches!(&reply, Reply::Profile(reply::Profile { user, .. }) if user.as_str() == "mallory"),
        "{reply:?}"
    );
    // A hand-made oversized or non-image avatar is refused by the relay too.
    let err = refused(
        mallory
            .request(&Request::SetProfile(request::SetProfile {
                signature: None,
                avatar: Some(AvatarChange::Set {
                    png: vec![0x89; 600 * 1024],
                }),
            }))
            .await,
    );
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = refused(
        mallory
            .request(&Request::SetProfile(request::SetProfile {
                signature: Some("x".repeat(2000)),
                avatar: Some(AvatarChange::Set {
                    png: b"GIF89a not a png".to_vec(),
                }),
            }))
            .await,
    );
    assert_eq!(err.code, ErrorCode::InvalidInput);
    mallory.close().await;

    // Not logged in: nothing at all.
    let anonymous = connection::dial(
        &relay.addr,
        Some(relay.fingerprint.parse()?),
        "known_relays",
    )
    .await?;
    anonymous
        .request(&Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "anonymous".into(),
        }))
        .await?;
    for request in [Request::Friends, Request::FriendRequests] {
        assert_eq!(
            refused(anonymous.request(&request).await).code,
            ErrorCode::NotAuthenticated
        );
    }
    anonymous.close().await;

    let bob_profile = tokio::task::spawn_blocking(move || profile_of(&peers[0], "bob")).await??;
    assert_eq!(bob_profile["signature"], "bob's own words");
    Ok(())
}
