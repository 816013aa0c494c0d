//! Picture decoding with limits: a picture made into an avatar, a picture's thumbnail, the
//! relay's check of an uploaded avatar, and the bounded decode the desktop app shows every
//! received picture through (`thumbnail::decode_preview`).
//!
//! Input: a mode byte, then the picture's bytes (PNG, JPEG, GIF, WebP or BMP). Nothing
//! may panic or take more memory than libFuzzer's limit (2 GiB); what the peer makes
//! must pass the other side's check: an avatar is a PNG the relay takes, a thumbnail a
//! JPEG the desktop app shows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uchat_wire::msg::social::check_avatar;
use uchat_peer::avatar::{AVATAR_SIDE, avatar_from_bytes};
use uchat_peer::thumbnail::{THUMBNAIL_SIDE, decode_preview, image_mime, thumbnail_of};

/// What the desktop app would show of a received picture: its preview's size.
fn received_thumbnail(bytes: &[u8]) -> Option<(u32, u32)> {
    let preview = decode_preview(bytes, THUMBNAIL_SIDE)?;
    assert!(
        preview.width() <= THUMBNAIL_SIDE && preview.height() <= THUMBNAIL_SIDE,
        "a preview larger than asked"
    );
    Some(preview.dimensions())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, picture)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(png) = avatar_from_bytes(picture, "fuzz") {
                assert!(
                    check_avatar(&png).is_ok(),
                    "the relay refuses a peer-made avatar"
                );
                let side = AVATAR_SIDE.min(THUMBNAIL_SIDE);
                assert_eq!(received_thumbnail(&png), Some((side, side)));
            }
        }
        1 => {
            let _ = image_mime(picture);
            if let Some(thumb) = thumbnail_of(picture) {
                let (w, h) = received_thumbnail(&thumb.jpeg).expect("the app shows it");
                assert!(w <= THUMBNAIL_SIDE && h <= THUMBNAIL_SIDE, "{w}x{h}");
            }
        }
        2 => {
            let _ = check_avatar(picture);
        }
        _ => {
            let _ = received_thumbnail(picture);
        }
    }
});
