//! What a message says, between the encrypted [`Content`] that travels and the history
//! entry that stays: a text or a file. [`Body::from_content`] checks a received file's
//! fields before anything uses them, and leaves out a thumbnail unlike those peers make
//! (one claiming 20000×1 pixels would otherwise be stored and shown).

use crate::store::{FileRef, HistoryEntry};

use crate::crypto::chunk::FileKey;
use crate::envelope::{Content, FileContent};
use crate::thumbnail::{MAX_THUMBNAIL_BYTES, THUMBNAIL_SIDE, is_thumbnail};

/// Longest file name accepted in a file message, in bytes (a name is made safe and
/// shortened again when saved).
pub const MAX_FILE_NAME_BYTES: usize = 1024;
/// Largest file size a file message may claim (1 TiB, far beyond a relay's limit), so a
/// hostile size cannot overflow the chunk arithmetic.
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Longest MIME type accepted, in bytes.
const MAX_MIME_BYTES: usize = 128;

/// A message's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Text as typed; this peer sends at most [`uchat_wire::MAX_TEXT_BYTES`] bytes.
    Text(String),
    /// A file on the relay.
    File(FileRef),
}

impl Body {
    /// The content to encrypt.
    pub fn content(&self) -> Content {
        match self {
            Body::Text(text) => Content::Text { text: text.clone() },
            Body::File(file) => Content::File(FileContent {
                file: file.file,
                name: file.name.clone(),
                size: file.size,
                mime: file.mime.clone(),
                md5: file.md5.clone(),
                key: file.key.clone(),
                thumbnail: file.thumbnail.clone(),
                dimensions: file.dimensions,
            }),
        }
    }

    /// The body of a received content, or why it is not acceptable (`Ok(None)`: not a
    /// body at all, such as a group key). A file's thumbnail that is not a picture of at
    /// most [`THUMBNAIL_SIDE`] pixels a side is left out: the file stays, without a preview.
    pub fn from_content(content: Content) -> Result<Option<Body>, String> {
        match content {
            Content::Text { text } => Ok(Some(Body::Text(text))),
            Content::File(file) => check_file(&file).map(|()| {
                Some(Body::File(FileRef {
                    file: file.file,
                    name: file.name,
                    size: file.size,
                    mime: file.mime,
                    md5: file.md5,
                    key: file.key,
                    thumbnail: file.thumbnail.filter(|thumbnail| {
                        let usable = is_thumbnail(thumbnail);
                        if !usable {
                            tracing::warn!(
                                "a received thumbnail that is not a picture of at most {THUMBNAIL_SIDE} px a side was left out"
                            );
                        }
                        usable
                    }),
                    dimensions: file.dimensions,
                    saved_to: None,
                }))
            }),
            Content::GroupKey { .. }
            | Content::CallKey { .. }
            | Content::MomentKey { .. }
            | Content::Receipt { .. }
            | Content::Unknown => Ok(None),
        }
    }

    /// The body a history entry holds, if it holds one.
    pub fn of_entry(entry: &HistoryEntry) -> Option<Body> {
        match (&entry.file, &entry.text) {
            (Some(file), _) => Some(Body::File(file.clone())),
            (None, Some(text)) => Some(Body::Text(text.clone())),
            (None, None) => None,
        }
    }

    /// The text, for a history entry.
    pub fn text(&self) -> Option<String> {
        match self {
            Body::Text(text) => Some(text.clone()),
            Body::File(_) => None,
        }
    }

    /// The file, for a history entry.
    pub fn file(&self) -> Option<FileRef> {
        match self {
            Body::Text(_) => None,
            Body::File(file) => Some(file.clone()),
        }
    }
}

/// Whether a received file's fields are usable.
fn check_file(file: &FileContent) -> Result<(), String> {
    let bad = |what: &str| Err(format!("malformed file message: {what}"));
    if FileKey::from_bytes(&file.key).is_err() {
        return bad("the key is not 64 bytes");
    }
    if file.size > MAX_FILE_SIZE {
        return bad("the size is beyond any file a relay takes");
    }
    if file.md5.len() != 16 {
        return bad("the MD5 is not 16 bytes");
    }
    if file.name.len() > MAX_FILE_NAME_BYTES {
        return bad("the name is too long");
    }
    if file.mime.len() > MAX_MIME_BYTES {
        return bad("the type is too long");
    }
    if file
        .thumbnail
        .as_ref()
        .is_some_and(|t| t.len() > MAX_THUMBNAIL_BYTES)
    {
        return bad("the thumbnail is too large");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::FileId;

    fn file() -> FileContent {
        FileContent {
            file: FileId([1; 16]),
            name: "a.txt".into(),
            size: 3,
            mime: "text/plain".into(),
            md5: vec![0; 16],
            key: vec![7; 64],
            thumbnail: None,
            dimensions: None,
        }
    }

    #[test]
    fn a_file_round_trips_and_broken_fields_are_refused() {
        let body = Body::from_content(Content::File(file()))
            .expect("valid")
            .expect("a body");
        assert_eq!(body.content(), Content::File(file()));
        for broken in [
            FileContent {
                key: vec![1; 10],
                ..file()
            },
            FileContent {
                md5: vec![],
                ..file()
            },
            FileContent {
                thumbnail: Some(vec![0; MAX_THUMBNAIL_BYTES + 1]),
                ..file()
            },
            FileContent {
                name: "x".repeat(MAX_FILE_NAME_BYTES + 1),
                ..file()
            },
        ] {
            assert!(Body::from_content(Content::File(broken)).is_err());
        }
    }

    #[test]
    fn a_thumbnail_unlike_those_peers_make_is_left_out_and_the_file_kept() {
        let png = |width, height| {
            let mut out = std::io::Cursor::new(Vec::new());
            image::GrayImage::new(width, height)
                .write_to(&mut out, image::ImageFormat::Png)
                .expect("encodes");
            out.into_inner()
        };
        let received = |thumbnail: Vec<u8>| match Body::from_content(Content::File(FileContent {
            thumbnail: Some(thumbnail),
            ..file()
        })) {
            Ok(Some(Body::File(file))) => file,
            other => panic!("a file body, not {other:?}"),
        };
        let small = png(THUMBNAIL_SIDE, 160);
        assert_eq!(received(small.clone()).thumbnail, Some(small));
        for hostile in [png(20_000, 1), png(1, 20_000), b"not a picture".to_vec()] {
            let file = received(hostile);
            assert_eq!(file.thumbnail, None);
            assert_eq!(file.name, "a.txt");
        }
    }
}
