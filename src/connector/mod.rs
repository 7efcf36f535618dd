//! The connector layer owns everything between "run this on that device" and
//! the bytes on the wire: the platform table, the factory that picks a driver
//! from a NetBox platform, the SSH transports and the session driver.
//!
//! It knows nothing of NetBox, HTTP, retries or audit; it reports failures
//! as [`ConnectorError`] and leaves policy to the service layer.

pub mod error;
pub mod hostkeys;
pub mod libssh2;
pub mod platform;
pub mod session;
pub mod ssh;
pub mod text;
pub mod transport;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tracing::{Instrument, info, info_span};

pub use error::{
    CommandExecutionError, ConnectorError, DeviceConnectionError, UnsupportedPlatformError,
};
pub use hostkeys::{HostKeyMode, HostKeyPolicy, HostKeyStore};
pub use platform::{Platform, PlatformDef, PlatformRegistry};
use session::ShellSession;
pub use transport::{AnyTransport, ClientKey, TransportKind, TransportSettings};

/// A byte pipe to a device's interactive shell.
pub trait Transport: Send {
    /// Writes bytes to the shell.
    fn send(
        &mut self,
        data: &[u8],
    ) -> impl Future<Output = Result<(), DeviceConnectionError>> + Send;

    /// The next chunk of bytes, or `None` once the device closed the shell.
    /// Implementations must be cancel-safe: the driver wraps it in timeouts.
    fn recv(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, DeviceConnectionError>> + Send;

    /// Closes the shell and the connection.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Where and how to log in to one device.
#[derive(Clone)]
pub struct SshTarget {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login name.
    pub username: String,
    /// Login password.
    pub password: SecretString,
    /// Secret for privilege escalation, when the device asks for one.
    pub enable_secret: Option<SecretString>,
    /// Offer SHA-1 key exchanges, CBC ciphers and hmac-sha1 as well.
    pub legacy_algorithms: bool,
    /// Budget for TCP connect plus SSH handshake.
    pub connect_timeout: Duration,
}

impl SshTarget {
    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Limits the factory applies to every session.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// Budget from SSH login to a ready prompt (escalation and paging included).
    pub login_timeout: Duration,
    /// Cap on one command's output, in bytes.
    pub max_output_bytes: usize,
}

/// Picks a driver for a device from its NetBox platform.
#[derive(Debug, Clone)]
pub struct ConnectorFactory {
    registry: PlatformRegistry,
    settings: ConnectorSettings,
    transport: Arc<TransportSettings>,
}

impl ConnectorFactory {
    /// A factory over `registry`.
    pub fn new(registry: PlatformRegistry, settings: ConnectorSettings) -> Self {
        Self {
            registry,
            settings,
            transport: Arc::new(TransportSettings::default()),
        }
    }

    /// The same factory with these host-key, algorithm and transport choices.
    pub fn with_transport(mut self, transport: TransportSettings) -> Self {
        self.transport = Arc::new(transport);
        self
    }

    /// The driver for a NetBox platform, matched on slug, then name, then aliases.
    pub fn connector_for(
        &self,
        slug: Option<&str>,
        name: Option<&str>,
    ) -> Result<Connector, UnsupportedPlatformError> {
        let platform = self.registry.resolve(slug, name)?;
        Ok(Connector {
            platform,
            settings: self.settings.clone(),
            transport: self.transport.clone(),
        })
    }

    /// Every supported platform slug.
    pub fn supported(&self) -> Vec<String> {
        self.registry.slugs()
    }
}

/// A driver for one platform, able to open sessions to its devices.
#[derive(Debug, Clone)]
pub struct Connector {
    platform: Arc<Platform>,
    settings: ConnectorSettings,
    transport: Arc<TransportSettings>,
}

/// A logged-in session on a device, ready for commands, over either SSH
/// implementation.
pub type DeviceSession = ShellSession<AnyTransport>;

impl Connector {
    /// The platform this connector drives.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Connects, logs in and prepares the CLI (prompt, privileges, paging).
    pub async fn connect(&self, target: &SshTarget) -> Result<DeviceSession, ConnectorError> {
        let span = info_span!("connect", addr = %target.addr(), platform = self.platform.slug());
        async {
            let started = std::time::Instant::now();
            let login_name = match &self.platform.def.username_suffix {
                Some(suffix) => format!("{}{suffix}", target.username),
                None => target.username.clone(),
            };

            let slug = self.platform.slug();
            let dial = self.transport.dial(target, &login_name, slug);
            let primary = self.transport.primary_for(slug);
            let transport = transport::open(&dial, primary, self.transport.fallback).await?;
            let kind = transport.kind();
            let session = ShellSession::login(
                transport,
                self.platform.clone(),
                target.addr(),
                target.enable_secret.as_ref(),
                self.settings.login_timeout,
                self.settings.max_output_bytes,
            )
            .await?;

            info!(
                prompt = session.prompt(),
                transport = %kind,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "session ready"
            );
            Ok(session)
        }
        .instrument(span)
        .await
    }
}
