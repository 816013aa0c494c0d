//! The relay's book of calls: a pure state machine of who rings whom, who talks with whom,
//! and which voice leg forwards to which connection.
//!
//! Each method takes the time (ms on a monotonic clock) and returns what to tell whom
//! ([`CallAction`]); the caller pushes the events and queues the missed calls. The book
//! never touches a network, so every signalling path is tested here without one.
//!
//! A call rings for its callee as a user (any of their connections may answer it, also one
//! that comes up while it rings) and, once answered, is bound to one connection per side:
//! those two connections carry its voice datagrams, and the end of either ends the call.

use std::collections::HashMap;

use uchat_wire::{CallEndReason, CallId, PushEvent, UserName};

use super::online::ConnectionId;

/// What the book tells its caller to do after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CallAction {
    /// Push `event` (ephemeral) to every connection of `user`.
    Notify {
        /// The side of the call to tell: the caller or the callee.
        user: UserName,
        /// The ephemeral call event to push: `CallIncoming`, `CallAccepted` or `CallEnded`.
        event: PushEvent,
    },
    /// Queue a durable `MissedCall` for `callee`.
    Missed {
        /// Who missed it.
        callee: UserName,
        /// Who called.
        caller: UserName,
        /// The missed call, as the caller's invitation named it.
        call: CallId,
        /// Why it was missed.
        reason: CallEndReason,
    },
}

/// Why the book refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum CallError {
    /// The call id is taken by another call.
    #[error("call id {0} is already in use; pick a new one")]
    IdInUse(CallId),
    /// The asker is in another call (ringing or talking) already.
    #[error("you are in another call already; hang it up first")]
    InCall,
    /// No such call rings for the asker, or the asker is not in it.
    #[error("no call {0} is ringing for you or has you in it")]
    NoSuchCall(CallId),
}

/// The answer to an invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Invited {
    /// The call rings; the caller's datagrams start with `leg`.
    Ringing {
        /// The caller's leg handle.
        leg: u32,
    },
    /// The call cannot ring.
    Ended(CallEndReason),
}

/// Where a voice datagram goes: the other leg's connection and its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Route {
    /// The connection to send it on.
    pub(super) connection: ConnectionId,
    /// The handle to put in its header.
    pub(super) leg: u32,
}

#[derive(Clone, Debug)]
enum Stage {
    Ringing {
        deadline_ms: u64,
        offer: Vec<u8>,
    },
    Active {
        callee_connection: ConnectionId,
        callee_leg: u32,
    },
}

#[derive(Clone, Debug)]
struct Call {
    caller: UserName,
    callee: UserName,
    caller_connection: ConnectionId,
    caller_leg: u32,
    stage: Stage,
}

/// Which side of which call a leg handle belongs to.
#[derive(Clone, Copy, Debug)]
struct Leg {
    call: CallId,
    connection: ConnectionId,
}

/// Every call the relay knows about.
#[derive(Debug)]
pub(super) struct CallBook {
    ring_timeout_ms: u64,
    calls: HashMap<CallId, Call>,
    /// Each user in a call (ringing or talking, either side): their call.
    by_user: HashMap<UserName, CallId>,
    legs: HashMap<u32, Leg>,
    /// Source of leg handles (the caller passes randomness in).
    next_leg_salt: u32,
}

impl CallBook {
    /// An empty book whose calls ring for at most `ring_timeout_ms`.
    pub(super) fn new(ring_timeout_ms: u64) -> Self {
        Self {
            ring_timeout_ms,
            calls: HashMap::new(),
            by_user: HashMap::new(),
            legs: HashMap::new(),
            next_leg_salt: 0,
        }
    }

    /// How long a call may ring, in ms.
    pub(super) fn ring_timeout_ms(&self) -> u64 {
        self.ring_timeout_ms
    }

    /// How many calls ring or talk now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.calls.len()
    }

    /// A leg handle no live leg has, from `random` (the caller's randomness; a handle is
    /// not a secret, since datagrams are only accepted on the leg's own connection).
    fn new_leg(&mut self, random: u32) -> u32 {
        let mut leg = random;
        while leg == 0 || self.legs.contains_key(&leg) {
            self.next_leg_salt = self.next_leg_salt.wrapping_add(0x9e37_79b9);
            leg = random ^ self.next_leg_salt;
        }
        leg
    }

    /// `caller` (on `connection`) rings `callee`, a friend whose online state is
    /// `callee_online`. `random` seeds the leg handle.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn invite(
        &mut self,
        now_ms: u64,
        call: CallId,
        caller: &UserName,
        connection: ConnectionId,
        callee: &UserName,
        offer: Vec<u8>,
        callee_online: bool,
        random: u32,
    ) -> Result<(Invited, Vec<CallAction>), CallError> {
        if self.calls.contains_key(&call) {
            return Err(CallError::IdInUse(call));
        }
        if self.by_user.contains_key(caller) {
            return Err(CallError::InCall);
        }
        if !callee_online {
            let reason = CallEndReason::Offline;
            return Ok((
                Invited::Ended(reason),
                vec![missed(callee, caller, call, reason)],
            ));
        }
        if self.by_user.contains_key(callee) {
            let reason = CallEndReason::Busy;
            return Ok((
                Invited::Ended(reason),
                vec![missed(callee, caller, call, reason)],
            ));
        }
        let leg = self.new_leg(random);
        let event = PushEvent::CallIncoming {
            call,
            from: caller.clone(),
            offer: offer.clone(),
            ring_left_ms: self.ring_timeout_ms,
        };
        self.calls.insert(
            call,
            Call {
                caller: caller.clone(),
                callee: callee.clone(),
                caller_connection: connection,
                caller_leg: leg,
                stage: Stage::Ringing {
                    deadline_ms: now_ms.saturating_add(self.ring_timeout_ms),
                    offer,
                },
            },
        );
        self.by_user.insert(caller.clone(), call);
        self.by_user.insert(callee.clone(), call);
        self.legs.insert(leg, Leg { call, connection });
        let notify = CallAction::Notify {
            user: callee.clone(),
            event,
        };
        Ok((Invited::Ringing { leg }, vec![notify]))
    }

    /// `user` (on `connection`) takes `call`, which must ring for them. Returns their leg
    /// handle.
    pub(super) fn answer(
        &mut self,
        call: CallId,
        user: &UserName,
        connection: ConnectionId,
        answer: Vec<u8>,
        random: u32,
    ) -> Result<(u32, Vec<CallAction>), CallError> {
        self.check_rings_for(call, user)?;
        let leg = self.new_leg(random);
        let entry = self
            .calls
            .get_mut(&call)
            .ok_or(CallError::NoSuchCall(call))?;
        entry.stage = Stage::Active {
            callee_connection: connection,
            callee_leg: leg,
        };
        let caller = entry.caller.clone();
        self.legs.insert(leg, Leg { call, connection });
        let notify = CallAction::Notify {
            user: caller,
            event: PushEvent::CallAccepted { call, answer },
        };
        Ok((leg, vec![notify]))
    }

    /// `user` refuses `call`, which must ring for them.
    pub(super) fn reject(
        &mut self,
        call: CallId,
        user: &UserName,
    ) -> Result<Vec<CallAction>, CallError> {
        self.check_rings_for(call, user)?;
        let ended = self.remove(call).ok_or(CallError::NoSuchCall(call))?;
        Ok(vec![notify_end(
            &ended.caller,
            call,
            CallEndReason::Rejected,
        )])
    }

    /// `user` ends `call`, which they must be in: a caller hanging up a ringing call
    /// cancels it (the callee gets a missed call), a callee doing so rejects it.
    pub(super) fn hang_up(
        &mut self,
        call: CallId,
        user: &UserName,
    ) -> Result<Vec<CallAction>, CallError> {
        let Some(entry) = self.calls.get(&call) else {
            return Err(CallError::NoSuchCall(call));
        };
        let is_caller = &entry.caller == user;
        if !is_caller && &entry.callee != user {
            return Err(CallError::NoSuchCall(call));
        }
        if !is_caller && matches!(entry.stage, Stage::Ringing { .. }) {
            return self.reject(call, user);
        }
        let ended = self.remove(call).ok_or(CallError::NoSuchCall(call))?;
        Ok(match ended.stage {
            Stage::Ringing { .. } => vec![
                notify_end(&ended.callee, call, CallEndReason::Cancelled),
                missed(&ended.callee, &ended.caller, call, CallEndReason::Cancelled),
            ],
            Stage::Active { .. } => {
                let other = if is_caller {
                    &ended.callee
                } else {
                    &ended.caller
                };
                vec![notify_end(other, call, CallEndReason::HungUp)]
            }
        })
    }

    /// Ends the calls that rang past their deadline by `now_ms`: both sides hear of it and
    /// the callee gets a missed call.
    pub(super) fn expire(&mut self, now_ms: u64) -> Vec<CallAction> {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.stage, Stage::Ringing { deadline_ms, .. } if deadline_ms <= now_ms))
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for call in due {
            if let Some(ended) = self.remove(call) {
                let reason = CallEndReason::Timeout;
                actions.push(notify_end(&ended.caller, call, reason));
                actions.push(notify_end(&ended.callee, call, reason));
                actions.push(missed(&ended.callee, &ended.caller, call, reason));
            }
        }
        actions
    }

    /// `connection` closed: every call it carried ends; the other side hears
    /// `ConnectionLost`, and a callee whose caller vanished while ringing gets a missed
    /// call. A callee's connection closing while it rings changes nothing: the call rings
    /// for the user, who may answer from another connection.
    pub(super) fn connection_closed(&mut self, connection: ConnectionId) -> Vec<CallAction> {
        let affected: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.caller_connection == connection
                    || matches!(c.stage, Stage::Active { callee_connection, .. } if callee_connection == connection)
            })
            .map(|(id, _)| *id)
            .collect();
        let reason = CallEndReason::ConnectionLost;
        let mut actions = Vec::new();
        for call in affected {
            let Some(ended) = self.remove(call) else {
                continue;
            };
            match ended.stage {
                Stage::Ringing { .. } => {
                    actions.push(notify_end(&ended.callee, call, reason));
                    actions.push(missed(&ended.callee, &ended.caller, call, reason));
                }
                Stage::Active { .. } => {
                    let other = if ended.caller_connection == connection {
                        &ended.callee
                    } else {
                        &ended.caller
                    };
                    actions.push(notify_end(other, call, reason));
                }
            }
        }
        actions
    }

    /// The calls ringing for `user` now, as the events a connection that just came up
    /// should get.
    pub(super) fn ringing_for(&self, user: &UserName, now_ms: u64) -> Vec<PushEvent> {
        let Some(call) = self.by_user.get(user) else {
            return Vec::new();
        };
        let Some(entry) = self.calls.get(call) else {
            return Vec::new();
        };
        match &entry.stage {
            Stage::Ringing { deadline_ms, offer } if &entry.callee == user => {
                vec![PushEvent::CallIncoming {
                    call: *call,
                    from: entry.caller.clone(),
                    offer: offer.clone(),
                    ring_left_ms: deadline_ms.saturating_sub(now_ms),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// Where a datagram that arrived on `from` with handle `leg` goes: only a leg of a
    /// connected call, and only from that leg's own connection.
    pub(super) fn route(&self, from: ConnectionId, leg: u32) -> Option<Route> {
        let own = self.legs.get(&leg)?;
        if own.connection != from {
            return None;
        }
        let call = self.calls.get(&own.call)?;
        let Stage::Active {
            callee_connection,
            callee_leg,
        } = call.stage
        else {
            return None;
        };
        if leg == call.caller_leg {
            Some(Route {
                connection: callee_connection,
                leg: callee_leg,
            })
        } else {
            Some(Route {
                connection: call.caller_connection,
                leg: call.caller_leg,
            })
        }
    }

    /// `Ok` if `call` rings for `user`, else [`CallError::NoSuchCall`].
    fn check_rings_for(&self, call: CallId, user: &UserName) -> Result<(), CallError> {
        let ringing = self
            .calls
            .get(&call)
            .is_some_and(|c| &c.callee == user && matches!(c.stage, Stage::Ringing { .. }));
        if ringing {
            Ok(())
        } else {
            Err(CallError::NoSuchCall(call))
        }
    }

    fn remove(&mut self, call: CallId) -> Option<Call> {
        let entry = self.calls.remove(&call)?;
        self.by_user.remove(&entry.caller);
        self.by_user.remove(&entry.callee);
        self.legs.remove(&entry.caller_leg);
        if let Stage::Active { callee_leg, .. } = entry.stage {
            self.legs.remove(&callee_leg);
        }
        Some(entry)
    }
}

/// The durable missed call `callee` gets when `caller`'s `call` did not connect.
fn missed(callee: &UserName, caller: &UserName, call: CallId, reason: CallEndReason) -> CallAction {
    CallAction::Missed {
        callee: callee.clone(),
        caller: caller.clone(),
        call,
        reason,
    }
}

fn notify_end(user: &UserName, call: CallId, reason: CallEndReason) -> CallAction {
    CallAction::Notify {
        user: user.clone(),
        event: PushEvent::CallEnded { call, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    const ALICE_CONN: ConnectionId = ConnectionId(1);
    const BOB_CONN: ConnectionId = ConnectionId(2);
    const CALL: CallId = CallId([1; 16]);

    fn ringing_book() -> (CallBook, u32) {
        let mut book = CallBook::new(45_000);
        let (invited, actions) = book
            .invite(
                0,
                CALL,
                &user("alice"),
                ALICE_CONN,
                &user("bob"),
                b"offer".to_vec(),
                true,
                7,
            )
            .expect("rings");
        let Invited::Ringing { leg } = invited else {
            panic!("expected ringing, got {invited:?}");
        };
        assert_eq!(
            actions,
            vec![CallAction::Notify {
                user: user("bob"),
                event: PushEvent::CallIncoming {
                    call: CALL,
                    from: user("alice"),
                    offer: b"offer".to_vec(),
                    ring_left_ms: 45_000
                }
            }]
        );
        (book, leg)
    }

    fn ended(user_name: &str, reason: CallEndReason) -> CallAction {
        notify_end(&user(user_name), CALL, reason)
    }

    fn bob_missed(reason: CallEndReason) -> CallAction {
        missed(&user("bob"), &user("alice"), CALL, reason)
    }

    #[test]
    fn an_answered_call_routes_datagrams_between_its_two_connections_only() {
        let (mut book, alice_leg) = ringing_book();
        assert_eq!(book.route(ALICE_CONN, alice_leg), None, "not connected yet");
        let (bob_leg, actions) = book
            .answer(CALL, &user("bob"), BOB_CONN, b"answer".to_vec(), 9)
            .expect("answers");
        assert_ne!(bob_leg, alice_leg);
        assert_eq!(
            actions,
            vec![CallAction::Notify {
                user: user("alice"),
                event: PushEvent::CallAccepted {
                    call: CALL,
                    answer: b"answer".to_vec()
                }
            }]
        );
        assert_eq!(
            book.route(ALICE_CONN, alice_leg),
            Some(Route {
                connection: BOB_CONN,
                leg: bob_leg
            })
        );
        assert_eq!(
            book.route(BOB_CONN, bob_leg),
            Some(Route {
                connection: ALICE_CONN,
                leg: alice_leg
            })
        );
        assert_eq!(
            book.route(ConnectionId(3), alice_leg),
            None,
            "another connection cannot use alice's leg"
        );
        assert_eq!(book.route(BOB_CONN, alice_leg), None);
        assert_eq!(book.route(ALICE_CONN, 12345), None);
    }

    #[test]
    fn only_the_callee_answers_or_rejects_and_only_a_ringing_call() {
        let (mut book, _) = ringing_book();
        for who in ["alice", "mallory"] {
            assert_eq!(
                book.answer(CALL, &user(who), ConnectionId(5), vec![], 1),
                Err(CallError::NoSuchCall(CALL))
            );
            assert_eq!(
                book.reject(CALL, &user(who)),
                Err(CallError::NoSuchCall(CALL))
            );
        }
        assert_eq!(
            book.hang_up(CALL, &user("mallory")),
            Err(CallError::NoSuchCall(CALL))
        );
        assert_eq!(
            book.answer(CallId([9; 16]), &user("bob"), BOB_CONN, vec![], 1),
            Err(CallError::NoSuchCall(CallId([9; 16])))
        );
        book.answer(CALL, &user("bob"), BOB_CONN, vec![], 1)
            .expect("answers");
        assert_eq!(
            book.answer(CALL, &user("bob"), BOB_CONN, vec![], 1),
            Err(CallError::NoSuchCall(CALL)),
            "answered already"
        );
        assert_eq!(
            book.reject(CALL, &user("bob")),
            Err(CallError::NoSuchCall(CALL))
        );
    }

    #[test]
    fn a_rejected_call_tells_the_caller_and_frees_both() {
        let (mut book, _) = ringing_book();
        assert_eq!(
            book.reject(CALL, &user("bob")),
            Ok(vec![ended("alice", CallEndReason::Rejected)])
        );
        assert_eq!(book.len(), 0);
        ringing_book();
    }

    #[test]
    fn a_caller_hanging_up_a_ringing_call_cancels_it_with_a_missed_call() {
        let (mut book, _) = ringing_book();
        assert_eq!(
            book.hang_up(CALL, &user("alice")),
            Ok(vec![
                ended("bob", CallEndReason::Cancelled),
                bob_missed(CallEndReason::Cancelled)
            ])
        );
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn either_side_hangs_up_a_connected_call() {
        for (who, other) in [("alice", "bob"), ("bob", "alice")] {
            let (mut book, _) = ringing_book();
            book.answer(CALL, &user("bob"), BOB_CONN, vec![], 1)
                .expect("answers");
            assert_eq!(
                book.hang_up(CALL, &user(who)),
                Ok(vec![ended(other, CallEndReason::HungUp)])
            );
            assert_eq!(book.len(), 0);
            assert!(book.legs.is_empty());
        }
    }

    #[test]
    fn busy_offline_and_calls_from_someone_in_a_call() {
        let (mut book, _) = ringing_book();
        let other = CallId([2; 16]);
        let (invited, actions) = book
            .invite(
                0,
                other,
                &user("carol"),
                ConnectionId(3),
                &user("bob"),
                vec![],
                true,
                1,
            )
            .expect("answers");
        assert_eq!(invited, Invited::Ended(CallEndReason::Busy));
        assert_eq!(
            actions,
            vec![CallAction::Missed {
                callee: user("bob"),
                caller: user("carol"),
                call: other,
                reason: CallEndReason::Busy
            }]
        );
        assert_eq!(
            book.invite(
                0,
                other,
                &user("alice"),
                ALICE_CONN,
                &user("carol"),
                vec![],
                true,
                1
            ),
            Err(CallError::InCall)
        );
        assert_eq!(
            book.invite(
                0,
                CALL,
                &user("dave"),
                ConnectionId(4),
                &user("carol"),
                vec![],
                true,
                1
            ),
            Err(CallError::IdInUse(CALL))
        );
        let (invited, actions) = book
            .invite(
                0,
                other,
                &user("carol"),
                ConnectionId(3),
                &user("dave"),
                vec![],
                false,
                1,
            )
            .expect("answers");
        assert_eq!(invited, Invited::Ended(CallEndReason::Offline));
        assert!(matches!(
            actions.as_slice(),
            [CallAction::Missed {
                reason: CallEndReason::Offline,
                ..
            }]
        ));
        assert_eq!(book.len(), 1, "neither busy nor offline calls are kept");
    }

    #[test]
    fn a_call_nobody_answers_times_out_for_both_with_a_missed_call() {
        let (mut book, _) = ringing_book();
        assert_eq!(book.expire(44_999), vec![]);
        assert_eq!(book.ringing_for(&user("bob"), 40_000).len(), 1);
        assert_eq!(
            book.expire(45_000),
            vec![
                ended("alice", CallEndReason::Timeout),
                ended("bob", CallEndReason::Timeout),
                bob_missed(CallEndReason::Timeout)
            ]
        );
        assert_eq!(book.len(), 0);
        assert!(book.ringing_for(&user("bob"), 45_000).is_empty());
    }

    #[test]
    fn a_connected_call_never_times_out() {
        let (mut book, _) = ringing_book();
        book.answer(CALL, &user("bob"), BOB_CONN, vec![], 1)
            .expect("answers");
        assert_eq!(book.expire(1_000_000), vec![]);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn a_connection_that_dies_ends_its_calls_for_the_other_side() {
        let (mut book, _) = ringing_book();
        book.answer(CALL, &user("bob"), BOB_CONN, vec![], 1)
            .expect("answers");
        assert_eq!(book.connection_closed(ConnectionId(9)), vec![]);
        assert_eq!(
            book.connection_closed(BOB_CONN),
            vec![ended("alice", CallEndReason::ConnectionLost)]
        );
        assert_eq!(book.len(), 0);

        let (mut book, _) = ringing_book();
        assert_eq!(
            book.connection_closed(BOB_CONN),
            vec![],
            "it rings for bob the user, not one connection"
        );
        assert_eq!(
            book.connection_closed(ALICE_CONN),
            vec![
                ended("bob", CallEndReason::ConnectionLost),
                bob_missed(CallEndReason::ConnectionLost)
            ]
        );
    }

    #[test]
    fn a_connection_that_comes_up_while_it_rings_hears_it_ring_with_the_time_left() {
        let (book, _) = ringing_book();
        assert_eq!(
            book.ringing_for(&user("bob"), 30_000),
            vec![PushEvent::CallIncoming {
                call: CALL,
                from: user("alice"),
                offer: b"offer".to_vec(),
                ring_left_ms: 15_000
            }]
        );
        assert!(
            book.ringing_for(&user("alice"), 30_000).is_empty(),
            "not for the caller"
        );
    }

    #[test]
    fn leg_handles_are_never_zero_nor_shared() {
        let mut book = CallBook::new(1000);
        book.legs.insert(
            5,
            Leg {
                call: CALL,
                connection: ALICE_CONN,
            },
        );
        let leg = book.new_leg(5);
        assert!(leg != 5 && leg != 0);
        assert_ne!(book.new_leg(0), 0);
    }
}
