//! [`Client`]: one logged-in user talking to one relay.
//!
//! Calling order: [`Client::register`], [`Client::login`] or [`Client::open`] (all three
//! connect and start taking in events), then any of [`Client::send_text`],
//! [`Client::catch_up`], [`Client::history`], [`Client::subscribe`]; finally
//! [`Client::close`]. After a dropped connection, [`Client::reconnect`] dials again with
//! backoff.
//!
//! Delivery: a message to send is encrypted and committed to the local store (history and
//! outbox) before it goes to the relay, so nothing typed is lost when the relay is
//! unreachable; the outbox is flushed on every connect. Received messages are decrypted and
//! committed (session state, history, de-duplication mark, sequence number) in one
//! transaction before the relay is told to delete them.

mod batch;
mod call;
mod connector;
mod courier;
mod file;
mod group;
mod moment;
mod page;
mod receipt;
mod sealing;
mod social;

pub use call::{
    CallEnd, CallProgress, Calls, ConnectedCall, DEFAULT_SILENCE_TIMEOUT, IncomingCall, Placed,
    PlacedCall, TalkOptions,
};
pub use file::{
    FileTarget, Files, ProgressFn, REMEMBER_SENT_FILES_MS, Repeat, SavedFile, SentFile,
    pending_upload_key,
};
pub use group::{Group, Groups};
pub use moment::{MomentPage, Moments, PostedMoment};
pub use social::{Friend, FriendRequests, NewAvatar, Profile, Social};

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uchat_wire::{reply, request};

use crate::store::{
    ConversationId, EntryFlags, EntryStatus, HistoryEntry, IdentityFlag, InboundCommit,
    OutboundCommit, OutboxEntry, PeerStore, PinnedIdentity, ProfileRecord, SessionRecord, Settled,
    StoreError,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uchat_wire::{
    CertFingerprint, ErrorCode, IdentityKeys, MAX_TEXT_BYTES, MessageId, PROTOCOL_VERSION,
    Password, Push, PushEvent, Seq, SessionToken, UserName,
};

use crate::body::Body;
use crate::connection::{self, ConnectionError, RelayLink};
use crate::core::inbox::{self, Backlog};
use crate::core::outbox::{self, Delivery};
use crate::crypto::olm::{Identity, OlmError, SealedSession, SessionSet};
use crate::crypto::password::{KeyDerivationError, LocalKey};
use crate::crypto::safety;
use crate::envelope::{Content, Payload};
use crate::event::ClientEvent;
use crate::trust::{KNOWN_RELAYS_FILE, KnownRelays, TrustError};

/// One-time keys published at registration and whenever the relay's stock runs low.
const ONE_TIME_KEY_BATCH: usize = 50;
/// Below this many one-time keys on the relay, publish another batch.
const ONE_TIME_KEY_LOW_WATER: u64 = 20;
/// File name of the local store in the profile directory.
pub const STORE_FILE: &str = "uchat.redb";

/// Why a client operation failed. Messages say what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No relay address was given and the profile has none.
    #[error("no relay address: pass --relay HOST:PORT or set UCHAT_RELAY")]
    NoRelay,
    /// The profile directory is not logged in.
    #[error("not logged in in {home}: run `uchat register USER` or `uchat login USER` first")]
    NotLoggedIn {
        /// The profile directory.
        home: PathBuf,
    },
    /// The profile belongs to another account.
    #[error("the profile directory {home} belongs to '{owner}'; use another --home for '{wanted}'")]
    OtherAccount {
        /// The profile directory.
        home: PathBuf,
        /// Who it belongs to.
        owner: UserName,
        /// Who was asked for.
        wanted: UserName,
    },
    /// `register` in a profile that already holds that account.
    #[error("'{user}' is already registered in {home}; use `uchat login {user}` to log in again")]
    AlreadyRegistered {
        /// The profile directory.
        home: PathBuf,
        /// The account this profile holds already, asked to be registered again.
        user: UserName,
    },
    /// The relay did not answer a registration; the keys are kept for a retry.
    #[error(
        "{source}; the registration of '{user}' may not have finished: run the same register command again to finish it"
    )]
    RegistrationUnfinished {
        /// The account being registered; its keys stay in the profile for the retry.
        user: UserName,
        /// The relay was unreachable, or refused for a reason a retry may clear.
        source: Box<ConnectionError>,
    },
    /// Logging in where the account's keys are not, without saying it is a new device.
    #[error(
        "the profile directory {home} has no keys for '{user}'. Use the --home where you registered, or, to move the account to this device, run `uchat login {user} --new-device` (this makes new identity keys: your contacts will see them change, and messages still waiting for the old device cannot be read here)"
    )]
    NoKeysHere {
        /// The profile directory.
        home: PathBuf,
        /// The account asked for, whose keys this profile does not hold.
        user: UserName,
    },
    /// The password does not unlock the local keys.
    #[error("wrong password: it does not unlock the keys in {home}")]
    WrongPassword {
        /// The profile directory.
        home: PathBuf,
    },
    /// A message to oneself.
    #[error("cannot send a message to yourself")]
    SelfMessage,
    /// Input that breaks a rule (a note or signature too long, a request to oneself…).
    #[error("{0}")]
    InvalidInput(String),
    /// An empty message.
    #[error("the message is empty")]
    EmptyMessage,
    /// The voice engine failed during a call (Opus, or the audio output).
    #[error("the call's voice engine stopped: {0}")]
    Voice(#[from] crate::voice::VoiceError),
    /// Text over the limit.
    #[error("the message is {len} bytes; the limit is {max} bytes")]
    MessageTooLarge {
        /// The text's length in bytes of UTF-8.
        len: usize,
        /// The most bytes a text may have ([`uchat_wire::MAX_TEXT_BYTES`]).
        max: usize,
    },
    /// The contact's identity key differs from the pinned one.
    #[error(
        "{user}'s identity key has changed since you first talked. Compare safety numbers with them (`uchat safety-number {user}`) before trusting the new key"
    )]
    IdentityChanged {
        /// The contact whose identity key from the relay differs from the pinned one.
        user: UserName,
    },
    /// `trust` was given digits that the relay's identity for the contact does not give.
    #[error(
        "those digits are not the safety number of {user}'s current identity key; compare again with `uchat safety-number {user}` and do not trust the key if they differ"
    )]
    SafetyNumberMismatch {
        /// The contact whose current identity key the digits were checked against.
        user: UserName,
    },
    /// The contact's keys from the relay are unusable.
    #[error("cannot start an encrypted session with {user}: {source}")]
    Session {
        /// The contact the session was to be with.
        user: UserName,
        /// What Olm objected to: a malformed key, a bad signature, no session, ...
        source: OlmError,
    },
    /// The relay was unreachable; the message waits in the outbox.
    #[error("{source}; the message is kept in the outbox and will be sent on the next run")]
    Queued {
        /// The message's id; it waits in the outbox and goes on the next run.
        id: MessageId,
        /// Why it was not sent.
        source: Box<ConnectionError>,
    },
    /// The relay refused the message for good (it is kept in history as not sent).
    #[error("the relay refused message {id}: {reason}")]
    NotSent {
        /// The message's id; its history entry is marked failed, with the reason.
        id: MessageId,
        /// The relay's reason.
        reason: String,
    },
    /// Talking to the relay failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay pin list failed.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Key derivation failed.
    #[error(transparent)]
    KeyDerivation(#[from] KeyDerivationError),
    /// The local keys could not be read.
    #[error("local keys unusable: {0}")]
    Keys(OlmError),
    /// The profile directory could not be made.
    #[error("cannot create profile directory {home}: {source}")]
    Home {
        /// The profile directory (`--home`) that could not be made.
        home: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The relay answered something unexpected.
    #[error("unexpected answer from the relay to {request}")]
    Unexpected {
        /// Which request.
        request: &'static str,
    },
    /// A file transfer failed.
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
    /// The event stream did not catch up in time.
    #[error("timed out after {0:?} waiting for pending messages")]
    CatchUpTimeout(Duration),
    /// The client is closing: its tasks stopped before the work asked of them was done.
    #[error("the client is closing")]
    Closing,
    /// One failure told to several callers that waited for the same work (a reconnect,
    /// a run of the outbox).
    #[error(transparent)]
    Shared(Arc<ClientError>),
}

/// Tells every one of `answers` that their work failed with `error`: a single caller gets
/// the error itself, several share it.
fn tell_all<T>(
    error: ClientError,
    answers: impl IntoIterator<Item = oneshot::Sender<Result<T, ClientError>>>,
) {
    let mut answers: Vec<_> = answers.into_iter().collect();
    if answers.len() == 1
        && let Some(answer) = answers.pop()
    {
        let _ = answer.send(Err(error));
        return;
    }
    let shared = Arc::new(error);
    for answer in answers {
        let _ = answer.send(Err(ClientError::Shared(shared.clone())));
    }
}

impl ClientError {
    /// The relay's error code, if the relay refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Connection(ConnectionError::Refused(e)) => Some(e.code),
            _ => None,
        }
    }
}

/// Safety numbers with one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumbers {
    /// From the identity this profile pinned.
    pub pinned: String,
    /// From the identity the relay serves now, if it differs from the pinned one.
    pub changed: Option<String>,
}

/// Where a client's profile lives and which relay it talks to.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The profile directory (local store, relay pins).
    pub home: PathBuf,
    /// "HOST:PORT"; defaults to the relay the profile last used.
    pub relay: Option<String>,
    /// Pin the relay to this fingerprint instead of trusting on first use.
    pub relay_fingerprint: Option<CertFingerprint>,
}

/// State shared between the client handle and its background tasks.
struct ClientState {
    home: PathBuf,
    store: Arc<PeerStore>,
    me: UserName,
    key: LocalKey,
    /// Serializes every use of the Olm account and sessions. A `std` mutex, taken only
    /// for work without an `.await` (see `sealing.rs`): never across a round trip.
    identity: std::sync::Mutex<Identity>,
    /// Errands for the courier, the outbox's only sender (see `courier.rs`).
    courier: mpsc::UnboundedSender<courier::Errand>,
    /// Asks the courier to send the outbox again (after membership events a waiting
    /// group message was waiting for, or delivery receipts gathered).
    outbox_wake: tokio::sync::Notify,
    /// Where the queue stood when the current connection logged in.
    backlog: std::sync::Mutex<Backlog>,
    /// The relay this client talks to ("HOST:PORT").
    relay: String,
    /// The live connection; `None` while offline.
    link: RwLock<Option<RelayLink>>,
    events: broadcast::Sender<ClientEvent>,
    processed: watch::Sender<Seq>,
    /// The calls this user placed, rang for or is in.
    calls: std::sync::Mutex<call::CallRegistry>,
    /// Messages taken in whose delivery receipts have not been queued yet.
    delivered: std::sync::Mutex<Vec<(UserName, MessageId)>>,
    /// Asks the receipt task to have the delivery receipts waiting in `delivered` queued.
    receipts_wake: tokio::sync::Notify,
}

/// Everything a client needs once the keys are unlocked.
struct Unlocked {
    options: ClientOptions,
    store: Arc<PeerStore>,
    me: UserName,
    key: LocalKey,
    identity: Identity,
    link: Option<RelayLink>,
    backlog: Backlog,
    relay: String,
}

/// A logged-in user connected to a relay.
pub struct Client {
    inner: Arc<ClientState>,
    /// The tasks that live as long as the client: the connector (which owns the current
    /// connection's tasks), the courier and the receipt gatherer. Dropped, they stop.
    life: tokio::task::JoinSet<()>,
    /// Asks for the connector (see `connector.rs`).
    connector: mpsc::UnboundedSender<connector::Ask>,
    /// The receiver made with the channel, so the first subscriber misses nothing taken
    /// in while connecting.
    first_events: std::sync::Mutex<Option<broadcast::Receiver<ClientEvent>>>,
    /// True after a login that made new identity keys for this device.
    new_device: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("me", &self.inner.me)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The error for a relay answer of the wrong kind to `request`.
fn unexpected(request: &'static str) -> ClientError {
    ClientError::Unexpected { request }
}

fn random_id() -> Result<MessageId, ClientError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| KeyDerivationError::Random {
        reason: e.to_string(),
    })?;
    Ok(MessageId(id))
}

fn open_store(home: &Path) -> Result<Arc<PeerStore>, ClientError> {
    std::fs::create_dir_all(home).map_err(|source| ClientError::Home {
        home: home.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
    }
    Ok(Arc::new(PeerStore::open(&home.join(STORE_FILE))?))
}

/// Dials the relay, enforcing and recording the fingerprint pin, and says Hello.
async fn dial(options: &ClientOptions, relay: &str) -> Result<RelayLink, ClientError> {
    let mut known = KnownRelays::load(&options.home)?;
    let pinned = options.relay_fingerprint.or_else(|| known.pinned(relay));
    let known_path = options.home.join(KNOWN_RELAYS_FILE);
    let link = connection::dial(relay, pinned, &known_path.display().to_string()).await?;
    if known.pinned(relay) != Some(link.fingerprint()) {
        if pinned.is_none() {
            tracing::info!(relay, fingerprint = %link.fingerprint(), "trusting relay on first use");
        }
        known.pin(&options.home, relay, link.fingerprint())?;
    }
    let hello = request::Hello {
        protocol: PROTOCOL_VERSION,
        client: format!("uchat-peer/{}", env!("CARGO_PKG_VERSION")),
    };
    link.call(hello).await?;
    Ok(link)
}

/// The token of a new session and where the user's queue stood when it began.
/// What `delivery` of outbox entry `id` records: sent, or failed for good (the relay will
/// never take it: no such user, too large, …, so it is kept in history as failed rather
/// than retried forever); nothing while it waits.
fn settlement(id: MessageId, delivery: &Delivery) -> Option<(MessageId, Settled)> {
    match delivery {
        Delivery::Sent { relay_ts_ms } => Some((
            id,
            Settled::Sent {
                relay_ts_ms: *relay_ts_ms,
            },
        )),
        Delivery::Refused(error) => Some((
            id,
            Settled::Failed {
                reason: error.message.clone(),
            },
        )),
        Delivery::Later(_) => None,
    }
}

/// Resumes `profile`'s session on `link`; returns where its queue stands.
async fn resume(link: &RelayLink, profile: &ProfileRecord) -> Result<Backlog, ClientError> {
    let reply = link
        .call(request::Resume {
            username: profile.username.clone(),
            token: SessionToken(profile.token.clone()),
        })
        .await?;
    Ok(session_of(reply).1)
}

fn session_of(session: reply::Session) -> (SessionToken, Backlog) {
    let backlog = Backlog {
        head: session.queue_head,
        acked_through: session.acked_through,
    };
    (session.token, backlog)
}

/// Derives the password key for `profile` and unseals its identity keys with it; keys that
/// do not open mean the wrong password for the profile directory `home`.
async fn unlock(
    profile: &ProfileRecord,
    password: &str,
    home: &Path,
) -> Result<(LocalKey, Identity), ClientError> {
    let key = derive(password, &profile.kdf_salt).await?;
    let identity = Identity::unseal(&profile.account_pickle, &key).map_err(|_| {
        ClientError::WrongPassword {
            home: home.to_path_buf(),
        }
    })?;
    Ok((key, identity))
}

/// The identity keys, password salt and key to register `username` with, given the
/// profile directory `home`'s `profile`: fresh ones in an empty directory, or those of an
/// unfinished registration of the same name. A directory holding an account is refused.
async fn keys_to_register(
    profile: Option<ProfileRecord>,
    home: &Path,
    username: &UserName,
    password: &str,
) -> Result<(Identity, Vec<u8>, LocalKey), ClientError> {
    match profile {
        None => {
            let salt = LocalKey::new_salt()?;
            let key = derive(password, &salt).await?;
            Ok((Identity::generate(), salt, key))
        }
        // A registration whose answer never arrived (the profile was saved, no token):
        // register again with the same identity, which the relay accepts as a retry.
        Some(profile) if &profile.username == username && profile.token.is_empty() => {
            let (key, identity) = unlock(&profile, password, home).await?;
            Ok((identity, profile.kdf_salt, key))
        }
        Some(profile) if &profile.username == username => Err(ClientError::AlreadyRegistered {
            home: home.to_path_buf(),
            user: username.clone(),
        }),
        Some(profile) => Err(ClientError::OtherAccount {
            home: home.to_path_buf(),
            owner: profile.username,
            wanted: username.clone(),
        }),
    }
}

/// The session the relay's `reply` to a registration opened. A refusal for good deletes
/// the saved profile; any other failure leaves it, for a retry of the registration.
fn registered_session(
    reply: Result<reply::Session, ConnectionError>,
    store: &PeerStore,
    username: &UserName,
) -> Result<(SessionToken, Backlog), ClientError> {
    match reply {
        Ok(session) => Ok(session_of(session)),
        // The relay says the name can never be ours with these keys (taken by someone
        // else, or not acceptable): leave the directory clean.
        Err(ConnectionError::Refused(e))
            if matches!(
                e.code,
                ErrorCode::UsernameTaken
                    | ErrorCode::InvalidUsername
                    | ErrorCode::InvalidPassword
                    | ErrorCode::BadKeys
            ) =>
        {
            store.delete_profile()?;
            Err(ConnectionError::Refused(e).into())
        }
        Err(source) => Err(ClientError::RegistrationUnfinished {
            user: username.clone(),
            source: Box::new(source),
        }),
    }
}

/// Dials `relay` and logs `username` in with `password`: the link, and the session's
/// token and backlog. The relay checks the password before any local key is unlocked.
async fn password_login(
    options: &ClientOptions,
    relay: &str,
    username: &UserName,
    password: &str,
) -> Result<(RelayLink, SessionToken, Backlog), ClientError> {
    let link = dial(options, relay).await?;
    let reply = link
        .call(request::Login {
            username: username.clone(),
            password: Password::new(password),
        })
        .await?;
    let (token, backlog) = session_of(reply);
    Ok((link, token, backlog))
}

/// Makes new identity keys for `username`, logged in on `link` with `token` from a
/// profile directory that never held the account (a new device): saves them sealed under
/// a key from `password`, and publishes them, replacing the account's old keys.
async fn new_device_keys(
    store: &PeerStore,
    link: &RelayLink,
    username: &UserName,
    password: &str,
    relay: &str,
    token: SessionToken,
) -> Result<(LocalKey, Identity, ProfileRecord), ClientError> {
    let mut identity = Identity::generate();
    let one_time_keys = identity.new_one_time_keys(ONE_TIME_KEY_BATCH);
    let fallback_key = identity.new_fallback_key();
    let salt = LocalKey::new_salt()?;
    let key = derive(password, &salt).await?;
    let profile = ProfileRecord {
        username: username.clone(),
        relay: relay.to_string(),
        token: token.0,
        account_pickle: identity.seal(&key),
        kdf_salt: salt,
    };
    // Saved before publishing, so the relay never serves keys we lost; undone if the
    // relay does not take them, so that the login can simply be retried.
    store.put_profile(&profile)?;
    let published = link
        .call(request::ReplaceIdentity {
            identity: identity.public_keys(),
            one_time_keys,
            fallback_key,
        })
        .await;
    if let Err(e) = published {
        store.delete_profile()?;
        return Err(e.into());
    }
    tracing::info!(user = %username, "new identity keys published for this device");
    Ok((key, identity, profile))
}

impl Client {
    /// Creates the account on the relay with fresh identity keys, stores the keys sealed
    /// under the password in `options.home`, and logs in.
    pub async fn register(
        options: ClientOptions,
        username: UserName,
        password: &str,
    ) -> Result<Client, ClientError> {
        let store = open_store(&options.home)?;
        let relay = options.relay.clone().ok_or(ClientError::NoRelay)?;
        let (mut identity, salt, key) =
            keys_to_register(store.profile()?, &options.home, &username, password).await?;
        let link = dial(&options, &relay).await?;
        let one_time_keys = identity.new_one_time_keys(ONE_TIME_KEY_BATCH);
        let fallback_key = identity.new_fallback_key();
        // The sealed keys are saved before the relay hears of them, so a lost answer never
        // leaves an account whose keys exist nowhere.
        let mut profile = ProfileRecord {
            username: username.clone(),
            relay: relay.clone(),
            token: Vec::new(),
            account_pickle: identity.seal(&key),
            kdf_salt: salt,
        };
        store.put_profile(&profile)?;
        let reply = link
            .call(request::Register {
                username: username.clone(),
                password: Password::new(password),
                identity: identity.public_keys(),
                one_time_keys,
                fallback_key,
            })
            .await;
        let (token, backlog) = registered_session(reply, &store, &username)?;
        profile.token = token.0;
        store.put_profile(&profile)?;
        Self::start(Unlocked {
            options,
            store,
            me: username,
            key,
            identity,
            link: Some(link),
            backlog,
            relay,
        })
        .await
    }

    /// Logs in. The relay checks the password first, so an unknown user or a wrong password
    /// is reported as such. In a profile directory that holds the account's keys, they are
    /// unlocked. In one that never held the account, `new_device_allowed` decides: new
    /// identity keys are made and published, replacing the old ones and logging out every
    /// other device ([`Client::is_new_device`]), or the login is refused with advice.
    pub async fn login(
        options: ClientOptions,
        username: UserName,
        password: &str,
        new_device_allowed: bool,
    ) -> Result<Client, ClientError> {
        let store = open_store(&options.home)?;
        let profile = store.profile()?;
        if let Some(profile) = &profile
            && profile.username != username
        {
            return Err(ClientError::OtherAccount {
                home: options.home.clone(),
                owner: profile.username.clone(),
                wanted: username,
            });
        }
        let relay = options
            .relay
            .clone()
            .or_else(|| profile.as_ref().map(|p| p.relay.clone()))
            .ok_or(ClientError::NoRelay)?;
        let (link, token, backlog) = password_login(&options, &relay, &username, password).await?;
        let (key, identity, profile, new_device) = match profile {
            Some(profile) => {
                let (key, identity) = unlock(&profile, password, &options.home).await?;
                let profile = ProfileRecord {
                    relay: relay.clone(),
                    token: token.0,
                    ..profile
                };
                (key, identity, profile, false)
            }
            None if !new_device_allowed => {
                return Err(ClientError::NoKeysHere {
                    home: options.home.clone(),
                    user: username,
                });
            }
            // This profile directory has never held the account: a new device. Make new
            // identity keys and publish them; contacts will see that the identity changed.
            None => {
                let (key, identity, profile) =
                    new_device_keys(&store, &link, &username, password, &relay, token).await?;
                (key, identity, profile, true)
            }
        };
        store.put_profile(&profile)?;
        let unlocked = Unlocked {
            options,
            store,
            me: username,
            key,
            identity,
            link: Some(link),
            backlog,
            relay,
        };
        Self::start_logged_in(unlocked, new_device).await
    }

    /// Starts a client that has just logged in, and on a new device asks the relay for the
    /// groups the account is in.
    async fn start_logged_in(unlocked: Unlocked, new_device: bool) -> Result<Client, ClientError> {
        let mut client = Self::start(unlocked).await?;
        client.new_device = new_device;
        if new_device {
            // This device has no view of the groups the account is in: ask for each.
            if let Err(e) = client.groups().sync().await {
                tracing::warn!(error = %e, "cannot ask for the groups' member lists");
            }
        }
        Ok(client)
    }

    /// Opens a logged-in profile: unlocks the keys with the password and resumes the session.
    pub async fn open(options: ClientOptions, password: &str) -> Result<Client, ClientError> {
        let store = open_store(&options.home)?;
        let profile = store
            .profile()?
            .filter(|p| !p.token.is_empty())
            .ok_or_else(|| ClientError::NotLoggedIn {
                home: options.home.clone(),
            })?;
        let (key, identity) = unlock(&profile, password, &options.home).await?;
        let relay = options
            .relay
            .clone()
            .unwrap_or_else(|| profile.relay.clone());
        let (link, backlog) = match dial(&options, &relay).await {
            Ok(link) => {
                let backlog = resume(&link, &profile).await?;
                (Some(link), backlog)
            }
            // Unreachable is a normal state: the client works offline (messages wait in the
            // outbox) and `reconnect` brings it online. A wrong certificate is not.
            Err(ClientError::Connection(e @ ConnectionError::Unreachable { .. })) => {
                tracing::debug!(error = %e, "starting offline");
                (None, Backlog::default())
            }
            Err(e) => return Err(e),
        };
        Self::start(Unlocked {
            options,
            store,
            me: profile.username,
            key,
            identity,
            link,
            backlog,
            relay,
        })
        .await
    }

    /// Who is logged in in `home`, without a password or a connection.
    pub fn whoami(home: &Path) -> Result<Option<(UserName, String)>, ClientError> {
        if !home.join(STORE_FILE).exists() {
            return Ok(None);
        }
        let store = PeerStore::open(&home.join(STORE_FILE))?;
        Ok(store
            .profile()?
            .filter(|p| !p.token.is_empty())
            .map(|p| (p.username, p.relay)))
    }

    async fn start(unlocked: Unlocked) -> Result<Client, ClientError> {
        let Unlocked {
            options,
            store,
            me,
            key,
            identity,
            link,
            backlog,
            relay,
        } = unlocked;
        let (events, first_events) = broadcast::channel(4096);
        let (processed, _) = watch::channel(Seq(0));
        let (courier, errands) = mpsc::unbounded_channel();
        let inner = Arc::new(ClientState {
            home: options.home.clone(),
            store,
            me,
            key,
            identity: std::sync::Mutex::new(identity),
            courier,
            outbox_wake: tokio::sync::Notify::new(),
            backlog: std::sync::Mutex::new(backlog),
            calls: std::sync::Mutex::default(),
            delivered: std::sync::Mutex::default(),
            receipts_wake: tokio::sync::Notify::new(),
            relay,
            link: RwLock::new(link),
            events,
            processed,
        });
        let mut life = tokio::task::JoinSet::new();
        life.spawn(courier::run_courier(inner.clone(), errands));
        life.spawn(receipt::run_receipts(inner.clone()));
        let (connector, asks) = mpsc::unbounded_channel();
        let (started, first_start) = oneshot::channel();
        life.spawn(connector::Connector::new(inner.clone(), options).run(started, asks));
        first_start.await.map_err(|_| ClientError::Closing)??;
        Ok(Client {
            inner,
            life,
            connector,
            first_events: std::sync::Mutex::new(Some(first_events)),
            new_device: false,
        })
    }

    /// Whether this login made new identity keys because the profile directory never held
    /// the account (contacts will see the identity change).
    pub fn is_new_device(&self) -> bool {
        self.new_device
    }

    /// The logged-in user.
    pub fn me(&self) -> &UserName {
        &self.inner.me
    }

    /// Events: the first call gets every event since the client connected, later calls
    /// the events from then on.
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| self.inner.events.subscribe())
    }

    /// Waits until every event queued for this user when the client connected has been
    /// taken in and stored, then has their acknowledgement and delivery receipts sent.
    pub async fn catch_up(&self, timeout: Duration) -> Result<(), ClientError> {
        self.wait_for_backlog(timeout).await?;
        self.inner.report_intake().await;
        Ok(())
    }

    /// Waits (up to `timeout`) until the backlog that waited at connect is taken in.
    async fn wait_for_backlog(&self, timeout: Duration) -> Result<(), ClientError> {
        let link = self.inner.link()?;
        let mut processed = self.inner.processed.subscribe();
        let backlog = *self
            .inner
            .backlog
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let caught_up = async {
            processed
                .wait_for(|seq| backlog.caught_up(*seq))
                .await
                .map(|_| ())
        };
        tokio::select! {
            biased;
            waited = tokio::time::timeout(timeout, caught_up) => waited
                .map_err(|_| ClientError::CatchUpTimeout(timeout))?
                .map_err(|_| ClientError::CatchUpTimeout(timeout)),
            // The inbox stops with the connection: waiting longer would only time out.
            lost = link.lost() => Err(lost.into()),
        }
    }

    /// Sends a text message; returns its id once the relay has durably queued it.
    pub async fn send_text(&self, to: &UserName, text: &str) -> Result<MessageId, ClientError> {
        if to == &self.inner.me {
            return Err(ClientError::SelfMessage);
        }
        if text.is_empty() {
            return Err(ClientError::EmptyMessage);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ClientError::MessageTooLarge {
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let body = Body::Text(text.to_string());
        let outbox = self.inner.encrypt_for(to, &body, None).await?;
        self.finish_send(outbox.id).await
    }

    /// Sends the outbox up to message `id` (just committed to it) and says what became of
    /// `id`: sent, refused, or waiting for the next run.
    async fn finish_send(&self, id: MessageId) -> Result<MessageId, ClientError> {
        match self.inner.send_outbox(Some(id)).await? {
            Some(Delivery::Sent { .. }) => Ok(id),
            Some(Delivery::Refused(error)) => Err(ConnectionError::Refused(error).into()),
            Some(Delivery::Later(source)) => Err(ClientError::Queued {
                id,
                source: Box::new(source),
            }),
            // An earlier run of the courier (nudged by a receipt or a membership event)
            // sent it before this errand came: see what became of it.
            None if !self.inner.store.in_outbox(id)? => {
                match self.inner.store.history_entry(&self.inner.me, id)? {
                    Some(entry) if entry.status == EntryStatus::Failed => {
                        Err(ClientError::NotSent {
                            id,
                            reason: entry.flags.note.unwrap_or_default(),
                        })
                    }
                    _ => Ok(id),
                }
            }
            // An older message waits before it, so this one waits too.
            None => Err(ClientError::Queued {
                id,
                source: Box::new(ConnectionError::Unreachable {
                    relay: self.inner.relay.clone(),
                    reason: "an earlier message is still waiting to be sent".into(),
                }),
            }),
        }
    }

    /// The last `limit` entries of a conversation (1:1 or a group's), oldest first.
    pub fn history(
        &self,
        conversation: &ConversationId,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.inner.store.history(conversation, limit)?)
    }

    /// Message `id` of `from` as the history holds it (for one's own, its status: sent or
    /// failed), with its place in the store's order.
    pub fn history_entry(
        &self,
        from: &UserName,
        id: MessageId,
    ) -> Result<Option<HistoryEntry>, ClientError> {
        Ok(self.inner.store.history_entry(from, id)?)
    }

    /// The safety number with `user` from their pinned identity (fetched and pinned on
    /// first contact), and, if the relay now serves a different identity for them, the
    /// number that identity would give: what to compare before `trust`.
    pub async fn safety_numbers(&self, user: &UserName) -> Result<SafetyNumbers, ClientError> {
        let pinned = self.inner.contact_identity(user).await?;
        let current = self.inner.published_identity(user).await?;
        let mine = self.inner.identity().public_keys();
        let number =
            |theirs: &IdentityKeys| safety::safety_number((&self.inner.me, &mine), (user, theirs));
        Ok(SafetyNumbers {
            pinned: number(&pinned),
            changed: (current != pinned).then(|| number(&current)),
        })
    }

    /// Accepts `user`'s identity as the relay now serves it, but only if it gives the
    /// safety number `digits` (compared with `user` out of band; spaces are ignored), so a
    /// relay cannot swap the key between the comparison and the acceptance.
    pub async fn trust(&self, user: &UserName, digits: &str) -> Result<String, ClientError> {
        let current = self.inner.published_identity(user).await?;
        let mine = self.inner.identity().public_keys();
        let number = safety::safety_number((&self.inner.me, &mine), (user, &current));
        let wanted: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
        if wanted != number.replace(' ', "") {
            return Err(ClientError::SafetyNumberMismatch { user: user.clone() });
        }
        self.inner.store.pin_identity(
            user,
            &PinnedIdentity {
                identity: current,
                pinned_ms: now_ms(),
            },
        )?;
        // Group sessions shared with the old key are no use to the new one: start new
        // sessions in every group with this contact, shared with the key trusted now.
        for group in self.inner.store.groups()? {
            if group.seen.is_some_and(|seen| seen.has_member(user)) {
                self.inner
                    .store
                    .drop_outbound_group_session(group.latest.id)?;
            }
        }
        Ok(number)
    }

    /// Who of `users` is online.
    pub async fn presence(
        &self,
        users: Vec<UserName>,
    ) -> Result<Vec<uchat_wire::PresenceEntry>, ClientError> {
        let presence = self.inner.call(request::Presence { users }).await?;
        Ok(presence.users)
    }

    /// Revokes the session on the relay and forgets the token locally (keys stay).
    pub async fn logout(self) -> Result<(), ClientError> {
        let result = match self.inner.link() {
            Ok(link) => link.call(request::Logout).await,
            Err(e) => Err(e),
        };
        self.inner.store.clear_token()?;
        self.close().await;
        Ok(result?)
    }

    /// Waits until the connection drops; returns why.
    pub async fn disconnected(&self) -> String {
        match self.inner.link() {
            Ok(link) => link.closed().await,
            Err(e) => e.to_string(),
        }
    }

    /// Whether the client is connected to the relay (and the connection has not dropped).
    pub fn is_online(&self) -> bool {
        self.inner.is_online()
    }

    /// Takes in what waited at the relay when the client connected (for up to 30 s: the
    /// CLI contract says every command stores pending events before it exits),
    /// acknowledges what was taken in, stops the tasks and closes the connection.
    pub async fn close(mut self) {
        if let Err(e) = self.wait_for_backlog(CLOSE_CATCH_UP).await {
            tracing::debug!(error = %e, "closing before the backlog was taken in");
        }
        self.inner.report_intake().await;
        self.life.abort_all();
        while self.life.join_next().await.is_some() {}
        if let Ok(link) = self.inner.link() {
            link.close().await;
        }
    }
}

/// How long [`Client::close`] waits for the connect-time backlog to be taken in. Taking in
/// goes at thousands of events a second, so only a huge backlog or a stalled relay meets
/// it; what is left stays queued at the relay for the next run.
const CLOSE_CATCH_UP: Duration = Duration::from_secs(30);

async fn derive(password: &str, salt: &[u8]) -> Result<LocalKey, ClientError> {
    let password = password.to_string();
    let salt = salt.to_vec();
    tokio::task::spawn_blocking(move || LocalKey::derive(&password, &salt))
        .await
        .map_err(|e| KeyDerivationError::Argon2 {
            reason: e.to_string(),
        })?
        .map_err(ClientError::from)
}

fn to_records(sealed: Vec<SealedSession>) -> Vec<SessionRecord> {
    sealed
        .into_iter()
        .map(|s| SessionRecord {
            session_id: s.session_id,
            pickle: s.pickle,
            last_used_ms: s.last_used_ms,
            peer_key: s.peer_key,
        })
        .collect()
}

fn from_records(records: Vec<SessionRecord>) -> Vec<SealedSession> {
    records
        .into_iter()
        .map(|s| SealedSession {
            session_id: s.session_id,
            pickle: s.pickle,
            last_used_ms: s.last_used_ms,
            peer_key: s.peer_key,
        })
        .collect()
}

impl ClientState {
    /// The Olm account and sessions, locked: hold the guard for work without an
    /// `.await` only.
    fn identity(&self) -> std::sync::MutexGuard<'_, Identity> {
        self.identity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live connection, or an `Unreachable` error while offline.
    /// Sends `call` on the current connection and waits for the reply its kind is
    /// answered with.
    async fn call<C: uchat_wire::Call>(&self, call: C) -> Result<C::Reply, ConnectionError> {
        self.link()?.call(call).await
    }

    /// Whether there is a connection and it has not dropped.
    fn is_online(&self) -> bool {
        self.link()
            .is_ok_and(|link| link.quic().close_reason().is_none())
    }

    fn link(&self) -> Result<RelayLink, ConnectionError> {
        self.link
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| ConnectionError::Unreachable {
                relay: self.relay.clone(),
                reason: "not connected".into(),
            })
    }

    fn sessions(&self, contact: &UserName) -> Result<SessionSet, ClientError> {
        let records = self.store.olm_sessions(contact)?;
        SessionSet::unseal(&from_records(records), &self.key).map_err(ClientError::Keys)
    }

    fn save_account(&self, identity: &Identity) -> Result<(), ClientError> {
        Ok(self.store.put_account_pickle(&identity.seal(&self.key))?)
    }

    /// Publishes more one-time keys if the relay's stock is low. The account is saved
    /// before the keys are published, so the relay never hands out a key we lost.
    async fn top_up_keys(&self) -> Result<(), ClientError> {
        let link = self.link()?;
        let count = link.call(request::KeyCount).await?.one_time_keys;
        if count >= ONE_TIME_KEY_LOW_WATER {
            return Ok(());
        }
        let keys = {
            let mut identity = self.identity();
            let keys = identity.new_one_time_keys(ONE_TIME_KEY_BATCH);
            self.save_account(&identity)?;
            keys
        };
        link.call(request::UploadKeys {
            one_time_keys: keys,
            fallback_key: None,
        })
        .await?;
        Ok(())
    }

    /// The identity keys the relay serves for `user` now.
    async fn published_identity(&self, user: &UserName) -> Result<IdentityKeys, ClientError> {
        let published = self.call(request::Identity { user: user.clone() }).await?;
        Ok(published.identity)
    }

    /// The contact's identity keys: the pinned ones, or fetched from the relay and pinned.
    async fn contact_identity(&self, user: &UserName) -> Result<IdentityKeys, ClientError> {
        if let Some(pinned) = self.store.pinned_identity(user)? {
            return Ok(pinned.identity);
        }
        let identity = self.published_identity(user).await?;
        self.store.pin_identity(
            user,
            &PinnedIdentity {
                identity: identity.clone(),
                pinned_ms: now_ms(),
            },
        )?;
        Ok(identity)
    }

    /// Encrypts `body` for `to` and commits it (history, outbox, session state), ending
    /// the pending upload `done_upload` in the same transaction if given.
    async fn encrypt_for(
        &self,
        to: &UserName,
        body: &Body,
        done_upload: Option<String>,
    ) -> Result<OutboxEntry, ClientError> {
        let entry = |id, now| HistoryEntry {
            id,
            conversation: ConversationId::direct(to),
            from: self.me.clone(),
            to: to.clone(),
            sent_ms: now,
            received_ms: now,
            text: body.text(),
            status: EntryStatus::Pending,
            flags: EntryFlags::default(),
            group: None,
            group_change: None,
            file: body.file(),
            position: 0,
        };
        self.commit_olm_outbound(to, body.content(), Some(&entry), done_upload)
            .await
    }

    /// Encrypts `content` for `to` as a new 1:1 message and commits it in one transaction:
    /// the session state, the pin on first contact, the history entry `entry` makes from
    /// the new id and time (none for a message not shown, such as a receipt), the outbox
    /// entry, and the end of the pending upload `done_upload` if given.
    async fn commit_olm_outbound(
        &self,
        to: &UserName,
        content: Content,
        entry: Option<&(dyn Fn(MessageId, u64) -> HistoryEntry + Sync)>,
        done_upload: Option<String>,
    ) -> Result<OutboxEntry, ClientError> {
        let id = random_id()?;
        self.sealed(to, |identity, claimed| {
            let now = now_ms();
            let payload = Payload {
                id,
                sent_ms: now,
                content: content.clone(),
                group: None,
                sender: None,
            };
            let Some(sealed) = self.olm_seal(identity, to, &payload.to_bytes(), now, claimed)?
            else {
                return Ok(None);
            };
            let outbox = OutboxEntry {
                id,
                to: to.clone(),
                ciphertext: sealed.envelope,
                created_ms: now,
                group: None,
            };
            self.store.commit_outbound(&OutboundCommit {
                sessions: sealed.sessions,
                pin: sealed.pin,
                from: self.me.clone(),
                entry: entry.map(|make| make(id, now)),
                outbox: outbox.clone(),
                done_upload: done_upload.clone(),
            })?;
            Ok(Some(outbox))
        })
        .await
    }

    /// Hands one 1:1 outbox entry to the relay and judges the answer; what it comes to
    /// is recorded by the caller ([`ClientState::record_settled`]), with the rest of its run.
    async fn deliver_direct(&self, entry: &OutboxEntry) -> Delivery {
        let request = request::Send {
            to: entry.to.clone(),
            id: entry.id,
            ciphertext: entry.ciphertext.clone(),
        };
        let sent = match self.link() {
            Ok(link) => link.call(request).await,
            Err(e) => Err(e),
        };
        outbox::judge(sent)
    }

    /// Records what the relay said to an outbox entry at once (group messages, whose
    /// key shares are recorded right after).
    fn settle_delivery(
        &self,
        entry: &OutboxEntry,
        sent: Result<reply::Sent, ConnectionError>,
    ) -> Result<Delivery, ClientError> {
        let delivery = outbox::judge(sent);
        self.record_settled(settlement(entry.id, &delivery).into_iter().collect())?;
        Ok(delivery)
    }

    /// Commits in one transaction what became of outbox entries the relay answered, then
    /// says so (`OutboxSettled`).
    fn record_settled(&self, settled: Vec<(MessageId, Settled)>) -> Result<(), ClientError> {
        if settled.is_empty() {
            return Ok(());
        }
        self.store.settle_all(&settled)?;
        for (id, _) in settled {
            let _ = self.events.send(ClientEvent::OutboxSettled { id });
        }
        Ok(())
    }

    /// Lets the acknowledgement and the delivery receipts for what was taken in so far
    /// reach the relay (before a short-lived CLI exits). The taken-in mark is copied out
    /// first: a borrow held across the await blocks the inbox's next write to the
    /// channel, and with it the runtime threads the acknowledgement needs (a hang seen in
    /// the crash test and under a flood of messages).
    async fn report_intake(&self) {
        let through = *self.processed.borrow();
        self.ack(through).await;
        self.send_delivered_receipts().await;
    }

    async fn ack(&self, through: Seq) {
        if through.0 == 0 {
            return;
        }
        let result = match self.link() {
            Ok(link) => link.call(request::Ack { through }).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "ack failed; the relay will resend");
        }
    }

    /// Takes in pushed events in order, each run of 1:1 messages among them in one commit
    /// (see `batch.rs`).
    async fn take_in_all(&self, pushes: Vec<Push>) -> Result<(), ClientError> {
        let mut run = Vec::new();
        for push in pushes {
            if matches!(push.event, PushEvent::Message { .. }) {
                run.extend(batch::Pushed::of(push));
                continue;
            }
            if !run.is_empty() {
                self.take_in_messages(std::mem::take(&mut run)).await?;
            }
            self.take_in(push).await?;
        }
        if !run.is_empty() {
            self.take_in_messages(run).await?;
        }
        Ok(())
    }

    /// Takes in one pushed event: decrypts and commits it, then reports it.
    async fn take_in(&self, push: Push) -> Result<(), ClientError> {
        let seq = push.seq.unwrap_or_default();
        match push.event {
            event @ PushEvent::Message { .. } => {
                let message = batch::Pushed::of(Push { event, ..push });
                self.take_in_messages(message.into_iter().collect()).await?
            }
            event @ (PushEvent::Presence { .. }
            | PushEvent::FriendRequest { .. }
            | PushEvent::FriendAccepted { .. }
            | PushEvent::FriendRemoved { .. }
            | PushEvent::Profile { .. }
            | PushEvent::IdentityChanged { .. }) => self.take_in_social(event).await?,
            PushEvent::GroupMessage {
                group,
                from,
                id,
                ciphertext,
            } => {
                self.take_in_group_message(group, from, id, &ciphertext, push.relay_ts_ms, seq)
                    .await?;
            }
            PushEvent::GroupKey {
                group,
                from,
                ciphertext,
            } => {
                self.take_in_group_key(group, from, &ciphertext, seq)
                    .await?
            }
            PushEvent::GroupChanged {
                group,
                change,
                members,
            } => {
                self.take_in_group_changed(group, change, members, push.relay_ts_ms, seq)
                    .await?;
            }
            PushEvent::CallIncoming {
                call,
                from,
                offer,
                ring_left_ms,
            } => {
                self.take_in_call_incoming(call, from, &offer, ring_left_ms)
                    .await?
            }
            PushEvent::CallAccepted { call, answer } => {
                self.take_in_call_accepted(call, &answer).await?
            }
            PushEvent::CallEnded { call, reason } => self.take_in_call_ended(call, reason),
            PushEvent::MissedCall { call, from, reason } => {
                self.take_in_missed_call(call, from, reason, push.relay_ts_ms)
            }
            PushEvent::MomentShared {
                post,
                author,
                ciphertext,
            } => {
                self.take_in_moment_shared(post, author, &ciphertext, seq)
                    .await?
            }
            PushEvent::MomentLiked {
                post,
                by,
                ciphertext,
            } => self.take_in_moment_liked(post, by, &ciphertext, push.relay_ts_ms)?,
            PushEvent::MomentCommented { comment } => self.take_in_moment_commented(comment)?,
            // Nothing to take in: acknowledged like any other event.
            PushEvent::Withdrawn | PushEvent::Unknown => {}
        }
        self.mark_processed(seq);
        Ok(())
    }

    /// Records that the events up to `seq` are taken in, for the acknowledgements.
    fn mark_processed(&self, seq: Seq) {
        self.processed
            .send_if_modified(|taken| match inbox::raise_taken(*taken, seq) {
                Some(raised) => {
                    *taken = raised;
                    true
                }
                None => false,
            });
    }

    /// Commits what an Olm decryption changed (`commit`, a store commit). Decrypting a
    /// pre-key message used up a one-time key in the account held in memory
    /// (`account_changed`): if the commit fails, the event will be pushed again and then
    /// needs that key, so the account goes back to its last saved state; if it succeeds,
    /// the account is saved after the sessions (a crash in between leaves the key usable,
    /// never a session without its key).
    fn commit_olm_with(
        &self,
        identity: &mut Identity,
        account_changed: bool,
        commit: impl FnOnce() -> Result<(), crate::store::StoreError>,
    ) -> Result<(), ClientError> {
        if let Err(e) = commit() {
            if account_changed {
                self.put_back_account(identity)?;
            }
            return Err(e.into());
        }
        if account_changed {
            self.save_account(identity)?;
        }
        Ok(())
    }

    /// Puts the Olm account in memory back to its last saved state, after work that
    /// changed it (a one-time key used up) failed before it was committed: the event will
    /// be pushed again and then needs that key.
    fn put_back_account(&self, identity: &mut Identity) -> Result<(), ClientError> {
        if let Some(profile) = self.store.profile()?
            && let Ok(saved) = Identity::unseal(&profile.account_pickle, &self.key)
        {
            *identity = saved;
        }
        Ok(())
    }

    /// Takes in an Olm message that carries a key (a member's group session, a post's key)
    /// rather than something to show: a redelivery is skipped; otherwise it is opened,
    /// `accept` judges its payload (with the sender's identity flag and the time), and the
    /// Olm state, the de-duplication mark and the sequence number commit in one transaction
    /// with whatever `commit` adds for an accepted key. Returns the accepted key, or `None`
    /// for a redelivery or a refusal (logged).
    pub(super) async fn take_in_olm_key<T>(
        &self,
        from: &UserName,
        id: MessageId,
        ciphertext: &[u8],
        seq: Seq,
        accept: impl FnOnce(Payload, IdentityFlag, u64) -> Result<T, String>,
        commit: impl FnOnce(InboundCommit, Option<&T>) -> Result<(), crate::store::StoreError>,
    ) -> Result<Option<T>, ClientError> {
        if self.store.has_message(from, id)? {
            return Ok(None); // a redelivery: its Olm message was opened already
        }
        let now = now_ms();
        let checked = self.check_sender(from, ciphertext, now).await?;
        let mut identity = self.identity();
        let opened = self.olm_open(&mut identity, from, checked, now)?;
        let verdict = match &opened.plaintext {
            Err(problem) => Err(problem.clone()),
            Ok(plain) => match Payload::from_bytes(plain) {
                Err(e) => Err(e.to_string()),
                Ok(payload) => accept(payload, opened.flag, now),
            },
        };
        let accepted = match verdict {
            Ok(key) => Some(key),
            Err(problem) => {
                tracing::warn!(%from, %id, problem, "a shared key was refused");
                None
            }
        };
        let account_changed = opened.account_changed;
        let inbound = InboundCommit {
            sessions: opened.sessions.unwrap_or_default(),
            pin: opened.pin,
            entry: None,
            from: from.clone(),
            id,
            seq,
            group_session: None,
            group: None,
        };
        self.commit_olm_with(&mut identity, account_changed, || {
            commit(inbound, accepted.as_ref())
        })?;
        Ok(accepted)
    }
}

/// Events taken in with one commit at most (the relay pushes at most 256 at once too).
const INTAKE_BATCH: usize = 256;

/// Takes in pushed events, batch after batch, until the stream ends.
async fn run_inbox(inner: Arc<ClientState>) {
    // QUIC announces a stream with its first bytes, so this waits for the first event.
    let link = match inner.link() {
        Ok(link) => link,
        Err(_) => return,
    };
    let mut events = match link.accept_events().await {
        Ok(events) => events,
        Err(e) => {
            let _ = inner.events.send(ClientEvent::Disconnected {
                reason: e.to_string(),
            });
            return;
        }
    };
    loop {
        // The first event waited for, then every one already here, up to a batch.
        let mut batch = Vec::new();
        let mut read = events.next().await;
        while let Ok(Some(push)) = read {
            batch.push(push);
            if batch.len() == INTAKE_BATCH {
                read = Ok(None);
                break;
            }
            read = events.next_ready();
        }
        let ended = batch.is_empty();
        if let Err(e) = inner.take_in_all(batch).await {
            // Not acknowledged, so the relay sends it again on the next connection.
            // Closing this one makes the reconnect logic take over instead of
            // leaving a connection that silently takes in nothing.
            tracing::error!(error = %e, "cannot take in an incoming event");
            link.abort("peer could not store an event");
            break;
        }
        if let Err(e) = read {
            tracing::warn!(error = %e, "bad event from the relay");
            link.abort("bad event frame");
            break;
        }
        if ended {
            break;
        }
    }
    let reason = link.closed().await;
    let _ = inner.events.send(ClientEvent::Disconnected { reason });
}

/// Acknowledges taken-in events in batches: waits for progress, lets more arrive for a
/// moment, then acknowledges everything so far in one request.
async fn run_acks(inner: Arc<ClientState>) {
    let mut processed = inner.processed.subscribe();
    let mut acked = *processed.borrow();
    while processed.changed().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taken = *processed.borrow_and_update();
        if let Some(through) = inbox::ack_due(acked, taken) {
            inner.ack(through).await;
            acked = through;
        }
    }
}
