//! The profile screen (signature, avatar) and the settings screen (language, audio,
//! notifications).

use eframe::egui;

use crate::app::UchatApp;
use crate::i18n::Tr;
use crate::worker::Command;

impl UchatApp {
    /// The profile screen.
    pub(crate) fn profile_view(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.heading(lang.tr(Tr::Profile));
        if let Some(me) = &self.model.me {
            ui.label(me.as_str());
        }
        Self::field(
            ui,
            lang.tr(Tr::Signature),
            &mut self.inputs.signature,
            false,
        );
        Self::field(ui, lang.tr(Tr::Avatar), &mut self.inputs.avatar, false);
        if ui.button(lang.tr(Tr::Save)).clicked() {
            let avatar = self.inputs.avatar.trim();
            self.send(Command::SetProfile {
                signature: Some(self.inputs.signature.clone()),
                avatar: (!avatar.is_empty()).then(|| avatar.into()),
            });
        }
    }

    /// The settings screen.
    pub(crate) fn settings_view(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.heading(lang.tr(Tr::Settings));
        self.language_switch(ui);
        ui.separator();
        ui.label(egui::RichText::new(lang.tr(Tr::AudioDevices)).strong());
        if Self::field(
            ui,
            lang.tr(Tr::AudioInput),
            &mut self.inputs.audio_in,
            false,
        )
        .changed()
        {
            let path = self.inputs.audio_in.trim();
            self.audio.input_wav = (!path.is_empty()).then(|| path.into());
        }
        if Self::field(
            ui,
            lang.tr(Tr::AudioOutput),
            &mut self.inputs.audio_out,
            false,
        )
        .changed()
        {
            let path = self.inputs.audio_out.trim();
            self.audio.output_wav = (!path.is_empty()).then(|| path.into());
        }
        ui.separator();
        ui.checkbox(&mut self.notifications, lang.tr(Tr::Notifications));
    }
}
