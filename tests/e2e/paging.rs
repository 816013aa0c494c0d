//! Lists longer than one frame holds: a user with over a thousand friends, each with a
//! 200-character signature, and in a thousand groups, so that the whole friend list and
//! the whole group list are each more than one 1 MiB answer. The CLI and the connect-time
//! friend sync must still list everything (a page at a time) and still see one friend's
//! identity change; an older peer asking for a whole list is told to upgrade.
//!
//! The friends and groups are planted with `RelayStore` while the relay is stopped (the
//! same store calls the relay makes for real requests, without an argon2 hash per account),
//! in a copy of its database in memory (`/dev/shm`, where the system has it), since the
//! thousands of durable commits would take a minute on a disk; the user herself and the
//! friend who moves to a new device are real.

use std::time::{Duration, Instant};
use uchat_wire::{reply, request};

use anyhow::{Context, Result, bail, ensure};
use tokio::sync::broadcast::error::RecvError;
use uchat_peer::ClientEvent;
use uchat_store::{AccountRecord, AvatarUpdate, RelayStore};
use uchat_tests::{Peer, TestRelay, befriend, json_lines, raw_login, refused};
use uchat_wire::msg::group::MAX_GROUP_NAME_CHARS;
use uchat_wire::msg::social::MAX_SIGNATURE_CHARS;
use uchat_wire::{ErrorCode, GroupId, IdentityKeys, Reply, Request, UserName};

/// Friends planted for the user: at about 1 KiB each (a 32-character name, identity keys
/// and 200 four-byte characters of signature) together well over 1 MiB.
const FRIENDS: usize = 1_100;
/// Groups planted with the user in them, as many as one may be in: at about 1.1 KiB each
/// (a 64-character name, 14 members with 32-character names) together over 1 MiB. Many
/// small groups rather than a few large ones, since making a group queues its member list
/// for every member: the bytes written grow with the square of its size.
const GROUPS: usize = 1_000;
/// Members of each planted group besides the user.
const OTHERS_PER_GROUP: usize = 13;
/// Planted users who asked the user to be friends, and whom she asked.
const ASKED_HER: [&str; 5] = ["rex", "quinn", "pia", "otto", "nell"];
const SHE_ASKED: [&str; 3] = ["mia", "lou", "kai"];

/// The name of planted friend `i`: 32 characters, as long as names get.
fn friend_name(i: usize) -> Result<UserName> {
    Ok(UserName::parse(&format!(
        "friend{i:04}-with-a-long-user-name"
    ))?)
}

/// Makes `una` friends with [`FRIENDS`] planted users, each with a long signature, and a
/// member of [`GROUPS`] groups she owns, in the stopped relay's store (through a copy in
/// memory); then acknowledges her queue, as if her device had taken in the group events
/// long ago.
fn plant_friends_and_groups(relay: &TestRelay, una: &UserName) -> Result<()> {
    let database = relay.data_dir().join("relay.redb");
    let shm = std::path::Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    };
    let copy = scratch.path().join("relay.redb");
    std::fs::copy(&database, &copy).context("copying the relay's database")?;
    plant_in(&copy, una)?;
    std::fs::copy(&copy, &database).context("copying the planted database back")?;
    Ok(())
}

/// The planting of [`plant_friends_and_groups`] in the database at `path`.
fn plant_in(path: &std::path::Path, una: &UserName) -> Result<()> {
    let store = RelayStore::open(path)?;
    let limits = uchat_relay::Limits::default();
    let (social, groups) = (limits.social(), limits.groups());
    let now = 1_767_225_600_000;
    let signature = "🌸".repeat(MAX_SIGNATURE_CHARS);
    let mut friends = Vec::with_capacity(FRIENDS);
    let register = |i: usize, name: &UserName| {
        let [lo, hi] = (i as u16).to_le_bytes();
        let account = AccountRecord {
            username: name.clone(),
            // Planted users never log in.
            password_hash: "planted".into(),
            identity: IdentityKeys {
                curve25519: [[lo, hi, 1].as_slice(), &[7; 29]].concat(),
                ed25519: [[lo, hi, 2].as_slice(), &[9; 29]].concat(),
            },
            created_ms: now,
        };
        store.register_account(&account, &[], None, 0)
    };
    for i in 0..FRIENDS {
        let name = friend_name(i)?;
        register(i, &name)?;
        // The planted user asks and una accepts, so her queue keeps nothing of it.
        store.request_friend(&name, una, "", now, &social)?;
        store.accept_friend(una, &name, now, &social)?;
        store.set_profile(&name, Some(&signature), AvatarUpdate::Keep, now)?;
        friends.push(name);
    }
    for g in 0..GROUPS {
        let members: Vec<UserName> = (0..OTHERS_PER_GROUP)
            .map(|k| friends[(g * 7 + k) % FRIENDS].clone())
            .collect();
        let title = format!("第{g}个群");
        let name = format!(
            "{title}{}",
            "🎉".repeat(MAX_GROUP_NAME_CHARS - title.chars().count())
        );
        let mut id = [0x5a; 16];
        // Ids in the reverse order of making, so that listing oldest first is a choice.
        id[..8].copy_from_slice(&((GROUPS - g) as u64).to_be_bytes());
        store.create_group(una, GroupId(id), &name, &members, now + g as u64, &groups)?;
    }
    // A few pending requests each way, sent a minute apart: in another order than their
    // names sort in.
    for (i, name) in ASKED_HER.iter().chain(&SHE_ASKED).enumerate() {
        let name = UserName::parse(name)?;
        register(FRIENDS + i, &name)?;
        let sent_ms = now + 60_000 * i as u64;
        if i < ASKED_HER.len() {
            store.request_friend(&name, una, &format!("我是{name}"), sent_ms, &social)?;
        } else {
            store.request_friend(una, &name, "", sent_ms, &social)?;
        }
    }
    let (_, head) = store.queue_span(una)?;
    store.ack_through(una, head)?;
    Ok(())
}

/// The whole lists asked for the old way, in one answer each, by a peer older than
/// paging, and the same lists a page at a time, on a raw connection as `una`.
async fn old_and_paged_requests_on_the_wire(relay: &TestRelay) -> Result<()> {
    let link = raw_login(relay, "una").await?;
    for (request, what) in [
        (Request::Friends, "your friend list is"),
        (Request::Groups, "the list of your groups is"),
    ] {
        let refusal = refused(link.request(&request).await);
        ensure!(
            refusal.code == ErrorCode::TooLarge
                && refusal.message
                    == format!(
                        "{what} too long for one answer; upgrade uchat, which asks for it a page at a time"
                    ),
            "{request:?} got {refusal:?}"
        );
    }
    // The pending requests still fit in one answer, so the old request still works.
    let Reply::FriendRequests(reply::FriendRequests { incoming, outgoing }) =
        link.request(&Request::FriendRequests).await?
    else {
        bail!("FriendRequests got another answer");
    };
    ensure!(
        (incoming.len(), outgoing.len()) == (ASKED_HER.len(), SHE_ASKED.len()),
        "FriendRequests listed {} and {}",
        incoming.len(),
        outgoing.len()
    );
    // A full page of friends is cut short by its byte budget, well before a thousand.
    let reply = link
        .request(&Request::FriendsPage(request::FriendsPage {
            after: None,
            limit: 1000,
        }))
        .await?;
    let Reply::FriendsPage(reply::FriendsPage { friends, next }) = reply else {
        bail!("FriendsPage got another answer");
    };
    ensure!(
        (500..1000).contains(&friends.len()) && next.as_ref() == friends.last().map(|f| &f.user),
        "a first page of {} friends, then {next:?}",
        friends.len()
    );
    // Small pages of requests follow each other by name, and the last says so.
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let reply = link
            .request(&Request::IncomingFriendRequestsPage(
                request::IncomingFriendRequestsPage { after, limit: 2 },
            ))
            .await?;
        let Reply::FriendRequestsPage(reply::FriendRequestsPage { requests, next }) = reply else {
            bail!("IncomingFriendRequestsPage got another answer");
        };
        pages.push(
            requests
                .iter()
                .map(|r| r.user.to_string())
                .collect::<Vec<_>>(),
        );
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ensure!(
        pages == [vec!["nell", "otto"], vec!["pia", "quinn"], vec!["rex"]],
        "pages of incoming requests: {pages:?}"
    );
    Ok(())
}

/// Opens `peer`'s profile with the client library and waits (up to `limit`) for the
/// connect-time friend sync to report `user`'s identity change.
async fn sync_reports_identity_change(
    relay: &TestRelay,
    peer: &Peer,
    user: &UserName,
    limit: Duration,
) -> Result<()> {
    let client = peer.open_client(relay).await?;
    // The first subscription gets every event since the client connected.
    let mut events = client.subscribe();
    let seen = tokio::time::timeout(limit, async {
        loop {
            match events.recv().await {
                Ok(ClientEvent::IdentityChanged { user: who }) if &who == user => return true,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    client.close().await;
    ensure!(
        seen,
        "opening {}'s profile reported no identity change of {user} within {limit:?}",
        peer.name
    );
    Ok(())
}

#[test]
fn friend_and_group_lists_beyond_one_frame_are_listed_whole_and_identity_changes_still_show()
-> Result<()> {
    let started = Instant::now();
    let mut relay = TestRelay::start()?;
    let una = Peer::register(&relay, "una")?;
    let xia = Peer::register(&relay, "xia")?;
    // A real friend: una pins xia's identity keys when she accepts.
    befriend(&xia, &una)?;
    relay.terminate()?;
    let una_name = UserName::parse("una")?;
    plant_friends_and_groups(&relay, &una_name)?;
    relay.restart()?;
    let planted_in = started.elapsed();

    // Each check is recorded rather than stopping the test, so one run shows every one
    // that fails.
    let mut failures: Vec<String> = Vec::new();
    match una.ok(&["--json", "friends", "list"]) {
        Ok(out) => {
            let listed = json_lines(&out)?;
            if listed.len() != FRIENDS + 1 {
                failures.push(format!(
                    "friends list: {} friends listed, {} expected",
                    listed.len(),
                    FRIENDS + 1
                ));
            }
            if listed.iter().any(|f| f["identity_changed"] == true) {
                failures.push("friends list: an identity change before any happened".into());
            }
        }
        Err(e) => failures.push(format!("friends list: {e:#}")),
    }
    match una.ok(&["--json", "group", "list"]) {
        Ok(out) => {
            let listed = json_lines(&out)?;
            let names: Vec<&str> = listed.iter().filter_map(|g| g["name"].as_str()).collect();
            if listed.len() != GROUPS || !names.first().is_some_and(|n| n.starts_with("第0个群"))
            {
                failures.push(format!(
                    "group list: {} groups listed ({:?} first), {GROUPS} expected, oldest first",
                    listed.len(),
                    names.first()
                ));
            }
        }
        Err(e) => failures.push(format!("group list: {e:#}")),
    }
    match una.ok(&["--json", "friends", "requests"]) {
        Ok(out) => {
            let listed: Vec<String> = json_lines(&out)?
                .iter()
                .map(|l| {
                    let who = l["from"].as_str().or(l["to"].as_str()).unwrap_or_default();
                    format!("{} {who}", l["type"].as_str().unwrap_or_default())
                })
                .collect();
            let expected: Vec<String> = ASKED_HER
                .iter()
                .map(|n| format!("friend_request {n}"))
                .chain(SHE_ASKED.iter().map(|n| format!("friend_request_sent {n}")))
                .collect();
            if listed != expected {
                failures.push(format!(
                    "friends requests: {listed:?}, expected oldest first {expected:?}"
                ));
            }
        }
        Err(e) => failures.push(format!("friends requests: {e:#}")),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    if let Err(e) = runtime.block_on(old_and_paged_requests_on_the_wire(&relay)) {
        failures.push(format!("on the wire: {e:#}"));
    }

    // xia moves to a new device while una is away; una's next connect must notice.
    let laptop = Peer::new(&relay, "xia")?;
    laptop.ok(&["login", "xia", "--new-device"])?;
    let xia_name = UserName::parse("xia")?;
    if let Err(e) = runtime.block_on(sync_reports_identity_change(
        &relay,
        &una,
        &xia_name,
        Duration::from_secs(20),
    )) {
        failures.push(format!("connect-time sync: {e:#}"));
    }
    match una.ok(&["--json", "friends", "list"]) {
        Ok(out) => {
            let listed = json_lines(&out)?;
            let changed: Vec<&str> = listed
                .iter()
                .filter(|f| f["identity_changed"] == true)
                .filter_map(|f| f["user"].as_str())
                .collect();
            if changed != ["xia"] {
                failures.push(format!(
                    "friends list after the new device: identity changed for {changed:?}, only xia expected"
                ));
            }
        }
        Err(e) => failures.push(format!("friends list after the new device: {e:#}")),
    }
    drop(xia);
    assert!(
        failures.is_empty(),
        "{} of the checks failed (planted in {planted_in:?}, {:?} in all):\n{}",
        failures.len(),
        started.elapsed(),
        failures.join("\n")
    );
    eprintln!("planted in {planted_in:?}, {:?} in all", started.elapsed());
    Ok(())
}
