//! The foundation's chat guarantees through simulated networks: a `lossy` path (5 % loss,
//! 50 ms ± 20 ms) and a `3g` path. Every message arrives exactly once and in order.

use anyhow::Result;
use uchat_netsim::Topology;
use uchat_netsim::model::profile::profile;
use uchat_tests::{Peer, TestRelay, befriend, texts};

/// Runs the chat scenario with both users behind paths shaped like `profile_name`.
async fn chat_through(profile_name: &str, seed: u64) -> Result<()> {
    let mut relay = TestRelay::start()?;
    let relay_addr: std::net::SocketAddr = relay.addr.parse()?;
    let shape = profile(profile_name).expect("a built-in profile");
    let mut net = Topology::new(seed);
    let alice_path = net.path_to(relay_addr, &shape).await?.to_string();
    let bob_path = net.path_to(relay_addr, &shape).await?.to_string();
    let alice = Peer::via(&alice_path, "alice")?;
    let bob = Peer::via(&bob_path, "bob")?;
    let fingerprint = relay.fingerprint.clone();

    // Some messages span many datagrams (64 KiB of Chinese), so loss hits them mid-way.
    let big: String = "网络模拟".chars().cycle().take(21_000).collect();
    let sent: Vec<String> = (0..6)
        .map(|i| {
            if i == 3 {
                big.clone()
            } else {
                format!("{profile_name} #{i} 你好")
            }
        })
        .collect();
    let name = profile_name.to_string();
    let (alice, bob, mut relay) = tokio::task::spawn_blocking(move || -> Result<_> {
        let profile_name = name.as_str();
        let pin = ["--relay-fingerprint", fingerprint.as_str()];
        alice.ok(&[&pin[..], &["register", "alice"]].concat())?;
        bob.ok(&[&pin[..], &["register", "bob"]].concat())?;
        befriend(&alice, &bob)?;
        // bob is offline while alice writes; the relay is killed mid-way and comes back.
        for (i, text) in sent.iter().enumerate() {
            alice.send("bob", text)?;
            if i == 2 {
                relay.kill_9();
                relay.restart()?;
            }
        }
        let got = bob.history("alice")?;
        assert_eq!(
            texts(&got),
            sent,
            "through {profile_name}: exactly once, in order"
        );
        assert!(got.iter().all(|m| m["from"] == "alice"));
        // And back, with both online in turn; a second look shows no duplicates.
        for i in 0..3 {
            bob.send("alice", &format!("reply {i}"))?;
        }
        assert_eq!(
            texts(&alice.history("bob")?)[6..],
            ["reply 0", "reply 1", "reply 2"]
        );
        let from_alice = bob
            .history("alice")?
            .into_iter()
            .filter(|m| m["from"] == "alice")
            .count();
        assert_eq!(from_alice, 6, "no duplicates on a second look");
        Ok((alice, bob, relay))
    })
    .await??;
    let stats = net.stats();
    // The path really was impaired: the simulator counted its own drops (lossy) or delays.
    let sent_up: u64 = stats.iter().map(|s| s.up.sent).sum();
    assert!(sent_up > 50, "traffic went through the paths: {stats:?}");
    if profile_name == "3g" {
        // 3G's 384 kbit/s uplink made datagrams wait behind one another (a queue of at
        // least two full QUIC datagrams), which only a rate limit does: the path shaped it.
        let peak = stats
            .iter()
            .map(|s| s.up.queue_peak_bytes)
            .max()
            .unwrap_or(0);
        assert!(peak >= 2400, "the 3g uplink never queued: {stats:?}");
    }
    if profile_name == "lossy" {
        let dropped: u64 = stats
            .iter()
            .map(|s| s.up.dropped_total() + s.down.dropped_total())
            .sum();
        assert!(dropped > 0, "a 5 % loss path dropped nothing: {stats:?}");
    }
    net.shutdown().await;
    relay.kill_9();
    drop((alice, bob));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_a_lossy_path_arrives_once_and_in_order() -> Result<()> {
    chat_through("lossy", 11).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_a_3g_path_arrives_once_and_in_order() -> Result<()> {
    chat_through("3g", 12).await
}
