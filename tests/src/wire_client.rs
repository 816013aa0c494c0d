//! A client that speaks the relay protocol directly, with opaque ciphertexts and no
//! end-to-end crypto or local store: what `loadgen`'s wire mode and tests with many
//! senders need to load the relay alone.
//!
//! Many [`WireClient`]s share one UDP socket through a [`Dialer`] (one quinn endpoint),
//! so twenty thousand connections cost no socket each, and an idle client holds no
//! buffer of its own. A client registers (with random keys of the right sizes: the relay
//! checks only lengths), logs in or resumes, makes friends ([`WireClient::befriend`]),
//! sends ([`WireClient::send`], which says exactly whether the relay acknowledged the
//! message) and reads its pushed messages with an [`EventReader`], which acknowledges
//! them in batches as the real client does.
//!
//! It deliberately does not retry, reconnect or keep any state across connections:
//! callers that test those decide themselves what a failure means.

use std::time::Duration;
use uchat_wire::{reply, request};

use tokio::sync::watch;
use tokio::time::Instant;
use uchat_peer::connection::{ConnectionError, RelayLink};
use uchat_wire::frame::{FrameDecoder, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{
    ErrorReply, IdentityKeys, MessageId, PROTOCOL_VERSION, Password, Push, PushEvent, Reply,
    Request, Seq, SessionToken, SignedKey, UserName,
};

pub use uchat_peer::connection::Dialer;

/// The real client acknowledges pushed events at most this long after the first one it
/// has not acknowledged yet (`peer`'s inbox does the same), so the relay's queue is
/// trimmed promptly without an `Ack` per event.
pub const ACK_DELAY: Duration = Duration::from_millis(50);

/// ... or as soon as this many events wait, the most the relay pushes in one batch.
pub const ACK_EVERY_EVENTS: u32 = 256;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(#[from] ConnectionError),
    /// The relay answered with a refusal: the request was not carried out (for `Send`:
    /// nothing was queued).
    #[error("the relay refused {kind}: {error}")]
    Refused {
        /// The request's kind.
        kind: &'static str,
        /// The relay's answer.
        error: ErrorReply,
    },
    /// No answer arrived (the stream or connection failed, or the answer was not a
    /// frame): whether the relay carried the request out is unknown. For `Send`, the
    /// message may or may not be queued; sending it again with the same id is safe.
    #[error("no answer to {kind}: {reason}")]
    Unanswered {
        /// The request's kind.
        kind: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The relay answered with a reply that does not fit the request.
    #[error("unexpected answer to {kind}: {reply:?}")]
    Unexpected {
        /// The request's kind.
        kind: &'static str,
        /// What came back.
        reply: Box<Reply>,
    },
    /// The request does not fit in a frame.
    #[error("cannot encode {kind}: {reason}")]
    Encode {
        /// The request's kind.
        kind: &'static str,
        /// What the frame encoder said (usually: over the control frame limit).
        reason: String,
    },
}

/// The relay's acknowledgement of one `Send`: the message is durably queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The relay's clock when it committed the message, ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// The relay had queued this id before (a retry): nothing new was queued.
    pub duplicate: bool,
}

/// One logged-in connection that speaks the protocol directly.
#[derive(Debug)]
pub struct WireClient {
    link: RelayLink,
    name: UserName,
    token: SessionToken,
}

impl WireClient {
    /// Creates the account `name` with random public keys of the sizes the relay expects
    /// (it checks lengths, never signatures) on a new connection from `dialer`; the
    /// connection is then logged in.
    pub async fn register(
        dialer: &Dialer,
        name: UserName,
        password: &str,
    ) -> Result<Self, RequestError> {
        // Nobody claims a wire client's keys; a few keep the account like a real one.
        let request = register_request(name, password, 5);
        Self::log_in(dialer, request).await
    }

    /// Logs in as `name` with its password on a new connection (an argon2 check on the
    /// relay).
    pub async fn login(
        dialer: &Dialer,
        name: UserName,
        password: &str,
    ) -> Result<Self, RequestError> {
        let request = Request::Login(request::Login {
            username: name,
            password: Password::new(password),
        });
        Self::log_in(dialer, request).await
    }

    /// Resumes `name`'s session with its token on a new connection (no password check).
    pub async fn resume(
        dialer: &Dialer,
        name: UserName,
        token: SessionToken,
    ) -> Result<Self, RequestError> {
        Self::log_in(
            dialer,
            Request::Resume(request::Resume {
                username: name,
                token,
            }),
        )
        .await
    }

    /// Dials, says `Hello` and sends `request` (`Register`, `Login` or `Resume`).
    async fn log_in(dialer: &Dialer, request: Request) -> Result<Self, RequestError> {
        let link = dialer.dial().await?;
        let kind = request.kind();
        let outcome = async {
            let hello = Request::Hello(request::Hello {
                protocol: PROTOCOL_VERSION,
                client: "uchat-tests wire client".into(),
            });
            match request_on(&link, &hello).await? {
                Reply::Welcome(_) => {}
                other => return Err(unexpected("hello", other)),
            }
            match request_on(&link, &request).await? {
                Reply::Session(reply::Session {
                    username, token, ..
                }) => Ok((username, token)),
                other => Err(unexpected(kind, other)),
            }
        }
        .await;
        match outcome {
            Ok((name, token)) => Ok(Self { link, name, token }),
            Err(e) => {
                link.close().await;
                Err(e)
            }
        }
    }

    /// The account's canonical name.
    pub fn name(&self) -> &UserName {
        &self.name
    }

    /// The session token, for [`WireClient::resume`].
    pub fn token(&self) -> &SessionToken {
        &self.token
    }

    /// The connection, for tests that need more (datagrams, raw streams).
    pub fn link(&self) -> &RelayLink {
        &self.link
    }

    /// Sends one request on its own stream and returns the relay's answer.
    pub async fn request(&self, request: &Request) -> Result<Reply, RequestError> {
        request_on(&self.link, request).await
    }

    /// Sends `ciphertext` to `to` as message `id`. `Ok` means the relay answered `Sent`:
    /// the message is durably queued. [`RequestError::Refused`] means it is not;
    /// [`RequestError::Unanswered`] means nobody knows (the relay may have committed it
    /// and died before answering).
    pub async fn send(
        &self,
        to: &UserName,
        id: MessageId,
        ciphertext: Vec<u8>,
    ) -> Result<Sent, RequestError> {
        let request = Request::Send(request::Send {
            to: to.clone(),
            id,
            ciphertext,
        });
        match self.request(&request).await? {
            Reply::Sent(reply::Sent {
                relay_ts_ms,
                duplicate,
                ..
            }) => Ok(Sent {
                relay_ts_ms,
                duplicate,
            }),
            other => Err(unexpected("send", other)),
        }
    }

    /// Makes this user and `other` friends: this one asks, `other` accepts (unless the
    /// two requests met and they already are).
    pub async fn befriend(&self, other: &WireClient) -> Result<(), RequestError> {
        let ask = Request::FriendRequest(request::FriendRequest {
            to: other.name.clone(),
            note: "wire client".into(),
        });
        match self.request(&ask).await? {
            Reply::FriendRequestSent(reply::FriendRequestSent {
                became_friends: true,
            }) => Ok(()),
            Reply::FriendRequestSent(_) => {
                let accept = Request::AcceptFriend(request::AcceptFriend {
                    from: self.name.clone(),
                });
                match other.request(&accept).await? {
                    Reply::Done => Ok(()),
                    reply => Err(unexpected("accept_friend", reply)),
                }
            }
            reply => Err(unexpected("friend_request", reply)),
        }
    }

    /// Waits for the relay's event stream (it opens one after login) and returns its
    /// reader. Call it once per connection.
    pub async fn events(&self) -> Result<EventReader, RequestError> {
        let recv = self
            .link
            .quic()
            .accept_uni()
            .await
            .map_err(|e| unanswered("events", e))?;
        let (ack_tx, ack_rx) = watch::channel(Seq(0));
        let (done_tx, done_rx) = watch::channel(AckState::default());
        let ack_actor = tokio::spawn(ack_actor(self.link.clone(), ack_rx, done_tx));
        Ok(EventReader {
            recv,
            decoder: FrameDecoder::new(MAX_CONTROL_FRAME_BYTES),
            batch: AckBatch::default(),
            ack_tx,
            done_rx,
            ack_actor,
        })
    }

    /// Closes the connection (the relay keeps unacknowledged events for the next one).
    pub async fn close(&self) {
        self.link.close().await;
    }
}

/// One message the relay pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its place in the recipient's queue.
    pub seq: Seq,
    /// The relay's clock when it was queued, ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// The authenticated sender.
    pub from: UserName,
    /// The sender's id.
    pub id: MessageId,
    /// The bytes sent.
    pub ciphertext: Vec<u8>,
}

/// Reads one connection's pushed events: yields the 1:1 messages, skips everything else
/// (friend events, presence), and acknowledges every durable event in batches
/// ([`ACK_DELAY`], [`ACK_EVERY_EVENTS`]) from a task of its own, so reading never waits
/// for an `Ack`'s round trip. A batch that is due is sent while [`EventReader::next`]
/// runs; [`EventReader::flush`] sends the rest and waits for the relay's answer.
#[derive(Debug)]
pub struct EventReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    batch: AckBatch,
    ack_tx: watch::Sender<Seq>,
    done_rx: watch::Receiver<AckState>,
    ack_actor: tokio::task::JoinHandle<()>,
}

/// Why reading events failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The stream carried something that is not a push frame.
    #[error("bad push frame: {0}")]
    BadFrame(#[from] uchat_wire::FrameError),
    /// The connection failed.
    #[error("the event stream failed: {0}")]
    Stream(String),
}

impl EventReader {
    /// The next pushed message; `Ok(None)` if none came within `limit` or the stream
    /// ended (the relay closed the connection).
    pub async fn next(&mut self, limit: Duration) -> Result<Option<Delivered>, EventError> {
        let give_up = Instant::now() + limit;
        // Bounded by `limit`: every turn either takes a frame, reads, or sleeps until a
        // deadline no later than `give_up`.
        loop {
            if let Some(push) = self.decoder.next_message::<Push>()? {
                if let Some(seq) = push.seq
                    && let Some(through) = self.batch.take(seq, Instant::now())
                {
                    self.ack_tx.send_replace(through);
                }
                if let PushEvent::Message {
                    from,
                    id,
                    ciphertext,
                } = push.event
                    && let Some(seq) = push.seq
                {
                    return Ok(Some(Delivered {
                        seq,
                        relay_ts_ms: push.relay_ts_ms,
                        from,
                        id,
                        ciphertext,
                    }));
                }
                continue;
            }
            let now = Instant::now();
            if now >= give_up {
                return Ok(None);
            }
            let wake = self.batch.deadline().map_or(give_up, |d| d.min(give_up));
            // Priorities: data first (it may complete a batch), then the ack timer.
            tokio::select! {
                biased;
                chunk = self.recv.read_chunk(usize::MAX, true) => match chunk {
                    Ok(Some(chunk)) => self.decoder.push(&chunk.bytes)?,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(EventError::Stream(e.to_string())),
                },
                () = tokio::time::sleep_until(wake) => {
                    if let Some(through) = self.batch.due(Instant::now()) {
                        self.ack_tx.send_replace(through);
                    }
                }
            }
        }
    }

    /// Acknowledges every event taken so far and waits (at most `limit`) until the relay
    /// answered the `Ack`.
    pub async fn flush(&mut self, limit: Duration) -> Result<(), RequestError> {
        let Some(through) = self.batch.flush().or(self.batch.last) else {
            return Ok(());
        };
        self.ack_tx.send_replace(through);
        let waited = tokio::time::timeout(
            limit,
            self.done_rx
                .wait_for(|state| state.through >= through || state.error.is_some()),
        )
        .await;
        let state = match waited {
            Ok(Ok(state)) => state.clone(),
            Ok(Err(_)) => return Err(unanswered("ack", "the acknowledging task ended")),
            Err(_) => return Err(unanswered("ack", format!("no answer within {limit:?}"))),
        };
        match state.error {
            Some(reason) if state.through < through => Err(unanswered("ack", reason)),
            _ => Ok(()),
        }
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        self.ack_actor.abort();
    }
}

/// What the acknowledging task achieved.
#[derive(Debug, Clone, Default)]
struct AckState {
    /// The relay confirmed acknowledgements through here.
    through: Seq,
    /// Why the task stopped, if it did.
    error: Option<String>,
}

/// Sends an `Ack` for the latest sequence number it is given, one at a time (a newer
/// one replaces any not yet sent), and reports what the relay confirmed.
async fn ack_actor(
    link: RelayLink,
    mut wanted: watch::Receiver<Seq>,
    done: watch::Sender<AckState>,
) {
    // Ends when the reader is dropped (the channel closes) or an `Ack` fails.
    while wanted.changed().await.is_ok() {
        let through = *wanted.borrow_and_update();
        match request_on(&link, &Request::Ack(request::Ack { through })).await {
            Ok(_) => {
                done.send_modify(|state| state.through = state.through.max(through));
            }
            Err(e) => {
                done.send_modify(|state| state.error = Some(e.to_string()));
                return;
            }
        }
    }
}

/// When to acknowledge: a pure batching rule, clocked by the caller. Feed it every
/// durable event's sequence number ([`AckBatch::take`]), ask when the next batch is due
/// ([`AckBatch::deadline`]) and take it then ([`AckBatch::due`]).
#[derive(Debug, Default, Clone)]
struct AckBatch {
    /// The highest sequence number taken in.
    last: Option<Seq>,
    /// Events taken in since the last batch went out.
    waiting: u32,
    /// When the oldest of those arrived.
    since: Option<Instant>,
}

impl AckBatch {
    /// Takes in a durable event; returns the batch to acknowledge if it is now full.
    fn take(&mut self, seq: Seq, now: Instant) -> Option<Seq> {
        self.last = Some(self.last.map_or(seq, |last| last.max(seq)));
        self.waiting += 1;
        self.since.get_or_insert(now);
        if self.waiting >= ACK_EVERY_EVENTS {
            self.flush()
        } else {
            None
        }
    }

    /// When the waiting events must be acknowledged, if any wait.
    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + ACK_DELAY)
    }

    /// The batch to acknowledge, if its deadline has passed by `now`.
    fn due(&mut self, now: Instant) -> Option<Seq> {
        match self.deadline() {
            Some(deadline) if deadline <= now => self.flush(),
            _ => None,
        }
    }

    /// The batch to acknowledge now, whatever the time, if any events wait.
    fn flush(&mut self) -> Option<Seq> {
        if self.waiting == 0 {
            return None;
        }
        self.waiting = 0;
        self.since = None;
        self.last
    }
}

/// Sends one request on its own stream of `link` ([`RelayLink::request`]) and sorts its
/// failures into refused, unanswered and unencodable.
async fn request_on(link: &RelayLink, request: &Request) -> Result<Reply, RequestError> {
    let kind = request.kind();
    link.request(request).await.map_err(|e| match e {
        ConnectionError::Refused(error) => RequestError::Refused { kind, error },
        ConnectionError::TooLarge(e) => RequestError::Encode {
            kind,
            reason: e.to_string(),
        },
        other => unanswered(kind, other),
    })
}

fn unanswered(kind: &'static str, reason: impl ToString) -> RequestError {
    RequestError::Unanswered {
        kind,
        reason: reason.to_string(),
    }
}

fn unexpected(kind: &'static str, reply: Reply) -> RequestError {
    RequestError::Unexpected {
        kind,
        reply: Box::new(reply),
    }
}

/// `len` random bytes: key material the relay only stores, and filler for opaque
/// ciphertexts.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    getrandom::fill(&mut out).expect("the operating system gives random bytes");
    out
}

/// A `Register` for `name` with random public keys of the sizes the relay expects (it
/// checks lengths, never signatures) and `one_time_keys` one-time keys.
pub fn register_request(name: UserName, password: &str, one_time_keys: usize) -> Request {
    let key = || SignedKey {
        key: random_bytes(32),
        signature: random_bytes(64),
    };
    Request::Register(request::Register {
        username: name,
        password: Password::new(password),
        identity: IdentityKeys {
            curve25519: random_bytes(32),
            ed25519: random_bytes(32),
        },
        one_time_keys: (0..one_time_keys).map(|_| key()).collect(),
        fallback_key: Some(key()),
    })
}

/// A fresh random message id.
pub fn random_message_id() -> MessageId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&random_bytes(16));
    MessageId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_is_acknowledged_at_once() {
        let now = Instant::now();
        let mut batch = AckBatch::default();
        for i in 1..ACK_EVERY_EVENTS {
            assert_eq!(batch.take(Seq(u64::from(i)), now), None);
        }
        assert_eq!(
            batch.take(Seq(u64::from(ACK_EVERY_EVENTS)), now),
            Some(Seq(u64::from(ACK_EVERY_EVENTS)))
        );
        assert_eq!(batch.deadline(), None, "nothing waits after a batch");
    }

    #[test]
    fn a_partial_batch_waits_for_its_deadline() {
        let now = Instant::now();
        let mut batch = AckBatch::default();
        assert_eq!(batch.take(Seq(7), now), None);
        assert_eq!(batch.take(Seq(8), now + Duration::from_millis(10)), None);
        assert_eq!(batch.deadline(), Some(now + ACK_DELAY));
        assert_eq!(batch.due(now + ACK_DELAY - Duration::from_millis(1)), None);
        assert_eq!(batch.due(now + ACK_DELAY), Some(Seq(8)));
        assert_eq!(batch.due(now + ACK_DELAY * 3), None, "sent once");
        assert_eq!(batch.flush(), None);
    }

    #[test]
    fn random_bytes_differ() {
        let (a, b) = (random_bytes(33), random_bytes(33));
        assert_eq!(a.len(), 33);
        assert_ne!(a, b);
    }
}
