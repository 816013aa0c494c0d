//! A peer's moments, a fifth `impl` block of [`PeerStore`]: the key of each post this peer
//! wrote or was shared (a post's text, likes and comments open with it, so it is kept for
//! as long as the post may be fetched), and the pictures of the posts it opened, so that
//! one can be downloaded by its file id like a file from a message.

use redb::ReadableTable;
use uchat_wire::{FileId, PostId};

use crate::store::InboundCommit;
use crate::store::error::StoreError;
use crate::store::group::ContactSessions;
use crate::store::local::{PeerStore, commit_inbound_in, put_pin, put_sessions};
use crate::store::records::{MomentImageRecord, MomentKeyRecord};
use crate::store::tables::{MOMENT_IMAGES, MOMENT_KEYS, decode, encode, read, write};

fn put_key_in(
    tx: &redb::WriteTransaction,
    post: PostId,
    key: &MomentKeyRecord,
) -> Result<(), StoreError> {
    tx.open_table(MOMENT_KEYS)?
        .insert(post.0.as_slice(), encode(key, "moment key")?.as_slice())?;
    Ok(())
}

impl PeerStore {
    /// Before a post goes out, in one transaction: its key, and the Olm state of every
    /// viewer its key was encrypted for.
    pub fn commit_moment_outbound(
        &self,
        post: PostId,
        key: &MomentKeyRecord,
        contacts: &[ContactSessions],
    ) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            for contact in contacts {
                put_sessions(tx, &contact.contact, &contact.sessions)?;
                put_pin(tx, &contact.contact, contact.pin.as_ref())?;
            }
            put_key_in(tx, post, key)
        })
    }

    /// A shared post's key taken in: `commit` (the Olm state, the de-duplication mark and
    /// the event's sequence number) and, if it was acceptable, the key, in one
    /// transaction. A key already held for the post is kept.
    pub fn commit_moment_key(
        &self,
        commit: &InboundCommit,
        key: Option<(PostId, &MomentKeyRecord)>,
    ) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            commit_inbound_in(tx, commit)?;
            if let Some((post, key)) = key
                && tx
                    .open_table(MOMENT_KEYS)?
                    .get(post.0.as_slice())?
                    .is_none()
            {
                put_key_in(tx, post, key)?;
            }
            Ok(())
        })
    }

    /// The key of `post`, if this peer has it.
    pub fn moment_key(&self, post: PostId) -> Result<Option<MomentKeyRecord>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(MOMENT_KEYS)?
                .get(post.0.as_slice())?
                .map(|v| decode(v.value(), "moment key"))
                .transpose()
        })
    }

    /// Remembers the pictures of an opened post (replacing what was known of them).
    pub fn put_moment_images(&self, images: &[MomentImageRecord]) -> Result<(), StoreError> {
        if images.is_empty() {
            return Ok(());
        }
        write(self.db(), |tx| {
            let mut table = tx.open_table(MOMENT_IMAGES)?;
            for image in images {
                table.insert(
                    image.file.file.0.as_slice(),
                    encode(image, "moment image")?.as_slice(),
                )?;
            }
            Ok(())
        })
    }

    /// The picture `file` of a post this peer opened, if any.
    pub fn moment_image(&self, file: FileId) -> Result<Option<MomentImageRecord>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(MOMENT_IMAGES)?
                .get(file.0.as_slice())?
                .map(|v| decode(v.value(), "moment image"))
                .transpose()
        })
    }
}
