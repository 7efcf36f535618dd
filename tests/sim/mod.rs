//! Test support: simulated devices started in this process on free
//! loopback ports, and the connector pointed at them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use netbox_toolkit::connector::ConnectorSettings;
use netbox_toolkit::connector::{
    Connector, ConnectorError, ConnectorFactory, DeviceSession, PlatformRegistry, SshTarget,
};
use netbox_toolkit::simulator::{Behaviour, DeviceSpec, RunningDevice, Simulator};
use secrecy::SecretString;

/// A generous command timeout for commands that are expected to finish.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// One simulated device and the connector for its platform.
pub struct SimDevice {
    pub simulator: Simulator,
    pub device: RunningDevice,
    pub connector: Connector,
}

impl SimDevice {
    /// Starts one device of `platform` named `hostname` behaving as told.
    pub async fn start(platform: &str, hostname: &str, behaviour: Behaviour) -> Self {
        Self::start_with(platform, hostname, behaviour, settings()).await
    }

    /// The same, with connector limits of the test's choosing.
    pub async fn start_with(
        platform: &str,
        hostname: &str,
        behaviour: Behaviour,
        settings: ConnectorSettings,
    ) -> Self {
        let spec = DeviceSpec::new(platform, hostname).with(behaviour);
        let simulator = Simulator::start(vec![spec])
            .await
            .expect("simulator starts");
        let device = simulator.device().expect("one device").clone();
        let connector = factory(settings)
            .connector_for(Some(platform), None)
            .expect("platform is registered");
        Self {
            simulator,
            device,
            connector,
        }
    }

    /// Where and how to log in, without legacy algorithms or enable secret.
    pub fn target(&self) -> SshTarget {
        target(&self.device)
    }

    /// Logs in with the default target.
    pub async fn connect(&self) -> Result<DeviceSession, ConnectorError> {
        self.connector.connect(&self.target()).await
    }
}

/// Connector limits for tests: a login budget well above the simulator's
/// needs and a 64 MiB output cap.
pub fn settings() -> ConnectorSettings {
    ConnectorSettings {
        login_timeout: Duration::from_secs(10),
        max_output_bytes: 64 * 1024 * 1024,
    }
}

/// The factory over the built-in platform table.
pub fn factory(settings: ConnectorSettings) -> ConnectorFactory {
    ConnectorFactory::new(PlatformRegistry::load(&[]).unwrap(), settings)
}

/// The login for a simulated device.
pub fn target(device: &RunningDevice) -> SshTarget {
    SshTarget {
        host: device.addr.ip().to_string(),
        port: device.addr.port(),
        username: device.username.clone(),
        password: device.password.clone(),
        enable_secret: None,
        legacy_algorithms: false,
        connect_timeout: Duration::from_secs(10),
    }
}

/// An enable secret for a target.
pub fn secret(text: &str) -> Option<SecretString> {
    Some(SecretString::from(text.to_string()))
}
