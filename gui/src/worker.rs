//! The network side of the app: a tokio runtime on its own thread that owns the
//! [`Client`], takes [`Command`]s from the window and sends back [`Update`]s, asking egui
//! to repaint after each one. Nothing here runs inside a frame.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::Duration;

use eframe::egui;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use uchat_peer::moment::Moment;
use uchat_peer::store::HistoryEntry;
use uchat_peer::voice::audio::{
    AudioInput, AudioOutput, Direction, PcmInput, SoundDevice, WavOutput, input_or_silence,
    output_or_silence, sound_devices,
};
use uchat_peer::voice::stats::CallStats;
use uchat_peer::{
    CallProgress, Client, ClientError, ClientEvent, ClientOptions, ConnectedCall, FileTarget,
    Friend, FriendRequests, Group, IncomingCall, NewAvatar, Placed, Repeat, SafetyNumbers,
    TalkOptions,
};
use uchat_wire::{CallId, CertFingerprint, FileId, GroupId, PostId, UserName};

use crate::model::Chat;

/// How many of a chat's latest messages are loaded when it opens.
pub const FIRST_PAGE: usize = 200;

/// How many feed posts a page asks for.
pub const FEED_PAGE: usize = 20;

/// Where call audio comes from and goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioSettings {
    /// A 48 kHz WAV file to send instead of the microphone.
    pub input_wav: Option<PathBuf>,
    /// A WAV file to write what is heard to instead of the speaker.
    pub output_wav: Option<PathBuf>,
    /// The microphone's id (from [`uchat_peer::voice::audio::sound_devices`]); `None`
    /// for the system's default.
    pub input_device: Option<String>,
    /// The speaker's id; `None` for the system's default.
    pub output_device: Option<String>,
}

/// The sound devices the system offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoundDevices {
    /// The input devices (microphones) as the sound system lists them, if any.
    pub inputs: Vec<SoundDevice>,
    /// The output devices (speakers, headphones) as the sound system lists them, if any.
    pub outputs: Vec<SoundDevice>,
}

/// What the window asks the network side to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Dial the relay to show its certificate fingerprint before anything is sent to it.
    CheckRelay {
        /// "HOST:PORT".
        relay: String,
        /// The fingerprint given for it up front (`--relay-fingerprint`): the relay must
        /// show this one, and the user need not compare it.
        expected: Option<CertFingerprint>,
    },
    /// Create an account and sign in.
    Register {
        /// "HOST:PORT".
        relay: String,
        /// The fingerprint the user accepted.
        fingerprint: Option<CertFingerprint>,
        /// The name to register.
        user: String,
        /// The new account's password: the relay checks it; it seals the keys kept here.
        password: String,
    },
    /// Sign in to an existing account.
    SignIn {
        /// "HOST:PORT".
        relay: String,
        /// The fingerprint the user accepted.
        fingerprint: Option<CertFingerprint>,
        /// The account's name as typed; trimmed, lower-cased and checked before use.
        user: String,
        /// The password: the relay checks it, and it unlocks (or seals) the keys kept here.
        password: String,
        /// Whether this directory may become a new device of the account.
        new_device: bool,
    },
    /// Unlock the profile this directory already holds.
    Unlock {
        /// The password that unlocks the keys this profile directory holds.
        password: String,
        /// The fingerprint given for the profile's relay up front, if any.
        fingerprint: Option<CertFingerprint>,
    },
    /// Send a text message.
    Send {
        /// The chat it goes to: a friend's 1:1 chat or a group's.
        chat: Chat,
        /// The text as typed; the client refuses it if empty or too long.
        text: String,
    },
    /// Send a file.
    SendFile {
        /// A friend's chat (only they may fetch the file) or a group's (its members may).
        chat: Chat,
        /// The file on disk, as chosen or dropped; sent again even if it was sent before.
        path: PathBuf,
    },
    /// Send a picture pasted from the clipboard (saved as a PNG first).
    SendPicture {
        /// Which chat.
        chat: Chat,
        /// Its pixels.
        image: std::sync::Arc<eframe::egui::ColorImage>,
    },
    /// Load the latest `limit` messages of a chat.
    LoadHistory {
        /// Which chat.
        chat: Chat,
        /// How many.
        limit: usize,
    },
    /// Save a received file into a folder.
    Download {
        /// The file's id, from the message or moment that offered it.
        file: FileId,
        /// The folder to save into, made if missing; a name taken there gets a free one.
        dir: PathBuf,
    },
    /// Open a saved file with the desktop's program for its type.
    OpenFile(PathBuf),
    /// The user has seen a chat's messages: mark them read (a 1:1 chat's sender gets a
    /// read receipt).
    MarkRead(Chat),
    /// List the sound devices.
    ListSoundDevices,
    /// Send read receipts (and see other people's), or not.
    SetReadReceipts(bool),
    /// Fetch friends and requests again.
    RefreshContacts,
    /// Ask someone to be friends.
    AddFriend {
        /// The name as typed; trimmed and checked before the request goes.
        user: String,
        /// The note shown with the request; the client checks it is one short line.
        note: String,
    },
    /// Accept a friend request.
    AcceptFriend(UserName),
    /// Refuse a friend request.
    RejectFriend(UserName),
    /// End a friendship.
    RemoveFriend(UserName),
    /// Block someone.
    Block(UserName),
    /// Unblock someone.
    Unblock(UserName),
    /// Fetch the groups again.
    RefreshGroups,
    /// Make a group.
    CreateGroup {
        /// Its name.
        name: String,
        /// The other members.
        members: Vec<UserName>,
    },
    /// Invite a friend into a group.
    Invite {
        /// The group to invite into, one this user owns.
        group: GroupId,
        /// The friend's name as typed; trimmed and checked before the request goes.
        user: String,
    },
    /// Remove a member.
    Kick {
        /// The group to remove them from, one this user owns.
        group: GroupId,
        /// The member to remove (the owner cannot be).
        user: UserName,
    },
    /// Leave a group.
    Leave(GroupId),
    /// Load the feed's first page (or the next, older one).
    LoadFeed {
        /// The cursor to continue from.
        before: Option<u64>,
    },
    /// Post a moment.
    PostMoment {
        /// Its text.
        text: String,
        /// Its pictures.
        images: Vec<PathBuf>,
    },
    /// Like a post.
    Like(PostId),
    /// Take a like back.
    Unlike(PostId),
    /// Comment on a post.
    Comment {
        /// The post to comment on; it is fetched again afterwards to show the comment.
        post: PostId,
        /// The comment as typed; trimmed, then checked: not empty, not too long.
        text: String,
        /// Whom it answers.
        reply_to: Option<UserName>,
    },
    /// Delete one of our posts.
    DeleteMoment(PostId),
    /// Call a friend.
    PlaceCall {
        /// The friend to ring.
        to: UserName,
        /// Audio to use.
        audio: AudioSettings,
    },
    /// Take the incoming call.
    Answer {
        /// The ringing call's id, from its `CallIncoming` event.
        call: CallId,
        /// Who calls.
        from: UserName,
        /// Audio to use.
        audio: AudioSettings,
    },
    /// Refuse the incoming call.
    Decline(CallId),
    /// End the call.
    HangUp(CallId),
    /// Mute or unmute the microphone.
    SetMuted(bool),
    /// Change signature and/or avatar.
    SetProfile {
        /// The new signature.
        signature: Option<String>,
        /// A picture for the avatar.
        avatar: Option<PathBuf>,
    },
    /// Show the safety number with someone.
    SafetyNumbers(UserName),
    /// Trust someone's current keys after comparing the number.
    Trust {
        /// The contact whose current identity key to trust.
        user: UserName,
        /// The digits compared.
        digits: String,
    },
}

/// A change in the call on screen.
#[derive(Debug, Clone)]
pub enum CallUpdate {
    /// We called and it rings.
    Ringing {
        /// The call's id (this peer chose it) once the relay said it rings; `None` before.
        call: Option<CallId>,
        /// The friend being rung.
        peer: UserName,
    },
    /// Voice flows.
    Connected {
        /// The call's id, which `Command::HangUp` takes.
        call: CallId,
    },
    /// Fresh statistics.
    Stats(CallStats),
    /// The microphone was muted or unmuted.
    Muted(bool),
    /// It ended.
    Ended {
        /// Why, in words.
        reason: String,
    },
}

/// What the network side tells the window.
#[derive(Debug, Clone)]
pub enum Update {
    /// The relay answered; this is its certificate.
    RelayChecked {
        /// The relay's `HOST:PORT`, as the user typed it.
        relay: String,
        /// Its fingerprint.
        fingerprint: CertFingerprint,
        /// Whether this profile has never seen this relay before.
        first_use: bool,
    },
    /// Signing in failed.
    SignInFailed(String),
    /// The sound devices the system offers.
    SoundDevices(SoundDevices),
    /// Whether read receipts are on.
    ReadReceipts(bool),
    /// Signed in.
    SignedIn {
        /// As whom.
        me: UserName,
        /// At which relay.
        relay: String,
    },
    /// The relay connection went down or came back.
    Online {
        /// Whether it is up.
        online: bool,
        /// Why it is down.
        reason: Option<String>,
    },
    /// The latest messages of a chat.
    History {
        /// Which chat.
        chat: Chat,
        /// Oldest first.
        entries: Vec<HistoryEntry>,
        /// How many were asked for (fewer means that is all).
        asked: usize,
    },
    /// One history entry changed or was added.
    Entry(HistoryEntry),
    /// A chat's incoming messages not yet seen, as the store has them (at sign-in).
    Unread {
        /// Which chat.
        chat: Chat,
        /// The unread messages' ids, oldest first: received ones after the last one seen.
        ids: Vec<uchat_wire::MessageId>,
    },
    /// The friend list.
    Friends(Vec<Friend>),
    /// Friend requests.
    Requests(FriendRequests),
    /// Every group this user is in, oldest first, as the relay lists them.
    Groups(Vec<Group>),
    /// A feed page.
    Feed {
        /// Newest first.
        posts: Vec<Moment>,
        /// The cursor for the next page.
        next: Option<u64>,
        /// Whether it continues the feed shown (else it replaces it).
        more: bool,
    },
    /// One post, fresh.
    Moment(Moment),
    /// A post was deleted.
    MomentGone(PostId),
    /// A transfer's progress.
    Transfer {
        /// What is transferred.
        label: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// A received file was saved here.
    FileSaved {
        /// The file's id, as the `Download` command named it.
        file: FileId,
        /// Where it is now.
        path: String,
    },
    /// A call changed.
    Call(CallUpdate),
    /// Safety numbers to show.
    Safety {
        /// With whom.
        user: UserName,
        /// The numbers: from the pinned identity, and from the relay's if that differs.
        numbers: SafetyNumbers,
    },
    /// Something to tell the user.
    Notice(String),
    /// Something that failed, in words.
    Error(String),
    /// A client event, as it came.
    Event(ClientEvent),
}

/// Asks egui for a frame once the context is known (it is handed over on the first frame).
#[derive(Clone, Default)]
pub struct Repaint(Arc<OnceLock<egui::Context>>);

impl Repaint {
    /// Remembers the context to wake.
    pub fn attach(&self, ctx: &egui::Context) {
        let _ = self.0.set(ctx.clone());
    }

    /// Asks for a frame.
    pub fn request(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint();
        }
    }
}

/// The window's end of the worker.
pub struct Worker {
    commands: UnboundedSender<Command>,
    updates: mpsc::Receiver<Update>,
    repaint: Repaint,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the network thread for the profile directory `home`.
    pub fn spawn(home: PathBuf) -> std::io::Result<Worker> {
        let (commands, command_rx) = unbounded_channel();
        let (update_tx, updates) = mpsc::channel();
        let repaint = Repaint::default();
        let outlet = Outlet {
            updates: update_tx,
            repaint: repaint.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("uchat-net")
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("uchat-worker".into())
            .spawn(move || runtime.block_on(run(home, command_rx, outlet)))?;
        Ok(Worker {
            commands,
            updates,
            repaint,
            thread: Some(thread),
        })
    }

    /// Hands a command to the network side (never blocks).
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::error!("the network thread has stopped");
        }
    }

    /// The next update, if one is waiting.
    pub fn try_recv(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }

    /// Waits up to `timeout` for the next update (for tests and tools, never in a frame).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Update> {
        self.updates.recv_timeout(timeout).ok()
    }

    /// The repaint handle the window attaches its context to.
    pub fn repaint(&self) -> &Repaint {
        &self.repaint
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the command channel ends the worker loop, which closes the client.
        let (closed, _) = unbounded_channel();
        self.commands = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The network side's end of the update channel.
#[derive(Clone)]
struct Outlet {
    updates: mpsc::Sender<Update>,
    repaint: Repaint,
}

impl Outlet {
    fn send(&self, update: Update) {
        let _ = self.updates.send(update);
        self.repaint.request();
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) {
        self.send(Update::Error(format!("{what}: {error}")));
    }
}

async fn run(home: PathBuf, mut commands: UnboundedReceiver<Command>, out: Outlet) {
    let mut session: Option<Arc<Session>> = None;
    let mut ordered: Option<UnboundedSender<Command>> = None;
    while let Some(command) = commands.recv().await {
        match (&session, command) {
            (None, Command::CheckRelay { relay, expected }) => {
                check_relay(&home, relay, expected, &out).await
            }
            (
                None,
                command @ (Command::Register { .. }
                | Command::SignIn { .. }
                | Command::Unlock { .. }),
            ) => {
                let relay = match &command {
                    Command::Register { relay, .. } | Command::SignIn { relay, .. } => {
                        relay.clone()
                    }
                    _ => Client::whoami(&home)
                        .ok()
                        .flatten()
                        .map(|(_, relay)| relay)
                        .unwrap_or_default(),
                };
                match sign_in(&home, command).await {
                    Ok(client) => {
                        out.send(Update::SignedIn {
                            me: client.me().clone(),
                            relay,
                        });
                        let started = Session::start(client, out.clone(), home.clone());
                        ordered = Some(started.1);
                        session = Some(started.0);
                    }
                    Err(e) => out.send(Update::SignInFailed(e.to_string())),
                }
            }
            (None, _) => out.send(Update::Error("sign in first".into())),
            (
                Some(_),
                Command::CheckRelay { .. }
                | Command::Register { .. }
                | Command::SignIn { .. }
                | Command::Unlock { .. },
            ) => {}
            (Some(current), command) => {
                if is_long(&command) {
                    let current = current.clone();
                    tokio::spawn(async move { current.handle(command).await });
                } else if let Some(ordered) = &ordered {
                    let _ = ordered.send(command);
                }
            }
        }
    }
    drop(ordered);
    if let Some(session) = session {
        session.shutdown().await;
    }
}

/// Commands that may take long (transfers, calls, probing the sound devices) and so run
/// beside the others; the rest run one after another, so messages go out in the order
/// they were written.
fn is_long(command: &Command) -> bool {
    matches!(
        command,
        Command::ListSoundDevices
            | Command::SendFile { .. }
            | Command::SendPicture { .. }
            | Command::Download { .. }
            | Command::PostMoment { .. }
            | Command::PlaceCall { .. }
            | Command::Answer { .. }
            | Command::LoadHistory { .. }
            | Command::LoadFeed { .. }
    )
}

async fn check_relay(
    home: &std::path::Path,
    relay: String,
    expected: Option<CertFingerprint>,
    out: &Outlet,
) {
    let pinned = expected.or_else(|| {
        uchat_peer::trust::KnownRelays::load(home)
            .ok()
            .and_then(|known| known.pinned(&relay))
    });
    let known_path = home
        .join(uchat_peer::trust::KNOWN_RELAYS_FILE)
        .display()
        .to_string();
    match uchat_peer::connection::dial(&relay, pinned, &known_path).await {
        Ok(link) => {
            let fingerprint = link.fingerprint();
            link.close().await;
            out.send(Update::RelayChecked {
                relay,
                fingerprint,
                first_use: pinned.is_none(),
            });
        }
        Err(e) => out.send(Update::SignInFailed(e.to_string())),
    }
}

async fn sign_in(home: &std::path::Path, command: Command) -> Result<Client, ClientError> {
    let options = |relay: Option<String>, fingerprint| ClientOptions {
        home: home.to_path_buf(),
        relay,
        relay_fingerprint: fingerprint,
    };
    match command {
        Command::Register {
            relay,
            fingerprint,
            user,
            password,
        } => {
            let user = parse_user(&user)?;
            Client::register(options(Some(relay), fingerprint), user, &password).await
        }
        Command::SignIn {
            relay,
            fingerprint,
            user,
            password,
            new_device,
        } => {
            let user = parse_user(&user)?;
            Client::login(
                options(Some(relay), fingerprint),
                user,
                &password,
                new_device,
            )
            .await
        }
        Command::Unlock {
            password,
            fingerprint,
        } => Client::open(options(None, fingerprint), &password).await,
        _ => Err(ClientError::InvalidInput("not a sign-in command".into())),
    }
}

fn parse_user(name: &str) -> Result<UserName, ClientError> {
    UserName::parse(name.trim()).map_err(|e| ClientError::InvalidInput(e.to_string()))
}

/// A signed-in client and what runs around it.
struct Session {
    client: Client,
    out: Outlet,
    /// The profile directory (pasted pictures wait in it until sent).
    home: PathBuf,
    /// Whether the microphone is muted in the call (read by the capture for every frame).
    muted: Arc<AtomicBool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Session {
    fn start(
        client: Client,
        out: Outlet,
        home: PathBuf,
    ) -> (Arc<Session>, UnboundedSender<Command>) {
        let session = Arc::new(Session {
            client,
            out,
            home,
            muted: Arc::new(AtomicBool::new(false)),
            tasks: Mutex::default(),
        });
        let (ordered, mut ordered_rx) = unbounded_channel::<Command>();
        let tasks = vec![
            tokio::spawn(session.clone().pump_events()),
            tokio::spawn(session.clone().keep_connected()),
            tokio::spawn({
                let session = session.clone();
                async move {
                    while let Some(command) = ordered_rx.recv().await {
                        session.handle(command).await;
                    }
                }
            }),
            tokio::spawn({
                let session = session.clone();
                async move { session.refresh_all().await }
            }),
        ];
        *session.tasks.lock().unwrap_or_else(PoisonError::into_inner) = tasks;
        (session, ordered)
    }

    async fn shutdown(self: Arc<Self>) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
        // Give in-flight work a moment, then close what is ours to close.
        match Arc::try_unwrap(self) {
            Ok(session) => session.client.close().await,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    /// Friends, requests, groups, the chats' last messages and unread counts, and the feed.
    async fn refresh_all(&self) {
        match self.client.read_receipts() {
            Ok(on) => self.out.send(Update::ReadReceipts(on)),
            Err(e) => self.out.error("settings", e),
        }
        self.refresh_contacts().await;
        self.refresh_groups().await;
        let chats: Vec<Chat> = {
            let friends = self.client.social().friends().await.unwrap_or_default();
            let groups = self.client.groups().list().await.unwrap_or_default();
            friends
                .into_iter()
                .map(|f| Chat::Direct(f.user))
                .chain(groups.into_iter().map(|g| Chat::Group(g.id)))
                .collect()
        };
        for chat in chats {
            match self.client.unread(&chat.conversation()) {
                Ok(ids) if !ids.is_empty() => self.out.send(Update::Unread {
                    chat: chat.clone(),
                    ids,
                }),
                Ok(_) => {}
                Err(e) => self.out.error("history", e),
            }
            self.load_history(chat, 1);
        }
        self.load_feed(None).await;
    }

    /// Reports a transfer's progress to the window under `label`.
    fn progress(&self, label: &str) -> impl Fn(u64, u64) + Send + Sync + 'static {
        let out = self.out.clone();
        let label = label.to_string();
        move |done: u64, total: u64| {
            out.send(Update::Transfer {
                label: label.clone(),
                done,
                total,
            });
        }
    }

    /// Uploads `path` to `chat` with a progress bar, then shows the message.
    async fn send_file(&self, chat: Chat, path: &std::path::Path) -> Result<(), ClientError> {
        let target = match &chat {
            Chat::Direct(user) => FileTarget::User(user.clone()),
            Chat::Group(group) => FileTarget::Group(*group),
        };
        let label = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let progress = self.progress(&label);
        // Choosing or dropping a file again means sending it again.
        let result = self
            .client
            .files()
            .send(&target, path, None, Repeat::SendAgain, &progress)
            .await;
        self.out.send(Update::Transfer {
            label,
            done: 1,
            total: 1,
        });
        self.refresh_tail(chat);
        result.map(|_| ())
    }

    /// Sends the window message `id` of `from` as the store holds it now (a new message,
    /// or one of this user's own after its status changed), if the store has it.
    fn send_entry(&self, from: &UserName, id: uchat_wire::MessageId) {
        match self.client.history_entry(from, id) {
            Ok(Some(entry)) => self.out.send(Update::Entry(entry)),
            Ok(None) => {}
            Err(e) => self.out.error("history", e),
        }
    }

    async fn refresh_contacts(&self) {
        match self.client.social().friends().await {
            Ok(friends) => self.out.send(Update::Friends(friends)),
            Err(e) => self.out.error("friends", e),
        }
        match self.client.social().friend_requests().await {
            Ok(requests) => self.out.send(Update::Requests(requests)),
            Err(e) => self.out.error("friend requests", e),
        }
    }

    async fn refresh_groups(&self) {
        match self.client.groups().list().await {
            Ok(groups) => self.out.send(Update::Groups(groups)),
            Err(e) => self.out.error("groups", e),
        }
    }

    fn load_history(&self, chat: Chat, limit: usize) {
        match self.client.history(&chat.conversation(), limit) {
            Ok(entries) => self.out.send(Update::History {
                chat,
                entries,
                asked: limit,
            }),
            Err(e) => self.out.error("history", e),
        }
    }

    /// The latest few messages of `chat`, after a send changed them.
    fn refresh_tail(&self, chat: Chat) {
        match self.client.history(&chat.conversation(), 20) {
            Ok(entries) => {
                for entry in entries {
                    self.out.send(Update::Entry(entry));
                }
            }
            Err(e) => self.out.error("history", e),
        }
    }

    async fn load_feed(&self, before: Option<u64>) {
        match self.client.moments().feed(before, FEED_PAGE as u32).await {
            Ok(page) => self.out.send(Update::Feed {
                posts: page.posts,
                next: page.next,
                more: before.is_some(),
            }),
            Err(e) => self.out.error("moments", e),
        }
    }

    async fn refresh_moment(&self, post: PostId) {
        match self.client.moments().get(post).await {
            Ok(moment) => self.out.send(Update::Moment(moment)),
            Err(e) if e.code() == Some(uchat_wire::ErrorCode::NoSuchPost) => {
                self.out.send(Update::MomentGone(post));
            }
            Err(e) => self.out.error("moment", e),
        }
    }

    /// Forwards client events, refreshing what they change.
    async fn pump_events(self: Arc<Self>) {
        let mut events = self.client.subscribe();
        loop {
            match events.recv().await {
                Ok(event) => {
                    // A message's entry first, as stored (its place in the store's
                    // order), then the event, which counts it unread and announces it.
                    if let ClientEvent::Message(message) = &event {
                        self.send_entry(&message.from, message.id);
                    }
                    self.out.send(Update::Event(event.clone()));
                    match event {
                        ClientEvent::FriendRequest { .. }
                        | ClientEvent::FriendAccepted { .. }
                        | ClientEvent::FriendRemoved { .. } => self.refresh_contacts().await,
                        ClientEvent::GroupChanged { .. } => self.refresh_groups().await,
                        ClientEvent::OutboxSettled { id } => self.send_entry(self.client.me(), id),
                        ClientEvent::Receipt { ids, .. } => {
                            for id in ids {
                                self.send_entry(self.client.me(), id);
                            }
                        }
                        ClientEvent::MomentPosted { post, .. }
                        | ClientEvent::MomentLiked { post, .. }
                        | ClientEvent::MomentCommented { post, .. } => {
                            self.refresh_moment(post).await;
                        }
                        _ => {}
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.refresh_all().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Watches the relay connection: says when it drops, reconnects with backoff, says
    /// when it is back and refreshes what may have changed meanwhile.
    async fn keep_connected(self: Arc<Self>) {
        loop {
            if self.client.is_online() {
                self.out.send(Update::Online {
                    online: true,
                    reason: None,
                });
                let reason = self.client.disconnected().await;
                self.out.send(Update::Online {
                    online: false,
                    reason: Some(reason),
                });
            }
            match self.client.reconnect(Duration::MAX).await {
                Ok(()) => self.refresh_all().await,
                Err(e) => {
                    self.out.send(Update::Online {
                        online: false,
                        reason: Some(e.to_string()),
                    });
                    return;
                }
            }
        }
    }

    async fn handle(&self, command: Command) {
        if let Err(e) = self.run_command(command.clone()).await {
            self.out.error(describe(&command), e);
        }
    }

    async fn run_command(&self, command: Command) -> Result<(), ClientError> {
        let client = &self.client;
        match command {
            Command::CheckRelay { .. }
            | Command::Register { .. }
            | Command::SignIn { .. }
            | Command::Unlock { .. } => {}
            Command::Send { chat, text } => {
                let result = match &chat {
                    Chat::Direct(user) => client.send_text(user, &text).await,
                    Chat::Group(group) => client.groups().send_text(*group, &text).await,
                };
                self.refresh_tail(chat);
                match result {
                    // Kept in the outbox: it goes when the relay is back.
                    Ok(_) | Err(ClientError::Queued { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Command::SendFile { chat, path } => self.send_file(chat, &path).await?,
            Command::SendPicture { chat, image } => {
                let home = self.home.clone();
                let saved = tokio::task::spawn_blocking(move || {
                    crate::pasted::save(&home, &image, crate::model::now_ms())
                })
                .await
                .map_err(|e| ClientError::InvalidInput(e.to_string()))?
                .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
                self.send_file(chat, &saved).await?;
                // On the relay now (a failed send keeps it, for the upload to resume).
                let _ = std::fs::remove_file(&saved);
            }
            Command::LoadHistory { chat, limit } => self.load_history(chat, limit),
            Command::OpenFile(path) => {
                // Starts the desktop's opener (xdg-open and the like) and does not wait
                // for the program it starts.
                if let Err(e) = open::that_detached(&path) {
                    self.out.error(
                        "opening the file",
                        format!("cannot open {}: {e}", path.display()),
                    );
                }
            }
            Command::Download { file, dir } => {
                let label = file.to_string();
                let progress = self.progress(&label);
                let result = client.files().download(file, &dir, &progress).await;
                self.out.send(Update::Transfer {
                    label,
                    done: 1,
                    total: 1,
                });
                let saved = result?;
                self.out.send(Update::FileSaved {
                    file,
                    path: saved.path.display().to_string(),
                });
            }
            Command::MarkRead(chat) => {
                if let Err(e) = self.client.mark_read(&chat.conversation()).await {
                    self.out.error("read receipt", e);
                }
            }
            Command::SetReadReceipts(on) => {
                client.set_read_receipts(on)?;
                self.out.send(Update::ReadReceipts(on));
            }
            Command::ListSoundDevices => {
                let listed = tokio::task::spawn_blocking(|| SoundDevices {
                    inputs: sound_devices(Direction::Input),
                    outputs: sound_devices(Direction::Output),
                })
                .await
                .unwrap_or_default();
                self.out.send(Update::SoundDevices(listed));
            }
            Command::RefreshContacts => self.refresh_contacts().await,
            Command::AddFriend { user, note } => {
                let user = parse_user(&user)?;
                client.social().add_friend(&user, &note).await?;
                self.refresh_contacts().await;
            }
            Command::AcceptFriend(user) => {
                client.social().accept_friend(&user).await?;
                self.refresh_contacts().await;
                self.load_history(Chat::Direct(user), FIRST_PAGE);
            }
            Command::RejectFriend(user) => {
                client.social().reject_friend(&user).await?;
                self.refresh_contacts().await;
            }
            Command::RemoveFriend(user) => {
                client.social().remove_friend(&user).await?;
                self.refresh_contacts().await;
            }
            Command::Block(user) => {
                client.social().block(&user).await?;
                self.refresh_contacts().await;
            }
            Command::Unblock(user) => {
                client.social().unblock(&user).await?;
                self.refresh_contacts().await;
            }
            Command::RefreshGroups => self.refresh_groups().await,
            Command::CreateGroup { name, members } => {
                client.groups().create(name.trim(), &members).await?;
                self.refresh_groups().await;
            }
            Command::Invite { group, user } => {
                let user = parse_user(&user)?;
                client.groups().invite(group, &user).await?;
                self.refresh_groups().await;
            }
            Command::Kick { group, user } => {
                client.groups().kick(group, &user).await?;
                self.refresh_groups().await;
            }
            Command::Leave(group) => {
                client.groups().leave(group).await?;
                self.refresh_groups().await;
            }
            Command::LoadFeed { before } => self.load_feed(before).await,
            Command::PostMoment { text, images } => {
                let out = self.out.clone();
                let progress = move |done: u64, total: u64| {
                    out.send(Update::Transfer {
                        label: "moment".into(),
                        done,
                        total,
                    });
                };
                let result = client
                    .moments()
                    .post(text.trim(), &images, None, &progress)
                    .await;
                self.out.send(Update::Transfer {
                    label: "moment".into(),
                    done: 1,
                    total: 1,
                });
                let posted = result?;
                self.refresh_moment(posted.id).await;
            }
            Command::Like(post) => {
                client.moments().like(post).await?;
                self.refresh_moment(post).await;
            }
            Command::Unlike(post) => {
                client.moments().unlike(post).await?;
                self.refresh_moment(post).await;
            }
            Command::Comment {
                post,
                text,
                reply_to,
            } => {
                client
                    .moments()
                    .comment(post, text.trim(), reply_to.as_ref())
                    .await?;
                self.refresh_moment(post).await;
            }
            Command::DeleteMoment(post) => {
                client.moments().delete(post).await?;
                self.out.send(Update::MomentGone(post));
            }
            Command::PlaceCall { to, audio } => self.place_call(to, audio).await?,
            Command::Answer { call, from, audio } => {
                let connected = client.calls().answer(&IncomingCall { call, from }).await?;
                self.talk(connected, &audio).await?;
            }
            Command::Decline(call) => client.calls().reject(call).await?,
            Command::HangUp(call) => client.calls().hang_up(call).await?,
            Command::SetMuted(muted) => {
                self.muted.store(muted, Ordering::Relaxed);
                self.out.send(Update::Call(CallUpdate::Muted(muted)));
            }
            Command::SetProfile { signature, avatar } => {
                let avatar = match avatar {
                    Some(path) => Some(NewAvatar::Png(
                        uchat_peer::avatar::avatar_from_file(&path)
                            .map_err(|e| ClientError::InvalidInput(e.to_string()))?,
                    )),
                    None => None,
                };
                client
                    .social()
                    .set_profile(signature.as_deref(), avatar)
                    .await?;
                self.out.send(Update::Notice("profile saved".into()));
            }
            Command::SafetyNumbers(user) => {
                let numbers = client.safety_numbers(&user).await?;
                self.out.send(Update::Safety { user, numbers });
            }
            Command::Trust { user, digits } => {
                client.trust(&user, &digits).await?;
                self.refresh_contacts().await;
            }
        }
        Ok(())
    }

    async fn place_call(&self, to: UserName, audio: AudioSettings) -> Result<(), ClientError> {
        self.out.send(Update::Call(CallUpdate::Ringing {
            call: None,
            peer: to.clone(),
        }));
        let placed = match self.client.calls().place(&to).await {
            Ok(Placed::Ringing(placed)) => placed,
            Ok(Placed::Ended { reason, .. }) => {
                self.ended(reason.as_str());
                return Ok(());
            }
            Err(e) => {
                self.ended(&e.to_string());
                return Err(e);
            }
        };
        self.out.send(Update::Call(CallUpdate::Ringing {
            call: Some(placed.call),
            peer: to,
        }));
        match self.client.calls().wait_for_answer(&placed, None).await? {
            CallProgress::Connected(connected) => self.talk(*connected, &audio).await,
            CallProgress::Ended(reason) => {
                self.ended(reason.as_str());
                Ok(())
            }
        }
    }

    fn ended(&self, reason: &str) {
        self.out.send(Update::Call(CallUpdate::Ended {
            reason: reason.to_string(),
        }));
    }

    async fn talk(
        &self,
        connected: ConnectedCall,
        audio: &AudioSettings,
    ) -> Result<(), ClientError> {
        self.out.send(Update::Call(CallUpdate::Connected {
            call: connected.call,
        }));
        self.muted.store(false, Ordering::Relaxed);
        let input = MutableInput {
            inner: open_input(audio),
            muted: self.muted.clone(),
        };
        let out = self.out.clone();
        let result = self
            .client
            .calls()
            .talk(
                connected,
                Box::new(input),
                open_output(audio),
                TalkOptions::default(),
                move |stats| out.send(Update::Call(CallUpdate::Stats(stats))),
            )
            .await;
        match &result {
            Ok(end) => self.ended(end.reason.as_str()),
            Err(e) => self.ended(&e.to_string()),
        }
        result.map(|_| ())
    }
}

/// What a command was doing, for its error message.
fn describe(command: &Command) -> &'static str {
    match command {
        Command::Send { .. } => "sending",
        Command::SendFile { .. } => "sending the file",
        Command::SendPicture { .. } => "sending the pasted picture",
        Command::Download { .. } => "saving the file",
        Command::AddFriend { .. } => "adding a friend",
        Command::CreateGroup { .. } => "creating the group",
        Command::Invite { .. } => "inviting",
        Command::Kick { .. } => "removing from the group",
        Command::Leave(_) => "leaving the group",
        Command::PostMoment { .. } => "posting",
        Command::Comment { .. } => "commenting",
        Command::PlaceCall { .. } | Command::Answer { .. } => "the call",
        Command::SetProfile { .. } => "saving the profile",
        Command::Trust { .. } => "trusting",
        _ => "the relay",
    }
}

/// The microphone, or silence while muted.
struct MutableInput {
    inner: Box<dyn AudioInput>,
    muted: Arc<AtomicBool>,
}

impl AudioInput for MutableInput {
    fn read_frame(&mut self, frame: &mut [i16]) -> bool {
        let more = self.inner.read_frame(frame);
        if self.muted.load(Ordering::Relaxed) {
            frame.fill(0);
        }
        more
    }
}

fn open_input(audio: &AudioSettings) -> Box<dyn AudioInput> {
    if let Some(path) = &audio.input_wav {
        match PcmInput::from_wav(path) {
            Ok(input) => return Box::new(input),
            Err(e) => tracing::warn!(error = %e, "cannot read the input WAV; using the microphone"),
        }
    }
    let (input, problem) = input_or_silence(audio.input_device.as_deref());
    if let Some(e) = problem {
        tracing::info!(error = %e, "no microphone; sending silence");
    }
    input
}

fn open_output(audio: &AudioSettings) -> Box<dyn AudioOutput> {
    if let Some(path) = &audio.output_wav {
        match WavOutput::create(path) {
            Ok(output) => return Box::new(output),
            Err(e) => tracing::warn!(error = %e, "cannot write the output WAV; using the speaker"),
        }
    }
    let (output, problem) = output_or_silence(audio.output_device.as_deref());
    if let Some(e) = problem {
        tracing::info!(error = %e, "no speaker; the call goes on without sound");
    }
    output
}
