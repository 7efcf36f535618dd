//! Ephemeral NetBox devices that point at simulated devices in this process.
//!
//! A test that needs the whole path (API, NetBox, SSH) against a device that
//! misbehaves on purpose starts a simulator on a loopback address of its own
//! and registers it in the testbed's NetBox: a device with an interface, a
//! primary IPv4 address and an `ssh` service on the simulator's port. The
//! NetBox objects go when the fixture is dropped.
//!
//! NetBox refuses duplicate IP addresses, so every fixture takes a random
//! address in 127.50.0.0/16, a range nothing else in the testbed uses.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use netbox_toolkit::simulator::{Behaviour, DeviceSpec, RunningDevice, SessionStats, Simulator};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::Testbed;

/// Description on every object a fixture creates, so leftovers of a killed
/// run are recognisable (and removed when their address comes up again).
const MARKER: &str = "netbox-toolkit test fixture";

/// A random loopback address in 127.50.0.0/16 (never .0 or .255 in the
/// last octet).
pub fn ephemeral_loopback() -> IpAddr {
    let [a, b, ..] = *uuid::Uuid::new_v4().as_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 50, a, b.clamp(1, 254)))
}

/// A device in the testbed's NetBox pointing at `address:port`, deleted
/// (with its interface, IP address and service) on drop.
#[derive(Debug)]
pub struct EphemeralDevice {
    /// NetBox device id, for `/api/v1/devices/{id}/...`.
    pub id: u64,
    /// Device name in NetBox.
    pub name: String,
    /// Its primary IPv4 address.
    pub address: IpAddr,
    /// Port of its `ssh` service.
    pub port: u16,
    ip_id: u64,
    service_id: u64,
    deleted: bool,
}

impl EphemeralDevice {
    /// Registers `device` (a running simulated device) in NetBox under the
    /// platform `platform_slug`, which need not be the simulator's: a
    /// mismatch is how a test makes the service wait for a prompt that never
    /// comes.
    pub async fn create(platform_slug: &str, device: &RunningDevice) -> EphemeralDevice {
        let nb = NetboxAdmin::new();
        let address = device.addr.ip();
        let port = device.addr.port();
        let cidr = format!("{address}/32");
        let name = format!("nbt-fixture-{}", address.to_string().replace('.', "-"));
        nb.remove_leftovers(&name, &cidr).await;

        let platform = nb.platform(platform_slug).await;
        let device_id = nb
            .create(
                "dcim/devices/",
                json!({
                    "name": name,
                    "device_type": nb.id_by_slug("dcim/device-types/", "lab-router").await,
                    "role": nb.id_by_slug("dcim/device-roles/", "router").await,
                    "site": nb.id_by_slug("dcim/sites/", "lab").await,
                    "platform": platform,
                    "status": "active",
                    "description": MARKER,
                }),
            )
            .await;
        let interface_id = nb
            .create(
                "dcim/interfaces/",
                json!({"device": device_id, "name": "mgmt0", "type": "virtual"}),
            )
            .await;
        let ip_id = nb
            .create(
                "ipam/ip-addresses/",
                json!({
                    "address": cidr,
                    "status": "active",
                    "assigned_object_type": "dcim.interface",
                    "assigned_object_id": interface_id,
                    "description": MARKER,
                }),
            )
            .await;
        nb.patch(
            &format!("dcim/devices/{device_id}/"),
            json!({"primary_ip4": ip_id}),
        )
        .await;
        let service_id = nb
            .create(
                "ipam/services/",
                json!({
                    "parent_object_type": "dcim.device",
                    "parent_object_id": device_id,
                    "name": "ssh",
                    "port_mappings": [format!("tcp/{port}")],
                    "ipaddresses": [ip_id],
                    "description": MARKER,
                }),
            )
            .await;

        EphemeralDevice {
            id: device_id,
            name,
            address,
            port,
            ip_id,
            service_id,
            deleted: false,
        }
    }

    /// Deletes the NetBox objects now (drop does it too, from a thread of
    /// its own).
    pub async fn delete(mut self) {
        self.deleted = true;
        delete_objects(self.service_id, self.id, self.ip_id).await;
    }
}

impl Drop for EphemeralDevice {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        let (service, device, ip) = (self.service_id, self.id, self.ip_id);
        // Drop cannot await, and blocking inside the test's runtime would
        // stall it: a thread with a runtime of its own does the deleting.
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(delete_objects(service, device, ip));
        });
        if cleanup.join().is_err() {
            eprintln!("could not delete NetBox fixture device {device}");
        }
    }
}

/// The service first (it names the IP), then the device (its interface and
/// journal go with it), then the IP address, which NetBox keeps otherwise.
async fn delete_objects(service: u64, device: u64, ip: u64) {
    let nb = NetboxAdmin::new();
    nb.delete(&format!("ipam/services/{service}/")).await;
    nb.delete(&format!("dcim/devices/{device}/")).await;
    nb.delete(&format!("ipam/ip-addresses/{ip}/")).await;
}

/// A simulated device on an address of its own, registered in NetBox.
///
/// Fields drop in order: the NetBox objects first, then the simulator.
pub struct SimulatedNetboxDevice {
    /// The NetBox side.
    pub netbox: EphemeralDevice,
    /// The device as it listens.
    pub device: RunningDevice,
    /// The simulator hosting it; dropping it stops the device.
    pub simulator: Simulator,
}

impl SimulatedNetboxDevice {
    /// Starts a device of `platform` behaving as told, accepting the
    /// testbed's device credentials, and registers it in NetBox under the
    /// same platform.
    pub async fn start(platform: &str, behaviour: Behaviour) -> Self {
        Self::start_as(platform, platform, behaviour).await
    }

    /// The same, registered in NetBox as `netbox_platform` whatever the
    /// simulator speaks.
    pub async fn start_as(netbox_platform: &str, platform: &str, behaviour: Behaviour) -> Self {
        let tb = Testbed::get();
        let mut spec = DeviceSpec::new(platform, "").with(behaviour);
        spec.address = ephemeral_loopback();
        spec.username = tb.var("DEVICE_USERNAME").to_string();
        spec.password = SecretString::from(tb.var("DEVICE_PASSWORD").to_string());
        spec.hostname = format!("sim-{}", spec.address.to_string().replace('.', "-"));

        let simulator = Simulator::start(vec![spec])
            .await
            .expect("the simulator starts");
        let device = simulator.device().expect("one device").clone();
        let netbox = EphemeralDevice::create(netbox_platform, &device).await;
        Self {
            netbox,
            device,
            simulator,
        }
    }

    /// NetBox device id.
    pub fn id(&self) -> u64 {
        self.netbox.id
    }

    /// Session counters the simulator keeps for the device.
    pub fn stats(&self) -> &Arc<SessionStats> {
        &self.device.stats
    }
}

/// Writes to the testbed's NetBox with the admin token.
struct NetboxAdmin {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl NetboxAdmin {
    fn new() -> Self {
        let tb = Testbed::get();
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/api/", tb.netbox_url().trim_end_matches('/')),
            auth: format!("Bearer {}", tb.var("NETBOX_TOKEN")),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .header("Accept", "application/json");
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success() || (method == reqwest::Method::DELETE && status == 404),
            "NetBox {method} {path} {body:?} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn create(&self, path: &str, body: Value) -> u64 {
        let created = self.send(reqwest::Method::POST, path, Some(body)).await;
        created["id"].as_u64().unwrap()
    }

    async fn patch(&self, path: &str, body: Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await;
    }

    async fn delete(&self, path: &str) {
        self.send(reqwest::Method::DELETE, path, None).await;
    }

    async fn id_by_slug(&self, path: &str, slug: &str) -> u64 {
        let page = self.get(&format!("{path}?slug={slug}")).await;
        page["results"][0]["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("NetBox has no {path} {slug}: run scripts/testbed-up"))
    }

    /// The platform's id, created when the seed did not make it (two tests
    /// racing to create it both end up with the one that won).
    async fn platform(&self, slug: &str) -> u64 {
        let path = "dcim/platforms/";
        let page = self.get(&format!("{path}?slug={slug}")).await;
        if let Some(id) = page["results"][0]["id"].as_u64() {
            return id;
        }
        let _ = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .json(&json!({"name": slug, "slug": slug}))
            .send()
            .await
            .unwrap();
        self.id_by_slug(path, slug).await
    }

    /// Objects a killed run left at this address or under this name.
    async fn remove_leftovers(&self, name: &str, cidr: &str) {
        let devices = self.get(&format!("dcim/devices/?name={name}")).await;
        for device in devices["results"].as_array().into_iter().flatten() {
            let id = device["id"].as_u64().unwrap();
            self.delete(&format!("dcim/devices/{id}/")).await;
        }
        let ips = self
            .get(&format!("ipam/ip-addresses/?address={cidr}"))
            .await;
        for ip in ips["results"].as_array().into_iter().flatten() {
            let id = ip["id"].as_u64().unwrap();
            self.delete(&format!("ipam/ip-addresses/{id}/")).await;
        }
    }
}
