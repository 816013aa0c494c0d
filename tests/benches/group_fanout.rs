//! The relay's fan-out work per group message: one `RelayStore::send_group_message`
//! transaction (membership and epoch checks, the message stored once, a reference queued
//! for every other member, committed durably), for groups of 10 and 200 members.
//!
//! `cargo bench -p uchat-tests --bench group_fanout`. Criterion's throughput line is in
//! messages per second; multiply by members - 1 for queue deliveries per second.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uchat_store::{AccountRecord, GroupLimits, KeyShareRow, QueueLimit, RelayStore, SocialLimits};
use uchat_wire::{GroupId, IdentityKeys, MessageId, UserName};

/// Bytes of ciphertext per message: a Megolm envelope around a 256-byte text.
const CIPHERTEXT_BYTES: usize = 420;
/// Bytes of one Olm key share (a pre-key message around a Megolm session key).
const KEY_SHARE_BYTES: usize = 600;
/// No queue quota: the benchmark measures the fan-out, not the refusal.
const UNLIMITED: QueueLimit = QueueLimit {
    max_events: u64::MAX,
    max_bytes: u64::MAX,
};

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("valid name")
}

/// A store with a group of `members` (an owner and `members - 1` friends of theirs).
fn group_of(members: usize) -> (tempfile::TempDir, RelayStore, GroupId, Vec<UserName>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RelayStore::open(&dir.path().join("relay.redb")).expect("opens");
    let names: Vec<UserName> = (0..members).map(|i| user(&format!("u{i:03}"))).collect();
    for name in &names {
        store
            .create_account(&AccountRecord {
                username: name.clone(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                identity: IdentityKeys {
                    curve25519: vec![1; 32],
                    ed25519: vec![2; 32],
                },
                created_ms: 0,
            })
            .expect("creates");
    }
    let social = SocialLimits {
        max_friends: 10_000,
        max_pending_incoming: 10_000,
        max_pending_outgoing: 10_000,
        queue: UNLIMITED,
    };
    let (owner, others) = names.split_first().expect("an owner");
    for other in others {
        store
            .request_friend(owner, other, "", 0, &social)
            .expect("asks");
        store
            .accept_friend(other, owner, 0, &social)
            .expect("accepts");
    }
    let limits = GroupLimits {
        max_members: 500,
        max_groups_per_user: 10,
        queue: UNLIMITED,
    };
    let group = GroupId([9; 16]);
    let info = store
        .create_group(owner, group, "bench", others, 0, &limits)
        .expect("creates");
    (dir, store, group, names, info.epoch)
}

fn message_id(n: u64) -> MessageId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

fn fan_out(c: &mut Criterion) {
    let mut bench = c.benchmark_group("group_fanout");
    bench.throughput(Throughput::Elements(1));
    bench.sample_size(30);
    let ciphertext = vec![0x5a; CIPHERTEXT_BYTES];
    let share = vec![0xa5; KEY_SHARE_BYTES];
    for members in [10, 200] {
        let (_dir, store, group, names, epoch) = group_of(members);
        let mut n = 0u64;
        // The first message on a new session also carries a key share for every member.
        let all_shares: Vec<KeyShareRow<'_>> = names[1..]
            .iter()
            .map(|to| KeyShareRow {
                to,
                ciphertext: &share,
            })
            .collect();
        for (label, shares) in [
            ("message", &[][..]),
            ("message_with_key_shares", &all_shares[..]),
        ] {
            bench.bench_function(BenchmarkId::new(label, members), |b| {
                b.iter(|| {
                    n += 1;
                    black_box(
                        store
                            .send_group_message(
                                &names[0],
                                group,
                                epoch,
                                message_id(n),
                                &ciphertext,
                                shares,
                                n,
                                UNLIMITED,
                            )
                            .expect("sends"),
                    )
                })
            });
        }
    }
    bench.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
