//! The picture decode a fuzz target cannot call where it lives, written again with the
//! same reader, format and limits.
//!
//! - [`relay_avatar_check`]: the relay's `check_avatar` (relay/src/server/requests/profile.rs)
//!   is private to its request handler, and linking the relay (quinn, redb, hyper) for one
//!   function would double the fuzz build. Keep the two in step: same size check, PNG
//!   only, [`MAX_AVATAR_SIDE`] a side, `side² × 8` bytes of allocation.
//!
//! The peer's own decodes (`avatar::avatar_from_bytes`, `thumbnail::thumbnail_of`) and the
//! bounded decode the desktop app shows every received picture through
//! (`thumbnail::decode_preview`) are public and fuzzed as they are.

use std::io::Cursor;

use uchat_wire::msg::social::{MAX_AVATAR_BYTES, MAX_AVATAR_SIDE};

/// Whether the relay would take `png` as an avatar: at most [`MAX_AVATAR_BYTES`], a PNG
/// that decodes within the limits, square and not empty.
pub fn relay_avatar_check(png: &[u8]) -> bool {
    if png.len() > MAX_AVATAR_BYTES {
        return false;
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(png), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_AVATAR_SIDE);
    limits.max_image_height = Some(MAX_AVATAR_SIDE);
    limits.max_alloc = Some(u64::from(MAX_AVATAR_SIDE * MAX_AVATAR_SIDE) * 8);
    reader.limits(limits);
    match reader.decode() {
        Ok(image) => image.width() == image.height() && image.width() != 0,
        Err(_) => false,
    }
}
