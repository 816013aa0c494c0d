//! Moments as a viewer opens them: a served post with its likes and comments, and the
//! post and comment bodies inside their encryption.
//!
//! Input: a mode byte, then:
//! - mode 0: a `MomentItem` (MessagePack, as a feed page carries it) opened with the
//!   fixed post key (the seeds are real posts under it);
//! - mode 1: the plaintext of a post (any viewer holds the key, so any bytes can be
//!   sealed), sealed and opened as alice's post: a post body that names her must open;
//! - mode 2: the plaintext of a comment, sealed and opened as alice's comment on it;
//! - mode 3: bytes opened directly as a post, a comment and a like.
//!
//! Nothing may panic, and a post that opens must say no problem.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uchat_fuzz::fixture::{self, COMMENT, POST};
use uchat_fuzz::received;
use uchat_peer::crypto::moment as cipher;
use uchat_peer::moment::{PostBody, open_comments, open_moment};
use uchat_wire::{MomentComment, MomentItem};

fn item_with(ciphertext: Vec<u8>, comments: Vec<MomentComment>) -> MomentItem {
    MomentItem {
        id: POST,
        author: fixture::author(),
        posted_ms: 1,
        cursor: 1,
        ciphertext,
        likes: Vec::new(),
        comments,
    }
}

fn open_checked(item: &MomentItem) {
    let key = fixture::post_key();
    let moment = open_moment(item, Some(&key));
    assert_eq!(
        moment.text.is_some(),
        moment.problem.is_none(),
        "{moment:?}"
    );
    assert!(moment.likes.len() <= item.likes.len());
    assert!(moment.comments.len() <= item.comments.len());
    for image in &moment.images {
        received::check_safe_name(&image.name);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = fixture::post_key();
    match mode % 4 {
        0 => {
            if let Ok(item) = rmp_serde::from_slice::<MomentItem>(rest) {
                open_checked(&item);
            }
        }
        1 => {
            let sealed = cipher::seal_post(&key, POST, rest).expect("random IVs are available");
            let item = item_with(sealed, Vec::new());
            open_checked(&item);
            let names_alice = rmp_serde::from_slice::<PostBody>(rest)
                .is_ok_and(|body| body.author == fixture::author());
            assert_eq!(
                open_moment(&item, Some(&key)).problem.is_none(),
                names_alice
            );
        }
        2 => {
            let sealed =
                cipher::seal_comment(&key, POST, COMMENT, rest).expect("random IVs are available");
            let comment = MomentComment {
                id: COMMENT,
                post: POST,
                author: fixture::author(),
                reply_to: None,
                commented_ms: 2,
                ciphertext: sealed,
            };
            let item = item_with(Vec::new(), vec![comment]);
            assert!(open_comments(&item, &key).len() <= 1);
        }
        _ => {
            let _ = cipher::open_post(&key, POST, rest);
            let _ = cipher::open_comment(&key, POST, COMMENT, rest);
            let _ = cipher::is_like(&key, POST, &fixture::author(), rest);
        }
    }
});
