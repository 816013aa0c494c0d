//! Failed-login limiting per account and per remote address (a pure, clocked state machine).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use uchat_wire::UserName;

use crate::config::Limits;

/// Counts failed logins in a sliding window; a key over its budget is refused until its
/// oldest failure leaves the window.
pub(super) struct FailedLogins {
    window: Duration,
    per_account: u32,
    per_address: u32,
    accounts: HashMap<UserName, VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
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

    /// `Err(retry_after)` if either the account or the address is over its budget.
    pub(super) fn check(
        &mut self,
        user: &UserName,
        addr: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        let window = self.window;
        let account = retry_after(self.accounts.get_mut(user), self.per_account, window, now);
        let address = retry_after(self.addresses.get_mut(&addr), self.per_address, window, now);
        match account.max(address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub(super) fn record_failure(&mut self, user: &UserName, addr: IpAddr, now: Instant) {
        self.accounts
            .entry(user.clone())
            .or_default()
            .push_back(now);
        self.addresses.entry(addr).or_default().push_back(now);
        // Keep memory bounded under a flood of distinct names: forget expired entries.
        if self.accounts.len() > 10_000 {
            let window = self.window;
            self.accounts
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        if self.addresses.len() > 10_000 {
            let window = self.window;
            self.addresses
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub(super) fn record_success(&mut self, user: &UserName) {
        self.accounts.remove(user);
    }
}

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

    #[test]
    fn an_account_is_refused_after_its_budget_until_the_window_passes() {
        let mut l = limiter();
        let alice = UserName::parse("alice").expect("valid");
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check(&alice, ip, t0).is_ok(), "attempt {i}");
            l.record_failure(&alice, ip, t0);
        }
        let wait = l.check(&alice, ip, t0).expect_err("over budget");
        assert_eq!(wait, Duration::from_secs(60));
        assert!(l.check(&alice, ip, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn an_address_is_refused_across_accounts() {
        let mut l = limiter();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..5 {
            let user = UserName::parse(&format!("user{i}")).expect("valid");
            l.record_failure(&user, ip, t0);
        }
        let fresh = UserName::parse("fresh").expect("valid");
        assert!(l.check(&fresh, ip, t0).is_err());
        let other_ip: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(l.check(&fresh, other_ip, t0).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let mut l = limiter();
        let alice = UserName::parse("alice").expect("valid");
        let ip: IpAddr = "::1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..3 {
            l.record_failure(&alice, ip, t0);
        }
        l.record_success(&alice);
        assert!(l.check(&alice, ip, t0).is_ok());
    }
}
