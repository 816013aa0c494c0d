//! The groups screen: make a group from friends, see a group's members, invite, remove
//! (owner only), leave, and open its chat.

use eframe::egui::{self, RichText};

use crate::app::UchatApp;
use crate::i18n::{self, Tr};
use crate::model::Chat;
use crate::worker::Command;

impl UchatApp {
    /// The groups screen.
    pub(crate) fn groups_view(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.heading(lang.tr(Tr::NewGroup));
        Self::field(
            ui,
            lang.tr(Tr::GroupName),
            &mut self.inputs.group_name,
            false,
        );
        ui.horizontal_wrapped(|ui| {
            ui.label(lang.tr(Tr::Members));
            for friend in self.model.friends.iter().filter(|f| !f.blocked) {
                let mut chosen = self.inputs.group_members.contains(&friend.user);
                if ui.checkbox(&mut chosen, friend.user.as_str()).changed() {
                    if chosen {
                        self.inputs.group_members.push(friend.user.clone());
                    } else {
                        self.inputs.group_members.retain(|u| u != &friend.user);
                    }
                }
            }
        });
        if ui.button(lang.tr(Tr::Create)).clicked() && !self.inputs.group_name.trim().is_empty() {
            let command = Command::CreateGroup {
                name: std::mem::take(&mut self.inputs.group_name),
                members: std::mem::take(&mut self.inputs.group_members),
            };
            self.send(command);
        }
        ui.separator();
        if self.model.groups.is_empty() {
            ui.label(lang.tr(Tr::NoGroups));
            return;
        }
        ui.horizontal_wrapped(|ui| {
            for group in &self.model.groups {
                let open = self.open_group == Some(group.id);
                if ui
                    .add(egui::Button::selectable(open, &group.name))
                    .clicked()
                {
                    self.open_group = Some(group.id);
                }
            }
        });
        let Some(group) = self.open_group.and_then(|id| self.model.group(id)).cloned() else {
            return;
        };
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading(&group.name);
            ui.label(i18n::member_count(lang, group.members.len()));
            if ui.button(lang.tr(Tr::Message)).clicked() {
                self.open_chat(Chat::Group(group.id));
            }
            if ui.button(lang.tr(Tr::Leave)).clicked() {
                self.send(Command::Leave(group.id));
                self.open_group = None;
            }
        });
        let i_own_it = self.model.me.as_ref() == Some(&group.owner);
        for member in &group.members {
            ui.horizontal(|ui| {
                ui.label(member.user.as_str());
                if member.user == group.owner {
                    ui.label(RichText::new(lang.tr(Tr::Owner)).weak());
                } else if i_own_it && ui.small_button(lang.tr(Tr::Kick)).clicked() {
                    self.send(Command::Kick {
                        group: group.id,
                        user: member.user.clone(),
                    });
                }
            });
        }
        if i_own_it {
            ui.horizontal(|ui| {
                let label = ui.label(lang.tr(Tr::InviteWho));
                ui.add(egui::TextEdit::singleline(&mut self.inputs.invite).desired_width(160.0))
                    .labelled_by(label.id);
                if ui.button(lang.tr(Tr::Invite)).clicked() && !self.inputs.invite.trim().is_empty()
                {
                    let command = Command::Invite {
                        group: group.id,
                        user: std::mem::take(&mut self.inputs.invite),
                    };
                    self.send(command);
                }
            });
        }
    }
}
