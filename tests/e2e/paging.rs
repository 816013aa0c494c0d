//! Lists longer than one frame holds: a user with over a thousand friends, each with a
//! 200-character signature, and in hundreds of groups, so that the whole friend list and
//! the whole group list are each more than one 1 MiB answer. The CLI and the connect-time
//! friend sync must still list everything and still see one friend's identity change.
//!
//! The friends and groups are planted with `RelayStore` while the relay is stopped (the
//! same store calls the relay makes for real requests, without an argon2 hash per account),
//! in a copy of its database in memory (`/dev/shm`, where the system has it), since the
//! thousands of durable commits would take a minute on a disk; the user herself and the
//! friend who moves to a new device are real.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::sync::broadcast::error::RecvError;
use uchat_peer::{Client, ClientEvent, ClientOptions};
use uchat_store::{AccountRecord, AvatarUpdate, GroupLimits, RelayStore, SocialLimits};
use uchat_tests::{PASSWORD, Peer, TestRelay, befriend, json_lines};
use uchat_wire::msg::group::MAX_GROUP_NAME_CHARS;
use uchat_wire::msg::social::MAX_SIGNATURE_CHARS;
use uchat_wire::{GroupId, IdentityKeys, UserName};

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
    let social = SocialLimits {
        max_friends: limits.max_friends,
        max_pending_incoming: limits.max_pending_friend_requests,
        queue: limits.queue(),
    };
    let groups = GroupLimits {
        max_members: limits.max_group_members,
        max_groups_per_user: limits.max_groups_per_user,
        queue: limits.queue(),
    };
    let now = 1_767_225_600_000;
    let signature = "🌸".repeat(MAX_SIGNATURE_CHARS);
    let mut friends = Vec::with_capacity(FRIENDS);
    for i in 0..FRIENDS {
        let name = friend_name(i)?;
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
        store.register_account(&account, &[], None, 0)?;
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
        id[..8].copy_from_slice(&(g as u64).to_be_bytes());
        store.create_group(una, GroupId(id), &name, &members, now + g as u64, &groups)?;
    }
    let (_, head) = store.queue_span(una)?;
    store.ack_through(una, head)?;
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
    let options = ClientOptions {
        home: peer.home().to_path_buf(),
        relay: Some(relay.addr.clone()),
        relay_fingerprint: Some(relay.fingerprint.parse()?),
    };
    let client = Client::open(options, PASSWORD).await?;
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
            if listed.len() != GROUPS {
                failures.push(format!(
                    "group list: {} groups listed, {GROUPS} expected",
                    listed.len()
                ));
            }
        }
        Err(e) => failures.push(format!("group list: {e:#}")),
    }

    // xia moves to a new device while una is away; una's next connect must notice.
    let laptop = Peer::new(&relay, "xia")?;
    laptop.ok(&["login", "xia", "--new-device"])?;
    let xia_name = UserName::parse("xia")?;
    let runtime = tokio::runtime::Runtime::new()?;
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
