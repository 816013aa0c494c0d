//! Identity keys: first contact is pinned, a changed key is flagged, safety numbers agree.

use anyhow::Result;
use uchat_store::{PeerStore, PinnedIdentity};
use uchat_tests::{Peer, TestRelay};
use uchat_wire::{IdentityKeys, UserName};

#[test]
fn first_contact_is_flagged_new_then_known_and_safety_numbers_agree() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    alice.send("bob", "one")?;
    alice.send("bob", "two")?;
    let got = bob.history("alice")?;
    assert_eq!(got[0]["identity"], "new");
    assert_eq!(got[1]["identity"], "known");
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
    let carol = Peer::register(&relay, "carol")?;
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
    alice.send("bob", "from my old laptop")?;
    bob.history("alice")?;
    let before = bob.ok(&["safety-number", "alice"])?;

    let laptop = Peer::new(&relay, "alice")?;
    let out = laptop.run(&["--json", "login", "alice"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(line["new_device"], true);
    assert!(String::from_utf8(out.stderr)?.contains("new identity keys"));

    laptop.send("bob", "from my new laptop")?;
    let got = bob.history("alice")?;
    assert_eq!(got[1]["text"], "from my new laptop");
    assert_eq!(got[1]["identity"], "changed");
    // bob answers on the session the new device opened, so the new device can read it.
    bob.send("alice", "welcome back")?;
    let on_laptop = laptop.history("bob")?;
    assert_eq!(on_laptop.last().expect("a reply")["text"], "welcome back");
    // The safety number bob shows still reflects the key he pinned; it is the pinned key
    // that must be re-verified, which is why every message is flagged until then.
    assert_eq!(bob.ok(&["safety-number", "alice"])?, before);
    // Once bob has compared the new number with alice (out of band), he accepts it.
    let accepted = bob.ok(&["--json", "trust", "alice"])?;
    let accepted: serde_json::Value = serde_json::from_str(accepted.trim())?;
    let on_laptop_number = laptop.ok(&["safety-number", "bob"])?;
    assert_eq!(accepted["digits"], on_laptop_number.trim());
    assert_ne!(on_laptop_number, before);
    laptop.send("bob", "verified")?;
    assert_eq!(
        bob.history("alice")?.last().expect("message")["identity"],
        "known"
    );
    // A wrong password on a new device gets nowhere near the keys.
    let thief = Peer::new(&relay, "alice")?;
    let out = thief
        .command(&["login", "alice"])
        .env("UCHAT_PASSWORD", "guessing")
        .output()?;
    assert!(String::from_utf8(out.stderr)?.contains("wrong password"));
    Ok(())
}
