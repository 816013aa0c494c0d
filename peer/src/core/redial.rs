//! Waiting for the connection to come back: who waits, until when, and what one dial's
//! outcome means for each of them. The client's connector task dials and sleeps; this
//! decides whom to answer and when to dial again, so concurrent callers of
//! `Client::reconnect` share one series of dials.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// What one failed dial comes to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AfterFailure<K> {
    /// The waiters to tell that the dial failed: the failure lasts (a refused session, a
    /// wrong certificate), or their time is up before the next dial would be.
    pub(crate) give_up: Vec<K>,
    /// How long to wait before dialing again; `None` once nobody waits.
    pub(crate) retry_in: Option<Duration>,
}

/// The callers waiting for a connection, each with the moment it gives up (`None`:
/// never), and the backoff between dials.
#[derive(Debug)]
pub(crate) struct Redial<K> {
    waiting: Vec<(K, Option<Instant>)>,
    backoff: Backoff,
}

impl<K: PartialEq> Redial<K> {
    /// Nobody waiting yet; dials will be spaced by `backoff`.
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self {
            waiting: Vec::new(),
            backoff,
        }
    }

    /// `who` waits for a connection until `until` (`None`: for as long as it takes).
    pub(crate) fn wait(&mut self, who: K, until: Option<Instant>) {
        self.waiting.push((who, until));
    }

    /// `who` stopped waiting (the caller went away): it is not answered.
    pub(crate) fn forget(&mut self, who: &K) {
        self.waiting.retain(|(k, _)| k != who);
    }

    /// Whether nobody waits, so there is no reason to dial.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The dial worked (or the client was online already): every waiter is answered and
    /// the next outage starts with a short delay again.
    pub(crate) fn connected(&mut self) -> Vec<K> {
        self.backoff.reset();
        self.waiting.drain(..).map(|(k, _)| k).collect()
    }

    /// A dial failed at `now`; `lasting` says whether dialing again cannot help. `jitter`
    /// in [0, 1) comes from the caller's randomness and spreads the next dial.
    pub(crate) fn failed(&mut self, now: Instant, jitter: f64, lasting: bool) -> AfterFailure<K> {
        let delay = self.backoff.next_delay(jitter);
        let next_dial = now.checked_add(delay);
        let (give_up, still): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(_, until)| {
            lasting
                || match (until, next_dial) {
                    (Some(until), Some(next)) => next > *until,
                    (Some(_), None) => true,
                    (None, _) => false,
                }
        });
        self.waiting = still;
        if self.waiting.is_empty() {
            self.backoff.reset();
        }
        AfterFailure {
            give_up: give_up.into_iter().map(|(k, _)| k).collect(),
            retry_in: (!self.waiting.is_empty()).then_some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redial() -> Redial<u8> {
        Redial::new(Backoff::new(Duration::from_secs(1), Duration::from_secs(8)))
    }

    #[test]
    fn one_dial_answers_every_waiter_and_the_backoff_starts_over() {
        let mut r = redial();
        let now = Instant::now();
        r.wait(1, None);
        r.wait(2, Some(now + Duration::from_secs(60)));
        let after = r.failed(now, 0.0, false);
        assert!(after.give_up.is_empty());
        assert_eq!(after.retry_in, Some(Duration::from_millis(500)));
        let after = r.failed(now, 0.0, false);
        assert_eq!(
            after.retry_in,
            Some(Duration::from_secs(1)),
            "the delay grows"
        );
        assert_eq!(r.connected(), [1, 2]);
        assert!(r.is_idle());
        r.wait(3, None);
        let after = r.failed(now, 0.0, false);
        assert_eq!(
            after.retry_in,
            Some(Duration::from_millis(500)),
            "starts over"
        );
    }

    #[test]
    fn a_waiter_whose_time_ends_before_the_next_dial_is_told_now_and_the_others_wait_on() {
        let mut r = redial();
        let now = Instant::now();
        r.wait(1, Some(now + Duration::from_millis(200)));
        r.wait(2, Some(now + Duration::from_secs(60)));
        r.wait(3, None);
        let after = r.failed(now, 0.0, false);
        assert_eq!(after.give_up, [1], "a 500 ms delay is past 1's time");
        assert_eq!(after.retry_in, Some(Duration::from_millis(500)));
        assert_eq!(r.connected(), [2, 3]);
    }

    #[test]
    fn a_lasting_failure_answers_everyone_and_nobody_left_means_no_more_dials() {
        let mut r = redial();
        let now = Instant::now();
        r.wait(1, None);
        r.wait(2, Some(now + Duration::from_secs(60)));
        let after = r.failed(now, 0.0, true);
        assert_eq!(after.give_up, [1, 2]);
        assert_eq!(after.retry_in, None);
        assert!(r.is_idle());
    }

    #[test]
    fn a_waiter_that_went_away_is_not_answered_and_does_not_keep_the_dialing_going() {
        let mut r = redial();
        let now = Instant::now();
        r.wait(1, None);
        r.wait(2, None);
        r.forget(&1);
        r.forget(&2);
        assert!(r.is_idle());
        let after = r.failed(now, 0.0, false);
        assert_eq!(
            after,
            AfterFailure {
                give_up: vec![],
                retry_in: None
            }
        );
    }
}
