//! Cutting one page out of a long list (friends, groups, friend requests), so that its
//! answer always fits in a control frame: entries in list order after the asked cursor,
//! until the page holds as many as were asked for or the next would take it past its
//! byte budget, whichever comes first.
//!
//! Pure: the rows the store read go in, the page and the cursor to continue from come
//! out. The same cut, with no entry limit and a frame's worth of bytes, tells whether a
//! whole list still fits the unpaged answers older peers ask for.

use serde::Serialize;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};

/// Bytes the entries of a whole-list answer (`Friends`, `Groups`, `FriendRequests`, as
/// older peers ask) may take: a frame, less room for the rest of the answer (a few dozen
/// bytes of names and array headers).
const WHOLE_LIST_BYTE_BUDGET: usize = MAX_CONTROL_FRAME_BYTES - 4 * 1024;

/// The limits of a whole-list answer: any number of entries, a frame's worth of bytes.
const WHOLE_LIST: PageLimits = PageLimits {
    max_entries: usize::MAX,
    max_bytes: WHOLE_LIST_BYTE_BUDGET,
};

/// How large a page may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PageLimits {
    /// Most entries.
    pub(super) max_entries: usize,
    /// Most bytes of encoded entries; the first entry goes in whatever its size.
    pub(super) max_bytes: usize,
}

/// One page of a list.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Page<T, K> {
    /// The entries, in list order.
    pub(super) entries: Vec<T>,
    /// The key of the last row this page took (listed or left out), if the list goes on
    /// after it: the cursor for the next page.
    pub(super) next: Option<K>,
    /// Bytes the entries take encoded.
    pub(super) bytes: usize,
}

/// Cuts a page from `rows`, the rows after the asked cursor in list order (`more` if the
/// store holds rows after these). `entry` makes a row's entry, or `None` to leave the row
/// out (it changed since the rows were read); `key` is a row's place in the list.
pub(super) fn cut<R, T, K, E>(
    rows: impl IntoIterator<Item = R>,
    more: bool,
    key: impl Fn(&R) -> K,
    mut entry: impl FnMut(R) -> Result<Option<T>, E>,
    limits: PageLimits,
) -> Result<Page<T, K>, E>
where
    T: Serialize,
{
    let mut page = Page {
        entries: Vec::new(),
        next: None,
        bytes: 0,
    };
    let mut last = None;
    for row in rows {
        if page.entries.len() >= limits.max_entries {
            page.next = last;
            return Ok(page);
        }
        let row_key = key(&row);
        if let Some(item) = entry(row)? {
            let size = frame::encoded_len(&item);
            if !page.entries.is_empty() && page.bytes.saturating_add(size) > limits.max_bytes {
                page.next = last;
                return Ok(page);
            }
            page.bytes = page.bytes.saturating_add(size);
            page.entries.push(item);
        }
        last = Some(row_key);
    }
    if more {
        page.next = last;
    }
    Ok(page)
}

/// Every entry of a whole list, for the unpaged answers older peers ask for; `None` if
/// they would not fit in one answer. `entry` is as for [`cut`].
pub(super) fn whole<R, T, E>(
    rows: impl IntoIterator<Item = R>,
    entry: impl FnMut(R) -> Result<Option<T>, E>,
) -> Result<Option<Vec<T>>, E>
where
    T: Serialize,
{
    let page = cut(rows, false, |_| (), entry, WHOLE_LIST)?;
    Ok(page.next.is_none().then_some(page.entries))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use uchat_wire::reply;

    use uchat_wire::msg::group::{MAX_GROUP_MEMBERS, MAX_GROUP_NAME_CHARS};
    use uchat_wire::msg::page::{MAX_PAGE_ENTRIES, PAGE_BYTE_BUDGET};
    use uchat_wire::msg::social::{MAX_NOTE_CHARS, MAX_SIGNATURE_CHARS};
    use uchat_wire::{
        FriendEntry, FriendRequestEntry, GroupId, GroupInfo, GroupMember, IdentityKeys,
        ProfileSummary, Reply, Response, UserName,
    };

    use super::*;

    /// Rows that are their own entries, each `size` bytes encoded (up to 32: a string of
    /// `size - 1` bytes behind a 1-byte header).
    fn strings(count: usize, size: usize) -> Vec<String> {
        (0..count)
            .map(|i| format!("{i:0>width$}", width = size - 1))
            .collect()
    }

    fn cut_all(
        rows: Vec<String>,
        more: bool,
        max_entries: usize,
        max_bytes: usize,
    ) -> Page<String, String> {
        let limits = PageLimits {
            max_entries,
            max_bytes,
        };
        cut(
            rows,
            more,
            String::clone,
            |r| Ok::<_, Infallible>(Some(r)),
            limits,
        )
        .unwrap_or_else(|never| match never {})
    }

    #[test]
    fn a_page_stops_at_its_entry_limit_and_continues_after_its_last_entry() {
        let rows = strings(5, 10);
        let page = cut_all(rows.clone(), false, 3, usize::MAX);
        assert_eq!(page.entries, rows[..3]);
        assert_eq!(page.next.as_ref(), Some(&rows[2]));
        assert_eq!(page.bytes, 30);
    }

    #[test]
    fn a_page_stops_before_the_entry_that_would_pass_its_byte_budget() {
        let rows = strings(5, 10);
        // 25 bytes hold two entries of 10; the third would make 30.
        let page = cut_all(rows.clone(), false, 100, 25);
        assert_eq!(page.entries, rows[..2]);
        assert_eq!(page.next.as_ref(), Some(&rows[1]));
        // Exactly at the budget, the entry still goes in.
        let page = cut_all(rows.clone(), false, 100, 30);
        assert_eq!(page.entries, rows[..3]);
    }

    #[test]
    fn the_first_entry_goes_in_whatever_its_size() {
        let rows = strings(2, 30);
        let page = cut_all(rows.clone(), false, 100, 10);
        assert_eq!(
            page.entries,
            rows[..1],
            "a page is never empty while rows remain"
        );
        assert_eq!(page.next.as_ref(), Some(&rows[0]));
    }

    #[test]
    fn a_page_that_takes_every_row_ends_the_list_unless_the_store_has_more() {
        let rows = strings(3, 10);
        let last = cut_all(rows.clone(), false, 3, usize::MAX);
        assert_eq!((last.entries.len(), last.next), (3, None));
        let not_last = cut_all(rows.clone(), true, 3, usize::MAX);
        assert_eq!(not_last.next.as_ref(), Some(&rows[2]));
        let empty = cut_all(Vec::new(), false, 3, usize::MAX);
        assert_eq!((empty.entries.len(), empty.next), (0, None));
    }

    #[test]
    fn rows_left_out_still_move_the_cursor_past_them() {
        let rows = strings(4, 10);
        let limits = PageLimits {
            max_entries: 10,
            max_bytes: usize::MAX,
        };
        // Rows 1 and 3 changed since they were read; the store has more after row 3.
        let skip = [rows[1].clone(), rows[3].clone()];
        let page = cut(
            rows.clone(),
            true,
            String::clone,
            |r| Ok::<_, Infallible>((!skip.contains(&r)).then_some(r)),
            limits,
        )
        .unwrap_or_else(|never| match never {});
        assert_eq!(page.entries, [rows[0].clone(), rows[2].clone()]);
        assert_eq!(page.next.as_ref(), Some(&rows[3]), "not a row shown again");
    }

    #[test]
    fn an_entry_that_cannot_be_made_fails_the_page() {
        let rows = strings(3, 10);
        let limits = PageLimits {
            max_entries: 10,
            max_bytes: usize::MAX,
        };
        let failed = cut(
            rows,
            false,
            String::clone,
            |r| {
                if r.ends_with('1') {
                    Err("unreadable")
                } else {
                    Ok(Some(r))
                }
            },
            limits,
        );
        assert_eq!(failed, Err("unreadable"));
    }

    fn longest_name(i: usize) -> UserName {
        UserName::parse(&format!("{i:0>32}")).expect("32 digits are a valid name")
    }

    /// A friend entry as large as the relay lets one get.
    fn largest_friend(i: usize) -> FriendEntry {
        FriendEntry {
            user: longest_name(i),
            since_ms: u64::MAX,
            online: false,
            last_seen_ms: Some(u64::MAX),
            blocked: true,
            identity: IdentityKeys {
                curve25519: vec![0xff; 32],
                ed25519: vec![0xff; 32],
            },
            profile: ProfileSummary {
                signature: "🌸".repeat(MAX_SIGNATURE_CHARS),
                avatar_version: Some("0123456789abcdef".into()),
                updated_ms: u64::MAX,
            },
        }
    }

    /// A group as large as the relay lets one get.
    fn largest_group(i: usize) -> GroupInfo {
        GroupInfo {
            id: GroupId([i as u8; 16]),
            name: "🎉".repeat(MAX_GROUP_NAME_CHARS),
            owner: longest_name(0),
            epoch: u64::MAX,
            created_ms: u64::MAX,
            members: (0..MAX_GROUP_MEMBERS)
                .map(|m| GroupMember {
                    user: longest_name(m),
                    joined_ms: u64::MAX,
                })
                .collect(),
        }
    }

    /// A friend request as large as the relay lets one get.
    fn largest_request(i: usize) -> FriendRequestEntry {
        FriendRequestEntry {
            user: longest_name(i),
            note: "👋".repeat(MAX_NOTE_CHARS),
            created_ms: u64::MAX,
        }
    }

    /// Cuts the first page of `entries` as the relay does, and checks that the answer
    /// built around it fits in a frame.
    fn first_page_fits<T: Serialize + Clone>(
        entries: Vec<T>,
        answer: impl Fn(Vec<T>) -> Reply,
        limits: PageLimits,
    ) -> usize {
        let page = cut(
            entries,
            true,
            |_| (),
            |e| Ok::<_, Infallible>(Some(e)),
            limits,
        )
        .unwrap_or_else(|never| match never {});
        let count = page.entries.len();
        let response = Response::Ok(answer(page.entries));
        let bytes = frame::encode(&response, MAX_CONTROL_FRAME_BYTES)
            .unwrap_or_else(|e| panic!("a page of {count} does not fit: {e}"));
        assert!(bytes.len() <= MAX_CONTROL_FRAME_BYTES);
        count
    }

    #[test]
    fn a_page_of_the_largest_entries_of_every_paged_list_fits_in_a_frame() {
        let page = PageLimits {
            max_entries: MAX_PAGE_ENTRIES as usize,
            max_bytes: PAGE_BYTE_BUDGET,
        };
        let friends = first_page_fits(
            (0..5000).map(largest_friend).collect(),
            |friends| {
                Reply::FriendsPage(reply::FriendsPage {
                    friends,
                    next: Some(longest_name(0)),
                })
            },
            page,
        );
        assert!(friends > 500, "only {friends} friends in a page");
        let groups = first_page_fits(
            (0..40).map(largest_group).collect(),
            |groups| {
                Reply::GroupsPage(reply::GroupsPage {
                    groups,
                    next: Some(GroupId([0xff; 16])),
                })
            },
            page,
        );
        assert!(groups > 10, "only {groups} groups in a page");
        let requests = first_page_fits(
            (0..2000).map(largest_request).collect(),
            |requests| {
                Reply::FriendRequestsPage(reply::FriendRequestsPage {
                    requests,
                    next: Some(longest_name(0)),
                })
            },
            page,
        );
        assert!(requests > 500, "only {requests} requests in a page");
    }

    #[test]
    fn a_whole_list_is_given_whole_when_its_answer_fits_in_a_frame_and_not_when_it_does_not() {
        // Just under and just over what one frame holds.
        for count in [990, 1010] {
            let entries: Vec<FriendEntry> = (0..count).map(largest_friend).collect();
            let listed = whole(entries.clone(), |e| Ok::<_, Infallible>(Some(e)))
                .unwrap_or_else(|never| match never {});
            let answer = Response::Ok(Reply::Friends(reply::Friends {
                friends: entries.clone(),
            }));
            let fits = frame::encode(&answer, MAX_CONTROL_FRAME_BYTES).is_ok();
            assert_eq!(listed.is_some(), fits, "{count} of the largest friends");
            if let Some(listed) = listed {
                assert_eq!(listed, entries, "all of them, in order");
            }
        }
    }
}
