//! The relay never holds plaintext: not in its data directory, not in its logs.

use std::path::Path;

use anyhow::Result;
use uchat_tests::{PASSWORD, Peer, TestRelay, befriend, texts};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable data dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

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
                !contains(&bytes, secret.as_bytes()),
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
