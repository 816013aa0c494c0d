//! Writes the fuzz targets' fixtures (`fixtures/`), seed corpora (`corpus/<target>/`) and
//! MessagePack dictionary (`dict/msgpack.dict`) from real messages made with the real
//! code: every request, response and push variant, Olm and Megolm messages encrypted to
//! the fixtures' sessions, sealed chunks, posts and comments, voice packets and small
//! pictures of every format the peer reads.
//!
//! Run by `scripts/fuzz --seed` (an ordinary build: `cargo run --features seed-gen --bin
//! seed`). Olm and Megolm keys are random, so running it again replaces the fixtures and
//! the messages together; the corpora that grew from the old seeds then open less.

use uchat_wire::{request, reply};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use uchat_fuzz::fixture::{self, COMMENT, FixtureSession, LOCAL_KEY, OlmFixture, POST};
use uchat_peer::crypto::chunk;
use uchat_peer::crypto::megolm::OutboundGroupSession;
use uchat_peer::crypto::moment as moment_cipher;
use uchat_peer::crypto::olm::{self, Identity, SessionSet};
use uchat_peer::crypto::password::LocalKey;
use uchat_peer::envelope::{Content, Envelope, FileContent, GroupEnvelope, Payload, ReceiptKind};
use uchat_peer::moment::{CommentBody, PostBody};
use uchat_peer::voice::packet::VoicePacket;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::*;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Out { root: root.clone() };
    wire(&mut out);
    olm_seeds(&mut out);
    megolm_seeds(&mut out);
    chunk_seeds(&mut out);
    voice_seeds(&mut out);
    moment_seeds(&mut out);
    picture_seeds(&mut out);
    dictionary(&root);
}

/// Where the files go.
struct Out {
    root: PathBuf,
}

impl Out {
    fn seed(&mut self, target: &str, name: &str, bytes: &[u8]) {
        self.file(&Path::new("corpus").join(target).join(name), bytes);
    }

    fn file(&mut self, path: &Path, bytes: &[u8]) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("mkdir");
        std::fs::write(&path, bytes).expect("writes the seed");
    }
}

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("a valid seed name")
}

fn body<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let frame = frame::encode(msg, MAX_CONTROL_FRAME_BYTES).expect("seed messages encode");
    frame[frame::HEADER_BYTES..].to_vec()
}

fn msgpack<T: serde::Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("seed values encode")
}

fn with_mode(mode: u8, rest: &[u8]) -> Vec<u8> {
    [&[mode][..], rest].concat()
}

// ---- wire ----------------------------------------------------------------------------

fn signed_key(n: u8) -> SignedKey {
    SignedKey {
        key: vec![n; 32],
        signature: vec![n; 64],
    }
}

fn identity_keys() -> IdentityKeys {
    IdentityKeys {
        curve25519: vec![1; 32],
        ed25519: vec![2; 32],
    }
}

fn profile() -> ProfileSummary {
    ProfileSummary {
        signature: "在路上 🚲".into(),
        avatar_version: Some("00112233aabbccdd".into()),
        updated_ms: 5,
    }
}

fn share() -> KeyShare {
    KeyShare {
        to: user("bob"),
        ciphertext: vec![7; 40],
    }
}

fn group_info() -> GroupInfo {
    GroupInfo {
        id: GroupId([3; 16]),
        name: "家人".into(),
        owner: user("alice"),
        epoch: 2,
        created_ms: 9,
        members: vec![
            GroupMember {
                user: user("alice"),
                joined_ms: 9,
            },
            GroupMember {
                user: user("bob"),
                joined_ms: 10,
            },
        ],
    }
}

fn moment_item() -> MomentItem {
    MomentItem {
        id: PostId([4; 16]),
        author: user("alice"),
        posted_ms: 11,
        cursor: 3,
        ciphertext: vec![9; 80],
        likes: vec![MomentLike {
            user: user("bob"),
            liked_ms: 12,
            ciphertext: vec![1; 64],
        }],
        comments: vec![moment_comment()],
    }
}

fn moment_comment() -> MomentComment {
    MomentComment {
        id: CommentId([5; 16]),
        post: PostId([4; 16]),
        author: user("bob"),
        reply_to: Some(user("alice")),
        commented_ms: 13,
        ciphertext: vec![2; 64],
    }
}

fn requests() -> Vec<Request> {
    let (g, f, c, p) = (
        GroupId([3; 16]),
        FileId([6; 16]),
        CallId([8; 16]),
        PostId([4; 16]),
    );
    vec![
        Request::Hello(request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "uchat 0.1.0".into(),
        }),
        Request::Register(request::Register {
            username: user("alice"),
            password: Password::new("correct horse"),
            identity: identity_keys(),
            one_time_keys: vec![signed_key(1), signed_key(2)],
            fallback_key: Some(signed_key(3)),
        }),
        Request::Login(request::Login {
            username: user("alice"),
            password: Password::new("密码"),
        }),
        Request::Resume(request::Resume {
            username: user("alice"),
            token: SessionToken(vec![4; 32]),
        }),
        Request::Logout,
        Request::UploadKeys(request::UploadKeys {
            one_time_keys: vec![signed_key(4)],
            fallback_key: None,
        }),
        Request::KeyCount,
        Request::ClaimKey(request::ClaimKey { user: user("bob") }),
        Request::Identity(request::Identity { user: user("bob") }),
        Request::Send(request::Send {
            to: user("bob"),
            id: MessageId([1; 16]),
            ciphertext: vec![0xab; 48],
        }),
        Request::Ack(request::Ack { through: Seq(41) }),
        Request::Presence(request::Presence {
            users: vec![user("bob"), user("carol")],
        }),
        Request::FriendRequest(request::FriendRequest {
            to: user("bob"),
            note: "我是 alice".into(),
        }),
        Request::AcceptFriend(request::AcceptFriend { from: user("bob") }),
        Request::RejectFriend(request::RejectFriend { from: user("bob") }),
        Request::RemoveFriend(request::RemoveFriend { user: user("bob") }),
        Request::Block(request::Block {
            user: user("mallory"),
        }),
        Request::Unblock(request::Unblock {
            user: user("mallory"),
        }),
        Request::Friends,
        Request::FriendRequests,
        Request::SetProfile(request::SetProfile {
            signature: Some("hi".into()),
            avatar: Some(AvatarChange::Set {
                png: vec![0x89, b'P', b'N', b'G'],
            }),
        }),
        Request::SetProfile(request::SetProfile {
            signature: None,
            avatar: Some(AvatarChange::Remove),
        }),
        Request::GetProfile(request::GetProfile {
            user: user("bob"),
            known_avatar_version: Some("0011".into()),
        }),
        Request::ReplaceIdentity(request::ReplaceIdentity {
            identity: identity_keys(),
            one_time_keys: vec![signed_key(5)],
            fallback_key: Some(signed_key(6)),
        }),
        Request::CreateGroup(request::CreateGroup {
            name: "家人".into(),
            members: vec![user("bob")],
        }),
        Request::Groups,
        Request::GroupInfo(request::GroupInfo { group: g }),
        Request::InviteToGroup(request::InviteToGroup {
            group: g,
            user: user("carol"),
        }),
        Request::KickFromGroup(request::KickFromGroup {
            group: g,
            user: user("carol"),
        }),
        Request::LeaveGroup(request::LeaveGroup { group: g }),
        Request::SyncGroup(request::SyncGroup { group: g }),
        Request::GroupSend(request::GroupSend {
            group: g,
            epoch: 2,
            id: MessageId([2; 16]),
            ciphertext: vec![0xcd; 64],
            key_shares: vec![share()],
        }),
        Request::UploadFile(request::UploadFile {
            file: f,
            size: 70_000,
            access: FileAccess::Users {
                users: vec![user("bob")],
            },
        }),
        Request::UploadFile(request::UploadFile {
            file: f,
            size: 1,
            access: FileAccess::Group { group: g },
        }),
        Request::DownloadFile(request::DownloadFile {
            file: f,
            offset: 65_600,
        }),
        Request::CallInvite(request::CallInvite {
            call: c,
            to: user("bob"),
            offer: vec![3; 90],
        }),
        Request::CallAnswer(request::CallAnswer {
            call: c,
            answer: vec![4; 90],
        }),
        Request::CallReject(request::CallReject { call: c }),
        Request::CallHangup(request::CallHangup { call: c }),
        Request::MomentPost(request::MomentPost {
            id: p,
            ciphertext: vec![5; 100],
            shares: vec![share()],
        }),
        Request::MomentFeed(request::MomentFeed {
            before: Some(10),
            limit: 20,
        }),
        Request::MomentGet(request::MomentGet { post: p }),
        Request::MomentLike(request::MomentLike {
            post: p,
            ciphertext: vec![6; 64],
        }),
        Request::MomentUnlike(request::MomentUnlike { post: p }),
        Request::MomentComment(request::MomentComment {
            post: p,
            id: CommentId([5; 16]),
            reply_to: Some(user("bob")),
            ciphertext: vec![7; 64],
        }),
        Request::MomentDelete(request::MomentDelete { post: p }),
        Request::MomentDeleteComment(request::MomentDeleteComment {
            comment: CommentId([5; 16]),
        }),
        Request::Unknown,
    ]
}

fn replies() -> Vec<Response> {
    let ok = Response::Ok;
    let entry = FriendRequestEntry {
        user: user("bob"),
        note: "hi".into(),
        created_ms: 3,
    };
    vec![
        ok(Reply::Welcome(reply::Welcome {
            protocol: PROTOCOL_VERSION,
            relay: "uchat-relay 0.1.0".into(),
        })),
        ok(Reply::Session(reply::Session {
            username: user("alice"),
            token: SessionToken(vec![4; 32]),
            queue_head: Seq(7),
            acked_through: Seq(5),
        })),
        ok(Reply::Done),
        ok(Reply::KeyCount(reply::KeyCount { one_time_keys: 50 })),
        ok(Reply::ClaimedKey(reply::ClaimedKey {
            user: user("bob"),
            identity: identity_keys(),
            key: signed_key(1),
            fallback: false,
        })),
        ok(Reply::Identity(reply::Identity {
            user: user("bob"),
            identity: identity_keys(),
        })),
        ok(Reply::Sent(reply::Sent {
            relay_ts_ms: 99,
            duplicate: false,
            unshared: vec![user("carol")],
        })),
        ok(Reply::Presence(reply::Presence {
            users: vec![PresenceEntry {
                user: user("bob"),
                online: false,
                last_seen_ms: Some(4),
            }],
        })),
        ok(Reply::FriendRequestSent(reply::FriendRequestSent {
            became_friends: true,
        })),
        ok(Reply::Friends(reply::Friends {
            friends: vec![FriendEntry {
                user: user("bob"),
                since_ms: 1,
                online: true,
                last_seen_ms: None,
                blocked: false,
                identity: identity_keys(),
                profile: profile(),
            }],
        })),
        ok(Reply::FriendRequests(reply::FriendRequests {
            incoming: vec![entry.clone()],
            outgoing: vec![entry],
        })),
        ok(Reply::Profile(reply::Profile {
            user: user("bob"),
            profile: profile(),
            avatar: Some(vec![0x89; 20]),
        })),
        ok(Reply::Group(reply::Group {
            group: group_info(),
        })),
        ok(Reply::Groups(reply::Groups {
            groups: vec![group_info()],
        })),
        ok(Reply::UploadReady(reply::UploadReady { offset: 65_600 })),
        ok(Reply::Uploaded(reply::Uploaded { size: 70_000 })),
        ok(Reply::DownloadReady(reply::DownloadReady {
            size: 70_000,
            owner: Some(user("alice")),
        })),
        ok(Reply::CallRinging(reply::CallRinging {
            leg: 1,
            ring_timeout_ms: 45_000,
        })),
        ok(Reply::CallEnded(reply::CallEnded {
            reason: CallEndReason::Busy,
        })),
        ok(Reply::CallConnected(reply::CallConnected { leg: 2 })),
        ok(Reply::MomentPosted(reply::MomentPosted {
            posted_ms: 11,
            duplicate: false,
            unshared: Vec::new(),
        })),
        ok(Reply::MomentFeed(reply::MomentFeed {
            posts: vec![moment_item()],
            next: Some(2),
        })),
        ok(Reply::Moment(reply::Moment {
            post: moment_item(),
        })),
        ok(Reply::MomentCommented(reply::MomentCommented { commented_ms: 13 })),
        ok(Reply::Unknown),
        Response::error(ErrorCode::NotFriends, "bob is not your friend"),
        Response::error(ErrorCode::RateLimited, "try again in 30 s"),
    ]
}

fn push_events() -> Vec<PushEvent> {
    let (g, c, p) = (GroupId([3; 16]), CallId([8; 16]), PostId([4; 16]));
    let summary = GroupSummary {
        id: g,
        name: "家人".into(),
        owner: user("alice"),
        epoch: 3,
        created_ms: 9,
    };
    vec![
        PushEvent::Message {
            from: user("alice"),
            id: MessageId([1; 16]),
            ciphertext: vec![0xab; 48],
        },
        PushEvent::Presence {
            user: user("bob"),
            online: false,
            last_seen_ms: Some(77),
        },
        PushEvent::FriendRequest {
            from: user("carol"),
            note: "你好".into(),
        },
        PushEvent::FriendAccepted { by: user("bob") },
        PushEvent::FriendRemoved { by: user("bob") },
        PushEvent::Profile {
            user: user("bob"),
            profile: profile(),
        },
        PushEvent::IdentityChanged { user: user("bob") },
        PushEvent::GroupMessage {
            group: g,
            from: user("alice"),
            id: MessageId([2; 16]),
            ciphertext: vec![0xcd; 64],
        },
        PushEvent::GroupKey {
            group: g,
            from: user("alice"),
            ciphertext: vec![0xef; 64],
        },
        PushEvent::GroupChanged {
            group: summary.clone(),
            change: GroupChange::Joined {
                user: user("carol"),
                by: user("alice"),
            },
            members: Some(group_info().members),
        },
        PushEvent::GroupChanged {
            group: summary.clone(),
            change: GroupChange::Left {
                user: user("alice"),
                new_owner: Some(user("bob")),
            },
            members: None,
        },
        PushEvent::GroupChanged {
            group: summary.clone(),
            change: GroupChange::Created { by: user("alice") },
            members: None,
        },
        PushEvent::GroupChanged {
            group: summary.clone(),
            change: GroupChange::Removed {
                user: user("carol"),
                by: user("alice"),
            },
            members: None,
        },
        PushEvent::GroupChanged {
            group: summary,
            change: GroupChange::Synced,
            members: None,
        },
        PushEvent::CallIncoming {
            call: c,
            from: user("alice"),
            offer: vec![3; 90],
            ring_left_ms: 40_000,
        },
        PushEvent::CallAccepted {
            call: c,
            answer: vec![4; 90],
        },
        PushEvent::CallEnded {
            call: c,
            reason: CallEndReason::HungUp,
        },
        PushEvent::MissedCall {
            call: c,
            from: user("alice"),
            reason: CallEndReason::Timeout,
        },
        PushEvent::MomentShared {
            post: p,
            author: user("alice"),
            ciphertext: vec![5; 80],
        },
        PushEvent::MomentLiked {
            post: p,
            by: user("bob"),
            ciphertext: vec![6; 64],
        },
        PushEvent::MomentCommented {
            comment: moment_comment(),
        },
        PushEvent::Unknown,
    ]
}

fn wire(out: &mut Out) {
    let mut stream = Vec::new();
    for (i, request) in requests().iter().enumerate() {
        out.seed(
            "wire_message",
            &format!("request-{i:02}"),
            &with_mode(0, &body(request)),
        );
        stream.extend(frame::encode(request, MAX_CONTROL_FRAME_BYTES).expect("encodes"));
        if i % 10 == 9 {
            // [limit: the real one][no cuts][frames]
            out.seed(
                "frame_decoder",
                &format!("requests-{i:02}"),
                &[&[255, 0][..], &stream].concat(),
            );
            // A small limit, three cuts, and a truncated end.
            let cut = stream.len() - 3;
            out.seed(
                "frame_decoder",
                &format!("cut-{i:02}"),
                &[&[64, 3, 0, 5, 0, 40, 1, 0][..], &stream[..cut]].concat(),
            );
            stream.clear();
        }
    }
    for (i, response) in replies().iter().enumerate() {
        out.seed(
            "wire_message",
            &format!("response-{i:02}"),
            &with_mode(1, &body(response)),
        );
    }
    for (i, event) in push_events().into_iter().enumerate() {
        let durable = !matches!(
            event,
            PushEvent::Presence { .. } | PushEvent::Profile { .. }
        );
        let push = Push {
            seq: durable.then_some(Seq(i as u64 + 1)),
            relay_ts_ms: 1_700_000_000_000,
            event,
        };
        out.seed(
            "wire_message",
            &format!("push-{i:02}"),
            &with_mode(2, &body(&push)),
        );
        out.seed(
            "wire_message",
            &format!("event-{i:02}"),
            &with_mode(3, &body(&push.event)),
        );
    }
}

// ---- Olm and Megolm ------------------------------------------------------------------

fn payloads(group: Option<GroupId>, sender: Option<UserName>) -> Vec<Payload> {
    let file = FileContent {
        file: FileId([6; 16]),
        name: "../照片 2026.jpg".into(),
        size: 70_000,
        mime: "image/jpeg".into(),
        md5: vec![0x11; 16],
        key: vec![0x22; 64],
        thumbnail: Some(vec![0xff, 0xd8, 0xff, 0xe0]),
        dimensions: Some((640, 480)),
    };
    let contents = vec![
        Content::Text {
            text: "你好，bob 👋".into(),
        },
        Content::File(file),
        Content::GroupKey {
            group: GroupId([3; 16]),
            session_id: "c2Vzc2lvbg".into(),
            key: vec![0x33; 229],
            epoch: 2,
        },
        Content::CallKey {
            call: CallId([8; 16]),
            offer: true,
            key: vec![0x44; 32],
        },
        Content::MomentKey {
            post: POST,
            key: vec![0x55; 64],
        },
        Content::Receipt {
            kind: ReceiptKind::Read,
            ids: vec![MessageId([1; 16]), MessageId([2; 16])],
        },
        Content::Unknown,
    ];
    contents
        .into_iter()
        .enumerate()
        .map(|(i, content)| Payload {
            id: MessageId([i as u8; 16]),
            sent_ms: 1_700_000_000_000 + i as u64,
            content,
            group,
            sender: sender.clone(),
        })
        .collect()
}

/// Seeds one Olm message (its type and body) both ways the target reads it.
fn olm_seed(out: &mut Out, name: &str, sender_key: &[u8], message: &(u8, Vec<u8>)) {
    let (message_type, body) = message;
    let envelope = Envelope {
        sender_key: sender_key.to_vec(),
        message_type: *message_type,
        body: body.clone(),
    };
    out.seed(
        "olm_envelope",
        &format!("{name}-envelope"),
        &with_mode(0, &envelope.to_bytes()),
    );
    out.seed(
        "olm_envelope",
        &format!("{name}-bare"),
        &[&[1, *message_type][..], body].concat(),
    );
}

fn olm_seeds(out: &mut Out) {
    let key = LocalKey::from_bytes(LOCAL_KEY);
    let mut alice = Identity::generate();
    let mut bob = Identity::generate();
    let (a, b) = (alice.public_keys().curve25519, bob.public_keys().curve25519);
    let mut otks = bob.new_one_time_keys(2);
    bob.new_fallback_key();
    let mut alice_set = SessionSet::default();
    alice_set.add(
        alice
            .open_outbound(&bob.public_keys(), &otks.remove(0))
            .expect("opens"),
        &b,
        1,
    );
    let mut bob_set = SessionSet::default();

    let first = alice_set
        .encrypt(&payloads(None, None)[0].to_bytes(), &b, 2)
        .expect("encrypts");
    olm_seed(
        out,
        "prekey-established",
        &a,
        &olm::message_to_parts(&first),
    );
    bob_set
        .decrypt(&mut bob, &a, &first, 3)
        .expect("bob opens alice's first message");
    let reply = bob_set.encrypt(b"hi alice", &a, 4).expect("encrypts");
    alice_set
        .decrypt(&mut alice, &b, &reply, 5)
        .expect("alice opens the reply");

    let fixture = OlmFixture {
        account: bob.seal(&key),
        sessions: bob_set
            .seal(&key)
            .iter()
            .map(FixtureSession::from)
            .collect(),
        sender_key: a.clone(),
    };
    out.file(Path::new("fixtures/olm.msgpack"), &fixture.to_bytes());

    for (i, payload) in payloads(None, None).iter().enumerate() {
        let message = alice_set
            .encrypt(&payload.to_bytes(), &b, 10 + i as u64)
            .expect("encrypts");
        olm_seed(
            out,
            &format!("normal-{i}"),
            &a,
            &olm::message_to_parts(&message),
        );
    }
    // A second device of alice's starts a new session from bob's other one-time key.
    let mut second = SessionSet::default();
    second.add(
        alice
            .open_outbound(&bob.public_keys(), &otks.remove(0))
            .expect("opens"),
        &b,
        1,
    );
    let fresh = second
        .encrypt(&payloads(None, None)[1].to_bytes(), &b, 2)
        .expect("encrypts");
    olm_seed(
        out,
        "prekey-new-session",
        &a,
        &olm::message_to_parts(&fresh),
    );

    // Check the fixture opens what was sent, as the target will.
    let (mut identity, mut sessions) = fixture.restore();
    sessions
        .decrypt(&mut identity, &a, &fresh, 20)
        .expect("the fixture opens a new session");
}

fn megolm_seeds(out: &mut Out) {
    let mut alice = OutboundGroupSession::new();
    let share = alice.share_source();
    let fixture_key = alice.key();
    out.file(Path::new("fixtures/megolm.key"), &fixture_key);
    out.seed("megolm_envelope", "key", &with_mode(2, &fixture_key));
    out.seed(
        "megolm_envelope",
        "key-exported",
        &with_mode(2, &share.export_first()),
    );
    for (i, payload) in payloads(Some(GroupId([3; 16])), Some(user("alice")))
        .iter()
        .enumerate()
    {
        let message = alice.encrypt(&payload.to_bytes());
        let envelope = GroupEnvelope {
            session_id: alice.id(),
            body: message.clone(),
        };
        out.seed(
            "megolm_envelope",
            &format!("message-{i}-envelope"),
            &with_mode(0, &envelope.to_bytes()),
        );
        out.seed(
            "megolm_envelope",
            &format!("message-{i}-bare"),
            &with_mode(1, &message),
        );
        let mut check = fixture::inbound_group_session(&fixture_key);
        check
            .decrypt(&message)
            .expect("the fixture's session opens the seed");
    }
}

// ---- chunks, voice, moments ----------------------------------------------------------

fn chunk_seeds(out: &mut Out) {
    let key = fixture::file_key();
    let file_id = [6u8; 16];
    let head = |mode: u8, index: u64| -> Vec<u8> {
        [&[mode, 16][..], &file_id, &index.to_be_bytes()].concat()
    };
    for (i, len) in [0usize, 15, 16, 100, 1000].into_iter().enumerate() {
        let plaintext: Vec<u8> = (0..len).map(|n| n as u8).collect();
        let sealed = chunk::encrypt_chunk(&key, &file_id, i as u64, &plaintext, [i as u8; 16]);
        out.seed(
            "file_chunk",
            &format!("sealed-{len}"),
            &[head(0, i as u64), sealed.clone()].concat(),
        );
        out.seed(
            "file_chunk",
            &format!("plain-{len}"),
            &[head(1, i as u64), vec![i as u8; 16], plaintext].concat(),
        );
        let iv_and_ciphertext = &sealed[..sealed.len() - chunk::TAG_BYTES];
        out.seed(
            "file_chunk",
            &format!("keyholder-{len}"),
            &[head(2, i as u64), iv_and_ciphertext.to_vec()].concat(),
        );
    }
    out.seed("file_chunk", "key", &[head(3, 0), vec![9; 64]].concat());
}

fn voice_seeds(out: &mut Out) {
    let packets = [
        VoicePacket::Audio {
            frame: 9,
            sent_ms: 180,
            opus: vec![0x78, 1, 2, 3, 4, 5, 6, 7],
        },
        VoicePacket::Ping { sent_ms: 5 },
        VoicePacket::Pong {
            echo_ms: 5,
            at_ms: 77,
        },
        VoicePacket::Report {
            loss_permille: 100,
            jitter_ms: 30,
        },
    ];
    for (i, packet) in packets.iter().enumerate() {
        out.seed(
            "voice_datagram",
            &format!("packet-{i}"),
            &with_mode(1, &packet.to_bytes()),
        );
        let sealed_like = [&(i as u32).to_be_bytes()[..], &packet.to_bytes(), &[0; 10]].concat();
        out.seed(
            "voice_datagram",
            &format!("datagram-{i}"),
            &with_mode(0, &sealed_like),
        );
        out.seed(
            "voice_datagram",
            &format!("seal-{i}"),
            &[&[2][..], &(i as u32 * 7).to_be_bytes(), &packet.to_bytes()].concat(),
        );
    }
    let seqs: Vec<u8> = [1u32, 2, 2, 200, 73, 72, 71, 5000, 4999, 3, u32::MAX, 0]
        .iter()
        .flat_map(|s| s.to_be_bytes())
        .collect();
    out.seed("voice_datagram", "replay", &with_mode(3, &seqs));
}

fn moment_seeds(out: &mut Out) {
    let key = fixture::post_key();
    let (alice, bob) = (fixture::author(), user("bob"));
    let image = FileContent {
        file: FileId([6; 16]),
        name: "春天.jpg".into(),
        size: 70_000,
        mime: "image/jpeg".into(),
        md5: vec![0x11; 16],
        key: vec![0x22; 64],
        thumbnail: Some(vec![0xff, 0xd8, 0xff, 0xe0]),
        dimensions: Some((640, 480)),
    };
    let post = PostBody {
        author: alice.clone(),
        text: "春天来了 🌸".into(),
        images: vec![image],
        written_ms: 1,
    };
    let comment = CommentBody {
        author: alice.clone(),
        reply_to: None,
        text: "赞".into(),
    };
    let bob_comment = CommentBody {
        author: bob.clone(),
        reply_to: Some(alice.clone()),
        text: "好看".into(),
    };
    let item = MomentItem {
        id: POST,
        author: alice.clone(),
        posted_ms: 2,
        cursor: 1,
        ciphertext: moment_cipher::seal_post(&key, POST, &msgpack(&post)).expect("seals"),
        likes: vec![MomentLike {
            user: bob.clone(),
            liked_ms: 3,
            ciphertext: moment_cipher::seal_like(&key, POST, &bob).expect("seals"),
        }],
        comments: vec![MomentComment {
            id: COMMENT,
            post: POST,
            author: bob.clone(),
            reply_to: Some(alice.clone()),
            commented_ms: 4,
            ciphertext: moment_cipher::seal_comment(&key, POST, COMMENT, &msgpack(&bob_comment))
                .expect("seals"),
        }],
    };
    out.seed("moment_open", "item", &with_mode(0, &msgpack(&item)));
    out.seed("moment_open", "post-body", &with_mode(1, &msgpack(&post)));
    out.seed(
        "moment_open",
        "comment-body",
        &with_mode(2, &msgpack(&comment)),
    );
    out.seed(
        "moment_open",
        "sealed-post",
        &with_mode(3, &item.ciphertext),
    );
}

// ---- pictures ------------------------------------------------------------------------

fn picture_seeds(out: &mut Out) {
    use image::ImageFormat::{Bmp, Gif, Jpeg, Png, WebP};
    let rgb = image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, 90])
    });
    let rgba = image::RgbaImage::from_fn(16, 16, |x, y| {
        image::Rgba([x as u8 * 16, 0, y as u8 * 16, 128])
    });
    let gray = image::GrayImage::from_fn(8, 12, |x, y| image::Luma([(x + y) as u8 * 10]));
    let encode = |image: &image::DynamicImage, format| {
        let mut bytes = Cursor::new(Vec::new());
        image
            .write_to(&mut bytes, format)
            .expect("a small picture encodes");
        bytes.into_inner()
    };
    let pictures = [
        ("png-rgb", encode(&rgb.clone().into(), Png)),
        ("png-rgba", encode(&rgba.clone().into(), Png)),
        ("png-gray", encode(&gray.into(), Png)),
        ("jpeg", encode(&rgb.clone().into(), Jpeg)),
        ("gif", encode(&rgba.clone().into(), Gif)),
        ("webp", encode(&rgba.into(), WebP)),
        ("bmp", encode(&rgb.into(), Bmp)),
    ];
    for (name, bytes) in pictures {
        for mode in 0..4u8 {
            out.seed(
                "picture_decode",
                &format!("{name}-{mode}"),
                &with_mode(mode, &bytes),
            );
        }
    }
}

// ---- dictionary ----------------------------------------------------------------------

/// Every variant and field name the MessagePack targets decode, as MessagePack strings:
/// libFuzzer splices them in, so a mutation can turn one variant into another.
fn dictionary(root: &Path) {
    let sources = [
        include_str!("../../../wire/src/msg/request.rs"),
        include_str!("../../../wire/src/msg/response.rs"),
        include_str!("../../../wire/src/msg/push.rs"),
        include_str!("../../../wire/src/msg/group.rs"),
        include_str!("../../../wire/src/msg/social.rs"),
        include_str!("../../../wire/src/msg/moment.rs"),
        include_str!("../../../wire/src/msg/file.rs"),
        include_str!("../../../wire/src/msg/call.rs"),
        include_str!("../../../wire/src/error.rs"),
        include_str!("../../../wire/src/lib.rs"),
        include_str!("../../../peer/src/envelope.rs"),
        include_str!("../../../peer/src/moment.rs"),
    ];
    let mut names = std::collections::BTreeSet::from(["type".to_string(), "body".to_string()]);
    for line in sources.iter().flat_map(|s| s.lines()) {
        let line = line.trim();
        if let Some(field) = line.strip_prefix("pub ").and_then(|l| l.split_once(':')) {
            if field
                .0
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            {
                names.insert(field.0.to_string());
            }
            continue;
        }
        let word: String = line
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let after = &line[word.len()..];
        if word.starts_with(|c: char| c.is_ascii_uppercase())
            && (after == "," || after.starts_with(" {") || after.starts_with('('))
        {
            names.insert(word);
        }
    }
    let mut dict = String::from(
        "# MessagePack strings of every variant and field name; written by src/bin/seed.rs.\n",
    );
    for name in names.into_iter().filter(|n| n.len() < 32) {
        let escaped: String = std::iter::once(0xa0u8 | name.len() as u8)
            .chain(name.bytes())
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect();
        dict.push_str(&format!("\"{escaped}\"\n"));
    }
    std::fs::create_dir_all(root.join("dict")).expect("mkdir");
    std::fs::write(root.join("dict/msgpack.dict"), dict).expect("writes the dictionary");
}
