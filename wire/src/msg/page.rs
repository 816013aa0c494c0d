//! Paged lists: the friend list, the groups one is in and the pending friend requests are
//! asked for a page at a time ([`crate::Request::FriendsPage`],
//! [`crate::Request::GroupsPage`], [`crate::Request::IncomingFriendRequestsPage`],
//! [`crate::Request::OutgoingFriendRequestsPage`]), so that no answer outgrows a control
//! frame however long the list gets.
//!
//! A page holds entries in the list's order (friends and requests by user name, groups by
//! id) after a cursor, the key of the last entry of the page before, and names the cursor
//! to ask for next: `None` at the end of the list. The relay sends at most `limit` entries
//! (itself at most [`MAX_PAGE_ENTRIES`]) and stops sooner when the next entry would take
//! the page past [`PAGE_BYTE_BUDGET`], so a short page does not mean the end: only
//! `next` says whether the list goes on.
//!
//! The unpaged requests (`Friends`, `Groups`, `FriendRequests`) still answer the whole
//! list while it fits in one frame, for older peers; beyond that they are refused with
//! `TooLarge`.

/// Most entries one page holds; a larger `limit` counts as this one, a `limit` of 0 as 1.
///
/// A thousand friends with their profiles are about 230 KB (1 MB with the longest
/// signatures, when the byte budget cuts the page short), so the largest friend list the
/// relay allows (5,000) takes five to seven pages.
pub const MAX_PAGE_ENTRIES: u32 = 1_000;

/// Bytes of encoded entries a page stops growing at (it always holds at least one
/// entry): three quarters of a control frame, the same margin a feed page keeps. The
/// largest entry of these lists, a group of 500 members with the longest names, is about
/// 30 KiB.
pub const PAGE_BYTE_BUDGET: usize = 768 * 1024;
