//! What a relay is told at start: addresses, data directory, certificate and limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::Server::spawn`] needs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// UDP address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory for the redb file and the self-signed certificate.
    pub data_dir: PathBuf,
    /// An operator's certificate chain and key (PEM) instead of the self-signed one.
    pub cert: Option<CertPaths>,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Limits and timeouts.
    pub limits: Limits,
}

/// Paths of an operator's PEM certificate chain and private key.
#[derive(Clone, Debug)]
pub struct CertPaths {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Limits that protect the relay and its users from one another.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A connection silent for this long is considered dead (QUIC idle timeout).
    pub idle_timeout: Duration,
    /// Connections the relay holds at once, logged in or not.
    pub max_connections: usize,
    /// Connections one address (an IPv6 /64) may hold at once.
    pub max_connections_per_address: usize,
    /// Logged-in connections one account may hold at once (each device, CLI command and
    /// app window holds one).
    pub max_connections_per_user: usize,
    /// How long a connection may stay open without logging in.
    pub login_timeout: Duration,
    /// Events a user's queue may hold before senders get `QueueFull`.
    pub max_queue_len: u64,
    /// Bytes a user's queue may hold before senders get `QueueFull`.
    pub max_queue_bytes: u64,
    /// Accounts one address (an IPv6 /64) may create per hour.
    pub max_registrations_per_address_per_hour: u32,
    /// Accounts the whole relay creates per hour, whoever asks.
    pub max_registrations_per_hour: u32,
    /// Friend requests one user may send per day.
    pub max_friend_requests_per_day: u32,
    /// Friend requests one user may send the same person per day.
    pub max_friend_requests_to_one_user_per_day: u32,
    /// One-time keys kept per account.
    pub max_one_time_keys: usize,
    /// Failed logins allowed for one account from one remote address within
    /// `login_window` (a stranger's guesses use up the stranger's budget, not the owner's).
    pub max_failed_logins_per_account_address: u32,
    /// Failed logins allowed per remote address, over all accounts, within `login_window`.
    pub max_failed_logins_per_address: u32,
    /// Failed logins of one account, from all addresses within `login_window`, after which
    /// each attempt on it waits a back-off (1 s doubling to 4 s) before its password is
    /// checked; it is never refused for them.
    pub login_backoff_after_failures: u32,
    /// The window over which failed logins are counted.
    pub login_window: Duration,
    /// Friends one user may have.
    pub max_friends: u64,
    /// Friend requests that may wait for one user's answer; more are refused to the
    /// sender, so nobody's list can be flooded without bound.
    pub max_pending_friend_requests: u64,
    /// Friend requests one user may have sent that still wait for an answer; more are
    /// refused until some are answered, so one's own list of them stays bounded too.
    pub max_sent_friend_requests: u64,
    /// Members one group may have, the owner included.
    pub max_group_members: usize,
    /// Groups one user may be in.
    pub max_groups_per_user: u64,
    /// Largest file one may upload, in bytes of ciphertext.
    pub max_file_bytes: u64,
    /// Most bytes of ciphertext one user's files may take on the relay.
    pub file_quota_bytes: u64,
    /// How long an uploaded file is kept.
    pub file_retention: Duration,
    /// Files one user may keep on the relay at once.
    pub max_files_per_user: u64,
    /// Most bytes one user's moments (posts, comments and likes they wrote) may take.
    pub moment_quota_bytes: u64,
    /// How long a moment is kept (`None`: for ever).
    pub moment_retention: Option<Duration>,
    /// How long a call rings before it counts as missed.
    pub ring_timeout: Duration,
    /// Bytes of the store's file kept in memory (redb's page cache).
    pub store_cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // 30 s: long enough for a phone on a flaky network (peers send keep-alives every
            // 10 s), short enough that presence notices a vanished peer quickly.
            idle_timeout: Duration::from_secs(30),
            // About 100 KiB each when idle, so a 2 GiB box holds them with room to spare.
            max_connections: 10_000,
            // A household or an office behind one NAT address, each with a few devices.
            max_connections_per_address: 64,
            // A phone, a laptop, the app and a few scripts at once.
            max_connections_per_user: 16,
            // A handshake and one argon2 login take well under a second; 10 s leaves room
            // for a slow phone while a connection that never logs in is gone soon.
            login_timeout: Duration::from_secs(10),
            // 100,000 events of up to 512 KiB would be 50 GiB; in practice messages are
            // small, and a user this far behind should come online before more piles up.
            max_queue_len: 100_000,
            // 128 MiB: a month away from a few busy groups, while two accounts can no
            // longer park 50 GiB of ciphertext between them.
            max_queue_bytes: 128 << 20,
            // 20 an hour from one address: a family or a classroom behind one NAT signs
            // up, a loop does not (each account costs an argon2 hash, keys and a quota).
            max_registrations_per_address_per_hour: 20,
            // What a small community relay sees in a busy hour, with room to spare.
            max_registrations_per_hour: 500,
            // Enough to add everyone one meets in a day; a spammer is slowed to a trickle.
            max_friend_requests_per_day: 100,
            // Asking the same person again after a mistake, but not in a loop.
            max_friend_requests_to_one_user_per_day: 3,
            // Matrix servers keep ~50 per device; 200 covers a burst of first contacts.
            max_one_time_keys: 200,
            max_failed_logins_per_account_address: 10,
            max_failed_logins_per_address: 30,
            login_backoff_after_failures: 10,
            login_window: Duration::from_secs(300),
            // WeChat's limit; the friend list is one answer, so it must stay bounded.
            max_friends: 5000,
            max_pending_friend_requests: 1000,
            // As many as one may receive. At 100 requests a day (the rate limit) that is
            // ten days of asking strangers who never answer.
            max_sent_friend_requests: 1000,
            // WeChat's limit for a group chat; also what fits one key share per member
            // and the largest message into one control frame.
            max_group_members: uchat_wire::msg::group::MAX_GROUP_MEMBERS,
            max_groups_per_user: 1000,
            // 4 GiB: a film or a disk image; the ciphertext is 0.1 % larger than the file.
            max_file_bytes: 4 << 30,
            // 20 GiB per user: a self-hosted relay for a family or a team on a small disk.
            file_quota_bytes: 20 << 30,
            // 30 days: long enough to come back from a holiday, short enough that a small
            // disk does not fill with files everyone fetched long ago.
            file_retention: Duration::from_secs(30 * 24 * 60 * 60),
            // Files' records are small, but an empty upload reserves no bytes: without a
            // count, one user could make unbounded records.
            max_files_per_user: 10_000,
            // Posts and comments are text and picture keys (pictures are files): 64 MiB is
            // tens of thousands of posts.
            moment_quota_bytes: 64 << 20,
            // A year, as WeChat offers to show: the relay does not keep posts for ever.
            moment_retention: Some(Duration::from_secs(365 * 24 * 60 * 60)),
            // 45 s: about what phones ring before voicemail.
            ring_timeout: Duration::from_secs(45),
            store_cache_bytes: uchat_store::RelayStore::DEFAULT_CACHE_BYTES,
        }
    }
}

impl Limits {
    /// What one user's queue may hold, as the store checks it.
    pub fn queue(&self) -> uchat_store::QueueLimit {
        uchat_store::QueueLimit {
            max_events: self.max_queue_len,
            max_bytes: self.max_queue_bytes,
        }
    }

    /// The friend and friend request limits, as the store checks them.
    pub fn social(&self) -> uchat_store::SocialLimits {
        uchat_store::SocialLimits {
            max_friends: self.max_friends,
            max_pending_incoming: self.max_pending_friend_requests,
            max_pending_outgoing: self.max_sent_friend_requests,
            queue: self.queue(),
        }
    }

    /// The group limits, as the store checks them.
    pub fn groups(&self) -> uchat_store::GroupLimits {
        uchat_store::GroupLimits {
            max_members: self.max_group_members,
            max_groups_per_user: self.max_groups_per_user,
            queue: self.queue(),
        }
    }
}

impl RelayConfig {
    /// A config with default limits for `listen` and `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            data_dir: data_dir.into(),
            cert: None,
            metrics: None,
            limits: Limits::default(),
        }
    }
}
