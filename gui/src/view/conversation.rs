//! The chats screen: the chat list and the open conversation, drawn as a virtual list so a
//! chat of any length costs only the rows in view.

use std::collections::HashMap;

use eframe::egui::{self, Color32, RichText};
use uchat_peer::store::{ConversationId, EntryStatus, HistoryEntry};
use uchat_wire::MessageId;

use crate::app::{UchatApp, clock, date, day_of};
use crate::i18n::{self, Tr};
use crate::model::{Chat, Conversation};
use crate::picker::PickFor;
use crate::view::rows::VirtualList;
use crate::worker::Command;

/// How many more messages "load earlier" asks for.
const EARLIER_PAGE: usize = 1000;
/// The colour of the read mark.
const READ_COLOR: Color32 = Color32::from_rgb(0x1e, 0x88, 0xe5);

/// The open conversation's layout between frames.
#[derive(Debug, Default)]
pub struct ConversationView {
    list: VirtualList<MessageId>,
    /// Which entries are rows (all, or those the search matches).
    shown: Vec<usize>,
    /// The rows' message ids.
    keys: Vec<MessageId>,
    /// What `shown` was made for: (chat, revision, search).
    made_for: Option<(ConversationId, u64, String)>,
    /// Bumped whenever `shown` is remade.
    generation: u64,
    /// An earlier page was asked for and has not come yet.
    loading_earlier: bool,
}

impl ConversationView {
    /// How far down the chat is scrolled, and its whole height.
    pub fn scrolled(&self) -> (f32, f32) {
        self.list.scrolled()
    }

    /// Forgets the layout (another chat was opened).
    pub fn reset(&mut self) {
        *self = ConversationView::default();
    }

    /// Brings rows up to date with `conversation` at this width and search.
    fn prepare(
        &mut self,
        id: &ConversationId,
        conversation: &Conversation,
        width: f32,
        search: &str,
        offset: time::UtcOffset,
    ) {
        let key = (id.clone(), conversation.revision, search.to_string());
        let entries = conversation.entries();
        if self.made_for.as_ref() != Some(&key) && self.only_appended(&key, entries) {
            // New messages at the end: add their rows, keep the rest as laid out.
            let from = self.keys.len();
            self.shown.extend(from..entries.len());
            self.keys.extend(entries[from..].iter().map(|e| e.id));
            self.generation += 1;
            self.made_for = Some(key.clone());
            let shown = &self.shown;
            self.list.append(
                self.generation,
                (from..entries.len()).map(|row| {
                    estimate_height(
                        &entries[row],
                        width,
                        starts_day(entries, shown, row, offset),
                    )
                }),
            );
        }
        if self.made_for.as_ref() != Some(&key) {
            let grew_above = self
                .keys
                .first()
                .is_some_and(|first| entries.first().is_some_and(|e| e.id != *first));
            if grew_above {
                self.loading_earlier = false;
            }
            let needle = search.trim().to_lowercase();
            self.shown = if needle.is_empty() {
                (0..entries.len()).collect()
            } else {
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| matches_search(e, &needle))
                    .map(|(i, _)| i)
                    .collect()
            };
            self.keys = self.shown.iter().map(|&i| entries[i].id).collect();
            self.generation += 1;
            self.made_for = Some(key);
        }
        let shown = &self.shown;
        self.list
            .prepare(self.generation, width, &self.keys, |row| {
                let entry = &entries[shown[row]];
                estimate_height(entry, width, starts_day(entries, shown, row, offset))
            });
    }
}

impl ConversationView {
    /// Whether `entries` are the rows shown plus new ones at the end, and no search
    /// filters them: then only the new rows need laying out.
    fn only_appended(&self, key: &(ConversationId, u64, String), entries: &[HistoryEntry]) -> bool {
        let Some((chat, _, search)) = &self.made_for else {
            return false;
        };
        let (old, new) = (self.keys.len(), entries.len());
        chat == &key.0
            && search.trim().is_empty()
            && key.2.trim().is_empty()
            && old == self.shown.len()
            && new >= old
            && old > 0
            && entries[0].id == self.keys[0]
            && entries[old - 1].id == self.keys[old - 1]
    }
}

/// Whether an entry's text or file name holds `needle` (lowercase).
fn matches_search(entry: &HistoryEntry, needle: &str) -> bool {
    entry
        .text
        .as_deref()
        .is_some_and(|t| t.to_lowercase().contains(needle))
        || entry
            .file
            .as_ref()
            .is_some_and(|f| f.name.to_lowercase().contains(needle))
}

/// Whether row `row` is the first of its day (and so shows the day above it).
fn starts_day(
    entries: &[HistoryEntry],
    shown: &[usize],
    row: usize,
    offset: time::UtcOffset,
) -> bool {
    row == 0
        || day_of(entries[shown[row - 1]].received_ms, offset)
            != day_of(entries[shown[row]].received_ms, offset)
}

/// A row's height before it was drawn: header, wrapped text, file, day separator.
fn estimate_height(entry: &HistoryEntry, width: f32, new_day: bool) -> f32 {
    const LINE: f32 = 18.0;
    let usable = (width - 40.0).max(80.0);
    let mut lines = 0.0f32;
    if let Some(text) = &entry.text {
        for line in text.split('\n') {
            let line_width: f32 = line
                .chars()
                .map(|c| if c.is_ascii() { 7.5 } else { 14.5 })
                .sum();
            lines += (line_width / usable).ceil().max(1.0);
        }
    }
    let file = match &entry.file {
        Some(f) if f.thumbnail.is_some() => 150.0,
        Some(_) => 28.0,
        None => 0.0,
    };
    let note = if entry.flags.note.is_some() || entry.group_change.is_some() {
        LINE
    } else {
        0.0
    };
    let day = if new_day { 26.0 } else { 0.0 };
    day + LINE + lines * LINE + file + note + 20.0
}

impl UchatApp {
    /// The chats screen.
    pub(crate) fn chats_view(&mut self, ui: &mut egui::Ui) {
        egui::Panel::left("chat-list")
            .resizable(true)
            .default_size(220.0)
            .show(ui, |ui| self.chat_list(ui));
        match self.model.open_chat.clone() {
            Some(chat) => self.conversation_view(ui, chat),
            None => {
                ui.centered_and_justified(|ui| ui.label(self.t(Tr::NoChatSelected)));
            }
        }
    }

    fn chat_list(&mut self, ui: &mut egui::Ui) {
        let chats = self.model.chats();
        if chats.is_empty() {
            ui.label(self.t(Tr::NoChats));
            return;
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for chat in chats {
                let title = self.model.chat_title(&chat);
                let open = self.model.open_chat.as_ref() == Some(&chat);
                let (unread, last) = self.model.conversation(&chat).map_or((0, None), |c| {
                    (c.unread(), c.last().map(|e| preview(e, self.lang)))
                });
                ui.horizontal(|ui| {
                    match &chat {
                        Chat::Direct(user) => {
                            let online = self.model.is_online(user);
                            let (color, word) = if online {
                                (Color32::from_rgb(0x2e, 0xa0, 0x43), Tr::Online)
                            } else {
                                (Color32::GRAY, Tr::Offline)
                            };
                            ui.colored_label(color, "●").on_hover_text(self.t(word));
                        }
                        Chat::Group(_) => {
                            ui.label("#");
                        }
                    }
                    if ui.add(egui::Button::selectable(open, title)).clicked() {
                        self.open_chat(chat.clone());
                    }
                    if unread > 0 {
                        ui.colored_label(
                            Color32::from_rgb(0xd0, 0x30, 0x30),
                            i18n::unread(self.lang, unread),
                        );
                    }
                });
                if let Some(last) = last {
                    ui.label(RichText::new(last).weak().small());
                }
                ui.separator();
            }
        });
    }

    fn conversation_view(&mut self, ui: &mut egui::Ui, chat: Chat) {
        let title = self.model.chat_title(&chat);
        ui.horizontal(|ui| {
            ui.heading(&title);
            if let Chat::Direct(user) = &chat {
                let online = self.model.is_online(user);
                ui.label(self.t(if online { Tr::Online } else { Tr::Offline }));
                if ui.button(self.t(Tr::Call)).clicked() {
                    self.send(Command::PlaceCall {
                        to: user.clone(),
                        audio: self.audio.clone(),
                    });
                }
                if ui.button(self.t(Tr::SafetyNumber)).clicked() {
                    self.send(Command::SafetyNumbers(user.clone()));
                }
            }
            let search_label = ui.label(self.lang.tr(Tr::Search));
            ui.add(
                egui::TextEdit::singleline(&mut self.inputs.search)
                    .hint_text(self.lang.tr(Tr::SearchHistory))
                    .desired_width(160.0),
            )
            .labelled_by(search_label.id)
            .on_hover_text(self.lang.tr(Tr::SearchHistory));
        });
        egui::Panel::bottom("composer").show(ui, |ui| self.composer(ui, &chat));
        self.message_list(ui, &chat);
    }

    fn composer(&mut self, ui: &mut egui::Ui, chat: &Chat) {
        for (label, (done, total)) in &self.model.transfers {
            let fraction = if *total == 0 {
                0.0
            } else {
                *done as f32 / *total as f32
            };
            ui.add(egui::ProgressBar::new(fraction).text(format!(
                "{label}: {} / {}",
                i18n::file_size(*done),
                i18n::file_size(*total)
            )));
        }
        ui.add_space(4.0);
        self.pasted_picture(ui, chat);
        let lang = self.lang;
        let draft = self.inputs.drafts.entry(chat.clone()).or_default();
        let mut send = false;
        ui.horizontal(|ui| {
            let label = ui.label(lang.tr(Tr::MessagePlaceholder));
            let response = ui
                .add(
                    egui::TextEdit::multiline(draft)
                        .desired_rows(2)
                        .desired_width(ui.available_width() - 80.0)
                        .hint_text(lang.tr(Tr::MessagePlaceholder)),
                )
                .labelled_by(label.id);
            // Enter sends; Shift+Enter makes a new line.
            if response.has_focus()
                && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift)
            {
                while draft.ends_with('\n') {
                    draft.pop();
                }
                send = true;
            }
            if ui.button(lang.tr(Tr::Send)).clicked() {
                send = true;
            }
        });
        if send {
            let text = std::mem::take(draft);
            if !text.trim().is_empty() {
                self.send(Command::Send {
                    chat: chat.clone(),
                    text,
                });
            }
        }
        ui.horizontal(|ui| {
            let label = ui.label(lang.tr(Tr::FilePath));
            ui.add(egui::TextEdit::singleline(&mut self.inputs.file_path).desired_width(260.0))
                .labelled_by(label.id);
            if ui.button(lang.tr(Tr::SendFile)).clicked()
                && !self.inputs.file_path.trim().is_empty()
            {
                let path = std::mem::take(&mut self.inputs.file_path);
                self.send(Command::SendFile {
                    chat: chat.clone(),
                    path: path.trim().into(),
                });
            }
            self.choose_files_button(ui, PickFor::Chat(chat.clone()));
            ui.label(RichText::new(lang.tr(Tr::DropHint)).weak().small());
        });
    }

    /// The picture pasted into this chat, with *Send picture* and *Discard*.
    fn pasted_picture(&mut self, ui: &mut egui::Ui, chat: &Chat) {
        let lang = self.lang;
        let Some(pasted) = self.inputs.pasted.as_mut().filter(|p| &p.chat == chat) else {
            return;
        };
        let [width, height] = pasted.image.size;
        if pasted.preview.is_none() {
            let max_texture_side = ui.ctx().input(|i| i.max_texture_side);
            pasted.preview =
                crate::picture::fit_preview(&pasted.image, max_texture_side).map(|image| {
                    ui.ctx()
                        .load_texture("pasted picture", image, egui::TextureOptions::LINEAR)
                });
        }
        let mut choice = None;
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.horizontal(|ui| {
                if let Some(preview) = &pasted.preview {
                    ui.add(egui::Image::new(preview).max_height(80.0).max_width(160.0));
                }
                ui.vertical(|ui| {
                    ui.label(format!("{} ({width}×{height})", lang.tr(Tr::PastedPicture)));
                    ui.horizontal(|ui| {
                        if ui.button(lang.tr(Tr::SendPicture)).clicked() {
                            choice = Some(true);
                        }
                        if ui.button(lang.tr(Tr::DiscardPicture)).clicked() {
                            choice = Some(false);
                        }
                    });
                });
            });
        });
        if let Some(send) = choice
            && let Some(pasted) = self.inputs.pasted.take()
            && send
        {
            self.send(Command::SendPicture {
                chat: pasted.chat,
                image: pasted.image,
            });
        }
    }

    fn message_list(&mut self, ui: &mut egui::Ui, chat: &Chat) {
        let id = chat.conversation();
        let width = ui.available_width();
        let Some(conversation) = self.model.conversations.get(&id) else {
            ui.spinner();
            return;
        };
        self.conversation.prepare(
            &id,
            conversation,
            width,
            &self.inputs.search,
            self.utc_offset,
        );
        let (complete, requested) = (conversation.complete, conversation.requested);
        let ask_earlier = !complete && !self.conversation.loading_earlier;
        let mut load_earlier =
            ask_earlier && ui.small_button(self.lang.tr(Tr::LoadEarlier)).clicked();
        let entries = conversation.entries();
        let view = &mut self.conversation;
        let (lang, offset, me) = (self.lang, self.utc_offset, self.model.me.as_ref());
        let (textures, worker, dir) = (&mut self.textures, &self.worker, &self.inputs.download_dir);
        let shown = &view.shown;
        let seen = view.list.show(ui, "messages", true, &view.keys, |ui, row| {
            let entry = &entries[shown[row]];
            let new_day = starts_day(entries, shown, row, offset);
            draw_entry(ui, entry, new_day, lang, offset, me, textures, worker, dir);
        });
        load_earlier |= ask_earlier && seen.at_top && !view.list.is_empty();
        if load_earlier {
            self.conversation.loading_earlier = true;
            self.send(Command::LoadHistory {
                chat: chat.clone(),
                limit: requested + EARLIER_PAGE,
            });
        }
    }
}

/// The chat list's one-line preview of an entry.
fn preview(entry: &HistoryEntry, lang: i18n::Lang) -> String {
    let text = match (&entry.text, &entry.file) {
        (Some(text), _) => text.replace('\n', " "),
        (None, Some(file)) => format!("[{}] {}", lang.tr(Tr::File), file.name),
        (None, None) => lang.tr(Tr::Undecryptable).to_string(),
    };
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_entry(
    ui: &mut egui::Ui,
    entry: &HistoryEntry,
    new_day: bool,
    lang: i18n::Lang,
    offset: time::UtcOffset,
    me: Option<&uchat_wire::UserName>,
    textures: &mut HashMap<uchat_wire::FileId, Option<egui::TextureHandle>>,
    worker: &crate::worker::Worker,
    download_dir: &str,
) {
    if new_day {
        ui.vertical_centered(|ui| {
            ui.label(
                RichText::new(day_label(entry.received_ms, offset, lang))
                    .weak()
                    .small(),
            );
        });
    }
    let mine = me == Some(&entry.from);
    let fill = match (mine, ui.visuals().dark_mode) {
        (true, true) => Color32::from_rgb(0x1f, 0x4d, 0x2b),
        (true, false) => Color32::from_rgb(0xd8, 0xf5, 0xd0),
        (false, _) => ui.visuals().faint_bg_color,
    };
    egui::Frame::new()
        .fill(fill)
        .corner_radius(6.0)
        .inner_margin(egui::Margin::symmetric(8, 4))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                let name = if mine {
                    lang.tr(Tr::Me).to_string()
                } else {
                    entry.from.to_string()
                };
                ui.label(RichText::new(name).strong());
                ui.label(RichText::new(clock(entry.sent_ms, offset)).weak().small());
                if mine {
                    let (mark, word) = match entry.status {
                        EntryStatus::Pending => ("…", Tr::Pending),
                        EntryStatus::Failed => ("(!)", Tr::Failed),
                        EntryStatus::Delivered => ("✓✓", Tr::Delivered),
                        EntryStatus::Read => ("✓✓", Tr::Read),
                        _ => ("✓", Tr::Sent),
                    };
                    let mut mark = RichText::new(mark).small();
                    if entry.status == EntryStatus::Read {
                        mark = mark.color(READ_COLOR).strong();
                    }
                    ui.label(mark).on_hover_text(lang.tr(word));
                }
            });
            if let Some(text) = &entry.text {
                ui.label(text.as_str());
            }
            if let Some(file) = &entry.file {
                if file.thumbnail.is_some()
                    && let Some(texture) = crate::picture::file_preview(ui.ctx(), textures, file)
                {
                    ui.add(egui::Image::new(&texture).max_height(120.0));
                }
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "[{}] {} ({})",
                        lang.tr(Tr::File),
                        file.name,
                        i18n::file_size(file.size)
                    ));
                    match &file.saved_to {
                        Some(path) => {
                            if ui.small_button(lang.tr(Tr::OpenFile)).clicked() {
                                worker.send(Command::OpenFile(path.into()));
                            }
                            ui.label(RichText::new(path.as_str()).weak().small());
                        }
                        None if !mine && ui.small_button(lang.tr(Tr::Download)).clicked() => {
                            worker.send(Command::Download {
                                file: file.file,
                                dir: download_dir.into(),
                            });
                        }
                        None => {}
                    }
                });
            }
            if entry.status == EntryStatus::Undecryptable || entry.flags.note.is_some() {
                let note = entry
                    .flags
                    .note
                    .clone()
                    .unwrap_or_else(|| lang.tr(Tr::Undecryptable).to_string());
                ui.label(RichText::new(note).italics().weak());
            }
            if let Some(change) = &entry.group_change {
                ui.label(
                    RichText::new(i18n::group_change(lang, change))
                        .italics()
                        .weak(),
                );
            }
        });
    ui.add_space(4.0);
}

/// "Today", "Yesterday" or the date.
fn day_label(ms: u64, offset: time::UtcOffset, lang: i18n::Lang) -> String {
    let day = day_of(ms, offset);
    let today = day_of(crate::model::now_ms(), offset);
    let yesterday = day_of(crate::model::now_ms().saturating_sub(86_400_000), offset);
    if day == today {
        return lang.tr(Tr::Today).into();
    }
    if day == yesterday {
        return lang.tr(Tr::Yesterday).into();
    }
    date(ms, offset)
}
