//! The peer's protocol rules as plain functions and state machines: no async, no locks,
//! no store handle, nothing from the network but the values passed in. `Client` asks
//! them and carries out their answers: the outbox ([`outbox`]: the order messages go in,
//! what a relay answer means for one, which key shares it proves given), the judging of an
//! incoming 1:1 message ([`intake`]: shown, a receipt, or kept as undecryptable; which ids
//! a receipt may move), group sending ([`group_send`]: whom a message is for, whose key
//! share it still carries, when a waiting message is encrypted again), key sharing over
//! Olm ([`share`]: what a recipient's claim and sealing come to), group intake
//! ([`group_intake`]: how membership events move the view, who may write, what a group
//! message is once opened), the inbox's bookkeeping ([`inbox`]: how far the queue is
//! taken in, what an acknowledgement names, when the login backlog is caught up) and
//! reconnecting ([`redial`]: whom a dial's outcome answers, when to dial again).

pub(crate) mod group_intake;
pub(crate) mod group_send;
pub(crate) mod inbox;
pub(crate) mod intake;
pub(crate) mod outbox;
pub(crate) mod redial;
pub(crate) mod share;

/// What the core's tests build their cases from.
#[cfg(test)]
pub(crate) mod fixtures {
    use uchat_wire::{GroupId, GroupInfo, GroupMember, UserName};

    /// The group the tests' group cases are about.
    pub(crate) const GROUP: GroupId = GroupId([3; 16]);

    /// A user name the tests know to be valid.
    pub(crate) fn user(name: &str) -> UserName {
        UserName::parse(name).expect("a valid name")
    }

    /// [`GROUP`] at `epoch` with `names` as members, owned by alice.
    pub(crate) fn group_of(epoch: u64, names: &[&str]) -> GroupInfo {
        GroupInfo {
            id: GROUP,
            name: "club".into(),
            owner: user("alice"),
            epoch,
            created_ms: 1,
            members: names
                .iter()
                .map(|n| GroupMember {
                    user: user(n),
                    joined_ms: 1,
                })
                .collect(),
        }
    }
}
