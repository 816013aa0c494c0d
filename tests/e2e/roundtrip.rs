//! Messages round-trip byte for byte, from one byte to 64 KiB of Chinese.

use anyhow::Result;
use uchat_tests::{Peer, TestRelay, befriend};

#[test]
fn one_byte_64_kib_of_chinese_and_mixed_emoji_round_trip_byte_for_byte() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let chinese: String = "统一码万国码汉字测试中文消息"
        .chars()
        .cycle()
        .take(64 * 1024 / 3)
        .collect();
    assert_eq!(chinese.len(), 64 * 1024 - 1); // 21,845 three-byte characters
    let texts = [
        "x".to_string(),
        chinese,
        "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag, é (e + combining), 🇨🇳🇬🇧, \u{200d}zwj, tab\tnewline\nend ✅"
            .to_string(),
    ];
    for t in &texts {
        alice.send("bob", t)?;
    }
    let got = bob.history("alice")?;
    assert_eq!(got.len(), texts.len());
    for (m, want) in got.iter().zip(&texts) {
        let text = m["text"].as_str().expect("decrypted text");
        assert_eq!(text.as_bytes(), want.as_bytes());
    }
    Ok(())
}

#[test]
fn empty_and_oversized_messages_are_refused_before_sending() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    Peer::register(&relay, "bob")?;
    let err = alice.fails(&["send", "bob", ""])?;
    assert!(err.contains("empty"), "{err}");
    // 300,000 bytes, over the 256 KiB limit (through stdin: argv caps one argument at 128 KiB).
    let out = alice.run_with_stdin(&["send", "bob", "-"], "字".repeat(100_000).as_bytes())?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("300000 bytes") && err.contains("limit"),
        "{err}"
    );
    let err = alice.fails(&["send", "alice", "me"])?;
    assert!(err.contains("yourself"), "{err}");
    Ok(())
}
