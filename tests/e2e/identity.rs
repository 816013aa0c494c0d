//! Identity keys: pinned when two users become friends, a changed key is flagged, safety numbers agree.

use std::time::Duration;

use anyhow::{Context, Result};
use uchat_peer::store::{PeerStore, PinnedIdentity};
use uchat_tests::{JsonListener, Peer, TestRelay, befriend, json_lines};
use uchat_wire::{IdentityKeys, UserName};

#[test]
fn friends_pin_each_others_keys_when_they_befriend_and_safety_numbers_agree() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    // alice learns of bob's acceptance on her next run.
    alice.ok(&["whoami"])?;
    alice.ok(&["friends", "requests"])?;
    // Each side fetched the other's identity keys once, when they became friends.
    let pin_of = |peer: &Peer, whose: &str| -> Result<Option<IdentityKeys>> {
        let store = PeerStore::open(&peer.home().join("uchat.redb"))?;
        Ok(store
            .pinned_identity(&UserName::parse(whose)?)?
            .map(|p| p.identity))
    };
    let alice_seen_by_bob = pin_of(&bob, "alice")?.expect("bob pinned alice's keys");
    let bob_seen_by_alice = pin_of(&alice, "bob")?.expect("alice pinned bob's keys");
    assert_ne!(alice_seen_by_bob, bob_seen_by_alice);
    alice.send("bob", "one")?;
    alice.send("bob", "two")?;
    let got = bob.history("alice")?;
    assert_eq!(got[0]["identity"], "known", "the key is the pinned one");
    assert_eq!(got[1]["identity"], "known");
    assert_eq!(
        pin_of(&bob, "alice")?,
        Some(alice_seen_by_bob),
        "kept as pinned"
    );
    let a = alice.ok(&["safety-number", "bob"])?;
    let b = bob.ok(&["safety-number", "alice"])?;
    assert_eq!(a, b);
    assert_eq!(a.trim().split(' ').count(), 12);
    Ok(())
}

#[test]
fn a_message_from_a_changed_identity_is_flagged_and_sending_to_it_is_refused() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let carol = Peer::register(&relay, "carol")?;
    befriend(&bob, &carol)?;
    alice.send("bob", "hello")?;
    bob.history("alice")?;
    // Make bob's pinned key for alice differ from the key she really uses, as if alice's
    // key had been replaced by someone else since bob first met her. (No uchat process is
    // running for bob, so the store is free.)
    let alice_name = UserName::parse("alice")?;
    let carol_name = UserName::parse("carol")?;
    {
        let store = PeerStore::open(&bob.home().join("uchat.redb"))?;
        let other = IdentityKeys {
            curve25519: vec![7; 32],
            ed25519: vec![8; 32],
        };
        store.pin_identity(
            &alice_name,
            &PinnedIdentity {
                identity: other.clone(),
                pinned_ms: 1,
            },
        )?;
        store.pin_identity(
            &carol_name,
            &PinnedIdentity {
                identity: other,
                pinned_ms: 1,
            },
        )?;
    }
    alice.send("bob", "is this still me?")?;
    let got = bob.history("alice")?;
    assert_eq!(got[1]["text"], "is this still me?");
    assert_eq!(
        got[1]["identity"], "changed",
        "never silently accepted: {got:?}"
    );
    let human = bob.ok(&["history", "alice"])?;
    assert!(human.contains("identity key changed"), "{human}");
    // bob has no session with carol yet: starting one with a key other than the pinned one
    // is refused with advice.
    let err = bob.fails(&["send", "carol", "hi"])?;
    assert!(
        err.contains("identity key has changed") && err.contains("safety-number"),
        "{err}"
    );
    drop(carol);
    Ok(())
}

#[test]
fn logging_in_on_a_new_device_makes_new_keys_that_contacts_see_as_changed() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "from my old laptop")?;
    bob.history("alice")?;
    let before = bob.ok(&["safety-number", "alice"])?;

    let mut watcher = JsonListener::start(&bob, 60)?;
    let laptop = Peer::new(&relay, "alice")?;
    // A mistyped --home must not silently replace the identity.
    let err = laptop.fails(&["login", "alice"])?;
    assert!(err.contains("--new-device"), "{err}");
    let out = laptop.run(&["--json", "login", "alice", "--new-device"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(line["new_device"], true);
    assert!(String::from_utf8(out.stderr)?.contains("new identity keys"));
    // bob, online, is warned at once; offline, he would see it in his friend list.
    watcher
        .wait_for(Duration::from_secs(5), |l| {
            l["type"] == "identity_changed" && l["user"] == "alice"
        })
        .context("bob is warned that alice's key changed")?;
    drop(watcher);
    let listed = json_lines(&bob.ok(&["--json", "friends", "list"])?)?;
    assert_eq!(listed[0]["identity_changed"], true, "{listed:?}");

    laptop.send("bob", "from my new laptop")?;
    let got = bob.history("alice")?;
    assert_eq!(got[1]["text"], "from my new laptop");
    assert_eq!(got[1]["identity"], "changed");
    // Until bob accepts the new key, he keeps writing to the key he pinned: never to an
    // unverified one. The laptop keeps that message, marked undecryptable.
    bob.send("alice", "to the key I verified")?;
    let on_laptop = laptop.history("bob")?;
    assert_eq!(on_laptop.last().expect("kept")["status"], "undecryptable");
    // bob's safety number still reflects the key he pinned, and now also shows the number
    // of the key the relay serves: the one to compare with alice before trusting it.
    let numbers: serde_json::Value =
        serde_json::from_str(bob.ok(&["--json", "safety-number", "alice"])?.trim())?;
    assert_eq!(
        format!("{}\n", numbers["digits"].as_str().unwrap_or_default()),
        before
    );
    let changed = numbers["changed_digits"]
        .as_str()
        .expect("a changed number")
        .to_string();
    let on_laptop = laptop.ok(&["safety-number", "bob"])?;
    assert_eq!(
        on_laptop.trim(),
        changed,
        "both sides see the same new number"
    );
    let human = bob.ok(&["safety-number", "alice"])?;
    assert!(
        human.contains("WARNING") && human.contains("uchat trust alice"),
        "{human}"
    );
    // Digits that do not match are refused and change nothing.
    let err = bob.fails(&["trust", "alice", "12345 67890"])?;
    assert!(err.contains("not the safety number"), "{err}");
    laptop.send("bob", "still unverified")?;
    assert_eq!(
        bob.history("alice")?.last().expect("message")["identity"],
        "changed"
    );
    // After comparing, bob accepts the new key.
    bob.ok(&["trust", "alice", &changed])?;
    let listed = json_lines(&bob.ok(&["--json", "friends", "list"])?)?;
    assert_eq!(listed[0]["identity_changed"], false, "{listed:?}");
    laptop.send("bob", "verified")?;
    assert_eq!(
        bob.history("alice")?.last().expect("message")["identity"],
        "known"
    );
    // …and his replies now go to the new device.
    bob.send("alice", "welcome back")?;
    let on_laptop = laptop.history("bob")?;
    assert_eq!(on_laptop.last().expect("a reply")["text"], "welcome back");
    let numbers: serde_json::Value =
        serde_json::from_str(bob.ok(&["--json", "safety-number", "alice"])?.trim())?;
    assert_eq!(numbers["digits"], changed.as_str());
    assert!(numbers["changed_digits"].is_null());
    // A wrong password on a new device gets nowhere near the keys.
    let thief = Peer::new(&relay, "alice")?;
    let out = thief
        .command(&["login", "alice"])
        .env("UCHAT_PASSWORD", "guessing")
        .output()?;
    assert!(String::from_utf8(out.stderr)?.contains("wrong password"));
    Ok(())
}
