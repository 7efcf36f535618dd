//! Session caps: how many SSH sessions may be open to one device, and in
//! all, at the same time.
//!
//! Devices have few VTY lines and a service that opens fifty sessions to one
//! switch knocks its SSH daemon over. Requests beyond the cap wait in line
//! (tokio's semaphores are first-in, first-out) until their deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// No session slot came free before the request's deadline.
#[derive(Debug, Clone, thiserror::Error)]
#[error("all {cap} SSH session slots for {scope} stayed busy for {waited:?}")]
pub struct SessionsBusy {
    /// `device <id>` or `the service`.
    pub scope: String,
    /// The cap in force.
    pub cap: usize,
    /// How long the request waited.
    pub waited: Duration,
}

/// The right to hold one SSH session; released when dropped.
#[derive(Debug)]
pub struct SessionPermit {
    _device: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// Per-device and total session caps.
pub struct SessionLimiter {
    per_device: usize,
    total_cap: usize,
    total: Arc<Semaphore>,
    devices: Mutex<HashMap<u64, Arc<Semaphore>>>,
}

impl SessionLimiter {
    /// At most `per_device` sessions to one device and `total` in all (each at least one).
    pub fn new(per_device: usize, total: usize) -> Self {
        let total_cap = total.max(1);
        Self {
            per_device: per_device.max(1),
            total_cap,
            total: Arc::new(Semaphore::new(total_cap)),
            devices: Mutex::new(HashMap::new()),
        }
    }

    /// Waits in line for a slot on `device_id` and one in the total, until `deadline`.
    ///
    /// Cancel-safe: a cancelled wait leaves the line without taking a slot.
    pub async fn acquire(
        &self,
        device_id: u64,
        deadline: Instant,
    ) -> Result<SessionPermit, SessionsBusy> {
        let started = Instant::now();
        let busy = |scope: String, cap: usize| SessionsBusy {
            scope,
            cap,
            waited: started.elapsed(),
        };

        // The device slot first: waiting for it must not hold a total slot others could use.
        let device = tokio::time::timeout_at(deadline, self.device(device_id).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| busy(format!("device {device_id}"), self.per_device))?;
        let total = tokio::time::timeout_at(deadline, self.total.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| busy("the service".into(), self.total_cap))?;

        Ok(SessionPermit {
            _device: device,
            _total: total,
        })
    }

    fn device(&self, device_id: u64) -> Arc<Semaphore> {
        // A poisoned map still holds valid semaphores; keep using it.
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        devices
            .entry(device_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_device)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_third_session_to_a_device_waits_for_a_slot_and_gives_up_at_the_deadline() {
        let limiter = SessionLimiter::new(2, 10);
        let deadline = Instant::now() + Duration::from_secs(5);
        let _a = limiter.acquire(1, deadline).await.unwrap();
        let _b = limiter.acquire(1, deadline).await.unwrap();

        let refused = limiter.acquire(1, deadline).await.unwrap_err();

        assert_eq!(refused.cap, 2);
        assert_eq!(refused.scope, "device 1");
        assert!(refused.waited >= Duration::from_secs(5));
        assert!(
            limiter.acquire(2, deadline).await.is_ok(),
            "other devices have their own slots"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_slot_goes_to_the_first_in_line() {
        let limiter = Arc::new(SessionLimiter::new(1, 10));
        let deadline = Instant::now() + Duration::from_secs(60);
        let held = limiter.acquire(7, deadline).await.unwrap();

        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(7, deadline).await.map(|_| Instant::now()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);

        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_cap_applies_across_devices() {
        let limiter = SessionLimiter::new(5, 1);
        let deadline = Instant::now() + Duration::from_secs(1);
        let _held = limiter.acquire(1, deadline).await.unwrap();

        let refused = limiter.acquire(2, deadline).await.unwrap_err();

        assert_eq!(refused.scope, "the service");
    }
}
