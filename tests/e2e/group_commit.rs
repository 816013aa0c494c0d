//! Group commit under a SIGKILL (issue #10): the relay gathers concurrent sends and
//! acknowledgements into shared transactions, and answers "sent" only after the one
//! holding the message is durable. Here 50 senders keep several sends each in flight (so
//! batches hold many writes) while 10 receivers read and acknowledge, and the relay is
//! SIGKILLed in the middle of it. After a restart every message the relay acknowledged
//! must be in its recipient's queue exactly once: delivered, under one sequence number,
//! never under two; and nothing arrives that was not sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::task::JoinSet;
use uchat_tests::TestRelay;
use uchat_tests::wire_client::{Dialer, EventReader, WireClient, random_bytes, random_message_id};
use uchat_wire::{MessageId, Seq, UserName};

const SENDERS: usize = 50;
const RECEIVERS: usize = 10;
/// Sends each sender keeps in flight at once.
const IN_FLIGHT: usize = 4;
const PASSWORD: &str = "group commit password";
/// The kill comes once this many sends were acknowledged (or after [`SEND_FOR`]).
const ACKED_BEFORE_KILL: usize = 3_000;
const SEND_FOR: Duration = Duration::from_secs(20);
/// A receiver is done once nothing more arrives for this long after the restart.
const QUIET: Duration = Duration::from_secs(2);
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

type Key = (UserName, MessageId);

/// What the senders and receivers saw, shared between their tasks.
#[derive(Default)]
struct Ledger {
    /// Every send started: it may or may not be queued.
    attempted: BTreeSet<Key>,
    /// The sends the relay answered `Sent`: they must be delivered exactly once.
    acked: BTreeSet<Key>,
    /// Every delivery seen: (sender, id) → the receiver and the seqs it came under.
    delivered: HashMap<Key, (UserName, BTreeSet<Seq>)>,
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn dialer(relay: &TestRelay) -> Result<Dialer> {
    let pinned = relay.fingerprint.parse().context("fingerprint")?;
    Ok(Dialer::new(&relay.addr, Some(pinned), "(test)").await?)
}

/// One sender's loops: `IN_FLIGHT` of them, each sending one message after another.
fn spawn_sender(
    tasks: &mut JoinSet<Result<()>>,
    sender: Arc<WireClient>,
    to: UserName,
    ledger: Arc<Mutex<Ledger>>,
) {
    for _ in 0..IN_FLIGHT {
        let (sender, to, ledger) = (sender.clone(), to.clone(), ledger.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            while started.elapsed() < SEND_FOR {
                let id = random_message_id();
                let key = (sender.name().clone(), id);
                lock(&ledger).attempted.insert(key.clone());
                match sender.send(&to, id, random_bytes(256)).await {
                    Ok(_) => {
                        lock(&ledger).acked.insert(key);
                    }
                    Err(e) => bail!("a send was refused or failed before the kill: {e}"),
                }
            }
            Ok(())
        });
    }
}

/// Reads `reader` into the ledger until nothing arrives for `quiet` (or `limit` passes).
async fn read_into(
    reader: &mut EventReader,
    me: &UserName,
    ledger: &Mutex<Ledger>,
    quiet: Duration,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let Some(message) = reader.next(quiet).await? else {
            break;
        };
        let mut ledger = lock(ledger);
        let entry = ledger
            .delivered
            .entry((message.from, message.id))
            .or_insert_with(|| (me.clone(), BTreeSet::new()));
        entry.1.insert(message.seq);
        ensure!(&entry.0 == me, "one message reached two receivers");
    }
    reader.flush(Duration::from_secs(10)).await?;
    Ok(())
}

/// A counter of the relay's metrics page, or a clear failure if it is missing.
fn counter(body: &str, name: &str) -> Result<u64> {
    let value = uchat_tests::metric(body, name)
        .with_context(|| format!("{name} not in the metrics:\n{body}"))?;
    Ok(value as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_send_acknowledged_before_a_sigkill_mid_batch_arrives_exactly_once() -> Result<()> {
    let metrics = format!("127.0.0.1:{}", TestRelay::free_tcp_port()?);
    let mut flags = uchat_tests::MANY_USERS.to_vec();
    flags.extend(["--metrics", &metrics]);
    let mut relay = TestRelay::start_with(&flags)?;
    let dial = dialer(&relay).await?;
    let name = |role: &str, i: usize| UserName::parse(&format!("{role}{i}")).expect("valid name");

    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        receivers.push(WireClient::register(&dial, name("receiver", i), PASSWORD).await?);
    }
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let sender = WireClient::register(&dial, name("sender", i), PASSWORD).await?;
        sender.befriend(&receivers[i % RECEIVERS]).await?;
        senders.push(Arc::new(sender));
    }

    // Receivers read and acknowledge while the senders send: acks ride in batches too.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut reading = JoinSet::new();
    let receiver_names: Vec<UserName> = receivers.iter().map(|r| r.name().clone()).collect();
    for receiver in receivers {
        let ledger = ledger.clone();
        reading.spawn(async move {
            let mut reader = receiver.events().await?;
            let outcome =
                read_into(&mut reader, receiver.name(), &ledger, SEND_FOR, SEND_FOR).await;
            drop(receiver);
            outcome
        });
    }
    let mut sending = JoinSet::new();
    for (i, sender) in senders.iter().enumerate() {
        spawn_sender(
            &mut sending,
            sender.clone(),
            receiver_names[i % RECEIVERS].clone(),
            ledger.clone(),
        );
    }
    let started = Instant::now();
    while lock(&ledger).acked.len() < ACKED_BEFORE_KILL && started.elapsed() < SEND_FOR {
        if let Some(Ok(Err(e))) = sending.try_join_next() {
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, before) = TestRelay::http_get(&metrics, "/metrics")?;
    relay.kill_9();
    // Whatever was in flight at the kill has no answer and never will (the relay that
    // knew the connections is gone): stop waiting for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sending.abort_all();
    reading.abort_all();
    while sending.join_next().await.is_some() {}
    while reading.join_next().await.is_some() {}

    let commits = counter(&before, "uchat_store_commits_total")?;
    let writes = counter(&before, "uchat_store_batched_writes_total")?;
    let (acked_at_kill, unanswered) = {
        let ledger = lock(&ledger);
        (
            ledger.acked.len(),
            ledger.attempted.len() - ledger.acked.len(),
        )
    };
    ensure!(
        writes > commits,
        "no transaction held more than one write ({writes} writes in {commits} commits): nothing was batched"
    );
    ensure!(
        unanswered > 0,
        "no send was in flight at the kill ({acked_at_kill} acknowledged)"
    );

    relay.restart()?;
    let dial = dialer(&relay).await?;
    let mut draining = JoinSet::new();
    for receiver in &receiver_names {
        let (dial_name, ledger) = (receiver.clone(), ledger.clone());
        let client = WireClient::login(&dial, dial_name, PASSWORD).await?;
        draining.spawn(async move {
            let mut reader = client.events().await?;
            read_into(&mut reader, client.name(), &ledger, QUIET, DRAIN_LIMIT).await
        });
    }
    while let Some(done) = draining.join_next().await {
        done??;
    }

    let ledger = lock(&ledger);
    let mut twice = BTreeMap::new();
    for (key, (_, seqs)) in &ledger.delivered {
        ensure!(
            ledger.attempted.contains(key),
            "a message nobody sent arrived: {key:?}"
        );
        if seqs.len() > 1 {
            twice.insert(key.clone(), seqs.clone());
        }
    }
    ensure!(
        twice.is_empty(),
        "messages queued more than once: {twice:?}"
    );
    let lost: Vec<&Key> = ledger
        .acked
        .iter()
        .filter(|key| !ledger.delivered.contains_key(*key))
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged messages never arrived, for example {:?}",
        lost.len(),
        ledger.acked.len(),
        lost.first()
    );
    eprintln!(
        "{acked_at_kill} acknowledged and {unanswered} in flight at the kill; {} delivered; \
         {writes} writes in {commits} commits before it",
        ledger.delivered.len()
    );
    Ok(())
}
