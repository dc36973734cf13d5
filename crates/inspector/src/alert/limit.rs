//! Pacing the webhook: at most N messages a minute, and exponential backoff between tries.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Longest wait between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// At most N messages in any 60 seconds.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: usize,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter of `per_minute` (at least 1) messages.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: (per_minute as usize).max(1),
            sent: VecDeque::new(),
        }
    }

    /// How long until a message may go (zero: now).
    pub fn wait(&mut self, now: Instant) -> Duration {
        const MINUTE: Duration = Duration::from_secs(60);
        while self
            .sent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) >= MINUTE)
        {
            self.sent.pop_front();
        }
        match self.sent.front() {
            Some(&oldest) if self.sent.len() >= self.per_minute => {
                (oldest + MINUTE).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// Counts a message sent at `now`.
    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }
}

/// The wait before try `attempt + 1` after `attempt` failed (1-based): `first`, doubled for
/// each further try, at most [`MAX_BACKOFF`].
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    first.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_allows_n_per_sliding_minute() {
        let mut limiter = RateLimiter::new(3);
        let start = Instant::now();
        for i in 0..3 {
            let at = start + Duration::from_secs(i * 10);
            assert_eq!(limiter.wait(at), Duration::ZERO);
            limiter.record(at);
        }
        // The fourth waits until the first is a minute old.
        let at = start + Duration::from_secs(25);
        assert_eq!(limiter.wait(at), Duration::from_secs(35));
        let at = start + Duration::from_secs(60);
        assert_eq!(limiter.wait(at), Duration::ZERO);
        limiter.record(at);
        assert_eq!(
            limiter.wait(start + Duration::from_secs(61)),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let first = Duration::from_millis(500);
        let waits: Vec<Duration> = (1..=4).map(|a| backoff(first, a)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000].map(Duration::from_millis).to_vec()
        );
        assert_eq!(backoff(first, 40), MAX_BACKOFF);
    }
}
