//! Per-device rate limiting: a keyed GCRA limiter (governor) that refuses a
//! run before any SSH session opens.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How much of a device's budget is left, for display.
#[derive(Debug, Clone)]
pub struct RateStatus {
    /// Runs allowed per window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
    /// Runs that may start now.
    pub remaining: u32,
    /// Time until one more run is allowed, when none is.
    pub retry_after: Option<Duration>,
}

/// A limit of `runs` per `window` on each device.
pub struct DeviceRateLimiter {
    limiter: DefaultKeyedRateLimiter<u64>,
    clock: DefaultClock,
    limit: u32,
    window: Duration,
    period: Duration,
    /// The GCRA theoretical arrival time of each device, mirrored from the
    /// runs governor allowed, because governor cannot be asked without
    /// taking a cell.
    arrivals: Mutex<HashMap<u64, Instant>>,
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
            period,
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// The device's remaining budget, without taking from it.
    pub fn status(&self, device_id: u64) -> RateStatus {
        let now = Instant::now();
        let tat = self
            .arrivals
            .lock()
            .ok()
            .and_then(|arrivals| arrivals.get(&device_id).copied())
            .unwrap_or(now);
        let ahead = tat.saturating_duration_since(now);
        let burst = self.period * self.limit;
        let free = burst.saturating_sub(ahead);
        let remaining = (free.as_nanos() / self.period.as_nanos().max(1)) as u32;
        let retry_after = (remaining == 0).then(|| ahead.saturating_sub(burst - self.period));
        RateStatus {
            limit: self.limit,
            window: self.window,
            remaining: remaining.min(self.limit),
            retry_after,
        }
    }

    fn record_run(&self, device_id: u64) {
        let now = Instant::now();
        if let Ok(mut arrivals) = self.arrivals.lock() {
            if arrivals.len() > 10_000 {
                arrivals.retain(|_, tat| *tat > now);
            }
            let tat = arrivals.entry(device_id).or_insert(now);
            *tat = (*tat).max(now) + self.period;
        }
    }

    /// Takes one run for `device_id`, or says how long to wait.
    pub fn check(&self, device_id: u64) -> Result<(), RateLimited> {
        let checked = self.limiter.check_key(&device_id);
        if checked.is_ok() {
            self.record_run(device_id);
        }
        checked.map_err(|not_until| RateLimited {
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

    #[test]
    fn the_status_counts_down_without_taking_a_run() {
        let limiter = DeviceRateLimiter::new(3, Duration::from_secs(60));
        assert_eq!(limiter.status(1).remaining, 3);
        assert_eq!(limiter.status(1).remaining, 3, "asking takes nothing");
        limiter.check(1).unwrap();
        assert_eq!(limiter.status(1).remaining, 2);
        limiter.check(1).unwrap();
        limiter.check(1).unwrap();
        let spent = limiter.status(1);
        assert_eq!(spent.remaining, 0);
        assert!(
            spent.retry_after.unwrap() > Duration::from_secs(15),
            "{spent:?}"
        );
        assert!(
            limiter.check(1).is_err(),
            "the status agrees with the limiter"
        );
    }
}
