//! What the window shows, kept up to date from the worker's [`Update`]s.
//!
//! Pure state: no I/O, no egui. The views read it; [`Model::apply`] is the only writer
//! besides small marks the views set (which chat is open, unread counts cleared).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use uchat_peer::moment::Moment;
use uchat_peer::store::{ConversationId, EntryStatus, HistoryEntry};
use uchat_peer::voice::stats::CallStats;
use uchat_peer::{ClientEvent, Friend, FriendRequests, Group, SafetyNumbers};
use uchat_wire::{CallId, GroupId, MessageId, PostId, UserName};

use crate::worker::Update;

/// A chat: with one contact, or a group's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Chat {
    /// The 1:1 chat with this user.
    Direct(UserName),
    /// A group's chat.
    Group(GroupId),
}

impl Chat {
    /// Its conversation in the local history.
    pub fn conversation(&self) -> ConversationId {
        match self {
            Chat::Direct(user) => ConversationId::direct(user),
            Chat::Group(group) => ConversationId::group(*group),
        }
    }
}

/// One chat's messages as far as they are loaded, in the order the store keeps them.
#[derive(Debug, Default)]
pub struct Conversation {
    /// Sorted by [`HistoryEntry::position`].
    entries: Vec<HistoryEntry>,
    /// Where each entry is in `entries`.
    index: HashMap<MessageId, usize>,
    /// Messages not seen yet: those that arrived while the chat was not open, and at
    /// sign-in those the store has not marked read.
    unread: HashSet<MessageId>,
    /// How many of the latest entries were asked of the store.
    pub requested: usize,
    /// Whether the store has nothing older than what is loaded.
    pub complete: bool,
    /// Bumped on every change, so views know when to redo cached layout.
    pub revision: u64,
}

impl Conversation {
    /// The loaded entries, oldest first.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// How many messages are not seen yet.
    pub fn unread(&self) -> usize {
        self.unread.len()
    }

    /// Counts message `id` as not seen yet (once, however often it is reported).
    pub fn add_unread(&mut self, id: MessageId) {
        self.unread.insert(id);
    }

    /// The user has seen everything in this chat.
    pub fn clear_unread(&mut self) {
        self.unread.clear();
    }

    /// The latest entry.
    pub fn last(&self) -> Option<&HistoryEntry> {
        self.entries.last()
    }

    /// Whether an outgoing message still waits in the outbox.
    pub fn has_pending(&self) -> bool {
        self.entries
            .iter()
            .rev()
            .take(200)
            .any(|e| e.status == EntryStatus::Pending)
    }

    /// Takes in a `page` of the store's entries (the latest `asked` when it was read,
    /// oldest first). Entries here already are replaced by their newer state; the rest
    /// take their place in the store's order, so a page read before messages that
    /// arrived since goes before them however the two crossed on the way. Returns how
    /// many entries were added before the ones that were here (earlier history loaded),
    /// so a view can keep its scroll position.
    pub fn take_page(&mut self, page: Vec<HistoryEntry>, asked: usize) -> usize {
        if asked >= self.requested {
            self.complete = page.len() < asked;
            self.requested = asked;
        }
        self.revision += 1;
        let old_first = self.entries.first().map(|e| e.position);
        let mut earlier = 0;
        for entry in page {
            match self.index.get(&entry.id) {
                Some(&at) => self.entries[at] = entry,
                None => {
                    earlier += usize::from(old_first.is_some_and(|first| entry.position < first));
                    self.entries.push(entry);
                }
            }
        }
        // Stable and linear on the two sorted runs this leaves.
        self.entries.sort_by_key(|e| e.position);
        self.reindex();
        earlier
    }

    /// Takes in one entry as the store holds it (a message that just arrived, or a new
    /// state of one here), in the store's order.
    pub fn push(&mut self, entry: HistoryEntry) {
        self.revision += 1;
        if let Some(&at) = self.index.get(&entry.id) {
            self.entries[at] = entry;
            return;
        }
        let at = self
            .entries
            .partition_point(|e| e.position < entry.position);
        let last = at == self.entries.len();
        self.entries.insert(at, entry);
        if last {
            self.index.insert(self.entries[at].id, at);
        } else {
            self.reindex();
        }
    }

    /// Notes where received file `file` was saved, if it is here.
    pub fn mark_saved(&mut self, file: uchat_wire::FileId, path: &str) {
        for entry in self.entries.iter_mut().rev() {
            if let Some(reference) = &mut entry.file
                && reference.file == file
            {
                reference.saved_to = Some(path.to_string());
                self.revision += 1;
                return;
            }
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(at, e)| (e.id, at))
            .collect();
    }
}

/// Where a call stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CallState {
    /// A friend calls us; we have not answered.
    Incoming,
    /// We called; it rings at the other end.
    Ringing,
    /// Voice flows.
    Connected {
        /// Since when.
        since: Instant,
    },
    /// Over, for this reason (shown until dismissed).
    Ended {
        /// Why, in words.
        reason: String,
    },
}

/// The call on screen.
#[derive(Debug, Clone)]
pub struct CallView {
    /// Its id, once known.
    pub call: Option<CallId>,
    /// The other person.
    pub peer: UserName,
    /// Where it stands.
    pub state: CallState,
    /// Whether our microphone is muted.
    pub muted: bool,
    /// The latest statistics, oldest first (for the quality graph).
    pub stats: VecDeque<CallStats>,
}

/// How many statistics samples the quality graph keeps.
pub const CALL_STATS_KEPT: usize = 120;

/// Everything the window shows.
#[derive(Debug, Default)]
pub struct Model {
    /// Who is signed in.
    pub me: Option<UserName>,
    /// The relay's address.
    pub relay: String,
    /// Whether the relay connection is up (after sign-in).
    pub online: bool,
    /// Why it is down, while it is.
    pub offline_reason: Option<String>,
    /// Loaded chats.
    pub conversations: HashMap<ConversationId, Conversation>,
    /// The open chat.
    pub open_chat: Option<Chat>,
    /// Friends, as last fetched and updated by events.
    pub friends: Vec<Friend>,
    /// Friend requests both ways.
    pub requests: FriendRequests,
    /// Groups this user is in.
    pub groups: Vec<Group>,
    /// The moments feed, newest first.
    pub feed: Vec<Moment>,
    /// The cursor for the next (older) feed page, if there is one.
    pub feed_next: Option<u64>,
    /// Bumped on every change to the feed.
    pub feed_revision: u64,
    /// The call on screen.
    pub call: Option<CallView>,
    /// File transfers in progress: label → (done, total) bytes.
    pub transfers: HashMap<String, (u64, u64)>,
    /// Safety numbers being shown.
    pub safety: Option<(UserName, SafetyNumbers)>,
    /// Errors to show until dismissed (newest last).
    pub errors: Vec<String>,
    /// Things to tell the user in passing (newest last).
    pub notices: Vec<String>,
    /// Events that want a desktop notification when the window is not focused.
    pub to_notify: Vec<crate::notify::Attention>,
    /// Whether read receipts are on (once known).
    pub read_receipts: Option<bool>,
    /// The sound devices, once listed.
    pub sound_devices: Option<crate::worker::SoundDevices>,
    /// The open chat got messages the user has not seen yet (its read receipt is due
    /// once the window has the focus).
    pub unseen_in_open_chat: bool,
}

impl Model {
    /// The conversation of `chat`, made if needed.
    pub fn conversation_mut(&mut self, chat: &Chat) -> &mut Conversation {
        self.conversations.entry(chat.conversation()).or_default()
    }

    /// The conversation of `chat`, if loaded.
    pub fn conversation(&self, chat: &Chat) -> Option<&Conversation> {
        self.conversations.get(&chat.conversation())
    }

    /// The friend record of `user`.
    pub fn friend(&self, user: &UserName) -> Option<&Friend> {
        self.friends.iter().find(|f| &f.user == user)
    }

    /// The group `id`.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The chats for the chat list: friends and groups, the latest activity first.
    pub fn chats(&self) -> Vec<Chat> {
        let mut chats: Vec<(u64, Chat)> = self
            .friends
            .iter()
            .filter(|f| !f.blocked)
            .map(|f| Chat::Direct(f.user.clone()))
            .chain(self.groups.iter().map(|g| Chat::Group(g.id)))
            .map(|chat| {
                let last = self
                    .conversation(&chat)
                    .and_then(Conversation::last)
                    .map_or(0, |e| e.received_ms);
                (last, chat)
            })
            .collect();
        chats.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| chat_name(&a.1).cmp(&chat_name(&b.1)))
        });
        chats.into_iter().map(|(_, chat)| chat).collect()
    }

    /// The name to show for `chat`.
    pub fn chat_title(&self, chat: &Chat) -> String {
        match chat {
            Chat::Direct(user) => user.to_string(),
            Chat::Group(id) => self
                .group(*id)
                .map_or_else(|| format!("#{id}"), |g| g.name.clone()),
        }
    }

    /// Whether `user` is online, as far as we know.
    pub fn is_online(&self, user: &UserName) -> bool {
        self.friend(user).is_some_and(|f| f.online)
    }

    /// Takes in one update from the worker.
    pub fn apply(&mut self, update: Update) {
        if matches!(
            update,
            Update::Feed { .. } | Update::Moment(_) | Update::MomentGone(_)
        ) {
            self.feed_revision += 1;
        }
        match update {
            Update::SignedIn { me, relay } => {
                self.me = Some(me);
                self.relay = relay;
            }
            Update::Online { online, reason } => {
                self.online = online;
                self.offline_reason = reason;
            }
            Update::History {
                chat,
                entries,
                asked,
            } => {
                self.conversation_mut(&chat).take_page(entries, asked);
            }
            Update::Entry(entry) => {
                self.conversations
                    .entry(entry.conversation.clone())
                    .or_default()
                    .push(entry);
            }
            Update::Unread { chat, ids } => {
                // The open chat is being marked read already.
                if self.open_chat.as_ref() != Some(&chat) {
                    let conversation = self.conversation_mut(&chat);
                    for id in ids {
                        conversation.add_unread(id);
                    }
                }
            }
            Update::FileSaved { file, path } => {
                for conversation in self.conversations.values_mut() {
                    conversation.mark_saved(file, &path);
                }
            }
            Update::Friends(friends) => self.friends = friends,
            Update::Requests(requests) => self.requests = requests,
            Update::Groups(groups) => self.groups = groups,
            Update::Feed { posts, next, more } => {
                if more {
                    let known: std::collections::HashSet<PostId> =
                        self.feed.iter().map(|p| p.id).collect();
                    self.feed
                        .extend(posts.into_iter().filter(|p| !known.contains(&p.id)));
                } else {
                    self.feed = posts;
                }
                self.feed_next = next;
            }
            Update::Moment(post) => match self.feed.iter_mut().find(|p| p.id == post.id) {
                Some(slot) => *slot = post,
                None => {
                    self.feed.insert(0, post);
                    self.feed.sort_by_key(|p| std::cmp::Reverse(p.cursor));
                }
            },
            Update::MomentGone(post) => self.feed.retain(|p| p.id != post),
            Update::Transfer { label, done, total } => {
                if done >= total {
                    self.transfers.remove(&label);
                } else {
                    self.transfers.insert(label, (done, total));
                }
            }
            Update::Call(call) => self.apply_call(call),
            Update::Safety { user, numbers } => self.safety = Some((user, numbers)),
            Update::Notice(text) => self.notices.push(text),
            Update::SoundDevices(devices) => self.sound_devices = Some(devices),
            Update::ReadReceipts(on) => self.read_receipts = Some(on),
            Update::Error(text) => self.errors.push(text),
            Update::Event(event) => self.apply_event(event),
            // The sign-in screen's business (see `UchatApp`).
            Update::RelayChecked { .. } | Update::SignInFailed(_) => {}
        }
    }

    fn apply_call(&mut self, update: crate::worker::CallUpdate) {
        use crate::worker::CallUpdate;
        match update {
            CallUpdate::Ringing { call, peer } => {
                self.call = Some(CallView {
                    call,
                    peer,
                    state: CallState::Ringing,
                    muted: false,
                    stats: VecDeque::new(),
                });
            }
            CallUpdate::Connected { call } => {
                if let Some(view) = &mut self.call {
                    view.call = Some(call);
                    view.state = CallState::Connected {
                        since: Instant::now(),
                    };
                }
            }
            CallUpdate::Stats(stats) => {
                if let Some(view) = &mut self.call {
                    view.stats.push_back(stats);
                    while view.stats.len() > CALL_STATS_KEPT {
                        view.stats.pop_front();
                    }
                }
            }
            CallUpdate::Ended { reason } => {
                if let Some(view) = &mut self.call {
                    view.state = CallState::Ended { reason };
                }
            }
            CallUpdate::Muted(muted) => {
                if let Some(view) = &mut self.call {
                    view.muted = muted;
                }
            }
        }
    }

    fn apply_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Message(message) => {
                let chat = match message.group {
                    Some(group) => Chat::Group(group),
                    None => Chat::Direct(message.from.clone()),
                };
                debug_assert_eq!(chat.conversation(), message.conversation());
                let is_open = self.open_chat.as_ref() == Some(&chat);
                let title = self.chat_title(&chat);
                // Its entry came just before, as the store holds it (Update::Entry).
                let conversation = self.conversation_mut(&chat);
                if is_open {
                    self.unseen_in_open_chat = true;
                } else {
                    conversation.add_unread(message.id);
                }
                let preview = message
                    .text
                    .as_deref()
                    .or(message.file.as_ref().map(|f| f.name.as_str()))
                    .unwrap_or("…");
                self.to_notify.push(crate::notify::Attention::Message {
                    chat: title,
                    preview: preview.chars().take(80).collect(),
                });
            }
            ClientEvent::Presence {
                user,
                online,
                last_seen_ms,
            } => {
                if let Some(friend) = self.friends.iter_mut().find(|f| f.user == user) {
                    friend.online = online;
                    if last_seen_ms.is_some() {
                        friend.last_seen_ms = last_seen_ms;
                    }
                }
            }
            ClientEvent::ProfileChanged { user, profile } => {
                if let Some(friend) = self.friends.iter_mut().find(|f| f.user == user) {
                    friend.profile = profile;
                }
            }
            ClientEvent::IdentityChanged { user } => {
                if let Some(friend) = self.friends.iter_mut().find(|f| f.user == user) {
                    friend.identity_changed = true;
                }
            }
            ClientEvent::FriendSyncFailed { reason } => {
                self.errors
                    .push(format!("friends' identity keys were not checked: {reason}"));
            }
            ClientEvent::CallIncoming { call, from, .. } => {
                self.to_notify.push(crate::notify::Attention::Call {
                    from: from.to_string(),
                });
                self.call = Some(CallView {
                    call: Some(call),
                    peer: from,
                    state: CallState::Incoming,
                    muted: false,
                    stats: VecDeque::new(),
                });
            }
            ClientEvent::CallEnded { call, reason } => {
                if let Some(view) = &mut self.call
                    && view.call == Some(call)
                    && !matches!(view.state, CallState::Ended { .. })
                {
                    view.state = CallState::Ended {
                        reason: reason.as_str().to_string(),
                    };
                }
            }
            ClientEvent::Disconnected { reason } => {
                self.online = false;
                self.offline_reason = Some(reason);
            }
            ClientEvent::Reconnected => {
                self.online = true;
                self.offline_reason = None;
            }
            // The worker refreshes lists and posts after these; nothing to do here.
            _ => {}
        }
    }
}

fn chat_name(chat: &Chat) -> String {
    match chat {
        Chat::Direct(user) => user.to_string(),
        Chat::Group(id) => id.to_string(),
    }
}

/// Now, ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_peer::store::EntryFlags;

    fn entry(n: u8, status: EntryStatus) -> HistoryEntry {
        let bob = UserName::parse("bob").expect("valid");
        HistoryEntry {
            id: MessageId([n; 16]),
            conversation: ConversationId::direct(&bob),
            from: bob.clone(),
            to: UserName::parse("alice").expect("valid"),
            sent_ms: u64::from(n),
            received_ms: u64::from(n),
            text: Some(format!("message {n}")),
            status,
            flags: EntryFlags::default(),
            group: None,
            group_change: None,
            file: None,
            position: u64::from(n),
        }
    }

    fn ids(conversation: &Conversation) -> Vec<u8> {
        conversation.entries().iter().map(|e| e.id.0[0]).collect()
    }

    #[test]
    fn pages_merge_with_what_is_loaded_in_the_stores_order() {
        let mut c = Conversation::default();
        let page = |range: std::ops::RangeInclusive<u8>| {
            range
                .map(|n| entry(n, EntryStatus::Received))
                .collect::<Vec<_>>()
        };
        assert_eq!(c.take_page(page(5..=9), 5), 0);
        assert!(!c.complete, "a full page may have more before it");
        // Earlier history: the page reaches back; the view learns how many came above.
        assert_eq!(c.take_page(page(1..=9), 10), 4);
        assert!(c.complete, "fewer than asked: that is all");
        assert_eq!(ids(&c), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // A tail refresh with a new message keeps the older ones.
        assert_eq!(c.take_page(page(8..=10), 3), 0);
        assert_eq!(ids(&c), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(
            c.complete,
            "a small refresh does not undo what a larger page learned"
        );
        // Only newer entries, no overlap: appended.
        c.take_page(page(12..=12), 1);
        assert_eq!(ids(&c).last(), Some(&12));
    }

    #[test]
    fn a_page_read_before_newer_messages_arrived_goes_before_them() {
        let mut c = Conversation::default();
        // The app starts: messages 5 to 7 arrive as events while a refresh, which read
        // the store's latest entry (4) before they were taken in, is on its way.
        for n in 5..=7 {
            c.push(entry(n, EntryStatus::Received));
        }
        assert_eq!(c.take_page(vec![entry(4, EntryStatus::Received)], 1), 1);
        assert_eq!(ids(&c), [4, 5, 6, 7]);
        assert_eq!(c.last().map(|e| e.id.0[0]), Some(7));
    }

    #[test]
    fn a_page_read_before_newer_messages_arrived_keeps_them_after_it() {
        let mut c = Conversation::default();
        // Messages 5 to 7 arrive as events; a refresh that read the store when 6 was its
        // latest entry comes after them: it refreshes 6 and leaves 7 in place.
        for n in 5..=7 {
            c.push(entry(n, EntryStatus::Received));
        }
        assert_eq!(c.take_page(vec![entry(6, EntryStatus::Received)], 1), 0);
        assert_eq!(ids(&c), [5, 6, 7]);
        assert_eq!(c.last().map(|e| e.id.0[0]), Some(7));
    }

    #[test]
    fn events_and_a_page_that_cross_on_the_way_end_in_the_stores_order() {
        let mut c = Conversation::default();
        // The app starts while messages 1 to 3 are being taken in: the event for 1 is
        // here, then a page read after 3 was stored, then the events for 2 and 3.
        c.push(entry(1, EntryStatus::Received));
        assert_eq!(c.take_page(vec![entry(3, EntryStatus::Received)], 1), 0);
        c.push(entry(2, EntryStatus::Received));
        c.push(entry(3, EntryStatus::Received));
        assert_eq!(ids(&c), [1, 2, 3]);
        assert_eq!(c.last().map(|e| e.id.0[0]), Some(3));
    }

    #[test]
    fn an_entry_seen_again_replaces_the_old_one_in_place() {
        let mut c = Conversation::default();
        c.push(entry(1, EntryStatus::Received));
        c.push(entry(2, EntryStatus::Pending));
        assert!(c.has_pending());
        c.push(entry(2, EntryStatus::Sent));
        assert_eq!(ids(&c), [1, 2]);
        assert!(!c.has_pending());
    }

    #[test]
    fn a_message_for_a_closed_chat_counts_as_unread_and_asks_for_attention() {
        let mut model = Model::default();
        let message = uchat_peer::ReceivedMessage {
            id: MessageId([7; 16]),
            from: UserName::parse("bob").expect("valid"),
            to: UserName::parse("alice").expect("valid"),
            text: Some("你好".into()),
            sent_ms: 1,
            identity: uchat_peer::store::IdentityFlag::Known,
            problem: None,
            group: None,
            file: None,
        };
        model.apply(Update::Event(ClientEvent::Message(message.clone())));
        let chat = Chat::Direct(message.from.clone());
        assert_eq!(model.conversation(&chat).map(Conversation::unread), Some(1));
        assert_eq!(
            model.to_notify,
            [crate::notify::Attention::Message {
                chat: "bob".into(),
                preview: "你好".into()
            }]
        );
        model.open_chat = Some(chat.clone());
        let mut again = message;
        again.id = MessageId([8; 16]);
        model.apply(Update::Event(ClientEvent::Message(again)));
        assert_eq!(
            model.conversation(&chat).map(Conversation::unread),
            Some(1),
            "open: not unread"
        );
    }

    #[test]
    fn a_failed_friend_sync_is_shown_as_an_error() {
        let mut model = Model::default();
        model.apply(Update::Event(ClientEvent::FriendSyncFailed {
            reason: "the relay refused: too large".into(),
        }));
        assert_eq!(
            model.errors,
            ["friends' identity keys were not checked: the relay refused: too large"]
        );
    }

    #[test]
    fn unread_messages_from_the_store_count_once_and_not_in_the_open_chat() {
        let mut model = Model::default();
        let bob = Chat::Direct(UserName::parse("bob").expect("valid"));
        let carol = Chat::Direct(UserName::parse("carol").expect("valid"));
        let ids = vec![MessageId([1; 16]), MessageId([2; 16])];
        model.apply(Update::Unread {
            chat: bob.clone(),
            ids: ids.clone(),
        });
        // The same messages again (an event for one the store already had): no change.
        model.apply(Update::Unread {
            chat: bob.clone(),
            ids: ids[..1].to_vec(),
        });
        assert_eq!(model.conversation(&bob).map(Conversation::unread), Some(2));
        model.open_chat = Some(carol.clone());
        model.apply(Update::Unread {
            chat: carol.clone(),
            ids,
        });
        assert_eq!(
            model.conversation(&carol).map_or(0, Conversation::unread),
            0,
            "the open chat is being marked read"
        );
    }
}
