//! The device simulator: SSH servers, built on russh's server side, that
//! speak like the platforms in the connector's table and misbehave on
//! request (banners, sticky pagers, escape codes, slow or hanging output,
//! dropped sessions, session limits, legacy-only algorithms, login
//! questions).
//!
//! It owns nothing the service uses in production: tests, benchmarks and the
//! `devsim` binary start it. One [`Simulator`] hosts any number of devices
//! in the current tokio runtime, one listener each; it reads the same
//! platform table as the connector (commands on open, configuration mode,
//! enable) and adds a [`Persona`] per platform for what the device prints.

pub mod behaviour;
pub mod persona;
mod server;
mod shell;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use secrecy::SecretString;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

pub use behaviour::Behaviour;
pub use persona::Persona;

use crate::connector::platform::PlatformTableError;
use crate::connector::{Platform, PlatformRegistry};

/// One device to simulate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Platform slug from the connector's table, e.g. `cisco_ios`.
    pub platform: String,
    /// Hostname shown in prompts; `<platform>-<n>` when empty.
    #[serde(default)]
    pub hostname: String,
    /// Address to listen on.
    #[serde(default = "default_address")]
    pub address: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[serde(default)]
    pub port: u16,
    /// Login name the device accepts.
    #[serde(default = "default_username")]
    pub username: String,
    /// Password the device accepts.
    #[serde(default = "default_password")]
    pub password: SecretString,
    /// How the device misbehaves.
    #[serde(default)]
    pub behaviour: Behaviour,
}

fn default_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn default_username() -> String {
    "admin".into()
}

fn default_password() -> SecretString {
    SecretString::from("admin")
}

impl DeviceSpec {
    /// A well-behaved device of `platform` on a free loopback port, with
    /// login `admin` / `admin`.
    pub fn new(platform: &str, hostname: &str) -> Self {
        Self {
            platform: platform.to_string(),
            hostname: hostname.to_string(),
            address: default_address(),
            port: 0,
            username: default_username(),
            password: default_password(),
            behaviour: Behaviour::default(),
        }
    }

    /// The same device with `behaviour`.
    pub fn with(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The platform table did not load.
    #[error(transparent)]
    Table(#[from] PlatformTableError),
    /// A spec names a platform the table or the personas do not know.
    #[error("no platform or persona for `{0}`; use one of the connector's platform slugs")]
    UnknownPlatform(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A host key could not be generated.
    #[error("cannot generate a host key: {0}")]
    HostKey(String),
}

/// Session counters of one device, readable while it runs.
#[derive(Debug, Default)]
pub struct SessionStats {
    active: AtomicUsize,
    max_seen: AtomicUsize,
    total: AtomicUsize,
    pages: AtomicUsize,
}

impl SessionStats {
    /// Shells open right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// The most shells that were open at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.max_seen.load(Ordering::SeqCst)
    }

    /// Shells opened since the device started.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Pager lines shown (each waited for a key): zero once paging is off.
    pub fn pages_shown(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }

    fn page_shown(&self) {
        self.pages.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a new shell; the count drops again when the guard does.
    fn open(self: &Arc<Self>) -> SessionGuard {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_seen.fetch_max(now, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.clone())
    }
}

/// Keeps one shell counted in [`SessionStats::active`] while alive.
struct SessionGuard(Arc<SessionStats>);

impl SessionGuard {
    fn active(&self) -> usize {
        self.0.active()
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Everything a session of one device needs, shared by its sessions.
struct DeviceState {
    spec: DeviceSpec,
    platform: Arc<Platform>,
    persona: &'static Persona,
    stats: Arc<SessionStats>,
    shutdown: watch::Receiver<bool>,
}

/// Resolves once the simulator is told to stop (or is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A simulated device that is listening.
#[derive(Debug, Clone)]
pub struct RunningDevice {
    /// Platform slug.
    pub platform: String,
    /// Hostname in its prompts.
    pub hostname: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Login name it accepts.
    pub username: String,
    /// Password it accepts.
    pub password: SecretString,
    /// Its session counters.
    pub stats: Arc<SessionStats>,
}

impl RunningDevice {
    /// `host:port:platform`, the line `devsim` prints per device.
    pub fn summary(&self) -> String {
        format!("{}:{}:{}", self.addr.ip(), self.addr.port(), self.platform)
    }
}

/// Many simulated devices in one process; dropping it stops them.
pub struct Simulator {
    devices: Vec<RunningDevice>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Simulator {
    /// Starts every device in `specs` with the built-in platform table.
    pub async fn start(specs: Vec<DeviceSpec>) -> Result<Self, SimulatorError> {
        let registry = PlatformRegistry::load(&[])?;
        Self::start_with(&registry, specs).await
    }

    /// Starts every device in `specs`, reading platforms from `registry`.
    pub async fn start_with(
        registry: &PlatformRegistry,
        specs: Vec<DeviceSpec>,
    ) -> Result<Self, SimulatorError> {
        let (shutdown, watcher) = watch::channel(false);
        let mut simulator = Self {
            devices: Vec::with_capacity(specs.len()),
            shutdown,
            tasks: JoinSet::new(),
        };
        let keys = server::HostKeys::default();

        for (index, mut spec) in specs.into_iter().enumerate() {
            if spec.hostname.is_empty() {
                spec.hostname = format!("{}-{}", spec.platform.replace('_', "-"), index + 1);
            }
            let device = simulator
                .listen(registry, &keys, spec, watcher.clone())
                .await?;
            simulator.devices.push(device);
        }
        Ok(simulator)
    }

    /// The devices, in the order of the specs.
    pub fn devices(&self) -> &[RunningDevice] {
        &self.devices
    }

    /// The first device, for tests that start one.
    pub fn device(&self) -> Option<&RunningDevice> {
        self.devices.first()
    }

    /// Closes every session and listener, and waits for them to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    async fn listen(
        &mut self,
        registry: &PlatformRegistry,
        keys: &server::HostKeys,
        spec: DeviceSpec,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunningDevice, SimulatorError> {
        let platform = registry
            .resolve(Some(&spec.platform), None)
            .map_err(|_| SimulatorError::UnknownPlatform(spec.platform.clone()))?;
        let persona = Persona::for_slug(platform.slug())
            .ok_or_else(|| SimulatorError::UnknownPlatform(spec.platform.clone()))?;
        let config = server::config(keys, &spec.behaviour)?;

        let wanted = SocketAddr::new(spec.address, spec.port);
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| SimulatorError::Bind {
                addr: wanted,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind {
                addr: wanted,
                source,
            })?;

        let stats = Arc::new(SessionStats::default());
        let running = RunningDevice {
            platform: platform.slug().to_string(),
            hostname: spec.hostname.clone(),
            addr,
            username: spec.username.clone(),
            password: spec.password.clone(),
            stats: stats.clone(),
        };
        let state = Arc::new(DeviceState {
            spec,
            platform,
            persona,
            stats,
            shutdown,
        });
        info!(device = %running.hostname, platform = %running.platform, %addr, "simulated device listening");
        self.tasks
            .spawn(server::accept_loop(listener, config, state));
        Ok(running)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Sessions run in their own tasks; tell them to hang up.
        let _ = self.shutdown.send(true);
    }
}
