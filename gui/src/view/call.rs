//! The call window: the incoming-call dialog, ringing, and the in-call view with mute,
//! hang-up, a timer, the path and a live graph of loss and jitter.

use eframe::egui::{self, Color32, RichText};

use crate::app::UchatApp;
use std::collections::VecDeque;

use uchat_peer::voice::stats::CallStats;

use crate::i18n::{self, Lang, Tr};
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
                        quality_graph(ui, &call.stats, lang);
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

/// Loss (red) and jitter (blue) over the last samples, each scaled to its own maximum
/// (at least 5 % loss and 20 ms jitter), with the scales in the legend.
fn quality_graph(ui: &mut egui::Ui, stats: &VecDeque<CallStats>, lang: Lang) {
    let loss_top = stats.iter().map(|s| s.loss).fold(0.05, f64::max);
    let jitter_top = stats.iter().map(|s| s.jitter_ms).fold(20.0, f64::max);
    let (rect, _) = ui.allocate_exact_size(egui::vec2(240.0, 60.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    for fraction in [0.25, 0.5, 0.75] {
        let y = rect.bottom() - fraction * rect.height();
        painter.hline(
            rect.x_range(),
            y,
            egui::Stroke::new(0.5, ui.visuals().weak_text_color()),
        );
    }
    let step = rect.width() / (CALL_STATS_KEPT as f32 - 1.0);
    let line = |value: &dyn Fn(&CallStats) -> f64, color: Color32| {
        let points: Vec<egui::Pos2> = stats
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let y =
                    rect.bottom() - (value(s) as f32).clamp(0.0, 1.0) * (rect.height() - 2.0) - 1.0;
                egui::pos2(rect.left() + i as f32 * step, y)
            })
            .collect();
        if points.len() > 1 {
            painter.add(egui::Shape::line(points, egui::Stroke::new(1.5, color)));
        }
    };
    line(&|s| s.loss / loss_top, LOSS_COLOR);
    line(&|s| s.jitter_ms / jitter_top, JITTER_COLOR);
    ui.horizontal(|ui| {
        ui.label(
            RichText::new(format!(
                "— {} ≤{:.0}%",
                lang.tr(Tr::CallLoss),
                loss_top * 100.0
            ))
            .small()
            .color(LOSS_COLOR),
        );
        ui.label(
            RichText::new(format!("— {} ≤{jitter_top:.0} ms", lang.tr(Tr::CallJitter)))
                .small()
                .color(JITTER_COLOR),
        );
    });
}

const LOSS_COLOR: Color32 = Color32::from_rgb(0xe0, 0x50, 0x50);
const JITTER_COLOR: Color32 = Color32::from_rgb(0x50, 0x90, 0xf0);
