//! NetBox REST objects, reduced to the fields the service reads.

use serde::{Deserialize, Serialize};

/// A NetBox list answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    pub results: Vec<T>,
}

/// A nested reference NetBox embeds in other objects (site, role, platform...).
#[derive(Debug, Clone, Deserialize)]
pub struct NamedRef {
    /// Object id.
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// URL-safe slug, where the object has one.
    #[serde(default)]
    pub slug: Option<String>,
}

/// A nested IP address reference.
#[derive(Debug, Clone, Deserialize)]
pub struct IpRef {
    /// Object id.
    pub id: u64,
    /// Address with prefix length, e.g. `192.0.2.1/32`.
    pub address: String,
}

impl IpRef {
    /// The address without its prefix length.
    pub fn host(&self) -> &str {
        self.address.split('/').next().unwrap_or(&self.address)
    }
}

/// A device as the service needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Device {
    /// Object id.
    pub id: u64,
    /// Device name (NetBox allows unnamed devices).
    #[serde(default)]
    pub name: Option<String>,
    /// NetBox's display string.
    #[serde(default)]
    pub display: Option<String>,
    /// The device's platform.
    #[serde(default)]
    pub platform: Option<NamedRef>,
    /// Preferred primary address (IPv6 or IPv4, as NetBox decides).
    #[serde(default)]
    pub primary_ip: Option<IpRef>,
    /// Primary IPv4 address.
    #[serde(default)]
    pub primary_ip4: Option<IpRef>,
    /// Primary IPv6 address.
    #[serde(default)]
    pub primary_ip6: Option<IpRef>,
    /// The device's site.
    #[serde(default)]
    pub site: Option<NamedRef>,
    /// The device's role.
    #[serde(default)]
    pub role: Option<NamedRef>,
    /// The device's tenant.
    #[serde(default)]
    pub tenant: Option<NamedRef>,
    /// The device's tags.
    #[serde(default)]
    pub tags: Vec<TagRef>,
    /// The rendered config context (merged by platform, role, site, tenant
    /// and tags); present in the detail view.
    #[serde(default)]
    pub config_context: Option<serde_json::Value>,
}

/// A tag on an object.
#[derive(Debug, Clone, Deserialize)]
pub struct TagRef {
    /// Tag id.
    pub id: u64,
    /// Tag name.
    #[serde(default)]
    pub name: String,
    /// Tag slug.
    #[serde(default)]
    pub slug: String,
}

impl Device {
    /// A name for messages: the device name, else NetBox's display, else the id.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.display.clone())
            .unwrap_or_else(|| format!("device {}", self.id))
    }

    /// The address to dial: the primary IP NetBox prefers, then IPv4, then IPv6.
    pub fn primary_host(&self) -> Option<&str> {
        self.primary_ip
            .as_ref()
            .or(self.primary_ip4.as_ref())
            .or(self.primary_ip6.as_ref())
            .map(IpRef::host)
    }
}

/// A NetBox service object (protocol and ports on a device).
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Object id.
    pub id: u64,
    /// Service name, e.g. `ssh`.
    pub name: String,
    /// Ports the service listens on.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// The four journal entry kinds NetBox knows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JournalKind {
    /// Informational.
    Info,
    /// A success.
    Success,
    /// A warning.
    Warning,
    /// A failure.
    Danger,
}

/// A journal entry to create on a device.
#[derive(Debug, Clone, Serialize)]
pub struct NewJournalEntry {
    /// Always `dcim.device` here.
    pub assigned_object_type: &'static str,
    /// The device id.
    pub assigned_object_id: u64,
    /// Outcome colour.
    pub kind: JournalKind,
    /// Markdown body.
    pub comments: String,
}

/// A journal entry as NetBox stored it.
#[derive(Debug, Clone, Deserialize)]
pub struct JournalEntry {
    /// Object id.
    pub id: u64,
}
