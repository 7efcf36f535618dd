//! Per-device rate limiting: a keyed GCRA limiter (governor) that refuses a
//! run before any SSH session opens.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Why a run was refused, and when the caller may try again.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// Runs allowed per window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
    /// Time until one more run is allowed.
    pub retry_after: Duration,
}

/// A limit of `runs` per `window` on each device.
pub struct DeviceRateLimiter {
    limiter: DefaultKeyedRateLimiter<u64>,
    clock: DefaultClock,
    limit: u32,
    window: Duration,
}

impl DeviceRateLimiter {
    /// A limiter allowing `runs` (at least one) per `window` on each device.
    pub fn new(runs: u32, window: Duration) -> Self {
        let runs = NonZeroU32::new(runs).unwrap_or(NonZeroU32::MIN);
        // GCRA: one cell comes back every window/runs, up to a burst of `runs`.
        let period = (window / runs.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .map(|q| q.allow_burst(runs))
            .unwrap_or_else(|| Quota::per_second(runs));
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            limit: runs.get(),
            window,
        }
    }

    /// Takes one run for `device_id`, or says how long to wait.
    pub fn check(&self, device_id: u64) -> Result<(), RateLimited> {
        self.limiter
            .check_key(&device_id)
            .map_err(|not_until| RateLimited {
                limit: self.limit,
                window: self.window,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_after_the_limit_is_refused_with_a_wait_time() {
        let limiter = DeviceRateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check(1).is_ok());
        assert!(limiter.check(1).is_ok());
        let refused = limiter.check(1).unwrap_err();
        assert_eq!(refused.limit, 2);
        assert!(refused.retry_after > Duration::from_secs(25), "{refused:?}");
        assert!(
            limiter.check(2).is_ok(),
            "another device has its own budget"
        );
    }
}
