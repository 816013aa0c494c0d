//! The QUIC connection to the relay: dialing with a pinned certificate fingerprint, one
//! request per bidirectional stream, and the relay's event stream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use uchat_wire::frame::{self, FrameDecoder, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{
    ALPN, Call, CertFingerprint, ErrorReply, FrameError, FromReply, Push, Reply, Request, Response,
};

/// How long a QUIC handshake may take. QUIC ignores ICMP "port unreachable", so a relay
/// that is down shows up only as silence; 5 s is many round trips even on a satellite link.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle connection proves it is alive. A relay's idle timeout is at least
/// twice this (`uchat-relay --idle-timeout-secs` refuses less than 10 s).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// Why talking to the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The relay address could not be resolved.
    #[error("cannot resolve relay address '{relay}': {reason}")]
    Resolve {
        /// The address given.
        relay: String,
        /// What the resolver said, or that the address is not `HOST:PORT`.
        reason: String,
    },
    /// The relay presented a certificate other than the pinned one.
    #[error(
        "relay {relay} presented certificate {seen}, but this profile pinned {pinned}; refusing to connect. If the operator really changed the certificate, check the new fingerprint with them and remove the line for {relay} from {known_relays}"
    )]
    FingerprintMismatch {
        /// The relay's `HOST:PORT` as given: the key of its line in `known_relays`.
        relay: String,
        /// What this profile trusts.
        pinned: CertFingerprint,
        /// What the relay showed.
        seen: CertFingerprint,
        /// Where the pin lives.
        known_relays: String,
    },
    /// The relay could not be reached or the connection dropped.
    #[error("cannot reach the relay at {relay}: {reason}")]
    Unreachable {
        /// The relay's `HOST:PORT` as given, or "the relay" where none is at hand.
        relay: String,
        /// What QUIC or the network said, or why no attempt was made ("not connected").
        reason: String,
    },
    /// The relay refused the request.
    #[error("{0}")]
    Refused(ErrorReply),
    /// The relay's answer was not a valid frame.
    #[error("bad answer from the relay: {0}")]
    BadFrame(#[from] FrameError),
    /// The request would not fit in a frame.
    #[error("request too large: {0}")]
    TooLarge(FrameError),
    /// The TLS setup failed locally.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The relay answered a request with a kind of reply that request is not answered
    /// with: a relay speaking another protocol, or a bug.
    #[error("unexpected answer from the relay to {request}")]
    UnexpectedReply {
        /// Which request ([`Request::kind`]).
        request: &'static str,
    },
}

/// `reply` as the kind `R` a `request` kind is answered with, or
/// [`ConnectionError::UnexpectedReply`].
fn reply_of<R: FromReply>(reply: Reply, request: &'static str) -> Result<R, ConnectionError> {
    R::from_reply(reply).ok_or(ConnectionError::UnexpectedReply { request })
}

/// Accepts the relay's certificate if it matches the pinned fingerprint (or if nothing is
/// pinned yet, to be recorded after the handshake), and still checks the handshake
/// signatures so the relay must hold the certificate's private key.
#[derive(Debug)]
struct PinningVerifier {
    pinned: Option<CertFingerprint>,
    seen: Mutex<Option<CertFingerprint>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = CertFingerprint(Sha256::digest(end_entity.as_ref()).into());
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(seen);
        match self.pinned {
            Some(pinned) if pinned != seen => Err(rustls::Error::General(
                "relay certificate does not match the pinned fingerprint".into(),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An open, not yet logged-in connection to the relay.
#[derive(Debug, Clone)]
pub struct RelayLink {
    endpoint: quinn::Endpoint,
    /// Whether this link is the only user of `endpoint` (made by [`dial`]), so that
    /// closing it may wait for the endpoint to go idle; a [`Dialer`]'s links share one.
    owns_endpoint: bool,
    conn: quinn::Connection,
    relay: String,
    fingerprint: CertFingerprint,
}

/// Dials `relay` ("HOST:PORT"). With `pinned`, any other certificate is refused;
/// without, the certificate seen is returned for the caller to pin. The link has a UDP
/// socket (a quinn endpoint) of its own.
pub async fn dial(
    relay: &str,
    pinned: Option<CertFingerprint>,
    known_relays_path: &str,
) -> Result<RelayLink, ConnectionError> {
    let dialer = Dialer::new(relay, pinned, known_relays_path).await?;
    let mut link = dialer.dial().await?;
    link.owns_endpoint = true;
    Ok(link)
}

/// Dials many connections to one relay from one UDP socket: the TLS and QUIC client
/// configuration (pinned certificate, ALPN, keep-alives) and one quinn endpoint, made
/// once. Load generators and tests that hold thousands of connections use it, so that
/// each connection costs no socket of its own.
#[derive(Debug)]
pub struct Dialer {
    endpoint: quinn::Endpoint,
    verifier: Arc<PinningVerifier>,
    addr: SocketAddr,
    server_name: String,
    relay: String,
    pinned: Option<CertFingerprint>,
    known_relays_path: String,
}

impl Dialer {
    /// Resolves `relay` ("HOST:PORT") and binds one UDP socket for the connections to
    /// it; `pinned` and `known_relays_path` are as for [`dial`].
    pub async fn new(
        relay: &str,
        pinned: Option<CertFingerprint>,
        known_relays_path: &str,
    ) -> Result<Self, ConnectionError> {
        let addr = resolve(relay).await?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0"
                .parse()
                .map_err(|_| ConnectionError::Tls("bad bind address".into()))?
        } else {
            "0.0.0.0:0"
                .parse()
                .map_err(|_| ConnectionError::Tls("bad bind address".into()))?
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| ConnectionError::Unreachable {
            relay: relay.to_string(),
            reason: e.to_string(),
        })?;
        Self::on_endpoint(relay, addr, endpoint, pinned, known_relays_path)
    }

    /// Like [`Dialer::new`], on a UDP socket the caller bound: a load generator gives it
    /// large buffers (thousands of connections' packets arrive together), or binds
    /// 127.0.0.2, 127.0.0.3, ... to look like clients from several addresses to the
    /// relay's per-address limits.
    pub async fn with_socket(
        relay: &str,
        pinned: Option<CertFingerprint>,
        known_relays_path: &str,
        socket: std::net::UdpSocket,
    ) -> Result<Self, ConnectionError> {
        let addr = resolve(relay).await?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| ConnectionError::Unreachable {
            relay: relay.to_string(),
            reason: e.to_string(),
        })?;
        Self::on_endpoint(relay, addr, endpoint, pinned, known_relays_path)
    }

    /// Sets up the pinned TLS and QUIC client configuration on `endpoint`.
    fn on_endpoint(
        relay: &str,
        addr: SocketAddr,
        mut endpoint: quinn::Endpoint,
        pinned: Option<CertFingerprint>,
        known_relays_path: &str,
    ) -> Result<Self, ConnectionError> {
        let provider = Arc::new(tls_provider());
        let verifier = Arc::new(PinningVerifier {
            pinned,
            seen: Mutex::new(None),
            provider: provider.clone(),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ConnectionError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let quic_tls = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| ConnectionError::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(quic_tls));
        let mut transport = quinn::TransportConfig::default();
        // Keep-alives at half the shortest idle timeout a relay accepts (10 s), so a quiet
        // but live peer is never taken for dead.
        transport.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL));
        transport.max_idle_timeout(Duration::from_secs(30).try_into().ok());
        // As the relay does (see its transport config): BBR keeps uploads moving on lossy
        // paths.
        transport.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
        config.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(config);
        let server_name = relay
            .rsplit_once(':')
            .map(|(host, _)| host.trim_matches(['[', ']']))
            .filter(|host| host.parse::<std::net::IpAddr>().is_err())
            .unwrap_or("uchat-relay")
            .to_string();
        Ok(Self {
            endpoint,
            verifier,
            addr,
            server_name,
            relay: relay.to_string(),
            pinned,
            known_relays_path: known_relays_path.to_string(),
        })
    }

    /// Opens one more connection to the relay on this dialer's socket. Closing the link
    /// does not wait for the socket to go idle (other links use it): see
    /// [`Dialer::wait_idle`].
    pub async fn dial(&self) -> Result<RelayLink, ConnectionError> {
        let relay = self.relay.as_str();
        let unreachable = |reason: String| ConnectionError::Unreachable {
            relay: relay.to_string(),
            reason,
        };
        let connecting = self
            .endpoint
            .connect(self.addr, &self.server_name)
            .map_err(|e| unreachable(e.to_string()))?;
        let result = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
        // With several handshakes at once the verifier holds the latest certificate seen;
        // they all come from the same relay address, and a successful handshake's own
        // certificate is read from its connection below.
        let seen = *self
            .verifier
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let conn = match result {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                if let (Some(pinned), Some(seen)) = (self.pinned, seen)
                    && pinned != seen
                {
                    return Err(ConnectionError::FingerprintMismatch {
                        relay: relay.to_string(),
                        pinned,
                        seen,
                        known_relays: self.known_relays_path.clone(),
                    });
                }
                return Err(unreachable(e.to_string()));
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} s (is the relay running and its UDP port open?)",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let fingerprint = peer_fingerprint(&conn)
            .or(seen)
            .ok_or_else(|| unreachable("handshake finished without a certificate".into()))?;
        Ok(RelayLink {
            endpoint: self.endpoint.clone(),
            owns_endpoint: false,
            conn,
            relay: relay.to_string(),
            fingerprint,
        })
    }

    /// Waits (at most `limit`) until every connection of this dialer is closed and the
    /// relay has heard of it, for example before the process exits.
    pub async fn wait_idle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.endpoint.wait_idle()).await;
    }
}

/// The TLS provider a peer dials with: ring's, offering TLS_AES_128_GCM_SHA256 first
/// (the relay follows the client's order). It is QUIC's own default suite; its SHA-256
/// key schedule runs on the CPU's SHA extensions where SHA-384 has none (4 % of a relay's
/// time in a profile of resume logins went to SHA-384), and AES-128 takes 10 rounds per
/// block to AES-256's 14.
fn tls_provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    provider
}

/// The fingerprint of the certificate the relay presented on `conn`.
fn peer_fingerprint(conn: &quinn::Connection) -> Option<CertFingerprint> {
    let chain = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    let leaf = chain.first()?;
    Some(CertFingerprint(Sha256::digest(leaf.as_ref()).into()))
}

async fn resolve(relay: &str) -> Result<SocketAddr, ConnectionError> {
    let resolve_error = |reason: String| ConnectionError::Resolve {
        relay: relay.to_string(),
        reason,
    };
    if !relay.contains(':') {
        return Err(resolve_error(
            "expected HOST:PORT, for example 127.0.0.1:4433".into(),
        ));
    }
    tokio::net::lookup_host(relay)
        .await
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("no addresses".into()))
}

impl RelayLink {
    /// The certificate fingerprint the relay presented.
    pub fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// The QUIC connection, for voice datagrams.
    pub fn quic(&self) -> quinn::Connection {
        self.conn.clone()
    }

    /// The relay address as given.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The relay could not be reached for `reason`; if the connection is closed, the
    /// close's own reason says more (a stream error says only "connection lost", while
    /// the relay's close names why: too many connections, no login in time, ...).
    fn unreachable(&self, reason: impl ToString) -> ConnectionError {
        let reason = match self.conn.close_reason() {
            Some(closed) => closed.to_string(),
            None => reason.to_string(),
        };
        ConnectionError::Unreachable {
            relay: self.relay.clone(),
            reason,
        }
    }

    /// Sends one request on its own stream and waits for the answer; a refusal is
    /// [`ConnectionError::Refused`].
    pub async fn request(&self, request: &Request) -> Result<Reply, ConnectionError> {
        let bytes =
            frame::encode(request, MAX_CONTROL_FRAME_BYTES).map_err(ConnectionError::TooLarge)?;
        self.request_raw(&bytes).await
    }

    /// Sends one typed request and waits for the reply its kind is answered with; a
    /// refusal is [`ConnectionError::Refused`], another kind of reply
    /// [`ConnectionError::UnexpectedReply`].
    pub async fn call<C: Call>(&self, call: C) -> Result<C::Reply, ConnectionError> {
        let request: Request = call.into();
        let reply = self.request(&request).await?;
        reply_of(reply, request.kind())
    }

    /// Sends raw bytes as a request (tests use this to send malformed frames) and decodes
    /// the answer.
    pub async fn request_raw(&self, bytes: &[u8]) -> Result<Reply, ConnectionError> {
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| self.unreachable(e))?;
        // The relay may refuse a request before reading all of it (an oversized frame);
        // its answer still arrives, so a failed write is not yet an error.
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        self.read_reply(&mut recv).await
    }

    /// Opens a stream of its own for a transfer (`UploadFile`, `DownloadFile`): sends the
    /// request and returns the stream with the relay's first answer, of the kind the
    /// request is answered with. Raw ciphertext then follows on the stream, and an upload
    /// gets a second answer ([`Self::read_final`]).
    pub async fn transfer<C: Call>(
        &self,
        call: C,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, C::Reply), ConnectionError> {
        let request: Request = call.into();
        let (send, recv, reply) = self.open_transfer(&request).await?;
        Ok((send, recv, reply_of(reply, request.kind())?))
    }

    /// Reads the last answer on a transfer stream, of kind `R`, to a `request` kind.
    pub async fn read_final<R: FromReply>(
        &self,
        recv: &mut quinn::RecvStream,
        request: &'static str,
    ) -> Result<R, ConnectionError> {
        reply_of(self.read_reply(recv).await?, request)
    }

    /// [`Self::transfer`] with any request and any first answer (tests send requests of
    /// every kind this way).
    pub async fn open_transfer(
        &self,
        request: &Request,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, Reply), ConnectionError> {
        let bytes =
            frame::encode(request, MAX_CONTROL_FRAME_BYTES).map_err(ConnectionError::TooLarge)?;
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| self.unreachable(e))?;
        send.write_all(&bytes)
            .await
            .map_err(|e| self.unreachable(e))?;
        let reply = self.read_reply(&mut recv).await?;
        Ok((send, recv, reply))
    }

    /// Reads one answer frame, of any kind, from a stream.
    pub async fn read_reply(&self, recv: &mut quinn::RecvStream) -> Result<Reply, ConnectionError> {
        let response: Response = read_one_frame(recv).await.map_err(|e| match e {
            ReadError::Frame(f) => ConnectionError::BadFrame(f),
            ReadError::Stream(s) => self.unreachable(s),
        })?;
        match response {
            Response::Ok(reply) => Ok(reply),
            Response::Error(error) => Err(ConnectionError::Refused(error)),
        }
    }

    /// Waits for the relay to open its event stream.
    pub async fn accept_events(&self) -> Result<EventStream, ConnectionError> {
        let recv = self
            .conn
            .accept_uni()
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(EventStream {
            recv,
            decoder: FrameDecoder::new(MAX_CONTROL_FRAME_BYTES),
        })
    }

    /// Resolves when the connection is closed, with the reason.
    pub async fn closed(&self) -> String {
        self.conn.closed().await.to_string()
    }

    /// Resolves when the connection is closed, with the error a request on it would meet.
    pub async fn lost(&self) -> ConnectionError {
        let reason = self.conn.closed().await;
        self.unreachable(reason)
    }

    /// Closes the connection at once because this side cannot go on (for example local
    /// storage failed); the relay keeps the unacknowledged events for the next connection.
    pub fn abort(&self, reason: &str) {
        self.conn.close(1u32.into(), reason.as_bytes());
    }

    /// Closes the connection politely. A link made by [`dial`] waits briefly for the
    /// relay to hear it; one from a [`Dialer`] returns at once (its socket lives on with
    /// the dialer, which sends the close).
    pub async fn close(&self) {
        self.conn.close(0u32.into(), b"bye");
        if self.owns_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        }
    }
}

enum ReadError {
    Frame(FrameError),
    Stream(String),
}

async fn read_one_frame<T: serde::de::DeserializeOwned>(
    recv: &mut quinn::RecvStream,
) -> Result<T, ReadError> {
    let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
    // quinn's own chunks, never past the frame: no buffer beyond the answer's bytes.
    loop {
        if let Some(msg) = decoder.next_message().map_err(ReadError::Frame)? {
            return Ok(msg);
        }
        match recv.read_chunk(decoder.wanted(), true).await {
            Ok(Some(chunk)) => decoder.push(&chunk.bytes).map_err(ReadError::Frame)?,
            Ok(None) => {
                decoder.finish().map_err(ReadError::Frame)?;
                return Err(ReadError::Stream(
                    "the relay closed the stream without answering".into(),
                ));
            }
            Err(e) => return Err(ReadError::Stream(e.to_string())),
        }
    }
}

/// The relay's stream of pushed events.
#[derive(Debug)]
pub struct EventStream {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
}

impl EventStream {
    /// The next event if it has already arrived (in what was read, or in what QUIC holds
    /// for this stream), without waiting: how the inbox gathers a batch after
    /// [`EventStream::next`]. `read_chunk` is cancel-safe, so polling it once loses nothing.
    pub fn next_ready(&mut self) -> Result<Option<Push>, ConnectionError> {
        loop {
            if let Some(push) = self.decoder.next_message()? {
                return Ok(Some(push));
            }
            match self.recv.read_chunk(usize::MAX, true).now_or_never() {
                Some(Ok(Some(chunk))) => self.decoder.push(&chunk.bytes)?,
                // Nothing more yet, or the end: `next` reports the end.
                Some(Ok(None) | Err(_)) | None => return Ok(None),
            }
        }
    }

    /// The next event, or `None` when the stream or connection ended.
    pub async fn next(&mut self) -> Result<Option<Push>, ConnectionError> {
        loop {
            if let Some(push) = self.decoder.next_message()? {
                return Ok(Some(push));
            }
            // quinn's own chunks: no buffer of this stream's own while it waits.
            match self.recv.read_chunk(usize::MAX, true).await {
                Ok(Some(chunk)) => self.decoder.push(&chunk.bytes)?,
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    }
}
