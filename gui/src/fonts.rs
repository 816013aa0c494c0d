//! Chinese text: finding a CJK font and giving it to egui.
//!
//! egui's bundled fonts have no Chinese glyphs. eframe's `system_fonts` finds installed
//! fonts through fontconfig, but only in a real window and only if one is installed; so the
//! app also loads a known CJK font file itself (the same in tests and in the window), and
//! when there is none, says which package to install.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui::{self, FontData, FontFamily, FontInsert, FontPriority, InsertFontFamily};

/// The environment variable naming a font file to use for Chinese text instead of the
/// known locations.
pub const FONT_ENV: &str = "UCHAT_CJK_FONT";

/// Where Debian, Ubuntu, Fedora and Arch put the CJK fonts we know render well, best first.
pub const KNOWN_CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSans-Regular.ttc",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSans-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// The packages that provide one of [`KNOWN_CJK_FONTS`], for the hint.
pub const FONT_PACKAGES: &str = "fonts-wqy-microhei (or fonts-noto-cjk)";

/// What became of the search for a CJK font.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CjkFont {
    /// This file was loaded.
    Loaded(PathBuf),
    /// None was found: Chinese shows as boxes unless the system fallback has one.
    Missing,
}

impl CjkFont {
    /// Whether Chinese text will render from the font loaded here.
    pub fn is_loaded(&self) -> bool {
        matches!(self, CjkFont::Loaded(_))
    }
}

/// The CJK font file to load: `UCHAT_CJK_FONT` if set and present, else the first known
/// location that exists.
pub fn find_cjk_font() -> Option<PathBuf> {
    let chosen = std::env::var_os(FONT_ENV)
        .map(PathBuf::from)
        .filter(|path| path.is_file());
    chosen.or_else(|| {
        KNOWN_CJK_FONTS
            .iter()
            .map(Path::new)
            .find(|path| path.is_file())
            .map(Path::to_path_buf)
    })
}

/// Loads a CJK font (see [`find_cjk_font`]) into `ctx` as the fallback of both families, so
/// Latin text keeps egui's own font and Chinese falls through to this one.
pub fn install_cjk_font(ctx: &egui::Context) -> CjkFont {
    let Some(path) = find_cjk_font() else {
        tracing::warn!(
            "no CJK font found; install {FONT_PACKAGES} for Chinese text, or set {FONT_ENV}"
        );
        return CjkFont::Missing;
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let families = [FontFamily::Proportional, FontFamily::Monospace]
                .into_iter()
                .map(|family| InsertFontFamily {
                    family,
                    priority: FontPriority::Lowest,
                })
                .collect();
            ctx.add_font(FontInsert::new(
                "uchat-cjk",
                FontData::from_blob(Arc::new(bytes), 0),
                families,
            ));
            tracing::debug!(font = %path.display(), "loaded CJK font");
            CjkFont::Loaded(path)
        }
        Err(e) => {
            tracing::warn!(font = %path.display(), error = %e, "cannot read the CJK font");
            CjkFont::Missing
        }
    }
}
