//! Rate limits on what anyone could otherwise make the relay do over and over: create
//! accounts (each costs an argon2 hash, a key stock, a queue and a file quota), send
//! friend requests (each lands in someone else's queue) and ask for a group's member list
//! again (each lands in the asker's own queue).
//!
//! Each limit is a GCRA bucket from `governor`: a burst that refills at a steady rate, so
//! a person who registers a family of five, or sends a few requests in a row, never notices
//! it, while a loop is slowed to the refill rate. Buckets are kept in memory (a restart
//! forgets them, which costs an attacker a restart they cannot cause) and keyed by what
//! the limit is about; idle ones are forgotten ([`Throttles::forget_idle`]) so a flood of
//! distinct keys cannot grow them without bound.
//!
//! Addresses are keyed by [`AddressKey`]: an IPv4 address as it is, an IPv6 address by its
//! /64 network, since one host is given a whole /64 and could otherwise pick a fresh
//! address for every try.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use uchat_wire::UserName;

use crate::config::Limits;

/// Above this many keys in one limiter, idle ones are forgotten at the next check.
const FORGET_IDLE_ABOVE_KEYS: usize = 50_000;

/// How often one user may ask for the member list of their groups again: a burst of 10,
/// then one a minute (a new device asks once per group).
const GROUP_SYNC_BURST: u32 = 10;
const GROUP_SYNC_PERIOD: Duration = Duration::from_secs(60);

/// How often one owner may add or remove the same person in their groups (a group made
/// with them counts as adding them): 10 a day. Each change writes a row to every member's
/// queue past its quota, so a loop of them is what must be slowed; building a group, one
/// invitation per member, is not.
const GROUP_CHANGES_PER_MEMBER_PER_DAY: u32 = 10;

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Where a request comes from, as the per-address limits count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of `ip`: IPv4 (also when mapped into IPv6) as it is, IPv6 by its /64.
    pub(super) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(network.into()))
                }
            },
        }
    }
}

/// What a throttle says when it refuses: what was limited and how long until one more
/// would be let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Throttled {
    /// What is limited, in words for the user ("registrations from your address").
    pub(super) what: &'static str,
    /// How long until the next one is allowed.
    pub(super) retry_after: Duration,
}

impl Throttled {
    /// The refusal in words: what and when to try again.
    pub(super) fn message(&self) -> String {
        let secs = self.retry_after.as_secs().max(1);
        let when = if secs >= 120 {
            format!("{} minutes", secs.div_ceil(60))
        } else {
            format!("{secs} s")
        };
        format!("too many {}; try again in {when}", self.what)
    }
}

/// Every rate limit of the relay, generic over the clock so tests can move time.
pub(super) struct Throttles<C: Clock = DefaultClock> {
    clock: C,
    registrations_per_address: Keyed<AddressKey, C>,
    registrations: Direct<C>,
    friend_requests_per_sender: Keyed<UserName, C>,
    friend_requests_per_pair: Keyed<(UserName, UserName), C>,
    group_syncs_per_user: Keyed<UserName, C>,
    group_changes_per_pair: Keyed<(UserName, UserName), C>,
}

/// A quota of `burst` that refills completely over `period` (at least one a second's
/// worth; a zero burst is taken as one).
fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let every = (period / burst.get()).max(Duration::from_nanos(1));
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Throttles<DefaultClock> {
    /// The relay's throttles, on the real clock.
    pub(super) fn new(limits: &Limits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttles<C> {
    /// The throttles for `limits`, timed by `clock`.
    pub(super) fn with_clock(limits: &Limits, clock: C) -> Self {
        fn keyed<K: Clone + Hash + Eq, C: Clock + Clone>(quota: Quota, clock: &C) -> Keyed<K, C> {
            RateLimiter::new(quota, DashMapStateStore::default(), clock.clone())
        }
        Self {
            registrations_per_address: keyed(
                quota(limits.max_registrations_per_address_per_hour, HOUR),
                &clock,
            ),
            registrations: RateLimiter::new(
                quota(limits.max_registrations_per_hour, HOUR),
                InMemoryState::default(),
                clock.clone(),
            ),
            friend_requests_per_sender: keyed(
                quota(limits.max_friend_requests_per_day, DAY),
                &clock,
            ),
            friend_requests_per_pair: keyed(
                quota(limits.max_friend_requests_to_one_user_per_day, DAY),
                &clock,
            ),
            group_syncs_per_user: keyed(
                quota(GROUP_SYNC_BURST, GROUP_SYNC_PERIOD * GROUP_SYNC_BURST),
                &clock,
            ),
            group_changes_per_pair: keyed(quota(GROUP_CHANGES_PER_MEMBER_PER_DAY, DAY), &clock),
            clock,
        }
    }

    /// Admits one registration from `ip`, counting it against the address's and the
    /// relay's hourly budgets (the address first, so one address cannot spend the relay's).
    pub(super) fn register(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.check_keyed(
            &self.registrations_per_address,
            &AddressKey::of(ip),
            "registrations from your address",
        )?;
        self.registrations.check().map_err(|not_until| Throttled {
            what: "registrations on this relay",
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Admits one friend request from `from` to `to`, within the sender's daily budget and
    /// the smaller one for asking the same person again.
    pub(super) fn friend_request(&self, from: &UserName, to: &UserName) -> Result<(), Throttled> {
        self.check_keyed(
            &self.friend_requests_per_pair,
            &(from.clone(), to.clone()),
            "friend requests to this user",
        )?;
        self.check_keyed(
            &self.friend_requests_per_sender,
            from,
            "friend requests from you today",
        )
    }

    /// Admits one request by `user` for a group's member list.
    pub(super) fn group_sync(&self, user: &UserName) -> Result<(), Throttled> {
        self.check_keyed(
            &self.group_syncs_per_user,
            user,
            "requests for a group's member list",
        )
    }

    /// Admits one change of `member`'s place in `owner`'s groups (made with them, added or
    /// removed).
    pub(super) fn group_change(
        &self,
        owner: &UserName,
        member: &UserName,
    ) -> Result<(), Throttled> {
        self.check_keyed(
            &self.group_changes_per_pair,
            &(owner.clone(), member.clone()),
            "group changes for this user",
        )
    }

    /// Forgets buckets that have refilled completely (they hold nothing a fresh one would
    /// not); the pruner calls this hourly, and a check does when a limiter grows large.
    pub(super) fn forget_idle(&self) {
        self.registrations_per_address.retain_recent();
        self.friend_requests_per_sender.retain_recent();
        self.friend_requests_per_pair.retain_recent();
        self.group_syncs_per_user.retain_recent();
        self.group_changes_per_pair.retain_recent();
    }

    /// How many keys the limiters track.
    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.registrations_per_address.len()
            + self.friend_requests_per_sender.len()
            + self.friend_requests_per_pair.len()
            + self.group_syncs_per_user.len()
            + self.group_changes_per_pair.len()
    }

    fn check_keyed<K: Clone + Hash + Eq>(
        &self,
        limiter: &Keyed<K, C>,
        key: &K,
        what: &'static str,
    ) -> Result<(), Throttled> {
        if limiter.len() > FORGET_IDLE_ABOVE_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| Throttled {
            what,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn name(s: &str) -> UserName {
        UserName::parse(s).expect("valid")
    }

    fn throttles(limits: Limits) -> (Throttles<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (Throttles::with_clock(&limits, clock.clone()), clock)
    }

    #[test]
    fn an_address_registers_its_hourly_budget_then_waits_for_the_refill() {
        let (t, clock) = throttles(Limits::default());
        let ip: IpAddr = "198.51.100.7".parse().expect("ip");
        for i in 0..20 {
            assert_eq!(t.register(ip), Ok(()), "registration {i}");
        }
        let refused = t.register(ip).expect_err("21st refused");
        assert_eq!(refused.what, "registrations from your address");
        assert_eq!(refused.retry_after, Duration::from_secs(180));
        assert_eq!(
            refused.message(),
            "too many registrations from your address; try again in 3 minutes"
        );
        // Another address is not held up, and the refill lets one more through.
        assert_eq!(t.register("198.51.100.8".parse().expect("ip")), Ok(()));
        clock.advance(Duration::from_secs(180));
        assert_eq!(t.register(ip), Ok(()));
        assert!(t.register(ip).is_err());
    }

    #[test]
    fn the_relay_wide_registration_budget_holds_across_addresses() {
        let (t, _clock) = throttles(Limits {
            max_registrations_per_hour: 30,
            ..Limits::default()
        });
        for i in 0..30u8 {
            assert_eq!(t.register(IpAddr::from([203, 0, 113, i])), Ok(()));
        }
        let refused = t
            .register(IpAddr::from([203, 0, 113, 200]))
            .expect_err("the relay's budget is spent");
        assert_eq!(refused.what, "registrations on this relay");
    }

    #[test]
    fn ipv6_addresses_of_one_network_share_a_budget() {
        let (t, _clock) = throttles(Limits {
            max_registrations_per_address_per_hour: 2,
            ..Limits::default()
        });
        assert_eq!(t.register("2001:db8:1:2::1".parse().expect("ip")), Ok(()));
        assert_eq!(
            t.register("2001:db8:1:2::ffff".parse().expect("ip")),
            Ok(())
        );
        assert!(
            t.register("2001:db8:1:2:aaaa::1".parse().expect("ip"))
                .is_err()
        );
        assert_eq!(t.register("2001:db8:1:3::1".parse().expect("ip")), Ok(()));
        assert_eq!(
            AddressKey::of("::ffff:192.0.2.1".parse().expect("ip")),
            AddressKey::of("192.0.2.1".parse().expect("ip"))
        );
    }

    #[test]
    fn asking_one_user_again_and_again_is_limited_before_the_senders_day_is() {
        let (t, clock) = throttles(Limits::default());
        let (mallory, alice, bob) = (name("mallory"), name("alice"), name("bob"));
        let per_pair = Limits::default().max_friend_requests_to_one_user_per_day;
        for _ in 0..per_pair {
            assert_eq!(t.friend_request(&mallory, &alice), Ok(()));
        }
        let refused = t.friend_request(&mallory, &alice).expect_err("limited");
        assert_eq!(refused.what, "friend requests to this user");
        assert_eq!(t.friend_request(&mallory, &bob), Ok(()), "others still");
        clock.advance(DAY);
        assert_eq!(t.friend_request(&mallory, &alice), Ok(()));
    }

    #[test]
    fn a_sender_has_a_daily_budget_of_requests_over_all_recipients() {
        let (t, _clock) = throttles(Limits {
            max_friend_requests_per_day: 5,
            ..Limits::default()
        });
        let spammer = name("spammer");
        for i in 0..5 {
            assert_eq!(t.friend_request(&spammer, &name(&format!("u{i}"))), Ok(()));
        }
        let refused = t
            .friend_request(&spammer, &name("u9"))
            .expect_err("limited");
        assert_eq!(refused.what, "friend requests from you today");
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let (t, clock) = throttles(Limits::default());
        for i in 0..100u8 {
            t.register(IpAddr::from([10, 0, 0, i])).expect("admitted");
        }
        assert_eq!(t.tracked_keys(), 100);
        clock.advance(HOUR);
        t.forget_idle();
        assert_eq!(t.tracked_keys(), 0);
    }

    #[test]
    fn group_syncs_allow_a_burst_then_one_a_minute() {
        let (t, clock) = throttles(Limits::default());
        let alice = name("alice");
        for _ in 0..GROUP_SYNC_BURST {
            assert_eq!(t.group_sync(&alice), Ok(()));
        }
        assert!(t.group_sync(&alice).is_err());
        clock.advance(GROUP_SYNC_PERIOD);
        assert_eq!(t.group_sync(&alice), Ok(()));
    }

    #[test]
    fn an_owner_changes_one_members_place_ten_times_a_day_and_others_freely() {
        let (t, clock) = throttles(Limits::default());
        let (owner, victim) = (name("owner"), name("victim"));
        for i in 0..10 {
            assert_eq!(t.group_change(&owner, &victim), Ok(()), "change {i}");
        }
        let refused = t.group_change(&owner, &victim).expect_err("eleventh");
        assert!(
            refused
                .message()
                .starts_with("too many group changes for this user; try again in"),
            "{}",
            refused.message()
        );
        // Building a group of 499, one invitation each, is not slowed.
        for i in 0..499 {
            assert_eq!(t.group_change(&owner, &name(&format!("m{i}"))), Ok(()));
        }
        // Nor is another owner, and the pair refills over the day.
        assert_eq!(t.group_change(&name("other"), &victim), Ok(()));
        clock.advance(DAY / 10);
        assert_eq!(t.group_change(&owner, &victim), Ok(()));
    }
}
