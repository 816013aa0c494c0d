//! The relay never holds plaintext: not in its data directory, not in its logs.

use anyhow::Result;
use uchat_tests::{PASSWORD, Peer, TestRelay, befriend, contains_bytes, files_under, texts};

#[test]
fn the_relay_data_directory_and_log_never_hold_plaintext() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let secrets = [
        "Zebra-Quartz-Marmalade-7731 the eagle lands at dawn",
        "秘密消息：明天下午三点在老地方见面，带上那本红色的书",
        "🦄🔐🌋🎻🧬 emoji-only-secret 🛸🪐🍄",
    ];
    for s in &secrets {
        alice.send("bob", s)?;
    }
    // bob takes some in while online, the rest after a restart; then replies.
    assert_eq!(texts(&bob.history("alice")?), secrets);
    bob.send("alice", secrets[1])?;
    alice.history("bob")?;
    // A clean stop flushes whatever the relay would ever write.
    relay.terminate()?;

    let log = relay.log();
    let files = files_under(relay.data_dir());
    assert!(!files.is_empty());
    for secret in secrets.iter().copied().chain([PASSWORD]) {
        for file in &files {
            let bytes = std::fs::read(file)?;
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "{} holds the plaintext {secret:?}",
                file.display()
            );
        }
        assert!(
            !log.contains(secret),
            "the relay log holds the plaintext {secret:?}"
        );
    }
    // The positive control: the log is not empty and talks about the messages.
    assert!(
        log.contains("message queued"),
        "debug log should record routing:\n{log}"
    );
    Ok(())
}
