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
        self.choose_files_button(ui, crate::picker::PickFor::Avatar);
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
        self.device_choices(ui);
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
        if let Some(on) = self.model.read_receipts {
            let mut wanted = on;
            if ui
                .checkbox(&mut wanted, lang.tr(Tr::SendReadReceipts))
                .changed()
            {
                self.send(Command::SetReadReceipts(wanted));
            }
        }
    }

    /// A choice of microphone and speaker among the devices the system offers.
    fn device_choices(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        let Some(devices) = &self.model.sound_devices else {
            ui.spinner();
            return;
        };
        let rows = [
            (
                "microphone",
                Tr::InputDevice,
                &devices.inputs,
                &mut self.audio.input_device,
            ),
            (
                "speaker",
                Tr::OutputDevice,
                &devices.outputs,
                &mut self.audio.output_device,
            ),
        ];
        for (salt, key, offered, chosen) in rows {
            ui.horizontal(|ui| {
                let label = ui.label(lang.tr(key));
                let shown = chosen
                    .as_ref()
                    .map(|id| {
                        offered
                            .iter()
                            .find(|d| &d.id == id)
                            .map_or_else(|| id.clone(), |d| d.name.clone())
                    })
                    .unwrap_or_else(|| lang.tr(Tr::SystemDefault).to_string());
                egui::ComboBox::from_id_salt(salt)
                    .selected_text(shown)
                    .width(320.0)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(chosen, None, lang.tr(Tr::SystemDefault));
                        for device in offered {
                            ui.selectable_value(chosen, Some(device.id.clone()), &device.name);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                if offered.is_empty() {
                    ui.label(egui::RichText::new(lang.tr(Tr::NoDevicesFound)).weak());
                }
            });
        }
        if ui.small_button(lang.tr(Tr::RefreshDevices)).clicked() {
            self.send(Command::ListSoundDevices);
        }
    }
}
