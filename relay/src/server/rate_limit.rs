//! Failed-login limiting per account and per remote address (a pure, clocked state machine).
//!
//! Calling order: [`FailedLogins::try_attempt`] before verifying a password, which checks the
//! budgets and counts the attempt as a failure in the same call; then, only if the password
//! verified, [`FailedLogins::record_success`] with the ticket. Counting up front is what
//! makes the limit hold under parallel attempts: a hundred logins sent at once each take a
//! reservation under one lock, so only the budget's worth get through to argon2, instead of
//! all of them passing a check before any failure is recorded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use uchat_wire::UserName;

use crate::config::Limits;

/// Above this many tracked accounts or addresses, expired entries are forgotten, so a flood
/// of distinct names cannot grow the maps without bound.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// Counts failed logins in a sliding window; a key over its budget is refused until its
/// oldest failure leaves the window.
pub(super) struct FailedLogins {
    window: Duration,
    per_account: u32,
    per_address: u32,
    accounts: HashMap<UserName, VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
}

/// One login attempt admitted by [`FailedLogins::try_attempt`]. It already counts as a
/// failure; give it back to [`FailedLogins::record_success`] if the password verifies.
/// Dropping it (wrong password, unknown user, an error, a closed connection) leaves the
/// failure counted.
#[derive(Debug)]
#[must_use = "a verified login must hand its ticket to record_success"]
pub(super) struct AttemptTicket {
    user: UserName,
    addr: IpAddr,
    at: Instant,
}

impl FailedLogins {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            window: limits.login_window,
            per_account: limits.max_failed_logins_per_account,
            per_address: limits.max_failed_logins_per_address,
            accounts: HashMap::new(),
            addresses: HashMap::new(),
        }
    }

    /// Admits one login attempt for `user` from `addr`, counting it as a failure right
    /// away; `Err(retry_after)` if the account or the address is over its budget (then
    /// nothing is counted). Attempts on unknown users count like any other.
    pub(super) fn try_attempt(
        &mut self,
        user: &UserName,
        addr: IpAddr,
        now: Instant,
    ) -> Result<AttemptTicket, Duration> {
        let window = self.window;
        let account = retry_after(self.accounts.get_mut(user), self.per_account, window, now);
        let address = retry_after(self.addresses.get_mut(&addr), self.per_address, window, now);
        if let Some(wait) = account.max(address) {
            return Err(wait);
        }
        self.accounts
            .entry(user.clone())
            .or_default()
            .push_back(now);
        self.addresses.entry(addr).or_default().push_back(now);
        self.forget_expired(now);
        Ok(AttemptTicket {
            user: user.clone(),
            addr,
            at: now,
        })
    }

    /// A verified password clears the account's failures, and takes back this attempt's
    /// reservation from the address: a successful login is no failure, and many people
    /// behind one NAT logging in must not lock each other out.
    pub(super) fn record_success(&mut self, ticket: AttemptTicket) {
        self.accounts.remove(&ticket.user);
        if let Some(failures) = self.addresses.get_mut(&ticket.addr) {
            // Removing one element keeps the queue in time order.
            if let Some(pos) = failures.iter().rposition(|t| *t == ticket.at) {
                failures.remove(pos);
            }
            if failures.is_empty() {
                self.addresses.remove(&ticket.addr);
            }
        }
    }

    /// Forgets keys whose newest failure left the window, once the maps grow large.
    fn forget_expired(&mut self, now: Instant) {
        let window = self.window;
        let live =
            |q: &mut VecDeque<Instant>| q.back().is_some_and(|t| now.duration_since(*t) < window);
        if self.accounts.len() > PRUNE_ABOVE_KEYS {
            self.accounts.retain(|_, q| live(q));
        }
        if self.addresses.len() > PRUNE_ABOVE_KEYS {
            self.addresses.retain(|_, q| live(q));
        }
    }
}

/// Drops failures that left the window; `Some(wait)` if the rest still fill the budget,
/// where `wait` is how long until the oldest one leaves.
fn retry_after(
    failures: Option<&mut VecDeque<Instant>>,
    budget: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    let failures = failures?;
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        failures.pop_front();
    }
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
            max_failed_logins_per_account: 3,
            max_failed_logins_per_address: 5,
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
}
