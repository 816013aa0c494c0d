//! The users of a scenario, in either mode behind one face: [`Fleet`] registers and
//! reopens accounts, [`User`] sends a load message, [`Inbox`] yields the load messages
//! that arrive. Wire mode is `uchat_tests::wire_client` on one shared socket; real mode
//! is the real `uchat_peer::Client`, each with its own profile directory and store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::broadcast;
use uchat_peer::{Client, ClientEvent, ClientOptions};
use uchat_tests::wire_client::{Dialer, EventReader, WireClient, random_bytes, random_message_id};
use uchat_wire::{CertFingerprint, SessionToken, UserName};

use crate::Mode;
use crate::body::Header;

/// Socket buffer loadgen asks for, as the relay does: with the default (about 200 KiB)
/// the shared socket dropped packets when 50 handshakes' certificates arrived together,
/// and a handshake that loses two flights misses the 5 s connect deadline. The kernel
/// caps it (`net.core.rmem_max`).
const UDP_BUFFER_BYTES: usize = 8 << 20;

/// Binds a UDP socket on `ip` (any port) with large buffers (best effort).
fn bind_udp(ip: IpAddr) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, 0);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind a UDP socket on {addr}"))?;
    Ok(socket.into())
}

/// Every load account's password.
pub(crate) const PASSWORD: &str = "loadgen password";

/// Makes the accounts of one scenario run.
pub(crate) struct Fleet {
    mode: Mode,
    relay: String,
    fingerprint: CertFingerprint,
    /// Wire mode's one socket.
    dialer: Arc<Dialer>,
    /// Real mode's profile directories.
    scratch: tempfile::TempDir,
    /// Names differ from run to run, so a long-lived relay given with `--relay` is reused.
    run_id: u64,
    next_user: AtomicU64,
    /// Filler after a wire message's header.
    filler: Vec<u8>,
}

/// How to come back as a user after closing it.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// The registered name, `lg<run id><role><n>`, so that no two runs share one.
    pub(crate) name: UserName,
    token: SessionToken,
    home: Option<PathBuf>,
}

/// One logged-in user.
pub(crate) enum User {
    /// A protocol-level connection.
    Wire(WireClient),
    /// The real client with its store.
    Real(Client),
}

/// Load messages arriving for one user.
pub(crate) enum Inbox {
    /// Pushed events, acknowledged in batches.
    Wire(EventReader),
    /// The real client's events (it decrypts, stores and acknowledges).
    Real(broadcast::Receiver<ClientEvent>),
}

/// One load message that arrived.
pub(crate) struct Arrival {
    /// Who sent it.
    pub(crate) from: UserName,
    /// What it carried.
    pub(crate) header: Header,
}

impl Account {
    /// A wire client's account.
    pub(crate) fn wire(client: &WireClient) -> Self {
        Self {
            name: client.name().clone(),
            token: client.token().clone(),
            home: None,
        }
    }

    /// Its session token (wire mode).
    pub(crate) fn token(&self) -> SessionToken {
        self.token.clone()
    }
}

impl Fleet {
    /// A fleet for the relay at `relay`.
    pub(crate) async fn new(mode: Mode, relay: &str, fingerprint: CertFingerprint) -> Result<Self> {
        let wildcard: IpAddr = match relay.parse::<SocketAddr>() {
            Ok(addr) if addr.is_ipv6() => Ipv6Addr::UNSPECIFIED.into(),
            _ => Ipv4Addr::UNSPECIFIED.into(),
        };
        let dialer = Dialer::with_socket(
            relay,
            Some(fingerprint),
            "known_relays",
            bind_udp(wildcard)?,
        )
        .await
        .context("cannot set up the QUIC endpoint")?;
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64 % 10_000_000)
            .unwrap_or(0);
        Ok(Self {
            mode,
            relay: relay.to_string(),
            fingerprint,
            dialer: Arc::new(dialer),
            scratch: tempfile::tempdir()?,
            run_id,
            next_user: AtomicU64::new(0),
            filler: random_bytes(256),
        })
    }

    /// The shared socket, for scenarios that dial by themselves (idle, logins).
    pub(crate) fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Another socket, bound to `source` (a loopback address other than 127.0.0.1), so
    /// that the relay counts its connections against another address's limits.
    pub(crate) async fn dialer_from(&self, source: IpAddr) -> Result<Dialer> {
        Dialer::with_socket(
            &self.relay,
            Some(self.fingerprint),
            "known_relays",
            bind_udp(source)?,
        )
        .await
        .with_context(|| format!("cannot set up a QUIC endpoint on {source}"))
    }

    /// The relay's IP address, if it was given as one.
    pub(crate) fn relay_ip(&self) -> Option<std::net::IpAddr> {
        self.relay
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|addr| addr.ip())
    }

    /// The shared socket, for tasks of their own.
    pub(crate) fn dialer_handle(&self) -> Arc<Dialer> {
        self.dialer.clone()
    }

    /// A fresh, unused name with `role` in it ("s", "r", ...).
    pub(crate) fn new_name(&self, role: &str) -> Result<UserName> {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed);
        Ok(UserName::parse(&format!("lg{}{role}{n}", self.run_id))?)
    }

    /// Registers a new user with a `role` in its name; returns it logged in.
    pub(crate) async fn register(&self, role: &str) -> Result<(User, Account)> {
        let name = self.new_name(role)?;
        match self.mode {
            Mode::Wire => {
                let client = WireClient::register(&self.dialer, name, PASSWORD)
                    .await
                    .context("registering a wire client")?;
                let account = Account::wire(&client);
                Ok((User::Wire(client), account))
            }
            Mode::Real => {
                let home = self.scratch.path().join(name.as_str());
                let client = Client::register(self.options(home.clone()), name, PASSWORD)
                    .await
                    .context("registering a real client")?;
                let account = Account {
                    name: client.me().clone(),
                    token: SessionToken(Vec::new()),
                    home: Some(home),
                };
                Ok((User::Real(client), account))
            }
        }
    }

    /// Logs `account` in again (session resume: no password check).
    pub(crate) async fn reopen(&self, account: &Account) -> Result<User> {
        match &account.home {
            None => Ok(User::Wire(
                WireClient::resume(&self.dialer, account.name.clone(), account.token.clone())
                    .await
                    .context("resuming a wire client")?,
            )),
            Some(home) => Ok(User::Real(
                Client::open(self.options(home.clone()), PASSWORD)
                    .await
                    .context("opening a real client")?,
            )),
        }
    }

    fn options(&self, home: PathBuf) -> ClientOptions {
        ClientOptions {
            home,
            relay: Some(self.relay.clone()),
            relay_fingerprint: Some(self.fingerprint),
        }
    }

    /// Sends the load message `header` from `user` to `to`; returns once the relay
    /// acknowledged it (durably queued).
    pub(crate) async fn send(&self, user: &User, to: &UserName, header: Header) -> Result<()> {
        match user {
            User::Wire(client) => {
                client
                    .send(to, random_message_id(), header.to_ciphertext(&self.filler))
                    .await?;
            }
            User::Real(client) => {
                client.send_text(to, &header.to_text()).await?;
            }
        }
        Ok(())
    }
}

impl User {
    /// The user's name.
    pub(crate) fn name(&self) -> &UserName {
        match self {
            User::Wire(client) => client.name(),
            User::Real(client) => client.me(),
        }
    }

    /// Makes this user and `other` friends (this one asks, the other accepts).
    pub(crate) async fn befriend(&self, other: &User) -> Result<()> {
        match (self, other) {
            (User::Wire(a), User::Wire(b)) => Ok(a.befriend(b).await?),
            (User::Real(a), User::Real(b)) => {
                if !a.social().add_friend(b.me(), "loadgen").await? {
                    b.social().accept_friend(a.me()).await?;
                }
                Ok(())
            }
            _ => bail!("cannot mix modes"),
        }
    }

    /// Starts reading this user's load messages (once per connection).
    pub(crate) async fn inbox(&self) -> Result<Inbox> {
        match self {
            User::Wire(client) => Ok(Inbox::Wire(client.events().await?)),
            User::Real(client) => Ok(Inbox::Real(client.subscribe())),
        }
    }

    /// Closes the connection (and the real client's store).
    pub(crate) async fn close(self) {
        match self {
            User::Wire(client) => client.close().await,
            User::Real(client) => client.close().await,
        }
    }
}

impl Inbox {
    /// The next load message, or `None` if none arrived within `limit`. Anything that is
    /// not a load message (friend events, receipts) is skipped; one that does not parse
    /// is an error.
    pub(crate) async fn next(&mut self, limit: Duration) -> Result<Option<Arrival>> {
        let give_up = tokio::time::Instant::now() + limit;
        match self {
            Inbox::Wire(events) => {
                let Some(message) = events.next(limit).await? else {
                    return Ok(None);
                };
                let header = Header::from_ciphertext(&message.ciphertext)
                    .with_context(|| format!("a message from {} is not ours", message.from))?;
                Ok(Some(Arrival {
                    from: message.from,
                    header,
                }))
            }
            Inbox::Real(events) => loop {
                let event = match tokio::time::timeout_at(give_up, events.recv()).await {
                    Err(_) => return Ok(None),
                    Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(None),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                        bail!("the client's event channel dropped {n} events (reader too slow)")
                    }
                    Ok(Ok(event)) => event,
                };
                if let ClientEvent::Message(message) = event {
                    let text = message.text.as_deref().with_context(|| {
                        format!(
                            "a message from {} could not be decrypted: {:?}",
                            message.from, message.problem
                        )
                    })?;
                    let header = Header::from_text(text)
                        .with_context(|| format!("a message from {} is not ours", message.from))?;
                    return Ok(Some(Arrival {
                        from: message.from,
                        header,
                    }));
                }
            },
        }
    }

    /// Acknowledges everything taken in and waits for the relay to confirm it (wire
    /// mode; the real client acknowledges by itself).
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if let Inbox::Wire(events) = self {
            events.flush(Duration::from_secs(10)).await?;
        }
        Ok(())
    }
}
