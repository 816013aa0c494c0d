//! The app: its state between frames, the frame's layout, and the hand-over of updates
//! from the worker to the [`Model`].

use std::collections::HashMap;
use std::path::PathBuf;

use eframe::egui::{self, Color32, RichText};
use uchat_wire::{CertFingerprint, FileId, PostId, UserName};

use crate::fonts::CjkFont;
use crate::i18n::{Lang, Tr};
use crate::model::{CallState, Chat, Model};
use crate::picker::{FilePicker, PickFor, Picked};
use crate::tour::{Stop, Tour};
use crate::view::conversation::ConversationView;
use crate::worker::{AudioSettings, Command, Update, Worker};

/// How the app starts.
#[derive(Debug)]
pub struct AppOptions {
    /// The profile directory.
    pub home: PathBuf,
    /// The relay to offer on the sign-in screen.
    pub relay: String,
    /// The language; the system's when `None`.
    pub lang: Option<Lang>,
    /// Call audio.
    pub audio: AudioSettings,
    /// Local time's offset from UTC, for timestamps (read before threads start).
    pub utc_offset: time::UtcOffset,
    /// Unlock the profile with this password at start (`--password-stdin`).
    pub password: Option<String>,
    /// Take the screenshot tour, then close.
    pub tour: Option<Tour>,
    /// The fingerprint `relay`'s certificate must have (`--relay-fingerprint`), pinned up
    /// front instead of trusted on first use.
    pub relay_fingerprint: Option<CertFingerprint>,
}

/// The screens of the signed-in window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Chat list and the open chat.
    Chats,
    /// Friends and requests.
    Contacts,
    /// Groups and members.
    Groups,
    /// The moments feed.
    Moments,
    /// Signature and avatar.
    Profile,
    /// Language, audio, notifications.
    Settings,
}

/// The sign-in screen's fields.
#[derive(Debug, Default)]
pub(crate) struct LoginForm {
    pub(crate) relay: String,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) new_device: bool,
    /// The relay's certificate, once checked: (relay, fingerprint, first use).
    pub(crate) checked: Option<(String, CertFingerprint, bool)>,
    pub(crate) compared: bool,
    pub(crate) busy: bool,
    pub(crate) error: Option<String>,
    /// The account this directory already holds: (user, relay).
    pub(crate) existing: Option<(UserName, String)>,
}

/// Text typed into the window that is not yet sent anywhere.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) drafts: HashMap<Chat, String>,
    pub(crate) file_path: String,
    pub(crate) search: String,
    pub(crate) friend_name: String,
    pub(crate) friend_note: String,
    pub(crate) group_name: String,
    pub(crate) group_members: Vec<UserName>,
    pub(crate) invite: String,
    pub(crate) moment_text: String,
    pub(crate) moment_picture: String,
    pub(crate) moment_pictures: Vec<PathBuf>,
    pub(crate) comments: HashMap<PostId, String>,
    pub(crate) signature: String,
    pub(crate) avatar: String,
    pub(crate) audio_in: String,
    pub(crate) audio_out: String,
    pub(crate) trust_digits: String,
    pub(crate) download_dir: String,
    /// A picture pasted into a chat, waiting for *Send picture*, with its preview.
    pub(crate) pasted: Option<PastedPicture>,
}

/// A picture pasted from the clipboard into a chat, not sent yet.
pub(crate) struct PastedPicture {
    /// The chat it was pasted into.
    pub(crate) chat: Chat,
    /// Its pixels.
    pub(crate) image: std::sync::Arc<egui::ColorImage>,
    /// Its preview, made on the first frame that shows it.
    pub(crate) preview: Option<egui::TextureHandle>,
}

impl std::fmt::Debug for PastedPicture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PastedPicture")
            .field("chat", &self.chat)
            .field("size", &self.image.size)
            .finish_non_exhaustive()
    }
}

/// The desktop app: model, worker and what the window holds between frames.
pub struct UchatApp {
    /// What is shown.
    pub model: Model,
    pub(crate) worker: Worker,
    pub(crate) lang: Lang,
    pub(crate) font: CjkFont,
    pub(crate) screen: Screen,
    pub(crate) login: LoginForm,
    pub(crate) inputs: Inputs,
    pub(crate) audio: AudioSettings,
    pub(crate) notifications: bool,
    pub(crate) conversation: ConversationView,
    pub(crate) feed_view: crate::view::moments::FeedView,
    pub(crate) textures: HashMap<FileId, Option<egui::TextureHandle>>,
    pub(crate) utc_offset: time::UtcOffset,
    pub(crate) open_group: Option<uchat_wire::GroupId>,
    attached: bool,
    tour: Option<Tour>,
    /// The relay given at start and the fingerprint given for it, if one was.
    given_fingerprint: Option<(String, CertFingerprint)>,
    /// Desktop notifications.
    notifier: crate::notify::Notifier,
    /// The desktop's file chooser, while one is open.
    pub(crate) picker: FilePicker,
}

impl UchatApp {
    /// Starts the app and its network thread. `font` says whether a CJK font was loaded
    /// into the context ([`crate::fonts::install_cjk_font`]), for the hint when it was not. The
    /// context is attached on the first frame.
    pub fn new(options: AppOptions, font: CjkFont) -> std::io::Result<UchatApp> {
        let worker = Worker::spawn(options.home.clone())?;
        let existing = uchat_peer::Client::whoami(&options.home).ok().flatten();
        if let (Some(password), Some(_)) = (&options.password, &existing) {
            worker.send(Command::Unlock {
                password: password.clone(),
                fingerprint: options.relay_fingerprint,
            });
        }
        let login = LoginForm {
            busy: options.password.is_some() && existing.is_some(),
            relay: existing
                .as_ref()
                .map_or_else(|| options.relay.clone(), |(_, relay)| relay.clone()),
            user: existing
                .as_ref()
                .map(|(user, _)| user.to_string())
                .unwrap_or_default(),
            existing,
            ..LoginForm::default()
        };
        let inputs = Inputs {
            audio_in: path_text(options.audio.input_wav.as_ref()),
            audio_out: path_text(options.audio.output_wav.as_ref()),
            download_dir: options.home.join("downloads").display().to_string(),
            ..Inputs::default()
        };
        Ok(UchatApp {
            model: Model::default(),
            worker,
            lang: options.lang.unwrap_or_else(Lang::from_environment),
            font,
            screen: Screen::Chats,
            login,
            inputs,
            audio: options.audio,
            notifications: true,
            conversation: ConversationView::default(),
            feed_view: Default::default(),
            textures: HashMap::new(),
            utc_offset: options.utc_offset,
            open_group: None,
            attached: false,
            tour: options.tour,
            notifier: crate::notify::Notifier::start(),
            picker: FilePicker::default(),
            given_fingerprint: options
                .relay_fingerprint
                .map(|fingerprint| (options.relay.clone(), fingerprint)),
        })
    }

    /// The language shown.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Whether a CJK font was loaded.
    pub fn cjk_font(&self) -> &CjkFont {
        &self.font
    }

    /// The avatar path typed (or dropped) on the profile screen.
    pub fn inputs_avatar(&self) -> &str {
        &self.inputs.avatar
    }

    /// The sound settings calls use now.
    pub fn audio_settings(&self) -> &AudioSettings {
        &self.audio
    }

    /// The screen shown.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub(crate) fn t(&self, key: Tr) -> &'static str {
        self.lang.tr(key)
    }

    pub(crate) fn send(&self, command: Command) {
        self.worker.send(command);
    }

    /// Takes in what the worker sent since the last frame.
    fn take_updates(&mut self) {
        while let Some(update) = self.worker.try_recv() {
            match update {
                Update::RelayChecked {
                    relay,
                    fingerprint,
                    first_use,
                } => {
                    self.login.busy = false;
                    self.login.error = None;
                    self.login.compared = !first_use;
                    self.login.checked = Some((relay, fingerprint, first_use));
                }
                Update::SignInFailed(error) => {
                    self.login.busy = false;
                    self.login.error = Some(error);
                }
                Update::SignedIn { .. } => {
                    self.login.busy = false;
                    self.login.password.clear();
                    self.model.apply(update);
                }
                other => self.model.apply(other),
            }
        }
    }

    /// How far down the open chat is scrolled, and its whole height (for benchmarks).
    pub fn chat_scrolled(&self) -> (f32, f32) {
        self.conversation.scrolled()
    }

    /// Shows `screen` as it is (benchmarks use this: nothing is asked of the network).
    pub fn set_screen(&mut self, screen: Screen) {
        self.screen = screen;
    }

    /// Goes to `screen` as the user does: shows it and asks the worker for what it shows
    /// fresh (the feed, friends and requests, the sound devices the first time).
    fn open_screen(&mut self, screen: Screen) {
        self.screen = screen;
        match screen {
            Screen::Moments => self.send(Command::LoadFeed { before: None }),
            Screen::Contacts => self.send(Command::RefreshContacts),
            Screen::Settings if self.model.sound_devices.is_none() => {
                self.send(Command::ListSoundDevices)
            }
            _ => {}
        }
    }

    /// Whether the window has the keyboard focus (taken as yes when the platform does
    /// not say).
    fn window_focused(ctx: &egui::Context) -> bool {
        ctx.input(|i| i.viewport().focused.unwrap_or(true))
    }

    /// Opens `chat` on the chats screen, loading its history the first time.
    pub fn open_chat(&mut self, chat: Chat) {
        self.screen = Screen::Chats;
        let conversation = self.model.conversation_mut(&chat);
        conversation.clear_unread();
        if conversation.requested < crate::worker::FIRST_PAGE {
            self.send(Command::LoadHistory {
                chat: chat.clone(),
                limit: crate::worker::FIRST_PAGE,
            });
        }
        self.send(Command::MarkRead(chat.clone()));
        self.model.unseen_in_open_chat = false;
        self.model.open_chat = Some(chat);
        self.conversation.reset();
    }

    /// Sends the read mark for messages that arrived in the open chat, once the user can
    /// see them (the window has the focus and shows the chats screen).
    fn mark_open_chat_read(&mut self, ctx: &egui::Context) {
        if !self.model.unseen_in_open_chat || self.screen != Screen::Chats {
            return;
        }
        let focused = Self::window_focused(ctx);
        if let (true, Some(chat)) = (focused, self.model.open_chat.clone()) {
            self.model.unseen_in_open_chat = false;
            self.send(Command::MarkRead(chat));
        }
    }

    /// One frame.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.attached {
            self.worker.repaint().attach(&ctx);
            self.attached = true;
        }
        self.take_updates();
        self.notify(&ctx);
        self.mark_open_chat_read(&ctx);
        if self.model.me.is_none() {
            egui::CentralPanel::default().show(ui, |ui| self.login_view(ui));
            return;
        }
        self.take_dropped_files(&ctx);
        self.take_picked_files();
        self.take_pasted_picture(&ctx);
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::left("nav")
            .resizable(false)
            .exact_size(112.0)
            .show(ui, |ui| self.nav(ui));
        egui::CentralPanel::default().show(ui, |ui| match self.screen {
            Screen::Chats => self.chats_view(ui),
            Screen::Contacts => self.contacts_view(ui),
            Screen::Groups => self.groups_view(ui),
            Screen::Moments => self.moments_view(ui),
            Screen::Profile => self.profile_view(ui),
            Screen::Settings => self.settings_view(ui),
        });
        self.call_window(&ctx);
        self.safety_window(&ctx);
        self.tour_frame(&ctx);
    }

    /// Moves the screenshot tour along, if one runs.
    fn tour_frame(&mut self, ctx: &egui::Context) {
        let Some(stop) = self.tour.as_ref().and_then(Tour::stop) else {
            return;
        };
        let call = self
            .model
            .call
            .as_ref()
            .map(|c| (c.state.clone(), c.call, c.peer.clone()));
        let ready = match stop {
            Stop::Screen(screen) => {
                if self.screen != screen {
                    self.open_screen(screen);
                }
                if screen == Screen::Groups && self.open_group.is_none() {
                    self.open_group = self.model.groups.first().map(|g| g.id);
                }
                if screen == Screen::Chats
                    && self.model.open_chat.is_none()
                    && let Some(chat) = self
                        .model
                        .chats()
                        .into_iter()
                        .find(|chat| matches!(chat, Chat::Direct(_)))
                {
                    self.open_chat(chat);
                }
                screen != Screen::Settings || self.model.sound_devices.is_some()
            }
            Stop::IncomingCall => matches!(call, Some((CallState::Incoming, ..))),
            Stop::InCall => match call {
                Some((CallState::Incoming, Some(id), from)) => {
                    self.send(Command::Answer {
                        call: id,
                        from,
                        audio: self.audio.clone(),
                    });
                    false
                }
                Some((CallState::Connected { since }, ..)) => since.elapsed().as_secs() >= 4,
                _ => false,
            },
        };
        if let Some(tour) = &mut self.tour {
            tour.frame(ctx, ready);
        }
    }

    /// A picture pasted (Ctrl+V with a picture, not text, on the clipboard) waits in the
    /// open chat's composer for *Send picture*.
    fn take_pasted_picture(&mut self, ctx: &egui::Context) {
        let pasted = ctx.input(|i| {
            i.events.iter().rev().find_map(|event| match event {
                egui::Event::PasteImage(image) => Some(image.clone()),
                _ => None,
            })
        });
        let Some(image) = pasted else {
            return;
        };
        match (&self.model.open_chat, self.screen) {
            (Some(chat), Screen::Chats) => {
                self.inputs.pasted = Some(PastedPicture {
                    chat: chat.clone(),
                    image,
                    preview: None,
                });
            }
            _ => self.model.notices.push(self.t(Tr::NoChatSelected).into()),
        }
    }

    /// Files dropped on the window go to the open chat.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if dropped.is_empty() {
            return;
        }
        let purpose = match (&self.model.open_chat, self.screen) {
            (Some(chat), Screen::Chats) => PickFor::Chat(chat.clone()),
            (_, Screen::Moments) => PickFor::MomentPictures,
            (_, Screen::Profile) => PickFor::Avatar,
            _ => {
                self.model.notices.push(self.t(Tr::NoChatSelected).into());
                return;
            }
        };
        self.use_files(purpose, dropped);
    }

    /// What the desktop's file chooser gave, once it closes.
    fn take_picked_files(&mut self) {
        match self.picker.poll() {
            Some(Picked::Files(purpose, files)) => self.use_files(purpose, files),
            Some(Picked::NoChooser) => self.model.notices.push(self.t(Tr::NoFileChooser).into()),
            Some(Picked::Nothing) | None => {}
        }
    }

    /// Files dropped or chosen: sent to a chat, added to the moment being written, or
    /// (the first) made the avatar to save.
    fn use_files(&mut self, purpose: PickFor, files: Vec<PathBuf>) {
        match purpose {
            PickFor::Chat(chat) => {
                for path in files {
                    self.send(Command::SendFile {
                        chat: chat.clone(),
                        path,
                    });
                }
            }
            PickFor::MomentPictures => self.inputs.moment_pictures.extend(files),
            PickFor::Avatar => {
                if let Some(picture) = files.into_iter().next() {
                    self.inputs.avatar = picture.display().to_string();
                }
            }
        }
    }

    /// The button that opens the desktop's file chooser for `purpose` (greyed out while
    /// one is open).
    pub(crate) fn choose_files_button(&mut self, ui: &mut egui::Ui, purpose: PickFor) {
        let label = self.t(match &purpose {
            PickFor::Chat(_) => Tr::ChooseFile,
            PickFor::MomentPictures => Tr::ChoosePictures,
            PickFor::Avatar => Tr::ChooseAvatar,
        });
        if ui
            .add_enabled(!self.picker.is_open(), egui::Button::new(label))
            .clicked()
        {
            let title = label.trim_end_matches('…');
            self.picker.open(purpose, title, ui.ctx());
        }
    }

    /// When the window is not focused, draws attention to new messages and calls.
    fn notify(&mut self, ctx: &egui::Context) {
        if self.model.to_notify.is_empty() {
            return;
        }
        let focused = Self::window_focused(ctx);
        let latest = self.model.to_notify.pop();
        self.model.to_notify.clear();
        if focused || !self.notifications {
            return;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::RequestUserAttention(
            egui::UserAttentionType::Informational,
        ));
        if let Some(latest) = latest {
            let (summary, body) = latest.text(self.lang);
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(format!(
                "Uchat — {summary}: {body}"
            )));
            self.notifier.show(summary, body);
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        if !self.model.online {
            egui::Frame::new()
                .fill(Color32::from_rgb(0xfd, 0xe6, 0x8a))
                .inner_margin(6.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(
                        RichText::new(self.t(Tr::Reconnecting))
                            .color(Color32::from_rgb(0x5c, 0x40, 0x00)),
                    );
                    if let Some(reason) = &self.model.offline_reason {
                        ui.small(reason.as_str());
                    }
                });
        }
        ui.horizontal(|ui| {
            ui.heading(self.t(Tr::AppTitle));
            if let Some(me) = &self.model.me {
                ui.label(format!("· {me} @ {}", self.model.relay));
            }
            if !self.font.is_loaded() {
                ui.colored_label(Color32::RED, self.t(Tr::FontMissing));
            }
        });
        let mut dismissed = None;
        for (i, error) in self.model.errors.iter().enumerate().rev().take(3) {
            ui.horizontal(|ui| {
                ui.colored_label(
                    Color32::from_rgb(0xb0, 0x00, 0x20),
                    format!("{}: {error}", self.lang.tr(Tr::Error)),
                );
                if ui.small_button(self.t(Tr::Dismiss)).clicked() {
                    dismissed = Some(i);
                }
            });
        }
        if let Some(i) = dismissed {
            self.model.errors.remove(i);
        }
        if let Some(notice) = self.model.notices.last() {
            let notice = notice.clone();
            ui.horizontal(|ui| {
                ui.label(RichText::new(notice).weak());
                if ui
                    .small_button("×")
                    .on_hover_text(self.t(Tr::Dismiss))
                    .clicked()
                {
                    self.model.notices.clear();
                }
            });
        }
    }

    fn nav(&mut self, ui: &mut egui::Ui) {
        let unread: usize = self.model.conversations.values().map(|c| c.unread()).sum();
        let requests = self.model.requests.incoming.len();
        let items = [
            (Screen::Chats, Tr::Chats, unread),
            (Screen::Contacts, Tr::Contacts, requests),
            (Screen::Groups, Tr::Groups, 0),
            (Screen::Moments, Tr::Moments, 0),
            (Screen::Profile, Tr::Profile, 0),
            (Screen::Settings, Tr::Settings, 0),
        ];
        ui.add_space(6.0);
        for (screen, key, badge) in items {
            ui.horizontal(|ui| {
                let button = egui::Button::selectable(self.screen == screen, self.t(key))
                    .min_size(egui::vec2(72.0, 28.0));
                if ui.add(button).clicked() {
                    self.open_screen(screen);
                }
                if badge > 0 {
                    ui.label(
                        RichText::new(badge.to_string())
                            .color(Color32::WHITE)
                            .background_color(Color32::from_rgb(0xd0, 0x30, 0x30)),
                    );
                }
            });
        }
    }

    /// A labelled one-line text field; its accessible name is the label.
    pub(crate) fn field(
        ui: &mut egui::Ui,
        label: &str,
        value: &mut String,
        password: bool,
    ) -> egui::Response {
        ui.horizontal(|ui| {
            let label = ui.label(label);
            ui.add(
                egui::TextEdit::singleline(value)
                    .password(password)
                    .desired_width(260.0),
            )
            .labelled_by(label.id)
        })
        .inner
    }

    fn login_view(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading(self.t(Tr::AppTitle));
            ui.label(self.t(Tr::SignInHint));
            ui.add_space(16.0);
        });
        self.language_switch(ui);
        ui.add_space(8.0);
        if let Some((user, relay)) = self.login.existing.clone() {
            ui.label(format!("{user} @ {relay}"));
            let password = &mut self.login.password;
            let response = Self::field(ui, self.lang.tr(Tr::Password), password, true);
            let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui
                .add_enabled(!self.login.busy, egui::Button::new(self.t(Tr::Unlock)))
                .clicked()
                || enter)
                && !self.login.busy
            {
                self.login.busy = true;
                self.login.error = None;
                self.send(Command::Unlock {
                    password: self.login.password.clone(),
                    fingerprint: self.given_fingerprint.as_ref().map(|(_, f)| *f),
                });
            }
        } else {
            let lang = self.lang;
            let relay_changed =
                Self::field(ui, lang.tr(Tr::Relay), &mut self.login.relay, false).changed();
            if relay_changed {
                self.login.checked = None;
                self.login.compared = false;
            }
            let checked_here = self
                .login
                .checked
                .as_ref()
                .is_some_and(|(relay, ..)| relay == self.login.relay.trim());
            if !checked_here {
                if ui
                    .add_enabled(
                        !self.login.busy,
                        egui::Button::new(
                            lang.tr(Tr::SignIn).to_owned() + " / " + lang.tr(Tr::Register),
                        ),
                    )
                    .clicked()
                {
                    self.login.busy = true;
                    self.login.error = None;
                    let relay = self.login.relay.trim().to_string();
                    let expected = self
                        .given_fingerprint
                        .as_ref()
                        .filter(|(given, _)| *given == relay)
                        .map(|(_, fingerprint)| *fingerprint);
                    self.send(Command::CheckRelay { relay, expected });
                }
            } else if let Some((relay, fingerprint, first_use)) = self.login.checked.clone() {
                ui.group(|ui| {
                    ui.label(RichText::new(lang.tr(Tr::RelayFingerprint)).strong());
                    ui.monospace(fingerprint.to_string());
                    if first_use {
                        ui.label(lang.tr(Tr::FingerprintFirstUse));
                        ui.checkbox(&mut self.login.compared, lang.tr(Tr::FingerprintTrusted));
                    }
                });
                Self::field(ui, lang.tr(Tr::Username), &mut self.login.user, false);
                Self::field(ui, lang.tr(Tr::Password), &mut self.login.password, true);
                ui.checkbox(&mut self.login.new_device, lang.tr(Tr::NewDevice));
                let ready = self.login.compared && !self.login.busy;
                ui.horizontal(|ui| {
                    let sign_in = ui.add_enabled(ready, egui::Button::new(lang.tr(Tr::SignIn)));
                    let register = ui.add_enabled(ready, egui::Button::new(lang.tr(Tr::Register)));
                    if sign_in.clicked() || register.clicked() {
                        self.login.busy = true;
                        self.login.error = None;
                        let (user, password) =
                            (self.login.user.clone(), self.login.password.clone());
                        self.send(if register.clicked() {
                            Command::Register {
                                relay,
                                fingerprint: Some(fingerprint),
                                user,
                                password,
                            }
                        } else {
                            Command::SignIn {
                                relay,
                                fingerprint: Some(fingerprint),
                                user,
                                password,
                                new_device: self.login.new_device,
                            }
                        });
                    }
                });
            }
        }
        if self.login.busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(self.t(Tr::SigningIn));
            });
        }
        if let Some(error) = &self.login.error {
            ui.colored_label(Color32::from_rgb(0xb0, 0x00, 0x20), error.as_str());
        }
        if !self.font.is_loaded() {
            ui.colored_label(Color32::RED, self.t(Tr::FontMissing));
        }
    }

    /// The language switch (sign-in screen and settings).
    pub(crate) fn language_switch(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(self.t(Tr::Language));
            for lang in [Lang::En, Lang::ZhCn] {
                if ui
                    .selectable_label(self.lang == lang, lang.native_name())
                    .clicked()
                {
                    self.lang = lang;
                }
            }
        });
    }
}

impl eframe::App for UchatApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        UchatApp::ui(self, ui);
    }
}

fn path_text(path: Option<&PathBuf>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// A time of day, "14:05", in the given offset.
pub(crate) fn clock(ms: u64, offset: time::UtcOffset) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    let at = at.to_offset(offset);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// A date and time, "2026-12-02 14:05", in the given offset.
pub(crate) fn date_time(ms: u64, offset: time::UtcOffset) -> String {
    format!("{} {}", date(ms, offset), clock(ms, offset))
}

/// A date, "2026-12-02", in the given offset.
pub(crate) fn date(ms: u64, offset: time::UtcOffset) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(at) => {
            let at = at.to_offset(offset);
            format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
        }
        Err(_) => String::new(),
    }
}

/// The day of `ms` in the given offset, as (year, ordinal day).
pub(crate) fn day_of(ms: u64, offset: time::UtcOffset) -> (i32, u16) {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|at| {
            let at = at.to_offset(offset);
            (at.year(), at.ordinal())
        })
        .unwrap_or((1970, 1))
}
