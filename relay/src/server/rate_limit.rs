//! Failed-login limiting (a pure, clocked state machine), as Prosody and ejabberd do it:
//! by remote address, not by account, so a stranger's guesses cannot lock the owner out.
//!
//! Three counts over a sliding window: failures of one account from one address (the
//! guessing budget of one attacker against one account), failures from one address across
//! accounts (one attacker spraying many accounts), and failures of one account from all
//! addresses. The first two refuse attempts over budget; the third never refuses, it only
//! delays each attempt on a much-guessed account by a short back-off (doubling from a
//! second up to [`MAX_BACKOFF`]), which slows guessers spread over many addresses while the
//! owner still gets in. Addresses are keyed by [`AddressKey`] (IPv6 by its /64).
//!
//! Calling order: [`FailedLogins::try_attempt`] before verifying a password, which checks the
//! budgets and counts the attempt as a failure in the same call; then, only if the password
//! verified, [`FailedLogins::record_success`] with the ticket. Counting up front is what
//! makes the limit hold under parallel attempts: a hundred logins sent at once each take a
//! reservation under one lock, so only the budget's worth get through to argon2, instead of
//! all of them passing a check before any failure is recorded.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use uchat_wire::UserName;

use super::throttle::AddressKey;
use crate::config::Limits;

/// Above this many tracked keys in a map, expired entries are forgotten, so a flood of
/// distinct names cannot grow the maps without bound.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// The longest an attempt on a much-guessed account waits before its password is checked:
/// short enough that the owner's login stays well inside the relay's login deadline.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Failures of one key, oldest first.
type Failures = VecDeque<Instant>;

/// Counts failed logins in a sliding window; see the module docs for the three counts.
pub(super) struct FailedLogins {
    window: Duration,
    per_account_address: u32,
    per_address: u32,
    backoff_after: u32,
    pairs: HashMap<(UserName, AddressKey), Failures>,
    addresses: HashMap<AddressKey, Failures>,
    accounts: HashMap<UserName, Failures>,
}

/// One login attempt admitted by [`FailedLogins::try_attempt`]. It already counts as a
/// failure; give it back to [`FailedLogins::record_success`] if the password verifies.
/// Dropping it (wrong password, unknown user, an error, a closed connection) leaves the
/// failure counted.
#[derive(Debug)]
#[must_use = "a verified login must hand its ticket to record_success"]
pub(super) struct AttemptTicket {
    user: UserName,
    address: AddressKey,
    at: Instant,
    /// How long to wait before checking the password (zero unless the account is being
    /// guessed at from many addresses).
    pub(super) backoff: Duration,
}

impl FailedLogins {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            window: limits.login_window,
            per_account_address: limits.max_failed_logins_per_account_address,
            per_address: limits.max_failed_logins_per_address,
            backoff_after: limits.login_backoff_after_failures,
            pairs: HashMap::new(),
            addresses: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    /// Admits one login attempt for `user` from `ip`, counting it as a failure right
    /// away; `Err(retry_after)` if this address used up its budget for the account or
    /// overall (then nothing is counted). Attempts on unknown users count like any other.
    pub(super) fn try_attempt(
        &mut self,
        user: &UserName,
        ip: IpAddr,
        now: Instant,
    ) -> Result<AttemptTicket, Duration> {
        let window = self.window;
        let address = AddressKey::of(ip);
        let pair = (user.clone(), address);
        let pair_wait = over_budget(
            self.pairs.get_mut(&pair),
            self.per_account_address,
            window,
            now,
        );
        let address_wait = over_budget(
            self.addresses.get_mut(&address),
            self.per_address,
            window,
            now,
        );
        if let Some(wait) = pair_wait.max(address_wait) {
            return Err(wait);
        }
        let account = self.accounts.entry(user.clone()).or_default();
        drop_expired(account, window, now);
        let backoff = backoff(account.len(), self.backoff_after);
        account.push_back(now);
        self.pairs.entry(pair).or_default().push_back(now);
        self.addresses.entry(address).or_default().push_back(now);
        self.forget_expired(now);
        Ok(AttemptTicket {
            user: user.clone(),
            address,
            at: now,
            backoff,
        })
    }

    /// A verified password clears the account's failures from this address and its
    /// back-off, and takes back this attempt's reservation from the address: a successful
    /// login is no failure, and many people behind one NAT logging in must not lock each
    /// other out.
    pub(super) fn record_success(&mut self, ticket: AttemptTicket) {
        self.pairs.remove(&(ticket.user.clone(), ticket.address));
        self.accounts.remove(&ticket.user);
        if let Some(failures) = self.addresses.get_mut(&ticket.address) {
            // Removing one element keeps the queue in time order.
            if let Some(pos) = failures.iter().rposition(|t| *t == ticket.at) {
                failures.remove(pos);
            }
            if failures.is_empty() {
                self.addresses.remove(&ticket.address);
            }
        }
    }

    /// Forgets keys whose newest failure left the window, once a map grows large.
    fn forget_expired(&mut self, now: Instant) {
        let window = self.window;
        forget_expired_in(&mut self.pairs, window, now);
        forget_expired_in(&mut self.addresses, window, now);
        forget_expired_in(&mut self.accounts, window, now);
    }
}

/// The wait before an attempt on an account that failed `failures` times in the window
/// (from anywhere): none up to `after`, then one second doubling to [`MAX_BACKOFF`].
fn backoff(failures: usize, after: u32) -> Duration {
    let Some(excess) = failures.checked_sub(after as usize) else {
        return Duration::ZERO;
    };
    let doublings = u32::try_from(excess).unwrap_or(u32::MAX).min(8);
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

/// Drops the failures that left the window.
fn drop_expired(failures: &mut Failures, window: Duration, now: Instant) {
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        failures.pop_front();
    }
}

/// Forgets the keys of `map` whose newest failure left the window, once it grows large.
fn forget_expired_in<K: Eq + Hash>(map: &mut HashMap<K, Failures>, window: Duration, now: Instant) {
    if map.len() > PRUNE_ABOVE_KEYS {
        map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
    }
}

/// Drops failures that left the window; `Some(wait)` if the rest still fill the budget,
/// where `wait` is how long until the oldest one leaves.
fn over_budget(
    failures: Option<&mut Failures>,
    budget: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    let failures = failures?;
    drop_expired(failures, window, now);
    if failures.len() < budget as usize {
        return None;
    }
    failures
        .front()
        .map(|oldest| window.saturating_sub(now.duration_since(*oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FailedLogins {
        FailedLogins::new(&Limits {
            max_failed_logins_per_account_address: 3,
            max_failed_logins_per_address: 5,
            login_backoff_after_failures: 4,
            login_window: Duration::from_secs(60),
            ..Limits::default()
        })
    }

    fn name(s: &str) -> UserName {
        UserName::parse(s).expect("valid")
    }

    #[test]
    fn parallel_attempts_beyond_the_budget_are_refused_before_any_completes() {
        let mut l = limiter();
        let alice = name("alice");
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        // Three attempts in flight at once, none finished: the fourth is already refused.
        let tickets: Vec<_> = (0..3)
            .map(|i| {
                l.try_attempt(&alice, ip, t0)
                    .unwrap_or_else(|_| panic!("attempt {i} admitted"))
            })
            .collect();
        let wait = l.try_attempt(&alice, ip, t0).expect_err("over budget");
        assert_eq!(wait, Duration::from_secs(60));
        assert_eq!(tickets.len(), 3);
        assert!(
            l.try_attempt(&alice, ip, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_refused_across_accounts() {
        let mut l = limiter();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..5 {
            let _failed = l
                .try_attempt(&name(&format!("user{i}")), ip, t0)
                .expect("admitted");
        }
        let fresh = name("fresh");
        assert!(l.try_attempt(&fresh, ip, t0).is_err());
        let other_ip: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(l.try_attempt(&fresh, other_ip, t0).is_ok());
    }

    #[test]
    fn a_refused_attempt_is_not_counted() {
        let mut l = limiter();
        let alice = name("alice");
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            let _failed = l.try_attempt(&alice, ip, t0).expect("admitted");
        }
        for _ in 0..10 {
            assert!(l.try_attempt(&alice, ip, t0).is_err());
        }
        // Only the three admitted attempts count against the address (budget 5).
        let bob = name("bob");
        let _failed = l.try_attempt(&bob, ip, t0).expect("admitted");
        let _failed = l.try_attempt(&bob, ip, t0).expect("admitted");
        assert!(l.try_attempt(&bob, ip, t0).is_err());
    }

    #[test]
    fn success_clears_the_account_and_refunds_the_address() {
        let mut l = limiter();
        let alice = name("alice");
        let ip: IpAddr = "::1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..2 {
            let _failed = l.try_attempt(&alice, ip, t0).expect("admitted");
        }
        let ticket = l.try_attempt(&alice, ip, t0).expect("admitted");
        l.record_success(ticket);
        for _ in 0..3 {
            let _failed = l.try_attempt(&alice, ip, t0).expect("account cleared");
        }
        // The address holds the two earlier failures and these three; the success was
        // refunded, so it is now exactly at its budget of five.
        assert!(l.try_attempt(&name("bob"), ip, t0).is_err());
    }

    #[test]
    fn successful_logins_alone_never_exhaust_an_address() {
        let mut l = limiter();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..50 {
            let ticket = l
                .try_attempt(&name(&format!("user{i}")), ip, t0)
                .expect("admitted");
            l.record_success(ticket);
        }
        assert!(l.try_attempt(&name("late"), ip, t0).is_ok());
    }

    #[test]
    fn guesses_from_many_addresses_slow_the_account_but_never_lock_it() {
        let mut l = limiter();
        let alice = name("alice");
        let t0 = Instant::now();
        let mut backoffs = Vec::new();
        for i in 1..=8u8 {
            let guesser: IpAddr = format!("203.0.113.{i}").parse().expect("ip");
            let ticket = l
                .try_attempt(&alice, guesser, t0)
                .expect("each address has budget");
            backoffs.push(ticket.backoff.as_secs());
        }
        assert_eq!(backoffs, [0, 0, 0, 0, 1, 2, 4, 4]);
        // The owner, from her address, is admitted (after the back-off) and clears it.
        let home: IpAddr = "192.0.2.1".parse().expect("ip");
        let ticket = l.try_attempt(&alice, home, t0).expect("never locked out");
        assert_eq!(ticket.backoff, MAX_BACKOFF);
        l.record_success(ticket);
        let next = l.try_attempt(&alice, home, t0).expect("admitted");
        assert_eq!(next.backoff, Duration::ZERO);
        // Once the window passes, the account's count is gone too.
        let later = t0 + Duration::from_secs(61);
        let far: IpAddr = "203.0.113.1".parse().expect("ip");
        assert_eq!(
            l.try_attempt(&alice, far, later).expect("admitted").backoff,
            Duration::ZERO
        );
    }

    #[test]
    fn one_address_is_stopped_at_its_budget_for_an_account_while_others_are_not() {
        let mut l = limiter();
        let alice = name("alice");
        let guesser: IpAddr = "198.51.100.7".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            let _failed = l.try_attempt(&alice, guesser, t0).expect("admitted");
        }
        assert!(l.try_attempt(&alice, guesser, t0).is_err());
        let home: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(l.try_attempt(&alice, home, t0).is_ok());
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_budget() {
        let mut l = limiter();
        let alice = name("alice");
        let t0 = Instant::now();
        for i in 1..=3 {
            let host: IpAddr = format!("2001:db8:1:2::{i}").parse().expect("ip");
            let _failed = l.try_attempt(&alice, host, t0).expect("admitted");
        }
        let same_net: IpAddr = "2001:db8:1:2::99".parse().expect("ip");
        assert!(l.try_attempt(&alice, same_net, t0).is_err());
        let other_net: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(l.try_attempt(&alice, other_net, t0).is_ok());
    }
}
