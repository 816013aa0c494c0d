//! What may reach the terminal: text other people wrote (messages, notes, names of files
//! and groups, posts, comments) and what a relay says (its error messages) is shown with
//! its control characters escaped, so nobody can retitle the window, rewrite the screen,
//! set the clipboard (OSC 52) or reorder a line with bidirectional overrides from inside a
//! message. `--json` output is escaped by JSON itself.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is kept as it is: anything printable, and line breaks and tabs (a message
/// may have several lines).
fn is_shown_as_is(c: char) -> bool {
    match c {
        '\n' | '\t' => true,
        // C0 controls (ESC, BEL, CR, backspace, ...), DEL and the C1 controls (CSI is
        // U+009B).
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => false,
        // Bidirectional embeddings, overrides and isolates, which make a line read in an
        // order other than the bytes': "Trojan Source".
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => false,
        _ => true,
    }
}

/// `text` as the terminal should get it: control characters written as `\u{1b}`-style
/// escapes, everything else as it is.
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_shown_as_is(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(
            shown("\u{1b}]0;owned\u{7}\u{1b}[2Jhi"),
            "\\u{1b}]0;owned\\u{7}\\u{1b}[2Jhi"
        );
        assert_eq!(
            shown("clip\u{1b}]52;c;ZXZpbA==\u{7}"),
            "clip\\u{1b}]52;c;ZXZpbA==\\u{7}"
        );
        assert_eq!(shown("a\u{9b}31mred"), "a\\u{9b}31mred");
        assert_eq!(shown("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(shown("over\rwrite"), "over\\u{d}write");
    }

    #[test]
    fn ordinary_text_lines_and_tabs_pass_unchanged() {
        for text in ["hello 你好 👋", "two\nlines", "a\tb", "مرحبا", ""] {
            assert!(
                matches!(shown(text), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }
}
