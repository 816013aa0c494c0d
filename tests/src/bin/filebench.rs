//! `filebench`: file transfer throughput through a real relay, side by side in one run with
//! a bare quinn stream carrying the same bytes with no Uchat layer, on loopback and through
//! a netsim path (50 ms RTT, 1 % loss, 100 Mbit/s by default).
//!
//! Uchat's figures are end to end, as a user sees them: `send_file` from the first byte
//! read to the relay's "uploaded" (the file's MD5 is computed before, and timed apart),
//! and `download` from the request to the file saved under its name after its MD5 check.
//! The bare stream's figure is one quinn unidirectional stream of the same ciphertext
//! length, with the congestion control Uchat uses (BBR), from open to the receiver having
//! read the last byte; `--cubic-mib` adds one with quinn's default (Cubic) through the
//! netsim path. Bounded by `--time-limit`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::io::AsyncWriteExt;
use uchat_netsim::model::link::LinkConfig;
use uchat_netsim::{PathConfig, Topology};
use uchat_peer::{Client, ClientOptions, FileTarget};
use uchat_relay::{RelayConfig, Server};
use uchat_wire::UserName;
use uchat_wire::msg::file::sealed_file_bytes;

/// File transfer throughput, Uchat against a bare QUIC stream.
#[derive(Parser, Debug)]
#[command(name = "filebench", about)]
struct Args {
    /// File size on loopback, MiB
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// File size through the netsim path, MiB (0 skips it)
    #[arg(long, default_value_t = 256)]
    netsim_size_mib: u64,
    /// The netsim path's round-trip time, ms
    #[arg(long, default_value_t = 50)]
    rtt_ms: u64,
    /// The netsim path's loss in each direction, percent
    #[arg(long, default_value_t = 1.0)]
    loss_pct: f64,
    /// The netsim path's rate in each direction, Mbit/s
    #[arg(long, default_value_t = 100)]
    rate_mbit: u64,
    /// Through the netsim path, also measure a bare stream with quinn's default congestion
    /// control (Cubic), which crawls under random loss: up to this many MiB (0: skip)
    #[arg(long, default_value_t = 0)]
    cubic_mib: u64,
    /// Give up after this many seconds in all
    #[arg(long, default_value_t = 1800)]
    time_limit: u64,
}

const PASSWORD: &str = "filebench password";

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e6
}

/// Writes `len` bytes of cheap pseudo-random data (incompressible enough for a transfer).
async fn make_file(path: &Path, len: u64) -> Result<()> {
    let mut out = tokio::fs::File::create(path).await?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    out.sync_all().await?;
    Ok(())
}

/// A bare quinn server on loopback that reads each unidirectional stream to its end and
/// answers on a bidirectional stream how many bytes it read.
async fn bare_server() -> Result<(quinn::Endpoint, rustls::pki_types::CertificateDer<'static>)> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let config = quinn::ServerConfig::with_single_cert(vec![der.clone()], key)?;
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse()?)?;
    let server = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok(mut recv) = conn.accept_uni().await {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut total = 0u64;
                    while let Ok(Some(n)) = recv.read(&mut buf).await {
                        total += n as u64;
                    }
                    if let Ok(mut send) = conn.open_uni().await {
                        let _ = send.write_all(&total.to_be_bytes()).await;
                        let _ = send.finish();
                    }
                }
            });
        }
    });
    Ok((endpoint, der))
}

/// Sends `len` bytes on one stream to the bare server at `addr`; how long until it read
/// them all.
async fn bare_stream(
    addr: SocketAddr,
    cert: &rustls::pki_types::CertificateDer<'static>,
    len: u64,
    bbr: bool,
) -> Result<Duration> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone())?;
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    let mut config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
    if bbr {
        // What Uchat's relay and peers use.
        let mut transport = quinn::TransportConfig::default();
        transport.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
        config.transport_config(Arc::new(transport));
    }
    client.set_default_client_config(config);
    let conn = client.connect(addr, "localhost")?.await?;
    let started = Instant::now();
    let mut send = conn.open_uni().await?;
    let block = vec![0x5a_u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        send.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    send.finish()?;
    let mut answer = conn.accept_uni().await?;
    let read = answer.read_to_end(8).await?;
    let took = started.elapsed();
    let got = u64::from_be_bytes(read.as_slice().try_into().context("an 8-byte answer")?);
    if got != len {
        bail!("the bare server read {got} of {len} bytes");
    }
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    Ok(took)
}

/// alice and bob, friends, on `relay`.
async fn two_users(dir: &Path, relay: &str, fingerprint: &str) -> Result<(Client, Client)> {
    let options = |name: &str| -> Result<ClientOptions> {
        Ok(ClientOptions {
            home: dir.join(name),
            relay: Some(relay.to_string()),
            relay_fingerprint: Some(fingerprint.parse()?),
        })
    };
    let alice = Client::register(options("alice")?, UserName::parse("alice")?, PASSWORD).await?;
    let bob = Client::register(options("bob")?, UserName::parse("bob")?, PASSWORD).await?;
    alice.social().add_friend(bob.me(), "").await?;
    bob.social().accept_friend(alice.me()).await?;
    Ok((alice, bob))
}

/// Reopens `name`'s profile through `relay` (a netsim path, say).
async fn reopen(dir: &Path, name: &str, relay: &str, fingerprint: &str) -> Result<Client> {
    Ok(Client::open(
        ClientOptions {
            home: dir.join(name),
            relay: Some(relay.to_string()),
            relay_fingerprint: Some(fingerprint.parse()?),
        },
        PASSWORD,
    )
    .await?)
}

/// Times alice's upload to bob and bob's download of a `len`-byte file.
async fn uchat_transfer(
    alice: &Client,
    bob: &Client,
    dir: &Path,
    len: u64,
) -> Result<(Duration, Duration)> {
    let path = dir.join(format!("file-{len}.bin"));
    if !path.exists() {
        make_file(&path, len).await?;
    }
    let quiet = |_: u64, _: u64| {};
    let started = Instant::now();
    let sent = alice
        .files()
        .send(
            &FileTarget::User(bob.me().clone()),
            &path,
            None,
            uchat_peer::Repeat::SendAgain,
            &quiet,
        )
        .await?;
    let upload = started.elapsed();
    // Wait for the message to reach bob's history.
    let deadline = Instant::now() + Duration::from_secs(60);
    while bob.files().local(sent.file.file)?.is_none() {
        if Instant::now() > deadline {
            bail!("bob did not get the file message");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dest = dir.join(format!("dest-{len}"));
    let started = Instant::now();
    let saved = bob.files().download(sent.file.file, &dest, &quiet).await?;
    let download = started.elapsed();
    tokio::fs::remove_file(&saved.path).await?;
    Ok((upload, download))
}

fn report(
    label: &str,
    ciphertext: u64,
    plain: u64,
    upload: Duration,
    download: Duration,
    bare: Duration,
    path_mb_s: Option<f64>,
) {
    let up = mb_per_s(plain, upload);
    let down = mb_per_s(plain, download);
    let bare_mb = mb_per_s(ciphertext, bare);
    let end_to_end = mb_per_s(plain, upload + download) * 2.0;
    println!(
        "{label}: {} MiB file ({} bytes of ciphertext)",
        plain >> 20,
        ciphertext
    );
    println!(
        "  bare quinn stream:        {bare_mb:8.1} MB/s ({:.2} s)",
        bare.as_secs_f64()
    );
    println!(
        "  uchat upload:             {up:8.1} MB/s ({:.2} s) = {:.2} of the bare stream",
        upload.as_secs_f64(),
        up / bare_mb
    );
    println!(
        "  uchat download:           {down:8.1} MB/s ({:.2} s) = {:.2} of the bare stream",
        download.as_secs_f64(),
        down / bare_mb
    );
    println!("  uchat upload+download:    {end_to_end:8.1} MB/s per direction on average");
    if let Some(rate) = path_mb_s {
        println!(
            "  the path's rate:          {rate:8.1} MB/s; bare {:.2}, upload {:.2}, download {:.2} of it",
            bare_mb / rate,
            up / rate,
            down / rate
        );
    }
}

async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch = tempfile::tempdir()?;
    let mut config = RelayConfig::new("127.0.0.1:0".parse()?, scratch.path().join("relay"));
    config.limits.max_file_bytes = u64::MAX;
    config.limits.file_quota_bytes = u64::MAX;
    let server = Server::spawn(config).await?;
    let relay = server.local_addr();
    let fingerprint = server.fingerprint().to_string();
    let (bare, cert) = bare_server().await?;
    let bare_addr = bare.local_addr()?;

    let plain = args.size_mib << 20;
    let sealed = sealed_file_bytes(plain);
    let (alice, bob) = two_users(scratch.path(), &relay.to_string(), &fingerprint).await?;
    let bare_took = bare_stream(bare_addr, &cert, sealed, true).await?;
    let (up, down) = uchat_transfer(&alice, &bob, scratch.path(), plain).await?;
    report("loopback", sealed, plain, up, down, bare_took, None);
    alice.close().await;
    bob.close().await;

    if args.netsim_size_mib > 0 {
        let link = LinkConfig {
            latency: Duration::from_millis(args.rtt_ms / 2),
            loss: args.loss_pct / 100.0,
            rate_bits_per_sec: Some(args.rate_mbit * 1_000_000),
            // A router buffer of one bandwidth-delay product.
            queue_bytes: (args.rate_mbit * 1_000_000 / 8 * args.rtt_ms / 1000) as usize,
            ..LinkConfig::default()
        };
        let path = PathConfig {
            up: link.clone(),
            down: link,
            ..PathConfig::default()
        };
        let mut topology = Topology::new(42);
        let relay_path = topology.path_with(relay, path.clone()).await?;
        let bare_path = topology.path_with(bare_addr, path).await?;
        let alice = reopen(
            scratch.path(),
            "alice",
            &relay_path.to_string(),
            &fingerprint,
        )
        .await?;
        let bob = reopen(scratch.path(), "bob", &relay_path.to_string(), &fingerprint).await?;
        let plain = args.netsim_size_mib << 20;
        let sealed = sealed_file_bytes(plain);
        if args.cubic_mib > 0 {
            let len = sealed_file_bytes(args.cubic_mib << 20);
            let took = bare_stream(bare_path, &cert, len, false).await?;
            println!(
                "netsim path: bare quinn stream with Cubic, {} MiB: {:.2} MB/s ({:.2} s)",
                args.cubic_mib,
                mb_per_s(len, took),
                took.as_secs_f64()
            );
        }
        let bare_took = bare_stream(bare_path, &cert, sealed, true).await?;
        let (up, down) = uchat_transfer(&alice, &bob, scratch.path(), plain).await?;
        let rate = args.rate_mbit as f64 / 8.0;
        report(
            &format!(
                "netsim path ({} ms RTT, {} % loss, {} Mbit/s)",
                args.rtt_ms, args.loss_pct, args.rate_mbit
            ),
            sealed,
            plain,
            up,
            down,
            bare_took,
            Some(rate),
        );
        alice.close().await;
        bob.close().await;
        topology.shutdown().await;
    }
    server.shutdown().await;
    Ok(())
}

fn main() {
    let args = Args::parse();
    let limit = Duration::from_secs(args.time_limit);
    uchat_tests::run_main("filebench", async {
        tokio::time::timeout(limit, run(args))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("not done within --time-limit")))
    });
}
