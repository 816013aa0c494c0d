//! The call window: the incoming-call dialog, ringing, and the in-call view with mute,
//! hang-up, a timer, the path and a live graph of loss and jitter.

use eframe::egui::{self, Color32, RichText};

use crate::app::UchatApp;
use crate::i18n::{self, Tr};
use crate::model::{CALL_STATS_KEPT, CallState};
use crate::worker::Command;

impl UchatApp {
    /// The call window, while there is a call.
    pub(crate) fn call_window(&mut self, ctx: &egui::Context) {
        let Some(call) = self.model.call.clone() else {
            return;
        };
        let lang = self.lang;
        let mut close = false;
        egui::Window::new(lang.tr(Tr::Call))
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-12.0, 48.0))
            .show(ctx, |ui| {
                ui.heading(call.peer.as_str());
                match &call.state {
                    CallState::Incoming => {
                        ui.label(i18n::calling_you(lang, call.peer.as_str()));
                        ui.horizontal(|ui| {
                            if let Some(id) = call.call {
                                if ui.button(lang.tr(Tr::Answer)).clicked() {
                                    self.send(Command::Answer {
                                        call: id,
                                        from: call.peer.clone(),
                                        audio: self.audio.clone(),
                                    });
                                }
                                if ui.button(lang.tr(Tr::Decline)).clicked() {
                                    self.send(Command::Decline(id));
                                    close = true;
                                }
                            }
                        });
                    }
                    CallState::Ringing => {
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label(lang.tr(Tr::Calling));
                        });
                        if let Some(id) = call.call
                            && ui.button(lang.tr(Tr::HangUp)).clicked()
                        {
                            self.send(Command::HangUp(id));
                        }
                    }
                    CallState::Connected { since } => {
                        let secs = since.elapsed().as_secs();
                        ui.label(format!(
                            "{} {:02}:{:02}",
                            lang.tr(Tr::InCall),
                            secs / 60,
                            secs % 60
                        ));
                        if let Some(stats) = call.stats.back() {
                            let path = match stats.path {
                                uchat_peer::voice::stats::CallPath::Relay => lang.tr(Tr::Via),
                                _ => lang.tr(Tr::Direct),
                            };
                            ui.label(format!(
                                "{}: {path} · {}: {:.1}% · {}: {:.0} ms",
                                lang.tr(Tr::CallPath),
                                lang.tr(Tr::CallLoss),
                                stats.loss * 100.0,
                                lang.tr(Tr::CallJitter),
                                stats.jitter_ms
                            ));
                        }
                        quality_graph(ui, &call.stats);
                        ui.horizontal(|ui| {
                            let mute = if call.muted { Tr::Unmute } else { Tr::Mute };
                            if ui.button(lang.tr(mute)).clicked() {
                                self.send(Command::SetMuted(!call.muted));
                            }
                            if let Some(id) = call.call
                                && ui.button(lang.tr(Tr::HangUp)).clicked()
                            {
                                self.send(Command::HangUp(id));
                            }
                        });
                        ctx.request_repaint_after(std::time::Duration::from_millis(500));
                    }
                    CallState::Ended { reason } => {
                        ui.label(format!("{} ({reason})", lang.tr(Tr::CallEnded)));
                        if ui.button(lang.tr(Tr::Close)).clicked() {
                            close = true;
                        }
                    }
                }
            });
        if close {
            self.model.call = None;
        }
    }
}

/// Loss (red, 0–20 %) and jitter (blue, 0–100 ms) over the last samples.
fn quality_graph(
    ui: &mut egui::Ui,
    stats: &std::collections::VecDeque<uchat_peer::voice::stats::CallStats>,
) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(240.0, 60.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let step = rect.width() / (CALL_STATS_KEPT as f32 - 1.0);
    let line = |value: &dyn Fn(&uchat_peer::voice::stats::CallStats) -> f32, color: Color32| {
        let points: Vec<egui::Pos2> = stats
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let y = rect.bottom() - value(s).clamp(0.0, 1.0) * rect.height();
                egui::pos2(rect.left() + i as f32 * step, y)
            })
            .collect();
        if points.len() > 1 {
            painter.add(egui::Shape::line(points, egui::Stroke::new(1.5, color)));
        }
    };
    line(
        &|s| (s.loss * 5.0) as f32,
        Color32::from_rgb(0xd0, 0x30, 0x30),
    );
    line(
        &|s| (s.jitter_ms / 100.0) as f32,
        Color32::from_rgb(0x30, 0x60, 0xd0),
    );
    ui.label(RichText::new("— loss  — jitter").small().weak());
}
