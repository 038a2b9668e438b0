//! A client-side rate limiter: waits so that a provider never has to say 429.
//!
//! Notion allows an average of three requests a second per integration;
//! DuckDuckGo's HTML endpoint starts showing a bot challenge to anyone who asks
//! much faster than a person would. Both are cheaper to respect than to recover
//! from, so the clients pace themselves with a [`RateLimiter`] before every
//! attempt, retries included.
//!
//! The algorithm is the generic cell rate algorithm, the "virtual scheduling" form
//! of a token bucket: one timestamp (the theoretical arrival time of the next
//! request) instead of a token count, so that a reservation is a single
//! compare-and-add under a lock that is never held across an `.await`. Callers are
//! served in the order they asked, and time is tokio's, so tests run it on a
//! paused clock.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket refilled at a steady rate; see the module docs.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time between two requests at the steady rate.
    interval: Duration,
    /// How far ahead of the steady schedule a burst may run: `(burst - 1) * interval`.
    tolerance: Duration,
    /// When the next request would go out if the bucket were empty. A std mutex:
    /// held only to read and bump it, never across an `.await`.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `requests` per `per` on average, with up to `burst` (at least one)
    /// going out back to back after a quiet spell.
    ///
    /// `requests` of zero is treated as one.
    pub fn new(requests: u32, per: Duration, burst: u32) -> Self {
        let interval = per / requests.max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: Mutex::new(None),
        }
    }

    /// The average time between requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until a request may go out, and counts it.
    ///
    /// The slot is reserved when this is called, not when it returns: a caller that
    /// gives up while waiting (its future dropped) leaves its slot unused, which
    /// only makes the pace slower, never faster.
    pub async fn acquire(&self) {
        let at = self.reserve(Instant::now());
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Books the next slot at or after `now` and returns when it begins.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let theoretical = next.map_or(now, |t| t.max(now));
        let earliest = theoretical
            .checked_sub(self.tolerance)
            .map_or(now, |t| t.max(now));
        *next = Some(theoretical + self.interval);
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_after_the_burst() {
        let limiter = RateLimiter::new(3, Duration::from_secs(1), 3);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..6 {
            limiter.acquire().await;
            at.push(start.elapsed().as_millis());
        }
        // tokio's timer rounds a deadline up to the next millisecond.
        let expected = [0, 0, 0, 333, 666, 999];
        for (got, want) in at.iter().zip(expected) {
            assert!(*got == want || *got == want + 1, "{at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_refills_the_bucket_but_no_further() {
        let limiter = RateLimiter::new(1, Duration::from_secs(1), 2);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let quiet = start.elapsed();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed() - quiet,
            Duration::from_secs(1),
            "a burst of two, then one a second, however long the quiet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1, Duration::from_secs(1), 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire().await;
                    start.elapsed().as_secs()
                })
            })
            .collect();
        let mut at = Vec::new();
        for task in tasks {
            at.push(task.await.unwrap_or(u64::MAX));
        }
        at.sort_unstable();
        assert_eq!(at, vec![0, 1, 2, 3]);
    }
}
