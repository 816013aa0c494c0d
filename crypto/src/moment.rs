//! The moment cipher: a post, its likes and its comments sealed under the post's key.
//!
//! Every post gets a fresh random key ([`PostKey`], the same shape as a file key: AES-256
//! and HMAC-SHA256) that travels to each viewer inside an Olm message. Each item is sealed
//! with the chunk cipher ([`super::chunk`]: AES-256-CBC, then HMAC-SHA256 over the IV and
//! ciphertext, a fresh IV each time) with what it is bound into the tag: the post id and,
//! for a comment, the comment id, for a like, the liker's name. So the relay alone cannot
//! move a comment to another post, pass one person's like off as another's, or swap a
//! post's body with another's without the tag failing. The tag proves only that the sealer
//! held the post key, which every viewer does: who acted is the relay's word (it names the
//! session's user), checked against the name sealed inside.
//!
//! Pure: no I/O; where the key travels and how items are encoded is the caller's.

use uchat_wire::{CommentId, PostId, UserName};

use super::chunk::{self, ChunkError, FileKey};

/// A post's key: a 32-byte AES-256 key and a 32-byte HMAC-SHA256 key.
pub type PostKey = FileKey;

/// What a sealed item is bound to, as the chunk cipher's "file id": a label, the post id
/// and the item's own name.
fn binding(kind: &[u8], post: PostId, item: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + 16 + item.len() + 1);
    out.extend_from_slice(b"uchat-moment-v1/");
    out.extend_from_slice(kind);
    out.push(0);
    out.extend_from_slice(&post.0);
    out.extend_from_slice(item);
    out
}

/// Seals a post's body.
pub fn seal_post(key: &PostKey, post: PostId, body: &[u8]) -> Result<Vec<u8>, ChunkError> {
    chunk::encrypt_chunk_random_iv(key, &binding(b"post", post, &[]), 0, body)
}

/// Opens a post's body; [`ChunkError::BadTag`] if it was altered or is another post's.
pub fn open_post(key: &PostKey, post: PostId, sealed: &[u8]) -> Result<Vec<u8>, ChunkError> {
    chunk::decrypt_chunk(key, &binding(b"post", post, &[]), 0, sealed)
}

/// Seals comment `comment` on `post`.
pub fn seal_comment(
    key: &PostKey,
    post: PostId,
    comment: CommentId,
    body: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    chunk::encrypt_chunk_random_iv(key, &binding(b"comment", post, &comment.0), 0, body)
}

/// Opens comment `comment` on `post`.
pub fn open_comment(
    key: &PostKey,
    post: PostId,
    comment: CommentId,
    sealed: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    chunk::decrypt_chunk(key, &binding(b"comment", post, &comment.0), 0, sealed)
}

/// Seals `liker`'s like of `post`: only someone holding the post's key can make one.
pub fn seal_like(key: &PostKey, post: PostId, liker: &UserName) -> Result<Vec<u8>, ChunkError> {
    let name = liker.as_str().as_bytes();
    chunk::encrypt_chunk_random_iv(key, &binding(b"like", post, name), 0, name)
}

/// Whether `sealed` is a like of `post` by `liker` under this key.
pub fn is_like(key: &PostKey, post: PostId, liker: &UserName, sealed: &[u8]) -> bool {
    let name = liker.as_str().as_bytes();
    chunk::decrypt_chunk(key, &binding(b"like", post, name), 0, sealed)
        .is_ok_and(|plain| plain == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PostKey {
        PostKey::generate().expect("random")
    }

    #[test]
    fn items_open_only_under_their_key_and_where_they_were_sealed() {
        let (k, other) = (key(), key());
        let (p, q) = (PostId([1; 16]), PostId([2; 16]));
        let body = "今天天气很好 🌞".as_bytes();
        let sealed = seal_post(&k, p, body).expect("seals");
        assert_eq!(open_post(&k, p, &sealed).expect("opens"), body);
        assert!(open_post(&other, p, &sealed).is_err(), "another key");
        assert!(open_post(&k, q, &sealed).is_err(), "moved to another post");
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(open_post(&k, p, &tampered).is_err(), "altered");

        let (c, d) = (CommentId([3; 16]), CommentId([4; 16]));
        let comment = seal_comment(&k, p, c, b"nice").expect("seals");
        assert_eq!(open_comment(&k, p, c, &comment).expect("opens"), b"nice");
        assert!(
            open_comment(&k, q, c, &comment).is_err(),
            "moved to another post"
        );
        assert!(
            open_comment(&k, p, d, &comment).is_err(),
            "passed off as another comment"
        );
        assert!(
            open_post(&k, p, &comment).is_err(),
            "a comment is not a post"
        );
    }

    #[test]
    fn a_like_names_its_liker() {
        let k = key();
        let p = PostId([1; 16]);
        let bob = UserName::parse("bob").expect("valid");
        let carol = UserName::parse("carol").expect("valid");
        let like = seal_like(&k, p, &bob).expect("seals");
        assert!(is_like(&k, p, &bob, &like));
        assert!(!is_like(&k, p, &carol, &like), "bob's like is not carol's");
        assert!(
            !is_like(&k, PostId([2; 16]), &bob, &like),
            "nor a like of another post"
        );
        assert!(!is_like(&key(), p, &bob, &like), "nor under another key");
    }
}
