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
