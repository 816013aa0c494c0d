//! Pictures other people chose, made into textures: the one bounded decode that every
//! picture from the network goes through before the app shows it (thumbnails of pictures
//! sent in chats, pictures in moments), and the scaling that a pasted picture's pixels go
//! through before their preview (a picture copied from a web page can be as wide).
//!
//! A received picture is small in bytes but may claim any size: a 20000×1 PNG takes a
//! hundred bytes, a 10000×10000 one of zeros some tens of kilobytes (a decompression
//! bomb), and egui's painter panics on a texture side beyond the GPU's limit (2048 to
//! 16384 pixels), which would crash the app each time the chat that holds it opens. So a
//! picture is decoded only within bounds (`uchat_peer::thumbnail::decode_preview`, which
//! the fuzz target `picture_decode` runs too), then scaled down to fit [`PREVIEW_SIDE`];
//! anything else (too large, truncated, not a picture) has no preview, and the caller
//! shows the file's name.
//! Decoding happens on the UI thread, once per file (the caller keeps the texture), so the
//! limits also bound how long one hostile picture holds up a frame.

use std::collections::HashMap;

use eframe::egui;
use uchat_peer::store::FileRef;
use uchat_peer::thumbnail::THUMBNAIL_SIDE;
use uchat_wire::FileId;

/// Longest side of a preview, in pixels: that of the thumbnails peers make, more than the
/// app shows (120 px high in a chat, 100 in a moment) even on a screen of twice the density.
pub const PREVIEW_SIDE: u32 = THUMBNAIL_SIDE;

/// The picture in `bytes` decoded within bounds (see [`uchat_peer::thumbnail::decode_preview`])
/// and scaled down (never up) to fit [`PREVIEW_SIDE`] and `max_texture_side`, or `None` if
/// it is not a picture this build reads, is damaged, or is larger than any preview needs.
pub fn decode_preview(bytes: &[u8], max_texture_side: usize) -> Option<egui::ColorImage> {
    let rgba = uchat_peer::thumbnail::decode_preview(bytes, preview_side(max_texture_side))?;
    let size = [rgba.width() as usize, rgba.height() as usize];
    Some(egui::ColorImage::from_rgba_unmultiplied(
        size,
        rgba.as_raw(),
    ))
}

/// The longest side a preview may have with a painter that takes textures of at most
/// `max_texture_side` pixels a side.
fn preview_side(max_texture_side: usize) -> u32 {
    PREVIEW_SIDE.min(u32::try_from(max_texture_side).unwrap_or(u32::MAX))
}

/// The texture of the picture in `bytes`, named `name`, made through [`decode_preview`]
/// (so never larger than the painter takes), or `None` if it has no preview.
pub fn texture(ctx: &egui::Context, name: String, bytes: &[u8]) -> Option<egui::TextureHandle> {
    let max_texture_side = ctx.input(|i| i.max_texture_side);
    let image = decode_preview(bytes, max_texture_side)?;
    Some(ctx.load_texture(name, image, egui::TextureOptions::LINEAR))
}

/// The preview of `image`, pixels already in memory (a pasted picture), scaled down (never
/// up) to fit [`PREVIEW_SIDE`] and `max_texture_side`; `None` if its pixels do not match
/// its size.
pub fn fit_preview(image: &egui::ColorImage, max_texture_side: usize) -> Option<egui::ColorImage> {
    let side = preview_side(max_texture_side);
    let width = u32::try_from(image.width()).ok()?;
    let height = u32::try_from(image.height()).ok()?;
    if width <= side && height <= side {
        return Some(image.clone());
    }
    // Color32 is RGBA with the colour premultiplied by alpha, which averages correctly.
    let pixels =
        image::ImageBuffer::<image::Rgba<u8>, &[u8]>::from_raw(width, height, image.as_raw())?;
    let scale = f64::from(side) / f64::from(width.max(height));
    let fit = |length: u32| ((f64::from(length) * scale).round() as u32).clamp(1, side);
    let small = image::imageops::thumbnail(&pixels, fit(width), fit(height));
    let size = [small.width() as usize, small.height() as usize];
    Some(egui::ColorImage::from_rgba_premultiplied(
        size,
        small.as_raw(),
    ))
}

/// The preview of a received file's thumbnail (a picture sent in a chat, or one in a
/// moment), decoded the first time it is asked for and kept in `textures`, also when there
/// is none, so a bad thumbnail is decoded only once.
pub(crate) fn file_preview(
    ctx: &egui::Context,
    textures: &mut HashMap<FileId, Option<egui::TextureHandle>>,
    file: &FileRef,
) -> Option<egui::TextureHandle> {
    textures
        .entry(file.file)
        .or_insert_with(|| {
            let bytes = file.thumbnail.as_ref()?;
            texture(ctx, format!("thumb-{}", file.file), bytes)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_peer::thumbnail::{MAX_PREVIEW_SOURCE_BYTES, MAX_PREVIEW_SOURCE_SIDE};

    /// Plenty for any test picture: the painter's limit is not what is tested here.
    const PAINTER: usize = 8192;

    fn encode(picture: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    fn gradient(width: u32, height: u32) -> image::RgbImage {
        image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        })
    }

    /// Appends a PNG chunk: length, type, data and the CRC-32 of type and data.
    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        let mut crc = !0u32;
        for &byte in kind.iter().chain(data) {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        png.extend((!crc).to_be_bytes());
    }

    /// A valid PNG of `side`×`side` black pixels at one bit each, compressed by hand into
    /// one fixed-Huffman deflate block of a zero byte and copies of it: some tens of
    /// kilobytes that decode to `side`² pixels, a decompression bomb.
    fn bomb_png(side: u32) -> Vec<u8> {
        let raw = (1 + (side as usize).div_ceil(8)) * side as usize;
        let mut bits: Vec<u8> = Vec::new();
        let mut count = 0usize;
        let mut put = |value: u32, n: u32, huffman: bool| {
            for i in 0..n {
                // Huffman codes go most significant bit first, other fields least first.
                let bit = if huffman {
                    value >> (n - 1 - i)
                } else {
                    value >> i
                } & 1;
                if count.is_multiple_of(8) {
                    bits.push(0);
                }
                if let Some(last) = bits.last_mut() {
                    *last |= (bit as u8) << (count % 8);
                }
                count += 1;
            }
        };
        put(0b011, 3, false); // the last block, with the fixed codes
        put(0b0011_0000, 8, true); // the literal 0
        let mut left = raw - 1;
        while left >= 258 {
            put(0b1100_0101, 8, true); // copy 258 bytes (length code 285)…
            put(0, 5, true); // …from 1 byte back
            left -= 258;
        }
        for _ in 0..left {
            put(0b0011_0000, 8, true);
        }
        put(0, 7, true); // end of block
        let mut zlib = vec![0x78, 0x01];
        zlib.extend(bits);
        // Adler-32 of `raw` zeros.
        zlib.extend(((((raw % 65_521) as u32) << 16) | 1).to_be_bytes());
        let mut header = Vec::new();
        header.extend(side.to_be_bytes());
        header.extend(side.to_be_bytes());
        header.extend([1, 0, 0, 0, 0]); // 1-bit grey, no interlacing
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &header);
        chunk(&mut png, b"IDAT", &zlib);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn a_picture_wider_or_taller_than_any_preview_needs_has_none() {
        for (width, height) in [(20_000, 1), (1, 20_000), (MAX_PREVIEW_SOURCE_SIDE + 1, 4)] {
            let png = encode(&gradient(width, height), image::ImageFormat::Png);
            assert!(png.len() < 64 * 1024, "{} bytes", png.len());
            assert!(
                decode_preview(&png, PAINTER).is_none(),
                "{width}×{height} has no preview"
            );
        }
        let widest = encode(
            &gradient(MAX_PREVIEW_SOURCE_SIDE, 8),
            image::ImageFormat::Png,
        );
        let preview = decode_preview(&widest, PAINTER).expect("a preview");
        assert_eq!(preview.size[0], PREVIEW_SIDE as usize);
        assert!((1..=8).contains(&preview.size[1]), "{:?}", preview.size);
    }

    #[test]
    fn a_decompression_bomb_is_refused_and_a_bounded_one_scaled_down() {
        // The maker makes real pictures: an unbounded decoder takes them whole.
        let small = image::load_from_memory(&bomb_png(1000)).expect("a valid PNG");
        assert_eq!((small.width(), small.height()), (1000, 1000));
        let bomb = bomb_png(10_000);
        assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
        assert!(decode_preview(&bomb, PAINTER).is_none());
        let largest =
            decode_preview(&bomb_png(MAX_PREVIEW_SOURCE_SIDE), PAINTER).expect("a preview");
        assert_eq!(largest.size, [PREVIEW_SIDE as usize; 2]);
    }

    #[test]
    fn damaged_foreign_or_oversized_bytes_have_no_preview() {
        let png = encode(&gradient(200, 100), image::ImageFormat::Png);
        assert!(decode_preview(&png[..png.len() / 2], PAINTER).is_none());
        assert!(decode_preview(&png[..16], PAINTER).is_none());
        assert!(decode_preview(b"%PDF-1.7 not a picture", PAINTER).is_none());
        assert!(decode_preview(b"", PAINTER).is_none());
        // A format that is not one peers send pictures in (TIFF's header).
        assert!(decode_preview(b"II*\0\x08\0\0\0 more", PAINTER).is_none());
        let mut padded = png.clone();
        padded.resize(MAX_PREVIEW_SOURCE_BYTES + 1, 0);
        assert!(decode_preview(&padded, PAINTER).is_none());
    }

    #[test]
    fn a_picture_larger_than_a_preview_is_scaled_down_and_a_small_one_kept() {
        let jpeg = encode(&gradient(640, 480), image::ImageFormat::Jpeg);
        let preview = decode_preview(&jpeg, PAINTER).expect("a preview");
        assert_eq!(preview.size, [320, 240]);
        let png = encode(&gradient(200, 100), image::ImageFormat::Png);
        let preview = decode_preview(&png, PAINTER).expect("a preview");
        assert_eq!(preview.size, [200, 100]);
        assert_eq!(preview.pixels[101], egui::Color32::from_rgb(101, 0, 90));
    }

    #[test]
    fn a_pasted_picture_wider_than_a_preview_is_scaled_down_for_it() {
        let red = egui::Color32::from_rgb(200, 10, 10);
        let wide = egui::ColorImage::filled([20_000, 2], red);
        let preview = fit_preview(&wide, PAINTER).expect("a preview");
        assert_eq!(preview.size, [PREVIEW_SIDE as usize, 1]);
        assert!(preview.pixels.iter().all(|&p| p == red));
        let tall = egui::ColorImage::filled([400, 800], red);
        assert_eq!(
            fit_preview(&tall, PAINTER).map(|p| p.size),
            Some([160, 320])
        );
        let small = egui::ColorImage::filled([100, 50], red);
        assert_eq!(fit_preview(&small, PAINTER).as_ref(), Some(&small));
        let mut broken = egui::ColorImage::filled([400, 400], red);
        broken.pixels.truncate(10);
        assert!(fit_preview(&broken, PAINTER).is_none());
    }

    #[test]
    fn a_preview_fits_a_painter_with_small_textures() {
        let jpeg = encode(&gradient(640, 480), image::ImageFormat::Jpeg);
        let preview = decode_preview(&jpeg, 64).expect("a preview");
        assert_eq!(preview.size, [64, 48]);
    }
}
