//! Driving the real desktop app in tests: a [`Gui`] is a `uchat_gui::UchatApp` inside an
//! egui_kittest harness (no window, the real app state, the real network thread), found by
//! its widgets' labels and clicked and typed into like a person would.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use uchat_gui::i18n::Lang;
use uchat_gui::worker::AudioSettings;
use uchat_gui::{AppOptions, UchatApp};

/// How long a step waits for the network before looking again.
const POLL: Duration = Duration::from_millis(40);

/// One app window's state under test.
pub struct Gui {
    /// The harness (step it, query it).
    pub harness: Harness<'static, UchatApp>,
    /// Whose it is, for messages.
    pub name: String,
}

impl Gui {
    /// The app on profile directory `home`, offering `relay` on the sign-in screen.
    pub fn start(
        name: &str,
        home: &Path,
        relay: &str,
        lang: Lang,
        audio: AudioSettings,
    ) -> Result<Gui> {
        let options = AppOptions {
            home: home.to_path_buf(),
            relay: relay.to_string(),
            lang: Some(lang),
            audio,
            utc_offset: time::UtcOffset::UTC,
            password: None,
            tour: None,
            relay_fingerprint: None,
        };
        Self::start_with(name, options)
    }

    /// The app on profile directory `home`, in `lang`, with `name` registered on `relay`
    /// (with the tests' password) through its sign-in screen.
    pub fn register(
        name: &str,
        home: &Path,
        relay: &crate::TestRelay,
        lang: Lang,
        audio: AudioSettings,
    ) -> Result<Gui> {
        let mut app = Self::start(name, home, "", lang, audio)?;
        app.sign_in(
            &relay.addr,
            name,
            crate::PASSWORD,
            lang.tr(uchat_gui::i18n::Tr::Register),
        )?;
        Ok(app)
    }

    /// The app started with `options`, as `uchat-gui`'s flags would make them.
    pub fn start_with(name: &str, options: AppOptions) -> Result<Gui> {
        let font = std::sync::Arc::new(std::sync::Mutex::new(None));
        let font_seen = font.clone();
        let harness = Harness::builder()
            .with_size(egui::vec2(1100.0, 760.0))
            .with_context_setup(move |ctx| {
                let loaded = uchat_gui::fonts::install_cjk_font(ctx);
                *font_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(loaded);
            })
            .build_ui_state(
                |ui, app: &mut UchatApp| app.ui(ui),
                UchatApp::new(options, uchat_gui::fonts::CjkFont::Missing)?,
            );
        let loaded = font
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if !loaded
            .as_ref()
            .is_some_and(uchat_gui::fonts::CjkFont::is_loaded)
        {
            bail!(
                "no CJK font for the GUI tests: install {}",
                uchat_gui::fonts::FONT_PACKAGES
            );
        }
        Ok(Gui {
            harness,
            name: name.to_string(),
        })
    }

    /// Steps frames until `done` holds, failing after `limit` with `what`.
    pub fn until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Harness<'static, UchatApp>) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            self.harness.step();
            if done(&self.harness) {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "{}: {what} did not happen within {limit:?}; the screen showed {:?}",
                    self.name,
                    self.on_screen()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The labels and texts of every widget on screen, in the order the app drew them:
    /// what a failed wait shows of the screen.
    pub fn on_screen(&self) -> Vec<String> {
        use egui_kittest::kittest::{By, NodeT};
        self.harness
            .query_all(By::new().predicate(|node| node.role() != egui::accesskit::Role::TextRun))
            .filter_map(|node| {
                let node = node.accesskit_node();
                node.label().or_else(|| node.value())
            })
            .collect()
    }

    /// Keeps the app running (stepping frames) until `outside`, which looks at something
    /// beyond the app (another user's CLI, say), says it happened; fails after `limit`.
    pub fn run_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut outside: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        while !outside()? {
            if start.elapsed() > limit {
                bail!("{}: {what} did not happen within {limit:?}", self.name);
            }
            self.harness.step();
            std::thread::sleep(POLL * 3);
        }
        Ok(())
    }

    /// Waits until a widget labelled exactly `label` shows.
    pub fn wait_for(&mut self, label: &str, limit: Duration) -> Result<()> {
        let what = format!("{label:?} showing");
        self.until(&what, limit, |h| {
            h.query_all_by_label(label).next().is_some()
        })
    }

    /// Waits until a widget whose label contains `part` shows.
    pub fn wait_for_part(&mut self, part: &str, limit: Duration) -> Result<()> {
        let what = format!("something with {part:?} showing");
        self.until(&what, limit, |h| {
            h.query_all_by_label_contains(part).next().is_some()
        })
    }

    /// Whether a widget labelled exactly `label` shows now.
    pub fn shows(&self, label: &str) -> bool {
        self.harness.query_all_by_label(label).next().is_some()
    }

    /// Drops the file at `path` on the window, as dragging it from a file manager does.
    pub fn drop_file(&mut self, path: &Path) {
        self.harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedPath(path.to_path_buf())));
        self.harness.step();
        self.harness.step();
    }

    /// Composes text through an input method in the focused text field: each of
    /// `composing` shown as the pre-edit text, then `chosen` committed.
    pub fn input_method(&mut self, composing: &[&str], chosen: &str) {
        use egui::{Event, ImeEvent};
        for text in composing {
            let chars = text.chars().count();
            self.harness.event(Event::Ime(ImeEvent::Preedit {
                text: (*text).to_string(),
                active_range_chars: Some(0..chars),
            }));
            self.harness.step();
        }
        self.harness
            .event(Event::Ime(ImeEvent::Commit(chosen.to_string())));
        self.harness.step();
        self.harness.step();
    }

    /// Pastes a picture, as Ctrl+V does when the clipboard holds one (and no text).
    pub fn paste_picture(&mut self, picture: std::sync::Arc<egui::ColorImage>) {
        self.harness.event(egui::Event::PasteImage(picture));
        self.harness.step();
    }

    /// Whether a widget whose label contains `part` shows now.
    pub fn shows_part(&self, part: &str) -> bool {
        self.harness
            .query_all_by_label_contains(part)
            .next()
            .is_some()
    }

    /// Clicks the (first) button labelled `label`, waiting up to 20 s for it.
    pub fn click(&mut self, label: &str) -> Result<()> {
        let what = format!("a button {label:?}");
        self.until(&what, Duration::from_secs(20), |h| {
            h.query_all_by_role_and_label(egui::accesskit::Role::Button, label)
                .next()
                .is_some()
        })?;
        self.harness.check_accessibility();
        if let Some(button) = self
            .harness
            .query_all_by_role_and_label(egui::accesskit::Role::Button, label)
            .next()
        {
            button.click();
        }
        self.harness.step();
        self.harness.step();
        Ok(())
    }

    /// Ticks the checkbox labelled `label`.
    pub fn tick(&mut self, label: &str) -> Result<()> {
        self.wait_for(label, Duration::from_secs(20))?;
        self.harness.get_by_label(label).click();
        self.harness.step();
        self.harness.step();
        Ok(())
    }

    /// Opens the drop-down list labelled `label` and picks the option `option`.
    pub fn choose(&mut self, label: &str, option: &str) -> Result<()> {
        use egui::accesskit::Role;
        let what = format!("a drop-down list {label:?}");
        self.until(&what, Duration::from_secs(20), |h| {
            h.query_all_by_role_and_label(Role::ComboBox, label)
                .next()
                .is_some()
        })?;
        if let Some(list) = self
            .harness
            .query_all_by_role_and_label(Role::ComboBox, label)
            .next()
        {
            list.click();
        }
        self.harness.step();
        self.harness.step();
        self.wait_for(option, Duration::from_secs(5))?;
        if let Some(choice) = self.harness.query_all_by_label(option).last() {
            choice.click();
        }
        self.harness.step();
        self.harness.step();
        Ok(())
    }

    /// Types `text` into the text field labelled `label` (not a button of the same name),
    /// replacing what it held.
    pub fn type_into(&mut self, label: &str, text: &str) -> Result<()> {
        let what = format!("a text field {label:?}");
        self.until(&what, Duration::from_secs(20), |h| {
            text_field(h, label).is_some()
        })?;
        let gone = || anyhow::anyhow!("the text field {label:?} went away");
        text_field(&self.harness, label).ok_or_else(gone)?.focus();
        self.harness.step();
        let old = text_field(&self.harness, label)
            .ok_or_else(gone)?
            .value()
            .unwrap_or_default();
        if !old.is_empty() {
            self.harness
                .key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::A]);
            self.harness.step();
            self.harness.key_press(egui::Key::Backspace);
            self.harness.step();
        }
        text_field(&self.harness, label)
            .ok_or_else(gone)?
            .type_text(text);
        self.harness.step();
        self.harness.step();
        Ok(())
    }

    /// On the contacts screen, asks `user` to be friends (with `note`, if any) and waits
    /// for the request to show as sent.
    pub fn ask_friend(&mut self, user: &str, note: &str) -> Result<()> {
        use uchat_gui::i18n::Tr;
        let lang = self.harness.state().lang();
        self.click(lang.tr(Tr::Contacts))?;
        self.type_into(lang.tr(Tr::Username), user)?;
        if !note.is_empty() {
            self.type_into(lang.tr(Tr::FriendNote), note)?;
        }
        self.click(lang.tr(Tr::AddFriend))?;
        self.wait_for(&format!("→ {user}"), Duration::from_secs(30))
    }

    /// Waits until `user` is in the friend list.
    pub fn wait_until_friends_with(&mut self, user: &str) -> Result<()> {
        let what = format!("{user} becoming a friend");
        self.until(&what, Duration::from_secs(30), |h| {
            h.state()
                .model
                .friends
                .iter()
                .any(|f| f.user.as_str() == user)
        })
    }

    /// Runs the sign-in screen: relay, fingerprint check, name, password, then `action`
    /// ("Register" or "Sign in", in the app's language), and waits to be signed in.
    pub fn sign_in(&mut self, relay: &str, user: &str, password: &str, action: &str) -> Result<()> {
        let lang = self.harness.state().lang();
        let tr = |key| lang.tr(key);
        use uchat_gui::i18n::Tr;
        self.type_into(tr(Tr::Relay), relay)?;
        let connect = format!("{} / {}", tr(Tr::SignIn), tr(Tr::Register));
        self.click(&connect)?;
        self.wait_for(tr(Tr::RelayFingerprint), Duration::from_secs(20))?;
        self.tick(tr(Tr::FingerprintTrusted))?;
        self.type_into(tr(Tr::Username), user)?;
        self.type_into(tr(Tr::Password), password)?;
        self.click(action)?;
        let me = user.to_string();
        self.until("signing in", Duration::from_secs(30), |h| {
            h.state()
                .model
                .me
                .as_ref()
                .is_some_and(|m| m.as_str() == me)
        })
    }
}

/// The text field (one line, several, or a password) labelled `label`.
fn text_field<'h>(
    harness: &'h Harness<'static, UchatApp>,
    label: &'h str,
) -> Option<egui_kittest::Node<'h>> {
    use egui::accesskit::Role;
    harness
        .query_all_by_role_and_label(Role::TextInput, label)
        .chain(harness.query_all_by_role_and_label(Role::MultilineTextInput, label))
        .chain(harness.query_all_by_role_and_label(Role::PasswordInput, label))
        .next()
}

/// A file dropped on the window, as the platform hands it to egui.
#[derive(Debug)]
struct DroppedPath(std::path::PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
