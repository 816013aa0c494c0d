//! Fetching a whole list the relay serves in pages (friends, groups, friend requests):
//! page after page until the relay names no next cursor, falling back to the single
//! whole-list request for a relay older than paging.

use uchat_wire::{Call, ErrorCode};

use super::{ClientError, unexpected};
use crate::connection::{ConnectionError, RelayLink};

/// Every entry of a paged list, or `None` if the relay predates paging (it refused the
/// first page as a request it does not know): then ask for the whole list at once.
///
/// `ask(after)` makes the request for the page after a cursor (`None`: the first page);
/// `open(page)` takes its reply apart into the entries and the next cursor. Each cursor must come after the one before, so a relay
/// cannot keep a peer asking forever.
pub(super) async fn fetch_pages<C: Call, T, K: Ord + Clone>(
    link: &RelayLink,
    what: &'static str,
    ask: impl Fn(Option<K>) -> C,
    open: impl Fn(C::Reply) -> (Vec<T>, Option<K>),
) -> Result<Option<Vec<T>>, ClientError> {
    let mut entries = Vec::new();
    let mut after: Option<K> = None;
    loop {
        let reply = match link.call(ask(after.clone())).await {
            Ok(reply) => reply,
            Err(ConnectionError::Refused(e))
                if after.is_none() && e.code == ErrorCode::ProtocolViolation =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let (page, next) = open(reply);
        entries.extend(page);
        match advance(after.as_ref(), next) {
            Advance::End => return Ok(Some(entries)),
            Advance::After(next) => after = Some(next),
            Advance::NotForward => return Err(unexpected(what)),
        }
    }
}

/// Where a walk through a paged list goes after a page.
#[derive(Debug, PartialEq, Eq)]
enum Advance<K> {
    /// The list ended with this page.
    End,
    /// Ask for the page after this cursor.
    After(K),
    /// The page named a cursor not strictly after the one it was asked for: a relay that
    /// would have the peer ask for the same entries again, perhaps forever.
    NotForward,
}

/// The step after a page asked for `after` (`None`: the first page) that named `next`.
fn advance<K: Ord>(after: Option<&K>, next: Option<K>) -> Advance<K> {
    match next {
        None => Advance::End,
        Some(next) if after.is_some_and(|after| &next <= after) => Advance::NotForward,
        Some(next) => Advance::After(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_ends_where_a_page_names_no_next_cursor() {
        assert_eq!(advance(None::<&u32>, None), Advance::End);
        assert_eq!(advance(Some(&7), None), Advance::End);
    }

    #[test]
    fn a_walk_goes_on_only_to_a_cursor_strictly_after_the_last() {
        // The first page may name any cursor.
        assert_eq!(advance(None, Some(0)), Advance::After(0));
        assert_eq!(advance(Some(&3), Some(4)), Advance::After(4));
        assert_eq!(
            advance(Some(&3), Some(3)),
            Advance::NotForward,
            "the same page again"
        );
        assert_eq!(advance(Some(&3), Some(1)), Advance::NotForward, "backwards");
        assert_eq!(
            advance(Some(&"mia".to_string()), Some("mi".to_string())),
            Advance::NotForward,
            "a name that sorts before, though it is a prefix"
        );
    }
}
