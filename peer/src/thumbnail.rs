//! Thumbnails for pictures sent as files: a small JPEG that travels inside the file
//! message, so a chat shows the picture at once while the full file downloads on demand.

use std::io::Cursor;

use image::imageops::FilterType;

use crate::avatar::decode_picture;

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Largest thumbnail kept, in bytes (it rides in the encrypted message).
pub const MAX_THUMBNAIL_BYTES: usize = 64 * 1024;

/// A picture's thumbnail and its full size.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// JPEG bytes, at most [`THUMBNAIL_SIDE`] a side.
    pub jpeg: Vec<u8>,
    /// The full picture's width, in pixels.
    pub width: u32,
    /// The full picture's height, in pixels.
    pub height: u32,
}

impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Thumbnail(<{} bytes>, {}x{})",
            self.jpeg.len(),
            self.width,
            self.height
        )
    }
}

/// The picture formats this build reads (pictures in chats, moments, avatars).
pub const PICTURE_FORMATS: [image::ImageFormat; 5] = [
    image::ImageFormat::Png,
    image::ImageFormat::Jpeg,
    image::ImageFormat::Gif,
    image::ImageFormat::WebP,
    image::ImageFormat::Bmp,
];

/// The MIME type of a file's bytes if they start like a picture this build reads.
pub fn image_mime(head: &[u8]) -> Option<&'static str> {
    let format = image::guess_format(head).ok()?;
    PICTURE_FORMATS
        .contains(&format)
        .then(|| format.to_mime_type())
}

/// The file-name extensions of [`PICTURE_FORMATS`] ("png", "jpg", "jpeg", …), for a file
/// chooser's filter.
pub fn picture_extensions() -> Vec<&'static str> {
    PICTURE_FORMATS
        .iter()
        .flat_map(|format| format.extensions_str().iter().copied())
        .collect()
}

/// Whether `bytes` are a thumbnail as peers make them ([`thumbnail_of`]): a picture this
/// build reads, 1 to [`THUMBNAIL_SIDE`] pixels a side. Only the header is read, so this
/// costs nothing whatever size the picture claims.
pub fn is_thumbnail(bytes: &[u8]) -> bool {
    let Ok(reader) = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format() else {
        return false;
    };
    if !reader
        .format()
        .is_some_and(|format| PICTURE_FORMATS.contains(&format))
    {
        return false;
    }
    let sides = 1..=THUMBNAIL_SIDE;
    reader
        .into_dimensions()
        .is_ok_and(|(width, height)| sides.contains(&width) && sides.contains(&height))
}

/// A thumbnail of the picture in `bytes`, or `None` if it is not one (a file that only
/// looks like a picture is still sent, without a thumbnail).
pub fn thumbnail_of(bytes: &[u8]) -> Option<Thumbnail> {
    let picture = decode_picture(bytes, "the picture").ok()?;
    let (width, height) = (picture.width(), picture.height());
    if width == 0 || height == 0 {
        return None;
    }
    let small = picture
        .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, FilterType::Triangle)
        .into_rgb8();
    for quality in [80u8, 60, 40] {
        let mut out = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        if small.write_with_encoder(encoder).is_err() {
            return None;
        }
        let jpeg = out.into_inner();
        if jpeg.len() <= MAX_THUMBNAIL_BYTES {
            return Some(Thumbnail {
                jpeg,
                width,
                height,
            });
        }
    }
    None
}

/// Largest received picture decoded for a preview, in bytes: above every picture a peer
/// takes in (thumbnails of 64 KiB, avatars of 384 KiB).
pub const MAX_PREVIEW_SOURCE_BYTES: usize = 1024 * 1024;

/// Longest side of a received picture decoded for a preview, in pixels: three times a
/// thumbnail's, which leaves room for pictures made otherwise and keeps one decode to a
/// few milliseconds.
pub const MAX_PREVIEW_SOURCE_SIDE: u32 = 1024;

/// Most memory one preview decode may reserve: the largest picture decoded, at four 16-bit
/// channels a pixel (8 MiB).
const MAX_PREVIEW_DECODE_BYTES: u64 =
    MAX_PREVIEW_SOURCE_SIDE as u64 * MAX_PREVIEW_SOURCE_SIDE as u64 * 8;

/// A picture someone else chose (a received thumbnail, a moment's picture), decoded for a
/// preview within bounds a hostile picture cannot get round and scaled down (never up) to
/// fit `side`; `None` if it is larger in bytes, sides or decoding memory than a preview
/// could need, damaged, or not in one of [`PICTURE_FORMATS`].
///
/// A received picture is small in bytes but may claim any size: a 20000×1 PNG takes a
/// hundred bytes, a 10000×10000 one of zeros some tens of kilobytes (a decompression bomb),
/// and a painter refuses a texture side beyond the GPU's limit (egui panics). Every picture
/// from the network that the desktop app shows goes through here.
pub fn decode_preview(bytes: &[u8], side: u32) -> Option<image::RgbaImage> {
    if bytes.len() > MAX_PREVIEW_SOURCE_BYTES || side == 0 {
        return None;
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    // Only the formats peers send pictures in: no other decoder sees these bytes.
    if !reader
        .format()
        .is_some_and(|format| PICTURE_FORMATS.contains(&format))
    {
        return None;
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PREVIEW_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_PREVIEW_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_PREVIEW_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader.decode().ok()?;
    if picture.width() == 0 || picture.height() == 0 {
        return None;
    }
    let picture = if picture.width() > side || picture.height() > side {
        picture.thumbnail(side, side)
    } else {
        picture
    };
    Some(picture.into_rgba8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_gets_a_small_thumbnail_and_other_bytes_none() {
        let picture = image::RgbImage::from_fn(1200, 600, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut png = Cursor::new(Vec::new());
        picture
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("encodes");
        let png = png.into_inner();
        assert_eq!(image_mime(&png), Some("image/png"));
        let thumb = thumbnail_of(&png).expect("a thumbnail");
        assert_eq!((thumb.width, thumb.height), (1200, 600));
        let small = image::load_from_memory(&thumb.jpeg).expect("decodes");
        assert_eq!((small.width(), small.height()), (320, 160));
        assert!(thumb.jpeg.len() <= MAX_THUMBNAIL_BYTES);
        assert!(is_thumbnail(&thumb.jpeg));
        assert_eq!(image_mime(b"%PDF-1.7 not a picture"), None);
        assert!(thumbnail_of(b"\x89PNG\r\n\x1a\n but broken").is_none());
    }

    #[test]
    fn only_a_picture_of_at_most_a_thumbnails_side_is_a_thumbnail() {
        let png = |width, height| {
            let mut out = Cursor::new(Vec::new());
            image::GrayImage::new(width, height)
                .write_to(&mut out, image::ImageFormat::Png)
                .expect("encodes");
            out.into_inner()
        };
        assert!(is_thumbnail(&png(THUMBNAIL_SIDE, 1)));
        assert!(is_thumbnail(&png(1, THUMBNAIL_SIDE)));
        assert!(!is_thumbnail(&png(THUMBNAIL_SIDE + 1, 10)));
        assert!(!is_thumbnail(&png(20_000, 1)));
        assert!(!is_thumbnail(&png(1, 20_000)));
        assert!(!is_thumbnail(b"%PDF-1.7 not a picture"));
        assert!(!is_thumbnail(&png(10, 10)[..12]));
        assert!(!is_thumbnail(b""));
    }
}
