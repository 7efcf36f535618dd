//! Rate limiting: keyed GCRA limiters (governor) per device (with
//! per-platform budgets where configured) and per user, consulted before any
//! SSH session opens. Failed runs count too; named users and groups may
//! bypass the limits.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Why a run was refused, and when the caller may try again.
#[derive(Debug, Clone)]
pub struct RateLimited {
    /// What the limit applies to: `device <name>` or `user <name>`.
    pub scope: String,
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
            scope: String::new(),
            limit: self.limit,
            window: self.window,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }
}

/// A per-platform budget, or the per-user one.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Runs per window.
    pub runs: u32,
    /// Window length.
    pub window: Duration,
}

/// Every rate limit a run must pass.
pub struct RateLimits {
    devices: DeviceRateLimiter,
    platforms: HashMap<String, DeviceRateLimiter>,
    users: Option<DeviceRateLimiter>,
    bypass_users: HashSet<String>,
    bypass_groups: Vec<String>,
}

/// Who runs, as the limits need it.
#[derive(Debug, Clone, Copy)]
pub struct Runner<'a> {
    /// NetBox user id.
    pub user_id: u64,
    /// NetBox username.
    pub username: &'a str,
    /// The user's NetBox groups.
    pub groups: &'a [String],
}

impl RateLimits {
    /// `device` for every device, replaced by `platforms` budgets on those
    /// platforms; `user` (when set) for every user; the named users and
    /// groups pass unlimited.
    pub fn new(
        device: Budget,
        platforms: &HashMap<String, Budget>,
        user: Option<Budget>,
        bypass_users: &[String],
        bypass_groups: &[String],
    ) -> Self {
        Self {
            devices: DeviceRateLimiter::new(device.runs, device.window),
            platforms: platforms
                .iter()
                .map(|(slug, b)| (slug.clone(), DeviceRateLimiter::new(b.runs, b.window)))
                .collect(),
            users: user.map(|b| DeviceRateLimiter::new(b.runs, b.window)),
            bypass_users: bypass_users.iter().cloned().collect(),
            bypass_groups: bypass_groups.to_vec(),
        }
    }

    /// Takes one run for the user and one for the device, or says which
    /// limit refused and how long to wait.
    pub fn check(
        &self,
        runner: Runner<'_>,
        device_id: u64,
        device: &str,
        platform: &str,
    ) -> Result<(), RateLimited> {
        if self.bypasses(runner) {
            return Ok(());
        }

        // The user's budget first, so a refused user spends none of the device's.
        if let Some(users) = &self.users {
            users.check(runner.user_id).map_err(|mut limited| {
                limited.scope = format!("user {}", runner.username);
                limited
            })?;
        }
        self.for_platform(platform)
            .check(device_id)
            .map_err(|mut limited| {
                limited.scope = format!("device {device}");
                limited
            })
    }

    /// The device's remaining budget, without taking from it.
    pub fn status(&self, device_id: u64, platform: &str) -> RateStatus {
        self.for_platform(platform).status(device_id)
    }

    fn for_platform(&self, platform: &str) -> &DeviceRateLimiter {
        self.platforms.get(platform).unwrap_or(&self.devices)
    }

    fn bypasses(&self, runner: Runner<'_>) -> bool {
        self.bypass_users.contains(runner.username)
            || runner.groups.iter().any(|g| self.bypass_groups.contains(g))
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

    fn limits() -> RateLimits {
        let minute = Duration::from_secs(60);
        let platforms = HashMap::from([(
            "cisco_nxos".to_string(),
            Budget {
                runs: 3,
                window: minute,
            },
        )]);
        RateLimits::new(
            Budget {
                runs: 1,
                window: minute,
            },
            &platforms,
            Some(Budget {
                runs: 2,
                window: minute,
            }),
            &["automation".to_string()],
            &["noc".to_string()],
        )
    }

    fn runner<'a>(user_id: u64, username: &'a str, groups: &'a [String]) -> Runner<'a> {
        Runner {
            user_id,
            username,
            groups,
        }
    }

    #[test]
    fn a_platform_budget_replaces_the_device_default_on_that_platform() {
        let limits = limits();
        let alice = runner(1, "alice", &[]);
        let bob = runner(2, "bob", &[]);

        assert!(limits.check(alice, 10, "ios1", "cisco_ios").is_ok());
        let refused = limits.check(bob, 10, "ios1", "cisco_ios").unwrap_err();
        assert_eq!(refused.scope, "device ios1");

        assert!(limits.check(alice, 20, "nx1", "cisco_nxos").is_ok());
        assert!(limits.check(bob, 20, "nx1", "cisco_nxos").is_ok());
    }

    #[test]
    fn the_user_budget_spans_devices() {
        let limits = limits();
        let alice = runner(1, "alice", &[]);

        assert!(limits.check(alice, 1, "a", "cisco_ios").is_ok());
        assert!(limits.check(alice, 2, "b", "cisco_ios").is_ok());
        let refused = limits.check(alice, 3, "c", "cisco_ios").unwrap_err();

        assert_eq!(refused.scope, "user alice");
        assert!(
            limits
                .check(runner(2, "bob", &[]), 3, "c", "cisco_ios")
                .is_ok(),
            "device 3 kept its budget"
        );
    }

    #[test]
    fn bypass_users_and_groups_are_never_limited() {
        let limits = limits();
        let noc = vec!["noc".to_string()];
        for _ in 0..5 {
            assert!(
                limits
                    .check(runner(7, "automation", &[]), 1, "a", "cisco_ios")
                    .is_ok()
            );
            assert!(
                limits
                    .check(runner(8, "carol", &noc), 1, "a", "cisco_ios")
                    .is_ok()
            );
        }
    }
}
