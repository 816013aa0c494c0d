//! The authorization matrix: every kind of `uchat_wire::Request`, sent by users in every
//! relation to what the request names, each with the outcome SECURITY.md and
//! ARCHITECTURE.md promise.
//!
//! The relations ([`Role`]) are those of the acting user to alice and what she owns: the
//! owner (alice herself: of the group, the post, the file, the call she places), a member
//! (bob: her friend, in her group, a viewer of her post, the recipient of her file, the one
//! her call rings for), a friend who is none of that (carol), a stranger (mallory), a
//! stranger whose friend request to alice is pending (peggy), a friend alice blocked (eve,
//! who was also a viewer of the post before the block), a stranger alice blocked (trudy)
//! and a connection that said Hello and never logged in. For a request about the asker
//! alone, the owner's cell is a user acting on their own account.
//!
//! The scene is set once on one relay over raw connections, then every cell runs over
//! them. A cell whose success would change the scene for the others acts on objects made
//! for it (a group, a post, a comment, a ringing call) or through a stand-in: a user
//! registered for that one cell in the same relation to alice. The table is [`row_of`], a
//! match without a catch-all, one arm per kind with its eight cells; a kind that cannot
//! name the relation (a request about the asker alone) says so with
//! [`Expect::NotApplicable`]. Every failing cell is collected and reported at the end as
//! "Kind as role: expected …, got …".
//!
//! It does not check sizes, rate limits or text rules (`errors`, `bad_input`), nor what
//! the peers do with what the relay hands them (`group`, `moments`, `call`, `file`).

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use uchat_wire::{reply, request};

use anyhow::{Context, Result, bail};
use uchat_peer::connection::{ConnectionError, RelayLink};
use uchat_tests::{TestRelay, one_request_of_each_kind, raw_hello, raw_login, raw_register};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{
    CallEndReason, CallId, CommentId, ErrorCode, ErrorReply, FileAccess, FileId, GroupId,
    GroupInfo, IdentityKeys, KeyShare, MessageId, PROTOCOL_VERSION, Password, PostId, Reply,
    Request, Seq, SessionToken, SignedKey, UserName,
};

/// alice's signature, which only those allowed to read her profile may see.
const ALICE_SIGNATURE: &str = "alice's words, for friends only";

/// Who acts: their relation to alice and to what she owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// alice herself: the owner of the group, the post, the file and the call.
    Owner,
    /// bob: alice's friend, in her group, a viewer of her post, her file's recipient.
    Member,
    /// carol: alice's friend, and nothing more.
    Friend,
    /// mallory: no relation to alice at all.
    Stranger,
    /// peggy: asked alice to be friends; alice has not answered.
    Requester,
    /// eve: alice's friend, whom alice blocked (a block keeps the friendship); she was a
    /// viewer of alice's post before the block.
    BlockedFriend,
    /// trudy: a stranger alice blocked; her friend request after the block went nowhere.
    BlockedStranger,
    /// A connection that said Hello and never logged in.
    LoggedOut,
}

impl Role {
    const ALL: [Role; 8] = [
        Role::Owner,
        Role::Member,
        Role::Friend,
        Role::Stranger,
        Role::Requester,
        Role::BlockedFriend,
        Role::BlockedStranger,
        Role::LoggedOut,
    ];

    /// The role as failure messages name it.
    fn label(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
            Role::Friend => "friend-not-member",
            Role::Stranger => "stranger",
            Role::Requester => "stranger-with-pending-request",
            Role::BlockedFriend => "friend-blocked-by-owner",
            Role::BlockedStranger => "stranger-blocked-by-owner",
            Role::LoggedOut => "logged-out",
        }
    }

    /// The scene's user in this role; `None` for a connection that is not logged in.
    fn user(self) -> Option<&'static str> {
        match self {
            Role::Owner => Some("alice"),
            Role::Member => Some("bob"),
            Role::Friend => Some("carol"),
            Role::Stranger => Some("mallory"),
            Role::Requester => Some("peggy"),
            Role::BlockedFriend => Some("eve"),
            Role::BlockedStranger => Some("trudy"),
            Role::LoggedOut => None,
        }
    }
}

/// Checks an answer; says what is wrong with it.
type Check = fn(&Scene, Role, &Reply) -> Result<(), String>;

/// What one cell must get.
#[derive(Clone, Copy)]
enum Expect {
    /// An answer the check accepts.
    Allowed(Check),
    /// This error code, with a message for the user.
    Refused(ErrorCode),
    /// The request cannot express this relation (it names nothing but the asker); nothing
    /// is sent. The reason says why.
    NotApplicable(&'static str),
}

use Expect::{Allowed, NotApplicable, Refused};

/// What every kind but Hello, Register, Login and Resume gets before login.
const NOT_LOGGED_IN: Expect = Refused(ErrorCode::NotAuthenticated);
/// Why a request about the asker alone has no cell for relations to someone else.
const ONLY_ONESELF: &str = "names no one but the asker: it acts on their own account only";

/// The eight cells of one kind.
struct Cells {
    owner: Expect,
    member: Expect,
    friend: Expect,
    stranger: Expect,
    requester: Expect,
    blocked_friend: Expect,
    blocked_stranger: Expect,
    logged_out: Expect,
}

impl Cells {
    fn get(&self, role: Role) -> Expect {
        match role {
            Role::Owner => self.owner,
            Role::Member => self.member,
            Role::Friend => self.friend,
            Role::Stranger => self.stranger,
            Role::Requester => self.requester,
            Role::BlockedFriend => self.blocked_friend,
            Role::BlockedStranger => self.blocked_stranger,
            Role::LoggedOut => self.logged_out,
        }
    }
}

/// A future a cell's steps return.
type Steps<'a> = Pin<Box<dyn Future<Output = Got> + 'a>>;

/// How a cell is carried out.
#[derive(Clone, Copy)]
enum Exercise {
    /// This request, on the acting role's connection.
    Plain(fn(&Scene, Role) -> Request),
    /// Steps around the request: objects made for the cell, stand-ins, transfers, and
    /// checks of what the relay did (not just what it answered).
    Steps(for<'a> fn(&'a Scene, Role) -> Steps<'a>),
}

/// One kind's row.
struct Row {
    /// `Request::kind`.
    kind: &'static str,
    /// The variant's name, for messages.
    name: String,
    exercise: Exercise,
    cells: Cells,
}

/// What a cell got.
#[derive(Debug)]
enum Got {
    Answer(Reply),
    Refusal(ErrorReply),
    /// No answer came: the stream or the connection failed, or the cell's own steps did.
    Broken(String),
    /// The answer, and what the relay did that contradicts the rule.
    Then(Box<Got>, String),
}

impl From<Result<Reply, ConnectionError>> for Got {
    fn from(result: Result<Reply, ConnectionError>) -> Self {
        match result {
            Ok(reply) => Got::Answer(reply),
            Err(ConnectionError::Refused(e)) => Got::Refusal(e),
            Err(e) => Got::Broken(e.to_string()),
        }
    }
}

impl Got {
    /// Adds a contradiction found after the answer, if any.
    fn then(self, problem: Option<String>) -> Got {
        match problem {
            Some(problem) => Got::Then(Box::new(self), problem),
            None => self,
        }
    }

    fn is_answer(&self) -> bool {
        matches!(self, Got::Answer(_))
    }
}

/// A short form of `value`'s `Debug`, for messages.
fn short(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    if text.chars().count() > 240 {
        format!("{}…", text.chars().take(240).collect::<String>())
    } else {
        text
    }
}

fn describe_expect(expect: Expect) -> String {
    match expect {
        Allowed(_) => "Ok".into(),
        Refused(code) => format!("{code:?}"),
        NotApplicable(why) => format!("not applicable ({why})"),
    }
}

fn describe_got(got: &Got) -> String {
    match got {
        Got::Answer(reply) => format!("Ok({})", short(reply)),
        Got::Refusal(e) => format!("{:?} ({:?})", e.code, e.message),
        Got::Broken(why) => format!("no clean answer: {why}"),
        Got::Then(inner, problem) => format!("{}, but {problem}", describe_got(inner)),
    }
}

/// What is wrong with `got` for `expect`, if anything.
fn judge(scene: &Scene, role: Role, expect: Expect, got: &Got) -> Option<String> {
    let wrong = || {
        Some(format!(
            "expected {}, got {}",
            describe_expect(expect),
            describe_got(got)
        ))
    };
    match (expect, got) {
        (NotApplicable(_), _) => None,
        (_, Got::Then(inner, problem)) => match judge(scene, role, expect, inner) {
            None => Some(format!(
                "expected {}, got {} as expected, but {problem}",
                describe_expect(expect),
                describe_got(inner)
            )),
            Some(first) => Some(format!("{first}; and {problem}")),
        },
        (Allowed(check), Got::Answer(reply)) => check(scene, role, reply).err().map(|why| {
            format!(
                "expected Ok, got Ok({}) which is wrong: {why}",
                short(reply)
            )
        }),
        (Refused(code), Got::Refusal(e)) if e.code == code && !e.message.trim().is_empty() => None,
        _ => wrong(),
    }
}

/// The scene: one relay, the users in their roles, logged in, and what alice owns.
struct Scene {
    relay: TestRelay,
    links: HashMap<Role, RelayLink>,
    /// alice's group, with bob.
    group: GroupId,
    /// alice's post, shared with bob and eve (before she blocked eve).
    post: PostId,
    /// alice's file, for bob.
    file: FileId,
    file_bytes: Vec<u8>,
    /// The session token of alice's connection (which `ReplaceIdentity` keeps).
    alice_token: SessionToken,
    /// Makes ids and names unique per cell.
    counter: Cell<u32>,
}

/// The connection a cell acts on: a role's own, or a fresh one.
enum Actor<'a> {
    Main(&'a RelayLink),
    Fresh(RelayLink),
}

impl std::ops::Deref for Actor<'_> {
    type Target = RelayLink;
    fn deref(&self) -> &RelayLink {
        match self {
            Actor::Main(link) => link,
            Actor::Fresh(link) => link,
        }
    }
}

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("the test's names are valid")
}

fn alice() -> UserName {
    user("alice")
}

/// A page cursor that sorts before every name in the scene.
fn name_before_everyone() -> UserName {
    user("a")
}

impl Scene {
    /// Registers everyone and sets the relations, in this order: friendships, peggy's
    /// request, the group, the post (shared with bob and eve), the file, alice's profile,
    /// then the blocks (so eve's share of the post predates hers), then trudy's request.
    async fn set(relay: TestRelay) -> Result<Scene> {
        let mut links = HashMap::new();
        let mut alice_token = None;
        for role in Role::ALL {
            if let Some(name) = role.user() {
                let (link, token) = raw_register(&relay, name).await?;
                if role == Role::Owner {
                    alice_token = Some(token);
                }
                links.insert(role, link);
            }
        }
        let scene = Scene {
            relay,
            links,
            group: GroupId([0; 16]),
            post: PostId([0; 16]),
            file: FileId([0; 16]),
            file_bytes: (0..64u8).map(|b| b.wrapping_mul(7)).collect(),
            alice_token: alice_token.context("alice registered")?,
            counter: Cell::new(0),
        };
        for role in [Role::Member, Role::Friend, Role::BlockedFriend] {
            scene
                .befriend_alice(scene.link(role), &scene.name(role))
                .await?;
        }
        scene
            .link(Role::Requester)
            .request(&Request::FriendRequest(request::FriendRequest {
                to: alice(),
                note: "peggy would like to be friends".into(),
            }))
            .await?;
        let group = match scene
            .alice(&Request::CreateGroup(request::CreateGroup {
                name: "alice's group".into(),
                members: vec![user("bob")],
            }))
            .await?
        {
            Reply::Group(reply::Group { group }) => group.id,
            other => bail!("CreateGroup got {other:?}"),
        };
        let post = PostId(scene.fresh());
        scene
            .alice(&Request::MomentPost(request::MomentPost {
                id: post,
                ciphertext: b"alice's sealed post".to_vec(),
                shares: vec![share("bob"), share("eve")],
            }))
            .await?;
        let file = FileId(scene.fresh());
        let access = FileAccess::Users {
            users: vec![user("bob")],
        };
        let uploaded = upload(scene.owner(), file, &scene.file_bytes, access).await;
        anyhow::ensure!(
            matches!(uploaded, Got::Answer(Reply::Uploaded(_))),
            "alice's upload got {uploaded:?}"
        );
        scene
            .alice(&Request::SetProfile(request::SetProfile {
                signature: Some(ALICE_SIGNATURE.into()),
                avatar: None,
            }))
            .await?;
        scene
            .alice(&Request::Block(request::Block { user: user("eve") }))
            .await?;
        scene
            .alice(&Request::Block(request::Block {
                user: user("trudy"),
            }))
            .await?;
        let dropped = scene
            .link(Role::BlockedStranger)
            .request(&Request::FriendRequest(request::FriendRequest {
                to: alice(),
                note: "trudy again".into(),
            }))
            .await?;
        anyhow::ensure!(
            dropped
                == Reply::FriendRequestSent(reply::FriendRequestSent {
                    became_friends: false
                }),
            "trudy's request got {dropped:?}"
        );
        Ok(Scene {
            group,
            post,
            file,
            ..scene
        })
    }

    fn link(&self, role: Role) -> &RelayLink {
        &self.links[&role]
    }

    fn owner(&self) -> &RelayLink {
        self.link(Role::Owner)
    }

    /// The role's user name (for a logged-out connection, a name nobody has).
    fn name(&self, role: Role) -> UserName {
        user(role.user().unwrap_or("nobody"))
    }

    /// 16 bytes no other cell uses.
    fn fresh(&self) -> [u8; 16] {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let mut id = [0xa5; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    /// A name no one has yet.
    fn fresh_name(&self, prefix: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{prefix}{n}")
    }

    /// alice's request, which the scene needs to succeed.
    async fn alice(&self, request: &Request) -> Result<Reply> {
        self.owner()
            .request(request)
            .await
            .with_context(|| format!("alice's {}", request.kind()))
    }

    /// alice asks `name` (on `link`) to be friends and they accept.
    async fn befriend_alice(&self, link: &RelayLink, name: &UserName) -> Result<()> {
        self.alice(&Request::FriendRequest(request::FriendRequest {
            to: name.clone(),
            note: "friends?".into(),
        }))
        .await?;
        link.request(&Request::AcceptFriend(request::AcceptFriend {
            from: alice(),
        }))
        .await
        .with_context(|| format!("{name} accepting alice"))?;
        Ok(())
    }

    /// The connection `role` acts on: its own, or a fresh one for a logged-out cell.
    async fn actor(&self, role: Role) -> Result<Actor<'_>> {
        Ok(match role {
            Role::LoggedOut => Actor::Fresh(raw_hello(&self.relay).await?),
            role => Actor::Main(self.link(role)),
        })
    }

    /// A user registered for one cell, in `role`'s relation to alice (a member stand-in
    /// is her friend and in her group). For cells that would change the relation itself.
    async fn stand_in(&self, role: Role) -> Result<(UserName, RelayLink)> {
        let name = self.fresh_name("standin");
        let (link, _) = raw_register(&self.relay, &name).await?;
        let name = user(&name);
        match role {
            Role::Member => {
                self.befriend_alice(&link, &name).await?;
                self.alice(&Request::InviteToGroup(request::InviteToGroup {
                    group: self.group,
                    user: name.clone(),
                }))
                .await?;
            }
            Role::Friend => self.befriend_alice(&link, &name).await?,
            Role::Stranger => {}
            Role::Requester => {
                link.request(&Request::FriendRequest(request::FriendRequest {
                    to: alice(),
                    note: "hello".into(),
                }))
                .await?;
            }
            Role::BlockedFriend => {
                self.befriend_alice(&link, &name).await?;
                self.alice(&Request::Block(request::Block { user: name.clone() }))
                    .await?;
            }
            Role::BlockedStranger => {
                self.alice(&Request::Block(request::Block { user: name.clone() }))
                    .await?;
            }
            Role::Owner | Role::LoggedOut => bail!("no stand-in for {role:?}"),
        }
        Ok((name, link))
    }

    /// alice's pending friend requests: (incoming, outgoing) names.
    async fn alice_requests(&self) -> Result<(Vec<UserName>, Vec<UserName>)> {
        match self.alice(&Request::FriendRequests).await? {
            Reply::FriendRequests(reply::FriendRequests { incoming, outgoing }) => Ok((
                incoming.into_iter().map(|r| r.user).collect(),
                outgoing.into_iter().map(|r| r.user).collect(),
            )),
            other => bail!("alice's FriendRequests got {other:?}"),
        }
    }

    /// alice's friends: (name, blocked by alice).
    async fn alice_friends(&self) -> Result<Vec<(UserName, bool)>> {
        match self.alice(&Request::Friends).await? {
            Reply::Friends(reply::Friends { friends }) => {
                Ok(friends.into_iter().map(|f| (f.user, f.blocked)).collect())
            }
            other => bail!("alice's Friends got {other:?}"),
        }
    }

    /// Where alice's durable queue stands, from a Resume on a connection of its own.
    async fn alice_queue_head(&self) -> Result<Seq> {
        let link = raw_hello(&self.relay).await?;
        let reply = link
            .request(&Request::Resume(request::Resume {
                username: alice(),
                token: self.alice_token.clone(),
            }))
            .await?;
        link.close().await;
        match reply {
            Reply::Session(reply::Session { queue_head, .. }) => Ok(queue_head),
            other => bail!("alice's Resume got {other:?}"),
        }
    }

    /// The group as alice sees it.
    async fn alice_group(&self, group: GroupId) -> Result<GroupInfo> {
        match self
            .alice(&Request::GroupInfo(request::GroupInfo { group }))
            .await?
        {
            Reply::Group(reply::Group { group }) => Ok(group),
            other => bail!("alice's GroupInfo got {other:?}"),
        }
    }

    /// A call from alice ringing for bob.
    async fn ring_bob(&self) -> Result<CallId> {
        let call = CallId(self.fresh());
        let reply = self
            .alice(&Request::CallInvite(request::CallInvite {
                call,
                to: user("bob"),
                offer: b"alice's offer".to_vec(),
            }))
            .await?;
        anyhow::ensure!(
            matches!(reply, Reply::CallRinging(_)),
            "alice's call to bob got {reply:?}"
        );
        Ok(call)
    }
}

fn share(to: &str) -> KeyShare {
    KeyShare {
        to: user(to),
        ciphertext: b"sealed key".to_vec(),
    }
}

fn signed_key(b: u8) -> SignedKey {
    SignedKey {
        key: vec![b; 32],
        signature: vec![b; 64],
    }
}

/// Uploads `bytes` as `file` on `link` (resuming where the relay stands); what it got.
async fn upload(link: &RelayLink, file: FileId, bytes: &[u8], access: FileAccess) -> Got {
    let request = Request::UploadFile(request::UploadFile {
        file,
        size: bytes.len() as u64,
        access,
    });
    let (mut send, mut recv, first) = match link.open_transfer(&request).await {
        Ok(opened) => opened,
        Err(e) => return Err(e).into(),
    };
    let Reply::UploadReady(reply::UploadReady { offset }) = first else {
        return Got::Answer(first);
    };
    let Some(rest) = usize::try_from(offset).ok().and_then(|o| bytes.get(o..)) else {
        return Got::Broken(format!("UploadReady at {offset}, past the end"));
    };
    if let Err(e) = send.write_all(rest).await {
        return Got::Broken(format!("writing the upload: {e}"));
    }
    let _ = send.finish();
    link.read_reply(&mut recv).await.into()
}

/// Wraps a cell's steps; a failure of the steps themselves is a broken cell.
fn steps<'a>(work: impl Future<Output = Result<Got>> + 'a) -> Steps<'a> {
    Box::pin(async move {
        work.await
            .unwrap_or_else(|e| Got::Broken(format!("the cell's own steps failed: {e:#}")))
    })
}

/// Sends `request` as `role`.
async fn ask(scene: &Scene, role: Role, request: &Request) -> Result<Got> {
    let actor = scene.actor(role).await?;
    Ok(actor.request(request).await.into())
}

// ---- checks of answers ---------------------------------------------------------------

fn is(ok: bool, why: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why.to_string()) }
}

fn welcome(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(matches!(reply, Reply::Welcome(_)), "not Welcome")
}

fn done(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(matches!(reply, Reply::Done), "not Done")
}

fn session(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Session(reply::Session { token, .. }) if token.0.len() == 32),
        "not a Session with a 32-byte token",
    )
}

fn session_as_alice(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Session(reply::Session { username, .. }) if *username == alice()),
        "not a Session for alice",
    )
}

fn key_count(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(matches!(reply, Reply::KeyCount(_)), "not KeyCount")
}

fn alices_key(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::ClaimedKey(reply::ClaimedKey { user, key, .. })
            if *user == alice() && key.key.len() == 32 && key.signature.len() == 64),
        "not a key of alice's",
    )
}

fn alices_fallback_key(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::ClaimedKey(reply::ClaimedKey { user, fallback: true, .. }) if *user == alice()),
        "not alice's fallback key",
    )
}

fn alices_identity(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Identity(reply::Identity { user, .. }) if *user == alice()),
        "not alice's identity",
    )
}

fn sent(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Sent(reply::Sent { duplicate: false, unshared, .. }) if unshared.is_empty()),
        "not a first-time Sent",
    )
}

/// Presence of alice: the truth for her friends, offline without a last-seen time for the
/// friend she blocked, and nothing at all for anyone else.
fn presence_of_alice(_: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::Presence(reply::Presence { users }) = reply else {
        return Err("not Presence".into());
    };
    let shown: Vec<_> = users
        .iter()
        .map(|p| (p.user.as_str(), p.online, p.last_seen_ms.is_some()))
        .collect();
    match role {
        Role::Owner | Role::Member | Role::Friend => is(
            shown == [("alice", true, false)],
            "alice should show online",
        ),
        Role::BlockedFriend => is(
            shown == [("alice", false, false)],
            "alice blocked this friend: she should show offline with no last-seen time",
        ),
        _ => is(
            shown.is_empty(),
            "alice's presence leaked to someone not her friend",
        ),
    }
}

fn request_sent(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        *reply
            == Reply::FriendRequestSent(reply::FriendRequestSent {
                became_friends: false,
            }),
        "not FriendRequestSent without becoming friends",
    )
}

/// Each user's friend list: their own, with alice hidden from the friend she blocked.
fn friends_of(_: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::Friends(reply::Friends { friends }) = reply else {
        return Err("not Friends".into());
    };
    let entry = |name: &str| friends.iter().find(|f| f.user.as_str() == name);
    match role {
        Role::Owner => {
            is(
                entry("bob").is_some() && entry("carol").is_some(),
                "bob and carol missing",
            )?;
            is(
                entry("eve").is_some_and(|e| e.blocked),
                "eve should be listed as blocked",
            )?;
            is(
                ["mallory", "peggy", "trudy"]
                    .iter()
                    .all(|n| entry(n).is_none()),
                "lists someone who is not alice's friend",
            )
        }
        Role::Member | Role::Friend => is(
            entry("alice").is_some_and(|a| a.online && a.profile.signature == ALICE_SIGNATURE),
            "alice should be listed, online, with her profile",
        ),
        Role::BlockedFriend => is(
            entry("alice").is_some_and(|a| !a.online && a.last_seen_ms.is_none()),
            "alice blocked this friend: she should be listed offline with no last-seen time",
        ),
        _ => is(entry("alice").is_none(), "lists alice, who is not a friend"),
    }
}

/// Each user's pending requests: their own only.
fn requests_of(_: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::FriendRequests(reply::FriendRequests { incoming, outgoing }) = reply else {
        return Err("not FriendRequests".into());
    };
    let has = |list: &[uchat_wire::FriendRequestEntry], name: &str| {
        list.iter().any(|r| r.user.as_str() == name)
    };
    match role {
        Role::Owner => {
            is(has(incoming, "peggy"), "peggy's request is missing")?;
            is(
                !has(incoming, "trudy"),
                "trudy's request after the block should have gone nowhere",
            )
        }
        Role::Requester => is(has(outgoing, "alice"), "the request to alice is missing"),
        _ => is(
            !has(incoming, "alice") && !has(outgoing, "alice"),
            "shows a request with alice that does not exist",
        ),
    }
}

/// A page holding a whole (short) list: its entries, or what is wrong with it.
fn only_page<T>(entries: &[T], next_named: bool) -> Result<&[T], String> {
    if next_named {
        return Err("the only page of a short list names a next page".into());
    }
    Ok(entries)
}

/// Each user's friend list in one page, checked as `Friends` is.
fn friends_page_of(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::FriendsPage(reply::FriendsPage { friends, next }) = reply else {
        return Err("not FriendsPage".into());
    };
    let friends = only_page(friends, next.is_some())?.to_vec();
    friends_of(scene, role, &Reply::Friends(reply::Friends { friends }))
}

/// The requests others sent each user, in one page: their own only.
fn incoming_requests_page_of(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::FriendRequestsPage(reply::FriendRequestsPage { requests, next }) = reply else {
        return Err("not FriendRequestsPage".into());
    };
    let incoming = only_page(requests, next.is_some())?.to_vec();
    match role {
        Role::Owner => requests_of(
            scene,
            role,
            &Reply::FriendRequests(reply::FriendRequests {
                incoming,
                outgoing: Vec::new(),
            }),
        ),
        _ => is(
            !incoming.iter().any(|r| r.user == alice()),
            "shows a request from alice that does not exist",
        ),
    }
}

/// The requests each user sent, in one page: their own only.
fn outgoing_requests_page_of(_: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::FriendRequestsPage(reply::FriendRequestsPage { requests, next }) = reply else {
        return Err("not FriendRequestsPage".into());
    };
    let to_alice = only_page(requests, next.is_some())?
        .iter()
        .any(|r| r.user == alice());
    match role {
        Role::Requester => is(to_alice, "the request to alice is missing"),
        _ => is(!to_alice, "shows a request to alice that does not exist"),
    }
}

/// The groups each user is in, in one page, checked as `Groups` is.
fn groups_page_of(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::GroupsPage(reply::GroupsPage { groups, next }) = reply else {
        return Err("not GroupsPage".into());
    };
    let groups = only_page(groups, next.is_some())?.to_vec();
    groups_of(scene, role, &Reply::Groups(reply::Groups { groups }))
}

fn alices_profile(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Profile(reply::Profile { user, profile, .. })
            if *user == alice() && profile.signature == ALICE_SIGNATURE),
        "not alice's profile with her signature",
    )
}

/// A group made by the asker with alice named: alice is in it unless she blocked the
/// maker, who owns it.
fn made_group(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::Group(reply::Group { group }) = reply else {
        return Err("not Group".into());
    };
    let members: Vec<&str> = group.members.iter().map(|m| m.user.as_str()).collect();
    is(
        group.owner == scene.name(role),
        "the maker does not own the group",
    )?;
    match role {
        Role::Owner => is(members == ["alice"], "alice's group should hold only her"),
        Role::BlockedFriend => is(
            !members.contains(&"alice"),
            "alice blocked the maker, yet she was added to their group",
        ),
        _ => is(members.contains(&"alice"), "alice was not added"),
    }
}

fn groups_of(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::Groups(reply::Groups { groups }) = reply else {
        return Err("not Groups".into());
    };
    let listed = groups.iter().any(|g| g.id == scene.group);
    match role {
        Role::Owner | Role::Member => is(listed, "alice's group is missing"),
        _ => is(!listed, "lists alice's group to someone not in it"),
    }
}

fn alices_group(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Group(reply::Group { group })
            if group.id == scene.group
                && group.owner == alice()
                && group.members.iter().any(|m| m.user.as_str() == "bob")),
        "not alice's group with bob",
    )
}

fn group_with_carol(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Group(reply::Group { group })
            if group.id == scene.group && group.members.iter().any(|m| m.user.as_str() == "carol")),
        "carol is not in alice's group",
    )
}

fn group_without_carol(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Group(reply::Group { group })
            if group.id == scene.group && group.members.iter().all(|m| m.user.as_str() != "carol")),
        "carol is still in alice's group",
    )
}

fn uploaded(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        *reply
            == Reply::Uploaded(reply::Uploaded {
                size: scene.file_bytes.len() as u64,
            }),
        "not Uploaded with the file's size",
    )
}

fn download_ready(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        *reply
            == Reply::DownloadReady(reply::DownloadReady {
                size: scene.file_bytes.len() as u64,
                owner: Some(alice()),
            }),
        "not DownloadReady for alice's file",
    )
}

fn ringing(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(matches!(reply, Reply::CallRinging(_)), "not CallRinging")
}

fn looks_offline(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        *reply
            == Reply::CallEnded(reply::CallEnded {
                reason: CallEndReason::Offline,
            }),
        "the one who blocked the caller should look offline",
    )
}

fn connected(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::CallConnected(_)),
        "not CallConnected",
    )
}

fn posted(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::MomentPosted(reply::MomentPosted { duplicate: false, unshared, .. }) if unshared.is_empty()),
        "not a first-time MomentPosted",
    )
}

fn feed_of(scene: &Scene, role: Role, reply: &Reply) -> Result<(), String> {
    let Reply::MomentFeed(reply::MomentFeed { posts, .. }) = reply else {
        return Err("not MomentFeed".into());
    };
    let shows = posts.iter().any(|p| p.id == scene.post);
    match role {
        Role::Owner | Role::Member => is(shows, "alice's post is missing"),
        _ => is(!shows, "alice's post leaked into the feed"),
    }
}

fn alices_post(scene: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::Moment(reply::Moment { post }) if post.id == scene.post && post.author == alice()),
        "not alice's post",
    )
}

fn commented(_: &Scene, _: Role, reply: &Reply) -> Result<(), String> {
    is(
        matches!(reply, Reply::MomentCommented(_)),
        "not MomentCommented",
    )
}

// ---- the table -----------------------------------------------------------------------

/// The row of `request`'s kind. The match has no catch-all: a new kind of request does
/// not compile until it has a row here.
fn row_of(request: &Request) -> Row {
    use ErrorCode::*;
    let (exercise, cells) = match request {
        // ---- session ----
        Request::Hello(_) => (
            Exercise::Plain(|_, _| {
                Request::Hello(request::Hello {
                    protocol: PROTOCOL_VERSION,
                    client: "authz".into(),
                })
            }),
            // Saying Hello again changes nothing: the login stays.
            Cells {
                owner: Allowed(welcome),
                member: Allowed(welcome),
                friend: Allowed(welcome),
                stranger: Allowed(welcome),
                requester: Allowed(welcome),
                blocked_friend: Allowed(welcome),
                blocked_stranger: Allowed(welcome),
                logged_out: Allowed(welcome),
            },
        ),
        // A connection logs in once; a refused Register creates no account.
        Request::Register(_) => (
            Exercise::Steps(register),
            Cells {
                owner: Refused(ProtocolViolation),
                member: Refused(ProtocolViolation),
                friend: Refused(ProtocolViolation),
                stranger: Refused(ProtocolViolation),
                requester: Refused(ProtocolViolation),
                blocked_friend: Refused(ProtocolViolation),
                blocked_stranger: Refused(ProtocolViolation),
                logged_out: Allowed(session),
            },
        ),
        // Logging in as alice (with her password) on a connection logged in already, even
        // as alice herself, is out of order.
        Request::Login(_) => (
            Exercise::Plain(|_, _| {
                Request::Login(request::Login {
                    username: alice(),
                    password: Password::new(uchat_tests::PASSWORD),
                })
            }),
            Cells {
                owner: Refused(ProtocolViolation),
                member: Refused(ProtocolViolation),
                friend: Refused(ProtocolViolation),
                stranger: Refused(ProtocolViolation),
                requester: Refused(ProtocolViolation),
                blocked_friend: Refused(ProtocolViolation),
                blocked_stranger: Refused(ProtocolViolation),
                logged_out: Allowed(session_as_alice),
            },
        ),
        // Resuming alice's session (with her token) likewise.
        Request::Resume(_) => (
            Exercise::Plain(|scene, _| {
                Request::Resume(request::Resume {
                    username: alice(),
                    token: scene.alice_token.clone(),
                })
            }),
            Cells {
                owner: Refused(ProtocolViolation),
                member: Refused(ProtocolViolation),
                friend: Refused(ProtocolViolation),
                stranger: Refused(ProtocolViolation),
                requester: Refused(ProtocolViolation),
                blocked_friend: Refused(ProtocolViolation),
                blocked_stranger: Refused(ProtocolViolation),
                logged_out: Allowed(session_as_alice),
            },
        ),
        // After a Logout the connection is logged out (checked in the steps).
        Request::Logout => (
            Exercise::Steps(logout),
            Cells {
                owner: Allowed(done),
                member: NotApplicable(ONLY_ONESELF),
                friend: NotApplicable(ONLY_ONESELF),
                stranger: NotApplicable(ONLY_ONESELF),
                requester: NotApplicable(ONLY_ONESELF),
                blocked_friend: NotApplicable(ONLY_ONESELF),
                blocked_stranger: NotApplicable(ONLY_ONESELF),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // ---- keys ----
        Request::UploadKeys(_) => (
            Exercise::Plain(|_, _| {
                Request::UploadKeys(request::UploadKeys {
                    one_time_keys: vec![signed_key(0x31)],
                    fallback_key: None,
                })
            }),
            oneself(Allowed(key_count)),
        ),
        Request::KeyCount => (
            Exercise::Plain(|_, _| Request::KeyCount),
            oneself(Allowed(key_count)),
        ),
        // By a stand-in, since it closes the user's other connections.
        Request::ReplaceIdentity(_) => (
            Exercise::Steps(replace_identity),
            oneself(Allowed(key_count)),
        ),
        // Only friends (or co-members) may claim alice's keys: strangers cannot drain
        // them. The friend alice blocked gets her reusable fallback key only: the block
        // stays silent, and drains nothing.
        Request::ClaimKey(_) => (
            Exercise::Plain(|_, _| Request::ClaimKey(request::ClaimKey { user: alice() })),
            Cells {
                owner: NotApplicable(
                    "a session with oneself is meaningless; no rule covers claiming one's own key",
                ),
                member: Allowed(alices_key),
                friend: Allowed(alices_key),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(alices_fallback_key),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // Public identity keys are public: any logged-in user may fetch them.
        Request::Identity(_) => (
            Exercise::Plain(|_, _| Request::Identity(request::Identity { user: alice() })),
            Cells {
                owner: Allowed(alices_identity),
                member: Allowed(alices_identity),
                friend: Allowed(alices_identity),
                stranger: Allowed(alices_identity),
                requester: Allowed(alices_identity),
                blocked_friend: Allowed(alices_identity),
                blocked_stranger: Allowed(alices_identity),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // ---- messages ----
        // Between friends only (nobody is their own friend); from the friend alice blocked
        // it is answered like a delivery and stored nowhere (the steps check alice's
        // queue).
        Request::Send(_) => (
            Exercise::Steps(send),
            Cells {
                owner: Refused(NotFriends),
                member: Allowed(sent),
                friend: Allowed(sent),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(sent),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        Request::Ack(_) => (
            Exercise::Plain(|_, _| Request::Ack(request::Ack { through: Seq(0) })),
            oneself(Allowed(done)),
        ),
        // ---- friends, presence, profiles ----
        // Anyone may ask; only friends hear the answer about alice.
        Request::Presence(_) => (
            Exercise::Plain(|_, _| {
                Request::Presence(request::Presence {
                    users: vec![alice()],
                })
            }),
            Cells {
                owner: Allowed(presence_of_alice),
                member: Allowed(presence_of_alice),
                friend: Allowed(presence_of_alice),
                stranger: Allowed(presence_of_alice),
                requester: Allowed(presence_of_alice),
                blocked_friend: Allowed(presence_of_alice),
                blocked_stranger: Allowed(presence_of_alice),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // Through stand-ins. A stranger's request is pending after (the steps check alice
        // sees it); one alice blocked is answered alike and goes nowhere.
        Request::FriendRequest(_) => (
            Exercise::Steps(friend_request),
            Cells {
                owner: Refused(InvalidInput),
                member: Refused(AlreadyFriends),
                friend: Refused(AlreadyFriends),
                stranger: Allowed(request_sent),
                requester: Refused(DuplicateRequest),
                blocked_friend: Refused(AlreadyFriends),
                blocked_stranger: Allowed(request_sent),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // alice accepts a stand-in's request to her; nobody can accept a request alice
        // never made, least of all the one who asked her.
        Request::AcceptFriend(_) => (Exercise::Steps(accept_friend), answering_requests()),
        Request::RejectFriend(_) => (Exercise::Steps(reject_friend), answering_requests()),
        // Through stand-ins: ending one's own friendship with alice (she is not her own
        // friend to end).
        Request::RemoveFriend(_) => (
            Exercise::Steps(remove_friend),
            Cells {
                owner: Refused(NotFriends),
                member: Allowed(done),
                friend: Allowed(done),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(done),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // Through stand-ins: anyone may block anyone but themselves.
        Request::Block(_) => (
            Exercise::Steps(block),
            Cells {
                owner: Refused(InvalidInput),
                member: Allowed(done),
                friend: Allowed(done),
                stranger: Allowed(done),
                requester: Allowed(done),
                blocked_friend: Allowed(done),
                blocked_stranger: Allowed(done),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // Lifting one's own block of alice (there is none) is harmless; alice's blocks of
        // eve and trudy stay whoever asks (the steps check).
        Request::Unblock(_) => (
            Exercise::Steps(unblock),
            Cells {
                owner: Allowed(done),
                member: Allowed(done),
                friend: Allowed(done),
                stranger: Allowed(done),
                requester: Allowed(done),
                blocked_friend: Allowed(done),
                blocked_stranger: Allowed(done),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // Each user's own list; what it says about alice follows her relation to them.
        Request::Friends => (
            Exercise::Plain(|_, _| Request::Friends),
            everyone(Allowed(friends_of)),
        ),
        Request::FriendRequests => (
            Exercise::Plain(|_, _| Request::FriendRequests),
            everyone(Allowed(requests_of)),
        ),
        // The same lists a page at a time, from a cursor before every name (so the whole
        // list): still each user's own.
        Request::FriendsPage(_) => (
            Exercise::Plain(|_, _| {
                Request::FriendsPage(request::FriendsPage {
                    after: Some(name_before_everyone()),
                    limit: 1000,
                })
            }),
            everyone(Allowed(friends_page_of)),
        ),
        Request::IncomingFriendRequestsPage(_) => (
            Exercise::Plain(|_, _| {
                Request::IncomingFriendRequestsPage(request::IncomingFriendRequestsPage {
                    after: Some(name_before_everyone()),
                    limit: 1000,
                })
            }),
            everyone(Allowed(incoming_requests_page_of)),
        ),
        Request::OutgoingFriendRequestsPage(_) => (
            Exercise::Plain(|_, _| {
                Request::OutgoingFriendRequestsPage(request::OutgoingFriendRequestsPage {
                    after: Some(name_before_everyone()),
                    limit: 1000,
                })
            }),
            everyone(Allowed(outgoing_requests_page_of)),
        ),
        Request::SetProfile(_) => (
            Exercise::Plain(|_, _| {
                Request::SetProfile(request::SetProfile {
                    signature: Some(ALICE_SIGNATURE.into()),
                    avatar: None,
                })
            }),
            oneself(Allowed(alices_profile)),
        ),
        // For friends and oneself only: a pending request does not open alice's profile
        // to the one who asked her (SECURITY.md lets only the asked read the asker's).
        Request::GetProfile(_) => (
            Exercise::Plain(|_, _| {
                Request::GetProfile(request::GetProfile {
                    user: alice(),
                    known_avatar_version: None,
                })
            }),
            Cells {
                owner: Allowed(alices_profile),
                member: Allowed(alices_profile),
                friend: Allowed(alices_profile),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                // Blocked users stop seeing alice's profile, as they stop getting its changes.
                blocked_friend: Refused(NotFriends),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // ---- groups ----
        // A group with alice named: only friends may add her, and not one she blocked.
        Request::CreateGroup(_) => (
            Exercise::Steps(create_group),
            Cells {
                owner: Allowed(made_group),
                member: Allowed(made_group),
                friend: Allowed(made_group),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(made_group),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        Request::Groups => (
            Exercise::Plain(|_, _| Request::Groups),
            everyone(Allowed(groups_of)),
        ),
        Request::GroupsPage(_) => (
            Exercise::Plain(|_, _| {
                Request::GroupsPage(request::GroupsPage {
                    after: Some(GroupId([0; 16])),
                    limit: 1000,
                })
            }),
            everyone(Allowed(groups_page_of)),
        ),
        Request::GroupInfo(_) => (
            Exercise::Plain(|scene, _| {
                Request::GroupInfo(request::GroupInfo { group: scene.group })
            }),
            members_only(Allowed(alices_group), Allowed(alices_group)),
        ),
        // The owner adds carol; bob tries to add carol; everyone else tries to add
        // themselves.
        Request::InviteToGroup(_) => (
            Exercise::Steps(invite_to_group),
            members_only(Allowed(group_with_carol), Refused(NotGroupOwner)),
        ),
        // The owner removes carol (added for the cell); bob tries to remove alice;
        // everyone else tries to remove bob.
        Request::KickFromGroup(_) => (
            Exercise::Steps(kick_from_group),
            members_only(Allowed(group_without_carol), Refused(NotGroupOwner)),
        ),
        // Of a group of alice and bob made for the cell; the steps check who is left.
        Request::LeaveGroup(_) => (
            Exercise::Steps(leave_group),
            members_only(Allowed(done), Allowed(done)),
        ),
        Request::SyncGroup(_) => (
            Exercise::Plain(|scene, _| {
                Request::SyncGroup(request::SyncGroup { group: scene.group })
            }),
            members_only(Allowed(done), Allowed(done)),
        ),
        Request::GroupSend(_) => (
            Exercise::Steps(group_send),
            members_only(Allowed(sent), Allowed(sent)),
        ),
        // ---- files ----
        // Under alice's file id: only she may (re)upload it.
        Request::UploadFile(_) => (
            Exercise::Steps(upload_file),
            Cells {
                owner: Allowed(uploaded),
                member: Refused(InvalidInput),
                friend: Refused(InvalidInput),
                stranger: Refused(InvalidInput),
                requester: Refused(InvalidInput),
                blocked_friend: Refused(InvalidInput),
                blocked_stranger: Refused(InvalidInput),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // The uploader and the recipient; anyone else, even with the id, is not allowed.
        Request::DownloadFile(_) => (
            Exercise::Steps(download_file),
            Cells {
                owner: Allowed(download_ready),
                member: Allowed(download_ready),
                friend: Refused(NotAllowed),
                stranger: Refused(NotAllowed),
                requester: Refused(NotAllowed),
                blocked_friend: Refused(NotAllowed),
                blocked_stranger: Refused(NotAllowed),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // ---- calls ----
        // Calling alice: friends only; for the friend she blocked she looks offline.
        Request::CallInvite(_) => (
            Exercise::Steps(call_invite),
            Cells {
                owner: Refused(InvalidInput),
                member: Allowed(ringing),
                friend: Allowed(ringing),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(looks_offline),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        // A call alice places to bob, ringing for him: only he may take or refuse it; she
        // (its caller) or bob may end it; for everyone else there is no such call.
        Request::CallAnswer(_) => (
            Exercise::Steps(call_answer),
            call_cells(Refused(NoSuchCall), Allowed(connected)),
        ),
        Request::CallReject(_) => (
            Exercise::Steps(call_reject),
            call_cells(Refused(NoSuchCall), Allowed(done)),
        ),
        Request::CallHangup(_) => (
            Exercise::Steps(call_hangup),
            call_cells(Allowed(done), Allowed(done)),
        ),
        // ---- moments ----
        // A post shared with alice: only her friends may, and one she blocked leaves her
        // out (the steps check whether alice can see it).
        Request::MomentPost(_) => (
            Exercise::Steps(moment_post),
            Cells {
                owner: Refused(InvalidInput),
                member: Allowed(posted),
                friend: Allowed(posted),
                stranger: Refused(NotFriends),
                requester: Refused(NotFriends),
                blocked_friend: Allowed(posted),
                blocked_stranger: Refused(NotFriends),
                logged_out: NOT_LOGGED_IN,
            },
        ),
        Request::MomentFeed(_) => (
            Exercise::Plain(|_, _| {
                Request::MomentFeed(request::MomentFeed {
                    before: None,
                    limit: 50,
                })
            }),
            everyone(Allowed(feed_of)),
        ),
        // alice's post is for her and bob; eve lost it with the block.
        Request::MomentGet(_) => (
            Exercise::Plain(|scene, _| Request::MomentGet(request::MomentGet { post: scene.post })),
            viewers_only(Allowed(alices_post), Allowed(alices_post), NoSuchPost),
        ),
        Request::MomentLike(_) => (
            Exercise::Plain(|scene, _| {
                Request::MomentLike(request::MomentLike {
                    post: scene.post,
                    ciphertext: b"sealed like".to_vec(),
                })
            }),
            viewers_only(Allowed(done), Allowed(done), NoSuchPost),
        ),
        Request::MomentUnlike(_) => (
            Exercise::Plain(|scene, _| {
                Request::MomentUnlike(request::MomentUnlike { post: scene.post })
            }),
            viewers_only(Allowed(done), Allowed(done), NoSuchPost),
        ),
        Request::MomentComment(_) => (
            Exercise::Plain(|scene, _| {
                Request::MomentComment(request::MomentComment {
                    post: scene.post,
                    id: CommentId(scene.fresh()),
                    reply_to: None,
                    ciphertext: b"sealed comment".to_vec(),
                })
            }),
            viewers_only(Allowed(commented), Allowed(commented), NoSuchPost),
        ),
        // A post alice makes for the cell, shared with bob: only she may delete it.
        Request::MomentDelete(_) => (
            Exercise::Steps(moment_delete),
            viewers_only(Allowed(done), Refused(NotAllowed), NoSuchPost),
        ),
        // A comment alice makes for the cell on her post: bob sees it but may not delete
        // it; to everyone else it does not exist.
        Request::MomentDeleteComment(_) => (
            Exercise::Steps(moment_delete_comment),
            viewers_only(Allowed(done), Refused(NotAllowed), NoSuchComment),
        ),
        // ---- from a newer peer ----
        // Refused as unknown, before the login is even looked at.
        Request::Unknown => (
            Exercise::Steps(unknown),
            everyone(Refused(ProtocolViolation)),
        ),
    };
    let name = format!("{request:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    Row {
        kind: request.kind(),
        name,
        exercise,
        cells,
    }
}

/// The same expectation for every role (the logged-out one included).
fn everyone(expect: Expect) -> Cells {
    Cells {
        owner: expect,
        member: expect,
        friend: expect,
        stranger: expect,
        requester: expect,
        blocked_friend: expect,
        blocked_stranger: expect,
        logged_out: match expect {
            Refused(ErrorCode::ProtocolViolation) => expect,
            _ => NOT_LOGGED_IN,
        },
    }
}

/// A request about the asker alone: the owner's cell is the asker acting on themself.
fn oneself(owner: Expect) -> Cells {
    Cells {
        owner,
        member: NotApplicable(ONLY_ONESELF),
        friend: NotApplicable(ONLY_ONESELF),
        stranger: NotApplicable(ONLY_ONESELF),
        requester: NotApplicable(ONLY_ONESELF),
        blocked_friend: NotApplicable(ONLY_ONESELF),
        blocked_stranger: NotApplicable(ONLY_ONESELF),
        logged_out: NOT_LOGGED_IN,
    }
}

/// About alice's group: the owner, the member, and "no such group" for everyone not in it.
fn members_only(owner: Expect, member: Expect) -> Cells {
    let outside = Refused(ErrorCode::NoSuchGroup);
    Cells {
        owner,
        member,
        friend: outside,
        stranger: outside,
        requester: outside,
        blocked_friend: outside,
        blocked_stranger: outside,
        logged_out: NOT_LOGGED_IN,
    }
}

/// About alice's post: the author, the viewer, and `unseen` for everyone who may not see
/// it, eve (a viewer until alice blocked her) included.
fn viewers_only(owner: Expect, member: Expect, unseen: ErrorCode) -> Cells {
    Cells {
        owner,
        member,
        friend: Refused(unseen),
        stranger: Refused(unseen),
        requester: Refused(unseen),
        blocked_friend: Refused(unseen),
        blocked_stranger: Refused(unseen),
        logged_out: NOT_LOGGED_IN,
    }
}

/// About a call alice places to bob: the caller, the callee, and "no such call" for the
/// rest.
fn call_cells(owner: Expect, member: Expect) -> Cells {
    let outside = Refused(ErrorCode::NoSuchCall);
    Cells {
        owner,
        member,
        friend: outside,
        stranger: outside,
        requester: outside,
        blocked_friend: outside,
        blocked_stranger: outside,
        logged_out: NOT_LOGGED_IN,
    }
}

/// Answering a friend request: alice answers one made to her; everyone else names alice,
/// who asked none of them.
fn answering_requests() -> Cells {
    let none = Refused(ErrorCode::NoSuchRequest);
    Cells {
        owner: Allowed(done),
        member: none,
        friend: none,
        stranger: none,
        requester: none,
        blocked_friend: none,
        blocked_stranger: none,
        logged_out: NOT_LOGGED_IN,
    }
}

// ---- the steps of cells that need more than one request -------------------------------

/// Registers a new name; a refused Register must not have created the account.
fn register(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let name = user(&scene.fresh_name("newcomer"));
        let request = Request::Register(request::Register {
            username: name.clone(),
            password: Password::new(uchat_tests::PASSWORD),
            identity: IdentityKeys {
                curve25519: vec![0x51; 32],
                ed25519: vec![0x52; 32],
            },
            one_time_keys: vec![signed_key(0x53)],
            fallback_key: None,
        });
        let got = ask(scene, role, &request).await?;
        if got.is_answer() {
            return Ok(got);
        }
        let exists = scene
            .owner()
            .request(&Request::Identity(request::Identity { user: name.clone() }))
            .await
            .is_ok();
        Ok(got.then(exists.then(|| format!("the refused Register created the account '{name}'"))))
    })
}

/// A fresh login of alice logs out; the connection is logged out after.
fn logout(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        if role == Role::LoggedOut {
            return ask(scene, role, &Request::Logout).await;
        }
        let link = raw_login(&scene.relay, "alice").await?;
        let got: Got = link.request(&Request::Logout).await.into();
        let after = link.request(&Request::KeyCount).await;
        link.close().await;
        let still_in = !matches!(&after, Err(ConnectionError::Refused(e)) if e.code == ErrorCode::NotAuthenticated);
        Ok(got.then(still_in.then(|| format!("after it KeyCount got {after:?}"))))
    })
}

/// A user replaces their own identity keys on a connection logged in with the password,
/// and the relay serves the new ones. The user is a stand-in registered for the cell: the
/// request closes the user's other connections, and alice's is the scene's.
fn replace_identity(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let identity = IdentityKeys {
            curve25519: vec![0x41; 32],
            ed25519: vec![0x42; 32],
        };
        let request = Request::ReplaceIdentity(request::ReplaceIdentity {
            identity: identity.clone(),
            one_time_keys: vec![signed_key(0x43)],
            fallback_key: Some(signed_key(0x44)),
        });
        if role == Role::LoggedOut {
            return ask(scene, role, &request).await;
        }
        let (name, link) = scene.stand_in(Role::Stranger).await?;
        let got: Got = link.request(&request).await.into();
        if !got.is_answer() {
            return Ok(got);
        }
        let served = scene
            .owner()
            .request(&Request::Identity(request::Identity { user: name }))
            .await;
        let problem = match served {
            Ok(Reply::Identity(reply::Identity { identity: now, .. })) if now == identity => None,
            other => Some(format!(
                "the relay then serves {}",
                describe_got(&other.into())
            )),
        };
        Ok(got.then(problem))
    })
}

/// A message to alice; her queue grows by one for a friend, by none for the one she
/// blocked.
fn send(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let before = scene.alice_queue_head().await?;
        let got = ask(
            scene,
            role,
            &Request::Send(request::Send {
                to: alice(),
                id: MessageId(scene.fresh()),
                ciphertext: b"sealed message".to_vec(),
            }),
        )
        .await?;
        if !got.is_answer() {
            return Ok(got);
        }
        let grew = scene.alice_queue_head().await?.0.saturating_sub(before.0);
        let want = if role == Role::BlockedFriend { 0 } else { 1 };
        Ok(got.then(
            (grew != want)
                .then(|| format!("alice's queue grew by {grew} events where it should by {want}")),
        ))
    })
}

fn friend_request(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let request = Request::FriendRequest(request::FriendRequest {
            to: alice(),
            note: "let's be friends".into(),
        });
        if matches!(role, Role::Owner | Role::LoggedOut) {
            return ask(scene, role, &request).await;
        }
        let (name, link) = scene.stand_in(role).await?;
        let got: Got = link.request(&request).await.into();
        if !got.is_answer() {
            return Ok(got);
        }
        let (incoming, _) = scene.alice_requests().await?;
        let pending = incoming.contains(&name);
        let problem = match role {
            Role::BlockedStranger if pending => Some("alice got the request of one she blocked"),
            Role::Stranger if !pending => Some("alice never got the request"),
            _ => None,
        };
        Ok(got.then(problem.map(String::from)))
    })
}

fn accept_friend(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        if role != Role::Owner {
            return ask(
                scene,
                role,
                &Request::AcceptFriend(request::AcceptFriend { from: alice() }),
            )
            .await;
        }
        let (name, _link) = scene.stand_in(Role::Requester).await?;
        let got = ask(
            scene,
            role,
            &Request::AcceptFriend(request::AcceptFriend { from: name.clone() }),
        )
        .await?;
        let friends = scene.alice_friends().await?;
        let befriended = friends.iter().any(|(f, _)| *f == name);
        Ok(got.then((!befriended).then(|| "they are not friends after it".to_string())))
    })
}

fn reject_friend(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        if role != Role::Owner {
            return ask(
                scene,
                role,
                &Request::RejectFriend(request::RejectFriend { from: alice() }),
            )
            .await;
        }
        let (name, _link) = scene.stand_in(Role::Requester).await?;
        let got = ask(
            scene,
            role,
            &Request::RejectFriend(request::RejectFriend { from: name.clone() }),
        )
        .await?;
        let (incoming, _) = scene.alice_requests().await?;
        Ok(got.then(
            incoming
                .contains(&name)
                .then(|| "the request is still pending".to_string()),
        ))
    })
}

fn remove_friend(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let request = Request::RemoveFriend(request::RemoveFriend { user: alice() });
        if matches!(role, Role::Owner | Role::LoggedOut) {
            return ask(scene, role, &request).await;
        }
        let (name, link) = scene.stand_in(role).await?;
        let got: Got = link.request(&request).await.into();
        let friends = scene.alice_friends().await?;
        let still = got.is_answer() && friends.iter().any(|(f, _)| *f == name);
        Ok(got.then(still.then(|| "alice still lists them as a friend".to_string())))
    })
}

fn block(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let request = Request::Block(request::Block { user: alice() });
        if matches!(role, Role::Owner | Role::LoggedOut) {
            return ask(scene, role, &request).await;
        }
        let (_, link) = scene.stand_in(role).await?;
        Ok(link.request(&request).await.into())
    })
}

/// Unblocking alice; alice's own block of eve must stand after it.
fn unblock(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let got = ask(
            scene,
            role,
            &Request::Unblock(request::Unblock { user: alice() }),
        )
        .await?;
        let friends = scene.alice_friends().await?;
        let eve_blocked = friends.iter().any(|(f, b)| f.as_str() == "eve" && *b);
        Ok(got.then((!eve_blocked).then(|| "alice's block of eve was lifted".to_string())))
    })
}

/// A group naming alice; whatever it made is taken apart after.
fn create_group(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let actor = scene.actor(role).await?;
        let got: Got = actor
            .request(&Request::CreateGroup(request::CreateGroup {
                name: "made in a cell".into(),
                members: vec![alice()],
            }))
            .await
            .into();
        if let Got::Answer(Reply::Group(reply::Group { group })) = &got {
            let _ = actor
                .request(&Request::LeaveGroup(request::LeaveGroup {
                    group: group.id,
                }))
                .await;
            let _ = scene
                .owner()
                .request(&Request::LeaveGroup(request::LeaveGroup {
                    group: group.id,
                }))
                .await;
        }
        Ok(got)
    })
}

fn invite_to_group(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let invitee = match role {
            Role::Owner | Role::Member => user("carol"),
            other => scene.name(other),
        };
        let got = ask(
            scene,
            role,
            &Request::InviteToGroup(request::InviteToGroup {
                group: scene.group,
                user: invitee.clone(),
            }),
        )
        .await?;
        let _ = scene
            .owner()
            .request(&Request::KickFromGroup(request::KickFromGroup {
                group: scene.group,
                user: invitee,
            }))
            .await;
        Ok(got)
    })
}

fn kick_from_group(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let kicked = match role {
            Role::Owner => {
                scene
                    .alice(&Request::InviteToGroup(request::InviteToGroup {
                        group: scene.group,
                        user: user("carol"),
                    }))
                    .await?;
                user("carol")
            }
            Role::Member => alice(),
            _ => user("bob"),
        };
        let got = ask(
            scene,
            role,
            &Request::KickFromGroup(request::KickFromGroup {
                group: scene.group,
                user: kicked,
            }),
        )
        .await?;
        // Put the scene back if the cell changed it.
        let group = scene.alice_group(scene.group).await?;
        if group.members.iter().any(|m| m.user.as_str() == "carol") {
            scene
                .alice(&Request::KickFromGroup(request::KickFromGroup {
                    group: scene.group,
                    user: user("carol"),
                }))
                .await?;
        }
        if group.members.iter().all(|m| m.user.as_str() != "bob") {
            scene
                .alice(&Request::InviteToGroup(request::InviteToGroup {
                    group: scene.group,
                    user: user("bob"),
                }))
                .await?;
        }
        Ok(got)
    })
}

/// Leaving a group of alice and bob made for the cell: after the owner leaves bob owns
/// it; after bob leaves alice is alone.
fn leave_group(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let group = match scene
            .alice(&Request::CreateGroup(request::CreateGroup {
                name: "to leave".into(),
                members: vec![user("bob")],
            }))
            .await?
        {
            Reply::Group(reply::Group { group }) => group.id,
            other => bail!("CreateGroup got {other:?}"),
        };
        let got = ask(
            scene,
            role,
            &Request::LeaveGroup(request::LeaveGroup { group }),
        )
        .await?;
        let bob = scene.link(Role::Member);
        let problem = match (&got, role) {
            (Got::Answer(_), Role::Owner) => {
                match bob
                    .request(&Request::GroupInfo(request::GroupInfo { group }))
                    .await
                {
                    Ok(Reply::Group(reply::Group { group: info }))
                        if info.owner.as_str() == "bob" =>
                    {
                        None
                    }
                    other => Some(format!("bob does not own the group after: {other:?}")),
                }
            }
            (Got::Answer(_), Role::Member) => {
                let info = scene.alice_group(group).await?;
                info.members
                    .iter()
                    .any(|m| m.user.as_str() == "bob")
                    .then(|| "bob is still a member".to_string())
            }
            _ => None,
        };
        let _ = bob
            .request(&Request::LeaveGroup(request::LeaveGroup { group }))
            .await;
        let _ = scene
            .owner()
            .request(&Request::LeaveGroup(request::LeaveGroup { group }))
            .await;
        Ok(got.then(problem))
    })
}

fn group_send(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let epoch = scene.alice_group(scene.group).await?.epoch;
        ask(
            scene,
            role,
            &Request::GroupSend(request::GroupSend {
                group: scene.group,
                epoch,
                id: MessageId(scene.fresh()),
                ciphertext: b"sealed group message".to_vec(),
                key_shares: Vec::new(),
            }),
        )
        .await
    })
}

/// Uploading under alice's file id, complete already: she is told so, anyone else may
/// not take the id.
fn upload_file(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let actor = scene.actor(role).await?;
        let access = FileAccess::Users {
            users: vec![user("bob")],
        };
        Ok(upload(&actor, scene.file, &scene.file_bytes, access).await)
    })
}

/// Downloading alice's file; whoever may gets exactly her bytes.
fn download_file(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let actor = scene.actor(role).await?;
        let request = Request::DownloadFile(request::DownloadFile {
            file: scene.file,
            offset: 0,
        });
        let (_send, mut recv, reply) = match actor.open_transfer(&request).await {
            Ok(opened) => opened,
            Err(e) => return Ok(Err(e).into()),
        };
        let bytes = recv.read_to_end(1 << 20).await;
        let problem = match bytes {
            Ok(bytes) if bytes == scene.file_bytes => None,
            Ok(bytes) => Some(format!(
                "the stream held {} bytes that are not alice's file",
                bytes.len()
            )),
            Err(e) => Some(format!("the download broke: {e}")),
        };
        Ok(Got::Answer(reply).then(problem))
    })
}

/// Calling alice; a call that rings is hung up after.
fn call_invite(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let actor = scene.actor(role).await?;
        let call = CallId(scene.fresh());
        let got: Got = actor
            .request(&Request::CallInvite(request::CallInvite {
                call,
                to: alice(),
                offer: b"an offer".to_vec(),
            }))
            .await
            .into();
        let _ = actor
            .request(&Request::CallHangup(request::CallHangup { call }))
            .await;
        Ok(got)
    })
}

/// `request(call)` on a call alice places to bob for the cell, then hung up.
async fn on_ringing_call(
    scene: &Scene,
    role: Role,
    request: impl Fn(CallId) -> Request,
) -> Result<Got> {
    let call = scene.ring_bob().await?;
    let got = ask(scene, role, &request(call)).await?;
    let _ = scene
        .owner()
        .request(&Request::CallHangup(request::CallHangup { call }))
        .await;
    Ok(got)
}

fn call_answer(scene: &Scene, role: Role) -> Steps<'_> {
    steps(on_ringing_call(scene, role, |call| {
        Request::CallAnswer(request::CallAnswer {
            call,
            answer: b"an answer".to_vec(),
        })
    }))
}

fn call_reject(scene: &Scene, role: Role) -> Steps<'_> {
    steps(on_ringing_call(scene, role, |call| {
        Request::CallReject(request::CallReject { call })
    }))
}

fn call_hangup(scene: &Scene, role: Role) -> Steps<'_> {
    steps(on_ringing_call(scene, role, |call| {
        Request::CallHangup(request::CallHangup { call })
    }))
}

/// A post shared with alice: she sees it unless she blocked its author. Deleted after.
fn moment_post(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let actor = scene.actor(role).await?;
        let id = PostId(scene.fresh());
        let got: Got = actor
            .request(&Request::MomentPost(request::MomentPost {
                id,
                ciphertext: b"a sealed post".to_vec(),
                shares: vec![share("alice")],
            }))
            .await
            .into();
        let problem = if got.is_answer() {
            let seen = scene
                .owner()
                .request(&Request::MomentGet(request::MomentGet { post: id }))
                .await
                .is_ok();
            match role {
                Role::BlockedFriend if seen => Some("alice sees the post of one she blocked"),
                Role::Member | Role::Friend if !seen => Some("alice cannot see the post"),
                _ => None,
            }
        } else {
            None
        };
        let _ = actor
            .request(&Request::MomentDelete(request::MomentDelete { post: id }))
            .await;
        Ok(got.then(problem.map(String::from)))
    })
}

fn moment_delete(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let post = PostId(scene.fresh());
        scene
            .alice(&Request::MomentPost(request::MomentPost {
                id: post,
                ciphertext: b"a post to delete".to_vec(),
                shares: vec![share("bob")],
            }))
            .await?;
        let got = ask(
            scene,
            role,
            &Request::MomentDelete(request::MomentDelete { post }),
        )
        .await?;
        let _ = scene
            .owner()
            .request(&Request::MomentDelete(request::MomentDelete { post }))
            .await;
        Ok(got)
    })
}

fn moment_delete_comment(scene: &Scene, role: Role) -> Steps<'_> {
    steps(async move {
        let comment = CommentId(scene.fresh());
        scene
            .alice(&Request::MomentComment(request::MomentComment {
                post: scene.post,
                id: comment,
                reply_to: None,
                ciphertext: b"a comment to delete".to_vec(),
            }))
            .await?;
        let got = ask(
            scene,
            role,
            &Request::MomentDeleteComment(request::MomentDeleteComment { comment }),
        )
        .await?;
        let _ = scene
            .owner()
            .request(&Request::MomentDeleteComment(
                request::MomentDeleteComment { comment },
            ))
            .await;
        Ok(got)
    })
}

/// A request of a kind this relay does not know, as a newer peer would send it.
fn unknown(scene: &Scene, role: Role) -> Steps<'_> {
    #[derive(serde::Serialize)]
    struct Teleport {
        to: &'static str,
    }
    #[derive(serde::Serialize)]
    #[serde(tag = "type", content = "body")]
    enum Newer {
        Teleport(Teleport),
    }
    steps(async move {
        let bytes = frame::encode(
            &Newer::Teleport(Teleport { to: "mars" }),
            MAX_CONTROL_FRAME_BYTES,
        )?;
        let actor = scene.actor(role).await?;
        Ok(actor.request_raw(&bytes).await.into())
    })
}

// ---- the run -------------------------------------------------------------------------

/// The row kinds `Request::kind` names, read from its source: so a kind added to the wire
/// but missing from `one_request_of_each_kind` fails the test.
fn kinds_in_wire_source() -> Result<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wire/src/msg/request.rs");
    let source = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let start = source
        .find("pub fn kind(&self)")
        .context("Request::kind in the wire source")?;
    let body = &source[start..];
    let end = body.find("\n    }\n").context("the end of Request::kind")?;
    Ok(body[..end]
        .split("=> \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_kind_is_answered_by_the_askers_relation_to_what_it_names() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let rows: Vec<Row> = one_request_of_each_kind().iter().map(row_of).collect();

    // Every kind has exactly one row.
    let mut in_table: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    in_table.sort_unstable();
    let mut in_wire = kinds_in_wire_source()?;
    in_wire.sort_unstable();
    assert_eq!(
        in_table, in_wire,
        "the table's kinds (left) differ from Request::kind's (right): give every kind one row"
    );
    let mut unique = in_table.clone();
    unique.dedup();
    assert_eq!(unique.len(), in_table.len(), "a kind has two rows");

    let relay = tokio::task::spawn_blocking(TestRelay::start_for_many_users).await??;
    let scene = Scene::set(relay).await?;
    let set_in = started.elapsed();

    let mut failures = Vec::new();
    let (mut ran, mut not_applicable) = (0, 0);
    for row in &rows {
        for role in Role::ALL {
            let expect = row.cells.get(role);
            if let NotApplicable(_) = expect {
                not_applicable += 1;
                continue;
            }
            ran += 1;
            let got = match row.exercise {
                Exercise::Plain(build) => {
                    let request = build(&scene, role);
                    ask(&scene, role, &request)
                        .await
                        .unwrap_or_else(|e| Got::Broken(format!("{e:#}")))
                }
                Exercise::Steps(cell) => cell(&scene, role).await,
            };
            if let Some(problem) = judge(&scene, role, expect, &got) {
                failures.push(format!("{} as {}: {problem}", row.name, role.label()));
            }
        }
    }

    // The other side of the pending request: alice, who was asked, may read the profile
    // of peggy, who asked.
    match scene
        .owner()
        .request(&Request::GetProfile(request::GetProfile {
            user: user("peggy"),
            known_avatar_version: None,
        }))
        .await
    {
        Ok(Reply::Profile(reply::Profile { user: whose, .. })) if whose.as_str() == "peggy" => {}
        other => failures.push(format!(
            "GetProfile of the requester by the one asked: expected Ok, got {}",
            describe_got(&other.into())
        )),
    }

    eprintln!(
        "{ran} cells run, {not_applicable} not applicable, in {:.1} s (scene set in {:.1} s)",
        started.elapsed().as_secs_f64(),
        set_in.as_secs_f64()
    );
    let mut scene = scene;
    assert!(
        scene.relay.is_running(),
        "the relay died during the matrix; log:\n{}",
        scene.relay.log()
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
