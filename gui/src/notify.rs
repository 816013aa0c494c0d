//! Desktop notifications: the freedesktop notification service on the session D-Bus
//! (through notify-rust), for new messages and calls while the window is not focused.
//! Talking to the bus may block, so notifications go to a thread of their own; without a
//! notification service (no desktop session) the first failure is logged and the rest
//! are dropped quietly: the window's attention request and title still tell the user.
//!
//! A notification's body is markup to services that say so (the `body-markup`
//! capability): `<b>`, `<i>`, `<a href>` and `<img src>`. What other people wrote (a
//! message, a file's name, a caller's name) goes into the body, so for such a service it
//! is escaped ([`escape_markup`]) and shows as written. The summary (a sender or a group's
//! name) is plain text by the specification, so it is passed on as it is.

use std::sync::mpsc::{Receiver, Sender, channel};

use crate::i18n::{self, Lang};

/// Something that wants the user's attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attention {
    /// A message in a chat (`chat` is its title) with the start of its text.
    Message {
        /// The chat's title: the sender, or the group's name.
        chat: String,
        /// The start of the message (its text, or the file's name).
        preview: String,
    },
    /// `from` is calling.
    Call {
        /// The caller's username, put in the body escaped for services that read markup.
        from: String,
    },
}

impl Attention {
    /// The notification's title and body, in `lang`.
    pub fn text(&self, lang: Lang) -> (String, String) {
        match self {
            Attention::Message { chat, preview } => (chat.clone(), preview.clone()),
            Attention::Call { from } => ("Uchat".into(), i18n::calling_you(lang, from)),
        }
    }
}

/// Hands notifications to the desktop from a thread of its own.
#[derive(Debug)]
pub struct Notifier {
    to_thread: Option<Sender<(String, String)>>,
}

impl Notifier {
    /// Starts the notification thread (none if the thread cannot start).
    pub fn start() -> Notifier {
        let (tx, rx) = channel();
        let started = std::thread::Builder::new()
            .name("uchat-notify".into())
            .spawn(move || show_all(rx));
        if let Err(e) = &started {
            tracing::warn!(error = %e, "no desktop notifications: cannot start their thread");
        }
        Notifier {
            to_thread: started.ok().map(|_| tx),
        }
    }

    /// Shows a notification with `summary` and `body`, without waiting.
    pub fn show(&self, summary: String, body: String) {
        if let Some(tx) = &self.to_thread {
            let _ = tx.send((summary, body));
        }
    }
}

/// `text` with the characters that markup reads escaped, for a notification body: `&`,
/// `<` and `>`. Quotes need no escaping outside a tag, and `&apos;` is not understood by
/// every service (Qt's rich text in KDE reads HTML 4 entities), so they are left as they are.
pub fn escape_markup(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// The body to hand to a service with these `capabilities` (`None`: it could not be
/// asked): escaped unless the service is known to show bodies as plain text, where an
/// escape would show as `&amp;`.
fn body_for(body: String, capabilities: Option<&[String]>) -> String {
    let plain = capabilities.is_some_and(|caps| !caps.iter().any(|c| c == "body-markup"));
    if plain { body } else { escape_markup(&body) }
}

fn show_all(notifications: Receiver<(String, String)>) {
    let mut warned = false;
    for (summary, body) in notifications {
        // Asked every time: the service may have started, or changed, since the last one.
        let capabilities = notify_rust::get_capabilities().ok();
        let body = body_for(body, capabilities.as_deref());
        let shown = notify_rust::Notification::new()
            .appname("Uchat")
            .summary(&summary)
            .body(&body)
            .show();
        if let Err(e) = shown
            && !warned
        {
            tracing::warn!(error = %e, "desktop notifications are not available");
            warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_message_is_escaped_for_services_that_read_markup() {
        let hostile =
            r#"<b>urgent</b> <a href="https://evil.example">pay</a> <img src="/etc/x"/> & Tom's"#;
        let escaped = escape_markup(hostile);
        assert_eq!(
            escaped,
            r#"&lt;b&gt;urgent&lt;/b&gt; &lt;a href="https://evil.example"&gt;pay&lt;/a&gt; &lt;img src="/etc/x"/&gt; &amp; Tom's"#
        );
        assert_eq!(
            escape_markup("&lt;"),
            "&amp;lt;",
            "an entity in the text shows as written"
        );
        assert_eq!(escape_markup("你好，周末见"), "你好，周末见");
        let markup = ["actions".to_string(), "body-markup".to_string()];
        assert_eq!(body_for(hostile.into(), Some(&markup)), escaped);
        assert_eq!(body_for(hostile.into(), None), escaped, "unknown: escaped");
        let plain = ["body".to_string()];
        assert_eq!(body_for(hostile.into(), Some(&plain)), hostile);
    }

    #[test]
    fn a_callers_name_in_the_body_is_escaped_too() {
        let call = Attention::Call {
            from: "<i>bob</i>".into(),
        };
        let (_, body) = call.text(Lang::En);
        assert_eq!(body_for(body, None), "&lt;i&gt;bob&lt;/i&gt; is calling");
    }
}
