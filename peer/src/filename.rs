//! File names from other people, made safe to write: a received file's name is never
//! trusted as a path. [`safe_file_name`] keeps only a plain name (no folders, no `..`, no
//! control characters, no device names Windows reserves, at most [`MAX_NAME_BYTES`]), and
//! [`free_name_in`] finds a name in the destination folder that nothing else has.
//!
//! Pure apart from [`free_name_in`]'s look at the folder.

use std::path::{Path, PathBuf};

/// Longest name kept, in bytes of UTF-8 (most file systems allow 255).
pub const MAX_NAME_BYTES: usize = 200;

/// What an empty or entirely unusable name becomes.
const FALLBACK_NAME: &str = "file";

/// Device names Windows reserves, with or without an extension (`CON`, `con.txt`, …).
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A plain file name made from `name` as a sender gave it: the part after the last `/` or
/// `\\`, without control characters or characters Windows forbids (`<>:"|?*`), without
/// leading dots or spaces and trailing dots or spaces, not a reserved device name, and at
/// most [`MAX_NAME_BYTES`] (cut at a character boundary, keeping a short extension).
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if trimmed.is_empty() {
        return FALLBACK_NAME.to_string();
    }
    let stem = trimmed.split('.').next().unwrap_or_default();
    let mut safe = if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem.trim())) {
        format!("_{trimmed}")
    } else {
        trimmed.to_string()
    };
    if safe.len() > MAX_NAME_BYTES {
        safe = shorten(&safe);
    }
    safe
}

/// Cuts a long name to [`MAX_NAME_BYTES`], keeping an extension of up to 16 bytes.
fn shorten(name: &str) -> String {
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => name.split_at(dot),
        _ => (name, ""),
    };
    let room = MAX_NAME_BYTES - extension.len();
    let mut end = room.min(stem.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &stem[..end])
}

/// A path in `dir` for `name` (already safe) that nothing exists at: `name`, else
/// `stem (1).ext`, `stem (2).ext`, …
pub fn free_name_in(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    (1u32..)
        .map(|n| dir.join(format!("{stem} ({n}){extension}")))
        .find(|path| !path.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_plain_names() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("/abs/path.txt"), "path.txt");
        assert_eq!(safe_file_name("..\\..\\windows\\win.ini"), "win.ini");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name("..."), "file");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("con.txt"), "_con.txt");
        assert_eq!(safe_file_name("lpt9.tar.gz"), "_lpt9.tar.gz");
        assert_eq!(safe_file_name("console.txt"), "console.txt");
        assert_eq!(safe_file_name("a\u{0}b\nc\u{1b}[31m.txt"), "a_b_c_[31m.txt");
        assert_eq!(safe_file_name("what?.txt"), "what_.txt");
        assert_eq!(safe_file_name("照片 2026.jpg"), "照片 2026.jpg");
        assert_eq!(safe_file_name("name\u{fffd}.bin"), "name\u{fffd}.bin");
    }

    #[test]
    fn long_names_are_cut_at_a_character_keeping_the_extension() {
        let long = format!("{}.pdf", "长".repeat(300));
        let safe = safe_file_name(&long);
        assert!(safe.len() <= MAX_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("长.pdf"), "{safe}");
        let no_extension = "x".repeat(1000);
        assert_eq!(safe_file_name(&no_extension).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(free_name_in(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"x").expect("writes");
        assert_eq!(
            free_name_in(dir.path(), "a.txt"),
            dir.path().join("a (1).txt")
        );
        std::fs::write(dir.path().join("a (1).txt"), b"x").expect("writes");
        assert_eq!(
            free_name_in(dir.path(), "a.txt"),
            dir.path().join("a (2).txt")
        );
        assert_eq!(free_name_in(dir.path(), "b"), dir.path().join("b"));
    }
}
