//! The contacts screen: add a friend, answer requests, the friend list with presence,
//! and block, remove, message, call and safety numbers per friend.

use eframe::egui::{self, Color32, RichText};

use crate::app::UchatApp;
use crate::i18n::Tr;
use crate::model::Chat;
use crate::worker::Command;

impl UchatApp {
    /// The contacts screen.
    pub(crate) fn contacts_view(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.heading(lang.tr(Tr::AddFriend));
        Self::field(
            ui,
            lang.tr(Tr::Username),
            &mut self.inputs.friend_name,
            false,
        );
        Self::field(
            ui,
            lang.tr(Tr::FriendNote),
            &mut self.inputs.friend_note,
            false,
        );
        if ui.button(lang.tr(Tr::AddFriend)).clicked() && !self.inputs.friend_name.trim().is_empty()
        {
            let command = Command::AddFriend {
                user: std::mem::take(&mut self.inputs.friend_name),
                note: std::mem::take(&mut self.inputs.friend_note),
            };
            self.send(command);
        }
        ui.separator();
        let requests = self.model.requests.clone();
        if !requests.incoming.is_empty() {
            ui.heading(lang.tr(Tr::FriendRequests));
            for request in &requests.incoming {
                ui.horizontal(|ui| {
                    ui.label(RichText::new(request.user.as_str()).strong());
                    if !request.note.is_empty() {
                        ui.label(format!("“{}”", request.note));
                    }
                    if ui.button(lang.tr(Tr::Accept)).clicked() {
                        self.send(Command::AcceptFriend(request.user.clone()));
                    }
                    if ui.button(lang.tr(Tr::Reject)).clicked() {
                        self.send(Command::RejectFriend(request.user.clone()));
                    }
                });
            }
            ui.separator();
        }
        if !requests.outgoing.is_empty() {
            ui.label(RichText::new(lang.tr(Tr::OutgoingRequests)).strong());
            for request in &requests.outgoing {
                ui.label(format!("→ {}", request.user));
            }
            ui.separator();
        }
        ui.heading(lang.tr(Tr::Friends));
        if self.model.friends.is_empty() {
            ui.label(lang.tr(Tr::NoFriends));
        }
        let friends = self.model.friends.clone();
        egui::ScrollArea::vertical().show(ui, |ui| {
            for friend in &friends {
                ui.horizontal(|ui| {
                    let (color, word) = if friend.online {
                        (Color32::from_rgb(0x2e, 0xa0, 0x43), Tr::Online)
                    } else {
                        (Color32::GRAY, Tr::Offline)
                    };
                    ui.colored_label(color, "●").on_hover_text(lang.tr(word));
                    ui.label(RichText::new(friend.user.as_str()).strong());
                    if !friend.profile.signature.is_empty() {
                        ui.label(RichText::new(&friend.profile.signature).weak());
                    }
                    if friend.identity_changed {
                        ui.colored_label(Color32::from_rgb(0xb0, 0x60, 0x00), "(!)")
                            .on_hover_text(lang.tr(Tr::IdentityChanged));
                    }
                });
                ui.horizontal(|ui| {
                    if ui.small_button(lang.tr(Tr::Message)).clicked() {
                        self.open_chat(Chat::Direct(friend.user.clone()));
                    }
                    if ui.small_button(lang.tr(Tr::Call)).clicked() {
                        self.send(Command::PlaceCall {
                            to: friend.user.clone(),
                            audio: self.audio.clone(),
                        });
                    }
                    if ui.small_button(lang.tr(Tr::SafetyNumber)).clicked() {
                        self.send(Command::SafetyNumbers(friend.user.clone()));
                    }
                    let block = if friend.blocked {
                        Tr::Unblock
                    } else {
                        Tr::Block
                    };
                    if ui.small_button(lang.tr(block)).clicked() {
                        self.send(if friend.blocked {
                            Command::Unblock(friend.user.clone())
                        } else {
                            Command::Block(friend.user.clone())
                        });
                    }
                    if ui.small_button(lang.tr(Tr::Remove)).clicked() {
                        self.send(Command::RemoveFriend(friend.user.clone()));
                    }
                });
                ui.separator();
            }
        });
    }

    /// The safety-number window, while one is shown.
    pub(crate) fn safety_window(&mut self, ctx: &egui::Context) {
        let Some((user, numbers)) = self.model.safety.clone() else {
            return;
        };
        let lang = self.lang;
        let mut open = true;
        egui::Window::new(format!("{} — {user}", lang.tr(Tr::SafetyNumber)))
            .collapsible(false)
            .open(&mut open)
            .show(ctx, |ui| {
                ui.label(lang.tr(Tr::SafetyNumberHint));
                ui.monospace(&numbers.pinned);
                if let Some(changed) = &numbers.changed {
                    ui.colored_label(
                        Color32::from_rgb(0xb0, 0x60, 0x00),
                        lang.tr(Tr::IdentityChanged),
                    );
                    ui.monospace(changed);
                    Self::field(
                        ui,
                        lang.tr(Tr::SafetyNumber),
                        &mut self.inputs.trust_digits,
                        false,
                    );
                    if ui.button(lang.tr(Tr::Trust)).clicked() {
                        let command = Command::Trust {
                            user: user.clone(),
                            digits: std::mem::take(&mut self.inputs.trust_digits),
                        };
                        self.send(command);
                        self.model.safety = None;
                    }
                }
                if ui.button(lang.tr(Tr::Close)).clicked() {
                    self.model.safety = None;
                }
            });
        if !open {
            self.model.safety = None;
        }
    }
}
