//! The NetBox objects command variables refer to: a device's interfaces and
//! IP addresses, the VLANs available on it, and sites.

use serde::Deserialize;
use tracing::{Instrument, info_span};

use super::types::Page;
use super::{NetboxClient, NetboxError};

/// Most objects of one kind read for one device; more are a known gap.
const LIMIT: u32 = 1000;

/// An interface of a device.
#[derive(Debug, Clone, Deserialize)]
pub struct Interface {
    /// Object id.
    pub id: u64,
    /// Interface name, e.g. `GigabitEthernet0/1`.
    pub name: String,
}

/// A VLAN.
#[derive(Debug, Clone, Deserialize)]
pub struct Vlan {
    /// Object id.
    pub id: u64,
    /// 802.1Q id, 1 to 4094.
    pub vid: u16,
    /// VLAN name.
    pub name: String,
}

/// An IP address with its prefix length.
#[derive(Debug, Clone, Deserialize)]
pub struct IpAddress {
    /// Object id.
    pub id: u64,
    /// Address with prefix length, e.g. `192.0.2.1/24`.
    pub address: String,
}

/// A site.
#[derive(Debug, Clone, Deserialize)]
pub struct Site {
    /// Object id.
    pub id: u64,
    /// Site name.
    pub name: String,
    /// Site slug.
    pub slug: String,
}

impl NetboxClient {
    /// The device's interfaces.
    pub async fn device_interfaces(&self, device_id: u64) -> Result<Vec<Interface>, NetboxError> {
        let path = format!("api/dcim/interfaces/?device_id={device_id}&brief=1&limit={LIMIT}");
        self.list(&path, &format!("interfaces of device {device_id}"))
            .instrument(info_span!("netbox.interfaces", device_id))
            .await
    }

    /// The IP addresses assigned to the device's interfaces.
    pub async fn device_ip_addresses(&self, device_id: u64) -> Result<Vec<IpAddress>, NetboxError> {
        let path = format!("api/ipam/ip-addresses/?device_id={device_id}&brief=1&limit={LIMIT}");
        self.list(&path, &format!("IP addresses of device {device_id}"))
            .instrument(info_span!("netbox.ip_addresses", device_id))
            .await
    }

    /// The VLANs NetBox considers available on the device (its site's,
    /// its site group's and global ones).
    pub async fn device_vlans(&self, device_id: u64) -> Result<Vec<Vlan>, NetboxError> {
        let path = format!("api/ipam/vlans/?available_on_device={device_id}&brief=1&limit={LIMIT}");
        self.list(&path, &format!("VLANs available on device {device_id}"))
            .instrument(info_span!("netbox.vlans", device_id))
            .await
    }

    /// Every site this client's token may see.
    pub async fn sites(&self) -> Result<Vec<Site>, NetboxError> {
        let path = format!("api/dcim/sites/?brief=1&limit={LIMIT}");
        self.list(&path, "sites")
            .instrument(info_span!("netbox.sites"))
            .await
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, NetboxError> {
        let page: Page<T> = self.get_json(path, what).await?;
        Ok(page.results)
    }
}
