//! Avatars: turns a picture the user picks (PNG, JPEG, GIF, WebP or BMP) into the small
//! square PNG the relay stores.
//!
//! The picture is decoded with limits (so a hostile file cannot make the app allocate
//! without bound), cropped to its centre square, resized to [`AVATAR_SIDE`] pixels and
//! encoded as PNG, which always fits the relay's limit.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use uchat_wire::msg::social::MAX_AVATAR_BYTES;

/// Side of the square avatar sent to the relay, in pixels (sharp on high-DPI screens at
/// the 64–128 px an avatar is shown at).
pub const AVATAR_SIDE: u32 = 256;

/// Largest picture file accepted as an avatar source: 8 MiB covers a phone photo.
pub const MAX_AVATAR_SOURCE_BYTES: u64 = 8 * 1024 * 1024;

/// Largest picture accepted, in pixels a side (and 64 Mpx in all, see the decoder limits).
const MAX_SOURCE_SIDE: u32 = 16_384;

/// Why a picture cannot be an avatar.
#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    /// The file could not be read.
    #[error("cannot read the avatar {}: {source}", path.display())]
    Read {
        /// The picture's path as the user gave it.
        path: PathBuf,
        /// What the operating system said (no such file, no permission, ...).
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_AVATAR_SOURCE_BYTES`].
    #[error(
        "the avatar {} is {:.1} MiB; the limit is {} MiB (pick a smaller picture)",
        path.display(), *bytes as f64 / (1024.0 * 1024.0), MAX_AVATAR_SOURCE_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// The picture's path as the user gave it.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The bytes are not a picture this build can read.
    #[error("{what} is not a picture uchat can read (PNG, JPEG, GIF, WebP or BMP): {reason}")]
    NotAnImage {
        /// The file, or "the pasted data".
        what: String,
        /// What the decoder said.
        reason: String,
    },
    /// Encoding the resized avatar failed.
    #[error("cannot encode the avatar: {0}")]
    Encode(String),
}

/// Reads the picture at `path` and makes the avatar PNG from it.
pub fn avatar_from_file(path: &Path) -> Result<Vec<u8>, AvatarError> {
    let read_error = |source| AvatarError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_AVATAR_SOURCE_BYTES {
        return Err(AvatarError::TooLarge {
            path: path.to_path_buf(),
            bytes: size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    // The file may have grown since the size check.
    if bytes.len() as u64 > MAX_AVATAR_SOURCE_BYTES {
        return Err(AvatarError::TooLarge {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
        });
    }
    avatar_from_bytes(&bytes, &path.display().to_string())
}

/// Decodes a picture's bytes with limits (at most 16,384 pixels a side and 512 MiB while
/// decoding, so a hostile file cannot make the app allocate without bound); `what` names
/// the source in errors.
pub(crate) fn decode_picture(bytes: &[u8], what: &str) -> Result<image::DynamicImage, AvatarError> {
    let not_an_image = |reason: String| AvatarError::NotAnImage {
        what: what.to_string(),
        reason,
    };
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_an_image(e.to_string()))?;
    if reader.format().is_none() {
        return Err(not_an_image("unrecognised file format".into()));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    // 64 Mpx of RGBA plus room for the conversion.
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| not_an_image(e.to_string()))
}

/// Makes the avatar PNG from a picture's bytes; `what` names the source in errors.
pub fn avatar_from_bytes(bytes: &[u8], what: &str) -> Result<Vec<u8>, AvatarError> {
    let not_an_image = |reason: String| AvatarError::NotAnImage {
        what: what.to_string(),
        reason,
    };
    let picture = decode_picture(bytes, what)?;
    let side = picture.width().min(picture.height());
    if side == 0 {
        return Err(not_an_image("the picture is empty".into()));
    }
    let square = picture.crop_imm(
        (picture.width() - side) / 2,
        (picture.height() - side) / 2,
        side,
        side,
    );
    let avatar = square
        .resize_exact(AVATAR_SIDE, AVATAR_SIDE, FilterType::Triangle)
        .into_rgba8();
    let mut png = Cursor::new(Vec::new());
    avatar
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| AvatarError::Encode(e.to_string()))?;
    let png = png.into_inner();
    if png.len() > MAX_AVATAR_BYTES {
        return Err(AvatarError::Encode(format!(
            "the resized avatar is {} bytes, over the relay's limit of {MAX_AVATAR_BYTES}",
            png.len()
        )));
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(image: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    #[test]
    fn a_wide_jpeg_becomes_a_square_png_of_its_centre() {
        // Left third red, middle third green, right third blue.
        let photo = image::RgbImage::from_fn(900, 300, |x, _| match x / 300 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let png = avatar_from_bytes(&encode(&photo, image::ImageFormat::Jpeg), "photo.jpg")
            .expect("converts");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let avatar = image::load_from_memory(&png).expect("decodes").into_rgba8();
        assert_eq!(avatar.dimensions(), (AVATAR_SIDE, AVATAR_SIDE));
        let centre = avatar.get_pixel(AVATAR_SIDE / 2, AVATAR_SIDE / 2);
        assert!(
            centre[1] > 200 && centre[0] < 60 && centre[2] < 60,
            "{centre:?}"
        );
    }

    #[test]
    fn noise_still_fits_the_relays_limit() {
        let mut state = 0x1234_5678_u32;
        let noise = image::RgbImage::from_fn(AVATAR_SIDE, AVATAR_SIDE, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, _] = state.to_le_bytes();
            image::Rgb([a, b, c])
        });
        let png = avatar_from_bytes(&encode(&noise, image::ImageFormat::Png), "noise.png")
            .expect("converts");
        assert!(png.len() <= MAX_AVATAR_BYTES, "{} bytes", png.len());
    }

    #[test]
    fn non_pictures_and_large_files_are_refused_clearly() {
        let err = avatar_from_bytes(b"%PDF-1.7 not a picture", "cv.pdf").expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("cv.pdf is not a picture uchat can read"),
            "{err}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.png");
        std::fs::write(&big, vec![0u8; 10 * 1024 * 1024]).expect("writes");
        let err = avatar_from_file(&big).expect_err("refused");
        assert!(matches!(err, AvatarError::TooLarge { .. }));
        assert!(
            err.to_string()
                .ends_with("is 10.0 MiB; the limit is 8 MiB (pick a smaller picture)"),
            "{err}"
        );
        let missing = avatar_from_file(&dir.path().join("nope.png")).expect_err("refused");
        assert!(matches!(missing, AvatarError::Read { .. }));
    }
}
