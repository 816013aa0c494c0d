//! Voice calls through the real relay, driven by the CLI (`call`, `answer`, `reject`,
//! `listen`) with WAV files as the audio, and at library level for what no client sends:
//! forged signalling, and what the relay forwards.

use std::time::{Duration, Instant};
use uchat_wire::request;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use uchat_peer::voice::analysis::{align, speech_like, windowed_correlation};
use uchat_peer::voice::audio::read_wav_mono_48k;
use uchat_tests::{JsonListener, Peer, TestRelay, befriend, register_friends, write_wav};

/// Relay flags for signalling tests: a short ring, the shortest idle timeout.
const QUICK_RELAY: [&str; 4] = ["--ring-timeout-secs", "3", "--idle-timeout-secs", "10"];

/// The `call` line with `state`, if `lines` has one.
fn call_state<'a>(lines: &'a [Value], state: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["type"] == "call" && l["state"] == state)
}

/// Runs `uchat --json ARGS` to its end (bounded) and returns its lines.
fn run_json(peer: &Peer, args: &[&str], limit: Duration) -> Result<Vec<Value>> {
    let process = JsonListener::spawn(peer, args)?;
    let (_, lines) = process
        .finish(limit)
        .with_context(|| format!("uchat {args:?} as {}", peer.name))?;
    Ok(lines)
}

/// Starts `uchat --json answer ARGS` (or `reject`) and waits until it is online.
fn callee(peer: &Peer, args: &[&str]) -> Result<JsonListener> {
    let mut process = JsonListener::spawn(peer, args)?;
    process
        .wait_for(Duration::from_secs(30), |l| {
            l["type"] == "connection" && l["state"] == "connected"
        })
        .with_context(|| format!("{} did not come online", peer.name))?;
    Ok(process)
}

fn ended_reason(lines: &[Value]) -> Option<String> {
    call_state(lines, "ended").and_then(|l| l["reason"].as_str().map(str::to_owned))
}

#[test]
fn a_call_through_the_relay_carries_the_callers_voice_into_the_callees_wav() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let voice = speech_like(6.0, 42);
    write_wav(&input, &voice)?;

    let answering = callee(
        bob,
        &["answer", "--output", output.to_str().context("path")?],
    )?;
    // alice's file ends the call once it has played.
    let alice_lines = run_json(
        alice,
        &["call", "bob", "--input", input.to_str().context("path")?],
        Duration::from_secs(60),
    )?;
    let (_, bob_lines) = answering.finish(Duration::from_secs(30))?;

    for state in ["ringing", "connected", "ended"] {
        assert!(
            call_state(&alice_lines, state).is_some(),
            "{state}: {alice_lines:?}"
        );
    }
    assert!(
        call_state(&bob_lines, "incoming").is_some(),
        "{bob_lines:?}"
    );
    let alice_end = call_state(&alice_lines, "ended").context("alice's end")?;
    let bob_end = call_state(&bob_lines, "ended").context("bob's end")?;
    assert_eq!(alice_end["reason"], "hung_up");
    assert_eq!(alice_end["by"], "me");
    assert_eq!(bob_end["reason"], "hung_up");
    assert_eq!(bob_end["by"], "alice", "{bob_end}");
    assert!(
        alice_lines
            .iter()
            .any(|l| l["type"] == "call_stats" && l["path"] == "relay"),
        "stats every second: {alice_lines:?}"
    );

    let heard = read_wav_mono_48k(&output)?;
    let fit = align(&voice, &heard, 48_000 * 3);
    let summary = &bob_end["summary"];
    let mouth_to_ear = summary["mouth_to_ear_ms"]
        .as_f64()
        .context("bob's summary reports the mouth-to-ear delay")?;
    eprintln!(
        "correlation {:.3} at a lag of {} ms into bob's recording; mouth-to-ear {mouth_to_ear:.1} ms; bob's summary {summary}",
        fit.correlation,
        fit.lag / 48
    );
    assert!(fit.correlation >= 0.8, "{fit:?}");
    assert!(
        (20.0..1000.0).contains(&mouth_to_ear),
        "a plausible pipeline delay on loopback: {mouth_to_ear} ms"
    );
    assert!(
        summary["frames_received"].as_u64().unwrap_or(0) >= 250,
        "{summary}"
    );
    Ok(())
}

#[test]
fn the_callee_rejects_or_the_caller_cancels_and_a_missed_call_is_left() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);

    // Rejected.
    let rejecting = callee(bob, &["reject"])?;
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("rejected"),
        "{lines:?}"
    );
    assert!(call_state(&lines, "connected").is_none());
    let (_, bob_lines) = rejecting.finish(Duration::from_secs(10))?;
    assert!(
        call_state(&bob_lines, "rejected").is_some(),
        "{bob_lines:?}"
    );

    // Cancelled before an answer: bob's listener hears it ring, end, and be missed.
    let mut listening = JsonListener::start(bob, 30)?;
    let lines = run_json(
        alice,
        &["call", "bob", "--ring", "1"],
        Duration::from_secs(30),
    )?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("cancelled"),
        "{lines:?}"
    );
    for (state, reason) in [
        ("incoming", None),
        ("ended", Some("cancelled")),
        ("missed", Some("cancelled")),
    ] {
        listening
            .wait_for(Duration::from_secs(10), |l| {
                l["type"] == "call"
                    && l["state"] == state
                    && reason.is_none_or(|r| l["reason"] == r)
            })
            .with_context(|| format!("bob hears {state}: {:?}", listening.lines()))?;
    }
    Ok(())
}

#[test]
fn nobody_answering_times_out_and_an_offline_callee_is_told_at_once() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);

    // bob is offline: alice hears so at once, and bob finds a missed call later.
    let started = Instant::now();
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("offline"),
        "{lines:?}"
    );
    assert!(call_state(&lines, "ringing").is_none());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // bob listens but does not answer: the relay's 3 s ring timeout ends it for both.
    let mut listening = JsonListener::start(bob, 40)?;
    listening
        .wait_for(Duration::from_secs(10), |l| {
            l["type"] == "call" && l["state"] == "missed" && l["reason"] == "offline"
        })
        .with_context(|| format!("the offline call was missed: {:?}", listening.lines()))?;
    let started = Instant::now();
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(30))?;
    let rang_for = started.elapsed();
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("timeout"),
        "{lines:?}"
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(12)).contains(&rang_for),
        "{rang_for:?}"
    );
    for state in ["ended", "missed"] {
        listening
            .wait_for(Duration::from_secs(10), |l| {
                l["type"] == "call" && l["state"] == state && l["reason"] == "timeout"
            })
            .with_context(|| format!("bob hears {state}: {:?}", listening.lines()))?;
    }
    Ok(())
}

#[test]
fn a_callee_in_a_call_is_busy_and_the_callee_may_hang_up_first() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);

    // bob takes carol's call and hangs up after 4 s; carol waits for him to. Neither has
    // a sound card (carol's ALSA finds no configuration at all): both talk with silence.
    let answering = callee(bob, &["answer", "--for", "4"])?;
    let mut calling = JsonListener::spawn_with_env(
        carol,
        &["call", "bob"],
        &[("ALSA_CONFIG_PATH", "/nonexistent/alsa.conf")],
    )?;
    calling
        .wait_for(Duration::from_secs(20), |l| {
            l["type"] == "call" && l["state"] == "connected"
        })
        .with_context(|| format!("carol connects: {:?}", calling.lines()))?;
    let lines = run_json(alice, &["call", "bob"], Duration::from_secs(20))?;
    assert_eq!(ended_reason(&lines).as_deref(), Some("busy"), "{lines:?}");

    let (_, carol_lines) = calling.finish(Duration::from_secs(30))?;
    for direction in ["input", "output"] {
        assert!(
            carol_lines
                .iter()
                .any(|l| l["type"] == "audio" && l["direction"] == direction),
            "carol is told she has no sound {direction}: {carol_lines:?}"
        );
    }
    let end = call_state(&carol_lines, "ended").context("carol's end")?;
    assert_eq!(end["reason"], "hung_up");
    assert_eq!(end["by"], "bob", "{end}");
    let (_, bob_lines) = answering.finish(Duration::from_secs(10))?;
    assert_eq!(
        call_state(&bob_lines, "ended").context("bob's end")?["by"],
        "me"
    );
    Ok(())
}

#[test]
fn a_peer_whose_connection_dies_mid_call_ends_the_call_for_the_other_side() -> Result<()> {
    let relay = TestRelay::start_with(&QUICK_RELAY)?;
    let peers = register_friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let mut answering = callee(bob, &["answer"])?;
    let mut calling = JsonListener::spawn(alice, &["call", "bob"])?;
    calling
        .wait_for(Duration::from_secs(20), |l| {
            l["type"] == "call_stats" && l["frames_received"].as_u64().unwrap_or(0) > 0
        })
        .with_context(|| format!("the call is under way: {:?}", calling.lines()))?;
    answering.child().kill()?;
    let killed = Instant::now();
    let (ended, lines) = calling.finish(Duration::from_secs(30))?;
    let took = ended.duration_since(killed);
    assert_eq!(
        ended_reason(&lines).as_deref(),
        Some("connection_lost"),
        "{lines:?}"
    );
    // Within the idle timeout (10 s) and the time to notice.
    assert!(
        took < Duration::from_secs(13),
        "ended {took:?} after the kill"
    );
    Ok(())
}

#[test]
fn a_lossy_jittery_path_keeps_the_call_intelligible_with_fec() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let relay = TestRelay::start()?;
    let relay_addr: std::net::SocketAddr = relay.addr.parse()?;
    let mut net = uchat_netsim::Topology::new(7);
    let link = uchat_netsim::model::link::LinkConfig {
        latency: Duration::from_millis(40),
        jitter: Duration::from_millis(30),
        loss: 0.10,
        ..Default::default()
    };
    let path = runtime.block_on(net.path_with(
        relay_addr,
        uchat_netsim::proxy::PathConfig {
            up: link.clone(),
            down: link,
            ..Default::default()
        },
    ))?;
    let alice = Peer::via(&path.to_string(), "alice")?;
    let bob = Peer::new(&relay, "bob")?;
    let pin = ["--relay-fingerprint", relay.fingerprint.as_str()];
    alice.ok(&[&pin[..], &["register", "alice"]].concat())?;
    bob.ok(&["register", "bob"])?;
    befriend(&alice, &bob)?;

    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let voice = speech_like(8.0, 9);
    write_wav(&input, &voice)?;
    let answering = callee(
        &bob,
        &["answer", "--output", output.to_str().context("path")?],
    )?;
    let alice_lines = run_json(
        &alice,
        &["call", "bob", "--input", input.to_str().context("path")?],
        Duration::from_secs(90),
    )?;
    let (_, bob_lines) = answering.finish(Duration::from_secs(30))?;
    assert_eq!(
        ended_reason(&alice_lines).as_deref(),
        Some("hung_up"),
        "{alice_lines:?}"
    );
    let summary = &call_state(&bob_lines, "ended").context("bob's end")?["summary"];
    let heard = read_wav_mono_48k(&output)?;
    let fit = align(&voice, &heard, 48_000 * 3);
    let windowed = windowed_correlation(&voice, &heard, fit.lag, 48_000 / 2, 48 * 120);
    eprintln!(
        "10 % loss, 30 ms jitter: correlation {:.3} overall, {windowed:.3} in half-second windows; bob's summary {summary}",
        fit.correlation
    );
    let (loss, recovered) = (
        summary["loss"].as_f64().unwrap_or(0.0),
        summary["fec_recovered"].as_u64().unwrap_or(0),
    );
    assert!(loss > 0.03, "the path lost voice: {summary}");
    assert!(recovered >= 10, "FEC rebuilt lost frames: {summary}");
    assert!(windowed >= 0.6, "intelligible: {windowed:.3}");
    if fit.correlation < 0.6 {
        bail!(
            "the whole recording correlates {:.3} with the input",
            fit.correlation
        );
    }
    runtime.block_on(net.shutdown());
    Ok(())
}

/// A link that keeps a copy of every datagram that arrives: what the relay forwarded.
fn tapped(
    link: uchat_peer::voice::engine::DatagramLink,
    captured: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) -> uchat_peer::voice::engine::DatagramLink {
    let uchat_peer::voice::engine::DatagramLink { send, mut receive } = link;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(datagram) = receive.recv().await {
            captured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(datagram.clone());
            if tx.send(datagram).await.is_err() {
                break;
            }
        }
    });
    uchat_peer::voice::engine::DatagramLink { send, receive: rx }
}

async fn open_client(peer: &Peer) -> Result<uchat_peer::Client> {
    Ok(uchat_peer::Client::open(
        uchat_peer::ClientOptions {
            home: peer.home().to_path_buf(),
            relay: None,
            relay_fingerprint: None,
        },
        uchat_tests::PASSWORD,
    )
    .await?)
}

/// Tries Opus on every plausible start of each datagram's body (after the routing
/// header, after the sequence number, after the inner packet header) and returns what
/// decoded, and how many bodies decoded at all.
fn decode_as_opus(datagrams: &[Vec<u8>]) -> (Vec<i16>, usize) {
    use uchat_peer::voice::codec::{FRAME_SAMPLES, VoiceDecoder};
    let mut pcm = Vec::new();
    let mut decoded = 0;
    for offset in [4usize, 8, 17] {
        let Ok(mut decoder) = VoiceDecoder::new() else {
            continue;
        };
        for datagram in datagrams {
            let mut frame = vec![0i16; FRAME_SAMPLES];
            if let Some(body) = datagram.get(offset..)
                && decoder.decode(body, &mut frame).is_ok()
            {
                decoded += 1;
            }
            pcm.extend_from_slice(&frame);
        }
    }
    (pcm, decoded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signalling_is_refused_and_ignored_and_the_relay_forwards_only_ciphertext()
-> Result<()> {
    use std::sync::{Arc, Mutex};
    use uchat_peer::voice::audio::{PcmInput, PcmOutput, Silence};
    use uchat_peer::{CallProgress, ClientEvent, Placed, TalkOptions};
    use uchat_wire::{CallId, ErrorCode, Reply, Request};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = TestRelay::start()?;
    let peers = tokio::task::spawn_blocking({
        let relay_addr = relay.addr.clone();
        move || -> Result<Vec<Peer>> {
            let peers = ["alice", "bob", "mallory"]
                .iter()
                .map(|n| {
                    let p = Peer::via(&relay_addr, n)?;
                    p.ok(&["register", n])?;
                    Ok(p)
                })
                .collect::<Result<Vec<_>>>()?;
            befriend(&peers[0], &peers[1])?;
            befriend(&peers[2], &peers[1])?;
            befriend(&peers[2], &peers[0])?;
            Ok(peers)
        }
    })
    .await??;
    let alice = open_client(&peers[0]).await?;
    let bob = open_client(&peers[1]).await?;
    let mut alice_events = alice.subscribe();
    let mut bob_events = bob.subscribe();
    let mallory = uchat_tests::raw_login(&relay, "mallory").await?;

    let Placed::Ringing(placed) = alice.calls().place(bob.me()).await? else {
        bail!("bob is online: the call should ring");
    };
    let incoming = bob
        .calls()
        .wait_for_call(None, Duration::from_secs(10))
        .await?
        .context("the call rings for bob")?;
    assert_eq!(&incoming.from, alice.me());

    // mallory, a friend of both, answers, rejects and hangs up alice's call to bob, and
    // answers a call that never was: the relay refuses each.
    let call = placed.call;
    for request in [
        Request::CallAnswer(request::CallAnswer {
            call,
            answer: b"forged answer".to_vec(),
        }),
        Request::CallReject(request::CallReject { call }),
        Request::CallHangup(request::CallHangup { call }),
        Request::CallAnswer(request::CallAnswer {
            call: CallId([9; 16]),
            answer: b"forged answer".to_vec(),
        }),
        Request::CallHangup(request::CallHangup {
            call: CallId([9; 16]),
        }),
    ] {
        assert_eq!(
            uchat_tests::refused(mallory.request(&request).await).code,
            ErrorCode::NoSuchCall,
            "{request:?}"
        );
    }
    // alice's call still rings: nothing reached her.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(event) = alice_events.try_recv() {
        assert!(
            !matches!(
                event,
                ClientEvent::CallAccepted { .. } | ClientEvent::CallEnded { .. }
            ),
            "{event:?}"
        );
    }

    // bob answers for real; alice speaks for 3 s, and bob's link keeps what the relay
    // forwarded to him. mallory's hang-up mid-call is refused and changes nothing.
    let bob_call = bob.calls().answer(&incoming).await?;
    let CallProgress::Connected(alice_call) = alice.calls().wait_for_answer(&placed, None).await?
    else {
        bail!("alice's call should connect");
    };
    let voice = speech_like(3.0, 5);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let bob_link = tapped(bob.calls().datagram_link()?, captured.clone());
    let heard = PcmOutput::default();
    let alice_talks = alice.calls().talk(
        *alice_call,
        Box::new(PcmInput::new(voice.clone())),
        Box::new(Silence),
        TalkOptions {
            duration: Some(Duration::from_secs(4)),
            ..TalkOptions::default()
        },
        |_| {},
    );
    let bob_talks = bob.calls().talk_over(
        bob_call,
        bob_link,
        Box::new(Silence),
        Box::new(heard.clone()),
        TalkOptions::default(),
        |_| {},
    );
    let forger = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        uchat_tests::refused(
            mallory
                .request(&Request::CallHangup(request::CallHangup { call }))
                .await,
        )
        .code
    };
    let (alice_end, bob_end, forged) = tokio::join!(alice_talks, bob_talks, forger);
    let (alice_end, bob_end) = (alice_end?, bob_end?);
    assert_eq!(forged, ErrorCode::NoSuchCall);
    assert!(
        alice_end.by_me && !bob_end.by_me,
        "{alice_end:?} {bob_end:?}"
    );
    assert!(
        bob_end.summary.duration_s > 3.5,
        "mallory did not end it: {bob_end:?}"
    );

    // Control: bob's engine, with the call key, heard alice.
    let fit = align(&voice, &heard.samples(), 48_000 * 2);
    assert!(fit.correlation >= 0.8, "{fit:?}");
    // What the relay forwarded does not decode as Opus into anything like her voice.
    let captured = captured
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(captured.len() > 150, "{} datagrams", captured.len());
    let (garbage, decoded) = decode_as_opus(&captured);
    let leaked = align(&voice, &garbage, 48_000 * 2);
    eprintln!(
        "{} forwarded datagrams; {decoded} of {} decode attempts passed as Opus; their correlation with the voice {:.3}",
        captured.len(),
        captured.len() * 3,
        leaked.correlation
    );
    assert!(leaked.correlation.abs() < 0.2, "{leaked:?}");

    // mallory rings bob with an offer that is no Olm message: bob's client refuses it
    // (and rejects the call), so nothing rings and nothing can be answered.
    let forged_call = CallId([7; 16]);
    let reply = mallory
        .request(&Request::CallInvite(request::CallInvite {
            call: forged_call,
            to: bob.me().clone(),
            offer: b"not an olm message".to_vec(),
        }))
        .await?;
    assert!(matches!(reply, Reply::CallRinging(_)), "{reply:?}");
    assert_eq!(
        bob.calls()
            .wait_for_call(None, Duration::from_secs(2))
            .await?,
        None
    );
    let mut ignored = false;
    while let Ok(event) = bob_events.try_recv() {
        if let ClientEvent::CallSignalIgnored { call, .. } = &event {
            ignored |= *call == forged_call;
        }
        assert!(
            !matches!(&event, ClientEvent::CallIncoming { call, .. } if *call == forged_call),
            "{event:?}"
        );
    }
    assert!(ignored, "bob's client says it ignored the forged offer");
    alice.close().await;
    bob.close().await;
    Ok(())
}
