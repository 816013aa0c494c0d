//! The traffic's driver: starts an operation every `1 / rate` seconds on a client that
//! is free, then, after the traffic, brings everyone online and waits for the messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::clients::open_client;
use crate::jobs::{Job, run_job};
use crate::mix::{Dice, Op};
use crate::shared::{
    DRAIN_LIMIT, MAX_IN_FLIGHT, OFFLINE_MAX, OFFLINE_MIN, OP_TIMEOUT, RECONNECT_WITHIN, SoakWorld,
    lock,
};

/// Starts an operation every `1 / rate` seconds until `until`.
pub(crate) async fn drive(shared: Arc<SoakWorld>, rate: f64, seed: u64, until: Instant) {
    let mut dice = Dice(seed ^ 0x5eed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // A stalled machine skips ticks rather than bursting to catch up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut running = tokio::task::JoinSet::new();
    let n = shared.slots.len();
    let mut seq = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        while running.try_join_next().is_some() {}
        if running.len() >= MAX_IN_FLIGHT {
            shared.counters.saturated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        seq += 1;
        let mut job = Job {
            op: dice.op(),
            who: dice.below(n),
            pick: dice.next(),
            seq,
            post: None,
            file: None,
            offline_for: dice.between(OFFLINE_MIN, OFFLINE_MAX),
        };
        // Some operations belong to a particular client; with nothing to do they fall
        // back to a text message.
        match job.op {
            Op::GroupText if !shared.groups.is_empty() => {
                let (_, members) = &shared.groups[dice.below(shared.groups.len())];
                job.who = members[dice.below(members.len())];
            }
            Op::Download => match lock(&shared.downloads).pop_front() {
                Some((who, file)) => {
                    job.who = who;
                    job.file = Some(file);
                }
                None => job.op = Op::Text,
            },
            Op::Like | Op::Comment => {
                let posts = lock(&shared.posts);
                if posts.likeable.is_empty() {
                    job.op = Op::Text;
                } else {
                    let (who, post) = posts.likeable[dice.below(posts.likeable.len())];
                    job.who = who;
                    job.post = Some(post);
                }
            }
            Op::Offline if shared.counters.offline.load(Ordering::Relaxed) >= n / 5 => {
                job.op = Op::Text;
            }
            _ => {}
        }
        // An operation for a particular client waits for no one: if that client is busy
        // or offline the tick is skipped (a download goes back in line). Others try a few
        // clients.
        let fixed = matches!(
            job.op,
            Op::Download | Op::Like | Op::Comment | Op::GroupText
        );
        let tries = if fixed { 1 } else { 4 };
        let mut taken = None;
        for attempt in 0..tries {
            if attempt > 0 {
                job.who = dice.below(n);
            }
            if let Ok(guard) = shared.slots[job.who].client.clone().try_lock_owned()
                && (guard.is_some() || job.op == Op::Offline)
            {
                taken = Some(guard);
                break;
            }
        }
        let Some(guard) = taken else {
            if let (Op::Download, Some(file)) = (job.op, job.file) {
                lock(&shared.downloads).push_back((job.who, file));
            }
            shared.counters.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let shared = shared.clone();
        running.spawn(async move {
            shared.counters.in_flight.fetch_add(1, Ordering::Relaxed);
            let op = job.op;
            if tokio::time::timeout(OP_TIMEOUT, run_job(shared.clone(), job, guard))
                .await
                .is_err()
            {
                shared.fail(op, "timed out");
            }
            shared.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Let what is running finish (each is bounded by OP_TIMEOUT).
    while running.join_next().await.is_some() {}
}

/// Brings every client online and waits until every acknowledged message has arrived
/// (or `DRAIN_LIMIT`); returns the seconds it took.
pub(crate) async fn drain(shared: &Arc<SoakWorld>) -> f64 {
    let started = Instant::now();
    let deadline = started + DRAIN_LIMIT;
    for who in 0..shared.slots.len() {
        let mut slot = shared.slots[who].client.clone().lock_owned().await;
        match slot.as_ref() {
            Some(client) if !client.is_online() => {
                if let Err(e) = client.reconnect(RECONNECT_WITHIN).await {
                    shared.fail(Op::Reconnect, &format!("drain: {e}"));
                }
            }
            Some(_) => {}
            None => match open_client(shared, who).await {
                Ok(client) => {
                    *slot = Some(client);
                    shared.counters.offline.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e) => shared.fail(Op::Offline, &format!("drain reopen: {e:#}")),
            },
        }
    }
    while Instant::now() < deadline {
        let (acked, queued) = lock(&shared.ledger).missing();
        if acked + queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    started.elapsed().as_secs_f64()
}
