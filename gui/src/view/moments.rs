//! The moments screen: the post editor and the feed (virtual list) with pictures, likes and
//! comments.

use std::collections::HashMap;

use eframe::egui::{self, RichText};
use uchat_peer::moment::Moment;
use uchat_wire::{FileId, PostId, UserName};

use crate::app::{UchatApp, date_time};
use crate::i18n::{self, Lang, Tr};
use crate::picture::file_preview;
use crate::view::rows::VirtualList;
use crate::worker::Command;

/// The feed's layout between frames.
#[derive(Debug, Default)]
pub struct FeedView {
    list: VirtualList<PostId>,
    keys: Vec<PostId>,
    made_for: Option<u64>,
    asked_more: Option<u64>,
}

impl UchatApp {
    /// The moments screen.
    pub(crate) fn moments_view(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        self.post_editor(ui);
        ui.separator();
        if ui.small_button(lang.tr(Tr::Refresh)).clicked() {
            self.send(Command::LoadFeed { before: None });
        }
        if self.model.feed.is_empty() {
            ui.label(lang.tr(Tr::NoMoments));
            return;
        }
        let width = ui.available_width();
        let view = &mut self.feed_view;
        if view.made_for != Some(self.model.feed_revision) {
            view.keys = self.model.feed.iter().map(|p| p.id).collect();
            view.made_for = Some(self.model.feed_revision);
        }
        let feed = &self.model.feed;
        view.list
            .prepare(self.model.feed_revision, width, &view.keys, |i| {
                estimate_post(&feed[i], width)
            });
        let mut actions = Vec::new();
        let (me, offset) = (self.model.me.as_ref(), self.utc_offset);
        let (textures, comments) = (&mut self.textures, &mut self.inputs.comments);
        let seen = view.list.show(ui, "feed", false, &view.keys, |ui, i| {
            draw_post(
                ui,
                &feed[i],
                lang,
                me,
                offset,
                textures,
                comments,
                &mut actions,
            );
        });
        if seen.at_bottom
            && let Some(next) = self.model.feed_next
            && self.feed_view.asked_more != Some(next)
        {
            self.feed_view.asked_more = Some(next);
            actions.push(Command::LoadFeed { before: Some(next) });
        }
        for action in actions {
            self.send(action);
        }
    }

    fn post_editor(&mut self, ui: &mut egui::Ui) {
        let lang = self.lang;
        ui.heading(lang.tr(Tr::Moments));
        let label = ui.label(lang.tr(Tr::MomentPlaceholder));
        ui.add(
            egui::TextEdit::multiline(&mut self.inputs.moment_text)
                .desired_rows(2)
                .desired_width(ui.available_width() - 20.0),
        )
        .labelled_by(label.id);
        ui.horizontal(|ui| {
            let label = ui.label(lang.tr(Tr::PicturePath));
            ui.add(
                egui::TextEdit::singleline(&mut self.inputs.moment_picture).desired_width(240.0),
            )
            .labelled_by(label.id);
            if ui.button(lang.tr(Tr::AddPicture)).clicked()
                && !self.inputs.moment_picture.trim().is_empty()
            {
                let path = std::mem::take(&mut self.inputs.moment_picture);
                self.inputs.moment_pictures.push(path.trim().into());
            }
            self.choose_files_button(ui, crate::picker::PickFor::MomentPictures);
        });
        let mut remove = None;
        for (i, path) in self.inputs.moment_pictures.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(format!("[{}] {}", lang.tr(Tr::Picture), path.display()));
                if ui
                    .small_button("×")
                    .on_hover_text(lang.tr(Tr::Remove))
                    .clicked()
                {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            self.inputs.moment_pictures.remove(i);
        }
        let has_something =
            !self.inputs.moment_text.trim().is_empty() || !self.inputs.moment_pictures.is_empty();
        if ui
            .add_enabled(has_something, egui::Button::new(lang.tr(Tr::PostMoment)))
            .clicked()
        {
            let command = Command::PostMoment {
                text: std::mem::take(&mut self.inputs.moment_text),
                images: std::mem::take(&mut self.inputs.moment_pictures),
            };
            self.send(command);
        }
    }
}

/// A post's height before it was drawn.
fn estimate_post(post: &Moment, width: f32) -> f32 {
    let usable = (width - 30.0).max(80.0);
    let text_width: f32 = post
        .text
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_ascii() { 7.5 } else { 14.5 })
        .sum();
    let text = (text_width / usable).ceil().max(1.0) * 18.0;
    let pictures = if post.images.is_empty() { 0.0 } else { 110.0 };
    let comments = post.comments.len() as f32 * 18.0;
    let likes = if post.likes.is_empty() { 0.0 } else { 18.0 };
    30.0 + text + pictures + likes + comments + 40.0
}

#[allow(clippy::too_many_arguments)]
fn draw_post(
    ui: &mut egui::Ui,
    post: &Moment,
    lang: Lang,
    me: Option<&UserName>,
    offset: time::UtcOffset,
    textures: &mut HashMap<FileId, Option<egui::TextureHandle>>,
    comments: &mut HashMap<PostId, String>,
    actions: &mut Vec<Command>,
) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(post.author.as_str()).strong());
            ui.label(
                RichText::new(date_time(post.posted_ms, offset))
                    .weak()
                    .small(),
            );
        });
        match (&post.text, &post.problem) {
            (Some(text), _) => {
                ui.label(text.as_str());
            }
            (None, Some(problem)) => {
                ui.label(RichText::new(problem.as_str()).italics().weak());
            }
            (None, None) => {}
        }
        if !post.images.is_empty() {
            ui.horizontal_wrapped(|ui| {
                for image in &post.images {
                    match file_preview(ui.ctx(), textures, image) {
                        Some(texture) => {
                            ui.add(
                                egui::Image::new(&texture)
                                    .max_height(100.0)
                                    .max_width(100.0),
                            )
                            .on_hover_text(&image.name);
                        }
                        None => {
                            ui.label(format!("[{}] {}", lang.tr(Tr::Picture), image.name));
                        }
                    }
                }
            });
        }
        if !post.likes.is_empty() {
            let names: Vec<&str> = post.likes.iter().map(|l| l.user.as_str()).collect();
            ui.label(i18n::liked_by(lang, &names));
        }
        for comment in &post.comments {
            let who = match &comment.reply_to {
                Some(to) => i18n::reply_to(lang, comment.author.as_str(), to.as_str()),
                None => comment.author.to_string(),
            };
            ui.label(format!("{who}: {}", comment.text));
        }
        let liked = me.is_some_and(|me| post.likes.iter().any(|l| &l.user == me));
        ui.horizontal(|ui| {
            let (word, action) = if liked {
                (Tr::Unlike, Command::Unlike(post.id))
            } else {
                (Tr::Like, Command::Like(post.id))
            };
            if ui.small_button(lang.tr(word)).clicked() {
                actions.push(action);
            }
            let draft = comments.entry(post.id).or_default();
            let label = ui.label(lang.tr(Tr::Comment));
            ui.add(
                egui::TextEdit::singleline(draft)
                    .hint_text(lang.tr(Tr::CommentPlaceholder))
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
            if ui.small_button(lang.tr(Tr::Send)).clicked() && !draft.trim().is_empty() {
                actions.push(Command::Comment {
                    post: post.id,
                    text: std::mem::take(draft),
                    reply_to: None,
                });
            }
            if me == Some(&post.author) && ui.small_button(lang.tr(Tr::Delete)).clicked() {
                actions.push(Command::DeleteMoment(post.id));
            }
        });
    });
    ui.add_space(6.0);
}
