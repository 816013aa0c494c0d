//! Test harness for Uchat's end-to-end tests: runs the real `uchat-relay` binary on a free
//! loopback port ([`TestRelay`], with [`TestRelay::kill_9`] and [`TestRelay::restart`]) and
//! the real `uchat` binary in temporary profile directories ([`Peer`]).
//!
//! The binaries are found next to the test executable's target directory (or in
//! `UCHAT_BIN_DIR`); build them first with `cargo build --workspace --bins`, as the
//! README's test command does. [`feed`] makes a feed of many posts through the client
//! library, for the feed tests and benchmark; [`wire_client`] speaks the relay protocol
//! directly (opaque ciphertexts, many connections on one socket), for `loadgen` and for
//! tests that need many senders; [`procfs`] reads a process's CPU time and memory.

pub mod desktop;
pub mod feed;
pub mod gui;
pub mod procfs;
pub mod wire_client;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uchat_wire::{reply, request};

use anyhow::{Context, Result, bail};

/// The directory holding the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UCHAT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/e2e-<hash> → target/<profile>; a benchmark binary lives in
    // target/<profile> itself.
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .expect("an executable lives in a directory")
        .to_path_buf();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// Path of one of the workspace's binaries, with a clear failure if it was not built or
/// is older than the sources (the tests would silently exercise stale code).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} not found: build the binaries first with `cargo build --workspace --bins`",
                path.display()
            )
        });
    // The crates each binary is built from (a binary is relinked only when they change).
    let crates: &[&str] = match name {
        "uchat-relay" => &["wire", "store", "relay"],
        "uchat-netsim" => &["netsim"],
        _ => &["wire", "store", "peer"],
    };
    if let Some((source, changed)) = newest_source(crates) {
        assert!(
            changed <= built,
            "{} is older than {}: rebuild with `cargo build --workspace --bins` (scripts/test does)",
            path.display(),
            source.display()
        );
    }
    path
}

/// The most recently modified source file of `crates`.
fn newest_source(crates: &[&str]) -> Option<(PathBuf, std::time::SystemTime)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let mut newest: Option<(PathBuf, std::time::SystemTime)> = None;
    let mut stack: Vec<PathBuf> = crates.iter().map(|c| root.join(c).join("src")).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(_, t)| modified > *t)
            {
                newest = Some((path, modified));
            }
        }
    }
    newest
}

/// Relay flags that lift the limits on what one address and one user may do (registrations,
/// friend requests, connections), for tests and benchmarks that run many users from one
/// loopback address.
pub const MANY_USERS: &[&str] = &[
    "--registrations-per-address-per-hour",
    "1000000",
    "--registrations-per-hour",
    "1000000",
    "--friend-requests-per-day",
    "1000000",
    "--max-connections-per-address",
    "1000000",
];

/// Lifts the same limits of a relay started in-process as [`MANY_USERS`] does for the
/// binary.
pub fn allow_many_users(limits: &mut uchat_relay::Limits) {
    limits.max_registrations_per_address_per_hour = u32::MAX;
    limits.max_registrations_per_hour = u32::MAX;
    limits.max_friend_requests_per_day = u32::MAX;
    limits.max_connections_per_address = usize::MAX;
}

/// A UDP port on 127.0.0.1 that is free now and lies below the range the kernel hands
/// out to sockets bound to port 0 (`/proc/sys/net/ipv4/ip_local_port_range`). A relay a
/// test kills and restarts on the same address is down for a moment; were its port an
/// ephemeral one, a client socket of another test could be given it meanwhile, and the
/// restart would fail with "Address already in use" (it did, in CI).
fn restartable_udp_port() -> Result<u16> {
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_start / 2);
    let span = ephemeral_start - low;
    for _ in 0..100 {
        let bytes = wire_client::random_bytes(2);
        let draw = u16::from_le_bytes([bytes[0], bytes[1]]);
        let port = low + draw % span;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free UDP port on 127.0.0.1 below {ephemeral_start}")
}

/// A real relay process on 127.0.0.1 with its own data directory.
pub struct TestRelay {
    data: tempfile::TempDir,
    /// "127.0.0.1:PORT".
    pub addr: String,
    /// "sha256:…".
    pub fingerprint: String,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    rust_log: String,
}

impl TestRelay {
    /// Starts a relay on a free port.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a relay that lets one address register as many accounts, hold as many
    /// connections, and one user send as many friend requests, as a test needs (see
    /// [`MANY_USERS`]).
    pub fn start_for_many_users() -> Result<Self> {
        Self::start_with(MANY_USERS)
    }

    /// Starts a relay with extra flags.
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        Self::start_at("127.0.0.1:0", extra)
    }

    /// Starts a relay with a fresh data directory (so a fresh certificate) on `addr`.
    pub fn start_at(addr: &str, extra: &[&str]) -> Result<Self> {
        Self::start_logging(addr, extra, "debug,quinn=info,quinn_proto=info,rustls=info")
    }

    /// Starts a relay on a free port that logs only warnings (for benchmarks).
    pub fn start_quiet(extra: &[&str]) -> Result<Self> {
        Self::start_logging("127.0.0.1:0", extra, "warn")
    }

    /// Starts a relay on `addr`. For "127.0.0.1:0" it takes a port below the kernel's
    /// ephemeral range instead (see [`restartable_udp_port`]), trying another if that one
    /// was taken meanwhile.
    fn start_logging(addr: &str, extra: &[&str], rust_log: &str) -> Result<Self> {
        let any_port = addr == "127.0.0.1:0";
        let mut tries = 0;
        loop {
            let mut relay = TestRelay {
                data: tempfile::tempdir()?,
                addr: if any_port {
                    format!("127.0.0.1:{}", restartable_udp_port()?)
                } else {
                    addr.into()
                },
                fingerprint: String::new(),
                child: None,
                log: Arc::new(Mutex::new(String::new())),
                rust_log: rust_log.into(),
            };
            match relay.spawn(extra) {
                Ok(()) => return Ok(relay),
                Err(_)
                    if any_port && tries < 5 && relay.log().contains("Address already in use") =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The relay process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The relay process's resident memory now, in KiB (`VmRSS` in /proc).
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("the relay is not running")?;
        Ok(procfs::read(pid)?.rss_kib)
    }

    fn spawn(&mut self, extra: &[&str]) -> Result<()> {
        let mut child = Command::new(bin("uchat-relay"))
            .args(["--listen", &self.addr, "--data"])
            .arg(self.data.path())
            .args(if extra.contains(&"--metrics") {
                &[][..]
            } else {
                &["--metrics", "off"][..]
            })
            .args(extra)
            .env("RUST_LOG", &self.rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start uchat-relay")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let stderr = child.stderr.take().context("relay stderr")?;
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
                if !sent {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .with_context(|| format!("relay printed no start line; log:\n{}", self.log()))?;
        // "uchat-relay listening on ADDR fingerprint: sha256:HEX"
        let addr = line
            .split_whitespace()
            .nth(3)
            .with_context(|| format!("unexpected start line {line:?}"))?;
        let fingerprint = line
            .split("fingerprint: ")
            .nth(1)
            .with_context(|| format!("no fingerprint in {line:?}"))?;
        self.addr = addr.to_string();
        self.fingerprint = fingerprint.trim().to_string();
        self.child = Some(child);
        Ok(())
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Everything the relay printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What the relay printed after the first `from` bytes of its log (nothing if it has not
    /// printed that much), and the log's length now: for watching the log as it grows
    /// without copying all of it each time. The log runs on across restarts.
    pub fn log_after(&self, from: usize) -> (String, usize) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (log.get(from..).unwrap_or_default().to_string(), log.len())
    }

    /// Kills the relay with SIGKILL: no chance to flush anything.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the relay with SIGTERM and waits for it to exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("relay not running")?;
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                bail!("relay did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the relay process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Starts the relay again on the same address and data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill_9();
        self.spawn(&[])
    }

    /// Stops the relay with SIGTERM (if it runs) and starts it again on the same address
    /// and data directory with `extra` flags: a fresh process over the same data.
    pub fn restart_with(&mut self, extra: &[&str]) -> Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        self.spawn(extra)
    }

    /// A free TCP port on 127.0.0.1 (for the metrics endpoint).
    pub fn free_tcp_port() -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }

    /// `GET path` over plain HTTP/1.1 from `addr`; returns (status line, body).
    pub fn http_get(addr: &str, path: &str) -> Result<(String, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("no HTTP header end")?;
        Ok((
            head.lines().next().unwrap_or_default().to_string(),
            body.to_string(),
        ))
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery";

/// One user's profile directory and the `uchat` binary.
pub struct Peer {
    home: tempfile::TempDir,
    relay: String,
    /// The name it registers or logs in as, as given to [`Peer::new`] or [`Peer::via`].
    pub name: String,
}

impl Peer {
    /// A profile directory for `name` on `relay` (nothing is registered yet).
    pub fn new(relay: &TestRelay, name: &str) -> Result<Self> {
        Self::via(&relay.addr, name)
    }

    /// A profile directory for `name` that reaches the relay at `relay_addr` (for example
    /// through a netsim path).
    pub fn via(relay_addr: &str, name: &str) -> Result<Self> {
        Ok(Self {
            home: tempfile::tempdir()?,
            relay: relay_addr.to_string(),
            name: name.to_string(),
        })
    }

    /// Registers `name` and returns the peer.
    pub fn register(relay: &TestRelay, name: &str) -> Result<Self> {
        let peer = Self::new(relay, name)?;
        peer.ok(&["register", name])?;
        Ok(peer)
    }

    /// The profile directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Opens this profile in this process with the client library, against `relay`
    /// (online if it runs, offline if not).
    pub async fn open_client(&self, relay: &TestRelay) -> Result<uchat_peer::Client> {
        let options = uchat_peer::ClientOptions {
            home: self.home().to_path_buf(),
            relay: Some(relay.addr.clone()),
            relay_fingerprint: Some(relay.fingerprint.parse()?),
        };
        Ok(uchat_peer::Client::open(options, PASSWORD).await?)
    }

    /// A `uchat` command for this profile, with the password in the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("uchat"));
        cmd.arg("--relay")
            .arg(&self.relay)
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .env("UCHAT_PASSWORD", PASSWORD)
            .env_remove("UCHAT_RELAY")
            .env_remove("UCHAT_HOME")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `uchat ARGS` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("cannot run uchat {args:?}"))
    }

    /// Runs `uchat ARGS` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Result<Output> {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(input)?;
        drop(stdin);
        Ok(child.wait_with_output()?)
    }

    /// Runs `uchat ARGS`, requiring success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "uchat {args:?} as {} failed ({}):\nstdout: {}\nstderr: {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs `uchat ARGS`, requiring failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if out.status.success() {
            bail!(
                "uchat {args:?} as {} should have failed but printed {}",
                self.name,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8(out.stderr)?)
    }

    /// Sends a message; returns its id.
    pub fn send(&self, to: &str, text: &str) -> Result<String> {
        Ok(self.ok(&["send", to, text])?.trim().to_string())
    }

    /// `history --json` parsed into JSON objects.
    pub fn history(&self, with: &str) -> Result<Vec<serde_json::Value>> {
        let out = self.ok(&["--json", "history", with, "--limit", "100000"])?;
        out.lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("bad JSON line {l:?}")))
            .collect()
    }

    /// The `file` lines of this peer's history with `with`.
    pub fn files_in(&self, with: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .history(with)?
            .into_iter()
            .filter(|l| l["type"] == "file")
            .collect())
    }

    /// The status of message `id` in this peer's history with `with` ("sent", "read", …).
    pub fn status_of(&self, with: &str, id: &str) -> Result<String> {
        let history = self.history(with)?;
        let entry = history
            .iter()
            .find(|m| m["id"] == id)
            .with_context(|| format!("message {id} in {history:?}"))?;
        Ok(entry["status"].as_str().unwrap_or_default().to_string())
    }
}

/// A running `uchat --json listen` whose output lines are read as they come, each with the
/// moment it was read.
pub struct JsonListener {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl JsonListener {
    /// Starts `uchat --json listen --for SECS` as `peer` and waits (bounded) until it has
    /// connected.
    pub fn start(peer: &Peer, secs: u64) -> Result<Self> {
        let mut listener = Self::spawn(peer, &["listen", "--for", &secs.to_string()])?;
        listener
            .wait_for(Duration::from_secs(30), |l| {
                l["type"] == "connection" && l["state"] == "connected"
            })
            .context("the listener did not connect within 30 s")?;
        Ok(listener)
    }

    /// Starts `uchat --json ARGS` as `peer` and reads its lines as they come (without
    /// waiting for anything).
    pub fn spawn(peer: &Peer, args: &[&str]) -> Result<Self> {
        Self::spawn_with_env(peer, args, &[])
    }

    /// Like [`JsonListener::spawn`], with extra environment variables.
    pub fn spawn_with_env(peer: &Peer, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut child = peer
            .command(&[&["--json"], args].concat())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "type": "unparsed", "line": line }));
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((Instant::now(), value));
            }
        });
        Ok(Self {
            child,
            lines,
            reader: Some(reader),
        })
    }

    /// Waits up to `limit` for a line matching `matches` (including lines already read);
    /// returns it with the moment it was read.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<(Instant, serde_json::Value)> {
        self.wait_for_after(0, limit, matches)
    }

    /// Like [`JsonListener::wait_for`], looking only at lines after the first `skip`.
    pub fn wait_for_after(
        &mut self,
        skip: usize,
        limit: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<(Instant, serde_json::Value)> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines().into_iter().skip(skip);
            if let Some(found) = lines.into_iter().find(|(_, line)| matches(line)) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line read so far.
    pub fn lines(&self) -> Vec<(Instant, serde_json::Value)> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The process, to kill it or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the listener to end by itself (bounded by `limit`, then killed); returns
    /// when it ended and every line it printed.
    pub fn finish(mut self, limit: Duration) -> Result<(Instant, Vec<serde_json::Value>)> {
        let deadline = Instant::now() + limit;
        let ended = loop {
            if self.child.try_wait()?.is_some() {
                break Instant::now();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the listener did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok((ended, self.lines().into_iter().map(|(_, l)| l).collect()))
    }
}

impl Drop for JsonListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw connection logged in as `user` (password [`PASSWORD`]), for requests no
/// well-behaved client sends.
pub async fn raw_login(relay: &TestRelay, user: &str) -> Result<uchat_peer::connection::RelayLink> {
    use uchat_wire::{PROTOCOL_VERSION, Password, Request, UserName};
    let link = uchat_peer::connection::dial(
        &relay.addr,
        Some(relay.fingerprint.parse()?),
        "known_relays",
    )
    .await?;
    link.request(&Request::Hello(request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "forger".into(),
    }))
    .await?;
    link.request(&Request::Login(request::Login {
        username: UserName::parse(user)?,
        password: Password::new(PASSWORD),
    }))
    .await?;
    Ok(link)
}

/// A raw connection that has sent nothing yet, not even `Hello`, for requests out of order.
pub async fn raw_connect(relay: &TestRelay) -> Result<uchat_peer::connection::RelayLink> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(uchat_peer::connection::dial(
        &relay.addr,
        Some(relay.fingerprint.parse()?),
        "known_relays",
    )
    .await?)
}

/// A raw connection that said `Hello` and never logged in: what anyone on the network has.
pub async fn raw_hello(relay: &TestRelay) -> Result<uchat_peer::connection::RelayLink> {
    use uchat_wire::{PROTOCOL_VERSION, Reply, Request};
    let link = raw_connect(relay).await?;
    let reply = link
        .request(&Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "forger".into(),
        }))
        .await?;
    anyhow::ensure!(matches!(reply, Reply::Welcome(_)), "Hello got {reply:?}");
    Ok(link)
}

/// Registers `user` (password [`PASSWORD`]) over a raw connection, with made-up public keys
/// ([`wire_client::register_request`]): the relay checks only their sizes, never a signature. Returns the connection, logged in,
/// and the session token.
pub async fn raw_register(
    relay: &TestRelay,
    user: &str,
) -> Result<(uchat_peer::connection::RelayLink, uchat_wire::SessionToken)> {
    use uchat_wire::{Reply, UserName};
    let link = raw_hello(relay).await?;
    let reply = link
        .request(&wire_client::register_request(
            UserName::parse(user)?,
            PASSWORD,
            20,
        ))
        .await
        .with_context(|| format!("registering {user}"))?;
    match reply {
        Reply::Session(reply::Session { token, .. }) => Ok((link, token)),
        other => bail!("Register of {user} got {other:?}"),
    }
}

/// One request of every kind `uchat_wire::Request` has, with made-up contents (every
/// optional field filled in). The match in `tests/e2e/authz.rs` that gives each kind its
/// row has no catch-all, and that test checks this list against `Request::kind`, so a new
/// kind cannot be left out of the authorization matrix or the bad-input catalogue.
pub fn one_request_of_each_kind() -> Vec<uchat_wire::Request> {
    use uchat_wire::{
        AvatarChange, CallId, CommentId, FileAccess, FileId, GroupId, IdentityKeys, KeyShare,
        MessageId, PROTOCOL_VERSION, Password, PostId, Request, Seq, SessionToken, SignedKey,
        UserName,
    };
    let user = || UserName::parse("someone").expect("a valid name");
    let key = SignedKey {
        key: vec![1; 32],
        signature: vec![2; 64],
    };
    let identity = IdentityKeys {
        curve25519: vec![3; 32],
        ed25519: vec![4; 32],
    };
    let share = KeyShare {
        to: user(),
        ciphertext: vec![5; 8],
    };
    let (group, call, post) = (GroupId([6; 16]), CallId([7; 16]), PostId([8; 16]));
    vec![
        Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "sample".into(),
        }),
        Request::Register(request::Register {
            username: user(),
            password: Password::new(PASSWORD),
            identity: identity.clone(),
            one_time_keys: vec![key.clone()],
            fallback_key: Some(key.clone()),
        }),
        Request::Login(request::Login {
            username: user(),
            password: Password::new(PASSWORD),
        }),
        Request::Resume(request::Resume {
            username: user(),
            token: SessionToken(vec![9; 32]),
        }),
        Request::Logout,
        Request::UploadKeys(request::UploadKeys {
            one_time_keys: vec![key.clone()],
            fallback_key: Some(key.clone()),
        }),
        Request::KeyCount,
        Request::ClaimKey(request::ClaimKey { user: user() }),
        Request::Identity(request::Identity { user: user() }),
        Request::Send(request::Send {
            to: user(),
            id: MessageId([10; 16]),
            ciphertext: b"sample".to_vec(),
        }),
        Request::Ack(request::Ack { through: Seq(1) }),
        Request::Presence(request::Presence {
            users: vec![user()],
        }),
        Request::FriendRequest(request::FriendRequest {
            to: user(),
            note: "sample".into(),
        }),
        Request::AcceptFriend(request::AcceptFriend { from: user() }),
        Request::RejectFriend(request::RejectFriend { from: user() }),
        Request::RemoveFriend(request::RemoveFriend { user: user() }),
        Request::Block(request::Block { user: user() }),
        Request::Unblock(request::Unblock { user: user() }),
        Request::Friends,
        Request::FriendRequests,
        Request::SetProfile(request::SetProfile {
            signature: Some("sample".into()),
            avatar: Some(AvatarChange::Remove),
        }),
        Request::GetProfile(request::GetProfile {
            user: user(),
            known_avatar_version: Some("0123456789abcdef".into()),
        }),
        Request::ReplaceIdentity(request::ReplaceIdentity {
            identity,
            one_time_keys: vec![key.clone()],
            fallback_key: Some(key),
        }),
        Request::CreateGroup(request::CreateGroup {
            name: "sample".into(),
            members: vec![user()],
        }),
        Request::Groups,
        Request::GroupInfo(request::GroupInfo { group }),
        Request::InviteToGroup(request::InviteToGroup {
            group,
            user: user(),
        }),
        Request::KickFromGroup(request::KickFromGroup {
            group,
            user: user(),
        }),
        Request::LeaveGroup(request::LeaveGroup { group }),
        Request::SyncGroup(request::SyncGroup { group }),
        Request::GroupSend(request::GroupSend {
            group,
            epoch: 1,
            id: MessageId([11; 16]),
            ciphertext: b"sample".to_vec(),
            key_shares: vec![share.clone()],
        }),
        Request::UploadFile(request::UploadFile {
            file: FileId([12; 16]),
            size: 64,
            access: FileAccess::Users {
                users: vec![user()],
            },
        }),
        Request::DownloadFile(request::DownloadFile {
            file: FileId([12; 16]),
            offset: 0,
        }),
        Request::CallInvite(request::CallInvite {
            call,
            to: user(),
            offer: b"sample".to_vec(),
        }),
        Request::CallAnswer(request::CallAnswer {
            call,
            answer: b"sample".to_vec(),
        }),
        Request::CallReject(request::CallReject { call }),
        Request::CallHangup(request::CallHangup { call }),
        Request::MomentPost(request::MomentPost {
            id: post,
            ciphertext: b"sample".to_vec(),
            shares: vec![share],
        }),
        Request::MomentFeed(request::MomentFeed {
            before: Some(10),
            limit: 5,
        }),
        Request::MomentGet(request::MomentGet { post }),
        Request::MomentLike(request::MomentLike {
            post,
            ciphertext: b"sample".to_vec(),
        }),
        Request::MomentUnlike(request::MomentUnlike { post }),
        Request::MomentComment(request::MomentComment {
            post,
            id: CommentId([13; 16]),
            reply_to: Some(user()),
            ciphertext: b"sample".to_vec(),
        }),
        Request::MomentDelete(request::MomentDelete { post }),
        Request::MomentDeleteComment(request::MomentDeleteComment {
            comment: CommentId([13; 16]),
        }),
        Request::FriendsPage(request::FriendsPage {
            after: Some(user()),
            limit: 50,
        }),
        Request::GroupsPage(request::GroupsPage {
            after: Some(group),
            limit: 50,
        }),
        Request::IncomingFriendRequestsPage(request::IncomingFriendRequestsPage {
            after: Some(user()),
            limit: 50,
        }),
        Request::OutgoingFriendRequestsPage(request::OutgoingFriendRequestsPage {
            after: Some(user()),
            limit: 50,
        }),
        Request::Unknown,
    ]
}

/// The relay's refusal in `result`; panics (failing the test) on anything else.
pub fn refused(
    result: Result<uchat_wire::Reply, uchat_peer::connection::ConnectionError>,
) -> uchat_wire::ErrorReply {
    match result {
        Err(uchat_peer::connection::ConnectionError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Makes `a` and `b` friends: `a` asks, `b` accepts (1:1 messages need a friendship).
pub fn befriend(a: &Peer, b: &Peer) -> Result<()> {
    a.ok(&["friends", "add", &b.name, "--note", "test setup"])?;
    b.ok(&["friends", "accept", &a.name])?;
    Ok(())
}

/// Registers every name in `names` and makes each pair of them friends.
pub fn register_friends(relay: &TestRelay, names: &[&str]) -> Result<Vec<Peer>> {
    let peers = names
        .iter()
        .map(|name| Peer::register(relay, name))
        .collect::<Result<Vec<_>>>()?;
    for (i, a) in peers.iter().enumerate() {
        for b in &peers[i + 1..] {
            befriend(a, b)?;
        }
    }
    Ok(peers)
}

/// Parses `--json` output into one value per line.
pub fn json_lines(out: &str) -> Result<Vec<serde_json::Value>> {
    out.lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad JSON line {l:?}")))
        .collect()
}

/// Texts of messages in a JSON history, in order.
pub fn texts(history: &[serde_json::Value]) -> Vec<String> {
    history
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("<none>").to_string())
        .collect()
}

/// Every file under `dir`, recursively (none if it cannot be read).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The value of metric `name` in a Prometheus text `body` (`name value` on a line of its
/// own), if it is there.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Runs a benchmark binary's work on a tokio runtime; on failure prints `name: error` with
/// its causes and exits 1.
pub fn run_main(name: &str, work: impl std::future::Future<Output = Result<()>>) {
    run_main_with(name, Failure::default(), work);
}

/// How [`run_main_with`] reports a failure.
pub struct Failure {
    /// Also print `{"type":"error","message":…}` on stdout, for a `--json` run.
    pub json: bool,
    /// The exit code an error gets.
    pub exit_code: fn(&anyhow::Error) -> i32,
}

impl Default for Failure {
    fn default() -> Self {
        Self {
            json: false,
            exit_code: |_| 1,
        }
    }
}

/// [`run_main`] with a say in how a failure is reported. The process exits at once on a
/// failure (tasks still blocked on the network do not hold it), and gives tasks still
/// winding down 5 s after a success.
pub fn run_main_with(
    name: &str,
    failure: Failure,
    work: impl std::future::Future<Output = Result<()>>,
) {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(work) {
        if failure.json {
            println!(
                "{}",
                serde_json::json!({ "type": "error", "message": format!("{e:#}") })
            );
        }
        eprintln!("{name}: {e:#}");
        std::process::exit((failure.exit_code)(&e));
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// Writes 48 kHz mono 16-bit PCM to a WAV file (call input in tests).
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        writer.write_sample(s)?;
    }
    writer.finalize()?;
    Ok(())
}
