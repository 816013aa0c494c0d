//! The bad-input catalogue: every kind of `uchat_wire::Request` sent truncated, oversized,
//! with fields of the wrong type, out of order and before login, and frames nested deeper
//! than any decoder should follow. Each must get a clear error on its own stream (a
//! `Response::Error` with the right code and a message, never a closed connection), and
//! the relay must go on serving everyone else: after every batch alice and bob, friends on
//! connections of their own, exchange a message both ways through it, and the relay
//! process is still running at the end.
//!
//! The kinds come from `one_request_of_each_kind`, which the authorization matrix
//! (`authz`) checks against `Request::kind`, so a new kind joins this catalogue too. Which
//! requests each user may make is the matrix's business, not this file's.

use std::time::Duration;
use uchat_wire::request;

use anyhow::{Context, Result, bail};
use uchat_peer::connection::{ConnectionError, EventStream, RelayLink};
use uchat_tests::{
    TestRelay, one_request_of_each_kind, raw_connect, raw_hello, raw_login, raw_register,
};
use uchat_wire::{ErrorCode, MessageId, PushEvent, Reply, Request, UserName};

/// Request frames are limited to 64 KiB before login (relay/src/server/connection.rs).
const PRELOGIN_LIMIT_BYTES: usize = 64 * 1024;
/// And to 1 MiB after (`uchat_wire::frame::MAX_CONTROL_FRAME_BYTES`).
const LOGGED_IN_LIMIT_BYTES: usize = 1 << 20;

/// alice and bob, friends, each on a connection of their own with its event stream: the
/// users whose service bad input must not cost.
struct Bystanders {
    alice: RelayLink,
    bob: RelayLink,
    alice_events: EventStream,
    bob_events: EventStream,
    round: u32,
}

impl Bystanders {
    /// Registers alice and bob and makes them friends.
    async fn start(relay: &TestRelay) -> Result<Self> {
        let (alice, _) = raw_register(relay, "alice").await?;
        let (bob, _) = raw_register(relay, "bob").await?;
        alice
            .request(&Request::FriendRequest(request::FriendRequest {
                to: user("bob"),
                note: "hi".into(),
            }))
            .await?;
        bob.request(&Request::AcceptFriend(request::AcceptFriend {
            from: user("alice"),
        }))
        .await?;
        Self::listening(alice, bob).await
    }

    /// alice and bob logged in again (after the relay restarted).
    async fn log_in_again(relay: &TestRelay) -> Result<Self> {
        let alice = raw_login(relay, "alice").await?;
        let bob = raw_login(relay, "bob").await?;
        Self::listening(alice, bob).await
    }

    async fn listening(alice: RelayLink, bob: RelayLink) -> Result<Self> {
        let alice_events = alice.accept_events().await?;
        let bob_events = bob.accept_events().await?;
        Ok(Self {
            alice,
            bob,
            alice_events,
            bob_events,
            round: 0,
        })
    }

    /// The relay is running, and alice and bob each send the other a message that
    /// arrives.
    async fn still_served(&mut self, relay: &mut TestRelay, after: &str) -> Result<()> {
        if !relay.is_running() {
            bail!(
                "THE RELAY DIED after {after}; its log ends:\n{}",
                log_tail(relay)
            );
        }
        self.round += 1;
        let id = |direction: u8| {
            let mut id = [direction; 16];
            id[..4].copy_from_slice(&self.round.to_be_bytes());
            MessageId(id)
        };
        let (to_bob, to_alice) = (id(0xab), id(0xba));
        let round = [
            (&self.alice, &mut self.bob_events, "bob", "alice", to_bob),
            (&self.bob, &mut self.alice_events, "alice", "bob", to_alice),
        ];
        for (sender, events, to, from, id) in round {
            let reply = sender
                .request(&Request::Send(request::Send {
                    to: user(to),
                    id,
                    ciphertext: format!("still here after {after}").into_bytes(),
                }))
                .await
                .with_context(|| format!("{from} sending to {to} after {after}"))?;
            anyhow::ensure!(
                matches!(reply, Reply::Sent(_)),
                "{from}'s message after {after} got {reply:?}"
            );
            receive(events, from, id)
                .await
                .with_context(|| format!("{to} receiving {from}'s message after {after}"))?;
        }
        Ok(())
    }
}

/// Waits (bounded) for the message `id` from `from` on `events`.
async fn receive(events: &mut EventStream, from: &str, id: MessageId) -> Result<()> {
    let wait = async {
        while let Some(push) = events.next().await? {
            if let PushEvent::Message { from: f, id: i, .. } = &push.event
                && f.as_str() == from
                && *i == id
            {
                return Ok(());
            }
        }
        bail!("the event stream ended")
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .context("no message within 10 s")?
}

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("the test's names are valid")
}

/// The last lines the relay printed.
fn log_tail(relay: &TestRelay) -> String {
    let log = relay.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(4)..].join("\n")
}

/// The variant's name, for messages.
fn name_of(request: &Request) -> String {
    format!("{request:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A MessagePack string (fixstr or str8: the test's strings are short).
fn msgpack_str(s: &str) -> Vec<u8> {
    let len = u8::try_from(s.len()).expect("a short string");
    let mut out = if len < 32 {
        vec![0xa0 | len]
    } else {
        vec![0xd9, len]
    };
    out.extend_from_slice(s.as_bytes());
    out
}

/// The frame body (MessagePack, named fields) of `request`; the `Unknown` kind is sent as
/// a newer peer would send a kind this relay does not know.
fn body_of(request: &Request) -> Vec<u8> {
    if *request == Request::Unknown {
        let mut body = vec![0x82];
        for part in ["type", "Teleport", "body"] {
            body.extend(msgpack_str(part));
        }
        body.push(0x81);
        body.extend(msgpack_str("to"));
        body.extend(msgpack_str("mars"));
        return body;
    }
    rmp_serde::to_vec_named(request).expect("a request encodes")
}

/// A frame: the 4-byte length, then `body`.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .expect("test bodies are small")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// `body` (a MessagePack map of at most 14 entries) with one more entry, `key` → the
/// encoded `value`: a field the relay does not know.
fn with_field(body: &[u8], key: &str, value: &[u8]) -> Vec<u8> {
    assert!(
        (0x80..0x8f).contains(&body[0]),
        "a small map, not {:#x}",
        body[0]
    );
    let mut out = vec![body[0] + 1];
    out.extend_from_slice(&body[1..]);
    out.extend(msgpack_str(key));
    out.extend_from_slice(value);
    out
}

/// `body` grown to exactly `len` bytes by a `pad` field of binary zeros: still a valid
/// request, only larger.
fn padded_to(body: &[u8], len: usize) -> Vec<u8> {
    let overhead = 1 + 3 + 5; // "pad" as a fixstr, a bin32 header
    let zeros = len - body.len() - overhead;
    let mut value = vec![0xc6];
    value.extend_from_slice(&u32::try_from(zeros).expect("small").to_be_bytes());
    value.resize(value.len() + zeros, 0);
    let out = with_field(body, "pad", &value);
    assert_eq!(out.len(), len);
    out
}

fn describe(got: &Result<Reply, ConnectionError>) -> String {
    let text = match got {
        Ok(reply) => format!("Ok({reply:?})"),
        Err(ConnectionError::Refused(e)) => format!("{:?} ({:?})", e.code, e.message),
        Err(e) => format!("no answer: {e}"),
    };
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

/// Collects what went wrong, case by case.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// `got` must be a refusal with `code` and a message, and `link` still open.
    fn refused(
        &mut self,
        case: &str,
        link: &RelayLink,
        got: &Result<Reply, ConnectionError>,
        code: ErrorCode,
    ) {
        match got {
            Err(ConnectionError::Refused(e)) if e.code == code && !e.message.trim().is_empty() => {}
            other => self.0.push(format!(
                "{case}: expected {code:?}, got {}",
                describe(other)
            )),
        }
        self.still_open(case, link);
    }

    /// `got` must be an answer `check` accepts.
    fn answered(
        &mut self,
        case: &str,
        link: &RelayLink,
        got: &Result<Reply, ConnectionError>,
        check: impl Fn(&Reply) -> bool,
    ) {
        if !matches!(got, Ok(reply) if check(reply)) {
            self.0
                .push(format!("{case}: expected Ok, got {}", describe(got)));
        }
        self.still_open(case, link);
    }

    fn still_open(&mut self, case: &str, link: &RelayLink) {
        if let Some(reason) = link.quic().close_reason() {
            self.0
                .push(format!("{case}: the relay closed the connection: {reason}"));
        }
    }
}

/// A connection logged in as `name`, opened again if the last case closed it.
async fn logged_in(relay: &TestRelay, link: &mut RelayLink, name: &str) -> Result<()> {
    if link.quic().close_reason().is_some() {
        *link = raw_login(relay, name).await?;
    }
    Ok(())
}

/// A connection that said Hello only, opened again if the last case closed it (or logged
/// it in).
async fn hello_only(relay: &TestRelay, link: &mut RelayLink) -> Result<()> {
    let logged_in = link.request(&Request::KeyCount).await.is_ok();
    if logged_in || link.quic().close_reason().is_some() {
        *link = raw_hello(relay).await?;
    }
    Ok(())
}

/// The same request with one part of its MessagePack replaced by a value of another type:
/// (what was changed, the body).
/// A request's JSON form, written back as MessagePack the way the wire writes it: arrays of
/// byte-sized numbers (bytes in the JSON form) as `bin`, the rest as they are.
struct AsWire<'a>(&'a serde_json::Value);

impl serde::Serialize for AsWire<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        use serde_json::Value;
        match self.0 {
            Value::Array(items)
                if !items.is_empty()
                    && items.iter().all(|n| n.as_u64().is_some_and(|n| n < 256)) =>
            {
                let bytes: Vec<u8> = items
                    .iter()
                    .filter_map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect();
                serializer.serialize_bytes(&bytes)
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&AsWire(item))?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, &AsWire(value))?;
                }
                map.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// [`AsWire`] encoded.
fn wire_bytes(value: &serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&AsWire(value)).expect("JSON encodes")
}

fn wrong_types(request: &Request) -> Vec<(String, Vec<u8>)> {
    use serde_json::{Value, json};
    let encode = wire_bytes;
    let original = if *request == Request::Unknown {
        json!({"type": "Teleport", "body": {"to": "mars"}})
    } else {
        serde_json::to_value(request).expect("a request is JSON")
    };
    let mut cases = Vec::new();
    let mut tag = original.clone();
    tag["type"] = json!({"a": "map where the kind's name is"});
    cases.push(("the kind as a map".to_string(), encode(&tag)));
    // An unknown kind's body is skipped whatever it holds: only its name can be wrong.
    let Some(fields) = original.get("body").and_then(Value::as_object) else {
        return cases;
    };
    if *request == Request::Unknown {
        return cases;
    }
    let mut body = original.clone();
    body["body"] = json!("a string where the fields are");
    cases.push(("the body as a string".to_string(), encode(&body)));
    for (field, value) in fields {
        let wrong = match value {
            Value::String(_) => json!({"a": "map where a string is"}),
            Value::Number(_) => json!("a string where a number is"),
            Value::Bool(_) => json!("a string where a boolean is"),
            Value::Array(_) => json!({"a": "map where an array is"}),
            Value::Object(_) => json!("a string where a structure is"),
            Value::Null => json!({"a": "map where nothing is"}),
        };
        let mut changed = original.clone();
        changed["body"][field] = wrong.clone();
        cases.push((format!("{field} as {wrong}"), encode(&changed)));
        // Bytes travel as arrays of small numbers in the JSON form.
        let is_bytes = value.as_array().is_some_and(|a| {
            !a.is_empty() && a.iter().all(|n| n.as_u64().is_some_and(|n| n < 256))
        });
        if is_bytes {
            let mut changed = original.clone();
            changed["body"][field] = json!("a string where bytes are");
            cases.push((format!("{field} as a string"), encode(&changed)));
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_request_gets_a_clear_error_and_the_relay_keeps_serving() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut relay = tokio::task::spawn_blocking(TestRelay::start_for_many_users).await??;
    let mut bystanders = Bystanders::start(&relay).await?;
    let (mut tess, _) = raw_register(&relay, "tess").await?;
    let mut findings = Findings::default();
    let samples = one_request_of_each_kind();

    // (a) Truncated: the header promises more than the stream holds.
    for request in &samples {
        logged_in(&relay, &mut tess, "tess").await?;
        let frame = framed(&body_of(request));
        let half = &frame[..4 + (frame.len() - 4) / 2];
        let got = tess.request_raw(half).await;
        let case = format!("{} truncated to half its body", name_of(request));
        findings.refused(&case, &tess, &got, ErrorCode::Malformed);
    }
    let got = tess.request_raw(&[0, 0]).await;
    findings.refused(
        "a frame cut inside its header",
        &tess,
        &got,
        ErrorCode::Malformed,
    );
    bystanders
        .still_served(&mut relay, "truncated frames")
        .await?;

    // (b) Oversized: a header one byte over the limit, before and after login, refused as
    // soon as it arrives. The positive controls show the padding alone is no fault.
    let mut stranger = raw_hello(&relay).await?;
    let just_under = padded_to(&body_of(&samples[0]), PRELOGIN_LIMIT_BYTES);
    let got = stranger.request_raw(&framed(&just_under)).await;
    findings.answered(
        "Hello of exactly 64 KiB before login",
        &stranger,
        &got,
        |r| matches!(r, Reply::Welcome(_)),
    );
    for request in &samples {
        hello_only(&relay, &mut stranger).await?;
        let body = padded_to(&body_of(request), PRELOGIN_LIMIT_BYTES + 1);
        let got = stranger.request_raw(&framed(&body)).await;
        let case = format!("{} of 64 KiB + 1 before login", name_of(request));
        findings.refused(&case, &stranger, &got, ErrorCode::FrameTooLarge);
    }
    let key_count = body_of(&Request::KeyCount);
    let got = tess
        .request_raw(&framed(&padded_to(&key_count, PRELOGIN_LIMIT_BYTES + 1)))
        .await;
    findings.answered("KeyCount of 64 KiB + 1 after login", &tess, &got, |r| {
        matches!(r, Reply::KeyCount(_))
    });
    for request in &samples {
        logged_in(&relay, &mut tess, "tess").await?;
        let body = padded_to(&body_of(request), LOGGED_IN_LIMIT_BYTES + 1);
        let got = tess.request_raw(&framed(&body)).await;
        let case = format!("{} of 1 MiB + 1 after login", name_of(request));
        findings.refused(&case, &tess, &got, ErrorCode::FrameTooLarge);
    }
    bystanders
        .still_served(&mut relay, "oversized frames")
        .await?;

    // (c) Wrong types: valid MessagePack of the right shape with one part of another
    // type. First, the same re-encoding without a change is understood (bytes written back
    // as bytes), so what is refused below is the change.
    let presence = Request::Presence(request::Presence {
        users: vec![user("alice")],
    });
    let json = serde_json::to_value(&presence)?;
    let got = tess.request_raw(&framed(&wire_bytes(&json))).await;
    findings.answered(
        "Presence re-encoded from JSON unchanged",
        &tess,
        &got,
        |r| matches!(r, Reply::Presence(_)),
    );
    let group_info = Request::GroupInfo(request::GroupInfo {
        group: uchat_wire::GroupId([1; 16]),
    });
    let json = serde_json::to_value(&group_info)?;
    let got = tess.request_raw(&framed(&wire_bytes(&json))).await;
    findings.refused(
        "GroupInfo re-encoded from JSON unchanged (its id written back as bytes)",
        &tess,
        &got,
        ErrorCode::NoSuchGroup,
    );
    for request in &samples {
        for (change, body) in wrong_types(request) {
            logged_in(&relay, &mut tess, "tess").await?;
            let got = tess.request_raw(&framed(&body)).await;
            let case = format!("{} with {change}", name_of(request));
            findings.refused(&case, &tess, &got, ErrorCode::Malformed);
        }
    }
    bystanders.still_served(&mut relay, "wrong types").await?;

    // (d) Out of order. Anything before Hello…
    let early = raw_connect(&relay).await?;
    for request in samples.iter().filter(|r| !matches!(r, Request::Hello(_))) {
        let got = early.request_raw(&framed(&body_of(request))).await;
        let case = format!("{} before Hello", name_of(request));
        findings.refused(&case, &early, &got, ErrorCode::ProtocolViolation);
    }
    let got = bystanders
        .alice
        .request(&Request::Identity(request::Identity {
            user: user("someone"),
        }))
        .await;
    findings.refused(
        "the account a Register before Hello named",
        &bystanders.alice,
        &got,
        ErrorCode::UnknownUser,
    );
    let got = early.request(&samples[0]).await;
    findings.answered("Hello after all that", &early, &got, |r| {
        matches!(r, Reply::Welcome(_))
    });
    let got = early.request(&Request::KeyCount).await;
    findings.refused(
        "KeyCount after Hello (a Login before Hello logged nobody in)",
        &early,
        &got,
        ErrorCode::NotAuthenticated,
    );
    // …logging in twice on one connection, in every combination…
    let (twice, token) = raw_register(&relay, "twice").await?;
    let again = |name: &str| {
        Request::Register(request::Register {
            username: user(name),
            password: uchat_wire::Password::new(uchat_tests::PASSWORD),
            identity: uchat_wire::IdentityKeys {
                curve25519: vec![1; 32],
                ed25519: vec![2; 32],
            },
            one_time_keys: Vec::new(),
            fallback_key: None,
        })
    };
    let login = |name: &str| {
        Request::Login(request::Login {
            username: user(name),
            password: uchat_wire::Password::new(uchat_tests::PASSWORD),
        })
    };
    let logged_twice = [
        ("Register after Register", again("second")),
        ("Login as oneself after Register", login("twice")),
        ("Login as another after Register", login("tess")),
        (
            "Resume after Register",
            Request::Resume(request::Resume {
                username: user("twice"),
                token: token.clone(),
            }),
        ),
    ];
    for (case, request) in &logged_twice {
        let got = twice.request(request).await;
        findings.refused(case, &twice, &got, ErrorCode::ProtocolViolation);
    }
    let got = bystanders
        .alice
        .request(&Request::Identity(request::Identity {
            user: user("second"),
        }))
        .await;
    findings.refused(
        "the account a refused second Register named",
        &bystanders.alice,
        &got,
        ErrorCode::UnknownUser,
    );
    let once = raw_login(&relay, "twice").await?;
    for (case, request) in [
        ("Login after Login", login("twice")),
        ("Register after Login", again("third")),
        (
            "Resume after Login",
            Request::Resume(request::Resume {
                username: user("twice"),
                token,
            }),
        ),
    ] {
        let got = once.request(&request).await;
        findings.refused(case, &once, &got, ErrorCode::ProtocolViolation);
    }
    // …and anything that needs a login after Logout.
    let gone = raw_login(&relay, "tess").await?;
    let got = gone.request(&Request::Logout).await;
    findings.answered("Logout", &gone, &got, |r| *r == Reply::Done);
    for request in &samples {
        let code = match request {
            Request::Hello(_) | Request::Register(_) | Request::Login(_) | Request::Resume(_) => {
                continue;
            }
            Request::Unknown => ErrorCode::ProtocolViolation,
            _ => ErrorCode::NotAuthenticated,
        };
        let got = gone.request_raw(&framed(&body_of(request))).await;
        let case = format!("{} after Logout", name_of(request));
        findings.refused(&case, &gone, &got, code);
    }
    bystanders
        .still_served(&mut relay, "requests out of order")
        .await?;

    // (e) Before login, on a connection that said Hello. Register, Login and Resume are
    // how one logs in (the matrix's logged-out column tries them).
    let mut anonymous = raw_hello(&relay).await?;
    for request in &samples {
        let code = match request {
            Request::Register(_) | Request::Login(_) | Request::Resume(_) => continue,
            Request::Hello(_) => None,
            Request::Unknown => Some(ErrorCode::ProtocolViolation),
            _ => Some(ErrorCode::NotAuthenticated),
        };
        hello_only(&relay, &mut anonymous).await?;
        let got = anonymous.request_raw(&framed(&body_of(request))).await;
        let case = format!("{} before login", name_of(request));
        match code {
            Some(code) => findings.refused(&case, &anonymous, &got, code),
            None => findings.answered(&case, &anonymous, &got, |r| matches!(r, Reply::Welcome(_))),
        }
    }
    bystanders
        .still_served(&mut relay, "requests before login")
        .await?;

    assert!(
        relay.is_running(),
        "the relay died; log:\n{}",
        log_tail(&relay)
    );
    assert!(
        findings.0.is_empty(),
        "{} bad inputs were not refused cleanly:\n{}",
        findings.0.len(),
        findings.0.join("\n")
    );
    Ok(())
}

/// `depth` nested one-element arrays around a nil.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut out = vec![0x91; depth];
    out.push(0xc0);
    out
}

/// `depth` nested one-entry maps (key "k") around a nil.
fn nested_maps(depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(depth * 3 + 1);
    for _ in 0..depth {
        out.extend_from_slice(&[0x81, 0xa1, b'k']);
    }
    out.push(0xc0);
    out
}

/// The answer to `frame` on `link`, or an error as soon as the relay process is gone (a
/// dead relay does not close its connections; waiting for QUIC to notice takes long).
async fn answer_or_death(
    relay: &mut TestRelay,
    link: &RelayLink,
    frame: &[u8],
) -> Result<Reply, ConnectionError> {
    let addr = relay.addr.clone();
    let gone = |reason: &str| ConnectionError::Unreachable {
        relay: addr.clone(),
        reason: reason.into(),
    };
    let request = link.request_raw(frame);
    tokio::pin!(request);
    for _ in 0..200 {
        tokio::select! {
            got = &mut request => return got,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if !relay.is_running() {
                    return Err(gone("the relay process exited"));
                }
            }
        }
    }
    Err(gone("no answer within 20 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_frame_is_refused_and_the_relay_lives_on() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut relay = tokio::task::spawn_blocking(TestRelay::start_for_many_users).await??;
    let mut bystanders = Bystanders::start(&relay).await?;
    let (mut tess, _) = raw_register(&relay, "tess").await?;
    let mut findings = Findings::default();

    let key_count = body_of(&Request::KeyCount);
    let hello = body_of(&one_request_of_each_kind()[0]);
    let get_profile_with = |extra: &[u8]| {
        let mut body = vec![0x82];
        body.extend(msgpack_str("type"));
        body.extend(msgpack_str("GetProfile"));
        body.extend(msgpack_str("body"));
        body.push(0x82);
        body.extend(msgpack_str("user"));
        body.extend(msgpack_str("alice"));
        body.extend(msgpack_str("x"));
        body.extend_from_slice(extra);
        body
    };
    let unknown_with = |extra: &[u8]| {
        let mut body = vec![0x82];
        body.extend(msgpack_str("type"));
        body.extend(msgpack_str("Teleport"));
        body.extend(msgpack_str("body"));
        body.extend_from_slice(extra);
        body
    };
    // (case, before login?, body, the code it must get; None: a KeyCount answer).
    let cases: Vec<(&str, bool, Vec<u8>, Option<ErrorCode>)> = vec![
        (
            "KeyCount with 100,000 nested arrays in an unknown field",
            false,
            with_field(&key_count, "x", &nested_arrays(100_000)),
            Some(ErrorCode::Malformed),
        ),
        (
            "KeyCount with 100,000 nested maps in an unknown field",
            false,
            with_field(&key_count, "x", &nested_maps(100_000)),
            Some(ErrorCode::Malformed),
        ),
        (
            "GetProfile with 100,000 nested arrays in an unknown field of its body",
            false,
            get_profile_with(&nested_arrays(100_000)),
            Some(ErrorCode::Malformed),
        ),
        (
            "an unknown kind whose body is 100,000 nested maps",
            false,
            unknown_with(&nested_maps(100_000)),
            Some(ErrorCode::Malformed),
        ),
        (
            "Hello with 60,000 nested arrays in an unknown field, before login",
            true,
            with_field(&hello, "x", &nested_arrays(60_000)),
            Some(ErrorCode::Malformed),
        ),
        // Past the wire's nesting limit (64): refused, where rmp-serde's own (1,024) let
        // a debug build's stack overflow first.
        (
            "KeyCount with 1,000 nested arrays in an unknown field",
            false,
            with_field(&key_count, "x", &nested_arrays(1_000)),
            Some(ErrorCode::Malformed),
        ),
        (
            "KeyCount with 1,000 nested maps in an unknown field",
            false,
            with_field(&key_count, "x", &nested_maps(1_000)),
            Some(ErrorCode::Malformed),
        ),
        // Within the limit, an unknown field is skipped, however it nests.
        (
            "KeyCount with 50 nested arrays in an unknown field",
            false,
            with_field(&key_count, "x", &nested_arrays(50)),
            None,
        ),
        (
            "KeyCount with 50 nested maps in an unknown field",
            false,
            with_field(&key_count, "x", &nested_maps(50)),
            None,
        ),
    ];
    for (case, before_login, body, code) in cases {
        let link = if before_login {
            raw_hello(&relay).await?
        } else {
            logged_in(&relay, &mut tess, "tess").await?;
            tess.clone()
        };
        let got = answer_or_death(&mut relay, &link, &framed(&body)).await;
        match code {
            Some(code) => findings.refused(case, &link, &got, code),
            None => findings.answered(case, &link, &got, |r| matches!(r, Reply::KeyCount(_))),
        }
        if !relay.is_running() {
            findings.0.push(format!(
                "THE RELAY DIED on {case}; its log ends:\n{}",
                log_tail(&relay)
            ));
            // Start it again, so one crash does not hide what the next case does.
            relay.restart()?;
            bystanders = Bystanders::log_in_again(&relay).await?;
            tess = raw_login(&relay, "tess").await?;
            continue;
        }
        bystanders.still_served(&mut relay, case).await?;
    }
    assert!(
        findings.0.is_empty(),
        "{} deeply nested frames were not refused cleanly:\n{}",
        findings.0.len(),
        findings.0.join("\n")
    );
    Ok(())
}
