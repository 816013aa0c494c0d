//! Voice calls: placing, answering, refusing and hanging up, the intake of the relay's
//! call events, and talking (the voice engine over the relay connection's datagrams).
//!
//! Each side's ephemeral call key travels inside an Olm message naming the call
//! (`Content::CallKey`), so the relay can neither read nor swap it. What the relay says
//! is checked against what this peer did: an answer or an end for a call this user did
//! not place or take is ignored, and an offer or answer that does not open is refused.
//! Audio is captured only inside [`Calls::talk`], which needs a [`ConnectedCall`], and
//! only [`Calls::wait_for_answer`] (for a call this user placed) and
//! [`Calls::answer`] (for one they chose to take) make one.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Duration;
use uchat_wire::{reply, request};

use tokio::sync::watch;
use tokio::time::Instant;
use uchat_wire::{CallEndReason, CallId, InviteAnswer, UserName};

use super::{Client, ClientError, ClientState, now_ms, random_id};
use crate::crypto::voice::{CallKeyPair, CallKeys, CallRole};
use crate::envelope::{Content, Payload};
use crate::event::ClientEvent;
use crate::store::CallOfferRecord;
use crate::voice::VoiceError;
use crate::voice::audio::{AudioInput, AudioOutput};
use crate::voice::engine::{DatagramLink, MediaEnd, MediaSettings, run_media};
use crate::voice::stats::{CallPath, CallStats, CallSummary};

/// Beyond the relay's ring timeout, how long a caller waits for the relay's word before
/// it gives the call up itself.
const RING_GRACE: Duration = Duration::from_secs(10);

/// No voice from the other side for this long ends a call (the relay also ends it when a
/// leg's connection dies, within its idle timeout).
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// A call this user placed that rings.
#[derive(Debug, Clone)]
pub struct PlacedCall {
    /// The call's id, chosen at random by this peer when it placed the call.
    pub call: CallId,
    /// The friend being rung.
    pub peer: UserName,
    /// How long the relay lets it ring.
    pub ring_timeout: Duration,
}

/// What placing a call did.
#[derive(Debug, Clone)]
pub enum Placed {
    /// It rings.
    Ringing(PlacedCall),
    /// It cannot ring (busy, offline).
    Ended {
        /// The id this peer chose for the call, which never rang.
        call: CallId,
        /// Why it cannot ring, as the relay answered: `Busy` or `Offline`.
        reason: CallEndReason,
    },
}

/// A friend's call ringing for this user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call's id, chosen by the caller; [`Calls::reject`] takes it.
    pub call: CallId,
    /// Who calls.
    pub from: UserName,
}

/// A call both sides are in: what [`Calls::talk`] needs.
#[derive(Debug)]
pub struct ConnectedCall {
    /// The call's id, chosen by the caller; both sides bind it into the voice keys.
    pub call: CallId,
    /// The other side.
    pub peer: UserName,
    /// This side's role.
    pub role: CallRole,
    keys: CallKeys,
    leg: u32,
}

impl ConnectedCall {
    /// This side's voice leg handle: what its datagrams start with (routing, not a
    /// secret).
    pub fn leg(&self) -> u32 {
        self.leg
    }
}

/// How a call that was placed or rang went on.
#[derive(Debug)]
pub enum CallProgress {
    /// Both sides are in it.
    Connected(Box<ConnectedCall>),
    /// It ended before it connected.
    Ended(CallEndReason),
}

/// How [`Calls::talk`] runs a call.
#[derive(Debug, Clone, Copy)]
pub struct TalkOptions {
    /// Hang up after this long.
    pub duration: Option<Duration>,
    /// Hang up once the input has ended and this much more has played.
    pub end_after_input: Option<Duration>,
    /// No voice from the other side for this long ends the call.
    pub silence_timeout: Duration,
}

impl Default for TalkOptions {
    fn default() -> Self {
        Self {
            duration: None,
            end_after_input: None,
            silence_timeout: DEFAULT_SILENCE_TIMEOUT,
        }
    }
}

/// How a call ended, with its summary.
#[derive(Debug, Clone)]
pub struct CallEnd {
    /// Why: what the relay said if the other side or the relay ended it; `HungUp` if this
    /// side did; `ConnectionLost` if the other side fell silent.
    pub reason: CallEndReason,
    /// Who ended it: this user (true) or the other side or the network (false).
    pub by_me: bool,
    /// The call's figures.
    pub summary: CallSummary,
}

/// One outgoing call, from placing until it connects or ends.
#[derive(Debug)]
struct Outgoing {
    peer: UserName,
    keypair: Option<CallKeyPair>,
    leg: Option<u32>,
    keys: Option<CallKeys>,
    ended: Option<CallEndReason>,
}

/// One incoming call whose offer opened.
#[derive(Debug, Clone)]
struct Ringing {
    from: UserName,
    key: Vec<u8>,
    deadline: Instant,
}

/// What this peer knows of its calls; the relay's events are checked against it.
#[derive(Debug, Default)]
pub(super) struct CallRegistry {
    outgoing: HashMap<CallId, Outgoing>,
    incoming: HashMap<CallId, Ringing>,
    /// Connected calls, and why each ended once it did.
    active: HashMap<CallId, Option<CallEndReason>>,
}

impl CallRegistry {
    /// Whether the relay's `CallAccepted` for `call` could be genuine: a call this user
    /// placed that is still waiting. Returns the callee to open the answer from.
    fn awaiting_answer(&self, call: CallId) -> Option<UserName> {
        self.outgoing
            .get(&call)
            .filter(|o| o.keypair.is_some() && o.ended.is_none())
            .map(|o| o.peer.clone())
    }

    /// Records the end of `call`; false if this user is not in it.
    fn ended(&mut self, call: CallId, reason: CallEndReason) -> bool {
        let mut known = false;
        if let Some(outgoing) = self.outgoing.get_mut(&call) {
            outgoing.ended.get_or_insert(reason);
            known = true;
        }
        known |= self.incoming.remove(&call).is_some();
        if let Some(end) = self.active.get_mut(&call) {
            end.get_or_insert(reason);
            known = true;
        }
        known
    }

    /// The first call that rings for this user now (from `from`, if given).
    fn first_ringing(&self, from: Option<&UserName>, now: Instant) -> Option<IncomingCall> {
        self.incoming
            .iter()
            .filter(|(_, r)| r.deadline > now && from.is_none_or(|f| &r.from == f))
            .min_by_key(|(_, r)| r.deadline)
            .map(|(call, r)| IncomingCall {
                call: *call,
                from: r.from.clone(),
            })
    }
}

/// The other side's call key from an opened payload, if it is the right kind of key for
/// the right call.
fn call_key_of(content: Content, call: CallId, want_offer: bool) -> Result<Vec<u8>, String> {
    match content {
        Content::CallKey {
            call: named,
            offer,
            key,
        } => {
            if named != call {
                Err(format!("it names call {named}, not {call}"))
            } else if offer != want_offer {
                Err("it is an offer where an answer belongs, or the reverse".to_owned())
            } else if key.len() != 32 {
                Err(format!("its call key is {} bytes, not 32", key.len()))
            } else {
                Ok(key)
            }
        }
        _ => Err("it carries no call key".to_owned()),
    }
}

impl ClientState {
    fn calls(&self) -> std::sync::MutexGuard<'_, CallRegistry> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ignore_call_signal(&self, call: CallId, reason: String) {
        tracing::warn!(%call, reason, "call signal ignored");
        let _ = self
            .events
            .send(ClientEvent::CallSignalIgnored { call, reason });
    }

    /// Encrypts this side's call key for `to` and saves the Olm state that changed.
    async fn seal_call_key(
        &self,
        to: &UserName,
        call: CallId,
        offer: bool,
        key: [u8; 32],
    ) -> Result<Vec<u8>, ClientError> {
        self.sealed(to, |identity, claimed| {
            let now = now_ms();
            let payload = Payload {
                id: random_id()?,
                sent_ms: now,
                content: Content::CallKey {
                    call,
                    offer,
                    key: key.to_vec(),
                },
                group: None,
                sender: None,
            };
            let Some(sealed) = self.olm_seal(identity, to, &payload.to_bytes(), now, claimed)?
            else {
                return Ok(None);
            };
            self.store
                .commit_olm_state(to, &sealed.sessions, sealed.pin.as_ref())?;
            Ok(Some(sealed.envelope))
        })
        .await
    }

    /// Opens `from`'s call key for `call` from an Olm envelope, saving the Olm state.
    async fn open_call_key(
        &self,
        from: &UserName,
        call: CallId,
        ciphertext: &[u8],
        want_offer: bool,
    ) -> Result<Result<Vec<u8>, String>, ClientError> {
        let now = now_ms();
        let checked = self.check_sender(from, ciphertext, now).await?;
        let mut identity = self.identity();
        let opened = self.olm_open(&mut identity, from, checked, now)?;
        let verdict = match &opened.plaintext {
            Err(problem) => Err(format!("it does not open: {problem}")),
            Ok(plain) => match Payload::from_bytes(plain) {
                Err(e) => Err(e.to_string()),
                Ok(payload) => call_key_of(payload.content, call, want_offer),
            },
        };
        // A call's offer or answer goes to no history and marks no message as seen: only
        // the Olm state it changed is saved.
        if let Some(sessions) = &opened.sessions {
            self.commit_olm_with(&mut identity, opened.account_changed, || {
                self.store
                    .commit_olm_state(from, sessions, opened.pin.as_ref())
            })?;
        }
        Ok(verdict)
    }

    /// A call rings for this user (again, after a reconnect, or in another process).
    pub(super) async fn take_in_call_incoming(
        &self,
        call: CallId,
        from: UserName,
        offer: &[u8],
        ring_left_ms: u64,
    ) -> Result<(), ClientError> {
        if self.calls().incoming.contains_key(&call) {
            return Ok(());
        }
        // An Olm message opens once: another process of this profile may have opened it.
        let key = match self.store.call_offer(call, &from)? {
            Some(known) => known.key,
            None => match self.open_call_key(&from, call, offer, true).await? {
                Ok(key) => {
                    let record = CallOfferRecord {
                        from: from.clone(),
                        key: key.clone(),
                        received_ms: now_ms(),
                    };
                    self.store.put_call_offer(call, &record)?;
                    key
                }
                Err(problem) => {
                    self.ignore_call_signal(
                        call,
                        format!("the offer of {from}'s call was refused: {problem}"),
                    );
                    // Tell the caller at once rather than let it ring.
                    if let Ok(link) = self.link() {
                        tokio::spawn(async move {
                            let _ = link.call(request::CallReject { call }).await;
                        });
                    }
                    return Ok(());
                }
            },
        };
        let deadline = Instant::now() + Duration::from_millis(ring_left_ms);
        self.calls().incoming.insert(
            call,
            Ringing {
                from: from.clone(),
                key,
                deadline,
            },
        );
        let _ = self.events.send(ClientEvent::CallIncoming {
            call,
            from,
            ring_left_ms,
        });
        Ok(())
    }

    /// The callee took a call: only one this user placed and still waits for, and only
    /// with an answer that opens from the callee and names the call.
    pub(super) async fn take_in_call_accepted(
        &self,
        call: CallId,
        answer: &[u8],
    ) -> Result<(), ClientError> {
        let Some(peer) = self.calls().awaiting_answer(call) else {
            self.ignore_call_signal(call, "an answer to a call this user did not place".into());
            return Ok(());
        };
        let key = match self.open_call_key(&peer, call, answer, false).await? {
            Ok(key) => key,
            Err(problem) => {
                self.ignore_call_signal(call, format!("{peer}'s answer was refused: {problem}"));
                return Ok(());
            }
        };
        let mut calls = self.calls();
        let Some(outgoing) = calls.outgoing.get_mut(&call) else {
            return Ok(());
        };
        let Some(keypair) = outgoing.keypair.take() else {
            return Ok(());
        };
        match keypair.agree(&key, call, CallRole::Caller) {
            Ok(keys) => {
                outgoing.keys = Some(keys);
                drop(calls);
                let _ = self.events.send(ClientEvent::CallAccepted { call });
            }
            Err(e) => {
                drop(calls);
                self.ignore_call_signal(call, format!("{peer}'s answer was refused: {e}"));
            }
        }
        Ok(())
    }

    /// A call this user missed (the relay queued it while they were away, busy or did not
    /// answer), at `at_ms` by the relay's clock: reported.
    pub(super) fn take_in_missed_call(
        &self,
        call: CallId,
        from: UserName,
        reason: CallEndReason,
        at_ms: u64,
    ) {
        let _ = self.events.send(ClientEvent::MissedCall {
            call,
            from,
            reason,
            at_ms,
        });
    }

    /// A call ended: reported only for a call this user is in.
    pub(super) fn take_in_call_ended(&self, call: CallId, reason: CallEndReason) {
        if self.calls().ended(call, reason) {
            let _ = self.events.send(ClientEvent::CallEnded { call, reason });
        } else {
            self.ignore_call_signal(
                call,
                format!("an end ({reason}) of a call this user is not in"),
            );
        }
    }
}

/// Voice calls: placing, answering and ending them, and talking (`client.calls()`).
#[derive(Clone, Copy)]
pub struct Calls<'a> {
    client: &'a Client,
}

impl Client {
    /// Voice calls: placing, answering and ending them, and talking.
    pub fn calls(&self) -> Calls<'_> {
        Calls { client: self }
    }
}

impl Calls<'_> {
    /// Rings `to`, a friend. The offer carries a fresh call key, encrypted for them.
    pub async fn place(self, to: &UserName) -> Result<Placed, ClientError> {
        if to == &self.client.inner.me {
            return Err(ClientError::InvalidInput("you cannot call yourself".into()));
        }
        let call = CallId(random_id()?.0);
        let keypair = CallKeyPair::generate();
        let offer = self
            .client
            .inner
            .seal_call_key(to, call, true, keypair.public_bytes())
            .await?;
        self.client.inner.calls().outgoing.insert(
            call,
            Outgoing {
                peer: to.clone(),
                keypair: Some(keypair),
                leg: None,
                keys: None,
                ended: None,
            },
        );
        let request = request::CallInvite {
            call,
            to: to.clone(),
            offer,
        };
        let reply = match self.client.inner.link() {
            Ok(link) => link.call(request).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(InviteAnswer::Ringing(reply::CallRinging {
                leg,
                ring_timeout_ms,
            })) => {
                if let Some(outgoing) = self.client.inner.calls().outgoing.get_mut(&call) {
                    outgoing.leg = Some(leg);
                }
                Ok(Placed::Ringing(PlacedCall {
                    call,
                    peer: to.clone(),
                    ring_timeout: Duration::from_millis(ring_timeout_ms),
                }))
            }
            Ok(InviteAnswer::Ended(reply::CallEnded { reason })) => {
                self.client.inner.calls().outgoing.remove(&call);
                Ok(Placed::Ended { call, reason })
            }
            Err(e) => {
                self.client.inner.calls().outgoing.remove(&call);
                Err(e.into())
            }
        }
    }

    /// Waits until the callee answers or the call ends; after `give_up_after` (if given)
    /// the call is cancelled.
    pub async fn wait_for_answer(
        self,
        placed: &PlacedCall,
        give_up_after: Option<Duration>,
    ) -> Result<CallProgress, ClientError> {
        let mut events = self.client.inner.events.subscribe();
        let relay_deadline = Instant::now() + placed.ring_timeout + RING_GRACE;
        let give_up = give_up_after.map(|d| Instant::now() + d);
        loop {
            if let Some(progress) = self.answer_progress(placed.call) {
                return Ok(progress);
            }
            let wait_until = give_up.map_or(relay_deadline, |g| g.min(relay_deadline));
            tokio::select! {
                // Any event may be the one; the channel cannot close while `self` holds
                // its sender.
                _ = events.recv() => {}
                _ = tokio::time::sleep_until(wait_until) => {
                    let reason = if give_up.is_some_and(|g| g <= relay_deadline) {
                        CallEndReason::Cancelled
                    } else {
                        CallEndReason::Timeout
                    };
                    let _ = self.hang_up(placed.call).await;
                    self.client.inner.calls().outgoing.remove(&placed.call);
                    return Ok(CallProgress::Ended(reason));
                }
            }
        }
    }

    /// The call's state once it connected or ended (and forgets the outgoing entry).
    fn answer_progress(self, call: CallId) -> Option<CallProgress> {
        let mut calls = self.client.inner.calls();
        let outgoing = calls.outgoing.get(&call)?;
        if let Some(reason) = outgoing.ended {
            calls.outgoing.remove(&call);
            return Some(CallProgress::Ended(reason));
        }
        if outgoing.keys.is_none() || outgoing.leg.is_none() {
            return None;
        }
        let outgoing = calls.outgoing.remove(&call)?;
        let (keys, leg) = (outgoing.keys?, outgoing.leg?);
        calls.active.insert(call, None);
        Some(CallProgress::Connected(Box::new(ConnectedCall {
            call,
            peer: outgoing.peer,
            role: CallRole::Caller,
            keys,
            leg,
        })))
    }

    /// Waits up to `wait` for a call to ring for this user, from `from` if given (one that
    /// rings already counts; calls from others are left ringing).
    pub async fn wait_for_call(
        self,
        from: Option<&UserName>,
        wait: Duration,
    ) -> Result<Option<IncomingCall>, ClientError> {
        let mut events = self.client.inner.events.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(incoming) = self
                .client
                .inner
                .calls()
                .first_ringing(from, Instant::now())
            {
                return Ok(Some(incoming));
            }
            tokio::select! {
                _ = events.recv() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// Takes a ringing call: makes this side's call key, sends it encrypted to the caller
    /// and derives the call's voice keys.
    pub async fn answer(self, incoming: &IncomingCall) -> Result<ConnectedCall, ClientError> {
        let call = incoming.call;
        let ringing = self.client.inner.calls().incoming.get(&call).cloned();
        let Some(ringing) = ringing.filter(|r| r.from == incoming.from) else {
            return Err(ClientError::InvalidInput(format!(
                "no call from {} rings any more",
                incoming.from
            )));
        };
        let keypair = CallKeyPair::generate();
        let public = keypair.public_bytes();
        let keys = keypair
            .agree(&ringing.key, call, CallRole::Callee)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let answer = self
            .client
            .inner
            .seal_call_key(&ringing.from, call, false, public)
            .await?;
        let reply = self
            .client
            .inner
            .call(request::CallAnswer { call, answer })
            .await;
        self.client.inner.calls().incoming.remove(&call);
        let leg = reply?.leg;
        self.client.inner.calls().active.insert(call, None);
        Ok(ConnectedCall {
            call,
            peer: ringing.from,
            role: CallRole::Callee,
            keys,
            leg,
        })
    }

    /// Refuses a ringing call.
    pub async fn reject(self, call: CallId) -> Result<(), ClientError> {
        self.client.inner.calls().incoming.remove(&call);
        self.client.inner.call(request::CallReject { call }).await?;
        Ok(())
    }

    /// Ends a call this user is in (cancels one still ringing).
    pub async fn hang_up(self, call: CallId) -> Result<(), ClientError> {
        self.client.inner.call(request::CallHangup { call }).await?;
        Ok(())
    }

    /// The datagrams of the connection to the relay, where a connected call's voice goes.
    pub fn datagram_link(self) -> Result<DatagramLink, ClientError> {
        Ok(DatagramLink::over_quic(self.client.inner.link()?.quic()))
    }

    /// Talks: runs the voice engine over the relay connection until either side hangs
    /// up, the options end the call, or the other side falls silent. `on_stats` gets the
    /// statistics once a second. Capture starts here and nowhere else.
    pub async fn talk(
        self,
        connected: ConnectedCall,
        input: Box<dyn AudioInput>,
        output: Box<dyn AudioOutput>,
        options: TalkOptions,
        on_stats: impl FnMut(CallStats) + Send + 'static,
    ) -> Result<CallEnd, ClientError> {
        let link = self.datagram_link()?;
        self.talk_over(connected, link, input, output, options, on_stats)
            .await
    }

    /// [`Calls::talk`] over a given datagram link (one that taps or shapes the
    /// connection's datagrams, in tests and benchmarks).
    pub async fn talk_over(
        self,
        connected: ConnectedCall,
        link: DatagramLink,
        input: Box<dyn AudioInput>,
        output: Box<dyn AudioOutput>,
        options: TalkOptions,
        on_stats: impl FnMut(CallStats) + Send + 'static,
    ) -> Result<CallEnd, ClientError> {
        let ConnectedCall {
            call, keys, leg, ..
        } = connected;
        let mut events = self.client.inner.events.subscribe();
        let settings = MediaSettings {
            leg,
            path: CallPath::Relay,
            silence_timeout: options.silence_timeout,
            end_after_input: options.end_after_input,
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut media = tokio::spawn(run_media(
            keys, settings, link, input, output, on_stats, stop_rx,
        ));
        let deadline = options.duration.map(|d| Instant::now() + d);
        let ended_elsewhere = |calls: &CallRegistry| calls.active.get(&call).copied().flatten();
        // (why, by me, the engine's result if it ended on its own)
        let (reason, by_me, finished) = loop {
            if let Some(reason) = ended_elsewhere(&self.client.inner.calls()) {
                break (reason, false, None);
            }
            tokio::select! {
                _ = events.recv() => {}
                _ = sleep_until_opt(deadline) => break (CallEndReason::HungUp, true, None),
                result = &mut media => {
                    let finished = engine_outcome(result);
                    let (reason, by_me) = match finished.as_ref().map(|(end, _)| end) {
                        Ok(MediaEnd::PeerSilent) => (CallEndReason::ConnectionLost, false),
                        Ok(MediaEnd::InputEnded | MediaEnd::Stopped) | Err(_) => {
                            (CallEndReason::HungUp, true)
                        }
                    };
                    break (reason, by_me, Some(finished));
                }
            }
        };
        self.client.inner.calls().active.remove(&call);
        if by_me || reason == CallEndReason::ConnectionLost {
            // NoSuchCall is fine: the relay may have ended it already.
            let _ = self.hang_up(call).await;
        }
        let finished = match finished {
            Some(finished) => finished,
            None => {
                let _ = stop.send(true);
                engine_outcome(media.await)
            }
        };
        let (_, summary) = finished?;
        Ok(CallEnd {
            reason,
            by_me,
            summary,
        })
    }
}

/// The engine task's result as one `Result`.
fn engine_outcome(
    joined: Result<Result<(MediaEnd, CallSummary), VoiceError>, tokio::task::JoinError>,
) -> Result<(MediaEnd, CallSummary), VoiceError> {
    joined.map_err(|e| VoiceError::Task(e.to_string()))?
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: CallId = CallId([4; 16]);

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    #[test]
    fn only_a_call_key_for_this_call_and_direction_is_taken() {
        let key = |call, offer, len| Content::CallKey {
            call,
            offer,
            key: vec![1; len],
        };
        assert_eq!(
            call_key_of(key(CALL, false, 32), CALL, false),
            Ok(vec![1; 32])
        );
        assert!(call_key_of(key(CallId([5; 16]), false, 32), CALL, false).is_err());
        assert!(
            call_key_of(key(CALL, true, 32), CALL, false).is_err(),
            "an offer replayed as an answer"
        );
        assert!(call_key_of(key(CALL, false, 31), CALL, false).is_err());
        assert!(call_key_of(Content::Text { text: "hi".into() }, CALL, false).is_err());
    }

    #[test]
    fn an_answer_or_end_for_a_call_not_placed_here_finds_nothing() {
        let mut calls = CallRegistry::default();
        assert_eq!(calls.awaiting_answer(CALL), None);
        assert!(!calls.ended(CALL, CallEndReason::HungUp));
        calls.outgoing.insert(
            CALL,
            Outgoing {
                peer: user("bob"),
                keypair: Some(CallKeyPair::generate()),
                leg: Some(1),
                keys: None,
                ended: None,
            },
        );
        assert_eq!(calls.awaiting_answer(CALL), Some(user("bob")));
        assert_eq!(calls.awaiting_answer(CallId([6; 16])), None);
        assert!(calls.ended(CALL, CallEndReason::Rejected));
        assert_eq!(
            calls.awaiting_answer(CALL),
            None,
            "ended calls take no answer"
        );
    }

    #[test]
    fn the_first_call_to_ring_is_the_one_that_expires_first_and_expired_ones_do_not_ring() {
        let mut calls = CallRegistry::default();
        let now = Instant::now();
        for (id, from, left) in [(1u8, "carol", 30), (2, "alice", 10), (3, "dave", 0)] {
            calls.incoming.insert(
                CallId([id; 16]),
                Ringing {
                    from: user(from),
                    key: vec![0; 32],
                    deadline: now + Duration::from_secs(left),
                },
            );
        }
        assert_eq!(
            calls.first_ringing(None, now),
            Some(IncomingCall {
                call: CallId([2; 16]),
                from: user("alice")
            })
        );
        assert_eq!(
            calls.first_ringing(Some(&user("carol")), now),
            Some(IncomingCall {
                call: CallId([1; 16]),
                from: user("carol")
            })
        );
        assert_eq!(
            calls.first_ringing(Some(&user("dave")), now),
            None,
            "it rang out"
        );
    }
}
