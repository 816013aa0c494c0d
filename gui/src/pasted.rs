//! Pictures pasted from the clipboard. egui hands the window the pixels
//! ([`egui::Event::PasteImage`], when the clipboard holds a picture and no text); the
//! worker turns them into a PNG file in the profile directory and sends it like any other
//! picture, then removes the file once it is on the relay.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use eframe::egui::ColorImage;

/// The folder of the profile directory where pasted pictures wait until they are sent.
pub const PASTED_DIR: &str = "pasted";

/// Why a pasted picture could not become a file.
#[derive(Debug, thiserror::Error)]
pub enum PasteError {
    /// No pixels, or not as many as its size says.
    #[error("the pasted picture is empty or damaged ({width}×{height}, {pixels} pixels)")]
    Malformed {
        /// Claimed width.
        width: usize,
        /// Claimed height.
        height: usize,
        /// Pixels it holds.
        pixels: usize,
    },
    /// The PNG encoder refused it.
    #[error("cannot encode the pasted picture as PNG: {0}")]
    Encode(String),
    /// The file could not be written.
    #[error("cannot save the pasted picture to {path}: {reason}")]
    Save {
        /// The PNG file's path, `pasted-<ms>.png` in the profile's [`PASTED_DIR`] folder.
        path: String,
        /// What the operating system said when making the folder or writing the file.
        reason: String,
    },
}

/// The picture as PNG bytes (straight, not premultiplied, alpha).
pub fn png_bytes(image: &ColorImage) -> Result<Vec<u8>, PasteError> {
    let [width, height] = image.size;
    let malformed = || PasteError::Malformed {
        width,
        height,
        pixels: image.pixels.len(),
    };
    if width == 0 || height == 0 || image.pixels.len() != width.saturating_mul(height) {
        return Err(malformed());
    }
    let (w, h) = (
        u32::try_from(width).map_err(|_| malformed())?,
        u32::try_from(height).map_err(|_| malformed())?,
    );
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|pixel| pixel.to_srgba_unmultiplied())
        .collect();
    let buffer = image::RgbaImage::from_raw(w, h, rgba).ok_or_else(malformed)?;
    let mut png = Cursor::new(Vec::new());
    buffer
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| PasteError::Encode(e.to_string()))?;
    Ok(png.into_inner())
}

/// Saves the picture as `pasted-<ms>.png` in the profile directory `home`'s
/// [`PASTED_DIR`]; returns the file's path.
pub fn save(home: &Path, image: &ColorImage, now_ms: u64) -> Result<PathBuf, PasteError> {
    let png = png_bytes(image)?;
    let dir = home.join(PASTED_DIR);
    let path = dir.join(format!("pasted-{now_ms}.png"));
    let failed = |e: std::io::Error| PasteError::Save {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    std::fs::write(&path, png).map_err(failed)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::Color32;

    #[test]
    fn a_pasted_picture_becomes_a_png_with_the_same_pixels() {
        let pixels: Vec<Color32> = (0..6 * 4)
            .map(|i| Color32::from_rgba_unmultiplied(i * 10, 255 - i * 10, 7, 255))
            .collect();
        let image = ColorImage::new([6, 4], pixels.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = save(dir.path(), &image, 1234).expect("saves");
        assert_eq!(path, dir.path().join("pasted").join("pasted-1234.png"));
        let decoded = image::open(&path).expect("a PNG").to_rgba8();
        assert_eq!(decoded.dimensions(), (6, 4));
        let back: Vec<Color32> = decoded
            .pixels()
            .map(|p| Color32::from_rgba_unmultiplied(p[0], p[1], p[2], p[3]))
            .collect();
        assert_eq!(back, pixels);
    }

    #[test]
    fn an_empty_or_short_picture_is_a_clear_error() {
        let empty = ColorImage::new([0, 0], vec![]);
        assert!(matches!(
            png_bytes(&empty),
            Err(PasteError::Malformed { .. })
        ));
        let mut short = ColorImage::new([3, 3], vec![Color32::RED; 9]);
        short.pixels.truncate(4);
        let error = png_bytes(&short).expect_err("refused");
        assert!(error.to_string().contains("3×3, 4 pixels"), "{error}");
    }
}
