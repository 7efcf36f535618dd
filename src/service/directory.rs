//! Devices as a caller sees them: read from NetBox with the caller's own
//! token, so a device they cannot see is "not found" for them too, and
//! cached briefly per caller and device.
//!
//! The device's `ssh` service (for the port) is read with the service's
//! token at the same time: once the caller can see the device, the port is
//! not theirs to hide.

use std::time::Duration;

use moka::future::Cache;

use super::DeviceInfo;
use crate::netbox::{ApiToken, NetboxClient, NetboxError};

/// Per-caller device lookups with a short cache.
pub struct DeviceDirectory {
    netbox: NetboxClient,
    cache: Cache<(String, u64), DeviceInfo>,
}

impl DeviceDirectory {
    /// A directory over the service's client; answers live for `ttl`.
    pub fn new(netbox: NetboxClient, ttl: Duration) -> Self {
        Self {
            netbox,
            cache: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .build(),
        }
    }

    /// The device and its SSH port, as the holder of `token` may see it
    /// (both lookups at once).
    pub async fn device(
        &self,
        token: &ApiToken,
        device_id: u64,
    ) -> Result<DeviceInfo, NetboxError> {
        let as_caller = self.netbox.as_caller(token);
        let fetch = async {
            // A caller without any view right on devices gets 403 from
            // NetBox; for them the device does not exist either.
            let visible = async {
                as_caller.device(device_id).await.map_err(|err| match err {
                    NetboxError::Forbidden { .. } => NetboxError::NotFound {
                        what: format!("device {device_id}"),
                    },
                    other => other,
                })
            };
            let (device, service) =
                tokio::try_join!(visible, self.netbox.device_service(device_id, "ssh"))?;
            let ssh_port = service.and_then(|s| s.ports.first().copied());
            Ok::<_, NetboxError>(DeviceInfo { device, ssh_port })
        };
        self.cache
            .try_get_with((token.fingerprint(), device_id), fetch)
            .await
            .map_err(|err| (*err).clone())
    }
}
