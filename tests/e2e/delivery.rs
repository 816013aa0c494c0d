//! Offline delivery: exactly once, in order, with the right sender — across relay crashes.

use std::time::Duration;

use anyhow::{Context, Result};
use uchat_tests::{JsonListener, Peer, TestRelay, befriend, texts};

#[test]
fn offline_messages_arrive_once_in_order_with_the_right_sender() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let carol = Peer::register(&relay, "carol")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    befriend(&carol, &bob)?;
    // bob is offline (no uchat process runs for him) while both write to him.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(alice.send("bob", &format!("from alice #{i}"))?);
        if i % 2 == 0 {
            carol.send("bob", &format!("from carol #{i}"))?;
        }
    }
    let with_alice = bob.history("alice")?;
    assert_eq!(
        texts(&with_alice),
        (0..5)
            .map(|i| format!("from alice #{i}"))
            .collect::<Vec<_>>()
    );
    for (m, id) in with_alice.iter().zip(&ids) {
        assert_eq!(m["from"], "alice");
        assert_eq!(m["to"], "bob");
        assert_eq!(
            m["id"],
            id.as_str(),
            "the id printed by send is the id bob sees"
        );
        assert_eq!(m["status"], "received");
    }
    assert_eq!(
        texts(&bob.history("carol")?),
        ["from carol #0", "from carol #2", "from carol #4"]
    );
    // Running again takes in nothing new and shows no duplicates.
    assert_eq!(bob.history("alice")?.len(), 5);
    // bob's history showed them, so alice's own history shows them as read.
    let sent = alice.history("bob")?;
    assert!(sent.iter().all(|m| m["status"] == "read"), "{sent:?}");
    Ok(())
}

#[test]
fn messages_survive_a_relay_sigkill_right_after_send_returns() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "before the crash 1")?;
    alice.send("bob", "before the crash 2 崩溃")?;
    // SIGKILL the moment `send` has returned: the message was acknowledged, so it must
    // already be on disk.
    relay.kill_9();
    relay.restart()?;
    alice.send("bob", "after the restart")?;
    relay.kill_9();
    relay.restart()?;
    assert_eq!(
        texts(&bob.history("alice")?),
        [
            "before the crash 1",
            "before the crash 2 崩溃",
            "after the restart"
        ]
    );
    // And bob's acknowledgements were durable too: nothing comes twice after another crash.
    relay.kill_9();
    relay.restart()?;
    assert_eq!(bob.history("alice")?.len(), 3);
    bob.send("alice", "got them")?;
    assert_eq!(
        texts(&alice.history("bob")?).last().map(String::as_str),
        Some("got them")
    );
    Ok(())
}

#[test]
fn a_message_written_while_the_relay_is_down_waits_in_the_outbox() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "first")?; // opens the session while the relay is up
    relay.kill_9();
    let err = alice.fails(&["send", "bob", "typed while offline"])?;
    assert!(
        err.contains("outbox"),
        "the user is told the message is kept: {err}"
    );
    relay.restart()?;
    // The next run of any command sends it.
    alice.ok(&["history", "bob"])?;
    assert_eq!(
        texts(&bob.history("alice")?),
        ["first", "typed while offline"]
    );
    Ok(())
}

#[test]
fn a_listening_peer_sees_messages_as_they_arrive() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    alice.send("bob", "queued before listen")?;
    let listener = bob
        .command(&["--json", "listen", "--for", "6"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    alice.send("bob", "live 实时")?;
    let out = listener.wait_with_output()?;
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let messages: Vec<_> = lines.iter().filter(|l| l["type"] == "message").collect();
    assert_eq!(messages.len(), 2, "{lines:?}");
    assert_eq!(messages[0]["text"], "queued before listen");
    assert_eq!(messages[1]["text"], "live 实时");
    assert_eq!(messages[1]["from"], "alice");
    assert!(messages[1]["group"].is_null());
    Ok(())
}

#[test]
fn the_sender_sees_its_messages_delivered_then_read() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let first = alice.send("bob", "are you there?")?;
    assert_eq!(
        alice.status_of("bob", &first)?,
        "sent",
        "bob was not online yet"
    );

    // bob's device takes the message in without showing it: delivered, not read.
    bob.ok(&["friends", "list"])?;
    assert_eq!(alice.status_of("bob", &first)?, "delivered");
    let second = alice.send("bob", "第二条")?;

    // alice is online while bob reads both: she is told as it happens.
    let mut listener = JsonListener::start(&alice, 40)?;
    let shown = bob.history("alice")?;
    assert!(
        shown.iter().all(|m| m["status"] == "received"),
        "a receipt never changes the reader's own copy: {shown:?}"
    );
    let read = listener.wait_for(Duration::from_secs(20), |l| {
        l["type"] == "receipt"
            && l["kind"] == "read"
            && l["from"] == "bob"
            && l["ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i == &second))
    });
    let _ = listener.child().kill();
    let _ = listener.child().wait();
    let (_, read) = read.context("alice's listener shows bob's read receipt")?;
    let ids: Vec<&str> = read["ids"]
        .as_array()
        .context("ids")?
        .iter()
        .filter_map(|i| i.as_str())
        .collect();
    assert!(
        ids.contains(&first.as_str()) && ids.contains(&second.as_str()),
        "{read}"
    );
    assert_eq!(alice.status_of("bob", &first)?, "read");
    assert_eq!(alice.status_of("bob", &second)?, "read");

    // Receipts are not messages: neither side's history shows them.
    assert_eq!(texts(&alice.history("bob")?), ["are you there?", "第二条"]);
    assert_eq!(texts(&bob.history("alice")?), ["are you there?", "第二条"]);
    Ok(())
}

#[test]
fn a_command_that_only_lists_friends_still_takes_in_everything_waiting() -> Result<()> {
    const WAITING: usize = 150;
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    befriend(&alice, &bob)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let sender = alice.open_client(&relay).await?;
        let bob_name = uchat_wire::UserName::parse("bob")?;
        for i in 0..WAITING {
            sender.send_text(&bob_name, &format!("waiting {i}")).await?;
        }
        sender.close().await;
        anyhow::Ok(())
    })?;
    // The CLI contract: every invocation takes in pending events and stores them before it
    // exits, whatever its own work was.
    bob.ok(&["friends", "list"])?;
    relay.kill_9();
    let stored = runtime.block_on(async {
        let reader = bob.open_client(&relay).await?;
        let conversation =
            uchat_peer::store::ConversationId::direct(&uchat_wire::UserName::parse("alice")?);
        let stored = reader.history(&conversation, 10 * WAITING)?.len();
        reader.close().await;
        anyhow::Ok(stored)
    })?;
    assert_eq!(stored, WAITING, "bob's device stored every waiting message");
    Ok(())
}

#[test]
fn a_backlog_from_two_senders_with_receipts_among_it_is_taken_in_whole_and_in_order() -> Result<()>
{
    const EACH: usize = 60;
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    let carol = Peer::register(&relay, "carol")?;
    befriend(&alice, &bob)?;
    befriend(&carol, &bob)?;
    let asked = bob.send("alice", "are you there?")?;
    // alice reads it: her delivered and read receipts wait in bob's queue.
    alice.history("bob")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let from_alice = alice.open_client(&relay).await?;
        let from_carol = carol.open_client(&relay).await?;
        let bob_name = uchat_wire::UserName::parse("bob")?;
        // Interleaved, so one pushed batch holds both senders (carol's all pre-key
        // messages on one new session, since bob has not answered her yet).
        for i in 0..EACH {
            from_alice
                .send_text(&bob_name, &format!("alice {i}"))
                .await?;
            from_carol
                .send_text(&bob_name, &format!("carol {i}"))
                .await?;
        }
        from_alice.close().await;
        from_carol.close().await;
        anyhow::Ok(())
    })?;
    let from_alice = bob.history("alice")?;
    let mut expected = vec!["are you there?".to_string()];
    expected.extend((0..EACH).map(|i| format!("alice {i}")));
    assert_eq!(texts(&from_alice), expected);
    assert_eq!(
        texts(&bob.history("carol")?),
        (0..EACH).map(|i| format!("carol {i}")).collect::<Vec<_>>()
    );
    assert_eq!(bob.status_of("alice", &asked)?, "read");
    // And both senders hear that everything was delivered (bob's history read them too).
    for (sender, name) in [(&alice, "bob"), (&carol, "bob")] {
        let statuses: Vec<_> = sender
            .history(name)?
            .iter()
            .filter(|m| m["from"] != "bob")
            .map(|m| m["status"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            statuses.iter().all(|s| s == "delivered" || s == "read"),
            "{statuses:?}"
        );
    }
    Ok(())
}

#[test]
fn callers_reconnecting_at_once_share_the_dials_and_each_gives_up_on_its_own_time() -> Result<()> {
    let metrics = format!("127.0.0.1:{}", TestRelay::free_tcp_port()?);
    let mut relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = alice.open_client(&relay).await?;
        relay.terminate()?;
        tokio::time::timeout(Duration::from_secs(10), client.disconnected())
            .await
            .context("the client saw the relay go")?;
        {
            let patient = client.reconnect(Duration::from_secs(60));
            tokio::pin!(patient);
            let started = std::time::Instant::now();
            // The hasty caller gives up after a second even though the patient one, which
            // asked first, still waits: neither waits for the other.
            let hasty = tokio::select! {
                hasty = client.reconnect(Duration::from_secs(1)) => hasty,
                patient = &mut patient => anyhow::bail!("the patient caller returned with the relay down: {patient:?}"),
            };
            assert!(hasty.is_err(), "the relay is down: {hasty:?}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the hasty caller gave up on its own time, not the patient one's: {:?}",
                started.elapsed()
            );
            relay.restart_with(&["--metrics", &metrics])?;
            let (patient, late) =
                tokio::join!(patient, client.reconnect(Duration::from_secs(60)));
            patient?;
            late?;
            assert!(client.is_online());
            let (_, body) = TestRelay::http_get(&metrics, "/metrics")?;
            assert!(
                body.contains(r#"uchat_requests_total{kind="resume",outcome="ok"} 1"#),
                "the callers shared one dial: {body}"
            );
        }
        client.close().await;
        anyhow::Ok(())
    })
}

#[test]
fn every_send_racing_the_receipts_that_come_back_reports_sent() -> Result<()> {
    let relay = TestRelay::start()?;
    let homes = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            let client = |name: &str| {
                let options = uchat_peer::ClientOptions {
                    home: homes.path().join(name),
                    relay: Some(relay.addr.clone()),
                    relay_fingerprint: relay.fingerprint.parse().ok(),
                };
                let user = uchat_wire::UserName::parse(name);
                async move {
                    anyhow::Ok(
                        uchat_peer::Client::register(options, user?, uchat_tests::PASSWORD).await?,
                    )
                }
            };
            let alice = client("alice").await?;
            let bob = client("bob").await?;
            alice.social().add_friend(bob.me(), "").await?;
            bob.social().accept_friend(alice.me()).await?;
            let (mut alice_events, mut bob_events) = (alice.subscribe(), bob.subscribe());
            // Both write to each other at once, so each takes in messages (and queues
            // receipts for them, which its outbox task sends) while it sends its own: the
            // outbox is flushed by that task and by the sends at the same time. Each send
            // must still say it was sent, not that it waits.
            let (to_bob, to_alice) = tokio::join!(talk(&alice, bob.me()), talk(&bob, alice.me()));
            let (to_bob, to_alice) = (to_bob?, to_alice?);
            for (events, count) in [
                (&mut bob_events, to_bob.len()),
                (&mut alice_events, to_alice.len()),
            ] {
                let mut received = 0;
                while received < count {
                    if let uchat_peer::ClientEvent::Message(_) = events.recv().await? {
                        received += 1;
                    }
                }
            }
            // And every message ends up delivered.
            for (sender, ids) in [(&alice, &to_bob), (&bob, &to_alice)] {
                loop {
                    let delivered = ids
                        .iter()
                        .filter_map(|id| sender.history_entry(sender.me(), *id).ok().flatten())
                        .filter(|e| e.status == uchat_peer::store::EntryStatus::Delivered)
                        .count();
                    if delivered == ids.len() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            alice.close().await;
            bob.close().await;
            anyhow::Ok(())
        })
        .await
        .context("the exchange took longer than 120 s")?
    })
}

/// Sends 60 messages from `from` to `to`, one after another; returns their ids.
async fn talk(
    from: &uchat_peer::Client,
    to: &uchat_wire::UserName,
) -> Result<Vec<uchat_wire::MessageId>> {
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = from
            .send_text(to, &format!("message {i}"))
            .await
            .with_context(|| format!("{}'s send {i}", from.me()))?;
        ids.push(id);
    }
    Ok(ids)
}
